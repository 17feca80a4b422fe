//! The hierarchical scheduler: port -> subscriber -> class.
//!
//! - Each subscriber has a token-bucket shaper ([`crate::bucket::TokenBucket`]) and
//!   [`CLASSES`] FIFO queues. Class 0 is served with strict priority; classes 1..3 share what
//!   is left by deficit round robin (DRR) with per-class quanta in bytes.
//! - Subscribers with backlog and tokens sit in an active ring and are served by deficit
//!   round robin: a visit sends every packet the subscriber's tokens allow, up to a quantum
//!   of `2 * 1514` bytes (unused quantum carries over; a visit always sends at least one
//!   packet), so the subscribers share the output byte-fairly over a round. A subscriber
//!   whose next packet lacks tokens is parked in a timer wheel right away, at the time its
//!   bucket will hold them (computed when it runs short: on the send that empties it, or on
//!   the enqueue that finds it idle and empty), so `dequeue` never looks at idle or waiting
//!   subscribers and never visits one that cannot send.
//! - The conformant fast path [`Scheduler::try_bypass`]: a packet of a subscriber with no
//!   backlog whose bucket (and the port's) holds the tokens is sent at once instead of being
//!   queued and dequeued, with exactly the same effect on the buckets and counters.
//! - An optional port shaper sits above all subscribers: when it lacks tokens, `dequeue`
//!   stops and [`Scheduler::next_wakeup_ns`] says when to come back.
//! - Packets are opaque `Copy` handles stored in one preallocated node pool, linked per
//!   queue by index. All memory is allocated in [`Scheduler::new`].
//!
//! Every enqueue and every dequeued packet does O(1) work (the wheel finds the next due slot
//! with a three-level bitmap; DRR skips whole rounds arithmetically when quanta are smaller
//! than packets).

mod sched;
mod wheel;

pub use sched::Scheduler;

pub use crate::class::{CLASSES, ClassId};

/// Scheduler sizing and policy, fixed at [`Scheduler::new`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchedulerConfig {
    /// Subscriber ids are dense indices `0..max_subscribers`. Default 1024.
    pub max_subscribers: u32,
    /// Packets queued over all subscribers and classes (the node pool). Default 16384.
    pub max_packets: u32,
    /// Packets per class queue per subscriber; a full queue drops. Default `[64, 256, 256, 256]`.
    pub class_queue_limit: [u32; CLASSES],
    /// DRR quantum in bytes for classes 1..3 (0 is read as 1); class 0 is strict priority and
    /// its quantum is unused. Quanta of at least one MTU give the classic DRR behaviour.
    /// Default `[0, 4 * 1514, 2 * 1514, 1514]`.
    pub drr_quantum: [u32; CLASSES],
    /// Optional port shaper above all subscribers (bit/s; burst
    /// [`crate::default_burst_bytes`]). Default `None`.
    pub port_rate_bps: Option<u64>,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        SchedulerConfig {
            max_subscribers: 1024,
            max_packets: 16384,
            class_queue_limit: [64, 256, 256, 256],
            drr_quantum: [0, 4 * 1514, 2 * 1514, 1514],
            port_rate_bps: None,
        }
    }
}

/// A subscriber: a dense index below [`SchedulerConfig::max_subscribers`].
pub type SubscriberId = u32;

/// Counters of one class of one subscriber.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClassCounters {
    /// Packets sent by `dequeue` or let through at once by `try_bypass` (shaped output,
    /// within the subscriber's rate).
    pub conformed_packets: u64,
    /// Bytes sent by `dequeue` or `try_bypass`.
    pub conformed_bytes: u64,
    /// Packets that, when enqueued, found the subscriber's bucket short of the tokens for them
    /// and the backlog ahead of them, so they had to wait in the queue (a subset of the
    /// enqueued packets; they are later sent, or handed back by `remove_subscriber`).
    pub exceeded_packets: u64,
    /// Packets refused by `enqueue` (queue full or pool exhausted).
    pub dropped_packets: u64,
    /// Bytes refused by `enqueue`.
    pub dropped_bytes: u64,
    /// Packets queued now.
    pub depth_packets: u32,
    /// Bytes queued now.
    pub depth_bytes: u32,
}

/// Why [`Scheduler::enqueue`] refused a packet (the packet is handed back with it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EnqueueError {
    /// The subscriber id is out of range or was never set (or was removed).
    #[error("no such subscriber: set_subscriber it before enqueueing")]
    NoSubscriber,
    /// The class queue of the subscriber holds `class_queue_limit` packets already.
    #[error("class queue full: the queue limit of this class is reached")]
    QueueFull,
    /// The shared node pool (`max_packets`) is exhausted.
    #[error("packet pool exhausted: max_packets packets are queued already")]
    PoolExhausted,
}

#[cfg(test)]
mod tests;
