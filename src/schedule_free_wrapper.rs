//! Schedule-Free around any optimizer, exact to `schedulefree`'s `ScheduleFreeWrapper`.
//!
//! The wrapped (base) optimizer steps a sequence `z`; the parameters the caller holds are `y`,
//! where gradients are taken, an interpolation between `z` and the average `x` of the `z`s. With
//! β the momentum, `a = lr·λ_y` (weight decay at `y`) and `k` the key's steps so far:
//!
//! ```text
//! z ← z − a·y;   y ← y − a·(1 − β)·y;   x = lerp(y, z, 1 − 1/β)
//! z ← base step of z with the gradient taken at y
//! lr_max = max of lr·d so far;   w = (k + 1)^r · lr_max^weight_lr_power;   c = w / Σw
//! x ← lerp(x, z, c);   y ← lerp(x, z, 1 − β)
//! ```
//!
//! where `lr` is the base optimizer's learning rate after its step and `d` its
//! [`global`](Optimizer::global) `"d"` if it has one (Prodigy's and D-Adaptation's step size),
//! else 1. [`Optimizer::eval`] moves the parameters to `x` and [`Optimizer::train`] back to `y`;
//! `update` in evaluation mode is [`Error::EvalMode`]. Like the crate's Schedule-Free
//! optimizers, a new wrapper starts in training mode (the reference must be switched to it
//! first, which before the first step changes nothing).
//!
//! ```
//! use ndarray::{ArrayD, IxDyn};
//! use ndoptim::schedule_free_wrapper::ScheduleFreeWrapper;
//! use ndoptim::{Adam, Optimizer, Params};
//!
//! let mut params: Params<f64> = [("w".to_string(), ArrayD::from_elem(IxDyn(&[2]), 1.0))].into();
//! let grads: Params<f64> = [("w".to_string(), ArrayD::from_elem(IxDyn(&[2]), 1.0))].into();
//! let mut opt = ScheduleFreeWrapper::new(Adam::pytorch().lr(0.01)).weight_decay_at_y(0.1);
//! for _ in 0..3 {
//!     opt.update(&mut params, &grads)?;
//! }
//! opt.eval(&mut params)?; // x, to evaluate
//! opt.train(&mut params)?; // y, to train on
//! # Ok::<(), ndoptim::Error>(())
//! ```
//!
//! The base optimizer holds its own state (Adam's moments, for instance) for `z`. `z` is kept
//! here, with the averaging scalars and the mode: checkpoint both ([`ScheduleFreeWrapper::checkpoint`]
//! and the base's own). The reference swaps `x` into `z`'s buffer around the base step; this
//! wrapper keeps one more buffer per key instead, so that an error of the base optimizer leaves
//! everything as it was.

use ndarray::ArrayRefD;

use crate::buffered::Buffered;
use crate::engine::{Engine, Layout, Mode, Rule, Scalar, Step, cast};
use crate::optimizers::{AveragingScalars, switch_mode};
use crate::parts::{Lerp, add_scaled};
use crate::tensor::each_pair;
use crate::{Error, Optimizer, Params, check};

/// The rule of a [`ScheduleFreeWrapper`]'s own state: `z` per key, the averaging scalars per
/// key, the mode. Its step receives the base optimizer's new `z` as its "gradient".
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ScheduleFreeWrapperRule {
    momentum: f64,
    weight_decay_at_y: f64,
    r: f64,
    weight_lr_power: f64,
    mode: Mode,
    /// The base's learning rate (times its `d`) and the wrapper's decay `lr·λ_y` of the step
    /// under way, set by the wrapper before each.
    #[cfg_attr(feature = "serde", serde(skip))]
    step: [f64; 2],
}

impl<F: Scalar> Rule<F> for ScheduleFreeWrapperRule {
    type KeyScalars = AveragingScalars;
    const NAME: &'static str = "ScheduleFreeWrapper";
    const DEFAULT_LR: f64 = 0.0;

    fn validate(&self) -> Result<(), Error> {
        if !(self.momentum > 0.0 && self.momentum < 1.0) {
            check::fail("momentum value", self.momentum, "a number in (0, 1)")?;
        }
        check::non_negative("weight_decay_at_y value", self.weight_decay_at_y)?;
        check::finite("r value", self.r)?;
        check::finite("weight_lr_power value", self.weight_lr_power)
    }

