//! One test per error kind: the error names what is wrong, and nothing is written.

mod common;

use common::{params_bits, state_bits};
use ndarray::{ArrayD, Dimension, IxDyn};
use ndoptim::{
    AdaGrad, Adam, Engine, Error, Momentum, Nesterov, Optimizer, Params, RmsProp, Rule, Sgd,
};

fn arr(shape: &[usize], start: f64) -> ArrayD<f64> {
    ArrayD::from_shape_fn(IxDyn(shape), |i| {
        start + i.slice().iter().sum::<usize>() as f64 * 0.25
    })
}

fn model() -> (Params<f64>, Params<f64>) {
    let p = Params::from([
        ("W1".into(), arr(&[3, 4], 1.0)),
        ("b1".into(), arr(&[4], -0.5)),
    ]);
    let g = Params::from([
        ("W1".into(), arr(&[3, 4], 0.3)),
        ("b1".into(), arr(&[4], 0.7)),
    ]);
    (p, g)
}

/// Runs one good step, then `bad`, and checks that the error is `want` and nothing changed.
fn rejected<R: Rule<f64>>(
    mut opt: Engine<R, f64>,
    bad: impl FnOnce(&mut Params<f64>, &mut Params<f64>),
    want: impl Fn(&Error) -> bool,
) {
    let (mut p, mut g) = model();
    opt.update(&mut p, &g).unwrap();
    bad(&mut p, &mut g);
    let (p_before, s_before) = (params_bits(&p), state_bits(&opt));
    let err = opt.update(&mut p, &g).unwrap_err();
    assert!(want(&err), "{} gave {err:?}", opt.name());
    assert_eq!(params_bits(&p), p_before, "{}: params changed", opt.name());
    assert_eq!(state_bits(&opt), s_before, "{}: state changed", opt.name());
}

/// Runs `check` on every optimizer of the crate.
macro_rules! for_each_optimizer {
    ($check:expr) => {{
        $check(Sgd::<f64>::default());
        $check(Momentum::<f64>::default());
        $check(Nesterov::<f64>::default());
        $check(AdaGrad::<f64>::default());
        $check(RmsProp::<f64>::default());
        $check(Adam::<f64>::default());
    }};
}

#[test]
fn unknown_key_is_rejected_and_nothing_changes() {
    fn check<R: Rule<f64>>(opt: Engine<R, f64>) {
        rejected(
            opt,
            |_, g| {
                g.insert("W9".into(), arr(&[2], 0.0));
            },
            |e| matches!(e, Error::UnknownKey { key } if key == "W9"),
        );
    }
    for_each_optimizer!(check);
    let err = Error::UnknownKey { key: "W9".into() };
    assert!(err.to_string().contains("\"W9\""), "{err}");
}

#[test]
fn gradient_shape_mismatch_is_rejected_and_nothing_changes() {
    fn check<R: Rule<f64>>(opt: Engine<R, f64>) {
        rejected(
            opt,
            |_, g| {
                g.insert("b1".into(), arr(&[1, 4], 0.0)); // broadcastable, still rejected
            },
            |e| {
                *e == Error::ShapeMismatch {
                    key: "b1".into(),
                    param_shape: vec![4],
                    grad_shape: vec![1, 4],
                }
            },
        );
    }
    for_each_optimizer!(check);
    let msg = Error::ShapeMismatch {
        key: "b1".into(),
        param_shape: vec![4],
        grad_shape: vec![1, 4],
    }
    .to_string();
    assert!(
        msg.contains("\"b1\"") && msg.contains("[4]") && msg.contains("[1, 4]"),
        "{msg}"
    );
}

