//! Session rule IEs: PDR (packet detection), FAR (forwarding action), URR
//! (usage reporting) and QER (QoS enforcement), with the IEs they group. The
//! PDI and its IEs live in [`super::pdi`] and are re-exported here.

use alloc::string::String;
use alloc::vec::Vec;
use core::net::{Ipv4Addr, Ipv6Addr};

use super::bbf::{self, BBF_ENTERPRISE_ID, BbfOuterHeaderCreation, BbfOuterHeaderRemoval};
use super::ids;
use super::node::FTeid;
pub use super::pdi::{
    DestinationInterface, EthernetPacketFilter, FramedIpv6Route, Interface, MacAddress, Pdi,
    SourceInterface, UeIpAddress,
};
use super::pdi::{
    emit_network_instance, emit_u16, emit_u32, parse_network_instance, parse_u16, parse_u32,
};
use super::tlv::{Ctx, Cursor, IeIter, Writer, required};
use crate::pfcp::Error;

/// Defines a bitmap newtype with named flags, `contains`, `|` and `bits`.
macro_rules! flags {
    ($(#[$m:meta])* $name:ident($ty:ty) { $($(#[$fm:meta])* $flag:ident = $v:expr;)* }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
        pub struct $name(pub $ty);

        impl $name {
            $($(#[$fm])* pub const $flag: Self = Self($v);)*

            /// No flag set.
            pub const fn empty() -> Self {
                Self(0)
            }

            /// The raw bitmap.
            pub const fn bits(self) -> $ty {
                self.0
            }

            /// True when every flag of `other` is set in `self`.
            pub const fn contains(self, other: Self) -> bool {
                self.0 & other.0 == other.0
            }
        }

        impl core::ops::BitOr for $name {
            type Output = Self;
            fn bitor(self, rhs: Self) -> Self {
                Self(self.0 | rhs.0)
            }
        }

        impl core::ops::BitOrAssign for $name {
            fn bitor_assign(&mut self, rhs: Self) {
                self.0 |= rhs.0;
            }
        }
    };
}
pub(crate) use flags;

/// Outer Header Removal (8.2.64).
///
/// ```text
///   Octet 5  Outer Header Removal Description (0 GTP-U/UDP/IPv4, 1 GTP-U/UDP/IPv6,
///            2 UDP/IPv4, 3 UDP/IPv6, 4 IPv4, 5 IPv6, 6 GTP-U/UDP/IP, 7 VLAN S-TAG,
///            8 S-TAG and C-TAG)
///   Octet 6  GTP-U Extension Header Deletion (optional)
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct OuterHeaderRemoval {
    /// Outer Header Removal Description.
    pub description: u8,
    /// GTP-U Extension Header Deletion octet.
    pub ext_header_deletion: Option<u8>,
}

impl OuterHeaderRemoval {
    /// Removes S-TAG and C-TAG (description 8): strips subscriber VLAN tags.
    pub const S_TAG_AND_C_TAG: Self = Self {
        description: 8,
        ext_header_deletion: None,
    };

    /// Writes the IE.
    pub fn emit(&self, w: &mut Writer) {
        w.ie(ids::OUTER_HEADER_REMOVAL, |w| {
            w.u8(self.description);
            if let Some(x) = self.ext_header_deletion {
                w.u8(x);
            }
        });
    }

    /// Parses the IE body.
    pub fn parse(data: &[u8]) -> Result<Self, Error> {
        let mut c = Cursor::new(ids::OUTER_HEADER_REMOVAL, data);
        let description = c.u8()?;
        let ext_header_deletion = if c.remaining() > 0 {
            Some(c.u8()?)
        } else {
            None
        };
        Ok(Self {
            description,
            ext_header_deletion,
        })
    }
}

/// Create PDR (grouped, Table 7.5.2.2-1).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct CreatePdr {
    /// PDR ID (rule ID, 16 bits).
    pub pdr_id: u16,
    /// Precedence: lower value wins.
    pub precedence: u32,
    /// What to match.
    pub pdi: Pdi,
    /// Outer header to strip before forwarding.
    pub outer_header_removal: Option<OuterHeaderRemoval>,
    /// BBF TR-459 Outer Header Removal (vendor IE 32771): access-side headers
    /// to strip (PPP/PPPoE/Ethernet for a PPPoE subscriber's uplink).
    pub bbf_outer_header_removal: Option<BbfOuterHeaderRemoval>,
    /// FAR applied to matched packets.
    pub far_id: Option<u32>,
    /// URRs counting matched packets.
    pub urr_ids: Vec<u32>,
    /// QERs applied to matched packets.
    pub qer_ids: Vec<u32>,
    /// Names of predefined rules the user plane applies to matched packets
    /// (one Activate Predefined Rules IE each; vbng: the subscriber's ACL).
    pub activate_predefined_rules: Vec<String>,
}

impl CreatePdr {
    /// Writes the grouped IE.
    pub fn emit(&self, w: &mut Writer) {
        w.ie(ids::CREATE_PDR, |w| {
            emit_u16(w, ids::PDR_ID, self.pdr_id);
            emit_u32(w, ids::PRECEDENCE, self.precedence);
            self.pdi.emit(w);
            if let Some(ohr) = &self.outer_header_removal {
                ohr.emit(w);
            }
            if let Some(ohr) = self.bbf_outer_header_removal {
                ohr.emit(w);
            }
            if let Some(id) = self.far_id {
                emit_u32(w, ids::FAR_ID, id);
            }
            for &id in &self.urr_ids {
                emit_u32(w, ids::URR_ID, id);
            }
            for &id in &self.qer_ids {
                emit_u32(w, ids::QER_ID, id);
            }
            emit_predefined_rules(
                w,
                ids::ACTIVATE_PREDEFINED_RULES,
                &self.activate_predefined_rules,
            );
        });
    }

    pub(crate) fn parse(data: &[u8], ctx: &mut Ctx) -> Result<Self, Error> {
        let (mut pdr_id, mut precedence, mut pdi) = (None, None, None);
        let mut pdr = Self::default();
        for ie in IeIter::new(data) {
            let ie = ie?;
            match (ie.enterprise_id, ie.ie_type) {
                (None, ids::PDR_ID) => pdr_id = Some(parse_u16(ie.data, ids::PDR_ID)?),
                (None, ids::PRECEDENCE) => precedence = Some(parse_u32(ie.data, ids::PRECEDENCE)?),
                (None, ids::PDI) => pdi = Some(Pdi::parse(ie.data, ctx)?),
                (None, ids::OUTER_HEADER_REMOVAL) => {
                    pdr.outer_header_removal = Some(OuterHeaderRemoval::parse(ie.data)?);
                }
                (Some(BBF_ENTERPRISE_ID), ids::bbf::OUTER_HEADER_REMOVAL) => {
                    pdr.bbf_outer_header_removal = Some(BbfOuterHeaderRemoval::parse(ie.data)?);
                }
                (None, ids::FAR_ID) => pdr.far_id = Some(parse_u32(ie.data, ids::FAR_ID)?),
                (None, ids::URR_ID) => pdr.urr_ids.push(parse_u32(ie.data, ids::URR_ID)?),
                (None, ids::QER_ID) => pdr.qer_ids.push(parse_u32(ie.data, ids::QER_ID)?),
                (None, ids::ACTIVATE_PREDEFINED_RULES) => {
                    pdr.activate_predefined_rules
                        .push(parse_predefined_rule_name(
                            ie.data,
                            ids::ACTIVATE_PREDEFINED_RULES,
                        )?)
                }
                _ => ctx.skipped += 1,
            }
        }
        pdr.pdr_id = required(pdr_id, ids::PDR_ID, "PDR ID", "Create PDR")?;
        pdr.precedence = required(precedence, ids::PRECEDENCE, "Precedence", "Create PDR")?;
        pdr.pdi = required(pdi, ids::PDI, "PDI", "Create PDR")?;
        Ok(pdr)
    }
}

/// Update PDR (grouped, Table 7.5.4.2-1): vbng changes only which predefined
/// rules apply to a PDR; the other Update PDR IEs are skipped as unmodelled.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct UpdatePdr {
    /// PDR to change.
    pub pdr_id: u16,
    /// Predefined rules to start applying (one Activate Predefined Rules IE each).
    pub activate_predefined_rules: Vec<String>,
    /// Predefined rules to stop applying (one Deactivate Predefined Rules IE each).
    pub deactivate_predefined_rules: Vec<String>,
}

impl UpdatePdr {
    /// Writes the grouped IE.
    pub fn emit(&self, w: &mut Writer) {
        w.ie(ids::UPDATE_PDR, |w| {
            emit_u16(w, ids::PDR_ID, self.pdr_id);
            emit_predefined_rules(
                w,
                ids::ACTIVATE_PREDEFINED_RULES,
                &self.activate_predefined_rules,
            );
            emit_predefined_rules(
                w,
                ids::DEACTIVATE_PREDEFINED_RULES,
                &self.deactivate_predefined_rules,
            );
        });
    }

    pub(crate) fn parse(data: &[u8], ctx: &mut Ctx) -> Result<Self, Error> {
        let mut pdr_id = None;
        let mut u = Self::default();
        for ie in IeIter::new(data) {
            let ie = ie?;
            match (ie.enterprise_id, ie.ie_type) {
                (None, ids::PDR_ID) => pdr_id = Some(parse_u16(ie.data, ids::PDR_ID)?),
                (None, ids::ACTIVATE_PREDEFINED_RULES) => u.activate_predefined_rules.push(
                    parse_predefined_rule_name(ie.data, ids::ACTIVATE_PREDEFINED_RULES)?,
                ),
                (None, ids::DEACTIVATE_PREDEFINED_RULES) => {
                    u.deactivate_predefined_rules
                        .push(parse_predefined_rule_name(
                            ie.data,
                            ids::DEACTIVATE_PREDEFINED_RULES,
                        )?)
                }
                _ => ctx.skipped += 1,
            }
        }
        u.pdr_id = required(pdr_id, ids::PDR_ID, "PDR ID", "Update PDR")?;
        Ok(u)
    }
}

/// Writes one (De)Activate Predefined Rules IE (8.2.72/8.2.73) per name: the
/// IE body is the name's octets, nothing else.
fn emit_predefined_rules(w: &mut Writer, ie_type: u16, names: &[String]) {
    for name in names {
        w.ie(ie_type, |w| w.bytes(name.as_bytes()));
    }
}

/// The predefined rule name in an (De)Activate Predefined Rules IE body.
/// TS 29.244 types it as an octet string; vbng names ACLs in text, so a name
/// that is not UTF-8 cannot name anything and is rejected.
fn parse_predefined_rule_name(data: &[u8], ie_type: u16) -> Result<String, Error> {
    core::str::from_utf8(data)
        .map(String::from)
        .map_err(|_| Error::InvalidIe {
            ie: ie_type,
            reason: "predefined rule name is not UTF-8",
        })
}

/// Created PDR (grouped, Table 7.5.3.2-1): what the user plane allocated for a PDR.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct CreatedPdr {
    /// PDR ID.
    pub pdr_id: u16,
    /// F-TEID the user plane allocated.
    pub local_f_teid: Option<FTeid>,
}

