//! [`ZeroSharded`]: ZeRO stage 1, each rank keeping and stepping the state of its own block of
//! the parameters.

use mpi::collective::SystemOperation;
use mpi::datatype::{Equivalence, PartitionMut};
use mpi::topology::Communicator;
use mpi::traits::*;
use ndarray::{ArrayD, ArrayViewD, ArrayViewMutD, IxDyn};
use ndoptim::checkpoint::{Checkpoint, KeyState};
use ndoptim::clip::{Norm, clip_grad_norm};
use ndoptim::{Engine, Error, Layout, Named, NonFinite, Optimizer, Params, Rule, Scalar, Scope};
use std::ops::Range;

use crate::Reduction;
use crate::average::{Averager, starts};
use crate::shards::{Piece, Shards, overlap};

/// The tag of the exchange's and the gather's messages.
const TAG: i32 = 0x2e0;

/// ZeRO stage 1 (`torch.distributed.optim.ZeroRedundancyOptimizer`, DeepSpeed's stage 1): each
/// rank keeps the optimizer state of its own block of the parameters and steps only it.
///
/// The parameters of the first update's keys, in sorted order and flattened end to end, are cut
/// into one block per rank: evenly, inside keys as DeepSpeed cuts them, when the inner optimizer
/// is elementwise ([`Scope::Element`]), so each rank holds `1/N` of the state; else at the key
/// boundaries nearest the even cuts, so that trust ratios, Newton–Schulz and factored state see
/// whole keys. A step is one exchange of gradients (each rank receives every rank's part of its
/// own block and sums them in rank order: the reduce-scatter half of an all-reduce,
/// bit-identical to one process for either [`Reduction`]), the inner step of the block, and an
/// all-gather of the updated blocks. The inner optimizer sees each piece of a key under the
/// key's name: whole keys with their shape, parts of keys as vectors.
///
/// Optimizers whose step size sums over every key ([`Scope::Global`]: Prodigy, D-Adaptation)
/// are refused with [`Error::IncompatibleOptions`]; train them with data parallelism.
///
/// Global-norm clipping ([`ZeroSharded::clip_grad_norm`]) and the non-finite policy
/// ([`ZeroSharded::non_finite`]) act on the whole averaged gradient as one process does, bit for
/// bit; schedules set the learning rate of every rank's inner optimizer; groups select keys by
/// name as always. The layout is fixed by the first update (or by [`ZeroSharded::restore`]): a
/// later update may leave keys out, but a new key or a new shape is refused; consolidate and
/// restore to lay the shards out again.
pub struct ZeroSharded<F, O> {
    inner: O,
    avg: Averager<F>,
    clip: Option<f64>,
    non_finite: NonFinite,
    skipped: u64,
    shards: Option<Shards>,
    /// This rank's gradients, flattened in the layout's order.
    flat: Vec<F>,
    /// Every rank's part of this rank's block, as received in one round.
    exchange: Vec<F>,
    /// This rank's block: the averaged gradient, and the parameters the inner optimizer steps.
    grad: Vec<F>,
    block: Vec<F>,
    /// The segments of small keys (and of large ones not contiguous), gathered.
    gathered: Vec<F>,
}

impl<F: Scalar + Equivalence, O: Optimizer<F>> ZeroSharded<F, O> {
    /// `inner` sharded over a duplicate of `comm`. Give the inner optimizer the default
    /// non-finite policy (`Propagate`) and no clipping of its own: the wrapper applies both to
    /// the whole gradient. Either `reduction` gives the result of one process (see the type's
    /// docs).
    pub fn new<C: Communicator>(inner: O, comm: &C, reduction: Reduction) -> Self {
        Self {
            inner,
            avg: Averager::new(comm, reduction),
            clip: None,
            non_finite: NonFinite::Propagate,
            skipped: 0,
            shards: None,
            flat: Vec::new(),
            exchange: Vec::new(),
            grad: Vec::new(),
            block: Vec::new(),
            gathered: Vec::new(),
        }
    }

    /// Sets how many elements of each rank's block one MPI call carries (default 2^24).
    #[must_use]
    pub fn chunk_elements(mut self, elements: usize) -> Self {
        self.avg.chunk = elements.clamp(1, i32::MAX as usize / 2);
        self
    }

