//! Momentum SGD, as the book writes it.

use crate::engine::{Engine, Rule, Scalar, Step, cast};
use crate::{Error, check};

/// SGD with momentum in the book's form: `v ← μ·v − lr·g`, `p ← p + v`.
///
/// Reference: *Deep Learning from Scratch*, `common/optimizer.py`, class `Momentum`. Defaults:
/// learning rate 0.01, momentum 0.9. State: the velocity `v` (slot `"velocity"`).
///
/// The book folds the learning rate into the velocity; PyTorch's `SGD(momentum=…)` keeps it out
/// (`b ← μ·b + g`, `p ← p − lr·b`). The two agree while the learning rate is constant.
pub type Momentum<F = f32> = Engine<MomentumRule, F>;

/// The rule of [`Momentum`].
#[derive(Clone, Debug, PartialEq)]
pub struct MomentumRule {
    momentum: f64,
}

impl Default for MomentumRule {
    fn default() -> Self {
        Self { momentum: 0.9 }
    }
}

impl<F: Scalar> Momentum<F> {
    /// Sets the momentum `μ`, in `[0, 1)` (default 0.9).
    #[must_use]
    pub fn momentum(self, momentum: f64) -> Self {
        self.with(|r| r.momentum = momentum)
    }
}

impl<F: Scalar> Rule<F> for MomentumRule {
    type KeyScalars = ();
    const NAME: &'static str = "Momentum";
    const DEFAULT_LR: f64 = 0.01;

    fn validate(&self) -> Result<(), Error> {
        check::unit_interval("momentum value", self.momentum)
    }

    fn slot_names(&self) -> &'static [&'static str] {
        &["velocity"]
    }

    fn step(&self, step: Step<'_, F>, _: &mut ()) {
        let (lr, momentum): (F, F) = (cast(step.lr()), cast(self.momentum));
        step.for_each(|p, g, [v]: &mut [F; 1]| {
            *v = momentum * *v - lr * g;
            *p = *p + *v;
        });
    }
}
