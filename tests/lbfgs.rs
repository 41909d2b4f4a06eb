//! L-BFGS beyond the reference files: keys in sorted order, errors that lose nothing, maximizing,
//! f32, the unevaluated last iterate.

use ndarray::{ArrayD, IxDyn, ShapeBuilder};
use ndoptim::lbfgs::{Lbfgs, LineSearch};
use ndoptim::{Error, Params};

/// Rosenbrock's function of `x` (two elements), its gradient into `g`.
fn rosenbrock(x: [f64; 2], g: &mut [f64; 2]) -> f64 {
    let r = x[1] - x[0] * x[0];
    *g = [-2.0 * (1.0 - x[0]) - 400.0 * x[0] * r, 200.0 * r];
    (1.0 - x[0]) * (1.0 - x[0]) + 100.0 * (r * r)
}

fn one_key(x: &[f64]) -> Params<f64> {
    Params::from([(
        "x".to_string(),
        ArrayD::from_shape_vec(vec![x.len()], x.to_vec()).unwrap(),
    )])
}

/// A separable quadratic `Σ c_i (x_i - i)^2 / 2` of twelve variables, read from and written to
/// `x` through `get`/`set` so that any arrangement of keys can hold them.
fn quadratic(x: &[f64], g: &mut [f64]) -> f64 {
    let mut f = 0.0;
    for (i, (&x, g)) in x.iter().zip(g.iter_mut()).enumerate() {
        let c = 1.0 + i as f64 * 0.7;
        *g = c * (x - i as f64);
        f += 0.5 * c * (x - i as f64) * (x - i as f64);
    }
    f
}

#[test]
fn keys_are_one_vector_in_sorted_order_whatever_their_layout() {
    let start: Vec<f64> = (0..12).map(|i| (i as f64 * 1.3).sin()).collect();
    for search in [LineSearch::None, LineSearch::StrongWolfe] {
        // The twelve variables as one vector, and as three keys ("a" 2x3 in Fortran order, "b" 2,
        // "c" 4) that sort to the same order.
        let mut flat = one_key(&start);
        let mut opt = Lbfgs::default()
            .line_search(search)
            .history_size(4)
            .max_iter(6);
        let mut split = Params::from([
            (
                "c".to_string(),
                ArrayD::from_shape_vec(vec![4], start[8..].to_vec()).unwrap(),
            ),
            (
                "a".to_string(),
                ArrayD::from_shape_vec(IxDyn(&[2, 3]).f(), vec![0.0; 6]).unwrap(),
            ),
            (
                "b".to_string(),
                ArrayD::from_shape_vec(vec![2], start[6..8].to_vec()).unwrap(),
            ),
        ]);
        split
            .get_mut("a")
            .unwrap()
            .iter_mut()
            .zip(&start[..6])
            .for_each(|(a, &s)| *a = s);
        let mut split_opt = Lbfgs::default()
            .line_search(search)
            .history_size(4)
            .max_iter(6);
        for call in 0..4 {
            let l1 = opt
                .step(&mut flat, |p, g| {
                    let x: Vec<f64> = p["x"].iter().copied().collect();
                    let mut gx = vec![0.0; 12];
                    let f = quadratic(&x, &mut gx);
                    g.get_mut("x")
                        .unwrap()
                        .iter_mut()
                        .zip(&gx)
                        .for_each(|(g, &v)| *g = v);
                    f
                })
                .unwrap();
            let l2 = split_opt
                .step(&mut split, |p, g| {
                    let x: Vec<f64> = ["a", "b", "c"]
                        .iter()
                        .flat_map(|k| p[*k].iter().copied())
                        .collect();
                    let mut gx = vec![0.0; 12];
                    let f = quadratic(&x, &mut gx);
                    let mut it = gx.into_iter();
                    for k in ["a", "b", "c"] {
                        g.get_mut(k)
                            .unwrap()
                            .iter_mut()
                            .for_each(|g| *g = it.next().unwrap());
                    }
                    f
                })
                .unwrap();
            assert_eq!(l1.to_bits(), l2.to_bits(), "{search:?} call {call}");
            let joined: Vec<f64> = ["a", "b", "c"]
                .iter()
                .flat_map(|k| split[*k].iter().copied())
                .collect();
            let flat_now: Vec<f64> = flat["x"].iter().copied().collect();
            assert_eq!(joined, flat_now, "{search:?} call {call}");
            assert_eq!(opt.last_call(), split_opt.last_call());
        }
        assert!(opt.totals().iterations > 4, "{search:?} iterated");
    }
}

