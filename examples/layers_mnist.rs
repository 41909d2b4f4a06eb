//! A model that keeps its weights in struct fields, `Array2` and `Array1`, trained on the MNIST
//! subset with ndoptim's Adam through `update_named`: no `HashMap` anywhere, no copy.
//!
//! `cargo run --release --example layers_mnist [-- --iterations N] [-- --mnist-dir DIR]`
//!
//! The network is 784-100-10 (ReLU, softmax cross-entropy), He-initialised, mini-batches of 128.

#[allow(dead_code)]
mod common;

use ndarray::{Array1, Array2, ArrayView2, Axis};
use ndoptim::{Adam, Named, Optimizer};
use rand::SeedableRng;
use rand_distr::{Distribution, Normal};

/// A fully connected layer: its parameters and their gradients, as fields.
struct Dense {
    w: Array2<f32>,
    b: Array1<f32>,
    dw: Array2<f32>,
    db: Array1<f32>,
}

impl Dense {
    fn new(inputs: usize, outputs: usize, rng: &mut impl rand::Rng) -> Dense {
        let he = Normal::new(0.0, (2.0 / inputs as f32).sqrt()).expect("a positive deviation");
        Dense {
            w: Array2::from_shape_fn((inputs, outputs), |_| he.sample(rng)),
            b: Array1::zeros(outputs),
            dw: Array2::zeros((inputs, outputs)),
            db: Array1::zeros(outputs),
        }
    }

    fn forward(&self, x: ArrayView2<'_, f32>) -> Array2<f32> {
        x.dot(&self.w) + &self.b
    }

    /// Stores the gradients for input `x` and output gradient `dy`; returns the input gradient.
    fn backward(&mut self, x: ArrayView2<'_, f32>, dy: &Array2<f32>) -> Array2<f32> {
        self.dw = x.t().dot(dy);
        self.db = dy.sum_axis(Axis(0));
        dy.dot(&self.w.t())
    }

    /// The layer's parameters by name, for the optimizer.
    fn named<'a>(&'a mut self, w: &'a str, b: &'a str) -> [Named<'a, f32>; 2] {
        [
            Named::new(w, self.w.view_mut(), self.dw.view()),
            Named::new(b, self.b.view_mut(), self.db.view()),
        ]
    }
}

struct Mlp {
    hidden: Dense,
    output: Dense,
}

impl Mlp {
    /// Softmax cross-entropy of the batch and, with `train`, every gradient.
    fn loss(&mut self, x: ArrayView2<'_, f32>, labels: &[u8], train: bool) -> (f32, Array2<f32>) {
        let h = self.hidden.forward(x).mapv(|v| v.max(0.0));
        let z = self.output.forward(h.view());
        let mut p = z.clone();
        for mut row in p.rows_mut() {
            let max = row.fold(f32::NEG_INFINITY, |m, &v| m.max(v));
            row.mapv_inplace(|v| (v - max).exp());
            let sum = row.sum();
            row /= sum;
        }
        let n = labels.len() as f32;
        let loss = -labels
            .iter()
            .enumerate()
            .map(|(i, &t)| (p[[i, t as usize]] + 1e-7).ln())
            .sum::<f32>()
            / n;
        if train {
            let mut dz = p.clone();
            for (i, &t) in labels.iter().enumerate() {
                dz[[i, t as usize]] -= 1.0;
            }
            dz /= n;
            let dh = self.output.backward(h.view(), &dz);
            let dh = dh * &h.mapv(|v| if v > 0.0 { 1.0 } else { 0.0 });
            self.hidden.backward(x, &dh);
        }
        (loss, z)
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = common::Args::parse(
        "A network whose layers keep Array2/Array1 fields, trained on MNIST with Adam through update_named",
        2000,
        &[common::Opt::Iterations, common::Opt::Mnist],
    );
    let (train, test) = common::mnist_sets(&args)?;
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    let mut model = Mlp {
        hidden: Dense::new(784, 100, &mut rng),
        output: Dense::new(100, 10, &mut rng),
    };
    let mut adam = Adam::pytorch();
    let mut batches = rand::rngs::StdRng::seed_from_u64(2);
    let started = std::time::Instant::now();
    let mut losses = Vec::with_capacity(args.iterations);
    for i in 1..=args.iterations {
        let batch: Vec<usize> = (0..128)
            .map(|_| rand::RngExt::random_range(&mut batches, 0..train.len()))
            .collect();
        let x = train.images.select(Axis(0), &batch);
        let t: Vec<u8> = batch.iter().map(|&k| train.labels[k]).collect();
        let (loss, _) = model.loss(x.view(), &t, true);
        losses.push(f64::from(loss));
        // The layers lend their fields to the optimizer: four views, one call.
        let Mlp { hidden, output } = &mut model;
        let [w1, b1] = hidden.named("hidden.w", "hidden.b");
        let [w2, b2] = output.named("output.w", "output.b");
        adam.update_named(&mut [w1, b1, w2, b2])?;
        if i % 500 == 0 {
            let tail = &losses[losses.len() - 100..];
            println!(
                "iteration {i:>5}: loss {:.4} (mean of the last 100)",
                tail.iter().sum::<f64>() / 100.0
            );
        }
    }
    let (_, z) = model.loss(test.images.view(), &test.labels, false);
    let correct = z
        .rows()
        .into_iter()
        .zip(&test.labels)
        .filter(|(row, t)| {
            row.iter()
                .enumerate()
                .max_by(|a, b| a.1.total_cmp(b.1))
                .map(|m| m.0)
                == Some(**t as usize)
        })
        .count();
    println!(
        "{} iterations in {:.1} s; test accuracy {:.2}% ({} of {}); Adam state for {:?}",
        args.iterations,
        started.elapsed().as_secs_f64(),
        100.0 * correct as f64 / test.len() as f64,
        correct,
        test.len(),
        {
            let mut k: Vec<_> = adam.state_keys().collect();
            k.sort();
            k
        }
    );
    Ok(())
}
