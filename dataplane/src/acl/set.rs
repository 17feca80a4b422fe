//! [`AclSet`]: the compiled ACLs a pipeline holds, each under an id that stays the same
//! across rebuilds for as long as its name stays configured, and the flat counter array
//! their rules count into.

use alloc::string::String;
use alloc::vec::Vec;

use hashbrown::HashMap;

use super::classifier::{Address, Classifier, LinearScan};
use super::{AclAction, AclId, AclRule, AclSpec, Direction, FlowV4, FlowV6, IpPrefix, NO_ACL};

/// Why [`AclSet::build`] refused a configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AclError {
    /// Two ACLs share a name.
    #[error("ACL {name:?} is defined more than once")]
    DuplicateName {
        /// The repeated name.
        name: String,
    },
    /// The global ACL names no configured ACL.
    #[error("global ACL {name:?} is not defined")]
    UnknownGlobal {
        /// The name given as global.
        name: String,
    },
    /// A rule has an IPv4 prefix on one side and an IPv6 prefix on the other.
    #[error(
        "ACL {acl:?}: {}[{rule}]: src and dst prefixes are of different address families",
        direction_key(*direction)
    )]
    MixedFamilies {
        /// The ACL.
        acl: String,
        /// Its rule list.
        direction: Direction,
        /// Position of the rule in that list, from 0.
        rule: usize,
    },
    /// A prefix is longer than its family's addresses.
    #[error(
        "ACL {acl:?}: {}[{rule}].{field}: prefix length {len} is longer than {max}",
        direction_key(*direction)
    )]
    PrefixLength {
        /// The ACL.
        acl: String,
        /// Its rule list.
        direction: Direction,
        /// Position of the rule in that list, from 0.
        rule: usize,
        /// `src` or `dst`.
        field: &'static str,
        /// The configured length.
        len: u8,
        /// The family's address width (32 or 128).
        max: u8,
    },
    /// A port range whose first port is above its last.
    #[error(
        "ACL {acl:?}: {}[{rule}].{field}: port range {first}-{last} is empty (first > last)",
        direction_key(*direction)
    )]
    PortRange {
        /// The ACL.
        acl: String,
        /// Its rule list.
        direction: Direction,
        /// Position of the rule in that list, from 0.
        rule: usize,
        /// `src_port` or `dst_port`.
        field: &'static str,
        /// First port.
        first: u16,
        /// Last port.
        last: u16,
    },
    /// Every id has been given out in this set's lineage (ids are never reused).
    #[error(
        "no ACL id left: all {} ids have been given out since the user plane started",
        AclId::MAX
    )]
    IdsExhausted,
}

/// How a rule list is named in configuration keys and messages.
fn direction_key(direction: Direction) -> &'static str {
    match direction {
        Direction::Ingress => "ingress",
        Direction::Egress => "egress",
    }
}

/// What one counter of [`AclSet::counter_labels`] counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CounterLabel<'a> {
    /// Index into the counter array.
    pub index: usize,
    /// Name of the ACL.
    pub acl: &'a str,
    /// Its rule list.
    pub direction: Direction,
    /// Position of the rule in that list, from 0; None for the default action (no rule
    /// matched).
    pub rule: Option<usize>,
    /// What the rule (or the default) does.
    pub action: AclAction,
}

/// Lists of at most this many rules are checked one rule after the other: measured with
/// `vbng-perf acl`, a scan of 10 rules costs a quarter of the bit-vector lookup, which only
/// wins from a few dozen rules on.
const SCAN_MAX_RULES: usize = 16;

/// How one rule list finds its first matching rule: a scan for short lists, the
/// bit-vector [`Classifier`] for long ones. Both give the same answer.
#[derive(Debug, Clone)]
enum Matcher<A: Address> {
    Scan(LinearScan<A>),
    BitVectors(alloc::boxed::Box<Classifier<A>>),
}

impl<A: Address> Matcher<A> {
    fn compile(rules: &[(u32, AclRule)]) -> Self {
        if rules.len() <= SCAN_MAX_RULES {
            Matcher::Scan(LinearScan::compile(rules))
        } else {
            Matcher::BitVectors(alloc::boxed::Box::new(Classifier::compile(rules)))
        }
    }

