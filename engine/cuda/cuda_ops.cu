/* cuda_ops.cu — the compute ops of the CUDA backend, and their fusion.
 *
 * forward.c issues one op at a time. Launching one kernel per op would cost a launch gap each
 * (about 16 per layer); instead the backend keeps the last fusable op pending and merges what
 * follows into it when the pattern allows, launching when the next op does not fit (or at any
 * memory call, copy, sync or graph boundary):
 *   rmsnorm(xn, x) + matmul(q, xn) + matmul(k, xn) + matmul(v, xn)  ->  one GEMV (norm prologue,
 *       three segments; batches up to SK_GEMV_MAX_VECTORS positions: decode, draft, verify)
 *   matmul(g, xn) + matmul(u, xn) + silu_mul(g, u)                  ->  one GEMV (gate/up, SiLU)
 *   matmul(y, a) + add(x, y)                                        ->  one GEMV (residual epilogue)
 *   the q/k/v GEMV + rope(q) + rope(k) + kv_store                   ->  the same GEMV, rotating and
 *       storing in its epilogue (llama-style models, no q/k norm)
 *   rmsnorm(q, q) + rmsnorm(k, k) + rope(q) + rope(k) + kv_store    ->  one prep kernel (qwen3)
 *   add(x, y) + rmsnorm(out, x)                                     ->  one add+norm kernel
 * With SPECSCOPE_CUDA_PERSISTENT=1 (opt-in: slower so far, see kernels/persistent.cu) the launches
 * of one-vector GEMVs and decode attention are held back as the phases of one persistent kernel,
 * launched when anything else needs the stream (cb_stream), so a decode step is the embedding, one
 * or two persistent launches and the pick (kernel by kernel while CUPTI collects kernels).
 * One-vector GEMVs of at least 4096 rows of 4096 columns (llama-3.1-8b's) take the ring kernel of
 * kernels/persistent.cu launched alone (SPECSCOPE_CUDA_RING=0 turns it off).
 * Every fusion keeps each op's visible effect (a fused norm still writes xn, a fused residual add
 * still writes y), and is taken only when the buffers involved are identical or disjoint, so the
 * result equals the op-by-op one (SPECSCOPE_CUDA_FUSE=0 runs op by op; tests compare the two). */
#include <stdio.h>
#include <string.h>

#include "cuda_internal.h"

extern "C" {
#include "trace.h"
}

/* ---------------------------------------------------------------- helpers */

static const uint16_t *wbits(const ss_weight *w) { return w && w->data ? (const uint16_t *)w->data : nullptr; }

static bool overlap(const void *a, size_t na, const void *b, size_t nb) {
    uintptr_t x = (uintptr_t)a, y = (uintptr_t)b;
    return na && nb && x < y + nb && y < x + na;
}

static size_t fbytes(size_t count) { return count * sizeof(float); }

/* Launch result check with the op's shape in the message. */
#define LAUNCHED(c, expr, ...)                                          \
    do {                                                                \
        cudaError_t e_ = (expr);                                        \
        if (e_ != cudaSuccess || (e_ = cudaGetLastError()) != cudaSuccess) { \
            char what_[160];                                            \
            snprintf(what_, sizeof what_, __VA_ARGS__);                 \
            cb_check(c, e_, what_);                                     \
        }                                                               \
    } while (0)

static int gemv_blocks_per_sm(cuda_backend *c, int kind, int cols, int nvec) {
    for (int i = 0; i < c->n_occupancy; i++)
        if (c->occupancy[i].kind == kind && c->occupancy[i].cols == cols && c->occupancy[i].nvec == nvec)
            return c->occupancy[i].blocks;
    int blocks = sk::gemv_occupancy(kind, cols, nvec);
    int at = c->n_occupancy < CB_OCCUPANCY ? c->n_occupancy++ : (int)((unsigned)(cols + nvec) % CB_OCCUPANCY);
    c->occupancy[at].kind = kind, c->occupancy[at].cols = cols, c->occupancy[at].nvec = nvec;
    c->occupancy[at].blocks = blocks;
    return blocks;
}

