//! The request path without sockets: checks, the reply cache and the
//! encoding of answers. Times are passed in, so tests control the clock.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{CoaConfig, CoaDecision, CoaKind, CoaRequest, CoaStats};
use crate::radius::{self, AUTHENTICATOR_LEN, AttrType, Attribute, Packet, Repr, crypto};

type Auth = [u8; AUTHENTICATOR_LEN];

/// Upper bound on cached answers; past it the oldest are forgotten before
/// their time. At 30 s that is over 2,000 requests per second.
const MAX_CACHE_ENTRIES: usize = 65_536;

/// Identifies one request and its retransmissions (RFC 5080 2.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct CacheKey {
    source: SocketAddr,
    identifier: u8,
    authenticator: Auth,
}

#[derive(Debug)]
enum Entry {
    /// The handler is running.
    InProgress,
    /// The answer sent, kept for retransmissions.
    Done { reply: Arc<[u8]>, expires: Instant },
}

/// Why a datagram was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DropReason {
    UnknownClient,
    Malformed,
    UnsupportedCode,
    BadAuthenticator,
    BadMessageAuthenticator,
    /// A retransmission of a request whose handler still runs.
    InProgress,
}

/// What to do with a datagram.
#[derive(Debug)]
pub(crate) enum Action {
    /// Nothing: the datagram is dropped (and was counted).
    Drop(DropReason),
    /// Send these bytes back to the source: a retransmission's answer.
    Resend(Arc<[u8]>),
    /// Call the handler, then [`Engine::complete`] with the ticket.
    Handle(Ticket, CoaRequest),
}

/// What [`Engine::complete`] needs to answer a request.
#[derive(Debug)]
pub(crate) struct Ticket {
    key: CacheKey,
    kind: CoaKind,
    secret: Arc<[u8]>,
}

impl Ticket {
    pub(crate) fn source(&self) -> SocketAddr {
        self.key.source
    }
}

/// Request checks and the reply cache.
#[derive(Debug)]
pub(crate) struct Engine {
    clients: HashMap<IpAddr, Arc<[u8]>>,
    require_message_authenticator: bool,
    ttl: Duration,
    max_entries: usize,
    cache: HashMap<CacheKey, Entry>,
    /// Answered keys in the order they expire (the TTL is fixed).
    expiry: VecDeque<(Instant, CacheKey)>,
    stats: Arc<CoaStats>,
}

impl Engine {
    pub(crate) fn new(config: &CoaConfig, stats: Arc<CoaStats>) -> Self {
        Engine {
            clients: config
                .clients
                .iter()
                .map(|c| (c.addr.to_canonical(), Arc::from(c.secret.as_slice())))
                .collect(),
            require_message_authenticator: config.require_message_authenticator,
            ttl: config.reply_cache_ttl,
            max_entries: MAX_CACHE_ENTRIES,
            cache: HashMap::new(),
            expiry: VecDeque::new(),
            stats,
        }
    }

    /// Classifies one datagram from `source`.
    pub(crate) fn receive(&mut self, source: SocketAddr, datagram: &[u8], now: Instant) -> Action {
        CoaStats::inc(&self.stats.requests);
        self.expire(now);
        match self.check(source, datagram) {
            Ok(action) => action,
            Err(reason) => {
                let s = &self.stats;
                CoaStats::inc(match reason {
                    DropReason::UnknownClient => &s.dropped_unknown_client,
                    DropReason::Malformed => &s.dropped_malformed,
                    DropReason::UnsupportedCode => &s.dropped_unsupported_code,
                    DropReason::BadAuthenticator => &s.dropped_bad_authenticator,
                    DropReason::BadMessageAuthenticator => &s.dropped_bad_message_authenticator,
                    DropReason::InProgress => &s.duplicates_in_progress,
                });
                Action::Drop(reason)
            }
        }
    }

