//! Gradient clipping against `torch.nn.utils.clip_grad_norm_` (`tests/data/torch_clip_grad_norm.json`).

mod common;

use std::path::Path;

use ndarray::arr1;
use ndoptim::clip::{Norm, clip_grad_norm, clip_grad_value};
use ndoptim::{Error, Params};

#[test]
fn clip_grad_norm_matches_pytorch() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/torch_clip_grad_norm.json");
    let cases = common::read_json(&path).unwrap();
    for case in cases.as_array().unwrap() {
        let norm = match case["norm_type"].as_f64() {
            Some(1.0) => Norm::L1,
            Some(2.0) => Norm::L2,
            _ => Norm::Infinity, // "inf"
        };
        let mut grads = common::params::<f64>(&case["grads"]).unwrap();
        let total =
            clip_grad_norm(&mut grads, case["max_norm"].as_f64().unwrap(), norm, true).unwrap();
        let want = case["total_norm"].as_f64().unwrap();
        assert!(
            common::relative_error(total, want) <= 1e-12,
            "{norm:?}: {total} vs {want}"
        );
        let clipped = common::params::<f64>(&case["clipped"]).unwrap();
        for (k, want) in &clipped {
            for (&a, &b) in grads[k].iter().zip(want.iter()) {
                assert!(
                    common::relative_error(a, b) <= 1e-12,
                    "{norm:?} {k}: {a} vs {b}"
                );
            }
        }
    }
}

#[test]
fn a_non_finite_norm_is_an_error_only_when_asked_and_leaves_gradients_alone() {
    let mut grads = Params::from([("w".to_string(), arr1(&[1.0f32, f32::NAN]).into_dyn())]);
    let err = clip_grad_norm(&mut grads, 1.0, Norm::L2, true).unwrap_err();
    assert!(
        matches!(err, Error::NonFiniteNorm { norm } if norm.is_nan()),
        "{err}"
    );
    assert_eq!(grads["w"][0], 1.0);
    assert!(
        clip_grad_norm(&mut grads, 1.0, Norm::L2, false)
            .unwrap()
            .is_nan()
    );
    assert!(clip_grad_norm(&mut grads, -1.0, Norm::L2, false).is_err());
}

#[test]
fn small_gradients_are_left_as_they_are() {
    let mut grads = Params::from([("w".to_string(), arr1(&[0.3f64, -0.4]).into_dyn())]);
    assert_eq!(
        clip_grad_norm(&mut grads, 1.0, Norm::L2, false).unwrap(),
        0.5
    );
    assert_eq!(grads["w"], arr1(&[0.3, -0.4]).into_dyn());
}

#[test]
fn clip_grad_value_clamps_every_element() {
    let mut grads = Params::from([("w".to_string(), arr1(&[3.0f64, -0.5, -7.0]).into_dyn())]);
    clip_grad_value(&mut grads, 1.0).unwrap();
    assert_eq!(grads["w"], arr1(&[1.0, -0.5, -1.0]).into_dyn());
    assert!(clip_grad_value(&mut grads, f64::NAN).is_err());
}

#[test]
fn views_clip_like_the_map_they_view() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/torch_clip_grad_norm.json");
    let cases = common::read_json(&path).unwrap();
    for case in cases.as_array().unwrap() {
        for norm in [Norm::L1, Norm::L2, Norm::Infinity] {
            let mut map = common::params::<f64>(&case["grads"]).unwrap();
            let mut copy = map.clone();
            // The views in the map's own order, so that the norms add up in the same order.
            let mut views: Vec<_> = copy.values_mut().map(|g| g.view_mut()).collect();
            let a = clip_grad_norm(&mut map, 0.5, norm, false).unwrap();
            let b = clip_grad_norm(&mut views, 0.5, norm, false).unwrap();
            clip_grad_value(&mut views[..], 0.01).unwrap();
            clip_grad_value(&mut map, 0.01).unwrap();
            assert_eq!(a.to_bits(), b.to_bits(), "{norm:?}");
            drop(views);
            assert_eq!(map, copy);
        }
    }
}
