//! Properties over random models: errors change nothing, key order and memory layout do not
//! matter, zero gradients stand still, f32 follows f64.

#[macro_use]
mod common;

use common::{params_bits, state_bits};
use ndarray::{ArrayD, Axis, IxDyn, ShapeBuilder, Slice};
use ndoptim::{Engine, Optimizer, Params, Rule, Scalar};
use proptest::collection::vec;
use proptest::prelude::*;

const STEPS: usize = 3;

/// One parameter: its shape and `STEPS + 1` arrays of data (the initial value, then a gradient
/// per step), all f32 values so that f32 and f64 runs start from the same numbers.
#[derive(Clone, Debug)]
struct Tensor {
    shape: Vec<usize>,
    data: Vec<f32>,
}

fn tensor() -> impl Strategy<Value = Tensor> {
    vec(1usize..4, 0..4).prop_flat_map(|shape| {
        let n: usize = shape.iter().product::<usize>() * (STEPS + 1);
        vec(-10f32..10f32, n).prop_map(move |data| Tensor {
            shape: shape.clone(),
            data,
        })
    })
}

fn model() -> impl Strategy<Value = Vec<Tensor>> {
    vec(tensor(), 1..4)
}

fn key(i: usize) -> String {
    format!("k{i}")
}

impl Tensor {
    fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// Array `j` (0: the initial value, `s`: the gradient of step `s`) in C order.
    fn array<F: Scalar>(&self, j: usize) -> ArrayD<F> {
        let n = self.len();
        let data = self.data[j * n..(j + 1) * n]
            .iter()
            .map(|&x| F::from(x).unwrap())
            .collect();
        ArrayD::from_shape_vec(IxDyn(&self.shape), data).unwrap()
    }

    /// The same values in another memory layout: 0 C order, 1 Fortran order, 2 every other
    /// element of a larger array, 3 the first axis reversed.
    fn array_in<F: Scalar>(&self, j: usize, layout: usize) -> ArrayD<F> {
        let c = self.array::<F>(j);
        let mut a = match layout {
            1 => ArrayD::zeros(IxDyn(&self.shape).f()),
            2 => {
                let wide: Vec<usize> = self.shape.iter().map(|d| d * 2).collect();
                let mut a = ArrayD::zeros(IxDyn(&wide));
                a.slice_each_axis_inplace(|_| Slice::new(0, None, 2));
                a
            }
            3 if !self.shape.is_empty() => {
                let mut a = ArrayD::zeros(IxDyn(&self.shape));
                a.invert_axis(Axis(0));
                a
            }
            _ => return c,
        };
        a.assign(&c);
        a
    }
}

fn params<F: Scalar>(m: &[Tensor], j: usize) -> Params<F> {
    m.iter()
        .enumerate()
        .map(|(i, t)| (key(i), t.array(j)))
        .collect()
}

/// The crate's optimizers, by index, as trait objects.
fn optimizer<F: Scalar>(i: usize) -> Box<dyn Optimizer<F>> {
    common::all_optimizers().swap_remove(i)
}

fn count() -> usize {
    common::all_optimizers::<f64>().len()
}

/// The book's SGD, AdaGrad, RMSprop and Adam, which stand still on zero gradients from zero state.
fn book_four() -> Vec<usize> {
    // The first of each name is the book's default configuration.
    let names: Vec<_> = common::all_optimizers::<f64>()
        .iter()
        .map(|o| o.name())
        .collect();
    let first = |name: &str| names.iter().position(|&n| n == name).unwrap();
    vec![
        first("SGD"),
        first("AdaGrad"),
        first("RMSprop"),
        first("Adam"),
    ]
}

fn run<F: Scalar>(opt: &mut dyn Optimizer<F>, m: &[Tensor]) -> Params<F> {
    let mut p = params(m, 0);
    for s in 1..=STEPS {
        opt.update(&mut p, &params(m, s)).unwrap();
    }
    p
}

