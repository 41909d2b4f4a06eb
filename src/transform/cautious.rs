//! Cautious masking: an update kept only where it descends.

use super::{Context, Transform};
use crate::engine::cast;
use crate::{Error, Hyperparameter, Scalar, check};

/// Cautious masking (Liang et al., 2024, "Cautious Optimizers: Improving Training with One Line
/// of Code", C-Optim) around any elementwise direction transform `T`: the direction `d = T(u)`
/// is kept only where its sign agrees with the update `u` it was computed from (the gradient, as
/// the first piece of a chain), and rescaled per key so that the kept part carries the whole
/// update's scale,
///
/// ```text
/// d ← T(u);   mask = [d·u > 0];   u ← d · mask · s
/// Mean:  s = 1 / max(mean(mask), floor)      (C-Optim's AdamW; timm's; floor 1e-3)
/// Count: s = n / (Σ mask + 1)                (C-Optim's Lion, the paper's algorithm)
/// ```
///
/// over the `n` elements of the key. `T`'s state advances on every element, masked or not. A
/// transform that [reduces](Transform::REDUCES): the engine counts the mask in a pass of its own
/// first. `T` must be elementwise (neither reducing nor mapping the tensor), which the compiler
/// checks; it returns a direction, before the learning rate, as [`ScaleByAdam`](super::ScaleByAdam),
/// [`ScaleByLion`](super::ScaleByLion) and most of this module's transforms do.
///
/// C-Optim's cautious AdamW and Lion are these chains (exact to its `c_adamw.AdamW`, run per
/// tensor, and `c_lion.Lion`):
///
/// ```
/// use ndoptim::transform::{self, AddDecayedWeights, Cautious, Debias, Rescale, ScaleByAdam};
/// use ndoptim::transform::{ScaleByLearningRate, ScaleByLion};
/// use ndoptim::{Optimizer, chain};
///
/// // c_adamw.AdamW(lr=1e-3, betas=(0.9, 0.999), eps=1e-6, weight_decay=0.01, correct_bias=True)
/// let adamw = transform::optimizer::<_, f32>(chain!(
///     Cautious::new(ScaleByAdam::default().eps(1e-6).debias(Debias::StepSize)),
///     AddDecayedWeights::new(0.01),
///     ScaleByLearningRate,
/// ))
/// .lr(1e-3);
/// // c_lion.Lion(lr=1e-4, betas=(0.95, 0.98), weight_decay=0)
/// let lion = transform::optimizer::<_, f32>(chain!(
///     Cautious::new(ScaleByLion::default().betas([0.95, 0.98])).rescale(Rescale::Count),
///     ScaleByLearningRate,
/// ))
/// .lr(1e-4);
/// assert_eq!(adamw.slot_names(), ["mu", "nu"]);
/// assert_eq!(lion.slot_names(), ["mu"]);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Cautious<T> {
    inner: T,
    rescale: Rescale,
}

/// How [`Cautious`] rescales the elements its mask keeps.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Rescale {
    /// `1 / max(mean(mask), floor)`: C-Optim's AdamW and timm's cautious optimizers, with
    /// floor 1e-3 ([`Rescale::default`]). `floor` must be positive.
    Mean {
        /// The smallest mean divided by.
        floor: f64,
    },
    /// `n / (Σ mask + 1)`: the paper's algorithm and C-Optim's Lion.
    Count,
}

/// [`Rescale::Mean`] with floor 1e-3.
impl Default for Rescale {
    fn default() -> Self {
        Self::Mean { floor: 1e-3 }
    }
}

impl<T> Cautious<T> {
    /// Cautious masking of `inner`'s direction, rescaled by [`Rescale::default`].
    pub fn new(inner: T) -> Self {
        Self {
            inner,
            rescale: Rescale::default(),
        }
    }

    /// Sets how the kept elements are rescaled (default [`Rescale::Mean`] with floor 1e-3).
    #[must_use]
    pub fn rescale(self, rescale: Rescale) -> Self {
        Self { rescale, ..self }
    }

    /// The transform whose direction is masked.
    pub fn inner(&self) -> &T {
        &self.inner
    }
}

