/* sampling.cu — token choice on the device, so that greedy decoding copies back one id per row
 * instead of the logits. argmax follows ss_argmax exactly: the largest value, the lowest index on
 * ties, NaN never chosen over a number (an all-NaN row gives 0). */
#include "common.cuh"
#include "kernels.cuh"

namespace sk {

#define ARGMAX_THREADS 1024

/* Whether (v2, i2) beats (v1, i1). */
__device__ __forceinline__ bool better(float v1, int i1, float v2, int i2) {
    const bool nan1 = v1 != v1, nan2 = v2 != v2;
    if (nan1 != nan2) return nan1;
    if (v2 > v1) return true;
    if (v2 < v1) return false;
    return i2 < i1;
}

__global__ void __launch_bounds__(ARGMAX_THREADS) argmax_kernel(int *out, const float *logits, int vocab) {
    __shared__ float sv[32];
    __shared__ int si[32];
    pdl_launch_dependents();
    pdl_wait();
    const float *row = logits + (size_t)blockIdx.x * vocab;
    float best = NAN;
    int at = 0x7fffffff;
    for (int i = threadIdx.x; i < vocab; i += blockDim.x) {
        const float v = row[i];
        if (better(best, at, v, i)) best = v, at = i;
    }
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
        const float v = __shfl_xor_sync(0xffffffffu, best, o);
        const int i = __shfl_xor_sync(0xffffffffu, at, o);
        if (better(best, at, v, i)) best = v, at = i;
    }
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    if (lane == 0) sv[warp] = best, si[warp] = at;
    __syncthreads();
    if (warp == 0) {
        best = lane < (int)(blockDim.x >> 5) ? sv[lane] : NAN;
        at = lane < (int)(blockDim.x >> 5) ? si[lane] : 0x7fffffff;
#pragma unroll
        for (int o = 16; o > 0; o >>= 1) {
            const float v = __shfl_xor_sync(0xffffffffu, best, o);
            const int i = __shfl_xor_sync(0xffffffffu, at, o);
            if (better(best, at, v, i)) best = v, at = i;
        }
        if (lane == 0) out[blockIdx.x] = at < vocab ? at : 0;
    }
}

cudaError_t argmax_rows(const launch_ctx &c, int *out, const float *logits, int rows, int vocab) {
    return launch_kernel(c, argmax_kernel, dim3(rows), dim3(ARGMAX_THREADS), 0, out, logits, vocab);
}

} // namespace sk