impl CreatedPdr {
    /// Writes the grouped IE.
    pub fn emit(&self, w: &mut Writer) {
        w.ie(ids::CREATED_PDR, |w| {
            emit_u16(w, ids::PDR_ID, self.pdr_id);
            if let Some(t) = &self.local_f_teid {
                t.emit(w);
            }
        });
    }

    pub(crate) fn parse(data: &[u8], ctx: &mut Ctx) -> Result<Self, Error> {
        let mut pdr_id = None;
        let mut local_f_teid = None;
        for ie in IeIter::new(data) {
            let ie = ie?;
            match (ie.enterprise_id, ie.ie_type) {
                (None, ids::PDR_ID) => pdr_id = Some(parse_u16(ie.data, ids::PDR_ID)?),
                (None, ids::F_TEID) => local_f_teid = Some(FTeid::parse(ie.data)?),
                _ => ctx.skipped += 1,
            }
        }
        Ok(Self {
            pdr_id: required(pdr_id, ids::PDR_ID, "PDR ID", "Created PDR")?,
            local_f_teid,
        })
    }
}

flags! {
    /// Apply Action (8.2.26): octet 5 in bits 0-7, octet 6 in bits 8-15.
    ApplyAction(u16) {
        /// Drop the packets.
        DROP = 0x0001;
        /// Forward the packets.
        FORW = 0x0002;
        /// Buffer the packets.
        BUFF = 0x0004;
        /// Notify the CP function about the first buffered packet.
        NOCP = 0x0008;
        /// Duplicate the packets.
        DUPL = 0x0010;
        /// IP multicast accept.
        IPMA = 0x0020;
        /// IP multicast deny.
        IPMD = 0x0040;
        /// Duplicate for redundant transmission.
        DFRT = 0x0080;
        /// Eliminate duplicate packets.
        EDRT = 0x0100;
        /// Buffered downlink packet notification.
        BDPN = 0x0200;
        /// Discarded downlink packet notification.
        DDPN = 0x0400;
    }
}