    fn check(&mut self, source: SocketAddr, datagram: &[u8]) -> Result<Action, DropReason> {
        let secret = self
            .clients
            .get(&source.ip().to_canonical())
            .ok_or(DropReason::UnknownClient)?;
        let view = Packet::new_checked(datagram).map_err(|_| DropReason::Malformed)?;
        // RFC 5176 3: only the two request codes; anything else is silently
        // discarded rather than answered.
        let kind = CoaKind::from_code(view.code()).ok_or(DropReason::UnsupportedCode)?;
        crypto::verify_request(view.as_bytes(), secret, self.require_message_authenticator)
            .map_err(|e| match e {
                radius::Error::BadResponseAuthenticator => DropReason::BadAuthenticator,
                radius::Error::MissingMessageAuthenticator
                | radius::Error::BadMessageAuthenticator => DropReason::BadMessageAuthenticator,
                _ => DropReason::Malformed,
            })?;
        // The key is checked after the authenticators: only a packet signed
        // with the secret can make us send a cached answer again.
        let key = CacheKey {
            source,
            identifier: view.identifier(),
            authenticator: view.authenticator(),
        };
        match self.cache.get(&key) {
            Some(Entry::InProgress) => return Err(DropReason::InProgress),
            Some(Entry::Done { reply, .. }) => {
                CoaStats::inc(&self.stats.duplicates_from_cache);
                return Ok(Action::Resend(reply.clone()));
            }
            None => {}
        }
        let packet = Repr::parse(&view).map_err(|_| DropReason::Malformed)?;
        let secret = secret.clone();
        self.cache.insert(key, Entry::InProgress);
        Ok(Action::Handle(
            Ticket { key, kind, secret },
            CoaRequest {
                kind,
                source,
                packet,
            },
        ))
    }

    /// Encodes and signs the answer to a ticket's request, counts it and
    /// keeps it for retransmissions. `None` only if no answer could be
    /// encoded; the request is then forgotten as if abandoned.
    pub(crate) fn complete(
        &mut self,
        ticket: Ticket,
        decision: CoaDecision,
        now: Instant,
    ) -> Option<Arc<[u8]>> {
        let (ack, reply) = match encode(&ticket, &decision) {
            Ok(bytes) => (matches!(decision, CoaDecision::Ack { .. }), bytes),
            Err(error) => {
                tracing::warn!(
                    source = %ticket.key.source, %error,
                    "dynamic authorization answer does not fit; sent without the handler's attributes"
                );
                let bare = match decision {
                    CoaDecision::Ack { .. } => CoaDecision::ack(),
                    CoaDecision::Nak { error_cause, .. } => CoaDecision::nak(error_cause),
                };
                match encode(&ticket, &bare) {
                    Ok(bytes) => (matches!(bare, CoaDecision::Ack { .. }), bytes),
                    Err(_) => {
                        self.abandon(ticket);
                        return None;
                    }
                }
            }
        };
        let s = &self.stats;
        CoaStats::inc(match (ticket.kind, ack) {
            (CoaKind::Coa, true) => &s.coa_acks,
            (CoaKind::Coa, false) => &s.coa_naks,
            (CoaKind::Disconnect, true) => &s.disconnect_acks,
            (CoaKind::Disconnect, false) => &s.disconnect_naks,
        });
        let reply: Arc<[u8]> = reply.into();
        let expires = now + self.ttl;
        self.cache.insert(
            ticket.key,
            Entry::Done {
                reply: reply.clone(),
                expires,
            },
        );
        self.expiry.push_back((expires, ticket.key));
        while self.cache.len() > self.max_entries {
            let Some((at, key)) = self.expiry.pop_front() else {
                break;
            };
            self.remove_done(at, &key);
        }
        Some(reply)
    }

    /// Forgets a request whose handler will not answer (cancelled or
    /// panicked): a retransmission calls the handler again.
    pub(crate) fn abandon(&mut self, ticket: Ticket) {
        if let Some(Entry::InProgress) = self.cache.get(&ticket.key) {
            self.cache.remove(&ticket.key);
        }
    }

    fn expire(&mut self, now: Instant) {
        while let Some(&(at, key)) = self.expiry.front() {
            if at > now {
                break;
            }
            self.expiry.pop_front();
            self.remove_done(at, &key);
        }
    }

    /// Removes the cached answer of `key` if it is the one that expires at
    /// `at` (not a newer request that reuses the key).
    fn remove_done(&mut self, at: Instant, key: &CacheKey) {
        if let Some(Entry::Done { expires, .. }) = self.cache.get(key)
            && *expires == at
        {
            self.cache.remove(key);
        }
    }

    #[cfg(test)]
    fn cache_len(&self) -> usize {
        self.cache.len()
    }
}

