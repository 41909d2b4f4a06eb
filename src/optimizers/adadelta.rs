//! Adadelta: step sizes from running averages of squared gradients and squared steps.

use crate::engine::{Engine, Layout, Rule, Scalar, Step, cast};
use crate::parts::{GradientOptions, add_scaled};
use crate::{Error, check};

/// Adadelta (Zeiler, 2012, "ADADELTA: An Adaptive Learning Rate Method"), as
/// `torch.optim.Adadelta` computes it:
///
/// ```text
/// g ← −g if maximize;  g ← g + λ·p (weight decay)
/// s ← ρ·s + (1 − ρ)·g²
/// Δ = √(a + ε) / √(s + ε) · g
/// a ← ρ·a + (1 − ρ)·Δ²
/// p ← p − lr·Δ
/// ```
///
/// Defaults: learning rate 1.0, ρ = 0.9, ε = 1e-6, weight decay 0. State: `square_avg` (s),
/// `acc_delta` (a).
pub type Adadelta<F = f32> = Engine<AdadeltaRule, F>;

/// The rule of [`Adadelta`].
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct AdadeltaRule {
    rho: f64,
    eps: f64,
    options: GradientOptions,
}

impl Default for AdadeltaRule {
    fn default() -> Self {
        Self {
            rho: 0.9,
            eps: 1e-6,
            options: GradientOptions::default(),
        }
    }
}

shares!(AdadeltaRule: options);

setters!(Adadelta {
    /// Sets ρ, the decay of both running averages, in `[0, 1]` (default 0.9).
    rho: f64,
});

impl<F: Scalar> Adadelta<F> {
    /// Sets ε, added inside both square roots (default 1e-6).
    #[must_use]
    pub fn eps(self, eps: f64) -> Self {
        self.with(|r| r.eps = eps)
    }
}

impl<F: Scalar> Rule<F> for AdadeltaRule {
    type KeyScalars = ();
    const NAME: &'static str = "Adadelta";
    const DEFAULT_LR: f64 = 1.0;

    hyperparameters!(WeightDecay => (options.weight_decay));

    fn validate(&self) -> Result<(), Error> {
        check::closed_unit_interval("rho value", self.rho)?;
        check::non_negative("epsilon value", self.eps)?;
        self.options.validate()
    }

    fn slot_names(&self) -> Vec<&'static str> {
        vec!["square_avg", "acc_delta"]
    }

    fn step<L: Layout<F>>(&self, step: Step<'_, F, L>, _: &mut ()) {
        let (lr, rho, fresh, eps): (F, F, F, F) =
            (cast(step.lr()), cast(self.rho), cast(1.0 - self.rho), cast(self.eps));
        self.options.for_each(step, move |p, g, [s, a]: &mut [F; 2]| {
            *s = *s * rho + fresh * g * g;
            let delta = (*a + eps).sqrt() / (*s + eps).sqrt() * g;
            *a = *a * rho + fresh * delta * delta;
            *p = add_scaled(*p, -lr, delta);
        });
    }
}
