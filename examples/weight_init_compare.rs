//! Figure 6-15 of *Deep Learning from Scratch*: the book's 5-layer ReLU network trained on MNIST
//! with SGD (lr 0.01) from weights drawn with std 0.01, Xavier's and He's initialisation.
//!
//! `cargo run --release --example weight_init_compare [-- --mnist-dir DIR]`

#[allow(dead_code)]
mod common;

use std::time::Instant;

use common::net::{Activation, Net};
use indicatif::{ProgressBar, ProgressStyle};
use ndarray::Axis;
use ndoptim::init::Init;
use ndoptim::{Optimizer, Sgd};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = common::Args::parse(2000);
    let dir = args
        .mnist_dir
        .clone()
        .unwrap_or_else(common::mnist::shipped_dir);
    let (train, test) = common::mnist::load(&dir, 2000)?;
    let inits = [
        ("std=0.01", Init::Normal { std: 0.01 }),
        ("Xavier", Init::Xavier),
        ("He", Init::He),
    ];
    let sizes = [784, 100, 100, 100, 100, 10];
    let mut nets: Vec<Net<f32>> = inits
        .iter()
        .map(|(_, init)| {
            Net::new(
                &sizes,
                Activation::Relu,
                *init,
                &mut StdRng::seed_from_u64(1),
            )
        })
        .collect();
    let mut optimizers: Vec<Sgd<f32>> = inits.iter().map(|_| Sgd::default()).collect();
    let mut losses = vec![Vec::with_capacity(args.iterations); inits.len()];
    let mut rng = StdRng::seed_from_u64(2);
    let started = Instant::now();
    let bar = ProgressBar::new(args.iterations as u64).with_style(ProgressStyle::with_template(
        "{bar:40} {pos}/{len} iterations, {elapsed} elapsed, {eta} left",
    )?);
    for i in 1..=args.iterations {
        let batch: Vec<usize> = (0..128).map(|_| rng.random_range(0..train.len())).collect();
        let x = train.images.select(Axis(0), &batch);
        let t: Vec<u8> = batch.iter().map(|&k| train.labels[k]).collect();
        for ((net, opt), loss) in nets.iter_mut().zip(&mut optimizers).zip(&mut losses) {
            let (l, grads) = net.gradient(x.view(), &t);
            opt.update(&mut net.params, &grads)?;
            loss.push(f64::from(l));
        }
        if i % 100 == 0 {
            let line: Vec<String> = inits
                .iter()
                .zip(&losses)
                .map(|((n, _), l)| format!("{n} {:.4}", l[i - 1]))
                .collect();
            bar.suspend(|| println!("iteration {i:>5}: {}", line.join("  ")));
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    println!(
        "\nafter {} iterations ({:.1} s):",
        args.iterations,
        started.elapsed().as_secs_f64()
    );
    for ((name, _), (net, loss)) in inits.iter().zip(nets.iter().zip(&losses)) {
        let tail = &loss[loss.len().saturating_sub(100)..];
        let mean = tail.iter().sum::<f64>() / tail.len().max(1) as f64;
        println!(
            "{name:<9} final loss {mean:.4}, test accuracy {:.2}%",
            100.0 * net.accuracy(test.images.view(), &test.labels)
        );
    }
    let series: Vec<(String, Vec<(f64, f64)>)> = inits
        .iter()
        .zip(&losses)
        .map(|((name, _), l)| {
            (
                name.to_string(),
                common::smooth(l)
                    .into_iter()
                    .enumerate()
                    .map(|(k, v)| (k as f64, v))
                    .collect(),
            )
        })
        .collect();
    let file = args.out.join("weight_init_compare.svg");
    common::plot::lines(
        &file,
        "MNIST with SGD: training loss by weight initialisation",
        "iterations",
        "loss",
        &series,
    )?;
    println!("wrote {}", file.display());
    Ok(())
}
