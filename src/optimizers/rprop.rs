//! Rprop: per-element step sizes adapted from gradient signs.

use crate::engine::{Engine, Layout, Rule, Scalar, Step, cast};
use crate::parts::sign;
use crate::{Error, check};

/// Rprop (Riedmiller & Braun, 1993, "A direct adaptive method for faster backpropagation
/// learning"), as `torch.optim.Rprop` computes it: each element keeps its own step size, grown
/// while the gradient keeps its sign and shrunk when it flips.
///
/// ```text
/// g ← −g if maximize
/// g·g_prev > 0:  δ ← clamp(δ·η₊, δmin, δmax)
/// g·g_prev < 0:  δ ← clamp(δ·η₋, δmin, δmax);  g ← 0   (no step after a sign flip)
/// otherwise:     δ ← clamp(δ, δmin, δmax)
/// p ← p − sign(g)·δ;  g_prev ← g
/// ```
///
/// Defaults: learning rate 0.01 (every step size starts there), etas (η₋, η₊) = (0.5, 1.2), step
/// sizes (δmin, δmax) = (1e-6, 50). State: `prev`, `step_size`.
pub type Rprop<F = f32> = Engine<RpropRule, F>;

/// The rule of [`Rprop`].
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct RpropRule {
    etas: [f64; 2],
    step_sizes: [f64; 2],
    maximize: bool,
}

impl Default for RpropRule {
    fn default() -> Self {
        Self {
            etas: [0.5, 1.2],
            step_sizes: [1e-6, 50.0],
            maximize: false,
        }
    }
}

impl<F: Scalar> Rprop<F> {
    /// Sets the factors (η₋, η₊) that shrink and grow step sizes, `0 < η₋ < 1 < η₊`
    /// (default (0.5, 1.2)).
    #[must_use]
    pub fn etas(self, eta_minus: f64, eta_plus: f64) -> Self {
        self.with(|r| r.etas = [eta_minus, eta_plus])
    }

    /// Sets the smallest and largest step sizes, `0 <= min <= max` (default (1e-6, 50)).
    #[must_use]
    pub fn step_sizes(self, min: f64, max: f64) -> Self {
        self.with(|r| r.step_sizes = [min, max])
    }

    /// Maximizes the objective instead of minimizing it (default `false`).
    #[must_use]
    pub fn maximize(self, maximize: bool) -> Self {
        self.with(|r| r.maximize = maximize)
    }
}

impl<F: Scalar> Rule<F> for RpropRule {
    type KeyScalars = ();
    const NAME: &'static str = "Rprop";
    const DEFAULT_LR: f64 = 0.01;

    fn validate(&self) -> Result<(), Error> {
        let ([minus, plus], [min, max]) = (self.etas, self.step_sizes);
        if !(0.0 < minus && minus < 1.0) {
            check::fail("eta_minus value", minus, "a number in (0, 1)")?;
        }
        if !(plus > 1.0 && plus.is_finite()) {
            check::fail("eta_plus value", plus, "a finite number > 1")?;
        }
        check::non_negative("minimal step size", min)?;
        if !(max >= min && max.is_finite()) {
            check::fail("maximal step size", max, "a finite number >= the minimal step size")?;
        }
        Ok(())
    }

    fn slot_names(&self) -> Vec<&'static str> {
        vec!["prev", "step_size"]
    }

    fn initial_value(&self, slot: &str, lr: f64) -> f64 {
        if slot == "step_size" { lr } else { 0.0 }
    }

    fn step<L: Layout<F>>(&self, step: Step<'_, F, L>, _: &mut ()) {
        let ([minus, plus], [lo, hi]): ([F; 2], [F; 2]) =
            (self.etas.map(cast), self.step_sizes.map(cast));
        let maximize = self.maximize;
        step.for_each(move |p, g, [prev, delta]: &mut [F; 2]| {
            let mut g = if maximize { -g } else { g };
            let agree = g * *prev;
            let factor = if agree > F::zero() {
                plus
            } else if agree < F::zero() {
                g = F::zero();
                minus
            } else {
                F::one()
            };
            *delta = (*delta * factor).max(lo).min(hi);
            *p = *p - sign(g) * *delta;
            *prev = g;
        });
    }
}
