//! Code the chapter's experiments share: the book's network, an MNIST loader, SVG plots, and a
//! small command line. Not part of the library.

#[cfg(feature = "half")]
pub mod low_precision;
pub mod mnist;
pub mod net;
pub mod plot;

use std::path::PathBuf;

/// An option an experiment offers, beside `--help`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opt {
    /// `--out DIR`: where figures go.
    Out,
    /// `--iterations N`.
    Iterations,
    /// `--mnist-dir DIR`: the full MNIST in place of the shipped subset.
    Mnist,
    /// `--all`: every optimizer of the registry.
    All,
    /// `--bf16`: bf16 weights in each rounding mode, over three seeds.
    Bf16,
    /// `--ema DECAY` and `--accumulate K`.
    Practice,
    /// `--paths FILE`: the paths as JSON.
    Paths,
}

/// The experiments' command line (lexopt), each experiment offering the options it names.
#[derive(Debug)]
pub struct Args {
    pub out: PathBuf,
    pub mnist_dir: Option<PathBuf>,
    pub iterations: usize,
    pub all: bool,
    pub ema: Option<f64>,
    pub accumulate: usize,
    /// Compare f32 weights with bf16 weights in each rounding mode, over three seeds.
    pub bf16: bool,
    pub paths: Option<PathBuf>,
}

impl Args {
    /// Parses the command line of an experiment described by `about`, which runs `iterations`
    /// by default and offers `opts`; prints the help and exits on `--help` or a bad argument.
    pub fn parse(about: &str, iterations: usize, opts: &[Opt]) -> Args {
        let mut args = Args {
            out: PathBuf::from("book/src/images"),
            mnist_dir: None,
            iterations,
            all: false,
            ema: None,
            accumulate: 1,
            bf16: false,
            paths: None,
        };
        let help = help(about, iterations, opts);
        if let Err(e) = args.read(opts, &help) {
            eprintln!("error: {e}\n\n{help}");
            std::process::exit(2);
        }
        if opts.contains(&Opt::Out)
            && let Err(e) = std::fs::create_dir_all(&args.out)
        {
            eprintln!("error: cannot create {}: {e}", args.out.display());
            std::process::exit(2);
        }
        args
    }

    fn read(&mut self, opts: &[Opt], help: &str) -> Result<(), lexopt::Error> {
        use lexopt::prelude::*;
        let mut parser = lexopt::Parser::from_env();
        let has = |o| opts.contains(&o);
        while let Some(arg) = parser.next()? {
            match arg {
                Short('h') | Long("help") => {
                    println!("{help}");
                    std::process::exit(0);
                }
                Long("out") if has(Opt::Out) => self.out = parser.value()?.into(),
                Long("iterations") if has(Opt::Iterations) => {
                    self.iterations = parser.value()?.parse()?
                }
                Long("mnist-dir") if has(Opt::Mnist) => {
                    self.mnist_dir = Some(parser.value()?.into())
                }
                Long("all") if has(Opt::All) => self.all = true,
                Long("bf16") if has(Opt::Bf16) => self.bf16 = true,
                Long("ema") if has(Opt::Practice) => {
                    let decay: f64 = parser.value()?.parse()?;
                    if !(0.0..=1.0).contains(&decay) {
                        return Err(format!("--ema needs a decay in [0, 1], not {decay}").into());
                    }
                    self.ema = Some(decay);
                }
                Long("accumulate") if has(Opt::Practice) => {
                    let k: usize = parser.value()?.parse()?;
                    if k == 0 || 128 % k != 0 {
                        return Err(format!("--accumulate needs a divisor of 128, not {k}").into());
                    }
                    self.accumulate = k;
                }
                Long("paths") if has(Opt::Paths) => self.paths = Some(parser.value()?.into()),
                _ => return Err(arg.unexpected()),
            }
        }
        Ok(())
    }
}

fn help(about: &str, iterations: usize, opts: &[Opt]) -> String {
    let mut lines = vec![about.to_string(), String::new(), "options:".to_string()];
    for o in opts {
        lines.push(match o {
            Opt::Out => "  --out DIR          where figures go (default book/src/images)".into(),
            Opt::Iterations => format!("  --iterations N     iterations to run (default {iterations})"),
            Opt::Mnist => {
                "  --mnist-dir DIR    the full MNIST's four files (default: the 10,000 digits in data/)"
                    .into()
            }
            Opt::All => "  --all              every optimizer of the registry".into(),
            Opt::Bf16 => {
                "  --bf16             also bf16 weights in each rounding mode, 3 seeds (needs --features half)"
                    .into()
            }
            Opt::Practice => "  --ema DECAY        also evaluate an EMA of the weights\n  --accumulate K     each batch as K micro-batches through MultiSteps".into(),
            Opt::Paths => "  --paths FILE       also write the paths as JSON".into(),
        });
    }
    lines.push("  -h, --help         this help".into());
    lines.join("\n")
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
