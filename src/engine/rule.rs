//! The algorithm side of the engine.

use std::fmt::Debug;

use ndarray::{ArrayRefD, IxDyn};

use super::{Layout, Scalar, Step};
use crate::{Error, Hyperparameter};

/// What the parameters hold, for algorithms that train at one point and evaluate at another
/// (Schedule-Free): see [`Optimizer::eval`](crate::Optimizer::eval).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Mode {
    /// The point gradients are taken at; [`Optimizer::update`](crate::Optimizer::update) works.
    #[default]
    Train,
    /// The point to evaluate; updates are refused until the optimizer is back in training.
    Eval,
}

/// How far one element's update reaches: what a rule reads beyond the element's own parameter,
/// gradient and state (and the key's step count and scalars).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Nothing: the update is elementwise ([`Step::for_each`] and its variants), so a key may be
    /// stepped in pieces, each as a key of its own, with the same result (ZeRO-1 shards keys so).
    #[default]
    Element,
    /// Sums over the key's elements ([`Step::sum`]: trust ratios, StableAdamW's mean), on every
    /// layout.
    Key,
    /// The key's arrays whole ([`Step::parts`]: matrix products, factored state), in the
    /// arithmetic type: such rules run on [`Native`](super::Native) layouts only.
    Tensor,
    /// Sums over every key of the call ([`Rule::measure`], [`Rule::reduce`]: Prodigy's and
    /// D-Adaptation's step size `d`), taken in a first pass before any key is stepped. Within a
    /// key such a rule may also sum ([`Step::sum`]), on every layout; it cannot be stepped in
    /// pieces on separate machines without a reduction of its own.
    Global,
}

/// One optimization algorithm: its hyperparameters, their validation, the state it keeps and its
/// update of one key. [`Engine`](super::Engine) does everything else: map walking, checks, state
/// creation.
///
/// An elementwise rule computes its per-step scalars in [`Rule::step`] and hands a per-element
/// closure to [`Step::for_each`]; see the `optimizers` sources for a few dozen lines each. A rule
/// that needs whole tensors (norms, matrix products) takes them through [`Step::parts`].
pub trait Rule<F: Scalar>: Clone + Debug + Send + Sync {
    /// Scalars kept per key beyond its step count (NAdam's running product of momentum
    /// coefficients, ASGD's step size); `()` for most algorithms.
    type KeyScalars: Clone + Debug + Default + PartialEq + Send + Sync;

    /// The algorithm's name, as its reference spells it.
    const NAME: &'static str;
    /// The default learning rate.
    const DEFAULT_LR: f64;
    /// How far one element's update reaches ([`Scope::Element`] by default). A rule that calls
    /// [`Step::sum`] declares [`Scope::Key`], one that calls [`Step::parts`] [`Scope::Tensor`];
    /// the engine checks it in debug builds.
    const SCOPE: Scope = Scope::Element;

    /// The algorithm's name for this configuration (AdamW for Adam with decoupled weight decay).
    fn name(&self) -> &'static str {
        Self::NAME
    }

    /// Checks every hyperparameter but the learning rate, which [`Engine`](super::Engine) checks.
    fn validate(&self) -> Result<(), Error>;

    /// The names of every state array this configuration may keep per parameter, in order
    /// (PyTorch's names where PyTorch has the algorithm, else optax's).
    fn slot_names(&self) -> Vec<&'static str>;

    /// The state arrays kept for parameter `key` of `shape`, by name and shape: by default every
    /// one of [`Rule::slot_names`] shaped like the parameter. Factored rules, and rules that treat
    /// keys differently by name or rank (Muon), override it.
    fn slots(&self, _key: &str, shape: &[usize]) -> Vec<(&'static str, IxDyn)> {
        self.slot_names()
            .iter()
            .map(|&name| (name, IxDyn(shape)))
            .collect()
    }

    /// How many elements of scratch space a step of `key` needs (matrix products' outputs):
    /// allocated with the key's state, kept between steps, never checkpointed. None by default.
    fn scratch(&self, _key: &str, _shape: &[usize]) -> usize {
        0
    }

    /// The value a new slot starts from, given the learning rate at creation (zero unless the
    /// algorithm says otherwise).
    fn initial_value(&self, _slot: &str, _lr: f64) -> f64 {
        0.0
    }

    /// Updates one key: its parameter in place, its state and its scalars, whatever types the
    /// engine stores them in (`L`).
    fn step<L: Layout<F>>(&self, step: Step<'_, F, L>, scalars: &mut Self::KeyScalars);

    /// The rule's mode, for algorithms whose parameters hold a different point in training and in
    /// evaluation; `None` (the default) for all others.
    fn mode(&self) -> Option<Mode> {
        None
    }

    /// Records the mode after [`Rule::switch`] has moved every key.
    fn set_mode(&mut self, _mode: Mode) {}

    /// Moves one key's parameter to the point of mode `to`, from its state.
    fn switch(&self, _to: Mode, _params: &mut ArrayRefD<F>, _state: &[F]) {}

    /// The value of hyperparameter `h` where the rule has it, for schedules; `None` (the default)
    /// for the others. The engine answers for the learning rate.
    fn hyperparameter(&self, _h: Hyperparameter) -> Option<f64> {
        None
    }

    /// The optimizer-wide scalars a rule of [`Scope::Global`] keeps, by name, with the value each
    /// starts from (Prodigy's `d`, starting at `d0`); none by default. They are kept in `f64`,
    /// checkpointed, and handed to every pass as [`Step::globals`], in this order.
    fn globals(&self) -> Vec<(&'static str, f64)> {
        Vec::new()
    }

    /// The first pass of a rule of [`Scope::Global`]: sums over one key, read without writing
    /// anything ([`Step::sum`]), which the engine adds up over every key of the call, in memory
    /// order, in `f64`. Called before [`Rule::step`] for every key of the call, with the
    /// globals as the last step left them and the step count the key is about to take.
    fn measure<L: Layout<F>>(&self, _step: &mut Step<'_, F, L>) -> [f64; 4] {
        [0.0; 4]
    }

    /// Between the passes of a rule of [`Scope::Global`]: the optimizer-wide scalars from the
    /// sums of [`Rule::measure`] over every key and the optimizer's learning rate. [`Rule::step`]
    /// then sees what it leaves.
    fn reduce(&self, _globals: &mut [f64], _sums: [f64; 4], _lr: f64) {}

    /// Sets the hyperparameter [`Rule::hyperparameter`] reads (called only where it is `Some`;
    /// the engine validates the rule afterwards and restores the old value if it is refused).
    fn set_hyperparameter(&mut self, _h: Hyperparameter, _value: f64) {}
}
