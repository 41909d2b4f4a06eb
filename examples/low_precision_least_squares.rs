//! The quickstart's least-squares fit with bfloat16 weights: where rounding decides.
//!
//! torch-optimi's AdamW (`AdamW::optimi()`, learning rate 1e-3) trains the fit four ways: f32
//! weights, and bf16 weights (with bf16 state, optimi's layout) rounded to nearest, with Kahan
//! compensation, and stochastically. Late in training the updates fall below half a bf16 step
//! of the weights: rounded to nearest they are lost, and the loss stops falling; Kahan's buffer
//! and stochastic rounding keep them. Writes `book/src/images/low_precision_least_squares.svg`.
//!
//! Run with `cargo run --release --features half --example low_precision_least_squares`.

#[allow(dead_code)] // the experiments' shared code; this one draws one figure
mod common;

use half::bf16;
use ndarray::{Array1, Array2, ArrayD, IxDyn};
use ndoptim::{AdamW, Engine, Layout, Optimizer, Params, Rounding, Rule, Store};

const STEPS: usize = 5_000;

/// The quickstart's data: 64 samples of 3 features, targets from known weights and bias.
fn data() -> (Array2<f64>, Array1<f64>) {
    let x = Array2::from_shape_fn((64, 3), |(i, j)| ((i * 7 + j * 13) % 17) as f64 / 8.0 - 1.0);
    let y = x.dot(&Array1::from(vec![2.0, -1.0, 0.5])) + 0.3;
    (x, y)
}

/// Mean squared error at `(w, b)`, computed in f64, and its gradients.
fn loss_and_grads(x: &Array2<f64>, y: &Array1<f64>, w: &[f64], b: f64) -> (f64, Vec<f64>, f64) {
    let err = x.dot(&Array1::from(w.to_vec())) + b - y;
    let n = y.len() as f64;
    let gw = x.t().dot(&err) * (2.0 / n);
    (
        err.mapv(|e| e * e).sum() / n,
        gw.to_vec(),
        err.sum() * 2.0 / n,
    )
}

/// Trains with `opt`, parameters and gradients stored as `L::Param`: the loss after every step.
fn train<R: Rule<f32>, L: Layout<f32>>(mut opt: Engine<R, f32, L>) -> (Vec<f64>, Vec<f64>) {
    let (x, y) = data();
    let stored = |v: &[f64]| {
        ArrayD::from_shape_vec(
            IxDyn(&[v.len()]),
            v.iter().map(|&e| L::Param::round(e as f32)).collect(),
        )
        .expect("a vector")
    };
    let mut params: Params<L::Param> = Params::from([
        ("W".into(), stored(&[0.0; 3])),
        ("b".into(), stored(&[0.0])),
    ]);
    let read = |p: &Params<L::Param>| -> (Vec<f64>, f64) {
        let w = p["W"].iter().map(|v| f64::from(v.load())).collect();
        (w, f64::from(p["b"][0].load()))
    };
    let mut losses = Vec::with_capacity(STEPS);
    for _ in 0..STEPS {
        let (w, b) = read(&params);
        let (_, gw, gb) = loss_and_grads(&x, &y, &w, b);
        let grads = Params::from([("W".into(), stored(&gw)), ("b".into(), stored(&[gb]))]);
        opt.update(&mut params, &grads).expect("shapes match");
        let (w, b) = read(&params);
        losses.push(loss_and_grads(&x, &y, &w, b).0);
    }
    let (mut w, b) = read(&params);
    w.push(b);
    (losses, w)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let adamw = AdamW::<f32>::optimi().lr(1e-3);
    let low = adamw.clone().with_layout::<ndoptim::Mixed<bf16, bf16>>();
    let runs = [
        ("f32", train(adamw)),
        ("bf16, round to nearest", train(low.clone())),
        ("bf16, Kahan", train(low.clone().rounding(Rounding::Kahan))),
        (
            "bf16, stochastic",
            train(low.rounding(Rounding::Stochastic { seed: 0 })),
        ),
    ];
    println!("AdamW::optimi(), lr 1e-3, {STEPS} steps (truth: W = [2, -1, 0.5], b = 0.3)");
    println!(
        "{:<24} {:>10} {:>10} {:>10}   W, b",
        "weights", "loss 1k", "loss 2.5k", "loss 5k"
    );
    for (name, (losses, w)) in &runs {
        println!(
            "{name:<24} {:>10.2e} {:>10.2e} {:>10.2e}   {w:?}",
            losses[999],
            losses[2499],
            losses[STEPS - 1]
        );
    }
    let series: Vec<(String, Vec<(f64, f64)>)> = runs
        .iter()
        .map(|(name, (losses, _))| {
            let points = losses
                .iter()
                .enumerate()
                .step_by(5)
                .map(|(i, l)| ((i + 1) as f64, l.max(1e-16).log10()))
                .collect();
            (format!("{name} ({:.1e})", losses[STEPS - 1]), points)
        })
        .collect();
    let file = common::Args::parse(
        "The quickstart's least-squares fit with bf16 weights, in each rounding mode",
        STEPS,
        &[common::Opt::Out],
    )
    .out
    .join("low_precision_least_squares.svg");
    common::plot::lines(
        &file,
        "Least squares, AdamW (torch-optimi's) at lr 1e-3: f32 and bf16 weights",
        "steps",
        "log10 loss",
        &series,
    )?;
    println!("wrote {}", file.display());
    Ok(())
}
