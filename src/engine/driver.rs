//! The driver: [`Engine`] walks the maps, checks every call whole before writing, creates each
//! key's state on its first update and hands each key to its rule.

use ndarray::{ArrayRefD, ArrayViewD, Dimension, IxDyn};

use super::{Mode, Params, Rule, Scalar, Step, cast};
use crate::{Error, Group, Named, Optimizer, check};

/// A key's optimizer state: its parameter's shape when created, its step count, its scalars and
/// its slot arrays, stored slot after slot in one allocation so that one lookup finds all of it.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Entry<F, K> {
    pub(crate) shape: IxDyn,
    /// The first group selecting the key, resolved when its state is created.
    pub(crate) group: Option<usize>,
    pub(crate) step: u64,
    pub(crate) scalars: K,
    pub(crate) slots: Vec<F>,
    /// The rule's scratch space: not state, never checkpointed.
    pub(crate) scratch: Vec<F>,
    /// The last [`Optimizer::update_named`] call that named the key, to catch a key given twice.
    pub(crate) seen: u64,
}

/// An optimizer: a [`Rule`] with a learning rate and per-key state, driven by one generic engine.
///
/// The crate's optimizers are aliases of this type ([`crate::Adam`] is `Engine<AdamRule, F>`), so
/// everything here is available on each of them.
#[derive(Clone, Debug)]
pub struct Engine<R: Rule<F>, F: Scalar> {
    pub(crate) rule: R,
    pub(crate) lr: f64,
    /// Each key's position in `entries`. hashbrown, for its fast hasher and `entry_ref`: one
    /// lookup per key and step, copying the key only when it inserts.
    pub(crate) index: hashbrown::HashMap<String, usize>,
    /// The keys' state in order of first update; positions let a parallel step hand each key's
    /// state to its own task.
    pub(crate) entries: Vec<Entry<F, R::KeyScalars>>,
    /// Per-key hyperparameters, first match wins.
    pub(crate) groups: Vec<Group>,
    /// What a gradient holding NaN or infinity does.
    pub(crate) non_finite: NonFinite,
    /// Steps skipped by [`NonFinite::Skip`].
    pub(crate) skipped: u64,
    /// Counts [`Optimizer::update_named`] calls, for the keys' `seen` stamps.
    pub(crate) calls: u64,
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
            calls: 0,
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

