//! Fits a small linear model `y = X·W + b` by least squares with each of the book's optimizers
//! and prints how far each gets in 200 steps.
//!
//! Run with `cargo run --release --example quickstart`.

use ndarray::{Array1, Array2, ArrayD, Ix1};
use ndoptim::{AdaGrad, Adam, Momentum, Nesterov, Optimizer, Params, RmsProp, Sgd};

/// A deterministic data set: 64 samples of 3 features, targets from known weights.
fn data() -> (Array2<f64>, Array1<f64>) {
    let x = Array2::from_shape_fn((64, 3), |(i, j)| ((i * 7 + j * 13) % 17) as f64 / 8.0 - 1.0);
    let w = Array1::from(vec![2.0, -1.0, 0.5]);
    let y = x.dot(&w) + 0.3;
    (x, y)
}

/// Mean squared error and its gradients with respect to `W` and `b`.
fn loss_and_grads(x: &Array2<f64>, y: &Array1<f64>, p: &Params<f64>) -> (f64, Params<f64>) {
    let w = p["W"]
        .view()
        .into_dimensionality::<Ix1>()
        .expect("W is a vector");
    let b = p["b"]
        .view()
        .into_dimensionality::<Ix1>()
        .expect("b is a vector");
    let err = x.dot(&w) + b[0] - y;
    let n = y.len() as f64;
    let loss = err.mapv(|e| e * e).sum() / n;
    let gw = x.t().dot(&err) * (2.0 / n);
    let gb = Array1::from(vec![err.sum() * 2.0 / n]);
    (
        loss,
        Params::from([("W".into(), gw.into_dyn()), ("b".into(), gb.into_dyn())]),
    )
}

fn main() -> Result<(), ndoptim::Error> {
    let (x, y) = data();
    let optimizers: Vec<Box<dyn Optimizer<f64>>> = vec![
        Box::new(Sgd::default().lr(0.1)),
        Box::new(Momentum::default().lr(0.05)),
        Box::new(Nesterov::default().lr(0.05)),
        Box::new(AdaGrad::default().lr(0.5)),
        Box::new(RmsProp::default().lr(0.01)),
        Box::new(Adam::default().lr(0.1)),
    ];
    println!(
        "{:<10} {:>12} {:>12}   W after 200 steps (truth: [2, -1, 0.5], b 0.3)",
        "optimizer", "loss @ 0", "loss @ 200"
    );
    for mut opt in optimizers {
        let mut params: Params<f64> = Params::from([
            ("W".to_string(), ArrayD::zeros(ndarray::IxDyn(&[3]))),
            ("b".to_string(), ArrayD::zeros(ndarray::IxDyn(&[1]))),
        ]);
        let (first, _) = loss_and_grads(&x, &y, &params);
        for _ in 0..200 {
            let (_, grads) = loss_and_grads(&x, &y, &params);
            opt.update(&mut params, &grads)?;
        }
        let (last, _) = loss_and_grads(&x, &y, &params);
        let w = params["W"]
            .view()
            .into_dimensionality::<Ix1>()
            .expect("W is a vector");
        println!(
            "{:<10} {:>12.6} {:>12.2e}   W = [{:.3}, {:.3}, {:.3}], b = {:.3}",
            opt.name(),
            first,
            last,
            w[0],
            w[1],
            w[2],
            params["b"][0]
        );
    }
    Ok(())
}
