/* cpu_matmul.c — out[n, rows] = x[n, cols] @ W^T (+ bias) on the CPU.
 *
 * Up to GEMV_MAX_N positions (decoding, speculative verification): a GEMV split over rows across the
 * thread pool, reading the weight in its own dtype once; each row, while in L1, is dotted with the
 * positions' inputs four at a time. More positions: OpenBLAS sgemm; 16-bit weights are converted to fp32 a block of
 * rows at a time (CPU_BLOCK_FLOATS) so the conversion stays in cache and costs no weight-sized
 * buffer. (Converting a whole weight costs more than reading it n times over for small n: on 2 cores
 * an 8192x384 BF16 matrix takes 0.1 ms as a GEMV and 0.8 ms through conversion + sgemm at n = 2.) */
#include <cblas.h>

#include "cpu_internal.h"
#include "cpu_vec.h"

/* A chunk handed to another thread should be worth at least this many multiply-adds. */
#define MIN_CHUNK_MACS 32768
/* Batches up to this size use the GEMV. */
#define GEMV_MAX_N 8

typedef struct {
    float *out;
    const float *x;
    const ss_weight *w, *bias;
    int n;
} gemv_job;

static size_t row_bytes(const ss_weight *w) { return (size_t)w->cols * ss_dtype_size(w->dtype); }

static int rows_per_chunk(int cols) { return cols >= MIN_CHUNK_MACS ? 1 : MIN_CHUNK_MACS / cols; }

static void gemv_rows(void *ctx, int begin, int end, int thread) {
    const gemv_job *j = ctx;
    const char *base = j->w->data;
    size_t stride = row_bytes(j->w);
    int rows = j->w->rows, cols = j->w->cols;
    for (int r = begin; r < end; r++) {
        const void *row = base + (size_t)r * stride;
        float b = j->bias ? cpu_load(j->bias->dtype, j->bias->data, (size_t)r) : 0.0f;
        int i = 0;
        for (; i + 4 <= j->n; i += 4) {
            float d[4];
            cpu_dot4(j->w->dtype, row, j->x + (size_t)i * cols, (size_t)cols, cols, d);
            for (int v = 0; v < 4; v++) j->out[(size_t)(i + v) * rows + r] = d[v] + b;
        }
        for (; i < j->n; i++)
            j->out[(size_t)i * rows + r] = cpu_dot(j->w->dtype, row, j->x + (size_t)i * cols, cols) + b;
    }
}

static void gemv(cpu_backend *c, float *out, const float *x, const ss_weight *w, const ss_weight *bias, int n) {
    gemv_job job = {out, x, w, bias, n};
    cpu_pool_for(c->pool, w->rows, rows_per_chunk(w->cols * n), gemv_rows, &job);
}

typedef struct {
    const ss_weight *w;
    int first_row;
    float *dst;
} convert_job;

static void convert_rows(void *ctx, int begin, int end, int thread) {
    const convert_job *j = ctx;
    const char *base = j->w->data;
    size_t stride = row_bytes(j->w), cols = (size_t)j->w->cols;
    for (int r = begin; r < end; r++)
        cpu_to_f32(j->w->dtype, base + (size_t)(j->first_row + r) * stride, j->dst + (size_t)r * cols, cols);
}

/* out[:, first:first+count] = x @ W_block^T where W_block is fp32 [count, cols] with leading dim cols. */
static void sgemm_block(float *out, const float *x, const float *wblock, int n, int first, int count,
                        int rows, int cols) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, count, cols, 1.0f, x, cols, wblock, cols, 0.0f,
                out + first, rows);
}

static void add_bias(float *out, const ss_weight *bias, int n, int rows) {
    for (int i = 0; i < n; i++)
        for (int r = 0; r < rows; r++) out[(size_t)i * rows + r] += cpu_load(bias->dtype, bias->data, (size_t)r);
}

void cpu_matmul(ss_backend *b, float *out, const float *x, const ss_weight *w, const ss_weight *bias, int n) {
    cpu_backend *c = cpu_of(b);
    if (bias && !bias->data) bias = NULL;
    if (n <= GEMV_MAX_N || (w->dtype != SS_F32 && (size_t)w->cols > CPU_BLOCK_FLOATS)) {
        gemv(c, out, x, w, bias, n); /* (the second case: not even one row fits the conversion block) */
        return;
    }
    if (w->dtype == SS_F32) {
        sgemm_block(out, x, w->data, n, 0, w->rows, w->rows, w->cols);
    } else {
        int block_rows = (int)(CPU_BLOCK_FLOATS / (size_t)w->cols);
        for (int first = 0; first < w->rows; first += block_rows) {
            int count = w->rows - first < block_rows ? w->rows - first : block_rows;
            convert_job job = {w, first, c->block};
            cpu_pool_for(c->pool, count, rows_per_chunk(w->cols), convert_rows, &job);
            sgemm_block(out, x, c->block, n, first, count, w->rows, w->cols);
        }
    }
    if (bias) add_bias(out, bias, n, w->rows);
}
