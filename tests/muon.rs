//! Muon beyond the reference files: keys of every rank in one update, the fallback and routing,
//! and what Newton–Schulz is for (an update of near-unit singular values).

mod common;

use common::params_bits;
use ndarray::{ArrayD, IxDyn};
use ndoptim::{AdamW, Muon, Optimizer, Params};

fn array(shape: &[usize], seed: usize) -> ArrayD<f64> {
    let n: usize = shape.iter().product();
    // xorshift64: uniform values in [-1, 1), far from the low-rank patterns of a modular formula.
    let mut x = 0x9E37_79B9_7F4A_7C15u64 ^ (seed as u64 + 1);
    let data = (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 11) as f64 / (1u64 << 52) as f64 - 1.0
        })
        .collect();
    ArrayD::from_shape_vec(IxDyn(shape), data).unwrap()
}

fn one(key: &str, a: ArrayD<f64>) -> Params<f64> {
    Params::from([(key.to_string(), a)])
}

#[test]
fn one_update_takes_keys_of_rank_one_two_and_four() {
    let shapes: [(&str, &[usize]); 4] = [
        ("bias", &[6]),
        ("fc", &[6, 10]),
        ("conv", &[4, 3, 3, 3]),
        ("head", &[10, 6]),
    ];
    let mut opt = Muon::<f64>::default().lr(0.02).adam_for("head");
    let mut p: Params<f64> = shapes
        .iter()
        .enumerate()
        .map(|(i, (k, s))| (k.to_string(), array(s, i)))
        .collect();
    let start = p.clone();
    for step in 0..3 {
        let g: Params<f64> = shapes
            .iter()
            .enumerate()
            .map(|(i, (k, s))| (k.to_string(), array(s, 10 * step + i + 1)))
            .collect();
        opt.update(&mut p, &g).unwrap();
    }

    // The 4-D key is Muon on its [4, 27] flattening.
    let mut flat = Muon::<f64>::default().lr(0.02);
    let mut conv = one(
        "conv",
        start["conv"]
            .clone()
            .into_shape_with_order(IxDyn(&[4, 27]))
            .unwrap(),
    );
    // The 1-D key and the routed 2-D key are torch.optim.AdamW with Muon's learning rate.
    let mut adamw = AdamW::<f64>::default().lr(0.02);
    let mut aux: Params<f64> = ["bias", "head"]
        .iter()
        .map(|&k| (k.to_string(), start[k].clone()))
        .collect();
    for step in 0..3 {
        let g = |k: &str, i: usize| {
            array(shapes[i].1, 10 * step + i + 1)
                .into_shape_with_order(start[k].raw_dim())
                .unwrap()
        };
        let gc = array(&[4, 3, 3, 3], 10 * step + 3)
            .into_shape_with_order(IxDyn(&[4, 27]))
            .unwrap();
        flat.update(&mut conv, &one("conv", gc)).unwrap();
        let ga: Params<f64> = [("bias", 0), ("head", 3)]
            .iter()
            .map(|&(k, i)| (k.to_string(), g(k, i)))
            .collect();
        adamw.update(&mut aux, &ga).unwrap();
    }
    let conv = conv["conv"]
        .clone()
        .into_shape_with_order(IxDyn(&[4, 3, 3, 3]))
        .unwrap();
    assert_eq!(
        params_bits(&one("conv", conv)),
        params_bits(&one("conv", p["conv"].clone()))
    );
    for k in ["bias", "head"] {
        assert_eq!(
            params_bits(&one(k, aux[k].clone())),
            params_bits(&one(k, p[k].clone())),
            "{k}"
        );
    }
    assert!(opt.slot("fc", "momentum_buffer").is_some() && opt.slot("fc", "exp_avg").is_none());
    assert!(
        opt.slot("head", "exp_avg_sq").is_some() && opt.slot("head", "momentum_buffer").is_none()
    );
}

