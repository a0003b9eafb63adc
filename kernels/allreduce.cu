/* allreduce.cu — the one-shot all-reduce of tensor-parallel ranks on their own devices
 * (engine/cuda/nccl_comm.cu takes it for small sums: a decode or verify step's two per layer).
 *
 * NCCL's all-reduce of one decode step's 16 KB cost ~24 us on two NVLink-joined H200s (an 8B
 * token at tp 2 took 3.66 ms where half of every GEMV would give ~2.1), most of it latency. Here
 * each rank's kernel, one block on its own stream:
 *   1. pushes its partial sums into every other rank's inbox (stores over NVLink peer access),
 *   2. publishes the call's epoch in every other rank's flags (a release at system scope after a
 *      system fence, so the inbox stores are visible first),
 *   3. waits until every other rank's epoch reached its own flags (local polls),
 *   4. adds the ranks' partials in rank order 0..N-1, like the host communicator, and writes the
 *      total into its buffer, or adds it to `into` (the residual stream: engine/tp.h).
 * No rank reads another's memory, so no second handshake guards the in-place write. Inboxes are
 * double-buffered by the epoch's parity: a rank can be at most one call ahead of any other (its
 * call e + 1 waits for every rank's push of e + 1, which follows their reading of e), so call e + 2
 * never overwrites an inbox still being read. Epochs only grow (one device counter per rank, read
 * after the PDL wait: the previous call on this stream wrote it), so nothing is reset between calls
 * or graph replays. */
#include "common.cuh"
#include "kernels.cuh"

namespace sk {

#define ONESHOT_THREADS 1024

__device__ __forceinline__ unsigned load_acquire_sys(const unsigned *p) {
    unsigned v;
    asm volatile("ld.acquire.sys.global.u32 %0, [%1];" : "=r"(v) : "l"(p) : "memory");
    return v;
}

__device__ __forceinline__ void store_release_sys(unsigned *p, unsigned v) {
    asm volatile("st.release.sys.global.u32 [%0], %1;" ::"l"(p), "r"(v) : "memory");
}

/* Rank q's slot of an inbox for calls of parity par. */
__device__ __forceinline__ size_t inbox_slot(const oneshot_params &p, unsigned par, int q) {
    return ((size_t)par * p.ranks + q) * p.cap;
}

__global__ void __launch_bounds__(ONESHOT_THREADS) allreduce_oneshot_kernel(const __grid_constant__ oneshot_params p) {
    pdl_launch_dependents();
    pdl_wait(); /* the partial sums and the epoch come from earlier kernels of this stream */
    __shared__ unsigned epoch_sh;
    if (threadIdx.x == 0) epoch_sh = __ldcg(p.epoch) + 1;
    __syncthreads();
    const unsigned e = epoch_sh, par = e & 1;
    for (size_t i = threadIdx.x; i < p.count; i += ONESHOT_THREADS) {
        const float v = p.buf[i];
        for (int q = 0; q < p.ranks; q++)
            if (q != p.rank) p.peer_inbox[q][inbox_slot(p, par, p.rank) + i] = v;
    }
    __syncthreads();
    if (threadIdx.x == 0) {
        __threadfence_system();
        for (int q = 0; q < p.ranks; q++)
            if (q != p.rank) store_release_sys(p.peer_flags[q] + p.rank, e);
    }
    if (threadIdx.x < p.ranks && threadIdx.x != p.rank)
        while ((int)(load_acquire_sys(p.flags + threadIdx.x) - e) < 0) __nanosleep(32);
    __syncthreads();
    for (size_t i = threadIdx.x; i < p.count; i += ONESHOT_THREADS) {
        float sum = 0.0f;
        for (int q = 0; q < p.ranks; q++) {
            const float v = q == p.rank ? p.buf[i] : __ldcg(p.inbox + inbox_slot(p, par, q) + i);
            sum = q == 0 ? v : sum + v;
        }
        if (p.into) p.into[i] += sum;
        else p.buf[i] = sum;
    }
    if (threadIdx.x == 0) *p.epoch = e;
}

cudaError_t allreduce_oneshot(const launch_ctx &c, const oneshot_params &p) {
    return launch_kernel(c, allreduce_oneshot_kernel, dim3(1), dim3(ONESHOT_THREADS), 0, p);
}

} // namespace sk
