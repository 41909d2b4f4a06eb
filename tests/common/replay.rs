//! Replaying a trajectory file through an optimizer: both ways in, wrappers, averages,
//! schedules, injected hyperparameters, L-BFGS's closures.

#[allow(unused_imports)]
use super::*;

/// Replays a trajectory file; returns the largest relative error over all steps and elements.
pub fn replay<F: Scalar>(t: &Value) -> Result<f64, String> {
    replay_by::<F>(t, Way::Map).map(|(worst, _)| worst)
}

/// The bits of every parameter after every step of a replay.
pub type Trajectory = Vec<Vec<(String, Vec<usize>, Vec<u64>)>>;

/// How a replay hands parameters to the optimizer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Way {
    /// `update(&mut HashMap, &HashMap)`, the book's way in.
    Map,
    /// `update_named(&mut [Named])`, views of the same arrays.
    Named,
}

/// Views of `params` and `grads` by key, in key order.
pub fn named<'a, F: ndoptim::Element>(
    params: &'a mut Params<F>,
    grads: &'a Params<F>,
) -> Vec<ndoptim::Named<'a, F>> {
    let mut v: Vec<_> = params
        .iter_mut()
        .filter_map(|(k, p)| {
            Some(ndoptim::Named::new(
                k.as_str(),
                p.view_mut(),
                grads.get(k)?.view(),
            ))
        })
        .collect();
    v.sort_by(|a, b| a.key().cmp(b.key()));
    v
}