impl ApplyAction {
    /// Writes the IE: one octet, two when an octet-6 flag is set.
    pub fn emit(self, w: &mut Writer) {
        w.ie(ids::APPLY_ACTION, |w| {
            w.u8(self.0 as u8);
            if self.0 >> 8 != 0 {
                w.u8((self.0 >> 8) as u8);
            }
        });
    }

    /// Parses the IE body.
    pub fn parse(data: &[u8]) -> Result<Self, Error> {
        let mut c = Cursor::new(ids::APPLY_ACTION, data);
        let lo = c.u8()?;
        let hi = if c.remaining() > 0 { c.u8()? } else { 0 };
        Ok(Self(u16::from(hi) << 8 | u16::from(lo)))
    }
}

/// Outer Header Creation (8.2.56).
///
/// ```text
///   Octets 5-6  Description bitmap (octet 5: GTP-U/UDP/IPv4 bit 1, GTP-U/UDP/IPv6 2,
///               UDP/IPv4 3, UDP/IPv6 4, IPv4 5, IPv6 6, C-TAG 7, S-TAG 8; octet 6: N19, N6)
///   then        TEID (4, GTP-U), IPv4 (4), IPv6 (16), Port (2, UDP), C-TAG (3), S-TAG (3)
/// ```
/// Fields are written according to `description`; an absent field that the
/// description requires is written as zeros.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct OuterHeaderCreation {
    /// Description bitmap, octet 5 in the high byte (e.g. `0x0100` = GTP-U/UDP/IPv4).
    pub description: u16,
    /// GTP-U TEID.
    pub teid: Option<u32>,
    /// IPv4 destination.
    pub ipv4: Option<Ipv4Addr>,
    /// IPv6 destination.
    pub ipv6: Option<Ipv6Addr>,
    /// UDP port.
    pub port: Option<u16>,
    /// C-TAG octets as in the C-TAG IE (flags, PCP/DEI/VID, VID).
    pub c_tag: Option<[u8; 3]>,
    /// S-TAG octets as in the S-TAG IE.
    pub s_tag: Option<[u8; 3]>,
}

