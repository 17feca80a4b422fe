//! Port-block log events (RFC 6888 REQ-12: log per block rather than per flow), their
//! bounded queue, and a JSON line formatter for the host.

use alloc::collections::VecDeque;
use core::fmt;
use core::net::Ipv4Addr;

/// What happened to a block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NatLogKind {
    /// The subscriber was given the block.
    BlockAllocated,
    /// The subscriber gave the block back.
    BlockReleased,
}

impl NatLogKind {
    /// snake_case name (`block_allocated`).
    pub const fn name(self) -> &'static str {
        match self {
            NatLogKind::BlockAllocated => "block_allocated",
            NatLogKind::BlockReleased => "block_released",
        }
    }
}

/// Why a block was allocated or released.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum NatLogReason {
    /// Allocated: a new flow found no free port in the subscriber's blocks.
    NewFlow = 0,
    /// Released: no mapping used the block for `block_idle_s`.
    Idle = 1,
    /// Released: the session ended ([`super::Nat::release_subscriber`]).
    SessionEnd = 2,
    /// Released: packets of a new session (another session tag) came from the same inside
    /// address, so the old session's state was dropped.
    SessionChange = 3,
}

impl NatLogReason {
    /// snake_case name (`new_flow`).
    pub const fn name(self) -> &'static str {
        match self {
            NatLogReason::NewFlow => "new_flow",
            NatLogReason::Idle => "idle",
            NatLogReason::SessionEnd => "session_end",
            NatLogReason::SessionChange => "session_change",
        }
    }

    pub(crate) const fn from_u8(v: u8) -> NatLogReason {
        match v {
            0 => NatLogReason::NewFlow,
            1 => NatLogReason::Idle,
            3 => NatLogReason::SessionChange,
            _ => NatLogReason::SessionEnd,
        }
    }
}

/// One port-block log event: from `time_ns` (allocated) or until `time_ns` (released), the
/// subscriber `inside` of session `session_tag` held ports `first_port..=last_port` of
/// `outside` for TCP, UDP and ICMP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NatLogEvent {
    /// Allocation or release.
    pub kind: NatLogKind,
    /// The `now_ns` of the call that made the change (the worker's monotonic clock).
    pub time_ns: u64,
    /// The subscriber's session tag.
    pub session_tag: u64,
    /// The subscriber's inside address (its session address).
    pub inside: Ipv4Addr,
    /// The outside address.
    pub outside: Ipv4Addr,
    /// First port of the block.
    pub first_port: u16,
    /// Last port of the block.
    pub last_port: u16,
    /// Why.
    pub reason: NatLogReason,
}

impl NatLogEvent {
    /// Writes the event as one JSON object (no newline). `unix_base_ns` is the Unix time in
    /// nanoseconds at which the worker clock (`time_ns`) read 0. Example:
    ///
    /// ```text
    /// {"time":"2024-05-01T12:00:00.250Z","unix_ms":1714564800250,"event":"block_allocated",
    ///  "reason":"new_flow","session":42,"inside":"100.64.0.10","outside":"198.51.100.7",
    ///  "first_port":1024,"last_port":1535}
    /// ```
    /// (on one line).
    pub fn write_json(&self, unix_base_ns: u64, out: &mut impl fmt::Write) -> fmt::Result {
        let unix_ns = unix_base_ns.saturating_add(self.time_ns);
        let unix_ms = unix_ns / 1_000_000;
        out.write_str("{\"time\":\"")?;
        write_rfc3339_ms(unix_ms, out)?;
        write!(
            out,
            "\",\"unix_ms\":{unix_ms},\"event\":\"{}\",\"reason\":\"{}\",\"session\":{},\"inside\":\"{}\",\"outside\":\"{}\",\"first_port\":{},\"last_port\":{}}}",
            self.kind.name(),
            self.reason.name(),
            self.session_tag,
            self.inside,
            self.outside,
            self.first_port,
            self.last_port,
        )
    }
}

/// Writes Unix milliseconds `ms` as an RFC 3339 UTC timestamp with milliseconds
/// (`2024-05-01T12:00:00.250Z`).
pub fn write_rfc3339_ms(ms: u64, out: &mut impl fmt::Write) -> fmt::Result {
    let secs = ms / 1000;
    let (days, sod) = (secs / 86_400, secs % 86_400);
    let (y, mo, d) = civil_date(days);
    write!(
        out,
        "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        sod / 3600,
        sod / 60 % 60,
        sod % 60,
        ms % 1000
    )
}

fn is_leap(y: u64) -> bool {
    (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400)
}

