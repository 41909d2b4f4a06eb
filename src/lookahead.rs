//! Lookahead over any optimizer (Zhang et al., 2019, "Lookahead Optimizer: k steps forward, 1
//! step back"), exact to `optax.lookahead`.
//!
//! The parameters the caller holds are the *fast* weights, which the inner optimizer steps. Every
//! `sync_period` steps the *slow* weights, kept here, move `slow_step_size` of the way to the fast
//! ones, and the fast weights are set to them. Evaluate with the slow weights
//! ([`Lookahead::copy_slow_to`]).
//!
//! ```
//! use ndarray::{ArrayD, IxDyn};
//! use ndoptim::lookahead::Lookahead;
//! use ndoptim::{Optimizer, Params, Sgd};
//!
//! let mut params: Params<f64> = [("w".to_string(), ArrayD::from_elem(IxDyn(&[2]), 1.0))].into();
//! let grads: Params<f64> = [("w".to_string(), ArrayD::from_elem(IxDyn(&[2]), 1.0))].into();
//! let mut opt = Lookahead::new(Sgd::default().lr(0.1), 5, 0.5);
//! for _ in 0..5 {
//!     opt.update(&mut params, &grads)?;
//! }
//! // Five fast steps of 0.1 took w to 0.5; the sync moved slow and fast half-way: 0.75.
//! assert!((params["w"][0] - 0.75).abs() < 1e-12);
//! # Ok::<(), ndoptim::Error>(())
//! ```
//!
//! With [`Lookahead::reset_state`] the inner optimizer's state is dropped at every sync, as
//! optax's `reset_state=True` sets it back to its initial value. The slow weights start as the
//! parameters of each key's first update (optax's `LookaheadParams.init_synced`).

use ndarray::{ArrayD, Zip};

use crate::checkpoint::Checkpoint;
use crate::engine::{Engine, Layout, Rule, Scalar, Step, cast};
use crate::{Error, Optimizer, Params, check};

/// The rule of a [`Lookahead`]'s slow weights: one slot, `slow`, shaped like the parameter.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct LookaheadRule {
    sync_period: u64,
    slow_step_size: f64,
    reset_state: bool,
    /// Steps since the last sync: state, kept here so that the checkpoint holds it.
    steps_since_sync: u64,
}

impl<F: Scalar> Rule<F> for LookaheadRule {
    type KeyScalars = ();
    const NAME: &'static str = "Lookahead";
    const DEFAULT_LR: f64 = 0.0;

    fn validate(&self) -> Result<(), Error> {
        if self.sync_period == 0 {
            return check::fail("sync_period", 0.0, "a whole number >= 1");
        }
        if self.steps_since_sync >= self.sync_period {
            return check::fail(
                "steps_since_sync",
                self.steps_since_sync as f64,
                "below sync_period",
            );
        }
        check::non_negative("slow_step_size", self.slow_step_size)
    }

    fn slot_names(&self) -> Vec<&'static str> {
        vec!["slow"]
    }

    /// The sync of one key: its parameter (the fast weights after the inner step) and its slow
    /// weights meet `slow_step_size` of the way.
    fn step<L: Layout<F>>(&self, step: Step<'_, F, L>, _: &mut ()) {
        // optax's sync: d = fast + u − slow, slow += α·d, fast += u − (1 − α)·d, where the
        // fast weights already hold fast + u.
        let (alpha, back): (F, F) = (cast(self.slow_step_size), cast(1.0 - self.slow_step_size));
        step.for_each(move |fast, _, [slow]: &mut [F; 1]| {
            let d = *fast - *slow;
            *slow = *slow + alpha * d;
            *fast = *fast - back * d;
        });
    }
}

/// Lookahead around an optimizer (see the [module docs](self)).
#[derive(Clone, Debug)]
pub struct Lookahead<O, F: Scalar> {
    inner: O,
    /// The slow weights are the state of an engine whose rule syncs: its checks, lazy state
    /// and checkpoints, reused.
    slow: Engine<LookaheadRule, F>,
}

impl<O: Optimizer<F>, F: Scalar> Lookahead<O, F> {
    /// Lookahead over `inner`: a sync every `sync_period` steps, the slow weights moving
    /// `slow_step_size` of the way (the paper's k and α; optax has no defaults, the paper uses
    /// 5 and 0.5).
    pub fn new(inner: O, sync_period: u64, slow_step_size: f64) -> Self {
        Self {
            inner,
            slow: Engine::new(LookaheadRule {
                sync_period,
                slow_step_size,
                reset_state: false,
                steps_since_sync: 0,
            }),
        }
    }

