//! No learning rate to tune: Prodigy and D-Adapt Adam at their references' defaults (learning
//! rate 1, the step size `d` found as they train) against Adam at the book's rate, 0.001, and
//! at the best rate of a sweep, on the book's MNIST network, from the same weights on the same
//! batches. Prints the losses every 100 iterations and the test accuracies, and plots the
//! smoothed loss curves (test accuracies in the legend) and the step size each optimizer used.
//!
//! `cargo run --release --example learning_rate_free_mnist [-- --iterations N] [-- --all]`
//!
//! `--all` first sweeps Adam's rate over `1e-4 .. 3e-2` (half-decades) on the same batches and
//! takes the best test accuracy as the tuned rate; without it the tuned rate is the sweep's
//! result at the default 2,000 iterations, [`TUNED`]. That result is the book's own rate: 0.001
//! tests at 95.30%, 0.0003 and 0.01 at 95.25%, 0.0001 at 94.55%, 0.003 at 94.35%, 0.03 at 89.70%.
//! When the two rates agree, one Adam run stands for both.

#[allow(dead_code)]
mod common;

use ndoptim::*;

/// The best rate of `--all`'s sweep at 2,000 iterations.
const TUNED: f64 = 0.001;

/// The book's rate for Adam.
const BOOK: f64 = 0.001;

/// Adam's rates the sweep tries.
const SWEEP: [f64; 6] = [1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = common::Args::parse(
        "Prodigy and D-Adapt Adam at their defaults against tuned Adam on the book's MNIST network",
        2000,
        &[
            common::Opt::Out,
            common::Opt::Iterations,
            common::Opt::Mnist,
            common::Opt::All,
        ],
    );
    let (train, test) = common::mnist_sets(&args)?;
    let tuned = if args.all {
        println!("sweeping Adam's learning rate:");
        let adams = SWEEP
            .iter()
            .map(|&lr| -> Box<dyn Optimizer<f32>> { Box::new(Adam::pytorch().lr(lr)) });
        let mut runs = common::runs(adams.collect(), args.iterations);
        for (run, lr) in runs.iter_mut().zip(SWEEP) {
            run.name = format!("Adam {lr}");
        }
        common::train(&mut runs, &train, args.iterations)?;
        let accuracies = common::report(&mut runs, &test)?;
        let best = (accuracies.iter().enumerate())
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map_or(TUNED, |(i, _)| SWEEP[i]);
        println!("best rate: {best}\n");
        best
    } else {
        TUNED
    };
    let mut optimizers: Vec<Box<dyn Optimizer<f32>>> = vec![
        Box::new(Prodigy::default()),
        Box::new(DAdaptAdam::default()),
        Box::new(Adam::pytorch().lr(BOOK)),
    ];
    if tuned != BOOK {
        optimizers.push(Box::new(Adam::pytorch().lr(tuned)));
    }
    let mut runs = common::runs(optimizers, args.iterations);
    runs[2].name = match tuned == BOOK {
        true => format!("Adam at {BOOK}, the book's rate and the tuned one"),
        false => format!("Adam at {BOOK}, the book's rate"),
    };
    if let Some(run) = runs.get_mut(3) {
        run.name = format!("Adam at {tuned}, tuned");
    }
    let seconds = common::train(&mut runs, &train, args.iterations)?;
    println!("\nafter {} iterations ({seconds:.1} s):", args.iterations);
    let accuracies = common::report(&mut runs, &test)?;
    for run in &runs {
        if let (Some(first), Some(last)) = (run.d.first(), run.d.last()) {
            println!("{}: d from {first:.1e} to {last:.2e}", run.name);
        }
    }
    // The step size each used: d (at learning rate 1) for the learning-rate-free ones, the
    // learning rate for Adam.
    let steps: Vec<(String, Vec<(f64, f64)>)> = (runs.iter())
        .map(|r| {
            let lr = r.opt.learning_rate();
            let d = (0..args.iterations).map(|i| r.d.get(i).map_or(lr, |d| d * lr));
            (
                r.name.clone(),
                d.enumerate().map(|(i, d)| (i as f64, d.log10())).collect(),
            )
        })
        .collect();
    for (run, accuracy) in runs.iter_mut().zip(accuracies) {
        run.name = format!("{} ({accuracy:.2}% test)", run.name);
    }
    let file = args.out.join("learning_rate_free_mnist.svg");
    common::plot_losses(
        &runs,
        &file,
        "MNIST without a learning rate: training loss (smoothed), test accuracy",
    )?;
    let file = args.out.join("learning_rate_free_mnist_d.svg");
    common::plot::lines(
        &file,
        "The step size each optimizer used",
        "iterations",
        "log10 step size (d, or Adam's rate)",
        &steps,
    )?;
    println!("wrote {}", file.display());
    Ok(())
}