/// The signed answer: Error-Cause first on a NAK, then the handler's
/// attributes, then Message-Authenticator (RFC 5176 3.3, 3.6).
fn encode(ticket: &Ticket, decision: &CoaDecision) -> Result<Vec<u8>, radius::Error> {
    let (code, error_cause, extra) = match decision {
        CoaDecision::Ack { attributes } => (ticket.kind.ack_code(), None, attributes),
        CoaDecision::Nak {
            error_cause,
            attributes,
        } => (ticket.kind.nak_code(), Some(*error_cause), attributes),
    };
    let mut attributes = Vec::with_capacity(extra.len() + 2);
    attributes.extend(error_cause.map(|c| Attribute::u32(AttrType::ErrorCause, c)));
    attributes.extend(
        extra
            .iter()
            .filter(|a| a.typ != AttrType::MessageAuthenticator)
            .cloned(),
    );
    attributes.push(Attribute::new(
        AttrType::MessageAuthenticator,
        [0; AUTHENTICATOR_LEN],
    ));
    let mut bytes = Repr {
        code,
        identifier: ticket.key.identifier,
        authenticator: ticket.key.authenticator,
        attributes,
    }
    .to_bytes()?;
    crypto::sign_response(&mut bytes, &ticket.key.authenticator, &ticket.secret)?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coa::CoaClient;
    use crate::radius::{Code, error_cause};

    const SECRET: &[u8] = b"coa-secret";

    fn config() -> CoaConfig {
        CoaConfig {
            clients: vec![CoaClient {
                addr: "127.0.0.1".parse().unwrap(),
                secret: SECRET.to_vec(),
            }],
            ..CoaConfig::default()
        }
    }

    fn engine() -> (Engine, Arc<CoaStats>) {
        let stats = Arc::new(CoaStats::default());
        (Engine::new(&config(), stats.clone()), stats)
    }

    fn src(port: u16) -> SocketAddr {
        ([127, 0, 0, 1], port).into()
    }

    /// A request signed as radclient signs it.
    fn request(code: Code, id: u8, secret: &[u8], with_ma: bool) -> Vec<u8> {
        let mut attributes = vec![Attribute::new(AttrType::AcctSessionId, *b"sess-1")];
        if with_ma {
            attributes.push(Attribute::new(AttrType::MessageAuthenticator, [0; 16]));
        }
        let mut p = Repr {
            code,
            identifier: id,
            authenticator: [0; 16],
            attributes,
        }
        .to_bytes()
        .unwrap();
        if with_ma {
            crypto::sign_request(&mut p, secret).unwrap();
        } else {
            let ra = crypto::packet_md5(&p, &[0; 16], secret);
            p[4..20].copy_from_slice(&ra);
        }
        p
    }

    fn handle(action: Action) -> (Ticket, CoaRequest) {
        match action {
            Action::Handle(t, r) => (t, r),
            other => panic!("expected Handle, got {other:?}"),
        }
    }

    fn auth_of(p: &[u8]) -> Auth {
        p[4..20].try_into().unwrap()
    }

    #[test]
    fn coa_ack_is_signed_for_the_request() {
        let (mut e, stats) = engine();
        let now = Instant::now();
        let req = request(Code::CoaRequest, 7, SECRET, true);
        let (ticket, r) = handle(e.receive(src(5000), &req, now));
        assert_eq!(r.kind, CoaKind::Coa);
        assert_eq!(r.source, src(5000));
        assert_eq!(
            r.packet.find(AttrType::AcctSessionId).unwrap().value,
            b"sess-1"
        );
        let reply = e
            .complete(
                ticket,
                CoaDecision::Ack {
                    attributes: vec![Attribute::new(AttrType::ReplyMessage, *b"done")],
                },
                now,
            )
            .unwrap();
        assert_eq!(
            crypto::verify_response(&reply, &auth_of(&req), SECRET, true),
            Ok(())
        );
        let repr = Repr::parse_bytes(&reply).unwrap();
        assert_eq!((repr.code, repr.identifier), (Code::CoaAck, 7));
        assert_eq!(repr.find(AttrType::ReplyMessage).unwrap().value, b"done");
        assert_eq!(repr.all(AttrType::MessageAuthenticator).count(), 1);
        let s = stats.snapshot();
        assert_eq!((s.requests, s.coa_acks), (1, 1));
    }

    #[test]
    fn disconnect_nak_carries_error_cause_first() {
        let (mut e, stats) = engine();
        let now = Instant::now();
        let req = request(Code::DisconnectRequest, 200, SECRET, true);
        let (ticket, r) = handle(e.receive(src(5000), &req, now));
        assert_eq!(r.kind, CoaKind::Disconnect);
        let reply = e
            .complete(
                ticket,
                CoaDecision::Nak {
                    error_cause: error_cause::SESSION_CONTEXT_NOT_FOUND,
                    // A Message-Authenticator from the handler is replaced.
                    attributes: vec![Attribute::new(AttrType::MessageAuthenticator, [1; 16])],
                },
                now,
            )
            .unwrap();
        assert_eq!(
            crypto::verify_response(&reply, &auth_of(&req), SECRET, true),
            Ok(())
        );
        let repr = Repr::parse_bytes(&reply).unwrap();
        assert_eq!(repr.code, Code::DisconnectNak);
        assert_eq!(repr.attributes[0].typ, AttrType::ErrorCause);
        assert_eq!(repr.attributes[0].as_u32(), Some(503));
        assert_eq!(repr.all(AttrType::MessageAuthenticator).count(), 1);
        assert_eq!(stats.snapshot().disconnect_naks, 1);
    }

    #[test]
    fn drops_are_counted_and_never_answered() {
        let (mut e, stats) = engine();
        let now = Instant::now();
        let good = request(Code::CoaRequest, 1, SECRET, true);
        let unknown: SocketAddr = ([127, 0, 0, 2], 5000).into();
        let cases: Vec<(SocketAddr, Vec<u8>, DropReason)> = vec![
            (unknown, good.clone(), DropReason::UnknownClient),
            (src(1), good[..19].to_vec(), DropReason::Malformed),
            (src(1), vec![], DropReason::Malformed),
            (
                src(1),
                request(Code::AccountingRequest, 1, SECRET, true),
                DropReason::UnsupportedCode,
            ),
            (
                src(1),
                request(Code::AccessRequest, 1, SECRET, true),
                DropReason::UnsupportedCode,
            ),
            (
                src(1),
                request(Code::CoaRequest, 1, b"wrong", true),
                DropReason::BadAuthenticator,
            ),
            (
                src(1),
                request(Code::CoaRequest, 1, SECRET, false),
                DropReason::BadMessageAuthenticator,
            ),
        ];
        for (source, bytes, reason) in &cases {
            match e.receive(*source, bytes, now) {
                Action::Drop(r) => assert_eq!(r, *reason),
                other => panic!("{reason:?}: got {other:?}"),
            }
        }
        let s = stats.snapshot();
        assert_eq!(s.requests, cases.len() as u64);
        assert_eq!(s.dropped_unknown_client, 1);
        assert_eq!(s.dropped_malformed, 2);
        assert_eq!(s.dropped_unsupported_code, 2);
        assert_eq!(s.dropped_bad_authenticator, 1);
        assert_eq!(s.dropped_bad_message_authenticator, 1);
        assert_eq!(e.cache_len(), 0);
    }

    #[test]
    fn message_authenticator_optional_when_configured() {
        let stats = Arc::new(CoaStats::default());
        let mut e = Engine::new(
            &CoaConfig {
                require_message_authenticator: false,
                ..config()
            },
            stats,
        );
        let now = Instant::now();
        let (ticket, _) =
            handle(e.receive(src(1), &request(Code::CoaRequest, 1, SECRET, false), now));
        // The answer carries one anyway.
        let reply = e.complete(ticket, CoaDecision::ack(), now).unwrap();
        let repr = Repr::parse_bytes(&reply).unwrap();
        assert!(repr.find(AttrType::MessageAuthenticator).is_some());
        // A present but wrong one is still refused.
        let mut bad = request(Code::CoaRequest, 2, SECRET, true);
        let n = bad.len();
        bad[n - 1] ^= 1;
        let ra = crypto::packet_md5(&bad, &[0; 16], SECRET);
        bad[4..20].copy_from_slice(&ra);
        assert!(matches!(
            e.receive(src(1), &bad, now),
            Action::Drop(DropReason::BadMessageAuthenticator)
        ));
    }

    #[test]
    fn ipv4_mapped_source_matches_ipv4_client() {
        let (mut e, _) = engine();
        let mapped: SocketAddr = "[::ffff:127.0.0.1]:4000".parse().unwrap();
        let req = request(Code::CoaRequest, 3, SECRET, true);
        handle(e.receive(mapped, &req, Instant::now()));
    }

    #[test]
    fn retransmissions_in_progress_cached_and_expired() {
        let (mut e, stats) = engine();
        let t0 = Instant::now();
        let req = request(Code::CoaRequest, 9, SECRET, true);
        let (ticket, _) = handle(e.receive(src(5000), &req, t0));
        // While the handler runs: dropped.
        assert!(matches!(
            e.receive(src(5000), &req, t0),
            Action::Drop(DropReason::InProgress)
        ));
        // Same identifier and authenticator from another port: another
        // request.
        let (other, _) = handle(e.receive(src(5001), &req, t0));
        e.abandon(other);
        let reply = e.complete(ticket, CoaDecision::ack(), t0).unwrap();
        // Within the TTL: the same bytes, no handler call.
        let t1 = t0 + Duration::from_secs(29);
        match e.receive(src(5000), &req, t1) {
            Action::Resend(bytes) => assert_eq!(bytes, reply),
            other => panic!("{other:?}"),
        }
        // A new identifier is a new request.
        let (t, _) = handle(e.receive(src(5000), &request(Code::CoaRequest, 10, SECRET, true), t1));
        e.abandon(t);
        // After the TTL: the handler is called again.
        let t2 = t0 + Duration::from_secs(30);
        let (t, _) = handle(e.receive(src(5000), &req, t2));
        e.abandon(t);
        let s = stats.snapshot();
        assert_eq!(s.duplicates_in_progress, 1);
        assert_eq!(s.duplicates_from_cache, 1);
        assert_eq!(s.coa_acks, 1);
        assert_eq!(e.cache_len(), 0);
    }

    #[test]
    fn abandoned_request_is_handled_again() {
        let (mut e, _) = engine();
        let now = Instant::now();
        let req = request(Code::DisconnectRequest, 1, SECRET, true);
        let (t, _) = handle(e.receive(src(1), &req, now));
        e.abandon(t);
        handle(e.receive(src(1), &req, now));
    }

    #[test]
    fn oversized_answer_falls_back_to_bare_decision() {
        let (mut e, stats) = engine();
        let now = Instant::now();
        let req = request(Code::CoaRequest, 1, SECRET, true);
        let (t, _) = handle(e.receive(src(1), &req, now));
        let huge = vec![Attribute::new(AttrType::Class, vec![0; 253]); 20];
        let reply = e
            .complete(
                t,
                CoaDecision::Nak {
                    error_cause: error_cause::RESOURCES_UNAVAILABLE,
                    attributes: huge,
                },
                now,
            )
            .unwrap();
        let repr = Repr::parse_bytes(&reply).unwrap();
        assert_eq!(repr.code, Code::CoaNak);
        assert_eq!(repr.attributes.len(), 2);
        assert_eq!(repr.attributes[0].as_u32(), Some(506));
        assert_eq!(
            crypto::verify_response(&reply, &auth_of(&req), SECRET, true),
            Ok(())
        );
        assert_eq!(stats.snapshot().coa_naks, 1);
    }

    #[test]
    fn cache_is_bounded() {
        let (mut e, _) = engine();
        e.max_entries = 4;
        let now = Instant::now();
        for id in 0..10u8 {
            let req = request(Code::CoaRequest, id, SECRET, true);
            let (t, _) = handle(e.receive(src(1), &req, now));
            e.complete(t, CoaDecision::ack(), now).unwrap();
            assert!(e.cache_len() <= 4);
        }
        // The newest is still cached, the oldest is not.
        let newest = request(Code::CoaRequest, 9, SECRET, true);
        assert!(matches!(e.receive(src(1), &newest, now), Action::Resend(_)));
        let oldest = request(Code::CoaRequest, 0, SECRET, true);
        let (t, _) = handle(e.receive(src(1), &oldest, now));
        e.abandon(t);
    }

    mod prop {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            /// Arbitrary datagrams from a configured client never panic and
            /// are never handled (they cannot carry the secret's signature).
            #[test]
            fn arbitrary_datagrams_are_dropped(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
                let (mut e, _) = engine();
                prop_assert!(matches!(e.receive(src(1), &bytes, Instant::now()), Action::Drop(_)));
            }

            /// A signed request with any octet changed (or cut) never panics
            /// and is never handled.
            #[test]
            fn mutated_requests_are_dropped(id: u8, at in 0usize..64, xor in 1u8..,
                                            cut in 0usize..64, kind: bool) {
                let code = if kind { Code::CoaRequest } else { Code::DisconnectRequest };
                let mut req = request(code, id, SECRET, true);
                let at = at % req.len();
                req[at] ^= xor;
                let (mut e, _) = engine();
                let action = e.receive(src(1), &req, Instant::now());
                prop_assert!(matches!(action, Action::Drop(_)), "{action:?}");
                let req = request(code, id, SECRET, true);
                let cut = cut % req.len();
                let action = e.receive(src(1), &req[..cut], Instant::now());
                prop_assert!(matches!(action, Action::Drop(_)), "{action:?}");
            }
        }
    }
}
