//! Stage 3 of a step, step each key: state is created for keys new to the optimizer, then each key
//! of the plan is handed to its rule as a [`Step`], one after another or across threads.

use ndarray::{ArrayRefD, Dimension, IxDyn};

use super::driver::{Entry, EntryOf};
use super::gather::{Plan, Task};
use super::order::prefetch;
use super::{Engine, Layout, Rule, Scalar, Scope, Step, Write, cast};
use crate::element::{Rounding, Store, key_seed};
use crate::{Error, Group};

impl<R: Rule<F>, F: Scalar, L: Layout<F>> Engine<R, F, L> {
    /// Whether the non-finite guard skips this step (counting it), or refuses it.
    pub(super) fn skips<'g>(
        &mut self,
        grads: impl Iterator<Item = (&'g str, &'g ArrayRefD<L::Param>)>,
    ) -> Result<bool, Error>
    where
        F: 'g,
    {
        self.non_finite.skips(&mut self.skipped, grads)
    }

    /// Steps every key of a checked plan: state first created for new keys, then each key in
    /// memory order (or, with the `rayon` feature and enough elements, in parallel).
    pub(super) fn run(&mut self, mut plan: Plan<'_, L::Param>) -> Result<(), Error> {
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
        if R::SCOPE == Scope::Global {
            self.reduce_globals(&mut plan);
        }
        let (rule, lr, groups) = (&self.rule, (self.lr, self.rounding), &self.groups[..]);
        let globals = &self.globals[..];
        #[cfg(feature = "rayon")]
        if crate::parallel::worth_it(plan.elements) && plan.tasks().nth(1).is_some() {
            use rayon::prelude::*;
            plan.known
                .par_iter_mut()
                .zip(self.entries.par_iter_mut())
                .for_each(|(task, e)| {
                    if let Some(t) = task.take() {
                        step_key::<R, F, L>(rule, lr, groups, globals, t, e);
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
            step_key::<R, F, L>(rule, lr, groups, globals, t, e);
        }
        self.spare.keep(plan);
        Ok(())
    }

    /// The first pass of a rule of [`Scope::Global`]: every key of the plan measured, and the
    /// sums reduced into the optimizer-wide scalars (made on the first step). The keys' sums are
    /// added in the order of their names, so that the result does not depend on where the
    /// arrays lie in memory.
    fn reduce_globals(&mut self, plan: &mut Plan<'_, L::Param>) {
        if self.globals.is_empty() {
            self.globals = self.rule.globals().into_iter().map(|(_, v)| v).collect();
        }
        let (rule, lr, groups) = (&self.rule, (self.lr, self.rounding), &self.groups[..]);
        let mut measured = self.spare.lend_measured();
        for (task, e) in plan.known.iter_mut().zip(&mut self.entries) {
            let Some(task) = task else { continue };
            let task = Task {
                key: task.key,
                params: &mut *task.params,
                grads: task.grads,
            };
            let (key, t) = (task.key, e.step + 1);
            let (mut step, _) = step_of::<R, F, L>(lr, groups, &self.globals, task, e, t);
            measured.push((key, rule.measure(&mut step)));
        }
        measured.sort_unstable_by_key(|m| m.0);
        let mut sums = [0.0; 4];
        for (_, m) in &measured {
            for (sum, s) in sums.iter_mut().zip(m) {
                *sum += s;
            }
        }
        self.spare.keep_measured(measured);
        rule.reduce(&mut self.globals, sums, self.lr);
    }

    /// Fresh state for `key`, a parameter of `shape`, in the first group that selects it.
    pub(super) fn new_entry(&self, key: &str, shape: &[usize]) -> EntryOf<R, F, L> {
        let mut entry = new_entry::<R, F, L>(&self.rule, (self.lr, self.rounding), key, shape);
        entry.group = self.groups.iter().position(|g| g.selects(key));
        entry
    }
}

/// One key's step, with its group's hyperparameters.
pub(super) fn step_key<R: Rule<F>, F: Scalar, L: Layout<F>>(
    rule: &R,
    lr: (f64, Rounding),
    groups: &[Group],
    globals: &[f64],
    task: Task<'_, L::Param>,
    entry: &mut EntryOf<R, F, L>,
) {
    entry.step += 1;
    let t = entry.step;
    let (step, scalars) = step_of::<R, F, L>(lr, groups, globals, task, entry, t);
    rule.step(step, scalars);
}

/// Step `t` of one key as its rule sees it, with its group's hyperparameters, and the key's
/// scalars.
fn step_of<'a, R: Rule<F>, F: Scalar, L: Layout<F>>(
    (lr, rounding): (f64, Rounding),
    groups: &[Group],
    globals: &'a [f64],
    task: Task<'a, L::Param>,
    entry: &'a mut EntryOf<R, F, L>,
    t: u64,
) -> (Step<'a, F, L>, &'a mut R::KeyScalars) {
    let group = entry.group.and_then(|i| groups.get(i));
    let write = match rounding {
        _ if L::NATIVE => Write::Nearest,
        Rounding::Nearest => Write::Nearest,
        Rounding::Kahan => Write::Kahan(&mut entry.compensation),
        Rounding::Stochastic { seed } => Write::Stochastic(key_seed(seed, task.key, t)),
    };
    let step = Step {
        key: task.key,
        lr: lr * group.map_or(1.0, |g| g.lr_scale),
        weight_decay: group.and_then(|g| g.weight_decay),
        trust_ratio: group.is_none_or(|g| g.trust_ratio),
        t,
        globals,
        params: task.params,
        grads: task.grads,
        state: &mut entry.slots,
        scratch: &mut entry.scratch,
        write,
        scope: R::SCOPE,
    };
    (step, &mut entry.scalars)
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
