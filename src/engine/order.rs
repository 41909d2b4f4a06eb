//! Stage 2 of a step, order: keys are stepped in the order of their parameters in memory, and the
//! data of the next key is asked for while the current one computes.
//!
//! Why memory order: a step over many small arrays is bound by how fast each array's data
//! arrives, and the hardware prefetchers only help when consecutive arrays follow each other in
//! memory. Hash order scatters them (the book's performance chapter measures it). So the engine keeps its
//! entries sorted by their parameters' addresses, creates new state in that order (its slots then
//! follow in memory too), and sorts again only when a step finds the order broken.

use super::gather::Task;
use super::{Engine, Layout, Rule, Scalar};

impl<R: Rule<F>, F: Scalar, L: Layout<F>> Engine<R, F, L> {
    /// Puts the entries (and the plan's tasks with them) in the order of this call's parameters
    /// in memory; keys absent from the call go last, in their previous order.
    pub(super) fn sort_by_memory(&mut self, known: &mut [Option<Task<'_, L::Param>>]) {
        let mut order: Vec<usize> = (0..self.entries.len()).collect();
        order.sort_by_key(|&i| {
            known
                .get(i)
                .and_then(Option::as_ref)
                .map_or(usize::MAX, Task::address)
        });
        let mut moved_to = vec![0; order.len()];
        for (to, &from) in order.iter().enumerate() {
            moved_to[from] = to;
        }
        for i in self.index.values_mut() {
            *i = moved_to[*i];
        }
        let mut entries: Vec<_> = std::mem::take(&mut self.entries)
            .into_iter()
            .map(Some)
            .collect();
        self.entries = order.iter().filter_map(|&i| entries[i].take()).collect();
        let mut tasks: Vec<_> = known.iter_mut().map(Option::take).collect();
        for (place, &i) in known.iter_mut().zip(&order) {
            *place = tasks[i].take();
        }
        self.resort = false;
    }
}

/// How many cache lines of each of the next key's arrays a step asks for in advance (measured:
/// 4 and 32 lines leave more time per key than 16, on 1000 keys of 1000 `f32`).
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
pub(super) const LINES: usize = 16;

/// Asks for the first cache lines (at most [`LINES`]) of `bytes` bytes at `p` that a coming step
/// reads, so that they arrive while the current one computes.
#[inline(always)]
#[cfg_attr(not(target_arch = "x86_64"), allow(unused_variables))]
pub(super) fn prefetch<T: ?Sized>(p: *const T, bytes: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        let line = |i: usize| {
            // SAFETY: a prefetch is a hint that never faults, whatever the address.
            unsafe {
                use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
                _mm_prefetch::<_MM_HINT_T0>(p.cast::<i8>().wrapping_add(64 * i));
            }
        };
        // A count known at compile time for large arrays: the loop unrolls (measured faster).
        if bytes >= 64 * LINES {
            (0..LINES).for_each(line);
        } else {
            (0..bytes.div_ceil(64)).for_each(line);
        }
    }
}
