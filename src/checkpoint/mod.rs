//! Checkpoints: an optimizer's complete state (hyperparameters, learning rate, per-key slots,
//! step counts and scalars, and optionally a schedule's state), to resume training
//! bit-identically: N steps straight equal k steps, save, load into a fresh optimizer, N − k
//! steps.
//!
//! [`Engine::checkpoint`](crate::Engine::checkpoint) takes one and
//! [`Engine::restore`](crate::Engine::restore) loads one after checking it whole (an error leaves
//! the optimizer unchanged). Feature `serde` derives `Serialize`/`Deserialize` on [`Checkpoint`]
//! (use a format that keeps NaN and infinity, which JSON does not); feature `safetensors` writes
//! and reads safetensors files a Python user can open:
//!
//! - one tensor per key and slot, named `{key}.{slot}` with PyTorch's slot names (`exp_avg`,
//!   `exp_avg_sq`, `momentum_buffer`, `sum`, `square_avg`, …), in the element type;
//! - a metadata header of JSON strings: `format` ([`FORMAT_VERSION`]), `optimizer`, `dtype`,
//!   `hyperparameters`, `lr`, `skipped_steps`, `globals` (the optimizer-wide scalars, such as
//!   Prodigy's `d`, as `[name, value]` pairs with the value a decimal string that round-trips),
//!   `keys` (each key's shape, step count, scalars and slot names) and `scheduler`.

use crate::Rounding;
use crate::schedule::Scheduler;

mod engine;

pub use engine::MAX_STEP;

/// The version of the checkpoint layout; loading any other is an error.
pub const FORMAT_VERSION: u32 = 1;

/// An optimizer's complete state.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Checkpoint<R, K, F> {
    /// [`FORMAT_VERSION`] when written.
    pub format: u32,
    /// The optimizer kind (`Rule::NAME`), checked on loading.
    pub optimizer: String,
    /// The hyperparameters.
    pub rule: R,
    /// The learning rate.
    pub lr: f64,
    /// Steps skipped by the non-finite guard.
    pub skipped_steps: u64,
    /// How updates are rounded into low-precision parameters (with [`Rounding::Kahan`], each
    /// key carries a `kahan_comp` slot; with [`Rounding::Stochastic`], the seed continues the
    /// sequence from the keys' step counts).
    #[cfg_attr(feature = "serde", serde(default))]
    pub rounding: Rounding,
    /// The optimizer-wide scalars of a rule of [`Scope::Global`](crate::Scope::Global) (Prodigy's
    /// `d`), by name, in the rule's order; empty for other rules and before the first update.
    #[cfg_attr(feature = "serde", serde(default))]
    pub globals: Vec<(String, f64)>,
    /// Every key's state, sorted by key.
    pub keys: Vec<KeyState<K, F>>,
    /// A schedule's state, saved beside the optimizer's.
    pub scheduler: Option<Scheduler>,
}

/// One key's state.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct KeyState<K, F> {
    /// The parameter's key.
    pub key: String,
    /// The parameter's shape.
    pub shape: Vec<usize>,
    /// Updates received.
    pub step: u64,
    /// The rule's per-key scalars.
    pub scalars: K,
    /// The state arrays, in the rule's order.
    pub slots: Vec<SlotState<F>>,
}

/// One state array.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct SlotState<F> {
    /// The slot's name (PyTorch's, where PyTorch has the algorithm).
    pub name: String,
    /// Its shape.
    pub shape: Vec<usize>,
    /// Its elements in row-major order.
    pub data: Vec<F>,
}

#[cfg(feature = "safetensors")]
mod safetensors_io {
    use std::collections::HashMap;

    use safetensors::tensor::{Dtype, SafeTensors, TensorView};
    use serde::Serialize;
    use serde::de::DeserializeOwned;

    use super::{Checkpoint, FORMAT_VERSION, KeyState, SlotState};
    use crate::schedule::Scheduler;
    use crate::{Element, Engine, Error, Layout, Rounding, Rule, Scalar};

