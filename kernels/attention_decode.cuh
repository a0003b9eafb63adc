/* attention_decode.cuh — the device side of attention_decode.cu, shared with the persistent decode
 * kernel (persistent.cu). See attention_decode.cu for the design. */
#ifndef SPECSCOPE_KERNELS_ATTENTION_DECODE_CUH
#define SPECSCOPE_KERNELS_ATTENTION_DECODE_CUH

#include "common.cuh"
#include "kernels.cuh"

namespace sk {

#define DEC_THREADS 128
#define DEC_WARPS (DEC_THREADS / 32)
#define DEC_U 8
#define MAX_SPLITS 64
#define DEC_SOLO_PASSES 3 /* contexts of up to this many passes of keys take one split (split_range) */

struct softmax_state {
    float m, l, acc[8];
};

/* s = merge(s, o): both are (max, sum of exp(score - max), sum of exp(score - max) * v). */
__device__ __forceinline__ void merge_state(softmax_state &s, float m2, float l2, const float a2[8]) {
    const float m = fmaxf(s.m, m2);
    if (m == -INFINITY) return; /* both empty */
    const float c1 = exp2f(s.m - m), c2 = exp2f(m2 - m);
    s.l = s.l * c1 + l2 * c2;
#pragma unroll
    for (int d = 0; d < 8; d++) s.acc[d] = s.acc[d] * c1 + a2[d] * c2;
    s.m = m;
}

/* Shared memory of one attention block: the warps' softmax states, merged at the end, and the
 * splits' weights when it merges their partial results. */
struct attn_decode_smem {
    float wm[DEC_WARPS], wl[DEC_WARPS];
    __align__(16) float wacc[DEC_WARPS][SK_PREP_MAX_HEAD_DIM];
    float blk[2];
    float split_w[MAX_SPLITS], split_l[MAX_SPLITS];
    bool last;
};

/* Barrier `bar` over DEC_THREADS threads (bar 0 in a block of DEC_THREADS is __syncthreads). */
__device__ __forceinline__ void block_sync(int bar) { asm volatile("bar.sync %0, %1;" ::"r"(bar), "n"(DEC_THREADS) : "memory"); }

/* Merges rows of (m, l, acc[head_dim]) partials [count][stride] (acc from offset 2) into
 * out[head_dim]; thread tid of the DEC_THREADS on barrier `bar` takes dims tid, tid + DEC_THREADS.
 * With M the largest m: l = sum of l_s exp(m_s - M), out = sum of acc_s exp(m_s - M) / l, in
 * split order, skipping empty splits (m_s = -inf). Loads are issued before they are needed (split
 * s's m and l by thread s, then a thread's accumulators of all splits at once), so the merge costs
 * a few round trips to L2, not a few per split. */
__device__ __forceinline__ void merge_partials(const float *part, int count, int stride, int head_dim, float *out, int tid,
                                               int bar, attn_decode_smem &sm) {
    for (int s = tid; s < count; s += DEC_THREADS)
        sm.split_w[s] = __ldcg(part + (size_t)s * stride), sm.split_l[s] = __ldcg(part + (size_t)s * stride + 1);
    block_sync(bar);
    float m = -INFINITY;
    for (int s = 0; s < count; s++) m = fmaxf(m, sm.split_w[s]);
    block_sync(bar); /* every thread has its M before the m_s become weights */
    for (int s = tid; s < count; s += DEC_THREADS) {
        const float ms = sm.split_w[s];
        sm.split_w[s] = ms != -INFINITY ? exp2f(ms - m) : 0.0f;
    }
    block_sync(bar);
    float l = 0.0f;
    for (int s = 0; s < count; s++)
        if (sm.split_w[s] != 0.0f) l += sm.split_l[s] * sm.split_w[s];
    constexpr int AT_ONCE = 16; /* splits whose accumulators are loaded together */
    for (int d = tid; d < head_dim; d += DEC_THREADS) {
        float a = 0.0f;
        for (int s0 = 0; s0 < count; s0 += AT_ONCE) {
            float acc[AT_ONCE];
#pragma unroll
            for (int j = 0; j < AT_ONCE; j++)
                acc[j] = s0 + j < count ? __ldcg(part + (size_t)(s0 + j) * stride + 2 + d) : 0.0f;
#pragma unroll
            for (int j = 0; j < AT_ONCE; j++)
                if (s0 + j < count && sm.split_w[s0 + j] != 0.0f) a += acc[j] * sm.split_w[s0 + j];
        }
        out[d] = a / l;
    }
}

/* 16 bytes through L2 only: data written earlier in the same persistent kernel is not in L1. */
__device__ __forceinline__ uint4 load_cg16(const void *p) { return __ldcg(reinterpret_cast<const uint4 *>(p)); }

/* The key range of split s of a (query, head) whose context is len keys: false when the split has
 * none. A split takes at least one pass of a block's keys (DEC_WARPS * KPW * DEC_U), so short
 * contexts use fewer splits and the others leave first; and a context of at most DEC_SOLO_PASSES
 * passes is one split: its later passes (their keys in flight beside the first) cost less
 * than the merge a second split needs (partials out, a count, every split's partial back in). On
 * the H200, with one head a block at short contexts (attention_decode.cu), the 8B heads' 129 keys
 * take 5.1 us as 3 passes of 64 in one split against 6.3 us as three splits and a merge, and the
 * 1B heads' 257 keys 4.9 against 6.0 us; at 512 keys and more, parallel splits win
 * (docs/cuda.md, seventh session). */
template <int LPK>
__device__ __forceinline__ int split_count(const attn_params &p, int len) {
    constexpr int KPW = 32 / LPK, PASS = DEC_WARPS * KPW * DEC_U;
    return len <= DEC_SOLO_PASSES * PASS ? 1 : min(p.splits, ceil_div(len, PASS));
}

template <int LPK>
__device__ __forceinline__ bool split_range(const attn_params &p, int s, int len, int &splits, int &start, int &end) {
    splits = split_count<LPK>(p, len);
    if (s >= splits) return false;
    const int chunk = ceil_div(len, splits);
    start = s * chunk, end = min(len, start + chunk);
    return true;
}

/* The batch's first position: cache entries before it are older than this forward. */
__device__ __forceinline__ int batch_start(const attn_params &p) {
    int lo = p.positions[0];
    for (int i = 1; i < p.n; i++) lo = min(lo, p.positions[i]);
    return lo;
}

/* This lane's 8 dims of query i, head h, scaled by p.scale * log2(e) (zeros for lanes past
 * head_dim): scores are then in base 2, and every exponential is one exp2f (ex2.approx). */
__device__ __forceinline__ void load_query(const attn_params &p, int h, int i, int d0, float q[8]) {
    const float *qrow = p.q + ((size_t)i * p.heads + h) * p.head_dim;
#pragma unroll
    for (int d = 0; d < 8; d++) q[d] = d0 < p.head_dim ? __ldcg(qrow + d0 + d) * (p.scale * LOG2E) : 0.0f;
}

/* One step of a warp: the DEC_U keys t0 + u * KPW + slot (those below end) with their K and V
 * already loaded (zeros where absent). The U scores first (independent chains: their shuffles
 * overlap), then one rescale of the running state for the U keys instead of one per key. */
template <int LPK>
__device__ __forceinline__ void consume_keys(softmax_state &st, const float q[8], const uint4 kr[DEC_U],
                                             const uint4 vr[DEC_U], int t0, int slot, int end) {
    constexpr int KPW = 32 / LPK;
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
    /* Keys past the end count for nothing, without a branch (their K and V were loaded as zeros,
     * so a zero weight leaves l and acc exactly as they were). Validity is the same for every lane
     * of the group. */
    bool valid[DEC_U];
    float m = st.m;
#pragma unroll
    for (int u = 0; u < DEC_U; u++) {
        valid[u] = t0 + u * KPW + slot < end;
        m = fmaxf(m, valid[u] ? score[u] : -INFINITY);
    }
    if (m == -INFINITY) return; /* no key of this group in range */
    const float c = exp2f(st.m - m);
    st.l *= c;
#pragma unroll
    for (int d = 0; d < 8; d++) st.acc[d] *= c;
#pragma unroll
    for (int u = 0; u < DEC_U; u++) {
        float v[8];
        unpack8(vr[u], v);
        const float e = valid[u] ? exp2f(score[u] - m) : 0.0f;
        st.l += e;
#pragma unroll
        for (int d = 0; d < 8; d++) st.acc[d] = fmaf(e, v[d], st.acc[d]);
    }
    st.m = m;
}

__device__ __forceinline__ void fresh_state(softmax_state &st) {
    st.m = -INFINITY, st.l = 0.0f;
#pragma unroll
    for (int d = 0; d < 8; d++) st.acc[d] = 0.0f;
}

/* After the keys: merges the key groups of each warp, then the warps (over shared memory sm, on
 * named barrier `bar` of DEC_THREADS threads), and writes the head's output, or the split's
 * partial result, the last split to finish merging them all. */
template <int LPK>
__device__ __forceinline__ void finish_head(const attn_params &p, softmax_state &st, int s, int h, int i, int splits,
                                            int tid, int bar, attn_decode_smem &sm) {
    const int lane = tid & 31, warp = tid >> 5;
    const int sub = lane % LPK, slot = lane / LPK, d0 = 8 * sub;
    float *wm = sm.wm, *wl = sm.wl, *blk = sm.blk;
#pragma unroll
    for (int o = LPK; o < 32; o <<= 1) {
        float a2[8];
        const float m2 = __shfl_xor_sync(0xffffffffu, st.m, o), l2 = __shfl_xor_sync(0xffffffffu, st.l, o);
#pragma unroll
        for (int d = 0; d < 8; d++) a2[d] = __shfl_xor_sync(0xffffffffu, st.acc[d], o);
        merge_state(st, m2, l2, a2);
    }
    if (lane == 0) wm[warp] = st.m, wl[warp] = st.l;
    if (slot == 0 && d0 < p.head_dim)
#pragma unroll
        for (int d = 0; d < 8; d++) sm.wacc[warp][d0 + d] = st.acc[d];
    block_sync(bar);
    if (tid == 0) {
        float m = -INFINITY, l = 0.0f;
        for (int w = 0; w < DEC_WARPS; w++) m = fmaxf(m, wm[w]);
        for (int w = 0; w < DEC_WARPS; w++)
            if (wm[w] != -INFINITY) l += wl[w] * exp2f(wm[w] - m);
        blk[0] = m, blk[1] = l;
    }
    block_sync(bar);
    const float bm = blk[0], bl = blk[1];
    const size_t row = (size_t)i * p.heads + h;
    float *out = p.out + row * p.head_dim;
    const int stride = p.head_dim + 2;
    float *part = p.partial + (row * p.splits + s) * stride;
    for (int d = tid; d < p.head_dim; d += DEC_THREADS) {
        float a = 0.0f;
        for (int w = 0; w < DEC_WARPS; w++)
            if (wm[w] != -INFINITY) a += sm.wacc[w][d] * exp2f(wm[w] - bm);
        if (splits == 1)
            out[d] = a / bl;
        else
            part[2 + d] = a;
    }
    if (splits == 1) return;
    if (tid == 0) part[0] = bm, part[1] = bl;
    __threadfence();
    block_sync(bar);
    if (tid == 0) sm.last = atomicAdd(p.counters + row, 1u) == (unsigned)splits - 1;
    block_sync(bar);
    if (!sm.last) return;
    __threadfence();
    merge_partials(p.partial + row * p.splits * stride, splits, stride, p.head_dim, out, tid, bar, sm);
    if (tid == 0) p.counters[row] = 0;
}

/* The body of split s of (query i, head h), run by DEC_THREADS threads (tid: 0..127) that
 * synchronise on named barrier `bar` (the persistent kernel runs two side by side on barriers 1
 * and 2) with their own shared memory sm, loading each key's K and V straight from the cache.
 * It starts after the wait (PDL or grid barrier); the caller reads len = positions[i] + 1 before
 * it. Everything an earlier kernel or phase wrote (q, the KV cache, partials) is read through L2
 * (ld.cg). attn_decode_kernel computes the same sums from keys staged in shared memory. */
template <int LPK>
__device__ __forceinline__ void attn_decode_run(const attn_params &p, int s, int h, int i, int len, int tid, int bar,
                                                attn_decode_smem &sm) {
    constexpr int KPW = 32 / LPK; /* keys per warp step */
    int splits, start, end;
    if (!split_range<LPK>(p, s, len, splits, start, end)) return;
    const int lane = tid & 31, warp = tid >> 5;
    const int sub = lane % LPK, slot = lane / LPK, d0 = 8 * sub;
    const bool dims = d0 < p.head_dim;
    const int kvh = h / (p.heads / p.kv_heads);
    float q[8];
    load_query(p, h, i, d0, q);
    const uint16_t *kbase = p.kcache + (size_t)kvh * p.head_dim + d0;
    const uint16_t *vbase = p.vcache + (size_t)kvh * p.head_dim + d0;
    softmax_state st;
    fresh_state(st);
    for (int t0 = start + warp * KPW * DEC_U; t0 < end; t0 += DEC_WARPS * KPW * DEC_U) {
        uint4 kr[DEC_U], vr[DEC_U];
#pragma unroll
        for (int u = 0; u < DEC_U; u++) {
            const int t = t0 + u * KPW + slot;
            const bool ok = dims && t < end;
            kr[u] = ok ? load_cg16(kbase + (size_t)t * p.kv_dim) : make_uint4(0, 0, 0, 0);
            vr[u] = ok ? load_cg16(vbase + (size_t)t * p.kv_dim) : make_uint4(0, 0, 0, 0);
        }
        consume_keys<LPK>(st, q, kr, vr, t0, slot, end);
    }
    finish_head<LPK>(p, st, s, h, i, splits, tid, bar, sm);
}

/* Lanes per key for a head_dim: a power of two with 8 * LPK >= head_dim. */
__host__ __device__ inline int attn_decode_lpk(int head_dim) {
    return head_dim <= 8 ? 1 : head_dim <= 16 ? 2 : head_dim <= 32 ? 4 : head_dim <= 64 ? 8 : head_dim <= 128 ? 16 : 32;
}

} // namespace sk

#endif
