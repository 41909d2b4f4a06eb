//! The [`Optimizer`] trait, and the [`Hyperparameter`]s it lets schedules move.

use std::fmt::{self, Debug};

use crate::{Element, Error, Named, Params, Scope};

/// A stateful optimizer that updates a map of parameters in place from a map of gradients.
///
/// Object safe, so optimizers chosen at run time can sit side by side:
///
/// ```
/// use ndoptim::{AdaGrad, Adam, Momentum, Optimizer, Sgd};
/// let optimizers: Vec<Box<dyn Optimizer<f32>>> = vec![
///     Box::new(Sgd::default()),
///     Box::new(Momentum::default()),
///     Box::new(AdaGrad::default()),
///     Box::new(Adam::default()),
/// ];
/// let names: Vec<_> = optimizers.iter().map(|o| o.name()).collect();
/// assert_eq!(names, ["SGD", "Momentum", "AdaGrad", "Adam"]);
/// ```
///
/// No method has a default, so that a wrapper cannot forget to pass one on to the optimizer it
/// wraps: [`forward_optimizer!`](crate::forward_optimizer) writes the usual forwarding.
pub trait Optimizer<F: Element>: Debug {
    /// Updates every parameter that has a gradient, in place.
    ///
    /// - A key of `grads` must be a key of `params`, with a gradient of exactly the parameter's
    ///   shape (never broadcast), and, if the optimizer already holds state for that key, the
    ///   parameter must still have the state's shape.
    /// - A key of `params` without a gradient is left untouched, its state included (a frozen
    ///   parameter).
    /// - State for a key is created, zero-filled unless the algorithm says otherwise, the first
    ///   time the key is updated; each key counts its own steps.
    /// - Any memory layout (C order, Fortran order, non-contiguous) gives the same result.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownKey`], [`Error::ShapeMismatch`], [`Error::StateShapeMismatch`], or
    /// [`Error::InvalidHyperparameter`]. The whole call is checked before anything is written:
    /// after an error, parameters and state are exactly as they were.
    fn update(&mut self, params: &mut Params<F>, grads: &Params<F>) -> Result<(), Error>;

    /// The current learning rate.
    fn learning_rate(&self) -> f64;

    /// Sets the learning rate, for schedules; state is kept.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidHyperparameter`] if `lr` is negative or not finite; the learning rate is
    /// then unchanged.
    fn set_learning_rate(&mut self, lr: f64) -> Result<(), Error>;

    /// The current value of hyperparameter `h`, `None` if the optimizer has none such (PyTorch's
    /// test for `cycle_momentum` is `hyperparameter(Hyperparameter::Momentum).is_some()`).
    fn hyperparameter(&self, h: Hyperparameter) -> Option<f64>;

    /// Sets hyperparameter `h`, for schedules ([`crate::schedule`]); state is kept.
    ///
    /// # Errors
    ///
    /// [`Error::NoHyperparameter`] for an optimizer without `h`; [`Error::InvalidHyperparameter`]
    /// for a value its algorithm refuses; [`Error::IncompatibleOptions`] for a change of the state
    /// an optimizer keeps (SGD and RMSprop keep a momentum buffer only with a non-zero momentum)
    /// once it holds state. The optimizer is then unchanged.
    fn set_hyperparameter(&mut self, h: Hyperparameter, value: f64) -> Result<(), Error>;

    /// Drops all per-key state (moments, velocities, step counts); hyperparameters are kept.
    fn reset(&mut self);

    /// The algorithm's name, as its reference spells it (`"SGD"`, `"Adam"`, ...).
    fn name(&self) -> &'static str;

    /// How far one element's update reaches ([`Scope`]): [`Scope::Element`] when each element's
    /// update depends only on that element, so that a key may be stepped in pieces with the same
    /// result (ndoptim-mpi's ZeRO-1 splits such optimizers' keys evenly across ranks). A wrapper
    /// answers for the optimizer it wraps together with its own work.
    fn scope(&self) -> Scope;

    /// The optimizer-wide scalar `name` of an optimizer whose step size is a sum over every key
    /// (Prodigy's and D-Adaptation's `d`, see [`Scope::Global`]); `None` for others, and before
    /// the first update.
    fn global(&self, name: &str) -> Option<f64>;

