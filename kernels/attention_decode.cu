/* attention_decode.cu — attention of a few queries over the bf16 KV cache on CUDA cores
 * (flash-decoding): one block per (query, head, split of the key range).
 *
 * The grid is fixed by the shape (splits from attn_decode_splits), never by the context length,
 * so one CUDA graph serves every step; and it depends on the heads only, so a verified query sums
 * its keys in the same order as the same query decoded alone. Each block reads its query's position
 * from device memory and uses only as many splits as the length needs (at least one pass of the
 * block's keys each, so short contexts skip the merge); the others leave at once. Inside a block,
 * LPK lanes (a power of two, 8 * LPK >= head_dim) share one key, 16 bytes of K and V each; a warp
 * covers 32 / LPK keys per step and U steps are loaded before use. Each
 * group of lanes keeps an online softmax (running max, sum, weighted V); the groups, the warps and
 * finally the splits are merged with the usual rescaling. The last block of a (query, head) to
 * finish (an atomic counter, reset by that block) merges the splits' partial results. */
#include "common.cuh"
#include "kernels.cuh"

namespace sk {

#define DEC_THREADS 128
#define DEC_WARPS (DEC_THREADS / 32)
#define DEC_U 8
#define MAX_SPLITS 64

struct softmax_state {
    float m, l, acc[8];
};

/* s = merge(s, o): both are (max, sum of exp(score - max), sum of exp(score - max) * v). */
__device__ __forceinline__ void merge_state(softmax_state &s, float m2, float l2, const float a2[8]) {
    const float m = fmaxf(s.m, m2);
    if (m == -INFINITY) return; /* both empty */
    const float c1 = expf(s.m - m), c2 = expf(m2 - m);
    s.l = s.l * c1 + l2 * c2;
#pragma unroll
    for (int d = 0; d < 8; d++) s.acc[d] = s.acc[d] * c1 + a2[d] * c2;
    s.m = m;
}

/* Merges rows of (m, l, acc[head_dim]) partials [count][stride] (acc from offset 2) into
 * out[head_dim]; every thread of the block takes dims tid, tid + blockDim. */
__device__ void merge_partials(const float *part, int count, int stride, int head_dim, float *out) {
    float m = -INFINITY;
    for (int s = 0; s < count; s++) m = fmaxf(m, __ldcg(part + (size_t)s * stride));
    float l = 0.0f;
    for (int s = 0; s < count; s++) {
        const float ms = __ldcg(part + (size_t)s * stride);
        if (ms != -INFINITY) l += __ldcg(part + (size_t)s * stride + 1) * expf(ms - m);
    }
    for (int d = threadIdx.x; d < head_dim; d += blockDim.x) {
        float a = 0.0f;
        for (int s = 0; s < count; s++) {
            const float ms = __ldcg(part + (size_t)s * stride);
            if (ms != -INFINITY) a += __ldcg(part + (size_t)s * stride + 2 + d) * expf(ms - m);
        }
        out[d] = a / l;
    }
}

template <int LPK>
__global__ void __launch_bounds__(DEC_THREADS) attn_decode_kernel(const __grid_constant__ attn_params p) {
    constexpr int KPW = 32 / LPK; /* keys per warp step */
    __shared__ float wm[DEC_WARPS], wl[DEC_WARPS];
    __shared__ __align__(16) float wacc[DEC_WARPS][SK_PREP_MAX_HEAD_DIM];
    __shared__ float blk[2];
    __shared__ bool last;

    const int i = blockIdx.z, h = blockIdx.y, s = blockIdx.x;
    const int len = p.positions[i] + 1; /* copied before the forward: may be read before the wait */
    pdl_launch_dependents();
    pdl_wait();
    const int splits = min(p.splits, ceil_div(len, DEC_WARPS * KPW * DEC_U)); /* a pass of keys at least */
    if (s >= splits) return;
    const int chunk = ceil_div(len, splits), start = s * chunk, end = min(len, start + chunk);

    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int sub = lane % LPK, slot = lane / LPK, d0 = 8 * sub;
    const bool dims = d0 < p.head_dim;
    const int kvh = h / (p.heads / p.kv_heads);
    const float *qrow = p.q + ((size_t)i * p.heads + h) * p.head_dim;

    float q[8];
#pragma unroll
    for (int d = 0; d < 8; d++) q[d] = dims ? qrow[d0 + d] * p.scale : 0.0f;
    const uint16_t *kbase = p.kcache + (size_t)kvh * p.head_dim + d0;
    const uint16_t *vbase = p.vcache + (size_t)kvh * p.head_dim + d0;

    softmax_state st;
    st.m = -INFINITY, st.l = 0.0f;
#pragma unroll
    for (int d = 0; d < 8; d++) st.acc[d] = 0.0f;

    for (int t0 = start + warp * KPW * DEC_U; t0 < end; t0 += DEC_WARPS * KPW * DEC_U) {
        uint4 kr[DEC_U], vr[DEC_U];
#pragma unroll
        for (int u = 0; u < DEC_U; u++) {
            const int t = t0 + u * KPW + slot;
            const bool ok = dims && t < end;
            kr[u] = ok ? load_nc16(kbase + (size_t)t * p.kv_dim) : make_uint4(0, 0, 0, 0);
            vr[u] = ok ? load_nc16(vbase + (size_t)t * p.kv_dim) : make_uint4(0, 0, 0, 0);
        }
        /* The U scores first (independent chains: their shuffles overlap), then one rescale of
         * the running state for the U keys instead of one per key. */
        float score[DEC_U];
#pragma unroll
        for (int u = 0; u < DEC_U; u++) {
            float k[8];
            unpack8(kr[u], k);
            score[u] = 0.0f;
#pragma unroll
            for (int d = 0; d < 8; d++) score[u] = fmaf(q[d], k[d], score[u]);
        }
#pragma unroll
        for (int o = LPK / 2; o > 0; o >>= 1)
#pragma unroll
            for (int u = 0; u < DEC_U; u++) score[u] += __shfl_xor_sync(0xffffffffu, score[u], o);
        float m = st.m;
#pragma unroll
        for (int u = 0; u < DEC_U; u++) /* validity is the same for every lane of the group */
            if (t0 + u * KPW + slot < end) m = fmaxf(m, score[u]);
        if (m == -INFINITY) continue; /* no key of this group in range */
        const float c = expf(st.m - m);
        st.l *= c;
#pragma unroll
        for (int d = 0; d < 8; d++) st.acc[d] *= c;
#pragma unroll
        for (int u = 0; u < DEC_U; u++) {
            if (t0 + u * KPW + slot >= end) continue;
            float v[8];
            unpack8(vr[u], v);
            const float e = expf(score[u] - m);
            st.l += e;
#pragma unroll
            for (int d = 0; d < 8; d++) st.acc[d] = fmaf(e, v[d], st.acc[d]);
        }
        st.m = m;
    }
    /* Merge the key groups of the warp, then the warps. */
#pragma unroll
    for (int o = LPK; o < 32; o <<= 1) {
        float a2[8];
        const float m2 = __shfl_xor_sync(0xffffffffu, st.m, o), l2 = __shfl_xor_sync(0xffffffffu, st.l, o);
#pragma unroll
        for (int d = 0; d < 8; d++) a2[d] = __shfl_xor_sync(0xffffffffu, st.acc[d], o);
        merge_state(st, m2, l2, a2);
    }
    if (lane == 0) wm[warp] = st.m, wl[warp] = st.l;
    if (slot == 0 && dims)
#pragma unroll
        for (int d = 0; d < 8; d++) wacc[warp][d0 + d] = st.acc[d];
    __syncthreads();
    if (threadIdx.x == 0) {
        float m = -INFINITY, l = 0.0f;
        for (int w = 0; w < DEC_WARPS; w++) m = fmaxf(m, wm[w]);
        for (int w = 0; w < DEC_WARPS; w++)
            if (wm[w] != -INFINITY) l += wl[w] * expf(wm[w] - m);
        blk[0] = m, blk[1] = l;
    }
    __syncthreads();
    const float bm = blk[0], bl = blk[1];
    const size_t row = (size_t)i * p.heads + h;
    float *out = p.out + row * p.head_dim;
    const int stride = p.head_dim + 2;
    float *part = p.partial + (row * p.splits + s) * stride;
    for (int d = threadIdx.x; d < p.head_dim; d += DEC_THREADS) {
        float a = 0.0f;
        for (int w = 0; w < DEC_WARPS; w++)
            if (wm[w] != -INFINITY) a += wacc[w][d] * expf(wm[w] - bm);
        if (splits == 1)
            out[d] = a / bl;
        else
            part[2 + d] = a;
    }
    if (splits == 1) return;
    if (threadIdx.x == 0) part[0] = bm, part[1] = bl;
    __threadfence();
    __syncthreads();
    if (threadIdx.x == 0) last = atomicAdd(p.counters + row, 1u) == (unsigned)splits - 1;
    __syncthreads();
    if (!last) return;
    __threadfence();
    merge_partials(p.partial + row * p.splits * stride, splits, stride, p.head_dim, out);
    if (threadIdx.x == 0) p.counters[row] = 0;
}

int attn_decode_splits(int heads, int sms) {
    int want = ceil_div(4 * sms, heads);
    return want < 1 ? 1 : want > MAX_SPLITS ? MAX_SPLITS : want;
}

cudaError_t attn_decode(const launch_ctx &c, const attn_params &p) {
    dim3 grid(p.splits, p.heads, p.n), block(DEC_THREADS);
    const int lpk = p.head_dim <= 8 ? 1 : p.head_dim <= 16 ? 2 : p.head_dim <= 32 ? 4 : p.head_dim <= 64 ? 8
                    : p.head_dim <= 128 ? 16 : 32;
    switch (lpk) {
    case 1: return launch_kernel(c, attn_decode_kernel<1>, grid, block, 0, p);
    case 2: return launch_kernel(c, attn_decode_kernel<2>, grid, block, 0, p);
    case 4: return launch_kernel(c, attn_decode_kernel<4>, grid, block, 0, p);
    case 8: return launch_kernel(c, attn_decode_kernel<8>, grid, block, 0, p);
    case 16: return launch_kernel(c, attn_decode_kernel<16>, grid, block, 0, p);
    default: return launch_kernel(c, attn_decode_kernel<32>, grid, block, 0, p);
    }
}

} // namespace sk
