//! AdaBelief: Adam scaled by the belief in the gradient.

use crate::engine::{Engine, Rule, Scalar, cast};
use crate::parts::bias_correction;
use crate::transform::{Context, ScaleByLearningRate, Transform, reciprocals};
use crate::{Error, chain, check};

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
/// Like optax's, it is a chain: [`ScaleByBelief`], then
/// [`ScaleByLearningRate`](crate::transform::ScaleByLearningRate).
/// Defaults (optax's): learning rate 0.01 (optax requires one), betas (0.9, 0.999), ε = 1e-16,
/// ε_root = 1e-16, no Nesterov. optax's alias has no weight decay, and neither has this one.
/// State, with optax's names: `mu` (m) and `nu` (s).
pub type AdaBelief<F = f32> = Engine<AdaBeliefRule, F>;

/// The rule of [`AdaBelief`]: its [`ScaleByBelief`] followed by the learning rate.
#[derive(Clone, Debug, Default, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct AdaBeliefRule(ScaleByBelief);

/// optax's `scale_by_belief`, AdaBelief's direction ([`AdaBelief`] without the learning rate):
/// `u ← m̂ / (√(s/(1 − β₂ᵗ)) + ε)`. State: `mu`, `nu`.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ScaleByBelief {
    betas: [f64; 2],
    eps: f64,
    eps_root: f64,
    nesterov: bool,
}

impl Default for ScaleByBelief {
    fn default() -> Self {
        Self {
            betas: [0.9, 0.999],
            eps: 1e-16,
            eps_root: 1e-16,
            nesterov: false,
        }
    }
}

builders!(ScaleByBelief {
    /// Sets β₁ and β₂, each in `[0, 1)` (default (0.9, 0.999)).
    betas: [f64; 2],
    /// Sets ε, added to the root (default 1e-16).
    eps: f64,
    /// Sets ε_root, added to the second moment every step (default 1e-16).
    eps_root: f64,
    /// Uses optax's Nesterov form of the first moment (default `false`).
    nesterov: bool,
});

shares!(AdaBeliefRule [self => self.0]: betas);

setters!(AdaBelief [r => r.0] {
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

    hyperparameters!(Momentum => (0.betas[0]), Beta2 => (0.betas[1]));
    chained!(self => chain!(self.0, ScaleByLearningRate));
}

impl<F: Scalar> Transform<F> for ScaleByBelief {
    type State = [F; 2];
    /// b1, c1, b2, c2, bc1, bc2, ε, ε_root, `1 − β₁ᵗ⁺¹`; Nesterov's form.
    type Scalars = ([F; 9], bool);

    hyperparameters!(Momentum => (betas[0]), Beta2 => (betas[1]));

    fn slot_names(&self) -> Vec<&'static str> {
        vec!["mu", "nu"]
    }

    fn validate(&self) -> Result<(), Error> {
        check::moments(self.betas, self.eps, self.eps_root)
    }

    fn scalars(&self, ctx: &Context<'_>) -> Self::Scalars {
        let (t, [beta1, beta2]) = (ctx.t, self.betas);
        let (bc1, bc2) = (bias_correction(beta1, t), bias_correction(beta2, t));
        let next = bias_correction(beta1, t + 1);
        let numbers = [beta1, 1.0 - beta1, beta2, 1.0 - beta2, bc1, bc2, self.eps, self.eps_root, next];
        (reciprocals(numbers.map(cast), [4, 5, 8]), self.nesterov)
    }

    #[inline(always)]
    fn apply(&(s, nesterov): &Self::Scalars, _: F, g: F, [m, v]: &mut [F; 2]) -> F {
        let [b1, c1, b2, c2, bc1, bc2, eps, eps_root, bc1_next] = s;
        *m = c1 * g + b1 * *m;
        let e = g - *m;
        *v = c2 * (e * e) + b2 * *v + eps_root;
        let m_hat = if nesterov {
            b1 * (*m * bc1_next) + c1 * (g * bc1)
        } else {
            *m * bc1
        };
        m_hat / ((*v * bc2).sqrt() + eps)
    }
}
