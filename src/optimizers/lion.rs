//! Lion: the sign of an interpolated momentum.

use crate::engine::{Engine, Layout, Rule, Scalar, Step, cast};
use crate::parts::{GradientOptions, sign};
use crate::{Error, check};

/// Lion (Chen et al., 2023, "Symbolic Discovery of Optimization Algorithms", Program 1): every
/// element moves by exactly the learning rate, in the direction of the sign of an interpolation
/// between the momentum and the gradient.
///
/// ```text
/// g ← −g if maximize
/// c = β₁·m + (1 − β₁)·g
/// p ← p·(1 − lr·λ) − lr·sign(c)      (decoupled weight decay)
/// m ← β₂·m + (1 − β₂)·g
/// ```
///
/// References: the paper's program; optax's `lion` (the same update). No PyTorch class exists.
/// Defaults: learning rate 1e-4, betas (0.9, 0.99), weight decay 0 (the paper's defaults; optax
/// defaults the weight decay to 1e-3). The paper suggests a learning rate 3-10x smaller than
/// AdamW's and a weight decay 3-10x larger. State: `exp_avg` (m).
pub type Lion<F = f32> = Engine<LionRule, F>;

/// The rule of [`Lion`].
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct LionRule {
    betas: [f64; 2],
    options: GradientOptions,
}

impl Default for LionRule {
    fn default() -> Self {
        Self {
            betas: [0.9, 0.99],
            options: GradientOptions::decoupled(),
        }
    }
}

shares!(LionRule: options, betas);

impl<F: Scalar> Rule<F> for LionRule {
    type KeyScalars = ();
    const NAME: &'static str = "Lion";
    const DEFAULT_LR: f64 = 1e-4;

    momentum_is!(betas[0]);

    fn validate(&self) -> Result<(), Error> {
        check::betas(self.betas)?;
        self.options.validate()
    }

    fn slot_names(&self) -> &'static [&'static str] {
        &["exp_avg"]
    }

    fn step<L: Layout<F>>(&self, step: Step<'_, F, L>, _: &mut ()) {
        let [beta1, beta2] = self.betas;
        let (lr, b1, c1, b2, c2): (F, F, F, F, F) =
            (cast(step.lr()), cast(beta1), cast(1.0 - beta1), cast(beta2), cast(1.0 - beta2));
        self.options.for_each(step, move |p, g, [m]: &mut [F; 1]| {
            *p = *p - lr * sign(b1 * *m + c1 * g);
            *m = b2 * *m + c2 * g;
        });
    }
}
