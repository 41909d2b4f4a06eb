//! The engine steps keys in the order of their parameters in memory and keeps that order from
//! step to step. Whatever the caller does to its arrays (moves them, gives a subset of keys, adds
//! keys later), every key must get exactly the update it would get alone: its parameter after a
//! dozen steps is bit-identical, which it cannot be if any step used another key's state.

mod common;

use ndoptim::Params;

const SHAPES: [(&str, &[usize]); 6] = [
    ("W1", &[30, 20]),
    ("b1", &[20]),
    ("W2", &[20, 4, 3]),
    ("s", &[]),
    ("empty", &[0, 3]),
    ("conv", &[2, 3, 2, 2, 3, 2]),
];

/// The model's arrays allocated again, in an order that changes with `round`: the same values
/// at other addresses, so that the engine's memory order no longer holds.
fn moved(p: &Params<f64>, round: usize) -> Params<f64> {
    let mut keys: Vec<&String> = p.keys().collect();
    keys.sort();
    let by = round % keys.len();
    keys.rotate_left(by);
    if round % 2 == 1 {
        keys.reverse();
    }
    keys.into_iter()
        .map(|k| (k.clone(), p[k].clone()))
        .collect()
}

/// The keys that round `round` updates: all, or every key but one.
fn subset(g: &Params<f64>, round: usize) -> Params<f64> {
    let mut g = g.clone();
    if round % 3 == 2 {
        let mut keys: Vec<String> = g.keys().cloned().collect();
        keys.sort();
        g.remove(&keys[round % keys.len()]);
    }
    g
}

#[test]
fn every_key_steps_as_if_alone_whatever_the_memory_order() {
    let reference = common::all_optimizers::<f64>();
    for (mut together, mut alone) in reference.into_iter().zip(common::all_optimizers::<f64>()) {
        let name = together.name();
        if together.scope() == ndoptim::Scope::Global {
            // Keys that share a step size (Prodigy) do not step as if alone; that their sums do
            // not depend on memory order, the conformance test checks (maps and views agree).
            continue;
        }
        let (mut p, _) = common::small_model::<f64>(&SHAPES[..3], 0);
        let mut single: Params<f64> = p.clone();
        for round in 0..12 {
            // Keys 4-6 join at round 4, when the others have state and an order.
            let shapes = if round < 4 { &SHAPES[..3] } else { &SHAPES[..] };
            let (fresh, g) = common::small_model::<f64>(shapes, round);
            for (k, v) in fresh {
                p.entry(k.clone()).or_insert_with(|| v.clone());
                single.entry(k).or_insert(v);
            }
            p = moved(&p, round);
            let g = subset(&g, round);
            together.update(&mut p, &g).unwrap();
            // The same keys one call each, in a fixed order.
            let mut keys: Vec<&String> = g.keys().collect();
            keys.sort();
            for k in keys {
                let mut one: Params<f64> = [(k.clone(), single[k].clone())].into();
                let grad: Params<f64> = [(k.clone(), g[k].clone())].into();
                alone.update(&mut one, &grad).unwrap();
                single.insert(k.clone(), one.remove(k).unwrap());
            }
        }
        assert_eq!(
            common::params_bits(&p),
            common::params_bits(&single),
            "{name}: parameters differ"
        );
    }
}
