//! Transforms of one update at a time: scaling, weight decay, sign, clipping, and the momentum
//! trace.

use super::{Context, Transform};
use crate::engine::cast;
use crate::parts::{bias_correction, clip_nan, sign};
use crate::{Error, Scalar, check};

/// optax's `scale_by_learning_rate`: `u ← −lr·u`, with the optimizer's learning rate (and so its
/// schedule). The last transform of most chains.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ScaleByLearningRate;

impl<F: Scalar> Transform<F> for ScaleByLearningRate {
    type State = [F; 0];
    type Scalars = F;

    fn slot_names(&self) -> Vec<&'static str> {
        Vec::new()
    }

    fn validate(&self) -> Result<(), Error> {
        Ok(())
    }

    fn scalars(&self, ctx: &Context<'_>) -> F {
        cast(-ctx.lr)
    }

    #[inline(always)]
    fn apply(neg_lr: &F, _: F, u: F, _: &mut [F; 0]) -> F {
        *neg_lr * u
    }
}

/// optax's `scale(step_size)`: `u ← s·u`, a fixed factor.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Scale(pub f64);

impl<F: Scalar> Transform<F> for Scale {
    type State = [F; 0];
    type Scalars = F;

    fn slot_names(&self) -> Vec<&'static str> {
        Vec::new()
    }

    fn validate(&self) -> Result<(), Error> {
        check::finite("scale", self.0)
    }

    fn scalars(&self, _: &Context<'_>) -> F {
        cast(self.0)
    }

    #[inline(always)]
    fn apply(s: &F, _: F, u: F, _: &mut [F; 0]) -> F {
        *s * u
    }
}

/// optax's `add_decayed_weights(weight_decay)`: `u ← u + λ·p`. Before
/// [`ScaleByLearningRate`], it is decoupled weight decay in optax's order (`p ← p − lr·(u + λ·p)`);
/// before an adaptive transform, L2 regularisation. A key's [`Group`](crate::Group) weight decay
/// replaces λ.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct AddDecayedWeights {
    /// λ, `>= 0`.
    pub weight_decay: f64,
}

impl AddDecayedWeights {
    /// Adds `weight_decay·p`.
    pub fn new(weight_decay: f64) -> Self {
        Self { weight_decay }
    }
}

impl<F: Scalar> Transform<F> for AddDecayedWeights {
    type State = [F; 0];
    type Scalars = F;

    hyperparameters!(WeightDecay => (weight_decay));

    fn slot_names(&self) -> Vec<&'static str> {
        Vec::new()
    }

    fn validate(&self) -> Result<(), Error> {
        check::non_negative("weight_decay value", self.weight_decay)
    }

    fn scalars(&self, ctx: &Context<'_>) -> F {
        cast(ctx.weight_decay.unwrap_or(self.weight_decay))
    }

    #[inline(always)]
    fn apply(wd: &F, p: F, u: F, _: &mut [F; 0]) -> F {
        u + *wd * p
    }
}

/// optax's `scale_by_sign`: `u ← sign(u)` (0 stays 0, NaN stays NaN).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ScaleBySign;

impl<F: Scalar> Transform<F> for ScaleBySign {
    type State = [F; 0];
    type Scalars = ();

    fn slot_names(&self) -> Vec<&'static str> {
        Vec::new()
    }

    fn validate(&self) -> Result<(), Error> {
        Ok(())
    }

    fn scalars(&self, _: &Context<'_>) {}

    #[inline(always)]
    fn apply(_: &(), _: F, u: F, _: &mut [F; 0]) -> F {
        sign(u)
    }
}

/// optax's `clip(max_delta)`: each element of the update clipped to `[−max_delta, max_delta]`
/// (NaN stays NaN, as in `jnp.clip`).
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Clip {
    /// The largest magnitude an element keeps, `>= 0`.
    pub max_delta: f64,
}

impl Clip {
    /// Clips each element to `[−max_delta, max_delta]`.
    pub fn new(max_delta: f64) -> Self {
        Self { max_delta }
    }
}

impl<F: Scalar> Transform<F> for Clip {
    type State = [F; 0];
    type Scalars = F;

    fn slot_names(&self) -> Vec<&'static str> {
        Vec::new()
    }

    fn validate(&self) -> Result<(), Error> {
        check::non_negative("max_delta value", self.max_delta)
    }

    fn scalars(&self, _: &Context<'_>) -> F {
        cast(self.max_delta)
    }

    #[inline(always)]
    fn apply(max: &F, _: F, u: F, _: &mut [F; 0]) -> F {
        clip_nan(u, *max)
    }
}

/// optax's `trace(decay, nesterov)`: momentum without dampening, `m ← u + μ·m`, passing on `m`
/// (or `u + μ·m` with Nesterov's look-ahead). State: `trace`.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Trace {
    /// μ, the decay of the trace, `>= 0`.
    pub decay: f64,
    /// Nesterov's look-ahead (default `false`).
    pub nesterov: bool,
}

impl Trace {
    /// A trace decaying by `decay`, without Nesterov's look-ahead.
    pub fn new(decay: f64) -> Self {
        Self {
            decay,
            nesterov: false,
        }
    }

    /// Uses Nesterov's look-ahead.
    #[must_use]
    pub fn nesterov(self, nesterov: bool) -> Self {
        Self { nesterov, ..self }
    }
}

impl<F: Scalar> Transform<F> for Trace {
    type State = [F; 1];
    type Scalars = (F, bool);

