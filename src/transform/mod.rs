//! Optimizers composed from small transforms, as optax composes them, run as one fused pass.
//!
//! A [`Transform`] turns the update flowing through it into the next one, one element at a time,
//! with state of its own: [`ScaleByAdam`] turns a gradient into Adam's direction,
//! [`AddDecayedWeights`] adds `λ·p`, [`ScaleByLearningRate`] multiplies by `−lr`. [`chain!`](crate::chain!)
//! composes them, first to last, and [`optimizer`] makes the chain an optimizer: the parameter
//! receives what the last transform returns, `p ← p + u`.
//!
//! ```
//! use std::collections::HashMap;
//! use ndarray::{ArrayD, IxDyn};
//! use ndoptim::transform::{self, AddDecayedWeights, ScaleByAdam, ScaleByLearningRate};
//! use ndoptim::{Optimizer, chain};
//!
//! // optax.adamw: Adam's direction, decoupled weight decay, the learning rate.
//! let mut opt = transform::optimizer::<_, f64>(chain!(
//!     ScaleByAdam::default(),
//!     AddDecayedWeights::new(1e-4),
//!     ScaleByLearningRate,
//! ))
//! .lr(1e-3);
//! let mut params = HashMap::from([("w".to_string(), ArrayD::from_elem(IxDyn(&[3]), 1.0))]);
//! let grads = HashMap::from([("w".to_string(), ArrayD::from_elem(IxDyn(&[3]), 0.5))]);
//! opt.update(&mut params, &grads)?;
//! assert_eq!(opt.slot_names(), ["mu", "nu"]);
//! assert!((params["w"][[0]] - (1.0 - 1e-3 * (1.0 + 1e-4))).abs() < 1e-9);
//! # Ok::<(), ndoptim::Error>(())
//! ```
//!
//! The chain compiles, through generics, into the closure of one fused per-element pass: each
//! transform's per-step scalars are computed once per key ([`Transform::scalars`]), and the pass
//! gathers every transform's state of an element into one array that its
//! [`apply`](Transform::apply)s share. No dynamic dispatch, no temporaries: a chain runs as fast
//! as the same arithmetic written as one rule, on every layout the engine stores (low-precision
//! parameters included), with its checks, checkpoints and groups.
//!
//! Two kinds of transforms see the whole key. One that [reduces](Transform::REDUCES)
//! ([`ScaleByTrustRatio`]) adds a pass that sums over the key before the fused one, on every
//! layout. A [tensor](Transform::TENSOR) transform ([`ScaleByMuon`]'s Newton–Schulz
//! orthogonalisation) maps the key as a matrix between two elementwise passes, through a buffer
//! kept with the key's state; such chains run on parameters stored in `F`.
//!
//! A transform of your own is a type implementing [`Transform`]; the crate's `custom_transform`
//! example writes one and chains it with the built-in ones.

mod adaptive;
mod cautious;
mod chain;
mod contrib;
mod muon;
mod novograd;
mod rule;
mod scale;
mod trust_ratio;

use std::fmt::Debug;

pub use crate::optimizers::{
    ScaleByAdan, ScaleByAdemamix, ScaleByAdopt, ScaleByBelief, ScaleByLion,
};
pub use adaptive::{
    AdamScalars, Debias, RadamScalars, ScaleByAdam, ScaleByAdamax, ScaleByAmsgrad, ScaleByNadam,
    ScaleByRadam, ScaleByYogi, YogiScalars,
};
pub use cautious::{Cautious, CautiousScalars, Rescale};
pub use chain::{Chain, Join};
pub use contrib::{CocobScalars, MadgradScalars, ScaleByCocob, ScaleByMadgrad};
pub use muon::{MuonScalars, ScaleByMuon, ScaleByShape};
pub use novograd::{NovogradScalars, ScaleByNovograd};
pub(crate) use rule::scratch;
pub use rule::{TransformRule, optimizer};
pub use scale::{
    AddDecayedWeights, Clip, Ema, Scale, ScaleByFromage, ScaleByLearningRate,
    ScaleByOptimisticGradient, ScaleBySign, Trace,
};
pub use trust_ratio::{ScaleByTrustRatio, TrustScalars};

use crate::engine::{Layout, Parts, Step};
use crate::tensor::{each_pair, each_param};
use crate::{Error, Hyperparameter, Scalar, Slots};

/// What a transform may read of one key's step, to compute its [`Transform::Scalars`].
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub struct Context<'a> {
    /// The parameter's key.
    pub key: &'a str,
    /// The learning rate of this step (a schedule's current value).
    pub lr: f64,
    /// The key's step count: 1 on its first update.
    pub t: u64,
    /// The weight decay the key's [`Group`](crate::Group) sets, replacing a transform's own.
    pub weight_decay: Option<f64>,
    /// Whether per-tensor trust ratios apply to the key (see
    /// [`Group::trust_ratio`](crate::Group::trust_ratio)).
    pub trust_ratio: bool,
    /// The number of elements of the key's parameter.
    pub len: usize,
    /// The parameter's shape.
    pub shape: &'a [usize],
}

