//! Figure 6-15 of *Deep Learning from Scratch*: the book's 5-layer ReLU network trained on MNIST
//! with SGD (lr 0.01) from weights drawn with std 0.01, Xavier's and He's initialisation.
//!
//! `cargo run --release --example weight_init_compare [-- --mnist-dir DIR]`

#[allow(dead_code)]
mod common;

use common::Run;
use ndoptim::Sgd;
use ndoptim::init::Init;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = common::Args::parse(
        "Figure 6-15: the book's 5-layer network on MNIST under each weight initialisation",
        2000,
        &[
            common::Opt::Out,
            common::Opt::Iterations,
            common::Opt::Mnist,
        ],
    );
    let (train, test) = common::mnist_sets(&args)?;
    let inits = [
        ("std=0.01", Init::Normal { std: 0.01 }),
        ("Xavier", Init::Xavier),
        ("He", Init::He),
    ];
    let mut runs: Vec<Run> = inits
        .iter()
        .map(|(name, init)| Run {
            name: name.to_string(),
            net: common::book_net(*init),
            opt: Box::new(Sgd::default()),
            losses: Vec::with_capacity(args.iterations),
            ema: None,
            micro: 1,
            d: Vec::new(),
            seconds: Vec::new(),
        })
        .collect();
    let seconds = common::train(&mut runs, &train, args.iterations)?;
    println!("\nafter {} iterations ({seconds:.1} s):", args.iterations);
    common::report(&mut runs, &test)?;
    common::plot_losses(
        &runs,
        &args.out.join("weight_init_compare.svg"),
        "MNIST with SGD: training loss by weight initialisation",
    )
}
