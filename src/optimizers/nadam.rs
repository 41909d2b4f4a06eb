//! NAdam: Adam with Nesterov momentum.

use crate::engine::{Engine, Layout, Rule, Scalar, Step, cast};
use crate::parts::{GradientOptions, Lerp, scalar_state};
use crate::{Error, check};

/// NAdam (Dozat, 2016, "Incorporating Nesterov Momentum into Adam"), as `torch.optim.NAdam`
/// computes it, with its momentum schedule `μₜ = β₁·(1 − ½·0.96^(t·ψ))`:
///
/// ```text
/// g ← −g if maximize;  g ← g + λ·p (coupled)  or  p ← p·(1 − lr·λ) (decoupled)
/// Πₜ = μ₁·…·μₜ
/// m ← lerp(m, g, 1 − β₁);  v ← β₂·v + (1 − β₂)·g²
/// s = √(v / (1 − β₂ᵗ)) + ε
/// p ← p − lr·(1 − μₜ)/(1 − Πₜ) · g/s − lr·μₜ₊₁/(1 − Πₜ·μₜ₊₁) · m/s
/// ```
///
/// Defaults: learning rate 0.002, betas (0.9, 0.999), ε = 1e-8, momentum decay ψ = 0.004, weight
/// decay 0 (coupled unless [`decoupled_weight_decay`](crate::Engine::decoupled_weight_decay),
/// PyTorch's NAdamW). State: `exp_avg`, `exp_avg_sq`, and the product Πₜ per key
/// (PyTorch's `mu_product`, kept in `f32` as PyTorch keeps it: a scalar tensor of its default
/// dtype).
pub type NAdam<F = f32> = Engine<NAdamRule, F>;

/// The rule of [`NAdam`].
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct NAdamRule {
    betas: [f64; 2],
    eps: f64,
    momentum_decay: f64,
    options: GradientOptions,
}

impl Default for NAdamRule {
    fn default() -> Self {
        Self {
            betas: [0.9, 0.999],
            eps: 1e-8,
            momentum_decay: 0.004,
            options: GradientOptions::default(),
        }
    }
}

shares!(NAdamRule: options, decoupled, betas);

setters!(NAdam {
    /// Sets ε, added to the bias-corrected root mean square (default 1e-8).
    eps: f64,
});

impl<F: Scalar> NAdam<F> {
    /// Sets the momentum decay ψ, `>= 0` (default 0.004).
    #[must_use]
    pub fn momentum_decay(self, momentum_decay: f64) -> Self {
        self.with(|r| r.momentum_decay = momentum_decay)
    }
}

impl<F: Scalar> Rule<F> for NAdamRule {
    /// The running product of the momentum coefficients, Πₜ (`None` before the first step: 1).
    type KeyScalars = Option<f64>;
    const NAME: &'static str = "NAdam";
    const DEFAULT_LR: f64 = 0.002;

    hyperparameters!(
        Momentum => (betas[0]),
        Beta2 => (betas[1]),
        WeightDecay => (options.weight_decay),
    );

    fn validate(&self) -> Result<(), Error> {
        check::non_negative("epsilon value", self.eps)?;
        check::betas(self.betas)?;
        check::non_negative("momentum_decay value", self.momentum_decay)?;
        self.options.validate()
    }

    fn slot_names(&self) -> Vec<&'static str> {
        vec!["exp_avg", "exp_avg_sq"]
    }

    fn step<L: Layout<F>>(&self, step: Step<'_, F, L>, mu_product: &mut Option<f64>) {
        let (lr, t) = (step.lr(), step.t() as f64);
        let [beta1, beta2] = self.betas;
        let mu = beta1 * (1.0 - 0.5 * 0.96f64.powf(t * self.momentum_decay));
        let mu_next = beta1 * (1.0 - 0.5 * 0.96f64.powf((t + 1.0) * self.momentum_decay));
        let product = scalar_state(mu_product.unwrap_or(1.0) * scalar_state(mu));
        *mu_product = Some(product);
        let (bc2, mean): (F, Lerp<F>) = (cast(1.0 - beta2.powf(t)), Lerp::new(1.0 - beta1));
        let (b2, c2, eps): (F, F, F) = (cast(beta2), cast(1.0 - beta2), cast(self.eps));
        let grad_coef: F = cast(-lr * (1.0 - mu) / (1.0 - product));
        let avg_coef: F = cast(-lr * mu_next / (1.0 - product * mu_next));
        self.options.for_each(step, move |p, g, [m, v]: &mut [F; 2]| {
            *m = mean.apply(*m, g);
            *v = *v * b2 + c2 * g * g;
            let s = (*v / bc2).sqrt() + eps;
            *p = *p + grad_coef * g / s;
            *p = *p + avg_coef * *m / s;
        });
    }
}
