//! PSGD Kron: a Kronecker-factored preconditioner fitted by its own gradient descent.

use std::fmt::Debug;
use std::sync::Arc;

use ndarray::IxDyn;

use crate::engine::{Engine, Layout, Parts, Rule, Scalar, Scope, Step, cast};
use crate::parts::{add_scaled, bias_correction};
use crate::products::{Axis, Matrix, gram, mode_product, solve_transposed_upper};
use crate::tensor::{each_grad, each_param};
use crate::{Error, check};

/// How often Kron updates its preconditioner.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum UpdateProbability {
    /// A fixed probability in `(0, 1]`: every `⌈1/p⌉`-th step.
    Fixed(f64),
    /// kron_torch's `precond_update_prob_schedule`: `clamp(max·exp(−decay·(n − flat_start)),
    /// min, max)` in f32, `n` the steps taken before this one.
    Schedule {
        /// The probability of the flat start, in `(0, 1]`.
        max_prob: f64,
        /// The floor, in `(0, max_prob]`.
        min_prob: f64,
        /// The decay rate, `>= 0`.
        decay: f64,
        /// Steps at `max_prob` before the decay begins.
        flat_start: f64,
    },
}

impl Default for UpdateProbability {
    fn default() -> Self {
        Self::Schedule { max_prob: 1.0, min_prob: 0.03, decay: 0.001, flat_start: 500.0 }
    }
}

/// Which factors Kron keeps diagonal to save memory (kron_torch's `memory_save_mode`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum MemorySaveMode {
    /// `None`: every factor triangular (within `max_size_triangular`).
    #[default]
    None,
    /// `"smart_one_diag"`: the largest axis, if strictly larger than every other.
    SmartOneDiag,
    /// `"one_diag"`: the largest axis (the last of equal largest ones).
    OneDiag,
    /// `"all_diag"`: every axis.
    AllDiag,
}

/// The random numbers Kron draws: one uniform number per step (whether to rebalance the
/// factors) and, at each preconditioner update, a standard normal per element of the key. The
/// default is a seeded counter-based generator; a source of one's own replays recorded draws.
pub trait KronDraws: Debug + Send + Sync {
    /// The uniform number in `[0, 1)` of step `step` (counted from 0).
    fn uniform(&self, step: u64) -> f64;
    /// Element `index` (row-major) of the standard normals drawn for `key` at step `step`.
    fn normal(&self, step: u64, key: &str, index: usize) -> f64;
}

/// The default draws: SplitMix64 over the seed, the step and the element, so that they depend
/// on nothing but those: a resumed run draws what the uninterrupted one would have, and a key's
/// result does not depend on its name or on the other keys. Keys share their probes; each key's
/// fit sees only its own, so that costs nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Seeded(u64);

impl Seeded {
    fn bits(&self, words: [u64; 3]) -> u64 {
        let mut x = self.0;
        for w in words {
            x = mix(x ^ w);
        }
        x
    }

