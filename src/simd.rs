//! Runtime choice of instruction set for the fused per-element passes.
//!
//! A default build targets the baseline of its architecture (SSE2 on x86-64), which halves the
//! throughput of the square roots and divisions of AdaGrad- and Adam-like rules and turns every
//! fused multiply-add into a library call. So the engine compiles each pass again for AVX2 + FMA
//! and for AVX-512, and picks the best one the CPU has at run time, once per key and step (a
//! cached check). Every level computes bit-identical results: Rust never contracts or reorders
//! floating-point operations, so only the speed differs.

use std::cell::Cell;
use std::sync::OnceLock;

/// An instruction-set level of the fused passes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Level {
    /// The build's baseline target, on every CPU.
    Portable,
    /// x86-64 with AVX2 and FMA.
    Avx2,
    /// x86-64 with AVX-512F (and AVX2 and FMA).
    Avx512,
    /// x86-64 with AVX-512F and AVX512-BF16 (Zen 4, Sapphire Rapids): the AVX-512 passes, with
    /// bfloat16 parameters and state rounded by the CPU's conversion instruction (the same
    /// bits as the other levels: subnormal inputs, which the instruction flushes, are rounded
    /// in software).
    Avx512Bf16,
}

impl Level {
    /// The best level this CPU runs.
    pub fn detected() -> Level {
        static DETECTED: OnceLock<Level> = OnceLock::new();
        *DETECTED.get_or_init(detect)
    }

    /// Every level this CPU runs, from the portable one up.
    pub fn available() -> impl Iterator<Item = Level> {
        [
            Level::Portable,
            Level::Avx2,
            Level::Avx512,
            Level::Avx512Bf16,
        ]
        .into_iter()
        .filter(|&l| l <= Level::detected())
    }
}

#[cfg(target_arch = "x86_64")]
fn detect() -> Level {
    let avx2 = is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma");
    let avx512 = avx2 && is_x86_feature_detected!("avx512f");
    if avx512 && is_x86_feature_detected!("avx512dq") && is_x86_feature_detected!("avx512bf16") {
        Level::Avx512Bf16
    } else if avx512 {
        Level::Avx512
    } else if avx2 {
        Level::Avx2
    } else {
        Level::Portable
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn detect() -> Level {
    Level::Portable
}

thread_local! {
    static LIMIT: Cell<Option<Level>> = const { Cell::new(None) };
}

/// Runs `f` with this thread's fused passes at `level` instead of the detected one, to compare
/// levels or to test each. Returns `None`, without running `f`, if the CPU lacks `level`.
///
/// ```
/// use ndoptim::simd::{Level, with_level};
/// assert_eq!(with_level(Level::Portable, || 1 + 1), Some(2));
/// ```
pub fn with_level<R>(level: Level, f: impl FnOnce() -> R) -> Option<R> {
    if level > Level::detected() {
        return None;
    }
    let before = LIMIT.with(|l| l.replace(Some(level)));
    let result = f();
    LIMIT.with(|l| l.set(before));
    Some(result)
}

/// The level this thread's passes run at.
pub fn current() -> Level {
    LIMIT.with(Cell::get).unwrap_or_else(Level::detected)
}
