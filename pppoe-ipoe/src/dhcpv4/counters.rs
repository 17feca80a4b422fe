//! Counters of the DHCPv4 server, plain integers for the caller to export.

/// Why a received message got no reply (or got a NAK).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(usize)]
pub enum DropReason {
    /// Not a usable BOOTREQUEST: wrong op, no message type, chaddr longer
    /// than 16 bytes, or a required field/option missing.
    Malformed,
    /// A message type a server does not act on (OFFER, ACK, ...).
    UnsupportedType,
    /// The authorization callback denied the client.
    Denied,
    /// The authorization named a pool that is not configured.
    UnknownPool,
    /// No address available (pool exhausted or fixed address taken).
    PoolExhausted,
    /// The message is for another server (server identifier not ours).
    NotForUs,
    /// REQUEST/RELEASE/DECLINE for an address this client does not hold
    /// (answered with NAK for REQUEST).
    WrongAddress,
    /// RELEASE/DECLINE/INFORM from a client we have no record of.
    NoBinding,
    /// The authorization callback has no decision yet
    /// ([`Authorization::Pending`](super::Authorization::Pending)).
    AuthPending,
}

impl DropReason {
    /// Number of variants (size of [`ServerCounters::drops`]).
    pub const COUNT: usize = 9;
    /// Every variant, in index order.
    pub const ALL: [DropReason; DropReason::COUNT] = [
        DropReason::Malformed,
        DropReason::UnsupportedType,
        DropReason::Denied,
        DropReason::UnknownPool,
        DropReason::PoolExhausted,
        DropReason::NotForUs,
        DropReason::WrongAddress,
        DropReason::NoBinding,
        DropReason::AuthPending,
    ];

    /// Snake-case label for metrics.
    pub fn name(self) -> &'static str {
        match self {
            DropReason::Malformed => "malformed",
            DropReason::UnsupportedType => "unsupported_type",
            DropReason::Denied => "denied",
            DropReason::UnknownPool => "unknown_pool",
            DropReason::PoolExhausted => "pool_exhausted",
            DropReason::NotForUs => "not_for_us",
            DropReason::WrongAddress => "wrong_address",
            DropReason::NoBinding => "no_binding",
            DropReason::AuthPending => "auth_pending",
        }
    }
}

/// Message and event counters of one [`DhcpServer`](super::DhcpServer).
///
/// All counters start at zero and only grow.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerCounters {
    /// DHCPDISCOVER received.
    pub rx_discover: u64,
    /// DHCPREQUEST received.
    pub rx_request: u64,
    /// DHCPDECLINE received.
    pub rx_decline: u64,
    /// DHCPRELEASE received.
    pub rx_release: u64,
    /// DHCPINFORM received.
    pub rx_inform: u64,
    /// Any other message type (or none) received.
    pub rx_other: u64,
    /// DHCPOFFER sent.
    pub tx_offer: u64,
    /// DHCPACK sent (including ACKs to INFORM).
    pub tx_ack: u64,
    /// DHCPNAK sent.
    pub tx_nak: u64,
    /// Replies of any kind returned to the caller.
    pub replies: u64,
    /// Clients denied by the authorization callback.
    pub denied: u64,
    /// Messages that could not be used ([`DropReason::Malformed`]).
    pub malformed: u64,
    /// Messages ignored for any other reason (no reply, no NAK).
    pub ignored: u64,
    /// Per-reason counts, indexed by `DropReason as usize`.
    pub drops: [u64; DropReason::COUNT],
    /// Leases bound (first ACK).
    pub leases_bound: u64,
    /// Leases renewed (later ACKs).
    pub leases_renewed: u64,
    /// Leases released by clients or administratively.
    pub leases_released: u64,
    /// Leases declined by clients.
    pub leases_declined: u64,
    /// Leases expired.
    pub leases_expired: u64,
    /// Offers that expired without a REQUEST.
    pub offers_expired: u64,
}

impl ServerCounters {
    /// Count of drops for one reason.
    pub fn drop_count(&self, reason: DropReason) -> u64 {
        self.drops[reason as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drop_reason_indexes_match_all() {
        for (i, r) in DropReason::ALL.iter().enumerate() {
            assert_eq!(*r as usize, i);
            assert!(!r.name().is_empty());
        }
    }
}
