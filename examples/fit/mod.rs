//! The quickstart's problem: a linear model `y = X·W + b` fitted by least squares. Example code.

use ndarray::{Array1, Array2, ArrayD, Ix1, IxDyn};
use ndoptim::{Error, Optimizer, Params};

/// A deterministic data set: 64 samples of 3 features, targets from known weights.
pub fn data() -> (Array2<f64>, Array1<f64>) {
    let x = Array2::from_shape_fn((64, 3), |(i, j)| ((i * 7 + j * 13) % 17) as f64 / 8.0 - 1.0);
    let w = Array1::from(vec![2.0, -1.0, 0.5]);
    let y = x.dot(&w) + 0.3;
    (x, y)
}

/// Mean squared error and its gradients with respect to `W` and `b`.
pub fn loss_and_grads(x: &Array2<f64>, y: &Array1<f64>, p: &Params<f64>) -> (f64, Params<f64>) {
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

/// Trains `opt` from zero weights for `steps` steps: the loss before and after, and the
/// parameters.
pub fn train(opt: &mut dyn Optimizer<f64>, steps: usize) -> Result<(f64, f64, Params<f64>), Error> {
    let (x, y) = data();
    let mut params: Params<f64> = Params::from([
        ("W".to_string(), ArrayD::zeros(IxDyn(&[3]))),
        ("b".to_string(), ArrayD::zeros(IxDyn(&[1]))),
    ]);
    let (first, _) = loss_and_grads(&x, &y, &params);
    for _ in 0..steps {
        let (_, grads) = loss_and_grads(&x, &y, &params);
        opt.update(&mut params, &grads)?;
    }
    let (last, _) = loss_and_grads(&x, &y, &params);
    Ok((first, last, params))
}

/// Prints one line of a comparison: the optimizer's name, its losses and the fitted weights.
pub fn report(name: &str, (first, last, params): &(f64, f64, Params<f64>)) {
    let w = &params["W"];
    println!(
        "{name:<24} {first:>10.6} {last:>12.2e}   W = [{:.3}, {:.3}, {:.3}], b = {:.3}",
        w[[0]],
        w[[1]],
        w[[2]],
        params["b"][[0]]
    );
}

/// The header of [`report`]'s lines.
pub fn header(steps: usize) {
    println!(
        "{:<24} {:>10} {:>12}   fit after {steps} steps (truth: W = [2, -1, 0.5], b = 0.3)",
        "optimizer", "loss @ 0", "loss @ end"
    );
}
