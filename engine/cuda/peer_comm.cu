/* peer_comm.cu — the communicator of CUDA ranks without NCCL (engine/tp.h): once every rank's
 * stream has reached the all-reduce, one kernel on rank 0's stream reads the ranks' partial sums
 * (all on one device), adds them in rank order 0..N-1 like the host communicator, so the result
 * does not depend on timing, and writes the sum into every rank's buffer; the other ranks' streams
 * wait for it.
 *
 * It serves ranks that share a device (SPECSCOPE_TP_DEVICES, engine/model.c: a split checked on one
 * GPU) and, with SPECSCOPE_TP_COMM=peer, ranks on devices that reach each other's memory (NVLink
 * peer access, enabled here from rank 0's device): the one kernel then reads and writes the other
 * devices' buffers directly. One kernel, no copies, so it is also captured into CUDA graphs like
 * the rest of a forward. (The sixth session refused ranks on several devices after such a split
 * seemed to hang; the hang was NCCL's destroy of the split before it, engine/model.c.)
 *
 * With `into` (engine/tp.h) each rank then adds the sum to it with its own add op, on its stream.
 * The streams meet through events: each rank records `ready` after its last op, rank 0's stream
 * waits for all of them, and the other ranks' streams wait for `summed`. */
#include <stdlib.h>
#include <string.h>

#include "cuda_internal.h"

extern "C" {
#include "tp.h"
}

typedef struct {
    cuda_backend *rank[SS_MAX_TP]; /* alive while sums run; gone by the time the model frees this */
    int device[SS_MAX_TP];        /* rank r's device, for the events' release */
    cudaEvent_t ready[SS_MAX_TP]; /* on rank r's device */
    cudaEvent_t summed;           /* on rank 0's device */
} peer_impl;

static peer_impl *impl_of(ss_tp_comm *c) { return (peer_impl *)c->impl; }

static bool peer_ok(ss_tp_comm *c, cudaError_t e, const char *what) {
    if (e == cudaSuccess) return true;
    cudaGetLastError();
    if (c->failed.status == SS_OK) ss_fail(&c->failed, SS_EDEVICE, "peer all-reduce: %s: %s", what, cudaGetErrorString(e));
    return false;
}

static void peer_sum(ss_tp_comm *c, ss_backend *const *ranks, float *const *bufs, size_t count) {
    peer_impl *p = impl_of(c);
    cudaStream_t s[SS_MAX_TP];
    sk::rank_buffers b = {};
    b.n = c->ranks;
    for (int r = 0; r < c->ranks; r++) {
        s[r] = (cudaStream_t)ranks[r]->ops->stream(ranks[r]); /* flushes the rank's held-back op */
        b.p[r] = bufs[r];
        if (!peer_ok(c, cudaEventRecord(p->ready[r], s[r]), "event")) return;
    }
    cuda_backend *r0 = p->rank[0];
    if (!peer_ok(c, cudaSetDevice(r0->device), "device")) return;
    for (int r = 1; r < c->ranks; r++)
        if (!peer_ok(c, cudaStreamWaitEvent(s[0], p->ready[r], 0), "wait")) return;
    sk::launch_ctx l = cb_launch(r0);
    l.pdl = false; /* it follows event waits, not a kernel */
    if (!peer_ok(c, sk::sum_ranks(l, b, count), "sum") || !peer_ok(c, cudaEventRecord(p->summed, s[0]), "event")) return;
    for (int r = 1; r < c->ranks; r++)
        if (!peer_ok(c, cudaStreamWaitEvent(s[r], p->summed, 0), "wait")) return;
}

static void peer_all_reduce_sum(ss_tp_comm *c, ss_backend *const *ranks, float *const *bufs, float *const *into,
                                size_t count) {
    if (c->failed.status != SS_OK || !count) return;
    if (c->ranks > 1) peer_sum(c, ranks, bufs, count);
    if (c->failed.status == SS_OK) ss_tp_add_sums(c, ranks, bufs, into, count);
}

static void peer_destroy(ss_tp_comm *c) {
    peer_impl *p = impl_of(c);
    if (p) {
        for (int r = 0; r < c->ranks; r++) {
            if (!p->rank[r]) continue;
            cudaSetDevice(p->device[r]);
            if (p->ready[r]) cudaEventDestroy(p->ready[r]);
            if (r == 0 && p->summed) cudaEventDestroy(p->summed);
        }
        cudaGetLastError();
        free(p);
    }
    free(c);
}

static const ss_tp_comm_ops peer_ops = {"peer", peer_all_reduce_sum, peer_destroy};

/* Lets rank 0's device (where the sum runs) read and write every other rank's device, or says why
 * it cannot. */
static ss_status reach_ranks(int ranks, ss_backend *const *backends, ss_error *err) {
    const int dev0 = ((cuda_backend *)backends[0]->impl)->device;
    for (int r = 1; r < ranks; r++) {
        const int dev = ((cuda_backend *)backends[r]->impl)->device;
        int can = 0;
        if (dev == dev0) continue;
        if (cudaDeviceCanAccessPeer(&can, dev0, dev) != cudaSuccess || !can) {
            cudaGetLastError();
            return ss_fail(err, SS_EUNSUPPORTED,
                           "peer all-reduce: device %d cannot reach device %d's memory (no peer access); "
                           "ranks on these devices need NCCL (libnccl.so.2)",
                           dev0, dev);
        }
        cudaError_t e = cudaSetDevice(dev0);
        if (e == cudaSuccess) e = cudaDeviceEnablePeerAccess(dev, 0);
        if (e == cudaErrorPeerAccessAlreadyEnabled) e = cudaSuccess;
        cudaGetLastError();
        if (e != cudaSuccess)
            return ss_fail(err, SS_EDEVICE, "peer all-reduce: peer access from device %d to %d: %s", dev0, dev,
                           cudaGetErrorString(e));
    }
    return SS_OK;
}

extern "C" ss_status ss_tp_comm_peer_create(int ranks, ss_backend *const *backends, ss_tp_comm **out, ss_error *err) {
    *out = NULL;
    if (ranks < 1 || ranks > SS_MAX_TP)
        return ss_fail(err, SS_EARG, "tensor parallelism: %d ranks is outside 1..%d", ranks, SS_MAX_TP);
    for (int r = 0; r < ranks; r++)
        if (!backends[r] || strcmp(backends[r]->ops->name, "cuda") != 0)
            return ss_fail(err, SS_EARG, "peer all-reduce: rank %d is not on a CUDA backend", r);
    ss_status st = reach_ranks(ranks, backends, err);
    if (st != SS_OK) return st;
    ss_tp_comm *c = (ss_tp_comm *)calloc(1, sizeof *c);
    peer_impl *p = (peer_impl *)calloc(1, sizeof *p);
    if (!c || !p) {
        free(c);
        free(p);
        return ss_fail(err, SS_ENOMEM, "peer all-reduce: out of memory for the communicator");
    }
    *c = (ss_tp_comm){&peer_ops, ranks, {}, p};
    for (int r = 0; r < ranks; r++) p->rank[r] = (cuda_backend *)backends[r]->impl, p->device[r] = p->rank[r]->device;
    cudaError_t e = cudaSuccess;
    for (int r = 0; r < ranks && e == cudaSuccess; r++) {
        if ((e = cudaSetDevice(p->device[r])) == cudaSuccess)
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
