//! Figure 6-8 of *Deep Learning from Scratch*: SGD, Momentum, AdaGrad and Adam minimising
//! `f(x, y) = x²/20 + y²` from (-7, 2) in 30 steps, each path drawn over the contours of `f`.
//!
//! `cargo run --release --example optimizer_compare_naive`

#[allow(dead_code)]
mod common;

use ndarray::arr0;
use ndoptim::{AdaGrad, Adam, Momentum, Optimizer, Params, Sgd};

fn f(x: f64, y: f64) -> f64 {
    x * x / 20.0 + y * y
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = common::Args::parse(
        "Figure 6-8: SGD, Momentum, AdaGrad and Adam on f(x, y) = x²/20 + y² from (-7, 2)",
        30,
        &[
            common::Opt::Out,
            common::Opt::Iterations,
            common::Opt::Paths,
        ],
    );
    let optimizers: Vec<(&str, Box<dyn Optimizer<f64>>)> = vec![
        ("SGD", Box::new(Sgd::default().lr(0.95))),
        ("Momentum", Box::new(Momentum::default().lr(0.1))),
        ("AdaGrad", Box::new(AdaGrad::default().lr(1.5))),
        ("Adam", Box::new(Adam::default().lr(0.3))),
    ];
    let mut runs = Vec::new();
    for (name, mut opt) in optimizers {
        let mut p = Params::from([
            ("x".to_string(), arr0(-7.0).into_dyn()),
            ("y".to_string(), arr0(2.0).into_dyn()),
        ]);
        let mut path = vec![(-7.0, 2.0)];
        for _ in 0..args.iterations {
            let (x, y) = (p["x"][[]], p["y"][[]]);
            let grads = Params::from([
                ("x".to_string(), arr0(x / 10.0).into_dyn()),
                ("y".to_string(), arr0(2.0 * y).into_dyn()),
            ]);
            opt.update(&mut p, &grads)?;
            path.push((p["x"][[]], p["y"][[]]));
        }
        let (x, y) = path[path.len() - 1];
        println!(
            "{name:<9} after {} steps: ({x:+.6}, {y:+.6}), f = {:.3e}",
            args.iterations,
            f(x, y)
        );
        runs.push((name.to_string(), path));
    }
    // f = c is the ellipse x = √(20c)·cos θ, y = √c·sin θ.
    let contours: Vec<Vec<(f64, f64)>> = [0.25, 1.0, 2.0, 4.0, 7.0, 11.0, 16.0, 22.0]
        .iter()
        .map(|c: &f64| {
            (0..=120)
                .map(|k| {
                    let th = std::f64::consts::TAU * f64::from(k) / 120.0;
                    ((20.0 * c).sqrt() * th.cos(), c.sqrt() * th.sin())
                })
                .collect()
        })
        .collect();
    if let Some(file) = &args.paths {
        // The playground's browser test compares the page's paths with these.
        let runs: Vec<_> = runs
            .iter()
            .map(|(name, path)| serde_json::json!({ "optimizer": name, "points": path }))
            .collect();
        std::fs::write(file, serde_json::to_string(&runs)?)?;
        println!("wrote {}", file.display());
    }
    let file = args.out.join("optimizer_compare_naive.svg");
    common::plot::paths(&file, &common::plot::FIG_6_8, &contours, &runs)?;
    println!("wrote {}", file.display());
    Ok(())
}