/* The device copy of a rotary table (uploaded on first use; NULL inside a capture, which it spoils). */
static const float *rope_table(cuda_backend *c, const ss_rope *rope) {
    const size_t bytes = (size_t)(rope->head_dim / 2) * sizeof(float);
    for (int i = 0; i < CB_ROPES; i++) {
        cb_rope *r = &c->ropes[i];
        if (r->device && r->host == rope->inv_freq && r->head_dim == rope->head_dim &&
            memcmp(r->values, rope->inv_freq, bytes) == 0)
            return r->device;
    }
    if (c->capturing) {
        c->capture_spoiled = true;
        return nullptr;
    }
    cb_rope *r = &c->ropes[0];
    for (int i = 0; i < CB_ROPES; i++)
        if (!c->ropes[i].device) {
            r = &c->ropes[i];
            break;
        }
    if (r->device) { /* evicting a table that captured graphs may hold */
        cb_drop_graphs(c);
        cudaStreamSynchronize(cb_stream(c));
        cudaFree(r->device);
        r->device = nullptr;
    }
    if (!cb_check(c, cudaMalloc((void **)&r->device, sizeof r->values), "rotary table")) return nullptr;
    memcpy(r->values, rope->inv_freq, bytes);
    r->host = rope->inv_freq;
    r->head_dim = rope->head_dim;
    if (!cb_check(c, cudaMemcpyAsync(r->device, r->values, bytes, cudaMemcpyHostToDevice, cb_stream(c)), "rotary table"))
        return nullptr;
    return r->device;
}

/* ---------------------------------------------------------------- the persistent kernel */

bool cb_persistent_now(cuda_backend *c) { return c->persist && c->phases && !ss_trace_gpu_running(); }

static int phase_blocks_per_sm(cuda_backend *c, size_t smem) {
    if (c->occ_smem != smem || c->occ_blocks == 0) c->occ_smem = smem, c->occ_blocks = sk::persistent_blocks_per_sm(smem);
    return c->occ_blocks;
}

void cb_phases_flush(cuda_backend *c) {
    sk::persistent_params *pp = c->phases;
    if (!pp || pp->count == 0) return;
    const int count = pp->count, per_sm = phase_blocks_per_sm(c, sk::persistent_smem(c->phase_smem, c->smem_optin));
    sk::launch_ctx l = {c->stream, c->pdl, c->sms, c->smem_optin};
    LAUNCHED(c, sk::persistent(l, *pp, c->phase_smem, c->sms * per_sm), "persistent kernel of %d phases", count);
    pp->count = 0;
    c->phase_smem = 0;
}

/* Holds a launch back as a phase (false: it is launched on its own). A launch of g (or a). */
static bool take_phase(cuda_backend *c, const sk::gemv_params *g, const sk::attn_params *a) {
    if (!cb_persistent_now(c) || !cb_ok(c)) return false;
    if (g ? !sk::persistent_takes(*g, c->smem_optin) : !sk::persistent_takes(*a)) return false;
    const size_t need = g ? sk::persistent_smem_of(g->cols) : 0;
    if (phase_blocks_per_sm(c, sk::persistent_smem(need > c->phase_smem ? need : c->phase_smem, c->smem_optin)) < 1)
        return false;
    if (c->phases->count == SK_PERSIST_MAX_PHASES) cb_phases_flush(c);
    if (need > c->phase_smem) c->phase_smem = need;
    sk::phase &ph = c->phases->ph[c->phases->count++];
    ph.kind = g ? sk::gemv_kind(*g) : sk::PHASE_ATTN;
    if (g) ph.gemv = *g;
    else ph.attn = *a;
    return true;
}

/* ---------------------------------------------------------------- launching what is pending */

/* A GEMV: a phase of the persistent kernel, the ring kernel (one vector, shapes it takes), or the
 * register kernel, with one warp a unit for the ring's shapes (the same sums for every batch). */
static void launch_gemv(cuda_backend *c, const sk::gemv_params &g) {
    if (take_phase(c, &g, nullptr)) return;
    const bool ring = c->ring && sk::gemv_ring_shape(g, c->smem_optin);
    if (ring && g.nvec == 1) {
        LAUNCHED(c, sk::gemv_ring(cb_launch(c), g), "ring gemv %d segment(s), %d cols", g.nseg, g.cols);
        return;
    }
    LAUNCHED(c, sk::gemv(cb_launch(c), g, gemv_blocks_per_sm(c, sk::gemv_kind(g), g.cols, g.nvec), c->teams && !ring),
             "gemv %d segment(s), %d cols, %d vectors", g.nseg, g.cols, g.nvec);
}

