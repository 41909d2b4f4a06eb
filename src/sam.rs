//! Sharpness-aware minimisation around any optimizer (Foret et al., 2021, "Sharpness-Aware
//! Minimization for Efficiently Improving Generalization"), exact to `optax.contrib.sam`.
//!
//! SAM takes the gradient at a point near the parameters where the loss is higher, reached by
//! ascent steps `p ← p + ρ·g/‖g‖` (optax's adversarial optimizer
//! `chain(normalize(), sgd(ρ))`, `‖g‖` over every key), and steps the inner optimizer from the
//! unperturbed parameters with it. One period is `sync_period` = K gradients: K − 1 ascent
//! steps, then the inner step.
//!
//! Two ways to drive it, as optax's two modes:
//!
//! - [`Sam::step`] (optax's `opaque_mode=True`): one call does a whole period, calling a closure
//!   for the gradients at the parameters and at each ascent point, like
//!   [`Lbfgs::step`](crate::lbfgs::Lbfgs::step). The parameters move only by the inner step.
//! - [`Optimizer::update`] (optax's default, "transparent"): one gradient per call, taken by the
//!   caller at the parameters as they are. Calls cycle through the period: the first K − 1
//!   take ascent steps (the first keeps the parameters where the period started), the last sets
//!   the parameters to the inner step from where the period started, with the gradient at the
//!   perturbed point (the inner optimizer sees the parameters where the period started).
//!
//! ```
//! use ndarray::{ArrayD, IxDyn};
//! use ndoptim::sam::Sam;
//! use ndoptim::{Params, Sgd};
//!
//! // f(x) = Σ x²: the gradient is 2x.
//! let mut params: Params<f64> = [("x".to_string(), ArrayD::from_elem(IxDyn(&[2]), 1.0))].into();
//! let mut sam = Sam::new(Sgd::default().lr(0.1), 0.05);
//! let loss = sam.step(&mut params, |p, g| {
//!     g.get_mut("x").unwrap().zip_mut_with(&p["x"], |g, &x| *g = 2.0 * x);
//!     p["x"].iter().map(|x| x * x).sum()
//! })?;
//! assert_eq!(loss, 2.0);
//! // The gradient at 1 + 0.05/√2, applied at 1.
//! let ascent = 1.0 + 0.05 / 2f64.sqrt();
//! assert!((params["x"][0] - (1.0 - 0.1 * 2.0 * ascent)).abs() < 1e-12);
//! # Ok::<(), ndoptim::Error>(())
//! ```
//!
//! Checkpoint the inner optimizer at a period's boundary ([`Sam::steps_since_sync`] 0, always so
//! after [`Sam::step`]): SAM then holds no state of its own. Mid-period, the parameters where the
//! period started are not in any checkpoint.
//!
//! optax's `reset_state` re-initialises the adversarial optimizer each period; the ascent step
//! here keeps no state, so there is nothing to reset. Other adversarial optimizers and
//! `batch_axis_name` are not offered.

use ndarray::ArrayD;

use crate::engine::cast;
use crate::tensor::{each_of_two, each_pair};
use crate::{Error, Optimizer, Params, Scalar, check};

/// SAM around the optimizer `O` (see the [module docs](self)).
#[derive(Clone, Debug)]
pub struct Sam<O, F> {
    inner: O,
    rho: f64,
    sync_period: u64,
    steps_since_sync: u64,
    /// Where the period started (transparent), or the ascent point (opaque).
    cache: Params<F>,
    /// The gradients the closure writes (opaque).
    grads: Params<F>,
    /// Each key's sum of squared gradients, in the order of the keys' names.
    squares: Vec<(String, F)>,
}

impl<O: Optimizer<F>, F: Scalar> Sam<O, F> {
    /// SAM around `inner` with ascent radius ρ (`rho`, `>= 0`; the paper uses 0.05) and
    /// optax's `sync_period` 2: one ascent step, then the inner step.
    pub fn new(inner: O, rho: f64) -> Self {
        Self {
            inner,
            rho,
            sync_period: 2,
            steps_since_sync: 0,
            cache: Params::new(),
            grads: Params::new(),
            squares: Vec::new(),
        }
    }

    /// Sets the number of gradients per period, `>= 1` (default 2); [`Optimizer::update`]
    /// needs at least 2 (optax's transparent mode with 1 never leaves where it started).
    #[must_use]
    pub fn sync_period(self, sync_period: u64) -> Self {
        Self {
            sync_period,
            ..self
        }
    }

    /// The inner optimizer.
    pub fn inner(&self) -> &O {
        &self.inner
    }

    /// The inner optimizer, to change or checkpoint it.
    pub fn inner_mut(&mut self) -> &mut O {
        &mut self.inner
    }

    /// Calls of [`Optimizer::update`] since the last inner step.
    pub fn steps_since_sync(&self) -> u64 {
        self.steps_since_sync
    }

    fn validate(&self) -> Result<(), Error> {
        check::non_negative("rho value", self.rho)?;
        if self.sync_period == 0 {
            return check::fail("sync_period", 0.0, "a whole number >= 1");
        }
        Ok(())
    }