    /// Clips the averaged gradients to total L2 norm `max_norm` before the step, as
    /// [`ndoptim::clip::clip_grad_norm`] does over all keys in sorted order (default: none).
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

    /// The wrapped optimizer (holding the state of this rank's block only).
    pub fn inner(&self) -> &O {
        &self.inner
    }

    /// The keys this rank holds a piece of, sorted (empty before the first update).
    pub fn owned_keys(&self) -> Vec<&str> {
        let Some(shards) = &self.shards else {
            return Vec::new();
        };
        (shards.pieces(self.avg.rank()))
            .map(|p| shards.keys[p.key].0.as_str())
            .collect()
    }

    /// This rank's block of the flattened parameters, as element positions (empty before the
    /// first update).
    pub fn block(&self) -> std::ops::Range<usize> {
        self.shards
            .as_ref()
            .map_or(0..0, |s| s.block(self.avg.rank()))
    }

    /// This rank and the number of ranks.
    pub fn rank_and_size(&self) -> (usize, usize) {
        (self.avg.rank(), self.avg.size())
    }

    /// The layout for these gradients: made on the first update, checked against it after.
    fn lay_out(&mut self, grads: &Params<F>) -> Result<(), Error> {
        if let Some(shards) = &self.shards {
            let known = &shards.keys;
            for k in &self.avg.keys {
                let shape = grads[k].shape();
                match known.binary_search_by(|(name, _)| name.as_str().cmp(k)) {
                    Ok(i) if known[i].1 == shape => {}
                    Ok(i) => {
                        return Err(Error::StateShapeMismatch {
                            key: k.clone(),
                            state_shape: known[i].1.clone(),
                            param_shape: shape.to_vec(),
                        });
                    }
                    Err(_) => {
                        return Err(Error::Distributed {
                            rank: self.avg.rank(),
                            reason: format!(
                                "key {k:?} was not among the keys of the first update, which \
                                 laid out the shards: consolidate and restore to lay them out again"
                            ),
                        });
                    }
                }
            }
            return Ok(());
        }
        let keys = (self.avg.keys.iter())
            .map(|k| (k.clone(), grads[k].shape().to_vec()))
            .collect();
        self.shards = Some(self.layout_of(keys)?);
        Ok(())
    }

    /// The shards of `keys` (sorted) on this communicator, for the inner optimizer's scope.
    fn layout_of(&self, keys: Vec<(String, Vec<usize>)>) -> Result<Shards, Error> {
        if self.inner.scope() == Scope::Global {
            return Err(Error::IncompatibleOptions {
                reason: "this optimizer's step size is a sum over every key (Prodigy, \
                         D-Adaptation), which no rank holds under ZeRO-1: use DataParallel",
            });
        }
        let split = self.inner.scope() == Scope::Element;
        let shards = Shards::new(keys, self.avg.size(), split);
        if shards.total() > i32::MAX as usize {
            return Err(Error::Distributed {
                rank: self.avg.rank(),
                reason: format!(
                    "{} parameter elements: MPI's offsets reach {} elements",
                    shards.total(),
                    i32::MAX
                ),
            });
        }
        Ok(shards)
    }

