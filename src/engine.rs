//! The one update engine: map walking, key and shape checks, lazy per-key state, and the fused
//! per-element pass. Algorithms plug in as a [`Rule`].

use std::collections::HashMap;
use std::fmt::Debug;

use ndarray::{ArrayD, ArrayViewD, ArrayViewMutD, Dimension, IxDyn};
use num_traits::Float;

use crate::checkpoint::{Checkpoint, FORMAT_VERSION, KeyState, SlotState};
use crate::{Error, Group, Optimizer, check, simd};

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

/// The per-element state of an algorithm: `[F; N]` for an update that reads and writes `N` state
/// arrays shaped like the parameter (`[F; 0]` for plain SGD, `[F; 2]` for Adam's two moments).
pub trait Slots<F: Scalar>: Copy + Send + Sync + 'static {
    /// How many state arrays the update reads and writes.
    const COUNT: usize;

    /// The state arrays of a run of elements, one slice per slot.
    type Columns<'a>: Send
    where
        F: 'a;

    /// Splits a key's state (slot after slot, `n` elements each) into its columns.
    fn columns(state: &mut [F], n: usize) -> Self::Columns<'_>;

    /// Splits columns at element `mid`, for parallel halves.
    fn split_columns<'a>(
        columns: Self::Columns<'a>,
        mid: usize,
    ) -> (Self::Columns<'a>, Self::Columns<'a>);

    /// The fused pass: `f(p, g, slots)` for every element of equally long contiguous `params`,
    /// `grads` and columns, with the element's slots gathered into `Self` and scattered back.
    fn for_each_slice(
        params: &mut [F],
        grads: &[F],
        columns: Self::Columns<'_>,
        f: &impl Fn(&mut F, F, &mut Self),
    );

    /// Like [`Slots::for_each_slice`], for arrays of any memory layout: elements are visited in
    /// logical (row-major) order, which is the order of the state.
    fn for_each_logical(
        params: ArrayViewMutD<'_, F>,
        grads: ArrayViewD<'_, F>,
        state: &mut [F],
        f: &impl Fn(&mut F, F, &mut Self),
    );
}

impl<F: Scalar, const N: usize> Slots<F> for [F; N] {
    const COUNT: usize = N;
    type Columns<'a> = [&'a mut [F]; N];

    fn columns(state: &mut [F], n: usize) -> [&mut [F]; N] {
        let mut rest = &mut state[..N * n];
        std::array::from_fn(|_| {
            let (head, tail) = std::mem::take(&mut rest).split_at_mut(n);
            rest = tail;
            head
        })
    }

    fn split_columns<'a>(
        columns: Self::Columns<'a>,
        mid: usize,
    ) -> (Self::Columns<'a>, Self::Columns<'a>) {
        let mut halves = columns.map(|c| c.split_at_mut(mid));
        let lower = std::array::from_fn(|j| std::mem::take(&mut halves[j].0));
        let upper = std::array::from_fn(|j| std::mem::take(&mut halves[j].1));
        (lower, upper)
    }

    #[inline(always)]
    fn for_each_slice(
        params: &mut [F],
        grads: &[F],
        mut cols: [&mut [F]; N],
        f: &impl Fn(&mut F, F, &mut Self),
    ) {
        let n = params.len();
        let grads = &grads[..n];
        assert!(
            cols.iter().all(|c| c.len() == n),
            "every column has one slot per element"
        );
        for i in 0..n {
            // Unchecked slot access: with a bounds check per slot and element the loop does not
            // vectorize. SAFETY: every column has `n` elements (asserted above) and `i < n`.
            let mut s: [F; N] = std::array::from_fn(|j| unsafe { *cols[j].get_unchecked(i) });
            f(&mut params[i], grads[i], &mut s);
            for (col, v) in cols.iter_mut().zip(s) {
                unsafe { *col.get_unchecked_mut(i) = v };
            }
        }
    }

    fn for_each_logical(
        mut params: ArrayViewMutD<'_, F>,
        grads: ArrayViewD<'_, F>,
        state: &mut [F],
        f: &impl Fn(&mut F, F, &mut Self),
    ) {
        let n = params.len();
        let mut cols = Self::columns(state, n);
        for (i, (p, &g)) in params.iter_mut().zip(grads.iter()).enumerate() {
            let mut s: [F; N] = std::array::from_fn(|j| cols[j][i]);
            f(p, g, &mut s);
            for (col, v) in cols.iter_mut().zip(s) {
                col[i] = v;
            }
        }
    }
}

