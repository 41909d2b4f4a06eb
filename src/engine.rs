//! The one update engine: map walking, key and shape checks, lazy per-key state, and the fused
//! per-element pass. Algorithms plug in as a [`Rule`].

use std::collections::HashMap;
use std::fmt::Debug;

use ndarray::{ArrayD, ArrayViewD, ArrayViewMutD, Dimension, IxDyn};
use num_traits::Float;

use crate::{Error, Optimizer, check};

/// A map of named arrays: the parameters of a model, or their gradients.
pub type Params<F> = HashMap<String, ArrayD<F>>;

/// The element types the optimizers run on: `f32` and `f64` (any [`Float`] that is also
/// `Debug + Send + Sync`).
pub trait Scalar: Float + Debug + Send + Sync + 'static {}

impl<T: Float + Debug + Send + Sync + 'static> Scalar for T {}

/// Converts a hyperparameter (kept in `f64`) to the element type, rounding once.
#[inline]
pub(crate) fn cast<F: Scalar>(x: f64) -> F {
    F::from(x).unwrap_or_else(F::nan)
}

/// The per-element state of an algorithm: `[F; N]` for an algorithm with `N` state arrays per
/// parameter (`[F; 0]` for plain SGD, `[F; 2]` for Adam's two moments).
pub trait Slots<F: Scalar>: Copy + Send + Sync + AsRef<[F]> + 'static {
    /// How many state arrays a parameter carries.
    const COUNT: usize;

    /// Every slot set to `x`.
    fn splat(x: F) -> Self;

    /// Runs `f` over every element of contiguous, equally long `params` and `grads`, with the
    /// element's slots gathered from `state` (slot `j` of element `i` lives at `state[j * n + i]`).
    fn for_each_slice(
        params: &mut [F],
        grads: &[F],
        state: &mut [F],
        f: impl FnMut(&mut F, F, &mut Self),
    );

    /// Like [`Slots::for_each_slice`], for arrays of any memory layout: elements are visited in
    /// logical (row-major) order, which is the order of the state.
    fn for_each_logical(
        params: ArrayViewMutD<'_, F>,
        grads: ArrayViewD<'_, F>,
        state: &mut [F],
        f: impl FnMut(&mut F, F, &mut Self),
    );
}

impl<F: Scalar, const N: usize> Slots<F> for [F; N] {
    const COUNT: usize = N;

    fn splat(x: F) -> Self {
        [x; N]
    }

    #[inline]
    fn for_each_slice(
        params: &mut [F],
        grads: &[F],
        state: &mut [F],
        mut f: impl FnMut(&mut F, F, &mut Self),
    ) {
        let n = params.len();
        let grads = &grads[..n];
        let mut cols = columns::<F, N>(state, n);
        for i in 0..n {
            element(&mut cols, i, &mut params[i], grads[i], &mut f);
        }
    }

    fn for_each_logical(
        mut params: ArrayViewMutD<'_, F>,
        grads: ArrayViewD<'_, F>,
        state: &mut [F],
        mut f: impl FnMut(&mut F, F, &mut Self),
    ) {
        let n = params.len();
        let mut cols = columns::<F, N>(state, n);
        for (i, (p, &g)) in params.iter_mut().zip(grads.iter()).enumerate() {
            element(&mut cols, i, p, g, &mut f);
        }
    }
}

/// Splits a key's state into its `N` slot arrays of length `n` each.
#[inline]
fn columns<F, const N: usize>(state: &mut [F], n: usize) -> [&mut [F]; N] {
    let (mut rest, _) = state.split_at_mut(N * n);
    std::array::from_fn(|_| {
        let (head, tail) = std::mem::take(&mut rest).split_at_mut(n);
        rest = tail;
        head
    })
}

/// Gathers element `i`'s slots, applies the rule, scatters them back. Fixed `N` lets the
/// compiler keep the slots in registers and vectorise the loop around it.
#[inline(always)]
fn element<F: Copy, const N: usize>(
    cols: &mut [&mut [F]; N],
    i: usize,
    p: &mut F,
    g: F,
    f: &mut impl FnMut(&mut F, F, &mut [F; N]),
) {
    let mut s: [F; N] = std::array::from_fn(|j| cols[j][i]);
    f(p, g, &mut s);
    for (col, v) in cols.iter_mut().zip(s) {
        col[i] = v;
    }
}

/// One optimization algorithm: its hyperparameters, their validation, the scalars it derives once
/// per key and step, and its per-element rule. [`Engine`] does everything else.
///
/// Implement this to add an algorithm; see the `optimizers` sources for a few dozen lines each.
pub trait Rule<F: Scalar>: Clone + Debug + Send + Sync {
    /// The per-element state, `[F; N]`.
    type Slots: Slots<F>;
    /// What [`Rule::scalars`] computes once per key and step and [`Rule::apply`] reads.
    type Scalars: Copy;

    /// The algorithm's name, as its reference spells it.
    const NAME: &'static str;
    /// The names of the state slots, in order (PyTorch's names where PyTorch has the algorithm).
    const SLOT_NAMES: &'static [&'static str];
    /// The default learning rate.
    const DEFAULT_LR: f64;

    /// Checks every hyperparameter but the learning rate, which [`Engine`] checks.
    fn validate(&self) -> Result<(), Error>;

    /// The value a newly created slot holds (zero unless the algorithm says otherwise).
    fn initial_slots(&self) -> Self::Slots {
        Self::Slots::splat(F::zero())
    }

    /// The scalars of step `step` (1 for a key's first update) at learning rate `lr`.
    fn scalars(&self, lr: f64, step: u64) -> Self::Scalars;

    /// Updates one parameter element `p` from its gradient `g` and its slots `s`.
    fn apply(k: &Self::Scalars, p: &mut F, g: F, s: &mut Self::Slots);
}

