//! Counters of the PPPoE discovery server, plain integers for the caller
//! to export.

/// Why a discovery frame got no regular answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(usize)]
pub enum DiscoveryDrop {
    /// Not decodable: bad header or tags, a non-zero SESSION_ID in PADI or
    /// PADR, a multicast source MAC, an oversized PADI, a broken TR-101
    /// sub-option.
    Malformed,
    /// Over a PADI or PADR rate limit (per MAC or per port).
    RateLimited,
    /// PADR without an AC-Cookie, or with one we did not make for this
    /// client or that has expired.
    BadCookie,
    /// A Service-Name we do not offer (PADR is answered with a
    /// Service-Name-Error PADS).
    UnknownService,
    /// Per-MAC or per-VLAN session cap reached, or no session id free
    /// (PADR is answered with an AC-System-Error PADS).
    TooManySessions,
    /// PADT for a session we do not have.
    UnknownSession,
    /// A code the access concentrator does not accept (PADO, PADS,
    /// session data or unknown codes on the discovery EtherType).
    UnsupportedCode,
}

impl DiscoveryDrop {
    /// Number of variants (size of [`DiscoveryCounters::drops`]).
    pub const COUNT: usize = 7;
    /// Every variant, in index order.
    pub const ALL: [DiscoveryDrop; DiscoveryDrop::COUNT] = [
        DiscoveryDrop::Malformed,
        DiscoveryDrop::RateLimited,
        DiscoveryDrop::BadCookie,
        DiscoveryDrop::UnknownService,
        DiscoveryDrop::TooManySessions,
        DiscoveryDrop::UnknownSession,
        DiscoveryDrop::UnsupportedCode,
    ];

    /// Snake-case label for metrics.
    pub fn name(self) -> &'static str {
        match self {
            DiscoveryDrop::Malformed => "malformed",
            DiscoveryDrop::RateLimited => "rate_limited",
            DiscoveryDrop::BadCookie => "bad_cookie",
            DiscoveryDrop::UnknownService => "unknown_service",
            DiscoveryDrop::TooManySessions => "too_many_sessions",
            DiscoveryDrop::UnknownSession => "unknown_session",
            DiscoveryDrop::UnsupportedCode => "unsupported_code",
        }
    }
}

/// Frame and session counters of one
/// [`DiscoveryServer`](super::DiscoveryServer). All start at zero and only
/// grow.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DiscoveryCounters {
    /// PADI received (before any check but the header).
    pub rx_padi: u64,
    /// PADR received.
    pub rx_padr: u64,
    /// PADT received.
    pub rx_padt: u64,
    /// Other or undecodable frames received.
    pub rx_other: u64,
    /// PADO sent.
    pub tx_pado: u64,
    /// PADS sent with a session id (including repeats for a retransmitted
    /// PADR).
    pub tx_pads: u64,
    /// PADS sent with an error tag and session id 0.
    pub tx_pads_error: u64,
    /// PADT sent (by [`close`](super::DiscoveryServer::close)).
    pub tx_padt: u64,
    /// Sessions opened.
    pub sessions_opened: u64,
    /// Sessions closed by a client PADT.
    pub sessions_closed_by_client: u64,
    /// Sessions closed by [`close`](super::DiscoveryServer::close) or
    /// [`forget`](super::DiscoveryServer::forget).
    pub sessions_closed_by_server: u64,
    /// Per-reason drop counts, indexed by `DiscoveryDrop as usize`.
    pub drops: [u64; DiscoveryDrop::COUNT],
}

impl DiscoveryCounters {
    /// Count of drops for one reason.
    pub fn drop_count(&self, reason: DiscoveryDrop) -> u64 {
        self.drops[reason as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drop_indexes_match_all() {
        for (i, r) in DiscoveryDrop::ALL.iter().enumerate() {
            assert_eq!(*r as usize, i);
            assert!(!r.name().is_empty());
        }
    }
}
