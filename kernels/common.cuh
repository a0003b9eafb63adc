/* common.cuh — what every kernel family shares: bf16 unpacking, streaming loads, warp reductions,
 * and programmatic dependent launch (PDL).
 *
 * PDL rule, kept by every kernel: each thread calls pdl_wait() before it reads anything an earlier
 * kernel wrote or writes anything an earlier kernel reads, and on every path before it returns
 * (a grid that ends without waiting could finish before its predecessor, and then its successor's
 * wait would not cover the predecessor). Only data that never changes during a forward (weights,
 * the rotary table, the batch's positions copied before the forward, and the KV cache's entries
 * before the batch's first position: a forward writes the cache only at its batch's positions)
 * may be read before the wait. A forward starts with that copy of the positions, a plain stream
 * dependency, so no kernel of it runs ahead of an earlier forward's.
 * Every kernel calls pdl_launch_dependents() early: the next kernel's blocks may then be scheduled
 * while this one drains, and they stop in their own pdl_wait(). */
#ifndef SPECSCOPE_KERNELS_COMMON_CUH
#define SPECSCOPE_KERNELS_COMMON_CUH

#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <stdint.h>

/* griddepcontrol (PDL), bf16 WMMA and __reduce_*_sync need Hopper: a build for an older target
 * would otherwise compile to slower code or not at all, far from the cause. */
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 900
#error "specscope's kernels are built for sm_90: set the CUDA_ARCHITECTURES of specscope_engine to 90"
#endif

#define LOG2E 1.4426950408889634f /* softmax in base 2: exp(x) = exp2(x * LOG2E) */

namespace sk {

__device__ __forceinline__ void pdl_wait() { asm volatile("griddepcontrol.wait;" ::: "memory"); }
__device__ __forceinline__ void pdl_launch_dependents() { asm volatile("griddepcontrol.launch_dependents;" ::: "memory"); }

/* A bf16 pair packed in 32 bits (the lower address in the low half) as two floats. */
__device__ __forceinline__ float bf16_lo(uint32_t v) { return __uint_as_float(v << 16); }
__device__ __forceinline__ float bf16_hi(uint32_t v) { return __uint_as_float(v & 0xffff0000u); }
__device__ __forceinline__ float bf16_at(const uint16_t *p, size_t i) { return __uint_as_float((uint32_t)p[i] << 16); }

/* fp32 -> bf16 bits, round to nearest even (NaN stays NaN), as ss_f32_to_bf16. */
__device__ __forceinline__ uint16_t f32_to_bf16(float x) { return __bfloat16_as_ushort(__float2bfloat16_rn(x)); }

/* Four floats as four bf16 (round to nearest even), in memory order. */
__device__ __forceinline__ uint2 pack4_bf16(float4 v) {
    return make_uint2((uint32_t)f32_to_bf16(v.x) | ((uint32_t)f32_to_bf16(v.y) << 16),
                      (uint32_t)f32_to_bf16(v.z) | ((uint32_t)f32_to_bf16(v.w) << 16));
}

/* 16 bytes of data that is read once and never written during the kernel (weights): read-only
 * path, not kept in L1. */
__device__ __forceinline__ uint4 load_stream16(const void *p) {
    uint4 v;
    asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0, %1, %2, %3}, [%4];"
                 : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
                 : "l"(p));
    return v;
}

/* Pulls the 128-byte line holding p into L1, returning nothing: constant data (weights, tables)
 * that a kernel reads after its PDL wait is fetched while the previous kernel still runs. */
__device__ __forceinline__ void prefetch_l1(const void *p) { asm volatile("prefetch.global.L1 [%0];" ::"l"(p)); }

/* 16 bytes through the read-only cache (data an earlier kernel wrote, constant during this one). */
__device__ __forceinline__ uint4 load_nc16(const void *p) { return __ldg(reinterpret_cast<const uint4 *>(p)); }

/* sum_j bf16(w[j]) * x[j] over 8 elements. */
__device__ __forceinline__ float dot8(uint4 w, float4 x0, float4 x1) {
    float s = bf16_lo(w.x) * x0.x;
    s = fmaf(bf16_hi(w.x), x0.y, s);
    s = fmaf(bf16_lo(w.y), x0.z, s);
    s = fmaf(bf16_hi(w.y), x0.w, s);
    s = fmaf(bf16_lo(w.z), x1.x, s);
    s = fmaf(bf16_hi(w.z), x1.y, s);
    s = fmaf(bf16_lo(w.w), x1.z, s);
    s = fmaf(bf16_hi(w.w), x1.w, s);
    return s;
}

__device__ __forceinline__ void unpack8(uint4 w, float f[8]) {
    f[0] = bf16_lo(w.x), f[1] = bf16_hi(w.x), f[2] = bf16_lo(w.y), f[3] = bf16_hi(w.y);
    f[4] = bf16_lo(w.z), f[5] = bf16_hi(w.z), f[6] = bf16_lo(w.w), f[7] = bf16_hi(w.w);
}

/* cos / sin of the rotary angle pos * inv_freq, formed in double like the CPU backend (so long
 * positions round the same way). Shared by every kernel that rotates, so they agree bit for bit. */
__device__ __forceinline__ void rope_cos_sin(int pos, float inv_freq, float &c, float &s) {
    double sd, cd;
    sincos((double)((float)pos * inv_freq), &sd, &cd);
    c = (float)cd, s = (float)sd;
}

/* HF rotate_half on one pair (x0 at d, x1 at d + head_dim / 2). */
__device__ __forceinline__ void rotate_pair(float &x0, float &x1, float c, float s) {
    const float a = x0 * c - x1 * s, b = x1 * c + x0 * s;
    x0 = a, x1 = b;
}

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

/* __syncthreads, as a barrier argument of the functions below. */
struct block_barrier {
    __device__ __forceinline__ void operator()() const { __syncthreads(); }
};

/* Sum over the first `warps` warps of the block, which all call it and meet at sync (a barrier
 * over exactly them); every caller gets the total. red: __shared__ float[32]. */
template <typename Sync>
__device__ __forceinline__ float block_sum(float v, float *red, int warps, Sync sync) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    v = warp_sum(v);
    sync(); /* red may still be read from an earlier call */
    if (lane == 0) red[warp] = v;
    sync();
    float t = lane < warps ? red[lane] : 0.0f;
    return warp_sum(t);
}

/* Sum over the block (blockDim.x a multiple of 32, at most 1024); every thread gets the total.
 * red: __shared__ float[32]. Contains __syncthreads. */
__device__ __forceinline__ float block_sum(float v, float *red) { return block_sum(v, red, blockDim.x >> 5, block_barrier()); }

__host__ __device__ __forceinline__ int ceil_div(int a, int b) { return (a + b - 1) / b; }

} // namespace sk

#endif
