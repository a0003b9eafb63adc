/* attention_decode.cu — attention of a few queries over the bf16 KV cache on CUDA cores
 * (flash-decoding): one block per (query, kv head, split of the key range), serving the heads of
 * that kv head's group (up to DEC_GROUP_HEADS of them; larger groups take several blocks).
 *
 * The grid is fixed by the shape (splits from attn_decode_splits), never by the context length,
 * so one CUDA graph serves every step; and it depends on the heads only, so a verified query sums
 * its keys in the same order as the same query decoded alone. Each block reads its query's position
 * from device memory and uses only as many splits as the length needs (at least one pass of keys
 * each, and one split up to DEC_SOLO_PASSES passes, so short contexts skip the merge: split_range);
 * the others leave at once. When every head's splits fit the blocks of a row (short contexts: 129
 * keys, one split, on the llama 3 heads), each block takes one head of one split instead: a block's
 * head sums are a chain of instructions on its SM's four schedulers (ncu: issue-bound, not
 * memory-bound), so one head a block instead of four cut 129 keys from 5.9 to 3.8 us (1B heads) on
 * the H200, with the same sums.
 *
 * The split's keys stream through shared memory in passes of DEC_WARPS * KPW * DEC_U keys: every
 * thread of the block issues cp.async copies of the K and V rows of pass p + DEC_STAGES - 1 while
 * the passes before it are summed, so up to DEC_STAGES - 1 passes are in flight without holding
 * registers, and each K/V row crosses the memory bus once for the whole GQA group (4 heads for the
 * llama 3 geometries) instead of once per head. The first DEC_STAGES - 1 passes' keys older than
 * the batch go out before the PDL wait (common.cuh says why that is safe), the batch's own after
 * it: on the H200 129 keys took 3.9 -> 3.7 us (1B heads), 4097 keys 13.2 -> 11.9 us. Each head is summed by its own DEC_THREADS threads
 * exactly as attn_decode_run (attention_decode.cuh, which the persistent kernel runs with loads
 * from the cache) sums it: same keys per lane, same order, same merges, so the two give the same
 * bits. LPK lanes (a power of two, 8 * LPK >= head_dim) share a key, 16 bytes of K and V each; a
 * warp covers 32 / LPK keys per step and DEC_U steps a pass. Each group of lanes keeps an online
 * softmax (running max, sum, weighted V); the groups, the warps and finally the splits are merged
 * with the usual rescaling. The last block of a (query, head) to finish (an atomic counter, reset
 * by that block) merges the splits' partial results. */
#include "attention_decode.cuh"
#include "bulk.cuh"

#include <climits>

