//! Linear algebra on row-major slices, in faer: the matrix products of Muon's Newton–Schulz
//! iteration and of SOAP's projections, SOAP's eigendecompositions and QR factors.
//! [`Scalar`](crate::Scalar) types reach them as `F::multiply`, so that faer's traits stay out of
//! this crate's public bounds.
//!
//! faer's products write into the caller's buffer and allocate nothing after their first call
//! on a thread; a product known to be symmetric computes its lower triangle only (half the
//! work) and mirrors it.

use faer::linalg::matmul::{matmul, triangular};
use std::cell::RefCell;

use faer::dyn_stack::{MemBuffer, MemStack, StackReq};
use faer::linalg::householder::{
    apply_block_householder_sequence_on_the_left_in_place_scratch as apply_scratch,
    apply_block_householder_sequence_on_the_left_in_place_with_conj as apply,
};
use faer::linalg::qr::no_pivoting::factor;
use faer::linalg::{temp_mat_scratch, temp_mat_zeroed};
use faer::mat::AsMatMut;
use faer::reborrow::{Reborrow, ReborrowMut};
use faer::traits::{ComplexField, RealField};
use faer::{Accum, Conj, MatMut, MatRef, Par, Side};

/// A row-major `rows × cols` matrix in a slice, read as itself or as its transpose.
#[derive(Clone, Copy, Debug)]
pub struct Matrix<'a, F> {
    /// The elements, `rows · cols` of them, row-major.
    data: &'a [F],
    /// Rows as stored.
    rows: usize,
    /// Columns as stored.
    cols: usize,
    /// Whether the product reads the transpose.
    transposed: bool,
}

impl<'a, F> Matrix<'a, F> {
    /// The matrix `data` (`rows × cols`, row-major) as stored.
    pub(crate) fn new(data: &'a [F], rows: usize, cols: usize) -> Self {
        Matrix {
            data,
            rows,
            cols,
            transposed: false,
        }
    }

    /// faer's view of it.
    fn view(self) -> MatRef<'a, F> {
        let v = MatRef::from_row_major_slice(self.data, self.rows, self.cols);
        if self.transposed { v.transpose() } else { v }
    }

    /// Its transpose, without moving an element.
    pub(crate) fn t(self) -> Self {
        Matrix {
            transposed: !self.transposed,
            ..self
        }
    }
}

/// What a product adds its result to, and whether the result is known to be symmetric.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Output {
    /// `dst += α·L·R` when set, `dst = α·L·R` when not.
    pub accumulate: bool,
    /// `L·R` is symmetric (such as `X·Xᵀ`, or `A·A` with `A` symmetric): only its lower triangle
    /// is computed, then copied to the upper one.
    pub symmetric: bool,
}

/// `dst (rows × cols, row-major) ← α·lhs·rhs`, or `+=` it, as `output` says; one thread.
///
/// The shapes must agree (`lhs` is `rows × k`, `rhs` `k × cols`, `dst` `rows · cols` long); the
/// callers size their buffers for them.
pub fn multiply<F: ComplexField + Copy>(
    dst: &mut [F],
    lhs: Matrix<'_, F>,
    rhs: Matrix<'_, F>,
    alpha: F,
    output: Output,
) {
    let (lhs, rhs) = (lhs.view(), rhs.view());
    let (rows, cols) = (lhs.nrows(), rhs.ncols());
    let mut out = MatMut::from_row_major_slice_mut(&mut *dst, rows, cols);
    let beta = if output.accumulate {
        Accum::Add
    } else {
        Accum::Replace
    };
    if !output.symmetric {
        matmul(out, beta, lhs, rhs, alpha, Par::Seq);
        clear_upper_state();
        return;
    }
    use triangular::BlockStructure::{Rectangular, TriangularLower};
    triangular::matmul(
        out.as_mut(),
        TriangularLower,
        beta,
        lhs,
        Rectangular,
        rhs,
        Rectangular,
        alpha,
        Par::Seq,
    );
    clear_upper_state();
    mirror_lower(dst, rows);
}

/// The eigenvectors of the symmetric `n × n` matrix `a` (row-major; its lower triangle is read)
/// as the columns of `q` (`n × n`, row-major), in descending order of their eigenvalues (the
/// reverse of faer's order, which is LAPACK's). Returns `false`, leaving `q` as it was, if the
/// decomposition fails (non-finite input). faer allocates its result and workspace.
pub fn symmetric_eigenvectors<F: RealField + Copy>(a: &[F], n: usize, q: &mut [F]) -> bool {
    let Ok(e) = MatRef::from_row_major_slice(a, n, n).self_adjoint_eigen(Side::Lower) else {
        return false;
    };
    let u = e.U();
    for i in 0..n {
        for j in 0..n {
            q[i * n + j] = u[(i, n - 1 - j)];
        }
    }
    clear_upper_state();
    true
}

