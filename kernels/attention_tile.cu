/* attention_tile.cu — attention of many queries (prefill, verification of more than
 * SK_GEMV_MAX_VECTORS tokens) over the bf16 KV cache on tensor cores, FlashAttention-2 style.
 *
 * A block takes 64 rows of (query, head of the GQA group) pairs of one kv head, so each K/V tile it
 * loads serves every head of the group, and walks the keys in tiles of 64. Each of its 4 warps owns
 * 16 rows and keeps everything about them in registers: S = Q K^T (mma.sync m16n8k16, bf16 inputs,
 * fp32 accumulation), the online softmax (row max and sum, base 2: Q is pre-scaled by log2 e), and
 * O += P V, where P goes from the S accumulators straight into the A operand (the two layouts
 * match, so P never touches shared memory). Shared memory holds only Q and two K/V tiles: the next
 * tile streams in with cp.async while this one is used. Key t is visible to row r when
 * t <= position of r. The key range is split over `splits` blocks (fixed by the shape; empty splits
 * leave at once) and the last block of a tile merges the partial results, as in attention_decode.cu.
 *
 * Fragment layouts (PTX ISA, "mma.m16n8k16"): lane = 4 g + t. A (16x16, row-major) registers hold
 * rows g and g + 8, columns 2t..2t+1 and 2t+8..2t+9; B (16x8, column-major) holds k = 2t..2t+1 and
 * 2t+8..2t+9 of column g; C (16x8) holds rows g and g + 8, columns 2t..2t+1. */
#include "bulk.cuh"
#include "common.cuh"
#include "kernels.cuh"

namespace sk {

#define TILE_M 64
#define TILE_N 64
#define TILE_THREADS 128
#define TILE_MAX_SPLITS 32

/* Shared memory of one block: Q, then K and V of two tiles, bf16 rows of LD elements (the 8 extra
 * put consecutive rows 16 bytes apart in the banks, so ldmatrix's 8 row reads do not conflict). */
template <int HD>
struct tile_layout {
    static constexpr int LD = HD + 8;
    static constexpr size_t rows_bytes = (size_t)TILE_N * LD * 2; /* one K or V tile (TILE_M == TILE_N) */
    static constexpr size_t bytes = 5 * rows_bytes;
};

/* Four 8x8 bf16 matrices; lane l gives the address of row l % 8 of matrix l / 8. */
__device__ __forceinline__ void ldmatrix_x4(uint32_t r[4], const void *p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(smem_addr(p)));
}
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t r[4], const void *p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(smem_addr(p)));
}

/* c += a b for one 16x16 A and one 16x8 B fragment. */
__device__ __forceinline__ void mma_bf16(float c[4], const uint32_t a[4], uint32_t b0, uint32_t b1) {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
                 "{%8, %9}, {%0, %1, %2, %3};"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

__device__ __forceinline__ uint32_t pack_bf16(float lo, float hi) {
    __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<uint32_t *>(&v);
}

/* The max over the 4 lanes of a quad (the lanes that share a row of a C fragment). */
__device__ __forceinline__ float quad_max(float v) {
    v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 1));
    return fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 2));
}
__device__ __forceinline__ float quad_sum(float v) {
    v += __shfl_xor_sync(0xffffffffu, v, 1);
    return v + __shfl_xor_sync(0xffffffffu, v, 2);
}

/* What one warp knows about its 16 rows: lane (g, t) holds rows g and g + 8 (index 0 and 1). */
template <int HD>
struct warp_state {
    float o[HD / 8][4]; /* O: C fragments over head_dim */
    float m[2], l[2];   /* running max (log2 units) and this lane's part of the row sum */
    int pos[2];         /* the rows' positions, -1 for padding rows */
};

/* Q rows of this block scaled by scale * log2 e, as bf16 (zeros for padding rows). */
template <int HD>
__device__ void load_q(const attn_params &p, __nv_bfloat16 *Qs, int mt, int kvh, int G, int rows_total) {
    constexpr int LD = tile_layout<HD>::LD;
    const float scale = p.scale * LOG2E;
    for (int e = threadIdx.x; e < TILE_M * (HD / 4); e += TILE_THREADS) {
        const int r = e / (HD / 4), c4 = e % (HD / 4), rho = mt * TILE_M + r;
        float4 v = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
        if (rho < rows_total) {
            const int qi = rho / G, h = kvh * G + rho % G;
            v = reinterpret_cast<const float4 *>(p.q + ((size_t)qi * p.heads + h) * HD)[c4];
        }
        uint2 packed = make_uint2(pack_bf16(v.x * scale, v.y * scale), pack_bf16(v.z * scale, v.w * scale));
        *reinterpret_cast<uint2 *>(Qs + r * LD + 4 * c4) = packed;
    }
}