    /// Every rank's gradients exchanged so that each receives every rank's part of its own
    /// block, summed in rank order into `self.grad`, this rank's block of the average. Every
    /// message of a window is in flight at once, in both directions; large keys travel straight
    /// from their gradients, runs of small ones packed.
    fn reduce_scatter(&mut self, grads: &Params<F>) {
        let Self {
            avg,
            shards,
            flat,
            exchange,
            grad,
            ..
        } = self;
        let shards = shards.as_ref().expect("laid out before");
        let (me, size, chunk) = (avg.rank(), avg.size(), avg.chunk);
        let block = shards.block(me);
        let mean = avg.mean();
        // Every buffer is overwritten whole: resized, never cleared, so that no pass of zeros
        // precedes the data.
        grad.resize(block.len(), F::zero());
        flat.resize(shards.total(), F::zero());
        let name = |k: usize| shards.keys[k].0.as_str();
        let active = |s: usize| (shards.segments[s].clone()).any(|k| grads.contains_key(name(k)));
        // A large key's own gradient, where it is contiguous; else the segment packed in `flat`.
        let mut own: Vec<Option<&[F]>> = Vec::with_capacity(shards.segments.len());
        for (s, segment) in shards.segments.iter().enumerate() {
            let direct = match grads.get(name(segment.start)) {
                Some(g) if shards.is_direct(segment) => g.as_slice(),
                _ => None,
            };
            if !active(s) {
                // No rank has these keys' gradients: their average is zero.
                let mine = overlap(&shards.flat(segment), &block);
                if !mine.is_empty() {
                    grad[mine.start - block.start..mine.end - block.start].fill(F::zero());
                }
            } else if direct.is_none() {
                for k in segment.clone() {
                    let to = &mut flat[shards.span(k)];
                    match grads.get(name(k)) {
                        Some(g) => match g.as_slice() {
                            Some(g) => to.copy_from_slice(g),
                            None => to.iter_mut().zip(g.iter()).for_each(|(t, &g)| *t = g),
                        },
                        None => to.fill(F::zero()),
                    }
                }
            }
            own.push(direct);
        }
        let (flat, own) = (&flat[..], &own);
        let source = |s: usize, p: &Range<usize>| match own[s] {
            Some(g) => {
                let start = shards.flat(&shards.segments[s]).start;
                &g[p.start - start..p.end - start]
            }
            None => &flat[p.clone()],
        };
        let piece = |(s, round): (usize, usize), r: usize| {
            shards.piece(&shards.flat(&shards.segments[s]), r, round, chunk)
        };
        // Other ranks' parts land in `exchange`, one slot per rank, the window's pieces of this
        // rank's block end to end.
        let slot = |r: usize| r - usize::from(r > me);
        for window in shards.windows(chunk, active) {
            let cap: usize = window.iter().map(|&m| piece(m, me).len()).sum();
            exchange.resize((size - 1) * cap, F::zero());
            mpi::request::scope(|scope| {
                let mut requests = Vec::new();
                let mut slots = exchange.chunks_mut(cap.max(1));
                for r in (0..size).filter(|&r| r != me) {
                    let process = avg.comm.process_at_rank(r as i32);
                    let mut into = slots.next().unwrap_or_default();
                    for &m in &window {
                        let n = piece(m, me).len();
                        let (head, tail) = std::mem::take(&mut into).split_at_mut(n);
                        into = tail;
                        if n > 0 {
                            requests
                                .push(process.immediate_receive_into_with_tag(scope, head, TAG));
                        }
                        let theirs = piece(m, r);
                        if !theirs.is_empty() {
                            let send = source(m.0, &theirs);
                            requests.push(process.immediate_send_with_tag(scope, send, TAG));
                        }
                    }
                }
                requests.into_iter().for_each(|r| {
                    r.wait();
                });
            });
            let mut at = 0;
            for &m in &window {
                let p = piece(m, me);
                let n = p.len();
                if n == 0 {
                    continue;
                }
                let mine = source(m.0, &p);
                let part = |r: usize| match r == me {
                    true => mine,
                    false => &exchange[slot(r) * cap + at..slot(r) * cap + at + n],
                };
                sum_in_order(
                    &mut grad[p.start - block.start..p.end - block.start],
                    size,
                    part,
                    mean,
                );
                at += n;
            }
        }
    }

    /// The first key (in sorted order) whose averaged gradient is not finite, agreed by all.
    fn first_non_finite(&self, pieces: &[Piece]) -> Option<usize> {
        let mine = (pieces.iter())
            .find(|p| {
                self.grad[p.at..p.at + p.range.len()]
                    .iter()
                    .any(|x| !x.is_finite())
            })
            .map_or(u64::MAX, |p| p.key as u64);
        let mut first = u64::MAX;
        (self.avg.comm).all_reduce_into(&mine, &mut first, SystemOperation::min());
        (first != u64::MAX).then_some(first as usize)
    }

