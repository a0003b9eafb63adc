/* test_backend_cpu.c — every CPU backend op against a naive double-precision reference on random
 * inputs, for F32, F16 and BF16 weights. Registered twice: with the AVX2 kernels (when the
 * processor has them) and with SPECSCOPE_NO_SIMD=1 and more threads than cores. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "check.h"

static uint64_t rng_state = 12345;

static float urand(void) { /* uniform in (-1, 1), never all zeros */
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((double)(rng_state >> 11) * 0x1.0p-52 - 1.0);
}

static float *random_floats(size_t n) {
    float *p = malloc(n * sizeof *p);
    for (size_t i = 0; i < n; i++) p[i] = urand();
    return p;
}

/* A weight stored in dtype: bytes for the backend, the rounded values for the reference. */
typedef struct {
    ss_tensor t;
    void *bytes;
    float *values;
} test_weight;

static uint16_t to_f16(float f) { /* |f| < 2: normal halves only, round to nearest even */
    uint32_t u;
    memcpy(&u, &f, 4);
    uint32_t sign = (u >> 16) & 0x8000u;
    int exp = (int)((u >> 23) & 0xff) - 112;
    if (exp <= 0) return (uint16_t)sign;
    uint32_t h = sign | ((uint32_t)exp << 10) | ((u & 0x7fffffu) >> 13), rest = u & 0x1fffu;
    if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) h++;
    return (uint16_t)h;
}

static test_weight make_weight(ss_dtype dtype, int rows, int cols) {
    test_weight w = {0};
    size_t n = (size_t)rows * cols;
    w.values = random_floats(n);
    w.bytes = malloc(n * ss_dtype_size(dtype));
    for (size_t i = 0; i < n; i++) {
        if (dtype == SS_F32) {
            ((float *)w.bytes)[i] = w.values[i];
        } else {
            uint16_t h = dtype == SS_BF16 ? ss_f32_to_bf16(w.values[i]) : to_f16(w.values[i]);
            ((uint16_t *)w.bytes)[i] = h;
            w.values[i] = dtype == SS_BF16 ? ss_bf16_to_f32(h) : ss_f16_to_f32(h);
        }
    }
    w.t = (ss_tensor){.name = "test", .dtype = dtype, .ndim = rows == 1 ? 1 : 2, .data = w.bytes,
                      .nbytes = n * ss_dtype_size(dtype), .file = "memory"};
    w.t.shape[0] = rows == 1 ? cols : rows;
    w.t.shape[1] = cols;
    return w;
}

static void free_weight(test_weight *w) {
    free(w->bytes);
    free(w->values);
}

/* max |a - b| over n, relative to max(1e-6, max |b|) */
static double rel_err(const float *a, const double *b, size_t n) {
    double diff = 0, scale = 1e-6;
    for (size_t i = 0; i < n; i++) {
        diff = fmax(diff, fabs(a[i] - b[i]));
        scale = fmax(scale, fabs(b[i]));
    }
    return diff / scale;
}

static ss_backend *be;

#define OPS (be->ops)

static const ss_dtype dtypes[] = {SS_F32, SS_F16, SS_BF16};

/* ---------------------------------------------------------------- matmul */

static void test_matmul_case(ss_dtype dtype, int rows, int cols, int n, bool with_bias) {
    test_weight w = make_weight(dtype, rows, cols), b = make_weight(dtype, 1, rows);
    ss_weight W, B;
    ss_error err = {0};
    CHECK(OPS->upload(be, &w.t, &W, &err) == SS_OK);
    CHECK(OPS->upload(be, &b.t, &B, &err) == SS_OK);
    CHECK(W.rows == rows && W.cols == cols && W.dtype == dtype && B.rows == 1 && B.cols == rows);
    float *x = random_floats((size_t)n * cols), *out = malloc((size_t)n * rows * sizeof *out);
    double *ref = malloc((size_t)n * rows * sizeof *ref);
    for (int i = 0; i < n; i++)
        for (int r = 0; r < rows; r++) {
            double s = with_bias ? b.values[r] : 0.0;
            for (int c = 0; c < cols; c++) s += (double)w.values[(size_t)r * cols + c] * x[(size_t)i * cols + c];
            ref[(size_t)i * rows + r] = s;
        }
    OPS->matmul(be, out, x, &W, with_bias ? &B : NULL, n);
    double e = rel_err(out, ref, (size_t)n * rows);
    CHECK_MSG(e < 2e-6 * sqrt(cols), "matmul %s %dx%d n=%d bias=%d: rel err %g", ss_dtype_name(dtype), rows, cols, n,
              with_bias, e);
    OPS->free_weight(be, &W);
    OPS->free_weight(be, &B);
    free_weight(&w);
    free_weight(&b);
    free(x);
    free(out);
    free(ref);
}