    impl<R, F, L> Engine<R, F, L>
    where
        R: Rule<F> + Serialize + DeserializeOwned,
        R::KeyScalars: Serialize + DeserializeOwned,
        F: Scalar,
        L: Layout<F>,
    {
        /// The optimizer's complete state, and `scheduler`'s, as a safetensors file.
        ///
        /// # Errors
        ///
        /// [`Error::Checkpoint`] if serialisation fails.
        pub fn save_safetensors(&self, scheduler: Option<&Scheduler>) -> Result<Vec<u8>, Error> {
            let mut c = self.checkpoint();
            c.scheduler = scheduler.cloned();
            c.to_safetensors()
        }

        /// Loads a file written by [`Engine::save_safetensors`] and returns the scheduler saved
        /// with it.
        ///
        /// # Errors
        ///
        /// Those of [`Checkpoint::from_safetensors`] and [`Engine::restore`]; after an error the
        /// optimizer is unchanged.
        pub fn load_safetensors(&mut self, bytes: &[u8]) -> Result<Option<Scheduler>, Error> {
            // The kind first: another optimizer's hyperparameters would fail to parse less clearly.
            if let Ok((_, header)) = SafeTensors::read_metadata(bytes)
                && let Some(kind) = header.metadata().as_ref().and_then(|m| m.get("optimizer"))
                && kind != R::NAME
            {
                return Err(corrupt(format!(
                    "a checkpoint of {kind} cannot load into {}",
                    R::NAME
                )));
            }
            let mut c = Checkpoint::from_safetensors(bytes)?;
            let scheduler = c.scheduler.take();
            self.restore(c)?;
            Ok(scheduler)
        }
    }

    fn corrupt(reason: impl std::fmt::Display) -> Error {
        Error::Checkpoint {
            reason: reason.to_string(),
        }
    }

    fn json<T: Serialize>(v: &T) -> Result<String, Error> {
        serde_json::to_string(v).map_err(corrupt)
    }

    /// What the metadata says of one key.
    #[derive(serde::Serialize, serde::Deserialize)]
    struct KeyMeta<K> {
        key: String,
        shape: Vec<usize>,
        step: u64,
        scalars: K,
        slots: Vec<String>,
    }

    /// The safetensors dtype of `E` and its name in the metadata.
    fn dtype<E: Element>() -> (Dtype, String) {
        let dt = match E::DTYPE {
            "F64" => Dtype::F64,
            "BF16" => Dtype::BF16,
            "F16" => Dtype::F16,
            _ => Dtype::F32,
        };
        (dt, E::DTYPE.to_lowercase())
    }

