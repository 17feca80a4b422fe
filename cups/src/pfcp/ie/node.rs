//! Node-level IEs: Node ID, Cause, Recovery Time Stamp, F-SEID, F-TEID, the
//! UP/CP function feature bitmaps and User Plane IP Resource Information.

use alloc::string::String;
use alloc::vec::Vec;
use core::net::{Ipv4Addr, Ipv6Addr};

use super::ids;
use super::rules::Interface;
use super::tlv::{Cursor, Writer};
use crate::pfcp::Error;

/// Node ID (section 8.2.38): how a PFCP entity names itself.
///
/// ```text
///   Octet 5     Spare | Node ID Type (0 IPv4, 1 IPv6, 2 FQDN)
///   Octets 6-m  IPv4 (4) / IPv6 (16) / FQDN (DNS labels, RFC 1035 3.1)
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum NodeId {
    /// IPv4 address (type 0).
    Ipv4(Ipv4Addr),
    /// IPv6 address (type 1).
    Ipv6(Ipv6Addr),
    /// Fully qualified domain name in dotted form, e.g. "up1.vbng.example" (type 2).
    Fqdn(String),
}

impl Default for NodeId {
    /// `0.0.0.0`, a placeholder until the node's address is known.
    fn default() -> Self {
        NodeId::Ipv4(Ipv4Addr::UNSPECIFIED)
    }
}

impl NodeId {
    /// Writes the Node ID IE.
    pub fn emit(&self, w: &mut Writer) {
        w.ie(ids::NODE_ID, |w| match self {
            NodeId::Ipv4(a) => {
                w.u8(0);
                w.bytes(&a.octets());
            }
            NodeId::Ipv6(a) => {
                w.u8(1);
                w.bytes(&a.octets());
            }
            NodeId::Fqdn(name) => {
                w.u8(2);
                for label in name.split('.').filter(|l| !l.is_empty()) {
                    // Labels are at most 63 octets; longer ones are cut so the
                    // encoding stays a valid label sequence.
                    let label = &label.as_bytes()[..label.len().min(63)];
                    w.u8(label.len() as u8);
                    w.bytes(label);
                }
            }
        });
    }

    /// Parses a Node ID IE body.
    pub fn parse(data: &[u8]) -> Result<Self, Error> {
        let mut c = Cursor::new(ids::NODE_ID, data);
        match c.u8()? & 0x0f {
            0 => Ok(NodeId::Ipv4(c.ipv4()?)),
            1 => Ok(NodeId::Ipv6(c.ipv6()?)),
            2 => {
                let mut labels = c.rest();
                let mut name = String::new();
                while let Some((&len, rest)) = labels.split_first() {
                    if len == 0 && rest.is_empty() {
                        break; // optional root label
                    }
                    let len = usize::from(len);
                    if len == 0 || len > 63 || rest.len() < len {
                        return Err(c.invalid("FQDN label length out of range"));
                    }
                    let label = core::str::from_utf8(&rest[..len])
                        .map_err(|_| c.invalid("FQDN label is not UTF-8"))?;
                    if label.contains('.') {
                        return Err(c.invalid("FQDN label contains a dot"));
                    }
                    if !name.is_empty() {
                        name.push('.');
                    }
                    name.push_str(label);
                    labels = &rest[len..];
                }
                if name.is_empty() {
                    return Err(c.invalid("empty FQDN"));
                }
                Ok(NodeId::Fqdn(name))
            }
            _ => Err(c.invalid("unknown Node ID type (expected 0 IPv4, 1 IPv6 or 2 FQDN)")),
        }
    }
}

/// Cause (section 8.2.1, Table 8.2.1-1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Cause {
    /// 1: success.
    #[default]
    RequestAccepted,
    /// 2: more usage reports follow.
    MoreUsageReportToSend,
    /// 64
    RequestRejected,
    /// 65
    SessionContextNotFound,
    /// 66
    MandatoryIeMissing,
    /// 67
    ConditionalIeMissing,
    /// 68
    InvalidLength,
    /// 69
    MandatoryIeIncorrect,
    /// 70
    InvalidForwardingPolicy,
    /// 71
    InvalidFTeidAllocationOption,
    /// 72
    NoEstablishedPfcpAssociation,
    /// 73
    RuleCreationModificationFailure,
    /// 74
    PfcpEntityInCongestion,
    /// 75
    NoResourcesAvailable,
    /// 76
    ServiceNotSupported,
    /// 77
    SystemFailure,
    /// 78
    RedirectionRequested,
    /// 79
    AllDynamicAddressesAreOccupied,
    /// Any other value.
    Unknown(u8),
}

