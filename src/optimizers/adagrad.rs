//! AdaGrad, as the book writes it.

use crate::engine::{Engine, Rule, Scalar, cast};
use crate::{Error, check};

/// AdaGrad in the book's form: `h ← h + g²`, `p ← p − lr·g / (√h + ε)`.
///
/// Reference: *Deep Learning from Scratch*, `common/optimizer.py`, class `AdaGrad` (Duchi et al.,
/// 2011). Defaults: learning rate 0.01, ε = 1e-7. State: the sum of squared gradients `h`
/// (slot `"sum"`, PyTorch's name).
///
/// PyTorch's `Adagrad` has the same update with ε = 1e-10 and options this type does not have.
pub type AdaGrad<F = f32> = Engine<AdaGradRule, F>;

/// The rule of [`AdaGrad`].
#[derive(Clone, Debug, PartialEq)]
pub struct AdaGradRule {
    eps: f64,
}

impl Default for AdaGradRule {
    fn default() -> Self {
        Self { eps: 1e-7 }
    }
}

impl<F: Scalar> AdaGrad<F> {
    /// Sets ε, added to `√h` to avoid division by zero (default 1e-7).
    #[must_use]
    pub fn eps(self, eps: f64) -> Self {
        self.with(|r| r.eps = eps)
    }
}

impl<F: Scalar> Rule<F> for AdaGradRule {
    type Slots = [F; 1];
    /// `lr` and ε.
    type Scalars = [F; 2];
    const NAME: &'static str = "AdaGrad";
    const SLOT_NAMES: &'static [&'static str] = &["sum"];
    const DEFAULT_LR: f64 = 0.01;

    fn validate(&self) -> Result<(), Error> {
        check::non_negative("epsilon value", self.eps)
    }

    fn scalars(&self, lr: f64, _step: u64) -> [F; 2] {
        [cast(lr), cast(self.eps)]
    }

    #[inline(always)]
    fn apply(&[lr, eps]: &[F; 2], p: &mut F, g: F, [h]: &mut [F; 1]) {
        *h = *h + g * g;
        *p = *p - lr * g / (h.sqrt() + eps);
    }
}
