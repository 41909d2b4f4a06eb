//! Weight averaging: a running average of the parameters, kept beside them under the same keys,
//! which usually makes the better model to evaluate.
//!
//! ```
//! use ndarray::{ArrayD, IxDyn};
//! use ndoptim::average::Average;
//! use ndoptim::{Optimizer, Params, Sgd};
//!
//! let mut params: Params<f64> = [("w".to_string(), ArrayD::from_elem(IxDyn(&[3]), 1.0))].into();
//! let grads: Params<f64> = [("w".to_string(), ArrayD::from_elem(IxDyn(&[3]), 0.5))].into();
//! let mut sgd = Sgd::default().lr(0.1);
//! let mut ema = Average::ema(0.9);
//! for _ in 0..10 {
//!     sgd.update(&mut params, &grads)?;
//!     ema.update(&params)?; // after each step
//! }
//! // Evaluate with the averaged weights, in a copy of the model.
//! let mut eval = params.clone();
//! ema.copy_to(&mut eval)?;
//! assert!(eval["w"][0] > params["w"][0]); // the average lags behind the descent
//! # Ok::<(), ndoptim::Error>(())
//! ```
//!
//! Three averages, each exact to its reference:
//!
//! | constructor | reference | first update | then |
//! |---|---|---|---|
//! | [`Average::ema`] | `torch.optim.swa_utils.AveragedModel(multi_avg_fn=get_ema_multi_avg_fn(decay))` | copies `p` | `avg = lerp(avg, p, 1 − decay)` |
//! | [`Average::ema_from_zero`] | `optax.ema(decay, debias)` | from 0 | `ema = (1 − decay)·p + decay·ema`; read as `ema / (1 − decayᵗ)` when debiased |
//! | [`Average::swa`] | `AveragedModel` with its default average (SWA) | copies `p` | `avg = avg + (p − avg)/(n + 1)` |
//!
//! [`Average::warmup`] lowers an EMA's decay early on to `min(decay, (1 + t)/(10 + t))`, t the
//! updates before this one (TensorFlow's `ExponentialMovingAverage(num_updates=...)`), so that
//! the average forgets its start sooner. For SWA's learning rate, see
//! [`TorchSchedule::SwaLR`](crate::schedule::TorchSchedule::SwaLR).
//!
//! Each key counts its own updates; a key absent from an update keeps its average. An average is
//! state like an optimizer's: it is checkpointed the same way ([`Average::checkpoint`], and with
//! feature `safetensors` [`Average::save_safetensors`]), and an update whose parameter changed
//! shape is an error that changes nothing. No update allocates once every key has its average.

use ndarray::{ArrayRefD, ArrayViewD, Zip};

use crate::checkpoint::Checkpoint;
use crate::engine::{Engine, Layout, Rule, Scalar, Step, cast};
use crate::parts::{Lerp, pow};
use crate::{Error, Params, check};

/// How an [`Average`] averages.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum Averaging {
    /// PyTorch's EMA: starts from the first parameters, then `lerp(avg, p, 1 − decay)`.
    Ema {
        /// The weight of the past, in `[0, 1]`.
        decay: f64,
    },
    /// optax's EMA: starts from zero; read divided by `1 − decayᵗ` if `debias`.
    EmaFromZero {
        /// The weight of the past, in `[0, 1]`.
        decay: f64,
        /// Whether reads are debiased (optax's default: yes).
        debias: bool,
    },
    /// The equal average of every update (stochastic weight averaging).
    Swa,
}

/// The rule of an [`Average`]'s state: one slot, `average`, shaped like the parameter; its step
/// count is the number of updates averaged.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct AverageRule {
    averaging: Averaging,
    warmup: bool,
}

impl<F: Scalar> Rule<F> for AverageRule {
    type KeyScalars = ();
    const NAME: &'static str = "Average";
    const DEFAULT_LR: f64 = 0.0;

    fn validate(&self) -> Result<(), Error> {
        match self.averaging {
            Averaging::Ema { decay } | Averaging::EmaFromZero { decay, .. } => {
                if !(0.0..=1.0).contains(&decay) {
                    return check::fail("decay value", decay, "in [0, 1]");
                }
                Ok(())
            }
            Averaging::Swa => Ok(()),
        }
    }

    fn slot_names(&self) -> Vec<&'static str> {
        vec!["average"]
    }

    /// Averages the gradient slot of a step into the key's average, `t` being the number of
    /// updates including this one: the rule as an engine would run it. [`Average::update`]
    /// does not step an engine (its input is the parameters alone); it folds each parameter in
    /// through the same `average`.
    fn step<L: Layout<F>>(&self, step: Step<'_, F, L>, _: &mut ()) {
        let t = step.t();
        let (p, state) = {
            let parts = step.parts();
            (parts.grads, parts.state)
        };
        self.average(t, p, state);
    }
}

