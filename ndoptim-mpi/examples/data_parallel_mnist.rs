//! The book's MNIST network (784-100-100-100-100-10, ReLU, He initialisation, Adam, batches of
//! 128) trained data-parallel: every rank computes the gradient of its share of each batch
//! (half of it on 2 ranks), `DataParallel` averages them and every rank steps. Rank 0 also trains
//! the same network in one process (the shares' gradients computed one after the other and
//! averaged in rank order) and compares the two loss curves and final weights bit for bit.
//!
//! ```sh
//! cargo build --release -p ndoptim-mpi --example data_parallel_mnist
//! mpirun -n 2 target/release/examples/data_parallel_mnist [--iterations N] [--sum]
//! ```
//!
//! (As root in a container add `--allow-run-as-root --oversubscribe --mca btl self,vader`.)
//! `--sum` uses MPI's own all-reduce instead of the ordered sum: exact with 2 ranks only.

#[allow(dead_code)]
#[path = "../../examples/common/mnist.rs"]
mod mnist;
#[allow(dead_code)]
#[path = "../../examples/common/net.rs"]
mod net;

use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use mpi::traits::*;
use ndarray::{Axis, s};
use ndoptim::init::Init;
use ndoptim::{Adam, Optimizer, Params};
use ndoptim_mpi::{DataParallel, Reduction, ZeroSharded};
use rand::{RngExt, SeedableRng};

const BATCH: usize = 128;

