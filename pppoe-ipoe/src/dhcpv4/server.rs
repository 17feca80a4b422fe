//! DHCPv4 server state machine (RFC 2131 section 4.3), sans-IO.
//!
//! Per client ([`ClientKey`]) the server holds at most one binding, either
//! `Offered` (address held for [`OFFER_HOLD_MS`] after a DHCPOFFER) or
//! `Bound` (after a DHCPACK, until `expires_at_ms`). Timers are a sorted
//! set of `(deadline, client)` pairs drained by [`DhcpServer::poll`].
//!
//! DHCPREQUEST is classified as in RFC 2131 section 4.3.2:
//!
//! | state       | server id (54) | requested ip (50) | ciaddr   |
//! |-------------|----------------|-------------------|----------|
//! | SELECTING   | present        | present           | 0        |
//! | INIT-REBOOT | absent         | present           | 0        |
//! | RENEWING    | absent         | absent            | set (unicast)   |
//! | REBINDING   | absent         | absent            | set (broadcast) |
//!
//! RENEWING and REBINDING are answered alike (the caller does not tell us
//! how the frame was addressed). A client we have no record of in
//! INIT-REBOOT/RENEWING/REBINDING (for example after a control plane
//! restart) is authorized and, if the address it holds is free and on the
//! right network for its pool, gets it back; otherwise it is NAKed, so it
//! restarts from DHCPDISCOVER at once instead of using an address we did
//! not give it.

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap};
use std::net::Ipv4Addr;

use dhcproto::v4::{
    DhcpOption, Message, MessageType, Opcode, OptionCode, relay::RelayCode, relay::RelayInfo,
};

use super::{
    AddressPool, Authorization, CLIENT_PORT, ClientContext, ClientKey, ConfigError, DropReason,
    Handled, Lease, LeaseEvent, OFFER_HOLD_MS, PoolConfig, Reply, SERVER_PORT, ServerCounters,
};

/// One configured pool and its allocator.
#[derive(Debug)]
struct PoolState {
    cfg: PoolConfig,
    alloc: AddressPool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BindState {
    Offered,
    Bound,
}

#[derive(Debug)]
struct Binding {
    state: BindState,
    pool: usize,
    deadline: u64,
    lease: Lease,
}

/// The DHCPv4 server: pools, bindings, timers and counters.
///
/// See the [module docs](self) for the request classification and
/// [`Reply`] for where replies go.
#[derive(Debug)]
pub struct DhcpServer {
    pools: Vec<PoolState>,
    bindings: HashMap<ClientKey, Binding>,
    by_ip: HashMap<Ipv4Addr, ClientKey>,
    deadlines: BTreeSet<(u64, ClientKey)>,
    /// Last address each client held, for the sticky preference.
    history: HashMap<ClientKey, Ipv4Addr>,
    history_cap: usize,
    counters: ServerCounters,
    /// Addresses held by clients other than DHCP ones (PPP sessions), with
    /// their pool index.
    external: HashMap<Ipv4Addr, usize>,
}

impl DhcpServer {
    /// A server for `pools`. Each pool is validated
    /// ([`PoolConfig::validate`]); names must be unique and ranges disjoint.
    pub fn new(pools: Vec<PoolConfig>) -> Result<Self, ConfigError> {
        let mut states: Vec<PoolState> = Vec::with_capacity(pools.len());
        for cfg in pools {
            let alloc = AddressPool::new(&cfg)?;
            for other in &states {
                if other.cfg.name == cfg.name {
                    return Err(ConfigError::DuplicateName(cfg.name));
                }
                if cfg.range_start <= other.cfg.range_end && other.cfg.range_start <= cfg.range_end
                {
                    return Err(ConfigError::Overlap {
                        pool: cfg.name,
                        other: other.cfg.name.clone(),
                    });
                }
            }
            states.push(PoolState { cfg, alloc });
        }
        let capacity: usize = states.iter().map(|p| p.alloc.capacity()).sum();
        Ok(DhcpServer {
            pools: states,
            bindings: HashMap::new(),
            by_ip: HashMap::new(),
            deadlines: BTreeSet::new(),
            history: HashMap::new(),
            history_cap: capacity.saturating_mul(4).max(1024),
            counters: ServerCounters::default(),
            external: HashMap::new(),
        })
    }

