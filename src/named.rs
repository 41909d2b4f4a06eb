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

use ndarray::{ArrayView, ArrayViewD, ArrayViewMut, ArrayViewMutD, Dimension, IxDyn};

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
/// opt.update_named(&mut [Named::from_slices("flat", &[2, 3], &mut data, &grad)?])?;
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
    /// # Errors
    ///
    /// [`Error::SliceLength`] if either slice's length is not the number of elements of
    /// `shape` (which may not overflow).
    pub fn from_slices(
        key: &'a str,
        shape: &[usize],
        param: &'a mut [F],
        grad: &'a [F],
    ) -> Result<Self, Error> {
        let wrong = |which, len| Error::SliceLength {
            key: key.to_string(),
            shape: shape.to_vec(),
            which,
            len,
        };
        let size = shape
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
        let param =
            ArrayViewMutD::from_shape(IxDyn(shape), param).map_err(|_| wrong("parameter", plen))?;
        let grad =
            ArrayViewD::from_shape(IxDyn(shape), grad).map_err(|_| wrong("gradient", glen))?;
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