    fn slot_names(&self) -> Vec<&'static str> {
        vec!["z"]
    }

    fn mode(&self) -> Option<Mode> {
        Some(self.mode)
    }

    fn set_mode(&mut self, mode: Mode) {
        self.mode = mode;
    }

    fn switch(&self, to: Mode, params: &mut ArrayRefD<F>, state: &[F]) {
        switch_mode(self.momentum, to, params, state);
    }

    /// `y` (the parameter) and `z` (the slot) after the base optimizer moved `z` to `stepped`.
    fn step<L: Layout<F>>(&self, step: Step<'_, F, L>, scalars: &mut AveragingScalars) {
        let [lr, decay] = self.step;
        let t = step.t();
        let c = scalars.advance(t, lr, self.r, self.weight_lr_power);
        let beta = self.momentum;
        let (to_x, to_z, to_y) = (
            Lerp::<F>::new(1.0 - 1.0 / beta),
            Lerp::<F>::new(c),
            Lerp::<F>::new(1.0 - beta),
        );
        let (z_decay, y_decay): (F, F) = (cast(-decay), cast(-decay * (1.0 - beta)));
        let first = t == 1;
        step.for_each(move |y, stepped, [z]: &mut [F; 1]| {
            if first {
                *z = *y;
            }
            let x = to_x.apply_fused(add_scaled(*y, y_decay, *y), add_scaled(*z, z_decay, *y));
            *y = to_y.apply_fused(to_z.apply_fused(x, stepped), stepped);
            *z = stepped;
        });
    }
}

/// Schedule-Free around the optimizer `O` (see the [module docs](self)).
#[derive(Clone, Debug)]
pub struct ScheduleFreeWrapper<O, F: Scalar> {
    base: Buffered<O, F>,
    /// `z` and the averaging: an engine whose rule finishes the step, for its checks, lazy state,
    /// modes and checkpoints.
    state: Engine<ScheduleFreeWrapperRule, F>,
}

impl<O: Optimizer<F>, F: Scalar> ScheduleFreeWrapper<O, F> {
    /// Schedule-Free around `base`, with the reference's defaults: momentum 0.9, no weight decay
    /// at `y`, r = 0, weight_lr_power = 2.
    pub fn new(base: O) -> Self {
        Self {
            base: Buffered::new(base),
            state: Engine::new(ScheduleFreeWrapperRule {
                momentum: 0.9,
                weight_decay_at_y: 0.0,
                r: 0.0,
                weight_lr_power: 2.0,
                mode: Mode::Train,
                step: [0.0; 2],
            }),
        }
    }

    rule_builders!(
        /// Sets the momentum β of the interpolation, in (0, 1) (default 0.9).
        momentum: f64,
        /// Sets the weight decay λ_y computed at `y` (default 0); the base optimizer's own
        /// weight decay is computed at `z`.
        weight_decay_at_y: f64,
        /// Sets r, the power of `k + 1` in the averaging weights (default 0).
        r: f64,
        /// Sets the power of the largest learning rate in the averaging weights (default 2).
        weight_lr_power: f64,
    );

    base_and_checkpoint!(
        ScheduleFreeWrapperRule,
        AveragingScalars,
        "`z`, the averaging scalars and the mode"
    );
}

impl<O: Optimizer<F>, F: Scalar> Optimizer<F> for ScheduleFreeWrapper<O, F> {
    /// The base optimizer's step on `z`, then `x` and `y`.
    ///
    /// # Errors
    ///
    /// [`Error::EvalMode`] in evaluation mode; the checks of [`Optimizer::update`]; those of the
    /// base optimizer. Everything but the base optimizer's hyperparameters is checked before
    /// anything is written, and those before the base writes anything: after an error,
    /// parameters and state are as they were.
    fn update(&mut self, params: &mut Params<F>, grads: &Params<F>) -> Result<(), Error> {
        if self.state.rule().mode == Mode::Eval {
            return Err(Error::EvalMode);
        }
        Rule::<F>::validate(self.state.rule())?;
        self.state.check_update(params, grads)?;
        let decay = self.base.learning_rate() * self.state.rule().weight_decay_at_y;
        // The base steps z − a·y (z starts at y), in a buffer of the key's.
        let (a, state): (F, _) = (cast(-decay), &self.state);
        self.base.step(params, grads, |key, buffer, y| {
            // `z` is the key's only slot, in row-major order (checked to have y's shape).
            let z = state.state(key).map(|(_, z)| z);
            each_pair(buffer, y, |i, b, y| {
                *b = add_scaled(z.map_or(y, |z| z[i]), a, y)
            });
        })?;
        let lr = self.base.learning_rate() * self.base.global("d").unwrap_or(1.0);
        self.state.rule_mut().step = [lr, decay];
        self.base.finish(&mut self.state, params)
    }

    forward_optimizer!(
        F,
        base: learning_rate,
        hyperparameters,
        scope,
        update_named_through_map,
    );

    forward_optimizer!(F, state: modes);

    /// Drops `z`, the averaging and the base optimizer's state.
    fn reset(&mut self) {
        self.state.reset();
        self.base.reset();
    }

    fn name(&self) -> &'static str {
        "ScheduleFreeWrapper"
    }
}
