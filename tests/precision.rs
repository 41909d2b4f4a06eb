//! Low-precision parameters: every elementwise optimizer on bf16 and f16 through the same rules
//! (one step equals the f32 step rounded), stochastic rounding unbiased and reproducible across a
//! checkpoint, Kahan compensation carried by checkpoints, and the refusals.
#![cfg(feature = "half")]

use half::{bf16, f16};
use ndarray::{ArrayD, IxDyn};
use ndoptim::{
    AdEMAMix, AdaBelief, AdaGrad, Adadelta, Adam, AdamW, Adamax, Adan, Adopt, Asgd, Engine, Error,
    Lamb, Lars, Lion, Mixed, Momentum, Muon, NAdam, Native, Nesterov, Optimizer, Params, RAdam,
    RmsProp, Rounding, Rprop, Rule, ScheduleFreeAdamW, Sgd, Store,
};

/// Parameters and gradients of a few shapes (a 0-d key, an empty key, a key larger than a
/// vector block), with values exactly representable in `P`.
fn model<P: Store<f32>>(step: usize) -> (Params<P>, Params<P>) {
    let shapes: [(&str, &[usize]); 5] = [
        ("w", &[7, 9]),
        ("b", &[9]),
        ("s", &[]),
        ("e", &[0, 3]),
        ("big", &[300]),
    ];
    let value = |k: usize, i: usize, s: usize| {
        let x = ((k * 31 + i * 17 + s * 7) % 23) as f32 / 11.0 - 1.0;
        P::round(x)
    };
    let make = |offset: usize| {
        shapes
            .iter()
            .enumerate()
            .map(|(k, (n, s))| {
                let len = s.iter().product();
                let data = (0..len).map(|i| value(k + offset, i, step)).collect();
                (
                    n.to_string(),
                    ArrayD::from_shape_vec(IxDyn(s), data).unwrap(),
                )
            })
            .collect()
    };
    (make(0), make(5))
}

fn to_f32<P: Store<f32>>(p: &Params<P>) -> Params<f32> {
    p.iter()
        .map(|(k, a)| (k.clone(), a.mapv(Store::load)))
        .collect()
}

/// One step on `P` parameters with f32 state equals the f32 step from the same values, rounded
/// once to `P`: the rule ran in f32, the engine converted and rounded.
fn one_step_is_the_rounded_f32_step<R: Rule<f32>, P: Store<f32>>(opt: Engine<R, f32>) {
    let name = opt.rule().name();
    let (mut p, g) = model::<P>(0);
    let (mut p32, g32) = (to_f32(&p), to_f32(&g));
    let mut low = opt.clone().with_layout::<Mixed<P, f32>>();
    let mut native = opt;
    native.update(&mut p32, &g32).unwrap();
    low.update(&mut p, &g).unwrap();
    for (k, a) in &p {
        for (x, y) in a.iter().zip(&p32[k]) {
            assert_eq!(
                *x,
                P::round(*y),
                "{name}, key {k}: {x:?} against the f32 step {y}"
            );
        }
    }
}

macro_rules! every_elementwise {
    ($check:ident::<$p:ty>) => {
        $check::<_, $p>(Momentum::default());
        $check::<_, $p>(Nesterov::default());
        $check::<_, $p>(AdaGrad::default());
        $check::<_, $p>(RmsProp::default().momentum(0.5));
        $check::<_, $p>(Adam::default());
        $check::<_, $p>(Adam::pytorch().amsgrad(true).weight_decay(0.1));
        $check::<_, $p>(AdamW::default());
        $check::<_, $p>(NAdam::default());
        $check::<_, $p>(RAdam::default());
        $check::<_, $p>(Adamax::default());
        $check::<_, $p>(Adadelta::default());
        $check::<_, $p>(Rprop::default());
        $check::<_, $p>(Asgd::default());
        $check::<_, $p>(Lion::default());
        $check::<_, $p>(Adan::default());
        $check::<_, $p>(AdaBelief::default());
        $check::<_, $p>(Adopt::default());
        $check::<_, $p>(AdEMAMix::default());
        $check::<_, $p>(Lamb::default().weight_decay(0.01));
        $check::<_, $p>(Lars::default().nesterov(true));
        $check::<_, $p>(ScheduleFreeAdamW::default());
    };
}

#[test]
fn every_elementwise_optimizer_runs_on_bf16_and_f16_through_its_f32_rule() {
    every_elementwise!(one_step_is_the_rounded_f32_step::<bf16>);
    every_elementwise!(one_step_is_the_rounded_f32_step::<f16>);
}

