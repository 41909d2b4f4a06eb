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
//! # Every optimizer
//!
//! The book's six follow the book by default; `torch.optim`'s first-order optimizers follow
//! PyTorch, with its defaults, its option names and its names for state slots; the newer ones
//! follow their own references (`torch.optim.Muon`, `schedulefree`, optax). "State" counts the
//! arrays kept per parameter of `n` elements (besides a step count per key).
//!
//! | type | reference | state per parameter | defaults |
//! |---|---|---|---|
//! | [`Sgd`] | book `SGD`; `torch.optim.SGD` options | none; `n` with momentum | lr 0.01 |
//! | [`Momentum`] | book `Momentum` | `n` | lr 0.01, μ 0.9 |
//! | [`Nesterov`] | book `Nesterov` | `n` | lr 0.01, μ 0.9 |
//! | [`AdaGrad`] | book `AdaGrad`; `torch.optim.Adagrad` options | `n` | lr 0.01, ε 1e-7 (PyTorch 1e-10) |
//! | [`RmsProp`] | book `RMSprop`; `torch.optim.RMSprop` options | `n`, +`n` momentum, +`n` centered | lr 0.01, ρ 0.99, ε 1e-7 (PyTorch 1e-8) |
//! | [`Adam`] | book `Adam` ([`AdamConvention::Book`]); `torch.optim.Adam` ([`Adam::pytorch`]) | `2n`, +`n` amsgrad | lr 0.001, β (0.9, 0.999), ε 1e-7 (PyTorch 1e-8) |
//! | [`AdamW`] | `torch.optim.AdamW` | `2n`, +`n` amsgrad | lr 0.001, β (0.9, 0.999), ε 1e-8, λ 0.01 |
//! | [`NAdam`] | `torch.optim.NAdam` | `2n` | lr 0.002, β (0.9, 0.999), ε 1e-8, ψ 0.004 |
//! | [`RAdam`] | `torch.optim.RAdam` | `2n` | lr 0.001, β (0.9, 0.999), ε 1e-8 |
//! | [`Adamax`] | `torch.optim.Adamax` | `2n` | lr 0.002, β (0.9, 0.999), ε 1e-8 |
//! | [`Adadelta`] | `torch.optim.Adadelta` | `2n` | lr 1.0, ρ 0.9, ε 1e-6 |
//! | [`Rprop`] | `torch.optim.Rprop` | `2n` | lr 0.01, η (0.5, 1.2), step sizes (1e-6, 50) |
//! | [`Asgd`] | `torch.optim.ASGD` | `n` | lr 0.01, λ 1e-4, α 0.75, t₀ 1e6 |
//! | [`Adafactor`] | `torch.optim.Adafactor` | rows + cols per matrix (≥ 2-D); `n` for vectors | lr 0.01, τ −0.8, ε (machine ε, 1e-3), d 1 |
//! | [`Soap`] | the official SOAP (`soap.py`) | `2n`, and `2nᵢ²` per preconditioned side (+ scratch) | lr 3e-3, β (0.95, 0.95), λ 0.01, eigenbases refreshed every 10 steps |
//! | [`Kron`] | PSGD Kron (kron_torch's `Kron`) | `n`, and `nᵢ²` (triangular) or `nᵢ` (diagonal) per factor (+ scratch) | lr 3e-4, β₁ 0.9, η 0.1, updates annealed from every step to 3% after 500 |
//! | [`Lion`] | the paper (Chen et al., 2023); optax `lion` | `n` | lr 1e-4, β (0.9, 0.99) |
//! | [`Muon`] | `torch.optim.Muon`; optax `contrib.muon` ([`Muon::optax`]); Polar Express ([`Muon::polar_express`]); NorMuon ([`Muon::normuon`]) | `n` (+ scratch) for matrices, `2n` for the AdamW fallback | lr 1e-3, μ 0.95, λ 0.1, 5 Newton–Schulz steps |
//! | [`ScheduleFreeAdamW`] | `schedulefree.AdamWScheduleFree` | `2n` | lr 0.0025, β (0.9, 0.999), ε 1e-8 |
//! | [`ScheduleFreeSgd`] | `schedulefree.SGDScheduleFree` | `n` | lr 1.0, β 0.9 |
//! | [`ScheduleFreeRAdam`] | `schedulefree.RAdamScheduleFree` | `2n` | lr 0.0025, β (0.9, 0.999), ε 1e-8 |
//! | [`Lamb`] | optax `lamb` | `2n` | lr 0.01, β (0.9, 0.999), ε 1e-6 |
//! | [`Lars`] | optax `lars` | `n` | lr 1.0, trust coefficient 0.001, μ 0.9 |
//! | [`Adan`] | optax `adan`; torch-optimi `Adan` ([`Adan::optimi`]) | `4n` | lr 0.01, β (0.98, 0.92, 0.99), ε 1e-8 (optimi 1e-6, λ 0.02) |
//! | [`Adopt`] | optax `contrib.adopt` | `2n` | lr 0.01, β (0.9, 0.9999), ε 1e-6, clip `t^0.25` |
//! | [`AdEMAMix`] | optax `contrib.ademamix` | `3n` | lr 0.01, β (0.9, 0.999, 0.9999), α 5 |
//! | [`AdaBelief`] | optax `adabelief` | `2n` | lr 0.01, β (0.9, 0.999), ε 1e-16 |
//! | [`StableAdamW`] | torch-optimi `StableAdamW` | `2n` | lr 0.001, β (0.9, 0.99), ε 1e-6, λ 0.01 |
//! | [`Ranger`] | torch-optimi `Ranger` | `3n` | lr 0.001, β (0.9, 0.99), ε 1e-6, k 6, α 0.5 |
//! | [`Prodigy`] | prodigyopt `Prodigy`; optax `contrib.prodigy` ([`Prodigy::optax`]) | `4n` (`3n` with β₁ = 0) | lr 1, β (0.9, 0.999), β₃ √β₂, ε 1e-8, d₀ 1e-6 |
//! | [`DAdaptLion`] | dadaptation `DAdaptLion` | `2n` | lr 1, β (0.9, 0.99), d₀ 1e-6 |
//! | [`DAdaptAdam`] | dadaptation `DAdaptAdam`; optax `contrib.dadapt_adamw` ([`DAdaptAdam::optax`]) | `3n` | lr 1, β (0.9, 0.999), ε 1e-8, d₀ 1e-6 |
//! | [`DAdaptSgd`] | dadaptation `DAdaptSGD` | `2n` | lr 1, momentum 0, d₀ 1e-6 |
//! | [`DAdaptAdaGrad`] | dadaptation `DAdaptAdaGrad` | `3n` | lr 1, momentum 0, ε 1e-6, d₀ 1e-6 |
//! | [`Dog`] | optax `contrib.dog` | `n` | lr 1, r₀ 1e-6·(1 + ‖p₀‖), ε 1e-8 |
//! | [`Dowg`] | optax `contrib.dowg` | `n` | lr 1, r₀² = ε = 1e-4 |
//! | [`Sm3`] | optax `sm3` | `n` + the axes' lengths | lr 0.01, momentum 0.9, β₂ 1, ε 1e-8 |
//! | [`PolyakSgd`] | optax `polyak_sgd` | none | scaling (lr) 1, η_max 1, f* 0, ε 0; the loss set before each update |
//! | [`transform::Cautious`] | C-Optim `c_adamw.AdamW`, `c_lion.Lion` (as chains) | the direction's | AdamW lr 1e-3, β (0.9, 0.999), ε 1e-6; Lion lr 1e-4, β (0.95, 0.98) |
//!
//! optax requires a learning rate; its optimizers here default to 0.01 (LARS 1.0), the rates of
//! the conformance files. Their state slots carry optax's names (`mu`, `nu`, `trace`, …).
//!
//! Each type's documentation gives its update as formulas, its defaults and where it departs from
//! the book or from PyTorch. Weight decay is coupled (added to the gradient) except in AdamW,
//! Lion, Adafactor and where [`Engine::decoupled_weight_decay`] asks for it; `maximize` climbs.
//!
//! Options are builder methods (`Adam::default().lr(3e-4).beta2(0.99)`,
//! `Sgd::default().momentum(0.9).nesterov(true)`). Hyperparameters are checked by every
//! [`Optimizer::update`] and by [`Engine::validate`], under PyTorch's conditions and with its
//! wording (`Invalid learning rate: -1`). [`registry`] lists every optimizer by label, for
//! programs that choose one at run time.
//!
//! # Exactness
//!
//! Every type is tested against trajectories recorded from its reference (the book's NumPy
//! classes, `torch.optim` on the CPU, optax, `schedulefree`, torch-optimi): within `1e-12`
//! relative in f64 and `1e-5` in f32, and many bit for bit. [`references`] lists every argument
//! of every reference class, with the builder that implements it or as not offered. To get there each follows its reference's arithmetic, not only its formula: the
//! book's order of operations for the book's types; for PyTorch's options and optimizers, a fused
//! multiply-add wherever ATen's CPU kernel computes `x.add(y, alpha=a)` with one (momentum
//! buffers, coupled weight decay, ASGD and Adadelta steps), and scalar state that PyTorch keeps in
//! float32 tensors (ASGD's `eta`, NAdam's `mu_product`) rounded to `f32`.
//!
//! # Element types and layouts
//!
//! Every optimizer runs on `f32` and `f64` (the type parameter `F`, `f32` by default).
//! Hyperparameters are kept in `f64`; the per-step scalars (Adam's `lr_t`, say) are computed in
//! `f64` and rounded once to `F`, as the book's NumPy code does. Parameters and gradients may be in
//! any memory layout; C-order arrays take the fast path.
//!
//! With the `half` feature, parameters, gradients and state can be stored as `half::bf16` or
//! `half::f16` while the arithmetic stays in `f32`: [`Engine::with_layout`] with a [`Mixed`]
//! layout, the update rounded to nearest, Kahan-compensated or stochastically ([`Rounding`]);
//! torch-optimi's bfloat16 `AdamW` and `SGD` bit for bit. See [`precision`].
//!
//! # One engine
//!
//! Every optimizer is an [`Engine`] running a [`Rule`]: the engine walks the maps, checks keys and
//! shapes, creates state and runs one fused pass over parameter, gradient and state, with no
//! temporary arrays and no allocation once every key has its state. A rule is an algorithm's
//! hyperparameters, the scalars it derives once per step and its per-element update, handed to
//! [`Step::for_each`]; Adafactor and Muon, which need whole tensors (factored moments, matrix
//! products), take the arrays whole through [`Step::parts`], with scratch space kept per key
//! ([`Rule::scratch`]) for Muon's Newton–Schulz iteration.
//!
//! Optimizers also compose, as optax's do: [`transform`] has per-element transforms
//! ([`ScaleByAdam`](transform::ScaleByAdam), weight decay, the learning rate, a momentum trace,
//! clipping, sign) and [`chain!`], which compiles a chain into the same one fused pass.
//! AdaBelief, ADOPT, AdEMAMix, LAMB, LARS and optax's Adan are such chains; LAMB's and LARS's
//! trust ratio is a transform that sums norms in a pass of its own before the step. A transform
//! or a rule of your own needs nothing private: the `custom_transform` and `custom_rule`
//! examples write one each.
//!
//! # Bring your own parameters
//!
//! The map is the book's way in, not the only one. A model whose layers keep `Array2` fields, an
//! autodiff crate with its own variable store (on another ndarray version, say), a `nalgebra`
//! matrix or a `Vec<f32>` hands its parameters over where they are, with
//! [`Optimizer::update_named`]: a list of [`Named`] parameters, each a key, a mutable view of
//! the parameter and a view of its gradient ([`Named::new`]), or two slices and a shape
//! ([`Named::from_slices`]). It is the same engine: every check before anything is written (a
//! key given twice, a gradient of another shape, a slice of the wrong length, a parameter
//! reshaped under its state, a bad hyperparameter), lazy state by key, groups, the non-finite
//! guard, checkpoints, schedules and [`clip`] (over a `Vec` of views), with results bit-identical
//! to the map's (the conformance test replays every file both ways) and no allocation once every
//! key has its state.
//!
//! ```
//! use ndarray::{Array1, Array2};
//! use ndoptim::{AdamW, Named, Optimizer};
//!
//! struct Layer { w: Array2<f32>, b: Array1<f32>, dw: Array2<f32>, db: Array1<f32> }
//! let mut layer = Layer {
//!     w: Array2::ones((4, 3)), b: Array1::zeros(3),
//!     dw: Array2::from_elem((4, 3), 0.1), db: Array1::from_elem(3, -0.1),
//! };
//! let mut opt = AdamW::default();
//! opt.update_named(&mut [
//!     Named::new("layer.w", layer.w.view_mut(), layer.dw.view()),
//!     Named::new("layer.b", layer.b.view_mut(), layer.db.view()),
//! ])?;
//! assert_eq!(opt.step_count("layer.w"), Some(1));
//! # Ok::<(), ndoptim::Error>(())
//! ```
//!
//! How keys carry state, what a key left out of a call keeps, which layouts take the fast path,
//! and how a model on another ndarray version comes in (the [`named!`] macro) are in [`mod@named`].
//!
//! # Training and evaluation points
//!
//! Schedule-Free trains at one point and evaluates at another: [`Optimizer::eval`] moves the
//! parameters to the point to evaluate and [`Optimizer::train`] back. Both are no-ops for every
//! other optimizer, so a loop can call them whatever the optimizer:
//!
//! ```
//! use std::collections::HashMap;
//! use ndarray::{ArrayD, IxDyn};
//! use ndoptim::{Optimizer, ScheduleFreeAdamW, Sgd};
//!
//! let optimizers: Vec<Box<dyn Optimizer<f64>>> =
//!     vec![Box::new(Sgd::default()), Box::new(ScheduleFreeAdamW::default())];
//! for mut opt in optimizers {
//!     let mut params = HashMap::from([("w".to_string(), ArrayD::from_elem(IxDyn(&[2]), 1.0))]);
//!     let grads = HashMap::from([("w".to_string(), ArrayD::from_elem(IxDyn(&[2]), 0.5))]);
//!     opt.update(&mut params, &grads)?;
//!     opt.eval(&mut params)?; // evaluate the model here
//!     opt.train(&mut params)?;
//! }
//! # Ok::<(), ndoptim::Error>(())
//! ```
//!
//! # The training loop
//!
//! The companions PyTorch users reach for, each exact to its reference: schedules ([`schedule`]:
//! every `torch.optim.lr_scheduler` class, `OneCycleLR` and `CyclicLR` moving the momentum too;
//! optax's schedules and `inject_hyperparams`, for any [`Hyperparameter`]), gradient clipping ([`clip`]),
//! per-key hyperparameters ([`Group`]), checkpoints ([`checkpoint`], as safetensors files with
//! the `safetensors` feature), a guard against non-finite gradients ([`NonFinite`]), weight
//! averages, PyTorch's EMA and SWA and optax's EMA ([`average`]), and, around any optimizer,
//! gradient accumulation ([`accumulate`]), Lookahead ([`lookahead`]), Schedule-Free
//! ([`schedule_free_wrapper`]), Mechanic's learnt scale ([`mechanic`]) and sharpness-aware
//! minimisation ([`sam`]). For small full-batch
//! problems, [`lbfgs`] is `torch.optim.LBFGS`, driven by a closure that evaluates the loss.
//!
//! ```
//! use std::collections::HashMap;
//! use ndarray::{ArrayD, IxDyn};
//! use ndoptim::clip::{Norm, clip_grad_norm};
//! use ndoptim::schedule::{Scheduler, TorchSchedule};
//! use ndoptim::{AdamW, Group, NonFinite, Optimizer};
//!
//! let mut params: HashMap<String, ArrayD<f32>> = HashMap::from([
//!     ("W1".to_string(), ArrayD::from_elem(IxDyn(&[4, 3]), 0.5)),
//!     ("b1".to_string(), ArrayD::zeros(IxDyn(&[3]))),
//! ]);
//! let mut opt = AdamW::default()
//!     .lr(1e-3)
//!     .group(Group::prefix("b").weight_decay(0.0)) // no weight decay for biases
//!     .non_finite(NonFinite::Skip); // skip steps whose gradients hold NaN or infinity
//! let mut schedule = Scheduler::new(TorchSchedule::CosineAnnealingLR { t_max: 100, eta_min: 0.0 }, &mut opt)?;
//!
//! for step in 0..10 {
//!     let mut grads: HashMap<String, ArrayD<f32>> = params
//!         .iter()
//!         .map(|(k, p)| (k.clone(), p.mapv(|x| x - 0.1 * step as f32)))
//!         .collect();
//!     let norm = clip_grad_norm(&mut grads, 1.0, Norm::L2, false)?;
//!     assert!(norm.is_finite());
//!     opt.update(&mut params, &grads)?;
//!     schedule.step(&mut opt)?;
//! }
//!
//! // Save the optimizer's state with the schedule's, and resume elsewhere.
//! let mut checkpoint = opt.checkpoint();
//! checkpoint.scheduler = Some(schedule.clone());
//! let mut resumed = AdamW::default().group(Group::prefix("b").weight_decay(0.0));
//! let schedule_again = checkpoint.scheduler.take();
//! resumed.restore(checkpoint)?;
//! assert_eq!(resumed.step_count("W1"), Some(10));
//! assert_eq!(schedule_again.map(|s| s.epoch()), Some(10));
//! # Ok::<(), ndoptim::Error>(())
//! ```
//!
//! # Speed
//!
//! - The fused pass is compiled for the build's baseline, for AVX2 + FMA and for AVX-512 (with
//!   the CPU's bfloat16 conversion where it has one), and the best one the CPU has runs
//!   ([`simd`]): a default build runs at the speed of a `-C target-cpu=native` one. Every level
//!   gives the same bits.
//! - Feature `rayon`: steps of a million elements or more run on rayon's pool, over keys and
//!   over chunks of large arrays, with the same bits as the serial path (module `parallel`, when
//!   enabled).
//!
//! # Features
//!
//! - `init` (default): module `init`, the book's and `torch.nn.init`'s weight initialisations.
//! - `rayon`: parallel steps.
//! - `serde`: `Serialize`/`Deserialize` on hyperparameters, schedules and checkpoints.
//! - `safetensors`: checkpoints as safetensors files (`Engine::save_safetensors`,
//!   `Engine::load_safetensors`), which Python opens with `safetensors.safe_open`.
//! - `half`: `half::bf16` and `half::f16` parameters and state ([`precision`]).
//!
//! The optimizers need none of them: `default-features = false` builds them without `init`'s
//! rand and rand_distr, which then do not meet the application's own.
#![deny(missing_docs)]

