//! Criterion micro-benchmark: `vbng-qos` scheduler enqueue + dequeue per burst of 32 at 1k
//! and 10k backlogged subscribers (the same workload as the `qos.scheduler_enqueue_dequeue_backlogged`
//! figure of `vbng-perf qos`). Run with `cargo bench -p vbng-perf --bench qos`.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use vbng_perf::qos::BURST;
use vbng_perf::qos::scheduler::SchedulerBench;
use vbng_perf::timing::Workload;

fn scheduler(c: &mut Criterion) {
    let mut g = c.benchmark_group("qos_scheduler");
    g.throughput(Throughput::Elements(BURST as u64));
    for subscribers in [1_000u32, 10_000] {
        let mut bench = SchedulerBench::new(subscribers);
        // Steady state: every bucket's initial burst spent, every queue full.
        bench.prime();
        g.bench_function(
            format!("enqueue_dequeue_burst32_{subscribers}_subscribers"),
            |b| b.iter(|| black_box(bench.run(BURST as u64))),
        );
    }
    g.finish();
}

criterion_group!(benches, scheduler);
criterion_main!(benches);