/// The mean of many stochastic roundings of `x` is `x`, within five standard errors.
fn unbiased<P: Store<f32>>(x: f32) {
    let n = 200_000u32;
    let mut sum = 0.0f64;
    let (mut lo, mut hi) = (f32::INFINITY, f32::NEG_INFINITY);
    let mut state = 0x2545_f491_4f6c_dd1du64;
    for _ in 0..n {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let v = P::round_stochastic(x, (state >> 32) as u32).load();
        (lo, hi) = (lo.min(v), hi.max(v));
        sum += f64::from(v);
    }
    let mean = sum / f64::from(n);
    let gap = f64::from(hi - lo);
    // Bernoulli between the two neighbours: standard deviation at most gap/2.
    let tolerance = 5.0 * gap / 2.0 / f64::from(n).sqrt();
    assert!(hi > lo, "{x} was never rounded both ways");
    assert!(
        (mean - f64::from(x)).abs() <= tolerance,
        "{x}: mean {mean} over {n} roundings, off by {} (tolerance {tolerance})",
        mean - f64::from(x)
    );
}

#[test]
fn stochastic_rounding_is_unbiased() {
    for x in [
        1.0 + 1.0 / 1024.0,
        -3.140_625_3,
        0.1,
        1e-30,
        -7.5e-3,
        1000.3,
    ] {
        unbiased::<bf16>(x);
    }
    for x in [1.0 + 1.0 / 8192.0, -3.140_625_3, 0.1, 3e-7, -7.5e-3, 1000.3] {
        unbiased::<f16>(x);
    }
    // Values the stored type holds exactly stay as they are.
    for x in [0.0f32, -2.0, 0.5, f32::INFINITY] {
        assert_eq!(bf16::round_stochastic(x, u32::MAX).load(), x);
        assert_eq!(f16::round_stochastic(x, u32::MAX).load(), x);
    }
    assert!(bf16::round_stochastic(f32::NAN, 12345).load().is_nan());
}

/// Updates far below half a bf16 step at 1.0: round to nearest loses every one, stochastic
/// rounding keeps them on average, Kahan keeps them exactly enough.
#[test]
fn small_updates_survive_stochastic_rounding_and_kahan_on_average() {
    let n = 20_000;
    // The mean parameter, and the mean of parameter plus Kahan compensation.
    let run = |rounding: Rounding| {
        let mut p = Params::from([("w".to_string(), ArrayD::from_elem(IxDyn(&[n]), bf16::ONE))]);
        let g = Params::from([("w".to_string(), ArrayD::from_elem(IxDyn(&[n]), bf16::ONE))]);
        // 1e-4 per step against a bf16 gap of 2^-7 at 1.0: 1/78 of a step.
        let mut opt = Sgd::<f32>::default()
            .lr(1e-4)
            .with_layout::<Mixed<bf16>>()
            .rounding(rounding);
        for _ in 0..100 {
            opt.update(&mut p, &g).unwrap();
        }
        let mean = |x: &mut dyn Iterator<Item = f64>| x.sum::<f64>() / n as f64;
        let checkpoint = opt.checkpoint();
        let comp = checkpoint.keys[0]
            .slots
            .iter()
            .find(|s| s.name == "kahan_comp");
        let compensated = comp.map(|c| {
            mean(
                &mut p["w"]
                    .iter()
                    .zip(&c.data)
                    .map(|(x, k)| f64::from(x.to_f32() + k)),
            )
        });
        (
            mean(&mut p["w"].iter().map(|x| f64::from(x.to_f32()))),
            compensated,
        )
    };
    // SGD's bf16 arithmetic rounds lr to bf16 first: -1e-4 becomes -1.0001659e-4.
    let want = 1.0 - 100.0 * f64::from(bf16::from_f32(1e-4).to_f32());
    assert_eq!(
        run(Rounding::Nearest),
        (1.0, None),
        "nearest loses every update"
    );
    let (stochastic, _) = run(Rounding::Stochastic { seed: 7 });
    assert!(
        (stochastic - want).abs() < 2e-4,
        "stochastic mean {stochastic}, want {want}"
    );
    // Kahan: the parameter within half a bf16 step (2^-9 below 1.0) of the exact sum, the
    // parameter plus its compensation a hundred times closer than round to nearest (the
    // compensation is itself bf16: each step rounds it, by up to 4e-6 here).
    let (kahan, compensated) = run(Rounding::Kahan);
    assert!(
        (kahan - want).abs() <= 1.0 / 512.0,
        "Kahan {kahan}, want {want}"
    );
    let compensated = compensated.expect("a Kahan optimizer keeps kahan_comp");
    assert!(
        (compensated - want).abs() < 1e-4,
        "p + k = {compensated}, want {want}"
    );
}