/// One key's update, handed to [`Rule::step`]: the parameter, its gradient, its state, the
/// learning rate and the key's step count.
pub struct Step<'a, F> {
    lr: f64,
    weight_decay: Option<f64>,
    t: u64,
    params: &'a mut ArrayD<F>,
    grads: &'a ArrayD<F>,
    state: &'a mut [F],
}

impl<'a, F: Scalar> Step<'a, F> {
    /// The learning rate of this step.
    pub fn lr(&self) -> f64 {
        self.lr
    }

    /// The key's step count: 1 on its first update.
    pub fn t(&self) -> u64 {
        self.t
    }

    /// The weight decay the key's [`Group`] sets, replacing the rule's own.
    pub fn weight_decay(&self) -> Option<f64> {
        self.weight_decay
    }

    /// Runs `f(p, g, slots)` once per element, in one fused pass: the way of every elementwise
    /// rule. `S` is `[F; N]` with `N` the number of slots the rule declared for this step.
    ///
    /// # Panics
    ///
    /// If `N` disagrees with the rule's [`Rule::slots`]: a bug in the rule, not bad input.
    #[inline]
    pub fn for_each<S: Slots<F>>(self, f: impl Fn(&mut F, F, &mut S) + Sync) {
        let n = self.params.len();
        assert_eq!(
            S::COUNT * n,
            self.state.len(),
            "a rule's per-element slots disagree with the state it declared"
        );
        if let (Some(p), Some(g)) = (self.params.as_slice_mut(), self.grads.as_slice()) {
            let columns = S::columns(self.state, n);
            #[cfg(feature = "rayon")]
            if crate::parallel::worth_it(n) {
                return crate::parallel::for_each_slice(p, g, columns, &f);
            }
            simd::for_each_slice(p, g, columns, &f);
        } else {
            S::for_each_logical(self.params.view_mut(), self.grads.view(), self.state, &f);
        }
    }

    /// The parameter, the gradient and the key's whole state (the slots of [`Rule::slots`], one
    /// after the other, each in row-major order), for rules that are not elementwise.
    pub fn parts(self) -> (ArrayViewMutD<'a, F>, ArrayViewD<'a, F>, &'a mut [F]) {
        (self.params.view_mut(), self.grads.view(), self.state)
    }
}

/// One optimization algorithm: its hyperparameters, their validation, the state it keeps and its
/// update of one key. [`Engine`] does everything else: map walking, checks, state creation.
///
/// An elementwise rule computes its per-step scalars in [`Rule::step`] and hands a per-element
/// closure to [`Step::for_each`]; see the `optimizers` sources for a few dozen lines each.
pub trait Rule<F: Scalar>: Clone + Debug + Send + Sync {
    /// Scalars kept per key beyond its step count (NAdam's running product of momentum
    /// coefficients, ASGD's step size); `()` for most algorithms.
    type KeyScalars: Clone + Debug + Default + PartialEq + Send + Sync;

    /// The algorithm's name, as its reference spells it.
    const NAME: &'static str;
    /// The default learning rate.
    const DEFAULT_LR: f64;

    /// The algorithm's name for this configuration (AdamW for Adam with decoupled weight decay).
    fn name(&self) -> &'static str {
        Self::NAME
    }

    /// Checks every hyperparameter but the learning rate, which [`Engine`] checks.
    fn validate(&self) -> Result<(), Error>;

    /// The names of the state arrays this configuration keeps per parameter, in order
    /// (PyTorch's names where PyTorch has the algorithm).
    fn slot_names(&self) -> &'static [&'static str];

    /// The state arrays kept for a parameter of `shape`, by name and shape: by default every one
    /// of [`Rule::slot_names`] shaped like the parameter. Factored rules override it.
    fn slots(&self, shape: &[usize]) -> Vec<(&'static str, IxDyn)> {
        self.slot_names()
            .iter()
            .map(|&name| (name, IxDyn(shape)))
            .collect()
    }

    /// The value a new slot starts from, given the learning rate at creation (zero unless the
    /// algorithm says otherwise).
    fn initial_value(&self, _slot: &str, _lr: f64) -> f64 {
        0.0
    }

    /// Updates one key: its parameter in place, its state and its scalars.
    fn step(&self, step: Step<'_, F>, scalars: &mut Self::KeyScalars);
}

