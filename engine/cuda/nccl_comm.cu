/* nccl_comm.cu — the NCCL communicator of CUDA ranks (engine/tp.h): one communicator per device
 * 0..N-1 from ncclCommInitAll, and all_reduce_sum as one NCCL group of in-place float sums, each on
 * its rank's stream (the backend's stream op flushes the rank's pending fused op first).
 *
 * Sums of at most ONESHOT_CAP floats (every decode and verify step's; the draft is never split) take the one-shot
 * all-reduce instead (kernels/allreduce.cu: each rank pushes its partials into the others' inboxes
 * over NVLink peer access and adds what arrived), where every device reaches every other;
 * SPECSCOPE_TP_ONESHOT=0 keeps NCCL for all. Prefill chunks stay with NCCL.
 *
 * libnccl.so.2 is opened with dlopen rather than linked: it is 200+ MB, so it is not carried to the
 * GPU machine with the build, and a program linked against it would not even start where it is
 * missing. SPECSCOPE_NCCL_LIB names the file when it is not on the loader's path (for instance the
 * copy inside PyTorch's nvidia/nccl/lib). */
#include <dlfcn.h>
#include <nccl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cuda_runtime.h>

#include "cuda_internal.h"

extern "C" {
#include "tp.h"
}

/* Floats one one-shot all-reduce takes at most: 16 positions of a 8192-wide hidden state (a verify
 * step of the 70B geometry). Each rank's inbox holds 2 x ranks x this. */
#define ONESHOT_CAP ((size_t)16 * 8192)

/* The one-shot all-reduce's state on one rank's device. */
typedef struct {
    float *inbox;    /* [2][ranks][ONESHOT_CAP] */
    unsigned *flags; /* [ranks] flags, then the epoch */
} oneshot_rank;

typedef struct {
    void *lib;
    decltype(&ncclCommInitAll) init_all;
    decltype(&ncclCommDestroy) destroy;
    decltype(&ncclCommFinalize) finalize; /* NULL before NCCL 2.14 */
    decltype(&ncclAllReduce) all_reduce;
    decltype(&ncclGroupStart) group_start;
    decltype(&ncclGroupEnd) group_end;
    decltype(&ncclGetErrorString) error_string;
    ncclComm_t comms[SS_MAX_TP];
    bool oneshot; /* every rank's oneshot_rank is ready */
    oneshot_rank os[SS_MAX_TP];
} nccl_impl;

static nccl_impl *impl_of(ss_tp_comm *c) { return (nccl_impl *)c->impl; }

static void record(ss_tp_comm *c, ncclResult_t r, const char *what) {
    if (c->failed.status != SS_OK) return;
    ss_fail(&c->failed, SS_EDEVICE, "nccl: %s: %s", what, impl_of(c)->error_string(r));
}

/* Rank r's one-shot kernel on its stream (the stream op flushed its pending op). */
static void oneshot_all_reduce(ss_tp_comm *c, ss_backend *const *ranks, float *const *bufs, float *const *into,
                               size_t count) {
    nccl_impl *n = impl_of(c);
    for (int r = 0; r < c->ranks; r++) {
        ranks[r]->ops->stream(ranks[r]);
        cuda_backend *b = (cuda_backend *)ranks[r]->impl;
        sk::oneshot_params p = {};
        p.buf = bufs[r], p.into = into ? into[r] : nullptr;
        p.inbox = n->os[r].inbox, p.flags = n->os[r].flags, p.epoch = n->os[r].flags + c->ranks;
        for (int q = 0; q < c->ranks; q++) p.peer_inbox[q] = n->os[q].inbox, p.peer_flags[q] = n->os[q].flags;
        p.rank = r, p.ranks = c->ranks, p.cap = ONESHOT_CAP, p.count = count;
        cudaError_t e = cudaSetDevice(b->device);
        if (e == cudaSuccess) e = sk::allreduce_oneshot(cb_launch(b), p);
        if (e != cudaSuccess) {
            cudaGetLastError();
            ss_fail(&c->failed, SS_EDEVICE, "one-shot all-reduce of %zu floats on rank %d: %s", count, r,
                    cudaGetErrorString(e));
            return;
        }
    }
}

