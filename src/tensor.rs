//! Whole-tensor pieces that rules needing more than one element at a time share: element walks
//! in row-major order over any layout, trust ratios (LAMB, LARS), and Newton–Schulz
//! orthogonalisation (Muon).

use ndarray::{ArrayRefD, ArrayViewMut2};

use crate::engine::{Scalar, cast};
use crate::parts::max_nan;
use crate::products::{Matrix, Output, transpose};

/// `f(i, g)` for every gradient element in row-major order: on the slice when the gradient is
/// row-major, else through ndarray's iterator (which allocates for rank > 4).
pub(crate) fn each_grad<F: Scalar>(grads: &ArrayRefD<F>, mut f: impl FnMut(usize, F)) {
    match grads.as_slice() {
        Some(g) => g.iter().enumerate().for_each(|(i, &g)| f(i, g)),
        None => grads.iter().enumerate().for_each(|(i, &g)| f(i, g)),
    }
}

/// `f(i, a, b)` for every element of two arrays of one shape in row-major order, like
/// [`each_grad`].
pub(crate) fn each_of_two<F: Scalar>(
    a: &ArrayRefD<F>,
    b: &ArrayRefD<F>,
    mut f: impl FnMut(usize, F, F),
) {
    match (a.as_slice(), b.as_slice()) {
        (Some(a), Some(b)) => a
            .iter()
            .zip(b)
            .enumerate()
            .for_each(|(i, (&a, &b))| f(i, a, b)),
        _ => (a.iter().zip(b.iter()).enumerate()).for_each(|(i, (&a, &b))| f(i, a, b)),
    }
}

/// `f(i, p)` for every parameter element in row-major order, like [`each_grad`].
pub(crate) fn each_param<F: Scalar>(params: &mut ArrayRefD<F>, mut f: impl FnMut(usize, &mut F)) {
    if let Some(p) = params.as_slice_mut() {
        p.iter_mut().enumerate().for_each(|(i, p)| f(i, p));
        return;
    }
    params.iter_mut().enumerate().for_each(|(i, p)| f(i, p));
}

/// `f(i, p, g)` for every element of a parameter and its gradient in row-major order, like
/// [`each_param`].
pub(crate) fn each_pair<F: Scalar>(
    params: &mut ArrayRefD<F>,
    grads: &ArrayRefD<F>,
    mut f: impl FnMut(usize, &mut F, F),
) {
    if let (Some(p), Some(g)) = (params.as_slice_mut(), grads.as_slice()) {
        p.iter_mut()
            .zip(g)
            .enumerate()
            .for_each(|(i, (p, &g))| f(i, p, g));
        return;
    }
    (params.iter_mut().zip(grads.iter()).enumerate()).for_each(|(i, (p, &g))| f(i, p, g));
}

/// optax's trust ratio (`scale_by_trust_ratio`): `c·‖p‖/(‖u‖ + ε)`, each norm raised to `min_norm`
/// if at or below it, or 1 when either norm is
/// zero, from the sums of squares.
pub(crate) fn trust_ratio<F: Scalar>(
    coefficient: f64,
    p_squares: F,
    u_squares: F,
    eps: f64,
    min_norm: f64,
) -> F {
    let min_norm: F = cast(min_norm);
    let safe = |squares: F| match squares.sqrt() {
        norm if norm <= min_norm => min_norm,
        norm => norm,
    };
    let (p_norm, u_norm) = (safe(p_squares), safe(u_squares));
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

/// How a Newton–Schulz iteration scales its input so that its singular values are at most 1.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Preconditioning {
    /// `X / (‖X‖_F + ε)`: optax's `"frobenius"`.
    #[default]
    Frobenius,
    /// `X / max(‖X‖_F, ε)`, ε a clamp: `torch.optim.Muon`'s.
    FrobeniusClamp,
    /// `X / (1.02·‖X‖_F + ε)`: Polar Express's (dion's `polar_express`), whose coefficients
    /// ([`MuonRule::POLAR_EXPRESS_COEFFICIENTS`](crate::MuonRule::POLAR_EXPRESS_COEFFICIENTS))
    /// have that safety factor built in.
    PolarExpress,
    /// optax's `"aol"` ("almost orthogonal layer"): no normalisation; the first iteration scales
    /// row `i` of `X` by `1/√max(Σⱼ|Aᵢⱼ|, 1e-8)` (and `A` on both sides), `A = X·Xᵀ`.
    Aol,
    /// optax's `"schatten"`: no normalisation; the first iteration scales `X` by
    /// `1/√max(‖A‖_F, 1e-8)` (and `A` by its square), `A = X·Xᵀ`: a Schatten-4 normalisation.
    Schatten,
}

/// Polar Express's safety factor on the Frobenius norm (dion's `polar_express`).
const POLAR_EXPRESS_SAFETY: f64 = 1.02;

/// The floor of the first iteration's rescaling in optax's AOL and Schatten preconditionings.
const FIRST_STEP_FLOOR: f64 = 1e-8;

/// Scratch elements that [`newton_schulz`] needs for an `rows × cols` matrix.
pub(crate) fn newton_schulz_scratch(rows: usize, cols: usize) -> usize {
    let (m, n) = (rows.min(cols), rows.max(cols));
    // m·n is the matrix's size; m·m is at most that.
    (2 * m)
        .saturating_mul(n)
        .saturating_add((2 * m).saturating_mul(m))
}

