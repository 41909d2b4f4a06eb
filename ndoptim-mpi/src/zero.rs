//! [`ZeroSharded`]: ZeRO stage 1, each rank keeping and stepping the state of its own keys.

use mpi::datatype::{Equivalence, PartitionMut};
use mpi::topology::Communicator;
use mpi::traits::*;
use ndarray::ArrayViewMutD;
use ndoptim::checkpoint::Checkpoint;
use ndoptim::clip::{Norm, clip_grad_norm};
use ndoptim::{Engine, Error, Layout, NonFinite, Optimizer, Params, Rule, Scalar};

use crate::Reduction;
use crate::average::{Averager, starts};

/// ZeRO stage 1 (`torch.distributed.optim.ZeroRedundancyOptimizer`): gradients averaged as
/// [`DataParallel`](crate::DataParallel) does, but each rank keeps the optimizer state of its own
/// keys only and steps only them; the updated parameters are then shared, so that every rank
/// again holds the whole model.
///
/// Keys go to ranks greedily, largest first (ties by name), each to the least-loaded rank (ties
/// to the lowest): the same assignment on every rank, whatever the order of its maps. Global-norm
/// clipping ([`ZeroSharded::clip_grad_norm`]) and the non-finite policy
/// ([`ZeroSharded::non_finite`]) act on the whole averaged gradient, as in one process; schedules
/// set the learning rate of every rank's inner optimizer; groups select keys by name as always.
pub struct ZeroSharded<F, O> {
    inner: O,
    avg: Averager<F>,
    clip: Option<f64>,
    non_finite: NonFinite,
    skipped: u64,
    /// The keys this rank owns, sorted; recomputed when the key set changes.
    owned: Vec<String>,
    /// Every rank's keys, sorted, and their element counts.
    owners: Vec<Vec<String>>,
    counts: Vec<usize>,
    /// The assignment's key set, to know when to recompute it.
    assigned_for: Vec<(String, usize)>,
    /// Own gradients handed to the inner optimizer, moved out of (and back into) the average.
    own: Params<F>,
    /// Packed parameters: this rank's to send, every rank's received.
    send: Vec<F>,
    received: Vec<F>,
    round: Vec<F>,
}

impl<F: Scalar + Equivalence, O: Optimizer<F>> ZeroSharded<F, O> {
    /// `inner` sharded over a duplicate of `comm`. Give the inner optimizer the default
    /// non-finite policy (`Propagate`) and no clipping of its own: the wrapper applies both to
    /// the whole gradient.
    pub fn new<C: Communicator>(inner: O, comm: &C, reduction: Reduction) -> Self {
        Self {
            inner,
            avg: Averager::new(comm, reduction),
            clip: None,
            non_finite: NonFinite::Propagate,
            skipped: 0,
            owned: Vec::new(),
            owners: Vec::new(),
            counts: Vec::new(),
            assigned_for: Vec::new(),
            own: Params::new(),
            send: Vec::new(),
            received: Vec::new(),
            round: Vec::new(),
        }
    }

    /// Sets how many elements one MPI call carries (default 2^24).
    #[must_use]
    pub fn chunk_elements(mut self, elements: usize) -> Self {
        self.avg.chunk = elements.clamp(1, i32::MAX as usize / 2);
        self
    }

    /// Clips the averaged gradients to total L2 norm `max_norm` before the step, as
    /// [`ndoptim::clip::clip_grad_norm`] does, over all keys in sorted order (default: none).
    #[must_use]
    pub fn clip_grad_norm(mut self, max_norm: f64) -> Self {
        self.clip = Some(max_norm);
        self
    }

    /// What a non-finite averaged gradient does, decided on the whole gradient and so the same
    /// on every rank (default [`NonFinite::Propagate`]). With [`NonFinite::Error`] the error names
    /// the first such key in sorted order.
    #[must_use]
    pub fn non_finite(mut self, policy: NonFinite) -> Self {
        self.non_finite = policy;
        self
    }