    /// One whole period (optax's opaque mode): `closure(params, grads)` returns the loss at
    /// `params` and writes its gradients into `grads` (the keys and shapes of the parameters,
    /// zeroed before each call), first at the parameters, then at each of the K − 1 ascent
    /// points; the inner optimizer then steps the parameters with the last gradient. Returns the
    /// loss at the parameters the call started from.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidHyperparameter`]; [`Error::IncompatibleOptions`] in the middle of a
    /// period of [`Optimizer::update`]; [`Error::ShapeMismatch`] or [`Error::UnknownKey`] if the
    /// closure leaves a gradient of another shape or adds a key; the inner optimizer's. The
    /// parameters and the inner state are then as they were.
    pub fn step<C>(&mut self, params: &mut Params<F>, mut closure: C) -> Result<f64, Error>
    where
        C: FnMut(&Params<F>, &mut Params<F>) -> f64,
    {
        self.validate()?;
        if self.steps_since_sync != 0 {
            return Err(Error::IncompatibleOptions {
                reason: "a whole SAM step in the middle of a period of update calls",
            });
        }
        let mut grads = std::mem::take(&mut self.grads);
        grads.retain(|key, g| params.get(key).is_some_and(|p| p.shape() == g.shape()));
        for (key, p) in params.iter() {
            match grads.get_mut(key) {
                Some(g) => g.fill(F::zero()),
                None => {
                    grads.insert(key.clone(), ArrayD::zeros(p.shape()));
                }
            }
        }
        let loss = closure(params, &mut grads);
        let mut result = Ok(());
        let mut point = std::mem::take(&mut self.cache);
        point.retain(|key, _| grads.contains_key(key));
        copy_into(&mut point, params, &grads);
        for _ in 1..self.sync_period {
            result = check_grads(params, &grads);
            if result.is_err() {
                break;
            }
            self.ascend(&mut point, &grads);
            grads.values_mut().for_each(|g| g.fill(F::zero()));
            closure(&point, &mut grads);
        }
        let result = result
            .and_then(|()| check_grads(params, &grads))
            .and_then(|()| self.inner.update(params, &grads));
        (self.cache, self.grads) = (point, grads);
        result.map(|()| loss)
    }

    /// `point ← point + ρ·g/‖g‖`, `‖g‖` over every key of `grads` (summed in the order of the
    /// keys' names); no step where the norm is 0 (optax's would divide by it).
    fn ascend(&mut self, point: &mut Params<F>, grads: &Params<F>) {
        for (_, s) in &mut self.squares {
            *s = F::zero();
        }
        for (key, g) in grads {
            let mut sum = F::zero();
            each_of_two(g, g, |_, g, _| sum = sum + g * g);
            match self.squares.binary_search_by(|(k, _)| k.as_str().cmp(key)) {
                Ok(i) => self.squares[i].1 = sum,
                Err(i) => self.squares.insert(i, (key.clone(), sum)),
            }
        }
        let norm = self
            .squares
            .iter()
            .fold(F::zero(), |a, &(_, s)| a + s)
            .sqrt();
        if norm == F::zero() {
            return;
        }
        let rho: F = cast(self.rho);
        for (key, g) in grads {
            if let Some(p) = point.get_mut(key) {
                each_pair(p, g, |_, p, g| *p = *p + rho * (g / norm));
            }
        }
    }
}

/// `into[key] ← from[key]` for every key of `keys`, reusing the buffers `into` has.
fn copy_into<F: Scalar>(into: &mut Params<F>, from: &Params<F>, keys: &Params<F>) {
    for (key, p) in from.iter().filter(|(key, _)| keys.contains_key(*key)) {
        match into.get_mut(key) {
            Some(c) if c.shape() == p.shape() => each_pair(c, p, |_, c, p| *c = p),
            _ => {
                into.insert(key.clone(), p.to_owned());
            }
        }
    }
}

/// Every key of `grads` is a key of `params`, with its shape.
fn check_grads<F: Scalar>(params: &Params<F>, grads: &Params<F>) -> Result<(), Error> {
    for (key, g) in grads {
        let p = params
            .get(key)
            .ok_or_else(|| Error::UnknownKey { key: key.clone() })?;
        if p.shape() != g.shape() {
            return Err(Error::ShapeMismatch {
                key: key.clone(),
                param_shape: p.shape().to_vec(),
                grad_shape: g.shape().to_vec(),
            });
        }
    }
    Ok(())
}

impl<O: Optimizer<F>, F: Scalar> Optimizer<F> for Sam<O, F> {
    /// One call of optax's transparent mode: an ascent step, or, on the last call of a period,
    /// the inner step from where the period started.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidHyperparameter`]; [`Error::IncompatibleOptions`] for a `sync_period` of
    /// 1; [`Error::UnknownKey`], [`Error::ShapeMismatch`]; [`Error::KeySetChanged`] if the last
    /// call of a period has gradients for keys its first call had none for; the inner
    /// optimizer's. Nothing has changed then.
    fn update(&mut self, params: &mut Params<F>, grads: &Params<F>) -> Result<(), Error> {
        self.validate()?;
        if self.sync_period < 2 {
            return Err(Error::IncompatibleOptions {
                reason: "SAM's update needs a sync_period of at least 2",
            });
        }
        check_grads(params, grads)?;
        let phase = self.steps_since_sync;
        if phase + 1 == self.sync_period {
            if let Some(key) = grads.keys().find(|k| !self.cache.contains_key(*k)) {
                return Err(Error::KeySetChanged { key: key.clone() });
            }
            // The inner optimizer steps the parameters where the period started.
            self.inner.update(&mut self.cache, grads)?;
            copy_into(params, &self.cache, grads);
        } else {
            if phase == 0 {
                self.cache.retain(|key, _| grads.contains_key(key));
                copy_into(&mut self.cache, params, grads);
            }
            self.ascend(params, grads);
        }
        self.steps_since_sync = (phase + 1) % self.sync_period;
        Ok(())
    }

    forward_optimizer!(F, inner: wrapper);

    /// Drops the period under way and the inner optimizer's state.
    fn reset(&mut self) {
        self.steps_since_sync = 0;
        self.cache.clear();
        self.inner.reset();
    }

    fn name(&self) -> &'static str {
        "sam"
    }
}
