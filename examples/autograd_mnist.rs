//! The `autograd` crate's own MLP (its variables in its own store, on ndarray 0.14) trained on the
//! MNIST subset twice from the same weights on the same batches: once with autograd's Adam, once
//! with ndoptim's `Adam::pytorch()` updating autograd's variables in place through their slices
//! (`update_named`), with no copy. Prints both losses, their largest difference and both test
//! accuracies, and plots both curves.
//!
//! `cargo run --release --example autograd_mnist [-- --iterations N] [-- --mnist-dir DIR]`
//!
//! autograd's Adam puts ε beside the bias-corrected `√v̂`, PyTorch's convention. After the first
//! update the output layer agrees to the last bits (measured: within 1.5e-8); the first layer does
//! not: autograd's `Optimizer::update` evaluates the gradients and its in-place updates in one
//! graph run, and some of the first layer's small gradients (|g| ≤ 1e-5) come out with the other
//! sign from the gradients the same graph gives before any update (which are deterministic:
//! evaluated twice, identical), so those elements move by ±lr the other way. From there the
//! two trajectories drift apart as a chaotic system does.

#[allow(dead_code)]
mod common;

use std::cell::RefMut;

use ag::optimizers::Optimizer as _;
use ag::prelude::*;
use ag::tensor_ops as T;
use ag::variable::VariableID;
use autograd as ag;
use ndarray::Axis;
use ndoptim::{Adam, Named, Optimizer};
use rand::{RngExt, SeedableRng};
use rand_distr::{Distribution, Normal};

type Tensor<'g> = ag::Tensor<'g, f32>;
type AgArray = ag::NdArray<f32>;

const NAMES: [&str; 4] = ["w1", "b1", "w2", "b2"];

/// He-initialised weights of a 784-100-10 MLP, as autograd's (ndarray 0.14) arrays.
fn initial_weights() -> Vec<AgArray> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    let mut he = |rows: usize, cols: usize| {
        let d = Normal::new(0.0f32, (2.0 / rows as f32).sqrt()).expect("a positive deviation");
        let v = (0..rows * cols).map(|_| d.sample(&mut rng)).collect();
        AgArray::from_shape_vec(ag::ndarray::IxDyn(&[rows, cols]), v).expect("rows x cols values")
    };
    let zeros = |n: usize| AgArray::zeros(ag::ndarray::IxDyn(&[1, n]));
    vec![he(784, 100), zeros(100), he(100, 10), zeros(10)]
}

/// The graph: the mean softmax cross-entropy of the batch fed to its placeholders.
struct Graph<'g> {
    loss: Tensor<'g>,
    logits: Tensor<'g>,
    vars: Vec<Tensor<'g>>,
    x: Tensor<'g>,
    y: Tensor<'g>,
}

fn model<'g>(c: &'g ag::Context<f32>, ids: &[VariableID]) -> Graph<'g> {
    let vars: Vec<Tensor<'g>> = ids.iter().map(|&id| c.variable(id)).collect();
    let x = c.placeholder("x", &[-1, 784]);
    let y = c.placeholder("y", &[-1, 1]);
    let h = T::relu(T::matmul(x, vars[0]) + vars[1]);
    let z = T::matmul(h, vars[2]) + vars[3];
    let loss = T::reduce_mean(T::sparse_softmax_cross_entropy(z, y), &[0], false);
    Graph {
        loss,
        logits: z,
        vars,
        x,
        y,
    }
}

/// A batch as autograd's inputs: images and labels (as a column of floats).
fn batch(data: &common::mnist::Mnist, rows: &[usize]) -> (AgArray, AgArray) {
    let x = data.images.select(Axis(0), rows);
    let x = AgArray::from_shape_vec(
        ag::ndarray::IxDyn(&[rows.len(), 784]),
        x.iter().copied().collect(),
    );
    let y: Vec<f32> = rows.iter().map(|&k| f32::from(data.labels[k])).collect();
    let y = AgArray::from_shape_vec(ag::ndarray::IxDyn(&[rows.len(), 1]), y);
    (x.expect("784 pixels a row"), y.expect("a label a row"))
}

