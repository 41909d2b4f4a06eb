//! Data-parallel training of [`ndoptim`] optimizers on MPI, through the `mpi` crate (rsmpi).
//!
//! Every process (rank) computes the gradients of its share of a batch; [`DataParallel`] averages
//! them across the ranks and steps its inner optimizer on every rank, so that the parameters stay
//! identical everywhere. The library never initialises MPI: it borrows the application's
//! communicator and duplicates it, so that its messages never meet the application's.
//!
//! ```no_run
//! use mpi::traits::*;
//! use ndoptim::{Adam, Optimizer, Params};
//! use ndoptim_mpi::{DataParallel, Reduction};
//!
//! let universe = mpi::initialize().expect("MPI initialises once");
//! let world = universe.world();
//! let mut opt = DataParallel::new(Adam::<f32>::pytorch(), &world, Reduction::Ordered);
//! # let (mut params, grads): (Params<f32>, Params<f32>) = (Params::new(), Params::new());
//! // each rank: its own gradients of its own share of the batch
//! opt.update(&mut params, &grads)?;
//! # Ok::<(), ndoptim::Error>(())
//! ```
//!
//! [`ZeroSharded`] is ZeRO stage 1: the parameters are cut into one block per rank, each rank
//! receives the average of its block's gradients, keeps and steps its block's state only, and
//! shares the updated block; its checkpoint consolidates on one rank into the checkpoint one
//! process would hold.
//!
//! # Reductions
//!
//! - [`Reduction::Sum`]: MPI's own all-reduce, then a division by the number of ranks. With two
//!   ranks it is exact and identical on every rank (`a + b` is `b + a`) and equal to one process
//!   summing the two gradients; with more, MPI chooses the order of the additions, and the result
//!   may differ from one process's in the last bits (it is the same on every rank with Open MPI's
//!   deterministic algorithms, which the standard does not promise).
//! - [`Reduction::Ordered`]: every rank gathers every rank's gradients and sums them in rank order,
//!   `((g₀ + g₁) + g₂) + …`, then divides: bit-identical to one process computing that average,
//!   for any number of ranks, at the cost of receiving `ranks ×` the data (in chunks, so memory
//!   stays at `ranks ×` one chunk).
//!
//! # Errors on every rank, never a hang
//!
//! Before any gradient moves, the ranks agree in one small all-reduce: each checks its own
//! gradients (a key the parameters lack, a shape that differs from the parameter's, and with
//! [`DataParallel::non_finite_error`] a NaN or infinity) and fingerprints its keys, shapes and
//! element type. If any rank found a problem, every rank returns the same error (the lowest
//! failing rank's, sent to all) and nothing has changed anywhere; if the fingerprints differ,
//! every rank returns [`ndoptim::Error::Distributed`] naming the first key on which two ranks
//! differ.

mod average;
mod data_parallel;
mod shards;
mod zero;

pub use data_parallel::DataParallel;
pub use zero::ZeroSharded;

/// How gradients are summed across ranks (see the [crate] docs for when each is exact).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Reduction {
    /// MPI's all-reduce with `MPI_SUM`: exact and identical on every rank with two ranks.
    Sum,
    /// Gathered and summed in rank order: bit-identical to one process for any number of ranks.
    #[default]
    Ordered,
}

/// The largest count one MPI call takes is `i32::MAX`; chunks stay well below it, and bound the
/// memory [`Reduction::Ordered`] gathers into.
pub(crate) const DEFAULT_CHUNK: usize = 1 << 24;
