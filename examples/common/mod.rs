//! Code the chapter's experiments share: the book's network, an MNIST loader, SVG plots, and a
//! small command line. Not part of the library.

#[cfg(feature = "half")]
pub mod low_precision;
pub mod mnist;
pub mod net;
pub mod plot;

use std::path::PathBuf;

/// The experiments' command line: `--out DIR` (figures), `--mnist-dir DIR`, `--iterations N`,
/// `--all`, `--ema DECAY` (also evaluate an EMA of the weights), `--accumulate K` (each batch as
/// `K` micro-batches through `MultiSteps`).
pub struct Args {
    pub out: PathBuf,
    pub mnist_dir: Option<PathBuf>,
    pub iterations: usize,
    pub all: bool,
    pub ema: Option<f64>,
    pub accumulate: usize,
    /// Compare f32 weights with bf16 weights in each rounding mode, over three seeds.
    pub bf16: bool,
}

impl Args {
    pub fn parse(iterations: usize) -> Args {
        let mut args = Args {
            out: PathBuf::from("docs/images"),
            mnist_dir: None,
            iterations,
            all: false,
            ema: None,
            accumulate: 1,
            bf16: false,
        };
        let mut it = std::env::args().skip(1);
        while let Some(a) = it.next() {
            match a.as_str() {
                "--out" => {
                    args.out = it
                        .next()
                        .map(PathBuf::from)
                        .unwrap_or_else(|| usage("--out needs a folder"))
                }
                "--mnist-dir" => {
                    args.mnist_dir = Some(
                        it.next()
                            .map(PathBuf::from)
                            .unwrap_or_else(|| usage("--mnist-dir needs a folder")),
                    )
                }
                "--iterations" => {
                    args.iterations = it
                        .next()
                        .and_then(|n| n.parse().ok())
                        .unwrap_or_else(|| usage("--iterations needs a number"))
                }
                "--all" => args.all = true,
                "--bf16" => args.bf16 = true,
                "--ema" => {
                    args.ema = Some(
                        it.next()
                            .and_then(|d| d.parse().ok())
                            .filter(|d| (0.0..=1.0).contains(d))
                            .unwrap_or_else(|| usage("--ema needs a decay in [0, 1]")),
                    )
                }
                "--accumulate" => {
                    args.accumulate = it
                        .next()
                        .and_then(|k| k.parse().ok())
                        .filter(|k| 128 % k == 0)
                        .unwrap_or_else(|| usage("--accumulate needs a divisor of 128"))
                }
                "-h" | "--help" => usage(""),
                other => usage(&format!("unknown argument {other}")),
            }
        }
        if let Err(e) = std::fs::create_dir_all(&args.out) {
            usage(&format!("cannot create {}: {e}", args.out.display()));
        }
        args
    }
}

fn usage(problem: &str) -> ! {
    if !problem.is_empty() {
        eprintln!("error: {problem}");
    }
    eprintln!(
        "options: --out DIR (default docs/images)  --mnist-dir DIR (full MNIST; default: the 10,000 digits in data/)  --iterations N  --all (every optimizer)  --ema DECAY  --accumulate K  --bf16 (bf16 weights, each rounding, 3 seeds; needs --features half)"
    );
    std::process::exit(if problem.is_empty() { 0 } else { 2 })
}

/// The book's `smooth_curve`: a Kaiser window (β = 2, 11 points) slid over the curve.
pub fn smooth(y: &[f64]) -> Vec<f64> {
    let (n, beta) = (11usize, 2.0f64);
    let i0 = |x: f64| {
        (1..30)
            .fold((1.0, 1.0), |(sum, term), k| {
                let t = term * (x / 2.0).powi(2) / (k * k) as f64;
                (sum + t, t)
            })
            .0
    };
    let w: Vec<f64> = (0..n)
        .map(|k| {
            i0(beta * (1.0 - (2.0 * k as f64 / (n - 1) as f64 - 1.0).powi(2)).sqrt()) / i0(beta)
        })
        .collect();
    let total: f64 = w.iter().sum();
    if y.len() < n {
        return y.to_vec();
    }
    (0..=y.len() - n)
        .map(|s| y[s..s + n].iter().zip(&w).map(|(a, b)| a * b).sum::<f64>() / total)
        .collect()
}

