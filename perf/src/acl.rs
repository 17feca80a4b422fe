//! `vbng-perf acl`: the cost of classifying one IPv4 packet against an ACL of 10, 100 or
//! 1000 rules with the compiled classifier (`vbng_dataplane::acl::classifier::Classifier`),
//! beside a linear first-match scan over the same rules (`LinearScan`, the baseline),
//! and the heap each takes.
//!
//! Rules are drawn from a fixed seed ([`random_rules`]): prefixes /8 to /32, TCP, UDP, ICMP
//! or any protocol, single ports, port ranges or any port, permit and deny. Flows come in
//! three kinds ([`FlowKind`]): matching one of the first tenth of the rules, matching one
//! of the last tenth and nothing else before it, and matching no rule. The mixed workload
//! visits them shuffled together; each kind is also timed alone.
//!
//! Every timed repetition goes through [`measure_classifier`] or [`measure_linear_scan`]
//! (`#[inline(never)]`, for callgrind's `--toggle-collect`). Repetitions of all workloads of
//! one rule count are interleaved and the median is reported.

use std::hint::black_box;
use std::net::Ipv4Addr;
use std::time::Instant;

use vbng_dataplane::acl::classifier::{Classifier, LinearScan};
use vbng_dataplane::acl::{AclAction, AclRule, FlowV4, IpPrefix, PortRange};

use crate::report::Figure;
use crate::timing::{Machine, Stats};

/// Seed of the rule and flow generator: every run classifies the same rules and flows.
pub const SEED: u64 = 0x5EED_0AC1_2026;

/// Parameters of `vbng-perf acl`.
#[derive(Debug, Clone, PartialEq)]
pub struct AclArgs {
    /// Rule counts to measure.
    pub rule_counts: Vec<usize>,
    /// Flows per kind (early, late, miss); the mixed workload holds all of them.
    pub flows: usize,
    /// Classifications per timed repetition of each workload.
    pub lookups: u64,
    /// Timed repetitions (the median is reported).
    pub reps: usize,
}

impl Default for AclArgs {
    fn default() -> Self {
        AclArgs {
            rule_counts: vec![10, 100, 1000],
            flows: 1024,
            lookups: 200_000,
            reps: 7,
        }
    }
}

/// Where a flow's first matching rule sits in the list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowKind {
    /// One of the first tenth of the rules (at least the first rule).
    Early,
    /// One of the last tenth of the rules (at least the last rule).
    Late,
    /// No rule.
    Miss,
}

impl FlowKind {
    /// All kinds, in report order.
    pub const ALL: [FlowKind; 3] = [FlowKind::Early, FlowKind::Late, FlowKind::Miss];

    /// Name used in figure names.
    pub fn name(self) -> &'static str {
        match self {
            FlowKind::Early => "early_hit",
            FlowKind::Late => "late_hit",
            FlowKind::Miss => "miss",
        }
    }

    /// The kind of a flow whose first match (by the linear scan) is `first_match` in a
    /// list of `rules` rules; None for a hit in the middle.
    pub fn of(first_match: Option<u32>, rules: usize) -> Option<FlowKind> {
        let tenth = (rules / 10).max(1);
        match first_match {
            None => Some(FlowKind::Miss),
            Some(i) if (i as usize) < tenth => Some(FlowKind::Early),
            Some(i) if i as usize >= rules.saturating_sub(tenth) => Some(FlowKind::Late),
            Some(_) => None,
        }
    }
}

/// splitmix64: a fixed, reproducible stream of pseudo-random numbers.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A stream starting from `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `first..=last`.
    pub fn between(&mut self, first: u64, last: u64) -> u64 {
        let span = (last - first).wrapping_add(1);
        if span == 0 {
            self.next_u64()
        } else {
            first + self.next_u64() % span
        }
    }

    /// True with probability `percent` / 100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.next_u64() % 100 < percent
    }

    /// One element of `choices` (not empty).
    pub fn pick<T: Copy>(&mut self, choices: &[T]) -> T {
        choices[self.next_u64() as usize % choices.len()]
    }
}

const WELL_KNOWN_PORTS: [u16; 12] = [22, 25, 53, 80, 123, 143, 443, 587, 993, 3389, 5060, 8080];
const TCP: u8 = 6;
const UDP: u8 = 17;
const ICMP: u8 = 1;

fn random_prefix(rng: &mut Rng) -> IpPrefix {
    IpPrefix::V4 {
        addr: Ipv4Addr::from(rng.next_u64() as u32),
        len: rng.between(8, 32) as u8,
    }
}

