//! The non-finite guard: skip or refuse a step whose gradients hold NaN or infinity.

#[macro_use]
mod common;

use common::{params_bits, state_bits};
use ndarray::arr1;
use ndoptim::{Engine, Error, NonFinite, Optimizer, Params, Rule};

fn good() -> (Params<f64>, Params<f64>) {
    let p = Params::from([
        ("w".to_string(), arr1(&[1.0, 2.0]).into_dyn()),
        ("b".to_string(), arr1(&[0.5]).into_dyn()),
    ]);
    let g = Params::from([
        ("w".to_string(), arr1(&[0.1, -0.2]).into_dyn()),
        ("b".to_string(), arr1(&[0.3]).into_dyn()),
    ]);
    (p, g)
}

fn guarded<R: Rule<f64>>(opt: Engine<R, f64>) {
    for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let (mut p, g) = good();
        let mut skip = opt.clone().non_finite(NonFinite::Skip);
        let mut refuse = opt.clone().non_finite(NonFinite::Error);
        skip.update(&mut p, &g).unwrap();
        refuse.update(&mut p.clone(), &g).unwrap();
        let mut bad_g = g.clone();
        bad_g.get_mut("w").unwrap()[1] = bad;
        let (p_before, s_before) = (params_bits(&p), state_bits(&skip));
        skip.update(&mut p, &bad_g).unwrap();
        assert_eq!(
            (params_bits(&p), state_bits(&skip)),
            (p_before.clone(), s_before),
            "{}",
            skip.name()
        );
        assert_eq!(skip.skipped_steps(), 1);
        let r_before = state_bits(&refuse);
        let err = refuse.update(&mut p, &bad_g).unwrap_err();
        assert_eq!(err, Error::NonFiniteGradient { key: "w".into() });
        assert_eq!((params_bits(&p), state_bits(&refuse)), (p_before, r_before));
        // A finite step after a skipped one goes through.
        skip.update(&mut p, &g).unwrap();
        assert_eq!(skip.step_count("w"), Some(2));
    }
}

#[test]
fn skip_and_error_leave_everything_untouched() {
    with_each_optimizer!(f64, |o| guarded(o));
}

#[test]
fn propagate_is_the_default() {
    let (mut p, mut g) = good();
    g.get_mut("w").unwrap()[0] = f64::NAN;
    let mut sgd = ndoptim::Sgd::<f64>::default();
    sgd.update(&mut p, &g).unwrap();
    assert!(p["w"][0].is_nan());
    assert_eq!(sgd.skipped_steps(), 0);
}
