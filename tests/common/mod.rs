//! What the tests share: reading the reference files of `tests/data/` (`files`), building the
//! optimizers they name (`build`, `optimi`), replaying them (`replay`), their schedules
//! (`torch_schedules`, `optax_schedules`), every optimizer for generic tests (`each_optimizer`),
//! and comparisons.
#![allow(dead_code)] // each test target uses its own subset

#[cfg(feature = "half")]
pub mod bf16;
#[macro_use]
mod build;
#[macro_use]
mod each_optimizer;
mod files;
mod kron;
pub mod optax_schedules;
pub mod optimi;
mod replay;
mod soap;
mod torch_schedules;

pub use build::*;
#[allow(unused_imports)] // not every test target runs over every optimizer
pub use each_optimizer::all_optimizers;
pub use files::*;
pub use kron::*;
pub use replay::*;
pub use soap::*;
pub use torch_schedules::*;

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::Path;
use std::rc::Rc;

use ndarray::{ArrayD, IxDyn};
use ndoptim::accumulate::MultiSteps;
use ndoptim::average::Average;
use ndoptim::lbfgs::{Lbfgs, LineSearch};
use ndoptim::lookahead::Lookahead;
use ndoptim::mechanic::Mechanic;
use ndoptim::sam::Sam;
use ndoptim::schedule::{
    self, CycleMomentum, Cyclic, CyclicMode, Inject, OneCycle, Plateau, ScaleMode, Scheduler,
    TorchSchedule,
};
use ndoptim::schedule_free_wrapper::ScheduleFreeWrapper;
use ndoptim::transform::{
    self, AddDecayedWeights, Cautious, Debias, Ema, Rescale, Scale, ScaleByAdam, ScaleByAdamax,
    ScaleByAmsgrad, ScaleByCocob, ScaleByFromage, ScaleByLearningRate, ScaleByLion, ScaleByMadgrad,
    ScaleByNadam, ScaleByNovograd, ScaleByOptimisticGradient, ScaleByRadam, ScaleBySign,
    ScaleByTrustRatio, ScaleByYogi, Transform,
};
use ndoptim::{
    AdEMAMix, AdaBelief, AdaGrad, Adadelta, Adafactor, Adam, Adamax, Adan, AdjustLr, Adopt, Asgd,
    DAdaptAdaGrad, DAdaptAdam, DAdaptLion, DAdaptSgd, Dog, DogInit, Dowg, Engine, Hyperparameter,
    Lamb, Lars, Momentum, Muon, MuonRule, NAdam, Nesterov, Optimizer, Params, PolyakSgd,
    PolyakVariant, Preconditioning, Prodigy, RAdam, RmsProp, Rprop, Scalar, ScheduleFreeAdamW,
    ScheduleFreeRAdam, ScheduleFreeSgd, Sgd, Sm3, Soap, chain,
};
use serde_json::{Map, Value};

/// A small model and the gradients of step `step`: parameters of the given shapes with values
/// in [-0.4, 0.6), gradients half their scale, both varying with the key, the element and the step.
/// A wrapper's update refuses an unknown key and a gradient of the wrong shape, and `snapshot`
/// (its parameters and state) is the same after both. `grads` has a key `b1` of shape `[4]`.
#[allow(dead_code)]
pub fn refuses_bad_keys_and_shapes<O: Optimizer<f64>, S: PartialEq>(
    opt: &mut O,
    p: &mut Params<f64>,
    grads: &Params<f64>,
    snapshot: impl Fn(&Params<f64>, &O) -> S,
) {
    let before = snapshot(p, opt);
    let mut unknown = grads.clone();
    unknown.insert("nope".into(), ArrayD::zeros(IxDyn(&[1])));
    assert!(matches!(
        opt.update(p, &unknown),
        Err(ndoptim::Error::UnknownKey { key }) if key == "nope"
    ));
    let mut wrong = grads.clone();
    wrong.insert("b1".into(), ArrayD::zeros(IxDyn(&[5])));
    assert!(matches!(
        opt.update(p, &wrong),
        Err(ndoptim::Error::ShapeMismatch { .. })
    ));
    assert!(before == snapshot(p, opt), "an error changed something");
}

/// A wrapper made by `make`, resumed from `save` after 5 of 9 steps (its state and its base's)
/// through `load`, ends bit for bit where one run straight through does, and so does one around
/// a boxed base (`make_boxed`). Returns the straight one and its parameters.
#[allow(dead_code)]
pub fn resumes_bit_identically<O: Optimizer<f64>, B: Optimizer<f64>, C>(
    make: impl Fn() -> O,
    make_boxed: impl Fn() -> B,
    save: impl Fn(&O) -> C,
    load: impl Fn(&mut O, C),
    p0: &Params<f64>,
    grads: impl Fn(usize) -> Params<f64>,
) -> (O, O, Params<f64>) {
    let run = |opt: &mut dyn Optimizer<f64>, p: &mut Params<f64>, steps: std::ops::Range<usize>| {
        for step in steps {
            opt.update(p, &grads(step)).unwrap();
        }
    };
    let (mut straight, mut p) = (make(), p0.clone());
    run(&mut straight, &mut p, 0..9);
    let (mut first, mut q) = (make(), p0.clone());
    run(&mut first, &mut q, 0..5);
    let mut resumed = make();
    load(&mut resumed, save(&first));
    run(&mut resumed, &mut q, 5..9);
    assert_eq!(params_bits(&p), params_bits(&q));
    let (mut boxed, mut r) = (make_boxed(), p0.clone());
    run(&mut boxed, &mut r, 0..9);
    assert_eq!(params_bits(&p), params_bits(&r));
    (straight, resumed, p)
}

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

/// `|a - b| / max(1, |b|)`, the conformance tolerance's measure.
pub fn relative_error(a: f64, b: f64) -> f64 {
    if a.to_bits() == b.to_bits() {
        return 0.0;
    }
    let e = (a - b).abs() / b.abs().max(1.0);
    if e.is_nan() { f64::INFINITY } else { e }
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

/// The largest difference of `got` from a file's `want`, relative to the largest distance the
/// reference moved from `initial`: the f32 check of the learning-rate-free optimizers, whose
/// parameters move too little for [`compare`]'s metric to see a no-op (README).
pub fn compare_displacement<F: Scalar>(
    got: &Params<F>,
    want: &Value,
    initial: &Params<F>,
) -> Result<f64, String> {
    let want: HashMap<String, ArrayD<F>> = params(want)?;
    let (mut error, mut moved) = (0.0f64, 0.0f64);
    for (key, want) in &want {
        let (Some(got), Some(start)) = (got.get(key), initial.get(key)) else {
            return Err(format!("no parameter {key}"));
        };
        if got.shape() != want.shape() {
            return Err(format!(
                "{key}: shape {:?}, expected {:?}",
                got.shape(),
                want.shape()
            ));
        }
        for ((a, b), s) in got.iter().zip(want.iter()).zip(start.iter()) {
            let f = |x: &F| x.to_f64().unwrap_or(f64::NAN);
            error = error.max((f(a) - f(b)).abs());
            moved = moved.max((f(b) - f(s)).abs());
        }
    }
    let e = error / moved;
    Ok(if e.is_nan() {
        f64::INFINITY
    } else if error == 0.0 {
        0.0
    } else {
        e
    })
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
