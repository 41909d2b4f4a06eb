//! Matrix-preconditioned optimizers on the book's MNIST network: SOAP, PSGD Kron and NorMuon
//! beside Muon and AdamW, from the same weights on the same batches. Prints the losses every 100 iterations and
//! the test accuracies, and plots the smoothed loss against iterations and against each
//! optimizer's own time (its gradients and updates), the accuracies in the legends.
//!
//! `cargo run --release --example preconditioned_mnist [-- --iterations N] [-- --mnist-dir DIR]`
//!
//! Hyperparameters: each reference's defaults (SOAP's `soap.py`: lr 3e-3, refresh every 10
//! steps; kron_torch's: lr 3e-4, preconditioner updated at every step of the first 500, then
//! less and less often; `torch.optim.Muon`'s: lr 1e-3 with its AdamW fallback; `torch.optim.AdamW`'s), but
//! NorMuon at Muon's rate, 1e-3, with its auxiliary Adam's defaults for the biases: its own
//! default, 0.02, is too large for this small network, as Muon's usual rate is (it ends near
//! 86% test accuracy).

#[allow(dead_code)]
mod common;

use ndoptim::*;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = common::Args::parse(
        "SOAP, PSGD Kron, NorMuon, Muon and AdamW on the book's MNIST network",
        2000,
        &[
            common::Opt::Out,
            common::Opt::Iterations,
            common::Opt::Mnist,
        ],
    );
    let (train, test) = common::mnist_sets(&args)?;
    let optimizers: Vec<(&str, Box<dyn Optimizer<f32>>)> = vec![
        ("SOAP", Box::new(Soap::default())),
        ("Kron", Box::new(Kron::default())),
        ("NorMuon", Box::new(Muon::normuon().lr(1e-3))),
        ("Muon", Box::new(Muon::default())),
        ("AdamW", Box::new(AdamW::default())),
    ];
    let names: Vec<&str> = optimizers.iter().map(|(n, _)| *n).collect();
    let mut runs = common::runs(
        optimizers.into_iter().map(|(_, o)| o).collect(),
        args.iterations,
    );
    for (run, name) in runs.iter_mut().zip(names) {
        run.name = name.to_string();
    }
    let seconds = common::train(&mut runs, &train, args.iterations)?;
    println!("\nafter {} iterations ({seconds:.1} s):", args.iterations);
    let accuracies = common::report(&mut runs, &test)?;
    for (run, accuracy) in runs.iter_mut().zip(accuracies) {
        let time = run.seconds.last().copied().unwrap_or(0.0);
        run.name = format!("{} ({accuracy:.2}% test, {time:.1} s)", run.name);
    }
    let title = "MNIST: training loss (smoothed) and test accuracy";
    common::plot_losses(&runs, &args.out.join("preconditioned_mnist.svg"), title)?;
    common::plot_losses_by_time(
        &runs,
        &args.out.join("preconditioned_mnist_time.svg"),
        title,
    )
}
