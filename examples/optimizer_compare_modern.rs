//! Today's optimizers on the book's MNIST network: Muon (with its AdamW fallback for biases),
//! Schedule-Free AdamW, AdamW and Adam, from the same weights on the same batches. Prints the
//! losses every 100 iterations and the test accuracies (Schedule-Free evaluated at its average
//! `x`), and plots the smoothed loss curves with the accuracies in the legend.
//!
//! `cargo run --release --example optimizer_compare_modern [-- --iterations N] [-- --mnist-dir DIR]`
//!
//! Hyperparameters: every optimizer with its reference's defaults (Muon: `torch.optim.Muon`'s,
//! lr 1e-3 and weight decay 0.1, its AdamW fallback for the biases at the same rate). Keller
//! Jordan's usual Muon rate, 0.02, is too large for this small network (its 784-row first layer
//! takes `√(784/100)` times the step): it ends at 83-93% test accuracy.

#[allow(dead_code)]
mod common;

use ndoptim::*;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = common::Args::parse(
        "Today's optimizers (Muon, AdamW, Lion, Schedule-Free, ...) on the book's MNIST network",
        2000,
        &[
            common::Opt::Out,
            common::Opt::Iterations,
            common::Opt::Mnist,
        ],
    );
    let (train, test) = common::mnist_sets(&args)?;
    let optimizers: Vec<Box<dyn Optimizer<f32>>> = vec![
        Box::new(Muon::default()),
        Box::new(ScheduleFreeAdamW::default()),
        Box::new(AdamW::default()),
        Box::new(Adam::pytorch()),
    ];
    let mut runs = common::runs(optimizers, args.iterations);
    let seconds = common::train(&mut runs, &train, args.iterations)?;
    println!("\nafter {} iterations ({seconds:.1} s):", args.iterations);
    let accuracies = common::report(&mut runs, &test)?;
    for (run, accuracy) in runs.iter_mut().zip(accuracies) {
        run.name = format!("{} ({accuracy:.2}% test)", run.name);
    }
    let file = args.out.join("optimizer_compare_modern.svg");
    common::plot_losses(
        &runs,
        &file,
        "MNIST: training loss (smoothed) and test accuracy",
    )
}
