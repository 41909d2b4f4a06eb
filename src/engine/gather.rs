//! Stage 1 of a step, gather and check: each key of a call meets its gradient and its state, and
//! the whole call is checked before anything is written. The result is a [`Plan`].

use ndarray::{ArrayRefD, Dimension};

use super::order::prefetch;
use super::{Engine, Layout, Mode, Params, Rule, Scalar};
use crate::{Error, Named};

/// One key of a call: its parameter and gradient, borrowed for the call.
pub(crate) struct Task<'a, F> {
    pub(crate) key: &'a str,
    pub(crate) params: &'a mut ArrayRefD<F>,
    pub(crate) grads: &'a ArrayRefD<F>,
}

impl<F> Task<'_, F> {
    /// Where the parameter's data starts: the key's place in memory order.
    pub(crate) fn address(&self) -> usize {
        self.params.as_ptr() as usize
    }
}

/// The keys of one call: `known[i]` holds the key whose state is the engine's entry `i`, keys
/// without state wait in `fresh`.
pub(crate) struct Plan<'a, F> {
    pub(crate) known: Vec<Option<Task<'a, F>>>,
    pub(crate) fresh: Vec<Task<'a, F>>,
    /// A map update's gradients of keys with state, at their entry's place until their
    /// parameter is found.
    pub(crate) grads: Vec<Option<&'a ArrayRefD<F>>>,
    /// A map update's entry positions of its parameters, in the map's order.
    pub(crate) positions: Vec<Option<usize>>,
    /// Gradients of a map update whose parameter has not been found.
    pub(crate) unmatched: usize,
    /// Elements in all, to decide on threads.
    pub(crate) elements: usize,
}

impl<F> Plan<'_, F> {
    /// Every task of the call, known keys first.
    pub(crate) fn tasks(&self) -> impl Iterator<Item = &Task<'_, F>> {
        self.known.iter().flatten().chain(&self.fresh)
    }

    /// Refuses a new key given twice (a known key given twice is caught as it is placed).
    pub(crate) fn check_fresh(&mut self) -> Result<(), Error> {
        if self.fresh.len() > 1 {
            self.fresh.sort_unstable_by_key(|t| t.key);
            if let Some(pair) = self.fresh.windows(2).find(|w| w[0].key == w[1].key) {
                return Err(Error::DuplicateKey {
                    key: pair[0].key.to_string(),
                });
            }
        }
        Ok(())
    }
}

/// The allocations of [`Plan::known`] and [`Plan::grads`], kept from call to call so that steps
/// allocate nothing: empty vectors between calls, lent to each call under that call's lifetime.
pub(crate) struct Spare<F: 'static> {
    known: Vec<Option<Task<'static, F>>>,
    grads: Vec<Option<&'static ArrayRefD<F>>>,
    positions: Vec<Option<usize>>,
    /// Each key's sums in the first pass of a rule of [`Scope::Global`](super::Scope::Global).
    measured: Vec<(&'static str, [f64; 4])>,
}

impl<F> Spare<F> {
    /// An empty list for the first pass's sums of one call, in the kept allocation.
    pub(crate) fn lend_measured<'a>(&mut self) -> Vec<(&'a str, [f64; 4])> {
        recycle(std::mem::take(&mut self.measured))
    }

    /// Takes the list of [`Spare::lend_measured`] back.
    pub(crate) fn keep_measured(&mut self, measured: Vec<(&str, [f64; 4])>) {
        self.measured = recycle(measured);
    }

    /// A plan with a free place for each of `entries` entries.
    pub(crate) fn lend<'a>(&mut self, entries: usize) -> Plan<'a, F> {
        let mut known = recycle(std::mem::take(&mut self.known));
        known.resize_with(entries, || None);
        let mut grads = recycle(std::mem::take(&mut self.grads));
        grads.resize(entries, None);
        let mut positions = std::mem::take(&mut self.positions);
        positions.clear();
        Plan {
            known,
            fresh: Vec::new(),
            grads,
            positions,
            unmatched: 0,
            elements: 0,
        }
    }

    /// Grows the allocations for `entries` entries, in a call that creates state, so that
    /// later calls allocate nothing.
    pub(crate) fn reserve(&mut self, entries: usize) {
        self.known.reserve(entries.saturating_sub(self.known.len()));
        self.grads.reserve(entries.saturating_sub(self.grads.len()));
        self.positions
            .reserve(entries.saturating_sub(self.positions.len()));
    }

    /// Takes the allocations back at the end of a call.
    pub(crate) fn keep(&mut self, plan: Plan<'_, F>) {
        let entries = plan.known.len();
        self.known = recycle(plan.known);
        self.grads = recycle(plan.grads);
        // Grown with the entries a call created, so that the next call allocates nothing.
        self.grads.reserve(entries);
        self.positions = plan.positions;
    }
}

/// Empties `v` and reuses its allocation for items of the same layout (the standard library
/// collects a mapped `vec::IntoIter` in place; the allocation test sees it if that ever stops).
fn recycle<T, U>(mut v: Vec<T>) -> Vec<U> {
    v.clear();
    v.into_iter()
        .map(|_| unreachable!("the vector is empty"))
        .collect()
}

impl<F> Default for Spare<F> {
    fn default() -> Self {
        Self {
            known: Vec::new(),
            grads: Vec::new(),
            positions: Vec::new(),
            measured: Vec::new(),
        }
    }
}

/// A clone starts without the spare allocation: it holds nothing between calls.
impl<F> Clone for Spare<F> {
    fn clone(&self) -> Self {
        Self::default()
    }
}

impl<F> std::fmt::Debug for Spare<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Spare")
    }
}

impl<R: Rule<F>, F: Scalar, L: Layout<F>> Engine<R, F, L> {
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
    pub(super) fn plan_named<'a>(
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
    pub(super) fn place<'a>(
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
    pub(super) fn ready(&self) -> Result<(), Error> {
        self.validate()?;
        if self.rule.mode() == Some(Mode::Eval) {
            return Err(Error::EvalMode);
        }
        Ok(())
    }
}

/// How many keys ahead a plan asks for the keys it will look up.
const AHEAD: usize = 8;

/// Whether two shapes are equal, compared inline: slice equality calls `memcmp`, which costs more
/// than the comparison of a few dimensions, once per key and step.
#[inline(always)]
fn same(a: &[usize], b: &[usize]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x == y)
}
