//! AdEMAMix: Adam with a second, slow momentum.

use crate::engine::{Engine, Rule, Scalar, cast};
use crate::parts::bias_correction;
use crate::transform::{AddDecayedWeights, Context, ScaleByLearningRate, Transform};
use crate::{Error, chain, check};

/// AdEMAMix (Pagliardini et al., 2024, "The AdEMAMix Optimizer: Better, Faster, Older"), as
/// `optax.contrib.ademamix` computes it: a fast and a slow average of the gradients, mixed.
///
/// ```text
/// m₁ ← (1 − β₁)·g + β₁·m₁;   m₂ ← (1 − β₃)·g + β₃·m₂;   ν ← (1 − β₂)·g² + β₂·ν
/// u = (m₁/(1 − β₁ᵗ) + α·m₂) / (√(ν/(1 − β₂ᵗ) + ε_root) + ε)      (m₂ not bias-corrected)
/// p ← p − lr·(u + λ·p)
/// ```
///
/// Defaults (optax's alias): learning rate 0.01 (optax requires one), betas (0.9, 0.999),
/// β₃ = 0.9999, α = 5 (`scale_by_ademamix` alone defaults to 6), ε = 1e-8, ε_root = 0, weight decay
/// 0. optax also accepts schedules for α and β₃ (the paper's warm-ups); here they are constants.
/// State, with optax's names: `m1`, `m2`, `nu`. Like optax's, it is a chain: [`ScaleByAdemamix`],
/// [`AddDecayedWeights`](crate::transform::AddDecayedWeights), then
/// [`ScaleByLearningRate`](crate::transform::ScaleByLearningRate).
pub type AdEMAMix<F = f32> = Engine<AdEMAMixRule, F>;

/// The rule of [`AdEMAMix`]: its [`ScaleByAdemamix`], weight decay, the learning rate.
#[derive(Clone, Debug, Default, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct AdEMAMixRule {
    #[cfg_attr(feature = "serde", serde(flatten))]
    scale: ScaleByAdemamix,
    weight_decay: f64,
}

/// optax's `contrib.scale_by_ademamix`, AdEMAMix's direction:
/// `u ← (m₁/(1 − β₁ᵗ) + α·m₂) / (√(ν/(1 − β₂ᵗ) + ε_root) + ε)`. State: `m1`, `m2`, `nu`.
/// Its defaults are the alias's (α 5; optax's `scale_by_ademamix` alone defaults to 6).
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ScaleByAdemamix {
    betas: [f64; 2],
    b3: f64,
    alpha: f64,
    eps: f64,
    eps_root: f64,
}

impl Default for ScaleByAdemamix {
    fn default() -> Self {
        Self {
            betas: [0.9, 0.999],
            b3: 0.9999,
            alpha: 5.0,
            eps: 1e-8,
            eps_root: 0.0,
        }
    }
}

builders!(ScaleByAdemamix {
    /// Sets β₁ and β₂, each in `[0, 1)` (default (0.9, 0.999)).
    betas: [f64; 2],
    /// Sets β₃, the decay of the slow average, in `[0, 1)` (default 0.9999).
    b3: f64,
    /// Sets α, the weight of the slow average, finite (default 5).
    alpha: f64,
    /// Sets ε, added to the root (default 1e-8).
    eps: f64,
    /// Sets ε_root, added under the root (default 0).
    eps_root: f64,
});

shares!(AdEMAMixRule [self => self.scale]: betas);

setters!(AdEMAMix [r => r.scale] {
    /// Sets β₃, the decay of the slow average, in `[0, 1)` (default 0.9999).
    b3: f64,
    /// Sets α, the weight of the slow average, finite (default 5).
    alpha: f64,
    /// Sets ε, added to the root (default 1e-8).
    eps: f64,
    /// Sets ε_root, added under the root (default 0).
    eps_root: f64,
});

setters!(AdEMAMix {
    /// Sets the weight decay λ added to the update, `>= 0` (default 0).
    weight_decay: f64,
});

impl<F: Scalar> Rule<F> for AdEMAMixRule {
    type KeyScalars = ();
    const NAME: &'static str = "AdEMAMix";
    const DEFAULT_LR: f64 = 0.01;

    hyperparameters!(
        Momentum => (scale.betas[0]),
        Beta2 => (scale.betas[1]),
        WeightDecay => (weight_decay),
    );
    chained!(self => chain!(
        self.scale,
        AddDecayedWeights::new(self.weight_decay),
        ScaleByLearningRate,
    ));
}

impl<F: Scalar> Transform<F> for ScaleByAdemamix {
    type State = [F; 3];
    /// b1, c1, b2, c2, b3, c3, bc1, bc2, α, ε, ε_root.
    type Scalars = [F; 11];

    hyperparameters!(Momentum => (betas[0]), Beta2 => (betas[1]));

    fn slot_names(&self) -> Vec<&'static str> {
        vec!["m1", "m2", "nu"]
    }

    fn validate(&self) -> Result<(), Error> {
        check::unit_interval("b3 value", self.b3)?;
        check::finite("alpha value", self.alpha)?;
        check::moments(self.betas, self.eps, self.eps_root)
    }

    fn scalars(&self, ctx: &Context<'_>) -> [F; 11] {
        let (t, [beta1, beta2], b3) = (ctx.t, self.betas, self.b3);
        let (bc1, bc2) = (bias_correction(beta1, t), bias_correction(beta2, t));
        let (alpha, eps, eps_root) = (self.alpha, self.eps, self.eps_root);
        [beta1, 1.0 - beta1, beta2, 1.0 - beta2, b3, 1.0 - b3, bc1, bc2, alpha, eps, eps_root]
            .map(cast)
    }

    #[inline(always)]
    fn apply(s: &[F; 11], _: F, g: F, [m1, m2, nu]: &mut [F; 3]) -> F {
        let [b1, c1, b2, c2, b3, c3, bc1, bc2, alpha, eps, eps_root] = *s;
        *m1 = c1 * g + b1 * *m1;
        *m2 = c3 * g + b3 * *m2;
        *nu = c2 * (g * g) + b2 * *nu;
        (*m1 / bc1 + alpha * *m2) / ((*nu / bc2 + eps_root).sqrt() + eps)
    }
}