/// A key's optimizer state: its shape when created, its step count and its slot arrays, stored
/// slot after slot in one allocation so that one lookup finds all of it.
#[derive(Clone, Debug, PartialEq)]
struct KeyState<F> {
    shape: IxDyn,
    step: u64,
    slots: Vec<F>,
}

/// An optimizer: a [`Rule`] with a learning rate and per-key state, driven by one generic engine.
///
/// The crate's optimizers are aliases of this type ([`crate::Adam`] is `Engine<AdamRule, F>`), so
/// everything here is available on each of them.
#[derive(Clone, Debug)]
pub struct Engine<R, F> {
    rule: R,
    lr: f64,
    state: HashMap<String, KeyState<F>>,
}

impl<R: Rule<F> + Default, F: Scalar> Default for Engine<R, F> {
    fn default() -> Self {
        Self::new(R::default())
    }
}

impl<R: Rule<F>, F: Scalar> Engine<R, F> {
    /// An optimizer running `rule` at the rule's default learning rate, with no state yet.
    pub fn new(rule: R) -> Self {
        Self {
            rule,
            lr: R::DEFAULT_LR,
            state: HashMap::new(),
        }
    }

    /// Sets the learning rate (checked, like every hyperparameter, by each
    /// [`update`](Optimizer::update); [`Optimizer::set_learning_rate`] checks at once).
    #[must_use]
    pub fn lr(mut self, lr: f64) -> Self {
        self.lr = lr;
        self
    }

    /// The algorithm and its hyperparameters.
    pub fn rule(&self) -> &R {
        &self.rule
    }

    /// Changes the rule's hyperparameters: the body of every builder method.
    pub(crate) fn with(mut self, set: impl FnOnce(&mut R)) -> Self {
        set(&mut self.rule);
        self
    }

    /// Checks every hyperparameter, learning rate included, without updating anything.
    pub fn validate(&self) -> Result<(), Error> {
        check::learning_rate(self.lr)?;
        self.rule.validate()
    }

    /// How many updates `key` has received since its state was created (`None` before the first).
    pub fn step_count(&self, key: &str) -> Option<u64> {
        self.state.get(key).map(|s| s.step)
    }

    /// The keys that have state, in no particular order.
    pub fn state_keys(&self) -> impl Iterator<Item = &str> {
        self.state.keys().map(String::as_str)
    }

    /// The names of this algorithm's state slots, in order.
    pub fn slot_names(&self) -> &'static [&'static str] {
        R::SLOT_NAMES
    }

    /// A view of state slot `slot` (one of [`Engine::slot_names`]) of `key`, shaped like the
    /// parameter; `None` if the key has no state yet or the algorithm has no such slot.
    pub fn slot(&self, key: &str, slot: &str) -> Option<ArrayViewD<'_, F>> {
        let j = R::SLOT_NAMES.iter().position(|&s| s == slot)?;
        let st = self.state.get(key)?;
        let n = st.shape.size();
        ArrayViewD::from_shape(st.shape.clone(), &st.slots[j * n..(j + 1) * n]).ok()
    }

    /// Every check of an update, before anything is written.
    fn check(&self, params: &Params<F>, grads: &Params<F>) -> Result<(), Error> {
        self.validate()?;
        for (key, g) in grads {
            let p = params
                .get(key)
                .ok_or_else(|| Error::UnknownKey { key: key.clone() })?;
            if p.shape() != g.shape() {
                return Err(Error::ShapeMismatch {
                    key: key.clone(),
                    param_shape: p.shape().to_vec(),
                    grad_shape: g.shape().to_vec(),
                });
            }
            if let Some(st) = self.state.get(key) {
                if st.shape.slice() != p.shape() {
                    return Err(Error::StateShapeMismatch {
                        key: key.clone(),
                        state_shape: st.shape.slice().to_vec(),
                        param_shape: p.shape().to_vec(),
                    });
                }
            }
        }
        Ok(())
    }
}

impl<R: Rule<F>, F: Scalar> Optimizer<F> for Engine<R, F> {
    fn update(&mut self, params: &mut Params<F>, grads: &Params<F>) -> Result<(), Error> {
        self.check(params, grads)?;
        for (key, g) in grads {
            let Some(p) = params.get_mut(key) else {
                continue; // unreachable: `check` found every key
            };
            if !self.state.contains_key(key) {
                let n = p.len();
                let mut slots = Vec::with_capacity(R::Slots::COUNT * n);
                for &v in self.rule.initial_slots().as_ref() {
                    slots.extend(std::iter::repeat_n(v, n));
                }
                let shape = p.raw_dim();
                self.state.insert(
                    key.clone(),
                    KeyState {
                        shape,
                        step: 0,
                        slots,
                    },
                );
            }
            let Some(st) = self.state.get_mut(key) else {
                continue; // unreachable: inserted above
            };
            st.step += 1;
            let k = self.rule.scalars(self.lr, st.step);
            let rule = |p: &mut F, g: F, s: &mut R::Slots| R::apply(&k, p, g, s);
            if let (Some(p), Some(g)) = (p.as_slice_mut(), g.as_slice()) {
                R::Slots::for_each_slice(p, g, &mut st.slots, rule);
            } else {
                R::Slots::for_each_logical(p.view_mut(), g.view(), &mut st.slots, rule);
            }
        }
        Ok(())
    }

    fn learning_rate(&self) -> f64 {
        self.lr
    }

    fn set_learning_rate(&mut self, lr: f64) -> Result<(), Error> {
        check::learning_rate(lr)?;
        self.lr = lr;
        Ok(())
    }

    fn reset(&mut self) {
        self.state.clear();
    }

    fn name(&self) -> &'static str {
        R::NAME
    }
}