/// Replays a trajectory file one way in; returns the largest relative error over all steps and
/// elements, and the bits of every parameter after every step (and of every evaluation point).
pub fn replay_by<F: Scalar>(t: &Value, way: Way) -> Result<(f64, Trajectory), String> {
    if t["optimizer"] == "LBFGS" {
        // Closure-driven, with no second way in: both ways replay the same calls.
        return replay_lbfgs::<F>(t);
    }
    if t["optimizer"] == "sam" {
        return replay_sam::<F>(t);
    }
    if t["optimizer"] == "SOAP" {
        return replay_soap::<F>(t);
    }
    if t["optimizer"] == "Kron" {
        return replay_kron::<F>(t);
    }
    // Every field a file carries is compared or used: a field this replayer does not know fails
    // the file rather than going unchecked.
    only_step_fields(
        t,
        &[
            "expected_eval",
            "averaging",
            "expected_average",
            "scheduler",
            "inner_optimizer",
            "fast_optimizer",
            "base_optimizer",
            "expected_slow",
            "momentum_per_step",
            "beta1_per_step",
            "schedules",
            "hyper_per_step",
            "d_per_step",
            "s_per_step",
            "loss_per_step",
            "polar_express",
            "fixed_in_reference",
            "param_groups",
            "note",
        ],
    )?;
    let reference = t["reference"].as_str().unwrap_or("");
    let name = t["optimizer"].as_str().ok_or("no optimizer named")?;
    if let Some(polar) = t.get("polar_express") {
        polar_express(polar, &t["hyperparameters"])?;
    }
    if let Some(fixed) = t.get("fixed_in_reference") {
        normuon_constants(fixed)?;
    }
    if let Some(groups) = t.get("param_groups") {
        muon_groups(groups, &t["initial"])?;
    }
    let inner = t
        .get("inner_optimizer")
        .or_else(|| t.get("fast_optimizer"))
        .or_else(|| t.get("base_optimizer"));
    let (mut opt, slow) = match inner {
        Some(inner) => wrapper::<F>(reference, name, &t["hyperparameters"], inner, &t["dtype"])?,
        None => (build::<F>(reference, name, &t["hyperparameters"])?, None),
    };
    let injected = t.get("hyper_per_step").is_some();
    if injected {
        opt = inject(opt, &t["schedules"], &t["hyper_per_step"])?;
    }
    let expected_slow = t["expected_slow"].as_array();
    // mechanize's scales, read like the slow weights.
    let s_per_step = t["s_per_step"].as_array();
    if slow.is_some() != (expected_slow.is_some() || s_per_step.is_some()) {
        return Err("a wrapper's second weights and the file's disagree".into());
    }
    let mut p = params::<F>(&t["initial"])?;
    let grads = t["grads"].as_array().ok_or("no grads")?;
    let expected = t["expected"].as_array().ok_or("no expected")?;
    // The learning-rate-free optimizers: their step size `d` after each step, and in f32 their
    // parameters checked against the distance moved (README).
    let d_per_step = t["d_per_step"].as_array();
    // optax's dog and mechanize move as little and carry no `d_per_step` (README).
    let small = d_per_step.is_some() || t["optimizer"] == "dog" || t["optimizer"] == "mechanize";
    let (initial, displacement) = (p.clone(), small && t["dtype"] == "f32");
    let d_tolerance = if t["dtype"] == "f64" { 1e-12 } else { 1e-5 };
    let expected_eval = t["expected_eval"].as_array();
    if expected_eval.is_some_and(|e| e.len() != expected.len()) {
        return Err("expected_eval and expected differ in length".into());
    }
    let lrs = t["lr_per_step"].as_array();
    // polyak_sgd's loss, given before each update.
    let losses = t["loss_per_step"].as_array();
    // What a momentum schedule must have set: SGD's momentum or Adam's beta1, per step.
    let momenta = t
        .get("momentum_per_step")
        .or_else(|| t.get("beta1_per_step"));
    let momenta = momenta
        .map(|m| m.as_array().ok_or("momenta are not a list"))
        .transpose()?;
    let mut average = averaging::<F>(&t["averaging"])?;
    let expected_average = t["expected_average"].as_array();
    if average.is_some() != expected_average.is_some() {
        return Err("averaging and expected_average come together".into());
    }
    // A scheduler drives the rate; `lr_per_step` is then what it must give.
    let mut scheduler = match scheduler(&t["scheduler"])? {
        Some(s) => Some(Scheduler::new(s, &mut *opt).map_err(|e| e.to_string())?),
        None => None,
    };
    let mut worst = 0.0f64;
    let mut trajectory = Vec::with_capacity(expected.len());
    for (i, (g, e)) in grads.iter().zip(expected).enumerate() {
        let lr = lrs.and_then(|l| l.get(i)).and_then(Value::as_f64);
        if let Some(lr) = lr {
            if scheduler.is_some() {
                worst = worst.max(relative_error(opt.learning_rate(), lr));
            } else if !injected {
                opt.set_learning_rate(lr).map_err(|e| e.to_string())?;
            }
        }
        if let Some(want) = momenta.map(|m| m.get(i).and_then(Value::as_f64)) {
            let want = want.ok_or(format!("step {i}: no momentum"))?;
            let got = opt
                .hyperparameter(Hyperparameter::Momentum)
                .ok_or("an optimizer without momentum")?;
            worst = worst.max(relative_error(got, want));
        }
        if let Some(loss) = losses.map(|l| l.get(i).and_then(Value::as_f64)) {
            let loss = loss.ok_or(format!("step {i}: no loss"))?;
            opt.set_hyperparameter(Hyperparameter::Loss, loss)
                .map_err(|e| e.to_string())?;
        }
        let g = params(g)?;
        match way {
            Way::Map => opt.update(&mut p, &g),
            Way::Named => opt.update_named(&mut named(&mut p, &g)),
        }
        .map_err(|e| format!("step {i}: {e}"))?;
        trajectory.push(params_bits(&p));
        let error = match displacement {
            true => compare_displacement(&p, e, &initial),
            false => compare(&p, e),
        };
        worst = worst.max(error.map_err(|e| format!("step {i}: {e}"))?);
        if let Some(want) = d_per_step.map(|d| d.get(i).and_then(Value::as_f64)) {
            let want = want.ok_or(format!("step {i}: no d"))?;
            let got = opt.global("d").ok_or("an optimizer without d")?;
            let error = relative_error(got, want) / want.abs().min(1.0);
            if error > d_tolerance {
                return Err(format!("step {i}: d = {got:e}, the reference's {want:e}"));
            }
        }
        if let (Some(read), Some(want)) = (&slow, s_per_step.and_then(|s| s.get(i))) {
            let got = read(&p)?;
            let want = want
                .as_array()
                .ok_or(format!("step {i}: s is not a list"))?;
            let got = got.get("s").ok_or("no s")?;
            if got.len() != want.len() {
                return Err(format!(
                    "step {i}: {} scales, the reference's {}",
                    got.len(),
                    want.len()
                ));
            }
            for (&got, want) in got.iter().zip(want) {
                let want = want.as_f64().ok_or(format!("step {i}: s is not numbers"))?;
                let got = got.to_f64().unwrap_or(f64::NAN);
                if relative_error(got, want) / want.abs().min(1.0) > d_tolerance {
                    return Err(format!("step {i}: s = {got:e}, the reference's {want:e}"));
                }
            }
        }
        if let (true, Some(lr)) = (injected, lr) {
            // The rate the injected schedule set for this update.
            worst = worst.max(relative_error(opt.learning_rate(), lr));
        }
        if let (Some(avg), Some(want)) = (&mut average, expected_average.and_then(|a| a.get(i))) {
            avg.update(&p)
                .map_err(|e| format!("step {i}: average: {e}"))?;
            let got = avg.averages();
            worst = worst.max(compare(&got, want).map_err(|e| format!("step {i}, average: {e}"))?);
            trajectory.push(params_bits(&got));
        }
        if let Some(s) = &mut scheduler {
            s.step(&mut *opt)
                .map_err(|e| format!("step {i}: scheduler: {e}"))?;
        }
        if let (Some(slow), Some(want)) = (&slow, expected_slow.and_then(|s| s.get(i))) {
            let got = slow(&p)?;
            worst = worst.max(compare(&got, want).map_err(|e| format!("step {i}, slow: {e}"))?);
            trajectory.push(params_bits(&got));
        }
        if let Some(ev) = expected_eval.and_then(|ev| ev.get(i)) {
            // The evaluation point, on a copy: eval() then train() need not give y back bit for
            // bit (the reference's file is made the same way).
            let (mut x, unread) = (p.clone(), p.clone());
            match way {
                Way::Map => opt.eval(&mut x),
                Way::Named => opt.eval_named(&mut named(&mut x, &unread)),
            }
            .map_err(|e| format!("step {i}: eval: {e}"))?;
            worst = worst.max(compare(&x, ev).map_err(|e| format!("step {i}, eval: {e}"))?);
            trajectory.push(params_bits(&x));
            match way {
                Way::Map => opt.train(&mut x),
                Way::Named => opt.train_named(&mut named(&mut x, &unread)),
            }
            .map_err(|e| format!("step {i}: train: {e}"))?;
        }
    }
    Ok((worst, trajectory))
}

