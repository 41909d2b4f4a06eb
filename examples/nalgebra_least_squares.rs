//! A least-squares fit whose parameters live in a `nalgebra::DMatrix<f64>`, updated in place by
//! ndoptim's Adam through the matrix's own slice (`update_named`, `Named::from_slices`): no copy,
//! no `ndarray` on the caller's side. The result is checked against nalgebra's own solution of
//! the normal equations.
//!
//! `cargo run --release --example nalgebra_least_squares`

#[allow(dead_code)] // the experiments' shared code; this one only parses --help
mod common;

use nalgebra::{DMatrix, DVector};
use ndoptim::{Adam, Named, Optimizer};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    common::Args::parse(
        "A least-squares fit whose parameters are a nalgebra DMatrix, updated in place by Adam, against the normal equations",
        0,
        &[],
    );
    // 200 noisy observations of y = 3 - 2 x1 + 0.5 x2 + 4 x3 (a deterministic "noise").
    let (rows, features) = (200, 4);
    let design = DMatrix::from_fn(rows, features, |i, j| match j {
        0 => 1.0,
        _ => ((i * (j + 3) * 7919) % 1000) as f64 / 500.0 - 1.0,
    });
    let truth = DVector::from_vec(vec![3.0, -2.0, 0.5, 4.0]);
    let noise = DVector::from_fn(rows, |i, _| ((i * 104_729) % 1000) as f64 / 5000.0 - 0.1);
    let y = &design * &truth + noise;

    // The parameters, a 4 x 1 DMatrix, and the gradient of the mean squared error.
    let mut theta = DMatrix::<f64>::zeros(features, 1);
    let mut grad = DMatrix::<f64>::zeros(features, 1);
    let mut adam = Adam::<f64>::pytorch().lr(0.05);
    let mut losses = Vec::new();
    for step in 1..=3000 {
        let residual = &design * &theta - &y;
        losses.push(residual.norm_squared() / rows as f64);
        grad.copy_from(&(design.transpose() * &residual * (2.0 / rows as f64)));
        // nalgebra stores column-major; a 4 x 1 matrix is 4 contiguous numbers, given as shape
        // [4] (a matrix would be given as [cols, rows], its row-major reading).
        adam.update_named(&mut [Named::from_slices(
            "theta",
            features,
            theta.as_mut_slice(),
            grad.as_slice(),
        )?])?;
        if step % 1000 == 0 {
            println!("step {step:>5}: mean squared error {:.6}", losses[step - 1]);
        }
    }
    let exact = (design.transpose() * &design)
        .lu()
        .solve(&(design.transpose() * &y))
        .ok_or("the normal equations are singular")?;
    let gap = (&theta - &exact).amax();
    println!("Adam:            {:.6?}", theta.as_slice());
    println!("normal equations {:.6?}", exact.as_slice());
    println!(
        "largest difference {gap:.2e}; mean squared error {:.6} (exact solution {:.6})",
        losses.last().copied().unwrap_or(f64::NAN),
        (&design * &exact - &y).norm_squared() / rows as f64
    );
    if gap > 1e-3 {
        return Err(format!("Adam did not reach the least-squares solution: {gap}").into());
    }
    Ok(())
}
