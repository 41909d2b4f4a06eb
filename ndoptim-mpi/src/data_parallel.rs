//! [`DataParallel`]: every rank steps the whole model on the averaged gradients.

use mpi::datatype::Equivalence;
use mpi::topology::Communicator;
use ndoptim::{Error, Optimizer, Params, Scalar};

use crate::Reduction;
use crate::average::Averager;

/// An optimizer stepping identical parameters on every rank from the ranks' averaged gradients.
pub struct DataParallel<F, O> {
    inner: O,
    avg: Averager<F>,
}

impl<F: Scalar + Equivalence, O: Optimizer<F>> DataParallel<F, O> {
    /// `inner` trained data-parallel over a duplicate of `comm` (all of its ranks take part in
    /// every update).
    pub fn new<C: Communicator>(inner: O, comm: &C, reduction: Reduction) -> Self {
        Self {
            inner,
            avg: Averager::new(comm, reduction),
        }
    }

    /// Sets how many elements one MPI call carries (default 2^24; at least 1): large buffers go
    /// in chunks, below MPI's `i32` count limit.
    #[must_use]
    pub fn chunk_elements(mut self, elements: usize) -> Self {
        self.avg.chunk = elements.clamp(1, i32::MAX as usize / 2);
        self
    }

    /// Makes a NaN or infinity in any rank's gradients an error on every rank
    /// ([`Error::NonFiniteGradient`] naming the lowest failing rank's first key in sorted order),
    /// checked before anything moves. Without it, non-finite values are averaged and the inner
    /// optimizer's own policy applies (identically on every rank, since the averages are).
    #[must_use]
    pub fn non_finite_error(mut self, refuse: bool) -> Self {
        self.avg.non_finite_error = refuse;
        self
    }

    /// The wrapped optimizer.
    pub fn inner(&self) -> &O {
        &self.inner
    }

    /// The wrapped optimizer, mutably.
    pub fn inner_mut(&mut self) -> &mut O {
        &mut self.inner
    }

    /// This rank and the number of ranks.
    pub fn rank_and_size(&self) -> (usize, usize) {
        (self.avg.rank(), self.avg.size())
    }

    /// The average over the ranks of every rank's `grads`, for users who step themselves;
    /// collective (every rank calls it with its own gradients). `params` is only read, to check
    /// keys and shapes. The map is the wrapper's, reused from call to call: nothing is copied.
    ///
    /// # Errors
    ///
    /// As [`Optimizer::update`] would, the same on every rank, before anything moves.
    pub fn average_gradients(
        &mut self,
        params: &Params<F>,
        grads: &Params<F>,
    ) -> Result<&Params<F>, Error> {
        self.avg.average(params, grads)?;
        Ok(&self.avg.averaged)
    }
}

impl<F, O: std::fmt::Debug> std::fmt::Debug for DataParallel<F, O> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataParallel")
            .field("inner", &self.inner)
            .field("reduction", &self.avg.reduction)
            .field("chunk", &self.avg.chunk)
            .field("non_finite_error", &self.avg.non_finite_error)
            .finish_non_exhaustive()
    }
}

impl<F: Scalar + Equivalence, O: Optimizer<F>> Optimizer<F> for DataParallel<F, O> {
    /// Averages every rank's gradients (collectively checked first), then steps the inner
    /// optimizer on the averages. Collective: every rank calls it, with its own gradients.
    fn update(&mut self, params: &mut Params<F>, grads: &Params<F>) -> Result<(), Error> {
        self.avg.average(params, grads)?;
        self.inner.update(params, &self.avg.averaged)
    }

    ndoptim::forward_optimizer!(
        F,
        inner: learning_rate,
        hyperparameters,
        modes,
        reset,
        name,
        scope,
        update_named_through_map,
    );
}
