//! Nesterov's accelerated gradient, as the book writes it.

use crate::engine::{Engine, Rule, Scalar, cast};
use crate::{Error, check};

/// Nesterov's accelerated gradient in the book's form:
/// `v ← μ·v − lr·g`, `p ← p + μ²·v − (1 + μ)·lr·g`.
///
/// Reference: *Deep Learning from Scratch*, `common/optimizer.py`, class `Nesterov` (after
/// Bengio et al., "Advances in optimizing recurrent networks", 2012). Defaults: learning rate
/// 0.01, momentum 0.9. State: the velocity `v` (slot `"velocity"`).
pub type Nesterov<F = f32> = Engine<NesterovRule, F>;

/// The rule of [`Nesterov`].
#[derive(Clone, Debug, PartialEq)]
pub struct NesterovRule {
    momentum: f64,
}

impl Default for NesterovRule {
    fn default() -> Self {
        Self { momentum: 0.9 }
    }
}

impl<F: Scalar> Nesterov<F> {
    /// Sets the momentum `μ`, in `[0, 1)` (default 0.9).
    #[must_use]
    pub fn momentum(self, momentum: f64) -> Self {
        self.with(|r| r.momentum = momentum)
    }
}

impl<F: Scalar> Rule<F> for NesterovRule {
    type Slots = [F; 1];
    /// `lr`, `μ`, `μ²` and `(1 + μ)·lr`, the last two computed in `f64` as the book does.
    type Scalars = [F; 4];
    const NAME: &'static str = "Nesterov";
    const SLOT_NAMES: &'static [&'static str] = &["velocity"];
    const DEFAULT_LR: f64 = 0.01;

    fn validate(&self) -> Result<(), Error> {
        check::unit_interval("momentum value", self.momentum)
    }

    fn scalars(&self, lr: f64, _step: u64) -> [F; 4] {
        let m = self.momentum;
        [cast(lr), cast(m), cast(m * m), cast((1.0 + m) * lr)]
    }

    #[inline(always)]
    fn apply(&[lr, m, m2, step]: &[F; 4], p: &mut F, g: F, [v]: &mut [F; 1]) {
        *v = *v * m - lr * g;
        *p = *p + m2 * *v - step * g;
    }
}
