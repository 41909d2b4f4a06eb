//! The driver: [`Engine`] walks the maps, checks every call whole before writing, creates each
//! key's state on its first update and hands each key to its rule.

use ndarray::{ArrayRefD, ArrayViewD, Dimension, IxDyn};

use super::plan::{Plan, Spare, Task};
use super::{Layout, Mode, Native, Params, Rule, Scalar, Step, Write, cast};
use crate::element::{Element, Rounding, Store, key_seed};
use crate::{Error, Group, Hyperparameter, Named, Optimizer, check};

/// A key's optimizer state: its parameter's shape when created, its step count, its scalars and
/// its slot arrays (stored as `F`), slot after slot in one allocation so that one lookup finds
/// all of it; the Kahan compensation (stored as the parameters' `P`) and the rule's scratch space
/// (in the arithmetic type `C`).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Entry<F, K, P = F, C = F> {
    pub(crate) shape: IxDyn,
    /// The first group selecting the key, resolved when its state is created.
    pub(crate) group: Option<usize>,
    pub(crate) step: u64,
    pub(crate) scalars: K,
    pub(crate) slots: Vec<F>,
    /// Kahan compensation, one element per parameter element with [`Rounding::Kahan`], else
    /// empty.
    pub(crate) compensation: Vec<P>,
    /// The rule's scratch space: not state, never checkpointed.
    pub(crate) scratch: Vec<C>,
}

/// The entry type of an engine of rule `R` storing in layout `L`.
pub(crate) type EntryOf<R, F, L> =
    Entry<<L as Layout<F>>::State, <R as Rule<F>>::KeyScalars, <L as Layout<F>>::Param, F>;

/// An optimizer: a [`Rule`] with a learning rate and per-key state, driven by one generic engine.
///
/// The crate's optimizers are aliases of this type ([`crate::Adam`] is `Engine<AdamRule, F>`), so
/// everything here is available on each of them.
///
/// `L` is where parameters and state are stored: [`Native`] (in `F`, the default) or
/// [`Mixed`](crate::Mixed) (low-precision parameters, see [`crate::precision`]), chosen with
/// [`Engine::with_layout`].
#[derive(Clone, Debug)]
pub struct Engine<R: Rule<F>, F: Scalar, L: Layout<F> = Native> {
    pub(crate) rule: R,
    pub(crate) lr: f64,
    /// Each key's position in `entries`. hashbrown, for its fast hasher and `entry_ref`: one
    /// lookup per key and step, copying the key only when it inserts.
    pub(crate) index: hashbrown::HashMap<String, usize>,
    /// The keys' state, in the order of their parameters in memory (see `plan`).
    pub(crate) entries: Vec<EntryOf<R, F, L>>,
    /// Whether the last step found `entries` out of memory order (or a restore replaced them).
    pub(crate) resort: bool,
    /// The allocation each call gathers its keys in.
    pub(crate) spare: Spare<L::Param>,
    /// Per-key hyperparameters, first match wins.
    pub(crate) groups: Vec<Group>,
    /// What a gradient holding NaN or infinity does.
    pub(crate) non_finite: NonFinite,
    /// Steps skipped by [`NonFinite::Skip`].
    pub(crate) skipped: u64,
    /// How updates are rounded into low-precision parameters.
    pub(crate) rounding: Rounding,
    /// Where parameters and state are stored (a type, nothing at run time).
    layout: std::marker::PhantomData<L>,
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

impl NonFinite {
    /// Whether a step over `grads` is skipped under this policy (counted in `skipped`), or
    /// refused.
    pub(crate) fn skips<'g, E: Element>(
        self,
        skipped: &mut u64,
        mut grads: impl Iterator<Item = (&'g str, &'g ArrayRefD<E>)>,
    ) -> Result<bool, Error> {
        if self == NonFinite::Propagate {
            return Ok(false);
        }
        let Some((key, _)) = grads.find(|(_, g)| g.iter().any(|x| !x.as_f64().is_finite())) else {
            return Ok(false);
        };
        if self == NonFinite::Error {
            return Err(Error::NonFiniteGradient {
                key: key.to_string(),
            });
        }
        *skipped = skipped.saturating_add(1);
        Ok(true)
    }
}

