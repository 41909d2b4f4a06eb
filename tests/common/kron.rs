//! Kron's files: the reference's arguments, its recorded draws replayed, its update schedule and
//! its state after every step compared with ndoptim's.

#[allow(unused_imports)]
use super::*;
use ndoptim::{Kron, KronDraws, MemorySaveMode, UpdateProbability};
use std::sync::Arc;

/// Kron with the reference's arguments; the dtypes must be the parameters'.
pub fn kron<F: Scalar>(h: &mut Hyper) -> Result<Kron<F>, String> {
    let o = opt(h.take("b1")?, Kron::<F>::default(), Kron::b1);
    let o = opt(h.take("weight_decay")?, o, Kron::weight_decay);
    let o = match h.0.remove("preconditioner_update_probability") {
        None | Some(Value::Null) => o,
        Some(Value::Number(p)) => o.update_probability(UpdateProbability::Fixed(
            p.as_f64().ok_or("not a probability")?,
        )),
        Some(v) => {
            let mut s = Hyper::new(&v);
            if s.text("schedule")?.as_deref() != Some("precond_update_prob_schedule") {
                return Err(format!("an update schedule other than kron_torch's: {v}"));
            }
            let mut take = |k: &str| s.take(k).map(|v| v.ok_or(format!("schedule lacks {k}")));
            let schedule = UpdateProbability::Schedule {
                max_prob: take("max_prob")??,
                min_prob: take("min_prob")??,
                decay: take("decay")??,
                flat_start: take("flat_start")??,
            };
            s.finish()?;
            o.update_probability(schedule)
        }
    };
    let o = opt(h.take("max_size_triangular")?, o, |o, v| {
        o.max_size_triangular(v as usize)
    });
    let o = opt(h.take("min_ndim_triangular")?, o, |o, v| {
        o.min_ndim_triangular(v as usize)
    });
    let o = match h.text("memory_save_mode")?.as_deref() {
        None => o,
        Some("smart_one_diag") => o.memory_save_mode(MemorySaveMode::SmartOneDiag),
        Some("one_diag") => o.memory_save_mode(MemorySaveMode::OneDiag),
        Some("all_diag") => o.memory_save_mode(MemorySaveMode::AllDiag),
        Some(m) => return Err(format!("memory_save_mode {m} is unknown")),
    };
    let o = opt(h.flag("momentum_into_precond_update")?, o, |o, v| {
        o.momentum_into_precond_update(v)
    });
    let o = opt(h.take("precond_lr")?, o, Kron::precond_lr);
    let o = opt(h.take("precond_init_scale")?, o, Kron::precond_init_scale);
    let o = opt(h.flag("merge_dims")?, o, Kron::merge_dims);
    h.null("mu_dtype")?;
    h.text("precond_dtype")?;
    Ok(o)
}

/// A file's recorded draws.
#[derive(Debug)]
struct Recorded {
    uniform: Vec<f64>,
    normals: Vec<HashMap<String, Vec<f64>>>,
}

impl KronDraws for Recorded {
    fn uniform(&self, step: u64) -> f64 {
        self.uniform.get(step as usize).copied().unwrap_or(f64::NAN)
    }

    fn normal(&self, step: u64, key: &str, index: usize) -> f64 {
        let at = self.normals.get(step as usize).and_then(|s| s.get(key));
        at.and_then(|v| v.get(index)).copied().unwrap_or(f64::NAN)
    }
}

/// Replays a Kron file with its recorded draws.
pub(crate) fn replay_kron<F: Scalar>(t: &Value) -> Result<(f64, Trajectory), String> {
    only_step_fields(
        t,
        &[
            "rng_uniform_per_step",
            "rng_note",
            "update_probability_per_step",
            "do_update_per_step",
            "balance_per_step",
            "precond_random_normals",
            "expected_state",
        ],
    )?;
    let mut h = Hyper::new(&t["hyperparameters"]);
    let lr = h.take("lr")?;
    let numbers = |v: &Value| -> Vec<f64> {
        v["data"]
            .as_array()
            .map_or(Vec::new(), |d| d.iter().filter_map(Value::as_f64).collect())
    };
    let uniform: Vec<f64> = serde_json::from_value(t["rng_uniform_per_step"].clone())
        .map_err(|e| format!("rng_uniform_per_step: {e}"))?;
    let normals = t["precond_random_normals"]
        .as_array()
        .ok_or("no precond_random_normals")?
        .iter()
        .map(|s| {
            s.as_object()
                .map(|m| m.iter().map(|(k, v)| (k.clone(), numbers(v))).collect())
                .unwrap_or_default()
        })
        .collect();
    let draws = Arc::new(Recorded { uniform, normals });
    let mut opt = opt(lr, kron::<F>(&mut h)?, Kron::lr).draws(draws);
    h.finish()?;
    let states = t["expected_state"].as_array();
    let updates = t["do_update_per_step"].as_array();
    replay_checked(&mut opt, t, |opt, i| {
        // Draws were recorded exactly at the updates the reference made.
        let drew = t["precond_random_normals"][i]
            .as_object()
            .is_some_and(|m| !m.is_empty());
        if updates.and_then(|u| u.get(i)).and_then(Value::as_bool) != Some(drew) {
            return Err("do_update and the recorded normals disagree".into());
        }
        let Some(state) = states.and_then(|s| s.get(i)) else {
            return Ok(0.0);
        };
        let mut worst = 0.0f64;
        for (key, want) in state.as_object().ok_or("expected_state is not a map")? {
            let q: Vec<f64> = want["Q"]
                .as_array()
                .ok_or("no Q")?
                .iter()
                .flat_map(numbers)
                .collect();
            for (name, want) in [
                ("Q", q),
                ("momentum_buffer", numbers(&want["momentum_buffer"])),
            ] {
                let got = slot_values(opt, key, name);
                worst = worst.max(state_error(&got, &want, &format!("{key}.{name}"))?);
            }
        }
        Ok(worst)
    })
}
