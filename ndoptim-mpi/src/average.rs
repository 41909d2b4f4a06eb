//! What both wrappers share: the collective checks, the fingerprint, and the average of the
//! ranks' gradients in sorted key order, in chunks.

use std::hash::{Hash, Hasher};

use mpi::collective::{SystemOperation, UnsafeUserOperation};
use mpi::datatype::{Equivalence, PartitionMut};
use mpi::topology::{Communicator, SimpleCommunicator};
use mpi::traits::*;
use ndarray::{ArrayD, IxDyn};
use ndoptim::{Error, Params, Scalar};

use crate::shards::DIRECT;
use crate::{DEFAULT_CHUNK, Reduction};

/// A duplicated communicator and the buffers of the gradients' average, reused from step to step.
pub(crate) struct Averager<F> {
    pub(crate) comm: SimpleCommunicator,
    pub(crate) reduction: Reduction,
    pub(crate) chunk: usize,
    pub(crate) non_finite_error: bool,
    /// This rank's small gradients packed in sorted key order, and their average.
    packed: Vec<F>,
    out: Vec<F>,
    /// Every rank's chunk, for [`Reduction::Ordered`].
    gathered: Vec<F>,
    /// The averaged gradients, by key.
    pub(crate) averaged: Params<F>,
    /// The gradients' keys, sorted.
    pub(crate) keys: Vec<String>,
    /// The averaging operation of two ranks, made on first use.
    mean_of_two: Option<UnsafeUserOperation>,
}

impl<F: Scalar + Equivalence> Averager<F> {
    pub(crate) fn new<C: Communicator>(comm: &C, reduction: Reduction) -> Self {
        Self {
            comm: comm.duplicate(),
            reduction,
            chunk: DEFAULT_CHUNK,
            non_finite_error: false,
            packed: Vec::new(),
            out: Vec::new(),
            gathered: Vec::new(),
            averaged: Params::new(),
            keys: Vec::new(),
            mean_of_two: None,
        }
    }

    pub(crate) fn rank(&self) -> usize {
        self.comm.rank() as usize
    }

    pub(crate) fn size(&self) -> usize {
        self.comm.size() as usize
    }

    /// Whether every rank's `ok` holds; collective.
    pub(crate) fn all(&self, ok: bool) -> bool {
        let mine = [u64::from(!ok)];
        let mut any = [0u64];
        self.comm
            .all_reduce_into(&mine[..], &mut any[..], SystemOperation::max());
        any[0] == 0
    }

    /// Checks every rank's gradients together (collectively: the same result on every rank),
    /// leaving their keys sorted in `self.keys`.
    pub(crate) fn check(&mut self, params: &Params<F>, grads: &Params<F>) -> Result<(), Error> {
        self.keys.clear();
        self.keys.extend(grads.keys().cloned());
        self.keys.sort_unstable();
        let local = local_check(params, grads, &self.keys, self.non_finite_error);
        let fingerprint = fingerprint::<F>(grads, &self.keys);
        self.agree(local, fingerprint, grads)
    }

    /// Checks every rank's gradients together, then averages them into `self.averaged`.
    pub(crate) fn average(&mut self, params: &Params<F>, grads: &Params<F>) -> Result<(), Error> {
        self.check(params, grads)?;
        // Every averaged array exists with its gradient's shape (reused from step to step).
        self.averaged.retain(|k, _| grads.contains_key(k));
        for k in &self.keys {
            let shape = grads[k].shape();
            if self
                .averaged
                .get(k)
                .is_none_or(|a| a.shape() != shape || !a.is_standard_layout())
            {
                self.averaged.insert(k.clone(), ArrayD::zeros(IxDyn(shape)));
            }
        }
        // Small keys travel packed together, in sorted order; large ones straight from the
        // gradient into the average, with no copy. The choice depends on sizes only, which the
        // fingerprint made equal on every rank, so every rank makes the same MPI calls.
        self.packed.clear();
        for k in self.keys.iter().filter(|k| grads[*k].len() < DIRECT) {
            self.packed.extend(grads[k].iter().copied());
        }
        let mut packed = std::mem::take(&mut self.packed);
        let mut out = std::mem::take(&mut self.out);
        out.resize(packed.len(), F::zero());
        self.reduce(&packed, &mut out);
        let mut at = 0;
        for k in self.keys.iter().filter(|k| grads[*k].len() < DIRECT) {
            let a = self.averaged.get_mut(k).expect("made above");
            let n = a.len();
            a.iter_mut()
                .zip(&out[at..at + n])
                .for_each(|(a, &v)| *a = v);
            at += n;
        }
        let keys = std::mem::take(&mut self.keys);
        for k in keys.iter().filter(|k| grads[*k].len() >= DIRECT) {
            let g = &grads[k];
            let source = match g.as_slice() {
                Some(s) => s,
                None => {
                    packed.clear();
                    packed.extend(g.iter().copied());
                    &packed[..]
                }
            };
            let mut a = self.averaged.remove(k).expect("made above");
            self.reduce(source, a.as_slice_mut().expect("made in standard layout"));
            self.averaged.insert(k.clone(), a);
        }
        self.keys = keys;
        self.packed = packed;
        self.out = out;
        Ok(())
    }

