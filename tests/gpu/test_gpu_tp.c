/* test_gpu_tp.c — the NCCL communicator (engine/cuda/nccl_comm.cu) at one rank on one GPU: a CUDA
 * model whose forward sums its attention and MLP updates through ncclAllReduce (on the backend's
 * stream, after the stream op has flushed the pending fused op; inside CUDA graph capture for decode
 * steps) gives the logits and the greedy continuation of the plain CUDA path. Also prints decode
 * ms/token with and without the communicator: the cost of 2 all-reduces per layer.
 * With two or more devices, the demo target split over 2 ranks (devices 0 and 1): prefill logits,
 * each of 8 decode steps' logits and the greedy tokens against one rank; each error is printed, so
 * a failure says whether the prefill or which decode step went wrong first. With one device that
 * part prints "NOT RUN" (the rest still counts).
 * Prints "SKIPPED: ..." and exits 77 without a CUDA device or without a loadable libnccl.so.2
 * (SPECSCOPE_NCCL_LIB names it). */
#include <string.h>
#include <time.h>

#include "check.h"
#include "gpu_test.h"
#include "spec.h"

#define PROMPT 40
#define STEPS 32

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Logits of a PROMPT-token prefill (direct run) and of 4 decode steps at the same position (the
 * first runs directly, the second captures a graph, the later ones replay it). */
static ss_status logits_of(ss_model *m, float *prefill, float *decode, ss_error *err) {
    int vocab = ss_model_config(m)->vocab_size, ids[PROMPT + 1], pos[PROMPT + 1];
    for (int i = 0; i <= PROMPT; i++) ids[i] = (i * 37 + 5) % vocab, pos[i] = i;
    ss_status st = ss_model_forward(m, ids, pos, PROMPT, prefill, false, err);
    for (int r = 0; st == SS_OK && r < 4; r++) st = ss_model_forward(m, ids + PROMPT, pos + PROMPT, 1, decode, true, err);
    return st;
}

static ss_status greedy(ss_model *m, ss_result *r, double *ms_per_token, ss_error *err) {
    int prompt[8] = {3, 17, 22, 9, 40, 41, 7, 1};
    ss_params p;
    ss_params_default(&p);
    p.max_tokens = STEPS;
    p.stop_at_eos = false;
    ss_generator g = {.target = m, .vocab = ss_model_config(m)->vocab_size};
    ss_kv_state kv = {0};
    double t0 = now_ms();
    ss_status st = ss_generate(&g, &kv, prompt, 8, &p, NULL, r, err);
    *ms_per_token = (now_ms() - t0) / STEPS;
    ss_kv_state_free(&kv);
    return st;
}

static void check_model(const char *dir) {
    ss_model_opts o = {.dir = dir, .backend = SS_BACKEND_CUDA, .max_context = 256, .quiet = true};
    ss_model *m;
    ss_error err = {0};
    if (ss_model_load(&o, &m, &err)) {
        CHECK_MSG(0, "%s: %s", dir, err.msg);
        return;
    }
    int vocab = ss_model_config(m)->vocab_size;
    float *pre = malloc((size_t)PROMPT * vocab * sizeof *pre), *dec = malloc((size_t)vocab * sizeof *dec);
    float *pre_nccl = malloc((size_t)PROMPT * vocab * sizeof *pre), *dec_nccl = malloc((size_t)vocab * sizeof *dec);
    ss_result plain = {0}, through = {0};
    double ms_plain = 0, ms_nccl = 0;
    CHECK_MSG(logits_of(m, pre, dec, &err) == SS_OK && greedy(m, &plain, &ms_plain, &err) == SS_OK, "%s: %s", dir,
              err.msg);
    CHECK_MSG(ss_tp_comm_nccl_create(1, &m->comm, &err) == SS_OK, "%s", err.msg);
    if (m->comm) {
        bool ok = logits_of(m, pre_nccl, dec_nccl, &err) == SS_OK && greedy(m, &through, &ms_nccl, &err) == SS_OK;
        CHECK_MSG(ok, "%s through NCCL: %s", dir, err.msg);
        if (ok) {
            double e_pre = gpu_rel_err(pre_nccl, pre, (size_t)PROMPT * vocab), e_dec = gpu_rel_err(dec_nccl, dec, (size_t)vocab);
            printf("%s: through NCCL (1 rank) vs plain CUDA: prefill logits rel. error %.3g, decode %.3g; greedy decode "
                   "%.3f ms/token plain, %.3f through NCCL\n", dir, e_pre, e_dec, ms_plain, ms_nccl);
            CHECK_MSG(e_pre <= 1e-5 && e_dec <= 1e-5, "%s: logits differ through NCCL (%g, %g)", dir, e_pre, e_dec);
            CHECK_MSG(through.tokens.n == plain.tokens.n &&
                          !memcmp(through.tokens.ids, plain.tokens.ids, (size_t)plain.tokens.n * sizeof(int)),
                      "%s: greedy tokens differ through NCCL", dir);
        }
    }
    ss_result_free(&plain);
    ss_result_free(&through);
    free(pre), free(dec), free(pre_nccl), free(dec_nccl);
    ss_model_free(m);
}