static void nccl_all_reduce_sum(ss_tp_comm *c, ss_backend *const *ranks, float *const *bufs, float *const *into,
                                size_t count) {
    nccl_impl *n = impl_of(c);
    if (c->failed.status != SS_OK) return;
    for (int r = 0; r < c->ranks; r++)
        if (!ranks[r]->ops->stream || strcmp(ranks[r]->ops->name, "cuda") != 0) {
            ss_fail(&c->failed, SS_EUNSUPPORTED, "nccl: rank %d's backend (%s) is not a CUDA stream", r,
                    ranks[r]->ops->name);
            return;
        }
    if (n->oneshot && count <= ONESHOT_CAP) {
        oneshot_all_reduce(c, ranks, bufs, into, count);
        return;
    }
    ncclResult_t res = n->group_start();
    for (int r = 0; res == ncclSuccess && r < c->ranks; r++) {
        cudaStream_t stream = (cudaStream_t)ranks[r]->ops->stream(ranks[r]);
        res = n->all_reduce(bufs[r], bufs[r], count, ncclFloat, ncclSum, n->comms[r], stream);
    }
    ncclResult_t end = n->group_end(); /* always closes the group, even after a failed call */
    if (res == ncclSuccess) res = end;
    if (res != ncclSuccess) record(c, res, "all-reduce");
    else ss_tp_add_sums(c, ranks, bufs, into, count);
}

/* Frees what set_up_oneshot allocated (on each rank's device). */
static void free_oneshot(nccl_impl *n, int ranks) {
    for (int r = 0; r < ranks; r++) {
        if (!n->os[r].inbox && !n->os[r].flags) continue;
        cudaSetDevice(r);
        cudaFree(n->os[r].inbox);
        cudaFree(n->os[r].flags);
        n->os[r] = (oneshot_rank){};
    }
    n->oneshot = false;
    cudaGetLastError();
}

/* Peer access between every pair of devices 0..ranks-1 and each rank's inbox and zeroed flags; where
 * a device cannot reach another or memory runs out, nothing is held and NCCL sums everything. */
static void set_up_oneshot(nccl_impl *n, int ranks) {
    const char *env = getenv("SPECSCOPE_TP_ONESHOT");
    if (env && strcmp(env, "0") == 0) return;
    cudaError_t e = cudaSuccess;
    for (int r = 0; r < ranks && e == cudaSuccess; r++) {
        if ((e = cudaSetDevice(r)) != cudaSuccess) break;
        for (int q = 0; q < ranks && e == cudaSuccess; q++) {
            int can = 0;
            if (q == r) continue;
            if (cudaDeviceCanAccessPeer(&can, r, q) != cudaSuccess || !can) e = cudaErrorPeerAccessUnsupported;
            else if ((e = cudaDeviceEnablePeerAccess(q, 0)) == cudaErrorPeerAccessAlreadyEnabled) e = cudaSuccess;
        }
        const size_t inbox = 2 * (size_t)ranks * ONESHOT_CAP * sizeof(float), flags = (ranks + 1) * sizeof(unsigned);
        if (e == cudaSuccess) e = cudaMalloc((void **)&n->os[r].inbox, inbox);
        if (e == cudaSuccess) e = cudaMalloc((void **)&n->os[r].flags, flags);
        if (e == cudaSuccess) e = cudaMemset(n->os[r].flags, 0, flags);
        if (e == cudaSuccess) e = cudaDeviceSynchronize(); /* zeroed before any rank's stream runs */
    }
    cudaGetLastError();
    n->oneshot = e == cudaSuccess;
    if (!n->oneshot) free_oneshot(n, ranks);
}