    impl<R: Serialize + DeserializeOwned, K: Serialize + DeserializeOwned + Clone, F: Element>
        Checkpoint<R, K, F>
    {
        /// The checkpoint as a safetensors file.
        ///
        /// # Errors
        ///
        /// [`Error::Checkpoint`] if serialisation fails.
        pub fn to_safetensors(&self) -> Result<Vec<u8>, Error> {
            let (dt, name) = dtype::<F>();
            let mut tensors: Vec<(String, Vec<u8>, Vec<usize>)> = Vec::new();
            for k in &self.keys {
                for s in &k.slots {
                    let mut bytes = Vec::with_capacity(s.data.len() * size_of::<F>());
                    s.data.iter().for_each(|x| x.write_le(&mut bytes));
                    tensors.push((format!("{}.{}", k.key, s.name), bytes, s.shape.clone()));
                }
            }
            let views = tensors
                .iter()
                .map(|(n, b, s)| {
                    TensorView::new(dt, s.clone(), b)
                        .map(|v| (n.clone(), v))
                        .map_err(corrupt)
                })
                .collect::<Result<Vec<_>, _>>()?;
            let keys: Vec<KeyMeta<K>> = self
                .keys
                .iter()
                .map(|k| KeyMeta {
                    key: k.key.clone(),
                    shape: k.shape.clone(),
                    step: k.step,
                    scalars: k.scalars.clone(),
                    slots: k.slots.iter().map(|s| s.name.clone()).collect(),
                })
                .collect();
            // Decimal strings: exact, and infinity survives JSON.
            let globals: Vec<(&str, String)> = (self.globals.iter())
                .map(|(n, v)| (n.as_str(), v.to_string()))
                .collect();
            let metadata = HashMap::from([
                ("format".to_string(), self.format.to_string()),
                ("optimizer".to_string(), self.optimizer.clone()),
                ("dtype".to_string(), name),
                ("rounding".to_string(), json(&self.rounding)?),
                ("hyperparameters".to_string(), json(&self.rule)?),
                ("lr".to_string(), json(&self.lr)?),
                ("skipped_steps".to_string(), self.skipped_steps.to_string()),
                ("globals".to_string(), json(&globals)?),
                ("keys".to_string(), json(&keys)?),
                ("scheduler".to_string(), json(&self.scheduler)?),
            ]);
            safetensors::serialize(views, Some(metadata)).map_err(corrupt)
        }

        /// Reads a safetensors file written by [`Checkpoint::to_safetensors`].
        ///
        /// # Errors
        ///
        /// [`Error::Checkpoint`] for a truncated or corrupt file, an unknown format version,
        /// another element type, a missing or extra tensor, or a tensor of another shape than
        /// its metadata says. [`Engine::restore`](crate::Engine::restore) then checks the
        /// checkpoint against the optimizer.
        pub fn from_safetensors(bytes: &[u8]) -> Result<Self, Error> {
            let (_, header) = SafeTensors::read_metadata(bytes).map_err(corrupt)?;
            let meta = header
                .metadata()
                .clone()
                .ok_or_else(|| corrupt("no ndoptim metadata in the file"))?;
            let field = |k: &str| {
                meta.get(k)
                    .ok_or_else(|| corrupt(format!("metadata has no {k:?}")))
            };
            let format: u32 = field("format")?.parse().map_err(corrupt)?;
            if format != FORMAT_VERSION {
                return Err(corrupt(format!(
                    "unknown format version {format} (this ndoptim reads {FORMAT_VERSION})"
                )));
            }
            let (dt, name) = dtype::<F>();
            if *field("dtype")? != name {
                return Err(corrupt(format!(
                    "checkpoint of {} elements, loaded as {name}",
                    field("dtype")?
                )));
            }
            let parse = |k: &str| -> Result<serde_json::Value, Error> {
                serde_json::from_str(field(k)?).map_err(corrupt)
            };
            let rule: R = serde_json::from_value(parse("hyperparameters")?).map_err(corrupt)?;
            let lr: f64 = serde_json::from_value(parse("lr")?).map_err(corrupt)?;
            let skipped_steps: u64 = field("skipped_steps")?.parse().map_err(corrupt)?;
            // Written since low-precision parameters came; older files round to nearest.
            let rounding: Rounding = match meta.get("rounding") {
                Some(r) => serde_json::from_str(r).map_err(corrupt)?,
                None => Rounding::Nearest,
            };
            // Written since optimizers with optimizer-wide scalars came; older files have none.
            let globals = match meta.get("globals") {
                Some(g) => {
                    let pairs: Vec<(String, String)> = serde_json::from_str(g).map_err(corrupt)?;
                    let value = |(n, v): (String, String)| Ok((n, v.parse().map_err(corrupt)?));
                    pairs.into_iter().map(value).collect::<Result<_, Error>>()?
                }
                None => Vec::new(),
            };
            let metas: Vec<KeyMeta<K>> = serde_json::from_value(parse("keys")?).map_err(corrupt)?;
            let scheduler: Option<Scheduler> =
                serde_json::from_value(parse("scheduler")?).map_err(corrupt)?;
            if let Some(s) = &scheduler {
                s.check()?;
            }
            let tensors = SafeTensors::deserialize(bytes).map_err(corrupt)?;
            let mut expected = 0;
            let mut keys = Vec::with_capacity(metas.len());
            for m in metas {
                let mut slots = Vec::with_capacity(m.slots.len());
                for slot in &m.slots {
                    let tensor_name = format!("{}.{slot}", m.key);
                    let t = tensors.tensor(&tensor_name).map_err(|_| {
                        corrupt(format!("key {:?}: slot {slot:?} is missing", m.key))
                    })?;
                    if t.dtype() != dt {
                        return Err(corrupt(format!(
                            "{tensor_name}: dtype {:?}, expected {dt:?}",
                            t.dtype()
                        )));
                    }
                    let data: Vec<F> = t
                        .data()
                        .chunks_exact(size_of::<F>())
                        .map(F::read_le)
                        .collect();
                    slots.push(SlotState {
                        name: slot.clone(),
                        shape: t.shape().to_vec(),
                        data,
                    });
                    expected += 1;
                }
                keys.push(KeyState {
                    key: m.key,
                    shape: m.shape,
                    step: m.step,
                    scalars: m.scalars,
                    slots,
                });
            }
            if tensors.len() != expected {
                let known: Vec<String> = keys
                    .iter()
                    .flat_map(|k| k.slots.iter().map(move |s| format!("{}.{}", k.key, s.name)))
                    .collect();
                let extra = tensors
                    .names()
                    .into_iter()
                    .find(|n| !known.iter().any(|k| k == n))
                    .unwrap_or_default();
                return Err(corrupt(format!(
                    "unexpected tensor {extra:?}: no key's slot"
                )));
            }
            Ok(Checkpoint {
                format,
                optimizer: field("optimizer")?.clone(),
                rule,
                lr,
                skipped_steps,
                rounding,
                globals,
                keys,
                scheduler,
            })
        }
    }
}
