//! No heap allocation in a step once every key has its state: a counting global allocator.
//!
//! Only the test's own thread is counted: the test harness's threads allocate when they like
//! (a loaded machine made that visible), and a step of this size never leaves the calling thread.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use ndarray::{ArrayD, IxDyn};
use ndoptim::Params;

mod common;

struct Counting;

thread_local! {
    // Const-initialised: reading them never allocates, so the allocator may. Per thread, so
    // that tests running side by side count only their own.
    static COUNTED: Cell<bool> = const { Cell::new(false) };
    static COUNT: Cell<usize> = const { Cell::new(0) };
}

fn count() {
    if COUNTED.try_with(Cell::get).unwrap_or(false) {
        let _ = COUNT.try_with(|c| c.set(c.get() + 1));
    }
}

/// Allocations counted on this thread so far.
fn allocations() -> usize {
    COUNT.with(Cell::get)
}

// SAFETY: forwards to the system allocator unchanged; only counts calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: the caller upholds `GlobalAlloc::realloc`'s contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn model(rank6: bool) -> (Params<f32>, Params<f32>) {
    let shapes: [(&str, &[usize]); 5] = [
        ("W1", &[30, 20]),
        ("b1", &[20]),
        ("W2", &[20, 4, 3]),
        ("s", &[]),
        ("conv", &[2, 3, 2, 2, 3, 2]), // beyond IxDyn's inline rank
    ];
    let shapes = if rank6 { &shapes[..] } else { &shapes[..4] };
    let p = shapes
        .iter()
        .map(|(k, s)| (k.to_string(), ArrayD::from_elem(IxDyn(s), 0.5)))
        .collect();
    let g = shapes
        .iter()
        .map(|(k, s)| (k.to_string(), ArrayD::from_elem(IxDyn(s), 0.1)))
        .collect();
    (p, g)
}

#[test]
fn steps_after_the_first_do_not_allocate() {
    COUNTED.with(|c| c.set(true));
    for mut opt in common::all_optimizers::<f32>() {
        // Adafactor's row and column passes take lane views, which IxDyn keeps inline only up to
        // rank 4.
        let (mut p, g) = model(opt.name() != "Adafactor");
        let before = allocations();
        opt.update(&mut p, &g).unwrap();
        let first = allocations() - before;
        assert!(first > 0, "{}: the first step creates state", opt.name());
        let before = allocations();
        for _ in 0..10 {
            opt.update(&mut p, &g).unwrap();
        }
        let later = allocations() - before;
        // The second way in, over views made once (making them is the caller's business).
        let mut items = common::named(&mut p, &g);
        let before = allocations();
        for _ in 0..10 {
            opt.update_named(&mut items).unwrap();
        }
        let later_named = allocations() - before;
        drop(items);
        // Muon's matrix products (faer's) included: their packing buffers are made once per thread.
        assert_eq!(
            later_named,
            0,
            "{} allocated {later_named} times in 10 named steps",
            opt.name()
        );
        assert_eq!(
            later,
            0,
            "{} allocated {later} times in 10 steps",
            opt.name()
        );
    }
}

#[test]
fn averages_after_the_first_update_do_not_allocate() {
    use ndoptim::average::Average;
    COUNTED.with(|c| c.set(true));
    for mut avg in [
        Average::ema(0.9),
        Average::ema_from_zero(0.9).warmup(true),
        Average::swa(),
    ] {
        let (p, _) = model(true);
        avg.update(&p).unwrap();
        let mut eval = p.clone();
        let before = allocations();
        for _ in 0..10 {
            avg.update(&p).unwrap();
            avg.copy_to(&mut eval).unwrap();
        }
        let later = allocations() - before;
        assert_eq!(later, 0, "{:?} allocated {later} times", avg.averaging());
    }
}

/// Allocations in `calls` updates of `opt` after `warm_up` updates.
fn steady<O: ndoptim::Optimizer<f32>>(mut opt: O, warm_up: usize, calls: usize) -> usize {
    COUNTED.with(|c| c.set(true));
    let (mut p, g) = model(true);
    for _ in 0..warm_up {
        opt.update(&mut p, &g).unwrap();
    }
    let before = allocations();
    for _ in 0..calls {
        opt.update(&mut p, &g).unwrap();
    }
    allocations() - before
}

#[test]
fn wrappers_allocate_nothing_once_warm() {
    use ndoptim::Adam;
    use ndoptim::accumulate::MultiSteps;
    use ndoptim::lookahead::Lookahead;
    // Accumulation: after its first window.
    assert_eq!(steady(MultiSteps::new(Adam::<f32>::pytorch(), 3), 3, 9), 0);
    // Lookahead: after its first sync, which puts the slow weights in memory order.
    assert_eq!(
        steady(Lookahead::new(Adam::<f32>::pytorch(), 3, 0.5), 3, 9),
        0
    );
    // Schedule-Free around Adam: the base's buffers are made on the first step.
    let wrapper = ndoptim::schedule_free_wrapper::ScheduleFreeWrapper::new(Adam::<f32>::pytorch());
    assert_eq!(steady(wrapper.weight_decay_at_y(0.1), 1, 9), 0);
    let mechanic = ndoptim::mechanic::Mechanic::new(Adam::<f32>::pytorch());
    assert_eq!(steady(mechanic, 1, 9), 0);
}
