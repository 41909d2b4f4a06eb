/* Adam's step (PyTorch's formula) as a C programmer writes it: one fused loop over parameter,
 * gradient and the two moments, serial or split across OpenMP threads (static schedule). */
#include <math.h>
#include <omp.h>
#include <stddef.h>

static inline void adam_range(float *restrict p, const float *restrict g, float *restrict m,
                              float *restrict v, size_t from, size_t to, float lr, float b1,
                              float b2, float eps, float bc1, float bc2_sqrt) {
    const float step = lr / bc1;
    for (size_t i = from; i < to; i++) {
        m[i] = b1 * m[i] + (1.0f - b1) * g[i];
        v[i] = b2 * v[i] + (1.0f - b2) * g[i] * g[i];
        p[i] -= step * m[i] / (sqrtf(v[i]) / bc2_sqrt + eps);
    }
}

/* Serial for `threads` <= 1; else a static split in contiguous ranges, one per thread, each a
 * vectorized loop. */
void anchor_adam_f32(float *p, const float *g, float *m, float *v, size_t n, float lr, float b1,
                     float b2, float eps, float bc1, float bc2_sqrt, int threads) {
    if (threads <= 1) {
        adam_range(p, g, m, v, 0, n, lr, b1, b2, eps, bc1, bc2_sqrt);
        return;
    }
#pragma omp parallel num_threads(threads)
    {
        size_t t = (size_t)omp_get_thread_num(), k = (size_t)omp_get_num_threads();
        adam_range(p, g, m, v, n * t / k, n * (t + 1) / k, lr, b1, b2, eps, bc1, bc2_sqrt);
    }
}
