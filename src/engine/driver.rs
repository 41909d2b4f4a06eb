//! The driver: [`Engine`], its options and accessors, and its [`Optimizer`] methods, which run
//! the stages of an update (gather, order, run) and set hyperparameters.

use ndarray::{ArrayRefD, ArrayViewD, Dimension, IxDyn};

use super::gather::Spare;
use super::{Layout, Mode, Native, Params, Rule, Scalar, Scope};
use crate::element::{Element, Rounding};
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
    /// The optimizer-wide scalars of a rule of [`Scope::Global`], made on the first update.
    pub(crate) globals: Vec<f64>,
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
            globals: Vec::new(),
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
            globals: Vec::new(),
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
        if !L::NATIVE && R::SCOPE == Scope::Tensor {
            return Err(Error::IncompatibleOptions {
                reason: "this optimizer needs whole tensors in its arithmetic type (Muon, \
                         Adafactor, chains with a tensor stage): it runs on f32 or f64 parameters \
                         only",
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

    /// The optimizer-wide scalar `name` of a rule of [`Scope::Global`] (Prodigy's `d`); `None`
    /// before the first update, or if the rule keeps no such scalar.
    pub fn global(&self, name: &str) -> Option<f64> {
        let names = self.rule.globals();
        let i = names.iter().position(|(n, _)| *n == name)?;
        self.globals.get(i).copied()
    }

    /// The scalars `key` keeps beyond its step count; `None` before its first update.
    pub fn key_scalars(&self, key: &str) -> Option<&R::KeyScalars> {
        self.entry(key).map(|s| &s.scalars)
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
        self.globals.clear();
        self.resort = false;
    }

    fn name(&self) -> &'static str {
        self.rule.name()
    }

    fn scope(&self) -> Scope {
        R::SCOPE
    }

    fn global(&self, name: &str) -> Option<f64> {
        Engine::global(self, name)
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
