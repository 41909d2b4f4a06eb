//! Momentum and Nesterov's accelerated gradient, as the book writes them.

use crate::engine::{Engine, Layout, Rule, Scalar, Step, cast};
use crate::{Error, check};

/// SGD with momentum in the book's form: `v ← μ·v − lr·g`, `p ← p + v`.
///
/// Reference: *Deep Learning from Scratch*, `common/optimizer.py`, class `Momentum`. Defaults:
/// learning rate 0.01, momentum 0.9. State: the velocity `v` (slot `"velocity"`).
///
/// The book folds the learning rate into the velocity; PyTorch's `SGD(momentum=…)`, which
/// [`Sgd::momentum`](crate::Sgd::momentum) gives, keeps it out (`b ← μ·b + g`, `p ← p − lr·b`).
/// The two agree while the learning rate is constant.
pub type Momentum<F = f32> = Engine<MomentumRule<false>, F>;

/// Nesterov's accelerated gradient in the book's form:
/// `v ← μ·v − lr·g`, `p ← p + μ²·v − (1 + μ)·lr·g`.
///
/// Reference: *Deep Learning from Scratch*, `common/optimizer.py`, class `Nesterov` (after
/// Bengio et al., "Advances in optimizing recurrent networks", 2012). Defaults: learning rate
/// 0.01, momentum 0.9. State: the velocity `v` (slot `"velocity"`).
pub type Nesterov<F = f32> = Engine<MomentumRule<true>, F>;

/// The rule of [`Momentum`] (`NESTEROV = false`) and [`Nesterov`] (`true`).
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct MomentumRule<const NESTEROV: bool> {
    momentum: f64,
}

impl<const NESTEROV: bool> Default for MomentumRule<NESTEROV> {
    fn default() -> Self {
        Self { momentum: 0.9 }
    }
}

impl<F: Scalar, const NESTEROV: bool> Engine<MomentumRule<NESTEROV>, F> {
    /// Sets the momentum `μ`, in `[0, 1)` (default 0.9).
    #[must_use]
    pub fn momentum(self, momentum: f64) -> Self {
        self.with(|r| r.momentum = momentum)
    }
}

impl<F: Scalar, const NESTEROV: bool> Rule<F> for MomentumRule<NESTEROV> {
    type KeyScalars = ();
    const NAME: &'static str = if NESTEROV { "Nesterov" } else { "Momentum" };
    const DEFAULT_LR: f64 = 0.01;

    hyperparameters!(Momentum => (momentum));

    fn validate(&self) -> Result<(), Error> {
        check::unit_interval("momentum value", self.momentum)
    }

    fn slot_names(&self) -> Vec<&'static str> {
        vec!["velocity"]
    }

    fn step<L: Layout<F>>(&self, step: Step<'_, F, L>, _: &mut ()) {
        let (lr, m) = (step.lr(), self.momentum);
        // μ² and (1 + μ)·lr in f64, as the book's Python computes them.
        let (lr, mu, mu2, ahead): (F, F, F, F) = (cast(lr), cast(m), cast(m * m), cast((1.0 + m) * lr));
        if NESTEROV {
            step.for_each(move |p, g, [v]: &mut [F; 1]| {
                *v = *v * mu - lr * g;
                *p = *p + mu2 * *v - ahead * g;
            });
        } else {
            step.for_each(move |p, g, [v]: &mut [F; 1]| {
                *v = mu * *v - lr * g;
                *p = *p + *v;
            });
        }
    }
}