    /// An address of pool `pool` for a client that is not a DHCP client (a
    /// PPP session, whose address IPCP hands out): `fixed` if it is a free
    /// host of the pool's subnet, else the next free address of its range.
    /// The address stays taken until [`DhcpServer::release_external`].
    /// Returns the address and the pool's configuration (gateway, DNS).
    pub fn claim_external(
        &mut self,
        pool: &str,
        fixed: Option<Ipv4Addr>,
        now_ms: u64,
    ) -> Result<(Ipv4Addr, &PoolConfig), DropReason> {
        let pi = self.pool_index(pool).ok_or(DropReason::UnknownPool)?;
        let ip = match fixed {
            Some(f) => self.claim(pi, f, now_ms).then_some(f),
            None => self.pools[pi].alloc.allocate(None, now_ms),
        }
        .ok_or(DropReason::PoolExhausted)?;
        self.external.insert(ip, pi);
        Ok((ip, &self.pools[pi].cfg))
    }

    /// Give back an address taken with [`DhcpServer::claim_external`].
    /// False if it was not taken that way.
    pub fn release_external(&mut self, ip: Ipv4Addr) -> bool {
        match self.external.remove(&ip) {
            Some(pi) => {
                self.pools[pi].alloc.release(ip);
                true
            }
            None => false,
        }
    }

    /// Handle one client message received at `now_ms` (monotonic ms).
    ///
    /// `ctx` identifies the client; where its circuit/remote id are `None`
    /// they are filled from the message's option 82. `authorize` is called
    /// for a DISCOVER or REQUEST from a client with no binding. Never
    /// panics, whatever the message holds.
    pub fn handle(
        &mut self,
        now_ms: u64,
        ctx: &ClientContext,
        msg: &Message,
        authorize: &mut dyn FnMut(&ClientContext) -> Authorization,
    ) -> Handled {
        let mtype = msg.opts().msg_type();
        match mtype {
            Some(MessageType::Discover) => self.counters.rx_discover += 1,
            Some(MessageType::Request) => self.counters.rx_request += 1,
            Some(MessageType::Decline) => self.counters.rx_decline += 1,
            Some(MessageType::Release) => self.counters.rx_release += 1,
            Some(MessageType::Inform) => self.counters.rx_inform += 1,
            _ => self.counters.rx_other += 1,
        }
        // chaddr() slices by hlen, which comes straight from the wire.
        if msg.opcode() != Opcode::BootRequest || msg.hlen() > 16 {
            return self.drop(DropReason::Malformed);
        }
        let ctx = merge_relay_ids(ctx, msg);
        match mtype {
            None => self.drop(DropReason::Malformed),
            Some(MessageType::Discover) => self.discover(now_ms, &ctx, msg, authorize),
            Some(MessageType::Request) => self.request(now_ms, &ctx, msg, authorize),
            Some(MessageType::Decline) => self.decline(now_ms, &ctx.key, msg),
            Some(MessageType::Release) => self.release_msg(&ctx.key, msg),
            Some(MessageType::Inform) => self.inform(&ctx.key, msg),
            Some(_) => self.drop(DropReason::UnsupportedType),
        }
    }

    /// Expire bound leases and held offers whose time is up at `now_ms`.
    /// Returns one [`LeaseEvent::Expired`] per bound lease; offers expire
    /// silently (nothing was programmed for them).
    pub fn poll(&mut self, now_ms: u64) -> Vec<LeaseEvent> {
        let mut events = Vec::new();
        while let Some(&(deadline, key)) = self.deadlines.first() {
            if deadline > now_ms {
                break;
            }
            self.deadlines.pop_first();
            let Some(b) = self.unbind(&key) else {
                continue;
            };
            self.return_address(b.pool, b.lease.ipv4);
            match b.state {
                BindState::Bound => {
                    self.counters.leases_expired += 1;
                    events.push(LeaseEvent::Expired(b.lease));
                }
                BindState::Offered => self.counters.offers_expired += 1,
            }
        }
        for p in &mut self.pools {
            p.alloc.reclaim(now_ms);
        }
        events
    }

