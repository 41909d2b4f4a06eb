//! The schedules a reference file describes as optax's functions (`{"function", "args"}`), built
//! from ndoptim's: `optax_schedules.json` and the `schedules` of the `optax_inject_*` files.

use ndoptim::schedule::{self, Boundary, ExponentialDecay, Interpolation, Schedule, Shape, Wsd};
use serde_json::Value;

use super::Hyper;

/// The schedule `v` describes; every argument must be used.
pub fn schedule(v: &Value) -> Result<Box<dyn Schedule>, String> {
    let function = v["function"]
        .as_str()
        .ok_or("a schedule without function")?;
    let mut a = Hyper::new(&v["args"]);
    let e = |e: ndoptim::Error| e.to_string();
    let steps = |a: &mut Hyper, name: &str| -> Result<u64, String> {
        let n = a.take(name)?.ok_or(format!("no {name}"))?;
        Ok(n as u64)
    };
    let s: Box<dyn Schedule> = match function {
        "optax.constant_schedule" => Box::new(schedule::Constant(need(&mut a, "value")?)),
        "optax.linear_schedule" | "optax.polynomial_schedule" => {
            let (init, end) = (need(&mut a, "init_value")?, need(&mut a, "end_value")?);
            let power = a.take("power")?.unwrap_or(1.0);
            let steps = steps(&mut a, "transition_steps")?;
            let begin = a.take("transition_begin")?.unwrap_or(0.0) as u64;
            Box::new(
                schedule::Polynomial::new(init, end, power, steps)
                    .map_err(e)?
                    .begin(begin),
            )
        }
        "optax.cosine_decay_schedule" => {
            let (init, steps) = (need(&mut a, "init_value")?, steps(&mut a, "decay_steps")?);
            let alpha = a.take("alpha")?.unwrap_or(0.0);
            let exponent = a.take("exponent")?.unwrap_or(1.0);
            Box::new(
                schedule::CosineDecay::new(init, steps)
                    .and_then(|s| s.alpha(alpha))
                    .and_then(|s| s.exponent(exponent))
                    .map_err(e)?,
            )
        }
        "optax.exponential_decay" => Box::new(exponential(&mut a)?),
        "optax.piecewise_constant_schedule" => {
            let init = need(&mut a, "init_value")?;
            let b = boundaries(&mut a)?;
            Box::new(schedule::PiecewiseConstant::new(init, b).map_err(e)?)
        }
        "optax.piecewise_interpolate_schedule" => {
            let kind = match a.text("interpolate_type")?.as_deref() {
                Some("linear") => Interpolation::Linear,
                Some("cosine") => Interpolation::Cosine,
                other => return Err(format!("interpolate_type {other:?}")),
            };
            let init = need(&mut a, "init_value")?;
            let b = boundaries(&mut a)?;
            Box::new(schedule::PiecewiseInterpolate::new(kind, init, b).map_err(e)?)
        }
        "optax.warmup_cosine_decay_schedule" => Box::new(warmup_cosine(&mut a)?),
        "optax.warmup_exponential_decay_schedule" => {
            let init = need(&mut a, "init_value")?;
            let warmup = steps(&mut a, "warmup_steps")?;
            a.0.insert("init_value".into(), a.0["peak_value"].clone());
            a.0.remove("peak_value");
            let decay = exponential(&mut a)?;
            Box::new(schedule::warmup_exponential_decay(init, warmup, decay).map_err(e)?)
        }
        "optax.warmup_constant_schedule" => {
            let (init, peak) = (need(&mut a, "init_value")?, need(&mut a, "peak_value")?);
            Box::new(schedule::linear(init, peak, steps(&mut a, "warmup_steps")?).map_err(e)?)
        }
        "optax.sgdr_schedule" => {
            let cycles = a.0.remove("cosine_kwargs").ok_or("no cosine_kwargs")?;
            let cycles = cycles.as_array().ok_or("cosine_kwargs is not a list")?;
            let cycles = cycles
                .iter()
                .map(|c| {
                    let mut c = Hyper::new(c);
                    let s = warmup_cosine(&mut c)?;
                    c.finish().map(|()| s)
                })
                .collect::<Result<Vec<_>, String>>()?;
            Box::new(schedule::sgdr(cycles).map_err(e)?)
        }
        "optax.linear_onecycle_schedule" => {
            let steps = steps(&mut a, "transition_steps")?;
            let peak = need(&mut a, "peak_value")?;
            let [start, end] = [need(&mut a, "pct_start")?, need(&mut a, "pct_final")?];
            let [div, final_div] = [
                need(&mut a, "div_factor")?,
                need(&mut a, "final_div_factor")?,
            ];
            Box::new(schedule::linear_onecycle(steps, peak, start, end, div, final_div).map_err(e)?)
        }
        "optax.cosine_onecycle_schedule" => {
            let steps = steps(&mut a, "transition_steps")?;
            let peak = need(&mut a, "peak_value")?;
            let start = need(&mut a, "pct_start")?;
            let [div, final_div] = [
                need(&mut a, "div_factor")?,
                need(&mut a, "final_div_factor")?,
            ];
            Box::new(schedule::cosine_onecycle(steps, peak, start, div, final_div).map_err(e)?)
        }
        "optax.join_schedules" => {
            let parts = a.0.remove("schedules").ok_or("no schedules")?;
            let parts = parts.as_array().ok_or("schedules is not a list")?;
            let parts = parts.iter().map(schedule).collect::<Result<Vec<_>, _>>()?;
            let bounds = a.list("boundaries")?.ok_or("no boundaries")?;
            let bounds = bounds.into_iter().map(|b| b as u64).collect();
            Box::new(schedule::Join::new(parts, bounds).map_err(e)?)
        }
        "transformers.get_wsd_schedule" => {
            let peak = v["base_lr"].as_f64().ok_or("no base_lr")?;
            let warmup = steps(&mut a, "num_warmup_steps")?;
            let decay = steps(&mut a, "num_decay_steps")?;
            let total = a.take("num_training_steps")?;
            let stable = match (a.take("num_stable_steps")?, total) {
                (Some(s), _) => s as u64,
                (None, Some(t)) => t as u64 - warmup - decay,
                (None, None) => return Err("no num_stable_steps or num_training_steps".into()),
            };
            let shape = |a: &mut Hyper, name| match a.text(name)?.as_deref() {
                Some("linear") => Ok(Shape::Linear),
                Some("cosine") => Ok(Shape::Cosine),
                Some("1-sqrt") => Ok(Shape::OneMinusSqrt),
                other => Err(format!("{name} {other:?}")),
            };
            let shapes = (shape(&mut a, "warmup_type")?, shape(&mut a, "decay_type")?);
            if a.take("last_epoch")? != Some(-1.0) {
                return Err("a resumed WSD schedule".into());
            }
            let ratio = a.take("min_lr_ratio")?.unwrap_or(0.0);
            let cycles = a.take("num_cycles")?.unwrap_or(0.5);
            Box::new(
                Wsd::new(peak, warmup, stable, decay)
                    .map(|s| s.shapes(shapes.0, shapes.1))
                    .and_then(|s| s.min_lr_ratio(ratio))
                    .and_then(|s| s.num_cycles(cycles))
                    .map_err(e)?,
            )
        }
        other => return Err(format!("ndoptim lacks the schedule {other}")),
    };
    a.finish()?;
    Ok(s)
}

