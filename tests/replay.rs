//! The conformance replayer itself: it honours `lr_per_step`, catches a wrong trajectory and
//! refuses options the crate lacks.

mod common;

use serde_json::json;

fn sgd_file(lr_per_step: serde_json::Value, second: f64) -> serde_json::Value {
    json!({
        "optimizer": "SGD", "reference": "book common/optimizer.py", "dtype": "f64",
        "hyperparameters": {"lr": 1.0},
        "lr_per_step": lr_per_step,
        "initial": {"w": {"shape": [2], "data": [1.0, 2.0]}},
        "grads": [{"w": {"shape": [2], "data": [1.0, 1.0]}}, {"w": {"shape": [2], "data": [1.0, 1.0]}}],
        "expected": [{"w": {"shape": [2], "data": [0.5, 1.5]}}, {"w": {"shape": [2], "data": [0.25, second]}}]
    })
}

#[test]
fn lr_per_step_sets_the_rate_before_each_step() {
    let f = sgd_file(json!([0.5, 0.25]), 1.25);
    assert_eq!(common::replay::<f64>(&f), Ok(0.0));
    // Without the schedule the file's lr 1.0 would give 0.0 after step 1.
    let err = common::replay::<f64>(&sgd_file(json!(null), 1.25)).unwrap();
    assert!(err >= 0.5, "{err}");
}

#[test]
fn a_wrong_trajectory_is_measured() {
    let err = common::replay::<f64>(&sgd_file(json!([0.5, 0.25]), 1.25 + 1e-9)).unwrap();
    assert!(err > 1e-12 && err < 1e-8, "{err}");
}

#[test]
fn unknown_options_and_optimizers_are_reported() {
    let mut f = sgd_file(json!(null), 1.25);
    f["hyperparameters"]["nesterov"] = json!(true);
    let e = common::replay::<f64>(&f).unwrap_err();
    assert!(e.contains("lacks option") && e.contains("nesterov"), "{e}");
    f["optimizer"] = json!("Shampoo");
    let e = common::replay::<f64>(&f).unwrap_err();
    assert!(e.contains("lacks optimizer Shampoo"), "{e}");
}