fn random_ports(rng: &mut Rng, any_percent: u64) -> PortRange {
    if rng.chance(any_percent) {
        return PortRange::ANY;
    }
    match rng.between(0, 9) {
        0..=4 => PortRange::single(rng.pick(&WELL_KNOWN_PORTS)),
        5 => PortRange::single(rng.between(1, 65535) as u16),
        6 => PortRange {
            first: 1024,
            last: 65535,
        },
        _ => {
            let first = rng.between(1, 60000) as u16;
            PortRange {
                first,
                last: first.saturating_add(rng.between(1, 5000) as u16),
            }
        }
    }
}

/// `count` rules of the kind an operator writes: a destination prefix (/8../32) on most
/// rules, a source prefix on half of them (at least one of the two on every rule, so some
/// packets match nothing), TCP 45 %, UDP 30 %, ICMP 10 %, any protocol 15 %, ports on TCP
/// and UDP rules, 60 % permit.
pub fn random_rules(count: usize, rng: &mut Rng) -> Vec<AclRule> {
    (0..count)
        .map(|_| {
            let mut src = rng.chance(50).then(|| random_prefix(rng));
            let dst = rng.chance(80).then(|| random_prefix(rng));
            if src.is_none() && dst.is_none() {
                src = Some(random_prefix(rng));
            }
            let protocol = match rng.between(0, 99) {
                0..=44 => Some(TCP),
                45..=74 => Some(UDP),
                75..=84 => Some(ICMP),
                _ => None,
            };
            let (src_ports, dst_ports) = if matches!(protocol, Some(TCP | UDP)) {
                (random_ports(rng, 80), random_ports(rng, 25))
            } else {
                (PortRange::ANY, PortRange::ANY)
            };
            AclRule {
                action: if rng.chance(60) {
                    AclAction::Permit
                } else {
                    AclAction::Deny
                },
                src,
                dst,
                protocol,
                src_ports,
                dst_ports,
            }
        })
        .collect()
}

/// An address inside `prefix`, anywhere for no prefix.
fn address_in(prefix: Option<IpPrefix>, rng: &mut Rng) -> u32 {
    match prefix {
        Some(IpPrefix::V4 { addr, len }) => {
            let host_bits = u32::MAX.checked_shr(u32::from(len)).unwrap_or(0);
            (u32::from(addr) & !host_bits) | (rng.next_u64() as u32 & host_bits)
        }
        _ => rng.next_u64() as u32,
    }
}

fn port_in(range: PortRange, rng: &mut Rng) -> u16 {
    rng.between(u64::from(range.first), u64::from(range.last)) as u16
}

/// A flow that `rule` matches (an earlier rule may match it too).
fn flow_matching(rule: &AclRule, rng: &mut Rng) -> FlowV4 {
    let protocol = rule
        .protocol
        .unwrap_or_else(|| rng.pick(&[TCP, UDP, ICMP, 47]));
    FlowV4 {
        src: address_in(rule.src, rng),
        dst: address_in(rule.dst, rng),
        protocol,
        src_port: port_in(rule.src_ports, rng),
        dst_port: port_in(rule.dst_ports, rng),
    }
}

/// A random flow (protocol TCP, UDP or ICMP).
fn random_flow(rng: &mut Rng) -> FlowV4 {
    let protocol = rng.pick(&[TCP, UDP, ICMP]);
    let has_ports = protocol != ICMP;
    FlowV4 {
        src: rng.next_u64() as u32,
        dst: rng.next_u64() as u32,
        protocol,
        src_port: if has_ports {
            rng.between(1024, 65535) as u16
        } else {
            0
        },
        dst_port: if has_ports {
            rng.pick(&WELL_KNOWN_PORTS)
        } else {
            0
        },
    }
}

/// Up to `count` flows of `kind` against `rules`, judged by `linear`. Gives up on a kind
/// after 1000 attempts per flow without one (then returns fewer).
pub fn flows_of_kind(
    kind: FlowKind,
    rules: &[AclRule],
    linear: &LinearScan<u32>,
    count: usize,
    rng: &mut Rng,
) -> Vec<FlowV4> {
    let tenth = (rules.len() / 10).max(1);
    let mut flows = Vec::with_capacity(count);
    let mut misses_in_a_row = 0;
    while flows.len() < count && misses_in_a_row < 1000 {
        let candidate = match kind {
            FlowKind::Early if !rules.is_empty() => {
                flow_matching(&rules[rng.between(0, tenth as u64 - 1) as usize], rng)
            }
            FlowKind::Late if !rules.is_empty() => {
                let at = rng.between((rules.len() - tenth) as u64, rules.len() as u64 - 1);
                flow_matching(&rules[at as usize], rng)
            }
            _ => random_flow(rng),
        };
        if FlowKind::of(linear.classify(&candidate), rules.len()) == Some(kind) {
            flows.push(candidate);
            misses_in_a_row = 0;
        } else {
            misses_in_a_row += 1;
        }
    }
    flows
}

