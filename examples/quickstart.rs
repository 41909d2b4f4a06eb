//! Fits a small linear model `y = X·W + b` by least squares with each of the book's optimizers
//! and prints how far each gets in 200 steps.
//!
//! Run with `cargo run --release --example quickstart`.

#[allow(dead_code)] // the experiments' shared code; this one only parses --help
mod common;

mod fit;

use ndoptim::{AdaGrad, Adam, Momentum, Nesterov, Optimizer, RmsProp, Sgd};

fn main() -> Result<(), ndoptim::Error> {
    common::Args::parse(
        "A least-squares fit y = X·W + b with each of the book's optimizers",
        0,
        &[],
    );
    let optimizers: Vec<Box<dyn Optimizer<f64>>> = vec![
        Box::new(Sgd::default().lr(0.1)),
        Box::new(Momentum::default().lr(0.05)),
        Box::new(Nesterov::default().lr(0.05)),
        Box::new(AdaGrad::default().lr(0.5)),
        Box::new(RmsProp::default().lr(0.01)),
        Box::new(Adam::default().lr(0.1)),
    ];
    fit::header(200);
    for mut opt in optimizers {
        let result = fit::train(opt.as_mut(), 200)?;
        fit::report(opt.name(), &result);
    }
    Ok(())
}
