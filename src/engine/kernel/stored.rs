//! The fused pass over parameters and state stored in another type than the arithmetic's
//! (bf16/f16 parameters): loads, the update in `F`, and the write back with the rounding of
//! [`Rounding`](crate::Rounding).

use ndarray::ArrayRefD;

use super::slots::columns;
use crate::element::{Store, element_bits};
use crate::engine::Scalar;
#[cfg(target_arch = "x86_64")]
use crate::simd::Level;
use crate::simd::current;

/// How the fused pass over a low-precision parameter writes each element: the rounding of
/// [`Rounding`](crate::Rounding), with the per-element data it needs.
pub(crate) trait Writer<F: Scalar, P: Store<F>>: Send + Sized {
    /// Whether it holds one element of data per parameter element, of which there are `n`.
    fn fits(&self, n: usize) -> bool;

    /// Element `i`'s compensation, handed to rules that compensate their writes themselves
    /// ([`Compensated`]); zero from every other writer.
    ///
    /// # Safety
    ///
    /// As [`Writer::write`].
    #[inline(always)]
    unsafe fn compensation(&self, _i: usize) -> F {
        F::zero()
    }

    /// Element `i`'s new value, `base + inc` as the rounding sees it: a value that rounding to
    /// nearest then stores (exactly, for Kahan and stochastic rounding, which round it
    /// themselves). `comp` is the compensation [`Writer::compensation`] gave, as the rule left it.
    ///
    /// # Safety
    ///
    /// `i` is below the `n` that [`Writer::fits`] accepted.
    unsafe fn write(&mut self, i: usize, base: F, inc: F, comp: F) -> F;

    /// The writers of elements `..mid` and `mid..`, for parallel halves.
    #[cfg_attr(not(feature = "rayon"), allow(dead_code))]
    fn split(self, mid: usize) -> (Self, Self);
}

/// Round to nearest.
pub(crate) struct Nearest;

impl<F: Scalar, P: Store<F>> Writer<F, P> for Nearest {
    fn fits(&self, _: usize) -> bool {
        true
    }

    #[inline(always)]
    unsafe fn write(&mut self, _: usize, base: F, inc: F, _: F) -> F {
        base + inc
    }

    fn split(self, _: usize) -> (Self, Self) {
        (Nearest, Nearest)
    }
}

/// Kahan-compensated, in torch-optimi's order of operations, each result rounded to `P`.
pub(crate) struct Kahan<'a, P>(pub(crate) &'a mut [P]);

impl<F: Scalar, P: Store<F>> Writer<F, P> for Kahan<'_, P> {
    fn fits(&self, n: usize) -> bool {
        self.0.len() == n
    }

    #[inline(always)]
    unsafe fn write(&mut self, i: usize, base: F, inc: F, _: F) -> F {
        // SAFETY: the caller keeps `i` below the length `fits` checked.
        let comp = unsafe { self.0.get_unchecked_mut(i) };
        let (new, c) = kahan_add::<F, P>(base, comp.load(), inc);
        *comp = P::round(c);
        new
    }

    fn split(self, mid: usize) -> (Self, Self) {
        let (a, b) = self.0.split_at_mut(mid);
        (Kahan(a), Kahan(b))
    }
}

/// torch-optimi's Kahan-compensated `p + inc` in the stored type `P`, each result rounded to
/// `P`: `k ← k + inc;  p' ← p + k;  k ← k + (p − p')`. Returns `(p', k)`, the new `k` before its
/// last rounding (which storing it as `P` does).
#[inline(always)]
pub(crate) fn kahan_add<F: Scalar, P: Store<F>>(p: F, comp: F, inc: F) -> (F, F) {
    let k = P::rounded(comp + inc);
    let new = P::rounded(p + k);
    (new, k + P::rounded(p - new))
}

