//! LARS: SGD with momentum on updates scaled per tensor by a trust ratio, for large batches.

use crate::engine::{Engine, Layout, Rule, Scalar, Step, cast};
use crate::tensor::trust_ratio;
use crate::{Error, check};

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
/// momentum μ = 0.9, no Nesterov. State, with optax's name: `trace` (m).
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
    const ELEMENTWISE: bool = false;

    momentum_is!(momentum);

    fn validate(&self) -> Result<(), Error> {
        check::non_negative("weight_decay value", self.weight_decay)?;
        check::non_negative("trust coefficient", self.trust_coefficient)?;
        check::non_negative("epsilon value", self.eps)?;
        check::non_negative("momentum value", self.momentum)
    }

    fn slot_names(&self) -> &'static [&'static str] {
        &["trace"]
    }

    fn step<L: Layout<F>>(&self, step: Step<'_, F, L>, _: &mut ()) {
        let (lr, use_ratio) = (step.lr(), step.trust_ratio());
        let wd: F = cast(step.weight_decay().unwrap_or(self.weight_decay));
        let (mu, nesterov): (F, bool) = (cast(self.momentum), self.nesterov);
        // Two vectorized passes: the norms, then the step.
        let mut parts = step.parts();
        let ratio = if use_ratio {
            let [p_squares, u_squares] = parts.sum(move |p, g, _: &[F; 1]| {
                let u = g + wd * p;
                [p * p, u * u]
            });
            trust_ratio(self.trust_coefficient, p_squares, u_squares, self.eps)
        } else {
            F::one()
        };
        let neg_lr: F = cast(-lr);
        parts.for_each(move |p, g, [m]: &mut [F; 1]| {
            let u = (g + wd * *p) * ratio * neg_lr;
            *m = u + mu * *m;
            *p = *p + if nesterov { u + mu * *m } else { *m };
        });
    }
}
