/* tp.c — the in-process communicator of CPU ranks, and what every communicator shares. */
#include <stdlib.h>

#include "tp.h"

static void host_all_reduce_sum(ss_tp_comm *c, ss_backend *const *ranks, float *const *bufs, float *const *into,
                                size_t count) {
    (void)ranks; /* CPU ops are done when they return: the buffers are ready */
    for (size_t i = 0; i < count; i++) {
        float sum = bufs[0][i];
        for (int r = 1; r < c->ranks; r++) sum += bufs[r][i];
        for (int r = 0; r < c->ranks; r++) {
            if (into) into[r][i] += sum;
            else bufs[r][i] = sum;
        }
    }
}

static void host_destroy(ss_tp_comm *c) { free(c); }

void ss_tp_add_sums(ss_tp_comm *c, ss_backend *const *ranks, float *const *bufs, float *const *into, size_t count) {
    for (int r = 0; into && r < c->ranks; r++) ranks[r]->ops->add(ranks[r], into[r], bufs[r], count);
}

static const ss_tp_comm_ops host_ops = {"host", host_all_reduce_sum, host_destroy};

ss_status ss_tp_comm_host_create(int ranks, ss_tp_comm **out, ss_error *err) {
    *out = NULL;
    if (ranks < 1 || ranks > SS_MAX_TP)
        return ss_fail(err, SS_EARG, "tensor parallelism: %d ranks is outside 1..%d", ranks, SS_MAX_TP);
    ss_tp_comm *c = calloc(1, sizeof *c);
    if (!c) return ss_fail(err, SS_ENOMEM, "tensor parallelism: out of memory for the communicator");
    *c = (ss_tp_comm){.ops = &host_ops, .ranks = ranks};
    *out = c;
    return SS_OK;
}

ss_status ss_tp_comm_check(ss_tp_comm *c, ss_error *err) {
    if (!c || c->failed.status == SS_OK) return SS_OK;
    ss_status st = ss_fail(err, c->failed.status, "%s", c->failed.msg);
    c->failed = (ss_error){0};
    return st;
}

void ss_tp_comm_free(ss_tp_comm *c) {
    if (c) c->ops->destroy(c);
}

#ifndef SPECSCOPE_HAVE_NCCL
ss_status ss_tp_comm_nccl_create(int ranks, ss_tp_comm **out, ss_error *err) {
    *out = NULL;
    return ss_fail(err, SS_EUNSUPPORTED, "tensor parallelism over %d CUDA devices: built without NCCL (nccl.h not found)",
                   ranks);
}
#endif
