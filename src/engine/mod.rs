//! The one update engine: map walking, key and shape checks, lazy per-key state, and the fused
//! per-element pass. Algorithms plug in as a [`Rule`].
//!
//! - `driver`: [`Engine`], which walks the maps, checks every call whole and keeps per-key state;
//! - `rule`: the [`Rule`] trait, an algorithm's hyperparameters and its update of one key;
//! - `plan`: one call's keys, gathered and checked in one pass and stepped in memory order;
//! - `step`: [`Step`], one key's update as a rule sees it;
//! - `state`: [`KeyState`] and the methods through which wrappers keep per-key state in an
//!   engine;
//! - `layout`: [`Layout`], the types parameters and state are stored in;
//! - `fused`: [`Slots`] and the fused per-element pass, dispatched by instruction set and (with
//!   the `rayon` feature) split across threads.
//!
//! Checkpoints of an engine are taken and restored in `crate::checkpoint`.

mod driver;
mod fused;
mod layout;
mod plan;
mod rule;
mod state;
mod step;

use std::collections::HashMap;

use ndarray::ArrayD;

pub(crate) use driver::Entry;
pub use driver::{Engine, NonFinite};
pub use fused::Slots;
pub(crate) use fused::{for_each_slice, kahan_add, sum_slice};
pub(crate) use layout::Write;
pub use layout::{Layout, Mixed, Native};
pub use rule::{Mode, Rule};
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
