//! Usage reporting IEs: Usage Report (in Session Modification Response,
//! Session Deletion Response and Session Report Request), Volume Measurement,
//! Usage Report Trigger and Report Type.

use super::ids;
use super::rules::flags;
use super::tlv::{Ctx, Cursor, IeIter, Writer, required};
use crate::pfcp::Error;

flags! {
    /// Usage Report Trigger (8.2.41): octet 5 in bits 0-7, octet 6 in 8-15,
    /// octet 7 in 16-23. Always encoded as 3 octets.
    ///
    /// ```text
    ///   Octet 5  IMMER | DROTH | STOPT | START | QUHTI | TIMTH | VOLTH | PERIO
    ///   Octet 6  EVETH | MACAR | ENVCL | MONIT | TERMR | LIUSA | TIMQU | VOLQU
    ///   Octet 7  Spare | Spare | UPINT | EMRRE | QUVTI | IPMJL | TEBUR | EVEQU
    /// ```
    /// (bit 8 first; Wireshark's `dissect_pfcp_usage_report_trigger` agrees:
    /// IMMER is mask 0x80 of octet 5).
    UsageReportTrigger(u32) {
        /// Periodic reporting.
        PERIO = 0x0001;
        /// Volume threshold reached.
        VOLTH = 0x0002;
        /// Time threshold reached.
        TIMTH = 0x0004;
        /// Quota holding time.
        QUHTI = 0x0008;
        /// Start of traffic.
        START = 0x0010;
        /// Stop of traffic.
        STOPT = 0x0020;
        /// Dropped DL traffic threshold.
        DROTH = 0x0040;
        /// Immediate report: the answer to a Query URR or to QAURR (octet 5, bit 8).
        IMMER = 0x0080;
        /// Volume quota exhausted.
        VOLQU = 0x0100;
        /// Time quota exhausted.
        TIMQU = 0x0200;
        /// Linked usage reporting.
        LIUSA = 0x0400;
        /// Termination report (rule or session removed).
        TERMR = 0x0800;
        /// Monitoring time.
        MONIT = 0x1000;
        /// Envelope closure.
        ENVCL = 0x2000;
        /// MAC addresses reporting.
        MACAR = 0x4000;
        /// Event threshold.
        EVETH = 0x8000;
        /// Event quota.
        EVEQU = 0x01_0000;
        /// Termination by UP function.
        TEBUR = 0x02_0000;
        /// IP multicast join/leave.
        IPMJL = 0x04_0000;
        /// Quota validity time.
        QUVTI = 0x08_0000;
        /// End marker reception.
        EMRRE = 0x10_0000;
        /// User plane inactivity timer.
        UPINT = 0x20_0000;
    }
}

flags! {
    /// Report Type (8.2.21), one octet.
    ReportType(u8) {
        /// Downlink data report.
        DLDR = 0x01;
        /// Usage report.
        USAR = 0x02;
        /// Error indication report.
        ERIR = 0x04;
        /// User plane inactivity report.
        UPIR = 0x08;
        /// TSC management information report.
        TMIR = 0x10;
        /// Session report.
        SESR = 0x20;
        /// UP initiated session request.
        UISR = 0x40;
    }
}

impl ReportType {
    /// Writes the IE.
    pub fn emit(self, w: &mut Writer) {
        w.ie(ids::REPORT_TYPE, |w| w.u8(self.0));
    }

    /// Parses the IE body.
    pub fn parse(data: &[u8]) -> Result<Self, Error> {
        Ok(Self(Cursor::new(ids::REPORT_TYPE, data).u8()?))
    }
}