    /// Remove `key`'s binding administratively (e.g. `DELETE /sessions`).
    /// Returns [`LeaseEvent::Released`] if it had a bound lease; a held
    /// offer is dropped silently. The client learns of it only when it
    /// next renews (and gets a NAK).
    pub fn release(&mut self, key: &ClientKey) -> Option<LeaseEvent> {
        let b = self.unbind(key)?;
        self.return_address(b.pool, b.lease.ipv4);
        (b.state == BindState::Bound).then(|| {
            self.counters.leases_released += 1;
            LeaseEvent::Released(b.lease)
        })
    }

    /// Re-install a bound lease the caller persisted (control plane
    /// restart). False if its pool is unknown, the address is not a host of
    /// that pool's subnet, is the gateway, or is held by another client.
    pub fn restore(&mut self, lease: Lease) -> bool {
        let Some(pi) = self.pool_index(&lease.pool) else {
            return false;
        };
        if self.bindings.contains_key(&lease.key) || !self.claim(pi, lease.ipv4, 0) {
            return false;
        }
        let key = lease.key;
        self.by_ip.insert(lease.ipv4, key);
        self.deadlines.insert((lease.expires_at_ms, key));
        self.bindings.insert(
            key,
            Binding {
                state: BindState::Bound,
                pool: pi,
                deadline: lease.expires_at_ms,
                lease,
            },
        );
        true
    }

    /// All bound leases (offers excluded), in no particular order.
    pub fn leases(&self) -> impl Iterator<Item = &Lease> {
        self.bindings
            .values()
            .filter(|b| b.state == BindState::Bound)
            .map(|b| &b.lease)
    }

    /// The bound lease of `key`, if any.
    pub fn lease(&self, key: &ClientKey) -> Option<&Lease> {
        self.bindings
            .get(key)
            .filter(|b| b.state == BindState::Bound)
            .map(|b| &b.lease)
    }

    /// The bound lease holding `ipv4`, if any.
    pub fn lease_by_ip(&self, ipv4: Ipv4Addr) -> Option<&Lease> {
        self.by_ip.get(&ipv4).and_then(|k| self.lease(k))
    }

    /// The earliest time (ms) at which [`poll`](Self::poll) has work.
    pub fn next_deadline(&self) -> Option<u64> {
        self.deadlines.first().map(|(t, _)| *t)
    }

    /// The allocator of pool `name` (for occupancy metrics).
    pub fn pool(&self, name: &str) -> Option<&AddressPool> {
        self.pool_index(name).map(|i| &self.pools[i].alloc)
    }

    /// The configured pools.
    pub fn pool_configs(&self) -> impl Iterator<Item = &PoolConfig> {
        self.pools.iter().map(|p| &p.cfg)
    }

    /// Message and event counters since creation.
    pub fn counters(&self) -> &ServerCounters {
        &self.counters
    }

    // ---- message handlers -------------------------------------------------

    /// RFC 2131 section 4.3.1: choose an address, hold it, send DHCPOFFER.
    fn discover(
        &mut self,
        now_ms: u64,
        ctx: &ClientContext,
        msg: &Message,
        authorize: &mut dyn FnMut(&ClientContext) -> Authorization,
    ) -> Handled {
        let key = ctx.key;
        if let Some(b) = self.bindings.get(&key) {
            // A client that lost its state: offer what it already has.
            let (pi, ip) = (b.pool, b.lease.ipv4);
            if b.state == BindState::Offered {
                self.set_deadline(&key, now_ms.saturating_add(OFFER_HOLD_MS));
            }
            return self.reply(msg, MessageType::Offer, ip, pi, Vec::new());
        }
        let (pi, fixed) = match self.authorized_pool(ctx, authorize) {
            Ok(x) => x,
            Err(reason) => return self.drop(reason),
        };
        let requested = match msg.opts().get(OptionCode::RequestedIpAddress) {
            Some(DhcpOption::RequestedIpAddress(ip)) => Some(*ip),
            _ => None,
        };
        let Some(ip) = self.pick_address(pi, &key, fixed, requested, now_ms) else {
            return self.drop(DropReason::PoolExhausted);
        };
        let lease = self.new_lease(pi, ctx, msg, ip, now_ms);
        self.bind_offer(key, pi, lease, now_ms.saturating_add(OFFER_HOLD_MS));
        self.reply(msg, MessageType::Offer, ip, pi, Vec::new())
    }

