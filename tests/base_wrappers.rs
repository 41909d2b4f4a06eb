//! The wrappers whose base optimizer steps buffers of theirs: ScheduleFreeWrapper (modes, errors
//! that change nothing, checkpoints) and Mechanic (its checks, its scale, checkpoints). The
//! reference trajectories (`sf_wrapper_*`, `sf_gen_wrapper_*`, `optax_mechanize_*`,
//! `optax_gen_mechanize_*`) are replayed by the conformance test, evaluation points and scales
//! included.

mod common;

use ndarray::{ArrayD, IxDyn};
use ndoptim::mechanic::Mechanic;
use ndoptim::schedule_free_wrapper::ScheduleFreeWrapper;
use ndoptim::{Adam, Error, Optimizer, Params, Sgd};

const SHAPES: [(&str, &[usize]); 3] = [("W1", &[3, 4]), ("b1", &[4]), ("s", &[])];

fn grads(step: usize) -> Params<f64> {
    common::small_model::<f64>(&SHAPES, step).1
}

/// A wrapper's checkpoint and its base's, and how to load both.
macro_rules! checkpoints {
    ($wrapper:ty) => {
        (
            |o: &$wrapper| (o.checkpoint(), o.base().checkpoint()),
            |o: &mut $wrapper, (own, base)| {
                o.restore(own).unwrap();
                o.base_mut().restore(base).unwrap();
            },
        )
    };
}

fn wrapped() -> ScheduleFreeWrapper<Adam<f64>, f64> {
    ScheduleFreeWrapper::new(Adam::<f64>::pytorch().lr(0.01))
        .weight_decay_at_y(0.1)
        .r(0.5)
}

fn mechanic() -> Mechanic<Adam<f64>, f64> {
    Mechanic::new(Adam::<f64>::pytorch().lr(1.0))
        .weight_decay(0.1)
        .num_betas(4)
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
        for (a, b) in p[k].iter().zip(v) {
            assert!((a - b).abs() <= 1e-12 * b.abs().max(1.0), "{k}: {a} != {b}");
        }
    }
    opt.update(&mut p, &grads(3)).unwrap();
}

#[test]
fn schedule_free_wrapper_errors_change_nothing() {
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
    common::refuses_bad_keys_and_shapes(&mut opt, &mut p, &grads(1), state);
    let before = state(&p, &opt);
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
fn schedule_free_wrapper_resumes_bit_identically_and_wraps_a_boxed_optimizer() {
    let (p0, _) = common::small_model::<f64>(&SHAPES, 0);
    let (save, load) = checkpoints!(ScheduleFreeWrapper<Adam<f64>, f64>);
    let (mut straight, mut resumed, p) = common::resumes_bit_identically(
        wrapped,
        || {
            let boxed: Box<dyn Optimizer<f64>> = Box::new(Adam::<f64>::pytorch().lr(0.01));
            ScheduleFreeWrapper::new(boxed)
                .weight_decay_at_y(0.1)
                .r(0.5)
        },
        save,
        load,
        &p0,
        grads,
    );
    // The evaluation points agree too.
    let (mut a, mut b) = (p.clone(), p);
    straight.eval(&mut a).unwrap();
    resumed.eval(&mut b).unwrap();
    assert_eq!(common::params_bits(&a), common::params_bits(&b));
}

#[test]
fn mechanic_errors_change_nothing() {
    let (mut p, _) = common::small_model::<f64>(&SHAPES, 0);
    let mut opt = mechanic();
    opt.update(&mut p, &grads(0)).unwrap();
    let state = |p: &Params<f64>, o: &Mechanic<Adam<f64>, f64>| {
        (
            common::params_bits(p),
            o.checkpoint(),
            o.base().checkpoint(),
        )
    };
    common::refuses_bad_keys_and_shapes(&mut opt, &mut p, &grads(1), state);
    let before = common::params_bits(&p);

    // The base optimizer's refusal, found only by its update.
    let mut bad = Mechanic::new(Adam::<f64>::pytorch().eps(-1.0));
    assert!(matches!(
        bad.update(&mut p, &grads(1)),
        Err(Error::InvalidHyperparameter { .. })
    ));
    assert!(bad.checkpoint().keys.is_empty() && bad.s() == [1e-6; 6]);

    for (opt, name) in [
        (
            Mechanic::new(Sgd::<f64>::default()).weight_decay(-1.0),
            "weight_decay value",
        ),
        (
            Mechanic::new(Sgd::<f64>::default()).eps(f64::NAN),
            "epsilon value",
        ),
        (
            Mechanic::new(Sgd::<f64>::default()).s_init(0.0),
            "s_init value",
        ),
        (
            Mechanic::new(Sgd::<f64>::default()).num_betas(0),
            "num_betas",
        ),
    ] {
        let mut opt = opt;
        let err = opt.update(&mut p, &grads(1)).unwrap_err();
        assert!(
            matches!(err, Error::InvalidHyperparameter { name: n, .. } if n == name),
            "{err}"
        );
    }
    assert!(before == common::params_bits(&p));
}

#[test]
fn mechanic_scale_grows_while_the_gradient_keeps_its_direction() {
    let (mut p, g) = common::small_model::<f64>(&SHAPES, 0);
    let mut opt = Mechanic::new(Sgd::<f64>::default().lr(1.0)).weight_decay(0.0);
    let mut scales = Vec::new();
    for _ in 0..30 {
        opt.update(&mut p, &g).unwrap();
        scales.push(opt.global("s").unwrap());
    }
    assert!(scales.windows(2).skip(2).all(|w| w[1] > w[0]), "{scales:?}");
    assert!(scales[29] > 100.0 * scales[0], "{scales:?}");
}

#[test]
fn mechanic_resumes_bit_identically_and_wraps_a_boxed_optimizer() {
    let (p0, _) = common::small_model::<f64>(&SHAPES, 0);
    let (save, load) = checkpoints!(Mechanic<Adam<f64>, f64>);
    let (straight, resumed, _) = common::resumes_bit_identically(
        mechanic,
        || {
            let boxed: Box<dyn Optimizer<f64>> = Box::new(Adam::<f64>::pytorch().lr(1.0));
            Mechanic::new(boxed).weight_decay(0.1).num_betas(4)
        },
        save,
        load,
        &p0,
        grads,
    );
    assert_eq!(straight.s(), resumed.s());
}
