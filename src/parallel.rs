//! The `rayon` feature: parallel steps over keys and over chunks of large arrays.
//!
//! A rayon call costs tens of microseconds on a small VM (the book's performance chapter), so work goes to
//! the pool only above sizes where it pays: arrays of [`MIN_ELEMENTS`] or more are split into
//! halves down to [`LEAF_ELEMENTS`], and a step over several keys runs them as parallel tasks when
//! it moves at least [`MIN_ELEMENTS`] elements in all. Every element is computed by the same
//! fused pass as the serial path, so results are bit-identical.

/// The size from which a step is split across threads: 2^19, so that a step of a million
/// elements runs on every core (measured beside C with OpenMP in `ndoptim-anchors`; at 2^20 it
/// ran on one thread, at half OpenMP's speed).
pub const MIN_ELEMENTS: usize = 1 << 19;

/// The size of the chunks a large array is split into.
pub const LEAF_ELEMENTS: usize = 1 << 18;

thread_local! {
    static SERIAL: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f` with the steps this thread starts kept serial, to compare against the parallel path.
///
/// ```
/// let two = ndoptim::parallel::serial(|| 1 + 1);
/// assert_eq!(two, 2);
/// ```
pub fn serial<R>(f: impl FnOnce() -> R) -> R {
    let before = SERIAL.with(|s| s.replace(true));
    let result = f();
    SERIAL.with(|s| s.set(before));
    result
}

/// Whether a step of `elements` elements in all goes to the thread pool.
pub(crate) fn worth_it(elements: usize) -> bool {
    elements >= MIN_ELEMENTS && !SERIAL.with(std::cell::Cell::get)
}
