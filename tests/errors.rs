//! One test per error kind: the error names what is wrong, and nothing is written.

#[macro_use]
mod common;

use common::{params_bits, state_bits};
use ndarray::{ArrayD, Dimension, IxDyn};
use ndoptim::*;

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
    ($check:expr) => {
        with_each_optimizer!(f64, |o| $check(o))
    };
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

/// An update with options its reference lacks is refused whole: parameters and state untouched.
fn incompatible_and_nothing_changes<R: Rule<f64>>(mut opt: Engine<R, f64>) {
    let (mut p, g) = model();
    let before = params_bits(&p);
    let err = opt.update(&mut p, &g).unwrap_err();
    assert!(matches!(err, Error::IncompatibleOptions { .. }), "{err}");
    assert_eq!(params_bits(&p), before);
    assert_eq!(opt.state_keys().count(), 0);
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
    assert_eq!(
        opt.update_named(&mut common::named(&mut p, &g))
            .unwrap_err()
            .to_string(),
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
fn every_learning_rate_check() {
    for lr in [-1.0, f64::NAN, f64::INFINITY, -f64::INFINITY] {
        with_each_optimizer!(f64, |o| rejects_hyperparameter(
            o.lr(lr),
            "learning rate",
            lr
        ));
    }
    assert_eq!(
        Sgd::<f32>::default()
            .lr(-1.0)
            .validate()
            .unwrap_err()
            .to_string(),
        "Invalid learning rate: -1 (expected a finite number >= 0)"
    );
}

#[test]
fn every_hyperparameter_check() {
    type F = f64;
    // (optimizer, name in the error, rejected value)
    macro_rules! bad {
        ($opt:expr, $name:expr, $value:expr) => {
            rejects_hyperparameter($opt, $name, $value)
        };
    }
    for m in [1.0, -0.1, f64::NAN] {
        bad!(Momentum::<F>::default().momentum(m), "momentum value", m);
        bad!(Nesterov::<F>::default().momentum(m), "momentum value", m);
        bad!(RmsProp::<F>::default().alpha(m), "alpha value", m);
        for (b, name) in [
            (0, "beta parameter at index 0"),
            (1, "beta parameter at index 1"),
        ] {
            let pair = |x: f64| if b == 0 { (x, 0.5) } else { (0.5, x) };
            let (b1, b2) = pair(m);
            bad!(Adam::<F>::default().betas(b1, b2), name, m);
            bad!(AdamW::<F>::default().betas(b1, b2), name, m);
            bad!(NAdam::<F>::default().betas(b1, b2), name, m);
            bad!(RAdam::<F>::default().betas(b1, b2), name, m);
            bad!(Adamax::<F>::default().betas(b1, b2), name, m);
            bad!(Lion::<F>::default().betas(b1, b2), name, m);
        }
    }
    for x in [-1e-3, f64::NAN, f64::INFINITY] {
        bad!(Sgd::<F>::default().momentum(x), "momentum value", x);
        bad!(RmsProp::<F>::default().momentum(x), "momentum value", x);
        bad!(AdaGrad::<F>::default().lr_decay(x), "lr_decay value", x);
        bad!(
            AdaGrad::<F>::default().initial_accumulator_value(x),
            "initial_accumulator_value value",
            x
        );
        bad!(
            NAdam::<F>::default().momentum_decay(x),
            "momentum_decay value",
            x
        );
        bad!(Asgd::<F>::default().lambd(x), "lambd value", x);
        bad!(Asgd::<F>::default().alpha(x), "alpha value", x);
        bad!(Asgd::<F>::default().t0(x), "t0 value", x);
        bad!(Adafactor::<F>::default().eps1(Some(x)), "epsilon1 value", x);
        bad!(Adafactor::<F>::default().eps2(x), "epsilon2 value", x);
        bad!(
            Rprop::<F>::default().step_sizes(x, 50.0),
            "minimal step size",
            x
        );
        // Every epsilon and every weight decay.
        bad!(AdaGrad::<F>::default().eps(x), "epsilon value", x);
        bad!(RmsProp::<F>::default().eps(x), "epsilon value", x);
        bad!(Adam::<F>::default().eps(x), "epsilon value", x);
        bad!(AdamW::<F>::default().eps(x), "epsilon value", x);
        bad!(NAdam::<F>::default().eps(x), "epsilon value", x);
        bad!(RAdam::<F>::default().eps(x), "epsilon value", x);
        bad!(Adamax::<F>::default().eps(x), "epsilon value", x);
        bad!(Adadelta::<F>::default().eps(x), "epsilon value", x);
        let w = "weight_decay value";
        bad!(Sgd::<F>::default().weight_decay(x), w, x);
        bad!(AdaGrad::<F>::default().weight_decay(x), w, x);
        bad!(RmsProp::<F>::default().weight_decay(x), w, x);
        bad!(Adam::<F>::default().weight_decay(x), w, x);
        bad!(AdamW::<F>::default().weight_decay(x), w, x);
        bad!(NAdam::<F>::default().weight_decay(x), w, x);
        bad!(RAdam::<F>::default().weight_decay(x), w, x);
        bad!(Adamax::<F>::default().weight_decay(x), w, x);
        bad!(Adadelta::<F>::default().weight_decay(x), w, x);
        bad!(Asgd::<F>::default().weight_decay(x), w, x);
        bad!(Adafactor::<F>::default().weight_decay(x), w, x);
        bad!(Lion::<F>::default().weight_decay(x), w, x);
    }
    bad!(
        Sgd::<F>::default().dampening(f64::NAN),
        "dampening value",
        f64::NAN
    );
    // torch-optimi's fully decoupled weight decay divides by its max_lr.
    for max_lr in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        let m = "maximum learning rate";
        let some = Some(max_lr);
        bad!(
            Sgd::<F>::default()
                .weight_decay(0.1)
                .fully_decoupled_weight_decay(some),
            m,
            max_lr
        );
        bad!(
            AdamW::<F>::optimi().fully_decoupled_weight_decay(some),
            m,
            max_lr
        );
        bad!(
            RAdam::<F>::optimi().fully_decoupled_weight_decay(some),
            m,
            max_lr
        );
        bad!(
            Lion::<F>::optimi().fully_decoupled_weight_decay(some),
            m,
            max_lr
        );
    }
    for rho in [-0.1, 1.5, f64::NAN] {
        bad!(Adadelta::<F>::default().rho(rho), "rho value", rho);
    }
    for eta in [0.0, 1.0, 1.5, f64::NAN] {
        bad!(Rprop::<F>::default().etas(eta, 1.2), "eta_minus value", eta);
    }
    for eta in [1.0, 0.5, f64::INFINITY, f64::NAN] {
        bad!(Rprop::<F>::default().etas(0.5, eta), "eta_plus value", eta);
    }
    bad!(
        Rprop::<F>::default().step_sizes(1.0, 0.5),
        "maximal step size",
        0.5
    );
    bad!(
        Rprop::<F>::default().step_sizes(1.0, f64::INFINITY),
        "maximal step size",
        f64::INFINITY
    );
    for decay in [0.5, f64::NAN, -f64::INFINITY] {
        bad!(
            Adafactor::<F>::default().beta2_decay(decay),
            "beta2_decay value",
            decay
        );
    }
    for d in [0.5, f64::NAN, f64::INFINITY] {
        bad!(Adafactor::<F>::default().d(d), "clipping threshold d", d);
    }

    // Edges that are valid.
    Momentum::<F>::default()
        .momentum(0.0)
        .lr(0.0)
        .validate()
        .unwrap();
    Adam::<F>::default()
        .betas(0.0, 0.0)
        .eps(0.0)
        .validate()
        .unwrap();
    Adadelta::<F>::default().rho(1.0).validate().unwrap();
    Sgd::<F>::default().momentum(1.5).validate().unwrap(); // PyTorch's condition: momentum >= 0
    Rprop::<F>::default()
        .step_sizes(0.0, 0.0)
        .validate()
        .unwrap();
    Adafactor::<F>::default()
        .beta2_decay(0.0)
        .d(1.0)
        .eps1(None)
        .validate()
        .unwrap();
}

#[test]
fn nesterov_needs_momentum_and_no_dampening() {
    for opt in [
        Sgd::<f64>::default().nesterov(true),
        Sgd::<f64>::default()
            .nesterov(true)
            .momentum(0.9)
            .dampening(0.1),
        Sgd::<f64>::default()
            .nesterov(true)
            .momentum(0.9)
            .ema_momentum(true),
    ] {
        let (mut p, g) = model();
        let before = params_bits(&p);
        let mut opt = opt;
        let err = opt.update(&mut p, &g).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Invalid options: Nesterov momentum requires a momentum, zero dampening and no moving average"
        );
        assert_eq!(params_bits(&p), before);
    }
    // torch-optimi's moving-average momentum takes no PyTorch dampening.
    let (mut p, g) = model();
    let before = params_bits(&p);
    let err = Sgd::<f64>::default()
        .momentum(0.9)
        .ema_momentum(true)
        .dampening(0.1)
        .update(&mut p, &g)
        .unwrap_err();
    assert!(matches!(err, Error::IncompatibleOptions { .. }), "{err}");
    assert_eq!(params_bits(&p), before);
    Sgd::<f64>::default()
        .nesterov(true)
        .momentum(0.9)
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

#[test]
fn every_hyperparameter_check_of_the_newer_optimizers() {
    type F = f64;
    macro_rules! bad {
        ($opt:expr, $name:expr, $value:expr) => {
            rejects_hyperparameter($opt, $name, $value)
        };
    }
    for m in [1.0, -0.1, f64::NAN] {
        for (b, name) in [
            (0, "beta parameter at index 0"),
            (1, "beta parameter at index 1"),
        ] {
            let (b1, b2) = if b == 0 { (m, 0.5) } else { (0.5, m) };
            bad!(AdaBelief::<F>::default().betas(b1, b2), name, m);
            bad!(Adopt::<F>::default().betas(b1, b2), name, m);
            bad!(AdEMAMix::<F>::default().betas(b1, b2), name, m);
            bad!(Lamb::<F>::default().betas(b1, b2), name, m);
            bad!(ScheduleFreeAdamW::<F>::default().betas(b1, b2), name, m);
            bad!(Muon::<F>::default().adam_betas(b1, b2), name, m);
            bad!(Soap::<F>::default().betas(b1, b2), name, m);
        }
        bad!(Adan::<F>::default().b1(m), "b1 value", m);
        bad!(Adan::<F>::default().b2(m), "b2 value", m);
        bad!(Adan::<F>::default().b3(m), "b3 value", m);
        bad!(AdEMAMix::<F>::default().b3(m), "b3 value", m);
        bad!(Muon::<F>::default().momentum(m), "momentum value", m);
        bad!(
            Soap::<F>::default().shampoo_beta(Some(m)),
            "shampoo_beta value",
            m
        );
        bad!(Kron::<F>::default().b1(m), "b1 value", m);
        bad!(
            Muon::<F>::normuon().neuron_beta2(Some(m)),
            "neuron beta2 value",
            m
        );
        bad!(
            ScheduleFreeSgd::<F>::default().momentum(m),
            "momentum value",
            m
        );
    }
    bad!(
        ScheduleFreeSgd::<F>::default().momentum(0.0),
        "momentum value",
        0.0
    );
    for x in [-1e-3, f64::NAN, f64::INFINITY] {
        let (e, w) = ("epsilon value", "weight_decay value");
        bad!(Adan::<F>::default().eps(x), e, x);
        bad!(Adan::<F>::default().eps_root(x), "eps_root value", x);
        bad!(Adan::<F>::default().weight_decay(x), w, x);
        bad!(AdaBelief::<F>::default().eps(x), e, x);
        bad!(AdaBelief::<F>::default().eps_root(x), "eps_root value", x);
        bad!(Adopt::<F>::default().eps(x), e, x);
        bad!(
            Adopt::<F>::default().clip_exponent(Some(x)),
            "clip exponent",
            x
        );
        bad!(AdEMAMix::<F>::default().eps(x), e, x);
        bad!(AdEMAMix::<F>::default().eps_root(x), "eps_root value", x);
        bad!(AdEMAMix::<F>::default().weight_decay(x), w, x);
        bad!(Lamb::<F>::default().eps(x), e, x);
        bad!(Lamb::<F>::default().eps_root(x), "eps_root value", x);
        bad!(Lamb::<F>::default().weight_decay(x), w, x);
        bad!(Lars::<F>::default().weight_decay(x), w, x);
        bad!(
            Lars::<F>::default().trust_coefficient(x),
            "trust coefficient",
            x
        );
        bad!(Lars::<F>::default().eps(x), e, x);
        bad!(Lars::<F>::default().momentum(x), "momentum value", x);
        bad!(ScheduleFreeAdamW::<F>::default().eps(x), e, x);
        bad!(ScheduleFreeAdamW::<F>::default().weight_decay(x), w, x);
        bad!(ScheduleFreeSgd::<F>::default().weight_decay(x), w, x);
        bad!(
            Muon::<F>::default().weight_decay(x),
            "weight decay value",
            x
        );
        bad!(Muon::<F>::default().eps(x), e, x);
        bad!(Soap::<F>::default().eps(x), e, x);
        bad!(Kron::<F>::default().weight_decay(x), w, x);
        bad!(Kron::<F>::default().precond_lr(x), "precond_lr value", x);
        bad!(Soap::<F>::default().weight_decay(x), w, x);
        bad!(
            Muon::<F>::default().consistent_rms(Some(x)),
            "consistent_rms value",
            x
        );
        bad!(Muon::<F>::default().adam_lr(Some(x)), "learning rate", x);
        bad!(Muon::<F>::default().adam_eps(x), "adam epsilon value", x);
        bad!(
            Muon::<F>::default().adam_eps_root(x),
            "adam eps_root value",
            x
        );
        bad!(
            Muon::<F>::default().adam_weight_decay(x),
            "adam weight decay value",
            x
        );
    }
    for p in [0.0, 1.5, f64::NAN] {
        let fixed = UpdateProbability::Fixed(p);
        let name = "preconditioner_update_probability";
        bad!(Kron::<F>::default().update_probability(fixed), name, p);
    }
    bad!(
        Kron::<F>::default().precond_init_scale(0.0),
        "precond_init_scale",
        0.0
    );
    bad!(
        Soap::<F>::default().precondition_frequency(0),
        "precondition_frequency",
        0.0
    );
    for x in [f64::NAN, f64::INFINITY] {
        bad!(AdEMAMix::<F>::default().alpha(x), "alpha value", x);
        bad!(ScheduleFreeAdamW::<F>::default().r(x), "r value", x);
        bad!(
            ScheduleFreeSgd::<F>::default().weight_lr_power(x),
            "weight_lr_power value",
            x
        );
        bad!(
            Muon::<F>::default().ns_coefficients([3.0, x, 2.0]),
            "Newton-Schulz coefficient",
            x
        );
    }
    bad!(
        Muon::<F>::default().ns_steps(100),
        "number of Newton-Schulz steps",
        100.0
    );
}

#[test]
fn torch_optimi_adan_and_ranger_checks() {
    type F = f64;
    rejects_hyperparameter(Ranger::<F>::default().k(0), "k", 0.0);
    for a in [-0.1, 1.5, f64::NAN] {
        rejects_hyperparameter(Ranger::<F>::default().alpha(a), "alpha", a);
    }
    rejects_hyperparameter(Ranger::<F>::default().eps(-1.0), "epsilon value", -1.0);
    for m in [0.0, -1.0, f64::INFINITY] {
        rejects_hyperparameter(
            Adan::<F>::optimi().fully_decoupled_weight_decay(Some(m)),
            "maximum learning rate",
            m,
        );
    }
    // optimi's options on optax's Adan, and optax's ε_root on optimi's, are refused whole.
    for opt in [
        Adan::<F>::default().adam_wd(true),
        Adan::<F>::default().fully_decoupled_weight_decay(Some(0.1)),
        Adan::<F>::optimi().eps_root(1e-8),
    ] {
        incompatible_and_nothing_changes(opt);
    }
    Adan::<F>::optimi().adam_wd(true).validate().unwrap();
}

#[test]
fn prodigy_checks() {
    type F = f64;
    for x in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        rejects_hyperparameter(Prodigy::<F>::default().d0(x), "d0 value", x);
        rejects_hyperparameter(Prodigy::<F>::default().eps(x), "epsilon value", x);
        rejects_hyperparameter(Prodigy::<F>::default().d_coef(x), "d_coef value", x);
    }
    for b in [-0.1, 1.0, f64::NAN] {
        rejects_hyperparameter(Prodigy::<F>::default().beta3(Some(b)), "beta3 value", b);
        rejects_hyperparameter(
            Prodigy::<F>::default().betas(b, 0.999),
            "beta parameter at index 0",
            b,
        );
    }
    for r in [0.5, f64::NAN] {
        rejects_hyperparameter(
            Prodigy::<F>::default().growth_rate(r),
            "growth_rate value",
            r,
        );
    }
    rejects_hyperparameter(
        Prodigy::<F>::default().weight_decay(-1.0),
        "weight_decay value",
        -1.0,
    );
    // prodigyopt's options optax's prodigy lacks are refused whole, nothing changed.
    for opt in [
        Prodigy::<F>::optax().decouple(false),
        Prodigy::<F>::optax().growth_rate(1.02),
        Prodigy::<F>::optax().use_bias_correction(false),
    ] {
        incompatible_and_nothing_changes(opt);
    }
}