flags! {
    /// PFCPSMReq-Flags (8.2.31), one octet in a Session Modification Request.
    ///
    /// ```text
    ///   Octet 5  Spare | Spare | Spare | Spare | Spare | QAURR | SNDEM | DROBU
    /// ```
    /// (bit 8 first; QAURR is mask 0x04, as Wireshark's `pfcp.smreq_flags.qaurr`).
    PfcpSmReqFlags(u8) {
        /// Drop buffered packets.
        DROBU = 0x01;
        /// Send end marker packets.
        SNDEM = 0x02;
        /// Query all URRs: the user plane answers with an immediate usage report
        /// for every URR of the session.
        QAURR = 0x04;
    }
}

impl PfcpSmReqFlags {
    /// Writes the IE.
    pub fn emit(self, w: &mut Writer) {
        w.ie(ids::PFCPSMREQ_FLAGS, |w| w.u8(self.0));
    }

    /// Parses the IE body (octets after the first are extensions and ignored).
    pub fn parse(data: &[u8]) -> Result<Self, Error> {
        Ok(Self(Cursor::new(ids::PFCPSMREQ_FLAGS, data).u8()?))
    }
}

/// Volume Measurement (8.2.44): octets and packets since the rule was created
/// (or since the last report). vbng always sends all six counters.
///
/// ```text
///   Octet 5  Spare | DLNOP | ULNOP | TONOP | DLVOL | ULVOL | TOVOL
///   then     total, uplink, downlink volume (8 each), total, uplink,
///            downlink packets (8 each), each present if its flag is set
/// ```
/// A counter whose flag is clear parses as 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct VolumeMeasurement {
    /// Total octets (uplink + downlink).
    pub total_bytes: u64,
    /// Uplink octets.
    pub ul_bytes: u64,
    /// Downlink octets.
    pub dl_bytes: u64,
    /// Total packets.
    pub total_packets: u64,
    /// Uplink packets.
    pub ul_packets: u64,
    /// Downlink packets.
    pub dl_packets: u64,
}

impl VolumeMeasurement {
    /// Builds a measurement from uplink and downlink counters (totals are sums).
    pub fn from_counters(ul_packets: u64, ul_bytes: u64, dl_packets: u64, dl_bytes: u64) -> Self {
        Self {
            total_bytes: ul_bytes.wrapping_add(dl_bytes),
            ul_bytes,
            dl_bytes,
            total_packets: ul_packets.wrapping_add(dl_packets),
            ul_packets,
            dl_packets,
        }
    }

    /// Writes the IE.
    pub fn emit(&self, w: &mut Writer) {
        w.ie(ids::VOLUME_MEASUREMENT, |w| {
            w.u8(0x3f);
            for v in [
                self.total_bytes,
                self.ul_bytes,
                self.dl_bytes,
                self.total_packets,
                self.ul_packets,
                self.dl_packets,
            ] {
                w.u64(v);
            }
        });
    }

    /// Parses the IE body.
    pub fn parse(data: &[u8]) -> Result<Self, Error> {
        let mut c = Cursor::new(ids::VOLUME_MEASUREMENT, data);
        let flags = c.u8()?;
        let mut v = [0u64; 6];
        for (i, slot) in v.iter_mut().enumerate() {
            if flags & (1 << i) != 0 {
                *slot = c.u64()?;
            }
        }
        Ok(Self {
            total_bytes: v[0],
            ul_bytes: v[1],
            dl_bytes: v[2],
            total_packets: v[3],
            ul_packets: v[4],
            dl_packets: v[5],
        })
    }
}

/// Usage Report (grouped; Tables 7.5.5.2-1, 7.5.7.2-1, 7.5.8.3-1). The same
/// content is sent as IE 78, 79 or 80 depending on the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct UsageReport {
    /// URR the report is for.
    pub urr_id: u32,
    /// UR-SEQN: report sequence number per URR, starting at 0.
    pub ur_seqn: u32,
    /// Why the report was sent.
    pub trigger: UsageReportTrigger,
    /// Counted traffic.
    pub volume: Option<VolumeMeasurement>,
    /// Start of the measurement, NTP seconds.
    pub start_time: Option<u32>,
    /// End of the measurement, NTP seconds.
    pub end_time: Option<u32>,
}

