//! Rates per one-second window and latency percentiles of a phase.

use std::time::Duration;

/// Sessions per second over one-second windows of a phase.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WindowRates {
    /// Slowest window.
    pub min: f64,
    /// Completions / the time from the phase's start to its last completion.
    pub avg: f64,
    /// Fastest window.
    pub max: f64,
    /// Windows counted.
    pub windows: usize,
}

/// Rates of `completions` (offsets from the phase's start): windows [0 s, 1 s), [1 s, 2 s),
/// ... up to the last completion; the last, partial window counts if it is at least 100 ms
/// long (scaled to a second) or if it is the only one. All zero without completions.
pub fn window_rates(completions: &[Duration]) -> WindowRates {
    let Some(span) = completions.iter().max().copied() else {
        return WindowRates {
            min: 0.0,
            avg: 0.0,
            max: 0.0,
            windows: 0,
        };
    };
    let span_s = span.as_secs_f64().max(1e-6);
    let full = span.as_secs() as usize;
    let mut counts = vec![0u64; full + 1];
    for c in completions {
        counts[(c.as_secs() as usize).min(full)] += 1;
    }
    let mut rates: Vec<f64> = counts[..full].iter().map(|&n| n as f64).collect();
    let tail = span_s - full as f64;
    if tail >= 0.1 || rates.is_empty() {
        rates.push(counts[full] as f64 / tail.max(1e-6));
    }
    WindowRates {
        min: rates.iter().copied().fold(f64::INFINITY, f64::min),
        avg: completions.len() as f64 / span_s,
        max: rates.iter().copied().fold(0.0, f64::max),
        windows: rates.len(),
    }
}

/// Latency percentiles, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Percentiles {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Slowest.
    pub max: f64,
}

/// Nearest-rank percentiles of `latencies`; all zero when empty.
pub fn percentiles(latencies: &[Duration]) -> Percentiles {
    let mut v: Vec<f64> = latencies.iter().map(|d| d.as_secs_f64() * 1e3).collect();
    v.sort_by(f64::total_cmp);
    let at = |p: f64| -> f64 {
        if v.is_empty() {
            return 0.0;
        }
        let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
        v[rank.clamp(1, v.len()) - 1]
    };
    Percentiles {
        p50: at(50.0),
        p90: at(90.0),
        p99: at(99.0),
        max: at(100.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn windows_of_a_phase() {
        // 3 in the first second, 1 in the second, 2 in a 500 ms tail.
        let c = [ms(100), ms(200), ms(900), ms(1500), ms(2100), ms(2500)];
        let r = window_rates(&c);
        assert_eq!(r.windows, 3);
        assert_eq!((r.min, r.max), (1.0, 4.0));
        assert!((r.avg - 6.0 / 2.5).abs() < 1e-9);
        // A short phase is one window.
        let r = window_rates(&[ms(10), ms(200)]);
        assert_eq!(r.windows, 1);
        assert!((r.min - 10.0).abs() < 1e-9 && r.min == r.max);
        assert_eq!(window_rates(&[]).windows, 0);
    }

    #[test]
    fn nearest_rank_percentiles() {
        let l: Vec<Duration> = (1..=100).map(ms).collect();
        let p = percentiles(&l);
        assert_eq!((p.p50, p.p90, p.p99, p.max), (50.0, 90.0, 99.0, 100.0));
        assert_eq!(percentiles(&[]).max, 0.0);
    }
}