static void launch_prep(cuda_backend *c, const sk::prep_params &p) {
    LAUNCHED(c, sk::prep(cb_launch(c), p), "rope/q-k norm/KV store over %d positions", p.n);
}

void cb_flush(cuda_backend *c) {
    cb_pending_kind kind = c->pend.kind;
    c->pend.kind = PEND_NONE;
    if (!cb_ok(c)) return;
    switch (kind) { /* cb_launch only for what is launched: it first launches held-back phases */
    case PEND_NONE: break;
    case PEND_NORM: {
        const auto &n = c->pend.norm;
        uint16_t *side = cb_bf16_side(c, n.out, (size_t)n.rows * n.dim, n.rows);
        LAUNCHED(c, sk::rmsnorm(cb_launch(c), n.out, n.x, nullptr, n.w, n.rows, n.dim, n.eps, side), "rmsnorm %dx%d",
                 n.rows, n.dim);
        break;
    }
    case PEND_ADD:
        LAUNCHED(c, sk::axpy(cb_launch(c), c->pend.add.x, 1.0f, c->pend.add.y, c->pend.add.count), "add of %zu",
                 c->pend.add.count);
        break;
    case PEND_GEMV: launch_gemv(c, c->pend.gemv); break;
    case PEND_PREP: launch_prep(c, c->pend.prep); break;
    }
}

/* Either keeps the op pending (fusion on) or launches it now. */
static void pend_gemv(cuda_backend *c, const sk::gemv_params &g) {
    if (!c->fuse) return launch_gemv(c, g);
    c->pend.kind = PEND_GEMV;
    c->pend.gemv = g;
}

static void pend_prep(cuda_backend *c, const sk::prep_params &p) {
    if (!c->fuse) return launch_prep(c, p);
    c->pend.kind = PEND_PREP;
    c->pend.prep = p;
}

/* ---------------------------------------------------------------- element-wise, embed */

void cuda_embed(ss_backend *b, float *x, const ss_weight *table, int n) {
    cuda_backend *c = cb_of(b);
    cb_flush(c);
    if (!cb_ok(c)) return;
    if (n > c->n) return cb_fail(c, SS_EARG, "cuda backend: embed of %d positions, the batch has %d", n, c->n);
    LAUNCHED(c, sk::embed(cb_launch(c), x, wbits(table), c->d_tokens, n, table->cols), "embed %dx%d", n, table->cols);
}

void cuda_scale_add(ss_backend *b, float *x, float a, const float *y, size_t count) {
    cuda_backend *c = cb_of(b);
    cb_flush(c);
    if (!cb_ok(c) || !count) return;
    LAUNCHED(c, sk::axpy(cb_launch(c), x, a, y, count), "scale_add of %zu", count);
}

/* Whether [p, p + bytes) meets any buffer the pending GEMV reads or writes. */
static bool gemv_touches(const sk::gemv_params &g, const void *p, size_t bytes) {
    const size_t nv = (size_t)g.nvec;
    if (overlap(p, bytes, g.x, fbytes(nv * g.cols)) || (g.norm_out && overlap(p, bytes, g.norm_out, fbytes(nv * g.cols))) ||
        (g.residual && overlap(p, bytes, g.residual, fbytes(nv * g.seg[0].rows))))
        return true;
    for (int s = 0; s < g.nseg; s++)
        if (overlap(p, bytes, g.seg[s].out, fbytes(nv * g.seg[s].rows))) return true;
    return false;
}

void cuda_add(ss_backend *b, float *x, const float *y, size_t count) {
    cuda_backend *c = cb_of(b);
    if (!cb_ok(c) || !count) return;
    sk::gemv_params &g = c->pend.gemv;
    if (c->pend.kind == PEND_GEMV && sk::gemv_kind(g) == sk::GEMV_ROWS && g.nseg == 1 && !g.residual && g.seg[0].out == y &&
        (size_t)g.nvec * g.seg[0].rows == count && !gemv_touches(g, x, fbytes(count))) {
        g.residual = x; /* out = W a, then x += out: the epilogue does both */
        return;
    }
    cb_flush(c);
    if (!c->fuse) {
        LAUNCHED(c, sk::axpy(cb_launch(c), x, 1.0f, y, count), "add of %zu", count);
        return;
    }
    c->pend.kind = PEND_ADD;
    c->pend.add.x = x, c->pend.add.y = y, c->pend.add.count = count;
}

