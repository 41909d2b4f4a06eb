//! SOAP: Adam in the eigenbasis of Shampoo's preconditioner.

use ndarray::IxDyn;

use crate::engine::{Engine, Layout, Parts, Rule, Scalar, Scope, Step, cast};
use crate::parts::{Lerp, add_scaled, bias_correction};
use crate::products::{Axis, Matrix, Output, gram, mode_product};
use crate::tensor::{each_grad, each_param};
use crate::{Error, check};

/// How SOAP reads a 4-D key when it merges dimensions ([`Soap::merge_dims`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum DataFormat {
    /// `"channels_first"`: NCHW, as stored.
    #[default]
    ChannelsFirst,
    /// `"channels_last"`: NHWC, permuted to NCHW before merging.
    ChannelsLast,
}

/// SOAP (Vyas et al., 2024, "SOAP: Improving and Stabilizing Shampoo using Adam"): Adam run in
/// the eigenbasis of Shampoo's preconditioner, which is refreshed every few steps.
///
/// Each side `i` of a key (an axis of length at most `max_precond_dim`; a vector's only with
/// `precondition_1d`) keeps `GGᵢ`, an average of the gradient's outer products along that axis,
/// and `Qᵢ`, its eigenvectors by descending eigenvalue; `G ×ᵢ Qᵢᵀ` rotates side `i` of `G` into
/// the eigenbasis, `×ᵢ Qᵢ` back, and a side without a preconditioner is left alone:
///
/// ```text
/// step 1:  GGᵢ ← lerp(0, G₍ᵢ₎G₍ᵢ₎ᵀ, 1 − β_s);  Qᵢ ← eigh(GGᵢ + 1e-30·I);  no update, t stays 0
/// t ← t + 1;   g′ = G ×ᵢ Qᵢᵀ
/// m ← β₁·m + (1 − β₁)·g′;   v ← β₂·v + (1 − β₂)·g′²            (both in the eigenbasis)
/// u = (m/(√v + ε)) ×ᵢ Qᵢ;   u ← u/(1e-30 + √mean(u²)) if normalize_grads
/// p ← p − lr·√(1 − β₂ᵗ)/(1 − β₁ᵗ)·u   (lr alone without correct_bias);   p ← p − lr·λ·p
/// GGᵢ ← lerp(GGᵢ, G₍ᵢ₎G₍ᵢ₎ᵀ, 1 − β_s)
/// every precondition_frequency steps, per side: the columns of Qᵢ, and v along side i, sorted
///     by diag(QᵢᵀGGᵢQᵢ) descending;  Qᵢ ← the Q factor of qr(GGᵢQᵢ)  (m moves with the basis)
/// ```
///
/// `G₍ᵢ₎` is the gradient with side `i` as rows and the other sides flattened; β_s is
/// `shampoo_beta`, or β₂. With [`Soap::merge_dims`], consecutive axes are merged while their
/// product stays within `max_precond_dim` (the reference's `merge_dims`), and a channels-last
/// filter ([`DataFormat::ChannelsLast`]) is permuted to NCHW first.
///
/// The reference is the official `soap.py` (nikhilvyas/SOAP), with its defaults: learning rate
/// 3e-3, betas (0.95, 0.95), shampoo β = β₂, ε 1e-8, weight decay 0.01 (applied after the step,
/// to the updated parameter), precondition frequency 10, `max_precond_dim` 10000, no merging, no
/// preconditioning of vectors, no gradient normalisation, channels first, bias correction. The
/// reference casts its preconditioners to f32 for `eigh` and `qr` and creates them in torch's
/// default type; this type keeps them and their linear algebra in the parameter's type.
///
/// State: `exp_avg` (m) and `exp_avg_sq` (v), both in the eigenbasis and in the preconditioned
/// layout (merged axes, a channels-last filter as NCHW); `GG` and `Q`, the preconditioned sides'
/// matrices one after the other, row-major (a key without any keeps none). The eigenbases are
/// checkpointed, so a resumed run continues bit for bit. The linear algebra is faer's: the
/// eigendecomposition (the first step of a key) allocates; the QR refreshes use a workspace kept
/// per thread, grown at that first step, and allocate nothing after it on the same thread.
///
/// ```
/// use std::collections::HashMap;
/// use ndarray::{ArrayD, IxDyn};
/// use ndoptim::{Optimizer, Soap};
///
/// let mut params: HashMap<String, ArrayD<f64>> =
///     HashMap::from([("w".to_string(), ArrayD::from_shape_fn(IxDyn(&[3, 2]), |i| i[0] as f64))]);
/// let g = |s: f64| HashMap::from([("w".to_string(), ArrayD::from_shape_fn(IxDyn(&[3, 2]), |i| {
///     (i[0] * 2 + i[1]) as f64 * s - 1.0
/// }))]);
/// let mut opt = Soap::default().precondition_frequency(2);
/// opt.update(&mut params, &g(0.5))?; // the first step only builds the eigenbases
/// assert_eq!(params["w"][[2, 1]], 2.0);
/// opt.update(&mut params, &g(0.7))?;
/// assert!(params["w"][[2, 1]] < 2.0);
/// assert_eq!(opt.slot("w", "Q").map(|q| q.len()), Some(3 * 3 + 2 * 2));
/// # Ok::<(), ndoptim::Error>(())
/// ```
pub type Soap<F = f32> = Engine<SoapRule, F>;

