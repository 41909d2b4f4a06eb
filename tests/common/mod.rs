//! Reading the reference trajectories of `tests/data/` and replaying them.
#![allow(dead_code)] // each test target uses its own subset

#[cfg(feature = "half")]
pub mod bf16;
pub mod optax_schedules;
pub mod optimi;

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::Path;
use std::rc::Rc;

use ndarray::{ArrayD, IxDyn};
use ndoptim::accumulate::MultiSteps;
use ndoptim::average::Average;
use ndoptim::lbfgs::{Lbfgs, LineSearch};
use ndoptim::lookahead::Lookahead;
use ndoptim::schedule::{
    self, CycleMomentum, Cyclic, CyclicMode, Inject, OneCycle, Plateau, ScaleMode, Scheduler,
    TorchSchedule,
};
use ndoptim::transform::{
    self, AddDecayedWeights, Ema, ScaleByAdam, ScaleByLearningRate, ScaleByNadam, ScaleBySign,
    Transform,
};
use ndoptim::{
    AdEMAMix, AdaBelief, AdaGrad, Adadelta, Adafactor, Adam, Adamax, Adan, AdjustLr, Adopt, Asgd,
    Engine, Hyperparameter, Lamb, Lars, Lion, Momentum, Muon, NAdam, Nesterov, Optimizer, Params,
    Preconditioning, RAdam, RmsProp, Rprop, Scalar, ScheduleFreeAdamW, ScheduleFreeSgd, Sgd, chain,
};
use serde_json::{Map, Value};

