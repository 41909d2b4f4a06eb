//! Checkpoints: resuming is bit-identical for every optimizer, and every bad checkpoint is
//! rejected with the optimizer unchanged.
#![cfg(feature = "safetensors")]

#[macro_use]
mod common;

use common::{params_bits, state_bits};
use ndarray::{ArrayD, Dimension, IxDyn};
use ndoptim::checkpoint::Checkpoint;
use ndoptim::schedule::{Scheduler, TorchSchedule};
use ndoptim::{Adam, AdamRule, Engine, Error, Optimizer, Params, Prodigy, Rule, Sgd};
use serde::Serialize;
use serde::de::DeserializeOwned;

fn model(step: usize) -> (Params<f32>, Params<f32>) {
    let shapes: [(&str, &[usize]); 4] = [
        ("W1", &[3, 4]),
        ("b1", &[4]),
        ("W2", &[4, 2, 2]),
        ("s", &[]),
    ];
    let value = |k: usize, i: usize| ((k * 13 + i * 7 + step * 5) % 17) as f32 / 8.0 - 1.0;
    let p = shapes
        .iter()
        .enumerate()
        .map(|(k, (n, s))| {
            (
                n.to_string(),
                ArrayD::from_shape_fn(IxDyn(s), |ix| value(k, ix.as_array_view().sum())),
            )
        })
        .collect();
    let g = shapes
        .iter()
        .enumerate()
        .map(|(k, (n, s))| {
            (
                n.to_string(),
                ArrayD::from_shape_fn(IxDyn(s), |ix| value(k + 3, ix.as_array_view().sum()) * 0.1),
            )
        })
        .collect();
    (p, g)
}

fn resumes_bit_identically<R>(fresh: Engine<R, f32>)
where
    R: Rule<f32> + Serialize + DeserializeOwned,
    R::KeyScalars: Serialize + DeserializeOwned,
{
    let schedule = TorchSchedule::ExponentialLR { gamma: 0.9 };
    let (mut straight, _) = model(0);
    let mut a = fresh.clone();
    let mut sa = Scheduler::new(schedule.clone(), &mut a).unwrap();
    for step in 1..=6 {
        a.update(&mut straight, &model(step).1).unwrap();
        sa.step(&mut a).unwrap();
    }
    let (mut resumed, _) = model(0);
    let mut b = fresh.clone();
    let mut sb = Scheduler::new(schedule, &mut b).unwrap();
    for step in 1..=3 {
        b.update(&mut resumed, &model(step).1).unwrap();
        sb.step(&mut b).unwrap();
    }
    let file = b.save_safetensors(Some(&sb)).unwrap();
    drop((b, sb));
    let mut c = fresh;
    let mut sc = c
        .load_safetensors(&file)
        .unwrap()
        .expect("the scheduler was saved");
    for step in 4..=6 {
        c.update(&mut resumed, &model(step).1).unwrap();
        sc.step(&mut c).unwrap();
    }
    assert_eq!(
        params_bits(&resumed),
        params_bits(&straight),
        "{}",
        a.name()
    );
    assert_eq!(state_bits(&c), state_bits(&a), "{}", a.name());
    assert_eq!(
        (c.learning_rate(), sc.epoch()),
        (a.learning_rate(), sa.epoch())
    );
}

#[test]
fn every_optimizer_resumes_bit_identically() {
    with_each_optimizer!(f32, |o| resumes_bit_identically(o));
}

/// An Adam that has taken two steps, its parameters, and its state as a checkpoint.
fn trained() -> (Adam<f32>, Checkpoint<AdamRule, (), f32>) {
    let mut adam = Adam::<f32>::default();
    let (mut p, _) = model(0);
    for step in 1..=2 {
        adam.update(&mut p, &model(step).1).unwrap();
    }
    let c = adam.checkpoint();
    (adam, c)
}

