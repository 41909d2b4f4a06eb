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

use std::hash::{Hash, Hasher};

use mpi::collective::SystemOperation;
use mpi::datatype::{Equivalence, PartitionMut};
use mpi::topology::{Communicator, SimpleCommunicator};
use mpi::traits::*;
use ndarray::{ArrayD, IxDyn};
use ndoptim::{Error, Named, Optimizer, Params, Scalar};

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
const DEFAULT_CHUNK: usize = 1 << 24;

/// An optimizer stepping identical parameters on every rank from the ranks' averaged gradients.
pub struct DataParallel<F, O> {
    inner: O,
    comm: SimpleCommunicator,
    reduction: Reduction,
    chunk: usize,
    non_finite_error: bool,
    /// This rank's gradients packed in sorted key order, reused from step to step.
    packed: Vec<F>,
    /// Every rank's chunk, for [`Reduction::Ordered`].
    gathered: Vec<F>,
    /// The averaged gradients, by key, reused from step to step.
    averaged: Params<F>,
    keys: Vec<String>,
}

impl<F: Scalar + Equivalence, O: Optimizer<F>> DataParallel<F, O> {
    /// `inner` trained data-parallel over a duplicate of `comm` (all of its ranks take part in
    /// every update).
    pub fn new<C: Communicator>(inner: O, comm: &C, reduction: Reduction) -> Self {
        Self {
            inner,
            comm: comm.duplicate(),
            reduction,
            chunk: DEFAULT_CHUNK,
            non_finite_error: false,
            packed: Vec::new(),
            gathered: Vec::new(),
            averaged: Params::new(),
            keys: Vec::new(),
        }
    }

    /// Sets how many elements one MPI call carries (default 2^24; at least 1): large buffers go
    /// in chunks, below MPI's `i32` count limit.
    #[must_use]
    pub fn chunk_elements(mut self, elements: usize) -> Self {
        self.chunk = elements.clamp(1, i32::MAX as usize / 2);
        self
    }

    /// Makes a NaN or infinity in any rank's gradients an error on every rank
    /// ([`Error::NonFiniteGradient`] naming the lowest failing rank's first key in sorted order),
    /// checked before anything moves. Without it, non-finite values are averaged and the inner
    /// optimizer's own policy applies (identically on every rank, since the averages are).
    #[must_use]
    pub fn non_finite_error(mut self, refuse: bool) -> Self {
        self.non_finite_error = refuse;
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
        (self.comm.rank() as usize, self.comm.size() as usize)
    }

    /// Replaces every rank's `grads` by the average over the ranks, for users who step
    /// themselves; collective (every rank calls it with its own gradients). `params` is only read,
    /// to check keys and shapes.
    ///
    /// # Errors
    ///
    /// As [`Optimizer::update`] would, the same on every rank, before anything moves; `grads`
    /// are then unchanged.
    pub fn average_gradients(
        &mut self,
        params: &Params<F>,
        grads: &mut Params<F>,
    ) -> Result<(), Error> {
        self.average(params, grads)?;
        for (key, g) in grads.iter_mut() {
            if let Some(a) = self.averaged.get(key) {
                g.assign(a);
            }
        }
        Ok(())
    }

    /// Checks every rank's gradients together, then averages them into `self.averaged`.
    fn average(&mut self, params: &Params<F>, grads: &Params<F>) -> Result<(), Error> {
        self.keys.clear();
        self.keys.extend(grads.keys().cloned());
        self.keys.sort_unstable();
        let local = local_check(params, grads, &self.keys, self.non_finite_error);
        let fingerprint = fingerprint::<F>(grads, &self.keys);
        self.agree(local, fingerprint, grads)?;
        let total: usize = self.keys.iter().map(|k| grads[k].len()).sum();
        self.packed.clear();
        self.packed.reserve(total);
        for k in &self.keys {
            self.packed.extend(grads[k].iter().copied());
        }
        self.reduce();
        // Unpack into the reused map (a key's array is replaced only if its shape changed).
        self.averaged.retain(|k, _| grads.contains_key(k));
        let mut at = 0;
        for k in &self.keys {
            let g = &grads[k];
            let n = g.len();
            let values = &self.packed[at..at + n];
            at += n;
            match self.averaged.get_mut(k) {
                Some(a) if a.shape() == g.shape() => {
                    a.iter_mut().zip(values).for_each(|(a, &v)| *a = v);
                }
                _ => {
                    let a = ArrayD::from_shape_vec(IxDyn(g.shape()), values.to_vec())
                        .expect("the packed values have the gradient's size");
                    self.averaged.insert(k.clone(), a);
                }
            }
        }
        Ok(())
    }

