//! How ZeRO-1 lays out its shards: every key in sorted order, flattened end to end, cut into one
//! contiguous block per rank.

use std::ops::Range;

/// The keys of the first update (sorted, with their shapes), where each starts in the flattened
/// parameters, and each rank's block of that flat vector.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Shards {
    pub(crate) keys: Vec<(String, Vec<usize>)>,
    /// `starts[k]` is where key `k` starts; the last entry is the total.
    starts: Vec<usize>,
    /// Rank `r` owns `bounds[r]..bounds[r + 1]`.
    bounds: Vec<usize>,
    /// The keys that travel together, as ranges of key indices: each key of at least
    /// [`DIRECT`] elements alone (sent from and received into its own array), and each run of
    /// smaller keys between them (packed).
    pub(crate) segments: Vec<Range<usize>>,
}

/// Keys of at least this many elements travel alone, straight from their arrays.
pub(crate) const DIRECT: usize = 1 << 16;

/// Whether the segment `run` of keys (with `starts`) is one key of [`DIRECT`] elements or more.
fn self_large(starts: &[usize], run: &Range<usize>) -> bool {
    run.len() == 1 && starts[run.end] - starts[run.start] >= DIRECT
}

/// The part of `span` that lies in `block` (empty, at `span`'s start, if none).
pub(crate) fn overlap(span: &Range<usize>, block: &Range<usize>) -> Range<usize> {
    let from = span.start.max(block.start).min(span.end);
    from..span.end.min(block.end).max(from)
}

/// One rank's part of one key: the key's index and a range of its elements (row-major).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Piece {
    pub(crate) key: usize,
    pub(crate) range: Range<usize>,
    /// Where the piece starts in the rank's block.
    pub(crate) at: usize,
}

impl Shards {
    /// `keys` (sorted) cut into `ranks` blocks: evenly, inside keys, when `split` (optimizers
    /// whose update is elementwise); else at the key boundaries nearest the even cuts.
    pub(crate) fn new(keys: Vec<(String, Vec<usize>)>, ranks: usize, split: bool) -> Self {
        let mut starts = Vec::with_capacity(keys.len() + 1);
        let mut total = 0usize;
        for (_, shape) in &keys {
            starts.push(total);
            total += shape.iter().product::<usize>();
        }
        starts.push(total);
        let ranks = ranks.max(1);
        let even = |r: usize| (total as u128 * r as u128 / ranks as u128) as usize;
        let mut bounds = vec![0; ranks + 1];
        for r in 1..ranks {
            let target = even(r);
            bounds[r] = if split {
                target
            } else {
                // The key boundary nearest the even cut, never before the previous cut.
                let i = starts.partition_point(|&s| s < target);
                let above = starts[i.min(starts.len() - 1)];
                let below = starts[i.saturating_sub(1)];
                let nearest = if target - below <= above - target {
                    below
                } else {
                    above
                };
                nearest.max(bounds[r - 1])
            };
        }
        bounds[ranks] = total;
        let mut segments: Vec<Range<usize>> = Vec::new();
        for k in 0..keys.len() {
            let large = starts[k + 1] - starts[k] >= DIRECT;
            match segments.last_mut() {
                Some(run) if !large && !self_large(&starts, run) => run.end = k + 1,
                _ => segments.push(k..k + 1),
            }
        }
        Self {
            keys,
            starts,
            bounds,
            segments,
        }
    }

    /// A segment's elements in the flattened parameters.
    pub(crate) fn flat(&self, segment: &Range<usize>) -> Range<usize> {
        self.starts[segment.start]..self.starts[segment.end]
    }

    /// Whether a segment is one key travelling alone.
    pub(crate) fn is_direct(&self, segment: &Range<usize>) -> bool {
        self_large(&self.starts, segment)
    }

    /// Elements of all keys together.
    pub(crate) fn total(&self) -> usize {
        self.bounds[self.bounds.len() - 1]
    }

