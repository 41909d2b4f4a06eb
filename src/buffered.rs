//! A base optimizer stepping buffers of a wrapper's, for wrappers that need the base's step beside
//! the caller's parameters.

use std::ops::{Deref, DerefMut};

use ndarray::ArrayD;

use crate::engine::{Engine, Rule};
use crate::{Error, Optimizer, Params, Scalar};

/// A base optimizer that steps a buffer per key, kept between steps, instead of the caller's
/// parameters: Schedule-Free's wrapper steps its `z` there, Mechanic reads the base's update
/// from it. An error of the base leaves the parameters as they were.
#[derive(Clone, Debug)]
pub(crate) struct Buffered<O, F> {
    base: O,
    spare: Params<F>,
    stepping: Params<F>,
}

/// The base optimizer, for the wrapper's forwarding.
impl<O, F> Deref for Buffered<O, F> {
    type Target = O;

    fn deref(&self) -> &O {
        &self.base
    }
}

impl<O, F> DerefMut for Buffered<O, F> {
    fn deref_mut(&mut self) -> &mut O {
        &mut self.base
    }
}

impl<O: Optimizer<F>, F: Scalar> Buffered<O, F> {
    pub(crate) fn new(base: O) -> Self {
        Self {
            base,
            spare: Params::new(),
            stepping: Params::new(),
        }
    }

    /// Fills a buffer for each key of `grads` with `fill(key, buffer, parameter)`, then steps
    /// the base on the buffers, for [`Buffered::finish`]. Keys of `grads` must be keys of
    /// `params` (checked by the caller).
    pub(crate) fn step(
        &mut self,
        params: &Params<F>,
        grads: &Params<F>,
        mut fill: impl FnMut(&str, &mut ArrayD<F>, &ArrayD<F>),
    ) -> Result<(), Error> {
        for (key, p) in params.iter().filter(|(key, _)| grads.contains_key(*key)) {
            let (key, mut buffer) = match self.spare.remove_entry(key) {
                Some((key, buffer)) if buffer.shape() == p.shape() => (key, buffer),
                _ => (key.clone(), ArrayD::zeros(p.shape())),
            };
            fill(&key, &mut buffer, p);
            self.stepping.insert(key, buffer);
        }
        if let Err(e) = self.base.update(&mut self.stepping, grads) {
            self.put_back();
            return Err(e);
        }
        Ok(())
    }

    /// Steps the wrapper's engine `state` over `params` with the buffers the base stepped as its
    /// gradients, then keeps the buffers for the next step.
    pub(crate) fn finish<R: Rule<F>>(
        &mut self,
        state: &mut Engine<R, F>,
        params: &mut Params<F>,
    ) -> Result<(), Error> {
        let done = state.update(params, &self.stepping);
        self.put_back();
        done
    }

    fn put_back(&mut self) {
        self.spare.extend(self.stepping.drain());
    }
}