/* Logits of a PROMPT-token prefill, then of DECODE_STEPS greedy decode steps (each feeding the
 * last step's argmax), into prefill[PROMPT * vocab] and decode[DECODE_STEPS * vocab]. */
#define DECODE_STEPS 8
static ss_status trajectory(ss_model *m, float *prefill, float *decode, ss_error *err) {
    int vocab = ss_model_config(m)->vocab_size, ids[PROMPT + DECODE_STEPS], pos[PROMPT + DECODE_STEPS];
    for (int i = 0; i < PROMPT; i++) ids[i] = (i * 37 + 5) % vocab, pos[i] = i;
    ss_status st = ss_model_forward(m, ids, pos, PROMPT, prefill, false, err);
    const float *last = prefill + (size_t)(PROMPT - 1) * vocab;
    for (int s = 0; st == SS_OK && s < DECODE_STEPS; s++) {
        int at = PROMPT + s;
        ids[at] = ss_argmax(last, vocab), pos[at] = at;
        float *out = decode + (size_t)s * vocab;
        st = ss_model_forward(m, ids + at, pos + at, 1, out, true, err);
        last = out;
    }
    return st;
}

static void check_two_ranks(const char *dir) {
    const int devices = ss_backend_cuda_devices();
    if (devices < 2) {
        printf("NOT RUN: tp 2 on two GPUs (%d device(s) here)\n", devices);
        return;
    }
    ss_model *m[2] = {NULL, NULL};
    ss_error err = {0};
    for (int i = 0; i < 2; i++) {
        ss_model_opts o = {.dir = dir, .backend = SS_BACKEND_CUDA, .max_context = 256, .quiet = true, .tp = i + 1};
        CHECK_MSG(ss_model_load(&o, &m[i], &err) == SS_OK, "%s at tp %d: %s", dir, i + 1, err.msg);
    }
    if (m[0] && m[1]) {
        int vocab = ss_model_config(m[0])->vocab_size;
        float *pre[2], *dec[2];
        for (int i = 0; i < 2; i++) {
            pre[i] = malloc((size_t)PROMPT * vocab * sizeof(float));
            dec[i] = malloc((size_t)DECODE_STEPS * vocab * sizeof(float));
            CHECK_MSG(trajectory(m[i], pre[i], dec[i], &err) == SS_OK, "%s at tp %d: %s", dir, i + 1, err.msg);
        }
        double e = gpu_rel_err(pre[1], pre[0], (size_t)PROMPT * vocab);
        printf("%s: tp 2 vs tp 1: prefill logits rel. error %.3g; decode steps:", dir, e);
        CHECK_MSG(e <= 1e-3, "%s: tp 2 prefill logits differ from tp 1 (%g)", dir, e);
        for (int s = 0; s < DECODE_STEPS; s++) {
            double d = gpu_rel_err(dec[1] + (size_t)s * vocab, dec[0] + (size_t)s * vocab, (size_t)vocab);
            printf(" %.3g", d);
            CHECK_MSG(d <= 1e-3, "%s: tp 2 decode step %d logits differ from tp 1 (%g)", dir, s, d);
        }
        printf("\n");
        for (int i = 0; i < 2; i++) free(pre[i]), free(dec[i]);
    }
    for (int i = 0; i < 2; i++) ss_model_free(m[i]);
}

int main(void) {
    int skip = gpu_require_device();
    if (skip) return skip;
    ss_tp_comm *probe;
    ss_error err;
    if (ss_tp_comm_nccl_create(1, &probe, &err)) {
        printf("SKIPPED: NCCL not usable (%s)\n", err.msg);
        return GPU_SKIP;
    }
    ss_tp_comm_free(probe);
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/llama-bf16", FIXTURES_DIR);
    check_model(dir);
    snprintf(dir, sizeof dir, "%s/models/demo/target", SOURCE_DIR);
    check_model(dir);
    check_two_ranks(dir); /* 6 heads, 2 kv heads, 1024 MLP rows: split in 2 */
    return check_done();
}