/// Loading `bytes` into a trained Adam fails with a message containing `want`, and changes
/// nothing.
fn rejected(bytes: &[u8], want: &str) {
    let (mut adam, _) = trained();
    let before = (state_bits(&adam), adam.learning_rate());
    let err = adam.load_safetensors(bytes).unwrap_err();
    assert!(matches!(err, Error::Checkpoint { .. }), "{err:?}");
    assert!(err.to_string().contains(want), "{err} (wanted {want:?})");
    assert_eq!((state_bits(&adam), adam.learning_rate()), before);
}

#[test]
fn bad_checkpoints_are_rejected_and_the_optimizer_is_unchanged() {
    let (_, good) = trained();
    let file = good.to_safetensors().unwrap();

    // Another optimizer kind: SGD with momentum keeps `momentum_buffer`.
    let mut sgd = Sgd::<f32>::default().momentum(0.9);
    let (mut p, g) = model(0);
    sgd.update(&mut p, &g).unwrap();
    rejected(
        &sgd.save_safetensors(None).unwrap(),
        "a checkpoint of SGD cannot load into Adam",
    );

    let mut missing = good.clone();
    missing.keys[0].slots.pop();
    rejected(
        &missing.to_safetensors().unwrap(),
        "slot \"exp_avg_sq\" is missing",
    );

    let mut extra = good.clone();
    let mut slot = extra.keys[0].slots[0].clone();
    slot.name = "momentum_buffer".into();
    extra.keys[0].slots.push(slot);
    rejected(
        &extra.to_safetensors().unwrap(),
        "unexpected slot \"momentum_buffer\"",
    );

    let mut reshaped = good.clone();
    let s = &mut reshaped.keys[0].slots[1];
    s.shape = vec![s.data.len()];
    rejected(&reshaped.to_safetensors().unwrap(), "has shape");

    let mut future = good.clone();
    future.format = 2;
    rejected(
        &future.to_safetensors().unwrap(),
        "unknown format version 2",
    );

    rejected(&file[..file.len() - 5], "");
    rejected(&file[..20], "");
    let mut corrupt = file.clone();
    corrupt[10] ^= 0x5a;
    rejected(&corrupt, "");
    rejected(b"not a checkpoint", "");
}

#[test]
fn the_file_is_plain_safetensors_with_pytorchs_slot_names() {
    let (_, good) = trained();
    let file = good.to_safetensors().unwrap();
    let st = safetensors::SafeTensors::deserialize(&file).unwrap();
    let mut names: Vec<_> = st.names().into_iter().map(str::to_string).collect();
    names.sort();
    assert_eq!(
        names[..2],
        ["W1.exp_avg".to_string(), "W1.exp_avg_sq".to_string()]
    );
    assert_eq!(st.tensor("W2.exp_avg").unwrap().shape(), &[4, 2, 2]);
    let (_, meta) = safetensors::SafeTensors::read_metadata(&file).unwrap();
    let meta = meta.metadata().clone().unwrap();
    assert_eq!(meta["optimizer"], "Adam");
    assert_eq!(meta["format"], "1");
    assert!(
        meta["hyperparameters"].contains("\"betas\":[0.9,0.999]"),
        "{}",
        meta["hyperparameters"]
    );
}

#[test]
fn nan_and_infinity_survive_a_round_trip() {
    let (adam, mut c) = trained();
    c.keys[1].slots[0].data[0] = f32::NAN;
    c.keys[1].slots[0].data[1] = f32::NEG_INFINITY;
    let back =
        Checkpoint::<AdamRule, (), f32>::from_safetensors(&c.to_safetensors().unwrap()).unwrap();
    assert!(back.keys[1].slots[0].data[0].is_nan());
    assert_eq!(back.keys[1].slots[0].data[1], f32::NEG_INFINITY);
    let mut fresh = Adam::<f32>::default();
    fresh.restore(back).unwrap();
    assert!(
        fresh
            .slot(&c.keys[1].key, "exp_avg")
            .unwrap()
            .iter()
            .next()
            .unwrap()
            .is_nan()
    );
    drop(adam);
}

