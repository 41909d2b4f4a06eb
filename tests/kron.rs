//! Kron beyond the reference files: the update schedule, the seeded draws and a source of
//! one's own.

mod common;

use std::sync::Arc;

use common::params_bits;
use ndarray::{ArrayD, IxDyn};
use ndoptim::{Kron, KronDraws, Optimizer, Params, UpdateProbability};

fn model(step: usize) -> Params<f64> {
    let shapes: [(&str, &[usize]); 3] = [("W", &[4, 3]), ("conv", &[2, 3, 2, 2]), ("b", &[3])];
    shapes
        .iter()
        .enumerate()
        .map(|(k, (name, s))| {
            let n: usize = s.iter().product();
            let data = (0..n)
                .map(|i| ((i * 37 + k * 11 + step * 13) % 29) as f64 / 14.0 - 1.0)
                .collect();
            (
                name.to_string(),
                ArrayD::from_shape_vec(IxDyn(s), data).unwrap(),
            )
        })
        .collect()
}

fn q_bits(opt: &Kron<f64>) -> Vec<u64> {
    opt.slot("W", "Q")
        .unwrap()
        .iter()
        .map(|x| x.to_bits())
        .collect()
}

#[test]
fn a_fixed_probability_updates_every_ceil_one_over_p_steps() {
    let mut opt = Kron::<f64>::default().update_probability(UpdateProbability::Fixed(0.3));
    let mut p = model(0);
    opt.update(&mut p, &model(1)).unwrap();
    let mut before = q_bits(&opt);
    for step in 2..=12 {
        opt.update(&mut p, &model(step)).unwrap();
        let now = q_bits(&opt);
        // The counter reaches 4 >= 1/0.3 at steps 4, 8 and 12.
        assert_eq!(now != before, step.is_multiple_of(4), "step {step}");
        before = now;
    }
}

#[test]
fn the_draws_follow_the_seed_and_a_source_of_ones_own_replaces_them() {
    let run = |opt: Kron<f64>| {
        let (mut opt, mut p) = (opt, model(0));
        for step in 1..=5 {
            opt.update(&mut p, &model(step)).unwrap();
        }
        params_bits(&p)
    };
    assert_eq!(run(Kron::default()), run(Kron::default().seed(42)));
    assert_ne!(run(Kron::default()), run(Kron::default().seed(7)));

    /// Draws no generator makes: a constant probe.
    #[derive(Debug, Default)]
    struct Probe;
    impl KronDraws for Probe {
        fn uniform(&self, _: u64) -> f64 {
            0.5
        }
        fn normal(&self, _: u64, _: &str, index: usize) -> f64 {
            if index.is_multiple_of(2) { 1.0 } else { -1.0 }
        }
    }
    let injected = run(Kron::default().draws(Arc::new(Probe)));
    assert_ne!(injected, run(Kron::default()));
    assert_eq!(
        injected,
        run(Kron::default().seed(7).draws(Arc::new(Probe)))
    );
}