/// Test accuracy of an environment's weights.
fn accuracy(
    env: &ag::VariableEnvironment<f32>,
    ids: &[VariableID],
    test: &common::mnist::Mnist,
) -> f64 {
    let all: Vec<usize> = (0..test.len()).collect();
    let (xs, ys) = batch(test, &all);
    env.run(|c| {
        let Graph { logits, x, y, .. } = model(c, ids);
        let hit = T::reduce_mean(T::equal(T::argmax(logits, -1, true), y), &[0, 1], false);
        let out = c
            .evaluator()
            .push(hit)
            .feed(x, xs.view())
            .feed(y, ys.view())
            .run();
        out[0].as_ref().map_or(f64::NAN, |a| {
            f64::from(a.iter().next().copied().unwrap_or(f32::NAN))
        })
    })
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = common::Args::parse(
        "The autograd crate's MLP on MNIST, once with its own Adam and once with ndoptim's updating its variables in place",
        2000,
        &[
            common::Opt::Out,
            common::Opt::Iterations,
            common::Opt::Mnist,
        ],
    );
    let (train, test) = common::mnist_sets(&args)?;
    let (mut theirs, mut ours) = (
        ag::VariableEnvironment::<f32>::new(),
        ag::VariableEnvironment::<f32>::new(),
    );
    let their_ids: Vec<VariableID> = initial_weights()
        .into_iter()
        .map(|w| theirs.set(w))
        .collect();
    let our_ids: Vec<VariableID> = initial_weights().into_iter().map(|w| ours.set(w)).collect();
    let their_adam = ag::optimizers::Adam::default("adam", their_ids.clone(), &mut theirs);
    let mut our_adam = Adam::pytorch();

    let weights = |env: &ag::VariableEnvironment<f32>, ids: &[VariableID]| -> Vec<f32> {
        ids.iter()
            .filter_map(|&id| env.get_array_by_id(id))
            .flat_map(|a| a.borrow().iter().copied().collect::<Vec<_>>())
            .collect()
    };
    // The largest difference between the two runs' weights, relative to max(1, |w|).
    let weight_gap = |theirs: &ag::VariableEnvironment<f32>,
                      ours: &ag::VariableEnvironment<f32>| {
        weights(theirs, &their_ids)
            .iter()
            .zip(weights(ours, &our_ids))
            .fold(0.0f32, |m, (a, b)| m.max((a - b).abs() / a.abs().max(1.0)))
    };
    let mut first_step_gap = 0.0;
    let mut rng = rand::rngs::StdRng::seed_from_u64(2);
    let (mut their_losses, mut our_losses) = (Vec::new(), Vec::new());
    let started = std::time::Instant::now();
    for i in 1..=args.iterations {
        let rows: Vec<usize> = (0..128).map(|_| rng.random_range(0..train.len())).collect();
        let (xb, yb) = batch(&train, &rows);

        // autograd's own Adam, inside its graph.
        let loss = theirs.run(|c| {
            let Graph {
                loss, vars, x, y, ..
            } = model(c, &their_ids);
            let grads = T::grad(&[loss], &vars);
            let value = c
                .evaluator()
                .push(loss)
                .feed(x, xb.view())
                .feed(y, yb.view())
                .run();
            let mut feeder = ag::Feeder::new();
            feeder.push(x, xb.view()).push(y, yb.view());
            their_adam.update(&vars, &grads, c, feeder);
            value
                .into_iter()
                .next()
                .and_then(Result::ok)
                .and_then(|a| a.iter().next().copied())
        });
        their_losses.push(f64::from(loss.ok_or("no loss")?));

        // ndoptim: autograd computes the loss and gradients; ndoptim updates its variables.
        let (loss, grads) = ours.run(|c| {
            let Graph {
                loss, vars, x, y, ..
            } = model(c, &our_ids);
            let grads = T::grad(&[loss], &vars);
            let mut out = c
                .evaluator()
                .push(loss)
                .extend(&grads)
                .feed(x, xb.view())
                .feed(y, yb.view())
                .run()
                .into_iter();
            let loss = out
                .next()
                .and_then(Result::ok)
                .and_then(|a| a.iter().next().copied());
            (loss, out.collect::<Result<Vec<AgArray>, _>>())
        });
        our_losses.push(f64::from(loss.ok_or("no loss")?));
        let grads = grads?;
        let mut cells: Vec<RefMut<'_, AgArray>> = our_ids
            .iter()
            .map(|&id| {
                ours.get_array_by_id(id)
                    .map(|a| a.borrow_mut())
                    .ok_or("no such variable")
            })
            .collect::<Result<_, _>>()?;
        let mut items = Vec::with_capacity(4);
        for ((cell, grad), name) in cells.iter_mut().zip(&grads).zip(NAMES) {
            let shape = cell.shape().to_vec();
            let param = cell
                .as_slice_mut()
                .ok_or("a variable that is not contiguous")?;
            let grad = grad.as_slice().ok_or("a gradient that is not contiguous")?;
            items.push(Named::from_slices(name, shape, param, grad)?);
        }
        our_adam.update_named(&mut items)?;
        drop(items);
        drop(cells);

        if i == 1 {
            first_step_gap = weight_gap(&theirs, &ours);
        }
        if i % 500 == 0 {
            println!(
                "iteration {i:>5}: autograd's Adam {:.6}, ndoptim's Adam {:.6}",
                their_losses[i - 1],
                our_losses[i - 1]
            );
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let (at, gap) = their_losses
        .iter()
        .zip(&our_losses)
        .map(|(a, b)| (a - b).abs())
        .enumerate()
        .fold(
            (0, 0.0f64),
            |m, (i, d)| if d > m.1 { (i + 1, d) } else { m },
        );
    let first_differ = their_losses
        .iter()
        .zip(&our_losses)
        .position(|(a, b)| a != b)
        .map_or(0, |i| i + 1);
    println!(
        "\n{} iterations, both runs, {seconds:.1} s",
        args.iterations
    );
    println!(
        "losses identical through iteration {}; largest difference {gap:.2e} (iteration {at})",
        first_differ.saturating_sub(1)
    );
    println!(
        "largest weight difference (relative): {first_step_gap:.2e} after the first update, {:.2e} at the end",
        weight_gap(&theirs, &ours)
    );
    println!(
        "test accuracy: autograd's Adam {:.2}%, ndoptim's Adam {:.2}%",
        100.0 * accuracy(&theirs, &their_ids, &test),
        100.0 * accuracy(&ours, &our_ids, &test)
    );
    let curve = |l: &[f64]| {
        common::smooth(l)
            .into_iter()
            .enumerate()
            .map(|(k, v)| (k as f64, v))
            .collect::<Vec<_>>()
    };
    let file = args.out.join("autograd_adam_compare.svg");
    common::plot::lines(
        &file,
        "autograd's MLP on MNIST: its Adam and ndoptim's (smoothed loss)",
        "iterations",
        "loss",
        &[
            ("autograd's Adam".to_string(), curve(&their_losses)),
            ("ndoptim's Adam::pytorch()".to_string(), curve(&our_losses)),
        ],
    )?;
    println!("wrote {}", file.display());
    Ok(())
}
