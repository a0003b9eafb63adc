/* elementwise.cu — the element-wise ops: x += a*y (add and scale_add), gate = silu(gate) * up,
 * fp32 -> bf16 (the activations cuBLAS multiplies), and bias rows. Grid-stride loops, four
 * elements per step when the pointers allow. Batch-1 decoding fuses most of these into the GEMV
 * (gemv.cu); they run as such for prefill and verification batches. */
#include "common.cuh"
#include "kernels.cuh"

namespace sk {

static unsigned grid_for(const launch_ctx &c, size_t items) {
    size_t blocks = (items + 255) / 256, cap = (size_t)c.sms * 8;
    return (unsigned)(blocks < cap ? (blocks ? blocks : 1) : cap);
}

static bool aligned16(const void *p) { return ((uintptr_t)p & 15) == 0; }

__device__ __forceinline__ float silu_times(float g, float u) { return g / (1.0f + expf(-g)) * u; }

__global__ void axpy_kernel(float *x, float a, const float *y, size_t count, bool vec) {
    pdl_launch_dependents();
    pdl_wait();
    const size_t stride = (size_t)gridDim.x * blockDim.x;
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (vec) {
        for (; i < count / 4; i += stride) {
            float4 xv = reinterpret_cast<float4 *>(x)[i], yv = reinterpret_cast<const float4 *>(y)[i];
            xv.x = fmaf(a, yv.x, xv.x), xv.y = fmaf(a, yv.y, xv.y), xv.z = fmaf(a, yv.z, xv.z), xv.w = fmaf(a, yv.w, xv.w);
            reinterpret_cast<float4 *>(x)[i] = xv;
        }
    } else {
        for (; i < count; i += stride) x[i] = fmaf(a, y[i], x[i]);
    }
}

/* Every buffer becomes the sum over them, added in rank order (the host communicator's order). The
 * buffers may sit on other devices (peer access); scalar accesses, since a rank's count need not be
 * a multiple of 4 and this is a few KB per decode step. */
__global__ void sum_ranks_kernel(rank_buffers b, size_t count) {
    pdl_launch_dependents();
    pdl_wait();
    const size_t stride = (size_t)gridDim.x * blockDim.x;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < count; i += stride) {
        float sum = b.p[0][i];
        for (int r = 1; r < b.n; r++) sum += b.p[r][i];
        for (int r = 0; r < b.n; r++) b.p[r][i] = sum;
    }
}

cudaError_t sum_ranks(const launch_ctx &c, const rank_buffers &b, size_t count) {
    return launch_kernel(c, sum_ranks_kernel, dim3(grid_for(c, count)), dim3(256), 0, b, count);
}

__global__ void silu_mul_kernel(float *gate, const float *up, size_t count, bool vec, uint16_t *out_bf16) {
    pdl_launch_dependents();
    pdl_wait();
    const size_t stride = (size_t)gridDim.x * blockDim.x;
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (vec) {
        for (; i < count / 4; i += stride) {
            float4 g = reinterpret_cast<float4 *>(gate)[i], u = reinterpret_cast<const float4 *>(up)[i];
            g = make_float4(silu_times(g.x, u.x), silu_times(g.y, u.y), silu_times(g.z, u.z), silu_times(g.w, u.w));
            reinterpret_cast<float4 *>(gate)[i] = g;
            if (out_bf16) reinterpret_cast<uint2 *>(out_bf16)[i] = pack4_bf16(g);
        }
    } else {
        for (; i < count; i += stride) {
            gate[i] = silu_times(gate[i], up[i]);
            if (out_bf16) out_bf16[i] = f32_to_bf16(gate[i]);
        }
    }
}

__global__ void to_bf16_kernel(uint16_t *out, const float *x, size_t count, bool vec) {
    pdl_launch_dependents();
    pdl_wait();
    const size_t stride = (size_t)gridDim.x * blockDim.x;
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (vec) {
        for (; i < count / 4; i += stride) {
            reinterpret_cast<uint2 *>(out)[i] = pack4_bf16(reinterpret_cast<const float4 *>(x)[i]);
        }
    } else {
        for (; i < count; i += stride) out[i] = f32_to_bf16(x[i]);
    }
}

__global__ void add_bias_kernel(float *out, const uint16_t *bias, int rows, size_t count) {
    pdl_launch_dependents();
    pdl_wait();
    const size_t stride = (size_t)gridDim.x * blockDim.x;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < count; i += stride)
        out[i] += bf16_at(bias, i % (size_t)rows);
}

cudaError_t axpy(const launch_ctx &c, float *x, float a, const float *y, size_t count) {
    bool vec = count % 4 == 0 && aligned16(x) && aligned16(y);
    return launch_kernel(c, axpy_kernel, dim3(grid_for(c, vec ? count / 4 : count)), dim3(256), 0, x, a, y, count, vec);
}

cudaError_t silu_mul(const launch_ctx &c, float *gate, const float *up, size_t count, uint16_t *out_bf16) {
    bool vec = count % 4 == 0 && aligned16(gate) && aligned16(up) && ((uintptr_t)out_bf16 & 7) == 0;
    return launch_kernel(c, silu_mul_kernel, dim3(grid_for(c, vec ? count / 4 : count)), dim3(256), 0, gate, up, count,
                         vec, out_bf16);
}

cudaError_t to_bf16(const launch_ctx &c, uint16_t *out, const float *x, size_t count) {
    bool vec = count % 4 == 0 && aligned16(x) && ((uintptr_t)out & 7) == 0;
    return launch_kernel(c, to_bf16_kernel, dim3(grid_for(c, vec ? count / 4 : count)), dim3(256), 0, out, x, count, vec);
}

cudaError_t add_bias(const launch_ctx &c, float *out, const uint16_t *bias, int n, int rows) {
    size_t count = (size_t)n * rows;
    return launch_kernel(c, add_bias_kernel, dim3(grid_for(c, count)), dim3(256), 0, out, bias, rows, count);
}

} // namespace sk
