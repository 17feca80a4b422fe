//! [`Dhcpv6Server`]: the stateful DHCPv6 server of PPP sessions' links.
//!
//! Message validation follows RFC 8415 section 16: a Solicit or Rebind with
//! a Server Identifier, a Request, Renew, Release or Decline without ours,
//! or any client message but Information-Request without a Client
//! Identifier is discarded. Confirm is not answered (section 18.3.3 allows
//! it when the server cannot tell whether the addresses are on-link), and
//! neither is anything a client does not send.
//!
//! One link has one client, so a link holds at most one address and one
//! delegated prefix, whichever IAIDs the client uses: the first IA_NA of a
//! message gets the address, the first IA_PD the prefix, further ones a
//! NoAddrsAvail / NoPrefixAvail status. Solicit reserves them for the link
//! (answered with Advertise, Preference 255 so the client need not wait for
//! other servers); Request, Renew and Rebind bind them (creating the
//! binding if the client comes with one the server lost, section 18.3.4);
//! Release and Decline give them back.

use std::collections::HashMap;
use std::net::Ipv6Addr;

use dhcproto::Encodable;
use dhcproto::v6::{
    DhcpOption, DhcpOptions, IAAddr, IANA, IAPD, IAPrefix, Message, MessageType, OptionCode,
    Status, StatusCode,
};

use super::pool::PrefixPool;
use super::{Ipv6ConfigError, Ipv6PoolConfig, decode};
use crate::ipv6::Ipv6Prefix;

/// The caller's identifier of a link (one PPP session).
pub type LinkId = u64;

/// Lifetime of addresses and prefixes that AAA gave a session whose pool
/// has no IPv6 part (seconds).
pub const AAA_ONLY_LEASE_TIME_S: u32 = 3600;

/// What a link is opened with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkRequest {
    /// The session's pool (its IPv6 part, if configured, is used).
    pub pool: String,
    /// The peer's IPv6CP interface identifier: its address in a per-session
    /// /64 is that /64 plus this identifier.
    pub peer_interface_id: u64,
    /// Framed-IPv6-Prefix from AAA: preferred to the pool's. Up to /64 it
    /// is the link's advertised prefix (its first /64); longer, its address
    /// is the session's IA_NA address.
    pub framed_prefix: Option<Ipv6Prefix>,
    /// Delegated-IPv6-Prefix from AAA: preferred to the pool's.
    pub delegated_prefix: Option<Ipv6Prefix>,
}

/// Where a link's address or prefix came from, so that it goes back there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    /// A pool of the server.
    Pool,
    /// Derived from the link's /64, or given by AAA: nothing to give back.
    Fixed,
}

/// What one link (session) holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkState {
    /// The session's pool name.
    pub pool: String,
    /// The /64 advertised to the link, if the session has one.
    pub link_prefix: Option<Ipv6Prefix>,
    /// The IA_NA address reserved or bound for the client.
    pub address: Option<Ipv6Addr>,
    /// The address is bound (Request, Renew, Rebind or Rapid Commit).
    pub address_bound: bool,
    /// The IA_PD prefix reserved or bound for the client.
    pub delegated_prefix: Option<Ipv6Prefix>,
    /// The delegated prefix is bound.
    pub delegated_bound: bool,
    /// Set the autonomous flag on the advertised prefix.
    pub slaac: bool,
    /// The client's DUID, once it sent one.
    pub client_id: Option<Vec<u8>>,
    /// The IAID of the IA_NA the address was last bound in.
    pub address_iaid: Option<u32>,
    /// The IAID of the IA_PD the delegated prefix was last bound in.
    pub delegated_iaid: Option<u32>,
    link_prefix_source: Source,
    address_source: Source,
    delegated_source: Source,
    peer_interface_id: u64,
    aaa_address: Option<Ipv6Addr>,
    aaa_delegated: Option<Ipv6Prefix>,
}

/// Why a link could not be opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    /// The pool has no IPv6 part and AAA gave no prefix.
    #[error("pool {0:?} has no IPv6 prefixes and AAA gave none")]
    NoIpv6(String),
    /// The pool's per-session /64s are all in use.
    #[error("pool {0:?} has no free /64")]
    NoLinkPrefix(String),
    /// A prefix or address to restore is in use by another link, or no
    /// longer in the pool (or from AAA).
    #[error("{prefix} is taken or no longer in pool {pool:?}")]
    Unavailable {
        /// The session's pool.
        pool: String,
        /// The prefix (/128: the address).
        prefix: Ipv6Prefix,
    },
}

