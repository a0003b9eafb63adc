/* cpu_vec.c — dot products, axpy and fp32 conversion, portable C plus AVX2 versions.
 *
 * The portable loops keep four partial sums so that the compiler is not bound to one serial
 * dependency chain; the AVX2 versions convert 8 weights at a time (BF16: shift into the high half
 * of an fp32; F16: vcvtph2ps) and use fused multiply-add. */
#include "cpu_vec.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef float (*dot_fn)(const void *w, const float *x, int n);
typedef void (*dot4_fn)(const void *w, const float *x, size_t ldx, int n, float out[4]);
typedef void (*convert_fn)(const void *src, float *dst, size_t n);

/* ---------------------------------------------------------------- portable */

static float dot_f32_c(const void *wv, const float *x, int n) {
    const float *w = wv;
    float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    int j = 0;
    for (; j + 4 <= n; j += 4) {
        s0 += w[j] * x[j];
        s1 += w[j + 1] * x[j + 1];
        s2 += w[j + 2] * x[j + 2];
        s3 += w[j + 3] * x[j + 3];
    }
    for (; j < n; j++) s0 += w[j] * x[j];
    return (s0 + s1) + (s2 + s3);
}

#define DEFINE_DOT16_C(name, convert)                                  \
    static float name(const void *wv, const float *x, int n) {         \
        const uint16_t *w = wv;                                        \
        float s0 = 0, s1 = 0, s2 = 0, s3 = 0;                          \
        int j = 0;                                                     \
        for (; j + 4 <= n; j += 4) {                                   \
            s0 += convert(w[j]) * x[j];                                \
            s1 += convert(w[j + 1]) * x[j + 1];                        \
            s2 += convert(w[j + 2]) * x[j + 2];                        \
            s3 += convert(w[j + 3]) * x[j + 3];                        \
        }                                                              \
        for (; j < n; j++) s0 += convert(w[j]) * x[j];                 \
        return (s0 + s1) + (s2 + s3);                                  \
    }

DEFINE_DOT16_C(dot_bf16_c, ss_bf16_to_f32)
DEFINE_DOT16_C(dot_f16_c, ss_f16_to_f32)

/* Four inputs against one row; the weight is converted once per element. */
#define DEFINE_DOT4_C(name, wtype, convert)                                                \
    static void name(const void *wv, const float *x, size_t ldx, int n, float out[4]) {    \
        const wtype *w = wv;                                                               \
        float s0 = 0, s1 = 0, s2 = 0, s3 = 0;                                              \
        for (int j = 0; j < n; j++) {                                                      \
            float c = convert(w[j]);                                                       \
            s0 += c * x[j];                                                                \
            s1 += c * x[ldx + j];                                                          \
            s2 += c * x[2 * ldx + j];                                                      \
            s3 += c * x[3 * ldx + j];                                                      \
        }                                                                                  \
        out[0] = s0, out[1] = s1, out[2] = s2, out[3] = s3;                                \
    }

static inline float f32_value(float f) { return f; }
DEFINE_DOT4_C(dot4_f32_c, float, f32_value)
DEFINE_DOT4_C(dot4_bf16_c, uint16_t, ss_bf16_to_f32)
DEFINE_DOT4_C(dot4_f16_c, uint16_t, ss_f16_to_f32)

static void bf16_to_f32_c(const void *src, float *dst, size_t n) {
    const uint16_t *s = src;
    for (size_t i = 0; i < n; i++) dst[i] = ss_bf16_to_f32(s[i]);
}

static void f16_to_f32_c(const void *src, float *dst, size_t n) {
    const uint16_t *s = src;
    for (size_t i = 0; i < n; i++) dst[i] = ss_f16_to_f32(s[i]);
}

static void axpy_c(float *y, float a, const float *x, int n) {
    for (int j = 0; j < n; j++) y[j] += a * x[j];
}

/* ---------------------------------------------------------------- AVX2 */

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#include <immintrin.h>
#define HAVE_X86 1