impl UsageReport {
    /// Writes the grouped IE as type `ie_type` (78, 79 or 80).
    pub fn emit(&self, w: &mut Writer, ie_type: u16) {
        w.ie(ie_type, |w| {
            w.ie(ids::URR_ID, |w| w.u32(self.urr_id));
            w.ie(ids::UR_SEQN, |w| w.u32(self.ur_seqn));
            w.ie(ids::USAGE_REPORT_TRIGGER, |w| {
                w.u8(self.trigger.0 as u8);
                w.u8((self.trigger.0 >> 8) as u8);
                w.u8((self.trigger.0 >> 16) as u8);
            });
            if let Some(t) = self.start_time {
                w.ie(ids::START_TIME, |w| w.u32(t));
            }
            if let Some(t) = self.end_time {
                w.ie(ids::END_TIME, |w| w.u32(t));
            }
            if let Some(v) = &self.volume {
                v.emit(w);
            }
        });
    }

    pub(crate) fn parse(data: &[u8], ctx: &mut Ctx) -> Result<Self, Error> {
        let (mut urr_id, mut seqn, mut trigger) = (None, None, None);
        let mut r = Self::default();
        for ie in IeIter::new(data) {
            let ie = ie?;
            match (ie.enterprise_id, ie.ie_type) {
                (None, ids::URR_ID) => urr_id = Some(Cursor::new(ids::URR_ID, ie.data).u32()?),
                (None, ids::UR_SEQN) => seqn = Some(Cursor::new(ids::UR_SEQN, ie.data).u32()?),
                (None, ids::USAGE_REPORT_TRIGGER) => {
                    let mut c = Cursor::new(ids::USAGE_REPORT_TRIGGER, ie.data);
                    let mut bits = u32::from(c.u8()?);
                    for shift in [8, 16] {
                        if c.remaining() > 0 {
                            bits |= u32::from(c.u8()?) << shift;
                        }
                    }
                    trigger = Some(UsageReportTrigger(bits));
                }
                (None, ids::START_TIME) => {
                    r.start_time = Some(Cursor::new(ids::START_TIME, ie.data).u32()?);
                }
                (None, ids::END_TIME) => {
                    r.end_time = Some(Cursor::new(ids::END_TIME, ie.data).u32()?);
                }
                (None, ids::VOLUME_MEASUREMENT) => {
                    r.volume = Some(VolumeMeasurement::parse(ie.data)?);
                }
                _ => ctx.skipped += 1,
            }
        }
        r.urr_id = required(urr_id, ids::URR_ID, "URR ID", "Usage Report")?;
        r.ur_seqn = required(seqn, ids::UR_SEQN, "UR-SEQN", "Usage Report")?;
        r.trigger = required(
            trigger,
            ids::USAGE_REPORT_TRIGGER,
            "Usage Report Trigger",
            "Usage Report",
        )?;
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volume_measurement_golden() {
        let v = VolumeMeasurement::from_counters(2, 200, 3, 300);
        let mut w = Writer::new();
        v.emit(&mut w);
        let b = w.finish().unwrap();
        assert_eq!(&b[..5], [0, 66, 0, 49, 0x3f]);
        assert_eq!(&b[5..13], 500u64.to_be_bytes());
        assert_eq!(&b[b.len() - 8..], 3u64.to_be_bytes());
        let ie = IeIter::new(&b).next().unwrap().unwrap();
        assert_eq!(VolumeMeasurement::parse(ie.data), Ok(v));
        // Only DLVOL present: the rest parses as 0.
        let only_dl = [0x04, 0, 0, 0, 0, 0, 0, 1, 0];
        assert_eq!(
            VolumeMeasurement::parse(&only_dl),
            Ok(VolumeMeasurement {
                dl_bytes: 256,
                ..Default::default()
            })
        );
    }
}