/// Kahan's compensation handed to the rule, which writes through it itself
/// ([`Step::for_each_compensated`](crate::engine::Step::for_each_compensated)): the parameter's value
/// is stored as the rule leaves it, and the compensation kept.
pub(crate) struct Compensated<'a, P>(pub(crate) &'a mut [P]);

impl<F: Scalar, P: Store<F>> Writer<F, P> for Compensated<'_, P> {
    fn fits(&self, n: usize) -> bool {
        self.0.len() == n
    }

    #[inline(always)]
    unsafe fn compensation(&self, i: usize) -> F {
        // SAFETY: the caller keeps `i` below the length `fits` checked.
        unsafe { self.0.get_unchecked(i) }.load()
    }

    #[inline(always)]
    unsafe fn write(&mut self, i: usize, base: F, inc: F, comp: F) -> F {
        // SAFETY: as above.
        *unsafe { self.0.get_unchecked_mut(i) } = P::round(comp);
        base + inc
    }

    fn split(self, mid: usize) -> (Self, Self) {
        let (a, b) = self.0.split_at_mut(mid);
        (Compensated(a), Compensated(b))
    }
}

/// Stochastic, from the key's step seed and each element's index.
pub(crate) struct Stochastic {
    pub(crate) seed: u32,
    pub(crate) offset: usize,
}

impl<F: Scalar, P: Store<F>> Writer<F, P> for Stochastic {
    fn fits(&self, _: usize) -> bool {
        true
    }

    #[inline(always)]
    unsafe fn write(&mut self, i: usize, base: F, inc: F, _: F) -> F {
        P::round_stochastic(base + inc, element_bits(self.seed, self.offset + i)).load()
    }

    fn split(self, mid: usize) -> (Self, Self) {
        let upper = Stochastic {
            seed: self.seed,
            offset: self.offset + mid,
        };
        (self, upper)
    }
}

/// How the fused pass over stored elements rounds its results into memory.
trait Narrow {
    /// Whether it works on blocks of 16 elements ([`Narrow::narrow`]); else element by element.
    const BLOCKS: bool;

    /// Rounds a block of 16 new parameter values and their slots into `params[..16]` and each
    /// column's `[..16]`.
    ///
    /// # Safety
    ///
    /// As the implementation's [`Store`] methods require.
    unsafe fn narrow<F: Scalar, P: Store<F>, T: Store<F>, const N: usize>(
        new: &[F; 16],
        params: &mut [P],
        slots: &[[F; 16]; N],
        cols: &mut [&mut [T]; N],
    );
}

/// Element by element, [`Store::round`] in code the compiler vectorizes.
struct Software;

impl Narrow for Software {
    const BLOCKS: bool = false;

    unsafe fn narrow<F: Scalar, P: Store<F>, T: Store<F>, const N: usize>(
        _: &[F; 16],
        _: &mut [P],
        _: &[[F; 16]; N],
        _: &mut [&mut [T]; N],
    ) {
        unreachable!("the software strategy works element by element")
    }
}

/// Blocks of 16, bfloat16 rounded by the CPU's conversion instruction unless the block holds a
/// subnormal value (which it would flush to zero): then in software.
#[cfg(target_arch = "x86_64")]
struct Avx512Bf16;

#[cfg(target_arch = "x86_64")]
impl Narrow for Avx512Bf16 {
    const BLOCKS: bool = true;

    #[inline(always)]
    unsafe fn narrow<F: Scalar, P: Store<F>, T: Store<F>, const N: usize>(
        new: &[F; 16],
        params: &mut [P],
        slots: &[[F; 16]; N],
        cols: &mut [&mut [T]; N],
    ) {
        // SAFETY: this strategy runs only at `Level::Avx512Bf16`, and every range has 16
        // elements. One test for the whole block: a branch per array costs more than the
        // conversions save.
        unsafe {
            let mut subnormal = P::any_subnormal_16(new);
            for s in slots {
                subnormal |= T::any_subnormal_16(s);
            }
            if subnormal {
                for (o, &v) in params.iter_mut().zip(new) {
                    *o = P::round(v);
                }
                for (col, values) in cols.iter_mut().zip(slots) {
                    for (o, &v) in col.iter_mut().zip(values) {
                        *o = T::round(v);
                    }
                }
                return;
            }
            P::round_16_avx512bf16(new, params);
            for (col, values) in cols.iter_mut().zip(slots) {
                T::round_16_avx512bf16(values, col);
            }
        }
    }
}