#[test]
fn dadapt_adam_checks() {
    type F = f64;
    for x in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        rejects_hyperparameter(DAdaptAdam::<F>::default().d0(x), "d0 value", x);
        rejects_hyperparameter(DAdaptAdam::<F>::default().eps(x), "epsilon value", x);
    }
    for b in [-0.1, 1.0, f64::NAN] {
        rejects_hyperparameter(
            DAdaptAdam::<F>::default().betas(0.9, b),
            "beta parameter at index 1",
            b,
        );
    }
    rejects_hyperparameter(
        DAdaptAdam::<F>::default().growth_rate(0.9),
        "growth_rate value",
        0.9,
    );
    incompatible_and_nothing_changes(DAdaptAdam::<F>::optax().decouple(false));
}

#[test]
fn cautious_checks() {
    use ndoptim::chain;
    use ndoptim::transform::{
        self as tx, Cautious, Debias, Rescale, ScaleByAdam, ScaleByLearningRate,
    };
    for floor in [0.0, -1.0, f64::NAN] {
        let cautious = Cautious::new(ScaleByAdam::default()).rescale(Rescale::Mean { floor });
        let opt = tx::optimizer::<_, f64>(chain!(cautious, ScaleByLearningRate));
        rejects_hyperparameter(opt, "floor", floor);
    }
    // The inner transform's checks apply through the mask.
    let cautious = Cautious::new(ScaleByAdam::default().eps(-1.0));
    let opt = tx::optimizer::<_, f64>(chain!(cautious, ScaleByLearningRate));
    rejects_hyperparameter(opt, "epsilon value", -1.0);
    // Conventions whose formulas need the corrected moments refuse the others.
    for debias in [Debias::StepSize, Debias::Off] {
        let adam = ScaleByAdam::default().debias(debias);
        incompatible_and_nothing_changes(tx::optimizer::<_, f64>(chain!(
            tx::ScaleByNadam(adam),
            ScaleByLearningRate
        )));
        incompatible_and_nothing_changes(tx::optimizer::<_, f64>(chain!(
            tx::ScaleByRadam::new(adam),
            ScaleByLearningRate
        )));
        incompatible_and_nothing_changes(tx::optimizer::<_, f64>(chain!(
            tx::ScaleByAmsgrad::new(adam),
            ScaleByLearningRate
        )));
    }
}

#[test]
fn polyak_checks() {
    type F = f64;
    // No loss given yet.
    rejects_hyperparameter(PolyakSgd::<F>::default(), "loss value", f64::NAN);
    let with_loss = || PolyakSgd::<F>::default().loss(1.0);
    rejects_hyperparameter(with_loss().loss(f64::INFINITY), "loss value", f64::INFINITY);
    rejects_hyperparameter(
        with_loss().max_learning_rate(-1.0),
        "max_learning_rate value",
        -1.0,
    );
    rejects_hyperparameter(with_loss().f_min(f64::NAN), "f_min value", f64::NAN);
    rejects_hyperparameter(with_loss().eps(-1.0), "epsilon value", -1.0);
    // A refused loss keeps the last one.
    let mut opt = with_loss();
    assert!(
        opt.set_hyperparameter(Hyperparameter::Loss, f64::NAN)
            .is_err()
    );
    assert_eq!(opt.hyperparameter(Hyperparameter::Loss), Some(1.0));
}
