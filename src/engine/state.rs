//! The state an engine keeps per key, as code outside the engine reads and writes it: the
//! interface [`Average`](crate::average::Average), [`Lookahead`](crate::lookahead::Lookahead)
//! and [`MultiSteps`](crate::accumulate::MultiSteps) keep their state through, open to anyone's
//! wrapper.

use ndarray::Dimension;

use super::driver::unknown_key;
use super::{Engine, Layout, Params, Rule, Scalar};
use crate::Error;

/// One key's state, writable: its step count and its slots, one after another as
/// [`Engine::slot_names`] lists them, each in the parameter's logical (row-major) order.
#[derive(Debug)]
#[non_exhaustive]
pub struct KeyState<'a, S> {
    /// The number of updates the key has had.
    pub step: &'a mut u64,
    /// Its slots, flat.
    pub slots: &'a mut [S],
}

impl<R: Rule<F>, F: Scalar, L: Layout<F>> Engine<R, F, L> {
    /// The rule, to change what no builder sets (a wrapper's counters, say). The next update
    /// validates it.
    pub fn rule_mut(&mut self) -> &mut R {
        &mut self.rule
    }

    /// Checks that `key`'s state, if it has any, was made for a parameter of `shape`.
    ///
    /// # Errors
    ///
    /// [`Error::StateShapeMismatch`] naming the key and both shapes.
    pub fn check_state(&self, key: &str, shape: &[usize]) -> Result<(), Error> {
        match self.entry(key) {
            Some(st) if st.shape.slice() != shape => Err(Error::StateShapeMismatch {
                key: key.to_string(),
                state_shape: st.shape.slice().to_vec(),
                param_shape: shape.to_vec(),
            }),
            _ => Ok(()),
        }
    }

    /// `key`'s step count and slots (as [`KeyState`] lays them out); `None` before its state
    /// exists.
    pub fn state(&self, key: &str) -> Option<(u64, &[L::State])> {
        self.entry(key).map(|e| (e.step, &e.slots[..]))
    }

    /// `key`'s state, created for a parameter of `shape` if it has none (at step 0, its slots at
    /// the rule's initial values), as the first update of the key creates it.
    ///
    /// # Errors
    ///
    /// [`Error::StateShapeMismatch`] if the key's state was made for another shape; nothing is
    /// created then.
    pub fn state_mut(
        &mut self,
        key: &str,
        shape: &[usize],
    ) -> Result<KeyState<'_, L::State>, Error> {
        self.check_state(key, shape)?;
        let i = match self.index.get(key) {
            Some(&i) => i,
            None => {
                let entry = self.new_entry(key, shape);
                self.index.insert(key.to_string(), self.entries.len());
                self.entries.push(entry);
                self.spare.reserve(self.entries.len());
                // Made in the caller's order, not memory order: the next step sorts.
                self.resort = true;
                self.entries.len() - 1
            }
        };
        let e = &mut self.entries[i];
        Ok(KeyState {
            step: &mut e.step,
            slots: &mut e.slots,
        })
    }

    /// Every key's state, in no particular order.
    pub fn states_mut(&mut self) -> impl Iterator<Item = KeyState<'_, L::State>> {
        self.entries.iter_mut().map(|e| KeyState {
            step: &mut e.step,
            slots: &mut e.slots,
        })
    }

    /// Checks an update whole, as [`Optimizer::update`](crate::Optimizer::update) does, without
    /// writing anything: for wrappers that decide afterwards what to write.
    ///
    /// # Errors
    ///
    /// Those of [`Optimizer::update`](crate::Optimizer::update).
    pub fn check_update(
        &mut self,
        params: &mut Params<L::Param>,
        grads: &Params<L::Param>,
    ) -> Result<(), Error> {
        let plan = self.plan(params, grads)?;
        let unmatched = plan.unmatched;
        self.spare.keep(plan);
        if unmatched > 0 {
            return Err(unknown_key(params, grads));
        }
        Ok(())
    }
}
