/* kernels.cuh — the launchers of every kernel family (one .cu file each), called by the CUDA
 * backend (engine/cuda/). Shapes are row-major; weights and the KV cache are bf16 (uint16_t bits),
 * activations fp32. Each launcher returns the launch's cudaError_t. Nothing here allocates. */
#ifndef SPECSCOPE_KERNELS_CUH
#define SPECSCOPE_KERNELS_CUH

#include <stddef.h>
#include <stdint.h>

#include "launch.cuh"

namespace sk {

/* ---------------------------------------------------------------- embed.cu */

/* x[i, :] = table[tokens[i], :] for i < n; tokens in device memory. */
cudaError_t embed(const launch_ctx &c, float *x, const uint16_t *table, const int *tokens, int n, int cols);

/* ---------------------------------------------------------------- rmsnorm.cu */

/* Per row of dim: (when add is set, x += add first, written back) then
 * out = w * (x * rsqrt(mean(x^2) + eps)); w may be NULL. out may equal x. out_bf16 (may be NULL):
 * out as bf16 too. */
cudaError_t rmsnorm(const launch_ctx &c, float *out, float *x, const float *add, const uint16_t *w, int rows, int dim,
                    float eps, uint16_t *out_bf16);

/* ---------------------------------------------------------------- rope.cu: q/k norm, rotary, KV store */

#define SK_PREP_MAX_TENSORS 2
#define SK_PREP_MAX_HEAD_DIM 256

/* One tensor [n, heads, head_dim] processed in place: norm (per head row, weight optional) then
 * rotary embedding at the batch positions. */
struct prep_tensor {
    float *x;
    int heads;
    bool norm;
    const uint16_t *norm_w; /* NULL: plain normalisation */
    bool rope;
};

struct prep_params {
    prep_tensor t[SK_PREP_MAX_TENSORS];
    int nt;
    int n, head_dim;
    float eps;
    const float *inv_freq; /* device, head_dim / 2 */
    const int *positions;  /* device, n */
    /* KV store: K and V rows of kv_dim floats go to the bf16 caches at the batch positions. K is
     * tensor k_slot after its processing, or, when k_slot < 0, the raw rows at k. */
    bool store;
    uint16_t *kcache, *vcache;
    const float *k, *v;
    int kv_dim, k_slot;
};

cudaError_t prep(const launch_ctx &c, const prep_params &p);

/* ---------------------------------------------------------------- elementwise.cu */

cudaError_t axpy(const launch_ctx &c, float *x, float a, const float *y, size_t count); /* x += a*y */
/* Tensor-parallel partial sums (engine/cuda/peer_comm.cu): each p[r] becomes p[0] + p[1] + ... in
 * that order; the buffers may be on peer devices. */
struct rank_buffers {
    float *p[8]; /* SS_MAX_TP */
    int n;
};
cudaError_t sum_ranks(const launch_ctx &c, const rank_buffers &b, size_t count);

/* ---------------------------------------------------------------- allreduce.cu */

/* One rank's side of the one-shot all-reduce over ranks on their own devices: buf (count floats,
 * count <= cap) becomes the ranks' sum, added in rank order (with into: into += the sum instead). Every rank has an inbox of
 * [2][ranks][cap] floats and flags[ranks] (zeroed once), and a call counter epoch; peer_inbox[q] /
 * peer_flags[q] are rank q's, reached through peer access. */
struct oneshot_params {
    float *buf, *into;
    const float *inbox;
    float *peer_inbox[8]; /* SS_MAX_TP */
    unsigned *flags;
    unsigned *peer_flags[8];
    unsigned *epoch;
    int rank, ranks;
    size_t cap, count;
};
cudaError_t allreduce_oneshot(const launch_ctx &c, const oneshot_params &p);
/* gate = silu(gate) * up; out_bf16 (may be NULL): gate as bf16 too. */
cudaError_t silu_mul(const launch_ctx &c, float *gate, const float *up, size_t count, uint16_t *out_bf16);
cudaError_t to_bf16(const launch_ctx &c, uint16_t *out, const float *x, size_t count);
cudaError_t add_bias(const launch_ctx &c, float *out, const uint16_t *bias, int n, int rows); /* out[i, r] += b[r] */

/* ---------------------------------------------------------------- gemv.cu */

#define SK_GEMV_MAX_SEGS 4
#define SK_GEMV_MAX_VECTORS 9 /* verification of up to 8 drafted tokens */

/* One weight of a fused GEMV: out[r] = W[r, :] . x (+ bias[r]) for r < rows; then, when rope_hd
 * is set, each head of rope_hd rows turned by the rotary embedding at the batch positions
 * (gemv_params.inv_freq), and when cache is set, out also stored as bf16 to cache[position, rows]
 * (the KV cache). rows must be even for either. */
struct gemv_seg {
    const uint16_t *w;
    const uint16_t *bias; /* NULL: none */
    float *out;
    int rows;
    int rope_hd;     /* 0: no rotation */
    uint16_t *cache; /* NULL: no store */
};

/* Matrix-vector products for nvec (1..SK_GEMV_MAX_VECTORS) input vectors x[nvec, cols] (cols a
 * multiple of 8, every weight 16-byte aligned) that read each weight once; out is [nvec, rows] per
 * segment. Rows of all segments form one index space (q, k and v in one launch). Options:
 *   norm:     each vector is first normalised like rmsnorm (weight norm_w, may be NULL); block 0
 *             also writes the normalised vectors to norm_out [nvec, cols] (may be NULL);
 *   residual: residual[i, r] += out[i, r] as well (one segment);
 *   glu:      two segments of equal rows (gate, up): out0 = silu(gate) * up, out1 = up. */
struct gemv_params {
    const float *x;
    int cols, nvec;
    bool norm;
    const uint16_t *norm_w;
    float eps;
    float *norm_out;
    float *residual;
    bool glu;
    int nseg;
    gemv_seg seg[SK_GEMV_MAX_SEGS];
    const float *inv_freq; /* device, rope_hd / 2: for segments with rope_hd */
    const int *positions;  /* device, nvec: for rope_hd and cache */
};

/* The kernel a launch takes: one row per warp unit, gate/up row pairs, or row pairs of one segment
 * (any segment with rope_hd or cache). */
enum { GEMV_ROWS, GEMV_GLU, GEMV_PAIRS, GEMV_KINDS };
int gemv_kind(const gemv_params &p);

/* Whether the GEMV takes this shape (its input vectors live in shared memory). */
bool gemv_supported(int cols, int nvec, size_t smem_optin);
/* How many vectors of this many columns fit (0: none, the plain path takes the shape). */
int gemv_max_vectors(int cols, size_t smem_optin);
/* blocks_per_sm: resident blocks per multiprocessor for this shape (the caller caches
 * gemv_occupancy's answer); the launch uses at most 2 of them so that the next kernel's blocks can
 * start loading while this one drains. It picks the grid from the shape and, when teams is true,
 * how many warps share each unit (split-K inside the block, gemv.cu); false: one warp a unit, the
 * order of sums the persistent kernel's phases keep. */
int gemv_occupancy(int kind, int cols, int nvec);
cudaError_t gemv(const launch_ctx &c, const gemv_params &p, int blocks_per_sm, bool teams);
/* out[i, r] = x[i, :] . W[r, :] (+ bias) for any n, rows, cols: the plain path for shapes the fast
 * kernels do not take (cols not a multiple of 8, or too long for shared memory). */
cudaError_t matmul_plain(const launch_ctx &c, float *out, const float *x, const uint16_t *w, const uint16_t *bias, int n,
                         int rows, int cols);

/* ---------------------------------------------------------------- attention_*.cu */

/* Query i (position positions[i]) attends to cache entries [0, positions[i]] of its kv head,
 * scale 1/sqrt(head_dim), softmax in fp32. q and out are [n, heads, head_dim] fp32; the caches are
 * bf16 [position, kv_dim]. The key range is split over `splits` blocks (a grid fixed by the
 * shape, so one CUDA graph serves every context length); each block reads the positions, and
 * the last block of a row merges the partial results (partial, counters: scratch). */
struct attn_params {
    float *out;
    uint16_t *out_bf16; /* NULL, or out as bf16 too (tile kernel only) */
    const float *q;
    const uint16_t *kcache, *vcache;
    const int *positions;
    int n, heads, kv_heads, head_dim, kv_dim;
    float scale;
    int splits;
    float *partial;      /* attn_partial_floats() */
    unsigned *counters;  /* attn_counters(), zero between launches */
};

/* Flash-decoding on CUDA cores: one block per (query, kv head, split) serving up to 4 heads of the
 * group, keys staged through shared memory. Any head_dim that is a multiple of 8, up to 256.
 * Splits: one block per SM for a decoded token, from the heads alone (never the context). */
int attn_decode_splits(int heads, int kv_heads, int sms);
cudaError_t attn_decode(const launch_ctx &c, const attn_params &p);

/* Tensor-core tiles for many queries: one block per (64 rows of (query, head of the group), kv
 * head, split); K/V tiles are read once for every head of the group. head_dim 16, 32, 64, 128
 * or 256. */
bool attn_tile_supported(int head_dim, size_t smem_optin);
int attn_tile_splits(int n, int heads, int kv_heads, int sms);
cudaError_t attn_tile(const launch_ctx &c, const attn_params &p);

/* Scratch sizes for either kernel with these splits. */
size_t attn_partial_floats(int n, int heads, int kv_heads, int head_dim, int splits, bool tile);
size_t attn_counters(int n, int heads, int kv_heads, bool tile);

/* Raise the dynamic shared memory limits of the kernels that may need more than 48 KB. */
cudaError_t setup_gemv(size_t smem_optin);
cudaError_t setup_attention(size_t smem_optin);
cudaError_t setup_attn_decode(); /* attention_decode.cu, called by setup_attention */

/* ---------------------------------------------------------------- persistent.cu */

/* Launches of one-vector GEMVs and decode attention, recorded as the phases of one persistent
 * kernel (one grid, a grid barrier between phases; the GEMV phases stream their weights through
 * per-warp shared-memory rings that run ahead across phases). The phases compute exactly what the
 * separate launches would with teams of one warp. */
enum { PHASE_ATTN = GEMV_KINDS };
struct phase {
    int kind; /* a GEMV kind (GEMV_ROWS, ...), or PHASE_ATTN */
    union {
        gemv_params gemv;
        attn_params attn;
    };
};
#define SK_PERSIST_MAX_PHASES 128 /* a launch's parameters stay under 32 KB */
struct persistent_params {
    /* The grid barrier's arrival count: zero before the first launch, never reset (64 bits), and
     * every launch on it must have the same number of blocks (persistent.cu, grid_barrier). */
    unsigned long long *barrier;
    int count;
    int depth;             /* ring slots per warp (persistent() sets it) */
    unsigned ring_offset;  /* where the rings start in dynamic shared memory (persistent() sets it) */
    phase ph[SK_PERSIST_MAX_PHASES];
};
/* Whether a launch can be a phase. */
bool persistent_takes(const gemv_params &p, size_t smem_optin);
bool persistent_takes(const attn_params &p);
/* Bytes of the input vector a GEMV phase over cols columns stages (a launch takes its phases'
 * largest, xbytes), and the dynamic shared memory of a launch with that largest vector. */
size_t persistent_smem_of(int cols);
size_t persistent_smem(size_t xbytes, size_t smem_optin);
/* Resident blocks per SM at this shared memory: 1 (the kernel takes up to 255 registers a thread), or
 * 0 when it cannot run. The grid is SMs times this: every block must be resident for the barrier. */
int persistent_blocks_per_sm(size_t smem);
/* Launches the phases of p (setting its ring depth and offset) on `blocks` blocks. */
cudaError_t persistent(const launch_ctx &c, persistent_params &p, size_t xbytes, int blocks);
cudaError_t setup_persistent(size_t smem_optin); /* both kernels of persistent.cu */

/* One one-vector GEMV launched alone through the same rings (gemv_ring_kernel): one block an SM,
 * RING_DEPTH slots of 4 KB a warp (128 KB of weights in flight an SM, the register GEMV's budget
 * too; 5 slots measured slower, docs/cuda.md), computing exactly what the register kernel computes
 * with one warp a unit. Measured on the H200, it beats the register kernel on every llama-3.1-8b
 * launch and loses on the llama-3.2-1b and qwen2.5-0.5b ones (2048 / 896 columns, or 2048 / 896
 * rows for their down projections): hence it takes at least 4096 rows of at least 4096 columns. */
#define RING_DEPTH 4
#define RING_MIN_COLS 4096
#define RING_MIN_ROWS 4096 /* all segments together */
struct ring_params {
    int count; /* 1 */
    int depth;
    unsigned ring_offset;
    phase ph[1];
};
/* Whether the ring kernel takes GEMVs of this shape (gemv_ring launches those with one vector; the
 * register kernel then sums the same shape's verification batches with one warp a unit, so both
 * give a position the same bits). */
bool gemv_ring_shape(const gemv_params &p, size_t smem_optin);
cudaError_t gemv_ring(const launch_ctx &c, const gemv_params &p);

/* ---------------------------------------------------------------- sampling.cu */

/* Device scratch that argmax_rows and sample_rows share (any rows): zero before their first launch,
 * and each launch leaves it zero again. */
size_t sampling_scratch_bytes();

/* out[r] = index of the largest logit of row r (the lowest index on ties; NaN loses), as ss_argmax. */
cudaError_t argmax_rows(const launch_ctx &c, int *out, const float *logits, int rows, int vocab, void *scratch);

#define SK_SAMPLE_MAX_ROWS 32        /* rows per sample_rows launch (their uniforms travel by value) */
#define SK_SAMPLE_MAX_VOCAB (1 << 20) /* weights summed as integers (w * 2^43) stay below 2^63 */

/* ss_sampling's fields that the device applies (temperature > 0; no repetition penalty), and the
 * host RNG's uniform for each row. */
struct sample_params {
    float temperature;
    int top_k;
    float top_p, min_p;
    double uniform[SK_SAMPLE_MAX_ROWS];
};

/* out[r] = the token that ss_sample_with draws from row r with p.uniform[r] (rows <= SK_SAMPLE_MAX_ROWS,
 * vocab <= SK_SAMPLE_MAX_VOCAB): temperature, top-k, top-p and min-p as engine/sampler.c. */
cudaError_t sample_rows(const launch_ctx &c, int *out, const float *logits, int rows, int vocab,
                        const sample_params &p, void *scratch);

} // namespace sk

#endif
