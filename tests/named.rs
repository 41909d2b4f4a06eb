//! The second way in: every error leaves parameters and state as they were, a slice's length is
//! checked against its shape, a key given twice is refused, and the engine's companions (guard,
//! groups, checkpoints) behave as through the map.

#[macro_use]
mod common;

use common::{named, params_bits, state_bits};
use ndarray::{ArrayD, IxDyn};
use ndoptim::{Engine, Error, Group, Named, NonFinite, Optimizer, Params, Rule, Sgd};

fn model(step: usize) -> (Params<f64>, Params<f64>) {
    common::small_model(
        &[
            ("W1", &[3, 4]),
            ("b1", &[4]),
            ("W2", &[4, 2, 2]),
            ("s", &[]),
        ],
        step,
    )
}

/// After two good named steps, each bad call is refused and changes nothing.
fn refuses_and_changes_nothing<R: Rule<f64>>(mut opt: Engine<R, f64>) {
    let (mut p, _) = model(0);
    for step in 1..=2 {
        opt.update_named(&mut named(&mut p, &model(step).1))
            .unwrap();
    }
    let (p_before, s_before) = (params_bits(&p), state_bits(&opt));
    let g = model(3).1;

    // A key given twice (one already with state, then one new to the optimizer).
    let (mut w, mut w_again) = (p["W1"].clone(), p["W1"].clone());
    let mut twice = named(&mut p, &g);
    twice.push(Named::new("W1", w.view_mut(), g["W1"].view()));
    let err = opt.update_named(&mut twice).unwrap_err();
    assert_eq!(
        err,
        Error::DuplicateKey { key: "W1".into() },
        "{}",
        opt.name()
    );
    drop(twice);
    let mut fresh_twice = vec![
        Named::new("new", w.view_mut(), g["W1"].view()),
        Named::new("new", w_again.view_mut(), g["W1"].view()),
    ];
    assert!(matches!(
        opt.update_named(&mut fresh_twice),
        Err(Error::DuplicateKey { .. })
    ));
    drop(fresh_twice);

    // A gradient of another shape.
    let other = ArrayD::zeros(IxDyn(&[4, 3]));
    let mut items = named(&mut p, &g);
    let at = items.iter().position(|n| n.key() == "W1").unwrap();
    items[at] = Named::new("W1", w.view_mut(), other.view());
    assert!(
        matches!(
            opt.update_named(&mut items),
            Err(Error::ShapeMismatch { .. })
        ),
        "{}",
        opt.name()
    );
    drop(items);

    // A parameter reshaped under its state.
    let mut reshaped = ArrayD::zeros(IxDyn(&[2, 6]));
    let mut items = vec![Named::new(
        "W1",
        reshaped.view_mut(),
        other.view().into_shape_with_order(IxDyn(&[2, 6])).unwrap(),
    )];
    assert!(matches!(
        opt.update_named(&mut items),
        Err(Error::StateShapeMismatch { .. })
    ));
    drop(items);

    assert_eq!(params_bits(&p), p_before, "{}", opt.name());
    assert_eq!(state_bits(&opt), s_before, "{}", opt.name());
    assert_eq!(
        opt.state_keys().count(),
        4,
        "{}: no state for the refused new key",
        opt.name()
    );
    // And the next good call still works.
    opt.update_named(&mut named(&mut p, &g)).unwrap();
}

#[test]
fn every_optimizer_refuses_bad_named_calls_and_changes_nothing() {
    with_each_optimizer!(f64, |o| refuses_and_changes_nothing(o));
}

#[test]
fn slices_must_hold_their_shape() {
    let (mut data, grad) = (vec![0.0f32; 12], vec![0.0f32; 11]);
    let err = Named::from_slices("w", &[3, 4], &mut data, &grad).unwrap_err();
    assert_eq!(
        err,
        Error::SliceLength {
            key: "w".into(),
            shape: vec![3, 4],
            which: "gradient",
            len: 11
        }
    );
    assert!(err.to_string().contains("\"w\""), "{err}");
    let err = Named::from_slices("w", &[3, 5], &mut data, &grad[..]).unwrap_err();
    assert!(matches!(
        err,
        Error::SliceLength {
            which: "parameter",
            len: 12,
            ..
        }
    ));
    // A shape whose size overflows is refused, not wrapped.
    let err = Named::from_slices("w", &[usize::MAX, 2], &mut data, &grad).unwrap_err();
    assert!(matches!(err, Error::SliceLength { .. }));
    assert!(Named::from_slices("w", &[12], &mut data, &[0.0; 12]).is_ok());
}

#[test]
fn guard_groups_and_checkpoints_work_the_same() {
    let build = || {
        Sgd::<f64>::default()
            .momentum(0.9)
            .group(Group::prefix("b").lr_scale(0.5))
            .non_finite(NonFinite::Skip)
    };
    let (mut a, _) = model(0);
    let (mut b, _) = model(0);
    let (mut oa, mut ob) = (build(), build());
    for step in 1..=3 {
        let mut g = model(step).1;
        if step == 2 {
            g.get_mut("b1").unwrap()[[1]] = f64::NAN;
        }
        oa.update(&mut a, &g).unwrap();
        ob.update_named(&mut named(&mut b, &g)).unwrap();
    }
    assert_eq!(ob.skipped_steps(), 1);
    assert_eq!(params_bits(&a), params_bits(&b));
    assert_eq!(state_bits(&oa), state_bits(&ob));
    // A checkpoint of named steps resumes through the map, and the other way round.
    let mut c = build();
    c.restore(ob.checkpoint()).unwrap();
    for step in 4..=5 {
        oa.update_named(&mut named(&mut a, &model(step).1)).unwrap();
        c.update(&mut b, &model(step).1).unwrap();
    }
    assert_eq!(params_bits(&a), params_bits(&b));
}

#[test]
fn a_key_that_disappears_keeps_its_state() {
    let mut opt = ndoptim::Adam::<f64>::pytorch();
    let (mut p, g) = model(0);
    opt.update_named(&mut named(&mut p, &g)).unwrap();
    let frozen = (
        p["b1"].clone(),
        opt.slot("b1", "exp_avg").unwrap().to_owned(),
    );
    let mut without: Vec<_> = named(&mut p, &g)
        .into_iter()
        .filter(|n| n.key() != "b1")
        .collect();
    opt.update_named(&mut without).unwrap();
    drop(without);
    assert_eq!(p["b1"], frozen.0);
    assert_eq!(opt.slot("b1", "exp_avg").unwrap(), frozen.1);
    assert_eq!(
        (opt.step_count("b1"), opt.step_count("W1")),
        (Some(1), Some(2))
    );
}