    /// Updates parameters given by name as views or slices ([`Named`]), wherever the model keeps
    /// them: the same engine, checks and results as [`Optimizer::update`] (see [`mod@crate::named`]'s
    /// rules on keys and layouts).
    ///
    /// # Errors
    ///
    /// As [`Optimizer::update`], with [`Error::DuplicateKey`] for a key given twice in place of
    /// [`Error::UnknownKey`]; nothing is changed after an error.
    fn update_named(&mut self, params: &mut [Named<'_, F>]) -> Result<(), Error>;

    /// Puts the parameters at the point to evaluate the model at. A no-op for every optimizer
    /// but those that train at one point and evaluate at another (Schedule-Free, whose parameters
    /// move from the gradient point `y` to the average `x`); after it, [`Optimizer::update`]
    /// returns [`Error::EvalMode`] until [`Optimizer::train`] is called. Calling it twice is a
    /// no-op, as in the reference. So a training loop can call `eval` and `train` around
    /// evaluation whatever the optimizer.
    ///
    /// # Errors
    ///
    /// [`Error::StateShapeMismatch`] if a parameter's shape disagrees with its state; nothing is
    /// changed then.
    fn eval(&mut self, params: &mut Params<F>) -> Result<(), Error>;

    /// Puts the parameters back at the training point after [`Optimizer::eval`] (a no-op
    /// otherwise).
    ///
    /// # Errors
    ///
    /// As [`Optimizer::eval`].
    fn train(&mut self, params: &mut Params<F>) -> Result<(), Error>;

    /// [`Optimizer::eval`] for parameters given by name (their gradients are not read).
    ///
    /// # Errors
    ///
    /// As [`Optimizer::eval`].
    fn eval_named(&mut self, params: &mut [Named<'_, F>]) -> Result<(), Error>;

    /// [`Optimizer::train`] for parameters given by name.
    ///
    /// # Errors
    ///
    /// As [`Optimizer::eval`].
    fn train_named(&mut self, params: &mut [Named<'_, F>]) -> Result<(), Error>;
}

/// A boxed optimizer is an optimizer: wrappers ([`crate::accumulate::MultiSteps`]) take one
/// chosen at run time.
impl<F: Element> Optimizer<F> for Box<dyn Optimizer<F>> {
    fn update(&mut self, params: &mut Params<F>, grads: &Params<F>) -> Result<(), Error> {
        (**self).update(params, grads)
    }

    fn learning_rate(&self) -> f64 {
        (**self).learning_rate()
    }

    fn set_learning_rate(&mut self, lr: f64) -> Result<(), Error> {
        (**self).set_learning_rate(lr)
    }

    fn hyperparameter(&self, h: Hyperparameter) -> Option<f64> {
        (**self).hyperparameter(h)
    }

    fn set_hyperparameter(&mut self, h: Hyperparameter, value: f64) -> Result<(), Error> {
        (**self).set_hyperparameter(h, value)
    }

    fn reset(&mut self) {
        (**self).reset();
    }

    fn name(&self) -> &'static str {
        (**self).name()
    }

    fn scope(&self) -> Scope {
        (**self).scope()
    }

    fn global(&self, name: &str) -> Option<f64> {
        (**self).global(name)
    }

    fn update_named(&mut self, params: &mut [Named<'_, F>]) -> Result<(), Error> {
        (**self).update_named(params)
    }

    fn eval(&mut self, params: &mut Params<F>) -> Result<(), Error> {
        (**self).eval(params)
    }

    fn train(&mut self, params: &mut Params<F>) -> Result<(), Error> {
        (**self).train(params)
    }

    fn eval_named(&mut self, params: &mut [Named<'_, F>]) -> Result<(), Error> {
        (**self).eval_named(params)
    }

    fn train_named(&mut self, params: &mut [Named<'_, F>]) -> Result<(), Error> {
        (**self).train_named(params)
    }
}

/// A numeric hyperparameter that may change during training, by hand or on a schedule
/// ([`Optimizer::set_hyperparameter`], [`crate::schedule::Inject`]): optax's
/// `inject_hyperparams`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum Hyperparameter {
    /// The learning rate, as [`Optimizer::learning_rate`] reads it.
    LearningRate,
    /// PyTorch's `momentum` (SGD, RMSprop, Muon, ...), or the first of the `betas` (the Adam
    /// family, Lion, ...; optax's `b1`): what PyTorch's cyclic schedules move.
    Momentum,
    /// The second of the `betas` (optax's `b2`).
    Beta2,
    /// The weight decay coefficient, however the algorithm applies it.
    WeightDecay,
    /// The objective's value at the parameters of the next update, for the optimizers whose step
    /// depends on it ([`PolyakSgd`](crate::PolyakSgd)): set it before each update, as optax
    /// passes `value=` to `update`.
    Loss,
}

impl fmt::Display for Hyperparameter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Hyperparameter::LearningRate => "learning rate",
            Hyperparameter::Momentum => "momentum (or beta1)",
            Hyperparameter::Beta2 => "beta2",
            Hyperparameter::WeightDecay => "weight decay",
            Hyperparameter::Loss => "loss",
        })
    }
}
