//! AdaBelief: Adam scaled by the belief in the gradient.

use crate::engine::{Engine, Layout, Rule, Scalar, Step, cast};
use crate::parts::bias_correction;
use crate::{Error, check};

/// AdaBelief (Zhuang et al., 2020, "AdaBelief Optimizer: Adapting Stepsizes by the Belief in
/// Observed Gradients"), as `optax.adabelief` computes it: Adam whose second moment tracks the
/// squared deviation of the gradient from its average.
///
/// ```text
/// m ← (1 − β₁)·g + β₁·m
/// s ← (1 − β₂)·(g − m)² + β₂·s + ε_root          (ε_root enters the state every step)
/// m̂ = m/(1 − β₁ᵗ)    (nesterov: β₁·m/(1 − β₁ᵗ⁺¹) + (1 − β₁)·g/(1 − β₁ᵗ))
/// p ← p − lr · m̂ / (√(s/(1 − β₂ᵗ)) + ε)
/// ```
///
/// Defaults (optax's): learning rate 0.01 (optax requires one), betas (0.9, 0.999), ε = 1e-16,
/// ε_root = 1e-16, no Nesterov. optax's alias has no weight decay, and neither has this one.
/// State, with optax's names: `mu` (m) and `nu` (s).
pub type AdaBelief<F = f32> = Engine<AdaBeliefRule, F>;

/// The rule of [`AdaBelief`].
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct AdaBeliefRule {
    betas: [f64; 2],
    eps: f64,
    eps_root: f64,
    nesterov: bool,
}

impl Default for AdaBeliefRule {
    fn default() -> Self {
        Self {
            betas: [0.9, 0.999],
            eps: 1e-16,
            eps_root: 1e-16,
            nesterov: false,
        }
    }
}

shares!(AdaBeliefRule: betas);

setters!(AdaBelief {
    /// Sets ε, added to the root (default 1e-16).
    eps: f64,
    /// Sets ε_root, added to the second moment every step (default 1e-16).
    eps_root: f64,
    /// Uses optax's Nesterov form of the first moment (default `false`).
    nesterov: bool,
});

impl<F: Scalar> Rule<F> for AdaBeliefRule {
    type KeyScalars = ();
    const NAME: &'static str = "AdaBelief";
    const DEFAULT_LR: f64 = 0.01;

    momentum_is!(betas[0]);

    fn validate(&self) -> Result<(), Error> {
        check::betas(self.betas)?;
        check::non_negative("epsilon value", self.eps)?;
        check::non_negative("eps_root value", self.eps_root)
    }

    fn slot_names(&self) -> &'static [&'static str] {
        &["mu", "nu"]
    }

    fn step<L: Layout<F>>(&self, step: Step<'_, F, L>, _: &mut ()) {
        let (t, [beta1, beta2]) = (step.t(), self.betas);
        let lr: F = cast(step.lr());
        let (bc1, bc2): (F, F) = (cast(bias_correction(beta1, t)), cast(bias_correction(beta2, t)));
        let (b1, b2, c1, c2): (F, F, F, F) = (cast(beta1), cast(beta2), cast(1.0 - beta1), cast(1.0 - beta2));
        let (eps, eps_root): (F, F) = (cast(self.eps), cast(self.eps_root));
        let moments = move |g: F, m: &mut F, s: &mut F| {
            *m = c1 * g + b1 * *m;
            let e = g - *m;
            *s = c2 * (e * e) + b2 * *s + eps_root;
        };
        if self.nesterov {
            let bc1_next: F = cast(bias_correction(beta1, t + 1));
            step.for_each(move |p, g, [m, s]: &mut [F; 2]| {
                moments(g, m, s);
                let m_hat = b1 * (*m / bc1_next) + c1 * (g / bc1);
                *p = *p - lr * (m_hat / ((*s / bc2).sqrt() + eps));
            });
        } else {
            step.for_each(move |p, g, [m, s]: &mut [F; 2]| {
                moments(g, m, s);
                *p = *p - lr * ((*m / bc1) / ((*s / bc2).sqrt() + eps));
            });
        }
    }
}