static void nccl_destroy(ss_tp_comm *c) {
    nccl_impl *n = impl_of(c);
    if (n) {
        free_oneshot(n, c->ranks);
        /* One thread holds every rank's communicator: their finalisation is one collective, so it
         * goes in one group (called one by one, the first would wait for the others). */
        if (n->finalize) {
            n->group_start();
            for (int r = 0; r < c->ranks; r++)
                if (n->comms[r]) n->finalize(n->comms[r]);
            n->group_end();
        }
        for (int r = 0; r < c->ranks; r++)
            if (n->comms[r]) n->destroy(n->comms[r]);
        if (n->lib) dlclose(n->lib);
        free(n);
    }
    free(c);
}

static const ss_tp_comm_ops nccl_ops = {"nccl", nccl_all_reduce_sum, nccl_destroy};

/* Opens the library and finds its entry points. */
static ss_status open_library(nccl_impl *n, ss_error *err) {
    const char *path = getenv("SPECSCOPE_NCCL_LIB");
    if (!path || !*path) path = "libnccl.so.2";
    n->lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!n->lib)
        return ss_fail(err, SS_EUNSUPPORTED, "nccl: cannot open %s (%s); set SPECSCOPE_NCCL_LIB to its path", path,
                       dlerror());
    struct {
        void **slot;
        const char *name;
    } syms[] = {{(void **)&n->init_all, "ncclCommInitAll"},     {(void **)&n->destroy, "ncclCommDestroy"},
                {(void **)&n->all_reduce, "ncclAllReduce"},     {(void **)&n->group_start, "ncclGroupStart"},
                {(void **)&n->group_end, "ncclGroupEnd"},       {(void **)&n->error_string, "ncclGetErrorString"}};
    for (size_t i = 0; i < sizeof syms / sizeof *syms; i++)
        if (!(*syms[i].slot = dlsym(n->lib, syms[i].name)))
            return ss_fail(err, SS_EUNSUPPORTED, "nccl: %s has no %s", path, syms[i].name);
    n->finalize = (decltype(&ncclCommFinalize))dlsym(n->lib, "ncclCommFinalize");
    return SS_OK;
}

extern "C" ss_status ss_tp_comm_nccl_create(int ranks, ss_tp_comm **out, ss_error *err) {
    *out = NULL;
    if (ranks < 1 || ranks > SS_MAX_TP)
        return ss_fail(err, SS_EARG, "tensor parallelism: %d ranks is outside 1..%d", ranks, SS_MAX_TP);
    int devices = 0;
    cudaError_t e = cudaGetDeviceCount(&devices);
    if (e != cudaSuccess) {
        cudaGetLastError();
        return ss_fail(err, SS_EUNSUPPORTED, "nccl: no CUDA device (%s)", cudaGetErrorName(e));
    }
    if (devices < ranks)
        return ss_fail(err, SS_EARG, "tensor parallelism over %d CUDA devices, but %d %s present", ranks, devices,
                       devices == 1 ? "is" : "are");
    ss_tp_comm *c = (ss_tp_comm *)calloc(1, sizeof *c);
    nccl_impl *n = (nccl_impl *)calloc(1, sizeof *n);
    if (!c || !n) {
        free(c);
        free(n);
        return ss_fail(err, SS_ENOMEM, "nccl: out of memory for the communicator");
    }
    *c = (ss_tp_comm){&nccl_ops, ranks, {}, n};
    /* NVLink multicast (NVLS) stays off (issue #9): it reserves memory and is not what we measure. */
    setenv("NCCL_NVLS_ENABLE", "0", 1);
    ss_status st = open_library(n, err);
    if (st == SS_OK) {
        int devlist[SS_MAX_TP];
        for (int r = 0; r < ranks; r++) devlist[r] = r;
        ncclResult_t res = n->init_all(n->comms, ranks, devlist);
        if (res != ncclSuccess) {
            memset(n->comms, 0, sizeof n->comms);
            st = ss_fail(err, SS_EDEVICE, "nccl: communicators over %d devices: %s", ranks, n->error_string(res));
        } else if (ranks > 1) {
            set_up_oneshot(n, ranks);
        }
    }
    if (st != SS_OK) {
        nccl_destroy(c);
        return st;
    }
    *out = c;
    return SS_OK;
}