    fn heap_bytes(&self) -> usize {
        match self {
            Matcher::Scan(s) => s.heap_bytes(),
            Matcher::BitVectors(c) => c.heap_bytes(),
        }
    }
}

impl Matcher<u32> {
    #[inline]
    fn classify(&self, flow: &FlowV4) -> Option<u32> {
        match self {
            Matcher::Scan(s) => s.classify(flow),
            Matcher::BitVectors(c) => c.classify(flow),
        }
    }
}

impl Matcher<u128> {
    #[inline]
    fn classify(&self, flow: &FlowV6) -> Option<u32> {
        match self {
            Matcher::Scan(s) => s.classify(flow),
            Matcher::BitVectors(c) => c.classify(flow),
        }
    }
}

/// One rule list (ingress or egress) of a compiled ACL.
#[derive(Debug, Clone)]
struct CompiledRules {
    /// Action of each rule, in list order.
    actions: Vec<AclAction>,
    v4: Matcher<u32>,
    v6: Matcher<u128>,
    /// Index of this list's first counter: one per rule, then one for "no rule matched".
    first_counter: usize,
}

impl CompiledRules {
    fn compile(rules: &[AclRule], first_counter: usize) -> CompiledRules {
        let indexed: Vec<(u32, AclRule)> = rules
            .iter()
            .enumerate()
            .map(|(position, rule)| (position as u32, *rule))
            .collect();
        CompiledRules {
            actions: rules.iter().map(|rule| rule.action).collect(),
            v4: Matcher::compile(&indexed),
            v6: Matcher::compile(&indexed),
            first_counter,
        }
    }

    fn counters(&self) -> usize {
        self.actions.len() + 1
    }

    /// The action and counter for the rule that matched, or the default's when none did.
    #[inline]
    fn verdict(&self, matched: Option<u32>, default_action: AclAction) -> (AclAction, usize) {
        matched
            .and_then(|rule| {
                let rule = rule as usize;
                Some((*self.actions.get(rule)?, self.first_counter + rule))
            })
            .unwrap_or((default_action, self.first_counter + self.actions.len()))
    }

    fn heap_bytes(&self) -> usize {
        self.actions.capacity() * size_of::<AclAction>()
            + self.v4.heap_bytes()
            + self.v6.heap_bytes()
    }
}

#[derive(Debug, Clone)]
struct CompiledAcl {
    name: String,
    default_action: AclAction,
    ingress: CompiledRules,
    egress: CompiledRules,
}

impl CompiledAcl {
    fn rules(&self, direction: Direction) -> &CompiledRules {
        match direction {
            Direction::Ingress => &self.ingress,
            Direction::Egress => &self.egress,
        }
    }
}

/// The compiled ACLs of one configuration, looked up by [`AclId`] on the packet path.
///
/// Built from the configured [`AclSpec`]s by [`AclSet::build`]; a rebuild from a new
/// configuration that passes the current set as `previous` keeps the id of every name that
/// stays, so sessions holding an id keep their ACL (with its new rules). An id whose name
/// was removed is never given out again: packets of a session still holding it are treated
/// as having no ACL.
#[derive(Debug, Clone)]
pub struct AclSet {
    /// Indexed by id; None for [`NO_ACL`] and for removed ACLs (tombstones). Its length is
    /// the next id to give out.
    slots: Vec<Option<CompiledAcl>>,
    /// Live ids in configuration order: the order of names and counter blocks.
    order: Vec<AclId>,
    by_name: HashMap<String, AclId>,
    global: AclId,
    counter_len: usize,
}

impl Default for AclSet {
    fn default() -> Self {
        AclSet::empty()
    }
}

impl AclSet {
    /// A set without ACLs and without a global ACL.
    pub fn empty() -> AclSet {
        AclSet {
            slots: alloc::vec![None],
            order: Vec::new(),
            by_name: HashMap::new(),
            global: NO_ACL,
            counter_len: 0,
        }
    }

