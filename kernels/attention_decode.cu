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
#include "attention_decode.cuh"

namespace sk {

template <int LPK>
__global__ void __launch_bounds__(DEC_THREADS) attn_decode_kernel(const __grid_constant__ attn_params p) {
    __shared__ attn_decode_smem sm;
    const int len = p.positions[blockIdx.z] + 1; /* copied before the forward: may be read before the wait */
    pdl_launch_dependents();
    pdl_wait();
    attn_decode_run<LPK>(p, blockIdx.x, blockIdx.y, blockIdx.z, len, threadIdx.x, 0, sm);
}

int attn_decode_splits(int heads, int sms) {
    int want = ceil_div(4 * sms, heads);
    return want < 1 ? 1 : want > MAX_SPLITS ? MAX_SPLITS : want;
}

cudaError_t attn_decode(const launch_ctx &c, const attn_params &p) {
    dim3 grid(p.splits, p.heads, p.n), block(DEC_THREADS);
    switch (attn_decode_lpk(p.head_dim)) {
    case 1: return launch_kernel(c, attn_decode_kernel<1>, grid, block, 0, p);
    case 2: return launch_kernel(c, attn_decode_kernel<2>, grid, block, 0, p);
    case 4: return launch_kernel(c, attn_decode_kernel<4>, grid, block, 0, p);
    case 8: return launch_kernel(c, attn_decode_kernel<8>, grid, block, 0, p);
    case 16: return launch_kernel(c, attn_decode_kernel<16>, grid, block, 0, p);
    default: return launch_kernel(c, attn_decode_kernel<32>, grid, block, 0, p);
    }
}

} // namespace sk