impl<R: Rule<F> + Default, F: Scalar, L: Layout<F>> Default for Engine<R, F, L> {
    fn default() -> Self {
        Self::new(R::default())
    }
}

impl<R: Rule<F>, F: Scalar, L: Layout<F>> Engine<R, F, L> {
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
            resort: false,
            spare: Spare::default(),
            rounding: Rounding::Nearest,
            layout: std::marker::PhantomData,
        }
    }

    /// The same optimizer storing parameters and state in layout `M`: how low-precision
    /// parameters are trained (see [`crate::precision`]). Hyperparameters, learning rate, groups,
    /// the non-finite policy and the rounding carry over; state does not (its types change), so
    /// call it before the first update (an optimizer with state starts afresh).
    ///
    /// ```
    /// # #[cfg(feature = "half")] {
    /// use half::bf16;
    /// use ndoptim::{AdamW, Mixed, Optimizer, Rounding};
    /// let opt = AdamW::<f32>::default()
    ///     .lr(1e-3)
    ///     .with_layout::<Mixed<bf16, bf16>>()
    ///     .rounding(Rounding::Kahan);
    /// assert_eq!(opt.learning_rate(), 1e-3);
    /// # }
    /// ```
    pub fn with_layout<M: Layout<F>>(self) -> Engine<R, F, M> {
        Engine {
            rule: self.rule,
            lr: self.lr,
            index: hashbrown::HashMap::new(),
            entries: Vec::new(),
            groups: self.groups,
            non_finite: self.non_finite,
            skipped: 0,
            resort: false,
            spare: Spare::default(),
            rounding: self.rounding,
            layout: std::marker::PhantomData,
        }
    }

    /// Sets how updates are rounded into low-precision parameters (default
    /// [`Rounding::Nearest`]); Kahan and stochastic rounding need a [`Mixed`](crate::Mixed)
    /// layout (an update of a native optimizer with them is refused). Keys that already have
    /// state start Kahan's compensation at zero when it is turned on, and drop it when it is
    /// turned off.
    #[must_use]
    pub fn rounding(mut self, rounding: Rounding) -> Self {
        self.rounding = rounding;
        let kahan = rounding == Rounding::Kahan && !L::NATIVE;
        for e in &mut self.entries {
            if kahan {
                e.compensation.resize(e.shape.size(), L::Param::default());
            } else {
                e.compensation = Vec::new();
            }
        }
        self
    }

    /// How updates are rounded into low-precision parameters.
    pub fn current_rounding(&self) -> Rounding {
        self.rounding
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
        if L::NATIVE && self.rounding != Rounding::Nearest {
            return Err(Error::IncompatibleOptions {
                reason: "Kahan and stochastic rounding apply to low-precision parameters: give \
                         the optimizer a Mixed layout (with_layout), or round to nearest",
            });
        }
        if !L::NATIVE && !R::ELEMENTWISE {
            return Err(Error::IncompatibleOptions {
                reason: "this optimizer needs whole tensors in its arithmetic type (Muon, LAMB, \
                         LARS, Adafactor): it runs on f32 or f64 parameters only",
            });
        }
        self.rule.validate()
    }

    pub(crate) fn entry(&self, key: &str) -> Option<&EntryOf<R, F, L>> {
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
    pub fn slot_names(&self) -> Vec<&'static str> {
        self.rule.slot_names()
    }

    /// A view of state slot `slot` (one of [`Engine::slot_names`]) of `key`; `None` if the key
    /// has no state yet or no such slot.
    pub fn slot(&self, key: &str, slot: &str) -> Option<ArrayViewD<'_, L::State>> {
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

    /// The keys of a map update, each checked and placed: every check before anything is
    /// written.
    ///
    /// The two maps meet through the index, one lookup per key and map: the gradients of keys
    /// with state wait at their entry's place for their parameters. Only keys new to the
    /// optimizer are looked up in the caller's map (SipHash, and a cache miss on its buckets).
    pub(super) fn plan<'a>(
        &mut self,
        params: &'a mut Params<L::Param>,
        grads: &'a Params<L::Param>,
    ) -> Result<Plan<'a, L::Param>, Error> {
        self.ready()?;
        let mut plan = self.spare.lend(self.entries.len());
        let mut new_grads = 0;
        // Each lookup reads a key that a step's data has pushed out of the caches: asking for
        // the keys a few places ahead overlaps those misses.
        let mut ahead = grads.keys().skip(AHEAD);
        for (key, g) in grads {
            ahead.next().inspect(|k| prefetch(k.as_ptr(), k.len()));
            match self
                .index
                .get(key.as_str())
                .and_then(|&i| plan.grads.get_mut(i))
            {
                Some(place) => {
                    *place = Some(g);
                    plan.unmatched += 1;
                }
                None => new_grads += 1,
            }
        }
        let mut ahead = params.keys().skip(AHEAD);
        for key in params.keys() {
            ahead.next().inspect(|k| prefetch(k.as_ptr(), k.len()));
            plan.positions.push(self.index.get(key.as_str()).copied());
        }
        let positions = std::mem::take(&mut plan.positions);
        for (n, ((key, p), &i)) in params.iter_mut().zip(&positions).enumerate() {
            if let Some(&Some(j)) = positions.get(n + AHEAD) {
                if let Some(e) = self.entries.get(j) {
                    prefetch(std::ptr::from_ref(e), size_of_val(e));
                }
                if let Some(Some(g)) = plan.grads.get(j) {
                    prefetch(std::ptr::from_ref(*g).cast::<u8>(), 128);
                }
            }
            let g = match i {
                Some(i) => plan.grads.get_mut(i).and_then(Option::take),
                None if new_grads > 0 => grads.get(key).map(|g| &**g),
                None => None,
            };
            if let Some(g) = g {
                if i.is_some() {
                    plan.unmatched -= 1;
                } else {
                    new_grads -= 1;
                }
                self.place(
                    &mut plan,
                    i,
                    Task {
                        key,
                        params: p,
                        grads: g,
                    },
                )?;
            }
        }
        plan.positions = positions;
        plan.unmatched += new_grads;
        Ok(plan)
    }

    /// The keys of a named update, as [`Engine::plan`], with a key given twice in place of an
    /// unknown key.
    fn plan_named<'a>(
        &mut self,
        items: &'a mut [Named<'_, L::Param>],
    ) -> Result<Plan<'a, L::Param>, Error> {
        self.ready()?;
        let mut plan = self.spare.lend(self.entries.len());
        for n in items {
            let task = Task {
                key: n.key,
                params: &mut n.param,
                grads: &n.grad,
            };
            self.place(&mut plan, self.index.get(n.key).copied(), task)?;
        }
        plan.check_fresh()?;
        Ok(plan)
    }

    /// Checks one key against its gradient and against its state, the entry at `i` if it has
    /// one, and files it in `plan`.
    fn place<'a>(
        &self,
        plan: &mut Plan<'a, L::Param>,
        i: Option<usize>,
        task: Task<'a, L::Param>,
    ) -> Result<(), Error> {
        let (key, shape) = (task.key, task.params.shape());
        if !same(shape, task.grads.shape()) {
            return Err(Error::ShapeMismatch {
                key: key.to_string(),
                param_shape: shape.to_vec(),
                grad_shape: task.grads.shape().to_vec(),
            });
        }
        plan.elements += task.params.len();
        let Some(i) = i else {
            plan.fresh.push(task);
            return Ok(());
        };
        if let Some(e) = self
            .entries
            .get(i)
            .filter(|e| !same(e.shape.slice(), shape))
        {
            return Err(Error::StateShapeMismatch {
                key: key.to_string(),
                state_shape: e.shape.slice().to_vec(),
                param_shape: shape.to_vec(),
            });
        }
        match plan.known.get_mut(i) {
            Some(Some(_)) => Err(Error::DuplicateKey {
                key: key.to_string(),
            }),
            Some(place) => {
                *place = Some(task);
                Ok(())
            }
            None => Ok(()),
        }
    }

    /// The checks of every update that do not depend on its keys.
    fn ready(&self) -> Result<(), Error> {
        self.validate()?;
        if self.rule.mode() == Some(Mode::Eval) {
            return Err(Error::EvalMode);
        }
        Ok(())
    }

    /// Whether the non-finite guard skips this step (counting it), or refuses it.
    fn skips<'g>(
        &mut self,
        grads: impl Iterator<Item = (&'g str, &'g ArrayRefD<L::Param>)>,
    ) -> Result<bool, Error>
    where
        F: 'g,
    {
        self.non_finite.skips(&mut self.skipped, grads)
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
            self.check_state(key, shape)?;
        }
        Ok(true)
    }

    /// Moves every parameter that has state to the point of `mode`, once [`Engine::switches`]
    /// said yes.
    fn switch<'p>(
        &mut self,
        mode: Mode,
        params: impl Iterator<Item = (&'p str, &'p mut ArrayRefD<L::Param>)>,
    ) where
        F: 'p,
    {
        for (key, p) in params {
            if let Some(e) = self.index.get(key).and_then(|&i| self.entries.get(i)) {
                L::switch(&self.rule, mode, p, &e.slots);
            }
        }
        self.rule.set_mode(mode);
    }

    /// Steps every key of a checked plan: state first created for new keys, then each key in
    /// memory order (or, with the `rayon` feature and enough elements, in parallel).
    fn run(&mut self, mut plan: Plan<'_, L::Param>) -> Result<(), Error> {
        if self.skips(plan.tasks().map(|t| (t.key, t.grads)))? {
            self.spare.keep(plan);
            return Ok(());
        }
        if !plan.fresh.is_empty() {
            plan.fresh.sort_unstable_by_key(Task::address);
            self.resort |= plan.known.iter().flatten().any(|t| {
                plan.fresh
                    .first()
                    .is_some_and(|f| t.address() > f.address())
            });
            // The index's keys first, so that small allocations lie side by side in memory (and
            // in cache when looked up), not between the large slot arrays.
            self.index.reserve(plan.fresh.len());
            for (i, task) in plan.fresh.iter().enumerate() {
                self.index
                    .insert(task.key.to_string(), self.entries.len() + i);
            }
            for task in plan.fresh.drain(..) {
                self.entries
                    .push(self.new_entry(task.key, task.params.shape()));
                plan.known.push(Some(task));
            }
        }
        if self.resort {
            self.sort_by_memory(&mut plan.known);
        }
        let (rule, lr, groups) = (&self.rule, (self.lr, self.rounding), &self.groups[..]);
        #[cfg(feature = "rayon")]
        if crate::parallel::worth_it(plan.elements) && plan.tasks().nth(1).is_some() {
            use rayon::prelude::*;
            plan.known
                .par_iter_mut()
                .zip(self.entries.par_iter_mut())
                .for_each(|(task, e)| {
                    if let Some(t) = task.take() {
                        step_key::<R, F, L>(rule, lr, groups, t, e);
                    }
                });
            self.spare.keep(plan);
            return Ok(());
        }
        let mut last = 0;
        let mut keys = (plan.known.iter_mut().zip(&mut self.entries))
            .filter_map(|(t, e)| Some((t.take()?, e)))
            .peekable();
        while let Some((t, e)) = keys.next() {
            if let Some((next, e)) = keys.peek() {
                let bytes = next.params.len() * size_of::<L::Param>();
                prefetch(next.params.as_ptr(), bytes);
                prefetch(next.grads.as_ptr(), bytes);
                // Each slot of the state starts a stream of its own.
                for slot in e.slots.chunks(next.params.len().max(1)) {
                    prefetch(slot.as_ptr(), size_of_val(slot));
                }
            }
            self.resort |= t.address() < last;
            last = t.address();
            step_key::<R, F, L>(rule, lr, groups, t, e);
        }
        self.spare.keep(plan);
        Ok(())
    }

    /// Puts the entries (and the plan's tasks with them) in the order of this call's parameters
    /// in memory; keys absent from the call go last, in their previous order.
    fn sort_by_memory(&mut self, known: &mut [Option<Task<'_, L::Param>>]) {
        let mut order: Vec<usize> = (0..self.entries.len()).collect();
        order.sort_by_key(|&i| {
            known
                .get(i)
                .and_then(Option::as_ref)
                .map_or(usize::MAX, Task::address)
        });
        let mut moved_to = vec![0; order.len()];
        for (to, &from) in order.iter().enumerate() {
            moved_to[from] = to;
        }
        for i in self.index.values_mut() {
            *i = moved_to[*i];
        }
        let mut entries: Vec<_> = std::mem::take(&mut self.entries)
            .into_iter()
            .map(Some)
            .collect();
        self.entries = order.iter().filter_map(|&i| entries[i].take()).collect();
        let mut tasks: Vec<_> = known.iter_mut().map(Option::take).collect();
        for (place, &i) in known.iter_mut().zip(&order) {
            *place = tasks[i].take();
        }
        self.resort = false;
    }

    /// Fresh state for `key`, a parameter of `shape`, in the first group that selects it.
    pub(super) fn new_entry(&self, key: &str, shape: &[usize]) -> EntryOf<R, F, L> {
        let mut entry = new_entry::<R, F, L>(&self.rule, (self.lr, self.rounding), key, shape);
        entry.group = self.groups.iter().position(|g| g.selects(key));
        entry
    }

    /// [`Optimizer::eval`] and [`Optimizer::train`] on a map.
    fn switch_map(&mut self, mode: Mode, params: &mut Params<L::Param>) -> Result<(), Error> {
        if self.switches(mode, params.iter().map(|(k, p)| (k.as_str(), p.shape())))? {
            self.switch(mode, params.iter_mut().map(|(k, p)| (k.as_str(), &mut **p)));
        }
        Ok(())
    }

    /// [`Optimizer::eval_named`] and [`Optimizer::train_named`].
    fn switch_named(
        &mut self,
        mode: Mode,
        params: &mut [Named<'_, L::Param>],
    ) -> Result<(), Error> {
        if self.switches(mode, params.iter().map(|n| (n.key, n.param.shape())))? {
            self.switch(mode, params.iter_mut().map(|n| (n.key, &mut *n.param)));
        }
        Ok(())
    }
}

impl<R: Rule<F>, F: Scalar, L: Layout<F>> Optimizer<L::Param> for Engine<R, F, L> {
    fn update(
        &mut self,
        params: &mut Params<L::Param>,
        grads: &Params<L::Param>,
    ) -> Result<(), Error> {
        let plan = self.plan(params, grads)?;
        if plan.unmatched > 0 {
            drop(plan);
            return Err(unknown_key(params, grads));
        }
        self.run(plan)
    }

    fn update_named(&mut self, params: &mut [Named<'_, L::Param>]) -> Result<(), Error> {
        let plan = self.plan_named(params)?;
        self.run(plan)
    }

    fn learning_rate(&self) -> f64 {
        self.lr
    }

    fn set_learning_rate(&mut self, lr: f64) -> Result<(), Error> {
        check::learning_rate(lr)?;
        self.lr = lr;
        Ok(())
    }

    fn hyperparameter(&self, h: Hyperparameter) -> Option<f64> {
        match h {
            Hyperparameter::LearningRate => Some(self.lr),
            _ => self.rule.hyperparameter(h),
        }
    }

    fn set_hyperparameter(&mut self, h: Hyperparameter, value: f64) -> Result<(), Error> {
        if h == Hyperparameter::LearningRate {
            return self.set_learning_rate(value);
        }
        let Some(old) = self.rule.hyperparameter(h) else {
            return Err(Error::NoHyperparameter {
                optimizer: self.rule.name(),
                hyperparameter: h,
            });
        };
        check::finite("hyperparameter", value)?;
        let layout = self.rule.slot_names();
        self.rule.set_hyperparameter(h, value);
        let checked = if !self.entries.is_empty() && self.rule.slot_names() != layout {
            Err(Error::IncompatibleOptions {
                reason: "this value changes the state the optimizer keeps (a momentum buffer \
                         exists only with a non-zero momentum): set it before the first update, \
                         or reset()",
            })
        } else {
            self.rule.validate()
        };
        if checked.is_err() {
            self.rule.set_hyperparameter(h, old);
        }
        checked
    }

    fn reset(&mut self) {
        self.index.clear();
        self.entries.clear();
        self.resort = false;
    }

    fn name(&self) -> &'static str {
        self.rule.name()
    }

    fn eval(&mut self, params: &mut Params<L::Param>) -> Result<(), Error> {
        self.switch_map(Mode::Eval, params)
    }

    fn train(&mut self, params: &mut Params<L::Param>) -> Result<(), Error> {
        self.switch_map(Mode::Train, params)
    }

    fn eval_named(&mut self, params: &mut [Named<'_, L::Param>]) -> Result<(), Error> {
        self.switch_named(Mode::Eval, params)
    }

    fn train_named(&mut self, params: &mut [Named<'_, L::Param>]) -> Result<(), Error> {
        self.switch_named(Mode::Train, params)
    }
}

/// The error for a gradient whose key `params` lacks.
pub(super) fn unknown_key<E>(params: &Params<E>, grads: &Params<E>) -> Error {
    let key = grads.keys().find(|k| !params.contains_key(*k));
    Error::UnknownKey {
        key: key.cloned().unwrap_or_default(),
    }
}

/// One key's step, with its group's hyperparameters.
fn step_key<R: Rule<F>, F: Scalar, L: Layout<F>>(
    rule: &R,
    (lr, rounding): (f64, Rounding),
    groups: &[Group],
    task: Task<'_, L::Param>,
    entry: &mut EntryOf<R, F, L>,
) {
    entry.step += 1;
    let group = entry.group.and_then(|i| groups.get(i));
    let write = match rounding {
        _ if L::NATIVE => Write::Nearest,
        Rounding::Nearest => Write::Nearest,
        Rounding::Kahan => Write::Kahan(&mut entry.compensation),
        Rounding::Stochastic { seed } => Write::Stochastic(key_seed(seed, task.key, entry.step)),
    };
    let step: Step<'_, F, L> = Step {
        key: task.key,
        lr: lr * group.map_or(1.0, |g| g.lr_scale),
        weight_decay: group.and_then(|g| g.weight_decay),
        trust_ratio: group.is_none_or(|g| g.trust_ratio),
        t: entry.step,
        params: task.params,
        grads: task.grads,
        state: &mut entry.slots,
        scratch: &mut entry.scratch,
        write,
    };
    rule.step(step, &mut entry.scalars);
}

/// Fresh state for a parameter of `shape`: Kahan's compensation too, when the engine rounds so.
fn new_entry<R: Rule<F>, F: Scalar, L: Layout<F>>(
    rule: &R,
    (lr, rounding): (f64, Rounding),
    key: &str,
    shape: &[usize],
) -> EntryOf<R, F, L> {
    let spec = rule.slots(key, shape);
    let mut slots = Vec::with_capacity(spec.iter().map(|(_, s)| s.size()).sum());
    for (name, s) in &spec {
        let init = L::State::round(cast::<F>(rule.initial_value(name, lr)));
        slots.extend(std::iter::repeat_n(init, s.size()));
    }
    let kahan = rounding == Rounding::Kahan && !L::NATIVE;
    let elements = if kahan { shape.iter().product() } else { 0 };
    Entry {
        shape: IxDyn(shape),
        group: None,
        step: 0,
        scalars: R::KeyScalars::default(),
        slots,
        compensation: vec![L::Param::default(); elements],
        scratch: vec![F::zero(); rule.scratch(key, shape)],
    }
}

/// How many keys ahead a plan asks for the keys it will look up.
const AHEAD: usize = 8;

/// How many cache lines of each of the next key's arrays a step asks for in advance (measured:
/// 4 and 32 lines leave more time per key than 16, on 1000 keys of 1000 `f32`).
const LINES: usize = 16;

/// Asks for the first cache lines (at most [`LINES`]) of `bytes` bytes at `p` that a coming step
/// reads, so that they arrive while the current one computes.
#[inline(always)]
#[cfg_attr(not(target_arch = "x86_64"), allow(unused_variables))]
fn prefetch<T: ?Sized>(p: *const T, bytes: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        let line = |i: usize| {
            // SAFETY: a prefetch is a hint that never faults, whatever the address.
            unsafe {
                use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
                _mm_prefetch::<_MM_HINT_T0>(p.cast::<i8>().wrapping_add(64 * i));
            }
        };
        // A count known at compile time for large arrays: the loop unrolls (measured faster).
        if bytes >= 64 * LINES {
            (0..LINES).for_each(line);
        } else {
            (0..bytes.div_ceil(64)).for_each(line);
        }
    }
}

/// Whether two shapes are equal, compared inline: slice equality calls `memcmp`, which costs more
/// than the comparison of a few dimensions, once per key and step.
#[inline(always)]
fn same(a: &[usize], b: &[usize]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x == y)
}