    /// RFC 2131 section 4.3.2.
    fn request(
        &mut self,
        now_ms: u64,
        ctx: &ClientContext,
        msg: &Message,
        authorize: &mut dyn FnMut(&ClientContext) -> Authorization,
    ) -> Handled {
        let key = ctx.key;
        let opts = msg.opts();
        let server_id = match opts.get(OptionCode::ServerIdentifier) {
            Some(DhcpOption::ServerIdentifier(ip)) => Some(*ip),
            _ => None,
        };
        let requested = match opts.get(OptionCode::RequestedIpAddress) {
            Some(DhcpOption::RequestedIpAddress(ip)) => Some(*ip),
            _ => None,
        };
        let ciaddr = msg.ciaddr();

        if let Some(sid) = server_id {
            // SELECTING: the client answers one server's offer.
            let Some(b) = self.bindings.get(&key) else {
                return match self.pool_by_server_id(sid) {
                    // Our offer timed out: tell the client to start over.
                    Some(pi) => self.nak(msg, pi, DropReason::NoBinding),
                    None => self.drop(DropReason::NotForUs),
                };
            };
            let (pi, ip, state) = (b.pool, b.lease.ipv4, b.state);
            if sid != self.pools[pi].cfg.gateway {
                // The client chose another server: forget our offer.
                if state == BindState::Offered {
                    self.release(&key);
                }
                return self.drop(DropReason::NotForUs);
            }
            let wanted = requested.or((!ciaddr.is_unspecified()).then_some(ciaddr));
            let Some(wanted) = wanted else {
                return self.drop(DropReason::Malformed);
            };
            if wanted != ip {
                if state == BindState::Offered {
                    self.release(&key);
                }
                return self.nak(msg, pi, DropReason::WrongAddress);
            }
            return self.ack(now_ms, ctx, msg);
        }

        // INIT-REBOOT (requested ip) or RENEWING/REBINDING (ciaddr).
        let wanted = match requested {
            Some(ip) => ip,
            None if !ciaddr.is_unspecified() => ciaddr,
            None => return self.drop(DropReason::Malformed),
        };
        if let Some(b) = self.bindings.get(&key) {
            let pi = b.pool;
            if b.lease.ipv4 != wanted {
                return self.nak(msg, pi, DropReason::WrongAddress);
            }
            return self.ack(now_ms, ctx, msg);
        }
        // No record of this client: adopt its address if AAA allows it.
        let (pi, fixed) = match self.authorized_pool(ctx, authorize) {
            Ok(x) => x,
            Err(DropReason::Denied) => {
                return match self.pool_for_address(wanted) {
                    Some(pi) => self.nak(msg, pi, DropReason::Denied),
                    None => self.drop(DropReason::Denied),
                };
            }
            Err(reason) => return self.drop(reason),
        };
        let acceptable = fixed.is_none_or(|f| f == wanted)
            && (fixed.is_some() || self.pools[pi].alloc.contains(wanted))
            && self.claim(pi, wanted, now_ms);
        if !acceptable {
            return self.nak(msg, pi, DropReason::WrongAddress);
        }
        let lease = self.new_lease(pi, ctx, msg, wanted, now_ms);
        self.bind_offer(key, pi, lease, now_ms);
        self.ack(now_ms, ctx, msg)
    }

    /// RFC 2131 section 4.3.3: the client found the address in use.
    fn decline(&mut self, now_ms: u64, key: &ClientKey, msg: &Message) -> Handled {
        let Some(DhcpOption::RequestedIpAddress(ip)) =
            msg.opts().get(OptionCode::RequestedIpAddress)
        else {
            return self.drop(DropReason::Malformed);
        };
        let ip = *ip;
        let Some(b) = self.bindings.get(key) else {
            return self.drop(DropReason::NoBinding);
        };
        if let Some(reason) = self.check_ours(msg, b.pool, b.lease.ipv4, ip) {
            return self.drop(reason);
        }
        let Some(b) = self.unbind(key) else {
            return self.drop(DropReason::NoBinding);
        };
        self.by_ip.remove(&ip);
        self.pools[b.pool].alloc.decline(ip, now_ms);
        let mut handled = Handled::default();
        if b.state == BindState::Bound {
            self.counters.leases_declined += 1;
            handled.events.push(LeaseEvent::Declined(b.lease));
        }
        handled
    }

