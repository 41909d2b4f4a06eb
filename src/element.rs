//! Element types: the types arithmetic runs in ([`Scalar`]: `f32`, `f64`), the types parameters
//! and state are stored in ([`Element`]: those, and with the `half` feature `bf16` and `f16`),
//! how a stored element converts to and from its arithmetic type ([`Store`]), and how an update
//! is rounded into a low-precision parameter ([`Rounding`]).

use std::fmt::Debug;

use num_traits::Float;

mod sealed {
    /// Keeps the element traits to the types this crate implements them for.
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for f64 {}
    #[cfg(feature = "half")]
    impl Sealed for half::bf16 {}
    #[cfg(feature = "half")]
    impl Sealed for half::f16 {}

    use crate::products::{
        Axis, Matrix, Output, multiply, orthogonal_factor, reserve_orthogonal_factor,
        solve_lower_in_place, symmetric_eigenvectors,
    };

    /// Linear algebra in the arithmetic types, by faer.
    pub trait LinearAlgebra: Sized {
        /// `dst ← α·lhs·rhs`, or `+=` it, as `output` says (see [`multiply`]).
        fn multiply(
            dst: &mut [Self],
            lhs: Matrix<'_, Self>,
            rhs: Matrix<'_, Self>,
            alpha: Self,
            output: Output,
        );

        /// The eigenvectors of a symmetric matrix, by descending eigenvalue (see
        /// [`symmetric_eigenvectors`]).
        fn symmetric_eigenvectors(a: &[Self], n: usize, q: &mut [Self]) -> bool;

        /// The orthogonal factor of a QR decomposition (see [`orthogonal_factor`]).
        fn orthogonal_factor(a: &mut [Self], n: usize, q: &mut [Self]);

        /// Grows this thread's workspace for [`orthogonal_factor`] (see
        /// [`reserve_orthogonal_factor`]).
        fn reserve_orthogonal_factor(n: usize);

        /// Solves `Qᵀy = x` along an axis (see [`solve_lower_in_place`]).
        fn solve_lower(q: &[Self], axis: Axis, x: &mut [Self]);
    }
    impl<T: faer::traits::RealField + Copy> LinearAlgebra for T {
        fn multiply(
            dst: &mut [T],
            lhs: Matrix<'_, T>,
            rhs: Matrix<'_, T>,
            alpha: T,
            output: Output,
        ) {
            multiply(dst, lhs, rhs, alpha, output)
        }

        fn symmetric_eigenvectors(a: &[T], n: usize, q: &mut [T]) -> bool {
            symmetric_eigenvectors(a, n, q)
        }

        fn orthogonal_factor(a: &mut [T], n: usize, q: &mut [T]) {
            orthogonal_factor(a, n, q)
        }

        fn reserve_orthogonal_factor(n: usize) {
            reserve_orthogonal_factor::<T>(n)
        }

        fn solve_lower(q: &[T], axis: Axis, x: &mut [T]) {
            solve_lower_in_place(q, axis, x)
        }
    }
}

/// A type parameters, gradients and optimizer state can be stored in: `f32`, `f64`, and with the
/// `half` feature `half::bf16` and `half::f16`.
pub trait Element:
    Copy + Debug + Default + PartialEq + Send + Sync + 'static + sealed::Sealed
{
    /// The type's name in safetensors (`"F32"`, `"F64"`, `"BF16"`, `"F16"`).
    const DTYPE: &'static str;

    /// The value, exactly.
    fn as_f64(self) -> f64;

    /// `x` rounded to the nearest value of this type (ties to even).
    fn from_f64_nearest(x: f64) -> Self;

    /// The little-endian bytes of `self`, appended to `out`.
    fn write_le(self, out: &mut Vec<u8>);

    /// A value from its little-endian bytes (`size_of::<Self>()` of them).
    fn read_le(bytes: &[u8]) -> Self;
}

/// The types arithmetic runs in: `f32` and `f64`. Every optimizer computes in one of them,
/// whatever type it stores parameters in (see [`crate::precision`]).
pub trait Scalar: Float + Element + sealed::LinearAlgebra {}

impl Scalar for f32 {}
impl Scalar for f64 {}

/// How an element stored as `Self` enters arithmetic in `F` and goes back.
pub trait Store<F: Scalar>: Element {
    /// The stored value in the arithmetic type (exact).
    fn load(self) -> F;

    /// `x` rounded to the nearest stored value, ties to even: PyTorch's conversion.
    fn round(x: F) -> Self;

