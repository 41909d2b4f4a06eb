//! One call's keys: gathered and checked in a single pass (one lookup per key), then stepped in
//! the order of their parameters in memory.
//!
//! Why memory order: a step over many small arrays is bound by how fast each array's data
//! arrives, and the hardware prefetchers only help when consecutive arrays follow each other in
//! memory. Hash order scatters them (`shared/notes/performance.md`). So the engine keeps its
//! entries sorted by their parameters' addresses, creates new state in that order (its slots then
//! follow in memory too), and sorts again only when a step finds the order broken.

use ndarray::ArrayRefD;

use crate::Error;

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
}

impl<F> Spare<F> {
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
