//! Sans-IO PFCP node machinery shared by the control plane client and the user
//! plane agent: no sockets, no clocks. Callers pass the current monotonic time
//! in milliseconds (`now_ms`) and send whatever bytes come back.
//!
//! - [`SequenceAllocator`]: 24-bit sequence numbers (TS 29.244 7.2.2.2).
//! - [`Transactions`]: requests awaiting a response, retransmitted every T1
//!   until N1 retries are spent (TS 29.244 6.4, "Reliable delivery").
//! - [`ResponseCache`]: responses kept for a while so a retransmitted request
//!   gets the same answer instead of being executed twice.
//! - [`AssociationState`]: association up/down, heartbeat scheduling,
//!   loss after missed heartbeats, and peer restart detection from a changed
//!   Recovery Time Stamp (TS 29.244 6.2.2, 6.2.6.2).

use alloc::collections::VecDeque;
use alloc::vec::Vec;

use super::header::SEQUENCE_MASK;
use super::ie::node::RecoveryTimeStamp;

/// Hands out 24-bit sequence numbers, wrapping from 0xff_ffff to 0.
#[derive(Debug, Clone, Default)]
pub struct SequenceAllocator {
    next: u32,
}

impl SequenceAllocator {
    /// Starts at `first` (masked to 24 bits); use a random start after a restart
    /// so late responses to the previous incarnation do not match.
    pub fn new(first: u32) -> Self {
        Self {
            next: first & SEQUENCE_MASK,
        }
    }

    /// The next sequence number.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> u32 {
        let s = self.next;
        self.next = (self.next + 1) & SEQUENCE_MASK;
        s
    }
}

/// Retransmission timing of requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransactionConfig {
    /// T1: time to wait for a response before retransmitting, ms. Default 3000.
    pub t1_ms: u64,
    /// N1: retransmissions after the first send before giving up. Default 3.
    pub n1: u32,
}

impl Default for TransactionConfig {
    fn default() -> Self {
        Self {
            t1_ms: 3_000,
            n1: 3,
        }
    }
}

/// What [`Transactions::poll`] asks the caller to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransactionEvent<T> {
    /// Send `bytes` again (same sequence number).
    Retransmit {
        /// Sequence number of the request.
        sequence: u32,
        /// The encoded request.
        bytes: Vec<u8>,
        /// Caller's token (e.g. peer address, pending operation).
        token: T,
    },
    /// No response after N1 retransmissions; the request is dropped.
    Timeout {
        /// Sequence number of the request.
        sequence: u32,
        /// Caller's token.
        token: T,
    },
}

#[derive(Debug, Clone)]
struct Pending<T> {
    sequence: u32,
    bytes: Vec<u8>,
    deadline_ms: u64,
    retransmissions: u32,
    token: T,
}

/// Requests sent to one peer and not yet answered, keyed by sequence number.
/// Use one table per peer.
#[derive(Debug, Clone)]
pub struct Transactions<T> {
    config: TransactionConfig,
    pending: Vec<Pending<T>>,
}

impl<T: Clone> Transactions<T> {
    /// An empty table.
    pub fn new(config: TransactionConfig) -> Self {
        Self {
            config,
            pending: Vec::new(),
        }
    }

    /// Records a request that was just sent at `now_ms`. A request with the
    /// same sequence number is replaced.
    pub fn insert(&mut self, now_ms: u64, sequence: u32, bytes: Vec<u8>, token: T) {
        self.pending.retain(|p| p.sequence != sequence);
        self.pending.push(Pending {
            sequence,
            bytes,
            deadline_ms: now_ms.saturating_add(self.config.t1_ms),
            retransmissions: 0,
            token,
        });
    }

    /// A response with `sequence` arrived: forgets the request and returns its
    /// token, or `None` for an unknown (late or duplicate) response.
    pub fn on_response(&mut self, sequence: u32) -> Option<T> {
        let i = self.pending.iter().position(|p| p.sequence == sequence)?;
        Some(self.pending.swap_remove(i).token)
    }

    /// Retransmissions and timeouts due at `now_ms`.
    pub fn poll(&mut self, now_ms: u64) -> Vec<TransactionEvent<T>> {
        let mut events = Vec::new();
        let (t1, n1) = (self.config.t1_ms, self.config.n1);
        self.pending.retain_mut(|p| {
            if now_ms < p.deadline_ms {
                return true;
            }
            if p.retransmissions >= n1 {
                events.push(TransactionEvent::Timeout {
                    sequence: p.sequence,
                    token: p.token.clone(),
                });
                return false;
            }
            p.retransmissions += 1;
            p.deadline_ms = now_ms.saturating_add(t1);
            events.push(TransactionEvent::Retransmit {
                sequence: p.sequence,
                bytes: p.bytes.clone(),
                token: p.token.clone(),
            });
            true
        });
        events
    }

    /// Earliest time `poll` has work, if any request is pending.
    pub fn next_deadline(&self) -> Option<u64> {
        self.pending.iter().map(|p| p.deadline_ms).min()
    }