    fn unit(bits: u64) -> f64 {
        (bits >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// SplitMix64's finaliser.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl KronDraws for Seeded {
    fn uniform(&self, step: u64) -> f64 {
        Self::unit(self.bits([step, u64::MAX, 0]))
    }

    fn normal(&self, step: u64, _key: &str, index: usize) -> f64 {
        // Box–Muller on two uniforms of (0, 1].
        let (u1, u2) = (
            1.0 - Self::unit(self.bits([step, 1, 2 * index as u64])),
            Self::unit(self.bits([step, 1, 2 * index as u64 + 1])),
        );
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
}

/// PSGD Kron (Li, 2015, "Preconditioned Stochastic Gradient Descent"; Kronecker-factored form
/// as kron_torch's `Kron`): momentum preconditioned by `P = ⊗ᵢ QᵢᵀQᵢ`, whose factors `Qᵢ`
/// (upper-triangular, or diagonal for long or chosen axes) are fitted to `E[P h hᵀ P] = E[v vᵀ]`
/// by a few steps of their own gradient descent, on a probe `v` of normals.
///
/// A key of rank > 2 is first merged into a matrix (`[Π shape[..−1], shape[−1]]` or
/// `[shape[0], Π shape[1..]]`, the squarer). Per step `t`:
///
/// ```text
/// m ← β₁·m + (1 − β₁)·g;   G = m/(1 − β₁ᵗ)
/// every ~1/p steps:  G′ = G (or g) + √ε₃₂·mean|G′|·V  (in place);   A = G′ ×ᵢ Qᵢ;   B = V ×ᵢ Qᵢ⁻ᵀ
///     per factor: D = η·(A₍ᵢ₎A₍ᵢ₎ᵀ − B₍ᵢ₎B₍ᵢ₎ᵀ), S = A₍ᵢ₎A₍ᵢ₎ᵀ + B₍ᵢ₎B₍ᵢ₎ᵀ;
///     diagonal: q ← q − D·q/max(‖S‖_max, tiny);  triangular: Q ← Q − triu(D)·Q/max(lb(S), tiny)
/// P = G ×ᵢ QᵢᵀQᵢ;   P ← P·min(1, 1.1/(RMS(P) + 1e-12));   P ← P + λ·p (rank ≥ 2);   p ← p − lr·P
/// ```
///
/// `lb(S)` is kron_torch's cheap lower bound of the spectral norm; about one update in a hundred
/// first rescales the factors to a common max-norm (their geometric mean). The update schedule
/// ([`UpdateProbability`]) counts per key, on the key's own steps: as the reference's shared
/// counter for keys that step together from the start.
///
/// Defaults are kron_torch's: learning rate 3e-4, β₁ 0.9, weight decay 0, the annealed
/// schedule (1.0 for 500 steps, then down to 0.03), triangular factors up to 8192 on keys of rank
/// ≥ 2, preconditioner learning rate η 0.1, initial scale 1, merged dimensions, momentum into the
/// preconditioner's fit. The factors are kept in the parameter's type (kron_torch's default is
/// f32 whatever the parameters). A 0-d key (which the reference cannot take) has one diagonal
/// factor of size 1.
///
/// State: `momentum_buffer`, and `Q`: the factors one after the other (row-major matrices and
/// vectors).
pub type Kron<F = f32> = Engine<KronRule, F>;

/// The rule of [`Kron`].
#[derive(Clone, Debug)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct KronRule {
    b1: f64,
    weight_decay: f64,
    update_probability: UpdateProbability,
    max_size_triangular: usize,
    min_ndim_triangular: usize,
    memory_save_mode: MemorySaveMode,
    momentum_into_precond_update: bool,
    precond_lr: f64,
    precond_init_scale: f64,
    merge_dims: bool,
    seed: u64,
    #[cfg_attr(feature = "serde", serde(skip))]
    draws: Option<Arc<dyn KronDraws>>,
}

impl Default for KronRule {
    fn default() -> Self {
        Self {
            b1: 0.9,
            weight_decay: 0.0,
            update_probability: UpdateProbability::default(),
            max_size_triangular: 8192,
            min_ndim_triangular: 2,
            memory_save_mode: MemorySaveMode::None,
            momentum_into_precond_update: true,
            precond_lr: 0.1,
            precond_init_scale: 1.0,
            merge_dims: true,
            seed: 42,
            draws: None,
        }
    }
}

setters!(Kron {
    /// Sets β₁, the momentum, in `[0, 1)` (default 0.9).
    b1: f64,
    /// Sets the weight decay λ, `>= 0`, added to keys of rank ≥ 2 (default 0).
    weight_decay: f64,
    /// Sets how often the preconditioner is updated (default the annealed schedule).
    update_probability: UpdateProbability,
    /// Sets the longest axis that gets a triangular factor (default 8192).
    max_size_triangular: usize,
    /// Sets the rank a key needs for triangular factors (default 2).
    min_ndim_triangular: usize,
    /// Sets which factors are kept diagonal (default none).
    memory_save_mode: MemorySaveMode,
    /// Fits the preconditioner to the momentum rather than the gradient (default `true`).
    momentum_into_precond_update: bool,
    /// Sets η, the preconditioner's learning rate, `>= 0` (default 0.1).
    precond_lr: f64,
    /// Sets the initial scale of the preconditioner, `> 0` (default 1).
    precond_init_scale: f64,
    /// Merges a key of rank > 2 into a matrix (default `true`).
    merge_dims: bool,
    /// Sets the seed of the default draws (default 42).
    seed: u64,
});

impl<F: Scalar> Kron<F> {
    /// Draws from `source` instead of the seeded generator: recorded draws replay a reference
    /// run exactly. Not part of checkpoints: set it again on the optimizer a checkpoint loads
    /// into.
    #[must_use]
    pub fn draws(self, source: Arc<dyn KronDraws>) -> Self {
        self.with(|r| r.draws = Some(source))
    }
}

/// Per-key scalars of [`Kron`]: the update schedule's counter.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct KronScalars {
    counter: u32,
}

/// One factor: its axis of the merged key, where it starts in `Q`, and whether it is triangular.
#[derive(Clone, Copy, Debug)]
struct Factor {
    axis: Axis,
    offset: usize,
    triangular: bool,
}

impl KronRule {
    /// The merged axes of a key of `shape`, as kron_torch merges them.
    fn merged(&self, shape: &[usize]) -> ([usize; 2], usize) {
        match shape {
            [first, .., last] if shape.len() > 2 && self.merge_dims => {
                let n: usize = shape.iter().product();
                let (rows_a, rows_b) = (n.checked_div(*last).unwrap_or(0), *first);
                let (cols_a, cols_b) = (*last, n.checked_div(*first).unwrap_or(0));
                let a = cols_a as i128 - rows_a as i128;
                let b = cols_b as i128 - rows_b as i128;
                (if a <= b { [rows_a, cols_a] } else { [rows_b, cols_b] }, 2)
            }
            _ => ([0; 2], 0),
        }
    }

