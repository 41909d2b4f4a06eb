//! Optimizers composed from transforms: a chain computes what its pieces compute, in order, keeps
//! their state under their names, and a per-tensor transform sees the whole key whatever its
//! memory layout.

use ndarray::{ArrayD, IxDyn, ShapeBuilder};
use ndoptim::transform::{
    self, AddDecayedWeights, Clip, Ema, Scale, ScaleByAdam, ScaleByLearningRate, ScaleByMuon,
    ScaleByOptimisticGradient, ScaleByRadam, ScaleByShape, ScaleBySign, ScaleByTrustRatio, Trace,
};
use ndoptim::{Error, Lamb, Muon, Named, Optimizer, Params, chain};

fn one_key(p: &[f64], g: &[f64]) -> (Params<f64>, Params<f64>) {
    let shaped = |v: &[f64]| ArrayD::from_shape_vec(IxDyn(&[v.len()]), v.to_owned()).unwrap();
    (
        Params::from([("w".to_string(), shaped(p))]),
        Params::from([("w".to_string(), shaped(g))]),
    )
}

/// optax's adamw, chained, against its formula written out for two steps.
#[test]
fn a_chain_is_its_pieces_in_order() {
    let (lr, wd, [b1, b2], eps) = (0.1, 0.01, [0.9, 0.999], 1e-8);
    let mut opt = transform::optimizer::<_, f64>(chain!(
        ScaleByAdam::default(),
        AddDecayedWeights::new(wd),
        ScaleByLearningRate,
    ))
    .lr(lr);
    let (mut params, grads) = one_key(&[1.0, -2.0, 0.0], &[0.5, 0.25, -1.0]);
    let (mut p, g) = (
        params["w"].iter().copied().collect::<Vec<_>>(),
        grads["w"].iter().copied().collect::<Vec<_>>(),
    );
    let (mut m, mut v) = (vec![0.0; 3], vec![0.0; 3]);
    for t in 1..=2 {
        opt.update(&mut params, &grads).unwrap();
        for i in 0..3 {
            m[i] = (1.0 - b1) * g[i] + b1 * m[i];
            v[i] = (1.0 - b2) * (g[i] * g[i]) + b2 * v[i];
            let (bc1, bc2) = (1.0 - f64::powi(b1, t), 1.0 - f64::powi(b2, t));
            let u = (m[i] / bc1) / ((v[i] / bc2).sqrt() + eps) + wd * p[i];
            p[i] += -lr * u;
        }
        assert_eq!(
            params["w"].iter().copied().collect::<Vec<_>>(),
            p,
            "step {t}"
        );
    }
    assert_eq!(opt.slot_names(), ["mu", "nu"]);
    assert_eq!(
        opt.slot("w", "mu")
            .unwrap()
            .iter()
            .copied()
            .collect::<Vec<_>>(),
        m
    );
    assert_eq!(
        opt.slot("w", "nu")
            .unwrap()
            .iter()
            .copied()
            .collect::<Vec<_>>(),
        v
    );
}

/// State of every piece, under its own name, in the chain's order; stateless pieces keep none.
#[test]
fn each_piece_keeps_its_own_state() {
    let mut opt = transform::optimizer::<_, f64>(chain!(
        Trace::new(0.5),
        ScaleBySign,
        Scale(2.0),
        Clip::new(1.5),
        Trace::new(0.25).nesterov(true),
        ScaleByLearningRate,
    ))
    .lr(1.0);
    let (mut params, grads) = one_key(&[0.0, 0.0], &[3.0, -0.5]);
    opt.update(&mut params, &grads).unwrap();
    assert_eq!(opt.slot_names(), ["trace", "trace"]);
    // First trace: g. Sign, ×2, clipped to ±1.5: ±1.5. Nesterov trace: m = 1.5, out 1.5 + 0.25·1.5.
    assert_eq!(
        params["w"].iter().copied().collect::<Vec<_>>(),
        [-1.875, 1.875]
    );
    opt.update(&mut params, &grads).unwrap();
    // First trace 1.5·g: same signs. Second: m = 1.5 + 0.25·1.5 = 1.875, out 1.5 + 0.25·1.875.
    assert_eq!(
        params["w"].iter().copied().collect::<Vec<_>>(),
        [-1.875 - 1.96875, 1.875 + 1.96875]
    );
}

