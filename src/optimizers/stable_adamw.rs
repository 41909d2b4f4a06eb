//! StableAdamW: AdamW whose learning rate shrinks where the update's RMS is large.

use crate::engine::{Engine, Layout, Rule, Scalar, Scope, Step, cast};
use crate::optimizers::adam::{OptimiMoments, OptimiScale, optimi_step};
use crate::parts::GradientOptions;
use crate::{Error, Store, check};

/// StableAdamW (Wortsman et al., 2023, "Stable and low-precision training for large-scale
/// vision-language models"), as torch-optimi's `StableAdamW` computes it: AdamW on
/// [`AdamConvention::Optimi`](crate::AdamConvention::Optimi)'s debiased moments, with each
/// tensor's learning rate divided by the root mean square of `g²/v` (AdaFactor's update
/// clipping), so that a gradient far larger than its running average cannot take a large step.
///
/// ```text
/// m ← lerp(m, g, 1 − β̂₁);  v ← β̂₂·v + (1 − β̂₂)·g²      β̂ = (βᵗ − β)/(βᵗ − 1)
/// lrₜ = lr / max(1, √mean(g² / max(v, ε²)))              one value per tensor
/// p ← p·(1 − lrₜ·λ);  p ← p − lrₜ·m/(√v + ε)
/// ```
///
/// Defaults (optimi's): learning rate 0.001, betas (0.9, 0.99), ε = 1e-6, weight decay 0.01,
/// always decoupled (fully decoupled with
/// [`fully_decoupled_weight_decay`](crate::Engine::fully_decoupled_weight_decay)). State:
/// `exp_avg`, `exp_avg_sq`. Each step makes two passes over a key: the mean, then the update.
pub type StableAdamW<F = f32> = Engine<StableAdamWRule, F>;

/// The rule of [`StableAdamW`].
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct StableAdamWRule {
    betas: [f64; 2],
    eps: f64,
    options: GradientOptions,
}

impl Default for StableAdamWRule {
    fn default() -> Self {
        let mut options = GradientOptions::decoupled();
        options.weight_decay = 0.01;
        Self {
            betas: [0.9, 0.99],
            eps: 1e-6,
            options,
        }
    }
}

shares!(StableAdamWRule: options, fully_decoupled, betas);

setters!(StableAdamW {
    /// Sets ε, added to `√v` and squared as the floor of `v` in the RMS (default 1e-6).
    eps: f64,
});

impl<F: Scalar> Rule<F> for StableAdamWRule {
    type KeyScalars = ();
    const NAME: &'static str = "StableAdamW";
    const DEFAULT_LR: f64 = 0.001;
    const SCOPE: Scope = Scope::Key;

    hyperparameters!(
        Momentum => (betas[0]),
        Beta2 => (betas[1]),
        WeightDecay => (options.weight_decay),
    );

    fn validate(&self) -> Result<(), Error> {
        check::non_negative("epsilon value", self.eps)?;
        check::betas(self.betas)?;
        self.options.validate()
    }

    fn slot_names(&self) -> Vec<&'static str> {
        vec!["exp_avg", "exp_avg_sq"]
    }

    fn step<L: Layout<F>>(&self, mut step: Step<'_, F, L>, _: &mut ()) {
        let n = step.len();
        if n == 0 {
            return;
        }
        // Two passes: the mean of g²/max(v, ε²) with `v` as this step leaves it (computed, not
        // stored), then the step at the scaled rate. Each operation is rounded to the type
        // optimi's tensor holds: g² and the quotient to the gradient's, `v` to the state's.
        let moments = OptimiMoments::<F>::new(self.betas, step.t());
        let (round_p, eps_sq) = (L::Param::rounded, L::Param::rounded(cast(self.eps * self.eps)));
        let [sum] = step.sum(move |_, g, &[m, v]: &[F; 2]| {
            let (mut m, mut v) = (m, v);
            moments.update::<L::State>(&mut m, &mut v, g);
            [round_p(round_p(g * g) / v.max(eps_sq))]
        });
        let rms = round_p(round_p(sum / cast(n as f64)).sqrt());
        let lr = step.lr() / rms.to_f64().unwrap_or(f64::NAN).max(1.0);
        let scale = OptimiScale::Adaptive(lr);
        optimi_step(step, lr, &self.options, self.betas, self.eps, scale);
    }
}
