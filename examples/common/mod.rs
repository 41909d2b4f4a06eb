//! Code the chapter's experiments share: the book's network, an MNIST loader, SVG plots, and a
//! small command line. Not part of the library.

pub mod mnist;
pub mod net;
pub mod plot;

use std::path::PathBuf;

/// The experiments' command line: `--out DIR` (figures), `--mnist-dir DIR`, `--iterations N`,
/// `--all`.
pub struct Args {
    pub out: PathBuf,
    pub mnist_dir: Option<PathBuf>,
    pub iterations: usize,
    pub all: bool,
}

impl Args {
    pub fn parse(iterations: usize) -> Args {
        let mut args = Args {
            out: PathBuf::from("docs/images"),
            mnist_dir: None,
            iterations,
            all: false,
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
        "options: --out DIR (default docs/images)  --mnist-dir DIR (full MNIST; default: the 10,000 digits in data/)  --iterations N  --all (every optimizer)"
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