void cuda_silu_mul(ss_backend *b, float *gate, const float *up, size_t count) {
    cuda_backend *c = cb_of(b);
    if (!cb_ok(c) || !count) return;
    sk::gemv_params &g = c->pend.gemv;
    if (c->pend.kind == PEND_GEMV && sk::gemv_kind(g) == sk::GEMV_ROWS && g.nseg == 2 && !g.residual && g.seg[0].out == gate &&
        g.seg[1].out == up && g.seg[0].rows == g.seg[1].rows && (size_t)g.nvec * g.seg[0].rows == count) {
        g.glu = true;
        return;
    }
    cb_flush(c);
    if (!cb_ok(c)) return;
    uint16_t *side = cb_bf16_side(c, gate, count, c->n);
    LAUNCHED(c, sk::silu_mul(cb_launch(c), gate, up, count, side), "silu_mul of %zu", count);
}

/* ---------------------------------------------------------------- norms */

/* An in-place norm of head rows (q/k norm) joins the pending prep kernel, or starts one. */
static bool norm_into_prep(cuda_backend *c, float *x, const ss_weight *w, int rows, int dim, float eps) {
    if (dim % 2 || dim > SK_PREP_MAX_HEAD_DIM || c->n <= 0 || rows % c->n) return false;
    const int heads = rows / c->n;
    sk::prep_tensor t = {x, heads, true, wbits(w), false};
    sk::prep_params &p = c->pend.prep;
    if (c->pend.kind == PEND_PREP && !p.store && p.n == c->n && p.head_dim == dim && p.eps == eps &&
        p.nt < SK_PREP_MAX_TENSORS) {
        bool disjoint = true;
        for (int j = 0; j < p.nt; j++)
            disjoint &= !overlap(x, fbytes((size_t)rows * dim), p.t[j].x, fbytes((size_t)p.n * p.t[j].heads * dim));
        if (disjoint) {
            p.t[p.nt++] = t;
            return true;
        }
    }
    cb_flush(c);
    sk::prep_params q = {};
    q.t[0] = t;
    q.nt = 1;
    q.n = c->n;
    q.head_dim = dim;
    q.eps = eps;
    q.positions = c->d_positions;
    q.k_slot = -1;
    pend_prep(c, q);
    return true;
}

void cuda_rmsnorm(ss_backend *b, float *out, const float *x, const ss_weight *w, int rows, int dim, float eps) {
    cuda_backend *c = cb_of(b);
    if (!cb_ok(c) || rows <= 0 || dim <= 0) return;
    float *xm = (float *)x; /* written only when a pending add is fused in */
    const size_t bytes = fbytes((size_t)rows * dim);
    if (c->fuse && c->pend.kind == PEND_ADD && c->pend.add.x == x && c->pend.add.count == (size_t)rows * dim &&
        (out == c->pend.add.y || !overlap(out, bytes, c->pend.add.y, bytes))) {
        c->pend.kind = PEND_NONE;
        uint16_t *side = cb_bf16_side(c, out, (size_t)rows * dim, rows);
        LAUNCHED(c, sk::rmsnorm(cb_launch(c), out, xm, c->pend.add.y, wbits(w), rows, dim, eps, side),
                 "add+rmsnorm %dx%d", rows, dim);
        return;
    }
    if (c->fuse && out == x && norm_into_prep(c, xm, w, rows, dim, eps)) return;
    cb_flush(c);
    if (!cb_ok(c)) return;
    if (c->fuse && out != x && !overlap(out, bytes, x, bytes)) {
        c->pend.kind = PEND_NORM;
        c->pend.norm.out = out, c->pend.norm.x = xm, c->pend.norm.w = wbits(w);
        c->pend.norm.rows = rows, c->pend.norm.dim = dim, c->pend.norm.eps = eps;
        return;
    }
    uint16_t *side = cb_bf16_side(c, out, (size_t)rows * dim, rows);
    LAUNCHED(c, sk::rmsnorm(cb_launch(c), out, xm, nullptr, wbits(w), rows, dim, eps, side), "rmsnorm %dx%d", rows, dim);
}

/* ---------------------------------------------------------------- matmul */

