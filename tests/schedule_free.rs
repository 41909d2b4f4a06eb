//! Schedule-Free's two points: training at `y`, evaluating at `x`, switched both ways, refused
//! updates in evaluation mode, and resumes from checkpoints in either mode.

mod common;

use common::{params_bits, state_bits};
use ndarray::{ArrayD, IxDyn};
use ndoptim::{Error, Mode, Optimizer, Params, ScheduleFreeAdamW, ScheduleFreeSgd};

fn model(step: usize) -> (Params<f64>, Params<f64>) {
    let shapes: [(&str, &[usize]); 3] = [("W", &[3, 4]), ("b", &[4]), ("s", &[])];
    let make = |k: usize, s: &[usize], scale: f64| {
        let n: usize = s.iter().product();
        let data = (0..n)
            .map(|i| ((k * 13 + i * 7 + step * 5) % 17) as f64 / 8.0 - 1.0)
            .map(|x| x * scale)
            .collect();
        ArrayD::from_shape_vec(IxDyn(s), data).unwrap()
    };
    let p = shapes
        .iter()
        .enumerate()
        .map(|(k, (n, s))| (n.to_string(), make(k, s, 1.0)))
        .collect();
    let g = shapes
        .iter()
        .enumerate()
        .map(|(k, (n, s))| (n.to_string(), make(k + 3, s, 0.1)))
        .collect();
    (p, g)
}

#[test]
fn eval_moves_to_the_average_and_train_moves_back() {
    let mut opt = ScheduleFreeAdamW::<f64>::default().lr(0.05).warmup_steps(2);
    let (mut p, _) = model(0);
    // Before any step there is no state: both switches leave the parameters as they are.
    let before = params_bits(&p);
    opt.eval(&mut p).unwrap();
    opt.train(&mut p).unwrap();
    assert_eq!(params_bits(&p), before);
    for step in 1..=5 {
        opt.update(&mut p, &model(step).1).unwrap();
    }
    let y = p.clone();
    opt.eval(&mut p).unwrap();
    assert_eq!(opt.mode(), Some(Mode::Eval));
    for (key, x) in &p {
        let z = opt.slot(key, "z").unwrap();
        for ((&x, &y), &z) in x.iter().zip(&y[key]).zip(z.iter()) {
            let want = y + (1.0 - 1.0 / 0.9) * (z - y);
            assert!(
                (x - want).abs() <= 1e-15 * want.abs().max(1.0),
                "{key}: {x} vs {want}"
            );
        }
    }
    // A second eval is a no-op, as in the reference.
    let x = params_bits(&p);
    opt.eval(&mut p).unwrap();
    assert_eq!(params_bits(&p), x);

    // An update in evaluation mode is refused with nothing changed.
    let state = state_bits(&opt);
    assert_eq!(opt.update(&mut p, &model(6).1), Err(Error::EvalMode));
    assert_eq!((params_bits(&p), state_bits(&opt)), (x, state));

    opt.train(&mut p).unwrap();
    assert_eq!(opt.mode(), Some(Mode::Train));
    for (key, back) in &p {
        for (&a, &b) in back.iter().zip(&y[key]) {
            assert!(
                (a - b).abs() <= 1e-14 * b.abs().max(1.0),
                "{key}: {a} vs {b}"
            );
        }
    }
    opt.update(&mut p, &model(6).1).unwrap();
}

#[test]
fn a_mismatched_shape_stops_a_switch_before_it_moves_anything() {
    let mut opt = ScheduleFreeSgd::<f64>::default().lr(0.1);
    let (mut p, g) = model(0);
    opt.update(&mut p, &g).unwrap();
    p.insert("b".to_string(), ArrayD::zeros(IxDyn(&[5])));
    let before = params_bits(&p);
    assert!(matches!(
        opt.eval(&mut p),
        Err(Error::StateShapeMismatch { .. })
    ));
    assert_eq!(params_bits(&p), before);
    assert_eq!(opt.mode(), Some(Mode::Train));
}

#[test]
fn checkpoints_resume_bit_identically_in_either_mode() {
    for evaluate_at_save in [false, true] {
        let fresh = ScheduleFreeAdamW::<f64>::default()
            .lr(0.02)
            .warmup_steps(3)
            .weight_decay(0.01);
        let (mut straight, _) = model(0);
        let mut a = fresh.clone();
        for step in 1..=6 {
            a.update(&mut straight, &model(step).1).unwrap();
        }
        let (mut resumed, _) = model(0);
        let mut b = fresh.clone();
        for step in 1..=3 {
            b.update(&mut resumed, &model(step).1).unwrap();
        }
        if evaluate_at_save {
            // The reference's advice: save in evaluation mode, with the parameters at x.
            b.eval(&mut resumed).unwrap();
        }
        let checkpoint = b.checkpoint();
        let mut c = fresh.clone();
        c.restore(checkpoint).unwrap();
        assert_eq!(c.key_scalars("W"), b.key_scalars("W"));
        if evaluate_at_save {
            assert_eq!(c.update(&mut resumed, &model(4).1), Err(Error::EvalMode));
            c.train(&mut resumed).unwrap();
        }
        for step in 4..=6 {
            c.update(&mut resumed, &model(step).1).unwrap();
        }
        if evaluate_at_save {
            // eval() then train() returns y to within rounding, not bit for bit.
            for (key, want) in &straight {
                for (&x, &y) in resumed[key].iter().zip(want) {
                    assert!(
                        (x - y).abs() <= 1e-13 * y.abs().max(1.0),
                        "{key}: {x} vs {y}"
                    );
                }
            }
        } else {
            assert_eq!(params_bits(&resumed), params_bits(&straight));
            assert_eq!(state_bits(&c), state_bits(&a));
            assert_eq!(c.key_scalars("b"), a.key_scalars("b"));
        }
    }
}