/// Replays a file's steps through `opt` (its learning rates, gradients and expected parameters),
/// with `check(opt, i)` after step `i` for what else the file carries; returns the largest
/// relative error of both.
pub(crate) fn replay_checked<F: Scalar, O: Optimizer<F>>(
    opt: &mut O,
    t: &Value,
    mut check: impl FnMut(&O, usize) -> Result<f64, String>,
) -> Result<(f64, Trajectory), String> {
    let mut p = params::<F>(&t["initial"])?;
    let grads = t["grads"].as_array().ok_or("no grads")?;
    let expected = t["expected"].as_array().ok_or("no expected")?;
    let lrs = t["lr_per_step"].as_array();
    let (mut worst, mut trajectory) = (0.0f64, Vec::with_capacity(expected.len()));
    for (i, (g, e)) in grads.iter().zip(expected).enumerate() {
        if let Some(lr) = lrs.and_then(|l| l.get(i)).and_then(Value::as_f64) {
            opt.set_learning_rate(lr).map_err(|e| e.to_string())?;
        }
        opt.update(&mut p, &params(g)?)
            .map_err(|e| format!("step {i}: {e}"))?;
        worst = worst.max(compare(&p, e).map_err(|e| format!("step {i}: {e}"))?);
        trajectory.push(params_bits(&p));
        worst = worst.max(check(opt, i).map_err(|e| format!("step {i}: {e}"))?);
    }
    Ok((worst, trajectory))
}

/// Slot `name` of `key` in `opt`'s state, as f64 (empty where the key keeps none).
pub(crate) fn slot_values<R: ndoptim::Rule<F>, F: Scalar>(
    opt: &Engine<R, F>,
    key: &str,
    name: &str,
) -> Vec<f64> {
    opt.slot(key, name)
        .map(|s| s.iter().map(|x| x.to_f64().unwrap_or(f64::NAN)).collect())
        .unwrap_or_default()
}

/// The largest relative error of state `got` against the reference's `want`, as long as it.
pub(crate) fn state_error(got: &[f64], want: &[f64], what: &str) -> Result<f64, String> {
    if got.len() != want.len() {
        return Err(format!(
            "{what}: {} elements, the reference's {}",
            got.len(),
            want.len()
        ));
    }
    Ok(got
        .iter()
        .zip(want)
        .fold(0.0, |w, (&a, &b)| w.max(relative_error(a, b))))
}

