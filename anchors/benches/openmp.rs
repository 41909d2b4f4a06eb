//! Adam's step, f32, at 1e5, 1e6 and 1e7 elements, in one criterion run: ndoptim on one thread
//! beside the C loop, and ndoptim with the `rayon` feature beside C with OpenMP on every core.
//! Both sides step the same kind of arrays (one key; parameter, gradient and two moments), the
//! C loop compiled with `gcc -O3 -march=native`.
//!
//! `cargo bench -p ndoptim-anchors`; summarise the ratios with
//! `cargo run --release --example bench_summary` from the repository's root.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ndarray::{ArrayD, IxDyn};
use ndoptim::{Adam, Optimizer, Params};
use ndoptim_anchors::adam_f32;

fn gradient(i: usize) -> f32 {
    ((i % 11) as f32 - 5.0) * 0.01
}

fn adam(c: &mut Criterion) {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    for (label, n) in [("1e5", 100_000), ("1e6", 1_000_000), ("1e7", 10_000_000)] {
        let mut group = c.benchmark_group(format!("adam-f32-{label}"));
        // Parameter and two moments read and written, the gradient read.
        group.throughput(Throughput::Bytes((7 * n * size_of::<f32>()) as u64));
        if n >= 10_000_000 {
            group.sample_size(20);
        }
        let g: Vec<f32> = (0..n).map(gradient).collect();
        let (mut p, mut m, mut v) = (vec![0.5f32; n], vec![0f32; n], vec![0f32; n]);
        let mut t = 0;
        for threads in [1, threads] {
            let name = if threads == 1 {
                "c-1-thread".to_string()
            } else {
                format!("c-openmp-{threads}")
            };
            group.bench_function(name, |b| {
                b.iter(|| {
                    t += 1;
                    adam_f32(black_box(&mut p), &g, &mut m, &mut v, t, threads)
                })
            });
        }
        drop((p, m, v));
        let key = |a: Vec<f32>| {
            Params::from([(
                "w".to_string(),
                ArrayD::from_shape_vec(IxDyn(&[n]), a).unwrap(),
            )])
        };
        let grads = key(g);
        let mut params = key(vec![0.5f32; n]);
        let mut opt = Adam::<f32>::pytorch();
        group.bench_function("ndoptim-1-thread", |b| {
            b.iter(|| {
                ndoptim::parallel::serial(|| opt.update(black_box(&mut params), &grads).unwrap())
            })
        });
        let mut opt = Adam::<f32>::pytorch();
        group.bench_function(format!("ndoptim-rayon-{threads}"), |b| {
            b.iter(|| opt.update(black_box(&mut params), &grads).unwrap())
        });
        group.finish();
    }
}

criterion_group!(benches, adam);
criterion_main!(benches);
