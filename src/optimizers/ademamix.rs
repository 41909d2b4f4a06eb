//! AdEMAMix: Adam with a second, slow momentum.

use crate::engine::{Engine, Layout, Rule, Scalar, Step, cast};
use crate::parts::{DecayedStep, bias_correction};
use crate::{Error, check};

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
/// State, with optax's names: `m1`, `m2`, `nu`.
pub type AdEMAMix<F = f32> = Engine<AdEMAMixRule, F>;

/// The rule of [`AdEMAMix`].
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct AdEMAMixRule {
    betas: [f64; 2],
    b3: f64,
    alpha: f64,
    eps: f64,
    eps_root: f64,
    weight_decay: f64,
}

impl Default for AdEMAMixRule {
    fn default() -> Self {
        Self {
            betas: [0.9, 0.999],
            b3: 0.9999,
            alpha: 5.0,
            eps: 1e-8,
            eps_root: 0.0,
            weight_decay: 0.0,
        }
    }
}

shares!(AdEMAMixRule: betas);

setters!(AdEMAMix {
    /// Sets β₃, the decay of the slow average, in `[0, 1)` (default 0.9999).
    b3: f64,
    /// Sets α, the weight of the slow average, finite (default 5).
    alpha: f64,
    /// Sets ε, added to the root (default 1e-8).
    eps: f64,
    /// Sets ε_root, added under the root (default 0).
    eps_root: f64,
    /// Sets the weight decay λ added to the update, `>= 0` (default 0).
    weight_decay: f64,
});

impl<F: Scalar> Rule<F> for AdEMAMixRule {
    type KeyScalars = ();
    const NAME: &'static str = "AdEMAMix";
    const DEFAULT_LR: f64 = 0.01;

    momentum_is!(betas[0]);

    fn validate(&self) -> Result<(), Error> {
        check::betas(self.betas)?;
        check::unit_interval("b3 value", self.b3)?;
        check::finite("alpha value", self.alpha)?;
        check::non_negative("epsilon value", self.eps)?;
        check::non_negative("eps_root value", self.eps_root)?;
        check::non_negative("weight_decay value", self.weight_decay)
    }

    fn slot_names(&self) -> &'static [&'static str] {
        &["m1", "m2", "nu"]
    }

    fn step<L: Layout<F>>(&self, step: Step<'_, F, L>, _: &mut ()) {
        let (t, [beta1, beta2]) = (step.t(), self.betas);
        let apply = DecayedStep::new(&step, self.weight_decay);
        let (bc1, bc2): (F, F) = (cast(bias_correction(beta1, t)), cast(bias_correction(beta2, t)));
        let (b1, b2, b3): (F, F, F) = (cast(beta1), cast(beta2), cast(self.b3));
        let (c1, c2, c3): (F, F, F) = (cast(1.0 - beta1), cast(1.0 - beta2), cast(1.0 - self.b3));
        let (alpha, eps, eps_root): (F, F, F) = (cast(self.alpha), cast(self.eps), cast(self.eps_root));
        step.for_each(move |p, g, [m1, m2, nu]: &mut [F; 3]| {
            *m1 = c1 * g + b1 * *m1;
            *m2 = c3 * g + b3 * *m2;
            *nu = c2 * (g * g) + b2 * *nu;
            let u = (*m1 / bc1 + alpha * *m2) / ((*nu / bc2 + eps_root).sqrt() + eps);
            apply.apply(p, u);
        });
    }
}