/// A small model and the gradients of step `step`: parameters of the given shapes with values
/// in [-0.4, 0.6), gradients half their scale, both varying with the key, the element and the step.
pub fn small_model<F: Scalar>(shapes: &[(&str, &[usize])], step: usize) -> (Params<F>, Params<F>) {
    use ndarray::Dimension;
    let make = |k: usize, s: &[usize], scale: f64| {
        ArrayD::from_shape_fn(IxDyn(s), |ix| {
            let v =
                ((k * 7 + ix.slice().iter().sum::<usize>() * 3 + step) % 11) as f64 * scale - 0.4;
            F::from(v).unwrap_or_else(F::nan)
        })
    };
    let p = shapes
        .iter()
        .enumerate()
        .map(|(k, (n, s))| (n.to_string(), make(k, s, 0.1)))
        .collect();
    let g = shapes
        .iter()
        .enumerate()
        .map(|(k, (n, s))| (n.to_string(), make(k + 2, s, 0.05)))
        .collect();
    (p, g)
}

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
fn opt<T, V>(value: Option<V>, o: T, set: impl FnOnce(T, V) -> T) -> T {
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
    fn flag_or_null(&mut self, name: &str) -> Result<Option<bool>, String> {
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

/// The options `weight_decay` and `maximize` (and `decoupled_weight_decay` where offered).
macro_rules! gradient_options {
    ($h:ident, $o:expr) => {{
        let o = opt($h.take("weight_decay")?, $o, |o, v| o.weight_decay(v));
        opt($h.flag("maximize")?, o, |o, v| o.maximize(v))
    }};
    ($h:ident, $o:expr, decoupled) => {{
        let o = gradient_options!($h, $o);
        opt($h.flag("decoupled_weight_decay")?, o, |o, v| {
            o.decoupled_weight_decay(v)
        })
    }};
}

/// `betas` as a pair.
macro_rules! betas {
    ($h:ident, $o:expr) => {
        opt($h.numbers("betas")?, $o, |o, (b1, b2)| o.betas(b1, b2))
    };
}

/// The optimizer a reference file names, with its hyperparameters.
pub fn build<F: Scalar>(
    reference: &str,
    name: &str,
    hyper: &Value,
) -> Result<Box<dyn Optimizer<F>>, String> {
    let mut h = Hyper::new(hyper);
    if reference.starts_with("optax") {
        let o = build_optax::<F>(name, &mut h)?;
        h.finish()?;
        return Ok(o);
    }
    if reference.starts_with("optimi") {
        // kahan_sum acts on low-precision parameters only.
        let o: Box<dyn Optimizer<F>> = match name {
            "SGD" => Box::new(optimi::sgd::<F>(&mut h)?.0),
            "Adam" => Box::new(optimi::adam::<F>(&mut h, false)?.0),
            "AdamW" => Box::new(optimi::adam::<F>(&mut h, true)?.0),
            "RAdam" => Box::new(optimi::radam::<F>(&mut h, false)?.0),
            "Lion" => Box::new(optimi::lion::<F>(&mut h)?.0),
            "Ranger" => Box::new(optimi::ranger::<F>(&mut h)?.0),
            "StableAdamW" => Box::new(optimi::stable_adamw::<F>(&mut h)?.0),
            "Adan" => Box::new(optimi::adan::<F>(&mut h)?.0),
            other => return Err(format!("ndoptim lacks optimi.{other}")),
        };
        h.finish()?;
        return Ok(o);
    }
    let lr = h.take("lr")?;
    let book = reference.starts_with("book");
    if !book {
        h.implementation()?;
    }
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
        (false, "SGD") => {
            let o = opt(lr, Sgd::<F>::default(), Sgd::lr);
            let o = opt(h.take("momentum")?, o, Sgd::momentum);
            let o = opt(h.take("dampening")?, o, Sgd::dampening);
            let o = opt(h.flag("nesterov")?, o, Sgd::nesterov);
            Box::new(gradient_options!(h, o))
        }
        (false, "Adam" | "AdamW") => {
            let o = if name == "Adam" {
                Adam::<F>::pytorch()
            } else {
                Adam::<F>::pytorch().decoupled_weight_decay(true)
            };
            let o = opt(lr, o, Adam::lr);
            let o = opt(h.take("eps")?, betas!(h, o), Adam::eps);
            let o = opt(h.flag("amsgrad")?, o, Adam::amsgrad);
            Box::new(gradient_options!(h, o, decoupled))
        }
        (false, "Adagrad") => {
            let o = opt(lr, AdaGrad::<F>::pytorch(), AdaGrad::lr);
            let o = opt(h.take("eps")?, o, AdaGrad::eps);
            let o = opt(h.take("lr_decay")?, o, AdaGrad::lr_decay);
            let o = opt(
                h.take("initial_accumulator_value")?,
                o,
                AdaGrad::initial_accumulator_value,
            );
            Box::new(gradient_options!(h, o))
        }
        (false, "RMSprop") => {
            let o = opt(lr, RmsProp::<F>::pytorch(), RmsProp::lr);
            let o = opt(h.take("alpha")?, o, RmsProp::alpha);
            let o = opt(h.take("eps")?, o, RmsProp::eps);
            let o = opt(h.take("momentum")?, o, RmsProp::momentum);
            let o = opt(h.flag("centered")?, o, RmsProp::centered);
            Box::new(gradient_options!(h, o))
        }
        (false, "NAdam") => {
            let o = opt(lr, NAdam::<F>::default(), NAdam::lr);
            let o = opt(h.take("eps")?, betas!(h, o), NAdam::eps);
            let o = opt(h.take("momentum_decay")?, o, NAdam::momentum_decay);
            Box::new(gradient_options!(h, o, decoupled))
        }
        (false, "RAdam") => {
            let o = opt(lr, RAdam::<F>::default(), RAdam::lr);
            let o = opt(h.take("eps")?, betas!(h, o), RAdam::eps);
            Box::new(gradient_options!(h, o, decoupled))
        }
        (false, "Adamax") => {
            let o = opt(lr, Adamax::<F>::default(), Adamax::lr);
            let o = opt(h.take("eps")?, betas!(h, o), Adamax::eps);
            Box::new(gradient_options!(h, o))
        }
        (false, "Adadelta") => {
            let o = opt(lr, Adadelta::<F>::default(), Adadelta::lr);
            let o = opt(h.take("rho")?, o, Adadelta::rho);
            let o = opt(h.take("eps")?, o, Adadelta::eps);
            Box::new(gradient_options!(h, o))
        }
        (false, "Rprop") => {
            let o = opt(lr, Rprop::<F>::default(), Rprop::lr);
            let o = opt(h.numbers("etas")?, o, |o, (a, b)| o.etas(a, b));
            let o = opt(h.numbers("step_sizes")?, o, |o, (a, b)| o.step_sizes(a, b));
            Box::new(opt(h.flag("maximize")?, o, Rprop::maximize))
        }
        (false, "ASGD") => {
            let o = opt(lr, Asgd::<F>::default(), Asgd::lr);
            let o = opt(h.take("lambd")?, o, Asgd::lambd);
            let o = opt(h.take("alpha")?, o, Asgd::alpha);
            let o = opt(h.take("t0")?, o, Asgd::t0);
            Box::new(gradient_options!(h, o))
        }
        (false, "Adafactor") => {
            let o = opt(lr, Adafactor::<F>::default(), Adafactor::lr);
            let o = opt(h.take("beta2_decay")?, o, Adafactor::beta2_decay);
            let o = opt(h.pair("eps")?, o, |o, [e1, e2]| {
                let o = o.eps1(e1);
                opt(e2, o, Adafactor::eps2)
            });
            let o = opt(h.take("d")?, o, Adafactor::d);
            Box::new(gradient_options!(h, o))
        }
        (false, "AdamWScheduleFree") => {
            let o = opt(lr, ScheduleFreeAdamW::<F>::default(), ScheduleFreeAdamW::lr);
            let o = opt(h.take("eps")?, betas!(h, o), ScheduleFreeAdamW::eps);
            let o = opt(h.take("r")?, o, ScheduleFreeAdamW::r);
            let o = opt(h.take("warmup_steps")?, o, |o, n| o.warmup_steps(n as u64));
            let o = opt(
                h.take("weight_lr_power")?,
                o,
                ScheduleFreeAdamW::weight_lr_power,
            );
            Box::new(opt(
                h.take("weight_decay")?,
                o,
                ScheduleFreeAdamW::weight_decay,
            ))
        }
        (false, "SGDScheduleFree") => {
            let o = opt(lr, ScheduleFreeSgd::<F>::default(), ScheduleFreeSgd::lr);
            let o = opt(h.take("momentum")?, o, ScheduleFreeSgd::momentum);
            let o = opt(h.take("r")?, o, ScheduleFreeSgd::r);
            let o = opt(h.take("warmup_steps")?, o, |o, n| o.warmup_steps(n as u64));
            let o = opt(
                h.take("weight_lr_power")?,
                o,
                ScheduleFreeSgd::weight_lr_power,
            );
            Box::new(opt(
                h.take("weight_decay")?,
                o,
                ScheduleFreeSgd::weight_decay,
            ))
        }
        (false, "Muon") => {
            let o = opt(lr, Muon::<F>::default(), Muon::lr);
            let o = opt(h.take("weight_decay")?, o, Muon::weight_decay);
            let o = opt(h.take("momentum")?, o, Muon::momentum);
            let o = opt(h.flag("nesterov")?, o, Muon::nesterov);
            let o = opt(h.list("ns_coefficients")?, o, |o, c| {
                o.ns_coefficients([c[0], c[1], c[2]])
            });
            let o = opt(h.take("eps")?, o, Muon::eps);
            let o = opt(h.take("ns_steps")?, o, |o, n| o.ns_steps(n as usize));
            let o = match h.text("adjust_lr_fn")?.as_deref() {
                None | Some("original") => o.adjust_lr(AdjustLr::Original),
                Some("match_rms_adamw") => o.adjust_lr(AdjustLr::MatchRmsAdamW),
                Some("spectral_unclamped") => o.adjust_lr(AdjustLr::SpectralUnclamped),
                Some(f) => return Err(format!("adjust_lr_fn {f} is unknown")),
            };
            Box::new(o)
        }
        _ => return Err(format!("ndoptim lacks optimizer {name} of {reference}")),
    };
    h.finish()?;
    Ok(o)
}

/// `b1`/`b2` as optax names them.
macro_rules! optax_betas {
    ($h:ident, $o:expr) => {{
        let o = opt($h.take("b1")?, $o, |o, v| o.beta1(v));
        opt($h.take("b2")?, o, |o, v| o.beta2(v))
    }};
}

/// The optimizer made of `chain`, at learning rate `lr` if the file gives one.
fn chained<F: Scalar, T: Transform<F> + 'static>(
    lr: Option<f64>,
    chain: T,
) -> Box<dyn Optimizer<F>> {
    Box::new(opt(lr, transform::optimizer::<_, F>(chain), Engine::lr))
}