/// Bits of every parameter.
fn bits<P: Store<f32>>(p: &Params<P>) -> Vec<(String, Vec<f32>)> {
    let mut v: Vec<_> = p
        .iter()
        .map(|(k, a)| (k.clone(), a.iter().map(|x| x.load()).collect()))
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

/// Ten steps straight equal four steps, a safetensors checkpoint loaded into a fresh optimizer,
/// and six more: the stochastic sequence continues, Kahan's compensation is carried.
#[cfg(feature = "safetensors")]
fn resumes_bit_identically<P: Store<f32>, S: Store<f32>>(rounding: Rounding) {
    let fresh = || {
        AdamW::<f32>::optimi()
            .lr(3e-3)
            .with_layout::<Mixed<P, S>>()
            .rounding(rounding)
    };
    let (mut straight, mut resumed) = (fresh(), fresh());
    let mut p = model::<P>(0).0;
    let mut q = p.clone();
    for step in 0..10 {
        let g = model::<P>(step + 1).1;
        straight.update(&mut p, &g).unwrap();
        if step == 3 {
            let file = resumed.save_safetensors(None).unwrap();
            resumed = fresh().rounding(Rounding::Nearest);
            resumed.load_safetensors(&file).unwrap();
            assert_eq!(resumed.current_rounding(), rounding);
        }
        resumed.update(&mut q, &g).unwrap();
    }
    assert_eq!(bits(&p), bits(&q), "{rounding:?}");
    assert_eq!(straight.checkpoint(), resumed.checkpoint(), "{rounding:?}");
}

#[cfg(feature = "safetensors")]
#[test]
fn checkpoints_resume_bit_identically_in_every_rounding_and_layout() {
    for rounding in [
        Rounding::Nearest,
        Rounding::Kahan,
        Rounding::Stochastic { seed: 42 },
    ] {
        resumes_bit_identically::<bf16, bf16>(rounding);
        resumes_bit_identically::<bf16, f32>(rounding);
        resumes_bit_identically::<f16, f16>(rounding);
    }
}

/// The file holds BF16 tensors (what Python's safetensors opens as torch.bfloat16), Kahan's
/// compensation among them.
#[cfg(feature = "safetensors")]
#[test]
fn safetensors_checkpoints_keep_the_stored_types() {
    let mut opt = AdamW::<f32>::optimi()
        .with_layout::<Mixed<bf16, bf16>>()
        .rounding(Rounding::Kahan);
    let (mut p, g) = model::<bf16>(0);
    opt.update(&mut p, &g).unwrap();
    let file = opt.save_safetensors(None).unwrap();
    let tensors = safetensors::SafeTensors::deserialize(&file).unwrap();
    for name in ["w.exp_avg", "w.exp_avg_sq", "w.kahan_comp", "s.kahan_comp"] {
        let t = tensors.tensor(name).unwrap();
        assert_eq!(t.dtype(), safetensors::Dtype::BF16, "{name}");
    }
    assert_eq!(tensors.tensor("w.kahan_comp").unwrap().shape(), [7, 9]);
    // The same file does not load as another layout's.
    let mut other = AdamW::<f32>::optimi().with_layout::<Mixed<bf16, f32>>();
    assert!(matches!(
        other.load_safetensors(&file),
        Err(Error::Checkpoint { .. })
    ));
}

/// Different seeds, different roundings; the same seed, the same ones.
#[test]
fn stochastic_rounding_follows_its_seed() {
    let run = |seed| {
        let mut opt = Adam::<f32>::pytorch()
            .with_layout::<Mixed<bf16>>()
            .rounding(Rounding::Stochastic { seed });
        let (mut p, g) = model::<bf16>(0);
        for _ in 0..3 {
            opt.update(&mut p, &g).unwrap();
        }
        bits(&p)
    };
    assert_eq!(run(1), run(1));
    assert_ne!(run(1), run(2));
}

#[test]
fn refusals_change_nothing() {
    let (mut p, g) = model::<bf16>(0);
    let before = p.clone();
    // Kahan and stochastic rounding need low-precision parameters.
    let mut native = Adam::<f32>::default().rounding(Rounding::Kahan);
    let (mut p32, g32) = (to_f32(&p), to_f32(&g));
    let err = native.update(&mut p32, &g32).unwrap_err();
    assert!(matches!(err, Error::IncompatibleOptions { .. }), "{err}");
    assert_eq!(p32, to_f32(&before));
    // Rules that need whole tensors run on native layouts only.
    let mut muon = Muon::<f32>::default().with_layout::<Mixed<bf16>>();
    let err = muon.update(&mut p, &g).unwrap_err();
    assert!(matches!(err, Error::IncompatibleOptions { .. }), "{err}");
    assert_eq!(p, before);
    assert_eq!(muon.state_keys().count(), 0);
    // A shape mismatch on a low-precision optimizer names the key, as any other.
    let mut opt = AdamW::<f32>::optimi().with_layout::<Mixed<bf16, bf16>>();
    let mut bad = g.clone();
    bad.insert("b".into(), ArrayD::from_elem(IxDyn(&[4]), bf16::ONE));
    let err = opt.update(&mut p, &bad).unwrap_err();
    assert!(
        matches!(&err, Error::ShapeMismatch { key, .. } if key == "b"),
        "{err}"
    );
    assert_eq!(p, before);
    // optimi's Adam has no amsgrad.
    let mut opt = AdamW::<f32>::optimi()
        .amsgrad(true)
        .with_layout::<Mixed<bf16>>();
    assert!(matches!(
        opt.update(&mut p, &g),
        Err(Error::IncompatibleOptions { .. })
    ));
    let _: Engine<ndoptim::AdamRule, f32, Native> = Adam::default();
}

/// Every instruction-set level gives the same bits, subnormal values included (the CPU's
/// bfloat16 conversion, used at `Level::Avx512Bf16`, would flush them).
#[test]
fn every_level_gives_the_same_bits_subnormals_included() {
    use ndoptim::simd::{Level, with_level};
    let run = |level| {
        with_level(level, || {
            let n = 100;
            // Values down to bf16's subnormals, and gradients that keep the moments there.
            let p: Vec<bf16> = (0..n)
                .map(|i| bf16::from_f32(1e-39 * i as f32 - 3e-38))
                .collect();
            let g: Vec<bf16> = (0..n)
                .map(|i| bf16::from_f32(if i % 3 == 0 { 1e-20 } else { 2e-39 * i as f32 }))
                .collect();
            let mut params = Params::from([(
                "w".to_string(),
                ArrayD::from_shape_vec(IxDyn(&[n]), p).unwrap(),
            )]);
            let grads = Params::from([(
                "w".to_string(),
                ArrayD::from_shape_vec(IxDyn(&[n]), g).unwrap(),
            )]);
            let mut opt = Sgd::<f32>::default()
                .lr(1e-3)
                .momentum(0.9)
                .with_layout::<Mixed<bf16, bf16>>();
            let mut adam = Adam::<f32>::pytorch()
                .lr(1e-30)
                .with_layout::<Mixed<bf16, bf16>>();
            let mut q = params.clone();
            for _ in 0..5 {
                opt.update(&mut params, &grads).unwrap();
                adam.update(&mut q, &grads).unwrap();
            }
            let state = adam.checkpoint();
            (
                bits(&params),
                bits(&q),
                format!("{:?}", state.keys[0].slots),
            )
        })
        .unwrap()
    };
    let portable = run(Level::Portable);
    assert!(
        portable.2.contains("e-39") || portable.2.contains("e-40"),
        "the test reaches subnormal state: {}",
        &portable.2[..200.min(portable.2.len())]
    );
    for level in Level::available() {
        assert_eq!(run(level), portable, "{level:?}");
    }
}

/// Kahan rounding turned on after keys have state: their compensation starts at zero (no panic),
/// and the run equals one that starts with Kahan from a checkpoint of the same state.
#[test]
fn kahan_turned_on_later_starts_from_zero() {
    let (mut p, g) = model::<bf16>(0);
    let mut opt = AdamW::<f32>::optimi().with_layout::<Mixed<bf16, bf16>>();
    opt.update(&mut p, &g).unwrap();
    let mut q = p.clone();
    let mut other = AdamW::<f32>::optimi().with_layout::<Mixed<bf16, bf16>>();
    let mut checkpoint = opt.checkpoint();
    // The same state with a zero compensation slot, as a Kahan checkpoint would carry it.
    checkpoint.rounding = Rounding::Kahan;
    for k in &mut checkpoint.keys {
        let n = k.shape.iter().product();
        k.slots.push(ndoptim::checkpoint::SlotState {
            name: "kahan_comp".into(),
            shape: k.shape.clone(),
            data: vec![bf16::ZERO; n],
        });
    }
    other.restore(checkpoint).unwrap();
    let mut opt = opt.rounding(Rounding::Kahan);
    for step in 1..4 {
        let g = model::<bf16>(step).1;
        opt.update(&mut p, &g).unwrap();
        other.update(&mut q, &g).unwrap();
    }
    assert_eq!(bits(&p), bits(&q));
    assert_eq!(opt.checkpoint(), other.checkpoint());
    // And off again: no compensation kept.
    let opt = opt.rounding(Rounding::Nearest);
    assert!(
        opt.checkpoint()
            .keys
            .iter()
            .all(|k| k.slots.iter().all(|s| s.name != "kahan_comp"))
    );
}