fn main() -> ExitCode {
    let universe = mpi::initialize().expect("MPI initialises once");
    let world = universe.world();
    let (rank, ranks) = (world.rank() as usize, world.size() as usize);
    let mut iterations = 1000;
    let mut reduction = Reduction::Ordered;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--iterations" => iterations = args.next().and_then(|n| n.parse().ok()).unwrap_or(1000),
            "--sum" => reduction = Reduction::Sum,
            other => {
                eprintln!("unknown argument {other}: [--iterations N] [--sum]");
                return ExitCode::FAILURE;
            }
        }
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/mnist-10k");
    let (train, test) = match mnist::load(&dir, 2000) {
        Ok(sets) => sets,
        Err(e) => {
            eprintln!("rank {rank}: MNIST: {e}");
            return ExitCode::FAILURE;
        }
    };
    let new_net = || {
        net::Net::<f32>::new(
            &[784, 100, 100, 100, 100, 10],
            net::Activation::Relu,
            Init::He,
            &mut rand::rngs::StdRng::seed_from_u64(1),
        )
    };
    // The ranks' shares of a batch: consecutive rows, as even as 128 allows.
    let share = |r: usize| r * BATCH / ranks..(r + 1) * BATCH / ranks;
    let mut distributed = new_net();
    let mut opt = DataParallel::new(Adam::<f32>::default(), &world, reduction);
    // Rank 0's single-process run of the same computation.
    let mut alone = new_net();
    let mut single = Adam::<f32>::default();
    let mut rng = rand::rngs::StdRng::seed_from_u64(2);
    let (mut same, mut seconds_distributed, mut seconds_alone) = (true, 0.0, 0.0);
    let mut losses = Vec::with_capacity(iterations);
    if rank == 0 {
        println!(
            "MNIST: {} training and {} test images; {ranks} ranks, each on {} rows of every batch of {BATCH}; {reduction:?} reduction",
            train.len(),
            test.len(),
            share(0).len()
        );
    }
    for i in 1..=iterations {
        // Every rank draws the same batch.
        let batch: Vec<usize> = (0..BATCH)
            .map(|_| rng.random_range(0..train.len()))
            .collect();
        let x = train.images.select(Axis(0), &batch);
        let t: Vec<u8> = batch.iter().map(|&k| train.labels[k]).collect();

        let started = Instant::now();
        let mine = share(rank);
        let (loss, grads) = distributed.gradient(x.slice(s![mine.clone(), ..]), &t[mine]);
        if let Err(e) = opt.update(&mut distributed.params, &grads) {
            eprintln!("rank {rank}: {e}");
            return ExitCode::FAILURE;
        }
        // The batch's loss: the shares' losses, summed in rank order.
        let mut all = vec![0f32; ranks];
        world.all_gather_into(&loss, &mut all[..]);
        let batch_loss = all.iter().fold(0.0, |s, &l| s + l) / ranks as f32;
        seconds_distributed += started.elapsed().as_secs_f64();
        losses.push(batch_loss);

        if rank == 0 {
            let started = Instant::now();
            let mut sum: Option<Params<f32>> = None;
            let mut loss_sum = 0.0f32;
            for r in 0..ranks {
                let part = share(r);
                let (l, g) = alone.gradient(x.slice(s![part.clone(), ..]), &t[part]);
                loss_sum += l;
                sum = Some(match sum {
                    None => g,
                    Some(mut s) => {
                        for (k, a) in s.iter_mut() {
                            a.zip_mut_with(&g[k], |a, &b| *a += b);
                        }
                        s
                    }
                });
            }
            let mut mean = sum.expect("at least one rank");
            mean.values_mut()
                .for_each(|a| a.mapv_inplace(|v| v / ranks as f32));
            single
                .update(&mut alone.params, &mean)
                .expect("the same keys");
            seconds_alone += started.elapsed().as_secs_f64();
            let alone_loss = loss_sum / ranks as f32;
            if alone_loss.to_bits() != batch_loss.to_bits() && same {
                println!(
                    "iteration {i}: loss {batch_loss} data-parallel, {alone_loss} alone: the curves part"
                );
                same = false;
            }
            if i % 100 == 0 {
                println!("iteration {i:>5}: loss {batch_loss:.6} (one process: {alone_loss:.6})");
            }
        }
    }
    // ZeRO-1 on the same network: the share of Adam's state each rank keeps.
    let mut zero = ZeroSharded::new(Adam::<f32>::default(), &world, reduction);
    let mine = share(rank);
    let x = train.images.slice(s![0..BATCH, ..]);
    let (_, grads) = distributed.gradient(x.slice(s![mine.clone(), ..]), &train.labels[mine]);
    let mut copy = distributed.params.clone();
    if let Err(e) = zero.update(&mut copy, &grads) {
        eprintln!("rank {rank}: {e}");
        return ExitCode::FAILURE;
    }
    let held = zero.state_elements() as u64;
    let mut per_rank = vec![0u64; ranks];
    world.all_gather_into(&held, &mut per_rank[..]);
    if rank == 0 {
        let whole: u64 = per_rank.iter().sum();
        let shares: Vec<String> = per_rank
            .iter()
            .map(|&h| format!("{h} ({:.0}%)", 100.0 * h as f64 / whole as f64))
            .collect();
        println!(
            "ZeRO-1: Adam's state is {whole} elements in one process; the ranks hold {}",
            shares.join(", ")
        );
    }
    if rank == 0 {
        let weights_same = distributed.params.iter().all(|(k, a)| {
            a.iter()
                .zip(&alone.params[k])
                .all(|(x, y)| x.to_bits() == y.to_bits())
        });
        let accuracy = 100.0 * distributed.accuracy(test.images.view(), &test.labels);
        println!(
            "after {iterations} iterations: test accuracy {accuracy:.2}%, final loss {:.6}",
            losses.last().copied().unwrap_or(f32::NAN)
        );
        println!(
            "loss curve {} the single-process curve bit for bit, final weights {}",
            if same { "reproduces" } else { "DIFFERS FROM" },
            if weights_same {
                "identical"
            } else {
                "DIFFERENT"
            }
        );
        println!(
            "time per iteration: {:.2} ms data-parallel on {ranks} ranks (gradient of a share, average, step), {:.2} ms for the same work in one process",
            1e3 * seconds_distributed / iterations as f64,
            1e3 * seconds_alone / iterations as f64
        );
        if reduction == Reduction::Ordered && !(same && weights_same) {
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}
