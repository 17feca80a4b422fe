//! Criterion micro-benchmark: `Pipeline::process_burst` over bursts of 32 frames of the lab
//! traffic scheme at 10k sessions, the pipelines `vbng-perf fastpath` runs: IPoE upstream
//! and downstream, PPPoE upstream (decapsulation), each without ACL (`ipoe` pipeline) and
//! with the 100-rule ACL on every session (`full`). Each iteration copies 32 frames in (the
//! pipeline rewrites them in place) and processes them; consecutive bursts take the next
//! sessions. Each case runs on the x86-64 baseline and, where the CPU has it, on x86-64-v3
//! (`Isa`), the two side by side in one run. Run with
//! `cargo bench -p vbng-perf --bench fastpath`.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use vbng_dataplane::isa::Isa;
use vbng_dataplane::packet::Frame;
use vbng_dataplane::pipeline::{BURST, DropReason, Pipeline, Verdict};

use vbng_perf::fastpath::scheme::{FrameSize, Protocol, Replay, Scheme, Vlan};
use vbng_perf::fastpath::setup::{
    ACCESS_PORT, CORE_PORT, PipelineKind, PipelineOptions, worker_frames,
};

const SESSIONS: u32 = 10_000;

struct Bench {
    pipeline: Pipeline,
    templates: Vec<Vec<u8>>,
    port: u8,
    next: usize,
    frames: Vec<Frame>,
    verdicts: Vec<Verdict>,
}

impl Bench {
    fn new(protocol: Protocol, kind: PipelineKind, upstream: bool, isa: Isa) -> Bench {
        let scheme = Scheme {
            sessions: SESSIONS,
            protocol,
            vlan: Vlan::None,
            size: FrameSize::Fixed(64),
            replay: Replay::All,
        };
        let opts = PipelineOptions {
            kind,
            scheme,
            qos: false,
            isa,
        };
        let pkts: Vec<(u32, u32)> = (0..SESSIONS).map(|i| (i, 0)).collect();
        let f = worker_frames(&opts, 0, 1, &pkts).expect("lab pipeline");
        let (pipeline, templates) = (f.pipeline, if upstream { f.up } else { f.down });
        Bench {
            pipeline,
            templates,
            port: if upstream { ACCESS_PORT } else { CORE_PORT },
            next: 0,
            frames: (0..BURST).map(|_| Frame::new()).collect(),
            verdicts: vec![Verdict::Drop(DropReason::Malformed); BURST],
        }
    }

    fn burst(&mut self, now: u64) -> usize {
        for f in &mut self.frames {
            let _ = f.set_data(&self.templates[self.next]);
            f.port = self.port;
            self.next = (self.next + 1) % self.templates.len();
        }
        self.pipeline
            .process_burst(now, &mut self.frames, &mut self.verdicts);
        self.verdicts
            .iter()
            .filter(|v| matches!(v, Verdict::Forward(_)))
            .count()
    }
}

fn process_burst(c: &mut Criterion) {
    let mut g = c.benchmark_group("fastpath_process_burst");
    g.throughput(Throughput::Elements(BURST as u64));
    let cases = [
        ("ipoe_upstream", Protocol::Ipoe, true),
        ("ipoe_downstream", Protocol::Ipoe, false),
        ("pppoe_upstream", Protocol::Pppoe, true),
    ];
    let mut isas = vec![Isa::baseline()];
    isas.extend(Isa::x86_64_v3());
    if isas.len() == 1 {
        eprintln!("SKIPPED: x86-64-v3 cases: this CPU lacks AVX2, BMI or MOVBE");
    }
    for kind in [PipelineKind::Ipoe, PipelineKind::Full] {
        for (name, protocol, upstream) in cases {
            for &isa in &isas {
                let mut b = Bench::new(protocol, kind, upstream, isa);
                // Every frame must be forwarded, or the figure measures drops.
                assert_eq!(b.burst(0), BURST, "{name} {kind:?}");
                let acl = match kind {
                    PipelineKind::Ipoe => "no_acl",
                    PipelineKind::Full => "acl100",
                };
                let mut now = 0u64;
                let id = format!("{name}_{acl}_10k_sessions_{}", isa.name());
                g.bench_function(id, |bench| {
                    bench.iter(|| {
                        now += 1_000;
                        black_box(b.burst(now))
                    })
                });
            }
        }
    }
    g.finish();
}

criterion_group!(benches, process_burst);
criterion_main!(benches);