/// Hyperparameters are checked before anything changes, naming the piece's argument.
#[test]
fn bad_pieces_are_refused_by_name() {
    let (mut params, grads) = one_key(&[1.0], &[1.0]);
    let before = params.clone();
    let refusals = [
        transform::optimizer::<_, f64>(chain!(
            ScaleByAdam::default().betas([0.9, 1.5]),
            ScaleByLearningRate,
        ))
        .update(&mut params, &grads),
        transform::optimizer::<_, f64>(chain!(Clip::new(-1.0), ScaleByLearningRate))
            .update(&mut params, &grads),
        transform::optimizer::<_, f64>(chain!(
            ScaleByTrustRatio::default().eps(f64::NAN),
            ScaleByLearningRate,
        ))
        .update(&mut params, &grads),
        transform::optimizer::<_, f64>(chain!(Scale(f64::INFINITY), ScaleByLearningRate))
            .update(&mut params, &grads),
        transform::optimizer::<_, f64>(chain!(
            ScaleByRadam::default().threshold(f64::NAN),
            ScaleByLearningRate,
        ))
        .update(&mut params, &grads),
        transform::optimizer::<_, f64>(chain!(
            ScaleByOptimisticGradient {
                alpha: 1.0,
                beta: f64::INFINITY
            },
            ScaleByLearningRate,
        ))
        .update(&mut params, &grads),
    ];
    let names: Vec<_> = refusals
        .into_iter()
        .map(|r| match r {
            Err(Error::InvalidHyperparameter { name, .. }) => name,
            other => panic!("expected a refusal, got {other:?}"),
        })
        .collect();
    assert_eq!(
        names,
        [
            "beta parameter at index 1",
            "max_delta value",
            "epsilon value",
            "scale",
            "threshold",
            "beta"
        ]
    );
    assert_eq!(params, before);
}

/// A per-tensor transform reduces over the whole key: the same bits from a column-major view as
/// from the row-major map.
#[test]
fn trust_ratios_see_the_whole_key_in_any_layout() {
    let data: Vec<f64> = (0..12).map(|i| (i as f64 - 5.5) / 3.0).collect();
    let grad: Vec<f64> = (0..12).map(|i| ((i * 7 % 5) as f64 - 2.0) / 4.0).collect();
    let row = |v: &[f64]| ArrayD::from_shape_vec(IxDyn(&[3, 4]), v.to_owned()).unwrap();
    let mut map_params = Params::from([("w".to_string(), row(&data))]);
    let grads = Params::from([("w".to_string(), row(&grad))]);
    // The same logical arrays stored column-major.
    let column = |a: &ArrayD<f64>| {
        let mut c = ArrayD::zeros(IxDyn(&[3, 4]).f());
        c.assign(a);
        c
    };
    let (mut p_col, g_col) = (column(&map_params["w"]), column(&grads["w"]));
    let mut by_map = Lamb::<f64>::default().weight_decay(0.1);
    let mut by_view = by_map.clone();
    for _ in 0..3 {
        by_map.update(&mut map_params, &grads).unwrap();
        by_view
            .update_named(&mut [Named::new("w", p_col.view_mut(), g_col.view())])
            .unwrap();
    }
    assert_eq!(map_params["w"], p_col);
    assert_ne!(map_params["w"], row(&data), "the steps moved the parameter");
}

/// optax's `ema` with and without `debias`: `m ← (1 − β)·u + β·m`, passed on divided by
/// `1 − βᵗ` (the bias correction `ScaleByAdam` shares, checked against optax's files) or as is.
#[test]
fn ema_debiases_as_optax_does() {
    let beta = 0.9f64;
    for debias in [true, false] {
        let mut o =
            transform::optimizer::<_, f64>(chain!(Ema::new(beta).debias(debias), Scale(-1.0)));
        let (mut p, g) = one_key(&[0.0, 0.0], &[1.0, -2.0]);
        let (mut m, mut want) = ([0.0f64; 2], [0.0f64; 2]);
        for t in 1..=3 {
            o.update(&mut p, &g).unwrap();
            for i in 0..2 {
                m[i] = (1.0 - beta) * g["w"][i] + beta * m[i];
                let correction = if debias {
                    1.0 - beta.powf(f64::from(t))
                } else {
                    1.0
                };
                want[i] -= m[i] / correction;
            }
            assert_eq!(
                p["w"].as_slice().unwrap(),
                &want[..],
                "debias {debias}, step {t}"
            );
        }
        assert_eq!(o.slot("w", "ema").unwrap().as_slice().unwrap(), &m[..]);
    }
}

