/* attention_tile.cu — attention of many queries (prefill, verification) over the bf16 KV cache,
 * on tensor cores (WMMA, bf16 inputs, fp32 accumulation), flash-attention style.
 *
 * A block takes 64 rows of (query, head of the GQA group) pairs of one kv head, so each K/V tile it
 * loads serves every head of the group, and walks the keys in tiles of 64: S = Q K^T per warp
 * (16 rows each), an online softmax in fp32 on the rows (a lane pair per row; key t is visible to
 * row r when t <= position of r), P rounded to bf16, O += P V. Rows, statistics and O belong to
 * one warp, so only the K/V tile loads need the whole block. The key range is split over
 * `splits` blocks (fixed by the shape; empty splits leave at once) and the last block of a tile
 * merges the partial results, as in attention_decode.cu. */
#include <mma.h>

#include "common.cuh"
#include "kernels.cuh"

namespace sk {

using namespace nvcuda;

#define TILE_M 64
#define TILE_N 64
#define TILE_THREADS 128
#define TILE_MAX_SPLITS 32

/* Shared memory of one block; every matrix starts on a 32-byte boundary (WMMA needs it). */
template <int HD>
struct tile_layout {
    static constexpr int LDQ = HD + 8;     /* bf16: Q, K, V rows */
    static constexpr int LDS = TILE_N + 4; /* fp32: scores */
    static constexpr int LDP = TILE_N + 8; /* bf16: probabilities */
    static constexpr int LDO = HD + 4;     /* fp32: output accumulator */
    static constexpr size_t q_off = 0;
    static constexpr size_t k_off = q_off + (size_t)TILE_M * LDQ * 2;
    static constexpr size_t v_off = k_off + (size_t)TILE_N * LDQ * 2;
    static constexpr size_t s_off = v_off + (size_t)TILE_N * LDQ * 2;
    static constexpr size_t p_off = s_off + (size_t)TILE_M * LDS * 4;
    static constexpr size_t o_off = p_off + (size_t)TILE_M * LDP * 2;
    static constexpr size_t stat_off = o_off + (size_t)TILE_M * LDO * 4;
    static constexpr size_t bytes = stat_off + (size_t)TILE_M * 3 * 4;
};

typedef wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::row_major> frag_a;
typedef wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, wmma::col_major> frag_bt; /* K^T */
typedef wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, wmma::row_major> frag_b;  /* V */
typedef wmma::fragment<wmma::accumulator, 16, 16, 16, float> frag_c;

template <int HD>
__global__ void __launch_bounds__(TILE_THREADS) attn_tile_kernel(const __grid_constant__ attn_params p) {
    using L = tile_layout<HD>;
    extern __shared__ __align__(128) unsigned char smem[];
    __nv_bfloat16 *Qs = reinterpret_cast<__nv_bfloat16 *>(smem + L::q_off);
    __nv_bfloat16 *Ks = reinterpret_cast<__nv_bfloat16 *>(smem + L::k_off);
    __nv_bfloat16 *Vs = reinterpret_cast<__nv_bfloat16 *>(smem + L::v_off);
    float *Ss = reinterpret_cast<float *>(smem + L::s_off);
    __nv_bfloat16 *Ps = reinterpret_cast<__nv_bfloat16 *>(smem + L::p_off);
    float *Os = reinterpret_cast<float *>(smem + L::o_off);
    float *row_m = reinterpret_cast<float *>(smem + L::stat_off), *row_l = row_m + TILE_M;
    int *row_pos = reinterpret_cast<int *>(row_l + TILE_M);
    __shared__ int key_count;
    __shared__ bool last;

    pdl_launch_dependents();
    pdl_wait();
    const int G = p.heads / p.kv_heads, rows_total = p.n * G;
    /* Query tiles in reverse: blocks start in index order, and under the causal mask the last
     * tiles walk the most keys, so starting them first keeps them out of the final wave. */
    const int mt = gridDim.z - 1 - blockIdx.z, kvh = blockIdx.y, s = blockIdx.x;
    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;

    for (int r = tid; r < TILE_M; r += TILE_THREADS) {
        const int rho = mt * TILE_M + r;
        row_pos[r] = rho < rows_total ? p.positions[rho / G] : -1;
        row_m[r] = -INFINITY;
        row_l[r] = 0.0f;
    }
    for (int e = tid; e < TILE_M * (HD / 4); e += TILE_THREADS) {
        const int r = e / (HD / 4), c4 = e % (HD / 4), rho = mt * TILE_M + r;
        float4 v = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
        if (rho < rows_total) {
            const int qi = rho / G, h = kvh * G + rho % G;
            v = reinterpret_cast<const float4 *>(p.q + ((size_t)qi * p.heads + h) * HD)[c4];
        }
        __nv_bfloat162 *dst = reinterpret_cast<__nv_bfloat162 *>(Qs + r * L::LDQ + 4 * c4);
        dst[0] = __floats2bfloat162_rn(v.x * p.scale, v.y * p.scale);
        dst[1] = __floats2bfloat162_rn(v.z * p.scale, v.w * p.scale);
    }
    for (int e = tid; e < TILE_M * L::LDO; e += TILE_THREADS) Os[e] = 0.0f;
    __syncthreads();
    if (warp == 0) {
        const int m = __reduce_max_sync(0xffffffffu, max(row_pos[lane], row_pos[lane + 32]));
        if (lane == 0) key_count = m + 1;
    }
    __syncthreads();
    const int kmax = key_count, ntiles = ceil_div(kmax, TILE_N);
    const int splits = min(p.splits, ntiles);
    if (s >= splits) return;
    const int per = ceil_div(ntiles, splits);
    const int start = s * per * TILE_N, end = min(kmax, (s + 1) * per * TILE_N);
    /* The furthest position among this warp's rows: tiles beyond it are all masked for the warp. */
    const int wpos = __reduce_max_sync(0xffffffffu, row_pos[16 * warp + (lane & 15)]);

    for (int kt = start; kt < end; kt += TILE_N) {
        for (int e = tid; e < TILE_N * (HD / 8); e += TILE_THREADS) {
            const int r = e / (HD / 8), c = e % (HD / 8), t = kt + r;
            uint4 kv = make_uint4(0, 0, 0, 0), vv = make_uint4(0, 0, 0, 0);
            if (t < end) { /* rows past the range are zeros: P is 0 there, and 0 * garbage could be NaN */
                const size_t at = (size_t)t * p.kv_dim + (size_t)kvh * HD + 8 * c;
                kv = load_nc16(p.kcache + at);
                vv = load_nc16(p.vcache + at);
            }
            *reinterpret_cast<uint4 *>(Ks + r * L::LDQ + 8 * c) = kv;
            *reinterpret_cast<uint4 *>(Vs + r * L::LDQ + 8 * c) = vv;
        }
        __syncthreads();
        if (wpos >= kt) {
            for (int j = 0; j < TILE_N / 16; j++) {
                frag_c acc;
                wmma::fill_fragment(acc, 0.0f);
#pragma unroll
                for (int kk = 0; kk < HD / 16; kk++) {
                    frag_a a;
                    frag_bt b;
                    wmma::load_matrix_sync(a, Qs + 16 * warp * L::LDQ + 16 * kk, L::LDQ);
                    wmma::load_matrix_sync(b, Ks + 16 * j * L::LDQ + 16 * kk, L::LDQ);
                    wmma::mma_sync(acc, a, b, acc);
                }
                wmma::store_matrix_sync(Ss + 16 * warp * L::LDS + 16 * j, acc, L::LDS, wmma::mem_row_major);
            }
            __syncwarp();
            {
                /* A lane pair per row, 32 keys each, in 16-byte steps; keys past the row's position
                 * or the range are masked (valid counts the visible ones, < 0 for padding rows). */
                const int r = 16 * warp + (lane >> 1), half = lane & 1, pos = row_pos[r];
                const float4 *srow = reinterpret_cast<const float4 *>(Ss + r * L::LDS + 32 * half);
                __nv_bfloat162 *prow = reinterpret_cast<__nv_bfloat162 *>(Ps + r * L::LDP + 32 * half);
                const int t0 = kt + 32 * half, valid = min(32, min(pos + 1, end) - t0);
                float tmax = -INFINITY;
#pragma unroll
                for (int c4 = 0; c4 < 8; c4++) {
                    const float4 v = srow[c4];
                    const int c = 4 * c4;
                    if (c < valid) tmax = fmaxf(tmax, v.x);
                    if (c + 1 < valid) tmax = fmaxf(tmax, v.y);
                    if (c + 2 < valid) tmax = fmaxf(tmax, v.z);
                    if (c + 3 < valid) tmax = fmaxf(tmax, v.w);
                }
                tmax = fmaxf(tmax, __shfl_xor_sync(0xffffffffu, tmax, 1));
                const float m_old = row_m[r], m_new = fmaxf(m_old, tmax);
                float sum = 0.0f;
#pragma unroll
                for (int c4 = 0; c4 < 8; c4++) {
                    const float4 v = srow[c4];
                    const int c = 4 * c4;
                    const float e0 = c < valid ? expf(v.x - m_new) : 0.0f, e1 = c + 1 < valid ? expf(v.y - m_new) : 0.0f;
                    const float e2 = c + 2 < valid ? expf(v.z - m_new) : 0.0f, e3 = c + 3 < valid ? expf(v.w - m_new) : 0.0f;
                    prow[2 * c4] = __floats2bfloat162_rn(e0, e1);
                    prow[2 * c4 + 1] = __floats2bfloat162_rn(e2, e3);
                    sum += (e0 + e1) + (e2 + e3);
                }
                sum += __shfl_xor_sync(0xffffffffu, sum, 1);
                const float corr = m_old == -INFINITY ? 0.0f : expf(m_old - m_new);
                /* O is still zero while m_old is -inf, and unchanged when the max did not move. */
                if (m_old != -INFINITY && m_new != m_old) {
                    float4 *orow = reinterpret_cast<float4 *>(Os + r * L::LDO + half * (HD / 2));
                    for (int d4 = 0; d4 < HD / 8; d4++) {
                        float4 o = orow[d4];
                        o.x *= corr, o.y *= corr, o.z *= corr, o.w *= corr;
                        orow[d4] = o;
                    }
                }
                const float l_old = row_l[r];
                __syncwarp();
                if (half == 0) {
                    row_m[r] = m_new;
                    row_l[r] = l_old * corr + sum;
                }
            }
            __syncwarp();
            for (int j = 0; j < HD / 16; j++) {
                frag_c acc;
                wmma::load_matrix_sync(acc, Os + 16 * warp * L::LDO + 16 * j, L::LDO, wmma::mem_row_major);
#pragma unroll
                for (int kk = 0; kk < TILE_N / 16; kk++) {
                    frag_a a;
                    frag_b b;
                    wmma::load_matrix_sync(a, Ps + 16 * warp * L::LDP + 16 * kk, L::LDP);
                    wmma::load_matrix_sync(b, Vs + 16 * kk * L::LDQ + 16 * j, L::LDQ);
                    wmma::mma_sync(acc, a, b, acc);
                }
                wmma::store_matrix_sync(Os + 16 * warp * L::LDO + 16 * j, acc, L::LDO, wmma::mem_row_major);
            }
            __syncwarp();
        }
        __syncthreads(); /* the next tile overwrites Ks, Vs */
    }

    if (splits == 1) {
        for (int e = tid; e < TILE_M * HD; e += TILE_THREADS) {
            const int r = e / HD, d = e % HD, rho = mt * TILE_M + r;
            if (rho < rows_total) {
                const int qi = rho / G, h = kvh * G + rho % G;
                p.out[((size_t)qi * p.heads + h) * HD + d] = Os[r * L::LDO + d] / row_l[r];
            }
        }
        return;
    }
    const int stride = HD + 2;
    const size_t tile = (size_t)mt * p.kv_heads + kvh;
    float *mine = p.partial + (tile * p.splits + s) * TILE_M * stride;
    for (int e = tid; e < TILE_M * stride; e += TILE_THREADS) {
        const int r = e / stride, c = e % stride;
        mine[e] = c == 0 ? row_m[r] : c == 1 ? row_l[r] : Os[r * L::LDO + c - 2];
    }
    __threadfence();
    __syncthreads();
    if (tid == 0) last = atomicAdd(p.counters + tile, 1u) == (unsigned)splits - 1;
    __syncthreads();
    if (!last) return;
    __threadfence();
    const float *all = p.partial + tile * p.splits * TILE_M * stride;
    const size_t split_stride = (size_t)TILE_M * stride;
    for (int r = warp; r < TILE_M; r += TILE_THREADS / 32) {
        const int rho = mt * TILE_M + r;
        if (rho >= rows_total) continue;
        const float *base = all + (size_t)r * stride;
        float m = -INFINITY, l = 0.0f;
        for (int q = 0; q < splits; q++) m = fmaxf(m, __ldcg(base + q * split_stride));
        for (int q = 0; q < splits; q++) {
            const float mq = __ldcg(base + q * split_stride);
            if (mq != -INFINITY) l += __ldcg(base + q * split_stride + 1) * expf(mq - m);
        }
        const int qi = rho / G, h = kvh * G + rho % G;
        float *out = p.out + ((size_t)qi * p.heads + h) * HD;
        for (int d = lane; d < HD; d += 32) {
            float a = 0.0f;
            for (int q = 0; q < splits; q++) {
                const float mq = __ldcg(base + q * split_stride);
                if (mq != -INFINITY) a += __ldcg(base + q * split_stride + 2 + d) * expf(mq - m);
            }
            out[d] = a / l;
        }
    }
    if (tid == 0) p.counters[tile] = 0;
}

/* Static shared memory of the tile kernel (key_count, last), which the opt-in limit also covers. */
#define TILE_STATIC_SMEM 64

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
    cudaError_t e = cudaSuccess;
    if (e == cudaSuccess) e = set_tile_smem<16>(smem_optin);
    if (e == cudaSuccess) e = set_tile_smem<32>(smem_optin);
    if (e == cudaSuccess) e = set_tile_smem<64>(smem_optin);
    if (e == cudaSuccess) e = set_tile_smem<128>(smem_optin);
    if (e == cudaSuccess) e = set_tile_smem<256>(smem_optin);
    return e;
}

} // namespace sk