    /// Steps skipped by [`NonFinite::Skip`].
    pub fn skipped_steps(&self) -> u64 {
        self.skipped
    }

    /// The wrapped optimizer (holding the state of this rank's keys only).
    pub fn inner(&self) -> &O {
        &self.inner
    }

    /// The keys this rank owns, sorted (empty before the first update).
    pub fn owned_keys(&self) -> &[String] {
        &self.owned
    }

    /// This rank and the number of ranks.
    pub fn rank_and_size(&self) -> (usize, usize) {
        (self.avg.rank(), self.avg.size())
    }

    /// Assigns keys to ranks for this key set, if it changed.
    fn assign(&mut self, grads: &Params<F>) {
        let set: Vec<(String, usize)> = self
            .avg
            .keys
            .iter()
            .map(|k| (k.clone(), grads[k].len()))
            .collect();
        if set == self.assigned_for {
            return;
        }
        let (owners, counts) = assignment(&set, self.avg.size());
        self.owned = owners[self.avg.rank()].clone();
        self.owners = owners;
        self.counts = counts;
        self.assigned_for = set;
    }

    /// Shares every rank's updated keys: each rank's own parameters, packed in sorted key order,
    /// gathered by all in rounds of at most a chunk per rank.
    fn share(&mut self, params: &mut Params<F>) {
        let (me, size, chunk) = (self.avg.rank(), self.avg.size(), self.avg.chunk);
        self.send.clear();
        for k in &self.owned {
            self.send.extend(params[k].iter().copied());
        }
        let total: usize = self.counts.iter().sum();
        let offsets: Vec<usize> = starts(&self.counts[..]);
        self.received.clear();
        self.received.resize(total, F::zero());
        let rounds = self.counts.iter().max().map_or(0, |&m| m.div_ceil(chunk));
        for round in 0..rounds {
            let piece = |r: usize| {
                let from = (round * chunk).min(self.counts[r]);
                from..(from + chunk).min(self.counts[r])
            };
            let counts: Vec<i32> = (0..size).map(|r| piece(r).len() as i32).collect();
            let displs: Vec<i32> = starts(&counts[..]);
            if rounds == 1 {
                // Straight into place: the pieces are every rank's whole share, in rank order.
                let mut partition =
                    PartitionMut::new(&mut self.received[..], &counts[..], &displs[..]);
                self.avg
                    .comm
                    .all_gather_varcount_into(&self.send[piece(me)], &mut partition);
                break;
            }
            self.round.clear();
            self.round
                .resize(counts.iter().map(|&c| c as usize).sum(), F::zero());
            {
                let mut partition =
                    PartitionMut::new(&mut self.round[..], &counts[..], &displs[..]);
                self.avg
                    .comm
                    .all_gather_varcount_into(&self.send[piece(me)], &mut partition);
            }
            for r in 0..size {
                let range = piece(r);
                let at = displs[r] as usize;
                self.received[offsets[r] + range.start..offsets[r] + range.end]
                    .copy_from_slice(&self.round[at..at + range.len()]);
            }
        }
        for (r, keys) in self.owners.iter().enumerate() {
            if r == me {
                continue;
            }
            let mut at = offsets[r];
            for k in keys {
                let p = params
                    .get_mut(k)
                    .expect("checked: every key has a parameter");
                let n = p.len();
                p.iter_mut()
                    .zip(&self.received[at..at + n])
                    .for_each(|(p, &v)| *p = v);
                at += n;
            }
        }
    }
}

/// Keys to ranks: largest first (ties by name), each to the least-loaded rank (ties to the
/// lowest). Returns every rank's keys, sorted, and their element counts.
pub(crate) fn assignment(keys: &[(String, usize)], ranks: usize) -> (Vec<Vec<String>>, Vec<usize>) {
    let mut order: Vec<&(String, usize)> = keys.iter().collect();
    order.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let mut owners = vec![Vec::new(); ranks.max(1)];
    let mut load = vec![0usize; ranks.max(1)];
    for (key, n) in order {
        let r = (0..load.len()).min_by_key(|&r| (load[r], r)).unwrap_or(0);
        owners[r].push(key.clone());
        load[r] += n;
    }
    owners.iter_mut().for_each(|k| k.sort());
    (owners, load)
}

