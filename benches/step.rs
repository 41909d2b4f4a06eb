//! One optimizer step, for every optimizer of the crate, against what bounds it:
//!
//! - `probe-rwK`: a plain loop over the same arrays with trivial arithmetic (K arrays read and
//!   written, the gradient read), the memory-bandwidth limit of that access pattern;
//! - `naive-X`: the book's NumPy written with ndarray arithmetic and temporaries, for SGD,
//!   Momentum, AdaGrad and Adam;
//! - `keys`: 1000 keys of 1000 elements against one key of 1e6, the per-key overhead;
//! - `keys-floor`: 1000 keys of 1000 elements against a plain loop over the same kind of arrays.
//!
//! Throughput is the bytes a step moves. Summarise with
//! `cargo run --release --example bench_summary` (see the book's performance chapter).

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{
    BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group, criterion_main,
};
use ndarray::{ArrayD, IxDyn, Zip};
use ndoptim::transform::{self, AddDecayedWeights, ScaleByAdam, ScaleByLearningRate};
use ndoptim::{Adam, Kron, Muon, Named, Optimizer, Params, Scalar, Soap, chain, registry};

/// Runs `f` on this thread alone: the single-thread figures, with or without the `rayon` feature.
fn serial<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(feature = "rayon")]
    return ndoptim::parallel::serial(f);
    #[cfg(not(feature = "rayon"))]
    f()
}