    /// RFC 2131 section 4.3.4: the client gives its address back.
    fn release_msg(&mut self, key: &ClientKey, msg: &Message) -> Handled {
        let Some(b) = self.bindings.get(key) else {
            return self.drop(DropReason::NoBinding);
        };
        if let Some(reason) = self.check_ours(msg, b.pool, b.lease.ipv4, msg.ciaddr()) {
            return self.drop(reason);
        }
        Handled {
            events: self.release(key).into_iter().collect(),
            ..Handled::default()
        }
    }

    /// RFC 2131 section 4.3.5: configuration only, no lease, no yiaddr.
    fn inform(&mut self, key: &ClientKey, msg: &Message) -> Handled {
        let ciaddr = msg.ciaddr();
        if ciaddr.is_unspecified() {
            return self.drop(DropReason::Malformed);
        }
        let pi = match self.bindings.get(key) {
            Some(b) => Some(b.pool),
            None => self.pool_for_address(ciaddr),
        };
        match pi {
            Some(pi) => self.reply(msg, MessageType::Ack, Ipv4Addr::UNSPECIFIED, pi, Vec::new()),
            None => self.drop(DropReason::NoBinding),
        }
    }

    // ---- helpers ----------------------------------------------------------

    /// Bind (or extend) `ctx.key`'s existing binding and build the ACK.
    fn ack(&mut self, now_ms: u64, ctx: &ClientContext, msg: &Message) -> Handled {
        let key = ctx.key;
        let Some(b) = self.bindings.get_mut(&key) else {
            return self.drop(DropReason::NoBinding);
        };
        let pi = b.pool;
        let lease_time_s = self.pools[pi].cfg.lease_time_s;
        let first = b.state == BindState::Offered;
        b.state = BindState::Bound;
        let lease = &mut b.lease;
        if first {
            lease.bound_at_ms = now_ms;
        }
        lease.lease_time_s = lease_time_s;
        lease.expires_at_ms = now_ms.saturating_add(u64::from(lease_time_s) * 1000);
        lease.circuit_id.clone_from(&ctx.circuit_id);
        lease.remote_id.clone_from(&ctx.remote_id);
        update_client_options(lease, msg);
        let (ip, expires) = (lease.ipv4, lease.expires_at_ms);
        let event = if first {
            self.counters.leases_bound += 1;
            LeaseEvent::Bound(lease.clone())
        } else {
            self.counters.leases_renewed += 1;
            LeaseEvent::Renewed(lease.clone())
        };
        self.set_deadline(&key, expires);
        self.reply(msg, MessageType::Ack, ip, pi, vec![event])
    }

    /// Ask AAA and resolve the pool; `Err` carries the drop reason.
    fn authorized_pool(
        &mut self,
        ctx: &ClientContext,
        authorize: &mut dyn FnMut(&ClientContext) -> Authorization,
    ) -> Result<(usize, Option<Ipv4Addr>), DropReason> {
        match authorize(ctx) {
            Authorization::Deny => Err(DropReason::Denied),
            Authorization::Pending => Err(DropReason::AuthPending),
            Authorization::Allow { pool, fixed_ipv4 } => self
                .pool_index(&pool)
                .map(|pi| (pi, fixed_ipv4))
                .ok_or(DropReason::UnknownPool),
        }
    }

