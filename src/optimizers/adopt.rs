//! ADOPT: Adam with the gradient normalised by the second moment of the steps before.

use crate::engine::{Engine, Rule, Scalar, cast};
use crate::parts::{clip_nan, max_nan};
use crate::transform::{Context, ScaleByLearningRate, Transform};
use crate::{Error, chain, check};

/// ADOPT (Taniguchi et al., 2024, "ADOPT: Modified Adam Can Converge with Any β₂ with the Optimal
/// Rate"), as `optax.contrib.adopt` computes it. With `c` the steps the key has already taken and
/// `v` the second moment from before this step:
///
/// ```text
/// z = clip(g / max(√v, ε), ±c^κ)                  (no clip without clipping)
/// v ← (1 − β₂)·g² + β₂·v;   m ← (1 − β₁)·z + β₁·m  (at c = 0: β₂ acts as 0 and β₁ as 1)
/// p ← p − lr·m    (nesterov: p ← p − lr·((1 − β₁)·z + β₁·m))
/// ```
///
/// So the first step only records `v = g²` and leaves the parameter where it is. Defaults
/// (optax's): learning rate 0.01 (optax requires one), betas (0.9, 0.9999), ε = 1e-6, clipping on
/// with exponent κ = 0.25 (optax's `clip_value_fn = lambda x: x**0.25`), no Nesterov. State, with
/// optax's names: `mu` (m), `nu` (v). Like optax's, it is a chain: [`ScaleByAdopt`], then
/// [`ScaleByLearningRate`](crate::transform::ScaleByLearningRate).
pub type Adopt<F = f32> = Engine<AdoptRule, F>;

/// The rule of [`Adopt`]: its [`ScaleByAdopt`] followed by the learning rate.
#[derive(Clone, Debug, Default, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct AdoptRule(ScaleByAdopt);

/// optax's `contrib.scale_by_adopt`, ADOPT's direction ([`Adopt`] without the learning rate):
/// `u ← m` (or its Nesterov form). State: `mu`, `nu`.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ScaleByAdopt {
    betas: [f64; 2],
    eps: f64,
    nesterov: bool,
    clip_exponent: Option<f64>,
}

impl Default for ScaleByAdopt {
    fn default() -> Self {
        Self {
            betas: [0.9, 0.9999],
            eps: 1e-6,
            nesterov: false,
            clip_exponent: Some(0.25),
        }
    }
}

builders!(ScaleByAdopt {
    /// Sets β₁ and β₂, each in `[0, 1)` (default (0.9, 0.9999)).
    betas: [f64; 2],
    /// Sets ε, the floor of `√v` (default 1e-6).
    eps: f64,
    /// Uses the Nesterov form of the step (default `false`).
    nesterov: bool,
    /// Sets the clipping exponent κ, `>= 0`, or `None` for no clipping (default `Some(0.25)`).
    clip_exponent: Option<f64>,
});

shares!(AdoptRule [self => self.0]: betas);

setters!(Adopt [r => r.0] {
    /// Sets ε, the floor of `√v` (default 1e-6).
    eps: f64,
    /// Uses the Nesterov form of the step (default `false`).
    nesterov: bool,
    /// Sets the clipping of the normalised gradient to `±c^κ` after `c` steps: `Some(κ)`, `>= 0`
    /// (default `Some(0.25)`, optax's `x**0.25`), or `None` for optax's `use_clipping=False`.
    clip_exponent: Option<f64>,
});

impl<F: Scalar> Rule<F> for AdoptRule {
    type KeyScalars = ();
    const NAME: &'static str = "ADOPT";
    const DEFAULT_LR: f64 = 0.01;

    hyperparameters!(Momentum => (0.betas[0]), Beta2 => (0.betas[1]));
    chained!(self => chain!(self.0, ScaleByLearningRate));
}

impl<F: Scalar> Transform<F> for ScaleByAdopt {
    type State = [F; 2];
    /// b1, c1, b2, c2, the clip and ε; Nesterov's form.
    type Scalars = ([F; 6], bool);

    hyperparameters!(Momentum => (betas[0]), Beta2 => (betas[1]));

    fn slot_names(&self) -> Vec<&'static str> {
        vec!["mu", "nu"]
    }

    fn validate(&self) -> Result<(), Error> {
        check::betas(self.betas)?;
        check::non_negative("epsilon value", self.eps)?;
        self.clip_exponent
            .map_or(Ok(()), |k| check::non_negative("clip exponent", k))
    }

    fn scalars(&self, ctx: &Context<'_>) -> Self::Scalars {
        let taken = ctx.t - 1;
        let [beta1, beta2] = if taken == 0 { [1.0, 0.0] } else { self.betas };
        let clip = self.clip_exponent.map_or(f64::INFINITY, |k| (taken as f64).powf(k));
        let numbers = [beta1, 1.0 - beta1, beta2, 1.0 - beta2, clip, self.eps];
        (numbers.map(cast), self.nesterov)
    }

    #[inline(always)]
    fn apply(&(s, nesterov): &Self::Scalars, _: F, g: F, [m, v]: &mut [F; 2]) -> F {
        let [b1, c1, b2, c2, clip, eps] = s;
        let z = clip_nan(g / max_nan(v.sqrt(), eps), clip);
        *v = c2 * (g * g) + b2 * *v;
        *m = c1 * z + b1 * *m;
        if nesterov { c1 * z + b1 * *m } else { *m }
    }
}
