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

#[allow(dead_code)]
mod common;

use ndoptim::*;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = common::Args::parse(2000);
    let (train, test) = common::mnist_sets(&args)?;

    let mut optimizers: Vec<Box<dyn Optimizer<f32>>> = vec![
        Box::new(Sgd::default()),
        Box::new(Momentum::default()),
        Box::new(AdaGrad::default()),
        Box::new(Adam::default()),
    ];
    if args.all {
        optimizers.extend::<Vec<Box<dyn Optimizer<f32>>>>(vec![
            Box::new(Nesterov::default()),
            Box::new(RmsProp::default()),
            Box::new(AdamW::default()),
            Box::new(NAdam::default()),
            Box::new(RAdam::default()),
            Box::new(Adamax::default()),
            Box::new(Adadelta::default()),
            Box::new(Rprop::default()),
            Box::new(Asgd::default()),
            Box::new(Adafactor::default()),
            Box::new(Lion::default()),
            // The optimizers of today's training, each with its reference's defaults (optax's
            // need a learning rate: 0.01 as in the conformance files, LARS 1.0).
            Box::new(Muon::default()),
            Box::new(ScheduleFreeAdamW::default()),
            Box::new(ScheduleFreeSgd::default()),
            Box::new(Lamb::default()),
            Box::new(Lars::default()),
            Box::new(Adan::default()),
            Box::new(Adopt::default()),
            Box::new(AdEMAMix::default()),
            Box::new(AdaBelief::default()),
        ]);
    }
    // Every optimizer starts from the same He-initialised weights and sees the same batches.
    let mut runs = common::runs(optimizers, args.iterations);
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