impl<F: Scalar + Equivalence, O: Optimizer<F>> Optimizer<F> for ZeroSharded<F, O> {
    /// Averages every rank's gradients (collectively checked first), clips and guards them as
    /// one process would, steps this rank's keys and shares the results. Collective.
    ///
    /// An error the inner optimizer meets on some ranks only (a parameter reshaped under its
    /// state) is reported on every rank, with every parameter as it was; the state of ranks
    /// whose step succeeded has then moved.
    fn update(&mut self, params: &mut Params<F>, grads: &Params<F>) -> Result<(), Error> {
        self.avg.average(params, grads)?;
        self.assign(grads);
        let keys = std::mem::take(&mut self.avg.keys);
        let mut refused = None;
        if self.non_finite != NonFinite::Propagate
            && let Some(k) = keys
                .iter()
                .find(|k| self.avg.averaged[*k].iter().any(|x| !x.is_finite()))
        {
            if self.non_finite == NonFinite::Skip {
                self.skipped += 1;
                self.avg.keys = keys;
                return Ok(());
            }
            refused = Some(Error::NonFiniteGradient { key: k.clone() });
        }
        if let Some(e) = refused {
            self.avg.keys = keys;
            return Err(e);
        }
        if let Some(max_norm) = self.clip {
            let mut views: Vec<ArrayViewMutD<'_, F>> = Vec::with_capacity(keys.len());
            let mut rest: Vec<(&String, &mut ndarray::ArrayD<F>)> =
                self.avg.averaged.iter_mut().collect();
            rest.sort_by(|a, b| a.0.cmp(b.0));
            views.extend(rest.into_iter().map(|(_, a)| a.view_mut()));
            if let Err(e) = clip_grad_norm(&mut views, max_norm, Norm::L2, false) {
                self.avg.keys = keys;
                return Err(e);
            }
        }
        self.avg.keys = keys;
        // The inner optimizer sees this rank's keys only: it keeps their state and no other.
        for k in &self.owned {
            if let Some(g) = self.avg.averaged.remove(k) {
                self.own.insert(k.clone(), g);
            }
        }
        // This rank's keys as they were, to put back if another rank's step fails.
        self.send.clear();
        for k in &self.owned {
            self.send.extend(params[k].iter().copied());
        }
        let stepped = self.inner.update(params, &self.own);
        for (k, g) in self.own.drain() {
            self.avg.averaged.insert(k, g);
        }
        if !self.avg.all(stepped.is_ok()) {
            // Some rank failed: every rank restores its keys and reports.
            let mut at = 0;
            for k in &self.owned {
                let p = params.get_mut(k).expect("owned keys have parameters");
                let n = p.len();
                p.iter_mut()
                    .zip(&self.send[at..at + n])
                    .for_each(|(p, &v)| *p = v);
                at += n;
            }
            return Err(stepped.err().unwrap_or_else(|| Error::Distributed {
                rank: self.avg.rank(),
                reason: "another rank's optimizer refused the step; parameters unchanged".into(),
            }));
        }
        self.share(params);
        Ok(())
    }

    ndoptim::forward_optimizer!(
        F,
        inner: learning_rate,
        hyperparameters,
        reset,
        name,
        update_named_through_map,
        named_modes_through_map,
    );

    /// The inner optimizer moves this rank's keys (Schedule-Free's `x`), then every rank's are
    /// shared.
    fn eval(&mut self, params: &mut Params<F>) -> Result<(), Error> {
        let moved = self.inner.eval(params);
        if self.avg.all(moved.is_ok()) {
            self.share(params);
        }
        moved
    }

    /// As [`ZeroSharded::eval`], back to the training point.
    fn train(&mut self, params: &mut Params<F>) -> Result<(), Error> {
        let moved = self.inner.train(params);
        if self.avg.all(moved.is_ok()) {
            self.share(params);
        }
        moved
    }
}