impl<'a> Context<'a> {
    /// The context of `step`.
    pub fn of<F: Scalar, L: Layout<F>>(step: &'a Step<'_, F, L>) -> Self {
        Self {
            key: step.key(),
            lr: step.lr(),
            t: step.t(),
            weight_decay: step.weight_decay(),
            trust_ratio: step.trust_ratio(),
            len: step.len(),
            shape: step.params.shape(),
        }
    }
}

/// One piece of an optimizer: it maps the update flowing through it (the gradient, for the first
/// piece) to the next, element by element, with state of its own.
///
/// Implement it for your own pieces and [`chain!`](crate::chain) them with the built-in ones; the
/// `custom_transform` example shows one. The engine computes [`Transform::scalars`] once per key
/// and step, then calls [`Transform::apply`] for every element, inlined into its fused loop: keep
/// `apply` free of branches that depend on the element, so that the loop vectorizes.
pub trait Transform<F: Scalar>: Clone + Debug + Send + Sync {
    /// The state kept per element: `[F; N]`, one value for each of the `N` names of
    /// [`Transform::slot_names`] (`[F; 0]` for a transform without state). It starts at zero.
    type State: Slots<F>;
    /// What the transform computes once per key and step, before the pass: its coefficients
    /// converted to `F`, bias corrections, the learning rate.
    type Scalars: Copy + Send + Sync;

    /// The names of its state arrays, in the order of [`Transform::State`].
    fn slot_names(&self) -> Vec<&'static str>;

    /// Checks its hyperparameters, naming the one that is invalid; called before any update.
    fn validate(&self) -> Result<(), Error>;

