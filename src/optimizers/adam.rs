//! Adam, as the book writes it.

use crate::engine::{Engine, Rule, Scalar, cast};
use crate::{Error, check};

/// Adam in the book's form, with bias correction folded into the step size:
///
/// ```text
/// m ← m + (1 − β₁)·(g − m)
/// v ← v + (1 − β₂)·(g² − v)
/// lr_t = lr · √(1 − β₂ᵗ) / (1 − β₁ᵗ)
/// p ← p − lr_t·m / (√v + ε)
/// ```
///
/// Reference: *Deep Learning from Scratch*, `common/optimizer.py`, class `Adam` (Kingma & Ba,
/// 2015). Defaults: learning rate 0.001, β₁ = 0.9, β₂ = 0.999, ε = 1e-7. State: the moments `m`
/// and `v` (slots `"exp_avg"` and `"exp_avg_sq"`, PyTorch's names) and a step count `t` per key,
/// so a key first updated later starts its own bias correction at `t = 1`.
///
/// PyTorch's `Adam` adds ε to the bias-corrected `√v̂ = √(v / (1 − β₂ᵗ))` instead of to `√v`,
/// with ε = 1e-8: the two differ where `√v` is comparable to ε.
///
/// ```
/// use ndoptim::{Adam, Optimizer};
/// let adam: Adam<f32> = Adam::default().lr(3e-4).beta2(0.99);
/// assert_eq!(adam.learning_rate(), 3e-4);
/// ```
pub type Adam<F = f32> = Engine<AdamRule, F>;

/// The rule of [`Adam`].
#[derive(Clone, Debug, PartialEq)]
pub struct AdamRule {
    beta1: f64,
    beta2: f64,
    eps: f64,
}

impl Default for AdamRule {
    fn default() -> Self {
        Self {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-7,
        }
    }
}

impl<F: Scalar> Adam<F> {
    /// Sets β₁, the decay of the first moment, in `[0, 1)` (default 0.9).
    #[must_use]
    pub fn beta1(self, beta1: f64) -> Self {
        self.with(|r| r.beta1 = beta1)
    }

    /// Sets β₂, the decay of the second moment, in `[0, 1)` (default 0.999).
    #[must_use]
    pub fn beta2(self, beta2: f64) -> Self {
        self.with(|r| r.beta2 = beta2)
    }

    /// Sets ε, added to `√v` to avoid division by zero (default 1e-7).
    #[must_use]
    pub fn eps(self, eps: f64) -> Self {
        self.with(|r| r.eps = eps)
    }
}

impl<F: Scalar> Rule<F> for AdamRule {
    type Slots = [F; 2];
    /// `lr_t`, `1 − β₁`, `1 − β₂` and ε.
    type Scalars = [F; 4];
    const NAME: &'static str = "Adam";
    const SLOT_NAMES: &'static [&'static str] = &["exp_avg", "exp_avg_sq"];
    const DEFAULT_LR: f64 = 0.001;

    fn validate(&self) -> Result<(), Error> {
        check::unit_interval("beta parameter at index 0", self.beta1)?;
        check::unit_interval("beta parameter at index 1", self.beta2)?;
        check::non_negative("epsilon value", self.eps)
    }

    fn scalars(&self, lr: f64, step: u64) -> [F; 4] {
        let t = step as f64;
        let lr_t = lr * (1.0 - self.beta2.powf(t)).sqrt() / (1.0 - self.beta1.powf(t));
        [cast(lr_t), cast(1.0 - self.beta1), cast(1.0 - self.beta2), cast(self.eps)]
    }

    #[inline(always)]
    fn apply(&[lr_t, c1, c2, eps]: &[F; 4], p: &mut F, g: F, [m, v]: &mut [F; 2]) {
        *m = *m + c1 * (g - *m);
        *v = *v + c2 * (g * g - *v);
        *p = *p - lr_t * *m / (v.sqrt() + eps);
    }
}