    hyperparameters!(Momentum => (decay));

    fn slot_names(&self) -> Vec<&'static str> {
        vec!["trace"]
    }

    fn validate(&self) -> Result<(), Error> {
        check::non_negative("momentum value", self.decay)
    }

    fn scalars(&self, _: &Context<'_>) -> (F, bool) {
        (cast(self.decay), self.nesterov)
    }

    #[inline(always)]
    fn apply(&(mu, nesterov): &(F, bool), _: F, u: F, [m]: &mut [F; 1]) -> F {
        *m = u + mu * *m;
        if nesterov { u + mu * *m } else { *m }
    }
}

/// optax's `scale_by_optimistic_gradient(alpha, beta)`: the generalized optimistic gradient
/// `u ← (α + β)·u − β·u_prev`, with `u_prev` the update this transform received on the key's
/// previous step (on its first, the update itself, as optax does). Defaults (optax's): α 1, β 1.
/// State: `previous_gradient`. `optax.optimistic_gradient_descent` is
/// `chain!(ScaleByOptimisticGradient, ScaleByLearningRate)`; `optax.optimistic_adam_v2` puts
/// [`ScaleByNadam`](super::ScaleByNadam) first.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ScaleByOptimisticGradient {
    /// α, the weight of the current gradient beyond β's.
    pub alpha: f64,
    /// β, the weight of the negative momentum.
    pub beta: f64,
}

impl Default for ScaleByOptimisticGradient {
    fn default() -> Self {
        Self {
            alpha: 1.0,
            beta: 1.0,
        }
    }
}

impl<F: Scalar> Transform<F> for ScaleByOptimisticGradient {
    type State = [F; 1];
    /// α + β, β, and whether this is the key's first step.
    type Scalars = (F, F, bool);

    fn slot_names(&self) -> Vec<&'static str> {
        vec!["previous_gradient"]
    }

    fn validate(&self) -> Result<(), Error> {
        check::finite("alpha", self.alpha)?;
        check::finite("beta", self.beta)
    }

    fn scalars(&self, ctx: &Context<'_>) -> (F, F, bool) {
        (cast(self.alpha + self.beta), cast(self.beta), ctx.t == 1)
    }

    #[inline(always)]
    fn apply(&(sum, beta, first): &(F, F, bool), _: F, u: F, [prev]: &mut [F; 1]) -> F {
        let previous = if first { u } else { *prev };
        *prev = u;
        sum * u - beta * previous
    }
}

/// optax's `ema(decay, debias)`: the moving average `m ← (1 − β)·u + β·m`, passed on as is or,
/// with `debias` (optax's default), divided by `1 − βᵗ`. State: `ema`.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Ema {
    /// β, in `[0, 1)`.
    pub decay: f64,
    /// Divides by `1 − βᵗ` (default `true`).
    pub debias: bool,
}

impl Ema {
    /// An average decaying by `decay`, debiased.
    pub fn new(decay: f64) -> Self {
        Self {
            decay,
            debias: true,
        }
    }

    /// Whether to divide by `1 − βᵗ`.
    #[must_use]
    pub fn debias(self, debias: bool) -> Self {
        Self { debias, ..self }
    }
}

impl<F: Scalar> Transform<F> for Ema {
    type State = [F; 1];
    /// β, 1 − β and the bias correction (1 without `debias`: dividing by it is exact).
    type Scalars = [F; 3];

    hyperparameters!(Momentum => (decay));

    fn slot_names(&self) -> Vec<&'static str> {
        vec!["ema"]
    }

    fn validate(&self) -> Result<(), Error> {
        if !(0.0..1.0).contains(&self.decay) {
            check::fail("decay", self.decay, "a number in [0, 1)")?;
        }
        Ok(())
    }

    fn scalars(&self, ctx: &Context<'_>) -> [F; 3] {
        let correction = if self.debias {
            bias_correction(self.decay, ctx.t)
        } else {
            1.0
        };
        [cast(self.decay), cast(1.0 - self.decay), cast(correction)]
    }

    #[inline(always)]
    fn apply(&[b, c, bc]: &[F; 3], _: F, u: F, [m]: &mut [F; 1]) -> F {
        *m = c * u + b * *m;
        *m / bc
    }
}

/// optax's `fromage` after its trust ratio (Bernstein et al., 2020): the learning-rate step that
/// keeps parameters from growing, `u ← −lr·μ·u + (μ − 1)·p` with `μ = 1/√(1 + lr²)`. It reads the
/// learning rate itself, so its chain ends here, with no [`ScaleByLearningRate`]: optax's
/// `fromage(lr, min_norm)` is `chain!(ScaleByTrustRatio::default().min_norm(min_norm),
/// ScaleByFromage)`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ScaleByFromage;

impl<F: Scalar> Transform<F> for ScaleByFromage {
    type State = [F; 0];
    type Scalars = [F; 2];

    fn slot_names(&self) -> Vec<&'static str> {
        Vec::new()
    }

    fn validate(&self) -> Result<(), Error> {
        Ok(())
    }

    fn scalars(&self, ctx: &Context<'_>) -> [F; 2] {
        let mult = 1.0 / (1.0 + ctx.lr * ctx.lr).sqrt();
        [cast(-(ctx.lr * mult)), cast(mult - 1.0)]
    }

    #[inline(always)]
    fn apply([step, decay]: &[F; 2], p: F, u: F, _: &mut [F; 0]) -> F {
        *step * u + *decay * p
    }
}