    /// The fixed address if it can be claimed, else the requested one, else
    /// the client's previous one, else the longest-free one.
    fn pick_address(
        &mut self,
        pi: usize,
        key: &ClientKey,
        fixed: Option<Ipv4Addr>,
        requested: Option<Ipv4Addr>,
        now_ms: u64,
    ) -> Option<Ipv4Addr> {
        if let Some(f) = fixed {
            return self.claim(pi, f, now_ms).then_some(f);
        }
        if let Some(r) = requested
            && self.pools[pi].alloc.take(r, now_ms)
        {
            return Some(r);
        }
        let sticky = self.history.get(key).copied();
        self.pools[pi].alloc.allocate(sticky, now_ms)
    }

    /// Claim a specific address of pool `pi` (in the dynamic range through
    /// the allocator; outside it, for fixed addresses, only if it is a
    /// usable host of the subnet no one else holds).
    fn claim(&mut self, pi: usize, ip: Ipv4Addr, now_ms: u64) -> bool {
        let p = &mut self.pools[pi];
        if !p.cfg.is_subnet_host(ip)
            || ip == p.cfg.gateway
            || self.by_ip.contains_key(&ip)
            || self.external.contains_key(&ip)
        {
            return false;
        }
        if p.alloc.contains(ip) {
            return p.alloc.take(ip, now_ms);
        }
        true
    }

    fn return_address(&mut self, pi: usize, ip: Ipv4Addr) {
        self.by_ip.remove(&ip);
        self.pools[pi].alloc.release(ip);
    }

    fn new_lease(
        &self,
        pi: usize,
        ctx: &ClientContext,
        msg: &Message,
        ip: Ipv4Addr,
        now_ms: u64,
    ) -> Lease {
        let cfg = &self.pools[pi].cfg;
        let mut lease = Lease {
            key: ctx.key,
            ipv4: ip,
            pool: cfg.name.clone(),
            gateway: cfg.gateway,
            prefix_len: cfg.prefix_len,
            lease_time_s: cfg.lease_time_s,
            bound_at_ms: now_ms,
            expires_at_ms: now_ms,
            circuit_id: ctx.circuit_id.clone(),
            remote_id: ctx.remote_id.clone(),
            client_id: None,
            hostname: None,
        };
        update_client_options(&mut lease, msg);
        lease
    }

    fn bind_offer(&mut self, key: ClientKey, pi: usize, lease: Lease, deadline: u64) {
        self.by_ip.insert(lease.ipv4, key);
        self.deadlines.insert((deadline, key));
        self.bindings.insert(
            key,
            Binding {
                state: BindState::Offered,
                pool: pi,
                deadline,
                lease,
            },
        );
    }

    fn set_deadline(&mut self, key: &ClientKey, deadline: u64) {
        if let Some(b) = self.bindings.get_mut(key) {
            self.deadlines.remove(&(b.deadline, *key));
            b.deadline = deadline;
            self.deadlines.insert((deadline, *key));
        }
    }

    /// Remove a binding and its timer; remember its address for the sticky
    /// preference. The address is not yet returned to the pool.
    fn unbind(&mut self, key: &ClientKey) -> Option<Binding> {
        let b = self.bindings.remove(key)?;
        self.deadlines.remove(&(b.deadline, *key));
        if self.history.len() >= self.history_cap {
            self.history.clear();
        }
        self.history.insert(*key, b.lease.ipv4);
        Some(b)
    }

    /// RELEASE/DECLINE: the server id (if present) must be ours and the
    /// address the client's.
    fn check_ours(
        &self,
        msg: &Message,
        pi: usize,
        held: Ipv4Addr,
        named: Ipv4Addr,
    ) -> Option<DropReason> {
        if let Some(DhcpOption::ServerIdentifier(sid)) =
            msg.opts().get(OptionCode::ServerIdentifier)
            && *sid != self.pools[pi].cfg.gateway
        {
            return Some(DropReason::NotForUs);
        }
        (held != named).then_some(DropReason::WrongAddress)
    }

    fn pool_index(&self, name: &str) -> Option<usize> {
        self.pools.iter().position(|p| p.cfg.name == name)
    }

    fn pool_by_server_id(&self, sid: Ipv4Addr) -> Option<usize> {
        self.pools.iter().position(|p| p.cfg.gateway == sid)
    }

    fn pool_for_address(&self, ip: Ipv4Addr) -> Option<usize> {
        self.pools.iter().position(|p| p.cfg.is_subnet_host(ip))
    }