    /// `x` rounded down or up (in magnitude) with probabilities that make the rounding unbiased:
    /// up with probability equal to the distance from the value below over the gap. `r` is 32
    /// uniformly random bits.
    fn round_stochastic(x: F, r: u32) -> Self;

    /// `x` rounded to the nearest stored value, back in the arithmetic type: where a reference's
    /// tensor operation writes a result of this type.
    #[inline(always)]
    fn rounded(x: F) -> F {
        Self::round(x).load()
    }

    /// Sixteen values rounded to nearest into `out[..16]`, as [`Store::round`] rounds them: by
    /// the CPU's bfloat16 conversion for `bf16` (which flushes subnormal inputs to zero: call it
    /// only where [`Store::any_subnormal_16`] says none is), in software for other types.
    ///
    /// # Safety
    ///
    /// The CPU has AVX-512F, AVX-512DQ and AVX512-BF16, and `out` holds at least 16 elements.
    #[doc(hidden)]
    #[inline(always)]
    unsafe fn round_16_avx512bf16(x: &[F; 16], out: &mut [Self]) {
        for (o, &v) in out.iter_mut().zip(x) {
            *o = Self::round(v);
        }
    }

    /// Whether [`Store::round_16_avx512bf16`] would round any of `x` otherwise than
    /// [`Store::round`] (never, but for `bf16` and a subnormal value).
    ///
    /// # Safety
    ///
    /// As [`Store::round_16_avx512bf16`].
    #[doc(hidden)]
    #[inline(always)]
    unsafe fn any_subnormal_16(_x: &[F; 16]) -> bool {
        false
    }
}

impl<F: Scalar> Store<F> for F {
    #[inline(always)]
    fn load(self) -> F {
        self
    }

    #[inline(always)]
    fn round(x: F) -> F {
        x
    }

    #[inline(always)]
    fn round_stochastic(x: F, _: u32) -> F {
        x
    }
}

macro_rules! native_element {
    ($t:ty, $dtype:literal) => {
        impl Element for $t {
            const DTYPE: &'static str = $dtype;

            fn as_f64(self) -> f64 {
                f64::from(self)
            }

            fn from_f64_nearest(x: f64) -> Self {
                x as $t
            }

            fn write_le(self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }

            fn read_le(bytes: &[u8]) -> Self {
                let mut b = [0; size_of::<$t>()];
                b.copy_from_slice(&bytes[..size_of::<$t>()]);
                <$t>::from_le_bytes(b)
            }
        }
    };
}

native_element!(f32, "F32");
native_element!(f64, "F64");

#[cfg(feature = "half")]
mod half_types {
    use half::{bf16, f16};

    use super::{Element, Store};

    macro_rules! half_element {
        ($t:ty, $dtype:literal) => {
            impl Element for $t {
                const DTYPE: &'static str = $dtype;

                fn as_f64(self) -> f64 {
                    f64::from(self.to_f32())
                }

                fn from_f64_nearest(x: f64) -> Self {
                    <$t>::from_f64(x)
                }

                fn write_le(self, out: &mut Vec<u8>) {
                    out.extend_from_slice(&self.to_bits().to_le_bytes());
                }

                fn read_le(bytes: &[u8]) -> Self {
                    <$t>::from_bits(u16::from_le_bytes([bytes[0], bytes[1]]))
                }
            }
        };
    }

    half_element!(bf16, "BF16");
    half_element!(f16, "F16");

    /// bfloat16 is the upper half of an `f32`: conversions are integer operations that
    /// vectorize (written here rather than taken from `half` so that they inline into the fused
    /// loop at every instruction-set level).
    impl Store<f32> for bf16 {
        #[inline(always)]
        fn load(self) -> f32 {
            f32::from_bits(u32::from(self.to_bits()) << 16)
        }

        #[inline(always)]
        fn round(x: f32) -> bf16 {
            let b = x.to_bits();
            let nearest = b.wrapping_add(0x7fff + ((b >> 16) & 1)) >> 16;
            let quiet_nan = (b >> 16) | 0x40;
            bf16::from_bits(if x.is_nan() { quiet_nan } else { nearest } as u16)
        }

        #[cfg(target_arch = "x86_64")]
        #[inline(always)]
        unsafe fn round_16_avx512bf16(x: &[f32; 16], out: &mut [bf16]) {
            use std::arch::x86_64::{
                __m256i, _mm256_storeu_si256, _mm512_cvtneps_pbh, _mm512_loadu_ps,
            };
            // SAFETY: the caller guarantees the features and 16 elements of `out`.
            unsafe {
                let rounded: __m256i =
                    std::mem::transmute(_mm512_cvtneps_pbh(_mm512_loadu_ps(x.as_ptr())));
                _mm256_storeu_si256(out.as_mut_ptr().cast(), rounded);
            }
        }

