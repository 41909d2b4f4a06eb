//! The data-parallel optimizer on 2 and 3 ranks, against one process: bit for bit.
//!
//! `cargo test` runs this file's `main`, which relaunches the test binary under
//! `mpirun -n 2` and `mpirun -n 3` (each rank then runs the checks below) when an MPI launcher is
//! on the PATH, and skips with a message when none is; with `NDOPTIM_MPI_REQUIRED` set (CI) a
//! missing launcher fails. Every rank regenerates every rank's seeded gradients and computes the
//! single-process result itself, so results compare with `to_bits` equality.

use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use mpi::traits::*;
use ndarray::{ArrayD, IxDyn, ShapeBuilder};
use ndoptim::clip::{Norm, clip_grad_norm};
use ndoptim::{
    AdaGrad, Adam, AdamW, Adan, Error, Lamb, Lion, Muon, NAdam, Optimizer, Params, RmsProp, Scalar,
    ScheduleFreeAdamW, Sgd,
};
use ndoptim_mpi::{DataParallel, Reduction, ZeroSharded};

const CHILD: &str = "NDOPTIM_MPI_RANK_TEST";
const STEPS: usize = 20;

fn main() -> ExitCode {
    if std::env::var_os(CHILD).is_some() {
        return rank_main();
    }
    let required = std::env::var_os("NDOPTIM_MPI_REQUIRED").is_some();
    let Some(mpirun) = launcher() else {
        if required {
            eprintln!("ranks: no mpirun on the PATH, and NDOPTIM_MPI_REQUIRED is set: FAIL");
            return ExitCode::FAILURE;
        }
        println!(
            "ranks: SKIPPED: no MPI launcher (mpirun) on the PATH; install Open MPI to run them"
        );
        return ExitCode::SUCCESS;
    };
    let exe = std::env::current_exe().expect("the test binary's path");
    for ranks in [2, 3] {
        let started = Instant::now();
        let mut child = Command::new(&mpirun)
            .args(launch_flags())
            .args(["-n", &ranks.to_string()])
            .arg(&exe)
            .env(CHILD, "1")
            .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
            .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
            .spawn()
            .expect("mpirun starts");
        // A hang is a failure, not a stuck CI run.
        let status = loop {
            if let Some(s) = child.try_wait().expect("mpirun runs") {
                break Some(s);
            }
            if started.elapsed() > Duration::from_secs(600) {
                let _ = child.kill();
                break None;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        match status {
            Some(s) if s.success() => println!("ranks: {ranks} ranks PASS"),
            Some(s) => {
                eprintln!("ranks: {ranks} ranks FAIL ({s})");
                return ExitCode::FAILURE;
            }
            None => {
                eprintln!("ranks: {ranks} ranks FAIL (timed out: a hang)");
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}

/// `mpirun` on the PATH.
fn launcher() -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("mpirun"))
        .find(|p| p.is_file())
}

/// Root in a container, more ranks than cores, shared memory between them.
fn launch_flags() -> [&'static str; 5] {
    [
        "--allow-run-as-root",
        "--oversubscribe",
        "--mca",
        "btl",
        "self,vader",
    ]
}

/// Keys of very uneven sizes: a matrix, a vector, a 0-d key, an empty key, and sizes not
/// divisible by the number of ranks, one of them large enough to travel unpacked.
const SHAPES: [(&str, &[usize]); 6] = [
    ("w", &[7, 5]),
    ("b", &[5]),
    ("s", &[]),
    ("e", &[0]),
    ("big", &[1001]),
    // Above the size that skips packing.
    ("huge", &[3, 23_334]),
];

fn params<F: Scalar>() -> Params<F> {
    SHAPES
        .iter()
        .map(|(k, s)| {
            let n: usize = s.iter().product();
            let data = (0..n)
                .map(|i| F::from(((i * 7 + k.len() * 3) % 11) as f64 / 10.0 - 0.5).unwrap())
                .collect();
            (
                k.to_string(),
                ArrayD::from_shape_vec(IxDyn(s), data).unwrap(),
            )
        })
        .collect()
}

/// Rank `rank`'s gradients at `step`: seeded, different on every rank.
fn grads<F: Scalar>(rank: usize, step: usize) -> Params<F> {
    SHAPES
        .iter()
        .map(|(k, s)| {
            let n: usize = s.iter().product();
            let data = (0..n)
                .map(|i| {
                    let x = ((i * 13 + rank * 31 + step * 17 + k.len()) % 29) as f64;
                    F::from((x / 7.0 - 2.0) * (1.0 + rank as f64 * 0.37)).unwrap()
                })
                .collect();
            (
                k.to_string(),
                ArrayD::from_shape_vec(IxDyn(s), data).unwrap(),
            )
        })
        .collect()
}

/// The average one process computes: the ranks' gradients summed in rank order, divided.
fn averaged<F: Scalar>(ranks: usize, step: usize) -> Params<F> {
    let mut sum = grads::<F>(0, step);
    for r in 1..ranks {
        for (k, g) in grads::<F>(r, step) {
            let s = sum.get_mut(&k).unwrap();
            s.zip_mut_with(&g, |a, &b| *a = *a + b);
        }
    }
    let n = F::from(ranks).unwrap();
    sum.values_mut().for_each(|a| a.mapv_inplace(|x| x / n));
    sum
}

fn bits<F: Scalar>(p: &Params<F>) -> Vec<(String, Vec<u64>)> {
    let mut v: Vec<_> = p
        .iter()
        .map(|(k, a)| {
            (
                k.clone(),
                a.iter().map(|x| x.to_f64().unwrap().to_bits()).collect(),
            )
        })
        .collect();
    v.sort();
    v
}

/// An optimizer by name, built fresh.
type Make<F> = (&'static str, fn() -> Box<dyn Optimizer<F>>);

/// A rank's mistake: who makes it, what it does to its gradients, the error every rank returns.
type Case = (usize, Box<dyn Fn(&mut Params<f64>)>, Error);

/// Every optimizer family, built fresh.
fn optimizers<F: Scalar>() -> Vec<Make<F>> {
    vec![
        ("SGD momentum", || {
            Box::new(Sgd::default().momentum(0.9).nesterov(true))
        }),
        ("Adam (book)", || Box::new(Adam::default())),
        ("Adam (PyTorch, amsgrad)", || {
            Box::new(Adam::pytorch().amsgrad(true))
        }),
        ("AdamW", || Box::new(AdamW::default())),
        ("RMSprop", || Box::new(RmsProp::default().momentum(0.5))),
        ("AdaGrad", || Box::new(AdaGrad::default())),
        ("NAdam", || Box::new(NAdam::default())),
        ("Lion", || Box::new(Lion::default())),
        ("Adan", || Box::new(Adan::default())),
        ("LAMB", || Box::new(Lamb::default())),
        ("Muon", || Box::new(Muon::default())),
        ("Schedule-Free AdamW", || {
            Box::new(ScheduleFreeAdamW::default())
        }),
    ]
}

fn check<F: Scalar + mpi::datatype::Equivalence>(
    world: &impl Communicator,
    reduction: Reduction,
) -> usize {
    let ranks = world.size() as usize;
    let rank = world.rank() as usize;
    let mut checks = 0;
    for (name, make) in optimizers::<F>() {
        // Small chunks, so that every key spans several MPI calls.
        let mut dp = DataParallel::new(make(), world, reduction).chunk_elements(64);
        let mut reference = make();
        let (mut p, mut q) = (params::<F>(), params::<F>());
        for step in 0..STEPS {
            let mut g = grads::<F>(rank, step);
            if step % 2 == 1 {
                // Column-major on odd steps: the large key is not a slice, and is copied.
                let huge = g.remove("huge").unwrap();
                let mut fortran = ArrayD::zeros(IxDyn(huge.shape()).f());
                fortran.assign(&huge);
                g.insert("huge".into(), fortran);
            }
            dp.update(&mut p, &g)
                .unwrap_or_else(|e| panic!("{name}: step {step}: {e}"));
            reference
                .update(&mut q, &averaged::<F>(ranks, step))
                .unwrap();
            assert_eq!(
                bits(&p),
                bits(&q),
                "{name} ({}, {reduction:?}, {ranks} ranks): step {step} differs from one process",
                std::any::type_name::<F>()
            );
            checks += 1;
        }
    }
    checks
}

/// The averaged gradients clipped to total L2 norm `max`, over the keys in sorted order.
fn clipped<F: Scalar>(mut g: Params<F>, max: f64) -> Params<F> {
    let mut sorted: Vec<_> = g.iter_mut().collect();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    let mut views: Vec<_> = sorted.into_iter().map(|(_, a)| a.view_mut()).collect();
    clip_grad_norm(&mut views, max, Norm::L2, false).unwrap();
    g
}

/// ZeRO-1 against one process: every family, and global-norm clipping on the whole gradient.
fn sharded<F: Scalar + mpi::datatype::Equivalence>(
    world: &impl Communicator,
    reduction: Reduction,
) -> usize {
    let (rank, ranks) = (world.rank() as usize, world.size() as usize);
    let mut checks = 0;
    for (name, make) in optimizers::<F>() {
        for clip in [None, Some(2.0)] {
            let mut zero = ZeroSharded::new(make(), world, reduction).chunk_elements(50);
            if let Some(c) = clip {
                zero = zero.clip_grad_norm(c);
            }
            let mut reference = make();
            let (mut p, mut q) = (params::<F>(), params::<F>());
            for step in 0..STEPS {
                zero.update(&mut p, &grads::<F>(rank, step))
                    .unwrap_or_else(|e| panic!("{name}: step {step}: {e}"));
                let g = averaged::<F>(ranks, step);
                let g = match clip {
                    Some(c) => clipped(g, c),
                    None => g,
                };
                reference.update(&mut q, &g).unwrap();
                assert_eq!(
                    bits(&p),
                    bits(&q),
                    "ZeRO-1 {name} (clip {clip:?}, {}, {reduction:?}, {ranks} ranks): step {step}",
                    std::any::type_name::<F>()
                );
                checks += 1;
            }
        }
    }
    checks
}

/// The state each rank keeps, consolidation into one process's checkpoint, and resume.
fn sharded_checkpoints(world: &impl Communicator) -> usize {
    let (rank, ranks) = (world.rank() as usize, world.size() as usize);
    let make = || ZeroSharded::new(Adam::<f64>::pytorch(), world, Reduction::Ordered);
    let (mut straight, mut first) = (make(), make());
    let mut single = Adam::<f64>::pytorch();
    let (mut p, mut q, mut s) = (params::<f64>(), params::<f64>(), params::<f64>());
    for step in 0..10 {
        straight.update(&mut p, &grads(rank, step)).unwrap();
        first.update(&mut q, &grads(rank, step)).unwrap();
        single.update(&mut s, &averaged(ranks, step)).unwrap();
    }
    // Memory: each rank holds its share; together, the whole state once.
    let mine = first.state_elements() as u64;
    let mut total = 0u64;
    world.all_reduce_into(&mine, &mut total, mpi::collective::SystemOperation::sum());
    let whole: usize = single
        .checkpoint()
        .keys
        .iter()
        .flat_map(|k| &k.slots)
        .map(|s| s.data.len())
        .sum();
    assert_eq!(
        total as usize, whole,
        "the shares add up to the whole state"
    );
    // Keys are cut inside for an elementwise optimizer: each rank holds 1/N of the state, to
    // within 1% (exactly, but for one element per cut).
    let share = whole as f64 / ranks as f64;
    assert!(
        (mine as f64 - share).abs() <= 0.01 * share,
        "rank {rank} holds {mine} of {whole}"
    );
    if rank == 0 {
        println!("ZeRO-1 state: rank 0 holds {mine} of {whole} elements ({ranks} ranks)");
    }
    // Consolidated on rank 0: the checkpoint one process holds.
    let consolidated = first.consolidate(0).unwrap();
    let file = match consolidated {
        Some(c) => {
            assert_eq!(
                c,
                single.checkpoint(),
                "consolidated = one process's checkpoint"
            );
            c.to_safetensors().unwrap()
        }
        None => Vec::new(),
    };
    // Sent to every rank and loaded as each rank's share: resume is bit-identical.
    let mut len = [file.len() as u64];
    let root = world.process_at_rank(0);
    root.broadcast_into(&mut len[..]);
    let mut bytes = file;
    bytes.resize(len[0] as usize, 0);
    root.broadcast_into(&mut bytes[..]);
    let full = ndoptim::checkpoint::Checkpoint::from_safetensors(&bytes).unwrap();
    let mut resumed = make();
    resumed.restore(full, &q).unwrap();
    for step in 10..STEPS {
        straight.update(&mut p, &grads(rank, step)).unwrap();
        resumed.update(&mut q, &grads(rank, step)).unwrap();
    }
    assert_eq!(
        bits(&p),
        bits(&q),
        "rank {rank}: resumed from the consolidated checkpoint"
    );
    3
}

/// The helper for users who step themselves: the averages, bit for bit, whatever the gradients'
/// memory order, step after step.
fn averages(world: &impl Communicator) -> usize {
    let (rank, ranks) = (world.rank() as usize, world.size() as usize);
    let mut dp = DataParallel::new(Sgd::<f64>::default(), world, Reduction::Ordered);
    let p = params::<f64>();
    for step in 0..4 {
        let mut g = grads::<f64>(rank, step);
        if step % 2 == 0 {
            let huge = g.remove("huge").unwrap();
            let mut fortran = ArrayD::zeros(IxDyn(huge.shape()).f());
            fortran.assign(&huge);
            g.insert("huge".into(), fortran);
        }
        let mean = dp.average_gradients(&p, &g).unwrap();
        assert_eq!(
            bits(mean),
            bits(&averaged::<f64>(ranks, step)),
            "rank {rank}, step {step}"
        );
    }
    4
}

/// ZeRO-1's non-finite policy decides on the whole averaged gradient, the same on every rank; a
/// schedule drives both wrappers as it drives one process's optimizer.
fn policies_and_schedules(world: &impl Communicator) -> usize {
    use ndoptim::NonFinite;
    use ndoptim::schedule::{Scheduler, TorchSchedule};
    let (rank, ranks) = (world.rank() as usize, world.size() as usize);
    // A NaN on the last rank, in a key another rank may own: every rank skips, or refuses.
    let spoiled = |step: usize| {
        let mut g = grads::<f64>(rank, step);
        if rank == ranks - 1 {
            g.get_mut("big").unwrap()[7] = f64::NAN;
        }
        g
    };
    let mut skip = ZeroSharded::new(Adam::<f64>::pytorch(), world, Reduction::Ordered)
        .non_finite(NonFinite::Skip);
    let mut p = params::<f64>();
    skip.update(&mut p, &grads(rank, 0)).unwrap();
    let before = bits(&p);
    skip.update(&mut p, &spoiled(1)).unwrap();
    assert_eq!(
        (bits(&p), skip.skipped_steps()),
        (before.clone(), 1),
        "rank {rank}: skipped"
    );
    let mut refuse = ZeroSharded::new(Adam::<f64>::pytorch(), world, Reduction::Ordered)
        .non_finite(NonFinite::Error);
    refuse.update(&mut p, &grads(rank, 0)).unwrap();
    let before = bits(&p);
    let err = refuse.update(&mut p, &spoiled(1)).unwrap_err();
    assert_eq!(
        err,
        Error::NonFiniteGradient { key: "big".into() },
        "rank {rank}"
    );
    assert_eq!(
        bits(&p),
        before,
        "rank {rank}: refused step changed nothing"
    );
    // A cosine schedule over both wrappers and one process: the same rates, the same bits.
    let schedule = TorchSchedule::CosineAnnealingLR {
        t_max: 10,
        eta_min: 1e-5,
    };
    let mut dp = DataParallel::new(Adam::<f64>::pytorch(), world, Reduction::Ordered);
    let mut zero = ZeroSharded::new(Adam::<f64>::pytorch(), world, Reduction::Ordered);
    let mut single = Adam::<f64>::pytorch();
    let mut schedulers = [
        Scheduler::new(schedule.clone(), &mut dp).unwrap(),
        Scheduler::new(schedule.clone(), &mut zero).unwrap(),
        Scheduler::new(schedule, &mut single).unwrap(),
    ];
    let (mut a, mut b, mut c) = (params::<f64>(), params::<f64>(), params::<f64>());
    for step in 0..12 {
        dp.update(&mut a, &grads(rank, step)).unwrap();
        zero.update(&mut b, &grads(rank, step)).unwrap();
        single.update(&mut c, &averaged(ranks, step)).unwrap();
        schedulers[0].step(&mut dp).unwrap();
        schedulers[1].step(&mut zero).unwrap();
        schedulers[2].step(&mut single).unwrap();
        assert_eq!(
            bits(&a),
            bits(&c),
            "rank {rank}: scheduled DataParallel, step {step}"
        );
        assert_eq!(
            bits(&b),
            bits(&c),
            "rank {rank}: scheduled ZeroSharded, step {step}"
        );
    }
    3
}

fn errors(world: &impl Communicator) -> usize {
    let (rank, ranks) = (world.rank() as usize, world.size() as usize);
    let mut dp =
        DataParallel::new(Adam::<f64>::pytorch(), world, Reduction::Ordered).non_finite_error(true);
    let mut p = params::<f64>();
    dp.update(&mut p, &grads(rank, 0)).unwrap();
    let before = bits(&p);
    let state = dp.inner().checkpoint();
    let last = ranks - 1;
    // Each case: what one rank does wrong, and the error every rank must return.
    let cases: Vec<Case> = vec![
        (
            1,
            Box::new(|g: &mut Params<f64>| {
                g.insert("ghost".into(), ArrayD::zeros(IxDyn(&[2])));
            }),
            Error::UnknownKey {
                key: "ghost".into(),
            },
        ),
        (
            last,
            Box::new(|g: &mut Params<f64>| {
                g.insert("b".into(), ArrayD::zeros(IxDyn(&[4])));
            }),
            Error::ShapeMismatch {
                key: "b".into(),
                param_shape: vec![5],
                grad_shape: vec![4],
            },
        ),
        (
            0,
            Box::new(|g: &mut Params<f64>| {
                g.get_mut("w").unwrap()[[3, 2]] = f64::NAN;
            }),
            Error::NonFiniteGradient { key: "w".into() },
        ),
    ];
    for (culprit, spoil, want) in cases {
        let mut g = grads::<f64>(rank, 1);
        if rank == culprit {
            spoil(&mut g);
        }
        let got = dp
            .update(&mut p, &g)
            .expect_err("a bad gradient on one rank");
        assert_eq!(got, want, "rank {rank}: the error every rank returns");
        assert_eq!(
            bits(&p),
            before,
            "rank {rank}: parameters changed by a failed step"
        );
        assert_eq!(dp.inner().checkpoint(), state, "rank {rank}: state changed");
    }
    // A rank missing a key: the fingerprints differ, the first differing key is named.
    let mut g = grads::<f64>(rank, 1);
    if rank == 1 {
        g.remove("b");
    }
    match dp.update(&mut p, &g) {
        Err(Error::Distributed { rank: 1, reason }) => {
            assert!(reason.contains("\"b\""), "rank {rank}: {reason}")
        }
        other => panic!("rank {rank}: {other:?}"),
    }
    assert_eq!(bits(&p), before);
    // And the next good step goes through everywhere.
    dp.update(&mut p, &grads(rank, 1)).unwrap();
    // ZeRO-1 lays its shards out on the first update: a key added later is refused on every
    // rank, a key left out is not stepped, and nothing else changes.
    let mut zero = ZeroSharded::new(Adam::<f64>::pytorch(), world, Reduction::Ordered);
    let mut p = params::<f64>();
    zero.update(&mut p, &grads(rank, 0)).unwrap();
    let before = bits(&p);
    let mut g = grads::<f64>(rank, 1);
    g.insert("late".into(), ArrayD::zeros(IxDyn(&[3])));
    p.insert("late".into(), ArrayD::zeros(IxDyn(&[3])));
    match zero.update(&mut p, &g) {
        Err(Error::Distributed { reason, .. }) => {
            assert!(reason.contains("\"late\""), "rank {rank}: {reason}")
        }
        other => panic!("rank {rank}: {other:?}"),
    }
    p.remove("late");
    assert_eq!(
        bits(&p),
        before,
        "rank {rank}: a refused layout changed parameters"
    );
    let mut g = grads::<f64>(rank, 1);
    g.remove("w");
    zero.update(&mut p, &g).unwrap();
    let after = bits(&p);
    let w = |b: &Vec<(String, Vec<u64>)>| b.iter().find(|(k, _)| k == "w").cloned();
    assert_eq!(
        w(&after),
        w(&before),
        "rank {rank}: a key without gradient moved"
    );
    assert_ne!(after, before, "rank {rank}: the others moved");
    7
}

/// Schedule-Free behind either wrapper moves to its evaluation point and back through the named
/// way in, as one process does through maps.
fn named_modes(world: &impl Communicator) -> usize {
    let (rank, ranks) = (world.rank() as usize, world.size() as usize);
    let make = || ScheduleFreeAdamW::<f64>::default();
    let wrapped: [Box<dyn Optimizer<f64> + '_>; 2] = [
        Box::new(DataParallel::new(make(), world, Reduction::Ordered)),
        Box::new(ZeroSharded::new(make(), world, Reduction::Ordered)),
    ];
    let mut checks = 0;
    for mut opt in wrapped {
        let mut reference = make();
        let (mut p, mut q) = (params::<f64>(), params::<f64>());
        for step in 0..3 {
            opt.update(&mut p, &grads::<f64>(rank, step)).unwrap();
            reference
                .update(&mut q, &averaged::<f64>(ranks, step))
                .unwrap();
        }
        let zeros: Params<f64> = p
            .iter()
            .map(|(k, a)| (k.clone(), ArrayD::zeros(a.raw_dim())))
            .collect();
        let named = |p: &mut Params<f64>, f: &mut dyn FnMut(&mut [ndoptim::Named<'_, f64>])| {
            let mut items: Vec<_> = p
                .iter_mut()
                .map(|(k, a)| ndoptim::Named::new(k.as_str(), a.view_mut(), zeros[k].view()))
                .collect();
            f(&mut items);
        };
        for eval in [true, false] {
            named(&mut p, &mut |items| {
                if eval {
                    opt.eval_named(items)
                } else {
                    opt.train_named(items)
                }
                .unwrap()
            });
            if eval {
                reference.eval(&mut q)
            } else {
                reference.train(&mut q)
            }
            .unwrap();
            let name = opt.name();
            assert_eq!(bits(&p), bits(&q), "{name}: eval {eval} on {ranks} ranks");
            // In evaluation, updates are refused on every rank.
            let refused = opt.update(&mut p, &grads::<f64>(rank, 3));
            assert_eq!(matches!(refused, Err(Error::EvalMode)), eval, "{name}");
        }
        checks += 2;
    }
    checks
}

fn rank_main() -> ExitCode {
    let universe = mpi::initialize().expect("MPI initialises once");
    let world = universe.world();
    let (rank, ranks) = (world.rank(), world.size());
    let mut checks = 0;
    checks += check::<f64>(&world, Reduction::Ordered);
    checks += check::<f32>(&world, Reduction::Ordered);
    if ranks == 2 {
        // MPI's own sum is exact with two ranks.
        checks += check::<f64>(&world, Reduction::Sum);
        checks += check::<f32>(&world, Reduction::Sum);
    }
    checks += sharded::<f64>(&world, Reduction::Ordered);
    checks += sharded::<f32>(&world, Reduction::Ordered);
    if ranks == 2 {
        checks += sharded::<f32>(&world, Reduction::Sum);
    }
    checks += sharded_checkpoints(&world);
    checks += averages(&world);
    checks += policies_and_schedules(&world);
    checks += errors(&world);
    checks += named_modes(&world);
    println!("rank {rank} of {ranks}: {checks} checks bit-identical to one process");
    ExitCode::SUCCESS
}
