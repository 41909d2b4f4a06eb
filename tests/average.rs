//! Weight averages: the formulas where no reference file covers them (warm-up), errors that
//! change nothing, and checkpoints that resume bit-identically. The references' trajectories
//! (`torch_swa_ema_*`, `optax_ema_*`) are replayed by the conformance test.

mod common;

use ndarray::{ArrayD, IxDyn};
use ndoptim::average::Average;
use ndoptim::{Error, Params};

const SHAPES: [(&str, &[usize]); 3] = [("W1", &[3, 4]), ("b1", &[4]), ("s", &[])];

fn averages() -> Vec<Average<f64>> {
    vec![
        Average::ema(0.9),
        Average::ema(0.99).warmup(true),
        Average::ema_from_zero(0.9),
        Average::ema_from_zero(0.9).debias(false).warmup(true),
        Average::swa(),
    ]
}

#[test]
fn warmup_lowers_the_decay_early_as_tensorflow_does() {
    let mut avg = Average::<f64>::ema(0.99).warmup(true);
    let mut want = 0.0;
    for t in 0..30 {
        let x = (t as f64 * 0.7).sin();
        let p: Params<f64> = [("x".to_string(), ArrayD::from_elem(IxDyn(&[]), x))].into();
        avg.update(&p).unwrap();
        // torch's convention: the first update copies.
        want = if t == 0 {
            x
        } else {
            let d = 0.99f64.min((1.0 + t as f64) / (10.0 + t as f64));
            let w = 1.0 - d;
            // lerp as torch computes it: fused, from the nearer end
            if w < 0.5 {
                w.mul_add(x - want, want)
            } else {
                (w - 1.0).mul_add(x - want, x)
            }
        };
        let got = avg.averages()["x"][[]];
        assert_eq!(got.to_bits(), want.to_bits(), "update {t}");
    }
}

#[test]
fn swa_is_the_mean_of_every_update() {
    let mut avg = Average::<f64>::swa();
    let values = [1.0, 2.0, 4.0, 8.0, 16.0];
    for v in values {
        let p: Params<f64> = [("x".to_string(), ArrayD::from_elem(IxDyn(&[2]), v))].into();
        avg.update(&p).unwrap();
    }
    assert_eq!(avg.count("x"), Some(5));
    assert!((avg.averages()["x"][[1]] - 6.2).abs() < 1e-15);
}

#[test]
fn a_changed_shape_or_a_bad_decay_is_an_error_that_changes_nothing() {
    for mut avg in averages() {
        let (p, _) = common::small_model::<f64>(&SHAPES, 0);
        avg.update(&p).unwrap();
        let before = (common::params_bits(&avg.averages()), avg.count("W1"));
        let (mut q, _) = common::small_model::<f64>(&SHAPES, 1);
        q.insert("b1".into(), ArrayD::zeros(IxDyn(&[5])));
        let err = avg.update(&q).unwrap_err();
        assert!(
            matches!(&err, Error::StateShapeMismatch { key, .. } if key == "b1"),
            "{err}"
        );
        assert_eq!(
            (common::params_bits(&avg.averages()), avg.count("W1")),
            before
        );
        let mut model = q.clone();
        assert!(avg.copy_to(&mut model).is_err());
        assert_eq!(
            common::params_bits(&model),
            common::params_bits(&q),
            "copy_to wrote before failing"
        );
    }
    let mut avg = Average::<f64>::ema(1.5);
    let (p, _) = common::small_model::<f64>(&SHAPES, 0);
    assert!(matches!(
        avg.update(&p),
        Err(Error::InvalidHyperparameter { .. })
    ));
    assert_eq!(avg.count("W1"), None);
}

#[test]
fn a_key_absent_from_an_update_keeps_its_average() {
    let mut avg = Average::<f64>::ema(0.5);
    let (p, _) = common::small_model::<f64>(&SHAPES, 0);
    avg.update(&p).unwrap();
    let b1 = avg.averages()["b1"].clone();
    let (mut q, _) = common::small_model::<f64>(&SHAPES, 1);
    q.remove("b1");
    avg.update(&q).unwrap();
    assert_eq!(avg.averages()["b1"], b1);
    assert_eq!((avg.count("b1"), avg.count("W1")), (Some(1), Some(2)));
}

#[test]
fn a_checkpoint_resumes_bit_identically() {
    for (mut straight, mut first) in averages().into_iter().zip(averages()) {
        for step in 0..10 {
            let (p, _) = common::small_model::<f64>(&SHAPES, step);
            straight.update(&p).unwrap();
            if step < 4 {
                first.update(&p).unwrap();
            }
        }
        let mut resumed = averages()
            .into_iter()
            .find(|a| a.averaging() == first.averaging())
            .unwrap();
        resumed.restore(first.checkpoint()).unwrap();
        #[cfg(feature = "safetensors")]
        {
            let bytes = first.save_safetensors().unwrap();
            let mut loaded = Average::<f64>::swa();
            // Another averaging's file loads whole: the averaging is part of the state.
            loaded.load_safetensors(&bytes).unwrap();
            assert_eq!(loaded.averaging(), first.averaging());
            assert_eq!(
                common::params_bits(&loaded.averages()),
                common::params_bits(&first.averages())
            );
        }
        for step in 4..10 {
            let (p, _) = common::small_model::<f64>(&SHAPES, step);
            resumed.update(&p).unwrap();
        }
        assert_eq!(
            common::params_bits(&resumed.averages()),
            common::params_bits(&straight.averages())
        );
    }
}