    /// Sums `packed` across the ranks in place, chunk by chunk, and divides by their number.
    fn reduce(&mut self) {
        let size = self.comm.size() as usize;
        let n = F::from(size).unwrap_or_else(F::one);
        let chunk = self.chunk;
        match self.reduction {
            Reduction::Sum => {
                let mut out = std::mem::take(&mut self.gathered);
                out.resize(chunk.min(self.packed.len()), F::zero());
                for part in self.packed.chunks_mut(chunk) {
                    let out = &mut out[..part.len()];
                    self.comm
                        .all_reduce_into(&part[..], &mut out[..], SystemOperation::sum());
                    part.iter_mut()
                        .zip(out.iter())
                        .for_each(|(p, &s)| *p = s / n);
                }
                self.gathered = out;
            }
            Reduction::Ordered => {
                self.gathered
                    .resize(size * chunk.min(self.packed.len()), F::zero());
                for part in self.packed.chunks_mut(chunk) {
                    let len = part.len();
                    let all = &mut self.gathered[..size * len];
                    self.comm.all_gather_into(&part[..], &mut all[..]);
                    for (i, p) in part.iter_mut().enumerate() {
                        let mut sum = all[i];
                        for r in 1..size {
                            sum = sum + all[r * len + i];
                        }
                        *p = sum / n;
                    }
                }
            }
        }
    }

    /// One all-reduce in which the ranks learn whether any found a problem and whether their
    /// fingerprints agree; then, if needed, the error every rank returns.
    fn agree(
        &self,
        local: Option<Error>,
        fingerprint: u64,
        grads: &Params<F>,
    ) -> Result<(), Error> {
        let (rank, size) = (self.comm.rank() as u64, self.comm.size() as u64);
        // The lowest failing rank wins the maximum of `size - rank`.
        let flag = if local.is_some() { size - rank } else { 0 };
        let mine = [flag, fingerprint, !fingerprint];
        let mut all = [0u64; 3];
        self.comm
            .all_reduce_into(&mine[..], &mut all[..], SystemOperation::max());
        if all[0] != 0 {
            let failing = (size - all[0]) as i32;
            let mut bytes = if failing == rank as i32 {
                encode(local.as_ref())
            } else {
                Vec::new()
            };
            let mut len = [bytes.len() as u64];
            let root = self.comm.process_at_rank(failing);
            root.broadcast_into(&mut len[..]);
            bytes.resize(len[0] as usize, 0);
            root.broadcast_into(&mut bytes[..]);
            return Err(decode(&bytes, failing as usize));
        }
        if all[1] != !all[2] {
            return Err(self.first_difference(grads));
        }
        Ok(())
    }

    /// The error for ranks whose keys, shapes or element types differ: every rank's description
    /// gathered, the first key on which one differs from rank 0's named.
    fn first_difference(&self, grads: &Params<F>) -> Error {
        let mine: Vec<u8> = describe::<F>(grads, &self.keys).into_bytes();
        let size = self.comm.size() as usize;
        let mut counts = vec![0i32; size];
        self.comm
            .all_gather_into(&(mine.len() as i32), &mut counts[..]);
        let displs: Vec<i32> = counts
            .iter()
            .scan(0, |at, &c| {
                let d = *at;
                *at += c;
                Some(d)
            })
            .collect();
        let mut all = vec![0u8; counts.iter().map(|&c| c as usize).sum()];
        {
            let mut partition = PartitionMut::new(&mut all[..], &counts[..], &displs[..]);
            self.comm
                .all_gather_varcount_into(&mine[..], &mut partition);
        }
        let lists: Vec<Vec<&str>> = (0..size)
            .map(|r| {
                let (d, c) = (displs[r] as usize, counts[r] as usize);
                std::str::from_utf8(&all[d..d + c])
                    .unwrap_or("")
                    .lines()
                    .collect()
            })
            .collect();
        for r in 1..size {
            let (a, b) = (&lists[0], &lists[r]);
            for i in 0..a.len().max(b.len()) {
                if a.get(i) != b.get(i) {
                    let line = a.get(i).or(b.get(i)).copied().unwrap_or("");
                    let key = line.split('\t').next().unwrap_or("");
                    return Error::Distributed {
                        rank: r,
                        reason: format!(
                            "ranks 0 and {r} differ first at key {key:?}: rank 0 has {}, rank {r} has {}",
                            a.get(i).map_or("nothing".into(), |l| format!("{l:?}")),
                            b.get(i).map_or("nothing".into(), |l| format!("{l:?}")),
                        ),
                    };
                }
            }
        }
        Error::Distributed {
            rank: 0,
            reason: "the ranks' fingerprints differ".into(),
        }
    }
}

impl<F, O: std::fmt::Debug> std::fmt::Debug for DataParallel<F, O> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataParallel")
            .field("inner", &self.inner)
            .field("rank", &self.comm.rank())
            .field("ranks", &self.comm.size())
            .field("reduction", &self.reduction)
            .field("chunk", &self.chunk)
            .field("non_finite_error", &self.non_finite_error)
            .finish()
    }
}