/// An optax optimizer (`optax.<alias>` or `optax.contrib.<alias>`) with its arguments.
fn build_optax<F: Scalar>(name: &str, h: &mut Hyper) -> Result<Box<dyn Optimizer<F>>, String> {
    let lr = h.take("learning_rate")?;
    h.null("mask")?;
    h.null("mu_dtype")?;
    let o: Box<dyn Optimizer<F>> = match name {
        "sgd" => {
            h.null("accumulator_dtype")?;
            // optax's trace (`t = g + momentum t`, update `-lr t`), in its fused arithmetic.
            let o = opt(lr, Sgd::<F>::optax(), Sgd::lr);
            let o = opt(h.take("momentum")?, o, Sgd::momentum);
            Box::new(match h.flag("nesterov")? {
                Some(n) => o.nesterov(n),
                None => o,
            })
        }
        // optax's aliases that are chains are ndoptim's same chains.
        "adam" | "adamw" | "nadamw" => {
            let [b1, b2] = [h.take("b1")?, h.take("b2")?];
            let adam = ScaleByAdam::default().betas([b1.unwrap_or(0.9), b2.unwrap_or(0.999)]);
            let adam = opt(h.take("eps")?, adam, ScaleByAdam::eps);
            let adam = opt(h.take("eps_root")?, adam, ScaleByAdam::eps_root);
            let nesterov = h.flag("nesterov")?.unwrap_or(name == "nadamw");
            let decay = match name {
                "adam" => None,
                _ => Some(AddDecayedWeights::new(
                    h.take("weight_decay")?.unwrap_or(1e-4),
                )),
            };
            match (nesterov, decay) {
                (false, None) => chained(lr, chain!(adam, ScaleByLearningRate)),
                (true, None) => chained(lr, chain!(ScaleByNadam(adam), ScaleByLearningRate)),
                (false, Some(d)) => chained(lr, chain!(adam, d, ScaleByLearningRate)),
                (true, Some(d)) => chained(lr, chain!(ScaleByNadam(adam), d, ScaleByLearningRate)),
            }
        }
        "sign_sgd" => chained(lr, chain!(ScaleBySign, ScaleByLearningRate)),
        "signum" => {
            h.null("accumulator_dtype")?;
            let ema = Ema::new(h.take("beta")?.unwrap_or(0.9)).debias(false);
            chained(lr, chain!(ema, ScaleBySign, ScaleByLearningRate))
        }
        "lion" => {
            let o = opt(lr, Lion::<F>::default(), Lion::lr);
            let o = optax_betas!(h, o);
            Box::new(opt(h.take("weight_decay")?, o, Lion::weight_decay))
        }
        "adan" => {
            let o = opt(lr, Adan::<F>::default(), Adan::lr);
            let o = opt(h.take("b1")?, o, Adan::b1);
            let o = opt(h.take("b2")?, o, Adan::b2);
            let o = opt(h.take("b3")?, o, Adan::b3);
            let o = opt(h.take("eps")?, o, Adan::eps);
            let o = opt(h.take("eps_root")?, o, Adan::eps_root);
            Box::new(opt(h.take("weight_decay")?, o, Adan::weight_decay))
        }
        "adabelief" => {
            let o = optax_betas!(h, opt(lr, AdaBelief::<F>::default(), AdaBelief::lr));
            let o = opt(h.take("eps")?, o, AdaBelief::eps);
            let o = opt(h.take("eps_root")?, o, AdaBelief::eps_root);
            Box::new(opt(h.flag("nesterov")?, o, AdaBelief::nesterov))
        }
        "adopt" => {
            let o = optax_betas!(h, opt(lr, Adopt::<F>::default(), Adopt::lr));
            let o = opt(h.take("eps")?, o, Adopt::eps);
            let o = opt(h.flag("nesterov")?, o, Adopt::nesterov);
            let clip = match h.text("clip_value_fn")? {
                Some(f) if f.starts_with("lambda x: x**0.25") => Some(0.25),
                Some(f) => return Err(format!("clip_value_fn {f} is not replayed")),
                None => Some(0.25),
            };
            let clip = if h.flag("use_clipping")? == Some(false) {
                None
            } else {
                clip
            };
            Box::new(o.clip_exponent(clip))
        }
        "ademamix" => {
            let o = optax_betas!(h, opt(lr, AdEMAMix::<F>::default(), AdEMAMix::lr));
            let o = opt(h.take("b3")?, o, AdEMAMix::b3);
            let o = opt(h.take("alpha")?, o, AdEMAMix::alpha);
            let o = opt(h.take("eps")?, o, AdEMAMix::eps);
            let o = opt(h.take("eps_root")?, o, AdEMAMix::eps_root);
            Box::new(opt(h.take("weight_decay")?, o, AdEMAMix::weight_decay))
        }
        "lamb" => {
            let o = optax_betas!(h, opt(lr, Lamb::<F>::default(), Lamb::lr));
            let o = opt(h.take("eps")?, o, Lamb::eps);
            let o = opt(h.take("eps_root")?, o, Lamb::eps_root);
            Box::new(opt(h.take("weight_decay")?, o, Lamb::weight_decay))
        }
        "lars" => {
            let o = opt(lr, Lars::<F>::default(), Lars::lr);
            let o = opt(h.take("weight_decay")?, o, Lars::weight_decay);
            let o = opt(h.take("trust_coefficient")?, o, Lars::trust_coefficient);
            let o = opt(h.take("eps")?, o, Lars::eps);
            let o = opt(h.take("momentum")?, o, Lars::momentum);
            let o = opt(h.flag("nesterov")?, o, Lars::nesterov);
            // Masks are groups here; the files use optax's default, every key.
            for mask in ["weight_decay_mask", "trust_ratio_mask"] {
                if h.flag(mask)? == Some(false) {
                    return Err(format!("{mask}=false is not replayed"));
                }
            }
            Box::new(o)
        }
        "muon" => {
            let o = opt(lr, Muon::<F>::optax(), Muon::lr);
            let o = match h.0.remove("ns_coeffs") {
                None => o,
                Some(v) => {
                    // (3,) or (n, 3), as optax takes it.
                    let rows: Vec<Vec<f64>> = serde_json::from_value::<Vec<Vec<f64>>>(v.clone())
                        .or_else(|_| serde_json::from_value::<Vec<f64>>(v).map(|r| vec![r]))
                        .map_err(|e| e.to_string())?;
                    let rows: Vec<[f64; 3]> = rows
                        .iter()
                        .map(|r| <[f64; 3]>::try_from(r.as_slice()).map_err(|e| e.to_string()))
                        .collect::<Result<_, _>>()?;
                    o.ns_schedule(rows)
                }
            };
            let o = opt(h.take("ns_steps")?, o, |o, n| o.ns_steps(n as usize));
            let o = opt(h.take("beta")?, o, Muon::momentum);
            let o = opt(h.take("eps")?, o, Muon::eps);
            let o = opt(h.take("weight_decay")?, o, Muon::weight_decay);
            let o = opt(h.flag("nesterov")?, o, Muon::nesterov);
            let o = opt(h.flag("adaptive")?, o, Muon::adaptive);
            let o = opt(h.numbers_of(["adam_b1", "adam_b2"])?, o, |o, [a, b]| {
                o.adam_betas(a, b)
            });
            let o = opt(h.take("adam_eps_root")?, o, Muon::adam_eps_root);
            let o = opt(h.take("adam_weight_decay")?, o, Muon::adam_weight_decay);
            let o = opt(h.take("consistent_rms")?, o, |o, v| {
                o.consistent_rms(Some(v))
            });
            let o = opt(h.take("adam_learning_rate")?, o, |o, v| o.adam_lr(Some(v)));
            h.null("weight_decay_mask")?;
            h.null("muon_weight_dimension_numbers")?;
            let o = match h.text("preconditioning")?.as_deref() {
                None | Some("frobenius") => o,
                Some("aol") => o.preconditioning(Preconditioning::Aol),
                Some("schatten") => o.preconditioning(Preconditioning::Schatten),
                Some(p) => return Err(format!("preconditioning {p} is not offered")),
            };
            Box::new(o)
        }
        _ => return Err(format!("ndoptim lacks optimizer optax {name}")),
    };
    Ok(o)
}

