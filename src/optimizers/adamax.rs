//! Adamax: Adam with the infinity norm.

use crate::engine::{Engine, Layout, Rule, Scalar, Step, cast};
use crate::parts::{GradientOptions, Lerp, bias_correction};
use crate::{Error, check};

/// Adamax (Kingma & Ba, 2015, section 7.1), Adam's variant with an exponentially weighted
/// infinity norm in place of the second moment, as `torch.optim.Adamax` computes it:
///
/// ```text
/// g ← −g if maximize;  g ← g + λ·p (weight decay)
/// m ← lerp(m, g, 1 − β₁);  u ← max(β₂·u, |g| + ε)
/// p ← p − lr/(1 − β₁ᵗ) · m / u
/// ```
///
/// Defaults: learning rate 0.002, betas (0.9, 0.999), ε = 1e-8, weight decay 0. State: `exp_avg`,
/// `exp_inf`.
pub type Adamax<F = f32> = Engine<AdamaxRule, F>;

/// The rule of [`Adamax`].
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct AdamaxRule {
    betas: [f64; 2],
    eps: f64,
    options: GradientOptions,
}

impl Default for AdamaxRule {
    fn default() -> Self {
        Self {
            betas: [0.9, 0.999],
            eps: 1e-8,
            options: GradientOptions::default(),
        }
    }
}

shares!(AdamaxRule: options, betas);

setters!(Adamax {
    /// Sets ε, added to `|g|` (default 1e-8).
    eps: f64,
});

impl<F: Scalar> Rule<F> for AdamaxRule {
    type KeyScalars = ();
    const NAME: &'static str = "Adamax";
    const DEFAULT_LR: f64 = 0.002;

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
        vec!["exp_avg", "exp_inf"]
    }

    fn step<L: Layout<F>>(&self, step: Step<'_, F, L>, _: &mut ()) {
        let [beta1, beta2] = self.betas;
        let clr: F = cast(step.lr() / bias_correction(beta1, step.t()));
        let (mean, b2, eps): (Lerp<F>, F, F) = (Lerp::new(1.0 - beta1), cast(beta2), cast(self.eps));
        self.options.for_each(step, move |p, g, [m, u]: &mut [F; 2]| {
            *m = mean.apply(*m, g);
            *u = (*u * b2).max(g.abs() + eps);
            *p = *p - clr * *m / *u;
        });
    }
}
