//! Vendor-specific attributes vbng sends and understands, and the vendor
//! dictionary that describes them to a RADIUS server
//! (`aaa/freeradius/dictionary.vbng`, [`VBNG_DICTIONARY`]).

/// The vbng vendor id (RFC 5612's documentation enterprise number; see the
/// dictionary file).
pub const VBNG_VENDOR_ID: u32 = 32473;
/// vbng-Rate-Up-Kbps: uplink peak rate in kbit/s (integer, 0 = no limit).
pub const VBNG_RATE_UP_KBPS: u8 = 1;
/// vbng-Rate-Down-Kbps: downlink peak rate in kbit/s (integer, 0 = no limit).
pub const VBNG_RATE_DOWN_KBPS: u8 = 2;
/// vbng-User-Plane: name of the serving user plane (string).
pub const VBNG_USER_PLANE: u8 = 3;

/// The Broadband Forum's vendor id (ADSL-Forum in FreeRADIUS, TR-101).
pub const ADSL_FORUM_VENDOR_ID: u32 = 3561;
/// ADSL-Agent-Circuit-Id (option 82 circuit-id, PPPoE circuit tag).
pub const ADSL_AGENT_CIRCUIT_ID: u8 = 1;
/// ADSL-Agent-Remote-Id (option 82 remote-id).
pub const ADSL_AGENT_REMOTE_ID: u8 = 2;

/// The FreeRADIUS dictionary file for [`VBNG_VENDOR_ID`].
pub const VBNG_DICTIONARY: &str = include_str!("../freeradius/dictionary.vbng");