/// The scalars of [`Cautious`]: the inner transform's, and the key's rescaling once the mask is
/// counted.
#[derive(Clone, Copy, Debug)]
pub struct CautiousScalars<S, F> {
    inner: S,
    rescale: Rescale,
    len: f64,
    scale: F,
}

impl<F: Scalar, T: Transform<F>> Transform<F> for Cautious<T> {
    type State = T::State;
    type Scalars = CautiousScalars<T::Scalars, F>;

    fn slot_names(&self) -> Vec<&'static str> {
        self.inner.slot_names()
    }

    fn validate(&self) -> Result<(), Error> {
        self.inner.validate()?;
        match self.rescale {
            Rescale::Mean { floor } => check::positive("floor", floor),
            Rescale::Count => Ok(()),
        }
    }

    fn hyperparameter(&self, h: Hyperparameter) -> Option<f64> {
        self.inner.hyperparameter(h)
    }

    fn set_hyperparameter(&mut self, h: Hyperparameter, value: f64) {
        self.inner.set_hyperparameter(h, value);
    }

    fn scalars(&self, ctx: &Context<'_>) -> Self::Scalars {
        const {
            assert!(
                !T::REDUCES && !T::TENSOR,
                "cautious masking wraps an elementwise transform"
            )
        };
        CautiousScalars {
            inner: self.inner.scalars(ctx),
            rescale: self.rescale,
            len: ctx.len as f64,
            scale: F::one(),
        }
    }

    #[inline(always)]
    fn apply(s: &Self::Scalars, p: F, u: F, state: &mut T::State) -> F {
        let d = T::apply(&s.inner, p, u, state);
        if d * u > F::zero() {
            d * s.scale
        } else {
            F::zero()
        }
    }

    const REDUCES: bool = true;

    /// The mask: 1 where the direction agrees with `u`, else 0.
    #[inline(always)]
    fn before(s: &Self::Scalars, p: F, u: F, state: &mut T::State) -> F {
        let d = T::apply(&s.inner, p, u, state);
        if d * u > F::zero() {
            F::one()
        } else {
            F::zero()
        }
    }

    #[inline(always)]
    fn reduce(_: F, mask: F) -> [F; 2] {
        [mask, F::zero()]
    }

    fn finish(s: &mut Self::Scalars, [kept, _]: [F; 2]) {
        let kept = kept.to_f64().unwrap_or(0.0);
        s.scale = cast(match s.rescale {
            Rescale::Mean { floor } => 1.0 / (kept / s.len).max(floor),
            Rescale::Count => s.len / (kept + 1.0),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Optimizer;
    use crate::transform::{ScaleByLearningRate, Trace, optimizer};
    use ndarray::{ArrayD, IxDyn};
    use std::collections::HashMap;

    /// A momentum that still points up where the gradient turned down: those elements stay, the
    /// others move by the rescaled step.
    #[test]
    fn masks_disagreeing_elements_and_rescales_the_rest() {
        for (rescale, scale) in [(Rescale::default(), 2.0), (Rescale::Count, 4.0 / 3.0)] {
            let cautious = Cautious::new(Trace::new(0.9)).rescale(rescale);
            let mut opt = optimizer::<_, f64>(crate::chain!(cautious, ScaleByLearningRate)).lr(0.1);
            let key = |v: Vec<f64>| {
                let array = ArrayD::from_shape_vec(IxDyn(&[4]), v).expect("four elements");
                HashMap::from([("w".to_string(), array)])
            };
            let mut params = key(vec![0.0; 4]);
            opt.update(&mut params, &key(vec![1.0; 4])).unwrap();
            let after_first = params["w"].clone();
            opt.update(&mut params, &key(vec![-0.1, -0.1, 1.0, 1.0]))
                .unwrap();
            let moved = &params["w"] - &after_first;
            // The trace is 0.8 against a gradient of −0.1, and 1.9 along one of 1.
            assert_eq!(moved.as_slice().unwrap()[..2], [0.0, 0.0]);
            for &m in &moved.as_slice().unwrap()[2..] {
                assert!((m + 0.1 * 1.9 * scale).abs() < 1e-12, "{m}");
            }
        }
    }
}