impl<F, O: std::fmt::Debug> std::fmt::Debug for ZeroSharded<F, O> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZeroSharded")
            .field("inner", &self.inner)
            .field("reduction", &self.avg.reduction)
            .field("owned", &self.owned)
            .field("clip", &self.clip)
            .field("non_finite", &self.non_finite)
            .finish_non_exhaustive()
    }
}

/// Checkpoints of a sharded [`Engine`]: the whole state gathered on one rank, and a whole
/// state loaded as each rank's share.
impl<R, F, L> ZeroSharded<F, Engine<R, F, L>>
where
    R: Rule<F> + serde::Serialize + serde::de::DeserializeOwned,
    R::KeyScalars: serde::Serialize + serde::de::DeserializeOwned,
    F: Scalar + Equivalence,
    L: Layout<F, State = F>,
{
    /// Elements of optimizer state this rank holds (its keys' slots): the memory ZeRO-1 saves.
    pub fn state_elements(&self) -> usize {
        self.inner
            .checkpoint()
            .keys
            .iter()
            .flat_map(|k| &k.slots)
            .map(|s| s.data.len())
            .sum()
    }

    /// Gathers every rank's state on rank `root` into the checkpoint one process would hold
    /// (every key, sorted), which a plain optimizer restores; `None` on other ranks. Collective.
    ///
    /// # Errors
    ///
    /// [`Error::Checkpoint`] if a rank's state cannot be written or read back.
    pub fn consolidate(
        &self,
        root: usize,
    ) -> Result<Option<Checkpoint<R, R::KeyScalars, F>>, Error> {
        let mine = self.inner.checkpoint().to_safetensors()?;
        let size = self.avg.size();
        let comm = &self.avg.comm;
        let root_process = comm.process_at_rank(root as i32);
        let len = mine.len() as i32;
        if self.avg.rank() != root {
            root_process.gather_into(&len);
            root_process.gather_varcount_into(&mine[..]);
            return Ok(None);
        }
        let mut counts = vec![0i32; size];
        root_process.gather_into_root(&len, &mut counts[..]);
        let displs: Vec<i32> = starts(&counts[..]);
        let mut all = vec![0u8; counts.iter().map(|&c| c as usize).sum()];
        {
            let mut partition = PartitionMut::new(&mut all[..], &counts[..], &displs[..]);
            root_process.gather_varcount_into_root(&mine[..], &mut partition);
        }
        let mut whole = self.inner.checkpoint();
        whole.keys.clear();
        for r in 0..size {
            let (d, c) = (displs[r] as usize, counts[r] as usize);
            let part = Checkpoint::<R, R::KeyScalars, F>::from_safetensors(&all[d..d + c])?;
            whole.keys.extend(part.keys);
            whole.skipped_steps = whole.skipped_steps.max(part.skipped_steps);
        }
        whole.keys.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(Some(whole))
    }

    /// Loads a whole checkpoint (as [`ZeroSharded::consolidate`] or a single process wrote it),
    /// keeping this rank's share of the keys for `params`' key set: the keys it owns under the
    /// assignment of `params`' keys and sizes.
    ///
    /// # Errors
    ///
    /// Those of [`Engine::restore`]; the optimizer is then unchanged.
    pub fn restore(
        &mut self,
        mut checkpoint: Checkpoint<R, R::KeyScalars, F>,
        params: &Params<F>,
    ) -> Result<(), Error> {
        let mut set: Vec<(String, usize)> =
            params.iter().map(|(k, p)| (k.clone(), p.len())).collect();
        set.sort();
        let (owners, counts) = assignment(&set, self.avg.size());
        let owned = owners[self.avg.rank()].clone();
        checkpoint
            .keys
            .retain(|k| owned.binary_search(&k.key).is_ok());
        self.inner.restore(checkpoint)?;
        self.owned = owned;
        self.owners = owners;
        self.counts = counts;
        self.assigned_for = set;
        Ok(())
    }
}