impl Cause {
    /// True for the acceptance causes (1 and 2; values 1..=63 mean success).
    pub fn is_accepted(self) -> bool {
        matches!(u8::from(self), 1..=63)
    }

    /// Writes the Cause IE.
    pub fn emit(self, w: &mut Writer) {
        w.ie(ids::CAUSE, |w| w.u8(self.into()));
    }

    /// Parses a Cause IE body.
    pub fn parse(data: &[u8]) -> Result<Self, Error> {
        Ok(Cursor::new(ids::CAUSE, data).u8()?.into())
    }
}

impl From<u8> for Cause {
    fn from(v: u8) -> Self {
        match v {
            1 => Self::RequestAccepted,
            2 => Self::MoreUsageReportToSend,
            64 => Self::RequestRejected,
            65 => Self::SessionContextNotFound,
            66 => Self::MandatoryIeMissing,
            67 => Self::ConditionalIeMissing,
            68 => Self::InvalidLength,
            69 => Self::MandatoryIeIncorrect,
            70 => Self::InvalidForwardingPolicy,
            71 => Self::InvalidFTeidAllocationOption,
            72 => Self::NoEstablishedPfcpAssociation,
            73 => Self::RuleCreationModificationFailure,
            74 => Self::PfcpEntityInCongestion,
            75 => Self::NoResourcesAvailable,
            76 => Self::ServiceNotSupported,
            77 => Self::SystemFailure,
            78 => Self::RedirectionRequested,
            79 => Self::AllDynamicAddressesAreOccupied,
            n => Self::Unknown(n),
        }
    }
}

impl From<Cause> for u8 {
    fn from(c: Cause) -> u8 {
        match c {
            Cause::RequestAccepted => 1,
            Cause::MoreUsageReportToSend => 2,
            Cause::RequestRejected => 64,
            Cause::SessionContextNotFound => 65,
            Cause::MandatoryIeMissing => 66,
            Cause::ConditionalIeMissing => 67,
            Cause::InvalidLength => 68,
            Cause::MandatoryIeIncorrect => 69,
            Cause::InvalidForwardingPolicy => 70,
            Cause::InvalidFTeidAllocationOption => 71,
            Cause::NoEstablishedPfcpAssociation => 72,
            Cause::RuleCreationModificationFailure => 73,
            Cause::PfcpEntityInCongestion => 74,
            Cause::NoResourcesAvailable => 75,
            Cause::ServiceNotSupported => 76,
            Cause::SystemFailure => 77,
            Cause::RedirectionRequested => 78,
            Cause::AllDynamicAddressesAreOccupied => 79,
            Cause::Unknown(n) => n,
        }
    }
}

/// Seconds between the NTP era 0 epoch (1900-01-01) and the Unix epoch.
pub const NTP_UNIX_OFFSET: u64 = 2_208_988_800;

/// Recovery Time Stamp (section 8.2.65): when the PFCP entity started, in NTP
/// seconds (since 1900-01-01, 32 bits, wrapping in 2036). A peer whose value
/// changes has restarted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct RecoveryTimeStamp(pub u32);

impl RecoveryTimeStamp {
    /// From seconds since the Unix epoch.
    pub fn from_unix_secs(secs: u64) -> Self {
        Self((secs.wrapping_add(NTP_UNIX_OFFSET) & 0xffff_ffff) as u32)
    }

    /// Writes the Recovery Time Stamp IE.
    pub fn emit(self, w: &mut Writer) {
        w.ie(ids::RECOVERY_TIME_STAMP, |w| w.u32(self.0));
    }

    /// Parses a Recovery Time Stamp IE body.
    pub fn parse(data: &[u8]) -> Result<Self, Error> {
        Ok(Self(Cursor::new(ids::RECOVERY_TIME_STAMP, data).u32()?))
    }
}

/// F-SEID (section 8.2.37): a session endpoint identifier and the address of
/// the node that allocated it.
///
/// ```text
///   Octet 5      Spare | V4 (bit 2) | V6 (bit 1)
///   Octets 6-13  SEID
///   then         IPv4 (4, if V4), IPv6 (16, if V6)
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct FSeid {
    /// SEID allocated by the sending node.
    pub seid: u64,
    /// IPv4 address of the node.
    pub ipv4: Option<Ipv4Addr>,
    /// IPv6 address of the node.
    pub ipv6: Option<Ipv6Addr>,
}

