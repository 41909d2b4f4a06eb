//! Training practice on the book's MNIST network, two figures:
//!
//! - `practice_ema.svg`: the test error of Adam's raw weights against that of their exponential
//!   moving average (`Average::ema(0.99)`, PyTorch's `AveragedModel` convention), measured every
//!   100 iterations;
//! - `practice_accumulation.svg`: the training loss of Adam at batch 128 against Adam behind
//!   `MultiSteps` with `k = 4` micro-batches of 32 (each batch of 128 split in four), step by step.
//!   The mean of four equal micro-batch gradients is the batch gradient, so the two runs agree up
//!   to rounding: the figure shows how far rounding takes them apart.
//!
//! `cargo run --release --example practice_mnist [-- --iterations N] [-- --mnist-dir DIR]`

#[allow(dead_code)]
mod common;

use ndarray::{Axis, s};
use ndoptim::accumulate::MultiSteps;
use ndoptim::average::Average;
use ndoptim::{Adam, Optimizer};
use rand::{RngExt, SeedableRng};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = common::Args::parse(
        "Weight averaging (EMA, SWA) and gradient accumulation on the book's MNIST network",
        2000,
        &[
            common::Opt::Out,
            common::Opt::Iterations,
            common::Opt::Mnist,
        ],
    );
    let (train, test) = common::mnist_sets(&args)?;
    let mut rng = rand::rngs::StdRng::seed_from_u64(2);
    let bar = indicatif::ProgressBar::new(args.iterations as u64);

    // Raw weights and their EMA; batch 128 against four micro-batches of 32.
    let mut net = common::book_net(ndoptim::init::Init::He);
    let mut adam = Adam::<f32>::pytorch();
    let mut ema = Average::ema(0.99);
    let mut micro_net = common::book_net(ndoptim::init::Init::He);
    let mut micro = MultiSteps::new(Adam::<f32>::pytorch(), 4);
    let (mut raw_error, mut ema_error) = (Vec::new(), Vec::new());
    let (mut batch_loss, mut micro_loss) = (Vec::new(), Vec::new());
    let mut eval = net.clone();
    for i in 1..=args.iterations {
        let batch: Vec<usize> = (0..128).map(|_| rng.random_range(0..train.len())).collect();
        let x = train.images.select(Axis(0), &batch);
        let t: Vec<u8> = batch.iter().map(|&k| train.labels[k]).collect();

        let (loss, grads) = net.gradient(x.view(), &t);
        adam.update(&mut net.params, &grads)?;
        ema.update(&net.params)?;
        batch_loss.push((i as f64, f64::from(loss)));

        let mut losses = 0.0;
        for part in 0..4 {
            let rows = s![part * 32..(part + 1) * 32, ..];
            let (loss, grads) = micro_net.gradient(x.slice(rows), &t[part * 32..(part + 1) * 32]);
            micro.update(&mut micro_net.params, &grads)?;
            losses += f64::from(loss) / 4.0;
        }
        debug_assert!(micro.stepped());
        micro_loss.push((i as f64, losses));

        if i % 100 == 0 {
            let raw = 100.0 - 100.0 * net.accuracy(test.images.view(), &test.labels);
            eval.params.clone_from(&net.params);
            ema.copy_to(&mut eval.params)?;
            let averaged = 100.0 - 100.0 * eval.accuracy(test.images.view(), &test.labels);
            raw_error.push((i as f64, raw));
            ema_error.push((i as f64, averaged));
            bar.suspend(|| {
                println!(
                    "iteration {i:>5}: test error raw {raw:.2}%, EMA {averaged:.2}%; loss batch 128 {loss:.4}, 4 x 32 {losses:.4}"
                )
            });
        }
        bar.inc(1);
    }
    bar.finish_and_clear();

    let last = |v: &[(f64, f64)]| v.last().map_or(f64::NAN, |p| p.1);
    let figure =
        |name: &str, title: &str, x: &str, y: &str, series: &[(String, Vec<(f64, f64)>)]| {
            let file = args.out.join(name);
            common::plot::lines(&file, title, x, y, series)
                .map(|()| println!("wrote {}", file.display()))
        };
    figure(
        "practice_ema.svg",
        "MNIST, Adam: test error of the weights and of their EMA (decay 0.99)",
        "iterations",
        "test error (%)",
        &[
            (
                format!("raw weights ({:.2}%)", last(&raw_error)),
                raw_error.clone(),
            ),
            (format!("EMA ({:.2}%)", last(&ema_error)), ema_error.clone()),
        ],
    )?;

    // How far apart rounding takes the two runs, over the first steps and over all.
    let gap = |steps: usize| {
        batch_loss
            .iter()
            .zip(&micro_loss)
            .take(steps)
            .map(|(a, b)| (a.1 - b.1).abs())
            .fold(0.0, f64::max)
    };
    let smooth = |v: &[(f64, f64)]| -> Vec<(f64, f64)> {
        let y: Vec<f64> = v.iter().map(|p| p.1).collect();
        common::smooth(&y)
            .into_iter()
            .enumerate()
            .map(|(k, y)| ((k + 1) as f64, y))
            .collect()
    };
    figure(
        "practice_accumulation.svg",
        "MNIST, Adam: batch 128 against MultiSteps, 4 micro-batches of 32 (smoothed)",
        "steps",
        "training loss",
        &[
            ("batch 128".to_string(), smooth(&batch_loss)),
            ("4 x 32, MultiSteps(k = 4)".to_string(), smooth(&micro_loss)),
        ],
    )?;
    println!(
        "after {} iterations: test error raw {:.2}%, EMA {:.2}%; largest loss gap between batch 128 and 4 x 32: {:.1e} over the first 10 steps, {:.1e} over the first 100, {:.1e} over all",
        args.iterations,
        last(&raw_error),
        last(&ema_error),
        gap(10),
        gap(100),
        gap(usize::MAX)
    );
    Ok(())
}
