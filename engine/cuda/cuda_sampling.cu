/* cuda_sampling.cu — the sample_rows op: temperature, top-k, top-p and min-p sampling on the device
 * (kernels/sampling.cu), so that sampled decoding copies back one id per row instead of the
 * logits. The uniforms come from the host's RNG, so a seed gives the host path's tokens. */
#include <string.h>

#include "cuda_internal.h"

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
    /* c->ids is argmax_rows' scratch too. Asking for one launch's ids (128 bytes) never grows it past
     * the 1 MiB its first reservation rounds up to, so argmax_rows' pinned copy of that size stays
     * valid; the ids come back here through a plain copy to out_host. */
    size_t bytes = SK_SAMPLE_MAX_ROWS * sizeof(int);
    if (!cb_ok(c) || !cb_reserve(c, &c->ids, bytes, "sample ids")) return;
    sk::sample_params p = {};
    p.temperature = s->temperature;
    p.top_k = s->top_k;
    p.top_p = s->top_p;
    p.min_p = s->min_p;
    for (int r = 0; r < rows; r += SK_SAMPLE_MAX_ROWS) {
        int count = rows - r < SK_SAMPLE_MAX_ROWS ? rows - r : SK_SAMPLE_MAX_ROWS;
        memcpy(p.uniform, uniform + r, (size_t)count * sizeof *uniform);
        const float *first = logits + (size_t)r * (size_t)vocab;
        if (!cb_check(c, sk::sample_rows(cb_launch(c), (int *)c->ids.p, first, count, vocab, p), "sample") ||
            !cb_check(c, cudaMemcpyAsync(out_host + r, c->ids.p, (size_t)count * sizeof(int), cudaMemcpyDeviceToHost,
                                         c->stream),
                      "sample ids") ||
            !cb_check(c, cudaStreamSynchronize(c->stream), "sample"))
            return;
    }
}