#[test]
fn the_orthogonalised_update_has_near_unit_singular_values() {
    for (rows, cols) in [(8, 16), (16, 8), (12, 12)] {
        // With no momentum, no weight decay and lr 1 from zero, p = −r·O.
        let mut opt = Muon::<f64>::default()
            .lr(1.0)
            .momentum(0.0)
            .weight_decay(0.0);
        let mut p = one("w", ArrayD::zeros(IxDyn(&[rows, cols])));
        opt.update(&mut p, &one("w", array(&[rows, cols], 3)))
            .unwrap();
        let r = ((rows as f64) / (cols as f64)).max(1.0).sqrt();
        let o = p["w"]
            .mapv(|x| -x / r)
            .into_shape_with_order((rows, cols))
            .unwrap();
        // O·Oᵀ (or Oᵀ·O) is near the identity: the quintic's fixed points lie in about [0.7, 1.2].
        let gram = if rows <= cols {
            o.dot(&o.t())
        } else {
            o.t().dot(&o)
        };
        let m = rows.min(cols);
        for i in 0..m {
            assert!(
                (0.4..1.5).contains(&gram[[i, i]]),
                "{rows}x{cols}: diagonal {}",
                gram[[i, i]]
            );
        }
        let off: f64 = gram
            .indexed_iter()
            .filter(|((i, j), _)| i != j)
            .map(|(_, v)| v * v)
            .sum();
        assert!(
            off.sqrt() < 0.5 * (m as f64).sqrt(),
            "{rows}x{cols}: off-diagonal {off}"
        );
    }
}

#[test]
fn the_two_conventions_differ_and_each_keeps_its_own_slot_names() {
    let g = one("w", array(&[5, 7], 1));
    let (mut a, mut b) = (one("w", array(&[5, 7], 2)), one("w", array(&[5, 7], 2)));
    let mut torch = Muon::<f64>::default();
    let mut optax = Muon::<f64>::optax();
    torch.update(&mut a, &g).unwrap();
    optax.update(&mut b, &g).unwrap();
    assert_ne!(params_bits(&a), params_bits(&b));
    assert_eq!(
        torch.slot_names(),
        ["momentum_buffer", "exp_avg", "exp_avg_sq"]
    );
    assert_eq!(optax.slot_names(), ["mu", "nu"]);
    assert!(optax.slot("w", "mu").is_some() && optax.slot("w", "nu").is_none());
}

#[test]
fn normuon_keeps_one_second_moment_per_neuron_and_refuses_the_optax_convention() {
    let shapes: [(&str, &[usize]); 4] = [
        ("conv", &[4, 3, 3, 2]),
        ("fc", &[6, 4]),
        ("batch", &[2, 3, 5]),
        ("bias", &[5]),
    ];
    let mut p: Params<f64> = shapes
        .iter()
        .enumerate()
        .map(|(i, (k, s))| (k.to_string(), array(s, i)))
        .collect();
    let g: Params<f64> = shapes
        .iter()
        .enumerate()
        .map(|(i, (k, s))| (k.to_string(), array(s, 10 + i)))
        .collect();
    let mut opt = Muon::<f64>::normuon();
    opt.update(&mut p, &g).unwrap();
    let neurons = |k| {
        opt.slot(k, "second_momentum_buffer")
            .map(|s| s.shape().to_vec())
    };
    assert_eq!(neurons("conv"), Some(vec![4, 3, 3, 1]));
    assert_eq!(neurons("fc"), Some(vec![6, 1]));
    assert_eq!(neurons("batch"), Some(vec![2, 3, 1]));
    assert_eq!(neurons("bias"), None);
    // Every neuron's moment moved from zero: (1 − β₂)·mean(O²) of its row.
    let s = opt.slot("fc", "second_momentum_buffer").unwrap();
    assert!(s.iter().all(|&v| v > 0.0 && v < 0.05 * 1.01), "{s:?}");
    assert!(opt.slot("bias", "exp_avg").is_some());

    let before = params_bits(&p);
    let err = Muon::<f64>::optax()
        .neuron_beta2(Some(0.95))
        .update(&mut p, &g)
        .unwrap_err();
    assert!(
        matches!(err, ndoptim::Error::IncompatibleOptions { .. }),
        "{err}"
    );
    assert_eq!(params_bits(&p), before);
}
