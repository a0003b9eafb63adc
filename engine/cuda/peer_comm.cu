/* peer_comm.cu — the communicator of CUDA ranks without NCCL (engine/tp.h): rank 0's stream copies
 * the other ranks' partial sums next to its own (cudaMemcpyPeerAsync, staged by the driver where
 * the devices cannot reach each other), adds them in rank order 0..N-1 like the host communicator,
 * so the result does not depend on timing, and copies the sum back to every rank.
 *
 * It serves what NCCL cannot: ranks that share a device (SPECSCOPE_TP_DEVICES, engine/model.c: a
 * split checked on one GPU), and machines without libnccl.so.2. It is slower than NCCL (every byte
 * crosses twice, one copy at a time), which matters only for speed, not for the results.
 *
 * The streams meet through events: each rank records `ready` after its last op, rank 0's stream
 * waits for all of them before copying, and the other ranks' streams wait for `summed` before
 * their next op. Events must be recorded on their own device's streams, so each rank has its own. */
#include <stdlib.h>
#include <string.h>

#include "cuda_internal.h"

extern "C" {
#include "tp.h"
}

typedef struct {
    cuda_backend *rank[SS_MAX_TP];
    cudaEvent_t ready[SS_MAX_TP]; /* on rank r's device */
    cudaEvent_t summed;           /* on rank 0's device */
    float *stage;                 /* on rank 0's device: ranks - 1 buffers of cap floats */
    size_t cap;
} peer_impl;

static peer_impl *impl_of(ss_tp_comm *c) { return (peer_impl *)c->impl; }

static bool peer_ok(ss_tp_comm *c, cudaError_t e, const char *what) {
    if (e == cudaSuccess) return true;
    cudaGetLastError();
    if (c->failed.status == SS_OK)
        ss_fail(&c->failed, e == cudaErrorMemoryAllocation ? SS_ENOMEM : SS_EDEVICE, "peer all-reduce: %s: %s", what,
                cudaGetErrorString(e));
    return false;
}

/* Room for count floats from each of the other ranks; tensor-parallel forwards are never captured
 * into graphs (forward.c), so growing here is safe. cudaFree waits for the old stage's users. */
static bool reserve_stage(ss_tp_comm *c, size_t count) {
    peer_impl *p = impl_of(c);
    if (count <= p->cap) return true;
    if (!peer_ok(c, cudaSetDevice(p->rank[0]->device), "device") || !peer_ok(c, cudaFree(p->stage), "free"))
        return false;
    p->stage = NULL, p->cap = 0;
    if (!peer_ok(c, cudaMalloc((void **)&p->stage, (size_t)(c->ranks - 1) * count * sizeof(float)), "stage")) return false;
    p->cap = count;
    return true;
}

/* Every rank's work so far, then the copies and sums on rank 0's stream. */
static bool gather_and_sum(ss_tp_comm *c, ss_backend *const *ranks, float *const *bufs, size_t count) {
    peer_impl *p = impl_of(c);
    const size_t bytes = count * sizeof(float);
    cudaStream_t s[SS_MAX_TP];
    for (int r = 0; r < c->ranks; r++) {
        s[r] = (cudaStream_t)ranks[r]->ops->stream(ranks[r]); /* flushes the rank's pending op */
        if (!peer_ok(c, cudaSetDevice(p->rank[r]->device), "device") || !peer_ok(c, cudaEventRecord(p->ready[r], s[r]), "event"))
            return false;
    }
    const int dev0 = p->rank[0]->device;
    if (!peer_ok(c, cudaSetDevice(dev0), "device")) return false;
    sk::launch_ctx l = cb_launch(p->rank[0]);
    for (int r = 1; r < c->ranks; r++) {
        float *part = p->stage + (size_t)(r - 1) * count;
        if (!peer_ok(c, cudaStreamWaitEvent(s[0], p->ready[r], 0), "wait") ||
            !peer_ok(c, cudaMemcpyPeerAsync(part, dev0, bufs[r], p->rank[r]->device, bytes, s[0]), "copy in") ||
            !peer_ok(c, sk::axpy(l, bufs[0], 1.0f, part, count), "sum")) /* x + 1*y is x + y, rounded once */
            return false;
    }
    for (int r = 1; r < c->ranks; r++)
        if (!peer_ok(c, cudaMemcpyPeerAsync(bufs[r], p->rank[r]->device, bufs[0], dev0, bytes, s[0]), "copy out"))
            return false;
    if (!peer_ok(c, cudaEventRecord(p->summed, s[0]), "event")) return false;
    for (int r = 1; r < c->ranks; r++)
        if (!peer_ok(c, cudaSetDevice(p->rank[r]->device), "device") || !peer_ok(c, cudaStreamWaitEvent(s[r], p->summed, 0), "wait"))
            return false;
    return true;
}

static void peer_all_reduce_sum(ss_tp_comm *c, ss_backend *const *ranks, float *const *bufs, size_t count) {
    if (c->failed.status != SS_OK || c->ranks == 1) return;
    if (reserve_stage(c, count)) gather_and_sum(c, ranks, bufs, count);
}

static void peer_destroy(ss_tp_comm *c) {
    peer_impl *p = impl_of(c);
    if (p) {
        for (int r = 0; r < c->ranks; r++) {
            if (!p->rank[r]) continue;
            cudaSetDevice(p->rank[r]->device);
            if (p->ready[r]) cudaEventDestroy(p->ready[r]);
            if (r == 0 && p->summed) cudaEventDestroy(p->summed);
            if (r == 0 && p->stage) cudaFree(p->stage);
        }
        cudaGetLastError();
        free(p);
    }
    free(c);
}

static const ss_tp_comm_ops peer_ops = {"peer", peer_all_reduce_sum, peer_destroy};

extern "C" ss_status ss_tp_comm_peer_create(int ranks, ss_backend *const *backends, ss_tp_comm **out, ss_error *err) {
    *out = NULL;
    if (ranks < 1 || ranks > SS_MAX_TP)
        return ss_fail(err, SS_EARG, "tensor parallelism: %d ranks is outside 1..%d", ranks, SS_MAX_TP);
    for (int r = 0; r < ranks; r++)
        if (!backends[r] || strcmp(backends[r]->ops->name, "cuda") != 0)
            return ss_fail(err, SS_EARG, "peer all-reduce: rank %d is not on a CUDA backend", r);
    ss_tp_comm *c = (ss_tp_comm *)calloc(1, sizeof *c);
    peer_impl *p = (peer_impl *)calloc(1, sizeof *p);
    if (!c || !p) {
        free(c);
        free(p);
        return ss_fail(err, SS_ENOMEM, "peer all-reduce: out of memory for the communicator");
    }
    *c = (ss_tp_comm){&peer_ops, ranks, {}, p};
    for (int r = 0; r < ranks; r++) p->rank[r] = (cuda_backend *)backends[r]->impl;
    cudaError_t e = cudaSuccess;
    for (int r = 0; r < ranks && e == cudaSuccess; r++) {
        if ((e = cudaSetDevice(p->rank[r]->device)) == cudaSuccess)
            e = cudaEventCreateWithFlags(&p->ready[r], cudaEventDisableTiming);
        if (e == cudaSuccess && r == 0) e = cudaEventCreateWithFlags(&p->summed, cudaEventDisableTiming);
    }
    if (e != cudaSuccess) {
        cudaGetLastError();
        peer_destroy(c);
        return ss_fail(err, SS_EDEVICE, "peer all-reduce: events: %s", cudaGetErrorString(e));
    }
    *out = c;
    return SS_OK;
}