impl FSeid {
    /// Writes the F-SEID IE.
    pub fn emit(&self, w: &mut Writer) {
        w.ie(ids::F_SEID, |w| {
            w.u8(u8::from(self.ipv4.is_some()) << 1 | u8::from(self.ipv6.is_some()));
            w.u64(self.seid);
            if let Some(a) = self.ipv4 {
                w.bytes(&a.octets());
            }
            if let Some(a) = self.ipv6 {
                w.bytes(&a.octets());
            }
        });
    }

    /// Parses an F-SEID IE body.
    pub fn parse(data: &[u8]) -> Result<Self, Error> {
        let mut c = Cursor::new(ids::F_SEID, data);
        let flags = c.u8()?;
        let seid = c.u64()?;
        let ipv4 = if flags & 0x02 != 0 {
            Some(c.ipv4()?)
        } else {
            None
        };
        let ipv6 = if flags & 0x01 != 0 {
            Some(c.ipv6()?)
        } else {
            None
        };
        Ok(Self { seid, ipv4, ipv6 })
    }
}

/// F-TEID (section 8.2.3), as allocated by a user plane (CH = 0 only).
///
/// ```text
///   Octet 5    Spare | CHID | CH | V6 | V4
///   Octets 6-9 TEID, then IPv4 (4, if V4), IPv6 (16, if V6)
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct FTeid {
    /// Tunnel endpoint identifier.
    pub teid: u32,
    /// IPv4 tunnel endpoint address.
    pub ipv4: Option<Ipv4Addr>,
    /// IPv6 tunnel endpoint address.
    pub ipv6: Option<Ipv6Addr>,
}

impl FTeid {
    /// Writes the F-TEID IE.
    pub fn emit(&self, w: &mut Writer) {
        w.ie(ids::F_TEID, |w| {
            w.u8(u8::from(self.ipv6.is_some()) << 1 | u8::from(self.ipv4.is_some()));
            w.u32(self.teid);
            if let Some(a) = self.ipv4 {
                w.bytes(&a.octets());
            }
            if let Some(a) = self.ipv6 {
                w.bytes(&a.octets());
            }
        });
    }

    /// Parses an F-TEID IE body; CHOOSE (CH = 1) is rejected.
    pub fn parse(data: &[u8]) -> Result<Self, Error> {
        let mut c = Cursor::new(ids::F_TEID, data);
        let flags = c.u8()?;
        if flags & 0x04 != 0 {
            return Err(c.invalid("CHOOSE F-TEID (CH = 1) is not supported"));
        }
        let teid = c.u32()?;
        let ipv4 = if flags & 0x01 != 0 {
            Some(c.ipv4()?)
        } else {
            None
        };
        let ipv6 = if flags & 0x02 != 0 {
            Some(c.ipv6()?)
        } else {
            None
        };
        Ok(Self { teid, ipv4, ipv6 })
    }
}

/// UP Function Features (section 8.2.25): the feature bitmap octets as sent,
/// octet 5 first (e.g. `BUCP` = octet 5 bit 1, `FTUP` = octet 5 bit 5).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UpFunctionFeatures(pub Vec<u8>);

impl Default for UpFunctionFeatures {
    /// Two zero octets (no optional feature), the shortest valid encoding.
    fn default() -> Self {
        Self(alloc::vec![0, 0])
    }
}

impl UpFunctionFeatures {
    /// Whether bit `bit` (1..=8, as numbered in the spec) of octet `octet`
    /// (5 = first) is set.
    pub fn has(&self, octet: usize, bit: u8) -> bool {
        octet >= 5
            && (1..=8).contains(&bit)
            && self
                .0
                .get(octet - 5)
                .is_some_and(|o| o & (1 << (bit - 1)) != 0)
    }

    /// Writes the UP Function Features IE.
    pub fn emit(&self, w: &mut Writer) {
        w.ie(ids::UP_FUNCTION_FEATURES, |w| w.bytes(&self.0));
    }

    /// Parses an UP Function Features IE body (at least 2 octets).
    pub fn parse(data: &[u8]) -> Result<Self, Error> {
        let mut c = Cursor::new(ids::UP_FUNCTION_FEATURES, data);
        c.take(2)?;
        Ok(Self(data.to_vec()))
    }
}