impl OuterHeaderCreation {
    /// GTP-U/UDP/IPv4.
    pub const GTPU_UDP_IPV4: u16 = 0x0100;
    /// GTP-U/UDP/IPv6.
    pub const GTPU_UDP_IPV6: u16 = 0x0200;
    /// UDP/IPv4.
    pub const UDP_IPV4: u16 = 0x0400;
    /// UDP/IPv6.
    pub const UDP_IPV6: u16 = 0x0800;
    /// IPv4.
    pub const IPV4: u16 = 0x1000;
    /// IPv6.
    pub const IPV6: u16 = 0x2000;
    /// C-TAG.
    pub const C_TAG: u16 = 0x4000;
    /// S-TAG.
    pub const S_TAG: u16 = 0x8000;

    /// A GTP-U/UDP/IPv4 tunnel to `addr` with `teid`.
    pub fn gtpu_ipv4(teid: u32, addr: Ipv4Addr) -> Self {
        Self {
            description: Self::GTPU_UDP_IPV4,
            teid: Some(teid),
            ipv4: Some(addr),
            ..Self::default()
        }
    }

    fn has(&self, bits: u16) -> bool {
        self.description & bits != 0
    }

    /// Writes the IE.
    pub fn emit(&self, w: &mut Writer) {
        w.ie(ids::OUTER_HEADER_CREATION, |w| {
            w.u16(self.description);
            if self.has(Self::GTPU_UDP_IPV4 | Self::GTPU_UDP_IPV6) {
                w.u32(self.teid.unwrap_or(0));
            }
            if self.has(Self::GTPU_UDP_IPV4 | Self::UDP_IPV4 | Self::IPV4) {
                w.bytes(&self.ipv4.unwrap_or(Ipv4Addr::UNSPECIFIED).octets());
            }
            if self.has(Self::GTPU_UDP_IPV6 | Self::UDP_IPV6 | Self::IPV6) {
                w.bytes(&self.ipv6.unwrap_or(Ipv6Addr::UNSPECIFIED).octets());
            }
            if self.has(Self::UDP_IPV4 | Self::UDP_IPV6) {
                w.u16(self.port.unwrap_or(0));
            }
            if self.has(Self::C_TAG) {
                w.bytes(&self.c_tag.unwrap_or([0; 3]));
            }
            if self.has(Self::S_TAG) {
                w.bytes(&self.s_tag.unwrap_or([0; 3]));
            }
        });
    }

    /// Parses the IE body.
    pub fn parse(data: &[u8]) -> Result<Self, Error> {
        let mut c = Cursor::new(ids::OUTER_HEADER_CREATION, data);
        let mut o = Self {
            description: c.u16()?,
            ..Self::default()
        };
        if o.has(Self::GTPU_UDP_IPV4 | Self::GTPU_UDP_IPV6) {
            o.teid = Some(c.u32()?);
        }
        if o.has(Self::GTPU_UDP_IPV4 | Self::UDP_IPV4 | Self::IPV4) {
            o.ipv4 = Some(c.ipv4()?);
        }
        if o.has(Self::GTPU_UDP_IPV6 | Self::UDP_IPV6 | Self::IPV6) {
            o.ipv6 = Some(c.ipv6()?);
        }
        if o.has(Self::UDP_IPV4 | Self::UDP_IPV6) {
            o.port = Some(c.u16()?);
        }
        if o.has(Self::C_TAG) {
            o.c_tag = Some(c.array()?);
        }
        if o.has(Self::S_TAG) {
            o.s_tag = Some(c.array()?);
        }
        Ok(o)
    }
}

/// Forwarding Parameters (grouped, Table 7.5.2.3-2), also used for Update
/// Forwarding Parameters (Table 7.5.4.3-2) inside [`UpdateFar`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct ForwardingParameters {
    /// Where to send the packets (mandatory in Create FAR).
    pub destination_interface: DestinationInterface,
    /// Network instance of the destination.
    pub network_instance: Option<String>,
    /// Outer header to add.
    pub outer_header_creation: Option<OuterHeaderCreation>,
    /// BBF TR-459 Outer Header Creation (vendor IE 32770): the access-side
    /// encapsulation to add (PPP/PPPoE for a PPPoE subscriber's downlink).
    pub bbf_outer_header_creation: Option<BbfOuterHeaderCreation>,
    /// BBF TR-459 MTU (vendor IE 32776): the largest IPv4 packet the
    /// destination link carries (a PPPoE session's negotiated MTU).
    pub bbf_mtu: Option<u16>,
}