/// A number the reference always gives.
fn need(a: &mut Hyper, name: &str) -> Result<f64, String> {
    a.take(name)?.ok_or(format!("no {name}"))
}

/// `exponential_decay`'s arguments.
fn exponential(a: &mut Hyper) -> Result<ExponentialDecay, String> {
    let init = need(a, "init_value")?;
    let steps = need(a, "transition_steps")? as u64;
    let rate = need(a, "decay_rate")?;
    let s = ExponentialDecay::new(init, steps, rate)
        .map_err(|e| e.to_string())?
        .begin(a.take("transition_begin")?.unwrap_or(0.0) as u64)
        .staircase(a.flag("staircase")?.unwrap_or(false));
    match a.take("end_value")? {
        Some(end) => s.end_value(end).map_err(|e| e.to_string()),
        None => Ok(s),
    }
}

/// `warmup_cosine_decay_schedule`'s arguments.
fn warmup_cosine(a: &mut Hyper) -> Result<schedule::Warmup<schedule::CosineDecay>, String> {
    let (init, peak) = (need(a, "init_value")?, need(a, "peak_value")?);
    let (warmup, decay) = (
        need(a, "warmup_steps")? as u64,
        need(a, "decay_steps")? as u64,
    );
    let end = a.take("end_value")?.unwrap_or(0.0);
    let exponent = a.take("exponent")?.unwrap_or(1.0);
    schedule::warmup_cosine_decay(init, peak, warmup, decay, end, exponent)
        .map_err(|e| e.to_string())
}

/// `boundaries_and_scales`, whose keys are the steps written as strings.
fn boundaries(a: &mut Hyper) -> Result<Vec<Boundary>, String> {
    let Some(map) = a.0.remove("boundaries_and_scales") else {
        return Ok(Vec::new());
    };
    let map = map
        .as_object()
        .ok_or("boundaries_and_scales is not a map")?;
    map.iter()
        .map(|(k, v)| {
            Ok(Boundary {
                at: k.parse().map_err(|_| format!("boundary {k}"))?,
                scale: v.as_f64().ok_or(format!("scale {v}"))?,
            })
        })
        .collect()
}