    fn drop(&mut self, reason: DropReason) -> Handled {
        self.counters.drops[reason as usize] += 1;
        match reason {
            DropReason::Malformed => self.counters.malformed += 1,
            DropReason::Denied => self.counters.denied += 1,
            _ => self.counters.ignored += 1,
        }
        Handled {
            dropped: Some(reason),
            ..Handled::default()
        }
    }

    fn nak(&mut self, msg: &Message, pi: usize, reason: DropReason) -> Handled {
        self.counters.drops[reason as usize] += 1;
        if reason == DropReason::Denied {
            self.counters.denied += 1;
        }
        let mut handled = self.reply(msg, MessageType::Nak, Ipv4Addr::UNSPECIFIED, pi, Vec::new());
        handled.dropped = Some(reason);
        handled
    }

    /// Build an OFFER, ACK or NAK for `req` from pool `pi` and pick its
    /// destination.
    fn reply(
        &mut self,
        req: &Message,
        mtype: MessageType,
        yiaddr: Ipv4Addr,
        pi: usize,
        events: Vec<LeaseEvent>,
    ) -> Handled {
        let cfg = &self.pools[pi].cfg;
        let req_type = req.opts().msg_type();
        let with_lease = mtype != MessageType::Nak && req_type != Some(MessageType::Inform);
        let mut m = build_reply(req, mtype, yiaddr, cfg, with_lease);
        let (dst_ip, dst_port, dst_mac_broadcast) = destination(req, &mut m, yiaddr);
        match mtype {
            MessageType::Offer => self.counters.tx_offer += 1,
            MessageType::Ack => self.counters.tx_ack += 1,
            _ => self.counters.tx_nak += 1,
        }
        self.counters.replies += 1;
        Handled {
            reply: Some(Reply {
                msg: m,
                src_ip: cfg.gateway,
                dst_ip,
                dst_port,
                dst_mac_broadcast,
            }),
            events,
            dropped: None,
        }
    }
}

/// Circuit id and remote id from `msg`'s option 82 (RFC 3046), if present.
pub fn relay_ids(msg: &Message) -> (Option<Vec<u8>>, Option<Vec<u8>>) {
    let Some(DhcpOption::RelayAgentInformation(info)) =
        msg.opts().get(OptionCode::RelayAgentInformation)
    else {
        return (None, None);
    };
    let circuit = match info.get(RelayCode::AgentCircuitId) {
        Some(RelayInfo::AgentCircuitId(v)) => Some(v.clone()),
        _ => None,
    };
    let remote = match info.get(RelayCode::AgentRemoteId) {
        Some(RelayInfo::AgentRemoteId(v)) => Some(v.clone()),
        _ => None,
    };
    (circuit, remote)
}

/// The caller's context with missing circuit/remote ids taken from option 82.
fn merge_relay_ids<'a>(ctx: &'a ClientContext, msg: &Message) -> Cow<'a, ClientContext> {
    if ctx.circuit_id.is_some() && ctx.remote_id.is_some() {
        return Cow::Borrowed(ctx);
    }
    match relay_ids(msg) {
        (None, None) => Cow::Borrowed(ctx),
        (circuit, remote) => Cow::Owned(ClientContext {
            key: ctx.key,
            circuit_id: ctx.circuit_id.clone().or(circuit),
            remote_id: ctx.remote_id.clone().or(remote),
        }),
    }
}

fn update_client_options(lease: &mut Lease, msg: &Message) {
    if let Some(DhcpOption::ClientIdentifier(id)) = msg.opts().get(OptionCode::ClientIdentifier) {
        lease.client_id = Some(id.clone());
    }
    if let Some(DhcpOption::Hostname(h)) = msg.opts().get(OptionCode::Hostname) {
        lease.hostname = Some(h.clone());
    }
}

