//! RAdam: Adam with a rectified adaptive learning rate.

use crate::engine::{Engine, Layout, Rule, Scalar, Step, cast};
use crate::parts::{GradientOptions, Lerp, bias_correction, pow};
use crate::optimizers::adam::{OptimiScale, optimi_step};
use crate::{Error, check};

/// RAdam (Liu et al., 2020, "On the Variance of the Adaptive Learning Rate and Beyond"), as
/// `torch.optim.RAdam` computes it:
///
/// ```text
/// g ← −g if maximize;  g ← g + λ·p (coupled)  or  p ← p·(1 − lr·λ) (decoupled)
/// m ← lerp(m, g, 1 − β₁);  v ← β₂·v + (1 − β₂)·g²;  m̂ = m / (1 − β₁ᵗ)
/// ρ∞ = 2/(1 − β₂) − 1;  ρₜ = ρ∞ − 2t·β₂ᵗ/(1 − β₂ᵗ)
/// ρₜ > 5:  rₜ = √((ρₜ − 4)(ρₜ − 2)ρ∞ / ((ρ∞ − 4)(ρ∞ − 2)ρₜ)),
///          p ← p − m̂·lr · √(1 − β₂ᵗ)/(√v + ε) · rₜ
/// else:    p ← p − m̂·lr      (SGD with momentum while the variance is intractable)
/// ```
///
/// Defaults: learning rate 0.001, betas (0.9, 0.999), ε = 1e-8, weight decay 0 (coupled unless
/// [`decoupled_weight_decay`](crate::Engine::decoupled_weight_decay)). State: `exp_avg`,
/// `exp_avg_sq`.
///
/// [`RAdam::optimi`] is torch-optimi's `RAdam`: the same rectification on the moments of
/// [`AdamConvention::Optimi`](crate::AdamConvention::Optimi) (debiased betas, no other bias
/// correction), `p ← p − lr·rₜ·m/(√v + ε)` or `p ← p − lr·m`, each operation rounded as
/// PyTorch rounds it on low-precision parameters.
pub type RAdam<F = f32> = Engine<RAdamRule, F>;

/// The rule of [`RAdam`].
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct RAdamRule {
    betas: [f64; 2],
    eps: f64,
    /// torch-optimi's arithmetic ([`RAdam::optimi`]).
    #[cfg_attr(feature = "serde", serde(default))]
    optimi: bool,
    options: GradientOptions,
}

impl Default for RAdamRule {
    fn default() -> Self {
        Self {
            betas: [0.9, 0.999],
            eps: 1e-8,
            optimi: false,
            options: GradientOptions::default(),
        }
    }
}

impl<F: Scalar> RAdam<F> {
    /// torch-optimi's `RAdam` (`optimi.RAdam`) with its defaults: learning rate 0.001, betas
    /// (0.9, 0.99), ε = 1e-6, weight decay 0 (coupled; decoupled and fully decoupled as options).
    /// Its `kahan_sum` is the engine's [`Rounding::Kahan`](crate::Rounding::Kahan) on a
    /// [`Mixed`](crate::Mixed) layout.
    pub fn optimi() -> Self {
        Self::new(RAdamRule {
            betas: [0.9, 0.99],
            eps: 1e-6,
            optimi: true,
            options: GradientOptions::default(),
        })
    }
}

shares!(RAdamRule: options, decoupled, fully_decoupled, betas);

setters!(RAdam {
    /// Sets ε, added to `√v` (default 1e-8).
    eps: f64,
});

impl<F: Scalar> Rule<F> for RAdamRule {
    type KeyScalars = ();
    const NAME: &'static str = "RAdam";
    const DEFAULT_LR: f64 = 0.001;

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

    fn step<L: Layout<F>>(&self, step: Step<'_, F, L>, _: &mut ()) {
        let (lr, t) = (step.lr(), step.t());
        if self.optimi {
            let scale = optimi_scale(lr, self.betas[1], t);
            return optimi_step(step, lr, &self.options, self.betas, self.eps, scale);
        }
        let [beta1, beta2] = self.betas;
        let (bc1, bc2) = (bias_correction(beta1, t), bias_correction(beta2, t));
        let rect = rectification(beta2, t);
        let mean = Lerp::new(1.0 - beta1);
        let (b2, c2, eps): (F, F, F) = (cast(beta2), cast(1.0 - beta2), cast(self.eps));
        let (bc1, lr_f, bc2_sqrt, rect_f): (F, F, F, F) =
            (cast(bc1), cast(lr), cast(bc2.sqrt()), cast(rect.unwrap_or(0.0)));
        let adaptive = rect.is_some();
        self.options.for_each(step, move |p, g, [m, v]: &mut [F; 2]| {
            *m = mean.apply(*m, g);
            *v = *v * b2 + c2 * g * g;
            let corrected = *m / bc1 * lr_f;
            *p = *p - if adaptive { corrected * (bc2_sqrt / (v.sqrt() + eps)) * rect_f } else { corrected };
        });
    }
}

/// RAdam's rectification `rₜ` at step `t`, or `None` while `ρₜ ≤ 5` (the variance is
/// intractable).
fn rectification(beta2: f64, t: u64) -> Option<f64> {
    let (rho_t, rect) = rectified(beta2, t);
    (rho_t > 5.0).then_some(rect)
}

/// `ρₜ` and the rectification `rₜ = √((ρₜ − 4)(ρₜ − 2)ρ∞ / ((ρ∞ − 4)(ρ∞ − 2)ρₜ))` at step `t`,
/// in the references' order of operations (`rₜ` is NaN where `ρₜ < 4`): the callers apply their
/// own threshold.
pub(crate) fn rectified(beta2: f64, t: u64) -> (f64, f64) {
    let rho_inf = 2.0 / (1.0 - beta2) - 1.0;
    let rho_t = rho_inf - 2.0 * t as f64 * pow(beta2, t as f64) / bias_correction(beta2, t);
    let rect =
        ((rho_t - 4.0) * (rho_t - 2.0) * rho_inf / ((rho_inf - 4.0) * (rho_inf - 2.0) * rho_t)).sqrt();
    (rho_t, rect)
}

/// How torch-optimi's RAdam (and Ranger's) scales its step at step `t`.
pub(crate) fn optimi_scale(lr: f64, beta2: f64, t: u64) -> OptimiScale {
    match rectification(beta2, t) {
        Some(rect) => OptimiScale::Adaptive(lr * rect),
        None => OptimiScale::Momentum,
    }
}
