//! SM3: AdaGrad with one accumulator per index of each axis, not per element.

use ndarray::IxDyn;

use crate::engine::{Engine, Layout, Parts, Rule, Scalar, Scope, Step, cast, for_each_slice};
use crate::{Error, check};

/// SM3 (Anil et al., 2019, "Memory-Efficient Adaptive Optimization"), as optax's `sm3` computes
/// it: AdaGrad whose second moments are covered by one accumulator per row, per column, and so on
/// for each axis. For an element at index `(i₁, …, i_k)` of a key with accumulators `μ_a` per axis:
///
/// ```text
/// ν̂ = g² + min_a μ_a[i_a]      (β₂ = 1, optax's sm3; otherwise (1 − β₂)·g² + β₂·min)
/// u = g / √(ν̂ + ε)  (0 where ν̂ = 0);   m ← (1 − β₁)·u + β₁·m;   p ← p − lr·m
/// μ_a[j] ← max of ν̂ over the elements with i_a = j
/// ```
///
/// A key of `n` elements keeps `m` and `d₁ + … + d_k` accumulators instead of AdaGrad's `n`. A
/// vector's one axis makes it plain AdaGrad. A 0-d key, which optax refuses, counts as a vector of
/// one element.
///
/// Defaults (optax's `sm3`): momentum β₁ 0.9, β₂ 1, ε 1e-8. State: `nu` (the momentum `m`, shaped
/// like the parameter) and `mu`, the axes' accumulators one after the other.
pub type Sm3<F = f32> = Engine<Sm3Rule, F>;

/// The rule of [`Sm3`].
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Sm3Rule {
    momentum: f64,
    beta2: f64,
    eps: f64,
}

impl Default for Sm3Rule {
    fn default() -> Self {
        Self {
            momentum: 0.9,
            beta2: 1.0,
            eps: 1e-8,
        }
    }
}

setters!(Sm3 {
    /// Sets the momentum β₁ (optax's `b1`), in `[0, 1)` (default 0.9).
    momentum: f64,
    /// Sets β₂, the decay of the accumulators, in `(0, 1]` (default 1: no decay).
    beta2: f64,
    /// Sets ε, added under the root (default 1e-8), `>= 0`.
    eps: f64,
});

/// The number of accumulators of a key: the sum of its axes' lengths (1 for a 0-d key).
fn accumulators(shape: &[usize]) -> usize {
    match shape {
        [] => 1,
        axes => axes.iter().fold(0usize, |s, &d| s.saturating_add(d)),
    }
}

/// Where in `mu` the accumulators of the element at row-major position `flat` of an array shaped
/// `dims` are, one per axis (the last axis first); `dims` may leave out trailing axes, whose
/// accumulators come after.
fn each_accumulator(dims: &[usize], flat: usize) -> impl Iterator<Item = usize> + '_ {
    let total: usize = dims.iter().sum();
    let (mut rest, mut after) = (flat, 0);
    dims.iter().rev().map(move |&d| {
        let index = rest % d;
        rest /= d;
        after += d;
        total - after + index
    })
}

impl<F: Scalar> Rule<F> for Sm3Rule {
    type KeyScalars = ();
    const NAME: &'static str = "SM3";
    const DEFAULT_LR: f64 = 0.01;
    const SCOPE: Scope = Scope::Tensor;

    hyperparameters!(Momentum => (momentum), Beta2 => (beta2));

    fn validate(&self) -> Result<(), Error> {
        check::unit_interval("momentum value", self.momentum)?;
        if !(self.beta2 > 0.0 && self.beta2 <= 1.0) {
            check::fail("beta2 value", self.beta2, "a number in (0, 1]")?;
        }
        check::non_negative("epsilon value", self.eps)
    }