/// Classifies `lookups` flows, cycling through `flows`, with the compiled classifier.
#[inline(never)]
pub fn measure_classifier(classifier: &Classifier<u32>, flows: &[FlowV4], lookups: u64) -> u64 {
    let mut seen = 0u64;
    for flow in flows.iter().cycle().take(lookups as usize) {
        let verdict = classifier.classify(black_box(flow));
        seen = seen.wrapping_add(verdict.map_or(u64::MAX, u64::from));
    }
    seen
}

/// Classifies `lookups` flows, cycling through `flows`, with the linear scan.
#[inline(never)]
pub fn measure_linear_scan(linear: &LinearScan<u32>, flows: &[FlowV4], lookups: u64) -> u64 {
    let mut seen = 0u64;
    for flow in flows.iter().cycle().take(lookups as usize) {
        let verdict = linear.classify(black_box(flow));
        seen = seen.wrapping_add(verdict.map_or(u64::MAX, u64::from));
    }
    seen
}

/// Times one repetition, ns per lookup.
fn ns_per_lookup(lookups: u64, run: impl FnOnce(u64) -> u64) -> f64 {
    let start = Instant::now();
    black_box(run(black_box(lookups)));
    start.elapsed().as_nanos() as f64 / lookups.max(1) as f64
}

