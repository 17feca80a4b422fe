//! PFCP information elements (TS 29.244 section 8), one file per group.
//!
//! ```text
//!   Octets 1-2   Type (bit 8 of octet 1 set: vendor-specific IE)
//!   Octets 3-4   Length (octets after the first 4, Enterprise ID included)
//!   Octets 5-6   Enterprise ID (only for vendor-specific IEs)
//!   then         IE content, or the IEs of a grouped IE
//! ```

pub mod bbf;
pub mod ids;
pub mod node;
pub mod pdi;
pub mod report;
pub mod rules;
pub mod tlv;

pub use tlv::{IeIter, RawIe, Writer};
