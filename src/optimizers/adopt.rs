//! ADOPT: Adam with the gradient normalised by the second moment of the steps before.

use crate::engine::{Engine, Layout, Rule, Scalar, Step, cast};
use crate::parts::{clip_nan, max_nan};
use crate::{Error, check};

/// ADOPT (Taniguchi et al., 2024, "ADOPT: Modified Adam Can Converge with Any β₂ with the Optimal
/// Rate"), as `optax.contrib.adopt` computes it. With `c` the steps the key has already taken and
/// `v` the second moment from before this step:
///
/// ```text
/// z = clip(g / max(√v, ε), ±c^κ)                  (no clip without clipping)
/// v ← (1 − β₂)·g² + β₂·v;   m ← (1 − β₁)·z + β₁·m  (at c = 0: β₂ acts as 0 and β₁ as 1)
/// p ← p − lr·m    (nesterov: p ← p − lr·((1 − β₁)·z + β₁·m))
/// ```
///
/// So the first step only records `v = g²` and leaves the parameter where it is. Defaults
/// (optax's): learning rate 0.01 (optax requires one), betas (0.9, 0.9999), ε = 1e-6, clipping on
/// with exponent κ = 0.25 (optax's `clip_value_fn = lambda x: x**0.25`), no Nesterov. State, with
/// optax's names: `mu` (m), `nu` (v).
pub type Adopt<F = f32> = Engine<AdoptRule, F>;

/// The rule of [`Adopt`].
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct AdoptRule {
    betas: [f64; 2],
    eps: f64,
    nesterov: bool,
    clip_exponent: Option<f64>,
}

impl Default for AdoptRule {
    fn default() -> Self {
        Self {
            betas: [0.9, 0.9999],
            eps: 1e-6,
            nesterov: false,
            clip_exponent: Some(0.25),
        }
    }
}

shares!(AdoptRule: betas);

setters!(Adopt {
    /// Sets ε, the floor of `√v` (default 1e-6).
    eps: f64,
    /// Uses the Nesterov form of the step (default `false`).
    nesterov: bool,
    /// Sets the clipping of the normalised gradient to `±c^κ` after `c` steps: `Some(κ)`, `>= 0`
    /// (default `Some(0.25)`, optax's `x**0.25`), or `None` for optax's `use_clipping=False`.
    clip_exponent: Option<f64>,
});

impl<F: Scalar> Rule<F> for AdoptRule {
    type KeyScalars = ();
    const NAME: &'static str = "ADOPT";
    const DEFAULT_LR: f64 = 0.01;

    momentum_is!(betas[0]);

    fn validate(&self) -> Result<(), Error> {
        check::betas(self.betas)?;
        check::non_negative("epsilon value", self.eps)?;
        self.clip_exponent
            .map_or(Ok(()), |k| check::non_negative("clip exponent", k))
    }

    fn slot_names(&self) -> &'static [&'static str] {
        &["mu", "nu"]
    }

    fn step<L: Layout<F>>(&self, step: Step<'_, F, L>, _: &mut ()) {
        let taken = step.t() - 1;
        let [beta1, beta2] = if taken == 0 { [1.0, 0.0] } else { self.betas };
        let clip: F = cast(self.clip_exponent.map_or(f64::INFINITY, |k| (taken as f64).powf(k)));
        let (lr, eps): (F, F) = (cast(step.lr()), cast(self.eps));
        let (b1, b2, c1, c2): (F, F, F, F) = (cast(beta1), cast(beta2), cast(1.0 - beta1), cast(1.0 - beta2));
        let nesterov = self.nesterov;
        step.for_each(move |p, g, [m, v]: &mut [F; 2]| {
            let z = clip_nan(g / max_nan(v.sqrt(), eps), clip);
            *v = c2 * (g * g) + b2 * *v;
            *m = c1 * z + b1 * *m;
            let u = if nesterov { c1 * z + b1 * *m } else { *m };
            *p = *p - lr * u;
        });
    }
}