impl ForwardingParameters {
    fn emit_as(&self, w: &mut Writer, ie: u16) {
        w.ie(ie, |w| {
            self.destination_interface
                .emit(w, ids::DESTINATION_INTERFACE);
            if let Some(ni) = &self.network_instance {
                emit_network_instance(w, ni);
            }
            if let Some(ohc) = &self.outer_header_creation {
                ohc.emit(w);
            }
            if let Some(ohc) = &self.bbf_outer_header_creation {
                ohc.emit(w);
            }
            if let Some(mtu) = self.bbf_mtu {
                bbf::emit_mtu(w, mtu);
            }
        });
    }

    /// Writes a Forwarding Parameters IE.
    pub fn emit(&self, w: &mut Writer) {
        self.emit_as(w, ids::FORWARDING_PARAMETERS);
    }

    fn parse_as(data: &[u8], ctx: &mut Ctx, context: &'static str) -> Result<Self, Error> {
        let mut di = None;
        let mut fp = Self::default();
        for ie in IeIter::new(data) {
            let ie = ie?;
            match (ie.enterprise_id, ie.ie_type) {
                (None, ids::DESTINATION_INTERFACE) => {
                    di = Some(Interface::parse(ie.data, ids::DESTINATION_INTERFACE)?);
                }
                (None, ids::NETWORK_INSTANCE) => {
                    fp.network_instance = Some(parse_network_instance(ie.data)?);
                }
                (None, ids::OUTER_HEADER_CREATION) => {
                    fp.outer_header_creation = Some(OuterHeaderCreation::parse(ie.data)?);
                }
                (Some(BBF_ENTERPRISE_ID), ids::bbf::OUTER_HEADER_CREATION) => {
                    fp.bbf_outer_header_creation = Some(BbfOuterHeaderCreation::parse(ie.data)?);
                }
                (Some(BBF_ENTERPRISE_ID), ids::bbf::MTU) => {
                    fp.bbf_mtu = Some(bbf::parse_mtu(ie.data)?);
                }
                _ => ctx.skipped += 1,
            }
        }
        fp.destination_interface = required(
            di,
            ids::DESTINATION_INTERFACE,
            "Destination Interface",
            context,
        )?;
        Ok(fp)
    }
}

/// Create FAR (grouped, Table 7.5.2.3-1).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct CreateFar {
    /// FAR ID.
    pub far_id: u32,
    /// What to do with the packets.
    pub apply_action: ApplyAction,
    /// Where to forward (with FORW).
    pub forwarding_parameters: Option<ForwardingParameters>,
}

impl CreateFar {
    /// Writes the grouped IE.
    pub fn emit(&self, w: &mut Writer) {
        w.ie(ids::CREATE_FAR, |w| {
            emit_u32(w, ids::FAR_ID, self.far_id);
            self.apply_action.emit(w);
            if let Some(fp) = &self.forwarding_parameters {
                fp.emit(w);
            }
        });
    }

    pub(crate) fn parse(data: &[u8], ctx: &mut Ctx) -> Result<Self, Error> {
        let (mut far_id, mut aa, mut fp) = (None, None, None);
        for ie in IeIter::new(data) {
            let ie = ie?;
            match (ie.enterprise_id, ie.ie_type) {
                (None, ids::FAR_ID) => far_id = Some(parse_u32(ie.data, ids::FAR_ID)?),
                (None, ids::APPLY_ACTION) => aa = Some(ApplyAction::parse(ie.data)?),
                (None, ids::FORWARDING_PARAMETERS) => {
                    fp = Some(ForwardingParameters::parse_as(
                        ie.data,
                        ctx,
                        "Forwarding Parameters",
                    )?);
                }
                _ => ctx.skipped += 1,
            }
        }
        Ok(Self {
            far_id: required(far_id, ids::FAR_ID, "FAR ID", "Create FAR")?,
            apply_action: required(aa, ids::APPLY_ACTION, "Apply Action", "Create FAR")?,
            forwarding_parameters: fp,
        })
    }
}

/// Update FAR (grouped, Table 7.5.4.3-1).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct UpdateFar {
    /// FAR to change.
    pub far_id: u32,
    /// New apply action.
    pub apply_action: Option<ApplyAction>,
    /// New forwarding parameters (sent as Update Forwarding Parameters, IE 11).
    pub update_forwarding_parameters: Option<ForwardingParameters>,
}

impl UpdateFar {
    /// Writes the grouped IE.
    pub fn emit(&self, w: &mut Writer) {
        w.ie(ids::UPDATE_FAR, |w| {
            emit_u32(w, ids::FAR_ID, self.far_id);
            if let Some(aa) = self.apply_action {
                aa.emit(w);
            }
            if let Some(fp) = &self.update_forwarding_parameters {
                fp.emit_as(w, ids::UPDATE_FORWARDING_PARAMETERS);
            }
        });
    }