    /// Requests awaiting a response.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// True when nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Drops every pending request (e.g. association lost), returning the tokens.
    pub fn clear(&mut self) -> Vec<T> {
        self.pending.drain(..).map(|p| p.token).collect()
    }
}

/// Responses recently sent to one peer, so that a retransmitted request
/// (same sequence number) is answered from the cache instead of re-executed.
#[derive(Debug, Clone)]
pub struct ResponseCache {
    ttl_ms: u64,
    capacity: usize,
    entries: VecDeque<(u32, u64, Vec<u8>)>,
}

impl ResponseCache {
    /// Keeps responses for `ttl_ms` (use at least T1 x (N1 + 1)), at most `capacity`.
    pub fn new(ttl_ms: u64, capacity: usize) -> Self {
        Self {
            ttl_ms,
            capacity,
            entries: VecDeque::new(),
        }
    }

    /// The cached response to request `sequence`, if still fresh at `now_ms`.
    pub fn get(&mut self, now_ms: u64, sequence: u32) -> Option<&[u8]> {
        self.expire(now_ms);
        self.entries
            .iter()
            .find(|e| e.0 == sequence)
            .map(|e| e.2.as_slice())
    }

    /// Remembers the response sent to request `sequence`.
    pub fn insert(&mut self, now_ms: u64, sequence: u32, response: Vec<u8>) {
        self.expire(now_ms);
        self.entries.retain(|e| e.0 != sequence);
        if self.capacity == 0 {
            return;
        }
        while self.entries.len() >= self.capacity {
            self.entries.pop_front();
        }
        self.entries
            .push_back((sequence, now_ms.saturating_add(self.ttl_ms), response));
    }

    fn expire(&mut self, now_ms: u64) {
        while self.entries.front().is_some_and(|e| e.1 <= now_ms) {
            self.entries.pop_front();
        }
    }
}

/// Heartbeat timing of an association.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AssociationConfig {
    /// Interval between heartbeat requests, ms. Default 5000.
    pub heartbeat_interval_ms: u64,
    /// Consecutive unanswered heartbeats after which the peer is lost. Default 3.
    pub max_missed: u32,
}

impl Default for AssociationConfig {
    fn default() -> Self {
        Self {
            heartbeat_interval_ms: 5_000,
            max_missed: 3,
        }
    }
}

/// What [`AssociationState`] tells the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AssociationEvent {
    /// Send a Heartbeat Request now (then call [`AssociationState::heartbeat_sent`]).
    SendHeartbeat,
    /// `max_missed` heartbeats went unanswered: the association is down.
    PeerLost,
    /// The peer's Recovery Time Stamp changed: it restarted and lost its state
    /// (sessions must be re-established, TS 29.244 6.2.6.2).
    PeerRestarted {
        /// Previously known value.
        old: RecoveryTimeStamp,
        /// New value.
        new: RecoveryTimeStamp,
    },
}

/// The association with one peer and its heartbeat supervision.
#[derive(Debug, Clone)]
pub struct AssociationState {
    config: AssociationConfig,
    up: bool,
    peer_recovery: Option<RecoveryTimeStamp>,
    next_heartbeat_ms: u64,
    outstanding: u32,
}

impl AssociationState {
    /// A peer with no association yet.
    pub fn new(config: AssociationConfig) -> Self {
        Self {
            config,
            up: false,
            peer_recovery: None,
            next_heartbeat_ms: 0,
            outstanding: 0,
        }
    }

    /// True while the association is established.
    pub fn is_up(&self) -> bool {
        self.up
    }

    /// The peer's last known Recovery Time Stamp.
    pub fn peer_recovery_time_stamp(&self) -> Option<RecoveryTimeStamp> {
        self.peer_recovery
    }

    /// An Association Setup completed at `now_ms` with a peer that reported
    /// `peer_rts`. Returns `PeerRestarted` when a previous association with the
    /// same peer had a different Recovery Time Stamp.
    pub fn established(
        &mut self,
        now_ms: u64,
        peer_rts: RecoveryTimeStamp,
    ) -> Option<AssociationEvent> {
        let event = self.note_recovery(peer_rts);
        self.up = true;
        self.outstanding = 0;
        self.next_heartbeat_ms = now_ms.saturating_add(self.config.heartbeat_interval_ms);
        event
    }

    fn note_recovery(&mut self, rts: RecoveryTimeStamp) -> Option<AssociationEvent> {
        let old = self.peer_recovery.replace(rts);
        match old {
            Some(old) if old != rts => Some(AssociationEvent::PeerRestarted { old, new: rts }),
            _ => None,
        }
    }

    /// A Heartbeat Request or Response from the peer carried `rts` at `now_ms`:
    /// the peer is alive. Returns `PeerRestarted` if `rts` changed.
    pub fn on_heartbeat(
        &mut self,
        now_ms: u64,
        rts: RecoveryTimeStamp,
    ) -> Option<AssociationEvent> {
        let _ = now_ms;
        self.outstanding = 0;
        self.note_recovery(rts)
    }

