//! The fused loop compiled once per instruction-set level ([`crate::simd`]) and chosen at run
//! time, and, with the `rayon` feature, split across threads ([`crate::parallel`]).

use super::Slots;
use crate::engine::Scalar;
#[cfg(target_arch = "x86_64")]
use crate::simd::Level;
use crate::simd::current;

/// Defines `$name` (generics in brackets), which runs `$call` compiled for the current instruction-set level: `$call`
/// is instantiated again inside a function with each level's target features, so the kernel and
/// the rule's per-element closure inline into it and vectorize for that instruction set.
macro_rules! dispatched {
    ($(#[$doc:meta])* fn $name:ident[$($generics:tt)*]($($arg:ident: $ty:ty),*) $(-> $ret:ty)? { $call:expr }) => {
        $(#[$doc])*
        #[inline(always)]
        pub(crate) fn $name<$($generics)*>($($arg: $ty),*) $(-> $ret)? {
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2,fma")]
            unsafe fn avx2<$($generics)*>($($arg: $ty),*) $(-> $ret)? {
                $call
            }

            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx512f,avx2,fma")]
            unsafe fn avx512<$($generics)*>($($arg: $ty),*) $(-> $ret)? {
                $call
            }

            match current() {
                // SAFETY: `current` only returns levels that `detect` found on this CPU.
                #[cfg(target_arch = "x86_64")]
                Level::Avx512 | Level::Avx512Bf16 => unsafe { avx512($($arg),*) },
                // SAFETY: as above.
                #[cfg(target_arch = "x86_64")]
                Level::Avx2 => unsafe { avx2($($arg),*) },
                _ => $call,
            }
        }
    };
}

dispatched! {
    /// Runs `S::for_each_slice(params, grads, columns, f)` compiled for the current level.
    fn for_each_slice[F: Scalar, S: Slots<F>](
        params: &mut [F],
        grads: &[F],
        columns: S::Columns<'_>,
        f: &impl Fn(&mut F, F, &mut S)
    ) {
        S::for_each_slice(params, grads, columns, f)
    }
}

dispatched! {
    /// Runs `S::sum_slice(params, grads, columns, f)` compiled for the current level.
    fn sum_slice[F: Scalar, S: Slots<F>, const K: usize](
        params: &[F],
        grads: &[F],
        columns: &S::Columns<'_>,
        f: &impl Fn(F, F, &S) -> [F; K]
    ) -> [F; K] {
        S::sum_slice(params, grads, columns, f)
    }
}

#[cfg(feature = "rayon")]
/// The fused pass over halves of the arrays in parallel, recursively.
pub(crate) fn for_each_slice_parallel<F: Scalar, S: Slots<F>>(
    params: &mut [F],
    grads: &[F],
    columns: S::Columns<'_>,
    f: &(impl Fn(&mut F, F, &mut S) + Sync),
) {
    let n = params.len();
    if n <= crate::parallel::LEAF_ELEMENTS {
        return for_each_slice(params, grads, columns, f);
    }
    let mid = n / 2;
    let (p1, p2) = params.split_at_mut(mid);
    let (g1, g2) = grads.split_at(mid);
    let (c1, c2) = S::split_columns(columns, mid);
    rayon::join(
        || for_each_slice_parallel(p1, g1, c1, f),
        || for_each_slice_parallel(p2, g2, c2, f),
    );
}