/// The fused pass over stored elements: each parameter, gradient and state element loaded into
/// `F`, `f(p, g, slots)` returning the update `p` receives (after any change it makes to `p`
/// itself, such as weight decay), the parameter's new value from `w`, and parameter and state
/// rounded to nearest into memory as `H` does it.
#[inline(always)]
fn stored_slice<F: Scalar, P: Store<F>, T: Store<F>, W: Writer<F, P>, H: Narrow, const N: usize>(
    params: &mut [P],
    grads: &[P],
    mut cols: [&mut [T]; N],
    mut w: W,
    f: &impl Fn(&mut F, F, &mut [F; N], &mut F) -> F,
) {
    let n = params.len();
    let grads = &grads[..n];
    assert!(
        cols.iter().all(|c| c.len() == n) && w.fits(n),
        "every column has one slot per element"
    );
    // One element: its new value and slots, before rounding into memory. SAFETY (each
    // unchecked access): the columns and the writer have `n` elements (asserted above), and
    // every index given is below `n`.
    let element = |i: usize, cols: &[&mut [T]; N], params: &[P], w: &mut W| {
        let mut s: [F; N] = std::array::from_fn(|j| unsafe { cols[j].get_unchecked(i) }.load());
        let mut p = unsafe { params.get_unchecked(i) }.load();
        let mut c = unsafe { w.compensation(i) };
        let inc = f(
            &mut p,
            unsafe { grads.get_unchecked(i) }.load(),
            &mut s,
            &mut c,
        );
        (unsafe { w.write(i, p, inc, c) }, s)
    };
    let blocks = if H::BLOCKS { n / 16 } else { 0 };
    for block in 0..blocks {
        let start = block * 16;
        let (mut new, mut slots) = ([F::zero(); 16], [[F::zero(); 16]; N]);
        for j in 0..16 {
            let (p, s) = element(start + j, &cols, params, &mut w);
            new[j] = p;
            for (column, v) in slots.iter_mut().zip(s) {
                column[j] = v;
            }
        }
        let mut block: [&mut [T]; N] = cols.each_mut().map(|c| &mut c[start..start + 16]);
        // SAFETY: `H`'s requirements hold where it is chosen; each range has 16 elements.
        unsafe { H::narrow(&new, &mut params[start..start + 16], &slots, &mut block) };
    }
    for i in blocks * 16..n {
        let (p, s) = element(i, &cols, params, &mut w);
        params[i] = P::round(p);
        for (col, v) in cols.iter_mut().zip(s) {
            unsafe { *col.get_unchecked_mut(i) = T::round(v) };
        }
    }
}

dispatched! {
    /// Runs the stored-element pass compiled for the current level, rounding in software.
    fn stored_slice_software[F: Scalar, P: Store<F>, T: Store<F>, W: Writer<F, P>, const N: usize](
        params: &mut [P],
        grads: &[P],
        cols: [&mut [T]; N],
        w: W,
        f: &impl Fn(&mut F, F, &mut [F; N], &mut F) -> F
    ) {
        stored_slice::<F, P, T, W, Software, N>(params, grads, cols, w, f)
    }
}

