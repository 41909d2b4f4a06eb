//! Reading reference files: JSON, arrays, and a file's hyperparameters, each taken once.

#[allow(unused_imports)]
use super::*;

/// Reads a JSON file.
pub fn read_json(path: &Path) -> Result<Value, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// A number of a reference file in the element type, rounded once from its decimal form.
pub fn number<F: Scalar>(v: &Value) -> Result<F, String> {
    let text = v.to_string();
    F::from_str_radix(&text, 10).map_err(|_| format!("not a number: {text}"))
}

/// `{"shape": [...], "data": [...]}` as an array.
pub fn array<F: Scalar>(v: &Value) -> Result<ArrayD<F>, String> {
    let shape: Vec<usize> = v["shape"]
        .as_array()
        .ok_or("array without shape")?
        .iter()
        .map(|d| d.as_u64().map(|d| d as usize).ok_or("bad dimension"))
        .collect::<Result<_, _>>()?;
    let data = v["data"]
        .as_array()
        .ok_or("array without data")?
        .iter()
        .map(number)
        .collect::<Result<Vec<F>, _>>()?;
    ArrayD::from_shape_vec(IxDyn(&shape), data).map_err(|e| e.to_string())
}

/// `{"W1": {...}, ...}` as a parameter map.
pub fn params<F: Scalar>(v: &Value) -> Result<Params<F>, String> {
    v.as_object()
        .ok_or("not a map of arrays")?
        .iter()
        .map(|(k, a)| Ok((k.clone(), array(a)?)))
        .collect()
}

/// Hyperparameters that a constructor takes one by one; what is left over is an option the crate
/// lacks.
pub struct Hyper(pub(crate) Map<String, Value>);

impl Hyper {
    pub fn new(v: &Value) -> Self {
        Hyper(v.as_object().cloned().unwrap_or_default())
    }

    /// Takes a number, if the reference lists it.
    pub fn take(&mut self, name: &str) -> Result<Option<f64>, String> {
        match self.0.remove(name) {
            None | Some(Value::Null) => Ok(None),
            // JSON has no NaN or infinity: the generators write them as strings.
            Some(Value::String(t)) => match t.as_str() {
                "nan" => Ok(Some(f64::NAN)),
                "inf" => Ok(Some(f64::INFINITY)),
                "-inf" => Ok(Some(f64::NEG_INFINITY)),
                _ => Err(format!("hyperparameter {name} is not a number: {t}")),
            },
            Some(v) => v
                .as_f64()
                .map(Some)
                .ok_or_else(|| format!("hyperparameter {name} is not a number: {v}")),
        }
    }

    /// Fails on anything not taken.
    pub fn finish(self) -> Result<(), String> {
        if self.0.is_empty() {
            Ok(())
        } else {
            let names: Vec<_> = self.0.iter().map(|(k, v)| format!("{k}={v}")).collect();
            Err(format!("ndoptim lacks option(s) {}", names.join(", ")))
        }
    }
}

/// Sets an option when the reference lists it.
pub(crate) fn opt<T, V>(value: Option<V>, o: T, set: impl FnOnce(T, V) -> T) -> T {
    match value {
        Some(v) => set(o, v),
        None => o,
    }
}

impl Hyper {
    /// Takes a boolean, if the reference lists it.
    pub fn flag(&mut self, name: &str) -> Result<Option<bool>, String> {
        match self.0.remove(name) {
            None => Ok(None),
            Some(v) => v
                .as_bool()
                .map(Some)
                .ok_or_else(|| format!("{name} is not a boolean: {v}")),
        }
    }

    /// Takes a pair of numbers (`betas`, `etas`, ...); `null` entries become `None`.
    pub fn pair(&mut self, name: &str) -> Result<Option<[Option<f64>; 2]>, String> {
        match self.0.remove(name) {
            None => Ok(None),
            Some(Value::Array(a)) if a.len() == 2 => Ok(Some([a[0].as_f64(), a[1].as_f64()])),
            Some(v) => Err(format!("{name} is not a pair: {v}")),
        }
    }

    /// Takes a list of `N` numbers (Adan's three `betas`).
    pub fn numbers_n<const N: usize>(&mut self, name: &str) -> Result<Option<[f64; N]>, String> {
        match self.0.remove(name) {
            None => Ok(None),
            Some(Value::Array(a)) if a.len() == N && a.iter().all(Value::is_number) => {
                Ok(Some(std::array::from_fn(|i| {
                    a[i].as_f64().unwrap_or(f64::NAN)
                })))
            }
            Some(v) => Err(format!("{name} is not a list of {N} numbers: {v}")),
        }
    }