/// One network trained with one optimizer, and its loss at every iteration.
pub struct Run {
    pub name: String,
    pub net: net::Net<f32>,
    pub opt: Box<dyn ndoptim::Optimizer<f32>>,
    pub losses: Vec<f64>,
    /// An average of the weights, evaluated beside them.
    pub ema: Option<ndoptim::average::Average<f32>>,
    /// Micro-batches per batch (the optimizer then wrapped in `MultiSteps`).
    pub micro: usize,
    /// The step size `d` after each iteration, for optimizers that learn one (Prodigy).
    pub d: Vec<f64>,
    /// Seconds this run has spent after each iteration (gradients and updates, not the others'
    /// runs or the batch draws).
    pub seconds: Vec<f64>,
}

/// One run per optimizer, named by it, each with the book's network from the same He-initialised
/// weights.
pub fn runs(optimizers: Vec<Box<dyn ndoptim::Optimizer<f32>>>, iterations: usize) -> Vec<Run> {
    runs_seeded(optimizers, iterations, 1)
}

/// [`runs`] with the weights drawn from `seed`.
pub fn runs_seeded(
    optimizers: Vec<Box<dyn ndoptim::Optimizer<f32>>>,
    iterations: usize,
    seed: u64,
) -> Vec<Run> {
    optimizers
        .into_iter()
        .map(|opt| Run {
            name: opt.name().to_string(),
            net: book_net_seeded(ndoptim::init::Init::He, seed),
            opt,
            losses: Vec::with_capacity(iterations),
            ema: None,
            micro: 1,
            d: Vec::new(),
            seconds: Vec::with_capacity(iterations),
        })
        .collect()
}

/// Applies `--ema` and `--accumulate` to every run.
pub fn practice(runs: &mut [Run], args: &Args) {
    for run in runs {
        run.ema = args.ema.map(ndoptim::average::Average::ema);
        if args.accumulate > 1 {
            let inner = std::mem::replace(&mut run.opt, Box::new(ndoptim::Sgd::default()));
            run.opt = Box::new(ndoptim::accumulate::MultiSteps::new(
                inner,
                args.accumulate as u64,
            ));
            run.micro = args.accumulate;
        }
    }
}

/// Trains every run on the same mini-batches of 128 from `data` for `iterations`, printing the
/// losses every 100 iterations under a progress bar; returns the seconds it took.
pub fn train(
    runs: &mut [Run],
    data: &mnist::Mnist,
    iterations: usize,
) -> Result<f64, Box<dyn std::error::Error>> {
    train_seeded(runs, data, iterations, 2)
}

