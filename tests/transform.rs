//! Optimizers composed from transforms: a chain computes what its pieces compute, in order, keeps
//! their state under their names, and a per-tensor transform sees the whole key whatever its
//! memory layout.

use ndarray::{ArrayD, IxDyn, ShapeBuilder};
use ndoptim::transform::{
    self, AddDecayedWeights, Clip, Ema, Scale, ScaleByAdam, ScaleByLearningRate, ScaleBySign,
    ScaleByTrustRatio, Trace,
};
use ndoptim::{Error, Lamb, Named, Optimizer, Params, chain};

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
            "scale"
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