    /// Scales this rank's block so that the whole gradient has L2 norm at most `max_norm`, with
    /// the norm computed as one process computes it: each key's sum of squares folded element
    /// by element in order (passed from rank to rank where a key spans blocks), the keys'
    /// norms combined in sorted order.
    fn clip(&mut self, pieces: &[Piece], max_norm: f64) -> Result<(), Error> {
        let mut none: Vec<ArrayViewMutD<'_, F>> = Vec::new();
        clip_grad_norm(&mut none, max_norm, Norm::L2, false)?; // validates `max_norm`
        let shards = self.shards.as_ref().expect("laid out before");
        let me = self.avg.rank();
        let block = shards.block(me);
        let mut squares = vec![F::zero(); shards.keys.len()];
        for p in pieces {
            let span = shards.span(p.key);
            let mut sum = F::zero();
            if span.start < block.start && !p.range.is_empty() {
                let from = shards.owner(block.start - 1);
                (self.avg.comm.process_at_rank(from as i32)).receive_into(&mut sum);
            }
            for &g in &self.grad[p.at..p.at + p.range.len()] {
                sum = sum + g * g;
            }
            if span.end > block.end {
                let to = shards.owner(block.end);
                (self.avg.comm.process_at_rank(to as i32)).send(&sum);
            } else {
                squares[p.key] = sum;
            }
        }
        // Each key's sum lives on one rank, zeros elsewhere: the sum over ranks is exact.
        let mut all = vec![F::zero(); squares.len()];
        (self.avg.comm).all_reduce_into(&squares[..], &mut all[..], SystemOperation::sum());
        let total = all.iter().fold(F::zero(), |t, &s| {
            let norm = s.sqrt();
            t + norm * norm
        });
        let total = total.sqrt().to_f64().unwrap_or(f64::NAN);
        let coef = max_norm / (total + 1e-6);
        let coef = F::from(if coef > 1.0 { 1.0 } else { coef }).unwrap_or_else(F::nan);
        self.grad.iter_mut().for_each(|g| *g = *g * coef);
        Ok(())
    }