/// Warms `opt` up for `warm` steps, makes a bad call of kind `kind` and checks that it fails
/// without changing anything.
fn bad_call_changes_nothing<R: Rule<f64>>(
    mut opt: Engine<R, f64>,
    m: &[Tensor],
    warm: usize,
    kind: usize,
    which: usize,
) {
    let mut p = params::<f64>(m, 0);
    for s in 1..=warm {
        opt.update(&mut p, &params(m, s)).unwrap();
    }
    let mut g = params::<f64>(m, warm + 1);
    let victim = key(which % m.len());
    let mut bigger = m[which % m.len()].shape.clone();
    bigger.push(2);
    match kind {
        0 => {
            g.insert("not a parameter".into(), ArrayD::zeros(IxDyn(&[1])));
        }
        1 => {
            g.insert(victim, ArrayD::zeros(IxDyn(&bigger)));
        }
        _ => {
            p.insert(victim.clone(), ArrayD::zeros(IxDyn(&bigger)));
            g.insert(victim, ArrayD::zeros(IxDyn(&bigger)));
        }
    }
    let (p_before, s_before) = (params_bits(&p), state_bits(&opt));
    assert!(opt.update(&mut p, &g).is_err());
    assert_eq!(params_bits(&p), p_before);
    assert_eq!(state_bits(&opt), s_before);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn an_error_leaves_params_and_state_bit_identical(m in model(), warm in 1usize..3, kind in 0usize..3, which in 0usize..4) {
        with_each_optimizer!(f64, |o| bad_call_changes_nothing(o, &m, warm, kind, which));
    }

    #[test]
    fn key_order_does_not_change_the_result(m in model(), o in 0..count()) {
        // Keys of an optimizer with optimizer-wide sums (Prodigy) share their step size: they
        // do not step as if alone, and renamed they are summed in another order.
        prop_assume!(optimizer::<f64>(o).scope() != ndoptim::Scope::Global);
        let together = run::<f64>(&mut *optimizer(o), &m);
        // The same keys inserted in reverse order (and hashed with other seeds).
        let mut reversed = m.clone();
        reversed.reverse();
        let r = run::<f64>(&mut *optimizer(o), &reversed);
        let n = m.len();
        for (i, t) in m.iter().enumerate() {
            // Each key alone, through its own optimizer.
            let alone = run::<f64>(&mut *optimizer(o), std::slice::from_ref(t));
            prop_assert_eq!(&together[&key(i)], &alone[&key(0)]);
            prop_assert_eq!(&together[&key(i)], &r[&key(n - 1 - i)]);
        }
    }

    #[test]
    fn memory_layout_does_not_change_the_result(m in model(), o in 0..count(), layouts in vec(0usize..4, 8)) {
        let want = run::<f64>(&mut *optimizer(o), &m);
        let mut opt = optimizer::<f64>(o);
        let mut p: Params<f64> = m.iter().enumerate().map(|(i, t)| (key(i), t.array_in(0, layouts[i]))).collect();
        for s in 1..=STEPS {
            let g = m.iter().enumerate().map(|(i, t)| (key(i), t.array_in(s, layouts[4 + (i + s) % 4]))).collect();
            opt.update(&mut p, &g).unwrap();
        }
        prop_assert_eq!(params_bits(&p), params_bits(&want));
    }

    #[test]
    fn every_simd_level_gives_the_same_bits(m in model(), o in 0..count()) {
        use ndoptim::simd::{Level, with_level};
        let portable = with_level(Level::Portable, || run::<f32>(&mut *optimizer(o), &m)).unwrap();
        for level in Level::available() {
            let p = with_level(level, || run::<f32>(&mut *optimizer(o), &m)).unwrap();
            prop_assert_eq!(params_bits(&p), params_bits(&portable), "{:?}", level);
        }
    }

    #[test]
    fn zero_gradients_leave_parameters_unchanged(m in model(), o in prop::sample::select(book_four())) {
        let mut opt = optimizer::<f64>(o);
        let mut p = params::<f64>(&m, 0);
        let before = params_bits(&p);
        let zeros: Params<f64> = p.iter().map(|(k, a)| (k.clone(), ArrayD::zeros(a.raw_dim()))).collect();
        for _ in 0..STEPS {
            opt.update(&mut p, &zeros).unwrap();
        }
        prop_assert_eq!(params_bits(&p), before);
    }

    #[test]
    fn f32_follows_f64_to_f32_precision(m in model(), o in 0..count()) {
        // Lion steps by sign(c): where c rounds to either side of 0, f32 and f64 part by 2·lr.
        prop_assume!(optimizer::<f64>(o).name() != "Lion");
        // SOAP's first eigenbasis is of one outer product: where that leaves an eigenvalue of 0
        // twice or more, any basis of its eigenspace is right, and f32's and f64's differ.
        prop_assume!(optimizer::<f64>(o).name() != "SOAP");
        let p64 = run::<f64>(&mut *optimizer(o), &m);
        let p32 = run::<f32>(&mut *optimizer(o), &m);
        for (k, a) in &p64 {
            for (&x, &y) in a.iter().zip(p32[k].iter()) {
                let err = (x - f64::from(y)).abs() / x.abs().max(1.0);
                prop_assert!(err <= 1e-5, "{}: {} vs {} ({:e})", k, x, y, err);
            }
        }
    }
}