    /// `s / ranks`, as one process divides a sum of the ranks' gradients.
    pub(crate) fn mean(&self) -> impl Fn(F) -> F + Copy + use<F> {
        let size = self.comm.size() as usize;
        let n = F::from(size).unwrap_or_else(F::one);
        // `x / n` is `x · (1/n)` exactly when n is a power of two (2 ranks, 4, ...): a multiply,
        // not a division, in the pass over every element.
        let exact_inverse = size.is_power_of_two();
        let inverse = F::one() / n;
        move |s: F| if exact_inverse { s * inverse } else { s / n }
    }

    /// `to ← (Σ over ranks of from) / ranks`, chunk by chunk.
    fn reduce(&mut self, from: &[F], to: &mut [F]) {
        let size = self.comm.size() as usize;
        let mean = self.mean();
        let chunk = self.chunk;
        match self.reduction {
            // Two ranks: MPI combines each pair of elements once, so an operation computing
            // `(a + b) · ½` (bit for bit `(a + b) / 2`) averages inside the all-reduce, with no
            // pass of its own. With more ranks it would average averages: sum, then divide.
            Reduction::Sum if size == 2 => {
                let op = self.mean_of_two.get_or_insert_with(|| {
                    // SAFETY: `mean_of_two::<F>` reads and writes `len` elements of `F`, the
                    // type of every buffer this averager reduces with it.
                    unsafe { UnsafeUserOperation::commutative(mean_of_two::<F>) }
                });
                for (part, out) in from.chunks(chunk).zip(to.chunks_mut(chunk)) {
                    self.comm.all_reduce_into(part, &mut out[..], &*op);
                }
            }
            Reduction::Sum => {
                for (part, out) in from.chunks(chunk).zip(to.chunks_mut(chunk)) {
                    self.comm
                        .all_reduce_into(part, &mut out[..], SystemOperation::sum());
                    out.iter_mut().for_each(|s| *s = mean(*s));
                }
            }
            Reduction::Ordered => {
                self.gathered
                    .resize(size * chunk.min(from.len()), F::zero());
                for (part, out) in from.chunks(chunk).zip(to.chunks_mut(chunk)) {
                    let len = part.len();
                    let all = &mut self.gathered[..size * len];
                    self.comm.all_gather_into(part, &mut all[..]);
                    for (i, p) in out.iter_mut().enumerate() {
                        let mut sum = all[i];
                        for r in 1..size {
                            sum = sum + all[r * len + i];
                        }
                        *p = mean(sum);
                    }
                }
            }
        }
    }

    /// One all-reduce in which the ranks learn whether any found a problem and whether their
    /// fingerprints agree; then, if needed, the error every rank returns.
    pub(crate) fn agree(
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
        let displs: Vec<i32> = starts(&counts[..]);
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

/// MPI's user operation for two ranks: `inout ← (in + inout) · ½`, element by element.
///
/// # Safety
///
/// `invec` and `inoutvec` point to `*len` elements of `F`.
unsafe extern "C" fn mean_of_two<F: Scalar>(
    invec: *mut std::ffi::c_void,
    inoutvec: *mut std::ffi::c_void,
    len: *mut std::ffi::c_int,
    _: *mut mpi::ffi::MPI_Datatype,
) {
    // SAFETY: MPI passes two buffers of `*len` elements of the reduced type, `F`.
    let (a, b) = unsafe {
        let n = usize::try_from(*len).unwrap_or(0);
        (
            std::slice::from_raw_parts(invec.cast::<F>(), n),
            std::slice::from_raw_parts_mut(inoutvec.cast::<F>(), n),
        )
    };
    let half = F::one() / (F::one() + F::one());
    b.iter_mut().zip(a).for_each(|(b, &a)| *b = (a + *b) * half);
}

/// Where each of `counts` consecutive parts starts: the displacements of MPI's `v` calls.
pub(crate) fn starts<T: Copy + Default + std::ops::Add<Output = T>>(counts: &[T]) -> Vec<T> {
    counts
        .iter()
        .scan(T::default(), |at, &c| {
            let start = *at;
            *at = *at + c;
            Some(start)
        })
        .collect()
}

/// This rank's own problem with its gradients, in sorted key order.
pub(crate) fn local_check<F: Scalar>(
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
pub(crate) fn describe<F>(grads: &Params<F>, keys: &[String]) -> String {
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
pub(crate) fn fingerprint<F>(grads: &Params<F>, keys: &[String]) -> u64 {
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