/// What a link held bound, for [`Dhcpv6Server::restore_link`] (from
/// [`Dhcpv6Server::link`] in a previous process).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LinkBindings {
    /// The /64 advertised to the link.
    pub link_prefix: Option<Ipv6Prefix>,
    /// The bound IA_NA address.
    pub address: Option<Ipv6Addr>,
    /// The IAID it was bound in.
    pub address_iaid: Option<u32>,
    /// The bound delegated prefix.
    pub delegated_prefix: Option<Ipv6Prefix>,
    /// The IAID it was bound in.
    pub delegated_iaid: Option<u32>,
    /// The client's DUID.
    pub client_id: Option<Vec<u8>>,
}

/// What the server received, sent and refused.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Dhcpv6Counters {
    /// Messages decoded.
    pub received: u64,
    /// Messages that failed to decode.
    pub malformed: u64,
    /// Decoded messages discarded by the validation rules, or for an
    /// unknown link.
    pub discarded: u64,
    /// Advertise messages sent.
    pub advertises: u64,
    /// Reply messages sent.
    pub replies: u64,
    /// IA_NA answered with NoAddrsAvail.
    pub no_addrs: u64,
    /// IA_PD answered with NoPrefixAvail.
    pub no_prefix: u64,
    /// Addresses and prefixes given back by Release or Decline.
    pub released: u64,
}

/// The answer to one message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Handled {
    /// The Advertise or Reply to send to the client (UDP payload).
    pub reply: Option<Vec<u8>>,
    /// The link's bound address or delegated prefix changed.
    pub bindings_changed: bool,
}

#[derive(Debug, Clone)]
struct PoolState {
    cfg: Ipv6PoolConfig,
    /// Per-session /64s (prefix shorter than /64).
    link_prefixes: Option<PrefixPool>,
    /// Shared addresses (prefix /64 or longer).
    addresses: Option<PrefixPool>,
    delegated: Option<PrefixPool>,
}

/// The server. See the module docs.
#[derive(Debug, Clone)]
pub struct Dhcpv6Server {
    duid: Vec<u8>,
    rapid_commit: bool,
    pools: HashMap<String, PoolState>,
    links: HashMap<LinkId, LinkState>,
    counters: Dhcpv6Counters,
}

impl Dhcpv6Server {
    /// A server with DUID `server_duid` (see [`super::duid_ll`]) and the
    /// IPv6 pools `pools`; with `rapid_commit`, a Solicit carrying Rapid
    /// Commit is answered with a Reply at once (RFC 8415 section 18.3.1).
    pub fn new(
        server_duid: Vec<u8>,
        pools: Vec<Ipv6PoolConfig>,
        rapid_commit: bool,
    ) -> Result<Self, Ipv6ConfigError> {
        let mut states: HashMap<String, PoolState> = HashMap::new();
        let mut all: Vec<(String, Ipv6Prefix)> = Vec::new();
        for cfg in pools {
            cfg.validate()?;
            if states.contains_key(&cfg.name) {
                return Err(Ipv6ConfigError::DuplicateName(cfg.name));
            }
            for p in [cfg.prefix, cfg.pd_prefix].into_iter().flatten() {
                if let Some((_, other)) = all.iter().find(|(_, o)| o.overlaps(&p)) {
                    return Err(Ipv6ConfigError::Overlap {
                        pool: cfg.name.clone(),
                        first: *other,
                        second: p,
                    });
                }
                all.push((cfg.name.clone(), p));
            }
            let (link_prefixes, addresses) = match cfg.prefix {
                Some(p) if p.len() < 64 => (PrefixPool::new(p, 64), None),
                Some(p) => (None, PrefixPool::new(p, 128)),
                None => (None, None),
            };
            let delegated = cfg
                .pd_prefix
                .and_then(|p| PrefixPool::new(p, cfg.pd_length));
            states.insert(
                cfg.name.clone(),
                PoolState {
                    cfg,
                    link_prefixes,
                    addresses,
                    delegated,
                },
            );
        }
        Ok(Dhcpv6Server {
            duid: server_duid,
            rapid_commit,
            pools: states,
            links: HashMap::new(),
            counters: Dhcpv6Counters::default(),
        })
    }

    /// Whether a session of pool `pool`, with or without AAA prefixes,
    /// can have IPv6 (and so whether IPv6CP should be offered to it).
    pub fn serves(&self, pool: &str, aaa_prefixes: bool) -> bool {
        aaa_prefixes || self.pools.contains_key(pool)
    }

