//! Figures 6-10 to 6-14 of *Deep Learning from Scratch*: the activations of five 100-unit layers
//! for 1000 Gaussian inputs, one histogram per layer, for weights drawn with std 1 and 0.01,
//! Xavier's with sigmoid and tanh, and He's with ReLU.
//!
//! `cargo run --release --example weight_init_activation_histogram`

#[allow(dead_code)]
mod common;

use common::net::Activation;
use ndarray::Array2;
use ndoptim::init::{Init, Layout};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Distribution, StandardNormal};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = common::Args::parse(
        "Figures 6-10 to 6-14: activations of five layers under each weight initialisation",
        0,
        &[common::Opt::Out],
    );
    let mut rng = StdRng::seed_from_u64(0);
    let x = Array2::from_shape_simple_fn((1000, 100), || StandardNormal.sample(&mut rng));
    let cases = [
        (
            "std1_sigmoid",
            "std 1, sigmoid: activations pile up at 0 and 1",
            Init::Normal { std: 1.0 },
            Activation::Sigmoid,
        ),
        (
            "std001_sigmoid",
            "std 0.01, sigmoid: every unit says the same",
            Init::Normal { std: 0.01 },
            Activation::Sigmoid,
        ),
        (
            "xavier_sigmoid",
            "Xavier, sigmoid: spread in every layer",
            Init::Xavier,
            Activation::Sigmoid,
        ),
        (
            "xavier_tanh",
            "Xavier, tanh: spread and centred",
            Init::Xavier,
            Activation::Tanh,
        ),
        (
            "he_relu",
            "He, ReLU: the same spread in every layer",
            Init::He,
            Activation::Relu,
        ),
    ];
    for (file, title, init, activation) in cases {
        let mut a: Array2<f64> = x.clone();
        let mut layers = Vec::new();
        println!("{title}");
        for layer in 1..=5 {
            let w: Array2<f64> = init
                .sample(&[100, 100], Layout::InOut, &mut rng)?
                .into_dimensionality()?;
            a = a.dot(&w).mapv(|z| activation.apply(z));
            let values: Vec<f64> = a.iter().copied().collect();
            let mean = values.iter().sum::<f64>() / values.len() as f64;
            let std = (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>()
                / values.len() as f64)
                .sqrt();
            println!("  layer {layer}: mean {mean:+.3}, std {std:.3}");
            layers.push((format!("{layer}-layer"), values));
        }
        let (lo, hi) = if activation == Activation::Tanh {
            (-1.0, 1.0)
        } else {
            (0.0, 1.0)
        };
        let path = args.out.join(format!("weight_init_{file}.svg"));
        common::plot::histograms(&path, title, lo, hi, &layers)?;
        println!("  wrote {}", path.display());
    }
    Ok(())
}
