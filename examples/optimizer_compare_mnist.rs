//! Figure 6-9 of *Deep Learning from Scratch*: SGD, Momentum, AdaGrad and Adam (the book's
//! defaults) training the book's 5-layer ReLU network (784-100-100-100-100-10, He
//! initialisation) on MNIST, mini-batches of 128, 2000 iterations. Prints the losses every 100
//! iterations and the final test accuracies, and plots the smoothed loss curves.
//!
//! `cargo run --release --example optimizer_compare_mnist [-- --all] [-- --mnist-dir DIR]`
//!
//! `--all` adds every other optimizer of the crate (PyTorch's defaults).

#[allow(dead_code)]
mod common;

use std::time::Instant;

use common::net::{Activation, Net};
use indicatif::{ProgressBar, ProgressStyle};
use ndarray::Axis;
use ndoptim::init::Init;
use ndoptim::*;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = common::Args::parse(2000);
    let dir = args
        .mnist_dir
        .clone()
        .unwrap_or_else(common::mnist::shipped_dir);
    let (train, test) = common::mnist::load(&dir, 2000)?;
    println!(
        "MNIST from {}: {} training and {} test images",
        dir.display(),
        train.len(),
        test.len()
    );

    let mut optimizers: Vec<(String, Box<dyn Optimizer<f32>>)> = vec![
        ("SGD".into(), Box::new(Sgd::default())),
        ("Momentum".into(), Box::new(Momentum::default())),
        ("AdaGrad".into(), Box::new(AdaGrad::default())),
        ("Adam".into(), Box::new(Adam::default())),
    ];
    if args.all {
        let more: Vec<Box<dyn Optimizer<f32>>> = vec![
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
        ];
        optimizers.extend(more.into_iter().map(|o| (o.name().to_string(), o)));
    }
    // Every optimizer starts from the same He-initialised weights and sees the same batches.
    let sizes = [784, 100, 100, 100, 100, 10];
    let mut nets: Vec<Net<f32>> = optimizers
        .iter()
        .map(|_| {
            Net::new(
                &sizes,
                Activation::Relu,
                Init::He,
                &mut StdRng::seed_from_u64(1),
            )
        })
        .collect();
    let mut losses = vec![Vec::with_capacity(args.iterations); optimizers.len()];
    let mut rng = StdRng::seed_from_u64(2);
    let started = Instant::now();
    let bar = ProgressBar::new(args.iterations as u64).with_style(ProgressStyle::with_template(
        "{bar:40} {pos}/{len} iterations, {elapsed} elapsed, {eta} left",
    )?);
    for i in 1..=args.iterations {
        let batch: Vec<usize> = (0..128).map(|_| rng.random_range(0..train.len())).collect();
        let x = train.images.select(Axis(0), &batch);
        let t: Vec<u8> = batch.iter().map(|&k| train.labels[k]).collect();
        for ((_, opt), (net, loss)) in optimizers
            .iter_mut()
            .zip(nets.iter_mut().zip(losses.iter_mut()))
        {
            let (l, grads) = net.gradient(x.view(), &t);
            opt.update(&mut net.params, &grads)?;
            loss.push(f64::from(l));
        }
        if i % 100 == 0 {
            let line: Vec<String> = optimizers
                .iter()
                .zip(&losses)
                .map(|((n, _), l)| format!("{n} {:.4}", l[i - 1]))
                .collect();
            bar.suspend(|| println!("iteration {i:>5}: {}", line.join("  ")));
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();

    println!("\nafter {} iterations ({seconds:.1} s):", args.iterations);
    println!(
        "{:<10} {:>12} {:>14}",
        "optimizer", "final loss", "test accuracy"
    );
    for ((name, _), (net, loss)) in optimizers.iter().zip(nets.iter().zip(&losses)) {
        let tail = &loss[loss.len().saturating_sub(100)..];
        let mean = tail.iter().sum::<f64>() / tail.len().max(1) as f64;
        println!(
            "{name:<10} {mean:>12.4} {:>13.2}%",
            100.0 * net.accuracy(test.images.view(), &test.labels)
        );
    }
    println!("(final loss: mean of the last 100 mini-batches)");

    let series: Vec<(String, Vec<(f64, f64)>)> = optimizers
        .iter()
        .zip(&losses)
        .map(|((name, _), l)| {
            (
                name.clone(),
                common::smooth(l)
                    .into_iter()
                    .enumerate()
                    .map(|(k, v)| (k as f64, v))
                    .collect(),
            )
        })
        .collect();
    let file = args.out.join(if args.all {
        "optimizer_compare_mnist_all.svg"
    } else {
        "optimizer_compare_mnist.svg"
    });
    common::plot::lines(
        &file,
        "MNIST: training loss (smoothed)",
        "iterations",
        "loss",
        &series,
    )?;
    println!("wrote {}", file.display());
    Ok(())
}
