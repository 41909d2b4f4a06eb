//! LARS: SGD with momentum on updates scaled per tensor by a trust ratio, for large batches.

use crate::chain;
use crate::engine::{Engine, Rule, Scalar, Scope};
use crate::transform::{AddDecayedWeights, ScaleByLearningRate, ScaleByTrustRatio, Trace};

/// LARS (You et al., 2017, "Large Batch Training of Convolutional Networks"), as `optax.lars`
/// computes it:
///
/// ```text
/// u = g + λ·p
/// u ← u · c·‖p‖/(‖u‖ + ε)      (Frobenius norms of the whole tensor; factor 1 if either is 0)
/// m ← −lr·u + μ·m
/// p ← p + m                    (nesterov: p ← p − lr·u + μ·m)
/// ```
///
/// Keys whose [`Group`](crate::Group) sets [`trust_ratio(false)`](crate::Group::trust_ratio) skip
/// the scaling (optax's `trust_ratio_mask`), and a group's weight decay replaces λ (optax's
/// `weight_decay_mask`). Defaults (optax's): learning rate 1 (optax requires one; LARS's trust
/// coefficient makes steps small), weight decay 0, trust coefficient c = 0.001, ε = 0,
/// momentum μ = 0.9, no Nesterov. State, with optax's name: `trace` (m). Like optax's, it is a
/// chain: [`AddDecayedWeights`](crate::transform::AddDecayedWeights),
/// [`ScaleByTrustRatio`](crate::transform::ScaleByTrustRatio),
/// [`ScaleByLearningRate`](crate::transform::ScaleByLearningRate),
/// [`Trace`](crate::transform::Trace).
pub type Lars<F = f32> = Engine<LarsRule, F>;

/// The rule of [`Lars`].
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct LarsRule {
    weight_decay: f64,
    trust_coefficient: f64,
    eps: f64,
    momentum: f64,
    nesterov: bool,
}

impl Default for LarsRule {
    fn default() -> Self {
        Self {
            weight_decay: 0.0,
            trust_coefficient: 0.001,
            eps: 0.0,
            momentum: 0.9,
            nesterov: false,
        }
    }
}

setters!(Lars {
    /// Sets the weight decay λ added to the gradient, `>= 0` (default 0).
    weight_decay: f64,
    /// Sets the trust coefficient c, `>= 0` (default 0.001).
    trust_coefficient: f64,
    /// Sets ε, added to the update's norm (default 0).
    eps: f64,
    /// Sets the momentum μ, `>= 0` (default 0.9).
    momentum: f64,
    /// Uses Nesterov momentum (default `false`).
    nesterov: bool,
});

impl<F: Scalar> Rule<F> for LarsRule {
    type KeyScalars = ();
    const NAME: &'static str = "LARS";
    const DEFAULT_LR: f64 = 1.0;
    const SCOPE: Scope = Scope::Key;

    hyperparameters!(Momentum => (momentum), WeightDecay => (weight_decay));
    chained!(self => chain!(
        AddDecayedWeights::new(self.weight_decay),
        ScaleByTrustRatio::default()
            .trust_coefficient(self.trust_coefficient)
            .eps(self.eps),
        ScaleByLearningRate,
        Trace::new(self.momentum).nesterov(self.nesterov),
    ));
}