/* Keys [kt, kt + TILE_N) of this kv head into Ks / Vs, one cp.async group; rows at or past `end`
 * are zeros (P is 0 there, and 0 times stale data could be NaN). */
template <int HD>
__device__ void load_kv(const attn_params &p, __nv_bfloat16 *Ks, __nv_bfloat16 *Vs, int kvh, int kt, int end) {
    constexpr int LD = tile_layout<HD>::LD;
    for (int e = threadIdx.x; e < TILE_N * (HD / 8); e += TILE_THREADS) {
        const int r = e / (HD / 8), c = e % (HD / 8), t = kt + r;
        const bool valid = t < end;
        const size_t at = (size_t)(valid ? t : 0) * p.kv_dim + (size_t)kvh * HD + 8 * c;
        cp_async16(Ks + r * LD + 8 * c, p.kcache + at, valid);
        cp_async16(Vs + r * LD + 8 * c, p.vcache + at, valid);
    }
    cp_async_commit();
}

/* S = Q K^T for the warp's 16 rows and the tile's 64 keys: s[j] is keys 8j..8j+7. */
template <int HD>
__device__ __forceinline__ void tile_scores(float s[TILE_N / 8][4], const __nv_bfloat16 *Qw, const __nv_bfloat16 *Ks) {
    constexpr int LD = tile_layout<HD>::LD;
    const int lane = threadIdx.x & 31;
#pragma unroll
    for (int j = 0; j < TILE_N / 8; j++) s[j][0] = s[j][1] = s[j][2] = s[j][3] = 0.0f;
#pragma unroll
    for (int kk = 0; kk < HD / 16; kk++) {
        uint32_t a[4];
        ldmatrix_x4(a, Qw + (lane & 15) * LD + 16 * kk + 8 * (lane >> 4));
#pragma unroll
        for (int jp = 0; jp < TILE_N / 16; jp++) {
            uint32_t b[4]; /* keys 16 jp + 0..7 then + 8..15, each as dims 0..7 then 8..15 of the step */
            ldmatrix_x4(b, Ks + (16 * jp + (lane & 7) + 8 * (lane >> 4)) * LD + 16 * kk + 8 * ((lane >> 3) & 1));
            mma_bf16(s[2 * jp], a, b[0], b[1]);
            mma_bf16(s[2 * jp + 1], a, b[2], b[3]);
        }
    }
}

/* The online softmax over one tile: mask, new row max, rescale O and l, P = 2^(S - max) packed as
 * A fragments (pa[kk]: keys 16kk..16kk+15). masked: some key of the tile is hidden from some row. */
template <int HD>
__device__ __forceinline__ void tile_softmax(warp_state<HD> &w, float s[TILE_N / 8][4], uint32_t pa[TILE_N / 16][4],
                                             int kt, int end, bool masked) {
    const int t = threadIdx.x & 3;
    if (masked) {
#pragma unroll
        for (int j = 0; j < TILE_N / 8; j++)
#pragma unroll
            for (int e = 0; e < 4; e++) {
                const int key = kt + 8 * j + 2 * t + (e & 1);
                if (key > w.pos[e >> 1] || key >= end) s[j][e] = -INFINITY;
            }
    }
    float base[2];
#pragma unroll
    for (int h = 0; h < 2; h++) {
        float mx = w.m[h];
#pragma unroll
        for (int j = 0; j < TILE_N / 8; j++) mx = fmaxf(mx, fmaxf(s[j][2 * h], s[j][2 * h + 1]));
        mx = quad_max(mx);
        base[h] = mx == -INFINITY ? 0.0f : mx; /* a row with nothing visible yet: every p is 0 */
        const float corr = exp2f(w.m[h] - base[h]);
        w.m[h] = mx;
        w.l[h] *= corr;
#pragma unroll
        for (int d = 0; d < HD / 8; d++) w.o[d][2 * h] *= corr, w.o[d][2 * h + 1] *= corr;
    }
#pragma unroll
    for (int kk = 0; kk < TILE_N / 16; kk++) {
        float e[2][4];
#pragma unroll
        for (int half = 0; half < 2; half++)
#pragma unroll
            for (int i = 0; i < 4; i++) e[half][i] = exp2f(s[2 * kk + half][i] - base[i >> 1]);
        w.l[0] += (e[0][0] + e[0][1]) + (e[1][0] + e[1][1]);
        w.l[1] += (e[0][2] + e[0][3]) + (e[1][2] + e[1][3]);
        pa[kk][0] = pack_bf16(e[0][0], e[0][1]); /* row g, keys 2t.. */
        pa[kk][1] = pack_bf16(e[0][2], e[0][3]); /* row g + 8 */
        pa[kk][2] = pack_bf16(e[1][0], e[1][1]); /* row g, keys 2t + 8.. */
        pa[kk][3] = pack_bf16(e[1][2], e[1][3]);
    }
}