    /// The IPv6 part of pool `name`, if configured.
    pub fn pool_config(&self, name: &str) -> Option<&Ipv6PoolConfig> {
        self.pools.get(name).map(|p| &p.cfg)
    }

    /// (per-session /64s, shared addresses, delegated prefixes) in use in
    /// pool `name`.
    pub fn pool_usage(&self, name: &str) -> Option<(usize, usize, usize)> {
        let p = self.pools.get(name)?;
        let used = |x: &Option<PrefixPool>| x.as_ref().map_or(0, PrefixPool::in_use);
        Some((
            used(&p.link_prefixes),
            used(&p.addresses),
            used(&p.delegated),
        ))
    }

    /// Open link `link` (IPv6CP opened): chooses its /64 to advertise, if it
    /// has one. Opening an open link returns it unchanged.
    pub fn open_link(&mut self, link: LinkId, req: LinkRequest) -> Result<&LinkState, OpenError> {
        if self.links.contains_key(&link) {
            return Ok(&self.links[&link]);
        }
        let pool = self.pools.get_mut(&req.pool);
        if pool.is_none() && req.framed_prefix.is_none() && req.delegated_prefix.is_none() {
            return Err(OpenError::NoIpv6(req.pool));
        }
        let mut state = LinkState {
            pool: req.pool.clone(),
            link_prefix: None,
            address: None,
            address_bound: false,
            delegated_prefix: None,
            delegated_bound: false,
            slaac: pool.as_ref().is_some_and(|p| p.cfg.slaac),
            client_id: None,
            address_iaid: None,
            delegated_iaid: None,
            link_prefix_source: Source::Fixed,
            address_source: Source::Fixed,
            delegated_source: Source::Fixed,
            peer_interface_id: req.peer_interface_id,
            aaa_address: None,
            aaa_delegated: req.delegated_prefix,
        };
        match (req.framed_prefix, pool) {
            (Some(f), _) if f.len() <= 64 => {
                state.link_prefix = Some(Ipv6Prefix::containing(f.addr(), 64));
            }
            (Some(f), _) => state.aaa_address = Some(f.addr()),
            (None, Some(p)) => {
                if let Some(links) = p.link_prefixes.as_mut() {
                    let Some(prefix) = links.allocate() else {
                        return Err(OpenError::NoLinkPrefix(req.pool));
                    };
                    state.link_prefix = Some(prefix);
                    state.link_prefix_source = Source::Pool;
                }
            }
            (None, None) => {}
        }
        Ok(self.links.entry(link).or_insert(state))
    }

