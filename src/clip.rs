//! Gradient clipping over a whole gradient map, as `torch.nn.utils.clip_grad_norm_` and
//! `clip_grad_value_` do it.
//!
//! ```
//! use ndarray::arr1;
//! use ndoptim::clip::{Norm, clip_grad_norm};
//! use ndoptim::Params;
//! let mut grads = Params::from([("w".to_string(), arr1(&[3.0f64, 4.0]).into_dyn())]);
//! let total = clip_grad_norm(&mut grads, 1.0, Norm::L2, false)?;
//! assert_eq!(total, 5.0);
//! assert!((grads["w"][0] - 0.6).abs() < 1e-6);
//! # Ok::<(), ndoptim::Error>(())
//! ```

use ndarray::{ArrayRefD, ArrayViewMutD};

use crate::{Error, Params, Scalar, engine::cast};

/// Gradients that clipping reads and scales in place: a map ([`Params`], the book's way in) or
/// mutable views in a slice or `Vec` (beside [`Named`](crate::Named), the second way in; a plain
/// `&mut [F]` becomes one with `ArrayViewMutD::from_shape(IxDyn(&[len]), slice)`).
pub trait Gradients<F> {
    /// Calls `f` with every gradient array.
    fn visit(&self, f: &mut dyn FnMut(&ArrayRefD<F>));
    /// Calls `f` with every gradient array, mutably.
    fn visit_mut(&mut self, f: &mut dyn FnMut(&mut ArrayRefD<F>));
}

impl<F> Gradients<F> for Params<F> {
    fn visit(&self, f: &mut dyn FnMut(&ArrayRefD<F>)) {
        self.values().for_each(|g| f(g));
    }

    fn visit_mut(&mut self, f: &mut dyn FnMut(&mut ArrayRefD<F>)) {
        self.values_mut().for_each(|g| f(g));
    }
}

impl<F> Gradients<F> for [ArrayViewMutD<'_, F>] {
    fn visit(&self, f: &mut dyn FnMut(&ArrayRefD<F>)) {
        self.iter().for_each(|g| f(g));
    }

    fn visit_mut(&mut self, f: &mut dyn FnMut(&mut ArrayRefD<F>)) {
        self.iter_mut().for_each(|g| f(g));
    }
}

impl<F> Gradients<F> for Vec<ArrayViewMutD<'_, F>> {
    fn visit(&self, f: &mut dyn FnMut(&ArrayRefD<F>)) {
        self.as_slice().visit(f);
    }

    fn visit_mut(&mut self, f: &mut dyn FnMut(&mut ArrayRefD<F>)) {
        self.as_mut_slice().visit_mut(f);
    }
}

/// The norm [`clip_grad_norm`] measures the gradients with.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Norm {
    /// Sum of absolute values.
    L1,
    /// Euclidean (PyTorch's default).
    L2,
    /// Largest absolute value.
    Infinity,
}

/// Scales every gradient by `max_norm / (total + 1e-6)` when the total norm of all of them
/// exceeds `max_norm`; returns the total norm before clipping.
///
/// As PyTorch: the total is the norm of the per-array norms, each array is read once to measure
/// it and scaled in place (by at most 1), and no copy is made.
///
/// # Errors
///
/// [`Error::InvalidHyperparameter`] for a negative or non-finite `max_norm`;
/// [`Error::NonFiniteNorm`] when `error_if_nonfinite` is set and the total is NaN or infinite.
/// The gradients are then unchanged.
pub fn clip_grad_norm<F: Scalar, G: Gradients<F> + ?Sized>(
    grads: &mut G,
    max_norm: f64,
    norm: Norm,
    error_if_nonfinite: bool,
) -> Result<f64, Error> {
    crate::check::non_negative("max_norm", max_norm)?;
    let per_array = |g: &ArrayRefD<F>| -> F {
        match norm {
            Norm::L1 => g.iter().fold(F::zero(), |s, x| s + x.abs()),
            Norm::L2 => g.iter().fold(F::zero(), |s, &x| s + x * x).sqrt(),
            Norm::Infinity => g.iter().fold(F::zero(), |m, x| m.max(x.abs())),
        }
    };
    // The per-array norms combined in the arrays' order, as before: L1 and L∞ directly, L2 as
    // the root of the sum of squared per-array norms.
    let mut total = F::zero();
    grads.visit(&mut |g| {
        let n = per_array(g);
        total = match norm {
            Norm::L1 => total + n,
            Norm::L2 => total + n * n,
            Norm::Infinity => total.max(n),
        };
    });
    if norm == Norm::L2 {
        total = total.sqrt();
    }
    let total = total.to_f64().unwrap_or(f64::NAN);
    if error_if_nonfinite && !total.is_finite() {
        return Err(Error::NonFiniteNorm { norm: total });
    }
    // A NaN total gives a NaN coefficient, as PyTorch's clamp does (`f64::min` would drop it).
    let coef = max_norm / (total + 1e-6);
    let coef: F = cast(if coef > 1.0 { 1.0 } else { coef });
    grads.visit_mut(&mut |g| g.mapv_inplace(|x| x * coef));
    Ok(total)
}

/// Clamps every gradient element to `[-clip_value, clip_value]`.
///
/// # Errors
///
/// [`Error::InvalidHyperparameter`] for a negative or non-finite `clip_value`.
pub fn clip_grad_value<F: Scalar, G: Gradients<F> + ?Sized>(
    grads: &mut G,
    clip_value: f64,
) -> Result<(), Error> {
    crate::check::non_negative("clip_value", clip_value)?;
    let v: F = cast(clip_value);
    grads.visit_mut(&mut |g| g.mapv_inplace(|x| x.max(-v).min(v)));
    Ok(())
}