/* O += P V over the tile's keys. */
template <int HD>
__device__ __forceinline__ void tile_pv(warp_state<HD> &w, const uint32_t pa[TILE_N / 16][4], const __nv_bfloat16 *Vs) {
    constexpr int LD = tile_layout<HD>::LD;
    const int lane = threadIdx.x & 31;
#pragma unroll
    for (int kk = 0; kk < TILE_N / 16; kk++)
#pragma unroll
        for (int dp = 0; dp < HD / 16; dp++) {
            uint32_t b[4]; /* keys 16kk + 0..7 / 8..15 of dims 16dp + 0..7, then of dims + 8..15 */
            ldmatrix_x4_trans(b, Vs + (16 * kk + (lane & 7) + 8 * ((lane >> 3) & 1)) * LD + 16 * dp + 8 * (lane >> 4));
            mma_bf16(w.o[2 * dp], pa[kk], b[0], b[1]);
            mma_bf16(w.o[2 * dp + 1], pa[kk], b[2], b[3]);
        }
}

/* Merge the splits of one tile (this block arrived last): per row, the partials weighted by
 * 2^(m_q - m). partial rows: m, l, O[head_dim]. */
template <int HD>
__device__ void merge_splits(const attn_params &p, const float *all, int splits, int mt, int kvh, int G, int rows_total) {
    const int stride = HD + 2, lane = threadIdx.x & 31;
    const size_t split_stride = (size_t)TILE_M * stride;
    for (int r = threadIdx.x >> 5; r < TILE_M; r += TILE_THREADS / 32) {
        const int rho = mt * TILE_M + r;
        if (rho >= rows_total) continue;
        const float *base = all + (size_t)r * stride;
        float m = -INFINITY, l = 0.0f;
        for (int q = 0; q < splits; q++) m = fmaxf(m, __ldcg(base + q * split_stride));
        for (int q = 0; q < splits; q++) {
            const float mq = __ldcg(base + q * split_stride);
            if (mq != -INFINITY) l += __ldcg(base + q * split_stride + 1) * exp2f(mq - m);
        }
        const int qi = rho / G, h = kvh * G + rho % G;
        const size_t at = ((size_t)qi * p.heads + h) * HD;
        for (int d = lane; d < HD; d += 32) {
            float a = 0.0f;
            for (int q = 0; q < splits; q++) {
                const float mq = __ldcg(base + q * split_stride);
                if (mq != -INFINITY) a += __ldcg(base + q * split_stride + 2 + d) * exp2f(mq - m);
            }
            p.out[at + d] = a / l;
            if (p.out_bf16) p.out_bf16[at + d] = f32_to_bf16(a / l);
        }
    }
}

