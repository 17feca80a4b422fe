//! Timing: wall-clock nanoseconds per packet with [`std::time::Instant`], medians over
//! repetitions, and the machine line printed with every run.
//!
//! Method: every workload is warmed up first (caches, branch predictors, and the steady
//! state of whatever it simulates), then timed `reps` times over the same number of packets;
//! the repetitions of the workloads of one subcommand are interleaved (A, B, C, A, B, C, ...)
//! so that noise from the shared machine hits baseline and figure alike. The reported figure
//! is the median repetition.

use std::hint::black_box;
use std::time::Instant;

/// A benchmark loop over packets. `run` processes exactly `packets` packets (the unit of the
/// figure) and returns a value derived from its work, which the caller passes through
/// [`black_box`] so the work cannot be optimised away.
pub trait Workload {
    /// Processes `packets` packets.
    fn run(&mut self, packets: u64) -> u64;
}

/// Summary of the repetitions of one workload, in ns per packet.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stats {
    /// Median repetition.
    pub median: f64,
    /// Fastest repetition.
    pub min: f64,
    /// Slowest repetition.
    pub max: f64,
    /// Number of repetitions.
    pub reps: usize,
}

impl Stats {
    /// Summarises samples (ns per packet). All zero for an empty slice.
    pub fn from_samples(samples: &[f64]) -> Stats {
        let mut v: Vec<f64> = samples.iter().copied().filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            return Stats {
                median: 0.0,
                min: 0.0,
                max: 0.0,
                reps: 0,
            };
        }
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        };
        Stats {
            median,
            min: v[0],
            max: v[n - 1],
            reps: n,
        }
    }
}

/// Times one call of `f(packets)` and returns ns per packet.
#[inline(always)]
pub fn ns_per_packet(packets: u64, f: impl FnOnce(u64) -> u64) -> f64 {
    let t = Instant::now();
    black_box(f(black_box(packets)));
    let ns = t.elapsed().as_nanos() as f64;
    ns / packets.max(1) as f64
}

/// The machine line: CPU model, logical CPUs, and whether this is an optimised build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Machine {
    /// `model name` from /proc/cpuinfo (`unknown` elsewhere).
    pub cpu: String,
    /// Logical CPUs available to this process.
    pub cpus: usize,
    /// False for a debug build (figures from it mean little).
    pub optimised: bool,
}

impl Machine {
    /// Reads the machine description.
    pub fn detect() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        Machine {
            cpu: cpu_model(&cpuinfo).unwrap_or("unknown").to_owned(),
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            optimised: !cfg!(debug_assertions),
        }
    }

    /// One line for the table output.
    pub fn line(&self) -> String {
        format!(
            "{}, single thread, timer std::time::Instant",
            self.summary()
        )
    }

    /// The start of the machine line, for a subcommand to complete with how it runs.
    pub fn summary(&self) -> String {
        format!(
            "machine: cpu \"{}\", {} logical cpus, {} build",
            self.cpu,
            self.cpus,
            match (self.optimised, cfg!(vbng_pgo)) {
                (true, true) => "release (profile-guided: scripts/pgo-build.sh)",
                (true, false) => "release",
                (false, _) => "debug",
            }
        )
    }
}

/// The first `model name` value of a /proc/cpuinfo text.
pub fn cpu_model(cpuinfo: &str) -> Option<&str> {
    cpuinfo.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k.trim() == "model name").then(|| v.trim())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even() {
        let s = Stats::from_samples(&[5.0, 1.0, 3.0]);
        assert_eq!((s.median, s.min, s.max, s.reps), (3.0, 1.0, 5.0, 3));
        let s = Stats::from_samples(&[4.0, 1.0, 3.0, 2.0, f64::NAN]);
        assert_eq!((s.median, s.reps), (2.5, 4));
        assert_eq!(Stats::from_samples(&[]).reps, 0);
    }

    #[test]
    fn cpu_model_from_cpuinfo() {
        let text = "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 7B13\n\
                    processor\t: 1\nmodel name\t: AMD EPYC 7B13\n";
        assert_eq!(cpu_model(text), Some("AMD EPYC 7B13"));
        assert_eq!(cpu_model("processor: 0\n"), None);
    }

    #[test]
    fn timing_counts_packets() {
        let ns = ns_per_packet(1000, |n| (0..n).sum());
        assert!(ns.is_finite() && ns >= 0.0);
    }
}
