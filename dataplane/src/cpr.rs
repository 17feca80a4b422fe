//! Control-packet redirect framing (TS 29.244 section 5.3, BBF TR-459 CPR): a control
//! frame travels between user plane and control plane as the payload of a G-PDU (GTP-U
//! message type 255, TS 29.281) over UDP 2152, the TEID naming the access port, the payload
//! the complete Ethernet frame, VLAN tags included. Pure functions, shared by the hosted
//! redirect threads (`host::redirect`) and the unikernel.

use crate::packet::PortId;
use crate::wire::gtpu::{self, GtpuRepr};

/// Why a datagram from the CP was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum GtpuDrop {
    /// The GTP-U header did not parse.
    #[error("malformed GTP-U: {0}")]
    Malformed(crate::wire::Error),
    /// A GTP-U message other than a G-PDU.
    #[error("expected a G-PDU (type 255), found message type {0}")]
    NotGpdu(u8),
    /// The TEID does not name an access port.
    #[error("TEID {teid} is not an access port (expected 0..{ports})")]
    BadTeid {
        /// TEID received.
        teid: u32,
        /// Number of access ports.
        ports: usize,
    },
    /// The inner frame is shorter than an Ethernet header.
    #[error("inner frame of {0} bytes is shorter than an Ethernet header")]
    Runt(usize),
}

/// Writes the G-PDU carrying `frame` from access port `port` into `out`; returns its length,
/// or `None` if `out` is too small. Pure.
pub fn encode_gpdu(port: PortId, frame: &[u8], out: &mut [u8]) -> Option<usize> {
    let len = gtpu::HEADER_LEN + frame.len();
    let payload_len = u16::try_from(frame.len()).ok()?;
    let msg = out.get_mut(..len)?;
    GtpuRepr::g_pdu(u32::from(port)).emit_header(&mut msg[..gtpu::HEADER_LEN], payload_len);
    msg[gtpu::HEADER_LEN..].copy_from_slice(frame);
    Some(len)
}

/// Decodes a datagram from the CP into (access port, inner frame). Pure.
pub fn decode_gpdu(datagram: &[u8], access_ports: usize) -> Result<(PortId, &[u8]), GtpuDrop> {
    let (repr, payload) = GtpuRepr::parse_payload(datagram).map_err(GtpuDrop::Malformed)?;
    if repr.msg_type != gtpu::MSG_G_PDU {
        return Err(GtpuDrop::NotGpdu(repr.msg_type));
    }
    let port = usize::try_from(repr.teid)
        .ok()
        .filter(|&p| p < access_ports)
        .ok_or(GtpuDrop::BadTeid {
            teid: repr.teid,
            ports: access_ports,
        })?;
    if payload.len() < 14 {
        return Err(GtpuDrop::Runt(payload.len()));
    }
    Ok((port as PortId, payload))
}