    /// Runs `f` on this rank's pieces of `params` (copied into `self.block`), with the block's
    /// gradients; then, if it succeeded on every rank, shares every rank's block into `params`.
    /// Keys missing from `present` are left out of the call.
    fn on_block(
        &mut self,
        params: &mut Params<F>,
        present: impl Fn(&str) -> bool,
        f: impl FnOnce(&mut O, &mut [Named<'_, F>]) -> Result<(), Error>,
    ) -> Result<(), Error> {
        let shards = self.shards.as_ref().expect("laid out before");
        let me = self.avg.rank();
        let pieces: Vec<Piece> = shards.pieces(me).collect();
        // Overwritten whole: the pieces cover the block.
        self.block.resize(shards.block(me).len(), F::zero());
        for p in &pieces {
            let name = &shards.keys[p.key].0;
            let param = &params[name];
            let to = &mut self.block[p.at..p.at + p.range.len()];
            match param.as_slice() {
                Some(s) => to.copy_from_slice(&s[p.range.clone()]),
                None => {
                    (to.iter_mut().zip(param.iter().skip(p.range.start))).for_each(|(t, &v)| *t = v)
                }
            }
        }
        let stepped = {
            let mut items = Vec::with_capacity(pieces.len());
            let (mut rest, mut grads) = (&mut self.block[..], &self.grad[..]);
            let mut at = 0;
            for p in &pieces {
                let (name, shape) = &shards.keys[p.key];
                let n = p.range.len();
                let (head, tail) = std::mem::take(&mut rest).split_at_mut(p.at - at + n);
                let (g_head, g_tail) = grads.split_at(p.at - at + n);
                let (param, grad) = (&mut head[p.at - at..], &g_head[p.at - at..]);
                (rest, grads, at) = (tail, g_tail, p.at + n);
                if !present(name) {
                    continue;
                }
                let shape = if shards.is_whole(p) {
                    IxDyn(shape)
                } else {
                    IxDyn(&[n])
                };
                let (Ok(param), Ok(grad)) = (
                    ArrayViewMutD::from_shape(shape.clone(), param),
                    ArrayViewD::from_shape(shape, grad),
                ) else {
                    unreachable!("a piece's view has its own length");
                };
                items.push(Named::new(name, param, grad));
            }
            f(&mut self.inner, &mut items)
        };
        if !self.avg.all(stepped.is_ok()) {
            // Nothing was written to `params` on any rank.
            return Err(stepped.err().unwrap_or_else(|| Error::Distributed {
                rank: self.avg.rank(),
                reason: "another rank's optimizer refused the step; parameters unchanged".into(),
            }));
        }
        self.share(params, &present);
        Ok(())
    }

    /// Every rank's block gathered by all into the keys of `params` that `present` selects:
    /// large keys straight into their arrays, runs of small ones through a buffer. Every
    /// message of a window is in flight at once, in both directions.
    fn share(&mut self, params: &mut Params<F>, present: &impl Fn(&str) -> bool) {
        let Self {
            avg,
            shards,
            block,
            gathered,
            ..
        } = self;
        let shards = shards.as_ref().expect("laid out before");
        let (me, size, chunk) = (avg.rank(), avg.size(), avg.chunk);
        let mine = shards.block(me);
        gathered.resize(shards.total(), F::zero());
        let name = |k: usize| shards.keys[k].0.as_str();
        let active = |s: usize| (shards.segments[s].clone()).any(|k| present(name(k)));
        // Where each segment lands, cut into every rank's pieces in every round: a large key's
        // own array where it is contiguous, else the segment's span of `gathered`.
        let mut through_buffer = vec![true; shards.segments.len()];
        {
            let mut arrays: Vec<Option<&mut ArrayD<F>>> =
                (0..shards.keys.len()).map(|_| None).collect();
            for (k, p) in params.iter_mut() {
                if let Ok(i) = shards.keys.binary_search_by(|(n, _)| n.as_str().cmp(k)) {
                    arrays[i] = Some(p);
                }
            }
            let mut rest = &mut gathered[..];
            let mut dests: Vec<Vec<&mut [F]>> = Vec::with_capacity(shards.segments.len());
            for (s, segment) in shards.segments.iter().enumerate() {
                let span = shards.flat(segment);
                let (spare, tail) = std::mem::take(&mut rest).split_at_mut(span.len());
                rest = tail;
                let array = arrays[segment.start]
                    .take()
                    .filter(|_| shards.is_direct(segment));
                let mut dest = match array.and_then(|a| a.as_slice_mut()) {
                    Some(a) => {
                        through_buffer[s] = false;
                        a
                    }
                    None => spare,
                };
                let tiles = shards.tiles(&span, chunk).map(|t| {
                    let (head, tail) = std::mem::take(&mut dest).split_at_mut(t.len());
                    dest = tail;
                    head
                });
                dests.push(tiles.collect());
            }
            for window in shards.windows(chunk, active) {
                mpi::request::scope(|scope| {
                    let mut requests = Vec::new();
                    for &(s, round) in &window {
                        let span = shards.flat(&shards.segments[s]);
                        let rounds = shards.rounds(&span, chunk);
                        let p = shards.piece(&span, me, round, chunk);
                        let send = match p.is_empty() {
                            true => &block[..0],
                            false => &block[p.start - mine.start..p.end - mine.start],
                        };
                        for r in 0..size {
                            let into = std::mem::take(&mut dests[s][r * rounds + round]);
                            if r == me {
                                into.copy_from_slice(send);
                                continue;
                            }
                            let process = avg.comm.process_at_rank(r as i32);
                            if !into.is_empty() {
                                requests.push(
                                    process.immediate_receive_into_with_tag(scope, into, TAG),
                                );
                            }
                            if !send.is_empty() {
                                requests.push(process.immediate_send_with_tag(scope, send, TAG));
                            }
                        }
                    }
                    requests.into_iter().for_each(|r| {
                        r.wait();
                    });
                });
            }
        }
        for (s, segment) in shards.segments.iter().enumerate() {
            if !through_buffer[s] || !active(s) {
                continue;
            }
            for k in segment.clone() {
                let Some(p) = params.get_mut(name(k)).filter(|_| present(name(k))) else {
                    continue;
                };
                let from = &gathered[shards.span(k)];
                match p.as_slice_mut() {
                    Some(p) => p.copy_from_slice(from),
                    None => p.iter_mut().zip(from).for_each(|(p, &v)| *p = v),
                }
            }
        }
    }

    /// Moves the parameters to the inner optimizer's evaluation or training point, block by
    /// block, and shares them.
    fn switch(&mut self, params: &mut Params<F>, eval: bool) -> Result<(), Error> {
        if self.shards.is_none() {
            return Ok(()); // no state anywhere yet: nothing moves
        }
        // The gradients' views are not read by a mode switch: any values of the block's length.
        let n = self
            .shards
            .as_ref()
            .map_or(0, |s| s.block(self.avg.rank()).len());
        self.grad.resize(n, F::zero());
        self.on_block(
            params,
            |_| true,
            |inner, items| {
                if eval {
                    inner.eval_named(items)
                } else {
                    inner.train_named(items)
                }
            },
        )
    }
}

impl<F: Scalar + Equivalence, O: Optimizer<F>> Optimizer<F> for ZeroSharded<F, O> {
    /// Checks every rank's gradients collectively, exchanges them so that each rank holds the
    /// average of its own block, clips and guards them as one process would, steps the block and
    /// shares it. Collective.
    ///
    /// An error the inner optimizer meets on some ranks only (a parameter reshaped under its
    /// state) is reported on every rank, with every parameter as it was; the state of ranks
    /// whose step succeeded has then moved.
    fn update(&mut self, params: &mut Params<F>, grads: &Params<F>) -> Result<(), Error> {
        self.avg.check(params, grads)?;
        self.lay_out(grads)?;
        self.reduce_scatter(grads);
        let shards = self.shards.as_ref().expect("laid out above");
        let pieces: Vec<Piece> = shards.pieces(self.avg.rank()).collect();
        if self.non_finite != NonFinite::Propagate
            && let Some(k) = self.first_non_finite(&pieces)
        {
            if self.non_finite == NonFinite::Skip {
                self.skipped += 1;
                return Ok(());
            }
            let key = shards.keys[k].0.clone();
            return Err(Error::NonFiniteGradient { key });
        }
        if let Some(max_norm) = self.clip {
            self.clip(&pieces, max_norm)?;
        }
        self.on_block(
            params,
            |k| grads.contains_key(k),
            |inner, items| inner.update_named(items),
        )
    }

    ndoptim::forward_optimizer!(
        F,
        inner: learning_rate,
        hyperparameters,
        name,
        scope,
        update_named_through_map,
        named_modes_through_map,
    );

    /// Drops the inner optimizer's state and the layout: the next update lays the shards out
    /// again.
    fn reset(&mut self) {
        self.inner.reset();
        self.shards = None;
    }

    /// The inner optimizer moves this rank's block (Schedule-Free's `x`), then every rank's is
    /// shared.
    fn eval(&mut self, params: &mut Params<F>) -> Result<(), Error> {
        self.switch(params, true)
    }

    /// As [`ZeroSharded::eval`], back to the training point.
    fn train(&mut self, params: &mut Params<F>) -> Result<(), Error> {
        self.switch(params, false)
    }
}

impl<F, O: std::fmt::Debug> std::fmt::Debug for ZeroSharded<F, O> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZeroSharded")
            .field("inner", &self.inner)
            .field("reduction", &self.avg.reduction)
            .field("shards", &self.shards)
            .field("clip", &self.clip)
            .field("non_finite", &self.non_finite)
            .finish_non_exhaustive()
    }
}

