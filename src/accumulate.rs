//! Gradient accumulation over any optimizer: optax's `MultiSteps`.
//!
//! When a batch does not fit in memory, split it into `k` micro-batches: [`MultiSteps`] keeps the
//! mean of their gradients and steps the inner optimizer once every `k` calls, with parameters
//! and the inner state untouched in between.
//!
//! ```
//! use ndarray::{ArrayD, IxDyn};
//! use ndoptim::accumulate::MultiSteps;
//! use ndoptim::{Adam, Optimizer, Params};
//!
//! let mut params: Params<f32> = [("w".to_string(), ArrayD::zeros(IxDyn(&[3])))].into();
//! let mut opt = MultiSteps::new(Adam::pytorch(), 4); // batch 128 as 4 micro-batches of 32
//! for call in 1..=8 {
//!     let grads: Params<f32> = [("w".to_string(), ArrayD::from_elem(IxDyn(&[3]), 0.5))].into();
//!     opt.update(&mut params, &grads)?;
//!     assert_eq!(opt.stepped(), call % 4 == 0);
//! }
//! # Ok::<(), ndoptim::Error>(())
//! ```
//!
//! Exact to `optax.MultiSteps(opt, every_k_schedule=k)`: the inner optimizer sees the running
//! mean `acc + (g − acc)/(n + 1)` (or, with [`MultiSteps::use_grad_mean`]`(false)`, the sum).
//! [`MultiSteps::non_finite`] guards each micro-batch: [`NonFinite::Skip`] drops one whose
//! gradients hold NaN or infinity, as optax's `should_skip_update_fn` can. The accumulators are
//! state like an optimizer's: [`MultiSteps::checkpoint`] takes them (the inner optimizer keeps
//! its own checkpoint), and no call allocates once the first window is done.

use ndarray::{ArrayD, IxDyn};

use crate::checkpoint::Checkpoint;
use crate::engine::{Engine, Layout, Rule, Scalar, Step, cast};
use crate::{Error, NonFinite, Optimizer, Params};

/// The rule of a [`MultiSteps`]' accumulators: one slot, `acc`, shaped like the parameter.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct AccumulateRule {
    every: u64,
    use_grad_mean: bool,
    /// Micro-batches accumulated in the current window: state, kept here so that the
    /// accumulators' checkpoint holds it.
    mini_step: u64,
}

impl<F: Scalar> Rule<F> for AccumulateRule {
    type KeyScalars = ();
    const NAME: &'static str = "MultiSteps";
    const DEFAULT_LR: f64 = 0.0;

    fn validate(&self) -> Result<(), Error> {
        if self.every == 0 {
            return crate::check::fail("every_k_schedule", 0.0, "a whole number >= 1");
        }
        if self.mini_step >= self.every {
            return crate::check::fail(
                "mini_step",
                self.mini_step as f64,
                "below every_k_schedule",
            );
        }
        Ok(())
    }

    fn slot_names(&self) -> Vec<&'static str> {
        vec!["acc"]
    }

    /// Folds the gradient into the accumulator; the parameter is not touched.
    fn step<L: Layout<F>>(&self, step: Step<'_, F, L>, _: &mut ()) {
        let n: F = cast((self.mini_step + 1) as f64);
        if self.use_grad_mean {
            step.for_each(move |_, g, [acc]: &mut [F; 1]| *acc = *acc + (g - *acc) / n);
        } else {
            step.for_each(move |_, g, [acc]: &mut [F; 1]| *acc = g + *acc);
        }
    }
}

/// Gradient accumulation around an optimizer (see the [module docs](self)).
#[derive(Clone, Debug)]
pub struct MultiSteps<O, F: Scalar> {
    inner: O,
    /// The accumulators are the state of an engine whose rule accumulates: its checks,
    /// lazy state and checkpoints, reused.
    acc: Engine<AccumulateRule, F>,
    /// The window's mean, handed to the inner optimizer on the `k`th call: rebuilt each
    /// window, kept only so that its arrays are allocated once.
    mean: Params<F>,
    non_finite: NonFinite,
    skipped: u64,
    stepped: bool,
}

impl<O: Optimizer<F>, F: Scalar> MultiSteps<O, F> {
    /// Steps `inner` once every `every` calls, with the mean of their gradients.
    pub fn new(inner: O, every: u64) -> Self {
        Self {
            inner,
            acc: Engine::new(AccumulateRule {
                every,
                use_grad_mean: true,
                mini_step: 0,
            }),
            mean: Params::new(),
            non_finite: NonFinite::Propagate,
            skipped: 0,
            stepped: false,
        }
    }

    /// Hands the inner optimizer the mean of the gradients (`true`, the default) or their sum.
    #[must_use]
    pub fn use_grad_mean(mut self, mean: bool) -> Self {
        self.acc.rule_mut().use_grad_mean = mean;
        self
    }