    /// Re-open link `link` of a session carried on from another process,
    /// with what it held bound then (`held`): the /64, address and
    /// delegated prefix are taken from their pools again (or accepted as
    /// AAA's, or derived from the /64) and bound, so that the client's
    /// Renew or Rebind is answered with them. Fails, taking nothing, if one
    /// of them is in use or no longer in its pool. Re-opening an open link
    /// returns it unchanged.
    pub fn restore_link(
        &mut self,
        link: LinkId,
        req: LinkRequest,
        held: &LinkBindings,
    ) -> Result<&LinkState, OpenError> {
        if self.links.contains_key(&link) {
            return Ok(&self.links[&link]);
        }
        if !self.pools.contains_key(&req.pool)
            && req.framed_prefix.is_none()
            && req.delegated_prefix.is_none()
        {
            return Err(OpenError::NoIpv6(req.pool));
        }
        let mut state = LinkState {
            pool: req.pool.clone(),
            link_prefix: None,
            address: None,
            address_bound: false,
            delegated_prefix: None,
            delegated_bound: false,
            slaac: self.pools.get(&req.pool).is_some_and(|p| p.cfg.slaac),
            client_id: held.client_id.clone(),
            address_iaid: held.address_iaid,
            delegated_iaid: held.delegated_iaid,
            link_prefix_source: Source::Fixed,
            address_source: Source::Fixed,
            delegated_source: Source::Fixed,
            peer_interface_id: req.peer_interface_id,
            aaa_address: req.framed_prefix.filter(|f| f.len() > 64).map(|f| f.addr()),
            aaa_delegated: req.delegated_prefix,
        };
        let unavailable = |prefix| OpenError::Unavailable {
            pool: req.pool.clone(),
            prefix,
        };
        let (mut link_prefixes, mut addresses, mut delegated) = match self.pools.get_mut(&req.pool)
        {
            Some(p) => (
                p.link_prefixes.as_mut(),
                p.addresses.as_mut(),
                p.delegated.as_mut(),
            ),
            None => (None, None, None),
        };
        let mut result = Ok(());
        if let Some(p) = held.link_prefix {
            let framed = req
                .framed_prefix
                .filter(|f| f.len() <= 64)
                .map(|f| Ipv6Prefix::containing(f.addr(), 64));
            if framed == Some(p) {
                state.link_prefix = Some(p);
            } else if link_prefixes.as_mut().is_some_and(|pool| pool.take(p)) {
                state.link_prefix = Some(p);
                state.link_prefix_source = Source::Pool;
            } else {
                result = Err(unavailable(p));
            }
        }
        if let (Ok(()), Some(a)) = (&result, held.address) {
            let single = Ipv6Prefix::containing(a, 128);
            if state.aaa_address == Some(a) || state.link_prefix.is_some_and(|p| p.covers(&single))
            {
                state.address = Some(a);
            } else if addresses.as_mut().is_some_and(|pool| pool.take(single)) {
                state.address = Some(a);
                state.address_source = Source::Pool;
            } else {
                result = Err(unavailable(single));
            }
            state.address_bound = state.address.is_some();
        }
        if let (Ok(()), Some(p)) = (&result, held.delegated_prefix) {
            if state.aaa_delegated == Some(p) {
                state.delegated_prefix = Some(p);
            } else if delegated.as_mut().is_some_and(|pool| pool.take(p)) {
                state.delegated_prefix = Some(p);
                state.delegated_source = Source::Pool;
            } else {
                result = Err(unavailable(p));
            }
            state.delegated_bound = state.delegated_prefix.is_some();
        }
        if let Err(e) = result {
            self.give_back_all(&mut state);
            return Err(e);
        }
        Ok(self.links.entry(link).or_insert(state))
    }

    /// Close link `link` (the session ended): everything it held goes back
    /// to the pools.
    pub fn close_link(&mut self, link: LinkId) -> Option<LinkState> {
        let mut state = self.links.remove(&link)?;
        self.give_back_all(&mut state);
        Some(state)
    }

    fn give_back_all(&mut self, state: &mut LinkState) {
        self.give_back_address(state);
        self.give_back_delegated(state);
        if let (Some(prefix), Source::Pool) = (state.link_prefix, state.link_prefix_source)
            && let Some(pool) = self
                .pools
                .get_mut(&state.pool)
                .and_then(|p| p.link_prefixes.as_mut())
        {
            pool.release(prefix);
        }
    }

    /// Link `link`'s state.
    pub fn link(&self, link: LinkId) -> Option<&LinkState> {
        self.links.get(&link)
    }

    /// Counters.
    pub fn counters(&self) -> &Dhcpv6Counters {
        &self.counters
    }

    /// One DHCPv6 message (UDP payload) from link `link`'s client.
    pub fn handle(&mut self, link: LinkId, bytes: &[u8]) -> Handled {
        let msg = match decode(bytes) {
            Ok(m) => m,
            Err(_) => {
                self.counters.malformed += 1;
                return Handled::default();
            }
        };
        self.counters.received += 1;
        let Some(state) = self.links.get(&link) else {
            self.counters.discarded += 1;
            return Handled::default();
        };
        let before = (
            state.address_bound.then_some(state.address),
            state.delegated_bound.then_some(state.delegated_prefix),
        );
        let reply = self.answer(link, &msg);
        match &reply {
            Some(r) if r.msg_type() == MessageType::Advertise => self.counters.advertises += 1,
            Some(_) => self.counters.replies += 1,
            None => self.counters.discarded += 1,
        }
        let after = self.links.get(&link).map(|s| {
            (
                s.address_bound.then_some(s.address),
                s.delegated_bound.then_some(s.delegated_prefix),
            )
        });
        Handled {
            reply: reply.and_then(|r| r.to_vec().ok()),
            bindings_changed: after != Some(before),
        }
    }