static bool weight_ok(cuda_backend *c, const ss_weight *w, const ss_weight *bias) {
    if (w->dtype != SS_BF16 || !w->data) {
        cb_fail(c, SS_EUNSUPPORTED, "cuda backend: matmul on a %s weight (device weights are BF16)",
                ss_dtype_name(w->dtype));
        return false;
    }
    if (bias && ((size_t)bias->rows * bias->cols != (size_t)w->rows || bias->dtype != SS_BF16)) {
        cb_fail(c, SS_EARG, "cuda backend: bias of %d elements for a weight of %d rows", bias->rows * bias->cols,
                w->rows);
        return false;
    }
    return true;
}

void cuda_matmul(ss_backend *b, float *out, const float *x, const ss_weight *w, const ss_weight *bias, int n) {
    cuda_backend *c = cb_of(b);
    if (bias && !bias->data) bias = nullptr;
    if (!cb_ok(c) || n <= 0 || !weight_ok(c, w, bias)) return;
    const int rows = w->rows, cols = w->cols;
    const sk::gemv_seg seg = {wbits(w), wbits(bias), out, rows, 0, nullptr};
    const size_t out_bytes = fbytes((size_t)n * rows);
    const bool gemv = sk::gemv_supported(cols, n, c->smem_optin);
    const size_t in_bytes = fbytes((size_t)n * cols);
    if (c->fuse && gemv && c->pend.kind == PEND_NORM) {
        const auto &nm = c->pend.norm;
        if (nm.out == x && nm.rows == n && nm.dim == cols && !overlap(out, out_bytes, nm.x, in_bytes) &&
            !overlap(out, out_bytes, nm.out, in_bytes)) {
            sk::gemv_params g = {};
            g.x = nm.x, g.cols = cols, g.nvec = n, g.norm = true, g.norm_w = nm.w, g.eps = nm.eps, g.norm_out = nm.out;
            g.nseg = 1, g.seg[0] = seg;
            pend_gemv(c, g);
            return;
        }
    }
    if (c->fuse && gemv && c->pend.kind == PEND_GEMV) {
        sk::gemv_params &g = c->pend.gemv;
        const float *input = g.norm ? g.norm_out : g.x;
        if (input == x && g.cols == cols && g.nvec == n && !g.glu && !g.residual && g.nseg < SK_GEMV_MAX_SEGS &&
            (sk::gemv_kind(g) != sk::GEMV_PAIRS || rows % 2 == 0) &&
            !gemv_touches(g, out, out_bytes)) {
            g.seg[g.nseg++] = seg;
            return;
        }
    }
    cb_flush(c);
    if (!cb_ok(c)) return;
    const int fit = sk::gemv_max_vectors(cols, c->smem_optin);
    if (gemv) {
        sk::gemv_params g = {};
        g.x = x, g.cols = cols, g.nvec = n, g.nseg = 1, g.seg[0] = seg;
        pend_gemv(c, g);
    } else if (n <= SK_GEMV_MAX_VECTORS && fit >= 1) {
        /* A verification batch whose vectors do not all fit in shared memory at once (the 8B
         * down projection): groups of vectors, each a GEMV, keep its fp32 arithmetic. */
        for (int first = 0; first < n; first += fit) {
            sk::gemv_params g = {};
            g.x = x + (size_t)first * cols, g.cols = cols, g.nvec = n - first < fit ? n - first : fit, g.nseg = 1;
            g.seg[0] = sk::gemv_seg{wbits(w), wbits(bias), out + (size_t)first * rows, rows, 0, nullptr};
            launch_gemv(c, g);
        }
    } else if (cols % 8 || rows % 4 || cols > (1 << 20)) {
        LAUNCHED(c, sk::matmul_plain(cb_launch(c), out, x, wbits(w), wbits(bias), n, rows, cols), "matmul %dx%d by %d",
                 rows, cols, n);
    } else {
        cb_gemm(c, out, x, w, bias, n);
    }
}

/* ---------------------------------------------------------------- rope, KV store */

/* The pending GEMV that a rope / KV store may join as an epilogue: q/k/v segments (plain rows, no
 * residual, every segment of even rows) over this batch. */
static sk::gemv_params *pending_qkv(cuda_backend *c, int n) {
    sk::gemv_params &g = c->pend.gemv;
    if (!c->fuse || c->pend.kind != PEND_GEMV || g.glu || g.residual || g.nvec != n) return nullptr;
    for (int s = 0; s < g.nseg; s++)
        if (g.seg[s].rows % 2) return nullptr;
    return &g;
}

