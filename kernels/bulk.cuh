/* bulk.cuh — asynchronous copies into shared memory: Hopper's bulk copies (global -> shared memory,
 * done by the copy engine, not by threads) with the mbarriers that say when one has landed, and
 * the per-thread cp.async of sm_80.
 *
 * Why: a load through registers holds its destination registers until the data arrives, so the
 * bytes a multiprocessor can keep in flight are bounded by its register file (the GEMV's 128 KB
 * per SM; docs/cuda.md). A bulk copy holds nothing but shared memory: a thread issues it and goes
 * on, and the data's arrival completes a transaction count on an mbarrier in shared memory, which
 * the consumer waits on. (PTX ISA: cp.async.bulk, mbarrier; sm_90.) */
#ifndef SPECSCOPE_KERNELS_BULK_CUH
#define SPECSCOPE_KERNELS_BULK_CUH

#include <stdint.h>

namespace sk {

__device__ __forceinline__ uint32_t smem_addr(const void *p) { return (uint32_t)__cvta_generic_to_shared(p); }

/* An mbarrier that completes a phase when one thread has arrived (and, if it announced bytes with
 * mbar_expect, they have landed). mbar_init_done() must follow the inits before any other thread
 * or the copy engine touches them. */
__device__ __forceinline__ void mbar_init(uint64_t *bar) {
    asm volatile("mbarrier.init.shared::cta.b64 [%0], 1;" ::"r"(smem_addr(bar)) : "memory");
}

__device__ __forceinline__ void mbar_init_done() {
    asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
    asm volatile("fence.proxy.async.shared::cta;" ::: "memory");
}

/* The arrival: the phase completes once `bytes` more have landed through copies naming bar. */
__device__ __forceinline__ void mbar_expect(uint64_t *bar, uint32_t bytes) {
    asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" ::"r"(smem_addr(bar)), "r"(bytes) : "memory");
}

/* The plain arrival (release: this thread's earlier accesses happen before the phase completes). */
__device__ __forceinline__ void mbar_arrive(uint64_t *bar) {
    asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];" ::"r"(smem_addr(bar)) : "memory");
}

/* Whether the phase of the given parity has completed, without waiting. A fresh barrier counts the
 * phase before its first (parity 1) as completed. */
__device__ __forceinline__ bool mbar_test(uint64_t *bar, uint32_t parity) {
    uint32_t done;
    asm volatile("{\n .reg .pred p;\n mbarrier.test_wait.parity.shared::cta.b64 p, [%1], %2;\n selp.u32 %0, 1, 0, p;\n}"
                 : "=r"(done)
                 : "r"(smem_addr(bar)), "r"(parity)
                 : "memory");
    return done != 0;
}

/* Waits until the phase of the given parity (0, 1, 0, ... for the barrier's uses) has completed. */
__device__ __forceinline__ void mbar_wait(uint64_t *bar, uint32_t parity) {
    uint32_t done;
    do {
        asm volatile("{\n .reg .pred p;\n mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\n selp.u32 %0, 1, 0, p;\n}"
                     : "=r"(done)
                     : "r"(smem_addr(bar)), "r"(parity)
                     : "memory");
    } while (!done);
}

/* bytes (a multiple of 16; both addresses 16-byte aligned) from global src to shared dst; their
 * arrival counts against bar. */
__device__ __forceinline__ void bulk_copy(void *dst, const void *src, uint32_t bytes, uint64_t *bar) {
    asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];" ::"r"(
                     smem_addr(dst)),
                 "l"(src), "r"(bytes), "r"(smem_addr(bar))
                 : "memory");
}

__device__ __forceinline__ uint4 lds16(const void *p) { return *reinterpret_cast<const uint4 *>(p); }

/* The older per-thread asynchronous copy (cp.async, sm_80+): 16 bytes global -> shared, zeros when
 * !valid (src is then not read). A thread's copies form groups (commit); cp_async_wait<N> returns
 * once all but its N newest groups have landed (visible to other threads after a barrier). */
__device__ __forceinline__ void cp_async16(void *dst, const void *src, bool valid = true) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;" ::"r"(smem_addr(dst)), "l"(src), "r"(valid ? 16 : 0)
                 : "memory");
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;" ::: "memory"); }
template <int N>
__device__ __forceinline__ void cp_async_wait() { asm volatile("cp.async.wait_group %0;" ::"n"(N) : "memory"); }

} // namespace sk

#endif
