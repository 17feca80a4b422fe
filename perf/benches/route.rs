//! Criterion micro-benchmark: longest-prefix match lookups of `vbng_dataplane::route`, per
//! burst of 32 addresses, beside the naive linear scan over the same routes and addresses
//! (the baseline, measured in the same run).
//!
//! - `route_lpm4`: DIR-24-8 (`Lpm4::new`) with 1k and 100k random routes, the 16-8-8 layout
//!   of the unikernel with 100k, on random addresses (a random route's prefix with random
//!   host bits, from a 1M-address stream that does not fit the caches) and on sequential
//!   addresses; the linear scan over the 1k routes.
//! - `route_lpm6`: the 24-8-8-... layout (`Lpm6::new`) with 1k and 10k random routes and the
//!   16-8-8-... layout with 10k, in bursts and one by one (`_single`); the linear scan over
//!   the 1k routes.
//!
//! Route lengths follow the shape of Internet tables: IPv4 mostly /24 and /16-/23, some
//! shorter and some longer than /24; IPv6 mostly /29-/48, then /56 and /64 and a few /128.
//! Run with `cargo bench -p vbng-perf --bench route`; table sizes go to stderr.

use std::hint::black_box;
use std::net::{Ipv4Addr, Ipv6Addr};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use vbng_dataplane::route::{LinearLpm4, LinearLpm6, Lpm4, Lpm6};

const BURST: usize = 32;
/// Addresses in a lookup stream: 4 MiB (IPv4) / 16 MiB (IPv6), past the last-level cache.
const STREAM: usize = 1 << 20;

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn mask4(len: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0)
}

fn mask6(len: u8) -> u128 {
    u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0)
}

/// `n` distinct IPv4 routes (network, length, next hop).
fn v4_routes(n: usize, rng: &mut Rng) -> Vec<(u32, u8, u16)> {
    let mut seen = std::collections::HashSet::new();
    let mut routes = Vec::with_capacity(n);
    while routes.len() < n {
        let len = match rng.below(100) {
            0..55 => 24,
            55..85 => 16 + rng.below(8) as u8,
            85..90 => 8 + rng.below(8) as u8,
            _ => 25 + rng.below(8) as u8,
        };
        // Unicast space 1.0.0.0 - 223.255.255.255.
        let a = (0x0100_0000 + rng.below(0xdf00_0000) as u32) & mask4(len);
        if seen.insert((a, len)) {
            routes.push((a, len, rng.below(1 << 16) as u16));
        }
    }
    routes
}

/// `n` distinct IPv6 routes in 2000::/3.
fn v6_routes(n: usize, rng: &mut Rng) -> Vec<(u128, u8, u16)> {
    let mut seen = std::collections::HashSet::new();
    let mut routes = Vec::with_capacity(n);
    while routes.len() < n {
        let len = match rng.below(100) {
            0..40 => 48,
            40..60 => 29 + rng.below(19) as u8,
            60..75 => 56,
            75..95 => 64,
            _ => 128,
        };
        let hi = u128::from(rng.next()) << 64 | u128::from(rng.next());
        let a = (0x2u128 << 125 | hi >> 3) & mask6(len);
        if seen.insert((a, len)) {
            routes.push((a, len, rng.below(1 << 16) as u16));
        }
    }
    routes
}

/// Random addresses inside random routes.
fn v4_random(routes: &[(u32, u8, u16)], rng: &mut Rng) -> Vec<Ipv4Addr> {
    (0..STREAM)
        .map(|_| {
            let (a, len, _) = routes[rng.below(routes.len() as u64) as usize];
            Ipv4Addr::from_bits(a | (rng.next() as u32 & !mask4(len)))
        })
        .collect()
}

/// Consecutive addresses from the start of a route.
fn v4_sequential(routes: &[(u32, u8, u16)]) -> Vec<Ipv4Addr> {
    let start = routes[0].0;
    (0..STREAM as u32)
        .map(|i| Ipv4Addr::from_bits(start.wrapping_add(i)))
        .collect()
}

fn v6_random(routes: &[(u128, u8, u16)], rng: &mut Rng) -> Vec<Ipv6Addr> {
    (0..STREAM)
        .map(|_| {
            let (a, len, _) = routes[rng.below(routes.len() as u64) as usize];
            let host = u128::from(rng.next()) << 64 | u128::from(rng.next());
            Ipv6Addr::from_bits(a | (host & !mask6(len)))
        })
        .collect()
}

fn lpm4(routes: &[(u32, u8, u16)], first_stride: u8) -> Lpm4 {
    let groups: u32 = routes
        .iter()
        .map(|&(_, len, _)| u32::from(len.saturating_sub(first_stride)).div_ceil(8))
        .sum();
    let mut t = Lpm4::with_first_stride(first_stride, groups).unwrap();
    for &(a, len, nh) in routes {
        t.insert(Ipv4Addr::from_bits(a), len, nh).unwrap();
    }
    eprintln!(
        "lpm4 {}-bit first stride, {} routes: {} groups in use, {:.1} MiB of tables ({:.1} MiB with only the groups in use)",
        first_stride,
        t.len(),
        t.groups_in_use(),
        t.table_bytes() as f64 / (1 << 20) as f64,
        Lpm4::memory_for(first_stride, t.groups_in_use()) as f64 / (1 << 20) as f64,
    );
    t
}