    pub(crate) fn parse(data: &[u8], ctx: &mut Ctx) -> Result<Self, Error> {
        let mut far_id = None;
        let mut u = Self::default();
        for ie in IeIter::new(data) {
            let ie = ie?;
            match (ie.enterprise_id, ie.ie_type) {
                (None, ids::FAR_ID) => far_id = Some(parse_u32(ie.data, ids::FAR_ID)?),
                (None, ids::APPLY_ACTION) => u.apply_action = Some(ApplyAction::parse(ie.data)?),
                (None, ids::UPDATE_FORWARDING_PARAMETERS) => {
                    u.update_forwarding_parameters = Some(ForwardingParameters::parse_as(
                        ie.data,
                        ctx,
                        "Update Forwarding Parameters",
                    )?);
                }
                _ => ctx.skipped += 1,
            }
        }
        u.far_id = required(far_id, ids::FAR_ID, "FAR ID", "Update FAR")?;
        Ok(u)
    }
}

flags! {
    /// Measurement Method (8.2.40).
    MeasurementMethod(u8) {
        /// Duration.
        DURAT = 0x01;
        /// Volume.
        VOLUM = 0x02;
        /// Event.
        EVENT = 0x04;
    }
}

flags! {
    /// Reporting Triggers (8.2.19): octet 5 in bits 0-7, octet 6 in 8-15, octet 7 in 16-23.
    ReportingTriggers(u32) {
        /// Periodic reporting.
        PERIO = 0x0001;
        /// Volume threshold.
        VOLTH = 0x0002;
        /// Time threshold.
        TIMTH = 0x0004;
        /// Quota holding time.
        QUHTI = 0x0008;
        /// Start of traffic.
        START = 0x0010;
        /// Stop of traffic.
        STOPT = 0x0020;
        /// Dropped DL traffic threshold.
        DROTH = 0x0040;
        /// Linked usage reporting.
        LIUSA = 0x0080;
        /// Volume quota.
        VOLQU = 0x0100;
        /// Time quota.
        TIMQU = 0x0200;
        /// Envelope closure.
        ENVCL = 0x0400;
        /// MAC addresses reporting.
        MACAR = 0x0800;
        /// Event threshold.
        EVETH = 0x1000;
        /// Event quota.
        EVEQU = 0x2000;
        /// IP multicast join/leave.
        IPMJL = 0x4000;
        /// Quota validity time.
        QUVTI = 0x8000;
        /// Report the end marker reception.
        REEMR = 0x01_0000;
    }
}

impl ReportingTriggers {
    fn emit(self, w: &mut Writer) {
        w.ie(ids::REPORTING_TRIGGERS, |w| {
            w.u8(self.0 as u8);
            w.u8((self.0 >> 8) as u8);
            if self.0 >> 16 != 0 {
                w.u8((self.0 >> 16) as u8);
            }
        });
    }

    fn parse(data: &[u8]) -> Result<Self, Error> {
        let mut c = Cursor::new(ids::REPORTING_TRIGGERS, data);
        let o5 = c.u8()?;
        let o6 = c.u8()?;
        let o7 = if c.remaining() > 0 { c.u8()? } else { 0 };
        Ok(Self(
            u32::from(o7) << 16 | u32::from(o6) << 8 | u32::from(o5),
        ))
    }
}

/// Create URR (grouped, Table 7.5.2.4-1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct CreateUrr {
    /// URR ID.
    pub urr_id: u32,
    /// What to measure.
    pub measurement_method: MeasurementMethod,
    /// When to report (may be empty: report only on deletion or query).
    pub reporting_triggers: ReportingTriggers,
    /// Period in seconds for PERIO reporting.
    pub measurement_period: Option<u32>,
}

impl CreateUrr {
    /// Writes the grouped IE.
    pub fn emit(&self, w: &mut Writer) {
        w.ie(ids::CREATE_URR, |w| {
            emit_u32(w, ids::URR_ID, self.urr_id);
            w.ie(ids::MEASUREMENT_METHOD, |w| w.u8(self.measurement_method.0));
            self.reporting_triggers.emit(w);
            if let Some(p) = self.measurement_period {
                emit_u32(w, ids::MEASUREMENT_PERIOD, p);
            }
        });
    }