/// A Polar Express file's description of its iteration is ndoptim's: the coefficients of
/// [`Muon::polar_express`], its safety factor, and Muon's ε.
fn polar_express(polar: &Value, hyper: &Value) -> Result<(), String> {
    let table: Vec<Vec<f64>> =
        serde_json::from_value(polar["coefficients"].clone()).map_err(|e| e.to_string())?;
    let ours: Vec<Vec<f64>> = MuonRule::POLAR_EXPRESS_COEFFICIENTS
        .iter()
        .map(|r| r.to_vec())
        .collect();
    if table != ours || hyper["ns_coefficients"] != polar["coefficients"] {
        return Err("Polar Express coefficients other than dion's".into());
    }
    if polar["safety_factor"] != 1.02 || polar["epsilon"] != hyper["eps"] {
        return Err("Polar Express's safety factor or epsilon differs".into());
    }
    Ok(())
}

/// NorMuon's constants are those [`Muon::normuon`] documents and uses.
fn normuon_constants(fixed: &Value) -> Result<(), String> {
    let ours = serde_json::json!({
        "nesterov": true,
        "ns_steps": 5,
        "ns_coefficients": [3.4445, -4.775, 2.0315],
        "ns_eps": 1e-7,
        "normalization_eps": 1e-10,
    });
    match fixed == &ours {
        true => Ok(()),
        false => Err(format!("NorMuon's constants {fixed}, ndoptim's {ours}")),
    }
}

/// A Muon file's parameter groups are Muon's routing: keys of rank >= 2 in the Muon group, the
/// others in the Adam group.
fn muon_groups(groups: &Value, initial: &Value) -> Result<(), String> {
    let names = |g: &str| -> Result<Vec<String>, String> {
        serde_json::from_value(groups[g].clone()).map_err(|e| format!("param_groups.{g}: {e}"))
    };
    let keys = initial.as_object().ok_or("no initial parameters")?;
    let (mut muon, mut adam): (Vec<String>, Vec<String>) = (Vec::new(), Vec::new());
    for (key, p) in keys {
        let rank = p["shape"].as_array().map_or(0, Vec::len);
        match rank >= 2 {
            true => muon.push(key.clone()),
            false => adam.push(key.clone()),
        }
    }
    let (mut want_muon, mut want_adam) = (names("muon")?, names("adam")?);
    want_muon.sort();
    want_adam.sort();
    muon.sort();
    adam.sort();
    match (muon == want_muon, adam == want_adam) {
        (true, true) => Ok(()),
        _ => Err(format!(
            "param_groups {groups}: Muon routes {muon:?} and {adam:?}"
        )),
    }
}

/// optax's `inject_hyperparams` (`optax_inject_*`): `opt` with each hyperparameter of
/// `schedules` set before each update to the value the reference used (`used`). The reference
/// computed those with a float32 step count (README), so ndoptim's own schedule, built from the
/// file's description, must give each within 1e-6, not bit for bit.
pub(crate) fn inject<F: Scalar>(
    opt: Box<dyn Optimizer<F>>,
    schedules: &Value,
    used: &Value,
) -> Result<Box<dyn Optimizer<F>>, String> {
    let schedules = schedules.as_object().ok_or("schedules is not a map")?;
    if used.as_object().map(|u| u.len()) != Some(schedules.len()) {
        return Err("hyper_per_step and schedules name different hyperparameters".into());
    }
    let mut o = Inject::new(opt);
    for (name, description) in schedules {
        let h = match name.as_str() {
            "learning_rate" => Hyperparameter::LearningRate,
            "b1" => Hyperparameter::Momentum,
            "b2" => Hyperparameter::Beta2,
            "weight_decay" => Hyperparameter::WeightDecay,
            other => return Err(format!("ndoptim cannot schedule {other}")),
        };
        let values = used[name]
            .as_array()
            .ok_or(format!("no hyper_per_step.{name}"))?;
        let values: Vec<f64> = values.iter().filter_map(Value::as_f64).collect();
        let ours = optax_schedules::schedule(description)?;
        for (step, &want) in values.iter().enumerate() {
            let got = ours.value(step as u64);
            if (got - want).abs() > 1e-6 * want.abs() {
                return Err(format!("{name} at step {step}: {got}, optax {want}"));
            }
        }
        let at = move |step: u64| values.get(step as usize).copied().unwrap_or(f64::NAN);
        o = o
            .schedule(h, schedule::from_fn(at))
            .map_err(|e| e.to_string())?;
    }
    Ok(Box::new(o))
}