/* rope(x) right after the GEMV that wrote x: the GEMV rotates that segment in its epilogue. */
static bool rope_into_gemv(cuda_backend *c, float *x, int n, int heads, int hd, const float *table) {
    sk::gemv_params *g = pending_qkv(c, n);
    if (!g || (g->inv_freq && g->inv_freq != table)) return false;
    for (int s = 0; s < g->nseg; s++) {
        sk::gemv_seg &seg = g->seg[s];
        if (seg.out == x && seg.rows == heads * hd && !seg.rope_hd && !seg.cache) {
            seg.rope_hd = hd;
            g->inv_freq = table, g->positions = c->d_positions;
            return true;
        }
    }
    return false;
}

/* kv_store(k, v) right after the GEMV that wrote k and v: the GEMV stores them in its epilogue. */
static bool store_into_gemv(cuda_backend *c, void *kcache, void *vcache, const float *k, const float *v, int n,
                            int kv_dim) {
    sk::gemv_params *g = pending_qkv(c, n);
    if (!g) return false;
    int ks = -1, vs = -1;
    for (int s = 0; s < g->nseg; s++) {
        if (g->seg[s].out == k && g->seg[s].rows == kv_dim && !g->seg[s].cache) ks = s;
        if (g->seg[s].out == v && g->seg[s].rows == kv_dim && !g->seg[s].cache && !g->seg[s].rope_hd) vs = s;
    }
    if (ks < 0 || vs < 0 || ks == vs) return false;
    g->seg[ks].cache = (uint16_t *)kcache, g->seg[vs].cache = (uint16_t *)vcache;
    g->positions = c->d_positions;
    return true;
}

void cuda_rope(ss_backend *b, float *x, int n, int heads, const ss_rope *rope) {
    cuda_backend *c = cb_of(b);
    if (!cb_ok(c) || n <= 0 || heads <= 0) return;
    const int hd = rope->head_dim;
    if (hd <= 0 || hd % 2 || hd > SK_PREP_MAX_HEAD_DIM)
        return cb_fail(c, SS_EUNSUPPORTED, "cuda backend: rotary embedding over head_dim %d (even, up to %d)", hd,
                       SK_PREP_MAX_HEAD_DIM);
    if (n > c->n) return cb_fail(c, SS_EARG, "cuda backend: rope over %d positions, the batch has %d", n, c->n);
    const float *table = rope_table(c, rope);
    if (!table) return;
    if (rope_into_gemv(c, x, n, heads, hd, table)) return;
    sk::prep_params &p = c->pend.prep;
    if (c->pend.kind == PEND_PREP && !p.store && p.n == n && (p.head_dim == hd || p.nt == 0) &&
        (!p.inv_freq || p.inv_freq == table)) {
        for (int j = 0; j < p.nt; j++)
            if (p.t[j].x == x && p.t[j].heads == heads && !p.t[j].rope) {
                p.t[j].rope = true;
                p.inv_freq = table;
                return;
            }
        bool disjoint = p.nt < SK_PREP_MAX_TENSORS;
        for (int j = 0; j < p.nt && disjoint; j++)
            disjoint = !overlap(x, fbytes((size_t)n * heads * hd), p.t[j].x, fbytes((size_t)n * p.t[j].heads * hd));
        if (disjoint) {
            p.t[p.nt++] = sk::prep_tensor{x, heads, false, nullptr, true};
            p.head_dim = hd;
            p.inv_freq = table;
            return;
        }
    }
    cb_flush(c);
    if (!cb_ok(c)) return;
    sk::prep_params q = {};
    q.t[0] = sk::prep_tensor{x, heads, false, nullptr, true};
    q.nt = 1, q.n = n, q.head_dim = hd, q.inv_freq = table, q.positions = c->d_positions, q.k_slot = -1;
    pend_prep(c, q);
}

