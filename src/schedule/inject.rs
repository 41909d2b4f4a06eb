//! Hyperparameters on schedules: optax's `inject_hyperparams`.

use std::fmt;

use super::Schedule;
use crate::{Element, Error, Hyperparameter, Named, Optimizer, Params};

/// An optimizer whose hyperparameters follow [`Schedule`]s, as optax's `inject_hyperparams`
/// makes them: before each update, every scheduled hyperparameter is set to its schedule's value
/// at the update's count (0 for the first), then the optimizer steps and the count goes up.
///
/// Any hyperparameter the optimizer exposes can follow one ([`Optimizer::hyperparameter`]): the
/// learning rate, the momentum or first beta, the second beta, the weight decay.
///
/// ```
/// use ndoptim::schedule::{self, Inject};
/// use ndoptim::{Adam, Hyperparameter, Optimizer, Params};
/// use ndarray::ArrayD;
/// let mut adam = Inject::new(Adam::<f64>::default())
///     .schedule(Hyperparameter::LearningRate, schedule::linear(0.0, 0.1, 10)?)?
///     .schedule(Hyperparameter::Momentum, schedule::linear(0.95, 0.85, 10)?)?;
/// let mut params = Params::from([("w".to_string(), ArrayD::zeros(vec![3]))]);
/// let grads = Params::from([("w".to_string(), ArrayD::ones(vec![3]))]);
/// for _ in 0..5 {
///     adam.update(&mut params, &grads)?;
/// }
/// // The fifth update ran at count 4.
/// assert!((adam.learning_rate() - 0.04).abs() < 1e-15);
/// assert_eq!(adam.count(), 5);
/// # Ok::<(), ndoptim::Error>(())
/// ```
pub struct Inject<O> {
    inner: O,
    schedules: Vec<(Hyperparameter, Box<dyn Schedule>)>,
    count: u64,
}

impl<O: fmt::Debug> fmt::Debug for Inject<O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Inject")
            .field("inner", &self.inner)
            .field("schedules", &self.schedules)
            .field("count", &self.count)
            .finish()
    }
}

impl<O> Inject<O> {
    /// `inner`, with no hyperparameter on a schedule yet.
    pub fn new(inner: O) -> Self {
        Self {
            inner,
            schedules: Vec::new(),
            count: 0,
        }
    }

    /// The number of updates taken: the step the schedules are evaluated at next.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Resumes the schedules at `count` (from a checkpoint, say).
    pub fn set_count(&mut self, count: u64) {
        self.count = count;
    }

    /// The optimizer inside.
    pub fn inner(&self) -> &O {
        &self.inner
    }

    /// The optimizer inside, to change what no schedule sets.
    pub fn inner_mut(&mut self) -> &mut O {
        &mut self.inner
    }

    /// The optimizer inside, with its hyperparameters at their last values.
    pub fn into_inner(self) -> O {
        self.inner
    }
}

impl<O> Inject<O> {
    /// Puts hyperparameter `h` on `schedule` (replacing a schedule it had), and sets it to the
    /// value at the current count.
    ///
    /// # Errors
    ///
    /// [`Error::NoHyperparameter`] if the optimizer has no `h`; the errors of
    /// [`Optimizer::set_hyperparameter`] if it refuses the schedule's current value.
    pub fn schedule<F: Element>(
        mut self,
        h: Hyperparameter,
        schedule: impl Schedule + 'static,
    ) -> Result<Self, Error>
    where
        O: Optimizer<F>,
    {
        self.inner
            .set_hyperparameter(h, schedule.value(self.count))?;
        self.schedules.retain(|(other, _)| *other != h);
        self.schedules.push((h, Box::new(schedule)));
        Ok(self)
    }

    /// Sets every scheduled hyperparameter for the update at the current count, then runs
    /// `update`; on an error anywhere, every hyperparameter is back at its old value and the
    /// count is unchanged.
    fn stepped<F: Element>(
        &mut self,
        update: impl FnOnce(&mut O) -> Result<(), Error>,
    ) -> Result<(), Error>
    where
        O: Optimizer<F>,
    {
        let mut old = Vec::with_capacity(self.schedules.len());
        let mut result = Ok(());
        for (h, schedule) in &self.schedules {
            // Present: `schedule` checked it.
            let before = self.inner.hyperparameter(*h).unwrap_or_default();
            result = self
                .inner
                .set_hyperparameter(*h, schedule.value(self.count));
            if result.is_err() {
                break;
            }
            old.push((*h, before));
        }
        let result = result.and_then(|()| update(&mut self.inner));
        if result.is_err() {
            for (h, before) in old.into_iter().rev() {
                // A value the optimizer held: accepted again.
                let _ = self.inner.set_hyperparameter(h, before);
            }
            return result;
        }
        self.count += 1;
        Ok(())
    }
}

impl<F: Element, O: Optimizer<F>> Optimizer<F> for Inject<O> {
    fn update(&mut self, params: &mut Params<F>, grads: &Params<F>) -> Result<(), Error> {
        self.stepped(|o| o.update(params, grads))
    }

    fn update_named(&mut self, params: &mut [Named<'_, F>]) -> Result<(), Error> {
        self.stepped(|o| o.update_named(params))
    }

    /// Drops the optimizer's state and starts the schedules again at count 0.
    fn reset(&mut self) {
        self.inner.reset();
        self.count = 0;
    }

    crate::forward_optimizer!(F, inner: learning_rate, hyperparameters, modes, name, scope);
}