/// The optimizers benchmarked: the crate's registry, each with the number of arrays it reads and
/// writes per element (parameter and state) besides reading the gradient (Adafactor reads more
/// than it writes; its figure counts its passes, see `bytes`), and optax's `adamw` as a chain
/// beside AdamW. Muon is benchmarked on matrices, against PyTorch (`muon_torch.py`).
fn optimizers<F: Scalar>() -> Vec<(&'static str, Box<dyn Optimizer<F>>, usize)> {
    let mut all: Vec<(&'static str, Box<dyn Optimizer<F>>, usize)> = registry::optimizers()
        .into_iter()
        .filter(|r| !r.label.contains("Muon") && !matches!(r.label, "SOAP" | "Kron"))
        .map(|r| (r.label, r.optimizer, r.arrays))
        .collect();
    // optax's adamw as a chain of transforms: the same work as AdamW, in optax's order.
    let at = all
        .iter()
        .position(|o| o.0 == "AdamW")
        .map_or(all.len(), |i| i + 1);
    all.insert(at, ("AdamW-chain", Box::new(adamw_chain()), 3));
    all
}

/// optax's `adamw` built from transforms, with AdamW's defaults.
fn adamw_chain<F: Scalar>() -> impl Optimizer<F> {
    transform::optimizer(chain!(
        ScaleByAdam::default(),
        AddDecayedWeights::new(0.01),
        ScaleByLearningRate,
    ))
}

/// Bytes one step moves: each read-write array twice, the gradient once. Adafactor, on a vector,
/// reads the parameter twice, the gradient three times and its variance twice, and writes the
/// parameter and variance once.
fn bytes<F>(rw: usize, n: usize) -> u64 {
    let streams = if rw == 0 { 9 } else { 2 * rw + 1 };
    (streams * n * std::mem::size_of::<F>()) as u64
}

fn model<F: Scalar>(keys: usize, n: usize) -> (Params<F>, Params<F>) {
    let p = (0..keys)
        .map(|k| {
            (
                format!("w{k}"),
                ArrayD::from_shape_fn(IxDyn(&[n]), |i| {
                    F::from(0.5 + (i[0] % 7) as f64 * 0.1).unwrap()
                }),
            )
        })
        .collect();
    let g = (0..keys)
        .map(|k| {
            (
                format!("w{k}"),
                ArrayD::from_shape_fn(IxDyn(&[n]), |i| {
                    F::from(((i[0] % 11) as f64 - 5.0) * 0.01).unwrap()
                }),
            )
        })
        .collect();
    (p, g)
}

/// The memory probe: `rw` arrays read and written, one read, trivial arithmetic, compiled for
/// the best instruction set the CPU has (as the optimizers' passes are).
fn probe<F: Scalar>(rw: &mut [Vec<F>], g: &[F]) {
    #[cfg(target_arch = "x86_64")]
    if is_x86_feature_detected!("avx512f") {
        // SAFETY: the CPU has AVX-512F (checked above).
        return unsafe { probe_avx512(rw, g) };
    }
    probe_loop(rw, g)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn probe_avx512<F: Scalar>(rw: &mut [Vec<F>], g: &[F]) {
    probe_loop(rw, g)
}

#[inline(always)]
fn probe_loop<F: Scalar>(rw: &mut [Vec<F>], g: &[F]) {
    let c = F::from(0.999).unwrap();
    let n = g.len();
    let step = |x: &mut F, g: F| *x = *x * c + g;
    match rw {
        [p] => p[..n].iter_mut().zip(g).for_each(|(p, &g)| step(p, g)),
        [p, a] => {
            for ((p, a), &g) in p[..n].iter_mut().zip(&mut a[..n]).zip(g) {
                step(p, g);
                step(a, g);
            }
        }
        [p, a, b] => {
            for (((p, a), b), &g) in p[..n].iter_mut().zip(&mut a[..n]).zip(&mut b[..n]).zip(g) {
                step(p, g);
                step(a, g);
                step(b, g);
            }
        }
        [p, a, b, d] => {
            for ((((p, a), b), d), &g) in p[..n]
                .iter_mut()
                .zip(&mut a[..n])
                .zip(&mut b[..n])
                .zip(&mut d[..n])
                .zip(g)
            {
                step(p, g);
                step(a, g);
                step(b, g);
                step(d, g);
            }
        }
        _ => unreachable!("probes cover 1 to 4 read-write arrays"),
    }
}

/// The book's NumPy, translated to ndarray arithmetic with temporaries.
struct Naive<F> {
    name: &'static str,
    state: Vec<ArrayD<F>>,
    t: i32,
}

impl<F: Scalar + ndarray::ScalarOperand + std::ops::SubAssign + std::ops::AddAssign> Naive<F> {
    fn step(&mut self, p: &mut ArrayD<F>, g: &ArrayD<F>) {
        let c = |x: f64| F::from(x).unwrap();
        if self.state.is_empty() {
            self.state = vec![ArrayD::zeros(p.raw_dim()), ArrayD::zeros(p.raw_dim())];
        }
        let [a, b] = &mut self.state[..] else {
            unreachable!()
        };
        match self.name {
            "SGD" => *p -= &(g * c(0.01)),
            "Momentum" => {
                *a = &*a * c(0.9) - g * c(0.01);
                *p += &*a;
            }
            "AdaGrad" => {
                *a += &(g * g);
                *p -= &(g * c(0.01) / (a.mapv(F::sqrt) + c(1e-7)));
            }
            _ => {
                self.t += 1;
                let lr_t =
                    0.001 * (1.0 - 0.999f64.powi(self.t)).sqrt() / (1.0 - 0.9f64.powi(self.t));
                *a += &((g - &*a) * c(0.1));
                *b += &((g * g - &*b) * c(0.001));
                *p -= &(&*a * c(lr_t) / (b.mapv(F::sqrt) + c(1e-7)));
            }
        }
    }
}

fn sizes<F: Scalar + ndarray::ScalarOperand + std::ops::SubAssign + std::ops::AddAssign>(
    c: &mut Criterion,
    dtype: &str,
) {
    for (label, n) in [
        ("1e3", 1_000),
        ("1e5", 100_000),
        ("1e6", 1_000_000),
        ("1e7", 10_000_000),
    ] {
        let mut group = c.benchmark_group(format!("{dtype}-{label}"));
        if n >= 1_000_000 {
            group
                .sample_size(10)
                .measurement_time(Duration::from_secs(2));
        }
        let (p0, g) = model::<F>(1, n);
        for (name, mut opt, rw) in optimizers::<F>() {
            let mut p = p0.clone();
            group.throughput(Throughput::Bytes(bytes::<F>(rw, n)));
            group.bench_function(name, |b| {
                b.iter(|| opt.update(black_box(&mut p), black_box(&g)).unwrap())
            });
        }
        let gv: Vec<F> = g["w0"].iter().copied().collect();
        for rw in 1..=4 {
            let mut arrays = vec![vec![F::zero(); n]; rw];
            group.throughput(Throughput::Bytes(bytes::<F>(rw, n)));
            group.bench_function(format!("probe-rw{rw}"), |b| {
                b.iter(|| probe(black_box(&mut arrays), black_box(&gv)))
            });
        }
        for (name, rw) in [("SGD", 1), ("Momentum", 2), ("AdaGrad", 2), ("Adam", 3)] {
            let mut naive = Naive {
                name,
                state: Vec::new(),
                t: 0,
            };
            let mut p = p0["w0"].clone();
            group.throughput(Throughput::Bytes(bytes::<F>(rw, n)));
            group.bench_function(format!("naive-{name}"), |b| {
                b.iter(|| naive.step(black_box(&mut p), black_box(&g["w0"])))
            });
        }
        group.finish();
    }
}

fn steps(c: &mut Criterion) {
    sizes::<f32>(c, "f32");
    sizes::<f64>(c, "f64");
}

/// 1000 keys of 1000 elements against one key of 1e6: the difference is the per-key overhead.
/// The per-key cost of the second way in against the map's: 1000 keys of 1000 elements held in
/// vectors, as a model that keeps its own arrays would, with the list of views made every step
/// (`rebuilt`) or once (`kept`); the map interface's figure is `keys-f32`.
fn keys_named(c: &mut Criterion) {
    let mut group = c.benchmark_group("keys-named-f32");
    for (keys, n, label) in [(1000, 1000, "1000x1e3"), (1, 1_000_000, "1x1e6")] {
        let (p0, g0) = model::<f32>(keys, n);
        let mut sorted: Vec<_> = p0.into_iter().collect();
        sorted.sort_by(|a, b| a.0.cmp(&b.0));
        let grads: Vec<_> = sorted.iter().map(|(k, _)| g0[k].clone()).collect();
        for (name, mut opt, rw) in optimizers::<f32>()
            .into_iter()
            .filter(|o| ["SGD", "Adam", "AdamW", "Lion"].contains(&o.0))
        {
            let mut params = sorted.clone();
            group.throughput(Throughput::Bytes(bytes::<f32>(rw, keys * n)));
            group.bench_function(BenchmarkId::new(format!("{name}@rebuilt"), label), |b| {
                b.iter(|| {
                    let mut items: Vec<Named<'_, f32>> = params
                        .iter_mut()
                        .zip(&grads)
                        .map(|((k, p), g)| Named::new(k.as_str(), p.view_mut(), g.view()))
                        .collect();
                    opt.update_named(black_box(&mut items)).unwrap()
                })
            });
            let mut items: Vec<Named<'_, f32>> = params
                .iter_mut()
                .zip(&grads)
                .map(|((k, p), g)| Named::new(k.as_str(), p.view_mut(), g.view()))
                .collect();
            group.bench_function(BenchmarkId::new(format!("{name}@kept"), label), |b| {
                b.iter(|| opt.update_named(black_box(&mut items)).unwrap())
            });
        }
    }
    group.finish();
}

fn keys(c: &mut Criterion) {
    let mut group = c.benchmark_group("keys-f32");
    for (keys, n, label) in [(1000, 1000, "1000x1e3"), (1, 1_000_000, "1x1e6")] {
        let (p0, g) = model::<f32>(keys, n);
        for (name, mut opt, rw) in optimizers::<f32>() {
            let mut p = p0.clone();
            group.throughput(Throughput::Bytes(bytes::<f32>(rw, keys * n)));
            group.bench_function(BenchmarkId::new(name, label), |b| {
                b.iter(|| opt.update(black_box(&mut p), black_box(&g)).unwrap())
            });
        }
    }
    group.finish();
}

/// The per-key cost against its floor: 1000 separately allocated arrays of 1000 elements (each
/// parameter next to its gradient, in key order, state after them), stepped by a plain loop in
/// allocation order compiled for the CPU (`floor`), by the map interface (`map`) and by
/// `update_named` over views made once (`named`); `X-above-floor` is the time X takes beyond the
/// floor, measured in alternation with it. Divided by 1000, that is what the engine adds per key.
fn keys_floor(c: &mut Criterion) {
    const KEYS: usize = 1000;
    const N: usize = 1000;
    let mut group = c.benchmark_group("keys-floor-f32");
    let value = |i: usize| 0.5 + (i % 7) as f32 * 0.1;
    let grad = |i: usize| ((i % 11) as f32 - 5.0) * 0.01;
    for (name, rw) in [("SGD", 1), ("Adam", 3)] {
        group.throughput(Throughput::Bytes(bytes::<f32>(rw, KEYS * N)));
        // The floor's arrays, allocated as the model's below.
        let mut arrays: Vec<(Vec<f32>, Vec<f32>)> = (0..KEYS)
            .map(|_| ((0..N).map(value).collect(), (0..N).map(grad).collect()))
            .collect();
        let mut state: Vec<Vec<f32>> = (0..KEYS).map(|_| vec![0.0; (rw - 1) * N]).collect();
        let mut t = 0;
        let mut floor_step = || {
            t += 1;
            floor(name, &mut arrays, &mut state, t);
        };
        group.bench_function(BenchmarkId::new(format!("{name}@floor"), "1000x1e3"), |b| {
            b.iter(&mut floor_step)
        });
        let (mut params, mut grads) = (Params::new(), Params::new());
        let mut keys = Vec::new();
        for k in 0..KEYS {
            let key = format!("w{k}");
            params.insert(
                key.clone(),
                ArrayD::from_shape_fn(IxDyn(&[N]), |i| value(i[0])),
            );
            grads.insert(
                key.clone(),
                ArrayD::from_shape_fn(IxDyn(&[N]), |i| grad(i[0])),
            );
            keys.push(key);
        }
        let mut opt = optimizers::<f32>()
            .into_iter()
            .find(|o| o.0 == name)
            .map(|o| o.1)
            .expect("benchmarked optimizer");
        let mut map_step = || {
            opt.update(black_box(&mut params), black_box(&grads))
                .unwrap()
        };
        group.bench_function(BenchmarkId::new(format!("{name}@map"), "1000x1e3"), |b| {
            b.iter(&mut map_step)
        });
        group.bench_function(
            BenchmarkId::new(format!("{name}@map-above-floor"), "1000x1e3"),
            |b| b.iter_custom(|iters| above(iters, &mut floor_step, &mut map_step)),
        );
        opt.reset();
        let mut by_key: std::collections::HashMap<&String, &mut ArrayD<f32>> =
            params.iter_mut().collect();
        let mut items: Vec<Named<'_, f32>> = keys
            .iter()
            .filter_map(|k| {
                let p = by_key.remove(k)?;
                Some(Named::new(k.as_str(), p.view_mut(), grads[k].view()))
            })
            .collect();
        let mut named_step = || opt.update_named(black_box(&mut items)).unwrap();
        group.bench_function(BenchmarkId::new(format!("{name}@named"), "1000x1e3"), |b| {
            b.iter(&mut named_step)
        });
        group.bench_function(
            BenchmarkId::new(format!("{name}@named-above-floor"), "1000x1e3"),
            |b| b.iter_custom(|iters| above(iters, &mut floor_step, &mut named_step)),
        );
    }
    group.finish();
}

/// How much longer `subject` takes than `floor`, measured in alternation so that both see the
/// same machine (a neighbour on the memory bus moves a separate benchmark's time by more than the
/// difference). Each timed run follows an untimed run of the same kind, so each finds its own
/// arrays where a run of its own leaves them.
fn above(iters: u64, floor: &mut impl FnMut(), subject: &mut impl FnMut()) -> Duration {
    let (mut floor_time, mut subject_time) = (Duration::ZERO, Duration::ZERO);
    for _ in 0..iters {
        floor();
        let start = Instant::now();
        floor();
        floor_time += start.elapsed();
        subject();
        let start = Instant::now();
        subject();
        subject_time += start.elapsed();
    }
    subject_time.saturating_sub(floor_time)
}

/// The floor of a step over separate arrays: SGD or the book's Adam written as a plain loop (as
/// one would in C), in allocation order, compiled for the best instruction set the CPU has.
fn floor(name: &str, arrays: &mut [(Vec<f32>, Vec<f32>)], state: &mut [Vec<f32>], t: i32) {
    #[cfg(target_arch = "x86_64")]
    if is_x86_feature_detected!("avx512f") {
        // SAFETY: the CPU has AVX-512F (checked above).
        return unsafe { floor_avx512(name, arrays, state, t) };
    }
    floor_loop(name, arrays, state, t)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn floor_avx512(
    name: &str,
    arrays: &mut [(Vec<f32>, Vec<f32>)],
    state: &mut [Vec<f32>],
    t: i32,
) {
    floor_loop(name, arrays, state, t)
}

#[inline(always)]
fn floor_loop(name: &str, arrays: &mut [(Vec<f32>, Vec<f32>)], state: &mut [Vec<f32>], t: i32) {
    let (lr, b1, b2, eps) = (1e-3f32, 0.9f32, 0.999f32, 1e-7f32);
    if name == "SGD" {
        let lr = 0.01f32;
        for (p, g) in arrays.iter_mut() {
            let n = p.len();
            for (p, &g) in p.iter_mut().zip(&g[..n]) {
                *p -= lr * g;
            }
        }
        return;
    }
    let t = t.min(10_000);
    let step = lr * (1.0 - b2.powi(t)).sqrt() / (1.0 - b1.powi(t));
    for ((p, g), s) in arrays.iter_mut().zip(state.iter_mut()) {
        // One length for every slice, as a C loop has: without it the loop runs 1.5x slower.
        let n = p.len();
        let (m, v) = s.split_at_mut(n);
        for (((p, &g), m), v) in p.iter_mut().zip(&g[..n]).zip(&mut m[..n]).zip(&mut v[..n]) {
            *m += (1.0 - b1) * (g - *m);
            *v += (1.0 - b2) * (g * g - *v);
            *p -= step * *m / (v.sqrt() + eps);
        }
    }
}

/// The optimizers compared across instruction-set levels.
const LEVELS: [&str; 7] = [
    "SGD",
    "SGD-momentum",
    "AdaGrad",
    "Adam",
    "AdamW",
    "Adadelta",
    "Adafactor",
];

/// The fused passes at each instruction-set level the CPU has, in one build.
fn levels(c: &mut Criterion) {
    use ndoptim::simd::{Level, with_level};
    let mut group = c.benchmark_group("levels-f32");
    for (label, n) in [("1e4", 10_000), ("1e5", 100_000), ("1e6", 1_000_000)] {
        let (p0, g) = model::<f32>(1, n);
        for level in Level::available() {
            for (name, mut opt, rw) in optimizers::<f32>()
                .into_iter()
                .filter(|(n, ..)| LEVELS.contains(n))
            {
                let mut p = p0.clone();
                group.throughput(Throughput::Bytes(bytes::<f32>(rw, n)));
                group.bench_function(BenchmarkId::new(format!("{name}@{level:?}"), label), |b| {
                    b.iter(|| {
                        serial(|| {
                            with_level(level, || {
                                opt.update(black_box(&mut p), black_box(&g)).unwrap()
                            })
                        })
                    })
                });
            }
        }
    }
    group.finish();
}

/// One Muon step on one matrix, square and rectangular from 256 to 4096, and up to 1024² the same
/// Newton–Schulz products written with ndarray's `dot` (allocating each result, as a user would);
/// `muon_torch.py` times `torch.optim.Muon` on the same shapes for the summary. A 4096² step
/// takes seconds: every sample is one step.
fn muon(c: &mut Criterion) {
    let mut group = c.benchmark_group("muon-f32");
    group.sample_size(10).sampling_mode(SamplingMode::Flat);
    for (rows, cols) in MUON_SHAPES {
        let label = format!("{rows}x{cols}");
        let shape = [rows, cols];
        let g = ArrayD::from_shape_fn(IxDyn(&shape), |ix| {
            ((ix[0] * 31 + ix[1] * 17) % 23) as f32 / 23.0 - 0.5
        });
        let mut p = Params::from([("w".to_string(), ArrayD::<f32>::zeros(IxDyn(&shape)))]);
        let grads = Params::from([("w".to_string(), g.clone())]);
        let mut opt = Muon::<f32>::default();
        group.bench_function(BenchmarkId::new("Muon", &label), |b| {
            b.iter(|| opt.update(&mut p, black_box(&grads)).unwrap())
        });
        if rows * cols > 1 << 20 {
            continue;
        }
        let g2 = g.into_shape_with_order((rows, cols)).unwrap();
        group.bench_function(BenchmarkId::new("dot", &label), |b| {
            b.iter(|| {
                let (a, bb, cc) = (3.4445f32, -4.7750f32, 2.0315f32);
                let t = rows > cols;
                let mut x = if t { g2.t().to_owned() } else { g2.clone() };
                let norm = x.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-7);
                x /= norm;
                for _ in 0..5 {
                    let gram = x.dot(&x.t());
                    let poly = &gram * bb + gram.dot(&gram) * cc;
                    x = &x * a + poly.dot(&x);
                }
                black_box(x)
            })
        });
    }
    group.finish();
}

/// One SOAP step and one Kron step (f32, one thread, the defaults) on one matrix, every side
/// preconditioned, on the shapes `preconditioned_torch.py` times the references on. SOAP
/// refreshes its eigenbases every 10 steps: the mean over 10 steps is the figure to compare;
/// Kron updates its preconditioner at every step of its first 500.
fn preconditioned(c: &mut Criterion) {
    let mut group = c.benchmark_group("preconditioned-f32");
    group.sample_size(10).sampling_mode(SamplingMode::Flat);
    let optimizers = || -> [(&str, Box<dyn Optimizer<f32>>); 2] {
        [
            ("SOAP", Box::new(Soap::default())),
            ("Kron", Box::new(Kron::default())),
        ]
    };
    for ((rows, cols), (name, mut opt)) in PRECONDITIONED_SHAPES
        .into_iter()
        .flat_map(|s| optimizers().map(|o| (s, o)))
    {
        let shape = [rows, cols];
        let g = ArrayD::from_shape_fn(IxDyn(&shape), |ix| {
            ((ix[0] * 31 + ix[1] * 17) % 23) as f32 / 23.0 - 0.5
        });
        let mut p = Params::from([("w".to_string(), ArrayD::<f32>::zeros(IxDyn(&shape)))]);
        let grads = Params::from([("w".to_string(), g)]);
        serial(|| opt.update(&mut p, &grads).unwrap()); // state, and SOAP's eigenbases
        group.bench_function(BenchmarkId::new(name, format!("{rows}x{cols}")), |b| {
            b.iter(|| serial(|| opt.update(&mut p, black_box(&grads)).unwrap()))
        });
    }
    group.finish();
}

/// The matrices SOAP (and Kron) are timed on against their references.
const PRECONDITIONED_SHAPES: [(usize, usize); 3] = [(512, 512), (1024, 1024), (4096, 1024)];

/// A square matrix product `C = A·B` (f32, one thread), the kernel of Newton–Schulz and of SOAP's
/// rotations: faer's (ndoptim's) against matrixmultiply's (ndarray's `general_mat_mul`), both
/// writing into a buffer kept between products.
fn gemm(c: &mut Criterion) {
    let mut group = c.benchmark_group("gemm-f32");
    group.sample_size(10).sampling_mode(SamplingMode::Flat);
    for n in [64, 128, 256, 512, 1024, 2048, 4096] {
        let a = ndarray::Array2::from_shape_fn((n, n), |(i, j)| ((i * 31 + j * 17) % 23) as f32);
        let b = ndarray::Array2::from_shape_fn((n, n), |(i, j)| ((i * 7 + j * 13) % 19) as f32);
        let mut out = ndarray::Array2::<f32>::zeros((n, n));
        group.throughput(Throughput::Elements((2 * n * n * n) as u64));
        group.bench_function(BenchmarkId::new("faer", n), |bench| {
            let (lhs, rhs) = (a.as_slice().unwrap(), b.as_slice().unwrap());
            bench.iter(|| {
                let (lhs, rhs) = (
                    faer::MatRef::from_row_major_slice(lhs, n, n),
                    faer::MatRef::from_row_major_slice(rhs, n, n),
                );
                let dst = faer::MatMut::from_row_major_slice_mut(out.as_slice_mut().unwrap(), n, n);
                let (accum, par) = (faer::Accum::Replace, faer::Par::Seq);
                faer::linalg::matmul::matmul(dst, accum, lhs, rhs, 1.0f32, par)
            })
        });
        group.bench_function(BenchmarkId::new("matrixmultiply", n), |bench| {
            bench.iter(|| ndarray::linalg::general_mat_mul(1.0, &a, &b, 0.0, &mut out))
        });
    }
    group.finish();
}

/// The shapes of the `muon-f32` group, which `muon_torch.py` repeats.
const MUON_SHAPES: [(usize, usize); 9] = [
    (256, 256),
    (256, 1024),
    (1024, 256),
    (512, 512),
    (1024, 1024),
    (1024, 4096),
    (4096, 1024),
    (2048, 2048),
    (4096, 4096),
];

fn zip_reference(c: &mut Criterion) {
    // A plain ndarray Zip of Adam, the loop a user would write by hand, for comparison.
    let mut group = c.benchmark_group("zip-f32");
    for (label, n) in [("1e3", 1_000), ("1e5", 100_000), ("1e6", 1_000_000)] {
        let (mut p, g) = (
            ArrayD::<f32>::from_elem(IxDyn(&[n]), 0.5),
            ArrayD::<f32>::from_elem(IxDyn(&[n]), 0.1),
        );
        let (mut m, mut v) = (
            ArrayD::<f32>::zeros(IxDyn(&[n])),
            ArrayD::<f32>::zeros(IxDyn(&[n])),
        );
        group.throughput(Throughput::Bytes(bytes::<f32>(3, n)));
        group.bench_function(BenchmarkId::new("Adam", label), |b| {
            b.iter(|| {
                let (lr, c1, c2, eps) = black_box((1e-3f32, 0.1f32, 1e-3f32, 1e-7f32));
                Zip::from(&mut p)
                    .and(&g)
                    .and(&mut m)
                    .and(&mut v)
                    .for_each(|p, &g, m, v| {
                        *m += c1 * (g - *m);
                        *v += c2 * (g * g - *v);
                        *p -= lr * *m / (v.sqrt() + eps);
                    });
            })
        });
    }
    group.finish();
}

/// The `rayon` feature against the serial path, in the same run: one large key, and many keys.
#[cfg(feature = "rayon")]
fn threads(c: &mut Criterion) {
    let mut group = c.benchmark_group("threads-f32");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(2));
    for (keys, n, label) in [
        (1, 1_000_000, "1x1e6"),
        (1, 10_000_000, "1x1e7"),
        (1000, 1000, "1000x1e3"),
        (100, 100_000, "100x1e5"),
    ] {
        let (p0, g) = model::<f32>(keys, n);
        for (name, mut opt, rw) in optimizers::<f32>()
            .into_iter()
            .filter(|(n, ..)| ["SGD", "AdaGrad", "Adam"].contains(n))
        {
            let mut p = p0.clone();
            group.throughput(Throughput::Bytes(bytes::<f32>(rw, keys * n)));
            group.bench_function(BenchmarkId::new(format!("{name}@serial"), label), |b| {
                b.iter(|| serial(|| opt.update(black_box(&mut p), black_box(&g)).unwrap()))
            });
            group.bench_function(BenchmarkId::new(format!("{name}@rayon"), label), |b| {
                b.iter(|| opt.update(black_box(&mut p), black_box(&g)).unwrap())
            });
        }
    }
    group.finish();
}

#[cfg(not(feature = "rayon"))]
fn threads(_: &mut Criterion) {}

/// Adam at 1e6 and 1e7 elements on f32 parameters against bf16 parameters with f32 state, with
/// bf16 state, and with bf16 state and Kahan's compensation (or stochastic rounding): the bytes a
/// step moves per element are 28, 22, 14 and 18 (14). On one thread (`@serial`), on the rayon
/// pool with the `rayon` feature (`@threads`), and bf16 state at the AVX-512 level without the
/// CPU's bfloat16 conversion (`@Avx512`), for the conversions' share.
#[cfg(feature = "half")]
fn precision(c: &mut Criterion) {
    use half::bf16;
    use ndoptim::simd::{Level, with_level};
    use ndoptim::{Engine, Layout, Mixed, Rounding, Rule, Store};

    type Group<'a> = criterion::BenchmarkGroup<'a, criterion::measurement::WallTime>;

    fn bench<R: Rule<f32>, L: Layout<f32>>(
        group: &mut Group<'_>,
        (name, label, n, bytes): (&str, &str, usize, u64),
        opt: Engine<R, f32, L>,
    ) {
        let (p, g) = model::<f32>(1, n);
        let stored = |m: &Params<f32>| -> Params<L::Param> {
            m.iter()
                .map(|(k, a)| (k.clone(), a.mapv(L::Param::round)))
                .collect()
        };
        let (mut p, g, mut opt) = (stored(&p), stored(&g), opt);
        group.throughput(Throughput::Bytes(bytes * n as u64));
        group.bench_function(BenchmarkId::new(format!("{name}@serial"), label), |b| {
            b.iter(|| serial(|| opt.update(black_box(&mut p), black_box(&g)).unwrap()))
        });
        #[cfg(feature = "rayon")]
        group.bench_function(BenchmarkId::new(format!("{name}@threads"), label), |b| {
            b.iter(|| opt.update(black_box(&mut p), black_box(&g)).unwrap())
        });
        if name == "bf16-state-bf16" && Level::detected() == Level::Avx512Bf16 {
            group.bench_function(BenchmarkId::new(format!("{name}@Avx512"), label), |b| {
                b.iter(|| serial(|| with_level(Level::Avx512, || opt.update(&mut p, &g).unwrap())))
            });
        }
    }

    let mut group = c.benchmark_group("precision-adam");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(2));
    for (label, n) in [("1e6", 1_000_000), ("1e7", 10_000_000)] {
        let adam = Adam::<f32>::pytorch();
        let low = adam.clone().with_layout::<Mixed<bf16, bf16>>();
        bench(&mut group, ("f32", label, n, 28), adam.clone());
        let mixed = adam.with_layout::<Mixed<bf16, f32>>();
        bench(&mut group, ("bf16-state-f32", label, n, 22), mixed);
        bench(&mut group, ("bf16-state-bf16", label, n, 14), low.clone());
        let kahan = low.clone().rounding(Rounding::Kahan);
        bench(&mut group, ("bf16-state-bf16-kahan", label, n, 18), kahan);
        let stochastic = low.rounding(Rounding::Stochastic { seed: 1 });
        bench(
            &mut group,
            ("bf16-state-bf16-stochastic", label, n, 14),
            stochastic,
        );
    }
    group.finish();
}

#[cfg(not(feature = "half"))]
fn precision(_: &mut Criterion) {}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .without_plots()
        .sample_size(30)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_millis(700));
    targets = steps, keys, keys_named, keys_floor, levels, zip_reference, threads, muon, preconditioned, gemm,
        precision
}
criterion_main!(benches);