/// The rule of [`Soap`].
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct SoapRule {
    betas: [f64; 2],
    shampoo_beta: Option<f64>,
    eps: f64,
    weight_decay: f64,
    precondition_frequency: u64,
    max_precond_dim: usize,
    merge_dims: bool,
    precondition_1d: bool,
    normalize_grads: bool,
    data_format: DataFormat,
    correct_bias: bool,
}

impl Default for SoapRule {
    fn default() -> Self {
        Self {
            betas: [0.95, 0.95],
            shampoo_beta: None,
            eps: 1e-8,
            weight_decay: 0.01,
            precondition_frequency: 10,
            max_precond_dim: 10000,
            merge_dims: false,
            precondition_1d: false,
            normalize_grads: false,
            data_format: DataFormat::ChannelsFirst,
            correct_bias: true,
        }
    }
}

shares!(SoapRule: betas);

setters!(Soap {
    /// Sets β_s, the decay of the preconditioners `GG`, in `[0, 1)`; `None` (the default, the
    /// reference's −1) uses β₂.
    shampoo_beta: Option<f64>,
    /// Sets ε, `>= 0` (default 1e-8).
    eps: f64,
    /// Sets the weight decay λ, `>= 0`, applied after the step (default 0.01).
    weight_decay: f64,
    /// Sets how many steps pass between refreshes of the eigenbases, `>= 1` (default 10).
    precondition_frequency: u64,
    /// Sets the longest side that gets a preconditioner (default 10000).
    max_precond_dim: usize,
    /// Merges consecutive axes while their product stays within `max_precond_dim` (default
    /// `false`).
    merge_dims: bool,
    /// Preconditions vectors too (default `false`: Adam for them).
    precondition_1d: bool,
    /// Divides the update by its RMS (default `false`).
    normalize_grads: bool,
    /// Sets how a 4-D key is read when axes are merged (default [`DataFormat::ChannelsFirst`]).
    data_format: DataFormat,
    /// Uses Adam's bias correction (default `true`).
    correct_bias: bool,
});

/// One side of a key, in the preconditioned layout: its axis length, the product of the axes
/// before and after it, and where its `GG` and `Q` start in their slots if it has them.
#[derive(Clone, Copy, Debug)]
struct Side {
    axis: Axis,
    offset: Option<usize>,
}

/// ε added to the diagonal before the first eigendecomposition, and to the RMS of
/// `normalize_grads`: the reference's.
const TINY: f64 = 1e-30;