/// Orthogonalises `g` (`rows × cols`, row-major) by Newton–Schulz iterations, in the element
/// type: on the transpose when rows > cols, `X` scaled as `preconditioning` says, then per
/// iteration `A = X·Xᵀ`, `X ← a·X + (b·A + c·A·A)·X`. One row of `coefficients` serves `steps`
/// iterations; several rows are one iteration each (optax's `(n, 3)` coefficients).
/// Returns the result, `rows × cols` row-major, which lives in `scratch`
/// ([`newton_schulz_scratch`] elements long). The products are faer's, on one thread: `X·Xᵀ` and
/// `A·A` are symmetric and computed as lower triangles. Nothing is allocated after the first call
/// on a thread (faer keeps its packing buffers per thread).
#[allow(clippy::too_many_arguments)] // a matrix, its shape and the iteration's parameters
pub(crate) fn newton_schulz<'s, F: Scalar>(
    g: &[F],
    rows: usize,
    cols: usize,
    coefficients: &[[f64; 3]],
    steps: usize,
    eps: f64,
    preconditioning: Preconditioning,
    scratch: &'s mut [F],
) -> &'s mut [F] {
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
        transpose(&g[..m * n], rows, cols, x);
    } else {
        x.copy_from_slice(&g[..m * n]);
    }
    let eps: F = cast(eps);
    let norm = || squares(x).sqrt();
    let denominator = match preconditioning {
        Preconditioning::Frobenius => Some(norm() + eps),
        Preconditioning::FrobeniusClamp => Some(max_nan(norm(), eps)),
        Preconditioning::PolarExpress => Some(norm() * cast(POLAR_EXPRESS_SAFETY) + eps),
        Preconditioning::Aol | Preconditioning::Schatten => None,
    };
    if let Some(d) = denominator {
        x.iter_mut().for_each(|v| *v = *v / d);
    }
    let floor: F = cast(FIRST_STEP_FLOOR);
    let iterations = if coefficients.len() == 1 {
        steps
    } else {
        coefficients.len()
    };
    let (mut x, mut y) = (x, y);
    let set = Output {
        accumulate: false,
        symmetric: true,
    };
    let add = |symmetric| Output {
        accumulate: true,
        symmetric,
    };
    for k in 0..iterations {
        let [a, b, c] = coefficients[if coefficients.len() == 1 { 0 } else { k }];
        let (a, b, c): (F, F, F) = (cast(a), cast(b), cast(c));
        // A = X·Xᵀ;  B = b·A + c·A·A;  Y = a·X + B·X
        let xm = Matrix::new(&*x, m, n);
        F::multiply(gram, xm, xm.t(), F::one(), set);
        if k == 0 {
            let (Ok(mut xv), Ok(mut gv), Ok(mut pv)) = (
                ArrayViewMut2::from_shape((m, n), &mut *x),
                ArrayViewMut2::from_shape((m, m), &mut *gram),
                ArrayViewMut2::from_shape((m, m), &mut *poly),
            ) else {
                return x; // unreachable: the buffers are sized for these shapes
            };
            precondition_first_step(preconditioning, &mut xv, &mut gv, &mut pv, floor);
        }
        poly.iter_mut().zip(&*gram).for_each(|(p, &g)| *p = b * g);
        let am = Matrix::new(&*gram, m, m);
        F::multiply(poly, am, am, c, add(true));
        y.iter_mut().zip(&*x).for_each(|(y, &x)| *y = a * x);
        F::multiply(
            y,
            Matrix::new(&*poly, m, m),
            Matrix::new(&*x, m, n),
            F::one(),
            add(false),
        );
        std::mem::swap(&mut x, &mut y);
    }
    // X is the result, m × n; a transposed one goes back to rows × cols in the free buffer.
    if !transposed {
        return x;
    }
    transpose(x, m, n, y);
    y
}

/// The rescaling optax's AOL and Schatten preconditionings apply in the first iteration, to `X`
/// and to `A = X·Xᵀ` together; `free` (m × m, overwritten next) holds AOL's scales meanwhile.
fn precondition_first_step<F: Scalar>(
    preconditioning: Preconditioning,
    x: &mut ArrayViewMut2<'_, F>,
    gram: &mut ArrayViewMut2<'_, F>,
    free: &mut ArrayViewMut2<'_, F>,
    floor: F,
) {
    match preconditioning {
        Preconditioning::Aol => {
            // s_i = 1/√max(Σⱼ|Aᵢⱼ|, floor), from A before any scaling: X ← diag(s)·X and
            // A ← A·s_i·s_j, row by row and then column by column.
            let mut scales = free.row_mut(0);
            for (i, s) in scales.iter_mut().enumerate() {
                *s = F::one()
                    / max_nan(gram.row(i).fold(F::zero(), |t, &v| t + v.abs()), floor).sqrt();
            }
            for (i, &s) in scales.iter().enumerate() {
                x.row_mut(i).mapv_inplace(|v| v * s);
                gram.row_mut(i).mapv_inplace(|v| v * s);
            }
            for (j, &s) in scales.iter().enumerate() {
                gram.column_mut(j).mapv_inplace(|v| v * s);
            }
        }
        Preconditioning::Schatten => {
            let s =
                F::one() / max_nan(gram.fold(F::zero(), |t, &v| t + v * v).sqrt(), floor).sqrt();
            x.mapv_inplace(|v| v * s);
            gram.mapv_inplace(|v| v * (s * s));
        }
        Preconditioning::Frobenius
        | Preconditioning::FrobeniusClamp
        | Preconditioning::PolarExpress => {}
    }
}