    /// Its scalars for one key's step.
    fn scalars(&self, ctx: &Context<'_>) -> Self::Scalars;

    /// The value of hyperparameter `h` where the transform has it, for schedules
    /// ([`crate::Optimizer::set_hyperparameter`]); `None` by default. In a chain the first piece
    /// that has `h` answers.
    fn hyperparameter(&self, _h: Hyperparameter) -> Option<f64> {
        None
    }

    /// Sets the hyperparameter [`Transform::hyperparameter`] reads (called only where it is
    /// `Some`; the optimizer validates afterwards and restores the old value if it is refused).
    fn set_hyperparameter(&mut self, _h: Hyperparameter, _value: f64) {}

    /// One element: maps the update `u` of parameter value `p` to the next update, reading and
    /// writing the element's `state`.
    fn apply(scalars: &Self::Scalars, p: F, u: F, state: &mut Self::State) -> F;

    /// Whether the transform (or a part of a chain) scales by something computed over the whole
    /// tensor, such as a trust ratio. The engine then runs two passes: one that sums
    /// [`Transform::reduce`] over the elements, without writing anything, and hands the sums to
    /// [`Transform::finish`]; then the step. `false` by default.
    const REDUCES: bool = false;

    /// Whether the transform (or a part of a chain) maps the whole tensor at once, such as
    /// Muon's Newton–Schulz orthogonalisation ([`Transform::tensor`]). The engine then runs
    /// [`Transform::before`] over the elements into a buffer, keeping its changes to the state,
    /// then `tensor` on the buffer, then [`Transform::after`] with the parameter's update. Such
    /// chains run on parameters and state stored in `F` only. `false` by default.
    const TENSOR: bool = false;

    /// For a transform with a per-tensor stage ([reduces](Transform::REDUCES) or
    /// [tensor](Transform::TENSOR)): its elementwise part before that stage, which returns what
    /// the stage receives. A transform that reduces computes it on a copy of the element's state
    /// (the changes are kept by the step's own pass); one that maps the tensor keeps the changes.
    /// Chains combine it; the default, [`Transform::apply`], is right for every transform
    /// without such a stage.
    #[inline(always)]
    fn before(scalars: &Self::Scalars, p: F, u: F, state: &mut Self::State) -> F {
        Self::apply(scalars, p, u, state)
    }

    /// For a transform that [reduces](Transform::REDUCES): what one element adds to the two
    /// per-tensor sums, given its parameter and what [`Transform::before`] returns (`[p², u²]`
    /// for a trust ratio).
    #[inline(always)]
    fn reduce(_p: F, _u: F) -> [F; 2] {
        [F::zero(); 2]
    }

    /// For a transform that [reduces](Transform::REDUCES): completes its scalars from the sums
    /// of [`Transform::reduce`] over the key.
    fn finish(_scalars: &mut Self::Scalars, _sums: [F; 2]) {}

    /// For a [tensor](Transform::TENSOR) transform: the elements of scratch space
    /// [`Transform::tensor`] needs for a `rows × cols` key, kept with the key's state and never
    /// checkpointed. None by default.
    fn scratch(&self, _rows: usize, _cols: usize) -> usize {
        0
    }

    /// For a [tensor](Transform::TENSOR) transform: maps `u`, what [`Transform::before`]
    /// returned for every element, in row-major order and read as a `rows × cols` matrix
    /// ([`matrix`]), in place.
    fn tensor(
        &self,
        _scalars: &Self::Scalars,
        _u: &mut [F],
        _rows: usize,
        _cols: usize,
        _scratch: &mut [F],
    ) {
    }

    /// For a [tensor](Transform::TENSOR) transform: its elementwise part after
    /// [`Transform::tensor`], from the element `u` of its result (the transform's own `u` by
    /// default). Chains append the transforms that follow.
    #[inline(always)]
    fn after(_scalars: &Self::Scalars, _p: F, u: F, _state: &mut Self::State) -> F {
        u
    }
}

/// How a [tensor](Transform::TENSOR) transform and Muon read a key of `shape` as a matrix:
/// `shape[0]` rows and the product of the other axes as columns (convolution filters as
/// `out × in·kh·kw`); a vector is one column, a scalar `1 × 1`. `(0, 0)` if the size overflows.
pub fn matrix(shape: &[usize]) -> (usize, usize) {
    match shape.split_first() {
        None => (1, 1),
        Some((&rows, rest)) => match rest.iter().try_fold(1usize, |n, &d| n.checked_mul(d)) {
            Some(cols) if rows.checked_mul(cols).is_some() => (rows, cols),
            _ => (0, 0),
        },
    }
}

/// Runs `transform` over one key: `p ← p + apply(p, g)` for every element, in one fused pass,
/// after a reduction pass if the transform needs per-tensor sums; a transform with a
/// [tensor](Transform::TENSOR) stage runs in three ([`Transform::TENSOR`]).
#[inline(always)]
pub(crate) fn run<F: Scalar, L: Layout<F>, T: Transform<F>>(
    transform: &T,
    mut step: Step<'_, F, L>,
) {
    const {
        assert!(
            !(T::REDUCES && T::TENSOR),
            "a chain reduces or maps the tensor, not both"
        )
    };
    let mut scalars = transform.scalars(&Context::of(&step));
    if T::TENSOR {
        return whole(transform, &scalars, step);
    }
    if T::REDUCES {
        let before = scalars;
        let sums = step.sum(move |p, g, state: &T::State| {
            let mut copy = *state;
            T::reduce(p, T::before(&before, p, g, &mut copy))
        });
        T::finish(&mut scalars, sums);
    }
    step.for_each(
        #[inline(always)]
        move |p, g, state: &mut T::State| *p = *p + T::apply(&scalars, *p, g, state),
    );
}

/// The three passes of a [tensor](Transform::TENSOR) transform: `before` into the first `n`
/// elements of the key's scratch space, `tensor` on them, `after` into the parameter.
fn whole<F: Scalar, L: Layout<F>, T: Transform<F>>(
    transform: &T,
    s: &T::Scalars,
    step: Step<'_, F, L>,
) {
    let (rows, cols) = matrix(step.params.shape());
    let Parts {
        params,
        grads,
        state,
        scratch,
    } = step.parts();
    let n = params.len();
    if n == 0 || scratch.len() < n {
        return; // the scratch space is sized by `TransformRule::scratch`: only an empty key
    }
    let (u, scratch) = scratch.split_at_mut(n);
    each_pair(params, grads, |i, p, g| {
        let mut slots = T::State::gather(state, n, i);
        u[i] = T::before(s, *p, g, &mut slots);
        slots.scatter(state, n, i);
    });
    transform.tensor(s, u, rows, cols, scratch);
    each_param(params, |i, p| {
        let mut slots = T::State::gather(state, n, i);
        *p = *p + T::after(s, *p, u[i], &mut slots);
        slots.scatter(state, n, i);
    });
}

/// `scalars` with the entries at `at` (bias corrections) replaced by their reciprocals in `F`, to
/// multiply by: XLA may compile optax's division by a scalar so, and it spares a division per
/// element. Used where it keeps every reference file's error the same or lower (AdaBelief; Adam's
/// own scalars do the same): Adan's and AdEMAMix's errors moved both ways, so they divide.
pub(crate) fn reciprocals<F: Scalar, const N: usize, const K: usize>(
    mut scalars: [F; N],
    at: [usize; K],
) -> [F; N] {
    for i in at {
        scalars[i] = F::one() / scalars[i];
    }
    scalars
}
