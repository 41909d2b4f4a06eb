//! Neural-network optimizers on [`ndarray`], exact to their references.
//!
//! A model's parameters live in a map of named arrays, `HashMap<String, ArrayD<F>>` (the book's
//! `params` dict); backpropagation produces a map of gradients with the same keys. An
//! [`Optimizer`] updates the parameters **in place**:
//!
//! ```
//! use std::collections::HashMap;
//! use ndarray::{ArrayD, IxDyn};
//! use ndoptim::{Adam, Optimizer};
//!
//! let mut params: HashMap<String, ArrayD<f32>> = HashMap::from([
//!     ("W1".to_string(), ArrayD::ones(IxDyn(&[784, 100]))),
//!     ("b1".to_string(), ArrayD::zeros(IxDyn(&[100]))),
//! ]);
//! let grads: HashMap<String, ArrayD<f32>> = params
//!     .iter()
//!     .map(|(k, p)| (k.clone(), ArrayD::from_elem(p.raw_dim(), 0.5)))
//!     .collect();
//!
//! let mut opt = Adam::default(); // the book's defaults: lr 0.001, β₁ 0.9, β₂ 0.999, ε 1e-7
//! opt.update(&mut params, &grads)?; // params updated in place
//! assert!((params["W1"][[0, 0]] - (1.0 - 0.001)).abs() < 1e-6);
//! # Ok::<(), ndoptim::Error>(())
//! ```
//!
//! Optimizers keep per-key state (velocities, accumulators, moments), created zero-filled the
//! first time a key is updated. Every call is checked whole before anything is written: an unknown
//! key, a gradient of the wrong shape or an invalid hyperparameter returns an [`Error`] and leaves
//! parameters and state exactly as they were.
//!
//! # The chapter's four methods
//!
//! Chapter 6 of *Deep Learning from Scratch* (Koki Saito) compares four ways of turning a gradient
//! `g = ∂L/∂p` into a step, on `f(x, y) = x²/20 + y²` and on MNIST. Each type here follows the
//! book's `common/optimizer.py`: its formula, its order of operations and its defaults.
//!
//! - **[`Sgd`]**: step against the gradient, `p ← p − lr·g`. Simple, but it zig-zags where the
//!   function is much steeper in one direction than another (the `y` axis of `f`).
//! - **[`Momentum`]**: a velocity accumulates the gradients like a ball rolling downhill,
//!   `v ← μ·v − lr·g`, `p ← p + v`. Oscillations cancel, steady directions speed up.
//!   [`Nesterov`] is its look-ahead variant.
//! - **[`AdaGrad`]**: a per-element learning rate that shrinks with the gradients seen so far,
//!   `h ← h + g²`, `p ← p − lr·g / (√h + ε)`. [`RmsProp`] forgets old gradients,
//!   `h ← ρ·h + (1 − ρ)·g²`, so the rate does not decay to zero.
//! - **[`Adam`]**: momentum and AdaGrad-style scaling together, with bias correction of the two
//!   moment estimates, `m ← m + (1 − β₁)(g − m)`, `v ← v + (1 − β₂)(g² − v)`,
//!   `p ← p − lr·√(1 − β₂ᵗ)/(1 − β₁ᵗ) · m / (√v + ε)`.
//!
//! | type | reference | state per parameter | defaults |
//! |---|---|---|---|
//! | [`Sgd`] | book `SGD` | none | lr 0.01 |
//! | [`Momentum`] | book `Momentum` | 1 array | lr 0.01, μ 0.9 |
//! | [`Nesterov`] | book `Nesterov` | 1 array | lr 0.01, μ 0.9 |
//! | [`AdaGrad`] | book `AdaGrad` | 1 array | lr 0.01, ε 1e-7 |
//! | [`RmsProp`] | book `RMSprop` | 1 array | lr 0.01, ρ 0.99, ε 1e-7 |
//! | [`Adam`] | book `Adam` (ε added to `√v`, bias correction in the step size) | 2 arrays | lr 0.001, β 0.9/0.999, ε 1e-7 |
//!
//! Options are builder methods (`Adam::default().lr(3e-4).beta2(0.99)`). Hyperparameters are
//! checked by every [`Optimizer::update`] and by [`Engine::validate`], with PyTorch's wording
//! (`Invalid learning rate: -1`).
//!
//! # Element types and layouts
//!
//! Every optimizer runs on `f32` and `f64` (the type parameter `F`, `f32` by default).
//! Hyperparameters are kept in `f64`; the per-step scalars (Adam's `lr_t`, say) are computed in
//! `f64` and rounded once to `F`, as the book's NumPy code does. Parameters and gradients may be in
//! any memory layout; C-order arrays take the fast path.
//!
//! # One engine
//!
//! Every optimizer is an [`Engine`] running a [`Rule`]: the engine walks the maps, checks keys and
//! shapes, creates state and runs one fused pass over parameter, gradient and state, with no
//! temporary arrays and no allocation once every key has its state. A rule is an algorithm's
//! hyperparameters, the scalars it derives once per step and its per-element update.
#![deny(missing_docs)]

mod check;
mod engine;
mod error;
mod optimizer;
mod optimizers;

pub use engine::{Engine, Params, Rule, Scalar, Slots};
pub use error::Error;
pub use optimizer::Optimizer;
pub use optimizers::*;

/// The README's examples, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
