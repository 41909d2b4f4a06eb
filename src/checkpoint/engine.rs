//! Taking and restoring an [`Engine`]'s checkpoint.

use ndarray::{Dimension, IxDyn};

use super::{Checkpoint, FORMAT_VERSION, KeyState, SlotState};
use crate::element::{Rounding, Store};
use crate::engine::{Engine, Entry, Layout, Rule, Scalar};
use crate::{Error, check};

/// The largest step count a checkpoint may carry: bias corrections compute with `t` as an `f64`,
/// exact up to 2^53, and the next update adds one.
pub const MAX_STEP: u64 = 1 << 53;

/// The number of elements of `shape`, if it fits in a `usize`.
pub(crate) fn elements(shape: &[usize]) -> Option<usize> {
    shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d))
}

/// The name of Kahan's compensation in a checkpoint: torch-optimi's.
const KAHAN: &str = "kahan_comp";

impl<R: Rule<F>, F: Scalar, L: Layout<F>> Engine<R, F, L> {
    /// The optimizer's complete state (see [`crate::checkpoint`]).
    pub fn checkpoint(&self) -> Checkpoint<R, R::KeyScalars, L::State> {
        let mut keys: Vec<_> = self
            .index
            .iter()
            .filter_map(|(key, &i)| {
                let e = self.entries.get(i)?;
                let mut start = 0;
                let mut slots: Vec<_> = self
                    .rule
                    .slots(key, e.shape.slice())
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
                if self.rounding == Rounding::Kahan && !L::NATIVE {
                    slots.push(SlotState {
                        name: KAHAN.to_string(),
                        shape: e.shape.slice().to_vec(),
                        data: e
                            .compensation
                            .iter()
                            .map(|&c| L::State::round(c.load()))
                            .collect(),
                    });
                }
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
            rounding: self.rounding,
            globals: (self.rule.globals().iter().zip(&self.globals))
                .map(|((name, _), &v)| (name.to_string(), v))
                .collect(),
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
    pub fn restore(
        &mut self,
        checkpoint: Checkpoint<R, R::KeyScalars, L::State>,
    ) -> Result<(), Error> {
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
        if L::NATIVE && checkpoint.rounding != Rounding::Nearest {
            return bad(format!(
                "a checkpoint rounding {:?} loads into low-precision parameters only",
                checkpoint.rounding
            ));
        }
        let kahan = checkpoint.rounding == Rounding::Kahan;
        checkpoint.rule.validate()?;
        let names = checkpoint.rule.globals();
        let globals_named = checkpoint.globals.len() == names.len()
            && (checkpoint.globals.iter().zip(&names)).all(|((a, _), (b, _))| a == b);
        // Before the first update there are none; after it, a step size lost would restart.
        let no_globals = checkpoint.globals.is_empty() && checkpoint.keys.is_empty();
        if !globals_named && !no_globals {
            return bad(format!(
                "optimizer-wide scalars {:?}; {} keeps {:?}",
                checkpoint.globals.iter().map(|g| &g.0).collect::<Vec<_>>(),
                R::NAME,
                names.iter().map(|g| g.0).collect::<Vec<_>>()
            ));
        }
        if let Some(scheduler) = &checkpoint.scheduler {
            scheduler.check()?;
        }
        let mut index = hashbrown::HashMap::with_capacity(checkpoint.keys.len());
        let mut entries = Vec::with_capacity(checkpoint.keys.len());
        for k in checkpoint.keys {
            if elements(&k.shape).is_none() {
                return bad(format!(
                    "key {:?}: shape {:?} has more elements than this machine can address",
                    k.key, k.shape
                ));
            }
            if k.step > MAX_STEP {
                return bad(format!(
                    "key {:?}: step count {} is beyond 2^53, where f64 stops counting exactly",
                    k.key, k.step
                ));
            }
            let mut spec = checkpoint.rule.slots(&k.key, &k.shape);
            if kahan {
                spec.push((KAHAN, IxDyn(&k.shape)));
            }
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
            // Every claim is checked against the data before anything is allocated by it.
            let mut total = 0usize;
            let mut sources = Vec::with_capacity(spec.len());
            for (name, shape) in &spec {
                let Some(s) = k.slots.iter().find(|s| s.name == *name) else {
                    return bad(format!("key {:?}: slot {name:?} is missing", k.key));
                };
                let size = elements(shape.slice());
                if s.shape != shape.slice() || size != Some(s.data.len()) {
                    return bad(format!(
                        "key {:?}: slot {name:?} has shape {:?} ({} elements); a parameter of shape {:?} needs {:?}",
                        k.key,
                        s.shape,
                        s.data.len(),
                        k.shape,
                        shape.slice()
                    ));
                }
                total += s.data.len();
                sources.push(&s.data);
            }
            let mut slots = Vec::with_capacity(total);
            for data in sources {
                slots.extend_from_slice(data);
            }
            // Kahan's compensation is the last of the spec, stored in the parameters' type.
            let compensation = if kahan {
                let n = elements(&k.shape).unwrap_or(0);
                let comp = slots.split_off(slots.len() - n);
                comp.into_iter()
                    .map(|c| L::Param::round(c.load()))
                    .collect()
            } else {
                Vec::new()
            };
            if k.slots.len() != spec.len() {
                return bad(format!("key {:?}: a slot appears twice", k.key));
            }
            if index.insert(k.key.clone(), entries.len()).is_some() {
                return bad(format!("key {:?} appears twice", k.key));
            }
            let group = self.groups.iter().position(|g| g.selects(&k.key));
            let scratch = vec![F::zero(); checkpoint.rule.scratch(&k.key, &k.shape)];
            entries.push(Entry {
                shape: IxDyn(&k.shape),
                group,
                step: k.step,
                scalars: k.scalars,
                slots,
                compensation,
                scratch,
            });
        }
        self.rule = checkpoint.rule;
        self.globals = checkpoint.globals.into_iter().map(|(_, v)| v).collect();
        self.rounding = checkpoint.rounding;
        self.lr = checkpoint.lr;
        self.skipped = checkpoint.skipped_steps;
        self.index = index;
        self.entries = entries;
        self.resort = true;
        Ok(())
    }
}