/// A key's optimizer state: its parameter's shape when created, its step count, its scalars and
/// its slot arrays, stored slot after slot in one allocation so that one lookup finds all of it.
#[derive(Clone, Debug, PartialEq)]
struct Entry<F, K> {
    shape: IxDyn,
    /// The first group selecting the key, resolved when its state is created.
    group: Option<usize>,
    step: u64,
    scalars: K,
    slots: Vec<F>,
}

/// An optimizer: a [`Rule`] with a learning rate and per-key state, driven by one generic engine.
///
/// The crate's optimizers are aliases of this type ([`crate::Adam`] is `Engine<AdamRule, F>`), so
/// everything here is available on each of them.
#[derive(Clone, Debug)]
pub struct Engine<R: Rule<F>, F: Scalar> {
    rule: R,
    lr: f64,
    /// Each key's position in `entries`. hashbrown, for its fast hasher and `entry_ref`: one
    /// lookup per key and step, copying the key only when it inserts.
    index: hashbrown::HashMap<String, usize>,
    /// The keys' state in order of first update; positions let a parallel step hand each key's
    /// state to its own task.
    entries: Vec<Entry<F, R::KeyScalars>>,
    /// Per-key hyperparameters, first match wins.
    groups: Vec<Group>,
    /// What a gradient holding NaN or infinity does.
    non_finite: NonFinite,
    /// Steps skipped by [`NonFinite::Skip`].
    skipped: u64,
}