fn lpm6(routes: &[(u128, u8, u16)], first_stride: u8) -> Lpm6 {
    let groups: u32 = routes
        .iter()
        .map(|&(_, len, _)| Lpm6::groups_per_route(first_stride, len))
        .sum();
    let mut t = Lpm6::with_first_stride(first_stride, groups).unwrap();
    for &(a, len, nh) in routes {
        t.insert(Ipv6Addr::from_bits(a), len, nh).unwrap();
    }
    eprintln!(
        "lpm6 {}-bit first stride, {} routes: {} groups in use, {:.1} MiB of tables ({:.1} MiB with only the groups in use)",
        first_stride,
        t.len(),
        t.groups_in_use(),
        t.table_bytes() as f64 / (1 << 20) as f64,
        Lpm6::memory_for(first_stride, t.groups_in_use()) as f64 / (1 << 20) as f64,
    );
    t
}

/// Measures `lookup` over successive bursts of `addrs`.
fn bench_bursts<A: Copy>(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    addrs: &[A],
    mut lookup: impl FnMut(&[A], &mut [Option<u16>]),
) {
    let mut out = [None; BURST];
    let mut at = 0;
    g.bench_function(name, |b| {
        b.iter(|| {
            lookup(black_box(&addrs[at..at + BURST]), &mut out);
            at = (at + BURST) % addrs.len();
            black_box(&out);
        })
    });
}

fn route_lpm4(c: &mut Criterion) {
    let mut g = c.benchmark_group("route_lpm4");
    g.throughput(Throughput::Elements(BURST as u64));
    let mut rng = Rng(0x5eed_0004);
    let routes_1k = v4_routes(1_000, &mut rng);
    let random_1k = v4_random(&routes_1k, &mut rng);
    {
        let t = lpm4(&routes_1k, 24);
        bench_bursts(&mut g, "dir24_8_1k_random", &random_1k, |a, o| {
            t.lookup_burst(a, o)
        });
        bench_bursts(
            &mut g,
            "dir24_8_1k_sequential",
            &v4_sequential(&routes_1k),
            |a, o| t.lookup_burst(a, o),
        );
    }
    let mut linear = LinearLpm4::new();
    for &(a, len, nh) in &routes_1k {
        linear.insert(Ipv4Addr::from_bits(a), len, nh).unwrap();
    }
    bench_bursts(&mut g, "linear_baseline_1k_random", &random_1k, |a, o| {
        for (o, a) in o.iter_mut().zip(a) {
            *o = linear.lookup(*a);
        }
    });
    drop(random_1k);

    let routes_100k = v4_routes(100_000, &mut rng);
    let random_100k = v4_random(&routes_100k, &mut rng);
    {
        let t = lpm4(&routes_100k, 24);
        bench_bursts(&mut g, "dir24_8_100k_random", &random_100k, |a, o| {
            t.lookup_burst(a, o)
        });
        bench_bursts(
            &mut g,
            "dir24_8_100k_sequential",
            &v4_sequential(&routes_100k),
            |a, o| t.lookup_burst(a, o),
        );
    }
    {
        let t = lpm4(&routes_100k, 16);
        bench_bursts(&mut g, "16_8_8_100k_random", &random_100k, |a, o| {
            t.lookup_burst(a, o)
        });
    }
    g.finish();
}

fn route_lpm6(c: &mut Criterion) {
    let mut g = c.benchmark_group("route_lpm6");
    g.throughput(Throughput::Elements(BURST as u64));
    let mut rng = Rng(0x5eed_0006);
    let routes_1k = v6_routes(1_000, &mut rng);
    let random_1k = v6_random(&routes_1k, &mut rng);
    {
        let t = lpm6(&routes_1k, 24);
        bench_bursts(&mut g, "24_8_1k_random", &random_1k, |a, o| {
            t.lookup_burst(a, o)
        });
    }
    let mut linear = LinearLpm6::new();
    for &(a, len, nh) in &routes_1k {
        linear.insert(Ipv6Addr::from_bits(a), len, nh).unwrap();
    }
    bench_bursts(&mut g, "linear_baseline_1k_random", &random_1k, |a, o| {
        for (o, a) in o.iter_mut().zip(a) {
            *o = linear.lookup(*a);
        }
    });
    drop(random_1k);

    let routes_10k = v6_routes(10_000, &mut rng);
    let random_10k = v6_random(&routes_10k, &mut rng);
    for stride in [24, 16] {
        let t = lpm6(&routes_10k, stride);
        bench_bursts(
            &mut g,
            &format!("{stride}_8_10k_random"),
            &random_10k,
            |a, o| t.lookup_burst(a, o),
        );
        // The same lookups one by one: what the level-by-level burst gains.
        bench_bursts(
            &mut g,
            &format!("{stride}_8_10k_random_single"),
            &random_10k,
            |a, o| {
                for (o, a) in o.iter_mut().zip(a) {
                    *o = t.lookup(*a);
                }
            },
        );
    }
    g.finish();
}

criterion_group!(benches, route_lpm4, route_lpm6);
criterion_main!(benches);
