//! L-BFGS on Rosenbrock's valley, `f(x, y) = (1 - x)² + 100 (y - x²)²` from (-1.5, 2), drawn as
//! Figure 6-8 draws the book's optimizers: the path of each method over the contours of `f`.
//! L-BFGS with PyTorch's strong-Wolfe line search and with its fixed step, beside Adam and
//! PyTorch's SGD with momentum given the same start.
//!
//! `cargo run --release --example lbfgs_rosenbrock`

#[allow(dead_code)]
mod common;

use ndarray::arr1;
use ndoptim::lbfgs::{Lbfgs, LineSearch};
use ndoptim::{Adam, Optimizer, Params, Sgd};

fn f(x: f64, y: f64) -> f64 {
    (1.0 - x) * (1.0 - x) + 100.0 * (y - x * x) * (y - x * x)
}

/// `f` at `p["xy"]`, its gradient into `g["xy"]`.
fn rosenbrock(p: &Params<f64>, g: &mut Params<f64>) -> f64 {
    let (x, y) = (p["xy"][0], p["xy"][1]);
    let r = y - x * x;
    if let Some(g) = g.get_mut("xy") {
        g[0] = -2.0 * (1.0 - x) - 400.0 * x * r;
        g[1] = 200.0 * r;
    }
    f(x, y)
}

fn start() -> Params<f64> {
    Params::from([("xy".to_string(), arr1(&[-1.5, 2.0]).into_dyn())])
}

fn point(p: &Params<f64>) -> (f64, f64) {
    (p["xy"][0], p["xy"][1])
}

/// L-BFGS one iteration per call (with the default call's evaluation budget, so that each
/// iteration searches as it would inside a longer call): its iterates until `f < 1e-9`.
fn lbfgs_path(search: LineSearch) -> Result<Vec<(f64, f64)>, ndoptim::Error> {
    let mut opt = Lbfgs::default()
        .line_search(search)
        .max_iter(1)
        .max_eval(25);
    let mut p = start();
    let mut path = vec![point(&p)];
    while f(path[path.len() - 1].0, path[path.len() - 1].1) > 1e-9 && path.len() < 200 {
        opt.step(&mut p, rosenbrock)?;
        path.push(point(&p));
    }
    Ok(path)
}

/// L-BFGS as it is normally called (20 iterations a call): calls and evaluations until
/// `f < 1e-9`.
fn lbfgs_cost(search: LineSearch) -> Result<(usize, u64, (f64, f64)), ndoptim::Error> {
    let mut opt = Lbfgs::default().line_search(search);
    let mut p = start();
    let mut calls = 0;
    while f(point(&p).0, point(&p).1) > 1e-9 && calls < 50 {
        opt.step(&mut p, rosenbrock)?;
        calls += 1;
    }
    Ok((calls, opt.totals().evaluations, point(&p)))
}

/// A first-order optimizer, `steps` gradient steps.
fn first_order(
    mut opt: impl Optimizer<f64>,
    steps: usize,
) -> Result<Vec<(f64, f64)>, ndoptim::Error> {
    let mut p = start();
    let mut g = start();
    let mut path = vec![point(&p)];
    for _ in 0..steps {
        rosenbrock(&p, &mut g);
        opt.update(&mut p, &g)?;
        path.push(point(&p));
    }
    Ok(path)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = common::Args::parse(
        "L-BFGS (both line searches) against Adam and SGD on Rosenbrock's valley",
        1000,
        &[common::Opt::Out, common::Opt::Iterations],
    );
    let mut runs = Vec::new();
    for (name, search) in [
        ("L-BFGS, strong Wolfe", LineSearch::StrongWolfe),
        ("L-BFGS, fixed step", LineSearch::None),
    ] {
        let path = lbfgs_path(search)?;
        let (calls, evaluations, (x, y)) = lbfgs_cost(search)?;
        println!(
            "{name:<22} {:>4} iterations; called 20 iterations at a time: {calls} calls, \
             {evaluations} evaluations to f < 1e-9, at ({x:.8}, {y:.8})",
            path.len() - 1
        );
        runs.push((format!("{name}: {} iterations", path.len() - 1), path));
    }
    let first = [
        (
            "Adam, lr 0.05",
            first_order(Adam::default().lr(0.05), args.iterations)?,
        ),
        (
            "SGD, lr 1e-3, momentum 0.9",
            first_order(Sgd::default().lr(1e-3).momentum(0.9), args.iterations)?,
        ),
    ];
    for (name, path) in first {
        let (x, y) = path[path.len() - 1];
        println!(
            "{name:<22} {:>4} steps: ({x:+.6}, {y:+.6}), f = {:.3e}",
            args.iterations,
            f(x, y)
        );
        runs.push((format!("{name}: {} steps", args.iterations), path));
    }
    // f = c is the closed curve x = 1 + √c·cos θ, y = x² + √c·sin θ / 10.
    let contours: Vec<Vec<(f64, f64)>> = [0.25, 1.0, 4.0, 16.0, 64.0, 256.0, 1024.0]
        .iter()
        .map(|&c: &f64| {
            (0..=400)
                .map(|k| {
                    let th = std::f64::consts::TAU * f64::from(k) / 400.0;
                    let x = 1.0 + c.sqrt() * th.cos();
                    (x, x * x + c.sqrt() * th.sin() / 10.0)
                })
                .collect()
        })
        .collect();
    let plane = common::plot::Plane {
        x: -2.0..2.0,
        y: -1.0..3.0,
        minimum: (1.0, 1.0),
    };
    let file = args.out.join("lbfgs_rosenbrock.svg");
    common::plot::paths(&file, &plane, &contours, &runs)?;
    println!("wrote {}", file.display());
    Ok(())
}
