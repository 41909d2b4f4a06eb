//! Whole-tensor pieces that rules needing more than one element at a time share: views of a key's
//! state slots, norms and trust ratios (LAMB, LARS), and Newton–Schulz orthogonalisation (Muon).

use ndarray::linalg::general_mat_mul;
use ndarray::{ArrayD, ArrayViewMut2};

use crate::engine::{Scalar, Slots, cast};

/// `f(i, g)` for every gradient element in row-major order: on the slice when the gradient is
/// row-major, else through ndarray's iterator (which allocates for rank > 4).
pub(crate) fn each_grad<F: Scalar>(grads: &ArrayD<F>, mut f: impl FnMut(usize, F)) {
    match grads.as_slice() {
        Some(g) => g.iter().enumerate().for_each(|(i, &g)| f(i, g)),
        None => grads.iter().enumerate().for_each(|(i, &g)| f(i, g)),
    }
}

/// `f(i, p)` for every parameter element in row-major order, like [`each_grad`].
pub(crate) fn each_param<F: Scalar>(params: &mut ArrayD<F>, mut f: impl FnMut(usize, &mut F)) {
    if let Some(p) = params.as_slice_mut() {
        p.iter_mut().enumerate().for_each(|(i, p)| f(i, p));
        return;
    }
    params.iter_mut().enumerate().for_each(|(i, p)| f(i, p));
}

/// `f(p, g, slots)` for every element in row-major order, the slots gathered from and scattered
/// back to the key's state (an elementwise rule's `N` slots), for rules that need several passes.
pub(crate) fn each_element<F: Scalar, const N: usize>(
    params: &mut ArrayD<F>,
    grads: &ArrayD<F>,
    state: &mut [F],
    mut f: impl FnMut(&mut F, F, &mut [F; N]),
) {
    let n = params.len();
    if grads.len() != n || state.len() < N * n {
        return; // unreachable: the engine checks shapes and sizes the state
    }
    let mut cols = <[F; N] as Slots<F>>::columns(state, n);
    let mut visit = |i: usize, p: &mut F, g: F| {
        let mut s: [F; N] = std::array::from_fn(|j| cols[j][i]);
        f(p, g, &mut s);
        for (col, v) in cols.iter_mut().zip(s) {
            col[i] = v;
        }
    };
    match grads.as_slice() {
        Some(g) if params.is_standard_layout() => {
            each_param(params, |i, p| visit(i, p, g[i]));
        }
        _ => {
            for (i, (p, &g)) in params.iter_mut().zip(grads.iter()).enumerate() {
                visit(i, p, g);
            }
        }
    }
}

/// optax's trust ratio (`scale_by_trust_ratio`): `c·‖p‖/(‖u‖ + ε)`, or 1 when either norm is
/// zero, from the sums of squares.
pub(crate) fn trust_ratio<F: Scalar>(coefficient: f64, p_squares: F, u_squares: F, eps: f64) -> F {
    let (p_norm, u_norm) = (p_squares.sqrt(), u_squares.sqrt());
    if p_norm == F::zero() || u_norm == F::zero() {
        F::one()
    } else {
        cast::<F>(coefficient) * p_norm / (u_norm + cast(eps))
    }
}

/// The sum of squares of a matrix's elements.
fn squares<F: Scalar>(x: &[F]) -> F {
    x.iter().fold(F::zero(), |s, &v| s + v * v)
}

/// How a Newton–Schulz iteration normalises its input: `X / (‖X‖_F + ε)` (optax) or
/// `X / max(‖X‖_F, ε)` (PyTorch, where ε is a clamp).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Normalise {
    AddEps,
    ClampEps,
}

/// Scratch elements that [`newton_schulz`] needs for an `rows × cols` matrix.
pub(crate) fn newton_schulz_scratch(rows: usize, cols: usize) -> usize {
    let (m, n) = (rows.min(cols), rows.max(cols));
    2 * m * n + 2 * m * m
}

/// Orthogonalises `g` (`rows × cols`, row-major) by `steps` Newton–Schulz iterations with
/// coefficients `(a, b, c)`, in the element type: on the transpose when rows > cols,
/// `X ← X/‖X‖_F` (with ε as `normalise` says), then `A = X·Xᵀ`, `X ← a·X + (b·A + c·A·A)·X`.
/// Returns the result, `rows × cols` row-major, which lives in `scratch`
/// ([`newton_schulz_scratch`] elements long). Nothing is allocated by this code; the matrix
/// products are ndarray's (`general_mat_mul`, the kernel behind `dot`), whose `matrixmultiply`
/// backend allocates its own packing buffers per product.
#[allow(clippy::too_many_arguments)] // a matrix, its shape and the iteration's parameters
pub(crate) fn newton_schulz<'s, F: Scalar>(
    g: &[F],
    rows: usize,
    cols: usize,
    [a, b, c]: [f64; 3],
    steps: usize,
    eps: f64,
    normalise: Normalise,
    scratch: &'s mut [F],
) -> &'s [F] {
    let transposed = rows > cols;
    let (m, n) = if transposed {
        (cols, rows)
    } else {
        (rows, cols)
    };
    let (x, rest) = scratch.split_at_mut(m * n);
    let (y, rest) = rest.split_at_mut(m * n);
    let (gram, rest) = rest.split_at_mut(m * m);
    let poly = &mut rest[..m * m];
    // X is `g` or its transpose, row-major m × n.
    if transposed {
        for (i, row) in g.chunks_exact(cols).enumerate() {
            for (j, &v) in row.iter().enumerate() {
                x[j * n + i] = v;
            }
        }
    } else {
        x.copy_from_slice(&g[..m * n]);
    }
    let norm = squares(x).sqrt();
    let eps: F = cast(eps);
    let denominator = match normalise {
        Normalise::AddEps => norm + eps,
        Normalise::ClampEps => {
            if norm < eps {
                eps
            } else {
                norm
            }
        }
    };
    x.iter_mut().for_each(|v| *v = *v / denominator);
    let (a, b, c): (F, F, F) = (cast(a), cast(b), cast(c));
    let (mut x, mut y) = (x, y);
    for _ in 0..steps {
        let (Ok(xv), Ok(mut gv), Ok(mut pv), Ok(mut yv)) = (
            ArrayViewMut2::from_shape((m, n), &mut *x),
            ArrayViewMut2::from_shape((m, m), &mut *gram),
            ArrayViewMut2::from_shape((m, m), &mut *poly),
            ArrayViewMut2::from_shape((m, n), &mut *y),
        ) else {
            return x; // unreachable: the buffers are sized for these shapes
        };
        // A = X·Xᵀ;  B = b·A + c·A·A;  Y = a·X + B·X
        general_mat_mul(F::one(), &xv, &xv.t(), F::zero(), &mut gv);
        pv.zip_mut_with(&gv, |p, &g| *p = b * g);
        general_mat_mul(c, &gv, &gv, F::one(), &mut pv);
        yv.zip_mut_with(&xv, |y, &x| *y = a * x);
        general_mat_mul(F::one(), &pv, &xv, F::one(), &mut yv);
        std::mem::swap(&mut x, &mut y);
    }
    // X is the result, m × n; a transposed one goes back to rows × cols in the free buffer.
    if !transposed {
        return x;
    }
    for (j, row) in x.chunks_exact(n).enumerate() {
        for (i, &v) in row.iter().enumerate() {
            y[i * cols + j] = v;
        }
    }
    y
}