    fn answer(&mut self, link: LinkId, msg: &Message) -> Option<Message> {
        let opts = msg.opts();
        let client_id = match opts.get(OptionCode::ClientId) {
            Some(DhcpOption::ClientId(id)) if !id.is_empty() => Some(id.clone()),
            _ => None,
        };
        let server_id = match opts.get(OptionCode::ServerId) {
            Some(DhcpOption::ServerId(id)) => Some(id.as_slice()),
            _ => None,
        };
        let ours = server_id == Some(self.duid.as_slice());
        let kind = msg.msg_type();
        let valid = match kind {
            MessageType::Solicit | MessageType::Rebind => {
                client_id.is_some() && server_id.is_none()
            }
            MessageType::Request
            | MessageType::Renew
            | MessageType::Release
            | MessageType::Decline => client_id.is_some() && ours,
            MessageType::InformationRequest => server_id.is_none() || ours,
            _ => false,
        };
        if !valid {
            return None;
        }
        let state = self.links.get_mut(&link)?;
        if client_id.is_some() {
            state.client_id.clone_from(&client_id);
        }
        let rapid = kind == MessageType::Solicit
            && self.rapid_commit
            && opts.get(OptionCode::RapidCommit).is_some();
        let reply_type = if kind == MessageType::Solicit && !rapid {
            MessageType::Advertise
        } else {
            MessageType::Reply
        };
        let mut reply = Message::new_with_id(reply_type, msg.xid());
        let ro = reply.opts_mut();
        ro.insert(DhcpOption::ServerId(self.duid.clone()));
        if let Some(id) = client_id {
            ro.insert(DhcpOption::ClientId(id));
        }
        if rapid {
            ro.insert(DhcpOption::RapidCommit);
        }
        if reply_type == MessageType::Advertise {
            ro.insert(DhcpOption::Preference(255));
        }
        match kind {
            MessageType::Release | MessageType::Decline => {
                self.give_back(link, opts);
                reply.opts_mut().insert(DhcpOption::StatusCode(StatusCode {
                    status: Status::Success,
                    msg: "released".into(),
                }));
            }
            MessageType::InformationRequest => {}
            _ => {
                let bind = kind != MessageType::Solicit || rapid;
                self.assign(link, opts, bind, reply.opts_mut());
            }
        }
        if let Some(dns) = self.pools.get(&self.links[&link].pool).map(|p| &p.cfg.dns)
            && !dns.is_empty()
        {
            reply
                .opts_mut()
                .insert(DhcpOption::DomainNameServers(dns.clone()));
        }
        Some(reply)
    }

    /// Fill `out` with the IAs answering the client's IA_NA and IA_PD
    /// options; `bind` marks what is handed out as bound.
    fn assign(&mut self, link: LinkId, opts: &DhcpOptions, bind: bool, out: &mut DhcpOptions) {
        let lease = self.lease_time(link);
        let (t1, t2) = (lease / 2, lease / 5 * 4);
        let mut na_done = false;
        let mut pd_done = false;
        for opt in opts.iter() {
            match opt {
                DhcpOption::IANA(ia) => {
                    let addr = if na_done {
                        None
                    } else {
                        self.ensure_address(link)
                    };
                    na_done = true;
                    let mut ia_opts = DhcpOptions::new();
                    match addr {
                        Some(addr) => {
                            if bind && let Some(s) = self.links.get_mut(&link) {
                                s.address_bound = true;
                                s.address_iaid = Some(ia.id);
                            }
                            ia_opts.insert(DhcpOption::IAAddr(IAAddr {
                                addr,
                                preferred_life: lease,
                                valid_life: lease,
                                opts: DhcpOptions::new(),
                            }));
                        }
                        None => {
                            self.counters.no_addrs += 1;
                            ia_opts.insert(status(Status::NoAddrsAvail, "no address available"));
                        }
                    }
                    out.insert(DhcpOption::IANA(IANA {
                        id: ia.id,
                        t1: if addr.is_some() { t1 } else { 0 },
                        t2: if addr.is_some() { t2 } else { 0 },
                        opts: ia_opts,
                    }));
                }
                DhcpOption::IAPD(ia) => {
                    let prefix = if pd_done {
                        None
                    } else {
                        self.ensure_delegated(link)
                    };
                    pd_done = true;
                    let mut ia_opts = DhcpOptions::new();
                    match prefix {
                        Some(p) => {
                            if bind && let Some(s) = self.links.get_mut(&link) {
                                s.delegated_bound = true;
                                s.delegated_iaid = Some(ia.id);
                            }
                            ia_opts.insert(DhcpOption::IAPrefix(IAPrefix {
                                preferred_lifetime: lease,
                                valid_lifetime: lease,
                                prefix_len: p.len(),
                                prefix_ip: p.addr(),
                                opts: DhcpOptions::new(),
                            }));
                        }
                        None => {
                            self.counters.no_prefix += 1;
                            ia_opts.insert(status(Status::NoPrefixAvail, "no prefix available"));
                        }
                    }
                    out.insert(DhcpOption::IAPD(IAPD {
                        id: ia.id,
                        t1: if prefix.is_some() { t1 } else { 0 },
                        t2: if prefix.is_some() { t2 } else { 0 },
                        opts: ia_opts,
                    }));
                }
                _ => {}
            }
        }
    }

