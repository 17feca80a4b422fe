//! Authentication, authorization and accounting for `vbng-cp`.
//!
//! - [`local`]: the local subscriber file, the embedded AAA default
//!   ([`LocalSubscribers`]): per-MAC and per-circuit-id entries plus a
//!   default rule, each giving a [`SubscriberProfile`].

pub mod local;

pub use local::{DefaultPolicy, LocalSubscribers, MatchedBy, Rate, SubscriberProfile};