#[test]
fn parameter_reshaped_under_its_state_is_rejected_and_nothing_changes() {
    // SGD keeps no slots but still records the shape (and step count) of each key.
    fn check<R: Rule<f64>>(opt: Engine<R, f64>) {
        rejected(
            opt,
            |p, g| {
                p.insert("W1".into(), arr(&[4, 3], 1.0));
                g.insert("W1".into(), arr(&[4, 3], 0.1));
            },
            |e| {
                *e == Error::StateShapeMismatch {
                    key: "W1".into(),
                    state_shape: vec![3, 4],
                    param_shape: vec![4, 3],
                }
            },
        );
    }
    for_each_optimizer!(check);

    // reset() forgets the old shape.
    let (mut p, mut g) = model();
    let mut adam = Adam::<f64>::default();
    adam.update(&mut p, &g).unwrap();
    p.insert("W1".into(), arr(&[4, 3], 1.0));
    g.insert("W1".into(), arr(&[4, 3], 0.1));
    assert!(adam.update(&mut p, &g).is_err());
    adam.reset();
    adam.update(&mut p, &g).unwrap();
    assert_eq!(adam.slot("W1", "exp_avg").unwrap().shape(), &[4, 3]);
}

fn rejects_hyperparameter<R: Rule<f64>>(mut opt: Engine<R, f64>, name: &str, value: f64) {
    let (mut p, g) = model();
    let before = params_bits(&p);
    let err = opt.validate().unwrap_err();
    let Error::InvalidHyperparameter {
        name: n, value: v, ..
    } = err
    else {
        panic!("{err:?}")
    };
    assert_eq!((n, v.to_bits()), (name, value.to_bits()), "{err}");
    // NaN != NaN, so compare the update's error by its message.
    assert_eq!(
        opt.update(&mut p, &g).unwrap_err().to_string(),
        err.to_string()
    );
    assert_eq!(params_bits(&p), before);
    assert_eq!(opt.state_keys().count(), 0);
    assert!(
        err.to_string()
            .starts_with(&format!("Invalid {name}: {value}")),
        "{err}"
    );
}

#[test]
fn invalid_hyperparameters_are_rejected_with_name_and_value() {
    for lr in [-1.0, f64::NAN, f64::INFINITY, -f64::INFINITY] {
        rejects_hyperparameter(Sgd::default().lr(lr), "learning rate", lr);
        rejects_hyperparameter(Adam::default().lr(lr), "learning rate", lr);
    }
    for m in [1.0, -0.1, f64::NAN, 2.0] {
        rejects_hyperparameter(Momentum::default().momentum(m), "momentum value", m);
        rejects_hyperparameter(Nesterov::default().momentum(m), "momentum value", m);
        rejects_hyperparameter(RmsProp::default().decay_rate(m), "decay rate", m);
        rejects_hyperparameter(Adam::default().beta1(m), "beta parameter at index 0", m);
        rejects_hyperparameter(Adam::default().beta2(m), "beta parameter at index 1", m);
    }
    for eps in [-1e-8, f64::NAN, f64::INFINITY] {
        rejects_hyperparameter(AdaGrad::default().eps(eps), "epsilon value", eps);
        rejects_hyperparameter(RmsProp::default().eps(eps), "epsilon value", eps);
        rejects_hyperparameter(Adam::default().eps(eps), "epsilon value", eps);
    }
    assert_eq!(
        Sgd::<f32>::default()
            .lr(-1.0)
            .validate()
            .unwrap_err()
            .to_string(),
        "Invalid learning rate: -1 (expected a finite number >= 0)"
    );
    // Edges that are valid.
    Momentum::<f64>::default()
        .momentum(0.0)
        .lr(0.0)
        .validate()
        .unwrap();
    Adam::<f64>::default()
        .beta1(0.0)
        .beta2(0.0)
        .eps(0.0)
        .validate()
        .unwrap();
}

#[test]
fn set_learning_rate_rejects_and_keeps_the_old_rate() {
    let mut opt: Box<dyn Optimizer<f32>> = Box::new(Adam::default());
    assert_eq!(opt.learning_rate(), 0.001);
    for bad in [-0.1, f64::NAN, f64::INFINITY] {
        let err = opt.set_learning_rate(bad).unwrap_err();
        assert!(matches!(
            err,
            Error::InvalidHyperparameter {
                name: "learning rate",
                ..
            }
        ));
        assert_eq!(opt.learning_rate(), 0.001);
    }
    opt.set_learning_rate(0.5).unwrap();
    assert_eq!(opt.learning_rate(), 0.5);
}

#[test]
fn errors_are_std_errors() {
    fn is_error<E: std::error::Error + Send + Sync + 'static>(_: &E) {}
    is_error(&Error::UnknownKey { key: "x".into() });
}
