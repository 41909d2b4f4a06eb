//! RMSprop, as the book writes it.

use crate::engine::{Engine, Rule, Scalar, cast};
use crate::{Error, check};

/// RMSprop in the book's form: `h ← ρ·h + (1 − ρ)·g²`, `p ← p − lr·g / (√h + ε)`.
///
/// Reference: *Deep Learning from Scratch*, `common/optimizer.py`, class `RMSprop` (Hinton's
/// lecture 6e). Defaults: learning rate 0.01, decay rate ρ = 0.99, ε = 1e-7. State: the moving
/// average of squared gradients `h` (slot `"square_avg"`, PyTorch's name).
///
/// PyTorch's `RMSprop` has the same update with ρ named `alpha` and ε = 1e-8.
pub type RmsProp<F = f32> = Engine<RmsPropRule, F>;

/// The rule of [`RmsProp`].
#[derive(Clone, Debug, PartialEq)]
pub struct RmsPropRule {
    decay_rate: f64,
    eps: f64,
}

impl Default for RmsPropRule {
    fn default() -> Self {
        Self {
            decay_rate: 0.99,
            eps: 1e-7,
        }
    }
}

impl<F: Scalar> RmsProp<F> {
    /// Sets the decay rate ρ of the moving average, in `[0, 1)` (default 0.99).
    #[must_use]
    pub fn decay_rate(self, decay_rate: f64) -> Self {
        self.with(|r| r.decay_rate = decay_rate)
    }

    /// Sets ε, added to `√h` to avoid division by zero (default 1e-7).
    #[must_use]
    pub fn eps(self, eps: f64) -> Self {
        self.with(|r| r.eps = eps)
    }
}

impl<F: Scalar> Rule<F> for RmsPropRule {
    type Slots = [F; 1];
    /// `lr`, ρ, `1 − ρ` and ε.
    type Scalars = [F; 4];
    const NAME: &'static str = "RMSprop";
    const SLOT_NAMES: &'static [&'static str] = &["square_avg"];
    const DEFAULT_LR: f64 = 0.01;

    fn validate(&self) -> Result<(), Error> {
        check::unit_interval("decay rate", self.decay_rate)?;
        check::non_negative("epsilon value", self.eps)
    }

    fn scalars(&self, lr: f64, _step: u64) -> [F; 4] {
        let rho = self.decay_rate;
        [cast(lr), cast(rho), cast(1.0 - rho), cast(self.eps)]
    }

    #[inline(always)]
    fn apply(&[lr, rho, one_minus_rho, eps]: &[F; 4], p: &mut F, g: F, [h]: &mut [F; 1]) {
        *h = *h * rho + one_minus_rho * g * g;
        *p = *p - lr * g / (h.sqrt() + eps);
    }
}