/// Header and options of a reply (RFC 2131 section 4.3.1 table 3).
fn build_reply(
    req: &Message,
    mtype: MessageType,
    yiaddr: Ipv4Addr,
    cfg: &PoolConfig,
    with_lease: bool,
) -> Message {
    let mut m = Message::default();
    m.set_opcode(Opcode::BootReply)
        .set_htype(req.htype())
        .set_xid(req.xid())
        .set_flags(req.flags())
        .set_giaddr(req.giaddr())
        .set_yiaddr(yiaddr)
        .set_chaddr(req.chaddr());
    // ciaddr: copied into ACKs, zero in OFFER and NAK.
    if mtype == MessageType::Ack {
        m.set_ciaddr(req.ciaddr());
    }
    let opts = m.opts_mut();
    opts.insert(DhcpOption::MessageType(mtype));
    opts.insert(DhcpOption::ServerIdentifier(cfg.gateway));
    if mtype == MessageType::Nak {
        opts.insert(DhcpOption::Message(
            "requested address not available".into(),
        ));
    } else {
        if with_lease {
            let t = cfg.lease_time_s;
            opts.insert(DhcpOption::AddressLeaseTime(t));
            opts.insert(DhcpOption::Renewal(t / 2));
            opts.insert(DhcpOption::Rebinding((u64::from(t) * 7 / 8) as u32));
        }
        opts.insert(DhcpOption::SubnetMask(cfg.subnet_mask()));
        opts.insert(DhcpOption::Router(vec![cfg.gateway]));
        if !cfg.dns.is_empty() {
            opts.insert(DhcpOption::DomainNameServer(cfg.dns.clone()));
        }
        if let Some(DhcpOption::ParameterRequestList(prl)) =
            req.opts().get(OptionCode::ParameterRequestList)
            && prl.contains(&OptionCode::BroadcastAddr)
        {
            opts.insert(DhcpOption::BroadcastAddr(cfg.broadcast()));
        }
    }
    // RFC 6842: echo the client identifier.
    if let Some(id @ DhcpOption::ClientIdentifier(_)) = req.opts().get(OptionCode::ClientIdentifier)
    {
        opts.insert(id.clone());
    }
    // RFC 3046 section 2.2: echo relay agent information unchanged.
    if let Some(info @ DhcpOption::RelayAgentInformation(_)) =
        req.opts().get(OptionCode::RelayAgentInformation)
    {
        opts.insert(info.clone());
    }
    m
}

/// RFC 2131 section 4.1, "If the 'giaddr' field in a DHCP message from a
/// client is non-zero, the server sends any return messages to the 'DHCP
/// server' port on the BOOTP relay agent whose address appears in
/// 'giaddr'. If the 'giaddr' field is zero and the 'ciaddr' field is
/// nonzero, then the server unicasts DHCPOFFER and DHCPACK messages to the
/// address in 'ciaddr'. If 'giaddr' is zero and 'ciaddr' is zero, and the
/// broadcast bit is set, then the server broadcasts DHCPOFFER and DHCPACK
/// messages to 0xffffffff. If the broadcast bit is not set and 'giaddr' is
/// zero and 'ciaddr' is zero, then the server unicasts DHCPOFFER and
/// DHCPACK messages to the client's hardware address and 'yiaddr' address.
/// In all cases, when 'giaddr' is zero, the server broadcasts any DHCPNAK
/// messages to 0xffffffff." And section 4.3.2: a NAK through a relay has
/// the broadcast bit set so the relay broadcasts it to the client.
///
/// Returns (destination ip, destination port, Ethernet broadcast).
fn destination(req: &Message, reply: &mut Message, yiaddr: Ipv4Addr) -> (Ipv4Addr, u16, bool) {
    let is_nak = reply.opts().has_msg_type(MessageType::Nak);
    let giaddr = req.giaddr();
    if !giaddr.is_unspecified() {
        if is_nak {
            let flags = reply.flags().set_broadcast();
            reply.set_flags(flags);
        }
        return (giaddr, SERVER_PORT, false);
    }
    if is_nak {
        return (Ipv4Addr::BROADCAST, CLIENT_PORT, true);
    }
    let ciaddr = req.ciaddr();
    if !ciaddr.is_unspecified() {
        return (ciaddr, CLIENT_PORT, false);
    }
    if req.flags().broadcast() || yiaddr.is_unspecified() {
        return (Ipv4Addr::BROADCAST, CLIENT_PORT, true);
    }
    (yiaddr, CLIENT_PORT, false)
}