    pub(crate) fn parse(data: &[u8], ctx: &mut Ctx) -> Result<Self, Error> {
        let (mut urr_id, mut mm, mut rt, mut period) = (None, None, None, None);
        for ie in IeIter::new(data) {
            let ie = ie?;
            match (ie.enterprise_id, ie.ie_type) {
                (None, ids::URR_ID) => urr_id = Some(parse_u32(ie.data, ids::URR_ID)?),
                (None, ids::MEASUREMENT_METHOD) => {
                    mm = Some(MeasurementMethod(
                        Cursor::new(ids::MEASUREMENT_METHOD, ie.data).u8()?,
                    ));
                }
                (None, ids::REPORTING_TRIGGERS) => rt = Some(ReportingTriggers::parse(ie.data)?),
                (None, ids::MEASUREMENT_PERIOD) => {
                    period = Some(parse_u32(ie.data, ids::MEASUREMENT_PERIOD)?);
                }
                _ => ctx.skipped += 1,
            }
        }
        Ok(Self {
            urr_id: required(urr_id, ids::URR_ID, "URR ID", "Create URR")?,
            measurement_method: required(
                mm,
                ids::MEASUREMENT_METHOD,
                "Measurement Method",
                "Create URR",
            )?,
            reporting_triggers: required(
                rt,
                ids::REPORTING_TRIGGERS,
                "Reporting Triggers",
                "Create URR",
            )?,
            measurement_period: period,
        })
    }
}

/// Gate Status (8.2.7): `octet 5 = Spare | UL Gate (bits 4-3) | DL Gate (bits 2-1)`,
/// 0 = OPEN, 1 = CLOSED.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GateStatus {
    /// Uplink gate open.
    pub ul_open: bool,
    /// Downlink gate open.
    pub dl_open: bool,
}

impl Default for GateStatus {
    /// Both gates open.
    fn default() -> Self {
        Self::OPEN
    }
}

impl GateStatus {
    /// Both gates open.
    pub const OPEN: Self = Self {
        ul_open: true,
        dl_open: true,
    };
    /// Both gates closed.
    pub const CLOSED: Self = Self {
        ul_open: false,
        dl_open: false,
    };

    /// Writes the IE.
    pub fn emit(self, w: &mut Writer) {
        w.ie(ids::GATE_STATUS, |w| {
            w.u8(u8::from(!self.ul_open) << 2 | u8::from(!self.dl_open));
        });
    }

    /// Parses the IE body (values other than OPEN count as closed).
    pub fn parse(data: &[u8]) -> Result<Self, Error> {
        let v = Cursor::new(ids::GATE_STATUS, data).u8()?;
        Ok(Self {
            ul_open: (v >> 2) & 0x03 == 0,
            dl_open: v & 0x03 == 0,
        })
    }
}

/// Largest bit rate an MBR field holds (40 bits, kbit/s).
pub const MBR_MAX_KBPS: u64 = (1 << 40) - 1;

/// MBR (8.2.8): maximum bit rates in kbit/s, 40 bits each (larger values are
/// sent as [`MBR_MAX_KBPS`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Mbr {
    /// Uplink maximum bit rate, kbit/s.
    pub ul_kbps: u64,
    /// Downlink maximum bit rate, kbit/s.
    pub dl_kbps: u64,
}

impl Mbr {
    /// Writes the IE.
    pub fn emit(&self, w: &mut Writer) {
        w.ie(ids::MBR, |w| {
            w.u40(self.ul_kbps.min(MBR_MAX_KBPS));
            w.u40(self.dl_kbps.min(MBR_MAX_KBPS));
        });
    }

    /// Parses the IE body.
    pub fn parse(data: &[u8]) -> Result<Self, Error> {
        let mut c = Cursor::new(ids::MBR, data);
        Ok(Self {
            ul_kbps: c.u40()?,
            dl_kbps: c.u40()?,
        })
    }
}

/// Create QER (grouped, Table 7.5.2.5-1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct CreateQer {
    /// QER ID.
    pub qer_id: u32,
    /// Gates (mandatory).
    pub gate_status: GateStatus,
    /// Rate limit.
    pub mbr: Option<Mbr>,
}

impl CreateQer {
    /// Writes the grouped IE.
    pub fn emit(&self, w: &mut Writer) {
        w.ie(ids::CREATE_QER, |w| {
            emit_u32(w, ids::QER_ID, self.qer_id);
            self.gate_status.emit(w);
            if let Some(m) = &self.mbr {
                m.emit(w);
            }
        });
    }

    pub(crate) fn parse(data: &[u8], ctx: &mut Ctx) -> Result<Self, Error> {
        let u = UpdateQer::parse_as(data, ctx, "Create QER")?;
        Ok(Self {
            qer_id: u.qer_id,
            gate_status: required(u.gate_status, ids::GATE_STATUS, "Gate Status", "Create QER")?,
            mbr: u.mbr,
        })
    }
}

/// Update QER (grouped, Table 7.5.4.5-1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct UpdateQer {
    /// QER to change.
    pub qer_id: u32,
    /// New gates.
    pub gate_status: Option<GateStatus>,
    /// New rate limit.
    pub mbr: Option<Mbr>,
}

