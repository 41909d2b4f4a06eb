//! Stochastic gradient descent, as the book writes it.

use crate::engine::{Engine, Rule, Scalar, cast};
use crate::Error;

/// Plain stochastic gradient descent, the book's `SGD`: `p ← p − lr·g`.
///
/// Reference: *Deep Learning from Scratch*, `common/optimizer.py`, class `SGD`. Default learning
/// rate 0.01. No state.
///
/// ```
/// use ndoptim::{Optimizer, Sgd};
/// # use std::collections::HashMap;
/// # use ndarray::{arr1, ArrayD};
/// let mut params: HashMap<String, ArrayD<f64>> = HashMap::from([("w".into(), arr1(&[1.0, 2.0]).into_dyn())]);
/// let grads = HashMap::from([("w".to_string(), arr1(&[10.0, -10.0]).into_dyn())]);
/// let mut sgd = Sgd::default().lr(0.1);
/// sgd.update(&mut params, &grads)?;
/// assert_eq!(params["w"], arr1(&[0.0, 3.0]).into_dyn());
/// # Ok::<(), ndoptim::Error>(())
/// ```
pub type Sgd<F = f32> = Engine<SgdRule, F>;

/// The rule of [`Sgd`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SgdRule;

impl<F: Scalar> Rule<F> for SgdRule {
    type Slots = [F; 0];
    type Scalars = F;
    const NAME: &'static str = "SGD";
    const SLOT_NAMES: &'static [&'static str] = &[];
    const DEFAULT_LR: f64 = 0.01;

    fn validate(&self) -> Result<(), Error> {
        Ok(())
    }

    fn scalars(&self, lr: f64, _step: u64) -> F {
        cast(lr)
    }

    #[inline(always)]
    fn apply(&lr: &F, p: &mut F, g: F, _: &mut [F; 0]) {
        *p = *p - lr * g;
    }
}
