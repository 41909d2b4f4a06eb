//! Learning-rate schedules against `torch.optim.lr_scheduler` (`tests/data/torch_lr_schedulers.json`):
//! the learning rate after construction and after each step, within 1e-12.

mod common;

use std::path::Path;

use ndoptim::schedule::{CyclicMode, Plateau, Schedule, Scheduler};
use ndoptim::{Optimizer, Sgd};
use serde_json::Value;

fn schedule(name: &str, a: &Value) -> Schedule {
    let f = |k: &str| a[k].as_f64().unwrap_or_else(|| panic!("{name}: no {k}"));
    let u = |k: &str| a[k].as_u64().unwrap_or_else(|| panic!("{name}: no {k}"));
    match name {
        "StepLR" => Schedule::StepLR {
            step_size: u("step_size"),
            gamma: f("gamma"),
        },
        "MultiStepLR" => Schedule::MultiStepLR {
            milestones: a["milestones"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m.as_u64().unwrap())
                .collect(),
            gamma: f("gamma"),
        },
        "ExponentialLR" => Schedule::ExponentialLR { gamma: f("gamma") },
        "CosineAnnealingLR" => Schedule::CosineAnnealingLR {
            t_max: u("T_max"),
            eta_min: f("eta_min"),
        },
        "CosineAnnealingWarmRestarts" => Schedule::CosineAnnealingWarmRestarts {
            t_0: u("T_0"),
            t_mult: u("T_mult"),
            eta_min: f("eta_min"),
        },
        "LinearLR" => Schedule::LinearLR {
            start_factor: f("start_factor"),
            end_factor: f("end_factor"),
            total_iters: u("total_iters"),
        },
        "ConstantLR" => Schedule::ConstantLR {
            factor: f("factor"),
            total_iters: u("total_iters"),
        },
        "PolynomialLR" => Schedule::PolynomialLR {
            total_iters: u("total_iters"),
            power: f("power"),
        },
        "OneCycleLR" => Schedule::OneCycleLR {
            max_lr: f("max_lr"),
            total_steps: u("total_steps"),
            pct_start: 0.3,
            cos: true,
            div_factor: 25.0,
            final_div_factor: 1e4,
        },
        "CyclicLR" => Schedule::CyclicLR {
            base_lr: f("base_lr"),
            max_lr: f("max_lr"),
            step_size_up: u("step_size_up"),
            step_size_down: u("step_size_up"),
            mode: CyclicMode::Triangular,
            gamma: 1.0,
        },
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
    let warmup = Schedule::LinearLR {
        start_factor: 0.1,
        end_factor: 1.0,
        total_iters: 5,
    };
    let cosine = Schedule::CosineAnnealingLR {
        t_max: 10,
        eta_min: 0.0,
    };
    let mut s = Scheduler::new(
        Schedule::Sequential {
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
    let p = Plateau {
        patience: 2,
        cooldown: 1,
        factor: 0.5,
        ..Plateau::default()
    };
    let mut s = Scheduler::new(Schedule::ReduceLROnPlateau(p), &mut sgd).unwrap();
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
        Schedule::StepLR {
            step_size: 0,
            gamma: 0.1,
        },
        Schedule::LinearLR {
            start_factor: 0.0,
            end_factor: 1.0,
            total_iters: 5,
        },
        Schedule::ConstantLR {
            factor: 1.5,
            total_iters: 5,
        },
        Schedule::Sequential {
            schedules: vec![Schedule::ExponentialLR { gamma: 0.9 }],
            milestones: vec![3],
        },
        Schedule::ReduceLROnPlateau(Plateau {
            factor: 1.0,
            ..Plateau::default()
        }),
    ] {
        assert!(Scheduler::new(bad.clone(), &mut sgd).is_err(), "{bad:?}");
        assert_eq!(sgd.learning_rate(), 0.1);
    }
}