/// optax's `muon` on matrices is `chain(scale_by_muon, scale_by_shape, add_decayed_weights,
/// scale_by_learning_rate)`: the chain, built by a user from the public transforms, moves wide
/// and tall matrices (stored row- and column-major) as `Muon::optax` does, bit for bit, and keeps
/// its momentum under optax's name.
#[test]
fn a_chain_with_a_tensor_stage_is_optax_muon() {
    let (lr, wd, rms) = (0.05, 0.01, 0.2);
    let muon = ScaleByMuon::default().adaptive(true).momentum(0.9);
    let shape = ScaleByShape {
        consistent_rms: Some(rms),
    };
    let mut chained = transform::optimizer::<_, f64>(chain!(
        muon,
        shape,
        AddDecayedWeights::new(wd),
        ScaleByLearningRate,
    ))
    .lr(lr);
    let mut whole = Muon::<f64>::optax()
        .lr(lr)
        .weight_decay(wd)
        .adaptive(true)
        .momentum(0.9)
        .consistent_rms(Some(rms));
    let matrix = |shape: [usize; 2], seed: f64| {
        ArrayD::from_shape_fn(IxDyn(&shape), |i| {
            ((i[0] * 7 + i[1] * 3) as f64 + seed).sin()
        })
    };
    let mut by_chain = Params::from([
        ("wide".to_string(), matrix([3, 5], 0.0)),
        ("tall".to_string(), matrix([6, 2], 1.0)),
    ]);
    let mut by_muon = by_chain.clone();
    // The wide key again, stored column-major, through the second way in.
    let mut column = ArrayD::zeros(IxDyn(&[3, 5]).f());
    column.assign(&by_chain["wide"]);
    let mut by_view = chained.clone();
    for t in 0..3 {
        let grads: Params<f64> = by_chain
            .iter()
            .map(|(k, p)| (k.clone(), p.mapv(|x| (x * 3.0 + f64::from(t)).cos())))
            .collect();
        let mut g_col = ArrayD::zeros(IxDyn(&[3, 5]).f());
        g_col.assign(&grads["wide"]);
        chained.update(&mut by_chain, &grads).unwrap();
        whole.update(&mut by_muon, &grads).unwrap();
        by_view
            .update_named(&mut [Named::new("wide", column.view_mut(), g_col.view())])
            .unwrap();
        assert_eq!(by_chain, by_muon, "step {t}");
        assert_eq!(column, by_chain["wide"], "step {t}");
    }
    assert_ne!(
        by_chain["wide"],
        matrix([3, 5], 0.0),
        "the steps moved the parameter"
    );
    assert_eq!(chained.slot_names(), ["mu"]);
    assert_eq!(chained.slot("tall", "mu"), whole.slot("tall", "mu"));
}

/// A chain with a tensor stage computes in `F` over the whole key: a low-precision layout is
/// refused with a typed error before anything is written.
#[cfg(feature = "half")]
#[test]
fn a_tensor_stage_refuses_low_precision_parameters() {
    use half::bf16;
    let mut opt = ndoptim::Engine::<_, f32, ndoptim::Mixed<bf16>>::new(transform::TransformRule(
        chain!(ScaleByMuon::default(), ScaleByLearningRate),
    ));
    let p0 = ArrayD::from_elem(IxDyn(&[2, 2]), bf16::from_f32(0.5));
    let mut params = Params::from([("w".to_string(), p0.clone())]);
    let grads = Params::from([("w".to_string(), p0.clone())]);
    assert!(matches!(
        opt.update(&mut params, &grads),
        Err(Error::IncompatibleOptions { .. })
    ));
    assert_eq!(params["w"], p0);
}

/// What each optimizer says about its reach: elementwise chains and rules, per-key sums (trust
/// ratios), whole tensors (Newton–Schulz).
#[test]
fn scopes_say_how_far_an_update_reaches() {
    use ndoptim::{Adam, Scope};
    let adam = transform::optimizer::<_, f64>(chain!(ScaleByAdam::default(), ScaleByLearningRate));
    let trust = transform::optimizer::<_, f64>(chain!(
        ScaleByAdam::default(),
        ScaleByTrustRatio::default(),
        ScaleByLearningRate,
    ));
    let muon = transform::optimizer::<_, f64>(chain!(ScaleByMuon::default(), ScaleByLearningRate));
    assert_eq!(adam.scope(), Scope::Element);
    assert_eq!(trust.scope(), Scope::Key);
    assert_eq!(muon.scope(), Scope::Tensor);
    assert_eq!(Adam::<f64>::default().scope(), Scope::Element);
    assert_eq!(Lamb::<f64>::default().scope(), Scope::Key);
    assert_eq!(Muon::<f64>::default().scope(), Scope::Tensor);
}
