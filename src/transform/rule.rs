//! A transform as an optimizer's rule.

use super::{Transform, matrix, run};
use crate::engine::{Engine, Layout, Rule, Scope, Step};
use crate::{Error, Hyperparameter, Scalar};

/// The rule of an optimizer made of a [`Transform`] (usually a [`chain!`](crate::chain)): the
/// parameter receives what the transform returns, `p ← p + u`. Build one with [`optimizer`].
#[derive(Clone, Copy, Debug, Default, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct TransformRule<T>(pub T);

/// An optimizer that runs `transform` at learning rate 0.001 (set it with
/// [`Engine::lr`]): optax's `chain(...)` with the engine's maps, checks, state and checkpoints.
/// See [`crate::transform`].
pub fn optimizer<T: Transform<F>, F: Scalar>(transform: T) -> Engine<TransformRule<T>, F> {
    Engine::new(TransformRule(transform))
}

impl<F: Scalar, T: Transform<F>> Rule<F> for TransformRule<T> {
    type KeyScalars = ();
    const NAME: &'static str = "Transform";
    const DEFAULT_LR: f64 = 0.001;
    const SCOPE: Scope = if T::TENSOR {
        Scope::Tensor
    } else if T::REDUCES {
        Scope::Key
    } else {
        Scope::Element
    };

    fn validate(&self) -> Result<(), Error> {
        self.0.validate()
    }

    fn slot_names(&self) -> Vec<&'static str> {
        self.0.slot_names()
    }

    fn scratch(&self, _key: &str, shape: &[usize]) -> usize {
        scratch(&self.0, shape)
    }

    fn step<L: Layout<F>>(&self, step: Step<'_, F, L>, _: &mut ()) {
        run(&self.0, step);
    }

    fn hyperparameter(&self, h: Hyperparameter) -> Option<f64> {
        self.0.hyperparameter(h)
    }

    fn set_hyperparameter(&mut self, h: Hyperparameter, value: f64) {
        self.0.set_hyperparameter(h, value);
    }
}

/// The scratch space a key of `shape` needs for `transform`: for a [tensor](Transform::TENSOR)
/// one, a buffer of one element per parameter element beside what its stage asks for.
pub(crate) fn scratch<F: Scalar, T: Transform<F>>(transform: &T, shape: &[usize]) -> usize {
    if !T::TENSOR {
        return 0;
    }
    let (rows, cols) = matrix(shape);
    (rows * cols).saturating_add(transform.scratch(rows, cols))
}