    /// Drops the inner optimizer's state at every sync (default `false`).
    #[must_use]
    pub fn reset_state(mut self, reset: bool) -> Self {
        self.slow.rule_mut().reset_state = reset;
        self
    }

    /// The inner optimizer.
    pub fn inner(&self) -> &O {
        &self.inner
    }

    /// The inner optimizer, to change or checkpoint it.
    pub fn inner_mut(&mut self) -> &mut O {
        &mut self.inner
    }

    /// Steps since the last sync.
    pub fn steps_since_sync(&self) -> u64 {
        self.slow.rule().steps_since_sync
    }

    /// Writes the slow weights into `params`, for evaluation: every key of `params` that has
    /// them; others are left alone.
    ///
    /// # Errors
    ///
    /// [`Error::StateShapeMismatch`] for a parameter whose shape differs from its slow
    /// weights'; nothing is written then.
    pub fn copy_slow_to(&self, params: &mut Params<F>) -> Result<(), Error> {
        for (key, p) in params.iter() {
            self.slow.check_state(key, p.shape())?;
        }
        for (key, p) in params.iter_mut() {
            if let Some(slow) = self.slow.slot(key, "slow") {
                Zip::from(p).and(&slow).for_each(|p, &s| *p = s);
            }
        }
        Ok(())
    }

    /// The slow weights and the steps since the last sync. Checkpoint the inner optimizer
    /// beside it.
    pub fn checkpoint(&self) -> Checkpoint<LookaheadRule, (), F> {
        self.slow.checkpoint()
    }

    /// Loads a checkpoint taken by [`Lookahead::checkpoint`], checked whole first.
    ///
    /// # Errors
    ///
    /// As [`Engine::restore`]: after an error nothing has changed.
    pub fn restore(&mut self, checkpoint: Checkpoint<LookaheadRule, (), F>) -> Result<(), Error> {
        self.slow.restore(checkpoint)
    }
}

impl<O: Optimizer<F>, F: Scalar> Optimizer<F> for Lookahead<O, F> {
    /// One inner step on the fast weights; on every `sync_period`th, the sync.
    ///
    /// # Errors
    ///
    /// Those of the inner optimizer, and [`Error::StateShapeMismatch`] for a parameter whose
    /// slow weights have another shape. Everything is checked before anything is written.
    fn update(&mut self, params: &mut Params<F>, grads: &Params<F>) -> Result<(), Error> {
        Rule::<F>::validate(self.slow.rule())?;
        for (key, p) in params.iter() {
            if grads.contains_key(key) {
                self.slow.check_state(key, p.shape())?;
            }
        }
        // Slow weights start as the parameters before their first step: kept aside, and made
        // only once the inner step has succeeded.
        let fresh: Vec<(String, ArrayD<F>)> = params
            .iter()
            .filter(|(key, _)| grads.contains_key(*key) && self.slow.state(key).is_none())
            .map(|(key, p)| (key.clone(), p.clone()))
            .collect();
        self.inner.update(params, grads)?;
        for (key, p) in fresh {
            // Checked above: a new key's state is made for its shape.
            let state = self.slow.state_mut(&key, p.shape())?;
            state
                .slots
                .iter_mut()
                .zip(p.iter())
                .for_each(|(s, &x)| *s = x);
        }
        let rule = self.slow.rule_mut();
        rule.steps_since_sync = (rule.steps_since_sync + 1) % rule.sync_period;
        if rule.steps_since_sync == 0 {
            let reset = rule.reset_state;
            // The sync reads the gradients' keys only: the engine's step over them, whose rule
            // ignores the gradient.
            self.slow.update(params, grads)?;
            if reset {
                self.inner.reset();
            }
        }
        Ok(())
    }

    forward_optimizer!(F, inner: wrapper);

    /// Drops the slow weights and the inner optimizer's state.
    fn reset(&mut self) {
        self.slow.reset();
        self.slow.rule_mut().steps_since_sync = 0;
        self.inner.reset();
    }

    fn name(&self) -> &'static str {
        "Lookahead"
    }
}