thread_local! {
    /// faer's workspace for QR factors on this thread, and what it was sized for.
    static WORKSPACE: RefCell<(StackReq, MemBuffer)> =
        RefCell::new((StackReq::EMPTY, MemBuffer::new(StackReq::EMPTY)));
}

/// faer's blocking of an `n × n` QR factorisation, and the workspace it and the formation of
/// `Q` need besides the block coefficients.
fn qr_workspace<F: RealField>(n: usize) -> (usize, StackReq) {
    let block = factor::recommended_block_size::<F>(n, n);
    let need = StackReq::all_of(&[
        temp_mat_scratch::<F>(block, n),
        StackReq::any_of(&[
            factor::qr_in_place_scratch::<F>(n, n, block, Par::Seq, Default::default()),
            apply_scratch::<F>(n, block, n),
        ]),
    ]);
    (block, need)
}

/// `f` with this thread's workspace, grown to `need` first if it is smaller.
fn with_workspace<R>(need: StackReq, f: impl FnOnce(&mut MemStack) -> R) -> R {
    WORKSPACE.with(|w| {
        let (have, buffer) = &mut *w.borrow_mut();
        if need.size_bytes() > have.size_bytes() || need.align_bytes() > have.align_bytes() {
            *have = StackReq::any_of(&[*have, need]);
            *buffer = MemBuffer::new(*have);
        }
        f(MemStack::new(buffer))
    })
}

/// Grows this thread's workspace for [`orthogonal_factor`] of `n × n` matrices ahead of use.
pub fn reserve_orthogonal_factor<F: RealField>(n: usize) {
    with_workspace(qr_workspace::<F>(n).1, |_| ());
}

/// The orthogonal factor `Q` of the Householder QR decomposition of the `n × n` matrix `a`
/// (row-major, overwritten), into `q` (row-major). faer's workspace is kept per thread and grown
/// to the largest size asked for ([`reserve_orthogonal_factor`]), so that factorisations of a
/// size seen before allocate nothing.
pub fn orthogonal_factor<F: RealField + Copy>(a: &mut [F], n: usize, q: &mut [F]) {
    let (block, need) = qr_workspace::<F>(n);
    with_workspace(need, |stack| {
        let (mut coefficients, stack) = temp_mat_zeroed::<F, _, _>(block, n, stack);
        let mut coefficients = coefficients.as_mat_mut();
        let mut a = MatMut::from_row_major_slice_mut(a, n, n);
        let parameters = Default::default();
        factor::qr_in_place(
            a.rb_mut(),
            coefficients.rb_mut(),
            Par::Seq,
            stack,
            parameters,
        );
        q.fill(F::zero());
        (0..n).for_each(|i| q[i * n + i] = F::one());
        let out = MatMut::from_row_major_slice_mut(q, n, n);
        apply(a.rb(), coefficients.rb(), Conj::No, out, Par::Seq, stack);
    });
    clear_upper_state();
}

/// One axis of a row-major tensor: its length, and the products of the axes before and after it.
#[derive(Clone, Copy, Debug)]
pub struct Axis {
    /// Its length.
    pub len: usize,
    /// The product of the axes before it.
    pub outer: usize,
    /// The product of the axes after it.
    pub inner: usize,
}

/// `dst ← src ×ₐ op` along `axis`: `dst[.., i, ..] = Σⱼ op[i, j]·src[.., j, ..]`, as one product
/// when the axis is the last, else one per block of the axes before it.
pub(crate) fn mode_product<F: crate::Scalar>(
    op: Matrix<'_, F>,
    src: &[F],
    axis: Axis,
    dst: &mut [F],
) {
    let set = Output {
        accumulate: false,
        symmetric: false,
    };
    if axis.inner == 1 {
        let src = Matrix::new(src, axis.outer, axis.len);
        return F::multiply(dst, src, op.t(), F::one(), set);
    }
    let block = axis.len * axis.inner;
    for (s, d) in src.chunks_exact(block).zip(dst.chunks_exact_mut(block)) {
        F::multiply(d, op, Matrix::new(s, axis.len, axis.inner), F::one(), set);
    }
}

/// `x ← x ×ₐ Q⁻ᵀ` along `axis` for an upper-triangular `Q` (`len × len`, row-major): each
/// fiber `y` along the axis solves `Qᵀy = x`, by faer's triangular solve.
pub(crate) fn solve_transposed_upper<F: crate::Scalar>(q: &[F], axis: Axis, x: &mut [F]) {
    F::solve_lower(q, axis, x);
}

/// [`solve_transposed_upper`] in faer's types.
pub fn solve_lower_in_place<F: RealField + Copy>(q: &[F], axis: Axis, x: &mut [F]) {
    use faer::linalg::triangular_solve::solve_lower_triangular_in_place;
    let lower = MatRef::from_row_major_slice(q, axis.len, axis.len).transpose();
    if axis.inner == 1 {
        let fibers = MatMut::from_row_major_slice_mut(x, axis.outer, axis.len).transpose_mut();
        solve_lower_triangular_in_place(lower, fibers, Par::Seq);
    } else {
        for block in x.chunks_exact_mut(axis.len * axis.inner) {
            let fibers = MatMut::from_row_major_slice_mut(block, axis.len, axis.inner);
            solve_lower_triangular_in_place(lower, fibers, Par::Seq);
        }
    }
    clear_upper_state();
}

