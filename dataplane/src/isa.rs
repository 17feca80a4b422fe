//! The instruction set the per-packet code runs on, chosen when it starts.
//!
//! Release builds target the x86-64 baseline (SSE2), so one binary runs on every x86-64
//! CPU. The pipeline's burst is also compiled for x86-64-v3 (AVX, AVX2, BMI1, BMI2, F16C,
//! FMA, LZCNT, MOVBE: Intel Haswell, AMD Zen and every server CPU since), and runs that
//! way where the CPU reports all of those features. The header parsing gains most: MOVBE
//! loads and stores big-endian fields in one instruction, BMI shifts and tests bits
//! without extra moves, and the burst's per-frame state is set up in 32-byte moves.
//!
//! A [`Kernel`] is the code to run; [`Isa::run`] runs it compiled for the chosen set.
//! Builds without `std` (the portable core), or for other architectures, always run the
//! baseline.

/// Code run through [`Isa::run`]. Its `run` must be `#[inline(always)]`: it is compiled
/// into each instruction set's entry point, and one it is not inlined into runs as the
/// baseline.
pub trait Kernel {
    /// What the code returns.
    type Output;
    /// The code.
    fn run(self) -> Self::Output;
}

/// An instruction set the running CPU supports (see the module docs). Only the
/// constructors make one, so an `Isa` naming x86-64-v3 proves the CPU has it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Isa {
    x86_64_v3: bool,
}

impl Isa {
    /// The x86-64 baseline (or the target's own on other architectures): every CPU runs it.
    pub const fn baseline() -> Isa {
        Isa { x86_64_v3: false }
    }

    /// x86-64-v3 if this CPU has every feature of it, else None.
    pub fn x86_64_v3() -> Option<Isa> {
        #[cfg(all(feature = "std", target_arch = "x86_64"))]
        {
            let all = std::is_x86_feature_detected!("avx")
                && std::is_x86_feature_detected!("avx2")
                && std::is_x86_feature_detected!("bmi1")
                && std::is_x86_feature_detected!("bmi2")
                && std::is_x86_feature_detected!("f16c")
                && std::is_x86_feature_detected!("fma")
                && std::is_x86_feature_detected!("lzcnt")
                && std::is_x86_feature_detected!("movbe")
                && std::is_x86_feature_detected!("popcnt");
            if all {
                return Some(Isa { x86_64_v3: true });
            }
        }
        None
    }

    /// The widest set this CPU runs.
    pub fn detect() -> Isa {
        Isa::x86_64_v3().unwrap_or(Isa::baseline())
    }

    /// `baseline` or `x86-64-v3`.
    pub fn name(self) -> &'static str {
        if self.x86_64_v3 {
            "x86-64-v3"
        } else {
            "baseline"
        }
    }

    /// Runs `kernel` compiled for this instruction set.
    #[inline(always)]
    pub fn run<K: Kernel>(self, kernel: K) -> K::Output {
        #[cfg(all(feature = "std", target_arch = "x86_64"))]
        if self.x86_64_v3 {
            // SAFETY: an Isa names x86-64-v3 only if `Isa::x86_64_v3` found every feature
            // `run_x86_64_v3` is compiled with on this CPU.
            #[allow(unsafe_code)]
            return unsafe { run_x86_64_v3(kernel) };
        }
        kernel.run()
    }
}

/// `kernel.run()`, inlined here and compiled for x86-64-v3.
#[cfg(all(feature = "std", target_arch = "x86_64"))]
#[target_feature(enable = "avx,avx2,bmi1,bmi2,f16c,fma,lzcnt,movbe,popcnt")]
fn run_x86_64_v3<K: Kernel>(kernel: K) -> K::Output {
    kernel.run()
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    struct Sum<'a>(&'a [u32]);

    impl Kernel for Sum<'_> {
        type Output = u32;
        #[inline(always)]
        fn run(self) -> u32 {
            self.0
                .iter()
                .fold(0u32, |a, x| a.wrapping_add(x.swap_bytes()))
        }
    }

    #[test]
    fn every_set_computes_the_same() {
        let data: Vec<u32> = (0..1000u32).map(|i| i.wrapping_mul(2654435761)).collect();
        let expected = data
            .iter()
            .fold(0u32, |a, x| a.wrapping_add(x.swap_bytes()));
        assert_eq!(Isa::baseline().run(Sum(&data)), expected);
        assert_eq!(Isa::detect().run(Sum(&data)), expected);
        if let Some(v3) = Isa::x86_64_v3() {
            assert_eq!(v3.name(), "x86-64-v3");
            assert_eq!(v3.run(Sum(&data)), expected);
        }
    }

    #[test]
    fn detect_picks_the_widest_set_the_cpu_has() {
        assert_eq!(Isa::detect(), Isa::x86_64_v3().unwrap_or(Isa::baseline()));
        assert_eq!(Isa::baseline().name(), "baseline");
    }
}