impl SoapRule {
    /// Whether a 4-D key is permuted from NHWC to NCHW.
    fn permuted(&self, shape: &[usize]) -> bool {
        self.merge_dims && self.data_format == DataFormat::ChannelsLast && shape.len() == 4
    }

    /// The key's sides in order, as the reference's `init_preconditioner` and `merge_dims` find
    /// them.
    fn each_side(&self, shape: &[usize], mut f: impl FnMut(Side)) {
        let n: usize = shape.iter().product();
        let order = if self.permuted(shape) { [0, 3, 1, 2] } else { [0, 1, 2, 3] };
        let dims = (0..shape.len()).map(|i| shape[if i < 4 { order[i] } else { i }]);
        let vector = shape.len() == 1;
        let (mut outer, mut offset) = (1usize, 0usize);
        let mut emit = |len: usize| {
            let inner = n.checked_div(outer.saturating_mul(len)).unwrap_or(0);
            let preconditioned = len <= self.max_precond_dim && (!vector || self.precondition_1d);
            f(Side {
                axis: Axis { len, outer, inner },
                offset: preconditioned.then_some(offset),
            });
            outer = outer.saturating_mul(len);
            if preconditioned {
                offset = offset.saturating_add(len.saturating_mul(len));
            }
        };
        if !self.merge_dims || vector {
            return dims.for_each(emit);
        }
        let (max, mut current, mut emitted) = (self.max_precond_dim, 1usize, false);
        for len in dims {
            let merged = current.saturating_mul(len);
            if merged <= max {
                current = merged;
                continue;
            }
            emitted = true;
            if current > 1 {
                emit(current);
                current = len;
            } else {
                emit(len);
                current = 1;
            }
        }
        if current > 1 || !emitted {
            emit(current);
        }
    }

    /// Elements of the preconditioners (`GG` and `Q` each), and the longest preconditioned side.
    fn preconditioners(&self, shape: &[usize]) -> (usize, usize) {
        let (mut total, mut longest) = (0usize, 0usize);
        self.each_side(shape, |s| {
            if s.offset.is_some() {
                total = total.saturating_add(s.axis.len.saturating_mul(s.axis.len));
                longest = longest.max(s.axis.len);
            }
        });
        (total, longest)
    }
}

impl<F: Scalar> Rule<F> for SoapRule {
    type KeyScalars = ();
    const NAME: &'static str = "SOAP";
    const DEFAULT_LR: f64 = 3e-3;
    const SCOPE: Scope = Scope::Tensor;

    hyperparameters!(Momentum => (betas[0]), Beta2 => (betas[1]), WeightDecay => (weight_decay));

    fn validate(&self) -> Result<(), Error> {
        check::betas(self.betas)?;
        if let Some(beta) = self.shampoo_beta {
            check::unit_interval("shampoo_beta value", beta)?;
        }
        check::non_negative("epsilon value", self.eps)?;
        check::non_negative("weight_decay value", self.weight_decay)?;
        if self.precondition_frequency == 0 {
            check::fail("precondition_frequency", 0.0, "at least 1")?;
        }
        Ok(())
    }

