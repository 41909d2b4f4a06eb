//! SAM: its two modes agree, errors change nothing. The reference trajectories (`optax_sam_*`,
//! `optax_gen_sam_*`) are replayed by the conformance test.

mod common;

use ndarray::{ArrayD, IxDyn};
use ndoptim::sam::Sam;
use ndoptim::{Adam, Error, Optimizer, Params};

const SHAPES: [(&str, &[usize]); 3] = [("W1", &[3, 4]), ("b1", &[4]), ("s", &[])];

/// `f(p) = Σ (p − 0.1)²/2 + Σ p⁴/4`: its gradient `p − 0.1 + p³`.
fn gradient(p: &Params<f64>, g: &mut Params<f64>) -> f64 {
    let mut loss = 0.0;
    for (k, x) in p {
        g.get_mut(k)
            .unwrap()
            .zip_mut_with(x, |g, &x| *g = x - 0.1 + x * x * x);
        loss += x
            .iter()
            .map(|x| (x - 0.1).powi(2) / 2.0 + x.powi(4) / 4.0)
            .sum::<f64>();
    }
    loss
}

#[test]
fn a_whole_step_is_a_period_of_updates() {
    let (p0, mut g) = common::small_model::<f64>(&SHAPES, 0);
    for period in [2, 3] {
        let (mut p, mut q) = (p0.clone(), p0.clone());
        let mut opaque = Sam::new(Adam::<f64>::pytorch().lr(0.01), 0.05).sync_period(period);
        let mut transparent = opaque.clone();
        for _ in 0..4 {
            opaque.step(&mut p, gradient).unwrap();
            for _ in 0..period {
                gradient(&q, &mut g);
                transparent.update(&mut q, &g).unwrap();
            }
            assert_eq!(common::params_bits(&p), common::params_bits(&q));
        }
    }
}

#[test]
fn errors_change_nothing() {
    let (mut p, mut g) = common::small_model::<f64>(&SHAPES, 0);
    let mut sam = Sam::new(Adam::<f64>::pytorch(), 0.05);
    gradient(&p, &mut g);
    sam.update(&mut p, &g).unwrap(); // half-way through a period
    let before = common::params_bits(&p);
    assert!(matches!(
        sam.step(&mut p, gradient),
        Err(Error::IncompatibleOptions { .. })
    ));
    let mut unknown = g.clone();
    unknown.insert("nope".into(), ArrayD::zeros(IxDyn(&[1])));
    assert!(matches!(
        sam.update(&mut p, &unknown),
        Err(Error::UnknownKey { .. })
    ));
    let mut wrong = g.clone();
    wrong.insert("b1".into(), ArrayD::zeros(IxDyn(&[5])));
    assert!(matches!(
        sam.update(&mut p, &wrong),
        Err(Error::ShapeMismatch { .. })
    ));
    assert_eq!(sam.steps_since_sync(), 1);
    assert_eq!(common::params_bits(&p), before);

    // A closure that adds a key, and a base that refuses its hyperparameters.
    let mut fresh = Sam::new(Adam::<f64>::pytorch(), 0.05);
    let adds = |p: &Params<f64>, g: &mut Params<f64>| {
        g.insert("nope".into(), ArrayD::zeros(IxDyn(&[1])));
        gradient(p, g)
    };
    assert!(matches!(
        fresh.step(&mut p, adds),
        Err(Error::UnknownKey { .. })
    ));
    let mut bad = Sam::new(Adam::<f64>::pytorch().eps(-1.0), 0.05);
    assert!(bad.step(&mut p, gradient).is_err());
    assert_eq!(common::params_bits(&p), before);
    assert_eq!(fresh.inner().step_count("W1"), None);

    for (mut sam, name) in [
        (Sam::new(Adam::<f64>::pytorch(), -1.0), "rho value"),
        (
            Sam::new(Adam::<f64>::pytorch(), 0.05).sync_period(0),
            "sync_period",
        ),
    ] {
        let err = sam.step(&mut p, gradient).unwrap_err();
        assert!(
            matches!(err, Error::InvalidHyperparameter { name: n, .. } if n == name),
            "{err}"
        );
    }
    let mut one = Sam::new(Adam::<f64>::pytorch(), 0.05).sync_period(1);
    assert!(matches!(
        one.update(&mut p, &g),
        Err(Error::IncompatibleOptions { .. })
    ));
    one.step(&mut p, gradient).unwrap(); // a whole step of one gradient is the inner step
}