/// What [`Optimizer::update`] does with gradients that hold NaN or infinity.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum NonFinite {
    /// Nothing: they flow into parameters and state, as in PyTorch's optimizers. Costs nothing.
    #[default]
    Propagate,
    /// Skip the whole step, parameters and state untouched, and count it (optax's
    /// `apply_if_finite`, PyTorch's `GradScaler`). Costs one read of the gradients.
    Skip,
    /// Return [`Error::NonFiniteGradient`], parameters and state untouched.
    Error,
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
            index: hashbrown::HashMap::new(),
            entries: Vec::new(),
            groups: Vec::new(),
            non_finite: NonFinite::Propagate,
            skipped: 0,
        }
    }

    /// Sets the learning rate (checked, like every hyperparameter, by each
    /// [`update`](Optimizer::update); [`Optimizer::set_learning_rate`] checks at once).
    #[must_use]
    pub fn lr(mut self, lr: f64) -> Self {
        self.lr = lr;
        self
    }

    /// Adds a parameter group: hyperparameters for the keys it selects (see [`Group`]). Groups
    /// apply to keys whose state is created after they are added; the first match wins.
    #[must_use]
    pub fn group(mut self, group: Group) -> Self {
        self.groups.push(group);
        self
    }

    /// Sets what a gradient holding NaN or infinity does (default [`NonFinite::Propagate`]).
    #[must_use]
    pub fn non_finite(mut self, policy: NonFinite) -> Self {
        self.non_finite = policy;
        self
    }

    /// How many steps [`NonFinite::Skip`] has skipped.
    pub fn skipped_steps(&self) -> u64 {
        self.skipped
    }

    /// The optimizer's complete state (see [`crate::checkpoint`]).
    pub fn checkpoint(&self) -> Checkpoint<R, R::KeyScalars, F> {
        let mut keys: Vec<_> = self
            .index
            .iter()
            .filter_map(|(key, &i)| {
                let e = self.entries.get(i)?;
                let mut start = 0;
                let slots = self
                    .rule
                    .slots(e.shape.slice())
                    .into_iter()
                    .map(|(name, shape)| {
                        let len = shape.size();
                        let data = e.slots[start..start + len].to_vec();
                        start += len;
                        SlotState {
                            name: name.to_string(),
                            shape: shape.slice().to_vec(),
                            data,
                        }
                    })
                    .collect();
                Some(KeyState {
                    key: key.clone(),
                    shape: e.shape.slice().to_vec(),
                    step: e.step,
                    scalars: e.scalars.clone(),
                    slots,
                })
            })
            .collect();
        keys.sort_by(|a, b| a.key.cmp(&b.key));
        Checkpoint {
            format: FORMAT_VERSION,
            optimizer: R::NAME.to_string(),
            rule: self.rule.clone(),
            lr: self.lr,
            skipped_steps: self.skipped,
            keys,
            scheduler: None,
        }
    }

    /// Loads a checkpoint: hyperparameters, learning rate and every key's state (groups and the
    /// non-finite policy stay as built). A state whose shape disagrees with the parameters is
    /// caught by the next update, as always.
    ///
    /// # Errors
    ///
    /// [`Error::Checkpoint`] for another format version or optimizer kind, a missing, extra or
    /// repeated slot or key, a slot whose shape disagrees with its key's shape, or data of the
    /// wrong length; [`Error::InvalidHyperparameter`] for invalid hyperparameters. The whole
    /// checkpoint is checked first: after an error the optimizer is unchanged.
    pub fn restore(&mut self, checkpoint: Checkpoint<R, R::KeyScalars, F>) -> Result<(), Error> {
        let bad = |reason: String| Err(Error::Checkpoint { reason });
        if checkpoint.format != FORMAT_VERSION {
            return bad(format!(
                "unknown format version {} (this ndoptim reads {FORMAT_VERSION})",
                checkpoint.format
            ));
        }
        if checkpoint.optimizer != R::NAME {
            return bad(format!(
                "a checkpoint of {} cannot load into {}",
                checkpoint.optimizer,
                R::NAME
            ));
        }
        check::learning_rate(checkpoint.lr)?;
        checkpoint.rule.validate()?;
        let mut index = hashbrown::HashMap::with_capacity(checkpoint.keys.len());
        let mut entries = Vec::with_capacity(checkpoint.keys.len());
        for k in checkpoint.keys {
            let spec = checkpoint.rule.slots(&k.shape);
            for s in &k.slots {
                if !spec.iter().any(|(name, _)| *name == s.name) {
                    return bad(format!(
                        "key {:?}: unexpected slot {:?} ({} keeps {:?})",
                        k.key,
                        s.name,
                        R::NAME,
                        spec.iter().map(|s| s.0).collect::<Vec<_>>()
                    ));
                }
            }
            let mut slots = Vec::with_capacity(spec.iter().map(|(_, s)| s.size()).sum());
            for (name, shape) in &spec {
                let Some(s) = k.slots.iter().find(|s| s.name == *name) else {
                    return bad(format!("key {:?}: slot {name:?} is missing", k.key));
                };
                if s.shape != shape.slice() || s.data.len() != shape.size() {
                    return bad(format!(
                        "key {:?}: slot {name:?} has shape {:?} ({} elements); a parameter of shape {:?} needs {:?}",
                        k.key,
                        s.shape,
                        s.data.len(),
                        k.shape,
                        shape.slice()
                    ));
                }
                slots.extend_from_slice(&s.data);
            }
            if k.slots.len() != spec.len() {
                return bad(format!("key {:?}: a slot appears twice", k.key));
            }
            if index.insert(k.key.clone(), entries.len()).is_some() {
                return bad(format!("key {:?} appears twice", k.key));
            }
            let group = self.groups.iter().position(|g| g.selects(&k.key));
            entries.push(Entry {
                shape: IxDyn(&k.shape),
                group,
                step: k.step,
                scalars: k.scalars,
                slots,
            });
        }
        self.rule = checkpoint.rule;
        self.lr = checkpoint.lr;
        self.skipped = checkpoint.skipped_steps;
        self.index = index;
        self.entries = entries;
        Ok(())
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
        self.groups.iter().try_for_each(Group::validate)?;
        self.rule.validate()
    }

    fn entry(&self, key: &str) -> Option<&Entry<F, R::KeyScalars>> {
        self.index.get(key).and_then(|&i| self.entries.get(i))
    }

    /// How many updates `key` has received since its state was created (`None` before the first).
    pub fn step_count(&self, key: &str) -> Option<u64> {
        self.entry(key).map(|s| s.step)
    }

    /// The keys that have state, in no particular order.
    pub fn state_keys(&self) -> impl Iterator<Item = &str> {
        self.index.keys().map(String::as_str)
    }

    /// The names of the state slots this configuration keeps, in order.
    pub fn slot_names(&self) -> &'static [&'static str] {
        self.rule.slot_names()
    }

    /// A view of state slot `slot` (one of [`Engine::slot_names`]) of `key`; `None` if the key
    /// has no state yet or no such slot.
    pub fn slot(&self, key: &str, slot: &str) -> Option<ArrayViewD<'_, F>> {
        let st = self.entry(key)?;
        let mut start = 0;
        for (name, shape) in self.rule.slots(st.shape.slice()) {
            let len = shape.size();
            if name == slot {
                return ArrayViewD::from_shape(shape, st.slots.get(start..start + len)?).ok();
            }
            start += len;
        }
        None
    }

    /// The scalars `key` keeps beyond its step count; `None` before its first update.
    pub fn key_scalars(&self, key: &str) -> Option<&R::KeyScalars> {
        self.entry(key).map(|s| &s.scalars)
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
            if let Some(st) = self.entry(key)
                && st.shape.slice() != p.shape()
            {
                return Err(Error::StateShapeMismatch {
                    key: key.clone(),
                    state_shape: st.shape.slice().to_vec(),
                    param_shape: p.shape().to_vec(),
                });
            }
        }
        Ok(())
    }

    /// The position of `key`'s state, created for a parameter of `shape` if it has none yet.
    fn position(&mut self, key: &str, shape: &[usize]) -> usize {
        let (entries, rule, lr, groups) = (&mut self.entries, &self.rule, self.lr, &self.groups);
        *self.index.entry_ref(key).or_insert_with(|| {
            let mut entry = new_entry(rule, lr, shape);
            entry.group = groups.iter().position(|g| g.selects(key));
            entries.push(entry);
            entries.len() - 1
        })
    }

    /// The keys' updates as parallel tasks (the `rayon` feature, large steps).
    #[cfg(feature = "rayon")]
    fn update_parallel(&mut self, params: &mut Params<F>, grads: &Params<F>) {
        use rayon::prelude::*;
        let mut work = Vec::with_capacity(grads.len());
        for (key, p) in params.iter_mut() {
            if let Some(g) = grads.get(key) {
                work.push((self.position(key, p.shape()), p, g));
            }
        }
        // Hand each task its own entry: walk the entries once in position order.
        work.sort_unstable_by_key(|w| w.0);
        let mut entries = self.entries.iter_mut().enumerate();
        let tasks: Vec<_> = work
            .into_iter()
            .filter_map(|(i, p, g)| entries.find(|(j, _)| *j == i).map(|(_, e)| (p, g, e)))
            .collect();
        let (rule, lr, groups) = (&self.rule, self.lr, &self.groups[..]);
        tasks
            .into_par_iter()
            .for_each(|(p, g, e)| step_key(rule, lr, groups, p, g, e));
    }
}

