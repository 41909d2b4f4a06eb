//! SOAP beyond the reference files: which sides get a preconditioner, the first step that only
//! builds eigenbases, and what the eigenbases are.

mod common;

use common::params_bits;
use ndarray::{ArrayD, Dimension, IxDyn};
use ndoptim::{Optimizer, Params, Soap};

fn model(step: usize) -> Params<f64> {
    let shapes: [(&str, &[usize]); 4] = [
        ("W", &[4, 3]),
        ("long", &[2, 12]),
        ("b", &[5]),
        ("deep", &[2, 1, 2, 1, 3, 2]),
    ];
    shapes
        .iter()
        .enumerate()
        .map(|(k, (name, s))| {
            let a = ArrayD::from_shape_fn(IxDyn(s), |ix| {
                let i = ix.as_array_view().iter().fold(0, |a, &x| a * 7 + x);
                ((i * 37 + k * 11 + step * 13) % 29) as f64 / 14.0 - 1.0
            });
            (name.to_string(), a)
        })
        .collect()
}

#[test]
fn the_first_step_builds_eigenbases_only_and_long_sides_and_vectors_keep_none() {
    let mut p = model(0);
    let before = params_bits(&p);
    let mut opt = Soap::<f64>::default().max_precond_dim(10);
    opt.update(&mut p, &model(1)).unwrap();
    assert_eq!(params_bits(&p), before, "the first step moves nothing");
    // W: 4² + 3²; long: 2² (its side of 12 is left alone); b: none; deep: every side.
    let len = |k| opt.slot(k, "GG").map(|s| s.len());
    assert_eq!(len("W"), Some(16 + 9));
    assert_eq!(len("long"), Some(4));
    assert_eq!(len("b"), None);
    assert_eq!(len("deep"), Some(4 + 1 + 4 + 1 + 9 + 4));
    // Each eigenbasis is orthogonal, and diagonalises its GG by descending eigenvalue.
    let (gg, q) = (opt.slot("W", "GG").unwrap(), opt.slot("W", "Q").unwrap());
    let (gg, q) = (&gg.as_slice().unwrap()[..16], &q.as_slice().unwrap()[..16]);
    let at = |m: &[f64], i: usize, j: usize| m[i * 4 + j];
    let mut last = f64::INFINITY;
    for a in 0..4 {
        for b in 0..4 {
            let dot: f64 = (0..4).map(|i| at(q, i, a) * at(q, i, b)).sum();
            let rayleigh: f64 = (0..4)
                .flat_map(|i| (0..4).map(move |j| (i, j)))
                .map(|(i, j)| at(q, i, a) * at(gg, i, j) * at(q, j, b))
                .sum();
            let want = if a == b { 1.0 } else { 0.0 };
            assert!((dot - want).abs() < 1e-12, "QᵀQ[{a}, {b}] = {dot}");
            if a == b {
                assert!(rayleigh <= last + 1e-12, "eigenvalues not descending");
                last = rayleigh;
            } else {
                assert!(rayleigh.abs() < 1e-10, "QᵀGGQ[{a}, {b}] = {rayleigh}");
            }
        }
    }
    opt.update(&mut p, &model(2)).unwrap();
    for key in ["W", "long", "b", "deep"] {
        assert_ne!(p[key], model(0)[key], "{key} moves from the second step");
    }
}
