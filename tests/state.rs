//! Per-key state: lazy, zero-filled, counted per key, left alone for frozen parameters.

#[macro_use]
mod common;

use common::{params_bits, state_bits};
use ndarray::{ArrayD, IxDyn, arr0, arr1};
use ndoptim::{AdaGrad, Adam, Momentum, Nesterov, Optimizer, Params, RmsProp, Sgd};

fn p1(key: &str, v: &[f64]) -> Params<f64> {
    Params::from([(key.to_string(), arr1(v).into_dyn())])
}

#[test]
fn state_is_created_zero_filled_on_first_update() {
    let mut opt = Momentum::<f64>::default().lr(0.1).momentum(0.5);
    assert_eq!(opt.step_count("w"), None);
    assert!(opt.slot("w", "velocity").is_none());
    let mut p = p1("w", &[1.0, 2.0]);
    opt.update(&mut p, &p1("w", &[1.0, -1.0])).unwrap();
    // v = 0.5 * 0 - 0.1 * g
    assert_eq!(
        opt.slot("w", "velocity").unwrap(),
        arr1(&[-0.1, 0.1]).into_dyn()
    );
    assert_eq!(p["w"], arr1(&[0.9, 2.1]).into_dyn());
    assert_eq!(opt.step_count("w"), Some(1));
    assert!(opt.slot("w", "no such slot").is_none());
    assert_eq!(opt.slot_names(), ["velocity"]);
}

#[test]
fn a_parameter_without_gradient_is_frozen() {
    let mut opt = Adam::<f64>::default();
    let mut p = p1("w", &[1.0, 2.0]);
    p.insert("frozen".into(), arr1(&[5.0, 6.0]).into_dyn());
    for _ in 0..3 {
        opt.update(&mut p, &p1("w", &[0.5, 0.5])).unwrap();
    }
    assert_eq!(p["frozen"], arr1(&[5.0, 6.0]).into_dyn());
    assert_eq!(opt.step_count("frozen"), None);
    assert_eq!(opt.state_keys().collect::<Vec<_>>(), ["w"]);
    assert_eq!(opt.step_count("w"), Some(3));
}

#[test]
fn a_key_added_later_starts_its_own_bias_correction() {
    let g = [0.3, -0.7, 1e-3];
    let mut fresh = Adam::<f64>::default();
    let mut alone = p1("late", &[1.0, 2.0, 3.0]);
    fresh.update(&mut alone, &p1("late", &g)).unwrap();

    let mut opt = Adam::<f64>::default();
    let mut p = p1("early", &[0.0]);
    for _ in 0..5 {
        opt.update(&mut p, &p1("early", &[1.0])).unwrap();
    }
    p.insert("late".into(), arr1(&[1.0, 2.0, 3.0]).into_dyn());
    let mut grads = p1("early", &[1.0]);
    grads.insert("late".into(), arr1(&g).into_dyn());
    opt.update(&mut p, &grads).unwrap();
    assert_eq!(
        (opt.step_count("early"), opt.step_count("late")),
        (Some(6), Some(1))
    );
    assert_eq!(p["late"], alone["late"]);
}

#[test]
fn reset_drops_state_and_keeps_hyperparameters() {
    let mut opt = RmsProp::<f64>::default().lr(0.05).decay_rate(0.9);
    let mut p = p1("w", &[1.0]);
    opt.update(&mut p, &p1("w", &[2.0])).unwrap();
    opt.reset();
    assert_eq!(opt.state_keys().count(), 0);
    assert_eq!(opt.learning_rate(), 0.05);
    let mut again = p1("w", &[1.0]);
    opt.update(&mut again, &p1("w", &[2.0])).unwrap();
    let mut fresh = RmsProp::<f64>::default().lr(0.05).decay_rate(0.9);
    let mut want = p1("w", &[1.0]);
    fresh.update(&mut want, &p1("w", &[2.0])).unwrap();
    assert_eq!(again, want);
    assert_eq!(state_bits(&opt), state_bits(&fresh));
}

#[test]
fn scalars_and_empty_arrays_are_parameters_too() {
    let mut p = Params::from([
        ("s".to_string(), arr0(1.0).into_dyn()),
        ("empty".to_string(), ArrayD::<f64>::zeros(IxDyn(&[0, 3]))),
    ]);
    let g = Params::from([
        ("s".to_string(), arr0(0.5).into_dyn()),
        ("empty".to_string(), ArrayD::<f64>::zeros(IxDyn(&[0, 3]))),
    ]);
    let mut opt = Adam::<f64>::default();
    opt.update(&mut p, &g).unwrap();
    assert!(p["s"][[]] < 1.0);
    assert_eq!(p["empty"].shape(), &[0, 3]);
    assert_eq!(opt.slot("empty", "exp_avg_sq").unwrap().shape(), &[0, 3]);
}

#[test]
fn a_new_learning_rate_applies_from_the_next_step() {
    let mut opt: Box<dyn Optimizer<f64>> = Box::new(Sgd::default().lr(1.0));
    let mut p = p1("w", &[0.0]);
    opt.update(&mut p, &p1("w", &[1.0])).unwrap();
    opt.set_learning_rate(0.25).unwrap();
    opt.update(&mut p, &p1("w", &[1.0])).unwrap();
    assert_eq!(p["w"], arr1(&[-1.25]).into_dyn());
}