#[test]
fn converges_on_rosenbrock_in_both_modes_and_in_f32() {
    for search in [LineSearch::None, LineSearch::StrongWolfe] {
        let mut p = one_key(&[-1.5, 2.0]);
        let mut opt = Lbfgs::default().line_search(search).history_size(10);
        let mut loss = f64::INFINITY;
        for _ in 0..20 {
            opt.step(&mut p, |p, g| {
                let mut gx = [0.0; 2];
                loss = rosenbrock([p["x"][0], p["x"][1]], &mut gx);
                g.get_mut("x")
                    .unwrap()
                    .iter_mut()
                    .zip(gx)
                    .for_each(|(g, v)| *g = v);
                loss
            })
            .unwrap();
        }
        assert!(loss < 1e-8, "{search:?}: loss {loss}");
    }
    let mut p: Params<f32> =
        Params::from([("x".to_string(), ndarray::arr1(&[-1.5f32, 2.0]).into_dyn())]);
    let mut opt = Lbfgs::<f32>::default().line_search(LineSearch::StrongWolfe);
    for _ in 0..10 {
        opt.step(&mut p, |p, g| {
            let mut gx = [0.0; 2];
            let f = rosenbrock([f64::from(p["x"][0]), f64::from(p["x"][1])], &mut gx);
            g.get_mut("x")
                .unwrap()
                .iter_mut()
                .zip(gx)
                .for_each(|(g, v)| *g = v as f32);
            f
        })
        .unwrap();
    }
    assert!(
        (p["x"][0] - 1.0).abs() < 1e-3 && (p["x"][1] - 1.0).abs() < 1e-3,
        "{:?}",
        p["x"]
    );
}

#[test]
fn maximizing_the_negated_function_takes_the_same_iterates() {
    for search in [LineSearch::None, LineSearch::StrongWolfe] {
        let (mut p, mut q) = (one_key(&[-1.5, 2.0]), one_key(&[-1.5, 2.0]));
        let mut min = Lbfgs::default().line_search(search);
        let mut max = Lbfgs::default().line_search(search).maximize(true);
        for _ in 0..3 {
            let a = min.step(&mut p, |p, g| eval(p, g, 1.0)).unwrap();
            let b = max.step(&mut q, |p, g| eval(p, g, -1.0)).unwrap();
            assert_eq!(a, -b);
            assert_eq!(p, q, "{search:?}");
        }
    }
}

fn eval(p: &Params<f64>, g: &mut Params<f64>, sign: f64) -> f64 {
    let mut gx = [0.0; 2];
    let f = rosenbrock([p["x"][0], p["x"][1]], &mut gx);
    g.get_mut("x")
        .unwrap()
        .iter_mut()
        .zip(gx)
        .for_each(|(g, v)| *g = sign * v);
    sign * f
}

/// A loss that turns NaN at evaluation `bad` (counted from 1): the error, and the parameters at
/// the last iterate whose loss was finite.
#[test]
fn a_non_finite_loss_stops_at_the_last_finite_iterate() {
    // Without a line search every evaluation is at an iterate, so the last finite iterate is the
    // point of the last finite evaluation.
    for bad in [1, 2, 5, 9] {
        let mut p = one_key(&[-1.5, 2.0]);
        let mut opt = Lbfgs::default().max_iter(20);
        let (mut n, mut seen) = (0, Vec::new());
        let err = opt
            .step(&mut p, |x, g| {
                n += 1;
                seen.push(x["x"].clone());
                if n == bad { f64::NAN } else { eval(x, g, 1.0) }
            })
            .unwrap_err();
        assert!(matches!(err, Error::NonFiniteLoss { .. }), "{err}");
        let last_finite = if bad == 1 { &seen[0] } else { &seen[bad - 2] };
        assert_eq!(&p["x"], last_finite, "NaN at evaluation {bad}");
        assert_eq!(opt.totals().evaluations, 0, "the history is dropped");
    }
    // With the strong-Wolfe search, trial points are not iterates: the parameters go back to the
    // point the search started from, whose loss was finite.
    let mut p = one_key(&[-1.5, 2.0]);
    let mut opt = Lbfgs::default().line_search(LineSearch::StrongWolfe);
    let mut n = 0;
    let err = opt
        .step(&mut p, |x, g| {
            n += 1;
            if n == 7 {
                f64::INFINITY
            } else {
                eval(x, g, 1.0)
            }
        })
        .unwrap_err();
    assert!(matches!(err, Error::NonFiniteLoss { loss } if loss == f64::INFINITY));
    let mut g = Params::from([("x".to_string(), ArrayD::zeros(vec![2]))]);
    assert!(
        eval(&p, &mut g, 1.0) < 12.5,
        "kept a finite iterate below the start"
    );
}