    fn lease_time(&self, link: LinkId) -> u32 {
        self.links
            .get(&link)
            .and_then(|s| self.pools.get(&s.pool))
            .map_or(AAA_ONLY_LEASE_TIME_S, |p| p.cfg.lease_time_s)
    }

    /// The link's address, choosing one if it has none.
    fn ensure_address(&mut self, link: LinkId) -> Option<Ipv6Addr> {
        let state = self.links.get_mut(&link)?;
        if state.address.is_some() {
            return state.address;
        }
        let pool = self.pools.get_mut(&state.pool);
        let (addr, source) = if let Some(a) = state.aaa_address {
            (a, Source::Fixed)
        } else if let Some(p) = state.link_prefix {
            let iid = if state.peer_interface_id == 0 {
                1
            } else {
                state.peer_interface_id
            };
            (
                Ipv6Addr::from(u128::from(p.addr()) | u128::from(iid)),
                Source::Fixed,
            )
        } else {
            let a = pool?.addresses.as_mut()?.allocate()?;
            (a.addr(), Source::Pool)
        };
        state.address = Some(addr);
        state.address_source = source;
        state.address_bound = false;
        Some(addr)
    }

    /// The link's delegated prefix, choosing one if it has none.
    fn ensure_delegated(&mut self, link: LinkId) -> Option<Ipv6Prefix> {
        let state = self.links.get_mut(&link)?;
        if state.delegated_prefix.is_some() {
            return state.delegated_prefix;
        }
        let (prefix, source) = match state.aaa_delegated {
            Some(p) => (p, Source::Fixed),
            None => {
                let pool = self.pools.get_mut(&state.pool)?;
                (pool.delegated.as_mut()?.allocate()?, Source::Pool)
            }
        };
        state.delegated_prefix = Some(prefix);
        state.delegated_source = source;
        state.delegated_bound = false;
        Some(prefix)
    }

    /// Release or Decline: give back what the client lists that the link
    /// holds.
    fn give_back(&mut self, link: LinkId, opts: &DhcpOptions) {
        let Some(mut state) = self.links.remove(&link) else {
            return;
        };
        for opt in opts.iter() {
            match opt {
                DhcpOption::IANA(ia) => {
                    let listed = ia.opts.iter().any(
                        |o| matches!(o, DhcpOption::IAAddr(a) if Some(a.addr) == state.address),
                    );
                    if listed {
                        self.give_back_address(&mut state);
                        self.counters.released += 1;
                    }
                }
                DhcpOption::IAPD(ia) => {
                    let listed = ia.opts.iter().any(|o| {
                        matches!(o, DhcpOption::IAPrefix(p)
                            if Some((p.prefix_ip, p.prefix_len))
                                == state.delegated_prefix.map(|d| (d.addr(), d.len())))
                    });
                    if listed {
                        self.give_back_delegated(&mut state);
                        self.counters.released += 1;
                    }
                }
                _ => {}
            }
        }
        self.links.insert(link, state);
    }

    fn give_back_address(&mut self, state: &mut LinkState) {
        if let (Some(addr), Source::Pool) = (state.address, state.address_source)
            && let Some(pool) = self
                .pools
                .get_mut(&state.pool)
                .and_then(|p| p.addresses.as_mut())
        {
            pool.release(Ipv6Prefix::containing(addr, 128));
        }
        state.address = None;
        state.address_bound = false;
    }

    fn give_back_delegated(&mut self, state: &mut LinkState) {
        if let (Some(prefix), Source::Pool) = (state.delegated_prefix, state.delegated_source)
            && let Some(pool) = self
                .pools
                .get_mut(&state.pool)
                .and_then(|p| p.delegated.as_mut())
        {
            pool.release(prefix);
        }
        state.delegated_prefix = None;
        state.delegated_bound = false;
    }
}

fn status(status: Status, msg: &str) -> DhcpOption {
    DhcpOption::StatusCode(StatusCode {
        status,
        msg: msg.into(),
    })
}
