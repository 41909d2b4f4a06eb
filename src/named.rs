//! The second way in: parameters given by name as views or slices, wherever the model keeps them.
//!
//! The book's way in is a map, `HashMap<String, ArrayD<F>>`. A model whose layers hold
//! `Array2` fields, an autodiff crate with its own variable store, a `nalgebra` matrix or a
//! plain `Vec<f32>` need not copy into one: [`Optimizer::update_named`](crate::Optimizer::update_named)
//! takes a list of [`Named`] parameters, each a key, a mutable view of the parameter and a view
//! of its gradient, and runs the same engine: the same checks before anything is written, lazy
//! state by key, groups, the non-finite guard, checkpoints and schedules; bit-identical results.
//!
//! Rules of the road:
//! - **Keys are the identity of state.** Give each parameter the same key on every call; a key
//!   seen for the first time gets fresh state, whatever it was called before.
//! - **A key that disappears keeps its state**, frozen, as a parameter without a gradient does
//!   in the map interface; it resumes when the key comes back, and [`Optimizer::reset`](crate::Optimizer::reset)
//!   clears everything.
//! - **Layouts**: any memory layout works; contiguous row-major views take the fast, vectorized
//!   path. State follows the logical (row-major) order of the shape given, so a column-major
//!   buffer (nalgebra) should be given with its shape reversed, `[cols, rows]`, which is what its
//!   memory is in row-major terms. For elementwise optimizers the choice is invisible; for Muon,
//!   Adafactor, LAMB and LARS the shape says which axis is which.
//!
//! # Another ndarray version
//!
//! ndoptim is built on ndarray 0.17 (re-exported as [`ndoptim::ndarray`](crate::ndarray)). Cargo
//! builds each semver-incompatible version of a crate as a crate of its own, so a model on
//! ndarray 0.15 holds arrays of another type, and passing its views to [`Named::new`] fails with
//! E0308, "mismatched types ... multiple different versions of crate `ndarray`":
//!
//! ```compile_fail,E0308
//! // ndarray 0.14, here through the autograd crate, in place of ndoptim's 0.17.
//! use autograd::ndarray::Array2;
//! let (mut w, g) = (Array2::<f32>::ones((2, 3)), Array2::<f32>::zeros((2, 3)));
//! let item = ndoptim::Named::new("w", w.view_mut(), g.view()); // error[E0308]
//! ```
//!
//! A slice of `f32` or `f64` is the same type in every version, and [`named!`](crate::named!)
//! takes an array of any version through its slice, its shape copied first. It needs the arrays
//! to be contiguous and row-major, as arrays are unless transposed or sliced:
//!
//! ```
//! use autograd::ndarray::Array2; // ndarray 0.14
//! use ndoptim::{named, Optimizer, Sgd};
//!
//! struct Net { w1: Array2<f32>, g1: Array2<f32> }
//! let mut net = Net { w1: Array2::ones((2, 3)), g1: Array2::from_elem((2, 3), 0.5) };
//! Sgd::default().update_named(&mut [named!("w1", net.w1, net.g1)?])?;
//! assert_eq!(net.w1[[1, 2]], 1.0 - 0.01 * 0.5);
//! # Ok::<(), ndoptim::Error>(())
//! ```

use ndarray::{ArrayView, ArrayViewD, ArrayViewMut, ArrayViewMutD, Dimension, IntoDimension};

use crate::{Element, Error, Params};

/// One parameter and its gradient, by name: an element of
/// [`Optimizer::update_named`](crate::Optimizer::update_named).
///
/// ```
/// use ndarray::{Array1, Array2};
/// use ndoptim::{Adam, Named, Optimizer};
///
/// // A layer that keeps its weights in fields, not in a map.
/// let (mut w, mut b) = (Array2::<f32>::ones((3, 2)), Array1::<f32>::zeros(2));
/// let (gw, gb) = (Array2::<f32>::from_elem((3, 2), 0.5), Array1::<f32>::from_elem(2, -0.5));
/// let mut opt = Adam::pytorch();
/// opt.update_named(&mut [
///     Named::new("w", w.view_mut(), gw.view()),
///     Named::new("b", b.view_mut(), gb.view()),
/// ])?;
/// assert!(w[[0, 0]] < 1.0 && b[0] > 0.0);
///
/// // Plain slices with a shape, as another ndarray version or a Vec would give them.
/// let (mut data, grad) = (vec![1.0f32; 6], vec![0.5f32; 6]);
/// opt.update_named(&mut [Named::from_slices("flat", [2, 3], &mut data, &grad)?])?;
/// assert!(data[0] < 1.0);
/// # Ok::<(), ndoptim::Error>(())
/// ```
#[derive(Debug)]
pub struct Named<'a, F> {
    pub(crate) key: &'a str,
    pub(crate) param: ArrayViewMutD<'a, F>,
    pub(crate) grad: ArrayViewD<'a, F>,
}

impl<'a, F: Element> Named<'a, F> {
    /// A parameter and its gradient as ndarray views of any dimension (their shapes are checked
    /// by the update, like a map's).
    pub fn new<D: Dimension>(
        key: &'a str,
        param: ArrayViewMut<'a, F, D>,
        grad: ArrayView<'a, F, D>,
    ) -> Self {
        Self {
            key,
            param: param.into_dyn(),
            grad: grad.into_dyn(),
        }
    }