/// Without a line search, PyTorch leaves the last iterate of a call unevaluated: if the next call
/// finds its loss not finite, the parameters go back to the iterate before it.
#[test]
fn an_unevaluated_last_iterate_found_non_finite_gives_way_to_the_one_before() {
    let mut p = one_key(&[-1.5, 2.0]);
    let mut opt = Lbfgs::default().max_iter(3).max_eval(10);
    let mut points = Vec::new();
    opt.step(&mut p, |x, g| {
        points.push(x["x"].clone());
        eval(x, g, 1.0)
    })
    .unwrap();
    assert_eq!(opt.last_call().evaluations, 3);
    let unevaluated = p["x"].clone();
    assert!(points.iter().all(|q| q != unevaluated));
    let err = opt.step(&mut p, |_, _| f64::NAN).unwrap_err();
    assert!(matches!(err, Error::NonFiniteLoss { .. }));
    assert_eq!(&p["x"], points.last().unwrap());
}

#[test]
fn other_parameters_or_bad_gradients_are_errors_that_change_nothing() {
    let mut p = one_key(&[-1.5, 2.0]);
    let mut opt = Lbfgs::default();
    opt.step(&mut p, |x, g| eval(x, g, 1.0)).unwrap();
    let (before, totals) = (p.clone(), opt.totals());
    // A parameter of another shape, a key more, a key fewer.
    let mut reshaped = one_key(&[1.0, 2.0, 3.0]);
    let err = opt.step(&mut reshaped, |x, g| eval(x, g, 1.0)).unwrap_err();
    assert!(
        matches!(&err, Error::StateShapeMismatch { key, .. } if key == "x"),
        "{err}"
    );
    let mut more = p.clone();
    more.insert("y".into(), ArrayD::zeros(vec![1]));
    let err = opt.step(&mut more, |x, g| eval(x, g, 1.0)).unwrap_err();
    assert!(
        matches!(&err, Error::KeySetChanged { key } if key == "y"),
        "{err}"
    );
    let mut fewer = Params::from([("w".to_string(), ArrayD::zeros(vec![2]))]);
    assert!(matches!(
        opt.step(&mut fewer, |_, _| 0.0),
        Err(Error::KeySetChanged { .. })
    ));
    // Invalid hyperparameters.
    for bad in [
        opt.clone().lr(-1.0),
        opt.clone().max_iter(0),
        opt.clone().max_eval(0),
        opt.clone().history_size(0),
        opt.clone().tolerance_grad(f64::NAN),
    ] {
        let mut bad = bad;
        assert!(matches!(
            bad.step(&mut p, |x, g| eval(x, g, 1.0)),
            Err(Error::InvalidHyperparameter { .. })
        ));
    }
    assert_eq!((&p, opt.totals()), (&before, totals));
    // A closure that leaves a gradient of another shape, or adds a key.
    let err = opt
        .step(&mut p, |_, g| {
            g.insert("x".into(), ArrayD::zeros(vec![3]));
            1.0
        })
        .unwrap_err();
    assert!(
        matches!(&err, Error::ShapeMismatch { key, grad_shape, .. } if key == "x" && grad_shape == &[3])
    );
    assert_eq!(p, before);
    let err = opt
        .step(&mut p, |_, g| {
            g.insert("z".into(), ArrayD::zeros(vec![1]));
            1.0
        })
        .unwrap_err();
    assert!(matches!(&err, Error::UnknownKey { key } if key == "z"));
    assert_eq!(p, before);
    // After reset, any parameters.
    opt.reset();
    opt.step(&mut reshaped, |_, g| {
        g.get_mut("x").unwrap().fill(1.0);
        1.0
    })
    .unwrap();
    assert!(reshaped["x"][0] < 1.0);
}

#[test]
fn an_optimum_at_the_start_returns_after_one_evaluation() {
    let mut p = one_key(&[1.0, 1.0]);
    let mut opt = Lbfgs::default().line_search(LineSearch::StrongWolfe);
    assert_eq!(opt.step(&mut p, |x, g| eval(x, g, 1.0)).unwrap(), 0.0);
    assert_eq!(opt.last_call().evaluations, 1);
    assert_eq!(opt.last_call().iterations, 0);
    let mut empty = Params::<f64>::new();
    opt.reset();
    assert_eq!(opt.step(&mut empty, |_, _| 3.0).unwrap(), 3.0);
}