    /// The mode of an optimizer that trains and evaluates at different points (Schedule-Free):
    /// see [`Optimizer::eval`]; `None` for every other optimizer.
    pub fn mode(&self) -> Option<Mode> {
        self.rule.mode()
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

    pub(crate) fn entry(&self, key: &str) -> Option<&Entry<F, R::KeyScalars>> {
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
        for (name, shape) in self.rule.slots(key, st.shape.slice()) {
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
        self.ready()?;
        for (key, g) in grads {
            let p = params
                .get(key)
                .ok_or_else(|| Error::UnknownKey { key: key.clone() })?;
            self.check_pair(key, p.shape(), g.shape())?;
        }
        Ok(())
    }

    /// Every check of a named update, before anything is written: as [`Engine::check`], with a
    /// key given twice in place of an unknown key.
    fn check_named(&mut self, items: &[Named<'_, F>]) -> Result<(), Error> {
        self.ready()?;
        // A stamp per call marks the keys that have state; keys new to the optimizer (only on
        // calls that create state, which allocate anyway) go through a set.
        self.calls = self.calls.wrapping_add(1);
        let mut fresh: Option<hashbrown::HashSet<&str>> = None;
        for item in items {
            let key = item.key;
            self.check_pair(key, item.param.shape(), item.grad.shape())?;
            let twice = match self.index.get(key).and_then(|&i| self.entries.get_mut(i)) {
                Some(e) => std::mem::replace(&mut e.seen, self.calls) == self.calls,
                None => !fresh.get_or_insert_with(Default::default).insert(key),
            };
            if twice {
                return Err(Error::DuplicateKey {
                    key: key.to_string(),
                });
            }
        }
        Ok(())
    }

    /// The checks of every update that do not depend on its keys.
    fn ready(&self) -> Result<(), Error> {
        self.validate()?;
        if self.rule.mode() == Some(Mode::Eval) {
            return Err(Error::EvalMode);
        }
        Ok(())
    }

    /// A parameter against its gradient and its state.
    fn check_pair(&self, key: &str, param: &[usize], grad: &[usize]) -> Result<(), Error> {
        if param != grad {
            return Err(Error::ShapeMismatch {
                key: key.to_string(),
                param_shape: param.to_vec(),
                grad_shape: grad.to_vec(),
            });
        }
        self.state_fits(key, param)
    }

    /// Whether the non-finite guard skips this step (counting it), or refuses it.
    fn skips<'g>(
        &mut self,
        mut grads: impl Iterator<Item = (&'g str, &'g ArrayRefD<F>)>,
    ) -> Result<bool, Error>
    where
        F: 'g,
    {
        if self.non_finite == NonFinite::Propagate {
            return Ok(false);
        }
        let Some((key, _)) = grads.find(|(_, g)| g.iter().any(|x| !x.is_finite())) else {
            return Ok(false);
        };
        if self.non_finite == NonFinite::Error {
            return Err(Error::NonFiniteGradient {
                key: key.to_string(),
            });
        }
        self.skipped = self.skipped.saturating_add(1);
        Ok(true)
    }

    /// One key's step, its state created first if it has none.
    fn step_one(&mut self, key: &str, p: &mut ArrayRefD<F>, g: &ArrayRefD<F>) {
        let i = self.position(key, p.shape());
        if let Some(e) = self.entries.get_mut(i) {
            step_key(&self.rule, self.lr, &self.groups, key, p, g, e);
        }
    }

    /// Whether `key`'s state, if it has any, was made for a parameter of `shape`.
    fn state_fits(&self, key: &str, shape: &[usize]) -> Result<(), Error> {
        match self.entry(key) {
            Some(st) if st.shape.slice() != shape => Err(Error::StateShapeMismatch {
                key: key.to_string(),
                state_shape: st.shape.slice().to_vec(),
                param_shape: shape.to_vec(),
            }),
            _ => Ok(()),
        }
    }

    /// Whether a switch to `mode` moves anything (the rule has modes and is in another one),
    /// after checking every parameter's shape against its state.
    fn switches<'p>(
        &self,
        mode: Mode,
        shapes: impl Iterator<Item = (&'p str, &'p [usize])>,
    ) -> Result<bool, Error> {
        if self.rule.mode().is_none_or(|m| m == mode) {
            return Ok(false);
        }
        for (key, shape) in shapes {
            self.state_fits(key, shape)?;
        }
        Ok(true)
    }

    /// Moves every parameter that has state to the point of `mode`, once [`Engine::switches`]
    /// said yes.
    fn switch<'p>(
        &mut self,
        mode: Mode,
        params: impl Iterator<Item = (&'p str, &'p mut ArrayRefD<F>)>,
    ) where
        F: 'p,
    {
        for (key, p) in params {
            if let Some(e) = self.index.get(key).and_then(|&i| self.entries.get(i)) {
                self.rule.switch(mode, p, &e.slots);
            }
        }
        self.rule.set_mode(mode);
    }

    /// The position of `key`'s state, created for a parameter of `shape` if it has none yet.
    fn position(&mut self, key: &str, shape: &[usize]) -> usize {
        let (entries, rule, lr, groups) = (&mut self.entries, &self.rule, self.lr, &self.groups);
        *self.index.entry_ref(key).or_insert_with(|| {
            let mut entry = new_entry(rule, lr, key, shape);
            entry.group = groups.iter().position(|g| g.selects(key));
            entries.push(entry);
            entries.len() - 1
        })
    }

    /// The keys' updates as parallel tasks (the `rayon` feature, large steps).
    #[cfg(feature = "rayon")]
    fn update_parallel(&mut self, work: Vec<(&str, &mut ArrayRefD<F>, &ArrayRefD<F>)>) {
        use rayon::prelude::*;
        let mut work: Vec<_> = work
            .into_iter()
            .map(|(k, p, g)| (self.position(k, p.shape()), k, p, g))
            .collect();
        // Hand each task its own entry: walk the entries once in position order.
        work.sort_unstable_by_key(|w| w.0);
        let mut entries = self.entries.iter_mut().enumerate();
        let tasks: Vec<_> = work
            .into_iter()
            .filter_map(|(i, k, p, g)| entries.find(|(j, _)| *j == i).map(|(_, e)| (k, p, g, e)))
            .collect();
        let (rule, lr, groups) = (&self.rule, self.lr, &self.groups[..]);
        tasks
            .into_par_iter()
            .for_each(|(k, p, g, e)| step_key(rule, lr, groups, k, p, g, e));
    }

