//! Replays of torch-optimi's bfloat16 trajectories (`optimi_*_bf16.json`): parameters, moments
//! and Kahan compensation compared exactly after every step.

use std::collections::HashMap;

use half::bf16;
use ndarray::{ArrayD, IxDyn};
use ndoptim::{Engine, Mixed, Optimizer, Params, Rounding, Rule};
use serde_json::Value;

use super::{Hyper, Trajectory, Way, named, only_step_fields, optimi, relative_error};

/// The optimizer of a bf16 file: optimi's, on bfloat16 parameters and state.
pub type Bf16<R> = Engine<R, f32, Mixed<bf16, bf16>>;

/// An array of bf16 values written as the exact numbers they hold.
fn array(v: &Value) -> Result<ArrayD<bf16>, String> {
    let shape: Vec<usize> =
        serde_json::from_value(v["shape"].clone()).map_err(|e| e.to_string())?;
    let data = v["data"].as_array().ok_or("no data")?;
    let data = data
        .iter()
        .map(|x| {
            let x = x.as_f64().ok_or("not a number")?;
            let b = bf16::from_f64(x);
            if f64::from(b) == x {
                Ok(b)
            } else {
                Err(format!("{x} is not a bfloat16"))
            }
        })
        .collect::<Result<Vec<_>, String>>()?;
    ArrayD::from_shape_vec(IxDyn(&shape), data).map_err(|e| e.to_string())
}

fn params(v: &Value) -> Result<Params<bf16>, String> {
    let map = v.as_object().ok_or("not a map")?;
    map.iter()
        .map(|(k, a)| Ok((k.clone(), array(a)?)))
        .collect()
}

/// The largest relative error between `got` and the reference's array `want`.
fn compare<'a>(got: impl ExactSizeIterator<Item = &'a bf16>, want: &Value) -> Result<f64, String> {
    let want = array(want)?;
    if got.len() != want.len() {
        return Err(format!(
            "{} elements, the reference has {}",
            got.len(),
            want.len()
        ));
    }
    Ok(got
        .zip(want.iter())
        .map(|(a, b)| relative_error(f64::from(*a), f64::from(*b)))
        .fold(0.0, f64::max))
}

/// Replays a bf16 file one way in: the worst error over parameters and state, and the
/// parameters' bits after every step.
pub fn replay(t: &Value, way: Way) -> Result<(f64, Trajectory), String> {
    only_step_fields(t, &["expected_state"])?;
    let mut h = Hyper::new(&t["hyperparameters"]);
    let name = t["optimizer"].as_str().unwrap_or_default();
    match name {
        "SGD" => run_with(optimi::sgd(&mut h)?, h, t, way),
        "Adam" | "AdamW" => run_with(optimi::adam(&mut h, name == "AdamW")?, h, t, way),
        "RAdam" => run_with(optimi::radam(&mut h, false)?, h, t, way),
        "Lion" => run_with(optimi::lion(&mut h)?, h, t, way),
        "Ranger" => run_with(optimi::ranger(&mut h)?, h, t, way),
        "StableAdamW" => run_with(optimi::stable_adamw(&mut h)?, h, t, way),
        "Adan" => run_with(optimi::adan(&mut h)?, h, t, way),
        other => Err(format!("no bf16 replay of {other:?}")),
    }
}

/// Replays `t` with optimi's optimizer `o` on bfloat16 parameters and state, once every
/// hyperparameter has been read.
fn run_with<R: Rule<f32>>(
    (o, rounding): (Engine<R, f32>, Rounding),
    h: Hyper,
    t: &Value,
    way: Way,
) -> Result<(f64, Trajectory), String> {
    h.finish()?;
    run(o.with_layout().rounding(rounding), t, way)
}

fn run<R: Rule<f32>>(mut opt: Bf16<R>, t: &Value, way: Way) -> Result<(f64, Trajectory), String> {
    let mut p = params(&t["initial"])?;
    let grads = t["grads"].as_array().ok_or("no grads")?;
    let expected = t["expected"].as_array().ok_or("no expected")?;
    let states = t["expected_state"].as_array().ok_or("no expected_state")?;
    let lrs = t["lr_per_step"].as_array();
    let mut worst = 0.0f64;
    let mut trajectory = Vec::new();
    for (i, ((g, e), st)) in grads.iter().zip(expected).zip(states).enumerate() {
        if let Some(lr) = lrs.and_then(|l| l.get(i)).and_then(Value::as_f64) {
            opt.set_learning_rate(lr).map_err(|e| e.to_string())?;
        }
        let g = params(g)?;
        match way {
            Way::Map => opt.update(&mut p, &g),
            Way::Named => opt.update_named(&mut named(&mut p, &g)),
        }
        .map_err(|e| format!("step {i}: {e}"))?;
        let mut bits = Vec::new();
        for (key, want) in e.as_object().ok_or("expected is not a map")? {
            let got = p.get(key).ok_or(format!("step {i}: no parameter {key}"))?;
            worst =
                worst.max(compare(got.iter(), want).map_err(|e| format!("step {i}, {key}: {e}"))?);
            bits.push((
                key.clone(),
                got.shape().to_vec(),
                got.iter().map(|x| u64::from(x.to_bits())).collect(),
            ));
        }
        trajectory.push(bits);
        let checkpoint = opt.checkpoint();
        let slots: HashMap<(&str, &str), &[bf16]> = checkpoint
            .keys
            .iter()
            .flat_map(|k| {
                k.slots
                    .iter()
                    .map(move |s| ((k.key.as_str(), s.name.as_str()), &s.data[..]))
            })
            .collect();
        for (key, want) in st.as_object().ok_or("expected_state is not a map")? {
            for (slot, want) in want.as_object().ok_or("a key's state is not a map")? {
                // optimi's SGD calls its momentum buffer `exp_avg`; ndoptim keeps PyTorch's name.
                let name = match (slot.as_str(), t["optimizer"].as_str()) {
                    ("exp_avg", Some("SGD")) => "momentum_buffer",
                    (s, _) => s,
                };
                let got = slots.get(&(key.as_str(), name));
                let err = match (got, want.is_null()) {
                    (None, true) => 0.0,
                    (Some(got), false) => compare(got.iter(), want)?,
                    (got, _) => {
                        return Err(format!(
                            "step {i}, {key}.{slot}: {} here, {} in the reference",
                            if got.is_some() { "kept" } else { "absent" },
                            if want.is_null() { "absent" } else { "kept" }
                        ));
                    }
                };
                worst = worst.max(err);
            }
        }
    }
    Ok((worst, trajectory))
}
