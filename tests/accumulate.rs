//! Gradient accumulation: stepping every `k` calls and nothing in between, the micro-batch
//! guard, errors that change nothing, and resuming from checkpoints. The reference trajectory
//! (`optax_multisteps_*`) is replayed by the conformance test.

mod common;

use ndarray::{ArrayD, IxDyn};
use ndoptim::accumulate::MultiSteps;
use ndoptim::{Adam, Error, NonFinite, Optimizer, Params, Sgd};

const SHAPES: [(&str, &[usize]); 3] = [("W1", &[3, 4]), ("b1", &[4]), ("s", &[])];

fn grads(step: usize) -> Params<f64> {
    common::small_model::<f64>(&SHAPES, step).1
}

#[test]
fn steps_every_k_calls_with_the_sum_or_the_mean_and_nothing_in_between() {
    let (p0, _) = common::small_model::<f64>(&SHAPES, 0);
    // The sum of two micro-batches is exactly one gradient of their sum.
    let mut acc = MultiSteps::new(Sgd::default().lr(0.1), 2).use_grad_mean(false);
    let mut direct = Sgd::<f64>::default().lr(0.1);
    let (mut p, mut q) = (p0.clone(), p0.clone());
    for window in 0..3 {
        let (g1, g2) = (grads(2 * window), grads(2 * window + 1));
        acc.update(&mut p, &g1).unwrap();
        assert!(!acc.stepped());
        assert_eq!(acc.pending(), 1);
        assert_eq!(
            common::params_bits(&p),
            common::params_bits(&q),
            "moved between steps"
        );
        acc.update(&mut p, &g2).unwrap();
        assert!(acc.stepped());
        let sum: Params<f64> = g1.iter().map(|(k, a)| (k.clone(), a + &g2[k])).collect();
        direct.update(&mut q, &sum).unwrap();
        assert_eq!(common::params_bits(&p), common::params_bits(&q));
    }
    // The mean: one step with the running mean of three.
    let mut acc = MultiSteps::new(Sgd::default().lr(0.1), 3);
    let mut p = p0.clone();
    for step in 0..3 {
        acc.update(&mut p, &grads(step)).unwrap();
    }
    let mut q = p0.clone();
    let mean: Params<f64> = grads(0)
        .keys()
        .map(|k| {
            let (a, b, c) = (&grads(0)[k], &grads(1)[k], &grads(2)[k]);
            let m1 = a.clone();
            let m2 = &m1 + &((b - &m1) / 2.0);
            let m3 = &m2 + &((c - &m2) / 3.0);
            (k.clone(), m3)
        })
        .collect();
    Sgd::default().lr(0.1).update(&mut q, &mean).unwrap();
    assert_eq!(common::params_bits(&p), common::params_bits(&q));
}

#[test]
fn a_non_finite_micro_batch_is_dropped_or_refused() {
    let (mut p, _) = common::small_model::<f64>(&SHAPES, 0);
    let mut bad = grads(1);
    bad.get_mut("b1").unwrap()[[2]] = f64::NAN;
    let mut skip = MultiSteps::new(Adam::pytorch(), 2).non_finite(NonFinite::Skip);
    skip.update(&mut p, &grads(0)).unwrap();
    let before = common::params_bits(&p);
    skip.update(&mut p, &bad).unwrap();
    assert!(!skip.stepped());
    assert_eq!((skip.pending(), skip.skipped_micro_batches()), (1, 1));
    assert_eq!(common::params_bits(&p), before);
    skip.update(&mut p, &grads(2)).unwrap();
    assert!(skip.stepped());

    let mut refuse = MultiSteps::new(Adam::pytorch(), 2).non_finite(NonFinite::Error);
    refuse.update(&mut p, &grads(0)).unwrap();
    assert!(matches!(
        refuse.update(&mut p, &bad),
        Err(Error::NonFiniteGradient { key }) if key == "b1"
    ));
    assert_eq!(refuse.pending(), 1);
}

#[test]
fn an_error_changes_nothing_on_any_call_of_a_window() {
    for k in 1..=3 {
        let (mut p, _) = common::small_model::<f64>(&SHAPES, 0);
        let mut opt = MultiSteps::new(Adam::pytorch(), 3);
        for step in 0..k - 1 {
            opt.update(&mut p, &grads(step)).unwrap();
        }
        let before = (
            common::params_bits(&p),
            opt.checkpoint(),
            opt.inner().checkpoint(),
        );
        let mut wrong = grads(9);
        wrong.insert("b1".into(), ArrayD::zeros(IxDyn(&[5])));
        assert!(matches!(
            opt.update(&mut p, &wrong),
            Err(Error::ShapeMismatch { .. })
        ));
        let mut unknown = grads(9);
        unknown.insert("nope".into(), ArrayD::zeros(IxDyn(&[1])));
        assert!(matches!(
            opt.update(&mut p, &unknown),
            Err(Error::UnknownKey { key }) if key == "nope"
        ));
        let after = (
            common::params_bits(&p),
            opt.checkpoint(),
            opt.inner().checkpoint(),
        );
        assert!(before == after, "call {k} of the window changed something");
    }
}

#[test]
fn accumulation_wraps_a_boxed_optimizer_and_resumes_bit_identically() {
    let (p0, _) = common::small_model::<f64>(&SHAPES, 0);
    // Eleven calls straight.
    let mut straight = MultiSteps::new(Adam::<f64>::pytorch(), 3);
    let mut p = p0.clone();
    for step in 0..11 {
        straight.update(&mut p, &grads(step)).unwrap();
    }
    // Five, a checkpoint of the accumulators and of the inner optimizer, six more.
    let mut first = MultiSteps::new(Adam::<f64>::pytorch(), 3);
    let mut q = p0.clone();
    for step in 0..5 {
        first.update(&mut q, &grads(step)).unwrap();
    }
    let mut resumed = MultiSteps::new(Adam::<f64>::pytorch(), 3);
    resumed.restore(first.checkpoint()).unwrap();
    resumed
        .inner_mut()
        .restore(first.inner().checkpoint())
        .unwrap();
    assert_eq!(resumed.pending(), 2);
    for step in 5..11 {
        resumed.update(&mut q, &grads(step)).unwrap();
    }
    assert_eq!(common::params_bits(&p), common::params_bits(&q));

    // The same through a boxed optimizer.
    let boxed: Box<dyn Optimizer<f64>> = Box::new(Adam::<f64>::pytorch());
    let mut dynamic = MultiSteps::new(boxed, 3);
    let mut r = p0.clone();
    for step in 0..11 {
        dynamic.update(&mut r, &grads(step)).unwrap();
    }
    assert_eq!(common::params_bits(&p), common::params_bits(&r));
}