static void test_matmul(void) {
    for (int d = 0; d < 3; d++) {
        test_matmul_case(dtypes[d], 37, 75, 1, false);   /* odd sizes: vector tails */
        test_matmul_case(dtypes[d], 37, 75, 1, true);
        test_matmul_case(dtypes[d], 300, 257, 1, true);  /* several chunks per thread */
        test_matmul_case(dtypes[d], 37, 75, 5, true);    /* GEMV, four inputs at a time and one more */
        test_matmul_case(dtypes[d], 37, 75, 12, true);   /* sgemm */
        test_matmul_case(dtypes[d], 600, 2000, 9, false); /* 16-bit: more than one conversion block */
    }
}

/* ---------------------------------------------------------------- norms, embeddings */

static void test_rmsnorm(void) {
    int rows = 7, dim = 96;
    float eps = 1e-5f;
    for (int d = 0; d < 3; d++) {
        for (int weighted = 0; weighted < 2; weighted++) {
            test_weight w = make_weight(dtypes[d], 1, dim);
            ss_weight W = {0};
            ss_error err = {0};
            if (weighted) CHECK(OPS->upload(be, &w.t, &W, &err) == SS_OK);
            float *x = random_floats((size_t)rows * dim), *out = malloc((size_t)rows * dim * sizeof *out);
            double *ref = malloc((size_t)rows * dim * sizeof *ref);
            for (int r = 0; r < rows; r++) {
                double ss = 0;
                for (int i = 0; i < dim; i++) ss += (double)x[r * dim + i] * x[r * dim + i];
                double inv = 1.0 / sqrt(ss / dim + eps);
                for (int i = 0; i < dim; i++) ref[r * dim + i] = x[r * dim + i] * inv * (weighted ? w.values[i] : 1.0);
            }
            OPS->rmsnorm(be, out, x, &W, rows, dim, eps);
            CHECK_MSG(rel_err(out, ref, (size_t)rows * dim) < 1e-6, "rmsnorm %s weighted=%d", ss_dtype_name(dtypes[d]),
                      weighted);
            OPS->rmsnorm(be, x, x, &W, rows, dim, eps); /* in place, as the q/k norms use it */
            CHECK(rel_err(x, ref, (size_t)rows * dim) < 1e-6);
            free_weight(&w);
            free(x);
            free(out);
            free(ref);
        }
    }
}

static void test_embed(void) {
    int vocab = 50, dim = 33, n = 6;
    int tokens[] = {3, 49, 0, 3, 17, 25}, positions[] = {0, 1, 2, 3, 4, 5};
    for (int d = 0; d < 3; d++) {
        test_weight table = make_weight(dtypes[d], vocab, dim);
        ss_weight T;
        ss_error err = {0};
        CHECK(OPS->upload(be, &table.t, &T, &err) == SS_OK);
        float *x = malloc((size_t)n * dim * sizeof *x);
        OPS->set_batch(be, tokens, positions, n);
        OPS->embed(be, x, &T, n);
        bool same = true;
        for (int i = 0; i < n; i++)
            for (int j = 0; j < dim; j++) same &= x[i * dim + j] == table.values[tokens[i] * dim + j];
        CHECK_MSG(same, "embed %s", ss_dtype_name(dtypes[d]));
        free_weight(&table);
        free(x);
    }
}

/* ---------------------------------------------------------------- rope, KV, attention */