template <int HD>
__global__ void __launch_bounds__(TILE_THREADS) attn_tile_kernel(const __grid_constant__ attn_params p) {
    using L = tile_layout<HD>;
    extern __shared__ __align__(128) unsigned char smem[];
    __nv_bfloat16 *Qs = reinterpret_cast<__nv_bfloat16 *>(smem);
    /* K of buffer b at 1 + 2b, V at 2 + 2b (in tiles). */
    auto kv_rows = [&](int at) { return reinterpret_cast<__nv_bfloat16 *>(smem + at * L::rows_bytes); };
    __shared__ int row_pos[TILE_M];
    __shared__ bool last;

    pdl_launch_dependents();
    pdl_wait();
    const int G = p.heads / p.kv_heads, rows_total = p.n * G;
    /* Query tiles in reverse: blocks start in index order, and under the causal mask the last
     * tiles walk the most keys, so starting them first keeps them out of the final wave. */
    const int mt = gridDim.z - 1 - blockIdx.z, kvh = blockIdx.y, s = blockIdx.x;
    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, g = lane >> 2, t = lane & 3;

    for (int r = tid; r < TILE_M; r += TILE_THREADS) {
        const int rho = mt * TILE_M + r;
        row_pos[r] = rho < rows_total ? p.positions[rho / G] : -1;
    }
    load_q<HD>(p, Qs, mt, kvh, G, rows_total);
    __syncthreads();
    const int kmax = __reduce_max_sync(0xffffffffu, max(row_pos[lane], row_pos[lane + 32])) + 1;
    const int ntiles = ceil_div(kmax, TILE_N), splits = min(p.splits, ntiles);
    if (s >= splits) return;
    const int per = ceil_div(ntiles, splits);
    const int start = s * per * TILE_N, end = min(kmax, (s + 1) * per * TILE_N);

    warp_state<HD> w;
#pragma unroll
    for (int d = 0; d < HD / 8; d++) w.o[d][0] = w.o[d][1] = w.o[d][2] = w.o[d][3] = 0.0f;
#pragma unroll
    for (int h = 0; h < 2; h++) w.m[h] = -INFINITY, w.l[h] = 0.0f, w.pos[h] = row_pos[16 * warp + g + 8 * h];
    /* Tiles past the warp's furthest row are hidden from all of it; tiles wholly at or before its
     * nearest row (and inside the range) need no mask. */
    const int wmax = __reduce_max_sync(0xffffffffu, max(w.pos[0], w.pos[1]));
    const int wmin = __reduce_min_sync(0xffffffffu, min(w.pos[0], w.pos[1]));
    const __nv_bfloat16 *Qw = Qs + 16 * warp * L::LD;

    if (start < end) load_kv<HD>(p, kv_rows(1), kv_rows(2), kvh, start, end);
    for (int kt = start, b = 0; kt < end; kt += TILE_N, b ^= 1) {
        if (kt + TILE_N < end)
            load_kv<HD>(p, kv_rows(3 - 2 * b), kv_rows(4 - 2 * b), kvh, kt + TILE_N, end);
        else
            cp_async_commit(); /* an empty group: "all but the newest group" stays this tile */
        cp_async_wait<1>();
        __syncthreads();
        if (wmax >= kt) {
            float sc[TILE_N / 8][4];
            uint32_t pa[TILE_N / 16][4];
            tile_scores<HD>(sc, Qw, kv_rows(1 + 2 * b));
            tile_softmax<HD>(w, sc, pa, kt, end, kt + TILE_N - 1 > wmin || kt + TILE_N > end);
            tile_pv<HD>(w, pa, kv_rows(2 + 2 * b));
        }
        __syncthreads(); /* the next iteration's load overwrites this tile's buffers */
    }
#pragma unroll
    for (int h = 0; h < 2; h++) w.l[h] = quad_sum(w.l[h]);

    if (splits == 1) {
#pragma unroll
        for (int h = 0; h < 2; h++) {
            const int rho = mt * TILE_M + 16 * warp + g + 8 * h;
            if (rho >= rows_total) continue;
            const size_t at = ((size_t)(rho / G) * p.heads + kvh * G + rho % G) * HD;
            const float inv = 1.0f / w.l[h];
#pragma unroll
            for (int d = 0; d < HD / 8; d++) {
                const float2 o = make_float2(w.o[d][2 * h] * inv, w.o[d][2 * h + 1] * inv);
                *reinterpret_cast<float2 *>(p.out + at + 8 * d + 2 * t) = o;
                if (p.out_bf16) *reinterpret_cast<uint32_t *>(p.out_bf16 + at + 8 * d + 2 * t) = pack_bf16(o.x, o.y);
            }
        }
        return;
    }
    const int stride = HD + 2;
    const size_t tile = (size_t)mt * p.kv_heads + kvh;
    float *mine = p.partial + (tile * p.splits + s) * TILE_M * stride;
#pragma unroll
    for (int h = 0; h < 2; h++) {
        float *row = mine + (size_t)(16 * warp + g + 8 * h) * stride;
        if (t == 0) row[0] = w.m[h], row[1] = w.l[h];
#pragma unroll
        for (int d = 0; d < HD / 8; d++) row[2 + 8 * d + 2 * t] = w.o[d][2 * h], row[3 + 8 * d + 2 * t] = w.o[d][2 * h + 1];
    }
    __threadfence();
    __syncthreads();
    if (tid == 0) last = atomicAdd(p.counters + tile, 1u) == (unsigned)splits - 1;
    __syncthreads();
    if (!last) return;
    __threadfence();
    merge_splits<HD>(p, p.partial + tile * p.splits * TILE_M * stride, splits, mt, kvh, G, rows_total);
    if (tid == 0) p.counters[tile] = 0;
}

