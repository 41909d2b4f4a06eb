//! SGD at the Polyak step size, from the loss and the gradient's norm.

use crate::engine::{Engine, Layout, Rule, Scalar, Scope, Step, cast};
use crate::{Error, check};

/// SGD with the Polyak step size (Loizou et al., 2021; "sps+": Garrigos et al., 2023), as
/// optax's `polyak_sgd` computes it, `chain(sgd(learning_rate=scaling), scale_by_polyak(...))`:
///
/// ```text
/// u = −s·g;   gap = f(p) − f*   (max(gap, 0) for "sps+")
/// η = 0 if ‖u‖² + ε ≤ 2.2e-16, else min(gap / (‖u‖² + ε), η_max)     (‖u‖ over every key)
/// p ← p + η·u
/// ```
///
/// where `s` is the learning rate (optax's `scaling`, schedules included) and `f(p)` the loss at
/// the parameters of the update: set it before each update with
/// [`Optimizer::set_hyperparameter`](crate::Optimizer::set_hyperparameter)`(Hyperparameter::Loss, value)`
/// (an update before any is [`Error::InvalidHyperparameter`]). The step uses the norm of the
/// already-scaled update, as optax's does. Defaults (optax's): learning rate (scaling) 1, maximal
/// step η_max 1, f* 0, ε 0, [`PolyakVariant::Sps`]. No state; globals (see
/// [`Engine::global`]): the last step size `step`.
///
/// ```
/// use std::collections::HashMap;
/// use ndarray::{ArrayD, IxDyn};
/// use ndoptim::{Hyperparameter, Optimizer, PolyakSgd};
///
/// // f(w) = w²/2 from w = 2: the Polyak step f/‖g‖² = 0.5 halves w.
/// let mut w = HashMap::from([("w".to_string(), ArrayD::from_elem(IxDyn(&[1]), 2.0f64))]);
/// let mut opt = PolyakSgd::default();
/// for _ in 0..3 {
///     let (loss, grad) = (w["w"][0] * w["w"][0] / 2.0, w["w"].clone());
///     opt.set_hyperparameter(Hyperparameter::Loss, loss)?;
///     opt.update(&mut w, &HashMap::from([("w".to_string(), grad)]))?;
/// }
/// assert_eq!(w["w"][0], 0.25);
/// # Ok::<(), ndoptim::Error>(())
/// ```
pub type PolyakSgd<F = f32> = Engine<PolyakSgdRule, F>;

/// Which gap [`PolyakSgd`] divides (optax's `variant`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum PolyakVariant {
    /// `f(p) − f*` (`"sps"`).
    #[default]
    Sps,
    /// `max(f(p) − f*, 0)` (`"sps+"`).
    SpsPlus,
}

/// The rule of [`PolyakSgd`].
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct PolyakSgdRule {
    max_learning_rate: f64,
    f_min: f64,
    eps: f64,
    variant: PolyakVariant,
    /// The loss of the next update (NaN until set).
    loss: f64,
}

impl Default for PolyakSgdRule {
    fn default() -> Self {
        Self {
            max_learning_rate: 1.0,
            f_min: 0.0,
            eps: 0.0,
            variant: PolyakVariant::Sps,
            loss: f64::NAN,
        }
    }
}

setters!(PolyakSgd {
    /// Sets the largest step η_max, `>= 0` (default 1).
    max_learning_rate: f64,
    /// Sets f*, the guess of the objective's minimum (default 0).
    f_min: f64,
    /// Sets ε, added to the squared norm, `>= 0` (default 0).
    eps: f64,
    /// Sets the variant (default [`PolyakVariant::Sps`]).
    variant: PolyakVariant,
    /// Sets the loss the next update uses, as `set_hyperparameter(Hyperparameter::Loss, loss)`
    /// does between updates.
    loss: f64,
});

impl<F: Scalar> Rule<F> for PolyakSgdRule {
    type KeyScalars = ();
    const NAME: &'static str = "polyak_sgd";
    const DEFAULT_LR: f64 = 1.0;
    const SCOPE: Scope = Scope::Global;

    hyperparameters!(Loss => (loss));

    fn validate(&self) -> Result<(), Error> {
        check::non_negative("max_learning_rate value", self.max_learning_rate)?;
        check::finite("f_min value", self.f_min)?;
        check::non_negative("epsilon value", self.eps)?;
        check::finite("loss value", self.loss)
    }

    fn slot_names(&self) -> Vec<&'static str> {
        Vec::new()
    }

    fn globals(&self) -> Vec<(&'static str, f64)> {
        vec![("step", 0.0)]
    }

    /// `‖u‖²` of the key, `u = −s·g` rounded as optax rounds it.
    fn measure<L: Layout<F>>(&self, step: &mut Step<'_, F, L>) -> [f64; 4] {
        let neg_lr: F = cast(-step.lr());
        let [squares] = step.sum(move |_, g, _: &[F; 0]| {
            let u = neg_lr * g;
            [u * u]
        });
        [squares.to_f64().unwrap_or(f64::NAN), 0.0, 0.0, 0.0]
    }

    fn reduce(&self, globals: &mut [f64], [squares, ..]: [f64; 4], _: f64) {
        let gap = self.loss - self.f_min;
        let gap = match self.variant {
            PolyakVariant::Sps => gap,
            PolyakVariant::SpsPlus => gap.max(0.0),
        };
        let denominator = squares + self.eps;
        globals[0] = if denominator <= f64::EPSILON {
            0.0
        } else {
            (gap / denominator).min(self.max_learning_rate)
        };
    }

    fn step<L: Layout<F>>(&self, step: Step<'_, F, L>, _: &mut ()) {
        let (eta, neg_lr): (F, F) = (cast(step.globals()[0]), cast(-step.lr()));
        step.for_each(move |p, g, _: &mut [F; 0]| *p = *p + eta * (neg_lr * g));
    }
}