/// (year, month 1-12, day 1-31) of `days` after 1970-01-01 (proleptic Gregorian).
fn civil_date(mut days: u64) -> (u64, u32, u32) {
    // 400 Gregorian years are exactly 146097 days; 1970 + 400k starts a cycle shaped like
    // 1970's.
    const CYCLE_DAYS: u64 = 146_097;
    let mut year = 1970 + 400 * (days / CYCLE_DAYS);
    days %= CYCLE_DAYS;
    loop {
        let len = if is_leap(year) { 366 } else { 365 };
        if days < len {
            break;
        }
        days -= len;
        year += 1;
    }
    const MONTHS: [u64; 12] = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    let mut month = 0;
    loop {
        let len = MONTHS[month] + u64::from(month == 1 && is_leap(year));
        if days < len || month == 11 {
            break;
        }
        days -= len;
        month += 1;
    }
    (year, month as u32 + 1, days as u32 + 1)
}

/// Bounded FIFO of events; never grows beyond the capacity it was built with.
#[derive(Debug)]
pub(crate) struct LogQueue {
    events: VecDeque<NatLogEvent>,
    cap: usize,
}

impl LogQueue {
    pub(crate) fn new(cap: usize) -> Self {
        LogQueue {
            events: VecDeque::with_capacity(cap),
            cap,
        }
    }

    #[inline]
    pub(crate) fn has_room(&self) -> bool {
        self.events.len() < self.cap
    }

    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.events.len()
    }

    /// Queues `e`; false (and nothing queued) when full.
    #[inline]
    pub(crate) fn push(&mut self, e: NatLogEvent) -> bool {
        if !self.has_room() {
            return false;
        }
        self.events.push_back(e);
        true
    }

    pub(crate) fn drain(&mut self, mut f: impl FnMut(&NatLogEvent)) -> usize {
        let n = self.events.len();
        while let Some(e) = self.events.pop_front() {
            f(&e);
        }
        n
    }

    pub(crate) fn memory_bytes(&self) -> usize {
        self.events.capacity() * core::mem::size_of::<NatLogEvent>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::String;

    fn ts(ms: u64) -> String {
        let mut s = String::new();
        write_rfc3339_ms(ms, &mut s).unwrap();
        s
    }

    #[test]
    fn rfc3339() {
        assert_eq!(ts(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(ts(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(ts(951_868_799_999), "2000-02-29T23:59:59.999Z");
        assert_eq!(ts(951_868_800_000), "2000-03-01T00:00:00.000Z");
        assert_eq!(ts(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
        assert_eq!(ts(4_102_444_800_000), "2100-01-01T00:00:00.000Z");
        assert_eq!(ts(4_107_456_000_000), "2100-02-28T00:00:00.000Z");
        assert_eq!(ts(4_107_542_400_000), "2100-03-01T00:00:00.000Z");
        // Beyond one 400-year cycle.
        assert_eq!(ts(16_725_225_600_000), "2500-01-01T00:00:00.000Z");
        assert_eq!(ts(1_704_067_199_000), "2023-12-31T23:59:59.000Z");
    }

    #[test]
    fn json_line() {
        let e = NatLogEvent {
            kind: NatLogKind::BlockAllocated,
            time_ns: 250_000_000,
            session_tag: 42,
            inside: Ipv4Addr::new(100, 64, 0, 10),
            outside: Ipv4Addr::new(198, 51, 100, 7),
            first_port: 1024,
            last_port: 1535,
            reason: NatLogReason::NewFlow,
        };
        let mut s = String::new();
        e.write_json(1_714_564_800_000_000_000, &mut s).unwrap();
        assert_eq!(
            s,
            "{\"time\":\"2024-05-01T12:00:00.250Z\",\"unix_ms\":1714564800250,\"event\":\"block_allocated\",\
             \"reason\":\"new_flow\",\"session\":42,\"inside\":\"100.64.0.10\",\"outside\":\"198.51.100.7\",\
             \"first_port\":1024,\"last_port\":1535}"
        );
    }

    #[test]
    fn queue_is_bounded() {
        let e = NatLogEvent {
            kind: NatLogKind::BlockReleased,
            time_ns: 0,
            session_tag: 0,
            inside: Ipv4Addr::UNSPECIFIED,
            outside: Ipv4Addr::UNSPECIFIED,
            first_port: 1,
            last_port: 1,
            reason: NatLogReason::Idle,
        };
        let mut q = LogQueue::new(2);
        assert!(q.push(e) && q.push(e));
        assert!(!q.push(e));
        assert_eq!(q.len(), 2);
        let mut n = 0;
        assert_eq!(q.drain(|_| n += 1), 2);
        assert_eq!(n, 2);
        assert!(q.has_room());
    }
}
