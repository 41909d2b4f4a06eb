//! Schedules: PyTorch's classes against `torch.optim.lr_scheduler` (`torch_lr_schedulers.json`,
//! `torch_gen_lr_schedulers.json`), optax's functions against `optax_schedules.json`, and
//! hyperparameters on schedules through `Inject` (`optax_inject_*` replays in `conformance`).

mod common;

use std::path::Path;

use ndarray::ArrayD;
use ndoptim::schedule::{
    self, CycleMomentum, Inject, OneCycle, Plateau, Schedule, Scheduler, TorchSchedule,
};
use ndoptim::transform::{self as tx, AddDecayedWeights, ScaleByAdam, ScaleByLearningRate};
use ndoptim::{AdaGrad, Adam, AdamW, Error, Hyperparameter, Optimizer, Params, Sgd, chain};
use serde_json::Value;

fn schedule(name: &str, a: &Value) -> TorchSchedule {
    let f = |k: &str| a[k].as_f64().unwrap_or_else(|| panic!("{name}: no {k}"));
    let u = |k: &str| a[k].as_u64().unwrap_or_else(|| panic!("{name}: no {k}"));
    match name {
        "StepLR" => TorchSchedule::StepLR {
            step_size: u("step_size"),
            gamma: f("gamma"),
        },
        "MultiStepLR" => TorchSchedule::MultiStepLR {
            milestones: a["milestones"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m.as_u64().unwrap())
                .collect(),
            gamma: f("gamma"),
        },
        "ExponentialLR" => TorchSchedule::ExponentialLR { gamma: f("gamma") },
        "CosineAnnealingLR" => TorchSchedule::CosineAnnealingLR {
            t_max: u("T_max"),
            eta_min: f("eta_min"),
        },
        "CosineAnnealingWarmRestarts" => TorchSchedule::CosineAnnealingWarmRestarts {
            t_0: u("T_0"),
            t_mult: u("T_mult"),
            eta_min: f("eta_min"),
        },
        "LinearLR" => TorchSchedule::LinearLR {
            start_factor: f("start_factor"),
            end_factor: f("end_factor"),
            total_iters: u("total_iters"),
        },
        "ConstantLR" => TorchSchedule::ConstantLR {
            factor: f("factor"),
            total_iters: u("total_iters"),
        },
        "PolynomialLR" => TorchSchedule::PolynomialLR {
            total_iters: u("total_iters"),
            power: f("power"),
        },
        // PyTorch's defaults, momentum cycling included (SGD's momentum moves, unread here).
        "OneCycleLR" => TorchSchedule::one_cycle(f("max_lr"), u("total_steps")),
        "CyclicLR" => TorchSchedule::cyclic(f("base_lr"), f("max_lr"), u("step_size_up")),
        other => panic!("no schedule {other}"),
    }
}

#[test]
fn every_schedule_gives_pytorchs_learning_rates() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/torch_lr_schedulers.json");
    let cases = common::read_json(&path).unwrap();
    let cases = cases.as_array().unwrap();
    assert_eq!(cases.len(), 10);
    for case in cases {
        let name = case["scheduler"].as_str().unwrap();
        let want: Vec<f64> = case["lr_per_step"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        let mut sgd = Sgd::<f64>::default().lr(case["base_lr"].as_f64().unwrap());
        let mut s = Scheduler::new(schedule(name, &case["args"]), &mut sgd).unwrap();
        let mut worst = 0.0f64;
        for (i, &w) in want.iter().enumerate() {
            if i > 0 {
                s.step(&mut sgd).unwrap();
            }
            let got = sgd.learning_rate();
            assert_eq!(got, s.last_lr());
            worst = worst.max(common::relative_error(got, w));
            assert!(
                common::relative_error(got, w) <= 1e-12,
                "{name} step {i}: {got} vs {w}"
            );
        }
        println!("{name:<28} {worst:.2e}");
    }
}