    fn slot_names(&self) -> Vec<&'static str> {
        vec!["exp_avg", "exp_avg_sq", "GG", "Q"]
    }

    fn slots(&self, _key: &str, shape: &[usize]) -> Vec<(&'static str, IxDyn)> {
        let layout = match self.permuted(shape) {
            true => IxDyn(&[shape[0], shape[3], shape[1], shape[2]]),
            false => IxDyn(shape),
        };
        let mut slots = vec![("exp_avg", layout.clone()), ("exp_avg_sq", layout)];
        let (total, _) = self.preconditioners(shape);
        if total > 0 {
            slots.extend([("GG", IxDyn(&[total])), ("Q", IxDyn(&[total]))]);
        }
        slots
    }

    fn scratch(&self, _key: &str, shape: &[usize]) -> usize {
        // Three buffers of the key's size (the gradient in the preconditioned layout, the
        // update, a rotation's output); the longest side's matrix and estimated eigenvalues.
        let (_, longest) = self.preconditioners(shape);
        self.scratch_of(shape.iter().product(), longest)
    }

    fn step<L: Layout<F>>(&self, step: Step<'_, F, L>, _: &mut ()) {
        let (lr, t) = (step.lr(), step.t());
        let wd = step.weight_decay().unwrap_or(self.weight_decay);
        let Parts { params, grads, state, scratch } = step.parts();
        let shape = params.shape();
        let (n, (total, longest)) = (params.len(), self.preconditioners(shape));
        if n == 0 || state.len() < 2 * n + 2 * total || scratch.len() < self.scratch_of(n, longest) {
            return; // state and scratch are sized by `slots` and `scratch`: an empty key
        }
        let at = self.layout_index(shape);
        let (m, rest) = state.split_at_mut(n);
        let (v, rest) = rest.split_at_mut(n);
        let (gg, q) = rest.split_at_mut(total);
        let (g, rest) = scratch.split_at_mut(n);
        let (u, rest) = rest.split_at_mut(n);
        let (spare, rest) = rest.split_at_mut(n);
        let (square, est) = rest.split_at_mut(longest * longest);
        each_grad(grads, |i, x| g[at(i)] = x);
        let shampoo = Lerp::<F>::new(1.0 - self.shampoo_beta.unwrap_or(self.betas[1]));
        // GGᵢ ← lerp(GGᵢ, G₍ᵢ₎G₍ᵢ₎ᵀ, 1 − β_s), every side.
        let accumulate = |gg: &mut [F], square: &mut [F]| {
            self.each_side(shape, |s| {
                let Some(o) = s.offset else { return };
                let square = &mut square[..s.axis.len * s.axis.len];
                gram(g, s.axis, square);
                for (a, &b) in gg[o..o + s.axis.len * s.axis.len].iter_mut().zip(&*square) {
                    *a = shampoo.apply(*a, b);
                }
            })
        };
        if t == 1 {
            // The reference's first step: the eigenbases only.
            accumulate(gg, square);
            self.each_side(shape, |s| {
                let Some(o) = s.offset else { return };
                let (len, square) = (s.axis.len, &mut square[..s.axis.len * s.axis.len]);
                square.copy_from_slice(&gg[o..o + len * len]);
                (0..len).for_each(|i| square[i * len + i] = square[i * len + i] + cast(TINY));
                let q = &mut q[o..o + len * len];
                F::reserve_orthogonal_factor(len);
                if !F::symmetric_eigenvectors(square, len, q) {
                    q.fill(F::zero());
                    (0..len).for_each(|i| q[i * len + i] = F::one());
                }
            });
            return;
        }
        let t = t - 1;
        u.copy_from_slice(g);
        self.rotate(shape, u, spare, q, false);
        let [b1, b2] = self.betas;
        let (beta1, keep1, beta2, keep2): (F, F, F, F) =
            (cast(b1), cast(1.0 - b1), cast(b2), cast(1.0 - b2));
        let eps: F = cast(self.eps);
        for ((u, m), v) in u.iter_mut().zip(&mut *m).zip(&mut *v) {
            *m = add_scaled(*m * beta1, keep1, *u);
            *v = add_scaled(*v * beta2, keep2, *u * *u);
            *u = *m / (v.sqrt() + eps);
        }
        self.rotate(shape, u, spare, q, true);
        if self.normalize_grads {
            let mean = u.iter().fold(F::zero(), |s, &x| s + x * x) / cast(n as f64);
            let rms = cast::<F>(TINY) + mean.sqrt();
            u.iter_mut().for_each(|x| *x = *x / rms);
        }
        // The preconditioners, from the raw gradient. The reference rotates m back to the
        // parameter's basis and into the eigenbasis again every step; only a refresh changes
        // the basis, so m makes that round trip at refreshes only (elsewhere it is the identity
        // up to rounding, and half of a step's products).
        accumulate(gg, square);
        if t % self.precondition_frequency == 0 {
            self.rotate(shape, m, spare, q, true);
            self.each_side(shape, |s| {
                if let Some(o) = s.offset {
                    let range = o..o + s.axis.len * s.axis.len;
                    refresh(s, &gg[range.clone()], &mut q[range], v, square, est);
                }
            });
            self.rotate(shape, m, spare, q, false);
        }
        let step = match self.correct_bias {
            true => lr * bias_correction(b2, t).sqrt() / bias_correction(b1, t),
            false => lr,
        };
        let (step, decay): (F, F) = (cast(-step), cast(-lr * wd));
        each_param(params, |i, p| {
            *p = add_scaled(*p, step, u[at(i)]);
            if wd > 0.0 {
                *p = add_scaled(*p, decay, *p);
            }
        });
    }
}

