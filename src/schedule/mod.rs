//! Schedules: hyperparameters that change as training goes on.
//!
//! Two kinds, for the two ways references define them:
//!
//! - **Functions of the step**, the open [`Schedule`] trait: optax's schedules ([`linear`],
//!   [`CosineDecay`], [`warmup_cosine_decay`], [`PiecewiseConstant`], [`sgdr`], ...), transformers'
//!   warm-up–stable–decay ([`Wsd`]), the combinators [`Join`] and [`Warmup`], and any closure
//!   through [`from_fn`]. [`Inject`] makes an optimizer's learning rate, momentum, betas or weight
//!   decay follow them, as optax's `inject_hyperparams` does.
//! - **PyTorch's `lr_scheduler` classes**, [`TorchSchedule`] driven by a [`Scheduler`]: PyTorch
//!   computes most of them recursively from the rate the optimizer holds ("chainable"), so they
//!   are not functions of the step alone; the [`Scheduler`] keeps PyTorch's counters and repeats
//!   its arithmetic, so that the rates equal PyTorch's. `ReduceLROnPlateau` reads a metric.
//!   [`TorchSchedule::closed_form`] makes the others a [`Schedule`] too, in PyTorch's closed
//!   forms: a cosine annealing of the weight decay, say.
//!
//! Any hyperparameter on any schedule, optax's way:
//!
//! ```
//! use ndoptim::schedule::{self, Inject, Schedule};
//! use ndoptim::{AdamW, Hyperparameter, Optimizer};
//! // Warm up for 100 steps to 1e-3, then decay by cosine to 1e-5 at step 1000; weight decay
//! // from 0 to 0.1 over the first 500.
//! let lr = schedule::warmup_cosine_decay(0.0, 1e-3, 100, 1000, 1e-5, 1.0)?;
//! assert_eq!(lr.value(100), 1e-3);
//! let wd = schedule::linear(0.0, 0.1, 500)?;
//! let mut adamw = Inject::new(AdamW::<f32>::default())
//!     .schedule(Hyperparameter::LearningRate, lr)?
//!     .schedule(Hyperparameter::WeightDecay, wd)?;
//! // ... adamw.update(&mut params, &grads)? sets both at the step's count, then steps ...
//! # Ok::<(), ndoptim::Error>(())
//! ```
//!
//! Your own schedule is a type with a `value` method, or a closure:
//!
//! ```
//! use ndoptim::schedule::{self, Schedule};
//! /// Inverse square root decay after a warm-up, as in "Attention is all you need".
//! #[derive(Debug)]
//! struct InverseSqrt { peak: f64, warmup: u64 }
//!
//! impl Schedule for InverseSqrt {
//!     fn value(&self, step: u64) -> f64 {
//!         let (t, w) = ((step + 1) as f64, self.warmup as f64);
//!         self.peak * (t / w).min((w / t).sqrt())
//!     }
//! }
//! assert_eq!(InverseSqrt { peak: 1.0, warmup: 4 }.value(3), 1.0);
//! let halving = schedule::from_fn(|step| 0.1 * 0.5f64.powi((step / 10) as i32));
//! assert_eq!(halving.value(25), 0.025);
//! ```
//!
//! PyTorch's classes: creating a [`Scheduler`] sets the optimizer's initial learning rate; each
//! [`Scheduler::step`], after an optimizer step, sets the next one:
//!
//! ```
//! use ndoptim::schedule::{Scheduler, TorchSchedule};
//! use ndoptim::{Optimizer, Sgd};
//! let mut sgd = Sgd::<f32>::default().lr(0.1);
//! // Warm up linearly for 5 steps, then anneal by cosine for 20.
//! let warmup = TorchSchedule::LinearLR { start_factor: 0.1, end_factor: 1.0, total_iters: 5 };
//! let cosine = TorchSchedule::CosineAnnealingLR { t_max: 20, eta_min: 0.0 };
//! let sequential = TorchSchedule::Sequential { schedules: vec![warmup, cosine], milestones: vec![5] };
//! let mut scheduler = Scheduler::new(sequential, &mut sgd)?;
//! assert!((sgd.learning_rate() - 0.01).abs() < 1e-12);
//! for _ in 0..5 {
//!     // ... sgd.update(&mut params, &grads)? ...
//!     scheduler.step(&mut sgd)?;
//! }
//! assert!((sgd.learning_rate() - 0.1).abs() < 1e-12);
//! # Ok::<(), ndoptim::Error>(())
//! ```
//!
//! `OneCycleLR` and `CyclicLR` also move the momentum inversely to the learning rate, as
//! PyTorch's do by default (`cycle_momentum=True`): SGD's momentum, or the first beta of the Adam
//! family, through [`Optimizer::set_hyperparameter`](crate::Optimizer::set_hyperparameter), so
//! through a `Box<dyn Optimizer<F>>` too. An optimizer without either is refused
//! ([`Error::NoHyperparameter`](crate::Error::NoHyperparameter)), as PyTorch refuses it; give
//! `momentum: None` to schedule the learning rate only:
//!
//! ```
//! use ndoptim::schedule::{Scheduler, TorchSchedule};
//! use ndoptim::{AdaGrad, Adam, Error, Hyperparameter, Optimizer};
//! let mut adam: Box<dyn Optimizer<f64>> = Box::new(Adam::default());
//! let mut one_cycle = Scheduler::new(TorchSchedule::one_cycle(0.1, 100), &mut adam)?;
//! let beta1 = |o: &Box<dyn Optimizer<f64>>| o.hyperparameter(Hyperparameter::Momentum);
//! assert!((adam.learning_rate() - 0.004).abs() < 1e-15);
//! assert_eq!(beta1(&adam), Some(0.95));
//! for _ in 0..29 {
//!     one_cycle.step(&mut adam)?;
//! }
//! // The peak of the learning rate is the trough of beta1.
//! assert_eq!((adam.learning_rate(), beta1(&adam)), (0.1, Some(0.85)));
//!
//! let mut adagrad = AdaGrad::<f64>::default();
//! let refused = Scheduler::new(TorchSchedule::one_cycle(0.1, 100), &mut adagrad);
//! assert!(matches!(refused, Err(Error::NoHyperparameter { optimizer: "AdaGrad", .. })));
//! # Ok::<(), ndoptim::Error>(())
//! ```

