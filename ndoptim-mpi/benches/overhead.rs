//! One data-parallel step at 1e6 and 1e7 parameters on 2 ranks, against MPI's raw all-reduce of
//! the same buffer and against one process's step.
//!
//! `cargo bench -p ndoptim-mpi --bench overhead` relaunches itself under `mpirun -n 2` (as the
//! tests do) and prints a table from rank 0: medians of 9 runs, each after a barrier; the raw
//! all-reduce and the average alternate, 31 runs each, as do the `DataParallel` and the ZeRO-1
//! steps (on keys of 71%, 20% and 9% of the parameters).

use std::process::{Command, ExitCode};
use std::time::Instant;

use mpi::collective::SystemOperation;
use mpi::traits::*;
use ndarray::{ArrayD, IxDyn};
use ndoptim::{Adam, Optimizer, Params};
use ndoptim_mpi::{DataParallel, Reduction, ZeroSharded};

const CHILD: &str = "NDOPTIM_MPI_BENCH";
const RUNS: usize = 9;
/// Runs of each side of a paired comparison.
const PAIRED: usize = 31;

fn main() -> ExitCode {
    if std::env::var_os(CHILD).is_some() {
        return rank_main();
    }
    let exe = std::env::current_exe().expect("the benchmark's path");
    let status = Command::new("mpirun")
        .args([
            "--allow-run-as-root",
            "--oversubscribe",
            "--mca",
            "btl",
            "self,vader",
        ])
        .args(["-n", "2"])
        .arg(exe)
        .env(CHILD, "1")
        .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
        .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
        .status();
    match status {
        Ok(s) if s.success() => ExitCode::SUCCESS,
        Ok(s) => {
            eprintln!("overhead: mpirun failed ({s})");
            ExitCode::FAILURE
        }
        Err(e) => {
            println!("overhead: SKIPPED: no MPI launcher ({e})");
            ExitCode::SUCCESS
        }
    }
}

/// The median times of `f` and `g` over [`PAIRED`] runs of each, alternated (so that drift of
/// the machine touches both alike), each run started together on every rank.
fn paired(world: &impl Communicator, mut f: impl FnMut(), mut g: impl FnMut()) -> (f64, f64) {
    f();
    g();
    let time = |h: &mut dyn FnMut()| {
        world.barrier();
        let t = Instant::now();
        h();
        t.elapsed().as_secs_f64() * 1e3
    };
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for _ in 0..PAIRED {
        a.push(time(&mut f));
        b.push(time(&mut g));
    }
    let mid = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    (mid(a), mid(b))
}

/// The median time of `f` over [`RUNS`] runs, each started together on every rank.
fn median(world: &impl Communicator, mut f: impl FnMut()) -> f64 {
    f(); // warm: state and buffers exist
    let mut times: Vec<f64> = (0..RUNS)
        .map(|_| {
            world.barrier();
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[RUNS / 2]
}

/// Keys of `n · share` elements for each share, about `n` in all.
fn model(shares: &[f64], n: usize, rank: usize) -> (Params<f32>, Params<f32>) {
    let make = |scale: f32| -> Params<f32> {
        (shares.iter().enumerate())
            .map(|(k, &share)| {
                let len = (n as f64 * share) as usize;
                let a = ArrayD::from_shape_fn(IxDyn(&[len]), |i| {
                    scale * (((i[0] * 7 + k + rank) % 13) as f32 / 13.0 - 0.5)
                });
                (format!("w{k}"), a)
            })
            .collect()
    };
    (make(1.0), make(0.01))
}

fn rank_main() -> ExitCode {
    let universe = mpi::initialize().expect("MPI initialises once");
    let world = universe.world();
    let rank = world.rank() as usize;
    if rank == 0 {
        println!(
            "| parameters | raw MPI_Allreduce | DataParallel average (Sum) | overhead | average (Ordered) | DataParallel Adam step | one-process Adam step | ZeRO-1 Adam step | ZeRO-1 / DataParallel | rank 0's state |"
        );
        println!("|---|---|---|---|---|---|---|---|---|---|");
    }
    for (label, n) in [("1e6", 1_000_000), ("1e7", 10_000_000)] {
        let buffer = vec![0.5f32; n];
        let mut out = vec![0f32; n];
        let (p, g) = model(&[1.0], n, rank);
        let mut dp = DataParallel::new(Adam::<f32>::pytorch(), &world, Reduction::Sum);
        let (raw, average) = paired(
            &world,
            || world.all_reduce_into(&buffer[..], &mut out[..], SystemOperation::sum()),
            || {
                dp.average_gradients(&p, &g).unwrap();
            },
        );
        let mut ordered = DataParallel::new(Adam::<f32>::pytorch(), &world, Reduction::Ordered);
        let (p, g) = model(&[1.0], n, rank);
        let average_ordered = median(&world, || {
            ordered.average_gradients(&p, &g).unwrap();
        });
        let mut single = Adam::<f32>::pytorch();
        let (mut p, g) = model(&[1.0], n, rank);
        let alone = median(&world, || single.update(&mut p, &g).unwrap());
        // Uneven keys, as in the book's network (one matrix holds most parameters): ZeRO-1's
        // blocks are cut inside keys.
        let shares = [0.71, 0.2, 0.09];
        let mut zero = ZeroSharded::new(Adam::<f32>::pytorch(), &world, Reduction::Sum);
        let (mut p, g) = model(&shares, n, rank);
        let (mut p2, g2) = model(&shares, n, rank);
        let (step, sharded) = paired(
            &world,
            || dp.update(&mut p, &g).unwrap(),
            || zero.update(&mut p2, &g2).unwrap(),
        );
        let held = zero.state_elements() as f64 / (2 * n) as f64;
        if rank == 0 {
            println!(
                "| {label} | {raw:.3} ms | {average:.3} ms | {:+.1}% | {average_ordered:.2} ms | {step:.2} ms | {alone:.2} ms | {sharded:.2} ms | {:.2} | {:.1}% |",
                100.0 * (average / raw - 1.0),
                sharded / step,
                100.0 * held
            );
        }
    }
    ExitCode::SUCCESS
}