namespace sk {

#define DEC_GROUP_HEADS 4 /* heads one block serves: 4 x 128 threads keeps 128 registers a thread */
#define DEC_STAGES 3      /* passes of keys in shared memory: two in flight while one is summed */

/* Bytes of K or V one pass holds: DEC_WARPS * (32 / LPK) * DEC_U keys of head_dim bf16. */
static __host__ __device__ size_t pass_bytes(int lpk, int head_dim) {
    return (size_t)DEC_WARPS * (32 / lpk) * DEC_U * head_dim * 2;
}

/* The block's dynamic shared memory: its heads' merge areas, then DEC_STAGES passes of K and V. */
static __host__ __device__ size_t decode_smem(int lpk, int head_dim) {
    return DEC_GROUP_HEADS * sizeof(attn_decode_smem) + DEC_STAGES * 2 * pass_bytes(lpk, head_dim);
}

/* Copies the K and V rows of keys [t_lo, t_lo + keys) of kv head kvh into kt / vt (rows of
 * head_dim; row t - t_lo), spread over the block's threads, only those of keys in [from, to); one
 * cp.async group per thread, empty or not. */
static __device__ void stage_keys(const attn_params &p, uint16_t *kt, uint16_t *vt, int kvh, int t_lo, int keys,
                                  int from = 0, int to = INT_MAX) {
    const int row_chunks = p.head_dim / 8;
    const int r_lo = max(from - t_lo, 0), r_hi = min(to - t_lo, keys);
    for (int c = r_lo * row_chunks + threadIdx.x; c < r_hi * row_chunks; c += blockDim.x) {
        const int r = c / row_chunks, d = 8 * (c % row_chunks);
        const size_t at = (size_t)(t_lo + r) * p.kv_dim + (size_t)kvh * p.head_dim + d;
        cp_async16(kt + r * p.head_dim + d, p.kcache + at);
        cp_async16(vt + r * p.head_dim + d, p.vcache + at);
    }
    cp_async_commit();
}

template <int LPK>
__global__ void __launch_bounds__(DEC_THREADS *DEC_GROUP_HEADS) attn_decode_kernel(const __grid_constant__ attn_params p) {
    constexpr int KPW = 32 / LPK, PASS = DEC_WARPS * KPW * DEC_U;
    extern __shared__ __align__(16) unsigned char dsm[];
    attn_decode_smem *heads_sm = reinterpret_cast<attn_decode_smem *>(dsm);
    uint16_t *tiles = reinterpret_cast<uint16_t *>(dsm + DEC_GROUP_HEADS * sizeof(attn_decode_smem));
    const int tile_elems = PASS * p.head_dim; /* one pass of K (or V) */

    const int i = blockIdx.z;
    const int len = p.positions[i] + 1; /* copied before the forward: may be read before the wait */
    pdl_launch_dependents();
    const int group = p.heads / p.kv_heads, chunks = ceil_div(group, DEC_GROUP_HEADS), kvh = blockIdx.y / chunks;
    int first = kvh * group + (blockIdx.y % chunks) * DEC_GROUP_HEADS;
    int nh = min(DEC_GROUP_HEADS, (kvh + 1) * group - first); /* heads of this block */
    /* Block x of the row takes split x with all nh heads, or, when the splits of every head fit
     * the row's blocks (short contexts), one head of one split: then each SM sums one head, not
     * four, and the blocks a short context would leave idle share the work (the same sums either
     * way). The blocks with nothing to do leave first. */
    int s = blockIdx.x;
    if (split_count<LPK>(p, len) * nh <= p.splits) {
        first += s % nh;
        s /= nh, nh = 1;
    }
    int splits, start, end;
    const bool work = split_range<LPK>(p, s, len, splits, start, end);
    /* The first passes' keys go out before the wait, except this batch's own: entries before the
     * batch's first position were written by earlier forwards, which the positions' copy that
     * starts this forward orders before any of its kernels (common.cuh), and a forward writes the
     * cache only at its batch's positions. So at short contexts the cache's round trip to memory
     * overlaps the q/k/v launch, and only the new key follows the wait. */
    const int fresh = batch_start(p);
    if (work)
        for (int b = 0; b < DEC_STAGES - 1; b++) {
            uint16_t *kt = tiles + (size_t)b * 2 * tile_elems;
            const int keys = max(0, min(PASS, end - start - b * PASS));
            stage_keys(p, kt, kt + tile_elems, kvh, start + b * PASS, keys, 0, fresh);
        }
    pdl_wait();
    if (!work) return;
    const int hg = threadIdx.x / DEC_THREADS, tid = threadIdx.x % DEC_THREADS;

    const int lane = tid & 31, warp = tid >> 5;
    const int sub = lane % LPK, slot = lane / LPK, d0 = 8 * sub;
    const bool dims = d0 < p.head_dim, mine = hg < nh;
    float q[8];
    if (mine) load_query(p, first + hg, i, d0, q);
    softmax_state st;
    fresh_state(st);

    const int passes = ceil_div(end - start, PASS);
    for (int b = 0; b < DEC_STAGES - 1; b++) { /* the batch's own keys of the first passes, after the wait */
        uint16_t *kt = tiles + (size_t)b * 2 * tile_elems;
        const int keys = max(0, min(PASS, end - start - b * PASS));
        stage_keys(p, kt, kt + tile_elems, kvh, start + b * PASS, keys, fresh);
    }
    for (int pass = 0; pass < passes; pass++) {
        /* This thread's copies of the pass have landed (at pass 0 all of them: the first passes'
         * new keys are the newest group) ... */
        if (pass == 0) cp_async_wait<0>();
        else cp_async_wait<DEC_STAGES - 2>();
        __syncthreads(); /* ... and everyone's; the stage summed last pass is free */
        const int next = pass + DEC_STAGES - 1;
        uint16_t *kn = tiles + (size_t)(next % DEC_STAGES) * 2 * tile_elems;
        const int next_keys = next < passes ? min(PASS, end - start - next * PASS) : 0;
        stage_keys(p, kn, kn + tile_elems, kvh, start + next * PASS, next_keys);
        const int t0 = start + pass * PASS + warp * KPW * DEC_U;
        if (!mine || t0 >= end) continue;
        /* Key t0 + u * KPW + slot is row warp * KPW * DEC_U + u * KPW + slot of the stage. */
        const uint16_t *kw = tiles + (size_t)(pass % DEC_STAGES) * 2 * tile_elems +
                             (warp * KPW * DEC_U + slot) * p.head_dim + d0;
        const int row_step = KPW * p.head_dim;
        uint4 kr[DEC_U], vr[DEC_U];
#pragma unroll
        for (int u = 0; u < DEC_U; u++) {
            const bool ok = dims && t0 + u * KPW + slot < end;
            kr[u] = ok ? lds16(kw + u * row_step) : make_uint4(0, 0, 0, 0);
            vr[u] = ok ? lds16(kw + tile_elems + u * row_step) : make_uint4(0, 0, 0, 0);
        }
        consume_keys<LPK>(st, q, kr, vr, t0, slot, end);
    }
    if (mine) finish_head<LPK>(p, st, s, first + hg, i, splits, tid, 1 + hg, heads_sm[hg]);
}

int attn_decode_splits(int heads, int kv_heads, int sms) {
    const int blocks = kv_heads * ceil_div(heads / kv_heads, DEC_GROUP_HEADS); /* per query and split */
    const int want = sms / blocks; /* one block per SM for a decoded token */
    return want < 1 ? 1 : want > MAX_SPLITS ? MAX_SPLITS : want;
}

template <int LPK>
static cudaError_t launch_decode(const launch_ctx &c, const attn_params &p) {
    const int group = p.heads / p.kv_heads, per_block = group < DEC_GROUP_HEADS ? group : DEC_GROUP_HEADS;
    dim3 grid(p.splits, p.kv_heads * ceil_div(group, DEC_GROUP_HEADS), p.n), block(DEC_THREADS * per_block);
    return launch_kernel(c, attn_decode_kernel<LPK>, grid, block, decode_smem(LPK, p.head_dim), p);
}

cudaError_t attn_decode(const launch_ctx &c, const attn_params &p) {
    switch (attn_decode_lpk(p.head_dim)) {
    case 1: return launch_decode<1>(c, p);
    case 2: return launch_decode<2>(c, p);
    case 4: return launch_decode<4>(c, p);
    case 8: return launch_decode<8>(c, p);
    case 16: return launch_decode<16>(c, p);
    default: return launch_decode<32>(c, p);
    }
}

template <int LPK>
static cudaError_t allow_smem(int head_dim_max) {
    return cudaFuncSetAttribute(attn_decode_kernel<LPK>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                (int)decode_smem(LPK, head_dim_max));
}

cudaError_t setup_attn_decode() {
    cudaError_t e = allow_smem<1>(8);
    if (e == cudaSuccess) e = allow_smem<2>(16);
    if (e == cudaSuccess) e = allow_smem<4>(32);
    if (e == cudaSuccess) e = allow_smem<8>(64);
    if (e == cudaSuccess) e = allow_smem<16>(128);
    if (e == cudaSuccess) e = allow_smem<32>(256);
    return e;
}

} // namespace sk
