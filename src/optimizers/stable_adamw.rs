//! StableAdamW: AdamW whose learning rate shrinks where the update's RMS is large.

use crate::engine::{Engine, Layout, Rule, Scalar, Step, cast};
use crate::optimizers::adam::OptimiMoments;
use crate::parts::GradientOptions;
use crate::{Error, check};

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
/// `exp_avg`, `exp_avg_sq`. The mean is a reduction over the whole tensor, so StableAdamW runs
/// on native layouts (`f32`, `f64`): exact to optimi there; on bfloat16 parameters it is refused
/// ([`Error::IncompatibleOptions`]).
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
    const ELEMENTWISE: bool = false;

    momentum_is!(betas[0]);

    fn validate(&self) -> Result<(), Error> {
        check::non_negative("epsilon value", self.eps)?;
        check::betas(self.betas)?;
        self.options.validate()
    }

    fn slot_names(&self) -> &'static [&'static str] {
        &["exp_avg", "exp_avg_sq"]
    }

    fn step<L: Layout<F>>(&self, step: Step<'_, F, L>, _: &mut ()) {
        let lr = step.lr();
        let wd = step.weight_decay().unwrap_or(self.options.weight_decay);
        let moments = OptimiMoments::<F>::new(self.betas, step.t());
        let (sign, eps, eps_sq): (F, F, F) =
            (self.options.sign(), cast(self.eps), cast(self.eps * self.eps));
        // Three passes: the moments; the mean of g²/max(v, ε²); the step at the scaled rate.
        let mut parts = step.parts();
        let n = parts.params.len();
        parts.for_each(move |_, g, [m, v]: &mut [F; 2]| moments.update::<F>(m, v, g * sign));
        if n == 0 {
            return;
        }
        let [sum] = parts.sum(move |_, g, &[_, v]: &[F; 2]| [g * g / v.max(eps_sq)]);
        let rms = (sum / cast(n as f64)).sqrt().to_f64().unwrap_or(f64::NAN);
        let lr = lr / rms.max(1.0);
        let (keep, neg_lr): (F, F) = (self.options.keep(lr, Some(wd)), cast(-lr));
        parts.for_each(move |p, _, [m, v]: &mut [F; 2]| {
            *p = *p * keep;
            *p = *p + neg_lr * *m / (v.sqrt() + eps);
        });
    }
}
