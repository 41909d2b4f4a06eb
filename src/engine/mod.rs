//! The one update engine: map walking, key and shape checks, lazy per-key state, and the fused
//! per-element pass. Algorithms plug in as a [`Rule`].
//!
//! The path of one update, one file per stage:
//!
//! 1. `driver`: [`Optimizer::update`](crate::Optimizer::update) on an [`Engine`], which holds the
//!    rule, the learning rate and the per-key state;
//! 2. `gather`: every key meets its gradient and its state, and the whole call is checked before
//!    anything is written (a `Plan`);
//! 3. `order`: keys in the order of their parameters in memory, the next one prefetched;
//! 4. `run`: state made for new keys; for a rule of [`Scope::Global`] (Prodigy), a first pass
//!    that measures every key ([`Rule::measure`]) and reduces the sums into optimizer-wide
//!    scalars ([`Rule::reduce`]); then each key handed to [`Rule::step`] as a [`Step`] (`step`),
//!    in turn or across threads;
//! 5. `kernel`: the rule's per-element closure inlined into one fused loop over parameter,
//!    gradient and [`Slots`], compiled per instruction set and split across threads.
//!
//! Beside the path: `rule` (the [`Rule`] trait), `layout` ([`Layout`], the types parameters and
//! state are stored in), `modes` (evaluation and training points), `state` ([`KeyState`], the
//! per-key state as wrappers read and write it). Checkpoints of an engine are taken and restored
//! in `crate::checkpoint`.

mod driver;
mod gather;
mod kernel;
mod layout;
mod modes;
mod order;
mod rule;
mod run;
mod state;
mod step;

use std::collections::HashMap;

use ndarray::ArrayD;

pub(crate) use driver::Entry;
pub use driver::{Engine, NonFinite};
pub use kernel::Slots;
pub(crate) use kernel::{for_each_slice, kahan_add, sum_slice};
pub(crate) use layout::Write;
pub use layout::{Layout, Mixed, Native};
pub use rule::{Mode, Rule, Scope};
pub use state::KeyState;
pub use step::{Parts, Step};

/// A map of named arrays: the parameters of a model, or their gradients.
pub type Params<F> = HashMap<String, ArrayD<F>>;

pub use crate::element::Scalar;

/// Converts a hyperparameter (kept in `f64`) to the element type, rounding once.
#[inline]
pub(crate) fn cast<F: Scalar>(x: f64) -> F {
    F::from(x).unwrap_or_else(F::nan)
}