impl AverageRule {
    /// The decay of update `t` (1-based), warmed up if asked.
    fn decay(&self, decay: f64, t: u64) -> f64 {
        if self.warmup {
            let t = (t - 1) as f64;
            decay.min((1.0 + t) / (10.0 + t))
        } else {
            decay
        }
    }

    /// Folds `p` into `avg` as update `t` (1-based).
    fn average<F: Scalar>(&self, t: u64, p: &ArrayRefD<F>, avg: &mut [F]) {
        let Some(p_slice) = p.as_slice() else {
            // Another layout: the logical order is the state's order.
            for (a, &x) in avg.iter_mut().zip(p.iter()) {
                *a = self.one(t, *a, x);
            }
            return;
        };
        match self.averaging {
            Averaging::Ema { decay } if t > 1 => {
                let lerp = Lerp::<F>::new(1.0 - self.decay(decay, t));
                Zip::from(avg)
                    .and(p_slice)
                    .for_each(|a, &x| *a = lerp.apply_fused(*a, x));
            }
            Averaging::EmaFromZero { decay, .. } => {
                let d = self.decay(decay, t);
                let (keep, take): (F, F) = (cast(d), cast(1.0 - d));
                // optax's `(1 − decay)·p + decay·ema` as XLA compiles it: one fused multiply-add.
                Zip::from(avg)
                    .and(p_slice)
                    .for_each(|a, &x| *a = take.mul_add(x, keep * *a));
            }
            Averaging::Swa if t > 1 => {
                let n: F = cast(t as f64);
                Zip::from(avg)
                    .and(p_slice)
                    .for_each(|a, &x| *a = *a + (x - *a) / n);
            }
            _ => avg.copy_from_slice(p_slice),
        }
    }

    /// [`AverageRule::average`] of one element.
    fn one<F: Scalar>(&self, t: u64, a: F, x: F) -> F {
        match self.averaging {
            Averaging::Ema { decay } if t > 1 => {
                Lerp::<F>::new(1.0 - self.decay(decay, t)).apply_fused(a, x)
            }
            Averaging::EmaFromZero { decay, .. } => {
                let d = self.decay(decay, t);
                cast::<F>(1.0 - d).mul_add(x, cast::<F>(d) * a)
            }
            Averaging::Swa if t > 1 => a + (x - a) / cast(t as f64),
            _ => x,
        }
    }

    /// What a read returns for a stored average after `t` updates: optax's debiasing.
    fn read_scale(&self, t: u64) -> Option<f64> {
        match self.averaging {
            Averaging::EmaFromZero {
                decay,
                debias: true,
            } => Some(1.0 - pow(decay, t as f64)),
            _ => None,
        }
    }
}

/// A running average of parameters (see the [module docs](self)).
#[derive(Clone, Debug)]
pub struct Average<F: Scalar> {
    /// The averages are the state of an engine whose rule averages: its checks, lazy state and
    /// checkpoints, reused.
    engine: Engine<AverageRule, F>,
}

impl<F: Scalar> Average<F> {
    fn with(averaging: Averaging) -> Self {
        Self {
            engine: Engine::new(AverageRule {
                averaging,
                warmup: false,
            }),
        }
    }

    /// PyTorch's exponential moving average (`AveragedModel` with
    /// `get_ema_multi_avg_fn(decay)`): the first update copies the parameters, each later one
    /// moves the average `1 − decay` of the way to them.
    pub fn ema(decay: f64) -> Self {
        Self::with(Averaging::Ema { decay })
    }

    /// optax's exponential moving average (`optax.ema(decay)`): from zero, read debiased by
    /// `1 − decayᵗ` (turn off with [`Average::debias`]).
    pub fn ema_from_zero(decay: f64) -> Self {
        Self::with(Averaging::EmaFromZero {
            decay,
            debias: true,
        })
    }

    /// Stochastic weight averaging (`AveragedModel`'s default): the equal average of every
    /// update's parameters.
    pub fn swa() -> Self {
        Self::with(Averaging::Swa)
    }

    /// Whether an [`Average::ema_from_zero`] is read debiased (default `true`; other averages
    /// ignore it).
    #[must_use]
    pub fn debias(mut self, on: bool) -> Self {
        if let Averaging::EmaFromZero { debias, .. } = &mut self.engine.rule_mut().averaging {
            *debias = on;
        }
        self
    }

