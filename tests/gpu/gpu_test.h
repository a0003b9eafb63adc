/* gpu_test.h — what the GPU tests share: the skip when no device is usable (CI), random data that
 * is never all zeros, and the relative error ||a - ref|| / ||ref|| (NaN or an unwritten output
 * gives infinity, so it always fails). */
#ifndef SPECSCOPE_GPU_TEST_H
#define SPECSCOPE_GPU_TEST_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "backend.h"

#define GPU_SKIP 77

/* 0 when a CUDA device is usable; else prints the skip line and returns GPU_SKIP. */
static inline int gpu_require_device(void) {
    char why[256] = "";
    if (ss_backend_cuda_available(why, sizeof why)) return 0;
    printf("SKIPPED: no CUDA device (%s)\n", why);
    return GPU_SKIP;
}

static uint64_t gpu_rng = 0x243f6a8885a308d3ull;

static inline float gpu_uniform(void) { /* (-1, 1) */
    gpu_rng = gpu_rng * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((double)(gpu_rng >> 11) * 0x1.0p-52 - 1.0);
}

/* Random floats in (-scale, scale), each rounded to bf16 when bf16 is set (so a bf16 copy is exact). */
static inline float *gpu_random(size_t n, float scale, bool bf16) {
    float *p = (float *)malloc((n ? n : 1) * sizeof *p);
    for (size_t i = 0; i < n; i++) {
        p[i] = gpu_uniform() * scale;
        if (bf16) p[i] = ss_bf16_to_f32(ss_f32_to_bf16(p[i]));
    }
    return p;
}

static inline double gpu_rel_err(const float *a, const float *ref, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)a[i] - ref[i];
        num += d * d;
        den += (double)ref[i] * ref[i];
    }
    double e = sqrt(num / (den > 0 ? den : 1e-30));
    return isfinite(e) ? e : INFINITY;
}

#endif