    /// What a micro-batch whose gradients hold NaN or infinity does (default
    /// [`NonFinite::Propagate`]; [`NonFinite::Skip`] drops it and counts it).
    #[must_use]
    pub fn non_finite(mut self, policy: NonFinite) -> Self {
        self.non_finite = policy;
        self
    }

    /// Whether the last call stepped the inner optimizer.
    pub fn stepped(&self) -> bool {
        self.stepped
    }

    /// Micro-batches accumulated since the last step.
    pub fn pending(&self) -> u64 {
        self.acc.rule().mini_step
    }

    /// Micro-batches dropped by [`NonFinite::Skip`].
    pub fn skipped_micro_batches(&self) -> u64 {
        self.skipped
    }

    /// The inner optimizer.
    pub fn inner(&self) -> &O {
        &self.inner
    }

    /// The inner optimizer, to change or checkpoint it.
    pub fn inner_mut(&mut self) -> &mut O {
        &mut self.inner
    }

    /// The accumulators' state: each key's accumulator (`acc`), and the window's count in the
    /// hyperparameters. Checkpoint the inner optimizer beside it.
    pub fn checkpoint(&self) -> Checkpoint<AccumulateRule, (), F> {
        self.acc.checkpoint()
    }

    /// Loads a checkpoint taken by [`MultiSteps::checkpoint`], checked whole first.
    ///
    /// # Errors
    ///
    /// As [`Engine::restore`]: after an error nothing has changed.
    pub fn restore(&mut self, checkpoint: Checkpoint<AccumulateRule, (), F>) -> Result<(), Error> {
        self.acc.restore(checkpoint)
    }

    /// The `k`th call: the window's mean of every key of `grads` into `self.mean` (the
    /// accumulators untouched), then the inner step. An error leaves everything as it was.
    fn emit(&mut self, params: &mut Params<F>, grads: &Params<F>) -> Result<(), Error> {
        let rule = self.acc.rule();
        let n: F = cast((rule.mini_step + 1) as f64);
        self.mean.retain(|k, _| grads.contains_key(k));
        for (key, g) in grads {
            if self.mean.get(key).is_none_or(|m| m.shape() != g.shape()) {
                self.mean
                    .insert(key.clone(), ArrayD::zeros(IxDyn(g.shape())));
            }
            let Some(mean) = self.mean.get_mut(key) else {
                continue;
            };
            // A key new at the window's last call accumulates from zero.
            let acc = self.acc.state(key).map_or(&[][..], |(_, slots)| slots);
            let acc = acc.iter().copied().chain(std::iter::repeat(F::zero()));
            let fold = |((m, &g), a): ((&mut F, &F), F)| {
                *m = if rule.use_grad_mean {
                    a + (g - a) / n
                } else {
                    g + a
                };
            };
            // The accumulator, like `mean`, is in the gradient's logical order; slices, when the
            // gradient is one, walk it without an index (which IxDyn allocates past rank 4).
            match (mean.as_slice_mut(), g.as_slice()) {
                (Some(m), Some(g)) => m.iter_mut().zip(g).zip(acc).for_each(fold),
                _ => mean.iter_mut().zip(g.iter()).zip(acc).for_each(fold),
            }
        }
        self.inner.update(params, &self.mean)?;
        for state in self.acc.states_mut() {
            state.slots.iter_mut().for_each(|a| *a = F::zero());
            *state.step = 0;
        }
        self.acc.rule_mut().mini_step = 0;
        Ok(())
    }
}

impl<O: Optimizer<F>, F: Scalar> Optimizer<F> for MultiSteps<O, F> {
    /// Accumulates `grads`; on every `k`th call, steps the inner optimizer with their mean.
    ///
    /// # Errors
    ///
    /// Those of [`Optimizer::update`], checked against the accumulators (and, on the `k`th call,
    /// by the inner optimizer) before anything is written; [`Error::NonFiniteGradient`] under
    /// [`NonFinite::Error`]. After an error nothing has changed, the accumulators included.
    fn update(&mut self, params: &mut Params<F>, grads: &Params<F>) -> Result<(), Error> {
        self.stepped = false;
        Rule::<F>::validate(self.acc.rule())?;
        let grads_of = grads.iter().map(|(k, g)| (k.as_str(), &**g));
        if self.non_finite.skips(&mut self.skipped, grads_of)? {
            return Ok(());
        }
        let rule = self.acc.rule();
        if rule.mini_step + 1 < rule.every {
            self.acc.update(params, grads)?;
            self.acc.rule_mut().mini_step += 1;
            return Ok(());
        }
        // The checks of an accumulation, without writing.
        self.acc.check_update(params, grads)?;
        self.emit(params, grads)?;
        self.stepped = true;
        Ok(())
    }

    forward_optimizer!(F, inner: wrapper);

    /// Drops the accumulators and the inner optimizer's state.
    fn reset(&mut self) {
        self.acc.reset();
        self.acc.rule_mut().mini_step = 0;
        self.inner.reset();
    }

    fn name(&self) -> &'static str {
        "MultiSteps"
    }
}