/// Everything measured for one rule count.
struct Workloads {
    rules: usize,
    classifier: Classifier<u32>,
    linear: LinearScan<u32>,
    compile_us: f64,
    /// The mixed workload, then one per [`FlowKind::ALL`].
    flow_sets: Vec<(&'static str, Vec<FlowV4>)>,
}

impl Workloads {
    fn new(rule_count: usize, flows_per_kind: usize) -> Workloads {
        let mut rng = Rng::new(SEED ^ rule_count as u64);
        let rules = random_rules(rule_count, &mut rng);
        let numbered: Vec<(u32, AclRule)> = rules
            .iter()
            .enumerate()
            .map(|(i, rule)| (i as u32, *rule))
            .collect();
        let start = Instant::now();
        let classifier = Classifier::<u32>::compile(&numbered);
        let compile_us = start.elapsed().as_nanos() as f64 / 1e3;
        let linear = LinearScan::<u32>::compile(&numbered);

        let mut flow_sets: Vec<(&'static str, Vec<FlowV4>)> = vec![("mixed", Vec::new())];
        for kind in FlowKind::ALL {
            let flows = flows_of_kind(kind, &rules, &linear, flows_per_kind, &mut rng);
            flow_sets.push((kind.name(), flows));
        }
        let mut mixed: Vec<FlowV4> = flow_sets[1..]
            .iter()
            .flat_map(|(_, flows)| flows.iter().copied())
            .collect();
        // Fisher-Yates, so that consecutive lookups take unrelated paths.
        for i in (1..mixed.len()).rev() {
            mixed.swap(i, rng.between(0, i as u64) as usize);
        }
        flow_sets[0].1 = mixed;
        flow_sets.retain(|(_, flows)| !flows.is_empty());
        Workloads {
            rules: rule_count,
            classifier,
            linear,
            compile_us,
            flow_sets,
        }
    }

    /// Flows on which the classifier and the linear scan disagree (must be none).
    fn disagreements(&self) -> usize {
        self.flow_sets[0]
            .1
            .iter()
            .filter(|flow| self.classifier.classify(flow) != self.linear.classify(flow))
            .count()
    }
}

/// Runs `vbng-perf acl` and returns its figures (the order the table prints). Fails if the
/// classifier and the linear scan disagree on any flow.
pub fn run(args: &AclArgs) -> Result<Vec<Figure>, String> {
    let machine = Machine::detect();
    let reps = args.reps.max(1);
    let lookups = args.lookups.max(1);
    let mut figs = Vec::new();
    for &rule_count in &args.rule_counts {
        let w = Workloads::new(rule_count, args.flows.max(1));
        let wrong = w.disagreements();
        if wrong > 0 {
            return Err(format!(
                "classifier and linear scan disagree on {wrong} flows with {rule_count} rules"
            ));
        }

        // Warm-up, then the interleaved repetitions: per flow set, classifier and scan.
        for (_, flows) in &w.flow_sets {
            black_box(measure_classifier(&w.classifier, flows, lookups));
            black_box(measure_linear_scan(&w.linear, flows, lookups));
        }
        let mut samples = vec![(Vec::new(), Vec::new()); w.flow_sets.len()];
        for _ in 0..reps {
            for ((_, flows), (compiled, linear)) in w.flow_sets.iter().zip(&mut samples) {
                compiled.push(ns_per_lookup(lookups, |n| {
                    measure_classifier(&w.classifier, flows, n)
                }));
                linear.push(ns_per_lookup(lookups, |n| {
                    measure_linear_scan(&w.linear, flows, n)
                }));
            }
        }

        let common = |f: Figure, flows: usize| {
            f.param("rules", w.rules)
                .param("flows", flows)
                .param("lookups", lookups)
                .param("reps", reps)
                .param("seed", SEED)
                .param("cpu", machine.cpu.as_str())
                .param("release_build", machine.optimised)
        };
        let timing = |f: Figure, s: &Stats| {
            f.param("min_ns", s.min)
                .param("max_ns", s.max)
                .param("stat", "median of reps")
        };
        for ((set, flows), (compiled, linear)) in w.flow_sets.iter().zip(&samples) {
            let suffix = if *set == "mixed" {
                String::new()
            } else {
                format!("_{set}")
            };
            let (sc, sl) = (Stats::from_samples(compiled), Stats::from_samples(linear));
            let base_name = format!("acl.linear_scan_{rule_count}_rules{suffix}");
            let what = match *set {
                "mixed" => "early hits, late hits and misses, shuffled",
                "early_hit" => "first match in the first tenth of the rules",
                "late_hit" => "first match in the last tenth of the rules",
                _ => "no rule matches",
            };
            figs.push(common(
                timing(
                    Figure::new(&base_name, sl.median, "ns/lookup")
                        .param("note", format!("baseline: first-match scan; {what}")),
                    &sl,
                ),
                flows.len(),
            ));
            figs.push(common(
                timing(
                    Figure::new(
                        &format!("acl.classifier_{rule_count}_rules{suffix}"),
                        sc.median,
                        "ns/lookup",
                    )
                    .with_baseline(&base_name, sl.median)
                    .param("note", format!("compiled bit-vector classifier; {what}")),
                    &sc,
                ),
                flows.len(),
            ));
        }
        let mixed_flows = w.flow_sets[0].1.len();
        figs.push(common(
            Figure::new(
                &format!("acl.classifier_heap_{rule_count}_rules"),
                w.classifier.heap_bytes() as f64,
                "bytes",
            )
            .with_baseline(
                &format!("acl.linear_scan_heap_{rule_count}_rules"),
                w.linear.heap_bytes() as f64,
            )
            .param(
                "note",
                "heap of the compiled classifier vs the scan's rule array",
            ),
            mixed_flows,
        ));
        figs.push(common(
            Figure::new(
                &format!("acl.compile_{rule_count}_rules"),
                w.compile_us,
                "us",
            )
            .param("note", "one Classifier::compile (one run, not a median)"),
            mixed_flows,
        ));
    }
    Ok(figs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_flows_are_of_their_kind() {
        let mut rng = Rng::new(SEED);
        let rules = random_rules(200, &mut rng);
        let numbered: Vec<(u32, AclRule)> = rules
            .iter()
            .enumerate()
            .map(|(i, r)| (i as u32, *r))
            .collect();
        let linear = LinearScan::<u32>::compile(&numbered);
        for kind in FlowKind::ALL {
            let flows = flows_of_kind(kind, &rules, &linear, 100, &mut rng);
            assert_eq!(flows.len(), 100, "{kind:?}");
            for flow in &flows {
                assert_eq!(FlowKind::of(linear.classify(flow), rules.len()), Some(kind));
            }
        }
    }

    #[test]
    fn a_small_run_reports_every_figure() {
        let args = AclArgs {
            rule_counts: vec![10, 20],
            flows: 16,
            lookups: 1000,
            reps: 1,
        };
        let figs = run(&args).unwrap();
        // Per rule count: 4 flow sets x 2 timings, heap, compile time.
        assert_eq!(figs.len(), 2 * 10, "{figs:#?}");
        let classifier = figs
            .iter()
            .find(|f| f.figure == "acl.classifier_10_rules")
            .unwrap();
        let baseline = classifier.baseline.as_ref().unwrap();
        assert_eq!(baseline.name, "acl.linear_scan_10_rules");
        assert!(classifier.ratio.is_some());
        assert!(
            figs.iter()
                .any(|f| f.figure == "acl.classifier_heap_10_rules" && f.value > 0.0)
        );
    }
}
