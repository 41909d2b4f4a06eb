//! LAMB: Adam scaled per tensor by a trust ratio, for large batches.

use crate::chain;
use crate::engine::{Engine, Rule, Scalar, Scope};
use crate::transform::{AddDecayedWeights, ScaleByAdam, ScaleByLearningRate, ScaleByTrustRatio};

/// LAMB (You et al., 2020, "Large Batch Optimization for Deep Learning: Training BERT in 76
/// minutes"), as `optax.lamb` computes it: the Adam direction plus weight decay, scaled per tensor
/// so that its norm matches the parameter's.
///
/// ```text
/// m ← (1 − β₁)·g + β₁·m;   v ← (1 − β₂)·g² + β₂·v
/// u = m/(1 − β₁ᵗ) / (√(v/(1 − β₂ᵗ) + ε_root) + ε) + λ·p
/// r = ‖p‖/‖u‖ (Frobenius norms of the whole tensor; 1 if either is 0)
/// p ← p − lr·r·u
/// ```
///
/// Keys whose [`Group`](crate::Group) sets [`trust_ratio(false)`](crate::Group::trust_ratio) take
/// `r = 1`, and a group's weight decay replaces λ (set it to 0 to exclude biases and norms, as
/// optax's `mask` does). Defaults (optax's): learning rate 0.01 (optax requires one), betas
/// (0.9, 0.999), ε = 1e-6, ε_root = 0, weight decay 0. State, with optax's names: `mu`, `nu`.
/// Like optax's, it is a chain: [`ScaleByAdam`](crate::transform::ScaleByAdam),
/// [`AddDecayedWeights`](crate::transform::AddDecayedWeights),
/// [`ScaleByTrustRatio`](crate::transform::ScaleByTrustRatio),
/// [`ScaleByLearningRate`](crate::transform::ScaleByLearningRate); two vectorized passes per
/// key: the norms, then the step.
pub type Lamb<F = f32> = Engine<LambRule, F>;

/// The rule of [`Lamb`].
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct LambRule {
    betas: [f64; 2],
    eps: f64,
    eps_root: f64,
    weight_decay: f64,
}

impl Default for LambRule {
    fn default() -> Self {
        Self {
            betas: [0.9, 0.999],
            eps: 1e-6,
            eps_root: 0.0,
            weight_decay: 0.0,
        }
    }
}

shares!(LambRule: betas);

setters!(Lamb {
    /// Sets ε, added to the root (default 1e-6).
    eps: f64,
    /// Sets ε_root, added under the root (default 0).
    eps_root: f64,
    /// Sets the weight decay λ added to the update before the trust ratio, `>= 0` (default 0).
    weight_decay: f64,
});

impl<F: Scalar> Rule<F> for LambRule {
    type KeyScalars = ();
    const NAME: &'static str = "LAMB";
    const DEFAULT_LR: f64 = 0.01;
    const SCOPE: Scope = Scope::Key;

    hyperparameters!(Momentum => (betas[0]), Beta2 => (betas[1]), WeightDecay => (weight_decay));
    chained!(self => chain!(
        ScaleByAdam::default().betas(self.betas).eps(self.eps).eps_root(self.eps_root),
        AddDecayedWeights::new(self.weight_decay),
        ScaleByTrustRatio::default(),
        ScaleByLearningRate,
    ));
}