void cuda_kv_store(ss_backend *b, void *kcache, void *vcache, const float *k, const float *v, int n, int kv_dim) {
    cuda_backend *c = cb_of(b);
    if (!cb_ok(c) || n <= 0 || kv_dim <= 0) return;
    if (n > c->n) return cb_fail(c, SS_EARG, "cuda backend: kv_store of %d positions, the batch has %d", n, c->n);
    if (store_into_gemv(c, kcache, vcache, k, v, n, kv_dim)) return;
    sk::prep_params &p = c->pend.prep;
    if (c->pend.kind == PEND_PREP && !p.store && p.n == n) {
        int slot = -1;
        bool clear = true; /* v, and k unless it is a slot, untouched by the slots */
        for (int j = 0; j < p.nt; j++) {
            const size_t tb = fbytes((size_t)n * p.t[j].heads * p.head_dim);
            if (p.t[j].x == k && p.t[j].heads * p.head_dim == kv_dim) slot = j;
            else clear &= !overlap(k, fbytes((size_t)n * kv_dim), p.t[j].x, tb);
            clear &= !overlap(v, fbytes((size_t)n * kv_dim), p.t[j].x, tb);
        }
        if (clear) {
            p.store = true;
            p.kcache = (uint16_t *)kcache, p.vcache = (uint16_t *)vcache;
            p.k = k, p.v = v, p.kv_dim = kv_dim, p.k_slot = slot;
            return;
        }
    }
    cb_flush(c);
    if (!cb_ok(c)) return;
    sk::prep_params q = {};
    q.n = n, q.positions = c->d_positions, q.store = true;
    q.kcache = (uint16_t *)kcache, q.vcache = (uint16_t *)vcache;
    q.k = k, q.v = v, q.kv_dim = kv_dim, q.k_slot = -1;
    launch_prep(c, q);
}

/* ---------------------------------------------------------------- attention */

void cuda_attention(ss_backend *b, float *out, const float *q, const void *kcache, const void *vcache, int n, int heads,
                    int kv_heads, int head_dim) {
    cuda_backend *c = cb_of(b);
    cb_flush(c);
    if (!cb_ok(c) || n <= 0) return;
    if (head_dim % 8 || head_dim > SK_PREP_MAX_HEAD_DIM || kv_heads <= 0 || heads % kv_heads)
        return cb_fail(c, SS_EUNSUPPORTED,
                       "cuda backend: attention with head_dim %d, %d heads, %d kv heads (head_dim a multiple of 8 up "
                       "to %d, heads a multiple of kv heads)",
                       head_dim, heads, kv_heads, SK_PREP_MAX_HEAD_DIM);
    if (n > c->n) return cb_fail(c, SS_EARG, "cuda backend: attention over %d positions, the batch has %d", n, c->n);
    /* Up to a verification batch, the fp32 decode kernel: verified tokens then see the same
     * arithmetic as decoded ones (bf16 q and probabilities on the tensor cores would not). */
    const bool tile = n > SK_GEMV_MAX_VECTORS && sk::attn_tile_supported(head_dim, c->smem_optin) &&
                      ((uintptr_t)q & 15) == 0;
    const int splits = tile ? sk::attn_tile_splits(n, heads, kv_heads, c->sms)
                            : sk::attn_decode_splits(heads, kv_heads, c->sms);
    const size_t partial = sk::attn_partial_floats(n, heads, kv_heads, head_dim, splits, tile);
    const size_t counters = sk::attn_counters(n, heads, kv_heads, tile);
    if (!cb_reserve(c, &c->attn_partial, fbytes(partial), "attention partials") ||
        !cb_reserve(c, &c->attn_counters, counters * sizeof(unsigned), "attention counters"))
        return;
    sk::attn_params p = {};
    p.out = out, p.q = q, p.kcache = (const uint16_t *)kcache, p.vcache = (const uint16_t *)vcache;
    p.positions = c->d_positions;
    p.n = n, p.heads = heads, p.kv_heads = kv_heads, p.head_dim = head_dim, p.kv_dim = kv_heads * head_dim;
    p.scale = (float)(1.0 / sqrt((double)head_dim));
    p.splits = splits;
    p.partial = (float *)c->attn_partial.p;
    p.counters = (unsigned *)c->attn_counters.p;
    if (tile) {
        p.out_bf16 = cb_bf16_side(c, out, (size_t)n * heads * head_dim, n);
        LAUNCHED(c, sk::attn_tile(cb_launch(c), p), "attention (tiles) n %d, %d/%d heads of %d", n, heads, kv_heads,
                 head_dim);
    } else if (!take_phase(c, nullptr, &p)) {
        LAUNCHED(c, sk::attn_decode(cb_launch(c), p), "attention (decode) n %d, %d/%d heads of %d", n, heads, kv_heads,
                 head_dim);
    }
}