/// The calls of an L-BFGS file (`torch_lbfgs_*`): after each, the iterate, the loss returned and
/// the counts of evaluations and iterations, which must be equal.
pub(crate) fn replay_lbfgs<F: Scalar>(t: &Value) -> Result<(f64, Trajectory), String> {
    const KNOWN: [&str; 11] = [
        "optimizer",
        "reference",
        "dtype",
        "hyperparameters",
        "problem",
        "initial",
        "calls",
        "expected",
        "func_evals_per_call",
        "iterations_per_call",
        "loss_per_call",
    ];
    only_fields(t, &KNOWN)?;
    let mut h = Hyper::new(&t["hyperparameters"]);
    let mut lbfgs = Lbfgs::<F>::default();
    lbfgs = opt(h.take("lr")?, lbfgs, Lbfgs::lr);
    lbfgs = opt(h.take("max_iter")?, lbfgs, |o, v| o.max_iter(v as u64));
    lbfgs = opt(h.take("max_eval")?, lbfgs, |o, v| o.max_eval(v as u64));
    lbfgs = opt(h.take("tolerance_grad")?, lbfgs, Lbfgs::tolerance_grad);
    lbfgs = opt(h.take("tolerance_change")?, lbfgs, Lbfgs::tolerance_change);
    lbfgs = opt(h.take("history_size")?, lbfgs, |o, v| {
        o.history_size(v as usize)
    });
    lbfgs = opt(h.flag("maximize")?, lbfgs, Lbfgs::maximize);
    lbfgs = lbfgs.line_search(match h.text("line_search_fn")?.as_deref() {
        None => LineSearch::None,
        Some("strong_wolfe") => LineSearch::StrongWolfe,
        Some(other) => return Err(format!("line search {other}")),
    });
    h.finish()?;
    let problem = Problem::<F>::read(&t["problem"])?;
    let mut p = params::<F>(&t["initial"])?;
    let calls = t["calls"].as_u64().ok_or("no calls")? as usize;
    let list = |k: &str| per_call(t, k, calls);
    let (expected, evals, iterations, losses) = (
        list("expected")?,
        list("func_evals_per_call")?,
        list("iterations_per_call")?,
        list("loss_per_call")?,
    );
    let (mut worst, mut trajectory) = (0.0f64, Vec::with_capacity(calls));
    for i in 0..calls {
        let loss = lbfgs
            .step(&mut p, |x, g| problem.evaluate(x, g))
            .map_err(|e| format!("call {i}: {e}"))?;
        let call = lbfgs.last_call();
        let counted = (Value::from(call.evaluations), Value::from(call.iterations));
        if counted != (evals[i].clone(), iterations[i].clone()) {
            return Err(format!(
                "call {i}: {} evaluations and {} iterations, expected {} and {}",
                counted.0, counted.1, evals[i], iterations[i]
            ));
        }
        let want = losses[i].as_f64().ok_or("a loss is not a number")?;
        worst = worst.max(relative_error(loss, want));
        worst = worst.max(compare(&p, &expected[i]).map_err(|e| format!("call {i}: {e}"))?);
        trajectory.push(params_bits(&p));
    }
    Ok((worst, trajectory))
}

/// The list `k` of a closure-style file, one entry per call.
fn per_call<'t>(t: &'t Value, k: &str, calls: usize) -> Result<&'t Vec<Value>, String> {
    t[k].as_array()
        .filter(|a| a.len() == calls)
        .ok_or(format!("{k}: not a list of {calls}"))
}

