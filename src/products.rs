//! Matrix products on row-major slices, in faer: the kernels of Muon's Newton–Schulz iteration.
//! [`Scalar`](crate::Scalar) types reach them as `F::multiply`, so that faer's traits stay out of
//! this crate's public bounds.
//!
//! faer's products write into the caller's buffer and allocate nothing after their first call
//! on a thread; a product known to be symmetric computes its lower triangle only (half the
//! work) and mirrors it.

use faer::linalg::matmul::{matmul, triangular};
use faer::traits::ComplexField;
use faer::{Accum, MatMut, MatRef, Par};

/// A row-major `rows × cols` matrix in a slice, read as itself or as its transpose.
#[derive(Clone, Copy, Debug)]
pub struct Matrix<'a, F> {
    /// The elements, `rows · cols` of them, row-major.
    pub data: &'a [F],
    /// Rows as stored.
    pub rows: usize,
    /// Columns as stored.
    pub cols: usize,
    /// Whether the product reads the transpose.
    pub transposed: bool,
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

/// Copies the lower triangle of the row-major `n × n` matrix `a` to its upper one, a tile at a
/// time so that the column it reads stays in cache.
fn mirror_lower<F: Copy>(a: &mut [F], n: usize) {
    const TILE: usize = 64;
    for ib in (0..n).step_by(TILE) {
        for jb in (ib..n).step_by(TILE) {
            for i in ib..(ib + TILE).min(n) {
                for j in jb.max(i + 1)..(jb + TILE).min(n) {
                    a[i * n + j] = a[j * n + i];
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