    /// The key's factors in order, with the scale each starts from.
    fn each_factor(&self, shape: &[usize], mut f: impl FnMut(Factor)) -> f64 {
        let (merged, count) = self.merged(shape);
        let dims: &[usize] = if count == 2 { &merged } else { shape };
        let n: usize = shape.iter().product();
        if dims.is_empty() {
            let axis = Axis { len: 1, outer: 1, inner: 1 };
            f(Factor { axis, offset: 0, triangular: false });
            return self.precond_init_scale;
        }
        let largest = dims.iter().copied().max().unwrap_or(0);
        let last_largest = dims.iter().rposition(|&d| d == largest);
        let strictly = dims.iter().filter(|&&d| d == largest).count() == 1 && dims.len() > 1;
        let (mut outer, mut offset) = (1usize, 0usize);
        for (i, &len) in dims.iter().enumerate() {
            let diagonal_by_mode = match self.memory_save_mode {
                MemorySaveMode::None => false,
                MemorySaveMode::SmartOneDiag => strictly && Some(i) == last_largest,
                MemorySaveMode::OneDiag => Some(i) == last_largest,
                MemorySaveMode::AllDiag => true,
            };
            let triangular = !(len == 1
                || len > self.max_size_triangular
                || dims.len() < self.min_ndim_triangular
                || diagonal_by_mode);
            let inner = n.checked_div(outer.saturating_mul(len)).unwrap_or(0);
            f(Factor { axis: Axis { len, outer, inner }, offset, triangular });
            outer = outer.saturating_mul(len);
            offset = offset.saturating_add(if triangular { len.saturating_mul(len) } else { len });
        }
        self.precond_init_scale.powf(1.0 / dims.len() as f64)
    }

    /// Elements of `Q`, and of its largest factor.
    fn factors(&self, shape: &[usize]) -> (usize, usize) {
        let (mut total, mut largest) = (0usize, 0usize);
        self.each_factor(shape, |f| {
            let len = f.axis.len;
            let size = if f.triangular { len.saturating_mul(len) } else { len };
            total = total.saturating_add(size);
            largest = largest.max(size);
        });
        (total, largest)
    }

    /// Whether step `t` (from 1) updates the preconditioner, advancing the counter.
    fn updates(&self, t: u64, counter: &mut u32) -> bool {
        let threshold = match self.update_probability {
            UpdateProbability::Fixed(p) => (1.0 / p) as f32,
            UpdateProbability::Schedule { max_prob, min_prob, decay, flat_start } => {
                let (max, min) = (max_prob as f32, min_prob as f32);
                let n = (t - 1) as f32;
                let prob = max * (-(decay as f32) * (n - flat_start as f32)).exp();
                1.0 / prob.max(min).min(max)
            }
        };
        *counter = counter.saturating_add(1);
        let update = *counter as f32 >= threshold;
        if update {
            *counter = 0;
        }
        update
    }

