//! Figure 6-9 of *Deep Learning from Scratch*: SGD, Momentum, AdaGrad and Adam (the book's
//! defaults) training the book's 5-layer ReLU network (784-100-100-100-100-10, He
//! initialisation) on MNIST, mini-batches of 128, 2000 iterations. Prints the losses every 100
//! iterations and the final test accuracies, and plots the smoothed loss curves.
//!
//! `cargo run --release --example optimizer_compare_mnist [-- --all] [-- --mnist-dir DIR]`
//!
//! `--all` adds every other optimizer of the crate (its reference's defaults); `--ema 0.99`
//! also reports the test accuracy of an exponential moving average of each run's weights;
//! `--accumulate 4` feeds each batch of 128 as 4 micro-batches of 32 through `MultiSteps`.
//!
//! `--bf16` (with `--features half`) trains instead with torch-optimi's AdamW (learning rate
//! 1e-3) on f32 weights and on bf16 weights (bf16 state) rounded to nearest, with Kahan
//! compensation and stochastically, over three seeds (weights and batches), and reports each
//! mode's test accuracy and final loss.

#[allow(dead_code)]
mod common;

use ndoptim::*;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = common::Args::parse(
        "Figure 6-9: SGD, Momentum, AdaGrad and Adam on the book's MNIST network",
        2000,
        &[
            common::Opt::Out,
            common::Opt::Iterations,
            common::Opt::Mnist,
            common::Opt::All,
            common::Opt::Bf16,
            common::Opt::Practice,
        ],
    );
    let (train, test) = common::mnist_sets(&args)?;
    if args.bf16 {
        #[cfg(feature = "half")]
        return bf16_modes(&args, &train, &test);
        #[cfg(not(feature = "half"))]
        return Err("--bf16 needs --features half".into());
    }

    // The book's four, or every optimizer of the registry, each with its reference's defaults
    // (optax's need a learning rate: 0.01 as in the conformance files, LARS 1.0).
    let book = ["SGD", "Momentum", "AdaGrad", "Adam"];
    let (labels, optimizers): (Vec<&str>, Vec<Box<dyn Optimizer<f32>>>) = registry::optimizers()
        .into_iter()
        .filter(|r| args.all || book.contains(&r.label))
        .map(|r| (r.label, r.optimizer))
        .unzip();
    // Every optimizer starts from the same He-initialised weights and sees the same batches.
    let mut runs = common::runs(optimizers, args.iterations);
    // Labelled as the registry labels them: two configurations of SGD are not both "SGD".
    for (run, label) in runs.iter_mut().zip(labels) {
        run.name = label.to_string();
    }
    common::practice(&mut runs, &args);
    let seconds = common::train(&mut runs, &train, args.iterations)?;
    println!("\nafter {} iterations ({seconds:.1} s):", args.iterations);
    common::report(&mut runs, &test)?;
    let file = args.out.join(if args.all {
        "optimizer_compare_mnist_all.svg"
    } else {
        "optimizer_compare_mnist.svg"
    });
    common::plot_losses(&runs, &file, "MNIST: training loss (smoothed)")
}

/// f32 weights against bf16 weights in each rounding mode, over three seeds.
#[cfg(feature = "half")]
fn bf16_modes(
    args: &common::Args,
    train: &common::mnist::Mnist,
    test: &common::mnist::Mnist,
) -> Result<(), Box<dyn std::error::Error>> {
    use common::low_precision::Bf16Weights;
    use half::bf16;

    const SEEDS: u64 = 3;
    let modes = ["f32", "bf16 nearest", "bf16 Kahan", "bf16 stochastic"];
    let mut results = vec![Vec::new(); modes.len()];
    for seed in 0..SEEDS {
        let adamw = AdamW::<f32>::optimi().lr(1e-3);
        let low = adamw.clone().with_layout::<Mixed<bf16, bf16>>();
        let optimizers: Vec<Box<dyn Optimizer<f32>>> = vec![
            Box::new(adamw),
            Box::new(Bf16Weights::new(low.clone())),
            Box::new(Bf16Weights::new(low.clone().rounding(Rounding::Kahan))),
            Box::new(Bf16Weights::new(
                low.rounding(Rounding::Stochastic { seed }),
            )),
        ];
        let mut runs = common::runs_seeded(optimizers, args.iterations, 10 + seed);
        for (run, mode) in runs.iter_mut().zip(modes) {
            run.name = mode.to_string();
        }
        println!("\nseed {seed}:");
        common::train_seeded(&mut runs, train, args.iterations, 20 + seed)?;
        let accuracies = common::report(&mut runs, test)?;
        for ((run, accuracy), result) in runs.iter().zip(accuracies).zip(&mut results) {
            let tail = &run.losses[run.losses.len().saturating_sub(100)..];
            result.push((
                accuracy,
                tail.iter().sum::<f64>() / tail.len().max(1) as f64,
            ));
        }
        if seed == 0 {
            let file = args.out.join("mnist_bf16.svg");
            common::plot_losses(
                &runs,
                &file,
                "MNIST, AdamW (torch-optimi's): f32 and bf16 weights",
            )?;
        }
    }
    println!(
        "\n{} iterations, {SEEDS} seeds: test accuracy (%) and final loss, mean [min, max]",
        args.iterations
    );
    for (mode, r) in modes.iter().zip(&results) {
        let stats = |v: Vec<f64>| {
            let mean = v.iter().sum::<f64>() / v.len() as f64;
            let (lo, hi) = v
                .iter()
                .fold((f64::MAX, f64::MIN), |(a, b), &x| (a.min(x), b.max(x)));
            (mean, lo, hi)
        };
        let (a, a0, a1) = stats(r.iter().map(|x| x.0).collect());
        let (l, l0, l1) = stats(r.iter().map(|x| x.1).collect());
        println!("{mode:<16} {a:6.2} [{a0:.2}, {a1:.2}]   {l:.4} [{l0:.4}, {l1:.4}]");
    }
    Ok(())
}