/// Fails on a field of `t` outside `known`: every field a file carries is compared or used, and
/// one this replayer does not know fails the file rather than going unchecked.
pub fn only_fields(t: &Value, known: &[&str]) -> Result<(), String> {
    match t
        .as_object()
        .and_then(|o| o.keys().find(|k| !known.contains(&k.as_str())))
    {
        Some(field) => Err(format!("field {field:?} is not replayed")),
        None => Ok(()),
    }
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
    // Every field a file carries is compared or used: a field this replayer does not know fails
    // the file rather than going unchecked.
    const KNOWN: [&str; 19] = [
        "optimizer",
        "reference",
        "dtype",
        "hyperparameters",
        "lr_per_step",
        "initial",
        "grads",
        "expected",
        "expected_eval",
        "averaging",
        "expected_average",
        "scheduler",
        "inner_optimizer",
        "fast_optimizer",
        "expected_slow",
        "momentum_per_step",
        "beta1_per_step",
        "schedules",
        "hyper_per_step",
    ];
    only_fields(t, &KNOWN)?;
    let reference = t["reference"].as_str().unwrap_or("");
    let name = t["optimizer"].as_str().ok_or("no optimizer named")?;
    let inner = t.get("inner_optimizer").or_else(|| t.get("fast_optimizer"));
    let (mut opt, slow) = match inner {
        Some(inner) => wrapper::<F>(reference, name, &t["hyperparameters"], inner, &t["dtype"])?,
        None => (build::<F>(reference, name, &t["hyperparameters"])?, None),
    };
    let injected = t.get("hyper_per_step").is_some();
    if injected {
        opt = inject(opt, &t["schedules"], &t["hyper_per_step"])?;
    }
    let expected_slow = t["expected_slow"].as_array();
    if slow.is_some() != expected_slow.is_some() {
        return Err("a lookahead file without expected_slow, or the reverse".into());
    }
    let mut p = params::<F>(&t["initial"])?;
    let grads = t["grads"].as_array().ok_or("no grads")?;
    let expected = t["expected"].as_array().ok_or("no expected")?;
    let expected_eval = t["expected_eval"].as_array();
    if expected_eval.is_some_and(|e| e.len() != expected.len()) {
        return Err("expected_eval and expected differ in length".into());
    }
    let lrs = t["lr_per_step"].as_array();
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
        let g = params(g)?;
        match way {
            Way::Map => opt.update(&mut p, &g),
            Way::Named => opt.update_named(&mut named(&mut p, &g)),
        }
        .map_err(|e| format!("step {i}: {e}"))?;
        trajectory.push(params_bits(&p));
        worst = worst.max(compare(&p, e).map_err(|e| format!("step {i}: {e}"))?);
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

/// optax's `inject_hyperparams` (`optax_inject_*`): `opt` with each hyperparameter of
/// `schedules` set before each update to the value the reference used (`used`). The reference
/// computed those with a float32 step count (README), so ndoptim's own schedule, built from the
/// file's description, must give each within 1e-6, not bit for bit.
fn inject<F: Scalar>(
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
fn replay_lbfgs<F: Scalar>(t: &Value) -> Result<(f64, Trajectory), String> {
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
    let list = |k: &str| {
        t[k].as_array()
            .filter(|a| a.len() == calls)
            .ok_or(format!("{k}: not a list of {calls}"))
    };
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
type Reader<F> = Box<dyn Fn(&Params<F>) -> Result<Params<F>, String>>;

/// A wrapper, and a reader of its second weights if it keeps some.
type Wrapped<F> = (Box<dyn Optimizer<F>>, Option<Reader<F>>);

/// An optimizer shared with a [`Reader`] of its state.
#[derive(Debug)]
struct Shared<O>(Rc<RefCell<O>>);

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
fn wrapper<F: Scalar>(
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
        _ => return Err(format!("ndoptim lacks the wrapper {name}")),
    };
    h.finish()?;
    Ok((o, None))
}

/// The average a file's `averaging` describes (`None` without one).
fn averaging<F: Scalar>(v: &Value) -> Result<Option<Average<F>>, String> {
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

/// The schedule a file's `scheduler` describes (`None` without one).
pub fn scheduler(v: &Value) -> Result<Option<TorchSchedule>, String> {
    if v.is_null() {
        return Ok(None);
    }
    let mut h = Hyper::new(v);
    h.text("note")?;
    let class = h.text("class")?.unwrap_or_default();
    let mut args = Hyper::new(&v["args"]);
    h.0.remove("args");
    h.finish()?;
    let schedule = match class.as_str() {
        "torch.optim.swa_utils.SWALR" => {
            resumed(&mut args)?;
            TorchSchedule::SwaLR {
                swa_lr: args.take("swa_lr")?.ok_or("no swa_lr")?,
                anneal_epochs: args.take("anneal_epochs")?.ok_or("no anneal_epochs")? as u64,
                cos: match args.text("anneal_strategy")?.as_deref() {
                    Some("cos") | None => true,
                    Some("linear") => false,
                    Some(other) => return Err(format!("anneal_strategy {other}")),
                },
            }
        }
        "torch.optim.lr_scheduler.OneCycleLR" => {
            resumed(&mut args)?;
            args.null("epochs")?;
            args.null("steps_per_epoch")?;
            let max_lr = args.take("max_lr")?.ok_or("no max_lr")?;
            let total_steps = args.take("total_steps")?.ok_or("no total_steps")? as u64;
            let cos = match args.text("anneal_strategy")?.as_deref() {
                Some("cos") | None => true,
                Some("linear") => false,
                Some(other) => return Err(format!("anneal_strategy {other}")),
            };
            let o = OneCycle::new(max_lr, total_steps).cos(cos);
            let o = opt(args.take("pct_start")?, o, OneCycle::pct_start);
            let o = opt(args.take("div_factor")?, o, OneCycle::div_factor);
            let o = opt(
                args.take("final_div_factor")?,
                o,
                OneCycle::final_div_factor,
            );
            let o = opt(args.flag("three_phase")?, o, OneCycle::three_phase);
            o.momentum(cycle_momentum(&mut args, CycleMomentum::ONE_CYCLE)?)
                .into()
        }
        "torch.optim.lr_scheduler.CyclicLR" => {
            resumed(&mut args)?;
            // PyTorch reads scale_mode only with a custom scale_fn: the built-in modes scale by
            // their own (cycles for the triangular ones, iterations for exp_range).
            let scale_mode = match args.text("scale_mode")?.as_deref() {
                Some("cycle") | None => ScaleMode::Cycle,
                Some("iterations") => ScaleMode::Iterations,
                Some(other) => return Err(format!("scale_mode {other}")),
            };
            let mode = match (
                args.text("scale_fn")?.as_deref(),
                args.text("mode")?.as_deref(),
            ) {
                (Some(f), _) => CyclicMode::Custom {
                    scale_fn: scale_fn(f)?,
                    scale_mode,
                },
                (None, Some("triangular") | None) => CyclicMode::Triangular,
                (None, Some("triangular2")) => CyclicMode::Triangular2,
                (None, Some("exp_range")) => CyclicMode::ExpRange,
                (None, Some(other)) => return Err(format!("mode {other}")),
            };
            let step_size_up = args.take("step_size_up")?.unwrap_or(2000.0) as u64;
            let base_lr = args.take("base_lr")?.ok_or("no base_lr")?;
            let max_lr = args.take("max_lr")?.ok_or("no max_lr")?;
            let c = Cyclic::new(base_lr, max_lr, step_size_up).mode(mode);
            let c = opt(args.take("step_size_down")?, c, |c, d| {
                c.step_size_down(d as u64)
            });
            let c = opt(args.take("gamma")?, c, Cyclic::gamma);
            c.momentum(cycle_momentum(&mut args, CycleMomentum::CYCLIC)?)
                .into()
        }
        "torch.optim.lr_scheduler.StepLR" => {
            resumed(&mut args)?;
            TorchSchedule::StepLR {
                step_size: whole(args.take("step_size")?, "step_size")?,
                gamma: args.take("gamma")?.unwrap_or(0.1),
            }
        }
        "torch.optim.lr_scheduler.MultiStepLR" => {
            resumed(&mut args)?;
            TorchSchedule::MultiStepLR {
                milestones: args
                    .list("milestones")?
                    .ok_or("no milestones")?
                    .into_iter()
                    .map(|m| m as u64)
                    .collect(),
                gamma: args.take("gamma")?.unwrap_or(0.1),
            }
        }
        "torch.optim.lr_scheduler.ExponentialLR" => {
            resumed(&mut args)?;
            TorchSchedule::ExponentialLR {
                gamma: args.take("gamma")?.ok_or("no gamma")?,
            }
        }
        "torch.optim.lr_scheduler.CosineAnnealingLR" => {
            resumed(&mut args)?;
            TorchSchedule::CosineAnnealingLR {
                t_max: whole(args.take("T_max")?, "T_max")?,
                eta_min: args.take("eta_min")?.unwrap_or(0.0),
            }
        }
        "torch.optim.lr_scheduler.CosineAnnealingWarmRestarts" => {
            resumed(&mut args)?;
            TorchSchedule::CosineAnnealingWarmRestarts {
                t_0: whole(args.take("T_0")?, "T_0")?,
                t_mult: args.take("T_mult")?.map_or(1, |m| m as u64),
                eta_min: args.take("eta_min")?.unwrap_or(0.0),
            }
        }
        "torch.optim.lr_scheduler.LinearLR" => {
            resumed(&mut args)?;
            TorchSchedule::LinearLR {
                start_factor: args.take("start_factor")?.unwrap_or(1.0 / 3.0),
                end_factor: args.take("end_factor")?.unwrap_or(1.0),
                total_iters: args.take("total_iters")?.map_or(5, |t| t as u64),
            }
        }
        "torch.optim.lr_scheduler.ConstantLR" => {
            resumed(&mut args)?;
            TorchSchedule::ConstantLR {
                factor: args.take("factor")?.unwrap_or(1.0 / 3.0),
                total_iters: args.take("total_iters")?.map_or(5, |t| t as u64),
            }
        }
        "torch.optim.lr_scheduler.PolynomialLR" => {
            resumed(&mut args)?;
            TorchSchedule::PolynomialLR {
                total_iters: args.take("total_iters")?.map_or(5, |t| t as u64),
                power: args.take("power")?.unwrap_or(1.0),
            }
        }
        "torch.optim.lr_scheduler.SequentialLR" => {
            resumed(&mut args)?;
            let schedules = args
                .0
                .remove("schedulers")
                .and_then(|v| v.as_array().cloned())
                .ok_or("SequentialLR without schedulers")?
                .iter()
                .map(|child| {
                    let class = child["class"].as_str().unwrap_or_default();
                    let described = serde_json::json!({
                        "class": format!("torch.optim.lr_scheduler.{class}"),
                        "args": child["args"],
                    });
                    scheduler(&described)?.ok_or_else(|| "an empty child".to_string())
                })
                .collect::<Result<Vec<_>, _>>()?;
            let milestones = args.list("milestones")?.ok_or("no milestones")?;
            TorchSchedule::Sequential {
                schedules,
                milestones: milestones.into_iter().map(|m| m as u64).collect(),
            }
        }
        "torch.optim.lr_scheduler.ReduceLROnPlateau" => {
            let d = Plateau::default();
            let minimize = match args.text("mode")?.as_deref() {
                Some("min") | None => true,
                Some("max") => false,
                Some(other) => return Err(format!("mode {other}")),
            };
            let relative = match args.text("threshold_mode")?.as_deref() {
                Some("rel") | None => true,
                Some("abs") => false,
                Some(other) => return Err(format!("threshold_mode {other}")),
            };
            TorchSchedule::ReduceLROnPlateau(
                Plateau::default()
                    .minimize(minimize)
                    .relative(relative)
                    .factor(args.take("factor")?.unwrap_or(d.factor))
                    .patience(args.take("patience")?.map_or(d.patience, |p| p as u64))
                    .threshold(args.take("threshold")?.unwrap_or(d.threshold))
                    .cooldown(args.take("cooldown")?.map_or(d.cooldown, |c| c as u64))
                    .min_lr(args.take("min_lr")?.unwrap_or(d.min_lr))
                    .eps(args.take("eps")?.unwrap_or(d.eps)),
            )
        }
        other => return Err(format!("ndoptim lacks the scheduler {other}")),
    };
    args.finish()?;
    Ok(Some(schedule))
}

/// A whole-number argument a schedule needs.
fn whole(v: Option<f64>, name: &str) -> Result<u64, String> {
    v.map(|v| v as u64).ok_or_else(|| format!("no {name}"))
}

/// The custom `scale_fn`s the generated files name by formula.
fn scale_fn(formula: &str) -> Result<fn(f64) -> f64, String> {
    fn inverse(x: f64) -> f64 {
        1.0 / (1.0 + 0.1 * x)
    }
    fn geometric(x: f64) -> f64 {
        0.9f64.powf(x)
    }
    match formula {
        "1 / (1 + 0.1 x)" => Ok(inverse),
        "0.9 ** x" => Ok(geometric),
        other => Err(format!("scale_fn {other} is not replayed")),
    }
}

/// Refuses a scheduler resumed from an epoch (PyTorch's `last_epoch` other than -1).
fn resumed(args: &mut Hyper) -> Result<(), String> {
    match args.take("last_epoch")? {
        Some(-1.0) | None => Ok(()),
        Some(e) => Err(format!("scheduler resumed from epoch {e}")),
    }
}

/// PyTorch's `cycle_momentum`, `base_momentum` and `max_momentum`, with its defaults.
fn cycle_momentum(
    args: &mut Hyper,
    defaults: CycleMomentum,
) -> Result<Option<CycleMomentum>, String> {
    let base_momentum = args
        .take("base_momentum")?
        .unwrap_or(defaults.base_momentum);
    let max_momentum = args.take("max_momentum")?.unwrap_or(defaults.max_momentum);
    Ok(args
        .flag("cycle_momentum")?
        .unwrap_or(true)
        .then_some(CycleMomentum {
            base_momentum,
            max_momentum,
        }))
}

/// The largest relative error of `got` against a file's `{"key": array}` map, every key of which
/// `got` must hold with the same shape.
pub fn compare<F: Scalar>(got: &Params<F>, want: &Value) -> Result<f64, String> {
    let want: HashMap<String, ArrayD<F>> = params(want)?;
    let mut worst = 0.0f64;
    for (key, want) in &want {
        let got = got.get(key).ok_or_else(|| format!("no parameter {key}"))?;
        if got.shape() != want.shape() {
            return Err(format!(
                "{key}: shape {:?}, expected {:?}",
                got.shape(),
                want.shape()
            ));
        }
        for (a, b) in got.iter().zip(want.iter()) {
            let (a, b) = (
                a.to_f64().unwrap_or(f64::NAN),
                b.to_f64().unwrap_or(f64::NAN),
            );
            worst = worst.max(relative_error(a, b));
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

/// Runs `$body` once for each optimizer of the crate, with `$o` bound to it (element type `$F`):
/// every type, and the option combinations that change its state.
#[macro_export]
macro_rules! with_each_optimizer {
    ($F:ty, |$o:ident| $body:expr) => {{
        use ndoptim::*;
        {
            let $o = Sgd::<$F>::default();
            $body;
        }
        {
            let $o = Sgd::<$F>::default()
                .momentum(0.9)
                .nesterov(true)
                .weight_decay(0.01);
            $body;
        }
        {
            let $o = Sgd::<$F>::default()
                .momentum(0.9)
                .ema_momentum(true)
                .torch_init(true)
                .weight_decay(0.01)
                .fully_decoupled_weight_decay(Some(0.1));
            $body;
        }
        {
            let $o = Sgd::<$F>::optax().momentum(0.9);
            $body;
        }
        {
            let $o = Momentum::<$F>::default();
            $body;
        }
        {
            let $o = Nesterov::<$F>::default();
            $body;
        }
        {
            let $o = AdaGrad::<$F>::default();
            $body;
        }
        {
            let $o = AdaGrad::<$F>::pytorch()
                .lr_decay(0.01)
                .initial_accumulator_value(0.1);
            $body;
        }
        {
            let $o = RmsProp::<$F>::default();
            $body;
        }
        {
            let $o = RmsProp::<$F>::pytorch()
                .momentum(0.9)
                .centered(true)
                .maximize(true);
            $body;
        }
        {
            let $o = Adam::<$F>::default();
            $body;
        }
        {
            let $o = Adam::<$F>::pytorch().amsgrad(true).weight_decay(0.01);
            $body;
        }
        {
            let $o = AdamW::<$F>::default();
            $body;
        }
        {
            let $o = AdamW::<$F>::optimi().fully_decoupled_weight_decay(Some(0.01));
            $body;
        }
        {
            let $o = NAdam::<$F>::default();
            $body;
        }
        {
            let $o = RAdam::<$F>::optimi().weight_decay(0.01);
            $body;
        }
        {
            let $o = RAdam::<$F>::default()
                .decoupled_weight_decay(true)
                .weight_decay(0.01);
            $body;
        }
        {
            let $o = Adamax::<$F>::default();
            $body;
        }
        {
            let $o = Adadelta::<$F>::default();
            $body;
        }
        {
            let $o = Rprop::<$F>::default();
            $body;
        }
        {
            let $o = Asgd::<$F>::default();
            $body;
        }
        {
            let $o = Adafactor::<$F>::default().weight_decay(0.01);
            $body;
        }
        {
            let $o = Lion::<$F>::default().weight_decay(0.1);
            $body;
        }
        {
            let $o = Lion::<$F>::optimi().weight_decay(0.1);
            $body;
        }
        {
            let $o = StableAdamW::<$F>::default();
            $body;
        }
        {
            let $o = Adan::<$F>::default().weight_decay(0.02);
            $body;
        }
        {
            let $o = Adan::<$F>::optimi().fully_decoupled_weight_decay(Some(0.1));
            $body;
        }
        {
            let $o = Adan::<$F>::optimi().adam_wd(true);
            $body;
        }
        {
            let $o = Ranger::<$F>::default().k(2).weight_decay(0.01);
            $body;
        }
        {
            let $o = AdaBelief::<$F>::default().nesterov(true);
            $body;
        }
        {
            let $o = Adopt::<$F>::default();
            $body;
        }
        {
            let $o = AdEMAMix::<$F>::default().weight_decay(0.01);
            $body;
        }
        {
            let $o = Lamb::<$F>::default().weight_decay(0.01);
            $body;
        }
        {
            let $o = Lars::<$F>::default().nesterov(true).weight_decay(0.01);
            $body;
        }
        {
            // A chain of most built-in transforms, through every generic test.
            use ndoptim::transform as tx;
            let $o = tx::optimizer::<_, $F>(ndoptim::chain!(
                tx::ScaleByNadam(tx::ScaleByAdam::default().eps_root(1e-12)),
                tx::AddDecayedWeights::new(0.01),
                tx::Clip::new(0.5),
                tx::ScaleByLearningRate,
                tx::Trace::new(0.5),
            ));
            $body;
        }
        {
            let $o = Muon::<$F>::default();
            $body;
        }
        {
            let $o = Muon::<$F>::optax().weight_decay(0.01).adaptive(true);
            $body;
        }
        {
            let $o = ScheduleFreeAdamW::<$F>::default()
                .warmup_steps(3)
                .weight_decay(0.01);
            $body;
        }
        {
            let $o = ScheduleFreeSgd::<$F>::default().lr(0.1);
            $body;
        }
    }};
}

/// Every optimizer of [`with_each_optimizer`], as trait objects.
pub fn all_optimizers<F: Scalar>() -> Vec<Box<dyn Optimizer<F>>> {
    let mut v: Vec<Box<dyn Optimizer<F>>> = Vec::new();
    with_each_optimizer!(F, |o| v.push(Box::new(o)));
    v
}
