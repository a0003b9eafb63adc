/* tp.h — the communicator of tensor parallelism: a model split over N ranks (engine/model.h) sums
 * each layer's partial attention and MLP outputs across the ranks with all_reduce_sum.
 *
 * Three implementations: in-process for CPU ranks (host buffers, summed in rank order 0..N-1, so
 * the result does not depend on timing); NCCL for CUDA ranks on devices 0..N-1 (engine/cuda/
 * nccl_comm.cu; libnccl.so.2 is opened at run time, so a build with NCCL still runs where it is
 * absent; a step's small sums take its one-shot kernel, kernels/allreduce.cu); and one kernel on
 * rank 0's device for CUDA ranks that share a device, or on several devices with
 * SPECSCOPE_TP_COMM=peer (engine/cuda/peer_comm.cu), reading the other ranks' buffers through peer
 * access and summing in rank order like the host's. Like the backend ops, all_reduce_sum
 * returns nothing: it is issued in order with the ranks' other ops (on their streams on CUDA, CUDA
 * graph capture included) and keeps its first failure, which ss_tp_comm_check reports. */
#ifndef SPECSCOPE_TP_H
#define SPECSCOPE_TP_H

#include "backend.h"

typedef struct ss_tp_comm ss_tp_comm;

typedef struct {
    const char *name; /* "host", "nccl" or "peer" */
    /* bufs[r]: count floats in the memory of backend ranks[r]; each becomes the sum over r. With
     * into (NULL or per rank, like bufs), into[r] += the sum instead and bufs[r] is left undefined:
     * a layer adds its summed update to the residual stream in the same step, so on CUDA the
     * add no longer waits in a kernel of its own (the next RMSNorm fuses into the next GEMV). */
    void (*all_reduce_sum)(ss_tp_comm *c, ss_backend *const *ranks, float *const *bufs, float *const *into,
                           size_t count);
    void (*destroy)(ss_tp_comm *c);
} ss_tp_comm_ops;

struct ss_tp_comm {
    const ss_tp_comm_ops *ops;
    int ranks;
    ss_error failed; /* the first failure of all_reduce_sum; status SS_OK when none */
    void *impl;
};

/* In-process sums over host buffers (CPU ranks). */
ss_status ss_tp_comm_host_create(int ranks, ss_tp_comm **out, ss_error *err);
/* NCCL over CUDA devices 0..ranks-1 (NCCL_NVLS_ENABLE=0 is set first: no NVLink multicast).
 * SS_EUNSUPPORTED when built without nccl.h or when libnccl.so.2 cannot be opened. */
ss_status ss_tp_comm_nccl_create(int ranks, ss_tp_comm **out, ss_error *err);
/* One summing kernel on rank 0's device over the CUDA ranks' buffers (any devices that can reach
 * each other, shared ones included). SS_EUNSUPPORTED in builds without CUDA. */
ss_status ss_tp_comm_peer_create(int ranks, ss_backend *const *backends, ss_tp_comm **out, ss_error *err);
/* For a communicator whose sum lands in bufs: into[r] += bufs[r] through rank r's add op (nothing
 * when into is NULL). */
void ss_tp_add_sums(ss_tp_comm *c, ss_backend *const *ranks, float *const *bufs, float *const *into, size_t count);
/* Reports (and clears) the first failure since the last check. */
ss_status ss_tp_comm_check(ss_tp_comm *c, ss_error *err);
void ss_tp_comm_free(ss_tp_comm *c); /* c may be NULL */

#endif