/// This rank's own problem with its gradients, in sorted key order.
fn local_check<F: Scalar>(
    params: &Params<F>,
    grads: &Params<F>,
    keys: &[String],
    non_finite: bool,
) -> Option<Error> {
    for k in keys {
        let g = &grads[k];
        let Some(p) = params.get(k) else {
            return Some(Error::UnknownKey { key: k.clone() });
        };
        if p.shape() != g.shape() {
            return Some(Error::ShapeMismatch {
                key: k.clone(),
                param_shape: p.shape().to_vec(),
                grad_shape: g.shape().to_vec(),
            });
        }
    }
    if non_finite
        && let Some(k) = keys
            .iter()
            .find(|k| grads[*k].iter().any(|x| !x.is_finite()))
    {
        return Some(Error::NonFiniteGradient { key: k.clone() });
    }
    None
}

/// Keys, shapes and element type, one line per key in sorted order.
fn describe<F>(grads: &Params<F>, keys: &[String]) -> String {
    let mut s = String::new();
    for k in keys {
        s.push_str(&format!(
            "{k}\t{:?}\t{}\n",
            grads[k].shape(),
            std::any::type_name::<F>()
        ));
    }
    s
}

/// A hash of [`describe`]'s text (the same on every rank for the same keys).
fn fingerprint<F>(grads: &Params<F>, keys: &[String]) -> u64 {
    // FNV-1a: the standard library's hasher is seeded per process.
    let mut h = Fnv(0xcbf2_9ce4_8422_2325);
    describe::<F>(grads, keys).hash(&mut h);
    h.0
}

struct Fnv(u64);

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
}

/// A rank's error as bytes: a kind, a key and two shapes.
fn encode(error: Option<&Error>) -> Vec<u8> {
    let (kind, key, a, b, text) = match error {
        Some(Error::UnknownKey { key }) => (1u8, key.as_str(), &[][..], &[][..], String::new()),
        Some(Error::ShapeMismatch {
            key,
            param_shape,
            grad_shape,
        }) => (
            2,
            key.as_str(),
            &param_shape[..],
            &grad_shape[..],
            String::new(),
        ),
        Some(Error::NonFiniteGradient { key }) => {
            (3, key.as_str(), &[][..], &[][..], String::new())
        }
        Some(other) => (4, "", &[][..], &[][..], other.to_string()),
        None => (0, "", &[][..], &[][..], String::new()),
    };
    let shape = |s: &[usize]| s.iter().map(usize::to_string).collect::<Vec<_>>().join(",");
    format!("{kind}\n{key}\n{}\n{}\n{text}", shape(a), shape(b)).into_bytes()
}

/// The error [`encode`] wrote on rank `rank`.
fn decode(bytes: &[u8], rank: usize) -> Error {
    let text = String::from_utf8_lossy(bytes);
    let mut parts = text.splitn(5, '\n');
    let mut next = || parts.next().unwrap_or("").to_string();
    let (kind, key, a, b, rest) = (next(), next(), next(), next(), next());
    let shape = |s: &str| -> Vec<usize> { s.split(',').filter_map(|d| d.parse().ok()).collect() };
    match kind.as_str() {
        "1" => Error::UnknownKey { key },
        "2" => Error::ShapeMismatch {
            key,
            param_shape: shape(&a),
            grad_shape: shape(&b),
        },
        "3" => Error::NonFiniteGradient { key },
        _ => Error::Distributed { rank, reason: rest },
    }
}

impl<F: Scalar + Equivalence, O: Optimizer<F>> Optimizer<F> for DataParallel<F, O> {
    /// Averages every rank's gradients (collectively checked first), then steps the inner
    /// optimizer on the averages. Collective: every rank calls it, with its own gradients.
    fn update(&mut self, params: &mut Params<F>, grads: &Params<F>) -> Result<(), Error> {
        self.average(params, grads)?;
        self.inner.update(params, &self.averaged)
    }

    /// Views, through a copy into maps (averaged as maps are).
    fn update_named(&mut self, items: &mut [Named<'_, F>]) -> Result<(), Error> {
        ndoptim::named::through_map(items, |p, g| self.update(p, g))
    }

    fn learning_rate(&self) -> f64 {
        self.inner.learning_rate()
    }

    fn set_learning_rate(&mut self, lr: f64) -> Result<(), Error> {
        self.inner.set_learning_rate(lr)
    }

    fn current_momentum(&self) -> Option<f64> {
        self.inner.current_momentum()
    }

    fn set_momentum(&mut self, momentum: f64) -> Result<(), Error> {
        self.inner.set_momentum(momentum)
    }

    fn reset(&mut self) {
        self.inner.reset();
    }

    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn eval(&mut self, params: &mut Params<F>) -> Result<(), Error> {
        self.inner.eval(params)
    }

    fn train(&mut self, params: &mut Params<F>) -> Result<(), Error> {
        self.inner.train(params)
    }
}
