/* cpu_vec.h — the CPU backend's inner loops: dot products against weights stored as F32, F16 or
 * BF16 (converted on the fly, accumulated in fp32) and conversions to fp32. AVX2+FMA(+F16C)
 * versions are picked at run time when the processor has them; portable C otherwise. */
#ifndef SPECSCOPE_CPU_VEC_H
#define SPECSCOPE_CPU_VEC_H

#include <stddef.h>

#include "specscope.h"

void cpu_vec_init(void); /* picks the kernels; idempotent, thread-safe */

/* sum_j w[j] * x[j] with w of the given dtype. */
float cpu_dot(ss_dtype dtype, const void *w, const float *x, int n);
float cpu_dot_f32(const float *a, const float *b, int n);
/* out[v] = sum_j w[j] * x[v * ldx + j] for v < 4: one pass over the weight row for four inputs. */
void cpu_dot4(ss_dtype dtype, const void *w, const float *x, size_t ldx, int n, float out[4]);
/* y += a * x */
void cpu_axpy(float *y, float a, const float *x, int n);
/* dst[i] = src[i] as fp32, i < n. */
void cpu_to_f32(ss_dtype dtype, const void *src, float *dst, size_t n);
/* One element of a tensor as fp32. */
float cpu_load(ss_dtype dtype, const void *src, size_t i);

#endif