impl<R: Rule<F>, F: Scalar> Optimizer<F> for Engine<R, F> {
    fn update(&mut self, params: &mut Params<F>, grads: &Params<F>) -> Result<(), Error> {
        self.check(params, grads)?;
        if self.non_finite != NonFinite::Propagate
            && let Some((key, _)) = grads.iter().find(|(_, g)| g.iter().any(|x| !x.is_finite()))
        {
            if self.non_finite == NonFinite::Error {
                return Err(Error::NonFiniteGradient { key: key.clone() });
            }
            self.skipped += 1;
            return Ok(());
        }
        #[cfg(feature = "rayon")]
        if grads.len() > 1 && crate::parallel::worth_it(grads.values().map(|g| g.len()).sum()) {
            self.update_parallel(params, grads);
            return Ok(());
        }
        for (key, g) in grads {
            let Some(p) = params.get_mut(key) else {
                continue; // unreachable: `check` found every key
            };
            let i = self.position(key, p.shape());
            if let Some(e) = self.entries.get_mut(i) {
                step_key(&self.rule, self.lr, &self.groups, p, g, e);
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
        self.index.clear();
        self.entries.clear();
    }

    fn name(&self) -> &'static str {
        self.rule.name()
    }
}

/// One key's step, with its group's hyperparameters.
fn step_key<R: Rule<F>, F: Scalar>(
    rule: &R,
    lr: f64,
    groups: &[Group],
    params: &mut ArrayD<F>,
    grads: &ArrayD<F>,
    entry: &mut Entry<F, R::KeyScalars>,
) {
    entry.step += 1;
    let group = entry.group.and_then(|i| groups.get(i));
    let step = Step {
        lr: lr * group.map_or(1.0, |g| g.lr_scale),
        weight_decay: group.and_then(|g| g.weight_decay),
        t: entry.step,
        params,
        grads,
        state: &mut entry.slots,
    };
    rule.step(step, &mut entry.scalars);
}

/// Fresh state for a parameter of `shape`.
fn new_entry<R: Rule<F>, F: Scalar>(rule: &R, lr: f64, shape: &[usize]) -> Entry<F, R::KeyScalars> {
    let spec = rule.slots(shape);
    let mut slots = Vec::with_capacity(spec.iter().map(|(_, s)| s.size()).sum());
    for (name, s) in &spec {
        let init: F = cast(rule.initial_value(name, lr));
        slots.extend(std::iter::repeat_n(init, s.size()));
    }
    Entry {
        shape: IxDyn(shape),
        group: None,
        step: 0,
        scalars: R::KeyScalars::default(),
        slots,
    }
}