#[macro_use]
mod macros;
pub mod accumulate;
pub mod average;
mod buffered;
mod check;
pub mod checkpoint;
pub mod clip;
mod element;
mod engine;
mod error;
mod groups;
#[cfg(feature = "init")]
pub mod init;
pub mod lbfgs;
pub mod lookahead;
pub mod mechanic;
pub mod named;
mod optimizer;
mod optimizers;
#[cfg(feature = "rayon")]
pub mod parallel;
mod parts;
pub mod precision;
mod products;
pub mod references;
pub mod registry;
pub mod sam;
pub mod schedule;
pub mod schedule_free_wrapper;
pub mod simd;
mod tensor;
pub mod transform;

pub use element::{Element, Rounding, Scalar, Store};
pub use engine::{
    Engine, KeyState, Layout, Mixed, Mode, Native, NonFinite, Params, Parts, Rule, Scope, Slots,
    Step,
};
pub use error::Error;
pub use groups::Group;
pub use named::Named;
/// The ndarray ndoptim is built on (0.17), re-exported: arrays made through `ndoptim::ndarray`
/// are always of the version [`Optimizer`] takes. A model on another ndarray version comes in
/// through slices ([`named!`], [`Named::from_slices`]); see [`mod@named`] for why.
pub use ndarray;
pub use optimizer::{Hyperparameter, Optimizer};
pub use optimizers::*;
pub use parts::{
    GradientOptions, HasBetas, HasDecoupledWeightDecay, HasFullyDecoupledWeightDecay,
    HasGradientOptions,
};
pub use tensor::Preconditioning;

/// The README's examples, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