    /// Takes an option that must be `null` (or absent): a reference argument ndoptim expresses
    /// otherwise (masks as [`ndoptim::Group`], dtypes as the element type).
    pub fn null(&mut self, name: &str) -> Result<(), String> {
        match self.0.remove(name) {
            None | Some(Value::Null) => Ok(()),
            Some(v) => Err(format!("{name}={v}: only null is replayed")),
        }
    }

    /// PyTorch's implementation switches, which choose a kernel and leave the arithmetic of
    /// the per-tensor loop alone: `foreach`, `capturable`, `differentiable`, and `fused` (its
    /// kernels are not the per-tensor loop's arithmetic, so only off or unset replays).
    pub fn implementation(&mut self) -> Result<(), String> {
        for name in ["foreach", "capturable", "differentiable"] {
            self.flag_or_null(name)?;
        }
        match self.flag_or_null("fused")? {
            Some(true) => Err("fused=true is not replayed".into()),
            _ => Ok(()),
        }
    }

    /// Takes a boolean that may be `null` (PyTorch's "choose for me").
    pub(crate) fn flag_or_null(&mut self, name: &str) -> Result<Option<bool>, String> {
        match self.0.remove(name) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v
                .as_bool()
                .map(Some)
                .ok_or_else(|| format!("{name} is not a boolean: {v}")),
        }
    }

    /// Takes a string.
    pub fn text(&mut self, name: &str) -> Result<Option<String>, String> {
        match self.0.remove(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(t)) => Ok(Some(t)),
            Some(v) => Err(format!("{name} is not a string: {v}")),
        }
    }

    /// Takes a pair of a name and a number, such as optax's `init_step=("heuristic", 1e-6)`.
    pub fn named_number(&mut self, name: &str) -> Result<Option<(String, f64)>, String> {
        match self.0.remove(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Array(a)) => match (
                a.first().and_then(Value::as_str),
                a.get(1).and_then(Value::as_f64),
            ) {
                (Some(kind), Some(value)) if a.len() == 2 => Ok(Some((kind.to_string(), value))),
                _ => Err(format!("{name} is not a name and a number: {a:?}")),
            },
            Some(v) => Err(format!("{name} is not a name and a number: {v}")),
        }
    }

    /// Takes a list of numbers.
    pub fn list(&mut self, name: &str) -> Result<Option<Vec<f64>>, String> {
        match self.0.remove(name) {
            None => Ok(None),
            Some(Value::Array(a)) => a
                .iter()
                .map(|x| x.as_f64().ok_or_else(|| format!("{name} holds {x}")))
                .collect::<Result<_, _>>()
                .map(Some),
            Some(v) => Err(format!("{name} is not a list: {v}")),
        }
    }

    /// Takes numbers given under separate names, if the reference lists them all.
    pub fn numbers_of<const N: usize>(
        &mut self,
        names: [&str; N],
    ) -> Result<Option<[f64; N]>, String> {
        let mut values = [0.0; N];
        for (v, name) in values.iter_mut().zip(names) {
            match self.take(name)? {
                Some(x) => *v = x,
                None => return Ok(None),
            }
        }
        Ok(Some(values))
    }

    /// Takes a pair that must hold two numbers.
    pub fn numbers(&mut self, name: &str) -> Result<Option<(f64, f64)>, String> {
        match self.pair(name)? {
            None => Ok(None),
            Some([Some(a), Some(b)]) => Ok(Some((a, b))),
            Some(_) => Err(format!("{name} holds a null")),
        }
    }
}

/// Fails on a field of `t` outside `known`: every field a file carries is compared or used, and
/// one this replayer does not know fails the file rather than going unchecked.
/// The fields every file of per-step trajectories carries: what it replays, its arguments, its
/// inputs and the parameters after each step.
pub const STEP_FIELDS: [&str; 8] = [
    "optimizer",
    "reference",
    "dtype",
    "hyperparameters",
    "lr_per_step",
    "initial",
    "grads",
    "expected",
];

/// [`only_fields`] for a file of per-step trajectories: [`STEP_FIELDS`] and `more`.
pub fn only_step_fields(t: &Value, more: &[&str]) -> Result<(), String> {
    only_fields(t, &[&STEP_FIELDS[..], more].concat())
}

pub fn only_fields(t: &Value, known: &[&str]) -> Result<(), String> {
    match t
        .as_object()
        .and_then(|o| o.keys().find(|k| !known.contains(&k.as_str())))
    {
        Some(field) => Err(format!("field {field:?} is not replayed")),
        None => Ok(()),
    }
}