    /// [`Optimizer::eval`] and [`Optimizer::train`] on a map.
    fn switch_map(&mut self, mode: Mode, params: &mut Params<F>) -> Result<(), Error> {
        if self.switches(mode, params.iter().map(|(k, p)| (k.as_str(), p.shape())))? {
            self.switch(mode, params.iter_mut().map(|(k, p)| (k.as_str(), &mut **p)));
        }
        Ok(())
    }

    /// [`Optimizer::eval_named`] and [`Optimizer::train_named`].
    fn switch_named(&mut self, mode: Mode, params: &mut [Named<'_, F>]) -> Result<(), Error> {
        if self.switches(mode, params.iter().map(|n| (n.key, n.param.shape())))? {
            self.switch(mode, params.iter_mut().map(|n| (n.key, &mut *n.param)));
        }
        Ok(())
    }
}

impl<R: Rule<F>, F: Scalar> Optimizer<F> for Engine<R, F> {
    fn update(&mut self, params: &mut Params<F>, grads: &Params<F>) -> Result<(), Error> {
        self.check(params, grads)?;
        if self.skips(grads.iter().map(|(k, g)| (k.as_str(), &**g)))? {
            return Ok(());
        }
        #[cfg(feature = "rayon")]
        if grads.len() > 1 && crate::parallel::worth_it(grads.values().map(|g| g.len()).sum()) {
            let work = params
                .iter_mut()
                .filter_map(|(k, p)| Some((k.as_str(), &mut **p, &**grads.get(k)?)))
                .collect();
            self.update_parallel(work);
            return Ok(());
        }
        for (key, g) in grads {
            if let Some(p) = params.get_mut(key) {
                self.step_one(key, p, g); // always: `check` found every key
            }
        }
        Ok(())
    }

    fn update_named(&mut self, params: &mut [Named<'_, F>]) -> Result<(), Error> {
        self.check_named(params)?;
        if self.skips(params.iter().map(|n| (n.key, &*n.grad)))? {
            return Ok(());
        }
        #[cfg(feature = "rayon")]
        if params.len() > 1 && crate::parallel::worth_it(params.iter().map(|n| n.grad.len()).sum())
        {
            let work = params
                .iter_mut()
                .map(|n| (n.key, &mut *n.param, &*n.grad))
                .collect();
            self.update_parallel(work);
            return Ok(());
        }
        for n in params {
            self.step_one(n.key, &mut n.param, &n.grad);
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

    fn eval(&mut self, params: &mut Params<F>) -> Result<(), Error> {
        self.switch_map(Mode::Eval, params)
    }

    fn train(&mut self, params: &mut Params<F>) -> Result<(), Error> {
        self.switch_map(Mode::Train, params)
    }

    fn eval_named(&mut self, params: &mut [Named<'_, F>]) -> Result<(), Error> {
        self.switch_named(Mode::Eval, params)
    }

    fn train_named(&mut self, params: &mut [Named<'_, F>]) -> Result<(), Error> {
        self.switch_named(Mode::Train, params)
    }
}

/// One key's step, with its group's hyperparameters.
fn step_key<R: Rule<F>, F: Scalar>(
    rule: &R,
    lr: f64,
    groups: &[Group],
    key: &str,
    params: &mut ArrayRefD<F>,
    grads: &ArrayRefD<F>,
    entry: &mut Entry<F, R::KeyScalars>,
) {
    entry.step += 1;
    let group = entry.group.and_then(|i| groups.get(i));
    let step = Step {
        key,
        lr: lr * group.map_or(1.0, |g| g.lr_scale),
        weight_decay: group.and_then(|g| g.weight_decay),
        trust_ratio: group.is_none_or(|g| g.trust_ratio),
        t: entry.step,
        params,
        grads,
        state: &mut entry.slots,
        scratch: &mut entry.scratch,
    };
    rule.step(step, &mut entry.scalars);
}

/// Fresh state for a parameter of `shape`.
pub(crate) fn new_entry<R: Rule<F>, F: Scalar>(
    rule: &R,
    lr: f64,
    key: &str,
    shape: &[usize],
) -> Entry<F, R::KeyScalars> {
    let spec = rule.slots(key, shape);
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
        scratch: vec![F::zero(); rule.scratch(key, shape)],
        seen: 0,
    }
}
