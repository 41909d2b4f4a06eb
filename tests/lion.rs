//! Lion has no PyTorch reference: its steps are checked against the paper's formula by hand
//! (Chen et al., 2023, Program 1; optax's `lion`).

use approx::assert_abs_diff_eq;
use ndarray::{ArrayD, arr1};
use ndoptim::{Lion, Optimizer, Params};

fn one(v: &[f64]) -> Params<f64> {
    Params::from([("w".to_string(), arr1(v).into_dyn())])
}

fn close(a: &ArrayD<f64>, b: &[f64]) {
    for (&x, &y) in a.iter().zip(b) {
        assert_abs_diff_eq!(x, y, epsilon = 1e-12);
    }
}

#[test]
fn two_steps_by_hand() {
    let mut lion = Lion::<f64>::default()
        .lr(0.1)
        .betas(0.9, 0.99)
        .weight_decay(0.1);
    let mut p = one(&[1.0, -2.0, 0.5]);

    // c = 0.9·0 + 0.1·g = [0.03, -0.02, 0]: signs [1, -1, 0]; p·(1 − 0.1·0.1) − 0.1·sign(c).
    lion.update(&mut p, &one(&[0.3, -0.2, 0.0])).unwrap();
    close(&p["w"], &[0.89, -1.88, 0.495]);
    // m = 0.99·0 + 0.01·g
    close(
        &lion.slot("w", "exp_avg").unwrap().to_owned(),
        &[0.003, -0.002, 0.0],
    );

    // c = 0.9·m + 0.1·g = [0.0017, -0.0518, 0.02]: the momentum outvotes the first gradient.
    lion.update(&mut p, &one(&[-0.01, -0.5, 0.2])).unwrap();
    close(
        &p["w"],
        &[0.89 * 0.99 - 0.1, -1.88 * 0.99 + 0.1, 0.495 * 0.99 - 0.1],
    );
    close(
        &lion.slot("w", "exp_avg").unwrap().to_owned(),
        &[0.00287, -0.00698, 0.002],
    );
}

#[test]
fn every_step_has_the_size_of_the_learning_rate() {
    let mut lion = Lion::<f64>::default().lr(0.01);
    let mut p = one(&[0.0, 0.0, 0.0]);
    lion.update(&mut p, &one(&[1e-9, -1e6, 3.0])).unwrap();
    close(&p["w"], &[-0.01, 0.01, -0.01]);
}

#[test]
fn maximize_climbs() {
    let mut lion = Lion::<f64>::default().lr(0.5).maximize(true);
    let mut p = one(&[1.0]);
    lion.update(&mut p, &one(&[2.0])).unwrap();
    close(&p["w"], &[1.5]);
    assert_eq!(lion.name(), "Lion");
}
