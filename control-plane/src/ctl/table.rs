//! Aligned text tables.

use std::fmt::Write as _;

use crate::api::model::{RateView, SessionView, UserPlaneView};

/// A table of text cells with a header row; columns are padded to their
/// widest cell and separated by two spaces.
#[derive(Debug, Clone, Default)]
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column titles.
    pub fn new(header: &[&str]) -> Self {
        Table {
            header: header.iter().map(|s| s.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    /// Append a row (missing cells render empty, extra cells are ignored).
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// Render with a trailing newline per line; no trailing spaces.
    pub fn render(&self) -> String {
        let n = self.header.len();
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for r in &self.rows {
            for (w, c) in widths.iter_mut().zip(r.iter()) {
                *w = (*w).max(c.chars().count());
            }
        }
        let mut out = String::new();
        let mut line = |cells: &[String]| {
            let mut l = String::new();
            for (i, w) in widths.iter().enumerate().take(n) {
                let c = cells.get(i).map_or("", String::as_str);
                let _ = write!(l, "{c:<w$}  ");
            }
            out.push_str(l.trim_end());
            out.push('\n');
        };
        line(&self.header);
        for r in &self.rows {
            line(r);
        }
        out
    }
}

fn vlan(v: u16) -> String {
    if v == 0 {
        "-".to_string()
    } else {
        v.to_string()
    }
}

/// Human-readable bytes (B, KiB, MiB, GiB).
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// A rate in kbit/s in the largest unit that keeps it exact: `20M`,
/// `1G`, `1500k`; `-` for 0 (no limit).
pub fn kbps(k: u64) -> String {
    match k {
        0 => "-".to_string(),
        k if k % 1_000_000 == 0 => format!("{}G", k / 1_000_000),
        k if k % 1000 == 0 => format!("{}M", k / 1000),
        k => format!("{k}k"),
    }
}

/// A session's rate as `up/down` (`20M/100M`, `-/100M`), `-` if unlimited.
pub fn rate(r: Option<RateView>) -> String {
    match r {
        Some(r) if r.up_kbps != 0 || r.down_kbps != 0 => {
            format!("{}/{}", kbps(r.up_kbps), kbps(r.down_kbps))
        }
        _ => "-".to_string(),
    }
}

/// The `vbngctl sessions` table; `now` is Unix seconds (for the lease countdown).
pub fn sessions_table(sessions: &[SessionView], now: u64) -> String {
    let mut t = Table::new(&[
        "ID",
        "UP",
        "PORT",
        "SVLAN",
        "CVLAN",
        "MAC",
        "IPV4",
        "STATE",
        "RATE",
        "CIRCUIT-ID",
        "UPTIME",
        "LEASE",
        "UP-SEID",
    ]);
    for s in sessions {
        t.row(vec![
            s.id.to_string(),
            s.user_plane.clone(),
            s.port.to_string(),
            vlan(s.svlan),
            vlan(s.cvlan),
            s.mac.clone(),
            s.ipv4.to_string(),
            s.state.clone(),
            rate(s.rate),
            s.circuit_id.clone().unwrap_or_else(|| "-".into()),
            format!("{}s", now.saturating_sub(s.started)),
            format!("{}s", s.lease_expires.saturating_sub(now)),
            s.up_seid.map_or_else(|| "-".into(), |v| format!("{v:#x}")),
        ]);
    }
    let mut out = t.render();
    let _ = writeln!(out, "{} session(s)", sessions.len());
    out
}

/// The `vbngctl user-planes` table.
pub fn user_planes_table(ups: &[UserPlaneView]) -> String {
    let mut t = Table::new(&[
        "NAME",
        "PFCP",
        "STATE",
        "RECOVERY-TS",
        "LAST-HB",
        "SESSIONS",
    ]);
    for u in ups {
        t.row(vec![
            u.name.clone(),
            u.pfcp.clone(),
            u.state.clone(),
            u.recovery_timestamp
                .map_or_else(|| "-".into(), |v| v.to_string()),
            u.last_heartbeat_age_s
                .map_or_else(|| "-".into(), |v| format!("{v:.1}s ago")),
            u.sessions.to_string(),
        ]);
    }
    t.render()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn columns_align() {
        let mut t = Table::new(&["A", "LONG"]);
        t.row(vec!["xxxx".into(), "1".into()]);
        t.row(vec!["y".into()]);
        assert_eq!(t.render(), "A     LONG\nxxxx  1\ny\n");
    }

    #[test]
    fn session_and_up_tables() {
        let s = SessionView {
            id: 1,
            user_plane: "up0".into(),
            port: 0,
            svlan: 0,
            cvlan: 100,
            mac: "02:00:00:00:00:01".into(),
            ipv4: Ipv4Addr::new(100, 64, 0, 10),
            circuit_id: None,
            remote_id: None,
            state: "active".into(),
            started: 100,
            lease_expires: 700,
            cp_seid: 1,
            up_seid: Some(0x10),
            last_usage: None,
            rate: Some(RateView {
                up_kbps: 20_000,
                down_kbps: 100_000,
            }),
            aaa: None,
            pppoe_session_id: None,
            ipv6: None,
        };
        let mut unlimited = s.clone();
        unlimited.rate = None;
        let text = sessions_table(&[s, unlimited], 160);
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[0].starts_with("ID  UP   PORT  SVLAN  CVLAN  MAC"),
            "{text}"
        );
        assert!(lines[1].contains("100.64.0.10"), "{text}");
        assert!(lines[1].contains("60s"), "{text}");
        assert!(lines[1].contains("540s"), "{text}");
        assert!(lines[1].ends_with("0x10"), "{text}");
        assert!(lines[0].contains("STATE   RATE      CIRCUIT-ID"), "{text}");
        assert!(lines[1].contains("active  20M/100M  -"), "{text}");
        assert!(lines[2].contains("active  -         -"), "{text}");
        assert_eq!(lines[3], "2 session(s)");
        let u = UserPlaneView {
            name: "up0".into(),
            pfcp: "127.0.0.2:8805".into(),
            state: "up".into(),
            recovery_timestamp: Some(3_900_000_000),
            last_heartbeat_age_s: Some(1.25),
            sessions: 1,
        };
        let text = user_planes_table(&[u]);
        assert!(text.contains("up0   127.0.0.2:8805  up"), "{text}");
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(2048), "2.0 KiB");
    }

    #[test]
    fn rates() {
        assert_eq!(kbps(20_000), "20M");
        assert_eq!(kbps(1_000_000), "1G");
        assert_eq!(kbps(1500), "1500k");
        assert_eq!(kbps(2_500_000), "2500M");
        assert_eq!(kbps(0), "-");
        let r = |up_kbps, down_kbps| Some(RateView { up_kbps, down_kbps });
        assert_eq!(rate(r(20_000, 100_000)), "20M/100M");
        assert_eq!(rate(r(0, 100_000)), "-/100M");
        assert_eq!(rate(r(0, 0)), "-");
        assert_eq!(rate(None), "-");
    }
}
