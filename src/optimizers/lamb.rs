//! LAMB: Adam scaled per tensor by a trust ratio, for large batches.

use crate::engine::{Engine, Layout, Rule, Scalar, Step, cast};
use crate::parts::bias_correction;
use crate::tensor::trust_ratio;
use crate::{Error, check};

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
/// Three vectorized passes per key: moments, norms, step.
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
    const ELEMENTWISE: bool = false;

    momentum_is!(betas[0]);

    fn validate(&self) -> Result<(), Error> {
        check::betas(self.betas)?;
        check::non_negative("epsilon value", self.eps)?;
        check::non_negative("eps_root value", self.eps_root)?;
        check::non_negative("weight_decay value", self.weight_decay)
    }

    fn slot_names(&self) -> &'static [&'static str] {
        &["mu", "nu"]
    }

    fn step<L: Layout<F>>(&self, step: Step<'_, F, L>, _: &mut ()) {
        let (t, [beta1, beta2]) = (step.t(), self.betas);
        let (lr, use_ratio) = (step.lr(), step.trust_ratio());
        let wd: F = cast(step.weight_decay().unwrap_or(self.weight_decay));
        let (bc1, bc2): (F, F) = (cast(bias_correction(beta1, t)), cast(bias_correction(beta2, t)));
        let (b1, b2, c1, c2): (F, F, F, F) = (cast(beta1), cast(beta2), cast(1.0 - beta1), cast(1.0 - beta2));
        let (eps, eps_root): (F, F) = (cast(self.eps), cast(self.eps_root));
        let direction = move |p: F, m: F, v: F| (m / bc1) / ((v / bc2 + eps_root).sqrt() + eps) + wd * p;

        // Three passes, each fused and vectorized: the moments; the norms of p and of the
        // direction; the step.
        let mut parts = step.parts();
        parts.for_each(move |_, g, [m, v]: &mut [F; 2]| {
            *m = c1 * g + b1 * *m;
            *v = c2 * (g * g) + b2 * *v;
        });
        let ratio = if use_ratio {
            let [p_squares, u_squares] = parts.sum(move |p, _, &[m, v]: &[F; 2]| {
                let u = direction(p, m, v);
                [p * p, u * u]
            });
            trust_ratio(1.0, p_squares, u_squares, 0.0)
        } else {
            F::one()
        };
        let scale: F = cast::<F>(lr) * ratio;
        parts.for_each(move |p, _, [m, v]: &mut [F; 2]| {
            *p = *p - scale * direction(*p, *m, *v);
        });
    }
}