#[test]
fn claims_beyond_the_data_are_refused_before_anything_is_allocated() {
    let (mut p, g) = model(0);
    let mut opt = Adam::<f32>::pytorch();
    opt.update(&mut p, &g).unwrap();
    let before = state_bits(&opt);
    // The file: key "W1" claiming [1e12, 3] with slots of 12 elements.
    let mut huge = opt.checkpoint();
    huge.keys[0].shape = vec![1_000_000_000_000, 3];
    let err = opt.restore(huge).unwrap_err().to_string();
    assert!(err.contains("[1000000000000, 3]"), "{err}");
    let mut overflowing = opt.checkpoint();
    overflowing.keys[0].shape = vec![usize::MAX, 2];
    let err = opt.restore(overflowing).unwrap_err().to_string();
    assert!(
        err.contains("more elements than this machine can address"),
        "{err}"
    );
    let mut steps = opt.checkpoint();
    steps.keys[0].step = u64::MAX;
    let err = opt.restore(steps).unwrap_err().to_string();
    assert!(err.contains("beyond 2^53"), "{err}");
    // The same through a safetensors file.
    let mut file_ckpt = opt.checkpoint();
    file_ckpt.keys[0].step = u64::MAX;
    let err = opt
        .load_safetensors(&file_ckpt.to_safetensors().unwrap())
        .unwrap_err()
        .to_string();
    assert!(err.contains("beyond 2^53"), "{err}");
    assert_eq!(state_bits(&opt), before);
    // A step count at the bound loads and steps.
    let mut edge = opt.checkpoint();
    edge.keys
        .iter_mut()
        .for_each(|k| k.step = ndoptim::checkpoint::MAX_STEP);
    opt.restore(edge).unwrap();
    opt.update(&mut p, &g).unwrap();
}

#[test]
fn a_checkpoints_scheduler_is_checked_like_a_new_one() {
    let (mut p, g) = model(0);
    let mut opt = Sgd::<f32>::default();
    let scheduler = Scheduler::new(
        TorchSchedule::StepLR {
            step_size: 2,
            gamma: 0.5,
        },
        &mut opt,
    )
    .unwrap();
    opt.update(&mut p, &g).unwrap();
    let mut c = opt.checkpoint();
    let mut text = serde_json::to_value(&scheduler).unwrap();
    text["schedule"]["StepLR"]["step_size"] = serde_json::json!(0);
    c.scheduler = Some(serde_json::from_value(text).unwrap());
    let err = opt.restore(c).unwrap_err().to_string();
    assert!(err.contains("step_size"), "{err}");
}

#[test]
fn prodigys_step_size_travels_with_its_checkpoint() {
    let mut prodigy = Prodigy::<f32>::default();
    let (mut p, _) = model(0);
    for step in 1..=4 {
        prodigy.update(&mut p, &model(step).1).unwrap();
    }
    let good = prodigy.checkpoint();
    let names: Vec<_> = good.globals.iter().map(|g| g.0.as_str()).collect();
    assert_eq!(&names[..3], ["d", "d_max", "d_numerator"]);
    let mut loaded = Prodigy::<f32>::default();
    loaded
        .load_safetensors(&good.to_safetensors().unwrap())
        .unwrap();
    assert_eq!(loaded.global("d"), prodigy.global("d"));
    assert_eq!(loaded.checkpoint().globals, good.globals);

    // A checkpoint without its globals, or with another's, would restart d: refused whole.
    let mut lost = good.clone();
    lost.globals.clear();
    let mut renamed = good.clone();
    renamed.globals[0].0 = "estim_lr".into();
    for bad in [lost, renamed] {
        let mut target = Prodigy::<f32>::default();
        let err = target.restore(bad).unwrap_err();
        assert!(err.to_string().contains("optimizer-wide scalars"), "{err}");
        assert_eq!(target.state_keys().count(), 0);
        assert_eq!(target.global("d"), None);
    }
}