    /// A parameter and its gradient as contiguous row-major slices of `shape`.
    ///
    /// `shape` is anything ndarray takes as a shape, by value: a tuple such as another ndarray
    /// version's `w.dim()`, an array `[2, 3]`, a `Vec<usize>` or a slice. Taken by value, it
    /// does not hold a borrow of the array whose slice is taken next; [`named!`](crate::named!)
    /// does all of this for an array of any ndarray version.
    ///
    /// # Errors
    ///
    /// [`Error::SliceLength`] if either slice's length is not the number of elements of
    /// `shape` (which may not overflow).
    pub fn from_slices<S: IntoDimension>(
        key: &'a str,
        shape: S,
        param: &'a mut [F],
        grad: &'a [F],
    ) -> Result<Self, Error> {
        let shape = shape.into_dimension().into_dyn();
        let wrong = |which, len| Error::SliceLength {
            key: key.to_string(),
            shape: shape.slice().to_vec(),
            which,
            len,
        };
        let size = shape
            .slice()
            .iter()
            .try_fold(1usize, |n, &d| n.checked_mul(d))
            .ok_or_else(|| wrong("parameter", param.len()))?;
        if param.len() != size {
            return Err(wrong("parameter", param.len()));
        }
        if grad.len() != size {
            return Err(wrong("gradient", grad.len()));
        }
        let (plen, glen) = (param.len(), grad.len());
        let param = ArrayViewMutD::from_shape(shape.clone(), param)
            .map_err(|_| wrong("parameter", plen))?;
        let grad =
            ArrayViewD::from_shape(shape.clone(), grad).map_err(|_| wrong("gradient", glen))?;
        Ok(Self { key, param, grad })
    }

    /// The parameter's key.
    pub fn key(&self) -> &str {
        self.key
    }

    /// The parameter.
    pub fn param(&self) -> ArrayViewD<'_, F> {
        self.param.view()
    }
}

/// A [`Named`] parameter from an array and its gradient, of any ndarray version, through their
/// slices: `named!(key, param, grad)` is
/// `Named::from_slices(key, shape, param.as_slice_mut(), grad.as_slice())` with the shape
/// copied first, so `param` may be a struct field (`net.w1`) that the slice then borrows
/// mutably. Both arrays must be contiguous and in row-major order.
///
/// # Errors
///
/// [`Error::NotContiguous`](crate::Error::NotContiguous) if either array is not contiguous
/// in row-major order (`as_slice` gives `None`: a transposed or sliced view); else those of
/// [`Named::from_slices`].
///
/// ```
/// use ndarray::Array2;
/// use ndoptim::{named, Momentum, Optimizer};
///
/// struct Layer { w: Array2<f64>, dw: Array2<f64> }
/// let mut layer = Layer { w: Array2::ones((2, 3)), dw: Array2::from_elem((2, 3), 0.5) };
/// let mut opt = Momentum::default();
/// opt.update_named(&mut [named!("w", layer.w, layer.dw)?])?;
/// assert_eq!(layer.w[[0, 0]], 1.0 - 0.01 * 0.5);
///
/// // A transposed view has no row-major slice: an error that names the key.
/// let mut wt = Array2::<f64>::ones((3, 2));
/// let mut view = wt.view_mut().reversed_axes();
/// let err = named!("wt", view, layer.dw).unwrap_err();
/// assert!(matches!(err, ndoptim::Error::NotContiguous { which: "parameter", .. }));
/// # Ok::<(), ndoptim::Error>(())
/// ```
#[macro_export]
macro_rules! named {
    ($key:expr, $param:expr, $grad:expr $(,)?) => {{
        let key: &str = $key;
        let param = &mut $param;
        let shape = $crate::ndarray::IxDyn(param.shape());
        match (param.as_slice_mut(), $grad.as_slice()) {
            (::core::option::Option::Some(p), ::core::option::Option::Some(g)) => {
                $crate::Named::from_slices(key, shape, p, g)
            }
            (p, _) => ::core::result::Result::Err($crate::Error::NotContiguous {
                key: key.to_string(),
                which: if p.is_none() { "parameter" } else { "gradient" },
            }),
        }
    }};
}

/// Runs a map update `f` on copies of `items` and writes the parameters back: the second way in
/// for wrappers whose inner optimizer takes maps ([`crate::accumulate::MultiSteps`],
/// [`crate::lookahead::Lookahead`], and wrappers in other crates). It copies every array, so it
/// is slower than their map interface.
///
/// # Errors
///
/// [`Error::DuplicateKey`] for a key given twice; else `f`'s error, the parameters then as `f`
/// left its copies (unchanged, for an optimizer's update).
pub fn through_map<F: Element>(
    items: &mut [Named<'_, F>],
    f: impl FnOnce(&mut Params<F>, &Params<F>) -> Result<(), Error>,
) -> Result<(), Error> {
    let mut params: Params<F> = Params::new();
    let mut grads: Params<F> = Params::new();
    for n in items.iter() {
        if params
            .insert(n.key.to_string(), n.param.to_owned())
            .is_some()
        {
            return Err(Error::DuplicateKey {
                key: n.key.to_string(),
            });
        }
        grads.insert(n.key.to_string(), n.grad.to_owned());
    }
    f(&mut params, &grads)?;
    for n in items.iter_mut() {
        if let Some(p) = params.get(n.key) {
            n.param.assign(p);
        }
    }
    Ok(())
}