#[test]
fn an_empty_gradient_map_changes_nothing() {
    let mut opt = Nesterov::<f64>::default();
    let mut p = p1("w", &[1.0]);
    let before = params_bits(&p);
    opt.update(&mut p, &Params::new()).unwrap();
    assert_eq!(params_bits(&p), before);
    assert_eq!(opt.state_keys().count(), 0);
}

#[test]
fn optimizers_are_send_sync_clone_debug() {
    fn assert_traits<T: Send + Sync + Clone + std::fmt::Debug + Default>() {}
    assert_traits::<Sgd>();
    assert_traits::<Momentum<f64>>();
    assert_traits::<Nesterov>();
    assert_traits::<AdaGrad>();
    assert_traits::<RmsProp>();
    assert_traits::<Adam<f64>>();
    fn is_thread_safe_value<T: Send + Sync + Clone + std::fmt::Debug>(_: &T) {}
    with_each_optimizer!(f32, |o| is_thread_safe_value(&o));
    let opt = Adam::<f32>::default().beta1(0.8);
    let copy = opt.clone();
    assert!(
        format!("{copy:?}").contains("betas: [0.8, 0.999]"),
        "{copy:?}"
    );
}

#[test]
fn adafactor_keeps_factored_state_for_matrices() {
    use ndoptim::Adafactor;
    let mut opt = Adafactor::<f64>::default();
    let shapes: [(&str, &[usize]); 3] = [("W", &[3, 4]), ("b", &[4]), ("T", &[4, 2, 5])];
    let mut p: Params<f64> = shapes
        .iter()
        .map(|(k, s)| (k.to_string(), ArrayD::ones(IxDyn(s))))
        .collect();
    let g: Params<f64> = shapes
        .iter()
        .map(|(k, s)| (k.to_string(), ArrayD::from_elem(IxDyn(s), 0.1)))
        .collect();
    opt.update(&mut p, &g).unwrap();
    assert_eq!(opt.slot("W", "row_var").unwrap().shape(), &[3, 1]);
    assert_eq!(opt.slot("W", "col_var").unwrap().shape(), &[1, 4]);
    assert!(opt.slot("W", "variance").is_none());
    assert_eq!(opt.slot("b", "variance").unwrap().shape(), &[4]);
    assert!(opt.slot("b", "row_var").is_none());
    assert_eq!(opt.slot("T", "row_var").unwrap().shape(), &[4, 2, 1]);
    assert_eq!(opt.slot("T", "col_var").unwrap().shape(), &[4, 1, 5]);
    // The first step's second moment is g² itself (1 − β₂ₜ = 1 at t = 1).
    for v in opt.slot("T", "col_var").unwrap() {
        assert!((v - 0.01).abs() < 1e-15, "{v}");
    }
}

#[test]
fn options_change_the_state_kept() {
    use ndoptim::{Adam, RmsProp, Sgd};
    let mut p = p1("w", &[1.0]);
    let g = p1("w", &[0.5]);
    let mut sgd = Sgd::<f64>::default();
    sgd.update(&mut p, &g).unwrap();
    assert!(sgd.slot_names().is_empty());
    let mut sgd = Sgd::<f64>::default().momentum(0.9);
    sgd.update(&mut p, &g).unwrap();
    // PyTorch's first momentum buffer is the gradient itself.
    assert_eq!(
        sgd.slot("w", "momentum_buffer").unwrap(),
        arr1(&[0.5]).into_dyn()
    );
    assert_eq!(
        Adam::<f64>::pytorch().amsgrad(true).slot_names(),
        ["exp_avg", "exp_avg_sq", "max_exp_avg_sq"]
    );
    assert_eq!(
        RmsProp::<f64>::default()
            .momentum(0.9)
            .centered(true)
            .slot_names(),
        ["square_avg", "momentum_buffer", "grad_avg"]
    );
}

/// The interface wrappers keep per-key state through: created as an update creates it, checked
/// against the parameter's shape, read and written flat, slot after slot.
#[test]
fn wrappers_keep_state_through_the_public_interface() {
    let mut adam = Adam::<f64>::default();
    let len = adam.state_mut("w", &[2]).map(|s| s.slots.len());
    assert_eq!(len, Ok(4), "exp_avg and exp_avg_sq, two elements each");
    let state = adam.state_mut("w", &[2]).unwrap();
    state.slots.copy_from_slice(&[1.0, 2.0, 3.0, 4.0]);
    *state.step = 7;
    assert_eq!(adam.state("w"), Some((7, &[1.0, 2.0, 3.0, 4.0][..])));
    assert_eq!(
        adam.slot("w", "exp_avg_sq").unwrap(),
        arr1(&[3.0, 4.0]).into_dyn()
    );
    assert_eq!(
        adam.state_mut("w", &[3]).map(|_| ()),
        Err(ndoptim::Error::StateShapeMismatch {
            key: "w".into(),
            state_shape: vec![2],
            param_shape: vec![3],
        })
    );
    for state in adam.states_mut() {
        *state.step = 0;
    }
    assert_eq!(adam.step_count("w"), Some(0));
    // A whole update checked, nothing written.
    let mut p = p1("w", &[1.0, 2.0]);
    let before = (p.clone(), state_bits(&adam));
    adam.check_update(&mut p, &p1("w", &[0.5, 0.5])).unwrap();
    assert!(adam.check_update(&mut p, &p1("v", &[0.5])).is_err());
    assert_eq!((p, state_bits(&adam)), before);
}