    fn uniform(&self, step: u64) -> f64 {
        match &self.draws {
            Some(d) => d.uniform(step),
            None => Seeded(self.seed).uniform(step),
        }
    }

    fn normal(&self, step: u64, key: &str, index: usize) -> f64 {
        match &self.draws {
            Some(d) => d.normal(step, key, index),
            None => Seeded(self.seed).normal(step, key, index),
        }
    }
}

impl<F: Scalar> Rule<F> for KronRule {
    type KeyScalars = KronScalars;
    const NAME: &'static str = "Kron";
    const DEFAULT_LR: f64 = 3e-4;
    const SCOPE: Scope = Scope::Tensor;

    hyperparameters!(Momentum => (b1), WeightDecay => (weight_decay));

    fn validate(&self) -> Result<(), Error> {
        check::unit_interval("b1 value", self.b1)?;
        check::non_negative("weight_decay value", self.weight_decay)?;
        check::non_negative("precond_lr value", self.precond_lr)?;
        if !(self.precond_init_scale > 0.0 && self.precond_init_scale.is_finite()) {
            check::fail("precond_init_scale", self.precond_init_scale, "a finite number > 0")?;
        }
        let probability = |name, p: f64| match p > 0.0 && p <= 1.0 {
            true => Ok(()),
            false => check::fail(name, p, "in (0, 1]"),
        };
        match self.update_probability {
            UpdateProbability::Fixed(p) => probability("preconditioner_update_probability", p),
            UpdateProbability::Schedule { max_prob, min_prob, decay, flat_start } => {
                probability("max_prob", max_prob)?;
                probability("min_prob", min_prob)?;
                check::non_negative("decay value", decay)?;
                check::finite("flat_start", flat_start)
            }
        }
    }

    fn slot_names(&self) -> Vec<&'static str> {
        vec!["momentum_buffer", "Q"]
    }

    fn slots(&self, _key: &str, shape: &[usize]) -> Vec<(&'static str, IxDyn)> {
        let (total, _) = self.factors(shape);
        vec![("momentum_buffer", IxDyn(shape)), ("Q", IxDyn(&[total]))]
    }

    fn scratch(&self, _key: &str, shape: &[usize]) -> usize {
        let (_, largest) = self.factors(shape);
        Self::scratch_of(shape.iter().product(), largest)
    }

    fn step<L: Layout<F>>(&self, step: Step<'_, F, L>, scalars: &mut KronScalars) {
        let (lr, t, key) = (step.lr(), step.t(), step.key);
        let wd = step.weight_decay().unwrap_or(self.weight_decay);
        let Parts { params, grads, state, scratch } = step.parts();
        let shape = params.shape();
        let (n, (total, largest), rank) = (params.len(), self.factors(shape), shape.len());
        if n == 0 || state.len() < n + total || scratch.len() < Self::scratch_of(n, largest) {
            return; // state and scratch are sized by `slots` and `scratch`: an empty key
        }
        let (m, q) = state.split_at_mut(n);
        let (g, rest) = scratch.split_at_mut(n);
        let (raw, rest) = rest.split_at_mut(n);
        let (v, rest) = rest.split_at_mut(n);
        let (a, rest) = rest.split_at_mut(n);
        let (spare, rest) = rest.split_at_mut(n);
        // A factor's two statistics, and two vectors of a triangular factor's length.
        let (t1, rest) = rest.split_at_mut(largest);
        let (t2, rest) = rest.split_at_mut(largest);
        let (x, y) = rest.split_at_mut(largest);
        if t == 1 {
            let scale: F = cast(self.each_factor(shape, |_| ()));
            self.each_factor(shape, |f| {
                let (len, o) = (f.axis.len, f.offset);
                match f.triangular {
                    true => (0..len).for_each(|i| q[o + i * len + i] = scale),
                    false => q[o..o + len].fill(scale),
                }
            });
        }
        let (beta, keep): (F, F) = (cast(self.b1), cast(1.0 - self.b1));
        let correction: F = cast(bias_correction(self.b1, t));
        each_grad(grads, |i, x| {
            m[i] = add_scaled(m[i] * beta, keep, x);
            g[i] = m[i] / correction;
            raw[i] = x;
        });
        let update = self.updates(t, &mut scalars.counter);
        // About one update in a hundred first rebalances the factors of a matrix.
        if rank > 1 && update && self.uniform(t - 1) < 0.01 {
            self.balance(shape, q);
        }
        if update {
            // The probe: G (or g) + √ε₃₂·mean|·|·V, in place, as the reference perturbs it.
            let probe: &mut [F] = if self.momentum_into_precond_update { g } else { raw };
            v.iter_mut()
                .enumerate()
                .for_each(|(i, v)| *v = cast(self.normal(t - 1, key, i)));
            let mean = probe.iter().fold(F::zero(), |s, x| s + x.abs()) / cast(n as f64);
            let noise = cast::<F>(f64::from(f32::EPSILON)).sqrt() * mean;
            probe.iter_mut().zip(&*v).for_each(|(p, &v)| *p = *p + noise * v);
            a.copy_from_slice(probe);
            self.multiply(shape, a, spare, q, false);
            self.solve(shape, v, q);
            self.fit(shape, a, v, q, (t1, t2), (x, y));
        }
        // P = G ×ᵢ QᵢᵀQᵢ, its RMS clipped to 1.1.
        self.multiply(shape, g, spare, q, false);
        self.multiply(shape, g, spare, q, true);
        let rms = (g.iter().fold(F::zero(), |s, &x| s + x * x) / cast(n as f64)).sqrt();
        let clip = F::one().min(cast::<F>(1.1) / (rms + cast(1e-12)));
        let (decay, step): (F, F) = (cast(wd), cast(-lr));
        let decays = wd != 0.0 && rank >= 2;
        each_param(params, |i, p| {
            let mut u = g[i] * clip;
            if decays {
                u = add_scaled(u, decay, *p);
            }
            *p = add_scaled(*p, step, u);
        });
    }
}

