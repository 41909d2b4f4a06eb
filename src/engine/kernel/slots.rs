//! [`Slots`]: a rule's per-element state, and the fused loop over a run of elements.

use ndarray::{ArrayRefD, ArrayViewD, ArrayViewMutD};

use super::stored::{Writer, stored_pass};
use crate::element::Store;
use crate::engine::Scalar;

/// The per-element state of an algorithm: `[F; N]` for an update that reads and writes `N` state
/// arrays shaped like the parameter (`[F; 0]` for plain SGD, `[F; 2]` for Adam's two moments).
pub trait Slots<F: Scalar>: Copy + Send + Sync + 'static {
    /// How many state arrays the update reads and writes.
    const COUNT: usize;

    /// The state arrays of a run of elements, one slice per slot.
    type Columns<'a>: Send
    where
        F: 'a;

    /// Element `i`'s slots, from a key's state (slot after slot, `n` elements each): for passes
    /// that visit elements by index rather than in the fused loop.
    fn gather(state: &[F], n: usize, i: usize) -> Self;

    /// Writes element `i`'s slots back into a key's state, as [`Slots::gather`] reads them.
    fn scatter(self, state: &mut [F], n: usize, i: usize);

    /// Splits a key's state (slot after slot, `n` elements each) into its columns.
    fn columns(state: &mut [F], n: usize) -> Self::Columns<'_>;

    /// Splits columns at element `mid`, for parallel halves.
    fn split_columns<'a>(
        columns: Self::Columns<'a>,
        mid: usize,
    ) -> (Self::Columns<'a>, Self::Columns<'a>);

    /// The fused pass: `f(p, g, slots)` for every element of equally long contiguous `params`,
    /// `grads` and columns, with the element's slots gathered into `Self` and scattered back.
    fn for_each_slice(
        params: &mut [F],
        grads: &[F],
        columns: Self::Columns<'_>,
        f: &impl Fn(&mut F, F, &mut Self),
    );

    /// Sums `f(p, g, slots)` over every element of equally long contiguous `params`, `grads` and
    /// columns, in eight interleaved partial sums so that the loop vectorizes (the sum's order is
    /// fixed: the same bits at every instruction-set level).
    fn sum_slice<const K: usize>(
        params: &[F],
        grads: &[F],
        columns: &Self::Columns<'_>,
        f: &impl Fn(F, F, &Self) -> [F; K],
    ) -> [F; K];

    /// Like [`Slots::sum_slice`], for arrays of any memory layout and stored types (parameters
    /// as `P`, state as `T`), each element loaded into `F`, in logical order.
    fn stored_sum<P: Store<F>, T: Store<F>, const K: usize>(
        params: &ArrayRefD<P>,
        grads: &ArrayRefD<P>,
        state: &[T],
        f: &impl Fn(F, F, &Self) -> [F; K],
    ) -> [F; K];

    /// The fused pass over stored elements (parameters stored as `P`, state as `T`), `f`
    /// returning each parameter's update, written by `w`.
    #[doc(hidden)]
    #[allow(private_bounds)]
    fn stored_pass<P: Store<F>, T: Store<F>, W: Writer<F, P>>(
        params: &mut ArrayRefD<P>,
        grads: &ArrayRefD<P>,
        state: &mut [T],
        w: W,
        f: &(impl Fn(&mut F, F, &mut Self, &mut F) -> F + Sync),
    );

    /// Like [`Slots::for_each_slice`], for arrays of any memory layout: elements are visited in
    /// logical (row-major) order, which is the order of the state.
    fn for_each_logical(
        params: ArrayViewMutD<'_, F>,
        grads: ArrayViewD<'_, F>,
        state: &mut [F],
        f: &impl Fn(&mut F, F, &mut Self),
    );
}