    fn slot_names(&self) -> Vec<&'static str> {
        vec!["nu", "mu"]
    }

    fn slots(&self, _key: &str, shape: &[usize]) -> Vec<(&'static str, IxDyn)> {
        vec![("nu", IxDyn(shape)), ("mu", IxDyn(&[accumulators(shape)]))]
    }

    fn scratch(&self, _key: &str, shape: &[usize]) -> usize {
        // The accumulators' new values, gathered while the old ones are still read, and one row's
        // second moments.
        accumulators(shape).saturating_add(shape.last().copied().unwrap_or(1))
    }

    fn step<L: Layout<F>>(&self, step: Step<'_, F, L>, _: &mut ()) {
        // optax's coefficients of g² and of the old accumulator: (1, 1) when β₂ = 1.
        let (c_new, c_old): (F, F) = match self.beta2 {
            1.0 => (F::one(), F::one()),
            b2 => (cast(1.0 - b2), cast(b2)),
        };
        let (c_u, b1, eps, neg_lr): (F, F, F, F) = (
            cast(1.0 - self.momentum),
            cast(self.momentum),
            cast(self.eps),
            cast(-step.lr()),
        );
        let Parts {
            params,
            grads,
            state,
            scratch,
        } = step.parts();
        let n = params.len();
        if n == 0 {
            return;
        }
        // The gradient's shape is the parameter's, borrowed apart from it.
        let dims: &[usize] = match grads.shape() {
            [] => &[1],
            shape => shape,
        };
        let (nu, mu) = state.split_at_mut(n);
        let fresh = &mut scratch[..mu.len() + dims[dims.len() - 1]];
        // A view of a contiguous gradient would clone its shape, on the heap beyond rank 4.
        let standard;
        let gs = match grads.as_slice() {
            Some(gs) => gs,
            None => {
                standard = grads.as_standard_layout();
                let Some(gs) = standard.as_slice() else { return };
                gs
            }
        };
        // Along a row (the last axis) every other axis's accumulator is the same: their minimum
        // is taken once per row, their maximum gathered once per row, and the inner loop over
        // the row's elements is plain elementwise work.
        let (outer, last) = dims.split_at(dims.len() - 1);
        let last = last[0];
        let split = mu.len() - last;
        let mut run = |ps: &mut [F]| {
            let (mu_outer, mu_last) = mu.split_at_mut(split);
            let (fresh_outer, fresh) = fresh.split_at_mut(split);
            let (fresh_last, row_v) = fresh.split_at_mut(last);
            fresh_outer.fill(F::neg_infinity());
            fresh_last.fill(F::neg_infinity());
            let rows = ps.chunks_exact_mut(last).zip(gs.chunks_exact(last));
            for (r, ((ps, gs), nu)) in rows.zip(nu.chunks_exact_mut(last)).enumerate() {
                let base = each_accumulator(outer, r).fold(F::infinity(), |x, at| x.min(mu_outer[at]));
                let columns = [&mut *nu, &mut *mu_last, &mut *fresh_last, &mut *row_v];
                for_each_slice::<F, [F; 4]>(ps, gs, columns, &move |p, g, [m, old, new, row]| {
                    let v = c_new * (g * g) + c_old * base.min(*old);
                    let u = if v > F::zero() { g * (F::one() / (v + eps).sqrt()) } else { F::zero() };
                    *m = c_u * u + b1 * *m;
                    *p = *p + neg_lr * *m;
                    *new = new.max(v);
                    *row = v;
                });
                let row_max = row_v.iter().fold(F::neg_infinity(), |x, &v| x.max(v));
                for at in each_accumulator(outer, r) {
                    fresh_outer[at] = fresh_outer[at].max(row_max);
                }
            }
            mu_outer.copy_from_slice(fresh_outer);
            mu_last.copy_from_slice(fresh_last);
        };
        match params.as_slice_mut() {
            Some(ps) => run(ps),
            None => {
                // Other layouts run on a row-major copy (the one case that allocates).
                let mut copy = params.as_standard_layout().into_owned();
                if let Some(ps) = copy.as_slice_mut() {
                    run(ps);
                }
                params.assign(&copy);
            }
        }
    }
}
