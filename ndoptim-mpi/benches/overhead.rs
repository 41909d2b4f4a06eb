//! One data-parallel step at 1e6 and 1e7 parameters on 2 ranks, against MPI's raw all-reduce of
//! the same buffer and against one process's step.
//!
//! `cargo bench -p ndoptim-mpi --bench overhead` relaunches itself under `mpirun -n 2` (as the
//! tests do) and prints a table from rank 0: medians of 9 runs, each after a barrier; the raw
//! all-reduce and the average alternate, 31 runs each.

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

fn model(keys: usize, n: usize, rank: usize) -> (Params<f32>, Params<f32>) {
    let per = n / keys;
    let make = |scale: f32| -> Params<f32> {
        (0..keys)
            .map(|k| {
                let a = ArrayD::from_shape_fn(IxDyn(&[per]), |i| {
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
            "| parameters | raw MPI_Allreduce | DataParallel average (Sum) | overhead | average (Ordered) | DataParallel Adam step | one-process Adam step | ZeRO-1 Adam step (2 keys) |"
        );
        println!("|---|---|---|---|---|---|---|---|");
    }
    for (label, n) in [("1e6", 1_000_000), ("1e7", 10_000_000)] {
        let buffer = vec![0.5f32; n];
        let mut out = vec![0f32; n];
        let (p, g) = model(1, n, rank);
        let mut dp = DataParallel::new(Adam::<f32>::pytorch(), &world, Reduction::Sum);
        let (raw, average) = paired(
            &world,
            || world.all_reduce_into(&buffer[..], &mut out[..], SystemOperation::sum()),
            || {
                dp.average_gradients(&p, &g).unwrap();
            },
        );
        let mut ordered = DataParallel::new(Adam::<f32>::pytorch(), &world, Reduction::Ordered);
        let (p, g) = model(1, n, rank);
        let average_ordered = median(&world, || {
            ordered.average_gradients(&p, &g).unwrap();
        });
        let (mut p, g) = model(1, n, rank);
        let step = median(&world, || dp.update(&mut p, &g).unwrap());
        let mut single = Adam::<f32>::pytorch();
        let (mut p, g) = model(1, n, rank);
        let alone = median(&world, || single.update(&mut p, &g).unwrap());
        let mut zero = ZeroSharded::new(Adam::<f32>::pytorch(), &world, Reduction::Sum);
        let (mut p, g) = model(2, n, rank);
        let sharded = median(&world, || zero.update(&mut p, &g).unwrap());
        if rank == 0 {
            println!(
                "| {label} | {raw:.3} ms | {average:.3} ms | {:+.1}% | {average_ordered:.2} ms | {step:.2} ms | {alone:.2} ms | {sharded:.2} ms |",
                100.0 * (average / raw - 1.0)
            );
        }
    }
    ExitCode::SUCCESS
}
