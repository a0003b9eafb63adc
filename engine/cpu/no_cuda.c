/* no_cuda.c — the CUDA entry points of backend.h for builds without CUDA: they say so, and the
 * model falls back to the CPU backend. */
#ifndef SPECSCOPE_HAVE_CUDA
#include <stdio.h>

#include "backend.h"
#include "tp.h"

ss_status ss_backend_cuda_create(ss_backend **out, ss_error *err) {
    *out = NULL;
    return ss_fail(err, SS_EUNSUPPORTED, "cuda backend: built without CUDA");
}

ss_status ss_backend_cuda_create_on(int device, ss_backend **out, ss_error *err) {
    (void)device;
    return ss_backend_cuda_create(out, err);
}

bool ss_backend_cuda_available(char *why, size_t why_len) {
    if (why && why_len) snprintf(why, why_len, "built without CUDA");
    return false;
}

int ss_backend_cuda_devices(void) { return 0; }

ss_status ss_tp_comm_peer_create(int ranks, ss_backend *const *backends, ss_tp_comm **out, ss_error *err) {
    (void)backends;
    *out = NULL;
    return ss_fail(err, SS_EUNSUPPORTED, "tensor parallelism over %d CUDA ranks: built without CUDA", ranks);
}
#endif