/// Replays an `optax.contrib.sam` file: each call takes the gradient at the current parameters
/// (compared with `grads_per_call`), then an update (transparent mode) or a whole SAM step whose
/// closure evaluates the problem (opaque mode).
pub(crate) fn replay_sam<F: Scalar>(t: &Value) -> Result<(f64, Trajectory), String> {
    const KNOWN: [&str; 11] = [
        "optimizer",
        "reference",
        "dtype",
        "hyperparameters",
        "inner_optimizer",
        "adv_optimizer",
        "problem",
        "initial",
        "calls",
        "expected",
        "grads_per_call",
    ];
    only_fields(t, &KNOWN)?;
    let mut h = Hyper::new(&t["hyperparameters"]);
    let period = h.take("sync_period")?.unwrap_or(2.0) as u64;
    // The ascent step keeps no state: resetting it or not replays the same.
    h.flag("reset_state")?;
    let opaque = h.flag("opaque_mode")?.unwrap_or(false);
    h.null("batch_axis_name")?;
    h.finish()?;
    let adv = &t["adv_optimizer"];
    if adv["name"] != "chain(optax.contrib.normalize(), optax.sgd(rho))" {
        return Err(format!(
            "the adversarial optimizer {} is not offered",
            adv["name"]
        ));
    }
    let rho = adv["rho"].as_f64().ok_or("no rho")?;
    let mut ascent = Hyper::new(&adv["sgd_hyperparameters"]);
    if ascent.take("learning_rate")? != Some(rho) || ascent.take("momentum")?.is_some() {
        return Err("the ascent is not sgd(rho) without momentum".into());
    }
    ascent.flag("nesterov")?;
    ascent.null("accumulator_dtype")?;
    ascent.finish()?;
    let mut inner = t["inner_optimizer"].clone();
    let name = inner["name"]
        .as_str()
        .ok_or("inner_optimizer has no name")?
        .to_string();
    let inner = build::<F>(
        t["reference"].as_str().unwrap_or(""),
        &name,
        &inner["hyperparameters"].take(),
    )?;
    let mut sam = Sam::new(inner, rho).sync_period(period);
    let problem = Problem::<F>::read(&t["problem"])?;
    let mut p = params::<F>(&t["initial"])?;
    let calls = t["calls"].as_u64().ok_or("no calls")? as usize;
    let list = |k: &str| per_call(t, k, calls);
    let (expected, grads) = (list("expected")?, list("grads_per_call")?);
    let (mut worst, mut trajectory) = (0.0f64, Vec::with_capacity(calls));
    for i in 0..calls {
        let mut g: Params<F> = p
            .iter()
            .map(|(k, v)| (k.clone(), v.mapv(|_| F::zero())))
            .collect();
        problem.evaluate(&p, &mut g);
        worst = worst.max(compare(&g, &grads[i]).map_err(|e| format!("call {i}, gradient: {e}"))?);
        match opaque {
            true => sam.step(&mut p, |x, g| problem.evaluate(x, g)).map(drop),
            false => sam.update(&mut p, &g),
        }
        .map_err(|e| format!("call {i}: {e}"))?;
        worst = worst.max(compare(&p, &expected[i]).map_err(|e| format!("call {i}: {e}"))?);
        trajectory.push(params_bits(&p));
    }
    Ok((worst, trajectory))
}

/// The function an L-BFGS file minimises, with the gradient its closure computes.
pub enum Problem<F> {
    /// `(1 - x0)^2 + 100 (x1 - x0^2)^2`.
    Rosenbrock,
    /// `0.5 x^T A x - b^T x`.
    Quadratic(Box<(ArrayD<F>, ArrayD<F>)>),
}

impl<F: Scalar> Problem<F> {
    /// The problem a file's `problem` field describes.
    pub fn read(v: &Value) -> Result<Self, String> {
        match v["name"].as_str() {
            Some("rosenbrock") => Ok(Problem::Rosenbrock),
            Some("quadratic") => Ok(Problem::Quadratic(Box::new((
                array(&v["A"])?,
                array(&v["b"])?,
            )))),
            other => Err(format!("no problem {other:?}")),
        }
    }

    /// The loss at `p["x"]`, its gradient written to `g["x"]`, computed as the reference's
    /// closure computes them.
    pub fn evaluate(&self, p: &Params<F>, g: &mut Params<F>) -> f64 {
        let x = &p["x"];
        let Some(grad) = g.get_mut("x") else {
            return f64::NAN;
        };
        let f = |v: f64| -> F { F::from(v).unwrap_or_else(F::nan) };
        match self {
            Problem::Rosenbrock => {
                let (x0, x1) = (x[0].to_f64().unwrap_or(0.0), x[1].to_f64().unwrap_or(0.0));
                let r = x1 - x0 * x0;
                grad[0] = f(-2.0 * (1.0 - x0) - 400.0 * x0 * r);
                grad[1] = f(200.0 * r);
                (1.0 - x0) * (1.0 - x0) + 100.0 * (r * r)
            }
            Problem::Quadratic(ab) => {
                let (a, b) = &**ab;
                let n = x.len();
                let mut value = 0.0;
                for i in 0..n {
                    let ax: F = (0..n).fold(F::zero(), |s, j| s + a[[i, j]] * x[j]);
                    grad[i] = ax - b[i];
                    value += 0.5 * (x[i] * ax).to_f64().unwrap_or(f64::NAN)
                        - (b[i] * x[i]).to_f64().unwrap_or(f64::NAN);
                }
                value
            }
        }
    }
}

