//! Lookahead: the sync and its `reset_state`, errors that change nothing, and resuming from
//! checkpoints. The reference trajectory (`optax_lookahead_*`) is replayed by the conformance
//! test, slow weights included.

mod common;

use ndarray::{ArrayD, IxDyn};
use ndoptim::lookahead::Lookahead;
use ndoptim::{Adam, Error, Optimizer, Params};

const SHAPES: [(&str, &[usize]); 3] = [("W1", &[3, 4]), ("b1", &[4]), ("s", &[])];

fn grads(step: usize) -> Params<f64> {
    common::small_model::<f64>(&SHAPES, step).1
}

#[test]
fn reset_state_starts_the_inner_optimizer_afresh_after_each_sync() {
    let (mut p, _) = common::small_model::<f64>(&SHAPES, 0);
    let mut opt = Lookahead::new(Adam::<f64>::pytorch(), 3, 0.5).reset_state(true);
    for step in 0..3 {
        opt.update(&mut p, &grads(step)).unwrap();
    }
    assert_eq!(opt.steps_since_sync(), 0);
    assert_eq!(
        opt.inner().step_count("W1"),
        None,
        "state kept past the sync"
    );
    // The next step is a fresh Adam's first from the synced weights.
    let mut fresh = Adam::<f64>::pytorch();
    let mut q = p.clone();
    opt.update(&mut p, &grads(3)).unwrap();
    fresh.update(&mut q, &grads(3)).unwrap();
    assert_eq!(common::params_bits(&p), common::params_bits(&q));

    // Without it, the inner state runs on.
    let (mut p, _) = common::small_model::<f64>(&SHAPES, 0);
    let mut opt = Lookahead::new(Adam::<f64>::pytorch(), 3, 0.5);
    for step in 0..4 {
        opt.update(&mut p, &grads(step)).unwrap();
    }
    assert_eq!(opt.inner().step_count("W1"), Some(4));
}

#[test]
fn an_error_changes_nothing_and_makes_no_slow_weights() {
    let (mut p, _) = common::small_model::<f64>(&SHAPES, 0);
    let mut opt = Lookahead::new(Adam::<f64>::pytorch(), 2, 0.5);
    let mut unknown = grads(0);
    unknown.insert("nope".into(), ArrayD::zeros(IxDyn(&[1])));
    let before = common::params_bits(&p);
    assert!(matches!(
        opt.update(&mut p, &unknown),
        Err(Error::UnknownKey { key }) if key == "nope"
    ));
    assert!(
        opt.checkpoint().keys.is_empty(),
        "slow weights of a failed step"
    );
    assert_eq!(common::params_bits(&p), before);

    opt.update(&mut p, &grads(0)).unwrap();
    let state = (
        common::params_bits(&p),
        opt.checkpoint(),
        opt.inner().checkpoint(),
    );
    let mut wrong = grads(1);
    wrong.insert("b1".into(), ArrayD::zeros(IxDyn(&[5])));
    assert!(opt.update(&mut p, &wrong).is_err());
    let mut moved = p.clone();
    moved.insert("b1".into(), ArrayD::zeros(IxDyn(&[5])));
    assert!(matches!(
        opt.update(&mut moved, &grads(1)),
        Err(Error::StateShapeMismatch { .. } | Error::ShapeMismatch { .. })
    ));
    assert!(opt.copy_slow_to(&mut moved).is_err());
    let after = (
        common::params_bits(&p),
        opt.checkpoint(),
        opt.inner().checkpoint(),
    );
    assert!(state == after, "an error changed something");
}

#[test]
fn lookahead_wraps_a_boxed_optimizer_and_resumes_bit_identically() {
    let (p0, _) = common::small_model::<f64>(&SHAPES, 0);
    let mut straight = Lookahead::new(Adam::<f64>::pytorch(), 4, 0.5);
    let mut p = p0.clone();
    for step in 0..11 {
        straight.update(&mut p, &grads(step)).unwrap();
    }
    let mut first = Lookahead::new(Adam::<f64>::pytorch(), 4, 0.5);
    let mut q = p0.clone();
    for step in 0..6 {
        first.update(&mut q, &grads(step)).unwrap();
    }
    let mut resumed = Lookahead::new(Adam::<f64>::pytorch(), 4, 0.5);
    resumed.restore(first.checkpoint()).unwrap();
    resumed
        .inner_mut()
        .restore(first.inner().checkpoint())
        .unwrap();
    assert_eq!(resumed.steps_since_sync(), 2);
    for step in 6..11 {
        resumed.update(&mut q, &grads(step)).unwrap();
    }
    assert_eq!(common::params_bits(&p), common::params_bits(&q));
    let (mut a, mut b) = (p0.clone(), p0.clone());
    straight.copy_slow_to(&mut a).unwrap();
    resumed.copy_slow_to(&mut b).unwrap();
    assert_eq!(common::params_bits(&a), common::params_bits(&b));

    let boxed: Box<dyn Optimizer<f64>> = Box::new(Adam::<f64>::pytorch());
    let mut dynamic = Lookahead::new(boxed, 4, 0.5);
    let mut r = p0.clone();
    for step in 0..11 {
        dynamic.update(&mut r, &grads(step)).unwrap();
    }
    assert_eq!(common::params_bits(&p), common::params_bits(&r));
}