impl SoapRule {
    /// Scratch elements a key of `n` elements whose longest preconditioned side is `longest`
    /// needs.
    fn scratch_of(&self, n: usize, longest: usize) -> usize {
        n.saturating_mul(3)
            .saturating_add(longest.saturating_mul(longest))
            .saturating_add(longest)
    }

    /// The index in the preconditioned layout of each row-major index of the parameter: itself,
    /// or NHWC read as NCHW.
    fn layout_index(&self, shape: &[usize]) -> impl Fn(usize) -> usize + use<> {
        let (permuted, [_, h, w, c]) = match shape {
            &[n, h, w, c] if self.permuted(shape) => (true, [n, h, w, c]),
            _ => (false, [1; 4]),
        };
        move |i| match permuted {
            true => {
                let (rest, channel) = (i / c, i % c);
                let (image, pixel) = (rest / (h * w), rest % (h * w));
                (image * c + channel) * h * w + pixel
            }
            false => i,
        }
    }

    /// `x ← x ×ᵢ Qᵢ` over every preconditioned side (`back`), or `x ×ᵢ Qᵢᵀ`, with `y` as the
    /// other buffer of each product.
    fn rotate<F: Scalar>(&self, shape: &[usize], x: &mut [F], y: &mut [F], q: &[F], back: bool) {
        let (mut from, mut to, mut moved) = (&mut *x, &mut *y, false);
        self.each_side(shape, |s| {
            let Some(o) = s.offset else { return };
            let q = Matrix::new(&q[o..o + s.axis.len * s.axis.len], s.axis.len, s.axis.len);
            mode_product(if back { q } else { q.t() }, from, s.axis, to);
            std::mem::swap(&mut from, &mut to);
            moved = !moved;
        });
        if moved {
            to.copy_from_slice(from);
        }
    }
}

/// One power-iteration refresh of side `s`'s eigenbasis `q`, as the reference's
/// `get_orthogonal_matrix_QR`: the columns of `q`, and the slices of `v` along the side, sorted
/// by `diag(QᵀGGQ)` descending, then `Q ← qr(GG·Q)`'s orthogonal factor.
fn refresh<F: Scalar>(s: Side, gg: &[F], q: &mut [F], v: &mut [F], square: &mut [F], est: &mut [F]) {
    let (len, square, est) = (s.axis.len, &mut square[..s.axis.len * s.axis.len], &mut est[..s.axis.len]);
    let square_len = Matrix::new(gg, len, len);
    let set = Output { accumulate: false, symmetric: false };
    F::multiply(square, square_len, Matrix::new(q, len, len), F::one(), set);
    for (j, e) in est.iter_mut().enumerate() {
        *e = (0..len).fold(F::zero(), |t, i| t + q[i * len + j] * square[i * len + j]);
    }
    for j in 0..len {
        let k = (j..len).fold(j, |k, i| if est[i] > est[k] { i } else { k });
        if k == j {
            continue;
        }
        est.swap(j, k);
        (0..len).for_each(|i| square.swap(i * len + j, i * len + k));
        for o in 0..s.axis.outer {
            let base = o * len * s.axis.inner;
            (0..s.axis.inner).for_each(|e| v.swap(base + j * s.axis.inner + e, base + k * s.axis.inner + e));
        }
    }
    F::orthogonal_factor(square, len, q);
}
