//! The crate's error type.

use thiserror::Error;

/// Everything that can go wrong in an optimizer call.
///
/// Errors of an update are returned *before* anything is written: after an `Err`, the
/// parameters and the optimizer's state are exactly as they were before the call. The
/// exceptions say so where they arise: errors of the closure of
/// [`Lbfgs::step`](crate::lbfgs::Lbfgs::step) ([`Error::NonFiniteLoss`] among them), met after
/// the search has moved the parameters, which it leaves at the last iterate whose loss was
/// finite, and step errors of ndoptim-mpi's `ZeroSharded`, whose other ranks' state may then
/// have moved.
#[derive(Debug, Clone, PartialEq, Error)]
#[non_exhaustive]
pub enum Error {
    /// A gradient was given for a key that the parameter map does not hold.
    #[error("gradient for unknown parameter {key:?}: no parameter has that key")]
    UnknownKey {
        /// The gradient's key.
        key: String,
    },
    /// A gradient's shape differs from its parameter's (gradients are never broadcast).
    #[error(
        "shape mismatch for {key:?}: parameter has shape {param_shape:?}, gradient has shape {grad_shape:?}"
    )]
    ShapeMismatch {
        /// The key of the parameter and gradient.
        key: String,
        /// The parameter's shape.
        param_shape: Vec<usize>,
        /// The gradient's shape.
        grad_shape: Vec<usize>,
    },
    /// A parameter no longer has the shape of the optimizer state created for its key.
    #[error(
        "state shape mismatch for {key:?}: optimizer state has shape {state_shape:?}, parameter has shape {param_shape:?} (call reset() after reshaping a parameter)"
    )]
    StateShapeMismatch {
        /// The parameter's key.
        key: String,
        /// The shape of the optimizer state kept for the key.
        state_shape: Vec<usize>,
        /// The parameter's current shape.
        param_shape: Vec<usize>,
    },
    /// An array given by [`named!`](crate::named!) is not contiguous in row-major order, so it
    /// has no slice (a transposed or sliced view; `as_standard_layout()` copies it into one).
    #[error("{which} of {key:?} is not contiguous in row-major order (as_slice gives None)")]
    NotContiguous {
        /// The parameter's key.
        key: String,
        /// Which array: "parameter" or "gradient".
        which: &'static str,
    },
    /// A slice given with a shape ([`crate::Named::from_slices`]) holds another number of elements
    /// than the shape.
    #[error(
        "slice length mismatch for {key:?}: the {which} slice has {len} elements, not the number shape {shape:?} holds"
    )]
    SliceLength {
        /// The parameter's key.
        key: String,
        /// The shape given.
        shape: Vec<usize>,
        /// Which slice: "parameter" or "gradient".
        which: &'static str,
        /// Its length.
        len: usize,
    },
    /// The same key appears twice in one [`crate::Optimizer::update_named`] call.
    #[error("parameter {key:?} appears twice in one update")]
    DuplicateKey {
        /// The key.
        key: String,
    },
    /// An array's shape does not fit the operation.
    #[error("invalid shape {shape:?}: {reason}")]
    InvalidShape {
        /// The shape.
        shape: Vec<usize>,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A checkpoint that cannot be loaded into this optimizer.
    #[error("cannot load checkpoint: {reason}")]
    Checkpoint {
        /// What is wrong with it.
        reason: String,
    },
    /// Processes training together (data-parallel or sharded, `ndoptim-mpi`) disagree: their
    /// keys, shapes or element types differ, or one of them failed in a way the others report.
    #[error("rank {rank}: {reason}")]
    Distributed {
        /// The rank that differs or failed.
        rank: usize,
        /// What differs, naming the first key concerned.
        reason: String,
    },
    /// A gradient holds NaN or infinity, and the optimizer was asked to refuse it.
    #[error("gradient for {key:?} holds NaN or infinity")]
    NonFiniteGradient {
        /// The key of the first such gradient found.
        key: String,
    },
    /// A gradient norm that clipping was asked to refuse when not finite.
    #[error(
        "the total norm of the gradients is {norm}: not finite (some gradient holds NaN or infinity)"
    )]
    NonFiniteNorm {
        /// The norm.
        norm: f64,
    },
    /// An update was asked of an optimizer in evaluation mode (Schedule-Free), whose parameters
    /// hold the evaluation point: call [`Optimizer::train`](crate::Optimizer::train) first.
    #[error(
        "optimizer is in evaluation mode: call train() before update() (the parameters hold the evaluation point)"
    )]
    EvalMode,
    /// A hyperparameter the optimizer does not have was read for a schedule or set
    /// ([`crate::Optimizer::set_hyperparameter`]): a cyclic schedule's momentum for an optimizer
    /// with neither a momentum nor betas, say.
    #[error(
        "{optimizer} has no {hyperparameter} to set or schedule (use an optimizer with one, or leave it off the schedule)"
    )]
    NoHyperparameter {
        /// The optimizer's name.
        optimizer: &'static str,
        /// The hyperparameter asked for.
        hyperparameter: crate::Hyperparameter,
    },
    /// A loss that is NaN or infinite ([`crate::lbfgs::Lbfgs::step`]).
    #[error("the loss is {loss}: not finite")]
    NonFiniteLoss {
        /// The loss.
        loss: f64,
    },
    /// The parameters are not those an optimizer's whole-vector state was built on
    /// ([`crate::lbfgs::Lbfgs`]): a key is new or gone.
    #[error(
        "parameter {key:?} is new or gone since the optimizer's history began (call reset() to start over)"
    )]
    KeySetChanged {
        /// The key.
        key: String,
    },
    /// Options that cannot be combined.
    #[error("Invalid options: {reason}")]
    IncompatibleOptions {
        /// Which options conflict, and why.
        reason: &'static str,
    },
    /// A hyperparameter is outside its valid range.
    #[error("Invalid {name}: {value} (expected {expected})")]
    InvalidHyperparameter {
        /// What the hyperparameter is, in PyTorch's wording ("learning rate", "epsilon value", ...).
        name: &'static str,
        /// The rejected value.
        value: f64,
        /// The range the value must lie in.
        expected: &'static str,
    },
}