#[test]
fn warmup_then_cosine_switches_at_the_milestone() {
    let mut sgd = Sgd::<f32>::default().lr(0.1);
    let warmup = TorchSchedule::LinearLR {
        start_factor: 0.1,
        end_factor: 1.0,
        total_iters: 5,
    };
    let cosine = TorchSchedule::CosineAnnealingLR {
        t_max: 10,
        eta_min: 0.0,
    };
    let mut s = Scheduler::new(
        TorchSchedule::Sequential {
            schedules: vec![warmup, cosine],
            milestones: vec![5],
        },
        &mut sgd,
    )
    .unwrap();
    let mut lrs = vec![sgd.learning_rate()];
    for _ in 0..15 {
        lrs.push(s.step(&mut sgd).unwrap());
    }
    assert!((lrs[0] - 0.01).abs() < 1e-12);
    assert!(lrs[..5].windows(2).all(|w| w[1] > w[0]), "{lrs:?}");
    assert!((lrs[5] - 0.1).abs() < 1e-12, "{lrs:?}");
    assert!(lrs[5..].windows(2).all(|w| w[1] < w[0]), "{lrs:?}");
    assert!(lrs[15].abs() < 1e-12, "{lrs:?}");
}

#[test]
fn plateau_reduces_after_patience_and_waits_out_cooldown() {
    let mut sgd = Sgd::<f32>::default().lr(1.0);
    let p = Plateau::default().patience(2).cooldown(1).factor(0.5);
    let mut s = Scheduler::new(TorchSchedule::ReduceLROnPlateau(p), &mut sgd).unwrap();
    let metrics = [5.0, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0, 3.0, 3.0, 3.0, 3.0];
    let lrs: Vec<f64> = metrics
        .iter()
        .map(|&m| s.step_metric(&mut sgd, m).unwrap())
        .collect();
    // Two improvements, then a third flat epoch exceeds patience 2: halved. The cooldown epoch
    // does not count, two more flat epochs stay within patience, an improvement resets, and
    // three flat epochs halve again.
    assert_eq!(
        lrs,
        [1.0, 1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.25]
    );
    assert!(s.step(&mut sgd).is_err(), "plateau steps with a metric");
}

#[test]
fn bad_arguments_are_rejected_and_the_optimizer_is_unchanged() {
    let mut sgd = Sgd::<f32>::default().lr(0.1);
    for bad in [
        TorchSchedule::StepLR {
            step_size: 0,
            gamma: 0.1,
        },
        TorchSchedule::LinearLR {
            start_factor: 0.0,
            end_factor: 1.0,
            total_iters: 5,
        },
        TorchSchedule::ConstantLR {
            factor: 1.5,
            total_iters: 5,
        },
        TorchSchedule::Sequential {
            schedules: vec![TorchSchedule::ExponentialLR { gamma: 0.9 }],
            milestones: vec![3],
        },
        TorchSchedule::ReduceLROnPlateau(Plateau::default().factor(1.0)),
    ] {
        assert!(Scheduler::new(bad.clone(), &mut sgd).is_err(), "{bad:?}");
        assert_eq!(sgd.learning_rate(), 0.1);
    }
}

