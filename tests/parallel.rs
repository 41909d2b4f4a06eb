//! The `rayon` feature: parallel steps give the serial path's bits.
#![cfg(feature = "rayon")]

#[macro_use]
mod common;

use ndarray::{ArrayD, IxDyn};
use ndoptim::{Params, parallel};

/// Two arrays large enough to be split, and many small keys that go as parallel tasks.
fn model() -> (Params<f32>, Params<f32>) {
    let mut shapes = vec![
        ("big".to_string(), vec![3 << 19]),
        ("matrix".to_string(), vec![1100, 1000]),
    ];
    shapes.extend((0..300).map(|k| (format!("k{k}"), vec![k % 7 + 1, 13])));
    let value = |k: usize, i: usize| ((k * 31 + i * 17) % 101) as f32 / 50.0 - 1.0;
    let p = shapes.iter().enumerate().map(|(k, (key, s))| {
        let n: usize = s.iter().product();
        (
            key.clone(),
            ArrayD::from_shape_vec(IxDyn(s), (0..n).map(|i| value(k, i)).collect()).unwrap(),
        )
    });
    let g = shapes.iter().enumerate().map(|(k, (key, s))| {
        let n: usize = s.iter().product();
        (
            key.clone(),
            ArrayD::from_shape_vec(IxDyn(s), (0..n).map(|i| value(k + 7, i) * 0.1).collect())
                .unwrap(),
        )
    });
    (p.collect(), g.collect())
}

fn bits(p: &Params<f32>) -> Vec<(String, Vec<u32>)> {
    let mut v: Vec<_> = p
        .iter()
        .map(|(k, a)| (k.clone(), a.iter().map(|x| x.to_bits()).collect()))
        .collect();
    v.sort();
    v
}

#[test]
fn parallel_steps_equal_serial_steps_bit_for_bit() {
    let (p0, g) = model();
    let serial_opts = common::all_optimizers::<f32>();
    for (mut par, mut ser) in common::all_optimizers::<f32>().into_iter().zip(serial_opts) {
        let (mut a, mut b) = (p0.clone(), p0.clone());
        for _ in 0..2 {
            par.update(&mut a, &g).unwrap();
            parallel::serial(|| ser.update(&mut b, &g)).unwrap();
        }
        assert!(
            bits(&a) == bits(&b),
            "{}: parallel and serial steps differ",
            par.name()
        );
    }
}