impl KronRule {
    /// Scratch elements a key of `n` elements whose largest factor has `largest` needs.
    fn scratch_of(n: usize, largest: usize) -> usize {
        n.saturating_mul(5).saturating_add(largest.saturating_mul(4))
    }
}

impl KronRule {
    /// Rescales the factors to a common max-norm, their geometric mean.
    fn balance<F: Scalar>(&self, shape: &[usize], q: &mut [F]) {
        let size = |f: &Factor| if f.triangular { f.axis.len * f.axis.len } else { f.axis.len };
        let (mut logs, mut count) = (F::zero(), 0usize);
        self.each_factor(shape, |f| {
            let norm = q[f.offset..f.offset + size(&f)].iter().fold(F::zero(), |s, x| s.max(x.abs()));
            logs = logs + norm.ln();
            count += 1;
        });
        let mean = (logs / cast(count as f64)).exp();
        self.each_factor(shape, |f| {
            let q = &mut q[f.offset..f.offset + size(&f)];
            let scale = mean / q.iter().fold(F::zero(), |s, x| s.max(x.abs()));
            q.iter_mut().for_each(|x| *x = *x * scale);
        });
    }

    /// `x ← x ×ᵢ Qᵢ` over every factor (`x ×ᵢ Qᵢᵀ` when `transpose`), `y` the other buffer.
    fn multiply<F: Scalar>(&self, shape: &[usize], x: &mut [F], y: &mut [F], q: &[F], transpose: bool) {
        let (mut from, mut to, mut moved) = (&mut *x, &mut *y, false);
        self.each_factor(shape, |f| {
            let Axis { len, outer: _, inner } = f.axis;
            if !f.triangular {
                let q = &q[f.offset..f.offset + len];
                for (k, x) in from.iter_mut().enumerate() {
                    *x = q[(k / inner) % len] * *x;
                }
                return;
            }
            let q = Matrix::new(&q[f.offset..f.offset + len * len], len, len);
            mode_product(if transpose { q.t() } else { q }, from, f.axis, to);
            std::mem::swap(&mut from, &mut to);
            moved = !moved;
        });
        if moved {
            to.copy_from_slice(from);
        }
    }

    /// `v ← v ×ᵢ Qᵢ⁻ᵀ` over every factor: along each axis, `yQ = x` for upper-triangular `Q`
    /// (kron_torch's `solve_triangular(..., upper=True, left=False)`), or `x/q`.
    fn solve<F: Scalar>(&self, shape: &[usize], v: &mut [F], q: &[F]) {
        self.each_factor(shape, |f| {
            let Axis { len, inner, .. } = f.axis;
            if !f.triangular {
                let q = &q[f.offset..f.offset + len];
                for (k, x) in v.iter_mut().enumerate() {
                    *x = *x / q[(k / inner) % len];
                }
                return;
            }
            solve_transposed_upper(&q[f.offset..f.offset + len * len], f.axis, v);
        });
    }

