//! Reading the reference trajectories of `tests/data/` and replaying them.
#![allow(dead_code)] // each test target uses its own subset

use std::collections::HashMap;
use std::path::Path;

use ndarray::{ArrayD, IxDyn};
use ndoptim::{AdaGrad, Adam, Momentum, Nesterov, Optimizer, Params, RmsProp, Scalar, Sgd};
use serde_json::{Map, Value};

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
pub struct Hyper(Map<String, Value>);

impl Hyper {
    pub fn new(v: &Value) -> Self {
        Hyper(v.as_object().cloned().unwrap_or_default())
    }

    /// Takes a number, if the reference lists it.
    pub fn take(&mut self, name: &str) -> Result<Option<f64>, String> {
        match self.0.remove(name) {
            None => Ok(None),
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
fn opt<T>(value: Option<f64>, o: T, set: impl FnOnce(T, f64) -> T) -> T {
    match value {
        Some(v) => set(o, v),
        None => o,
    }
}

/// The optimizer a reference file names, with its hyperparameters.
pub fn build<F: Scalar>(
    reference: &str,
    name: &str,
    hyper: &Value,
) -> Result<Box<dyn Optimizer<F>>, String> {
    let mut h = Hyper::new(hyper);
    let lr = h.take("lr")?;
    let book = reference.starts_with("book");
    let o: Box<dyn Optimizer<F>> = match (book, name) {
        (true, "SGD") => Box::new(opt(lr, Sgd::<F>::default(), Sgd::lr)),
        (true, "Momentum") => {
            let o = opt(lr, Momentum::<F>::default(), Momentum::lr);
            Box::new(opt(h.take("momentum")?, o, Momentum::momentum))
        }
        (true, "Nesterov") => {
            let o = opt(lr, Nesterov::<F>::default(), Nesterov::lr);
            Box::new(opt(h.take("momentum")?, o, Nesterov::momentum))
        }
        (true, "AdaGrad") => Box::new(opt(lr, AdaGrad::<F>::default(), AdaGrad::lr)),
        (true, "RMSprop") => {
            let o = opt(lr, RmsProp::<F>::default(), RmsProp::lr);
            Box::new(opt(h.take("decay_rate")?, o, RmsProp::decay_rate))
        }
        (true, "Adam") => {
            let o = opt(lr, Adam::<F>::default(), Adam::lr);
            let o = opt(h.take("beta1")?, o, Adam::beta1);
            Box::new(opt(h.take("beta2")?, o, Adam::beta2))
        }
        _ => return Err(format!("ndoptim lacks optimizer {name} of {reference}")),
    };
    h.finish()?;
    Ok(o)
}

/// `|a - b| / max(1, |b|)`, the conformance tolerance's measure.
pub fn relative_error(a: f64, b: f64) -> f64 {
    if a.to_bits() == b.to_bits() {
        return 0.0;
    }
    let e = (a - b).abs() / b.abs().max(1.0);
    if e.is_nan() { f64::INFINITY } else { e }
}

/// Replays a trajectory file; returns the largest relative error over all steps and elements.
pub fn replay<F: Scalar>(t: &Value) -> Result<f64, String> {
    let reference = t["reference"].as_str().unwrap_or("");
    let name = t["optimizer"].as_str().ok_or("no optimizer named")?;
    let mut opt = build::<F>(reference, name, &t["hyperparameters"])?;
    let mut p = params::<F>(&t["initial"])?;
    let grads = t["grads"].as_array().ok_or("no grads")?;
    let expected = t["expected"].as_array().ok_or("no expected")?;
    let lrs = t["lr_per_step"].as_array();
    let mut worst = 0.0f64;
    for (i, (g, e)) in grads.iter().zip(expected).enumerate() {
        if let Some(lr) = lrs.and_then(|l| l.get(i)).and_then(Value::as_f64) {
            opt.set_learning_rate(lr).map_err(|e| e.to_string())?;
        }
        opt.update(&mut p, &params(g)?)
            .map_err(|e| format!("step {i}: {e}"))?;
        let e: HashMap<String, ArrayD<F>> = params(e)?;
        for (key, want) in &e {
            let got = p
                .get(key)
                .ok_or_else(|| format!("step {i}: no parameter {key}"))?;
            for (a, b) in got.iter().zip(want.iter()) {
                let (a, b) = (
                    a.to_f64().unwrap_or(f64::NAN),
                    b.to_f64().unwrap_or(f64::NAN),
                );
                worst = worst.max(relative_error(a, b));
            }
        }
    }
    Ok(worst)
}

/// Everything an optimizer holds per key, bit for bit, sorted by key: for "nothing changed" checks.
pub fn state_bits<R: ndoptim::Rule<F>, F: Scalar>(
    opt: &ndoptim::Engine<R, F>,
) -> Vec<(String, u64, Vec<Vec<u64>>)> {
    let mut keys: Vec<&str> = opt.state_keys().collect();
    keys.sort_unstable();
    keys.into_iter()
        .map(|k| {
            let slots = opt
                .slot_names()
                .iter()
                .map(|s| opt.slot(k, s).map(|a| bits(a.iter())).unwrap_or_default())
                .collect();
            (k.to_string(), opt.step_count(k).unwrap_or(0), slots)
        })
        .collect()
}

/// A parameter map bit for bit (shape and elements in logical order), sorted by key.
pub fn params_bits<F: Scalar>(p: &Params<F>) -> Vec<(String, Vec<usize>, Vec<u64>)> {
    let mut v: Vec<_> = p
        .iter()
        .map(|(k, a)| (k.clone(), a.shape().to_vec(), bits(a.iter())))
        .collect();
    v.sort();
    v
}

fn bits<'a, F: Scalar>(it: impl Iterator<Item = &'a F>) -> Vec<u64> {
    it.map(|x| x.to_f64().unwrap_or(f64::NAN).to_bits())
        .collect()
}
