//! Low-precision training: parameters stored in `bf16` or `f16` (feature `half`), arithmetic in
//! `f32`, state in `f32` or in the parameters' type, and the update rounded to nearest, with
//! Kahan compensation, or stochastically.
//!
//! An optimizer step is bound by the bytes it moves. Adam on `f32` reads and writes 28 bytes per
//! parameter; bfloat16 parameters and gradients bring that to 22, bfloat16 state to 14 (18 with a
//! Kahan buffer). But bfloat16 keeps 8 significant bits: once an update is smaller than half the
//! gap between a weight and its neighbour, rounding to nearest throws it away and training
//! stops. Kahan compensation keeps what each rounding lost in a buffer and adds it back next
//! step; stochastic rounding rounds up or down at random, with the odds that make each rounding
//! exact on average.
//!
//! # How
//!
//! Build any elementwise optimizer as usual, then give it a [`Mixed`] layout; it then updates a
//! `HashMap<String, ArrayD<bf16>>` (or views, through `update_named`) like any other map:
//!
//! ```
//! # #[cfg(feature = "half")] {
//! use half::bf16;
//! use ndarray::ArrayD;
//! use ndoptim::{AdamW, Mixed, Optimizer, Params, Rounding};
//!
//! let mut params: Params<bf16> = Params::from([("w".into(), ArrayD::from_elem(vec![4], bf16::ONE))]);
//! let grads: Params<bf16> = Params::from([("w".into(), ArrayD::from_elem(vec![4], bf16::from_f32(0.5)))]);
//!
//! // torch-optimi's AdamW on bf16 weights and bf16 state, Kahan-compensated: bit for bit optimi's.
//! let mut opt = AdamW::<f32>::optimi()
//!     .lr(1e-3)
//!     .with_layout::<Mixed<bf16, bf16>>()
//!     .rounding(Rounding::Kahan);
//! opt.update(&mut params, &grads)?;
//!
//! // Adam with f32 state (the default of `Mixed<P>`), stochastic rounding from a seed.
//! let mut adam = ndoptim::Adam::<f32>::pytorch()
//!     .with_layout::<Mixed<bf16>>()
//!     .rounding(Rounding::Stochastic { seed: 42 });
//! adam.update(&mut params, &grads)?;
//! # }
//! # Ok::<(), ndoptim::Error>(())
//! ```
//!
//! The rule is the same code as on `f32`: each element is loaded into `f32`, the rule runs, the
//! state is rounded to nearest into its type and the parameter is written with the optimizer's
//! [`Rounding`]. One step on `bf16` parameters with `f32` state is the `f32` step, rounded once
//! (tested for every elementwise optimizer).
//!
//! # Which mode
//!
//! | [`Rounding`] | state per key | when |
//! |---|---|---|
//! | [`Rounding::Nearest`] | — | short runs, large learning rates: updates stay above half a gap |
//! | [`Rounding::Kahan`] | one buffer in the parameters' type | long runs, small learning rates; deterministic; what torch-optimi does by default for bf16 |
//! | [`Rounding::Stochastic`] | — (a seed) | the same problem without the extra buffer; unbiased on average, noisy per step |
//!
//! `examples/low_precision_least_squares.rs` shows the difference on a least-squares fit:
//! rounded to nearest, AdamW at a small learning rate stalls where its updates fall below half a
//! gap; Kahan compensation reaches the best point bf16 can hold. The book's low-precision chapter
//! has the measured losses, the MNIST runs and the speed.
//!
//! # Bytes per parameter
//!
//! As torch-optimi documents them, for Adam (two state arrays), gradients not counted:
//!
//! | layout | parameter | state | Kahan buffer | total | one step moves (with the gradient) |
//! |---|---|---|---|---|---|
//! | `f32` ([`Native`]) | 4 | 8 | — | 12 | 28 |
//! | `Mixed<bf16>` (f32 state) | 2 | 8 | (2) | 10 (12) | 22 (26) |
//! | `Mixed<bf16, bf16>` (optimi's layout) | 2 | 4 | (2) | 6 (8) | 14 (18) |
//!
//! # Exactness
//!
//! - [`AdamConvention::Optimi`](crate::AdamConvention::Optimi) (`AdamW::optimi()`) and
//!   [`Sgd`](crate::Sgd) on `Mixed<bf16, bf16>` round each operation to the type it writes, as
//!   PyTorch's bfloat16 tensor operations do: the `optimi_*_bf16.json` trajectories of
//!   torch-optimi 0.3.3 (`AdamW`, `SGD` with momentum, `kahan_sum` on and off) replay bit for
//!   bit, parameters, moments and compensation.
//! - Every other rule computes in `f32` and rounds once, when it stores: no reference computes
//!   that way, and none is claimed.
//! - Stochastic rounding has no reference; each rounding is unbiased (tested over many draws),
//!   and its random bits are a hash of the seed, the key, the key's step count and the element's
//!   index: the same on every thread count and instruction-set level, and continued exactly by a
//!   checkpoint.
//! - Every instruction-set level gives the same bits. At
//!   [`Level::Avx512Bf16`](crate::simd::Level::Avx512Bf16) the CPU's `vcvtneps2bf16` rounds;
//!   it flushes subnormal values to zero, so a block of 16 holding one is rounded in software.
//!
//! # Limits
//!
//! - Rules that need whole tensors (Muon, LAMB, LARS, Adafactor) run on `f32`/`f64` only: with a
//!   `Mixed` layout their update returns [`Error::IncompatibleOptions`](crate::Error), changing
//!   nothing.
//! - The wrappers of [`accumulate`](crate::accumulate), [`average`](crate::average),
//!   [`lookahead`](crate::lookahead) and [`clip`](crate::clip) accumulate in the parameters'
//!   type, so they take `f32`/`f64` optimizers.
//! - Checkpoints ([`Engine::checkpoint`](crate::Engine::checkpoint), safetensors) hold the state
//!   in its type (`BF16`, `F16` tensors Python opens as such) and Kahan's buffer as a
//!   `kahan_comp` slot in the state's type (exact: `bf16` values are `f32` values).

pub use crate::element::{Element, Rounding, Scalar, Store};
pub use crate::engine::{Layout, Mixed, Native};
