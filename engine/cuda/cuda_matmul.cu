/* cuda_matmul.cu — matmul for batches (n > 1) through cuBLASLt on the tensor cores: the fp32
 * activations are rounded to bf16 into a scratch buffer (by the kernel that produced them when it
 * could, else by a conversion pass), multiplied by the bf16 weight with fp32 accumulation, and
 * written as fp32.
 *
 * Shapes: W is [rows, cols] row-major, x [n, cols], out [n, rows]. Column-major, W is a cols x rows
 * matrix and x a cols x n one, so out (rows x n column-major, ld rows) = op_T(W) * x: the "TN"
 * layout, m = rows, n = n, k = cols. The algorithm for each shape is chosen once by cuBLASLt's
 * heuristic and cached with its descriptors. */
#include <stdio.h>

#include "cuda_internal.h"

static bool lt_ok(cuda_backend *c, cublasStatus_t s, const char *what, int m, int n, int k) {
    if (s == CUBLAS_STATUS_SUCCESS) return true;
    cb_fail(c, SS_EDEVICE, "cuda backend: cuBLASLt %s for %dx%d by %d: status %d", what, m, k, n, (int)s);
    return false;
}

static void destroy_plan(cb_gemm_plan *p) {
    if (p->desc) cublasLtMatmulDescDestroy(p->desc);
    if (p->a) cublasLtMatrixLayoutDestroy(p->a);
    if (p->b) cublasLtMatrixLayoutDestroy(p->b);
    if (p->d) cublasLtMatrixLayoutDestroy(p->d);
    *p = (cb_gemm_plan){};
}

static bool make_plan(cuda_backend *c, cb_gemm_plan *p, int m, int n, int k) {
    const cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
    cublasLtMatmulPreference_t pref = NULL;
    cublasLtMatmulHeuristicResult_t result = {};
    int found = 0;
    uint64_t workspace = c->lt_workspace_bytes;
    bool ok = lt_ok(c, cublasLtMatmulDescCreate(&p->desc, CUBLAS_COMPUTE_32F, CUDA_R_32F), "descriptor", m, n, k) &&
              lt_ok(c, cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta), "transa", m,
                    n, k) &&
              lt_ok(c, cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb), "transb", m,
                    n, k) &&
              lt_ok(c, cublasLtMatrixLayoutCreate(&p->a, CUDA_R_16BF, k, m, k), "layout", m, n, k) &&
              lt_ok(c, cublasLtMatrixLayoutCreate(&p->b, CUDA_R_16BF, k, n, k), "layout", m, n, k) &&
              lt_ok(c, cublasLtMatrixLayoutCreate(&p->d, CUDA_R_32F, m, n, m), "layout", m, n, k) &&
              lt_ok(c, cublasLtMatmulPreferenceCreate(&pref), "preference", m, n, k) &&
              lt_ok(c,
                    cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &workspace,
                                                         sizeof workspace),
                    "preference", m, n, k) &&
              lt_ok(c, cublasLtMatmulAlgoGetHeuristic(c->lt, p->desc, p->a, p->b, p->d, p->d, pref, 1, &result, &found),
                    "heuristic", m, n, k);
    if (pref) cublasLtMatmulPreferenceDestroy(pref);
    if (ok && (found < 1 || result.state != CUBLAS_STATUS_SUCCESS)) {
        cb_fail(c, SS_EUNSUPPORTED, "cuda backend: cuBLASLt has no bf16 algorithm for %dx%d by %d", m, k, n);
        ok = false;
    }
    if (!ok) {
        destroy_plan(p);
        return false;
    }
    p->algo = result.algo;
    p->m = m, p->n = n, p->k = k, p->valid = true;
    return true;
}

static cb_gemm_plan *plan_for(cuda_backend *c, int m, int n, int k) {
    for (int i = 0; i < CB_GEMM_PLANS; i++) {
        cb_gemm_plan *p = &c->plans[i];
        if (p->valid && p->m == m && p->n == n && p->k == k) return p;
    }
    cb_gemm_plan *p = &c->plans[c->next_plan];
    c->next_plan = (c->next_plan + 1) % CB_GEMM_PLANS;
    destroy_plan(p); /* a graph replays with its own copy of the algorithm, so the slot is free */
    return make_plan(c, p, m, n, k) ? p : NULL;
}

uint16_t *cb_bf16_side(cuda_backend *c, const float *x, size_t count, int rows) {
    if (rows <= SK_GEMV_MAX_VECTORS || !cb_reserve(c, &c->act_bf16, count * 2, "bf16 activations")) return nullptr;
    c->act_src = x, c->act_count = count, c->act_seq = c->op_seq;
    return (uint16_t *)c->act_bf16.p;
}

void cb_gemm(cuda_backend *c, float *out, const float *x, const ss_weight *w, const ss_weight *bias, int n) {
    const int m = w->rows, k = w->cols;
    const size_t count = (size_t)n * k;
    const void *before = c->act_bf16.p;
    if (!cb_reserve(c, &c->act_bf16, count * 2, "bf16 activations")) return;
    const sk::launch_ctx l = cb_launch(c);
    uint16_t *xb = (uint16_t *)c->act_bf16.p;
    /* q, k and v (gate and up) read one input in consecutive matmuls: one conversion serves them,
     * and the op that produced x may have written the copy already (cb_bf16_side; in this op when
     * it was a pending norm flushed just now). Any other op in between (cb_of counts every op) may
     * have written x, and so converts again. */
    const bool recent = c->act_seq + 1 == c->op_seq || c->act_seq == c->op_seq;
    const bool fresh = c->act_src == x && c->act_count == count && recent && before == xb;
    if (!fresh && !cb_check(c, sk::to_bf16(l, xb, x, count), "activations to bf16")) return;
    c->act_src = x, c->act_count = count, c->act_seq = c->op_seq;
    const uintptr_t o = (uintptr_t)out, xs = (uintptr_t)x, ob = (size_t)n * m * sizeof(float);
    if (o < xs + count * sizeof(float) && xs < o + ob) c->act_src = nullptr; /* this product overwrites x */
    cb_gemm_plan *p = plan_for(c, m, n, k);
    if (!p) return;
    const float alpha = 1.0f, beta = 0.0f;
    if (!lt_ok(c,
               cublasLtMatmul(c->lt, p->desc, &alpha, w->data, p->a, xb, p->b, &beta, out, p->d, out, p->d, &p->algo,
                              c->lt_workspace, c->lt_workspace_bytes, cb_stream(c)),
               "matmul", m, n, k))
        return;
    if (bias) cb_check(c, sk::add_bias(l, out, (const uint16_t *)bias->data, n, m), "bias");
}

void cb_gemm_destroy(cuda_backend *c) {
    for (int i = 0; i < CB_GEMM_PLANS; i++) destroy_plan(&c->plans[i]);
}
