//! LAMB's and LARS's trust ratios per key: on by default, off for keys a `Group` excludes, where
//! the two reduce to Adam and to SGD with momentum.

use ndarray::{ArrayD, IxDyn};
use ndoptim::{Adam, Group, Lamb, Lars, Optimizer, Params, Sgd};

fn params(seed: f64) -> Params<f64> {
    let a = |s: &[usize], k: f64| {
        ArrayD::from_shape_fn(IxDyn(s), |ix| ((ix[0] as f64 + k) * 0.37 + seed).sin())
    };
    Params::from([
        ("w".to_string(), a(&[4, 3], 0.0)),
        ("bias".to_string(), a(&[3], 1.0)),
    ])
}

fn close(a: &ArrayD<f64>, b: &ArrayD<f64>, tol: f64) -> bool {
    a.iter()
        .zip(b)
        .all(|(x, y)| (x - y).abs() <= tol * y.abs().max(1.0))
}

#[test]
fn lamb_without_trust_ratio_is_adam_and_with_it_is_not() {
    let mut lamb = Lamb::<f64>::default()
        .lr(0.01)
        .group(Group::prefix("b").trust_ratio(false));
    let mut adam = Adam::<f64>::pytorch().lr(0.01).eps(1e-6);
    let (mut p, mut q) = (params(0.0), params(0.0));
    for step in 1..=5 {
        let g = params(step as f64);
        lamb.update(&mut p, &g).unwrap();
        adam.update(&mut q, &g).unwrap();
    }
    assert!(close(&p["bias"], &q["bias"], 1e-14));
    assert!(!close(&p["w"], &q["w"], 1e-6));
}

#[test]
fn lars_without_trust_ratio_is_sgd_with_momentum() {
    let mut lars = Lars::<f64>::default()
        .lr(0.1)
        .group(Group::exact("bias").trust_ratio(false));
    let mut sgd = Sgd::<f64>::default().lr(0.1).momentum(0.9);
    let (mut p, mut q) = (params(0.0), params(0.0));
    for step in 1..=5 {
        let g = params(step as f64);
        lars.update(&mut p, &g).unwrap();
        sgd.update(&mut q, &g).unwrap();
    }
    assert!(close(&p["bias"], &q["bias"], 1e-14));
    // With the ratio, c·‖p‖/‖g‖ = 0.001·O(1) shrinks the steps a thousandfold.
    let moved = |a: &ArrayD<f64>| (a - &params(0.0)["w"]).mapv(f64::abs).sum();
    assert!(moved(&p["w"]) < 0.01 * moved(&q["w"]));
}