/// CP Function Features (section 8.2.58): the feature bitmap octets as sent,
/// octet 5 first (e.g. `LOAD` = octet 5 bit 1, `OVRL` = bit 2).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CpFunctionFeatures(pub Vec<u8>);

impl Default for CpFunctionFeatures {
    /// One zero octet (no optional feature).
    fn default() -> Self {
        Self(alloc::vec![0])
    }
}

impl CpFunctionFeatures {
    /// Writes the CP Function Features IE.
    pub fn emit(&self, w: &mut Writer) {
        w.ie(ids::CP_FUNCTION_FEATURES, |w| w.bytes(&self.0));
    }

    /// Parses a CP Function Features IE body (at least 1 octet).
    pub fn parse(data: &[u8]) -> Result<Self, Error> {
        let mut c = Cursor::new(ids::CP_FUNCTION_FEATURES, data);
        c.take(1)?;
        Ok(Self(data.to_vec()))
    }
}

/// User Plane IP Resource Information (section 8.2.82): an address the user
/// plane terminates GTP-U on (vbng: the control-packet redirect tunnel).
///
/// ```text
///   Octet 5   Spare | ASSOSI | ASSONI | TEIDRI (3 bits) | V6 | V4
///   Octet 6   TEID Range (if TEIDRI != 0)
///   then      IPv4 (4), IPv6 (16), Network Instance (if ASSONI),
///             Spare | Source Interface (1, if ASSOSI, last octet)
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct UserPlaneIpResourceInformation {
    /// Number of TEID bits (0..=7) used for the TEID range; 0 = no range.
    pub teid_range_bits: u8,
    /// TEID range value (meaningful when `teid_range_bits` > 0).
    pub teid_range: u8,
    /// IPv4 address.
    pub ipv4: Option<Ipv4Addr>,
    /// IPv6 address.
    pub ipv6: Option<Ipv6Addr>,
    /// Associated network instance.
    pub network_instance: Option<String>,
    /// Associated source interface.
    pub source_interface: Option<Interface>,
}

impl UserPlaneIpResourceInformation {
    /// Writes the IE.
    pub fn emit(&self, w: &mut Writer) {
        w.ie(ids::USER_PLANE_IP_RESOURCE_INFORMATION, |w| {
            let bits = self.teid_range_bits & 0x07;
            w.u8(u8::from(self.source_interface.is_some()) << 6
                | u8::from(self.network_instance.is_some()) << 5
                | bits << 2
                | u8::from(self.ipv6.is_some()) << 1
                | u8::from(self.ipv4.is_some()));
            if bits != 0 {
                w.u8(self.teid_range);
            }
            if let Some(a) = self.ipv4 {
                w.bytes(&a.octets());
            }
            if let Some(a) = self.ipv6 {
                w.bytes(&a.octets());
            }
            if let Some(ni) = &self.network_instance {
                w.bytes(ni.as_bytes());
            }
            if let Some(si) = self.source_interface {
                w.u8(u8::from(si) & 0x0f);
            }
        });
    }

    /// Parses the IE body.
    pub fn parse(data: &[u8]) -> Result<Self, Error> {
        let mut c = Cursor::new(ids::USER_PLANE_IP_RESOURCE_INFORMATION, data);
        let flags = c.u8()?;
        let teid_range_bits = (flags >> 2) & 0x07;
        let teid_range = if teid_range_bits != 0 { c.u8()? } else { 0 };
        let ipv4 = if flags & 0x01 != 0 {
            Some(c.ipv4()?)
        } else {
            None
        };
        let ipv6 = if flags & 0x02 != 0 {
            Some(c.ipv6()?)
        } else {
            None
        };
        let has_si = flags & 0x40 != 0;
        let network_instance = if flags & 0x20 != 0 {
            let n = c.remaining().saturating_sub(usize::from(has_si));
            let raw = c.take(n)?;
            let s = core::str::from_utf8(raw)
                .map_err(|_| c.invalid("network instance is not UTF-8"))?;
            Some(String::from(s))
        } else {
            None
        };
        let source_interface = if has_si {
            Some(Interface::from(c.u8()? & 0x0f))
        } else {
            None
        };
        Ok(Self {
            teid_range_bits,
            teid_range,
            ipv4,
            ipv6,
            network_instance,
            source_interface,
        })
    }
}