    /// One step of the factors' fit from `A = G′ ×ᵢ Qᵢ` and `B = V ×ᵢ Qᵢ⁻ᵀ`.
    fn fit<F: Scalar>(
        &self,
        shape: &[usize],
        a: &[F],
        b: &[F],
        q: &mut [F],
        (t1, t2): (&mut [F], &mut [F]),
        (x, y): (&mut [F], &mut [F]),
    ) {
        let (eta, tiny): (F, F) = (cast(self.precond_lr), F::min_positive_value());
        self.each_factor(shape, |f| {
            let Axis { len, inner, .. } = f.axis;
            if !f.triangular {
                let (t1, t2) = (&mut t1[..len], &mut t2[..len]);
                t1.fill(F::zero());
                t2.fill(F::zero());
                for (k, (&a, &b)) in a.iter().zip(b).enumerate() {
                    let i = (k / inner) % len;
                    t1[i] = t1[i] + a * a;
                    t2[i] = t2[i] + b * b;
                }
                let norm = t1.iter().zip(&*t2).fold(F::zero(), |s, (&p, &m)| s.max((p + m).abs()));
                let q = &mut q[f.offset..f.offset + len];
                for ((q, &p), &m) in q.iter_mut().zip(&*t1).zip(&*t2) {
                    let d = (p - m) * eta;
                    *q = *q - d * (*q / norm.max(tiny));
                }
                return;
            }
            let size = len * len;
            let (t1, t2) = (&mut t1[..size], &mut t2[..size]);
            gram(a, f.axis, t1);
            gram(b, f.axis, t2);
            for (d, s) in t1.iter_mut().zip(t2.iter_mut()) {
                let (p, m) = (*d, *s);
                (*d, *s) = ((p - m) * eta, p + m);
            }
            let norm = t2.iter().fold(F::zero(), |s, x| s.max(x.abs()));
            let bound = if norm > F::zero() { lower_bound(t2, norm, len, x, y) } else { norm };
            let denominator = bound.max(tiny);
            for i in 0..len {
                for j in 0..len {
                    let d = &mut t1[i * len + j];
                    *d = if j < i { F::zero() } else { *d / denominator };
                }
            }
            // Q ← Q − D·Q, the product into t2 (free once the bound is taken).
            let q = &mut q[f.offset..f.offset + size];
            let set = crate::products::Output { accumulate: false, symmetric: false };
            F::multiply(t2, Matrix::new(t1, len, len), Matrix::new(q, len, len), F::one(), set);
            q.iter_mut().zip(&*t2).for_each(|(q, &d)| *q = *q - d);
        });
    }
}

/// kron_torch's `_lb`: a cheap lower bound of the spectral norm of the symmetric `s` (`len ×
/// len`, divided by `norm` in place), times `norm`.
fn lower_bound<F: Scalar>(s: &mut [F], norm: F, len: usize, x: &mut [F], y: &mut [F]) -> F {
    s.iter_mut().for_each(|v| *v = *v / norm);
    let (x, y) = (&mut x[..len], &mut y[..len]);
    // The column of largest sum of squares (the first such), its sums row by row.
    x.fill(F::zero());
    for row in s.chunks_exact(len) {
        x.iter_mut().zip(row).for_each(|(c, &v)| *c = *c + v * v);
    }
    let best = (1..len).fold(0, |b, j| if x[j] > x[b] { j } else { b });
    // x = S[:, best]ᵀ S;  x /= ‖x‖;  y = S x.
    x.fill(F::zero());
    for row in s.chunks_exact(len) {
        let c = row[best];
        x.iter_mut().zip(row).for_each(|(x, &v)| *x = *x + c * v);
    }
    let length = x.iter().fold(F::zero(), |t, &v| t + v * v).sqrt();
    x.iter_mut().for_each(|v| *v = *v / length);
    for (y, row) in y.iter_mut().zip(s.chunks_exact(len)) {
        *y = row.iter().zip(&*x).fold(F::zero(), |t, (&v, &x)| t + v * x);
    }
    y.iter().fold(F::zero(), |t, &v| t + v * v).sqrt() * norm
}
