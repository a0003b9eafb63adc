/* rope.cu — the attention inputs of one batch in one launch: per-head q/k RMSNorm (qwen3), the
 * rotary embedding (HF rotate_half: pairs (d, d + head_dim/2) turn by pos * inv_freq[d]; the llama3
 * and linear scalings come in through inv_freq), and the bf16 KV-cache store at the batch
 * positions.
 *
 * Blocks (token, part): each block first forms cos/sin of its token's position (in double, like the
 * CPU backend, so long positions round the same way), then each warp takes one head row: lane l holds
 * the pairs (d, d + half) for d = l, l + 32, ... so the norm and the rotation need no exchange
 * beyond one warp sum. */
#include "common.cuh"
#include "kernels.cuh"

namespace sk {

#define PREP_PAIRS (SK_PREP_MAX_HEAD_DIM / 64) /* pairs per lane */

__device__ __forceinline__ void prep_row(const prep_params &p, const prep_tensor &t, int i, int head, int pos,
                                         const float *cs, const float *sn, bool store_k) {
    const int hd = p.head_dim, half = hd / 2, lane = threadIdx.x & 31;
    float *x = t.x + ((size_t)i * t.heads + head) * hd;
    float a[PREP_PAIRS], b[PREP_PAIRS];
#pragma unroll
    for (int j = 0; j < PREP_PAIRS; j++) {
        const int d = lane + 32 * j;
        a[j] = d < half ? x[d] : 0.0f;
        b[j] = d < half ? x[d + half] : 0.0f;
    }
    if (t.norm) {
        float ss = 0.0f;
#pragma unroll
        for (int j = 0; j < PREP_PAIRS; j++) ss += a[j] * a[j] + b[j] * b[j];
        ss = warp_sum(ss);
        const float inv = 1.0f / sqrtf(ss / (float)hd + p.eps);
#pragma unroll
        for (int j = 0; j < PREP_PAIRS; j++) {
            const int d = lane + 32 * j;
            a[j] *= inv;
            b[j] *= inv;
            if (t.norm_w && d < half) {
                a[j] = bf16_at(t.norm_w, d) * a[j];
                b[j] = bf16_at(t.norm_w, d + half) * b[j];
            }
        }
    }
    if (t.rope) {
#pragma unroll
        for (int j = 0; j < PREP_PAIRS; j++) {
            const int d = lane + 32 * j;
            if (d < half) rotate_pair(a[j], b[j], cs[d], sn[d]);
        }
    }
    uint16_t *kc = store_k ? p.kcache + (size_t)pos * p.kv_dim + (size_t)head * hd : nullptr;
#pragma unroll
    for (int j = 0; j < PREP_PAIRS; j++) {
        const int d = lane + 32 * j;
        if (d < half) {
            x[d] = a[j];
            x[d + half] = b[j];
            if (kc) {
                kc[d] = f32_to_bf16(a[j]);
                kc[d + half] = f32_to_bf16(b[j]);
            }
        }
    }
}

#define PREP_THREADS 256

__global__ void __launch_bounds__(PREP_THREADS) prep_kernel(const __grid_constant__ prep_params p) {
    __shared__ float cs[SK_PREP_MAX_HEAD_DIM / 2], sn[SK_PREP_MAX_HEAD_DIM / 2];
    pdl_launch_dependents();
    const int i = blockIdx.x;
    const int pos = p.positions[i]; /* copied before the forward began: readable before the wait */
    const int half = p.head_dim / 2;
    bool rope = false;
    for (int j = 0; j < p.nt; j++) rope |= p.t[j].rope;
    for (int d = threadIdx.x; rope && d < half; d += blockDim.x) rope_cos_sin(pos, p.inv_freq[d], cs[d], sn[d]);
    __syncthreads();
    pdl_wait();

    const int warps = blockDim.x >> 5, warp = blockIdx.y * warps + (threadIdx.x >> 5), stride = gridDim.y * warps;
    int total = 0;
    for (int j = 0; j < p.nt; j++) total += p.t[j].heads;
    for (int row = warp; row < total; row += stride) {
        int j = 0, head = row;
        while (head >= p.t[j].heads) head -= p.t[j++].heads;
        prep_row(p, p.t[j], i, head, pos, cs, sn, p.store && j == p.k_slot);
    }
    if (p.store) {
        const size_t src = (size_t)i * p.kv_dim, dst = (size_t)pos * p.kv_dim;
        for (int e = blockIdx.y * blockDim.x + threadIdx.x; e < p.kv_dim; e += gridDim.y * blockDim.x) {
            if (p.k_slot < 0) p.kcache[dst + e] = f32_to_bf16(p.k[src + e]);
            p.vcache[dst + e] = f32_to_bf16(p.v[src + e]);
        }
    }
}

cudaError_t prep(const launch_ctx &c, const prep_params &p) {
    int rows = 0;
    for (int j = 0; j < p.nt; j++) rows += p.t[j].heads;
    /* One warp per head row: a decode step's 40 rows (8B) on one block would run 5 dependent
     * passes; spread over blocks, each warp makes one. */
    const int per_token = rows > 0 ? ceil_div(rows, PREP_THREADS / 32) : 1; /* a plain KV store: one block */
    return launch_kernel(c, prep_kernel, dim3(p.n, per_token), dim3(PREP_THREADS), 0, p);
}

} // namespace sk
