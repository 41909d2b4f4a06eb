//! SOAP's files: the reference's arguments, and its state after every step compared with
//! ndoptim's (the eigenbases up to the signs of their columns, the momentum in the parameter's
//! basis).

#[allow(unused_imports)]
use super::*;
use ndoptim::DataFormat;

/// SOAP with the reference's arguments (`shampoo_beta` −1 is β₂, the default).
pub fn soap<F: Scalar>(h: &mut Hyper) -> Result<Soap<F>, String> {
    let o = opt(h.numbers("betas")?, Soap::<F>::default(), |o, (b1, b2)| {
        o.betas(b1, b2)
    });
    let o = match h.take("shampoo_beta")? {
        Some(b) if b >= 0.0 => o.shampoo_beta(Some(b)),
        _ => o,
    };
    let o = opt(h.take("eps")?, o, Soap::eps);
    let o = opt(h.take("weight_decay")?, o, Soap::weight_decay);
    let o = opt(h.take("precondition_frequency")?, o, |o, f| {
        o.precondition_frequency(f as u64)
    });
    let o = opt(h.take("max_precond_dim")?, o, |o, d| {
        o.max_precond_dim(d as usize)
    });
    let o = opt(h.flag("merge_dims")?, o, Soap::merge_dims);
    let o = opt(h.flag("precondition_1d")?, o, Soap::precondition_1d);
    let o = opt(h.flag("normalize_grads")?, o, Soap::normalize_grads);
    let o = opt(h.flag("correct_bias")?, o, Soap::correct_bias);
    Ok(match h.text("data_format")?.as_deref() {
        None | Some("channels_first") => o,
        Some("channels_last") => o.data_format(DataFormat::ChannelsLast),
        Some(f) => return Err(format!("data_format {f} is unknown")),
    })
}

/// Replays a SOAP file: parameters, the refresh schedule, and `expected_state` where given.
pub(crate) fn replay_soap<F: Scalar>(t: &Value) -> Result<(f64, Trajectory), String> {
    only_step_fields(t, &["preconditioner_refresh", "expected_state"])?;
    let mut h = Hyper::new(&t["hyperparameters"]);
    let lr = h.take("lr")?;
    let mut opt = opt(lr, soap::<F>(&mut h)?, Soap::lr);
    h.finish()?;
    let frequency = t["hyperparameters"]["precondition_frequency"]
        .as_u64()
        .unwrap_or(10);
    let refreshes = t["preconditioner_refresh"].as_array();
    let states = t["expected_state"].as_array();
    replay_checked(&mut opt, t, |opt, i| {
        // The rule's schedule: eigh at the first call, QR after every `frequency` updates.
        let ours = match i {
            0 => Value::from("eigh"),
            _ if (i as u64).is_multiple_of(frequency) => Value::from("qr"),
            _ => Value::Null,
        };
        if let Some(want) = refreshes.map(|r| r.get(i).unwrap_or(&Value::Null))
            && *want != ours
        {
            return Err(format!("refresh {ours}, the reference's {want}"));
        }
        match states.and_then(|s| s.get(i)) {
            Some(state) => compare_state(opt, state),
            None => Ok(0.0),
        }
    })
}

/// The largest relative error of SOAP's state against one step of `expected_state`.
fn compare_state<F: Scalar>(opt: &Soap<F>, state: &Value) -> Result<f64, String> {
    let mut worst = 0.0f64;
    let flat = |v: &Value| -> Vec<f64> {
        let mut out = Vec::new();
        fn walk(v: &Value, out: &mut Vec<f64>) {
            match v {
                Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
                Value::Object(o) if o.contains_key("data") => walk(&o["data"], out),
                x => out.extend(x.as_f64()),
            }
        }
        walk(v, &mut out);
        out
    };
    let slot = |key: &str, name: &str| slot_values(opt, key, name);
    let close = state_error;
    for (key, want) in state.as_object().ok_or("expected_state is not a map")? {
        let step = opt.step_count(key).unwrap_or(0).saturating_sub(1);
        if want["step"].as_u64() != Some(step) {
            return Err(format!(
                "{key}: step {step}, the reference's {}",
                want["step"]
            ));
        }
        let gg = want["GG"].as_array().ok_or("no GG list")?;
        worst = worst.max(close(&slot(key, "GG"), &flat(&want["GG"]), "GG")?);
        worst = worst.max(close(
            &slot(key, "exp_avg_sq"),
            &flat(&want["exp_avg_sq"]),
            "v",
        )?);
        // The sides: each preconditioned one's length from its GG, at most one other.
        let n = slot(key, "exp_avg").len();
        let lens: Vec<Option<usize>> = gg
            .iter()
            .map(|m| m["shape"][0].as_u64().map(|len| len as usize))
            .collect();
        let known: usize = lens.iter().flatten().product();
        let sides: Vec<usize> = match lens.iter().filter(|l| l.is_none()).count() {
            0 => lens.iter().flatten().copied().collect(),
            1 => lens.iter().map(|l| l.unwrap_or(n / known.max(1))).collect(),
            _ => {
                return Err(format!(
                    "{key}: more than one side without a preconditioner"
                ));
            }
        };
        let q = slot(key, "Q");
        let mut m = ArrayD::from_shape_vec(IxDyn(&sides), slot(key, "exp_avg"))
            .map_err(|e| format!("{key}: {e}"))?;
        let mut offset = 0;
        for (axis, len) in lens.iter().enumerate() {
            let Some(len) = *len else { continue };
            let qi = &q[offset..offset + len * len];
            // m ×ᵢ Q: back to the parameter's basis along this axis.
            m = ArrayD::from_shape_fn(m.raw_dim(), |ix| {
                let mut jx = ix.clone();
                (0..len).fold(0.0, |s, j| {
                    jx[axis] = j;
                    s + qi[ix[axis] * len + j] * m[&jx]
                })
            });
            if let Some(want_q) = want.get("Q").and_then(|q| q.get(axis)) {
                let want_q = flat(want_q);
                // Equal up to the sign of each column.
                for col in 0..len {
                    let err = |sign: f64| {
                        (0..len).fold(0.0f64, |w, r| {
                            w.max(relative_error(
                                sign * qi[r * len + col],
                                want_q[r * len + col],
                            ))
                        })
                    };
                    worst = worst.max(err(1.0).min(err(-1.0)));
                }
            }
            offset += len * len;
        }
        let m: Vec<f64> = m.iter().copied().collect();
        worst = worst.max(close(&m, &flat(&want["exp_avg"]), "m")?);
    }
    Ok(worst)
}
