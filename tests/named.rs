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
    let err = Named::from_slices("w", [3, 4], &mut data, &grad).unwrap_err();
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
    let err = Named::from_slices("w", [3, 5], &mut data, &grad[..]).unwrap_err();
    assert!(matches!(
        err,
        Error::SliceLength {
            which: "parameter",
            len: 12,
            ..
        }
    ));
    // A shape whose size overflows is refused, not wrapped.
    let err = Named::from_slices("w", [usize::MAX, 2], &mut data, &grad).unwrap_err();
    assert!(matches!(err, Error::SliceLength { .. }));
    assert!(Named::from_slices("w", [12], &mut data, &[0.0; 12]).is_ok());
}

/// The issue a model on another ndarray version meets: its arrays are struct fields, and
/// `named!` takes them through their slices with their shapes, however the shape is written.
#[test]
fn named_macro_takes_fields_of_another_ndarray_version() {
    use autograd::ndarray::{Array2 as OldArray2, ShapeBuilder};
    struct Net {
        w1: OldArray2<f64>,
        g1: OldArray2<f64>,
    }
    let start = |i: usize| (i as f64 * 0.37).sin();
    let mut net = Net {
        w1: OldArray2::from_shape_fn((3, 4), |(i, j)| start(4 * i + j)),
        g1: OldArray2::from_shape_fn((3, 4), |(i, j)| start(7 * i + j + 1)),
    };
    let mut ours = ArrayD::from_shape_fn(IxDyn(&[3, 4]), |i| start(4 * i[0] + i[1]));
    let grad = ArrayD::from_shape_fn(IxDyn(&[3, 4]), |i| start(7 * i[0] + i[1] + 1));
    let (mut a, mut b) = (Sgd::default().momentum(0.9), Sgd::default().momentum(0.9));
    for _ in 0..3 {
        a.update_named(&mut [ndoptim::named!("w1", net.w1, net.g1).unwrap()])
            .unwrap();
        b.update_named(&mut [Named::new("w1", ours.view_mut(), grad.view())])
            .unwrap();
    }
    assert_eq!(net.w1.as_slice().unwrap(), ours.as_slice().unwrap());
    // The shape by value: another version's `dim()`, with the slices of the same fields.
    let (rows, cols) = net.w1.dim();
    let item = Named::from_slices(
        "w1",
        net.w1.dim(),
        net.w1.as_slice_mut().unwrap(),
        net.g1.as_slice().unwrap(),
    )
    .unwrap();
    assert_eq!(item.param().shape(), &[rows, cols]);

    // Arrays without a row-major slice are refused by name, and nothing moves.
    let before = net.w1.clone();
    let mut column_major = OldArray2::<f64>::zeros((3, 4).f());
    let err = ndoptim::named!("w1", net.w1, column_major).unwrap_err();
    assert_eq!(
        err,
        Error::NotContiguous {
            key: "w1".into(),
            which: "gradient"
        }
    );
    let err = ndoptim::named!("w1", column_major, net.g1).unwrap_err();
    assert!(matches!(
        err,
        Error::NotContiguous {
            which: "parameter",
            ..
        }
    ));
    assert!(err.to_string().contains("\"w1\""), "{err}");
    assert_eq!(net.w1, before);
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