/// [`train`] with the mini-batches drawn from `seed`.
pub fn train_seeded(
    runs: &mut [Run],
    data: &mnist::Mnist,
    iterations: usize,
    seed: u64,
) -> Result<f64, Box<dyn std::error::Error>> {
    use rand::{RngExt, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let started = std::time::Instant::now();
    let bar = indicatif::ProgressBar::new(iterations as u64).with_style(
        indicatif::ProgressStyle::with_template(
            "{bar:40} {pos}/{len} iterations, {elapsed} elapsed, {eta} left",
        )?,
    );
    for i in 1..=iterations {
        let batch: Vec<usize> = (0..128).map(|_| rng.random_range(0..data.len())).collect();
        let x = data.images.select(ndarray::Axis(0), &batch);
        let t: Vec<u8> = batch.iter().map(|&k| data.labels[k]).collect();
        for run in runs.iter_mut() {
            let clock = std::time::Instant::now();
            let size = 128 / run.micro;
            let mut loss = 0.0;
            for part in 0..run.micro {
                let rows = ndarray::s![part * size..(part + 1) * size, ..];
                let labels = &t[part * size..(part + 1) * size];
                let (l, grads) = run.net.gradient(x.slice(rows), labels);
                run.opt.update(&mut run.net.params, &grads)?;
                loss += f64::from(l) / run.micro as f64;
            }
            if let Some(ema) = &mut run.ema {
                ema.update(&run.net.params)?;
            }
            run.losses.push(loss);
            run.d.extend(run.opt.global("d"));
            let before = run.seconds.last().copied().unwrap_or(0.0);
            run.seconds.push(before + clock.elapsed().as_secs_f64());
        }
        if i % 100 == 0 {
            let line: Vec<String> = runs
                .iter()
                .map(|r| format!("{} {:.4}", r.name, r.losses[i - 1]))
                .collect();
            bar.suspend(|| println!("iteration {i:>5}: {}", line.join("  ")));
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(started.elapsed().as_secs_f64())
}

/// Prints each run's final loss (mean of the last 100 mini-batches) and test accuracy, and
/// returns the accuracies. The network is evaluated where its optimizer says (`eval`: the
/// average `x` for Schedule-Free, the parameters themselves for every other optimizer).
pub fn report(runs: &mut [Run], test: &mnist::Mnist) -> Result<Vec<f64>, ndoptim::Error> {
    println!("{:<18} {:>12} {:>14}", "run", "final loss", "test accuracy");
    let mut accuracies = Vec::with_capacity(runs.len());
    for r in runs {
        let tail = &r.losses[r.losses.len().saturating_sub(100)..];
        let mean = tail.iter().sum::<f64>() / tail.len().max(1) as f64;
        r.opt.eval(&mut r.net.params)?;
        let accuracy = 100.0 * r.net.accuracy(test.images.view(), &test.labels);
        let ema = match &r.ema {
            Some(ema) => {
                let mut averaged = r.net.clone();
                ema.copy_to(&mut averaged.params)?;
                let a = 100.0 * averaged.accuracy(test.images.view(), &test.labels);
                format!("  (EMA of the weights: {a:.2}%)")
            }
            None => String::new(),
        };
        r.opt.train(&mut r.net.params)?;
        println!("{:<18} {mean:>12.4} {accuracy:>13.2}%{ema}", r.name);
        accuracies.push(accuracy);
    }
    println!("(final loss: mean of the last 100 mini-batches)");
    Ok(accuracies)
}

/// The smoothed loss curves of the runs, as an SVG.
pub fn plot_losses(runs: &[Run], path: &std::path::Path, title: &str) -> plot::PlotResult {
    let series: Vec<(String, Vec<(f64, f64)>)> = runs
        .iter()
        .map(|r| {
            (
                r.name.clone(),
                smooth(&r.losses)
                    .into_iter()
                    .enumerate()
                    .map(|(k, v)| (k as f64, v))
                    .collect(),
            )
        })
        .collect();
    plot::lines(path, title, "iterations", "loss", &series)?;
    println!("wrote {}", path.display());
    Ok(())
}

/// [`plot_losses`] against each run's own time instead of iterations.
pub fn plot_losses_by_time(runs: &[Run], path: &std::path::Path, title: &str) -> plot::PlotResult {
    let series: Vec<(String, Vec<(f64, f64)>)> = runs
        .iter()
        .map(|r| {
            let losses = smooth(&r.losses);
            (
                r.name.clone(),
                r.seconds.iter().copied().zip(losses).collect(),
            )
        })
        .collect();
    plot::lines(path, title, "seconds", "loss", &series)?;
    println!("wrote {}", path.display());
    Ok(())
}

/// The MNIST training and test sets the command line asks for (the shipped 10,000 digits by
/// default: 8,000 to train, 2,000 to test).
pub fn mnist_sets(args: &Args) -> Result<(mnist::Mnist, mnist::Mnist), mnist::MnistError> {
    let dir = args.mnist_dir.clone().unwrap_or_else(mnist::shipped_dir);
    let (train, test) = mnist::load(&dir, 2000)?;
    println!(
        "MNIST from {}: {} training and {} test images",
        dir.display(),
        train.len(),
        test.len()
    );
    Ok((train, test))
}

/// The book's 5-layer ReLU network for MNIST (784-100-100-100-100-10), weights from `init`,
/// the same draw for every run (seed 1).
pub fn book_net(init: ndoptim::init::Init) -> net::Net<f32> {
    book_net_seeded(init, 1)
}

/// [`book_net`] with the weights drawn from `seed`.
pub fn book_net_seeded(init: ndoptim::init::Init, seed: u64) -> net::Net<f32> {
    use rand::SeedableRng;
    net::Net::new(
        &[784, 100, 100, 100, 100, 10],
        net::Activation::Relu,
        init,
        &mut rand::rngs::StdRng::seed_from_u64(seed),
    )
}
