//! Adan: adaptive Nesterov momentum from gradient differences.

use crate::engine::{Engine, Layout, Rule, Scalar, Step, cast};
use crate::parts::{DecayedStep, bias_correction};
use crate::{Error, check};

/// Adan (Xie et al., 2022, "Adan: Adaptive Nesterov Momentum Algorithm for Faster Optimizing Deep
/// Models"), as `optax.adan` computes it:
///
/// ```text
/// d = g − g_prev  (0 on the key's first step)
/// m ← (1 − β₁)·g + β₁·m;   v ← (1 − β₂)·d + β₂·v;   n ← (1 − β₃)·(g + (1 − β₂)·d)² + β₃·n
/// u = (m/(1 − β₁ᵗ) + (1 − β₂)·v/(1 − β₂ᵗ)) / (√(n/(1 − β₃ᵗ) + ε_root) + ε)
/// p ← p − lr·(u + λ·p)
/// ```
///
/// optax's weight decay is added to the update (its `add_decayed_weights`), not divided out as in
/// the paper's proximal form. Defaults (optax's): learning rate 0.01 (optax requires one; ours is a
/// common starting point), betas (0.98, 0.92, 0.99), ε = 1e-8, ε_root = 1e-8, weight decay 0.
/// State, with optax's names: `m`, `v`, `n` and `g` (the previous gradient).
pub type Adan<F = f32> = Engine<AdanRule, F>;

/// The rule of [`Adan`].
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct AdanRule {
    b1: f64,
    b2: f64,
    b3: f64,
    eps: f64,
    eps_root: f64,
    weight_decay: f64,
}

impl Default for AdanRule {
    fn default() -> Self {
        Self {
            b1: 0.98,
            b2: 0.92,
            b3: 0.99,
            eps: 1e-8,
            eps_root: 1e-8,
            weight_decay: 0.0,
        }
    }
}

setters!(Adan {
    /// Sets β₁, the decay of the gradients' average, in `[0, 1)` (default 0.98).
    b1: f64,
    /// Sets β₂, the decay of the gradient differences' average, in `[0, 1)` (default 0.92).
    b2: f64,
    /// Sets β₃, the decay of the squared term's average, in `[0, 1)` (default 0.99).
    b3: f64,
    /// Sets ε, added to the root (default 1e-8).
    eps: f64,
    /// Sets ε_root, added under the root (default 1e-8).
    eps_root: f64,
    /// Sets the weight decay λ added to the update, `>= 0` (default 0).
    weight_decay: f64,
});

impl<F: Scalar> Rule<F> for AdanRule {
    type KeyScalars = ();
    const NAME: &'static str = "Adan";
    const DEFAULT_LR: f64 = 0.01;

    momentum_is!(b1);

    fn validate(&self) -> Result<(), Error> {
        check::unit_interval("b1 value", self.b1)?;
        check::unit_interval("b2 value", self.b2)?;
        check::unit_interval("b3 value", self.b3)?;
        check::non_negative("epsilon value", self.eps)?;
        check::non_negative("eps_root value", self.eps_root)?;
        check::non_negative("weight_decay value", self.weight_decay)
    }

    fn slot_names(&self) -> &'static [&'static str] {
        &["m", "v", "n", "g"]
    }

    fn step<L: Layout<F>>(&self, step: Step<'_, F, L>, _: &mut ()) {
        let t = step.t();
        let apply = DecayedStep::new(&step, self.weight_decay);
        let (bc1, bc2, bc3): (F, F, F) = (
            cast(bias_correction(self.b1, t)),
            cast(bias_correction(self.b2, t)),
            cast(bias_correction(self.b3, t)),
        );
        let (b1, b2, b3, c1, c2, c3): (F, F, F, F, F, F) = (
            cast(self.b1),
            cast(self.b2),
            cast(self.b3),
            cast(1.0 - self.b1),
            cast(1.0 - self.b2),
            cast(1.0 - self.b3),
        );
        let (eps, eps_root): (F, F) = (cast(self.eps), cast(self.eps_root));
        let first = t == 1;
        step.for_each(move |p, g, [m, v, n, prev]: &mut [F; 4]| {
            let d = if first { F::zero() } else { g - *prev };
            *m = c1 * g + b1 * *m;
            *v = c2 * d + b2 * *v;
            let sq = g + c2 * d;
            *n = c3 * (sq * sq) + b3 * *n;
            *prev = g;
            let u = (*m / bc1 + c2 * (*v / bc2)) / ((*n / bc3 + eps_root).sqrt() + eps);
            apply.apply(p, u);
        });
    }
}