    /// Compiles `specs`. `global` names the ACL every session's packets are checked
    /// against first. Names present in `previous` keep their id there; new names get ids
    /// that `previous` and the sets it was built from never gave out.
    pub fn build(
        global: Option<&str>,
        specs: &[AclSpec],
        previous: Option<&AclSet>,
    ) -> Result<AclSet, AclError> {
        let mut by_name: HashMap<String, AclId> = HashMap::with_capacity(specs.len());
        for spec in specs {
            if by_name.insert(spec.name.clone(), NO_ACL).is_some() {
                return Err(AclError::DuplicateName {
                    name: spec.name.clone(),
                });
            }
            for direction in [Direction::Ingress, Direction::Egress] {
                let rules = match direction {
                    Direction::Ingress => &spec.ingress,
                    Direction::Egress => &spec.egress,
                };
                for (position, rule) in rules.iter().enumerate() {
                    check_rule(&spec.name, direction, position, rule)?;
                }
            }
        }
        if let Some(name) = global
            && !by_name.contains_key(name)
        {
            return Err(AclError::UnknownGlobal { name: name.into() });
        }

        let mut slots: Vec<Option<CompiledAcl>> = Vec::new();
        slots.resize_with(previous.map_or(1, |p| p.slots.len()), || None);
        let mut order = Vec::with_capacity(specs.len());
        let mut counter_len = 0;
        for spec in specs {
            let id = match previous.and_then(|p| p.id(&spec.name)) {
                Some(id) => id,
                None => {
                    let id = AclId::try_from(slots.len()).map_err(|_| AclError::IdsExhausted)?;
                    slots.push(None);
                    id
                }
            };
            let ingress = CompiledRules::compile(&spec.ingress, counter_len);
            counter_len += ingress.counters();
            let egress = CompiledRules::compile(&spec.egress, counter_len);
            counter_len += egress.counters();
            slots[usize::from(id)] = Some(CompiledAcl {
                name: spec.name.clone(),
                default_action: spec.default_action,
                ingress,
                egress,
            });
            by_name.insert(spec.name.clone(), id);
            order.push(id);
        }
        let global = global
            .and_then(|name| by_name.get(name).copied())
            .unwrap_or(NO_ACL);
        Ok(AclSet {
            slots,
            order,
            by_name,
            global,
            counter_len,
        })
    }

    /// The id of the live ACL `name`.
    pub fn id(&self, name: &str) -> Option<AclId> {
        self.by_name.get(name).copied()
    }

    /// The name of the live ACL `id`.
    pub fn name(&self, id: AclId) -> Option<&str> {
        self.acl(id).map(|acl| acl.name.as_str())
    }

    /// The global ACL, [`NO_ACL`] if there is none.
    pub fn global(&self) -> AclId {
        self.global
    }

    /// Number of live ACLs.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// True if the set holds no ACL.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// Names of the live ACLs, in configuration order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.live().map(|acl| acl.name.as_str())
    }

    /// Checks an IPv4 packet against the `direction` rules of ACL `id`: the action of the
    /// first matching rule, or the ACL's default action, and the index of the counter to
    /// count it in. None if `id` is [`NO_ACL`] or names no live ACL.
    #[inline]
    pub fn evaluate_v4(
        &self,
        id: AclId,
        direction: Direction,
        flow: &FlowV4,
    ) -> Option<(AclAction, usize)> {
        let acl = self.acl(id)?;
        let rules = acl.rules(direction);
        Some(rules.verdict(rules.v4.classify(flow), acl.default_action))
    }

    /// [`evaluate_v4`](AclSet::evaluate_v4) for an IPv6 packet.
    #[inline]
    pub fn evaluate_v6(
        &self,
        id: AclId,
        direction: Direction,
        flow: &FlowV6,
    ) -> Option<(AclAction, usize)> {
        let acl = self.acl(id)?;
        let rules = acl.rules(direction);
        Some(rules.verdict(rules.v6.classify(flow), acl.default_action))
    }

    /// Length of the counter array the indexes of `evaluate_*` point into: per live ACL and
    /// direction, one counter per rule and one for the default action.
    pub fn counter_len(&self) -> usize {
        self.counter_len
    }

    /// What each counter counts, in index order (`0..counter_len()`).
    pub fn counter_labels(&self) -> impl Iterator<Item = CounterLabel<'_>> {
        self.live().flat_map(|acl| {
            [Direction::Ingress, Direction::Egress]
                .into_iter()
                .flat_map(move |direction| {
                    let rules = acl.rules(direction);
                    (0..rules.counters()).map(move |position| {
                        let rule_action = rules.actions.get(position).copied();
                        CounterLabel {
                            index: rules.first_counter + position,
                            acl: &acl.name,
                            direction,
                            rule: rule_action.map(|_| position),
                            action: rule_action.unwrap_or(acl.default_action),
                        }
                    })
                })
        })
    }

    /// Bytes this set holds on the heap (approximate for the name index).
    pub fn heap_bytes(&self) -> usize {
        let acls: usize = self
            .live()
            .map(|acl| acl.name.capacity() + acl.ingress.heap_bytes() + acl.egress.heap_bytes())
            .sum();
        let names: usize = self.by_name.keys().map(String::capacity).sum();
        acls + names
            + self.slots.capacity() * size_of::<Option<CompiledAcl>>()
            + self.order.capacity() * size_of::<AclId>()
            + self.by_name.capacity() * (size_of::<(String, AclId)>() + 1)
    }

    #[inline]
    fn acl(&self, id: AclId) -> Option<&CompiledAcl> {
        self.slots.get(usize::from(id))?.as_ref()
    }

    fn live(&self) -> impl Iterator<Item = &CompiledAcl> {
        self.order.iter().filter_map(|id| self.acl(*id))
    }
}