static void test_rope(void) {
    int n = 4, heads = 3, hd = 20, half = hd / 2;
    int tokens[] = {1, 2, 3, 4}, positions[] = {0, 7, 3, 1000};
    float inv_freq[10];
    for (int i = 0; i < half; i++) inv_freq[i] = (float)pow(10000.0, -2.0 * i / hd);
    ss_rope rope = {hd, inv_freq};
    float *x = random_floats((size_t)n * heads * hd);
    double *ref = malloc((size_t)n * heads * hd * sizeof *ref);
    for (int i = 0; i < n; i++)
        for (int h = 0; h < heads; h++)
            for (int d = 0; d < half; d++) {
                const float *v = x + ((size_t)i * heads + h) * hd;
                double a = (double)positions[i] * inv_freq[d];
                ref[((size_t)i * heads + h) * hd + d] = v[d] * cos(a) - v[d + half] * sin(a);
                ref[((size_t)i * heads + h) * hd + d + half] = v[d + half] * cos(a) + v[d] * sin(a);
            }
    OPS->set_batch(be, tokens, positions, n);
    OPS->rope(be, x, n, heads, &rope);
    /* the angle is formed in fp32, as transformers does: ~1e-4 rad off the exact one at position 1000 */
    double e = rel_err(x, ref, (size_t)n * heads * hd);
    CHECK_MSG(e < 5e-4, "rope rel err %g", e);
    free(x);
    free(ref);
}

static void test_kv_and_attention(int heads, int kv_heads) {
    int hd = 16, kv_dim = kv_heads * hd, ctx = 40;
    ss_error err = {0};
    void *kc, *vc;
    size_t row = OPS->kv_bytes(be, kv_dim);
    CHECK(OPS->alloc(be, row * ctx, &kc, &err) == SS_OK && OPS->alloc(be, row * ctx, &vc, &err) == SS_OK);
    float *host = malloc((size_t)ctx * kv_dim * sizeof *host);
    OPS->kv_read(be, host, kc, ctx, kv_dim);
    bool zero = true;
    for (int i = 0; i < ctx * kv_dim; i++) zero &= host[i] == 0.0f;
    CHECK_MSG(zero, "alloc is zero-filled");

    /* Fill positions 0..ctx-1 in two batches, the second one out of order. */
    float *K = random_floats((size_t)ctx * kv_dim), *V = random_floats((size_t)ctx * kv_dim);
    int first = 25, tokens[40] = {0}, pos[40];
    for (int i = 0; i < first; i++) pos[i] = i;
    OPS->set_batch(be, tokens, pos, first);
    OPS->kv_store(be, kc, vc, K, V, first, kv_dim);
    int rest = ctx - first;
    float *K2 = malloc((size_t)rest * kv_dim * sizeof *K2), *V2 = malloc((size_t)rest * kv_dim * sizeof *V2);
    for (int i = 0; i < rest; i++) {
        pos[i] = ctx - 1 - i;
        memcpy(K2 + (size_t)i * kv_dim, K + (size_t)pos[i] * kv_dim, (size_t)kv_dim * sizeof(float));
        memcpy(V2 + (size_t)i * kv_dim, V + (size_t)pos[i] * kv_dim, (size_t)kv_dim * sizeof(float));
    }
    OPS->set_batch(be, tokens, pos, rest);
    OPS->kv_store(be, kc, vc, K2, V2, rest, kv_dim);
    OPS->kv_read(be, host, kc, ctx, kv_dim);
    CHECK_MSG(memcmp(host, K, (size_t)ctx * kv_dim * sizeof(float)) == 0, "K cache round trip");
    OPS->kv_read(be, host, vc, ctx, kv_dim);
    CHECK_MSG(memcmp(host, V, (size_t)ctx * kv_dim * sizeof(float)) == 0, "V cache round trip");

    /* Queries at scattered positions attend to [0, p]. */
    int n = 5, qpos[] = {0, 39, 12, 7, 24};
    float *q = random_floats((size_t)n * heads * hd), *out = malloc((size_t)n * heads * hd * sizeof *out);
    for (size_t i = 0; i < (size_t)n * heads * hd; i++) q[i] *= 3.0f; /* peaked softmax */
    double *ref = calloc((size_t)n * heads * hd, sizeof *ref), *p = malloc((size_t)ctx * sizeof *p);
    for (int i = 0; i < n; i++)
        for (int h = 0; h < heads; h++) {
            int kvh = h / (heads / kv_heads), len = qpos[i] + 1;
            const float *qv = q + ((size_t)i * heads + h) * hd;
            double max = -INFINITY, sum = 0;
            for (int t = 0; t < len; t++) {
                double s = 0;
                for (int d = 0; d < hd; d++) s += (double)qv[d] * K[(size_t)t * kv_dim + kvh * hd + d];
                p[t] = s / sqrt(hd);
                max = fmax(max, p[t]);
            }
            for (int t = 0; t < len; t++) sum += (p[t] = exp(p[t] - max));
            for (int t = 0; t < len; t++)
                for (int d = 0; d < hd; d++)
                    ref[((size_t)i * heads + h) * hd + d] += p[t] / sum * V[(size_t)t * kv_dim + kvh * hd + d];
        }
    OPS->set_batch(be, tokens, qpos, n);
    OPS->attention(be, out, q, kc, vc, n, heads, kv_heads, hd);
    double e = rel_err(out, ref, (size_t)n * heads * hd);
    CHECK_MSG(e < 1e-5, "attention heads=%d kv_heads=%d rel err %g", heads, kv_heads, e);
    CHECK(OPS->sync(be, &err) == SS_OK);

    OPS->free(be, kc);
    OPS->free(be, vc);
    free(host);
    free(K);
    free(V);
    free(K2);
    free(V2);
    free(q);
    free(out);
    free(ref);
    free(p);
}

