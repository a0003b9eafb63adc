/* rmsnorm.cu — RMSNorm over rows, optionally fused with the residual add that precedes it
 * (x += add; out = norm(x)), so a prefill layer boundary reads the residual stream once, and
 * optionally writing out as bf16 too (the copy the next cuBLAS matmul multiplies).
 * One block per row; the batch-1 norms are fused into the GEMV instead (gemv.cu) and the per-head
 * q/k norms into the rotary kernel (rope.cu). */
#include "common.cuh"
#include "kernels.cuh"

namespace sk {

__global__ void __launch_bounds__(256) rmsnorm_kernel(float *out, float *x, const float *add, const uint16_t *w, int dim,
                                                      float eps, uint16_t *out_bf16) {
    __shared__ float red[32];
    pdl_launch_dependents();
    pdl_wait();
    const size_t base = (size_t)blockIdx.x * dim;
    float *xr = x + base;
    float ss = 0.0f;
    for (int c = threadIdx.x; c < dim; c += blockDim.x) {
        float v = xr[c];
        if (add) {
            v += add[base + c];
            xr[c] = v; /* the same thread rereads it below */
        }
        ss += v * v;
    }
    ss = block_sum(ss, red);
    const float inv = 1.0f / sqrtf(ss / (float)dim + eps);
    float *o = out + base;
    for (int c = threadIdx.x; c < dim; c += blockDim.x) {
        float v = xr[c] * inv;
        v = w ? bf16_at(w, c) * v : v;
        o[c] = v;
        if (out_bf16) out_bf16[base + c] = f32_to_bf16(v);
    }
}

cudaError_t rmsnorm(const launch_ctx &c, float *out, float *x, const float *add, const uint16_t *w, int rows, int dim,
                    float eps, uint16_t *out_bf16) {
    return launch_kernel(c, rmsnorm_kernel, dim3(rows), dim3(256), 0, out, x, add, w, dim, eps, out_bf16);
}

} // namespace sk