    /// Lowers an EMA's decay at update `t` (0-based) to `min(decay, (1 + t)/(10 + t))`
    /// (TensorFlow's `num_updates`; default off; SWA ignores it).
    #[must_use]
    pub fn warmup(mut self, on: bool) -> Self {
        self.engine.rule_mut().warmup = on;
        self
    }

    /// How this average averages.
    pub fn averaging(&self) -> Averaging {
        self.engine.rule().averaging
    }

    /// Folds the parameters into the average: call it after each optimizer step.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidHyperparameter`] for a decay outside `[0, 1]`, and
    /// [`Error::StateShapeMismatch`] for a key whose average has another shape than its
    /// parameter. Everything is checked first: after an error nothing has changed.
    pub fn update(&mut self, params: &Params<F>) -> Result<(), Error> {
        Rule::<F>::validate(self.engine.rule())?;
        for (key, p) in params {
            self.engine.check_state(key, p.shape())?;
        }
        let rule = self.engine.rule().clone();
        for (key, p) in params {
            let state = self.engine.state_mut(key, p.shape())?;
            *state.step += 1;
            rule.average(*state.step, p, state.slots);
        }
        Ok(())
    }

    /// How many updates `key`'s average holds (`None` before its first).
    pub fn count(&self, key: &str) -> Option<u64> {
        self.engine.step_count(key)
    }

    /// The stored average of `key`, as kept (for an optax EMA: not debiased; see
    /// [`Average::copy_to`]).
    pub fn stored(&self, key: &str) -> Option<ArrayViewD<'_, F>> {
        self.engine.slot(key, "average")
    }

    /// Writes the averages into `params` (debiased where the average reads so), for evaluation:
    /// every key of `params` that has an average; others are left alone.
    ///
    /// # Errors
    ///
    /// [`Error::StateShapeMismatch`] for a parameter whose shape differs from its average's;
    /// nothing is written then.
    pub fn copy_to(&self, params: &mut Params<F>) -> Result<(), Error> {
        for (key, p) in params.iter() {
            self.engine.check_state(key, p.shape())?;
        }
        for (key, p) in params.iter_mut() {
            let Some((step, slots)) = self.engine.state(key) else {
                continue;
            };
            // XLA divides by a scalar as a multiplication by its reciprocal, in the element type.
            let scale = self
                .engine
                .rule()
                .read_scale(step)
                .map(|s| F::one() / cast::<F>(s));
            let read = move |a: F| scale.map_or(a, |r| a * r);
            // The average is stored in the parameter's logical (row-major) order; a slice, when
            // the parameter is one, walks it without an index (which IxDyn allocates past rank 4).
            let write = |(p, &a): (&mut F, &F)| *p = read(a);
            match p.as_slice_mut() {
                Some(p) => p.iter_mut().zip(slots).for_each(write),
                None => p.iter_mut().zip(slots).for_each(write),
            }
        }
        Ok(())
    }

    /// The averages as a new map, as [`Average::copy_to`] writes them.
    pub fn averages(&self) -> Params<F> {
        let mut out: Params<F> = self
            .engine
            .state_keys()
            .filter_map(|k| Some((k.to_string(), self.stored(k)?.to_owned())))
            .collect();
        // The shapes are the averages' own: this cannot fail.
        let _ = self.copy_to(&mut out);
        out
    }

    /// Forgets every average.
    pub fn reset(&mut self) {
        crate::Optimizer::reset(&mut self.engine);
    }

    /// The complete state: the averaging, and each key's average and count (its `step`).
    pub fn checkpoint(&self) -> Checkpoint<AverageRule, (), F> {
        self.engine.checkpoint()
    }

    /// Loads a checkpoint taken by [`Average::checkpoint`], checked whole first.
    ///
    /// # Errors
    ///
    /// As [`Engine::restore`]: after an error the average is unchanged.
    pub fn restore(&mut self, checkpoint: Checkpoint<AverageRule, (), F>) -> Result<(), Error> {
        self.engine.restore(checkpoint)
    }
}

#[cfg(feature = "safetensors")]
impl<F: Scalar> Average<F> {
    /// The state as a safetensors file: a tensor `{key}.average` per key (stored, not debiased),
    /// the counts and the averaging in the metadata.
    ///
    /// # Errors
    ///
    /// [`Error::Checkpoint`] if serialisation fails.
    pub fn save_safetensors(&self) -> Result<Vec<u8>, Error> {
        self.engine.save_safetensors(None)
    }

    /// Loads a file written by [`Average::save_safetensors`].
    ///
    /// # Errors
    ///
    /// As [`Engine::load_safetensors`]: after an error the average is unchanged.
    pub fn load_safetensors(&mut self, bytes: &[u8]) -> Result<(), Error> {
        self.engine.load_safetensors(bytes).map(|_| ())
    }
}