/* Static shared memory of the tile kernel (row_pos, last), which the opt-in limit also covers. */
#define TILE_STATIC_SMEM 512

template <int HD>
static cudaError_t set_tile_smem(size_t smem_optin) {
    if (tile_layout<HD>::bytes + TILE_STATIC_SMEM > smem_optin) return cudaSuccess; /* attn_tile_supported says no */
    return cudaFuncSetAttribute(attn_tile_kernel<HD>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                (int)tile_layout<HD>::bytes);
}

static size_t tile_bytes(int hd) {
    switch (hd) {
    case 16: return tile_layout<16>::bytes;
    case 32: return tile_layout<32>::bytes;
    case 64: return tile_layout<64>::bytes;
    case 128: return tile_layout<128>::bytes;
    case 256: return tile_layout<256>::bytes;
    default: return 0;
    }
}

bool attn_tile_supported(int head_dim, size_t smem_optin) {
    size_t bytes = tile_bytes(head_dim);
    return bytes > 0 && bytes + TILE_STATIC_SMEM <= smem_optin;
}

static int mtiles_of(int n, int heads, int kv_heads) { return ceil_div(n * (heads / kv_heads), TILE_M); }

int attn_tile_splits(int n, int heads, int kv_heads, int sms) {
    int blocks = mtiles_of(n, heads, kv_heads) * kv_heads, want = ceil_div(2 * sms, blocks);
    return want < 1 ? 1 : want > TILE_MAX_SPLITS ? TILE_MAX_SPLITS : want;
}

size_t attn_partial_floats(int n, int heads, int kv_heads, int head_dim, int splits, bool tile) {
    size_t rows = tile ? (size_t)mtiles_of(n, heads, kv_heads) * kv_heads * TILE_M : (size_t)n * heads;
    return rows * (size_t)splits * (size_t)(head_dim + 2);
}

size_t attn_counters(int n, int heads, int kv_heads, bool tile) {
    return tile ? (size_t)mtiles_of(n, heads, kv_heads) * kv_heads : (size_t)n * heads;
}

cudaError_t attn_tile(const launch_ctx &c, const attn_params &p) {
    dim3 grid(p.splits, p.kv_heads, mtiles_of(p.n, p.heads, p.kv_heads)), block(TILE_THREADS);
    switch (p.head_dim) {
    case 16: return launch_kernel(c, attn_tile_kernel<16>, grid, block, tile_layout<16>::bytes, p);
    case 32: return launch_kernel(c, attn_tile_kernel<32>, grid, block, tile_layout<32>::bytes, p);
    case 64: return launch_kernel(c, attn_tile_kernel<64>, grid, block, tile_layout<64>::bytes, p);
    case 128: return launch_kernel(c, attn_tile_kernel<128>, grid, block, tile_layout<128>::bytes, p);
    case 256: return launch_kernel(c, attn_tile_kernel<256>, grid, block, tile_layout<256>::bytes, p);
    default: return cudaErrorInvalidValue;
    }
}

cudaError_t setup_attention(size_t smem_optin) {
    cudaError_t e = setup_attn_decode();
    if (e == cudaSuccess) e = set_tile_smem<16>(smem_optin);
    if (e == cudaSuccess) e = set_tile_smem<32>(smem_optin);
    if (e == cudaSuccess) e = set_tile_smem<64>(smem_optin);
    if (e == cudaSuccess) e = set_tile_smem<128>(smem_optin);
    if (e == cudaSuccess) e = set_tile_smem<256>(smem_optin);
    return e;
}

} // namespace sk