/* ---------------------------------------------------------------- element-wise, weights */

static void test_elementwise(void) {
    size_t n = 50001; /* several pool chunks and a ragged end */
    float *x = random_floats(n), *y = random_floats(n);
    double *ref = malloc(n * sizeof *ref);
    for (size_t i = 0; i < n; i++) ref[i] = (double)x[i] + y[i];
    OPS->add(be, x, y, n);
    CHECK_MSG(rel_err(x, ref, n) < 1e-7, "add");
    for (size_t i = 0; i < n; i++) ref[i] = (double)x[i] - 0.75 * y[i];
    OPS->scale_add(be, x, -0.75f, y, n);
    CHECK_MSG(rel_err(x, ref, n) < 1e-7, "scale_add");
    for (size_t i = 0; i < n; i++) ref[i] = (double)x[i] * (1.0 - 3.0);
    OPS->scale_add(be, x, -3.0f, x, n); /* aliased: x += a*x */
    CHECK_MSG(rel_err(x, ref, n) < 1e-7, "scale_add aliased");
    for (size_t i = 0; i < n; i++) ref[i] = (double)x[i] / (1.0 + exp(-(double)x[i])) * y[i];
    OPS->silu_mul(be, x, y, n);
    CHECK_MSG(rel_err(x, ref, n) < 1e-6, "silu_mul");
    free(x);
    free(y);
    free(ref);
}

static void test_upload_f32(void) {
    float src[6] = {1.5f, -2, 3, 4, 5, -6.25f};
    ss_weight w;
    ss_error err = {0};
    CHECK(OPS->upload_f32(be, src, 2, 3, &w, &err) == SS_OK);
    CHECK(w.dtype == SS_F32 && w.rows == 2 && w.cols == 3 && w.data != src);
    src[0] = 99; /* the backend keeps its own copy */
    float x[3] = {1, 2, 3}, out[2];
    OPS->matmul(be, out, x, &w, NULL, 1);
    CHECK(out[0] == 1.5f - 4 + 9 && out[1] == 4 + 10 - 18.75f);
    OPS->free_weight(be, &w);
    CHECK(w.data == NULL);
}

static void test_bad_tensor(void) {
    ss_tensor t = {.name = "cube", .dtype = SS_F32, .ndim = 3, .shape = {2, 2, 2}, .data = "", .nbytes = 32};
    ss_weight w;
    ss_error err = {0};
    CHECK(OPS->upload(be, &t, &w, &err) == SS_EUNSUPPORTED);
    CHECK(strstr(err.msg, "cube") != NULL);
}

int main(void) {
    ss_error err = {0};
    if (ss_backend_cpu_create(&be, &err) != SS_OK) {
        fprintf(stderr, "cpu backend: %s\n", err.msg);
        return 1;
    }
    CHECK(strcmp(OPS->name, "cpu") == 0);
    test_matmul();
    test_rmsnorm();
    test_embed();
    test_rope();
    test_kv_and_attention(4, 2);
    test_kv_and_attention(3, 3);
    test_kv_and_attention(8, 1);
    test_elementwise();
    test_upload_f32();
    test_bad_tensor();
    OPS->destroy(be);
    return check_done();
}