impl<F: Scalar, const N: usize> Slots<F> for [F; N] {
    const COUNT: usize = N;
    type Columns<'a> = [&'a mut [F]; N];

    #[inline(always)]
    fn gather(state: &[F], n: usize, i: usize) -> Self {
        std::array::from_fn(|j| state[j * n + i])
    }

    #[inline(always)]
    fn scatter(self, state: &mut [F], n: usize, i: usize) {
        for (j, v) in self.into_iter().enumerate() {
            state[j * n + i] = v;
        }
    }

    fn columns(state: &mut [F], n: usize) -> [&mut [F]; N] {
        columns(state, n)
    }

    fn split_columns<'a>(
        columns: Self::Columns<'a>,
        mid: usize,
    ) -> (Self::Columns<'a>, Self::Columns<'a>) {
        let mut halves = columns.map(|c| c.split_at_mut(mid));
        let lower = std::array::from_fn(|j| std::mem::take(&mut halves[j].0));
        let upper = std::array::from_fn(|j| std::mem::take(&mut halves[j].1));
        (lower, upper)
    }

    #[inline(always)]
    fn for_each_slice(
        params: &mut [F],
        grads: &[F],
        mut cols: [&mut [F]; N],
        f: &impl Fn(&mut F, F, &mut Self),
    ) {
        let n = params.len();
        let grads = &grads[..n];
        assert!(
            cols.iter().all(|c| c.len() == n),
            "every column has one slot per element"
        );
        for i in 0..n {
            // Unchecked slot access: with a bounds check per slot and element the loop does not
            // vectorize. SAFETY: every column has `n` elements (asserted above) and `i < n`.
            let mut s: [F; N] = std::array::from_fn(|j| unsafe { *cols[j].get_unchecked(i) });
            f(&mut params[i], grads[i], &mut s);
            for (col, v) in cols.iter_mut().zip(s) {
                unsafe { *col.get_unchecked_mut(i) = v };
            }
        }
    }

    #[inline(always)]
    fn sum_slice<const K: usize>(
        params: &[F],
        grads: &[F],
        cols: &[&mut [F]; N],
        f: &impl Fn(F, F, &Self) -> [F; K],
    ) -> [F; K] {
        let n = params.len();
        let grads = &grads[..n];
        assert!(
            cols.iter().all(|c| c.len() == n),
            "every column has one slot per element"
        );
        // Element i always goes to lane i % 8 of each sum, in increasing i. Each chunk's values
        // are computed by a plain loop into a buffer, which the loop vectorizer handles whatever
        // `f` computes (eight calls side by side were left to the SLP vectorizer, which gives up
        // on square roots and selects), then added to the lanes in that order.
        const CHUNK: usize = 64;
        let mut lanes = [[F::zero(); 8]; K];
        let value = |i: usize| {
            // Unchecked, as in `for_each_slice`: checks per element keep the loop scalar.
            // SAFETY: `params`, `grads` and every column have `n` elements (asserted above), and
            // the callers below pass `i < n`.
            let s: [F; N] = std::array::from_fn(|j| unsafe { *cols[j].get_unchecked(i) });
            let (p, g) = unsafe { (*params.get_unchecked(i), *grads.get_unchecked(i)) };
            f(p, g, &s)
        };
        let mut buffer = [[F::zero(); CHUNK]; K];
        let whole = n / CHUNK * CHUNK;
        for start in (0..whole).step_by(CHUNK) {
            for j in 0..CHUNK {
                let v = value(start + j);
                for (column, v) in buffer.iter_mut().zip(v) {
                    column[j] = v;
                }
            }
            for (sums, values) in lanes.iter_mut().zip(&buffer) {
                for group in values.chunks_exact(8) {
                    for (sum, &v) in sums.iter_mut().zip(group) {
                        *sum = *sum + v;
                    }
                }
            }
        }
        for i in whole..n {
            for (k, v) in value(i).into_iter().enumerate() {
                lanes[k][i % 8] = lanes[k][i % 8] + v;
            }
        }
        std::array::from_fn(|k| lanes[k].iter().fold(F::zero(), |t, &x| t + x))
    }

    fn stored_sum<P: Store<F>, T: Store<F>, const K: usize>(
        params: &ArrayRefD<P>,
        grads: &ArrayRefD<P>,
        state: &[T],
        f: &impl Fn(F, F, &Self) -> [F; K],
    ) -> [F; K] {
        let n = params.len();
        assert_eq!(
            N * n,
            state.len(),
            "a rule's per-element slots disagree with the state it declared"
        );
        let mut lanes = [[F::zero(); 8]; K];
        for (i, (p, g)) in params.iter().zip(grads.iter()).enumerate() {
            let s: [F; N] = std::array::from_fn(|j| state[j * n + i].load());
            for (k, v) in f(p.load(), g.load(), &s).into_iter().enumerate() {
                lanes[k][i % 8] = lanes[k][i % 8] + v;
            }
        }
        std::array::from_fn(|k| lanes[k].iter().fold(F::zero(), |t, &x| t + x))
    }

    #[allow(private_bounds)]
    fn stored_pass<P: Store<F>, T: Store<F>, W: Writer<F, P>>(
        params: &mut ArrayRefD<P>,
        grads: &ArrayRefD<P>,
        state: &mut [T],
        w: W,
        f: &(impl Fn(&mut F, F, &mut Self, &mut F) -> F + Sync),
    ) {
        stored_pass(params, grads, state, w, f);
    }

    fn for_each_logical(
        mut params: ArrayViewMutD<'_, F>,
        grads: ArrayViewD<'_, F>,
        state: &mut [F],
        f: &impl Fn(&mut F, F, &mut Self),
    ) {
        let n = params.len();
        let mut cols = Self::columns(state, n);
        for (i, (p, &g)) in params.iter_mut().zip(grads.iter()).enumerate() {
            let mut s: [F; N] = std::array::from_fn(|j| cols[j][i]);
            f(p, g, &mut s);
            for (col, v) in cols.iter_mut().zip(s) {
                col[i] = v;
            }
        }
    }
}

/// A key's state, slot after slot of `n` elements each, as `N` columns.
pub(super) fn columns<T, const N: usize>(state: &mut [T], n: usize) -> [&mut [T]; N] {
    let mut rest = &mut state[..N * n];
    std::array::from_fn(|_| {
        let (head, tail) = std::mem::take(&mut rest).split_at_mut(n);
        rest = tail;
        head
    })
}