/// Runs the stored-element pass compiled for the current level: at [`Level::Avx512Bf16`], with
/// bfloat16 rounded by the CPU.
#[inline(always)]
fn stored_slice_dispatched<F: Scalar, P: Store<F>, T: Store<F>, W: Writer<F, P>, const N: usize>(
    params: &mut [P],
    grads: &[P],
    cols: [&mut [T]; N],
    w: W,
    f: &impl Fn(&mut F, F, &mut [F; N], &mut F) -> F,
) {
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512dq,avx512bf16,avx2,fma")]
    unsafe fn avx512bf16<F: Scalar, P: Store<F>, T: Store<F>, W: Writer<F, P>, const N: usize>(
        params: &mut [P],
        grads: &[P],
        cols: [&mut [T]; N],
        w: W,
        f: &impl Fn(&mut F, F, &mut [F; N], &mut F) -> F,
    ) {
        stored_slice::<F, P, T, W, Avx512Bf16, N>(params, grads, cols, w, f)
    }

    #[cfg(target_arch = "x86_64")]
    if current() == Level::Avx512Bf16 {
        // SAFETY: `current` only returns levels that `detect` found on this CPU.
        return unsafe { avx512bf16(params, grads, cols, w, f) };
    }
    stored_slice_software(params, grads, cols, w, f)
}

/// The stored-element pass over a key's arrays: on slices (split across threads with the
/// `rayon` feature) when they are contiguous, else in logical order.
pub(crate) fn stored_pass<F: Scalar, P: Store<F>, T: Store<F>, W: Writer<F, P>, const N: usize>(
    params: &mut ArrayRefD<P>,
    grads: &ArrayRefD<P>,
    state: &mut [T],
    w: W,
    f: &(impl Fn(&mut F, F, &mut [F; N], &mut F) -> F + Sync),
) {
    let n = params.len();
    assert_eq!(
        N * n,
        state.len(),
        "a rule's per-element slots disagree with the state it declared"
    );
    let cols = columns(state, n);
    if let (Some(p), Some(g)) = (params.as_slice_mut(), grads.as_slice()) {
        #[cfg(feature = "rayon")]
        if crate::parallel::worth_it(n) {
            return stored_parallel(p, g, cols, w, f);
        }
        return stored_slice_dispatched(p, g, cols, w, f);
    }
    let mut cols = cols;
    let mut w = w;
    assert!(
        w.fits(n),
        "the writer has one element per parameter element"
    );
    for (i, (p, g)) in params.iter_mut().zip(grads.iter()).enumerate() {
        let mut s: [F; N] = std::array::from_fn(|j| cols[j][i].load());
        let mut v = p.load();
        // SAFETY (both): `i < n`, which `fits` accepted.
        let mut c = unsafe { w.compensation(i) };
        let inc = f(&mut v, g.load(), &mut s, &mut c);
        *p = P::round(unsafe { w.write(i, v, inc, c) });
        for (col, v) in cols.iter_mut().zip(s) {
            col[i] = T::round(v);
        }
    }
}

#[cfg(feature = "rayon")]
/// The stored-element pass over halves of the arrays in parallel, recursively.
fn stored_parallel<F: Scalar, P: Store<F>, T: Store<F>, W: Writer<F, P>, const N: usize>(
    params: &mut [P],
    grads: &[P],
    cols: [&mut [T]; N],
    w: W,
    f: &(impl Fn(&mut F, F, &mut [F; N], &mut F) -> F + Sync),
) {
    let n = params.len();
    if n <= crate::parallel::LEAF_ELEMENTS {
        return stored_slice_dispatched(params, grads, cols, w, f);
    }
    let mid = n / 2;
    let (p1, p2) = params.split_at_mut(mid);
    let (g1, g2) = grads.split_at(mid);
    let mut halves = cols.map(|c| c.split_at_mut(mid));
    let c1 = std::array::from_fn(|j| std::mem::take(&mut halves[j].0));
    let c2 = std::array::from_fn(|j| std::mem::take(&mut halves[j].1));
    let (w1, w2) = w.split(mid);
    rayon::join(
        || stored_parallel(p1, g1, c1, w1, f),
        || stored_parallel(p2, g2, c2, w2, f),
    );
}
