//! The kernel: the fused per-element pass a rule's step runs, over parameter, gradient and
//! state in one loop.
//!
//! - `slots`: [`Slots`], a rule's per-element state, and the loop over a contiguous run;
//! - `dispatch`: that loop compiled for each instruction-set level and chosen at run time, and
//!   its split across threads with the `rayon` feature;
//! - `stored`: the pass over low-precision parameters and state, with its rounding writers.

#[macro_use]
mod dispatch;
mod slots;
mod stored;

#[cfg(feature = "rayon")]
pub(crate) use dispatch::for_each_slice_parallel;
pub(crate) use dispatch::{for_each_slice, sum_slice};
pub use slots::Slots;
pub(crate) use stored::{Compensated, Kahan, Nearest, Stochastic, kahan_add};