/// Reads a wrapper's second set of weights (Lookahead's slow weights) beside the parameters.
pub(crate) type Reader<F> = Box<dyn Fn(&Params<F>) -> Result<Params<F>, String>>;

/// A wrapper, and a reader of its second weights if it keeps some.
pub(crate) type Wrapped<F> = (Box<dyn Optimizer<F>>, Option<Reader<F>>);

/// An optimizer shared with a [`Reader`] of its state.
#[derive(Debug)]
pub(crate) struct Shared<O>(Rc<RefCell<O>>);

impl<F: Scalar, O: Optimizer<F>> Optimizer<F> for Shared<O> {
    fn update(&mut self, params: &mut Params<F>, grads: &Params<F>) -> Result<(), ndoptim::Error> {
        self.0.borrow_mut().update(params, grads)
    }
    fn learning_rate(&self) -> f64 {
        self.0.borrow().learning_rate()
    }
    fn set_learning_rate(&mut self, lr: f64) -> Result<(), ndoptim::Error> {
        self.0.borrow_mut().set_learning_rate(lr)
    }
    fn reset(&mut self) {
        self.0.borrow_mut().reset()
    }
    fn name(&self) -> &'static str {
        self.0.borrow().name()
    }
    fn scope(&self) -> ndoptim::Scope {
        self.0.borrow().scope()
    }
    fn global(&self, name: &str) -> Option<f64> {
        self.0.borrow().global(name)
    }
    fn update_named(&mut self, items: &mut [ndoptim::Named<'_, F>]) -> Result<(), ndoptim::Error> {
        self.0.borrow_mut().update_named(items)
    }
    fn hyperparameter(&self, h: Hyperparameter) -> Option<f64> {
        self.0.borrow().hyperparameter(h)
    }
    fn set_hyperparameter(&mut self, h: Hyperparameter, value: f64) -> Result<(), ndoptim::Error> {
        self.0.borrow_mut().set_hyperparameter(h, value)
    }
    fn eval(&mut self, params: &mut Params<F>) -> Result<(), ndoptim::Error> {
        self.0.borrow_mut().eval(params)
    }
    fn train(&mut self, params: &mut Params<F>) -> Result<(), ndoptim::Error> {
        self.0.borrow_mut().train(params)
    }
    fn eval_named(&mut self, items: &mut [ndoptim::Named<'_, F>]) -> Result<(), ndoptim::Error> {
        self.0.borrow_mut().eval_named(items)
    }
    fn train_named(&mut self, items: &mut [ndoptim::Named<'_, F>]) -> Result<(), ndoptim::Error> {
        self.0.borrow_mut().train_named(items)
    }
}

/// A wrapper around the optimizer a file's `inner_optimizer` (or `fast_optimizer`) describes,
/// and for Lookahead a reader of its slow weights.
pub(crate) fn wrapper<F: Scalar>(
    reference: &str,
    name: &str,
    hyper: &Value,
    inner: &Value,
    dtype: &Value,
) -> Result<Wrapped<F>, String> {
    let mut inner = inner.clone();
    let inner_name = inner
        .as_object_mut()
        .and_then(|o| o.remove("name"))
        .and_then(|n| n.as_str().map(str::to_string))
        .ok_or("inner_optimizer has no name")?;
    // schedulefree's files nest the base optimizer's arguments beside a note.
    if let Some(o) = inner.as_object_mut() {
        o.remove("note");
        if let Some(h) = o.remove("hyperparameters") {
            inner = h;
        }
    }
    let inner = build::<F>(reference, &inner_name, &inner)?;
    let mut h = Hyper::new(hyper);
    let o: Box<dyn Optimizer<F>> = match name {
        "MultiSteps" => {
            h.null("should_skip_update_fn")?;
            // The accumulator in the element type: the files set it so.
            let acc = h.text("accumulator_dtype")?;
            let want = if dtype.as_str() == Some("f32") {
                "float32"
            } else {
                "float64"
            };
            if acc.as_deref() != Some(want) {
                return Err(format!("accumulator_dtype {acc:?} with {dtype} parameters"));
            }
            let k = h.take("every_k_schedule")?.ok_or("no every_k_schedule")?;
            let o = MultiSteps::new(inner, k as u64);
            Box::new(match h.flag("use_grad_mean")? {
                Some(m) => o.use_grad_mean(m),
                None => o,
            })
        }
        "lookahead" => {
            let period = h.take("sync_period")?.ok_or("no sync_period")?;
            let alpha = h.take("slow_step_size")?.ok_or("no slow_step_size")?;
            let o = Lookahead::new(inner, period as u64, alpha);
            let o = match h.flag("reset_state")? {
                Some(r) => o.reset_state(r),
                None => o,
            };
            h.finish()?;
            let shared = Rc::new(RefCell::new(o));
            let reader = Rc::clone(&shared);
            let slow: Reader<F> = Box::new(move |p: &Params<F>| {
                let mut slow = p.clone();
                reader
                    .borrow()
                    .copy_slow_to(&mut slow)
                    .map_err(|e| e.to_string())?;
                Ok(slow)
            });
            return Ok((Box::new(Shared(shared)), Some(slow)));
        }
        "mechanize" => {
            h.text("base_optimizer")?;
            let o = Mechanic::new(inner);
            let o = opt(h.take("weight_decay")?, o, Mechanic::weight_decay);
            let o = opt(h.take("eps")?, o, Mechanic::eps);
            let o = opt(h.take("s_init")?, o, Mechanic::s_init);
            let o = opt(h.take("num_betas")?, o, |o, n| o.num_betas(n as usize));
            h.finish()?;
            let shared = Rc::new(RefCell::new(o));
            let reader = Rc::clone(&shared);
            let scales: Reader<F> = Box::new(move |_: &Params<F>| {
                let s: Vec<F> = reader
                    .borrow()
                    .s()
                    .iter()
                    .map(|&s| F::from(s).unwrap_or(F::nan()))
                    .collect();
                Ok(Params::from([(
                    "s".to_string(),
                    ArrayD::from_shape_vec(IxDyn(&[s.len()]), s).map_err(|e| e.to_string())?,
                )]))
            });
            return Ok((Box::new(Shared(shared)), Some(scales)));
        }
        "ScheduleFreeWrapper" => {
            let o = ScheduleFreeWrapper::new(inner);
            let o = opt(h.take("momentum")?, o, ScheduleFreeWrapper::momentum);
            let o = opt(h.take("weight_decay_at_y")?, o, |o, v| {
                o.weight_decay_at_y(v)
            });
            let o = opt(h.take("r")?, o, ScheduleFreeWrapper::r);
            Box::new(opt(h.take("weight_lr_power")?, o, |o, v| {
                o.weight_lr_power(v)
            }))
        }
        _ => return Err(format!("ndoptim lacks the wrapper {name}")),
    };
    h.finish()?;
    Ok((o, None))
}

/// The average a file's `averaging` describes (`None` without one).
pub(crate) fn averaging<F: Scalar>(v: &Value) -> Result<Option<Average<F>>, String> {
    if v.is_null() {
        return Ok(None);
    }
    let mut h = Hyper::new(v);
    // Descriptions, not options.
    for text in ["class", "formula", "input"] {
        h.text(text)?;
    }
    let avg = match (h.text("kind")?.as_deref(), h.text("transform")?.as_deref()) {
        (Some("ema"), None) => {
            h.null("avg_fn")?;
            h.text("multi_avg_fn")?;
            if h.flag("use_buffers")? == Some(true) {
                return Err("AveragedModel over buffers".into());
            }
            Average::ema(h.take("decay")?.ok_or("no decay")?)
        }
        (Some("swa"), None) => {
            h.null("avg_fn")?;
            h.null("multi_avg_fn")?;
            if h.flag("use_buffers")? == Some(true) {
                return Err("AveragedModel over buffers".into());
            }
            Average::swa()
        }
        (None, Some("optax.ema")) => {
            h.null("accumulator_dtype")?;
            let avg = Average::ema_from_zero(h.take("decay")?.ok_or("no decay")?);
            match h.flag("debias")? {
                Some(d) => avg.debias(d),
                None => avg,
            }
        }
        other => return Err(format!("ndoptim lacks the average {other:?}")),
    };
    h.finish()?;
    Ok(Some(avg))
}