/// Every mode of momentum cycling (three-phase and linear `OneCycleLR`, `CyclicLR`'s triangular2
/// and exp_range, other momentum ranges) against PyTorch, on SGD's momentum and Adam's beta1, the
/// scheduler built from PyTorch's arguments as the conformance replayer reads them.
#[test]
fn momentum_cycles_as_in_pytorch_in_every_mode() {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/torch_cycle_momentum_modes.json");
    let file = common::read_json(&path).unwrap();
    let cases = file["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 5);
    for case in cases {
        let class = format!(
            "torch.optim.lr_scheduler.{}",
            case["scheduler"].as_str().unwrap()
        );
        let described = serde_json::json!({ "class": class, "args": case["args"] });
        let schedule = common::scheduler(&described).unwrap().unwrap();
        let mut opt: Box<dyn Optimizer<f64>> = match case["optimizer"].as_str().unwrap() {
            "SGD" => Box::new(Sgd::default().momentum(0.9)),
            _ => Box::new(Adam::default()),
        };
        let mut s = Scheduler::new(schedule.clone(), &mut opt).unwrap();
        let lrs = case["lr_per_step"].as_array().unwrap();
        let momenta = case["momentum_per_step"].as_array().unwrap();
        for (i, (lr, m)) in lrs.iter().zip(momenta).enumerate() {
            if i > 0 {
                s.step(&mut opt).unwrap();
            }
            let (lr, m) = (lr.as_f64().unwrap(), m.as_f64().unwrap());
            let got = (
                opt.learning_rate(),
                opt.hyperparameter(Hyperparameter::Momentum).unwrap(),
            );
            assert!(
                common::relative_error(got.0, lr) <= 1e-12
                    && common::relative_error(got.1, m) <= 1e-12,
                "{schedule:?} step {i}: (lr, momentum) {got:?}, PyTorch ({lr}, {m})"
            );
        }
    }
}

#[test]
fn momentum_cycling_refuses_optimizers_without_one_and_changes_nothing() {
    let mut adagrad: Box<dyn Optimizer<f32>> = Box::new(AdaGrad::default().lr(0.1));
    for schedule in [
        TorchSchedule::one_cycle(1.0, 10),
        TorchSchedule::cyclic(0.01, 1.0, 4),
    ] {
        let refused = Scheduler::new(schedule, &mut adagrad);
        assert_eq!(
            refused.unwrap_err(),
            Error::NoHyperparameter {
                optimizer: "AdaGrad",
                hyperparameter: Hyperparameter::Momentum,
            }
        );
        assert_eq!(adagrad.learning_rate(), 0.1);
    }
    // Without cycling, the same schedule drives the learning rate alone.
    let lr_only = OneCycle::new(1.0, 10).momentum(None);
    Scheduler::new(lr_only.into(), &mut adagrad).unwrap();
    assert!((adagrad.learning_rate() - 0.04).abs() < 1e-15);
    assert_eq!(adagrad.hyperparameter(Hyperparameter::Momentum), None);
}

#[test]
fn a_momentum_the_optimizer_refuses_leaves_rate_and_momentum_as_they_were() {
    let mut adam = Adam::<f64>::default().lr(0.01);
    let bad = OneCycle::new(0.1, 10).momentum(Some(CycleMomentum {
        base_momentum: 0.85,
        max_momentum: 1.5,
    }));
    let err = Scheduler::new(bad.into(), &mut adam).unwrap_err();
    assert!(matches!(err, Error::InvalidHyperparameter { .. }), "{err}");
    assert_eq!(
        (
            adam.learning_rate(),
            adam.hyperparameter(Hyperparameter::Momentum)
        ),
        (0.01, Some(0.9))
    );
}

#[test]
fn sgd_refuses_a_momentum_that_would_change_its_state_once_it_has_some() {
    let mut params = Params::from([("w".to_string(), ArrayD::from_elem(vec![3], 1.0f64))]);
    let grads = Params::from([("w".to_string(), ArrayD::from_elem(vec![3], 0.5f64))]);
    // Before any state, a schedule may give plain SGD a momentum (as PyTorch's does).
    let mut sgd = Sgd::<f64>::default();
    Scheduler::new(TorchSchedule::cyclic(0.01, 0.1, 2), &mut sgd).unwrap();
    assert_eq!(sgd.hyperparameter(Hyperparameter::Momentum), Some(0.9));
    sgd.update(&mut params, &grads).unwrap();
    assert!(sgd.slot("w", "momentum_buffer").is_some());
    // Once a key has state, a momentum of 0 would drop its buffer: refused, nothing changed.
    let err = sgd
        .set_hyperparameter(Hyperparameter::Momentum, 0.0)
        .unwrap_err();
    assert!(matches!(err, Error::IncompatibleOptions { .. }), "{err}");
    assert_eq!(sgd.hyperparameter(Hyperparameter::Momentum), Some(0.9));
    sgd.set_hyperparameter(Hyperparameter::Momentum, 0.5)
        .unwrap();
    let mut plain = Sgd::<f64>::default();
    plain.update(&mut params, &grads).unwrap();
    assert!(
        plain
            .set_hyperparameter(Hyperparameter::Momentum, 0.9)
            .is_err()
            && plain.hyperparameter(Hyperparameter::Momentum) == Some(0.0)
    );
    assert!(
        sgd.set_hyperparameter(Hyperparameter::Momentum, f64::NAN)
            .is_err()
            && sgd.hyperparameter(Hyperparameter::Momentum) == Some(0.5)
    );
}

#[test]
fn one_cycle_refuses_a_step_past_its_total() {
    let mut sgd = Sgd::<f32>::default();
    let mut s = Scheduler::new(TorchSchedule::one_cycle(0.1, 3), &mut sgd).unwrap();
    for _ in 0..3 {
        s.step(&mut sgd).unwrap();
    }
    let before = (
        sgd.learning_rate(),
        sgd.hyperparameter(Hyperparameter::Momentum),
    );
    assert!(matches!(
        s.step(&mut sgd),
        Err(Error::IncompatibleOptions { .. })
    ));
    assert_eq!(
        (
            sgd.learning_rate(),
            sgd.hyperparameter(Hyperparameter::Momentum)
        ),
        before
    );
}

#[test]
fn wrappers_pass_the_momentum_through() {
    use ndoptim::accumulate::MultiSteps;
    use ndoptim::lookahead::Lookahead;
    let boxed: Box<dyn Optimizer<f32>> = Box::new(Adam::default());
    let mut wrapped = Lookahead::new(MultiSteps::new(boxed, 2), 5, 0.5);
    let mut s = Scheduler::new(TorchSchedule::cyclic(0.01, 0.1, 2), &mut wrapped).unwrap();
    assert_eq!(wrapped.hyperparameter(Hyperparameter::Momentum), Some(0.9));
    s.step(&mut wrapped).unwrap();
    assert!((wrapped.hyperparameter(Hyperparameter::Momentum).unwrap() - 0.85).abs() < 1e-15);
    assert_eq!(
        wrapped
            .inner()
            .inner()
            .hyperparameter(Hyperparameter::Momentum),
        wrapped.hyperparameter(Hyperparameter::Momentum)
    );
}

/// A cycled momentum lives in the optimizer's hyperparameters, so a checkpoint holding the
/// optimizer and its scheduler resumes both bit for bit.
#[test]
fn a_cycled_momentum_resumes_from_a_checkpoint() {
    let grads = |i: usize| {
        Params::from([(
            "w".to_string(),
            ArrayD::from_shape_fn(vec![5], |d| ((d[0] + i) as f64).sin()),
        )])
    };
    let mut params = Params::from([("w".to_string(), ArrayD::from_elem(vec![5], 1.0f64))]);
    let mut sgd = Sgd::<f64>::default().momentum(0.9).nesterov(true);
    let mut s = Scheduler::new(TorchSchedule::one_cycle(0.1, 20), &mut sgd).unwrap();
    for i in 0..8 {
        sgd.update(&mut params, &grads(i)).unwrap();
        s.step(&mut sgd).unwrap();
    }
    let mut checkpoint = sgd.checkpoint();
    checkpoint.scheduler = Some(s.clone());
    let (mut resumed, mut resumed_params) = (Sgd::<f64>::default(), params.clone());
    let mut resumed_s = checkpoint.scheduler.take().unwrap();
    resumed.restore(checkpoint).unwrap();
    assert_eq!(
        resumed.hyperparameter(Hyperparameter::Momentum),
        sgd.hyperparameter(Hyperparameter::Momentum)
    );
    for i in 8..20 {
        sgd.update(&mut params, &grads(i)).unwrap();
        s.step(&mut sgd).unwrap();
        resumed.update(&mut resumed_params, &grads(i)).unwrap();
        resumed_s.step(&mut resumed).unwrap();
        assert_eq!(
            resumed.hyperparameter(Hyperparameter::Momentum),
            sgd.hyperparameter(Hyperparameter::Momentum)
        );
        assert_eq!(resumed_params, params);
    }
}

/// Every option of every schedule the crate offers against PyTorch, over long runs
/// (`torch_gen_lr_schedulers.json`, written by `tests/data/generate/torch_schedulers.py`): the
/// rate (and a cycled momentum) after construction and after every step, within 1e-12; and the
/// degenerate arguments PyTorch accepts or fails on later, refused here when the schedule is
/// built, naming the argument, with the optimizer unchanged.
#[test]
fn generated_schedules_follow_pytorch_or_are_refused() {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/torch_gen_lr_schedulers.json");
    let file = common::read_json(&path).unwrap();
    let (mut replayed, mut refused) = (0, 0);
    for case in file["cases"].as_array().unwrap() {
        let class = case["class"].as_str().unwrap();
        let described = serde_json::json!({
            "class": format!("torch.optim.lr_scheduler.{class}"),
            "args": case["args"],
        });
        let schedule = common::scheduler(&described).unwrap().unwrap();
        if let Some(argument) = case["refused"].as_str() {
            let mut sgd = Sgd::<f64>::default().lr(0.1).momentum(0.9);
            match Scheduler::new(schedule.clone(), &mut sgd) {
                Err(Error::InvalidHyperparameter { name, .. }) => {
                    assert_eq!(name, argument, "{schedule:?}")
                }
                other => panic!("{schedule:?} ({}): {other:?}", case["torch"]),
            }
            assert_eq!(
                (
                    sgd.learning_rate(),
                    sgd.hyperparameter(Hyperparameter::Momentum)
                ),
                (0.1, Some(0.9))
            );
            refused += 1;
            continue;
        }
        let lr = case["lr"].as_f64().unwrap();
        let mut opt: Box<dyn Optimizer<f64>> = match case["optimizer"].as_str().unwrap() {
            "SGD" => Box::new(Sgd::default().lr(lr).momentum(0.9)),
            _ => Box::new(Adam::pytorch().lr(lr)),
        };
        let mut s = Scheduler::new(schedule.clone(), &mut opt).unwrap();
        let number = |v: &Value| v.as_f64().unwrap();
        let lrs: Vec<f64> = case["lr_per_step"]
            .as_array()
            .unwrap()
            .iter()
            .map(number)
            .collect();
        let momenta = case["momentum_per_step"].as_array();
        let metrics = case["metrics"].as_array();
        for (i, &want) in lrs.iter().enumerate() {
            if i > 0 {
                match metrics {
                    Some(m) => s.step_metric(&mut opt, number(&m[i - 1])),
                    None => s.step(&mut opt),
                }
                .unwrap_or_else(|e| panic!("{schedule:?} step {i}: {e}"));
            }
            // The scheduler step after OneCycleLR's last update: PyTorch's rate there may be
            // slightly negative, and no update uses it; ndoptim sets 0 instead.
            let want = if class == "OneCycleLR" && i == lrs.len() - 1 {
                want.max(0.0)
            } else {
                want
            };
            let got = opt.learning_rate();
            assert!(
                common::relative_error(got, want) <= 1e-12,
                "{schedule:?} step {i}: rate {got}, PyTorch {want}"
            );
            if let Some(m) = momenta {
                let (got, want) = (
                    opt.hyperparameter(Hyperparameter::Momentum).unwrap(),
                    number(&m[i]),
                );
                assert!(
                    common::relative_error(got, want) <= 1e-12,
                    "{schedule:?} step {i}: momentum {got}, PyTorch {want}"
                );
            }
        }
        replayed += 1;
    }
    println!("{replayed} schedules replayed, {refused} refused");
    assert_eq!((replayed, refused), (35, 19));
}

/// optax's schedules and transformers' warm-up–stable–decay against the values their references
/// give (`optax_schedules.json`, shared, and `gen_schedules.json`, written by
/// `tests/data/generate/schedules.py` for the arguments the shared file leaves out), every
/// argument used, within 1e-12 of each value (the closed forms match to 1.4e-17).
#[test]
fn optax_schedules_give_optax_values() {
    for (file, count) in [("optax_schedules.json", 19), ("gen_schedules.json", 7)] {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data")
            .join(file);
        let file = common::read_json(&path).unwrap();
        let entries = file["schedules"].as_array().unwrap();
        assert_eq!(entries.len(), count);
        for entry in entries {
            let s = common::optax_schedules::schedule(entry).unwrap();
            let values = entry["values"].as_array().unwrap();
            assert_eq!(values.len(), file["steps"].as_u64().unwrap() as usize);
            let mut worst = 0.0f64;
            for (step, want) in values.iter().enumerate() {
                let (got, want) = (s.value(step as u64), want.as_f64().unwrap());
                let err = (got - want).abs() / want.abs().max(1e-300);
                worst = worst.max(if got == want { 0.0 } else { err });
                assert!(
                    got == want || err <= 1e-12,
                    "{} step {step}: {got} vs {want}",
                    entry["function"]
                );
            }
            println!("{:<40} {worst:.2e}", entry["function"].as_str().unwrap());
        }
    }
}

/// A hyperparameter held constant by a schedule gives the trajectory of the optimizer built with
/// it, bit for bit; a schedule moves it for every optimizer that has it, the chains included.
#[test]
fn injected_hyperparameters_are_the_optimizers_own() {
    let shapes: &[(&str, &[usize])] = &[("w", &[3, 4]), ("b", &[4])];
    let (mut built, _) = common::small_model::<f64>(shapes, 0);
    let mut injected = built.clone();
    let mut plain = AdamW::<f64>::default()
        .lr(0.01)
        .weight_decay(0.1)
        .betas(0.8, 0.99);
    let mut inject = Inject::new(AdamW::<f64>::default())
        .schedule(Hyperparameter::LearningRate, schedule::Constant(0.01))
        .unwrap()
        .schedule(Hyperparameter::WeightDecay, schedule::Constant(0.1))
        .unwrap()
        .schedule(Hyperparameter::Momentum, schedule::Constant(0.8))
        .unwrap()
        .schedule(Hyperparameter::Beta2, schedule::Constant(0.99))
        .unwrap();
    for step in 0..5 {
        let (_, g) = common::small_model::<f64>(shapes, step);
        plain.update(&mut built, &g).unwrap();
        inject.update(&mut injected, &g).unwrap();
        assert_eq!(built, injected, "step {step}");
    }
    assert_eq!(inject.count(), 5);
    // A chain's hyperparameters are its pieces': b1 is ScaleByAdam's, the decay AddDecayedWeights'.
    let mut chained = tx::optimizer::<_, f64>(chain!(
        ScaleByAdam::default(),
        AddDecayedWeights::new(0.0),
        ScaleByLearningRate
    ));
    for (h, value) in [
        (Hyperparameter::Momentum, 0.7),
        (Hyperparameter::Beta2, 0.9),
        (Hyperparameter::WeightDecay, 0.05),
        (Hyperparameter::LearningRate, 0.2),
    ] {
        chained.set_hyperparameter(h, value).unwrap();
        assert_eq!(chained.hyperparameter(h), Some(value), "{h}");
    }
    assert_eq!(
        chained.set_hyperparameter(Hyperparameter::Momentum, 1.5),
        Err(Error::InvalidHyperparameter {
            name: "beta parameter at index 0",
            value: 1.5,
            expected: "a number in [0, 1)"
        })
    );
    assert_eq!(chained.hyperparameter(Hyperparameter::Momentum), Some(0.7));
}

/// What a schedule cannot do is refused, naming the hyperparameter or the argument, and an
/// update that fails leaves the hyperparameters and the count as they were.
#[test]
fn injection_refuses_and_rolls_back() {
    let refused = Inject::new(AdaGrad::<f64>::default())
        .schedule(Hyperparameter::Momentum, schedule::Constant(0.9))
        .unwrap_err();
    assert_eq!(
        refused,
        Error::NoHyperparameter {
            optimizer: "AdaGrad",
            hyperparameter: Hyperparameter::Momentum
        }
    );
    let negative = Inject::new(Sgd::<f64>::default()).schedule(
        Hyperparameter::LearningRate,
        schedule::linear(-1.0, 1.0, 10).unwrap(),
    );
    assert!(matches!(negative, Err(Error::InvalidHyperparameter { .. })));
    assert!(matches!(
        schedule::CosineDecay::new(0.1, 0),
        Err(Error::InvalidHyperparameter {
            name: "decay_steps",
            ..
        })
    ));
    assert!(matches!(
        schedule::Join::new(vec![schedule::Constant(1.0)], vec![3]),
        Err(Error::IncompatibleOptions { .. })
    ));

    // The rate goes 0.1, 0.2, ...; the momentum 0.5, 0.6, ...: the third update's gradient has
    // the wrong shape.
    let mut sgd = Inject::new(Sgd::<f64>::default().momentum(0.5))
        .schedule(
            Hyperparameter::LearningRate,
            schedule::linear(0.1, 1.1, 10).unwrap(),
        )
        .unwrap()
        .schedule(
            Hyperparameter::Momentum,
            schedule::from_fn(|t| 0.5 + 0.1 * t as f64),
        )
        .unwrap();
    let (mut p, g) = common::small_model::<f64>(&[("w", &[2, 2])], 0);
    sgd.update(&mut p, &g).unwrap();
    sgd.update(&mut p, &g).unwrap();
    let (lr, momentum) = (
        sgd.learning_rate(),
        sgd.hyperparameter(Hyperparameter::Momentum),
    );
    let before = p.clone();
    let wrong = Params::from([("w".to_string(), ArrayD::zeros(vec![3]))]);
    assert!(matches!(
        sgd.update(&mut p, &wrong),
        Err(Error::ShapeMismatch { .. })
    ));
    assert_eq!(p, before);
    assert_eq!(sgd.count(), 2);
    assert_eq!(sgd.learning_rate(), lr);
    assert_eq!(sgd.hyperparameter(Hyperparameter::Momentum), momentum);
    // A value the optimizer refuses, here a NaN from a closure at the second update, stops the
    // update before anything moves.
    let mut nan = Inject::new(Sgd::<f64>::default())
        .schedule(
            Hyperparameter::LearningRate,
            schedule::from_fn(|t| if t < 1 { 0.1 } else { f64::NAN }),
        )
        .unwrap();
    nan.update(&mut p, &g).unwrap();
    let before = p.clone();
    assert!(nan.update(&mut p, &g).is_err());
    assert_eq!((p, nan.count(), nan.learning_rate()), (before, 1, 0.1));
}

/// A schedule is a function of the step: optax's combinators agree with the pieces they join.
#[test]
fn joins_and_warmups_hand_each_piece_its_own_steps() {
    let warm = schedule::linear(0.0, 1.0, 4).unwrap();
    let decay = schedule::CosineDecay::new(1.0, 10).unwrap();
    let joined = schedule::Join::new(
        vec![Box::new(warm) as Box<dyn Schedule>, Box::new(decay)],
        vec![4],
    )
    .unwrap();
    let warmup = schedule::Warmup::new(0.0, 1.0, 4, decay).unwrap();
    for t in 0..20 {
        let want = if t < 4 {
            warm.value(t)
        } else {
            decay.value(t - 4)
        };
        assert_eq!((joined.value(t), warmup.value(t)), (want, want), "step {t}");
    }
    assert_eq!(warmup.value(2), 0.5);
    assert_eq!(warmup.value(14), 0.0);
}

/// PyTorch's classes as functions of the step (`TorchSchedule::closed_form`) give PyTorch's rates
/// within 1e-12 on every replayable case of both reference files, and refuse the two classes that
/// are not functions of the step.
#[test]
fn pytorch_schedules_in_closed_form_follow_pytorch() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let mut cases = Vec::new();
    let simple = common::read_json(&dir.join("torch_lr_schedulers.json")).unwrap();
    for case in simple.as_array().unwrap() {
        let name = case["scheduler"].as_str().unwrap();
        cases.push((
            schedule(name, &case["args"]),
            case["base_lr"].as_f64().unwrap(),
            case["lr_per_step"].clone(),
        ));
    }
    let generated = common::read_json(&dir.join("torch_gen_lr_schedulers.json")).unwrap();
    for case in generated["cases"].as_array().unwrap() {
        let class = case["class"].as_str().unwrap();
        if case.get("refused").is_some() || case.get("metrics").is_some() {
            continue;
        }
        let described = serde_json::json!({
            "class": format!("torch.optim.lr_scheduler.{class}"),
            "args": case["args"],
        });
        let s = common::scheduler(&described).unwrap().unwrap();
        cases.push((s, case["lr"].as_f64().unwrap(), case["lr_per_step"].clone()));
    }
    let mut checked = 0;
    for (s, base, lrs) in cases {
        let closed = match s.clone().closed_form(base) {
            Ok(c) => c,
            Err(Error::IncompatibleOptions { .. }) => {
                assert!(format!("{s:?}").contains("SwaLR"), "{s:?} refused");
                continue;
            }
            Err(e) => panic!("{s:?}: {e}"),
        };
        for (step, want) in lrs.as_array().unwrap().iter().enumerate() {
            let (got, want) = (closed.value(step as u64), want.as_f64().unwrap());
            assert!(
                common::relative_error(got, want) <= 1e-12,
                "{s:?} step {step}: {got}, PyTorch {want}"
            );
        }
        checked += 1;
    }
    println!("{checked} schedules in closed form");
    assert!(checked >= 30, "{checked} schedules checked");
    let plateau = TorchSchedule::ReduceLROnPlateau(Plateau::default()).closed_form(0.1);
    assert!(matches!(plateau, Err(Error::IncompatibleOptions { .. })));
}
