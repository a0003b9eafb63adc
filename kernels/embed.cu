/* embed.cu — token embedding: one block per token copies its bf16 row into the fp32 residual
 * stream, 16 bytes at a time when the row allows. */
#include "common.cuh"
#include "kernels.cuh"

namespace sk {

__global__ void __launch_bounds__(256) embed_kernel(float *x, const uint16_t *table, const int *tokens, int cols) {
    pdl_launch_dependents();
    pdl_wait();
    const int i = blockIdx.x;
    const uint16_t *row = table + (size_t)tokens[i] * cols;
    float *dst = x + (size_t)i * cols;
    if ((cols & 7) == 0 && ((uintptr_t)dst & 15) == 0) {
        for (int c = threadIdx.x; c < cols / 8; c += blockDim.x) {
            float f[8];
            unpack8(load_stream16(row + 8 * c), f);
            reinterpret_cast<float4 *>(dst)[2 * c] = make_float4(f[0], f[1], f[2], f[3]);
            reinterpret_cast<float4 *>(dst)[2 * c + 1] = make_float4(f[4], f[5], f[6], f[7]);
        }
    } else {
        for (int c = threadIdx.x; c < cols; c += blockDim.x) dst[c] = bf16_at(row, c);
    }
}

cudaError_t embed(const launch_ctx &c, float *x, const uint16_t *table, const int *tokens, int n, int cols) {
    return launch_kernel(c, embed_kernel, dim3(n), dim3(256), 0, x, table, tokens, cols);
}

} // namespace sk
