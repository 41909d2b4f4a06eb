//! ScheduleFreeWrapper: modes, errors that change nothing, and resuming from checkpoints. The
//! reference trajectories (`sf_wrapper_*`, `sf_gen_wrapper_*`) are replayed by the conformance
//! test, evaluation points included.

mod common;

use ndarray::{ArrayD, IxDyn};
use ndoptim::schedule_free_wrapper::ScheduleFreeWrapper;
use ndoptim::{Adam, Error, Optimizer, Params, Sgd};

const SHAPES: [(&str, &[usize]); 3] = [("W1", &[3, 4]), ("b1", &[4]), ("s", &[])];

fn grads(step: usize) -> Params<f64> {
    common::small_model::<f64>(&SHAPES, step).1
}

fn wrapped() -> ScheduleFreeWrapper<Adam<f64>, f64> {
    ScheduleFreeWrapper::new(Adam::<f64>::pytorch().lr(0.01))
        .weight_decay_at_y(0.1)
        .r(0.5)
}

#[test]
fn eval_and_train_move_between_y_and_x_and_eval_refuses_updates() {
    let (mut p, _) = common::small_model::<f64>(&SHAPES, 0);
    let mut opt = wrapped();
    for step in 0..3 {
        opt.update(&mut p, &grads(step)).unwrap();
    }
    let y = p.clone();
    opt.eval(&mut p).unwrap();
    assert_ne!(common::params_bits(&p), common::params_bits(&y));
    let x = common::params_bits(&p);
    assert_eq!(opt.update(&mut p, &grads(3)), Err(Error::EvalMode));
    assert_eq!(common::params_bits(&p), x, "an update in eval mode wrote");
    opt.eval(&mut p).unwrap();
    assert_eq!(common::params_bits(&p), x, "eval twice is not a no-op");
    opt.train(&mut p).unwrap();
    for (k, v) in &y {
        let back = &p[k];
        for (a, b) in back.iter().zip(v) {
            assert!((a - b).abs() <= 1e-12 * b.abs().max(1.0), "{k}: {a} != {b}");
        }
    }
    opt.update(&mut p, &grads(3)).unwrap();
}

#[test]
fn an_error_changes_nothing() {
    let (mut p, _) = common::small_model::<f64>(&SHAPES, 0);
    let mut opt = wrapped();
    opt.update(&mut p, &grads(0)).unwrap();
    let state = |p: &Params<f64>, o: &ScheduleFreeWrapper<Adam<f64>, f64>| {
        (
            common::params_bits(p),
            o.checkpoint(),
            o.base().checkpoint(),
        )
    };
    let before = state(&p, &opt);
    let mut unknown = grads(1);
    unknown.insert("nope".into(), ArrayD::zeros(IxDyn(&[1])));
    assert!(matches!(
        opt.update(&mut p, &unknown),
        Err(Error::UnknownKey { key }) if key == "nope"
    ));
    let mut wrong = grads(1);
    wrong.insert("b1".into(), ArrayD::zeros(IxDyn(&[5])));
    assert!(matches!(
        opt.update(&mut p, &wrong),
        Err(Error::ShapeMismatch { .. })
    ));
    let mut moved = p.clone();
    moved.insert("b1".into(), ArrayD::zeros(IxDyn(&[5])));
    assert!(matches!(
        opt.update(&mut moved, &grads(1)),
        Err(Error::StateShapeMismatch { .. } | Error::ShapeMismatch { .. })
    ));
    assert!(opt.eval(&mut moved).is_err());
    assert!(before == state(&p, &opt), "an error changed something");

    // The base optimizer's own refusal, found only by its update, changes nothing either.
    let mut bad = ScheduleFreeWrapper::new(Adam::<f64>::pytorch().eps(-1.0)).weight_decay_at_y(0.1);
    let before = common::params_bits(&p);
    assert!(matches!(
        bad.update(&mut p, &grads(1)),
        Err(Error::InvalidHyperparameter { .. })
    ));
    assert_eq!(common::params_bits(&p), before);
    assert!(bad.checkpoint().keys.is_empty());

    // The wrapper's own hyperparameters.
    for m in [0.0, 1.0, f64::NAN] {
        let mut bad = ScheduleFreeWrapper::new(Sgd::<f64>::default()).momentum(m);
        assert!(matches!(
            bad.update(&mut p, &grads(1)),
            Err(Error::InvalidHyperparameter {
                name: "momentum value",
                ..
            })
        ));
    }
    let mut bad = ScheduleFreeWrapper::new(Sgd::<f64>::default()).weight_decay_at_y(-1.0);
    assert!(bad.update(&mut p, &grads(1)).is_err());
    assert_eq!(common::params_bits(&p), before);
}

#[test]
fn resumes_bit_identically_and_wraps_a_boxed_optimizer() {
    let (p0, _) = common::small_model::<f64>(&SHAPES, 0);
    let mut straight = wrapped();
    let mut p = p0.clone();
    for step in 0..9 {
        straight.update(&mut p, &grads(step)).unwrap();
    }
    let mut first = wrapped();
    let mut q = p0.clone();
    for step in 0..5 {
        first.update(&mut q, &grads(step)).unwrap();
    }
    let mut resumed = wrapped();
    resumed.restore(first.checkpoint()).unwrap();
    resumed
        .base_mut()
        .restore(first.base().checkpoint())
        .unwrap();
    for step in 5..9 {
        resumed.update(&mut q, &grads(step)).unwrap();
    }
    assert_eq!(common::params_bits(&p), common::params_bits(&q));
    straight.eval(&mut p).unwrap();
    resumed.eval(&mut q).unwrap();
    assert_eq!(common::params_bits(&p), common::params_bits(&q));

    let boxed: Box<dyn Optimizer<f64>> = Box::new(Adam::<f64>::pytorch().lr(0.01));
    let mut dynamic = ScheduleFreeWrapper::new(boxed)
        .weight_decay_at_y(0.1)
        .r(0.5);
    let mut r = p0.clone();
    for step in 0..9 {
        dynamic.update(&mut r, &grads(step)).unwrap();
    }
    dynamic.eval(&mut r).unwrap();
    assert_eq!(common::params_bits(&p), common::params_bits(&r));
}
