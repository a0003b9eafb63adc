/* cuda_sampling.cu — the sample_rows op: temperature, top-k, top-p and min-p sampling on the device
 * (kernels/sampling.cu), so that sampled decoding copies back one id per row instead of the
 * logits. The uniforms come from the host's RNG, so a seed gives the host path's tokens. Also the
 * device buffer argmax_rows and sample_rows share. */
#include <string.h>

#include "cuda_internal.h"

/* c->ids holds the samplers' scratch (sk::sampling_scratch_bytes(), kept zero by the kernels) and
 * after it the ids of up to `rows` rows; c->h_ids is a pinned buffer of c->ids.bytes, freed whenever
 * c->ids is replaced, so it always fits the ids. */
int *cb_reserve_ids(cuda_backend *c, int rows) {
    size_t scratch = sk::sampling_scratch_bytes(), had = c->ids.bytes;
    if (!cb_reserve(c, &c->ids, scratch + (size_t)rows * sizeof(int), "sampling scratch")) return NULL;
    if (c->ids.bytes != had || !c->h_ids) {
        cudaFreeHost(c->h_ids);
        c->h_ids = NULL;
        if (!cb_check(c, cudaMallocHost((void **)&c->h_ids, c->ids.bytes), "pinned ids")) return NULL;
    }
    return (int *)((char *)c->ids.p + scratch);
}

void cuda_sample_rows(ss_backend *b, int *out_host, const float *logits, int rows, int vocab, const ss_sampling *s,
                      const double *uniform) {
    cuda_backend *c = cb_of(b);
    memset(out_host, 0, (size_t)(rows > 0 ? rows : 0) * sizeof *out_host);
    if (rows <= 0 || vocab <= 0) return;
    if (!s || !uniform) {
        cb_fail(c, SS_EARG, "cuda sample_rows: no sampling parameters or uniforms");
        return;
    }
    if (s->temperature <= 0.0f) { /* the one-hot distribution of the argmax */
        b->ops->argmax_rows(b, out_host, logits, rows, vocab);
        return;
    }
    if (vocab > SK_SAMPLE_MAX_VOCAB) {
        cb_fail(c, SS_EUNSUPPORTED, "cuda sample_rows: a vocabulary of %d tokens is more than %d", vocab,
                SK_SAMPLE_MAX_VOCAB);
        return;
    }
    cb_flush(c);
    if (c->capturing) { /* the ids are copied to the host: not an op a graph can hold */
        c->capture_spoiled = true;
        return;
    }
    int *ids = cb_ok(c) ? cb_reserve_ids(c, SK_SAMPLE_MAX_ROWS) : NULL;
    if (!ids) return;
    sk::sample_params p = {};
    p.temperature = s->temperature;
    p.top_k = s->top_k;
    p.top_p = s->top_p;
    p.min_p = s->min_p;
    for (int r = 0; r < rows; r += SK_SAMPLE_MAX_ROWS) {
        int count = rows - r < SK_SAMPLE_MAX_ROWS ? rows - r : SK_SAMPLE_MAX_ROWS;
        size_t bytes = (size_t)count * sizeof(int);
        memcpy(p.uniform, uniform + r, (size_t)count * sizeof *uniform);
        const float *first = logits + (size_t)r * (size_t)vocab;
        if (!cb_check(c, sk::sample_rows(cb_launch(c), ids, first, count, vocab, p, c->ids.p), "sample") ||
            !cb_check(c, cudaMemcpyAsync(c->h_ids, ids, bytes, cudaMemcpyDeviceToHost, cb_stream(c)), "sample ids") ||
            !cb_check(c, cudaStreamSynchronize(cb_stream(c)), "sample"))
            return;
        memcpy(out_host + r, c->h_ids, bytes);
    }
}