impl UpdateQer {
    /// Writes the grouped IE.
    pub fn emit(&self, w: &mut Writer) {
        w.ie(ids::UPDATE_QER, |w| {
            emit_u32(w, ids::QER_ID, self.qer_id);
            if let Some(g) = self.gate_status {
                g.emit(w);
            }
            if let Some(m) = &self.mbr {
                m.emit(w);
            }
        });
    }

    pub(crate) fn parse(data: &[u8], ctx: &mut Ctx) -> Result<Self, Error> {
        Self::parse_as(data, ctx, "Update QER")
    }

    fn parse_as(data: &[u8], ctx: &mut Ctx, context: &'static str) -> Result<Self, Error> {
        let mut qer_id = None;
        let mut u = Self::default();
        for ie in IeIter::new(data) {
            let ie = ie?;
            match (ie.enterprise_id, ie.ie_type) {
                (None, ids::QER_ID) => qer_id = Some(parse_u32(ie.data, ids::QER_ID)?),
                (None, ids::GATE_STATUS) => u.gate_status = Some(GateStatus::parse(ie.data)?),
                (None, ids::MBR) => u.mbr = Some(Mbr::parse(ie.data)?),
                _ => ctx.skipped += 1,
            }
        }
        u.qer_id = required(qer_id, ids::QER_ID, "QER ID", context)?;
        Ok(u)
    }
}

/// Remove PDR/FAR/URR/QER (and Query URR): a grouped IE holding one rule ID IE.
pub(crate) fn emit_remove(w: &mut Writer, group: u16, id_ie: u16, id: u32) {
    w.ie(group, |w| {
        if id_ie == ids::PDR_ID {
            emit_u16(w, id_ie, id as u16);
        } else {
            emit_u32(w, id_ie, id);
        }
    });
}

pub(crate) fn parse_remove(
    data: &[u8],
    ctx: &mut Ctx,
    id_ie: u16,
    name: &'static str,
    context: &'static str,
) -> Result<u32, Error> {
    let mut id = None;
    for ie in IeIter::new(data) {
        let ie = ie?;
        if ie.enterprise_id.is_none() && ie.ie_type == id_ie {
            id = Some(if id_ie == ids::PDR_ID {
                u32::from(parse_u16(ie.data, id_ie)?)
            } else {
                parse_u32(ie.data, id_ie)?
            });
        } else {
            ctx.skipped += 1;
        }
    }
    required(id, id_ie, name, context)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pfcp::ie::pdi::{emit_vlan_tag, parse_vlan_tag};

    fn parse_one<T>(bytes: &[u8], f: impl FnOnce(&[u8]) -> Result<T, Error>) -> T {
        let ie = IeIter::new(bytes).next().unwrap().unwrap();
        f(ie.data).unwrap()
    }

    #[test]
    fn ue_ip_address_golden() {
        let ue = UeIpAddress {
            ipv4: Some(Ipv4Addr::new(100, 64, 0, 10)),
            ipv6: None,
            is_destination: true,
            ipv6_prefix_len: None,
        };
        let mut w = Writer::new();
        ue.emit(&mut w);
        let b = w.finish().unwrap();
        assert_eq!(b, [0, 93, 0, 5, 0x06, 100, 64, 0, 10]);
        assert_eq!(parse_one(&b, UeIpAddress::parse), ue);
    }

    #[test]
    fn vlan_tag_golden() {
        let mut w = Writer::new();
        emit_vlan_tag(&mut w, ids::C_TAG, 0x123);
        let b = w.finish().unwrap();
        assert_eq!(b, [0, 134, 0, 3, 0x04, 0x10, 0x23]);
        assert_eq!(
            parse_one(&b, |d| parse_vlan_tag(d, ids::C_TAG)),
            Some(0x123)
        );
    }

    #[test]
    fn gate_status_and_mbr_golden() {
        let mut w = Writer::new();
        GateStatus {
            ul_open: true,
            dl_open: false,
        }
        .emit(&mut w);
        Mbr {
            ul_kbps: 10_000,
            dl_kbps: 100_000,
        }
        .emit(&mut w);
        let b = w.finish().unwrap();
        assert_eq!(
            b,
            [
                0, 25, 0, 1, 0x01, 0, 26, 0, 10, 0, 0, 0, 0x27, 0x10, 0, 0, 0x01, 0x86, 0xa0
            ]
        );
    }

    #[test]
    fn apply_action_one_or_two_octets() {
        let mut w = Writer::new();
        ApplyAction::FORW.emit(&mut w);
        (ApplyAction::DROP | ApplyAction::BDPN).emit(&mut w);
        let b = w.finish().unwrap();
        assert_eq!(b, [0, 44, 0, 1, 0x02, 0, 44, 0, 2, 0x01, 0x02]);
    }

    #[test]
    fn pdi_requires_source_interface() {
        let mut ctx = Ctx::default();
        assert_eq!(
            Pdi::parse(&[0, 22, 0, 1, b'x'], &mut ctx),
            Err(Error::MissingIe {
                ie: 20,
                name: "Source Interface",
                context: "PDI"
            })
        );
    }
}