#define AVX2 __attribute__((target("avx2,fma,f16c")))

AVX2 static inline float hsum256(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

AVX2 static inline __m256 load_f32(const float *p) { return _mm256_loadu_ps(p); }

AVX2 static inline __m256 load_bf16(const uint16_t *p) {
    __m128i h = _mm_loadu_si128((const __m128i *)p);
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

AVX2 static inline __m256 load_f16(const uint16_t *p) {
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
}

/* Four accumulators over 32 elements per iteration, then 8 at a time, then a scalar tail. */
#define DEFINE_DOT_AVX2(name, wtype, load, scalar)                                   \
    AVX2 static float name(const void *wv, const float *x, int n) {                  \
        const wtype *w = wv;                                                          \
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;                   \
        int j = 0;                                                                    \
        for (; j + 32 <= n; j += 32) {                                                \
            a0 = _mm256_fmadd_ps(load(w + j), _mm256_loadu_ps(x + j), a0);            \
            a1 = _mm256_fmadd_ps(load(w + j + 8), _mm256_loadu_ps(x + j + 8), a1);    \
            a2 = _mm256_fmadd_ps(load(w + j + 16), _mm256_loadu_ps(x + j + 16), a2);  \
            a3 = _mm256_fmadd_ps(load(w + j + 24), _mm256_loadu_ps(x + j + 24), a3);  \
        }                                                                             \
        for (; j + 8 <= n; j += 8) a0 = _mm256_fmadd_ps(load(w + j), _mm256_loadu_ps(x + j), a0); \
        float s = hsum256(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3))); \
        for (; j < n; j++) s += scalar(w[j]) * x[j];                                  \
        return s;                                                                     \
    }

static inline float f32_identity(float f) { return f; }

DEFINE_DOT_AVX2(dot_f32_avx2, float, load_f32, f32_identity)
DEFINE_DOT_AVX2(dot_bf16_avx2, uint16_t, load_bf16, ss_bf16_to_f32)
DEFINE_DOT_AVX2(dot_f16_avx2, uint16_t, load_f16, ss_f16_to_f32)

#define DEFINE_DOT4_AVX2(name, wtype, load, scalar)                                            \
    AVX2 static void name(const void *wv, const float *x, size_t ldx, int n, float out[4]) {        \
        const wtype *w = wv;                                                                         \
        const float *x0 = x, *x1 = x + ldx, *x2 = x + 2 * ldx, *x3 = x + 3 * ldx;                    \
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;                                  \
        int j = 0;                                                                                   \
        for (; j + 8 <= n; j += 8) {                                                                 \
            __m256 c = load(w + j);                                                                  \
            a0 = _mm256_fmadd_ps(c, _mm256_loadu_ps(x0 + j), a0);                                    \
            a1 = _mm256_fmadd_ps(c, _mm256_loadu_ps(x1 + j), a1);                                    \
            a2 = _mm256_fmadd_ps(c, _mm256_loadu_ps(x2 + j), a2);                                    \
            a3 = _mm256_fmadd_ps(c, _mm256_loadu_ps(x3 + j), a3);                                    \
        }                                                                                            \
        float s0 = hsum256(a0), s1 = hsum256(a1), s2 = hsum256(a2), s3 = hsum256(a3);                \
        for (; j < n; j++) {                                                                         \
            float c = scalar(w[j]);                                                                  \
            s0 += c * x0[j], s1 += c * x1[j], s2 += c * x2[j], s3 += c * x3[j];                      \
        }                                                                                            \
        out[0] = s0, out[1] = s1, out[2] = s2, out[3] = s3;                                          \
    }

DEFINE_DOT4_AVX2(dot4_f32_avx2, float, load_f32, f32_identity)
DEFINE_DOT4_AVX2(dot4_bf16_avx2, uint16_t, load_bf16, ss_bf16_to_f32)
DEFINE_DOT4_AVX2(dot4_f16_avx2, uint16_t, load_f16, ss_f16_to_f32)