mod functions;
mod inject;
mod torch;

use std::fmt;
use std::sync::Arc;

pub use functions::{
    Boundary, Constant, CosineDecay, ExponentialDecay, Interpolation, Join, PiecewiseConstant,
    PiecewiseInterpolate, Polynomial, Shape, Warmup, Wsd, cosine_onecycle, linear, linear_onecycle,
    sgdr, warmup_cosine_decay, warmup_exponential_decay,
};
pub use inject::Inject;
pub use torch::{
    ClosedForm, CycleMomentum, Cyclic, CyclicMode, OneCycle, Plateau, ScaleMode, Scheduler,
    TorchSchedule,
};

/// A hyperparameter's value as a function of the step: optax's `Schedule`.
///
/// Implement it for your own schedules; [`Inject`] applies any of them to any hyperparameter.
/// Validate arguments where the schedule is built, so that `value` cannot fail.
pub trait Schedule: fmt::Debug + Send + Sync {
    /// The value for the update at `step`: 0 for the first update, 1 for the second, ...
    fn value(&self, step: u64) -> f64;
}

impl<S: Schedule + ?Sized> Schedule for Box<S> {
    fn value(&self, step: u64) -> f64 {
        (**self).value(step)
    }
}

impl<S: Schedule + ?Sized> Schedule for Arc<S> {
    fn value(&self, step: u64) -> f64 {
        (**self).value(step)
    }
}

/// A schedule from a closure of the step ([`from_fn`]).
#[derive(Clone, Copy)]
pub struct FromFn<F>(F);

impl<F> fmt::Debug for FromFn<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FromFn")
    }
}

impl<F: Fn(u64) -> f64 + Send + Sync> Schedule for FromFn<F> {
    fn value(&self, step: u64) -> f64 {
        (self.0)(step)
    }
}

/// A schedule whose value at `step` is `f(step)`.
pub fn from_fn<F: Fn(u64) -> f64 + Send + Sync>(f: F) -> FromFn<F> {
    FromFn(f)
}