    /// Rank `r`'s block of the flattened parameters.
    pub(crate) fn block(&self, r: usize) -> Range<usize> {
        self.bounds[r]..self.bounds[r + 1]
    }

    /// Key `k`'s elements in the flattened parameters.
    pub(crate) fn span(&self, k: usize) -> Range<usize> {
        self.starts[k]..self.starts[k + 1]
    }

    /// The rank whose block holds flat position `x` (the last rank for the end).
    pub(crate) fn owner(&self, x: usize) -> usize {
        let ranks = self.bounds.len() - 1;
        (0..ranks)
            .find(|&r| self.bounds[r] <= x && x < self.bounds[r + 1])
            .unwrap_or(ranks - 1)
    }

    /// Rank `r`'s pieces, in key order: every key that overlaps its block, and the keys without
    /// elements whose position it owns.
    pub(crate) fn pieces(&self, r: usize) -> impl Iterator<Item = Piece> + '_ {
        let block = self.block(r);
        (0..self.keys.len()).filter_map(move |k| {
            let span = self.span(k);
            let (from, to) = (span.start.max(block.start), span.end.min(block.end));
            let owned = if span.is_empty() {
                self.owner(span.start) == r
            } else {
                from < to
            };
            owned.then(|| Piece {
                key: k,
                range: from - span.start..to - span.start,
                at: from - block.start,
            })
        })
    }

    /// The rounds in which the elements `span` travel, at most `chunk` of any rank's part
    /// per round.
    pub(crate) fn rounds(&self, span: &Range<usize>, chunk: usize) -> usize {
        (0..self.bounds.len() - 1)
            .map(|r| overlap(span, &self.block(r)).len())
            .max()
            .unwrap_or(0)
            .div_ceil(chunk)
    }

    /// Rank `r`'s piece of `span` in round `round`: at most `chunk` elements of the part of
    /// `span` in its block.
    pub(crate) fn piece(
        &self,
        span: &Range<usize>,
        r: usize,
        round: usize,
        chunk: usize,
    ) -> Range<usize> {
        let part = overlap(span, &self.block(r));
        let from = (part.start.saturating_add(round.saturating_mul(chunk))).min(part.end);
        from..from.saturating_add(chunk).min(part.end)
    }

    /// Every rank's piece of `span` in every round, in order of position: rank by rank, round
    /// by round within a rank. The pieces tile `span`.
    pub(crate) fn tiles(
        &self,
        span: &Range<usize>,
        chunk: usize,
    ) -> impl Iterator<Item = Range<usize>> + '_ {
        let rounds = self.rounds(span, chunk);
        let span = span.clone();
        (0..self.bounds.len() - 1)
            .flat_map(move |r| (0..rounds).map(move |round| (r, round)))
            .map(move |(r, round)| self.piece(&span, r, round, chunk))
    }

    /// The messages of the segments that `active` selects, as `(segment, round)` in order,
    /// grouped in windows that carry at most `chunk` elements of any rank's part (or one
    /// message): the same on every rank, so that all post the same messages in the same order,
    /// and a window's buffers stay within `chunk` elements per rank.
    pub(crate) fn windows(
        &self,
        chunk: usize,
        active: impl Fn(usize) -> bool,
    ) -> Vec<Vec<(usize, usize)>> {
        let ranks = self.bounds.len() - 1;
        let (mut windows, mut current, mut load) = (Vec::new(), Vec::new(), 0);
        for (s, segment) in self.segments.iter().enumerate() {
            if !active(s) {
                continue;
            }
            let span = self.flat(segment);
            for round in 0..self.rounds(&span, chunk) {
                let most = (0..ranks)
                    .map(|r| self.piece(&span, r, round, chunk).len())
                    .max()
                    .unwrap_or(0);
                if load + most > chunk && !current.is_empty() {
                    windows.push(std::mem::take(&mut current));
                    load = 0;
                }
                current.push((s, round));
                load += most;
            }
        }
        if !current.is_empty() {
            windows.push(current);
        }
        windows
    }

    /// Whether `piece` is its key whole.
    pub(crate) fn is_whole(&self, piece: &Piece) -> bool {
        piece.range.len() == self.span(piece.key).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(sizes: &[(&str, &[usize])]) -> Vec<(String, Vec<usize>)> {
        sizes
            .iter()
            .map(|(k, s)| (k.to_string(), s.to_vec()))
            .collect()
    }

    #[test]
    fn even_blocks_cut_inside_keys() {
        let s = Shards::new(
            keys(&[("a", &[3]), ("b", &[2, 4]), ("c", &[0]), ("d", &[])]),
            2,
            true,
        );
        assert_eq!((s.total(), s.block(0), s.block(1)), (12, 0..6, 6..12));
        let p0: Vec<_> = s.pieces(0).collect();
        let p1: Vec<_> = s.pieces(1).collect();
        assert_eq!(
            p0.iter()
                .map(|p| (p.key, p.range.clone(), p.at))
                .collect::<Vec<_>>(),
            [(0, 0..3, 0), (1, 0..3, 3)]
        );
        assert_eq!(
            p1.iter()
                .map(|p| (p.key, p.range.clone(), p.at))
                .collect::<Vec<_>>(),
            [(1, 3..8, 0), (2, 0..0, 5), (3, 0..1, 5)]
        );
        assert!(s.is_whole(&p0[0]) && !s.is_whole(&p0[1]) && s.is_whole(&p1[2]));
        assert_eq!(s.segments, vec![0..4usize]);
    }

    #[test]
    fn large_keys_travel_alone() {
        let big: &[usize] = &[DIRECT];
        let s = Shards::new(
            keys(&[
                ("a", &[3]),
                ("b", big),
                ("c", &[1]),
                ("d", &[2]),
                ("e", big),
            ]),
            2,
            true,
        );
        assert_eq!(s.segments, [0..1, 1..2, 2..4, 4..5]);
        assert!(s.is_direct(&s.segments[1]) && !s.is_direct(&s.segments[2]));
        assert_eq!(s.flat(&s.segments[2]), 3 + DIRECT..6 + DIRECT);
    }

    #[test]
    fn tiles_cover_a_span_and_windows_bound_each_ranks_load() {
        let s = Shards::new(keys(&[("a", &[7]), ("b", &[DIRECT]), ("c", &[5])]), 3, true);
        for segment in &s.segments {
            let span = s.flat(segment);
            let tiles: Vec<_> = s.tiles(&span, 1000).collect();
            assert_eq!(tiles.len(), 3 * s.rounds(&span, 1000));
            let mut at = span.start;
            for t in tiles {
                assert!(t.is_empty() || t.start == at);
                at = t.end.max(at);
            }
            assert_eq!(at, span.end);
        }
        let windows = s.windows(1000, |_| true);
        let messages: usize = windows.iter().map(Vec::len).sum();
        let all: usize = (s.segments.iter())
            .map(|g| s.rounds(&s.flat(g), 1000))
            .sum();
        assert_eq!(messages, all);
        for w in &windows {
            for r in 0..3 {
                let load: usize = (w.iter())
                    .map(|&(g, round)| s.piece(&s.flat(&s.segments[g]), r, round, 1000).len())
                    .sum();
                assert!(load <= 1000 || w.len() == 1, "{load}");
            }
        }
        assert_eq!(s.windows(1000, |g| g != 1).concat(), [(0, 0), (2, 0)]);
    }

    #[test]
    fn whole_key_blocks_cut_at_the_nearest_boundary() {
        let s = Shards::new(keys(&[("a", &[10]), ("b", &[3]), ("c", &[3])]), 2, false);
        assert_eq!((s.block(0), s.block(1)), (0..10, 10..16));
        let s = Shards::new(keys(&[("a", &[1]), ("b", &[1])]), 3, true);
        assert_eq!((s.block(0), s.block(1), s.block(2)), (0..0, 0..1, 1..2));
        assert_eq!(s.pieces(0).count(), 0);
    }
}