/// `out ← X₍ₐ₎X₍ₐ₎ᵀ` (`len × len`) for `axis` of `x`: the sum over the other axes of the outer
/// products along it.
pub(crate) fn gram<F: crate::Scalar>(x: &[F], axis: Axis, out: &mut [F]) {
    let symmetric = |accumulate| Output {
        accumulate,
        symmetric: true,
    };
    if axis.inner == 1 {
        let x = Matrix::new(x, axis.outer, axis.len);
        return F::multiply(out, x.t(), x, F::one(), symmetric(false));
    }
    for (k, block) in x.chunks_exact(axis.len * axis.inner).enumerate() {
        let b = Matrix::new(block, axis.len, axis.inner);
        F::multiply(out, b, b.t(), F::one(), symmetric(k > 0));
    }
}

/// Copies the lower triangle of the row-major `n × n` matrix `a` to its upper one.
fn mirror_lower<F: Copy>(a: &mut [F], n: usize) {
    by_tiles(n, n, true, |i, j| a[i * n + j] = a[j * n + i]);
}

/// `dst` (`cols × rows`, row-major) ← the transpose of `src` (`rows × cols`, row-major).
pub fn transpose<F: Copy>(src: &[F], rows: usize, cols: usize, dst: &mut [F]) {
    by_tiles(rows, cols, false, |i, j| {
        dst[j * rows + i] = src[i * cols + j]
    });
}

/// `f(i, j)` over a `rows × cols` index space (above the diagonal only, `j > i`, if `upper`), a
/// square tile at a time: a transpose's strided side then stays in cache (row after row, a
/// stride of a power of two meets the same cache set, many times slower).
fn by_tiles(rows: usize, cols: usize, upper: bool, mut f: impl FnMut(usize, usize)) {
    const TILE: usize = 32;
    for ib in (0..rows).step_by(TILE) {
        let first = if upper { ib } else { 0 };
        for jb in (first..cols).step_by(TILE) {
            for i in ib..(ib + TILE).min(rows) {
                let from = if upper { jb.max(i + 1) } else { jb };
                for j in from..(jb + TILE).min(cols) {
                    f(i, j);
                }
            }
        }
    }
}

/// Clears the upper halves of the vector registers after faer's kernels, which leave them dirty:
/// the SSE code that follows (this crate's baseline build) otherwise pays a state-transition
/// penalty on every instruction.
#[inline]
fn clear_upper_state() {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx") {
        #[target_feature(enable = "avx")]
        fn zero_upper() {
            std::arch::x86_64::_mm256_zeroupper();
        }
        // SAFETY: the CPU has AVX, checked above.
        unsafe { zero_upper() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matrix(rows: usize, cols: usize) -> Vec<f64> {
        (0..rows * cols)
            .map(|k| ((k * 37) % 29) as f64 / 29.0 - 0.5)
            .collect()
    }

    #[test]
    fn transposes_across_partial_tiles() {
        let (rows, cols) = (37, 70);
        let a = matrix(rows, cols);
        let mut t = vec![0.0; rows * cols];
        transpose(&a, rows, cols, &mut t);
        for i in 0..rows {
            for j in 0..cols {
                assert_eq!(t[j * rows + i], a[i * cols + j]);
            }
        }
    }

    #[test]
    fn symmetric_products_equal_full_ones_and_are_symmetric() {
        let (m, k) = (45, 70);
        let x = matrix(m, k);
        let xm = Matrix::new(&x[..], m, k);
        let (mut full, mut half) = (vec![0.0; m * m], vec![1.0; m * m]);
        let set = |symmetric| Output {
            accumulate: false,
            symmetric,
        };
        multiply(&mut full, xm, xm.t(), 0.5, set(false));
        multiply(&mut half, xm, xm.t(), 0.5, set(true));
        for i in 0..m {
            for j in 0..m {
                assert_eq!(half[i * m + j], half[j * m + i]);
                let scale = full[i * m + j].abs().max(1.0);
                assert!((half[i * m + j] - full[i * m + j]).abs() <= 1e-13 * scale);
            }
        }
        // Accumulating adds to what is there, in both halves.
        let before = half.clone();
        multiply(
            &mut half,
            xm,
            xm.t(),
            1.0,
            Output {
                accumulate: true,
                symmetric: true,
            },
        );
        for (h, (b, f)) in half.iter().zip(before.iter().zip(&full)) {
            assert!((h - (b + 2.0 * f)).abs() <= 1e-12);
        }
    }
}
