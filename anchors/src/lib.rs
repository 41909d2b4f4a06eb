//! C loops beside which ndoptim's speed is measured (`cargo bench -p ndoptim-anchors`): Adam's
//! step written as a C programmer writes it, compiled with `gcc -O3 -march=native`, serial and
//! split across OpenMP threads. Not published: a benchmark's yardstick, not a library.

use std::ffi::c_int;

unsafe extern "C" {
    fn anchor_adam_f32(
        p: *mut f32,
        g: *const f32,
        m: *mut f32,
        v: *mut f32,
        n: usize,
        lr: f32,
        b1: f32,
        b2: f32,
        eps: f32,
        bc1: f32,
        bc2_sqrt: f32,
        threads: c_int,
    );
}

/// One Adam step (PyTorch's defaults: lr 1e-3, betas (0.9, 0.999), ε 1e-8) at step `t` over
/// equally long arrays, in C: serial for `threads` 1, else split across that many OpenMP
/// threads.
///
/// # Panics
///
/// If the arrays' lengths differ.
pub fn adam_f32(p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], t: i32, threads: usize) {
    let n = p.len();
    assert!(
        g.len() == n && m.len() == n && v.len() == n,
        "equally long arrays"
    );
    let (lr, b1, b2, eps) = (1e-3f32, 0.9f32, 0.999f32, 1e-8f32);
    let (bc1, bc2_sqrt) = (1.0 - b1.powi(t), (1.0 - b2.powi(t)).sqrt());
    let (p, g, m, v) = (p.as_mut_ptr(), g.as_ptr(), m.as_mut_ptr(), v.as_mut_ptr());
    let threads = c_int::try_from(threads).unwrap_or(c_int::MAX);
    // SAFETY: four arrays of `n` elements (checked above), which the C loop reads and writes
    // within `0..n` only.
    unsafe { anchor_adam_f32(p, g, m, v, n, lr, b1, b2, eps, bc1, bc2_sqrt, threads) }
}