/// Rejects a rule the classifier could only guess at.
fn check_rule(
    acl: &str,
    direction: Direction,
    rule: usize,
    spec: &AclRule,
) -> Result<(), AclError> {
    let family_width = |prefix: &IpPrefix| match prefix {
        IpPrefix::V4 { len, .. } => (*len, 32),
        IpPrefix::V6 { len, .. } => (*len, 128),
    };
    if let (Some(src), Some(dst)) = (&spec.src, &spec.dst)
        && family_width(src).1 != family_width(dst).1
    {
        return Err(AclError::MixedFamilies {
            acl: acl.into(),
            direction,
            rule,
        });
    }
    for (field, prefix) in [("src", &spec.src), ("dst", &spec.dst)] {
        if let Some((len, max)) = prefix.as_ref().map(family_width)
            && len > max
        {
            return Err(AclError::PrefixLength {
                acl: acl.into(),
                direction,
                rule,
                field,
                len,
                max,
            });
        }
    }
    for (field, ports) in [("src_port", spec.src_ports), ("dst_port", spec.dst_ports)] {
        if ports.first > ports.last {
            return Err(AclError::PortRange {
                acl: acl.into(),
                direction,
                rule,
                field,
                first: ports.first,
                last: ports.last,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acl::PortRange;
    use alloc::string::ToString;
    use alloc::vec;
    use core::net::{Ipv4Addr, Ipv6Addr};

    fn spec(name: &str, ingress: Vec<AclRule>, egress: Vec<AclRule>) -> AclSpec {
        AclSpec {
            name: name.into(),
            default_action: AclAction::Permit,
            ingress,
            egress,
        }
    }

    fn deny_tcp_port(port: u16) -> AclRule {
        AclRule {
            action: AclAction::Deny,
            protocol: Some(6),
            dst_ports: PortRange::single(port),
            ..AclRule::default()
        }
    }

    fn v4(addr: [u8; 4], len: u8) -> IpPrefix {
        IpPrefix::V4 {
            addr: Ipv4Addr::from(addr),
            len,
        }
    }

    fn v6(addr: &str, len: u8) -> IpPrefix {
        IpPrefix::V6 {
            addr: addr.parse::<Ipv6Addr>().unwrap(),
            len,
        }
    }

    fn tcp_v4(dst: [u8; 4], dst_port: u16) -> FlowV4 {
        FlowV4 {
            src: u32::from(Ipv4Addr::new(100, 64, 0, 1)),
            dst: u32::from(Ipv4Addr::from(dst)),
            protocol: 6,
            src_port: 40000,
            dst_port,
        }
    }

    fn tcp_v6(dst: &str, dst_port: u16) -> FlowV6 {
        FlowV6 {
            src: 0x2001_0db8_0001 << 80 | 1,
            dst: u128::from(dst.parse::<Ipv6Addr>().unwrap()),
            protocol: 6,
            src_port: 40000,
            dst_port,
        }
    }

    fn names(set: &AclSet) -> Vec<&str> {
        set.names().collect()
    }

    #[test]
    fn the_empty_set_evaluates_nothing() {
        let set = AclSet::empty();
        assert!(set.is_empty());
        assert_eq!((set.len(), set.global(), set.counter_len()), (0, NO_ACL, 0));
        assert_eq!(
            set.evaluate_v4(NO_ACL, Direction::Ingress, &FlowV4::default()),
            None
        );
        assert_eq!(
            set.evaluate_v4(1, Direction::Ingress, &FlowV4::default()),
            None
        );
        assert_eq!(set.counter_labels().count(), 0);
    }

    #[test]
    fn first_match_then_default_with_their_counters() {
        let block_smtp = AclSpec {
            default_action: AclAction::Permit,
            ..spec("block-smtp", vec![deny_tcp_port(25)], vec![])
        };
        let web_only = AclSpec {
            default_action: AclAction::Deny,
            ..spec(
                "web-only",
                vec![
                    AclRule {
                        protocol: Some(6),
                        dst_ports: PortRange::single(443),
                        ..AclRule::default()
                    },
                    AclRule {
                        protocol: Some(17),
                        dst: Some(v4([10, 0, 0, 53], 32)),
                        dst_ports: PortRange::single(53),
                        ..AclRule::default()
                    },
                ],
                vec![AclRule {
                    protocol: Some(6),
                    src_ports: PortRange::single(443),
                    ..AclRule::default()
                }],
            )
        };
        let set = AclSet::build(Some("block-smtp"), &[block_smtp, web_only], None).unwrap();
        let (smtp, web) = (set.id("block-smtp").unwrap(), set.id("web-only").unwrap());
        assert_eq!((smtp, web, set.global()), (1, 2, smtp));
        assert_eq!(set.name(web), Some("web-only"));
        assert_eq!(names(&set), ["block-smtp", "web-only"]);
        // block-smtp: ingress 1 rule + default, egress default; web-only: 2 + 1, 1 + 1.
        assert_eq!(set.counter_len(), 2 + 1 + 3 + 2);

        let ingress = Direction::Ingress;
        assert_eq!(
            set.evaluate_v4(smtp, ingress, &tcp_v4([1, 2, 3, 4], 25)),
            Some((AclAction::Deny, 0))
        );
        assert_eq!(
            set.evaluate_v4(smtp, ingress, &tcp_v4([1, 2, 3, 4], 587)),
            Some((AclAction::Permit, 1))
        );
        assert_eq!(
            set.evaluate_v4(smtp, Direction::Egress, &tcp_v4([1, 2, 3, 4], 25)),
            Some((AclAction::Permit, 2))
        );
        assert_eq!(
            set.evaluate_v4(web, ingress, &tcp_v4([1, 2, 3, 4], 443)),
            Some((AclAction::Permit, 3))
        );
        let dns = FlowV4 {
            protocol: 17,
            ..tcp_v4([10, 0, 0, 53], 53)
        };
        assert_eq!(
            set.evaluate_v4(web, ingress, &dns),
            Some((AclAction::Permit, 4))
        );
        assert_eq!(
            set.evaluate_v4(web, ingress, &tcp_v4([10, 0, 0, 53], 53)),
            Some((AclAction::Deny, 5))
        );
        let reply = FlowV4 {
            src_port: 443,
            dst_port: 40000,
            ..tcp_v4([100, 64, 0, 1], 0)
        };
        assert_eq!(
            set.evaluate_v4(web, Direction::Egress, &reply),
            Some((AclAction::Permit, 6))
        );
        // Rules without prefixes apply to IPv6 too; the IPv4-only DNS rule does not.
        assert_eq!(
            set.evaluate_v6(web, ingress, &tcp_v6("2001:db8::1", 443)),
            Some((AclAction::Permit, 3))
        );
        let dns6 = FlowV6 {
            protocol: 17,
            ..tcp_v6("::ffff:10.0.0.53", 53)
        };
        assert_eq!(
            set.evaluate_v6(web, ingress, &dns6),
            Some((AclAction::Deny, 5))
        );
        assert_eq!(set.evaluate_v4(NO_ACL, ingress, &dns), None);
        assert_eq!(set.evaluate_v4(3, ingress, &dns), None);
    }

    #[test]
    fn counter_labels_cover_every_counter_in_order() {
        let specs = [
            AclSpec {
                default_action: AclAction::Deny,
                ..spec("a", vec![deny_tcp_port(25), AclRule::default()], vec![])
            },
            spec("b", vec![], vec![deny_tcp_port(23)]),
        ];
        let set = AclSet::build(None, &specs, None).unwrap();
        let labels: Vec<CounterLabel<'_>> = set.counter_labels().collect();
        assert_eq!(labels.len(), set.counter_len());
        for (i, label) in labels.iter().enumerate() {
            assert_eq!(label.index, i);
        }
        let short: Vec<(&str, Direction, Option<usize>, AclAction)> = labels
            .iter()
            .map(|l| (l.acl, l.direction, l.rule, l.action))
            .collect();
        use AclAction::{Deny, Permit};
        use Direction::{Egress, Ingress};
        assert_eq!(
            short,
            [
                ("a", Ingress, Some(0), Deny),
                ("a", Ingress, Some(1), Permit),
                ("a", Ingress, None, Deny),
                ("a", Egress, None, Deny),
                ("b", Ingress, None, Permit),
                ("b", Egress, Some(0), Deny),
                ("b", Egress, None, Permit),
            ]
        );
    }

    #[test]
    fn ids_survive_rebuilds_and_are_never_reused() {
        let first = AclSet::build(
            None,
            &[
                spec("a", vec![], vec![]),
                spec("b", vec![], vec![]),
                spec("c", vec![], vec![]),
            ],
            None,
        )
        .unwrap();
        let (a, b, c) = (
            first.id("a").unwrap(),
            first.id("b").unwrap(),
            first.id("c").unwrap(),
        );
        assert_eq!((a, b, c), (1, 2, 3));

        // b removed, d added, order changed, a's rules changed.
        let second = AclSet::build(
            Some("d"),
            &[
                spec("d", vec![], vec![]),
                spec("c", vec![], vec![]),
                spec("a", vec![deny_tcp_port(25)], vec![]),
            ],
            Some(&first),
        )
        .unwrap();
        assert_eq!(second.id("a"), Some(a));
        assert_eq!(second.id("c"), Some(c));
        assert_eq!(second.id("b"), None);
        let d = second.id("d").unwrap();
        assert_eq!(d, 4);
        assert_eq!(second.global(), d);
        assert_eq!(second.name(b), None, "a tombstone");
        assert_eq!(
            second.evaluate_v4(b, Direction::Ingress, &tcp_v4([1, 1, 1, 1], 25)),
            None
        );
        assert_eq!(
            second
                .evaluate_v4(a, Direction::Ingress, &tcp_v4([1, 1, 1, 1], 25))
                .map(|v| v.0),
            Some(AclAction::Deny)
        );
        assert_eq!(names(&second), ["d", "c", "a"]);
        assert_eq!(second.len(), 3);

        // b comes back: a new id, not its old one.
        let third = AclSet::build(
            None,
            &[spec("b", vec![], vec![]), spec("a", vec![], vec![])],
            Some(&second),
        )
        .unwrap();
        assert_eq!(third.id("b"), Some(5));
        assert_eq!(third.id("a"), Some(a));
        assert_eq!(third.global(), NO_ACL);

        // Without a previous set, numbering starts over.
        let fresh = AclSet::build(None, &[spec("b", vec![], vec![])], None).unwrap();
        assert_eq!(fresh.id("b"), Some(1));
    }

    #[test]
    fn ids_run_out_after_the_last_one() {
        let mut crowded = AclSet::empty();
        crowded.slots.resize_with(usize::from(AclId::MAX), || None);
        let last = AclSet::build(None, &[spec("last", vec![], vec![])], Some(&crowded)).unwrap();
        assert_eq!(last.id("last"), Some(AclId::MAX));
        let err =
            AclSet::build(None, &[spec("one-more", vec![], vec![])], Some(&last)).unwrap_err();
        assert_eq!(err, AclError::IdsExhausted);
        assert_eq!(
            err.to_string(),
            "no ACL id left: all 65535 ids have been given out since the user plane started"
        );
        // Names that keep their id still rebuild.
        assert!(AclSet::build(None, &[spec("last", vec![], vec![])], Some(&last)).is_ok());
    }

    #[test]
    fn configuration_errors_name_the_rule() {
        let build = |global: Option<&str>, specs: &[AclSpec]| {
            AclSet::build(global, specs, None).unwrap_err().to_string()
        };
        assert_eq!(
            build(
                None,
                &[spec("x", vec![], vec![]), spec("x", vec![], vec![])]
            ),
            "ACL \"x\" is defined more than once"
        );
        assert_eq!(
            build(Some("y"), &[spec("x", vec![], vec![])]),
            "global ACL \"y\" is not defined"
        );
        let mixed = AclRule {
            src: Some(v4([10, 0, 0, 0], 8)),
            dst: Some(v6("2001:db8::", 32)),
            ..AclRule::default()
        };
        assert_eq!(
            build(
                None,
                &[spec(
                    "x",
                    vec![AclRule::default()],
                    vec![AclRule::default(), mixed]
                )]
            ),
            "ACL \"x\": egress[1]: src and dst prefixes are of different address families"
        );
        let long = AclRule {
            dst: Some(v4([10, 0, 0, 0], 33)),
            ..AclRule::default()
        };
        assert_eq!(
            build(None, &[spec("x", vec![long], vec![])]),
            "ACL \"x\": ingress[0].dst: prefix length 33 is longer than 32"
        );
        let long6 = AclRule {
            src: Some(v6("::", 129)),
            ..AclRule::default()
        };
        assert_eq!(
            build(None, &[spec("x", vec![long6], vec![])]),
            "ACL \"x\": ingress[0].src: prefix length 129 is longer than 128"
        );
        let empty_range = AclRule {
            protocol: Some(17),
            src_ports: PortRange {
                first: 90,
                last: 80,
            },
            ..AclRule::default()
        };
        assert_eq!(
            build(None, &[spec("x", vec![], vec![empty_range])]),
            "ACL \"x\": egress[0].src_port: port range 90-80 is empty (first > last)"
        );
    }

    #[test]
    fn short_and_long_lists_decide_alike() {
        // One list scanned, one just long enough for the bit vectors: same rules first.
        for extra in [0, 1] {
            let count = SCAN_MAX_RULES as u16 + extra;
            let rules: Vec<AclRule> = (0..count).map(|p| deny_tcp_port(100 + p)).collect();
            let set = AclSet::build(None, &[spec("ports", rules, vec![])], None).unwrap();
            let id = set.id("ports").unwrap();
            for port in 99..=(101 + count) {
                let expected = if (100..100 + count).contains(&port) {
                    (AclAction::Deny, usize::from(port - 100))
                } else {
                    (AclAction::Permit, usize::from(count))
                };
                assert_eq!(
                    set.evaluate_v4(id, Direction::Ingress, &tcp_v4([192, 0, 2, 1], port)),
                    Some(expected),
                    "{count} rules, port {port}"
                );
            }
        }
    }

    #[test]
    fn a_thousand_rules_fit_in_a_reasonable_heap() {
        let rules: Vec<AclRule> = (0..1000u32)
            .map(|i| AclRule {
                action: AclAction::Deny,
                dst: Some(v4((0x0A00_0000 + (i << 8)).to_be_bytes(), 24)),
                protocol: Some(6),
                dst_ports: PortRange::single(1000 + i as u16),
                ..AclRule::default()
            })
            .collect();
        let set = AclSet::build(None, &[spec("big", rules, vec![])], None).unwrap();
        let id = set.id("big").unwrap();
        assert_eq!(
            set.evaluate_v4(id, Direction::Ingress, &tcp_v4([10, 3, 231, 9], 1999)),
            Some((AclAction::Deny, 999))
        );
        assert_eq!(
            set.evaluate_v4(id, Direction::Ingress, &tcp_v4([10, 3, 231, 9], 1998)),
            Some((AclAction::Permit, 1000))
        );
        assert!(set.heap_bytes() < 4 << 20, "{} bytes", set.heap_bytes());
    }
}