/// `out ← mean(((p₀ + p₁) + p₂) + …)` for the `ranks` equally long parts `part(r)`, in
/// vectorized passes: one process's sum of the ranks' gradients, in rank order.
fn sum_in_order<'a, F: Scalar>(
    out: &mut [F],
    ranks: usize,
    part: impl Fn(usize) -> &'a [F],
    mean: impl Fn(F) -> F,
) {
    if ranks == 2 {
        (out.iter_mut().zip(part(0).iter().zip(part(1))))
            .for_each(|(o, (&a, &b))| *o = mean(a + b));
        return;
    }
    out.copy_from_slice(part(0));
    for r in 1..ranks {
        out.iter_mut().zip(part(r)).for_each(|(o, &b)| *o = *o + b);
    }
    out.iter_mut().for_each(|o| *o = mean(*o));
}

/// Checkpoints of a sharded [`Engine`]: the whole state gathered on one rank, and a whole
/// state loaded as each rank's share.
impl<R, F, L> ZeroSharded<F, Engine<R, F, L>>
where
    R: Rule<F> + serde::Serialize + serde::de::DeserializeOwned,
    R::KeyScalars: serde::Serialize + serde::de::DeserializeOwned,
    F: Scalar + Equivalence,
    L: Layout<F, Param = F, State = F>,
{
    /// Elements of optimizer state this rank holds (its block's slots): the memory ZeRO-1 saves.
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
    /// (every key whole, sorted), which a plain optimizer restores; `None` on other ranks.
    /// Collective.
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
            // A key's pieces come in rank order: the later ones continue its slots.
            for piece in part.keys {
                match whole.keys.last_mut() {
                    Some(k) if k.key == piece.key => join(k, piece),
                    _ => whole.keys.push(piece),
                }
            }
            whole.skipped_steps = whole.skipped_steps.max(part.skipped_steps);
        }
        if let Some(shards) = &self.shards {
            for k in &mut whole.keys {
                if let Ok(i) = shards
                    .keys
                    .binary_search_by(|(n, _)| n.as_str().cmp(&k.key))
                {
                    reshape(k, &shards.keys[i].1);
                }
            }
        }
        whole.keys.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(Some(whole))
    }

    /// Loads a whole checkpoint (as [`ZeroSharded::consolidate`] or a single process wrote it),
    /// keeping this rank's share for `params`' keys: the layout of those keys and shapes, as an
    /// update with a gradient for every one of them would make it.
    ///
    /// # Errors
    ///
    /// Those of [`Engine::restore`]; the optimizer is then unchanged.
    pub fn restore(
        &mut self,
        mut checkpoint: Checkpoint<R, R::KeyScalars, F>,
        params: &Params<F>,
    ) -> Result<(), Error> {
        let mut keys: Vec<(String, Vec<usize>)> = (params.iter())
            .map(|(k, p)| (k.clone(), p.shape().to_vec()))
            .collect();
        keys.sort();
        let shards = self.layout_of(keys)?;
        let mut share = Vec::new();
        checkpoint.keys.sort_by(|a, b| a.key.cmp(&b.key));
        for piece in shards.pieces(self.avg.rank()) {
            let name = &shards.keys[piece.key].0;
            let Ok(i) = checkpoint.keys.binary_search_by(|k| k.key.cmp(name)) else {
                continue;
            };
            let mut k = checkpoint.keys[i].clone();
            if !shards.is_whole(&piece) {
                cut(&mut k, piece.range.clone());
            }
            share.push(k);
        }
        checkpoint.keys = share;
        self.inner.restore(checkpoint)?;
        self.shards = Some(shards);
        Ok(())
    }
}

/// Appends a later piece of a key to its earlier pieces: every slot's data continues.
fn join<K, F: Clone>(into: &mut KeyState<K, F>, piece: KeyState<K, F>) {
    for (slot, more) in into.slots.iter_mut().zip(piece.slots) {
        slot.data.extend(more.data);
    }
}

/// Gives a key joined from pieces its parameter's shape, and every slot the same.
fn reshape<K, F>(k: &mut KeyState<K, F>, shape: &[usize]) {
    let n: usize = shape.iter().product();
    if k.slots.iter().all(|s| s.data.len() == n) {
        k.shape = shape.to_vec();
        k.slots.iter_mut().for_each(|s| s.shape = shape.to_vec());
    }
}

/// Keeps elements `range` of a whole key's state, as a vector.
fn cut<K, F: Clone>(k: &mut KeyState<K, F>, range: std::ops::Range<usize>) {
    k.shape = vec![range.len()];
    for slot in &mut k.slots {
        if let Some(data) = slot.data.get(range.clone()) {
            slot.data = data.to_vec();
            slot.shape = vec![range.len()];
        }
    }
}