#define DEFINE_CONVERT_AVX2(name, load, scalar)                                      \
    AVX2 static void name(const void *src, float *dst, size_t n) {                   \
        const uint16_t *s = src;                                                      \
        size_t i = 0;                                                                 \
        for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, load(s + i));            \
        for (; i < n; i++) dst[i] = scalar(s[i]);                                     \
    }

DEFINE_CONVERT_AVX2(bf16_to_f32_avx2, load_bf16, ss_bf16_to_f32)
DEFINE_CONVERT_AVX2(f16_to_f32_avx2, load_f16, ss_f16_to_f32)

AVX2 static void axpy_avx2(float *y, float a, const float *x, int n) {
    __m256 va = _mm256_set1_ps(a);
    int j = 0;
    for (; j + 8 <= n; j += 8)
        _mm256_storeu_ps(y + j, _mm256_fmadd_ps(va, _mm256_loadu_ps(x + j), _mm256_loadu_ps(y + j)));
    for (; j < n; j++) y[j] += a * x[j];
}
#endif

/* ---------------------------------------------------------------- dispatch */

static struct {
    dot_fn dot[3]; /* by ss_dtype */
    dot4_fn dot4[3];
    convert_fn convert[3];
    void (*axpy)(float *y, float a, const float *x, int n);
} k = {
    {dot_f32_c, dot_f16_c, dot_bf16_c},
    {dot4_f32_c, dot4_f16_c, dot4_bf16_c},
    {NULL, f16_to_f32_c, bf16_to_f32_c},
    axpy_c,
};

static pthread_once_t init_once = PTHREAD_ONCE_INIT;

#ifdef HAVE_X86
/* F16C from CPUID leaf 1 (ECX bit 29): clang's __builtin_cpu_supports has no "f16c". */
static int has_f16c(void) {
    unsigned a, b, c, d;
    return __get_cpuid(1, &a, &b, &c, &d) && (c & (1u << 29));
}
#endif

/* SPECSCOPE_NO_SIMD=1 keeps the portable loops (tests run both). */
static void pick_kernels(void) {
    const char *no_simd = getenv("SPECSCOPE_NO_SIMD");
    if (no_simd && *no_simd && *no_simd != '0') return;
#ifdef HAVE_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && has_f16c()) {
        k.dot[SS_F32] = dot_f32_avx2;
        k.dot[SS_F16] = dot_f16_avx2;
        k.dot[SS_BF16] = dot_bf16_avx2;
        k.dot4[SS_F32] = dot4_f32_avx2;
        k.dot4[SS_F16] = dot4_f16_avx2;
        k.dot4[SS_BF16] = dot4_bf16_avx2;
        k.convert[SS_F16] = f16_to_f32_avx2;
        k.convert[SS_BF16] = bf16_to_f32_avx2;
        k.axpy = axpy_avx2;
    }
#endif
}

void cpu_vec_init(void) { pthread_once(&init_once, pick_kernels); }

float cpu_dot(ss_dtype dtype, const void *w, const float *x, int n) { return k.dot[dtype](w, x, n); }

void cpu_dot4(ss_dtype dtype, const void *w, const float *x, size_t ldx, int n, float out[4]) {
    k.dot4[dtype](w, x, ldx, n, out);
}

float cpu_dot_f32(const float *a, const float *b, int n) { return k.dot[SS_F32](a, b, n); }

void cpu_axpy(float *y, float a, const float *x, int n) { k.axpy(y, a, x, n); }

void cpu_to_f32(ss_dtype dtype, const void *src, float *dst, size_t n) {
    if (dtype == SS_F32)
        memcpy(dst, src, n * sizeof *dst);
    else
        k.convert[dtype](src, dst, n);
}

float cpu_load(ss_dtype dtype, const void *src, size_t i) {
    switch (dtype) {
    case SS_F32: return ((const float *)src)[i];
    case SS_F16: return ss_f16_to_f32(((const uint16_t *)src)[i]);
    case SS_BF16: return ss_bf16_to_f32(((const uint16_t *)src)[i]);
    }
    return 0.0f;
}