    /// Any other message from the peer proves it alive (resets the miss count).
    pub fn on_peer_activity(&mut self) {
        self.outstanding = 0;
    }

    /// The caller sent a Heartbeat Request at `now_ms`.
    pub fn heartbeat_sent(&mut self, now_ms: u64) {
        self.outstanding += 1;
        self.next_heartbeat_ms = now_ms.saturating_add(self.config.heartbeat_interval_ms);
    }

    /// What to do at `now_ms`: nothing, send a heartbeat, or declare the peer lost.
    pub fn poll(&mut self, now_ms: u64) -> Option<AssociationEvent> {
        if !self.up || now_ms < self.next_heartbeat_ms {
            return None;
        }
        if self.outstanding >= self.config.max_missed {
            self.up = false;
            self.outstanding = 0;
            return Some(AssociationEvent::PeerLost);
        }
        Some(AssociationEvent::SendHeartbeat)
    }

    /// When `poll` next has work, if the association is up.
    pub fn next_deadline(&self) -> Option<u64> {
        self.up.then_some(self.next_heartbeat_ms)
    }

    /// The association was released (Association Release, or locally).
    pub fn release(&mut self) {
        self.up = false;
        self.outstanding = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_wraps_at_24_bits() {
        let mut s = SequenceAllocator::new(0xff_fffe);
        assert_eq!([s.next(), s.next(), s.next()], [0xff_fffe, 0xff_ffff, 0]);
    }

    #[test]
    fn retransmits_n1_times_then_times_out() {
        let mut t = Transactions::new(TransactionConfig { t1_ms: 100, n1: 2 });
        t.insert(0, 7, alloc::vec![1, 2], "peer");
        assert!(t.poll(99).is_empty());
        assert_eq!(t.next_deadline(), Some(100));
        let ev = t.poll(100);
        assert_eq!(
            ev,
            [TransactionEvent::Retransmit {
                sequence: 7,
                bytes: alloc::vec![1, 2],
                token: "peer"
            }]
        );
        assert!(matches!(
            t.poll(200)[..],
            [TransactionEvent::Retransmit { sequence: 7, .. }]
        ));
        assert_eq!(
            t.poll(300),
            [TransactionEvent::Timeout {
                sequence: 7,
                token: "peer"
            }]
        );
        assert!(t.is_empty());
    }

    #[test]
    fn response_completes_transaction() {
        let mut t = Transactions::new(TransactionConfig::default());
        t.insert(0, 1, alloc::vec![], 10u32);
        t.insert(0, 2, alloc::vec![], 20u32);
        assert_eq!(t.on_response(2), Some(20));
        assert_eq!(t.on_response(2), None);
        assert_eq!(t.len(), 1);
        assert_eq!(t.clear(), [10]);
    }

    #[test]
    fn response_cache_answers_retransmissions_until_expiry() {
        let mut c = ResponseCache::new(1_000, 2);
        c.insert(0, 5, alloc::vec![5]);
        assert_eq!(c.get(999, 5), Some(&[5u8][..]));
        assert_eq!(c.get(1_000, 5), None);
        c.insert(0, 1, alloc::vec![1]);
        c.insert(0, 2, alloc::vec![2]);
        c.insert(0, 3, alloc::vec![3]);
        assert_eq!(c.get(0, 1), None);
        assert_eq!(c.get(0, 3), Some(&[3u8][..]));
    }

    #[test]
    fn heartbeat_loss_and_restart_detection() {
        let cfg = AssociationConfig {
            heartbeat_interval_ms: 10,
            max_missed: 2,
        };
        let mut a = AssociationState::new(cfg);
        assert_eq!(a.poll(100), None);
        assert_eq!(a.established(0, RecoveryTimeStamp(1)), None);
        assert_eq!(a.poll(9), None);
        assert_eq!(a.poll(10), Some(AssociationEvent::SendHeartbeat));
        a.heartbeat_sent(10);
        assert_eq!(a.on_heartbeat(12, RecoveryTimeStamp(1)), None);
        assert_eq!(a.poll(20), Some(AssociationEvent::SendHeartbeat));
        a.heartbeat_sent(20);
        assert_eq!(a.poll(30), Some(AssociationEvent::SendHeartbeat));
        a.heartbeat_sent(30);
        assert_eq!(a.poll(40), Some(AssociationEvent::PeerLost));
        assert!(!a.is_up());
        assert_eq!(
            a.established(50, RecoveryTimeStamp(2)),
            Some(AssociationEvent::PeerRestarted {
                old: RecoveryTimeStamp(1),
                new: RecoveryTimeStamp(2)
            })
        );
        assert_eq!(
            a.on_heartbeat(55, RecoveryTimeStamp(3)),
            Some(AssociationEvent::PeerRestarted {
                old: RecoveryTimeStamp(2),
                new: RecoveryTimeStamp(3)
            })
        );
    }
}
