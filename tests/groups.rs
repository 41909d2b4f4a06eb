//! Per-key hyperparameters: a key in a group steps exactly as it would alone with the group's
//! learning rate and weight decay.

use ndarray::arr1;
use ndoptim::schedule::{Scheduler, TorchSchedule};
use ndoptim::{AdamW, Error, Group, Optimizer, Params, Sgd};

fn model() -> (Params<f64>, Params<f64>) {
    let p = Params::from([
        ("W1".to_string(), arr1(&[1.0, -2.0, 0.5]).into_dyn()),
        ("W2".to_string(), arr1(&[0.3, 0.7]).into_dyn()),
        ("b1".to_string(), arr1(&[0.1, 0.2, 0.3]).into_dyn()),
    ]);
    let g = p
        .iter()
        .map(|(k, a)| (k.clone(), a.mapv(|x| 0.5 - x)))
        .collect();
    (p, g)
}

/// `key` after three steps of `opt` on the whole model.
fn after(mut opt: impl Optimizer<f64>, key: &str) -> Vec<u64> {
    let (mut p, g) = model();
    for _ in 0..3 {
        opt.update(&mut p, &g).unwrap();
    }
    p[key].iter().map(|x| x.to_bits()).collect()
}

#[test]
fn a_group_sets_the_learning_rate_scale_and_weight_decay_of_its_keys() {
    let grouped = || {
        AdamW::<f64>::default()
            .lr(0.01)
            .group(Group::prefix("b").weight_decay(0.0))
            .group(Group::exact("W1").lr_scale(0.1))
    };
    assert_eq!(
        after(grouped(), "b1"),
        after(AdamW::default().lr(0.01).weight_decay(0.0), "b1")
    );
    assert_eq!(
        after(grouped(), "W1"),
        after(AdamW::default().lr(0.001), "W1")
    );
    assert_eq!(
        after(grouped(), "W2"),
        after(AdamW::default().lr(0.01), "W2")
    );
    assert_ne!(
        after(grouped(), "W1"),
        after(AdamW::default().lr(0.01), "W1")
    );
}

#[test]
fn the_first_matching_group_wins_and_predicates_select() {
    let opt = Sgd::<f64>::default()
        .lr(0.1)
        .group(Group::matching(|k| k.ends_with('1')).lr_scale(0.5))
        .group(Group::prefix("W").lr_scale(0.0));
    assert_eq!(
        after(opt.clone(), "W1"),
        after(Sgd::default().lr(0.05), "W1")
    );
    assert_eq!(
        after(opt.clone(), "b1"),
        after(Sgd::default().lr(0.05), "b1")
    );
    let (p0, _) = model();
    assert_eq!(
        after(opt, "W2"),
        p0["W2"].iter().map(|x| x.to_bits()).collect::<Vec<_>>()
    );
}

#[test]
fn a_schedule_scales_every_group_proportionally() {
    let (mut p, g) = model();
    let mut opt = Sgd::<f64>::default()
        .lr(1.0)
        .group(Group::exact("W2").lr_scale(0.25));
    let mut s = Scheduler::new(TorchSchedule::ExponentialLR { gamma: 0.5 }, &mut opt).unwrap();
    let mut lr = 1.0;
    let mut w2 = p["W2"].clone();
    for _ in 0..3 {
        opt.update(&mut p, &g).unwrap();
        w2 = &w2 - &(&g["W2"] * (0.25 * lr));
        lr = s.step(&mut opt).unwrap();
    }
    assert_eq!(p["W2"], w2);
    assert_eq!(lr, 0.125);
}

#[test]
fn invalid_groups_are_rejected() {
    let (mut p, g) = model();
    for opt in [
        Sgd::<f64>::default().group(Group::exact("W1").lr_scale(-1.0)),
        Sgd::default().group(Group::prefix("b").weight_decay(f64::NAN)),
    ] {
        let mut opt = opt;
        assert!(matches!(
            opt.update(&mut p, &g),
            Err(Error::InvalidHyperparameter { .. })
        ));
    }
    assert!(format!("{:?}", Group::matching(|_| true)).contains("predicate"));
}