        #[cfg(target_arch = "x86_64")]
        #[inline(always)]
        unsafe fn any_subnormal_16(x: &[f32; 16]) -> bool {
            use std::arch::x86_64::{_mm512_fpclass_ps_mask, _mm512_loadu_ps};
            // SAFETY: the caller guarantees the features (AVX-512DQ: every CPU with AVX512-BF16
            // has it, and the level checks it). Class 0x20: subnormal.
            unsafe { _mm512_fpclass_ps_mask::<0x20>(_mm512_loadu_ps(x.as_ptr())) != 0 }
        }

        #[inline(always)]
        fn round_stochastic(x: f32, r: u32) -> bf16 {
            // Adding 16 random bits below the kept ones carries into them with probability
            // equal to the dropped fraction; truncation then rounds toward zero.
            let b = x.to_bits();
            let up = b.wrapping_add(r >> 16) >> 16;
            let quiet_nan = (b >> 16) | 0x40;
            bf16::from_bits(if x.is_nan() { quiet_nan } else { up } as u16)
        }
    }

    impl Store<f32> for f16 {
        #[inline(always)]
        fn load(self) -> f32 {
            self.to_f32()
        }

        #[inline(always)]
        fn round(x: f32) -> f16 {
            f16::from_f32(x)
        }

        fn round_stochastic(x: f32, r: u32) -> f16 {
            let nearest = f16::from_f32(x);
            let a = x.abs();
            if !a.is_finite() || nearest.to_f32() == x {
                return nearest;
            }
            // The two magnitudes around |x|: adjacent bit patterns for positive halves.
            let m = nearest.to_bits() & 0x7fff;
            let (lo, hi) = if f16::from_bits(m).to_f32() > a {
                (m - 1, m)
            } else {
                (m, m + 1)
            };
            let (lo_v, hi_v) = (f16::from_bits(lo).to_f32(), f16::from_bits(hi).to_f32());
            let u = (r >> 8) as f32 * (1.0 / (1u32 << 24) as f32);
            let pick = if u < (a - lo_v) / (hi_v - lo_v) {
                hi
            } else {
                lo
            };
            f16::from_bits(pick | (nearest.to_bits() & 0x8000))
        }
    }
}

/// How an update is written into a parameter stored in fewer bits than the arithmetic
/// ([`crate::precision`]). For `f32` and `f64` parameters only [`Rounding::Nearest`] applies.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Rounding {
    /// Round to nearest, ties to even: what a plain cast does. Updates smaller than half the
    /// gap between stored values are lost.
    #[default]
    Nearest,
    /// Kahan-compensated summation as torch-optimi's `kahan_sum`: a buffer per key, in the
    /// parameter's type, keeps what each rounding lost and adds it back at the next step
    /// (`k ← k + u;  p' ← p + k;  k ← k + (p − p')`, each result rounded to the stored type).
    Kahan,
    /// Stochastic rounding: up or down with probabilities that make each rounding unbiased, so
    /// that small updates survive on average. The random bits are a hash of the seed, the key,
    /// the key's step count and the element's index: reproducible, independent of threads, and
    /// continued by a checkpoint (which holds the seed and the step counts).
    Stochastic {
        /// The generator's seed.
        seed: u64,
    },
}

/// The per-key, per-step seed of stochastic rounding: a hash of the optimizer's seed, the key and
/// the key's step count.
pub(crate) fn key_seed(seed: u64, key: &str, step: u64) -> u32 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ seed;
    for &b in key.as_bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    let mut z = h ^ step.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    // SplitMix64's finaliser.
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    (z ^ (z >> 31)) as u32
}

/// The random bits of element `i` of a key whose step seed is `seed`: MurmurHash3's 32-bit
/// finaliser of a Weyl sequence, integer multiplies and shifts that vectorize.
#[inline(always)]
pub(crate) fn element_bits(seed: u32, i: usize) -> u32 {
    let mut x = seed.wrapping_add((i as u32).wrapping_mul(0x9e37_79b9));
    x ^= x >> 16;
    x = x.wrapping_mul(0x85eb_ca6b);
    x ^= x >> 13;
    x = x.wrapping_mul(0xc2b2_ae35);
    x ^ (x >> 16)
}
