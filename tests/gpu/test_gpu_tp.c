/* test_gpu_tp.c — the NCCL communicator (engine/cuda/nccl_comm.cu) at one rank on one GPU: a CUDA
 * model whose forward sums its attention and MLP updates through ncclAllReduce (on the backend's
 * stream, after the stream op has flushed the pending fused op; inside CUDA graph capture for decode
 * steps) gives the logits and the greedy continuation of the plain CUDA path. Also prints decode
 * ms/token with and without the communicator: the cost of 2 all-reduces per layer.
 * Then the demo target (and SPECSCOPE_TP_TEST_MODEL when set) split over 2 ranks against one rank:
 * prefill logits and each of 8 greedy decode steps' logits, with the prefill through the GEMV
 * (fp32) and through cuBLASLt (bf16 activations), every error printed, and the K/V caches per layer,
 * so a failure says where a split first goes wrong. Both ranks on device 0 (SPECSCOPE_TP_DEVICES=1, the peer communicator)
 * runs on any machine; with two devices also one rank per device through NCCL and through the
 * peer all-reduce over peer access. What cannot run here (two devices, NCCL without libnccl.so.2: SPECSCOPE_NCCL_LIB names
 * it) prints "NOT RUN: ..." and the rest still counts. "SKIPPED" (exit 77) without a CUDA device. */
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

/* Logits of a PROMPT-token prefill fed `chunk` positions per forward, into prefill[PROMPT * vocab],
 * then of DECODE_STEPS greedy decode steps (each feeding the last step's argmax) into
 * decode[DECODE_STEPS * vocab]. Chunks of more than 9 positions go through cuBLASLt with bf16
 * activations; up to 9, through the GEMV with fp32 activations, like decoding. */
#define DECODE_STEPS 8
#define GEMV_CHUNK 8
static ss_status trajectory(ss_model *m, int chunk, float *prefill, float *decode, ss_error *err) {
    int vocab = ss_model_config(m)->vocab_size, ids[PROMPT + DECODE_STEPS], pos[PROMPT + DECODE_STEPS];
    for (int i = 0; i < PROMPT; i++) ids[i] = (i * 37 + 5) % vocab, pos[i] = i;
    ss_status st = SS_OK;
    for (int at = 0; st == SS_OK && at < PROMPT; at += chunk) {
        int n = PROMPT - at < chunk ? PROMPT - at : chunk;
        st = ss_model_forward(m, ids + at, pos + at, n, prefill + (size_t)at * vocab, false, err);
    }
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

/* Where a split's K/V caches first differ from one rank's: per layer, the prefill's positions and
 * the decode steps' (gathered from the ranks by ss_model_read_kv). */
static void print_kv_errors(ss_model *m[2]) {
    const ss_config *c = ss_model_config(m[0]);
    const int len = PROMPT + DECODE_STEPS, kv_dim = c->n_kv_heads * c->head_dim;
    const size_t pre = (size_t)PROMPT * kv_dim, all = (size_t)len * kv_dim;
    float *kv[2][2];
    ss_error err = {0};
    bool ok = true;
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 2; j++) ok &= (kv[i][j] = malloc(all * sizeof(float))) != NULL;
    printf("  K/V rel. error per layer, prefill / decode positions:");
    for (int l = 0; ok && l < c->n_layers; l++) {
        for (int i = 0; i < 2 && ok; i++) {
            ok = ss_model_read_kv(m[i], l, len, kv[i][0], kv[i][1], &err) == SS_OK;
            CHECK_MSG(ok, "tp %d: %s", i + 1, err.msg);
        }
        if (!ok) break;
        printf(" L%d K %.2g/%.2g V %.2g/%.2g", l, gpu_rel_err(kv[1][0], kv[0][0], pre),
               gpu_rel_err(kv[1][0] + pre, kv[0][0] + pre, all - pre), gpu_rel_err(kv[1][1], kv[0][1], pre),
               gpu_rel_err(kv[1][1] + pre, kv[0][1] + pre, all - pre));
    }
    printf("\n");
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 2; j++) free(kv[i][j]);
}

/* tp 2 against tp 1 along one trajectory. Through the GEMV (fp32 activations) the split changes only
 * the order of fp32 sums, whose last-bit differences now and then round a K/V entry to the next bf16
 * value: within 1e-3 (a wrong head or a missing sum is off by ~1), and the same greedy tokens.
 * Through cuBLASLt the prefill rounds activations to bf16, which turns those differences into bf16
 * steps here and there; the bound there is `bound`, how far tp 1 on CUDA is from the CPU backend's
 * fp32 prefill, and a greedy token may then differ where tp 1's top two logits are that close: the
 * logits are compared up to and including the first step whose tokens differ (each model feeds its
 * own choice, so after it they are different continuations). */
static void compare_trajectories(ss_model *m[2], const char *what, int chunk, double bound) {
    int vocab = ss_model_config(m[0])->vocab_size;
    const bool gemv = chunk <= GEMV_CHUNK;
    const double tol = gemv ? 1e-3 : bound;
    float *pre[2], *dec[2];
    ss_error err = {0};
    bool ok = true;
    for (int i = 0; i < 2; i++) {
        pre[i] = malloc((size_t)PROMPT * vocab * sizeof(float));
        dec[i] = malloc((size_t)DECODE_STEPS * vocab * sizeof(float));
        ok = ok && pre[i] && dec[i] && trajectory(m[i], chunk, pre[i], dec[i], &err) == SS_OK;
        CHECK_MSG(ok, "%s at tp %d: %s", what, i + 1, err.msg);
    }
    if (ok) {
        double e = gpu_rel_err(pre[1], pre[0], (size_t)PROMPT * vocab);
        printf("%s, prefill in chunks of %d (bound %.3g): prefill logits rel. error %.3g; decode steps:", what, chunk,
               tol, e);
        CHECK_MSG(e <= tol, "%s, chunks of %d: prefill logits differ from tp 1 (%g > %g)", what, chunk, e, tol);
        int same = 0;
        for (int s = 0; s < DECODE_STEPS; s++) {
            const float *got = dec[1] + (size_t)s * vocab, *want = dec[0] + (size_t)s * vocab;
            double d = gpu_rel_err(got, want, (size_t)vocab);
            printf(" %.3g", d);
            CHECK_MSG(d <= tol, "%s, chunks of %d: decode step %d logits differ from tp 1 (%g > %g)", what, chunk, s, d,
                      tol);
            const int a = ss_argmax(want, vocab), b = ss_argmax(got, vocab);
            if (a != b) {
                printf(" (tokens differ here: tp 1's logits %d and %d are %.3g apart)", a, b, want[a] - want[b]);
                break;
            }
            same++;
        }
        printf("; greedy tokens equal %d/%d\n", same, DECODE_STEPS);
        CHECK_MSG(same == DECODE_STEPS || !gemv, "%s: greedy tokens differ from tp 1 through the GEMV", what);
        print_kv_errors(m);
    }
    for (int i = 0; i < 2; i++) free(pre[i]), free(dec[i]);
}

/* The model split over 2 ranks (env: how the ranks find devices and sum, set for the load only)
 * against one rank, through both prefill paths. */
static void check_split(const char *dir, const char *how, const char *env_name, const char *env_value, double bound) {
    setenv(env_name, env_value, 1);
    ss_model *m[2] = {NULL, NULL};
    ss_error err = {0};
    for (int i = 0; i < 2; i++) {
        ss_model_opts o = {.dir = dir, .backend = SS_BACKEND_CUDA, .max_context = 256, .quiet = true, .tp = i + 1};
        CHECK_MSG(ss_model_load(&o, &m[i], &err) == SS_OK, "%s at tp %d (%s): %s", dir, i + 1, how, err.msg);
    }
    unsetenv(env_name);
    if (m[0] && m[1]) {
        char what[1200];
        snprintf(what, sizeof what, "%s: tp 2 (%s, %s) vs tp 1", dir, how, m[1]->comm->ops->name);
        compare_trajectories(m, what, GEMV_CHUNK, bound);
        compare_trajectories(m, what, PROMPT, bound);
    }
    for (int i = 0; i < 2; i++) ss_model_free(m[i]);
}

/* One graph over both ranks (graph_join) replays exactly what the ranks compute op by op: tp 2 with
 * graphs against tp 2 with SPECSCOPE_CUDA_GRAPHS=0, both ranks on device 0, prefill in chunks of 8
 * and decode steps (all of them graph-sized; the third and later replay). */
static void check_graphs(const char *dir) {
    ss_model *m[2] = {NULL, NULL};
    ss_error err = {0};
    setenv("SPECSCOPE_TP_DEVICES", "1", 1);
    for (int i = 0; i < 2; i++) {
        if (i) setenv("SPECSCOPE_CUDA_GRAPHS", "0", 1);
        ss_model_opts o = {.dir = dir, .backend = SS_BACKEND_CUDA, .max_context = 256, .quiet = true, .tp = 2};
        CHECK_MSG(ss_model_load(&o, &m[i], &err) == SS_OK, "%s at tp 2: %s", dir, err.msg);
    }
    unsetenv("SPECSCOPE_TP_DEVICES");
    unsetenv("SPECSCOPE_CUDA_GRAPHS");
    if (m[0] && m[1]) {
        int vocab = ss_model_config(m[0])->vocab_size;
        float *pre[2], *dec[2];
        bool ok = true;
        for (int i = 0; i < 2; i++) {
            pre[i] = malloc((size_t)PROMPT * vocab * sizeof(float));
            dec[i] = malloc((size_t)DECODE_STEPS * vocab * sizeof(float));
            ok = ok && pre[i] && dec[i] && trajectory(m[i], GEMV_CHUNK, pre[i], dec[i], &err) == SS_OK;
            CHECK_MSG(ok, "%s at tp 2%s: %s", dir, i ? " without graphs" : "", err.msg);
        }
        if (ok) {
            double e = gpu_rel_err(pre[0], pre[1], (size_t)PROMPT * vocab),
                   d = gpu_rel_err(dec[0], dec[1], (size_t)DECODE_STEPS * vocab);
            printf("%s: tp 2 through graphs vs op by op: prefill logits rel. error %.3g, decode %.3g\n", dir, e, d);
            CHECK_MSG(e == 0 && d == 0, "%s: tp 2 graphs differ from op by op (%g, %g)", dir, e, d);
        }
        for (int i = 0; i < 2; i++) free(pre[i]), free(dec[i]);
    }
    for (int i = 0; i < 2; i++) ss_model_free(m[i]);
}

/* How far CUDA's prefill logits (one cuBLASLt forward, bf16 activations) are from the CPU backend's. */
static double bf16_floor(const char *dir) {
    ss_model *m[2] = {NULL, NULL};
    float *pre[2] = {NULL, NULL};
    ss_error err = {0};
    double e = 0;
    for (int i = 0; i < 2; i++) {
        ss_model_opts o = {.dir = dir, .backend = i ? SS_BACKEND_CPU : SS_BACKEND_CUDA, .max_context = 256, .quiet = true};
        CHECK_MSG(ss_model_load(&o, &m[i], &err) == SS_OK, "%s: %s", dir, err.msg);
        if (!m[i]) break;
        int ids[PROMPT], pos[PROMPT], vocab = ss_model_config(m[i])->vocab_size;
        for (int j = 0; j < PROMPT; j++) ids[j] = (j * 37 + 5) % vocab, pos[j] = j;
        pre[i] = malloc((size_t)PROMPT * vocab * sizeof(float));
        CHECK_MSG(pre[i] && ss_model_forward(m[i], ids, pos, PROMPT, pre[i], false, &err) == SS_OK, "%s: %s", dir, err.msg);
        if (i) e = gpu_rel_err(pre[0], pre[1], (size_t)PROMPT * vocab);
    }
    printf("%s: CUDA prefill logits vs the CPU backend's: rel. error %.3g\n", dir, e);
    for (int i = 0; i < 2; i++) free(pre[i]), ss_model_free(m[i]);
    return e;
}

/* Both ranks on device 0 (the peer all-reduce), then, with two devices, one rank each through NCCL
 * and through the peer all-reduce over peer access (the same sums in the same order as on one
 * device). */
static void check_two_ranks(const char *dir, bool nccl) {
    const double bound = bf16_floor(dir);
    check_split(dir, "both ranks on device 0", "SPECSCOPE_TP_DEVICES", "1", bound);
    /* Asked for the persistent kernel, ranks sharing a device launch kernel by kernel (each such
     * kernel needs every SM: cuda_graph_join): the split must still finish, and match. */
    setenv("SPECSCOPE_CUDA_PERSISTENT", "1", 1);
    check_split(dir, "both ranks on device 0, persistent kernel asked for", "SPECSCOPE_TP_DEVICES", "1", bound);
    unsetenv("SPECSCOPE_CUDA_PERSISTENT");
    check_graphs(dir);
    const int devices = ss_backend_cuda_devices();
    if (devices < 2) {
        printf("NOT RUN: tp 2 on two GPUs (%d device(s) here)\n", devices);
        return;
    }
    if (nccl) check_split(dir, "devices 0 and 1", "SPECSCOPE_TP_COMM", "nccl", bound);
    check_split(dir, "devices 0 and 1", "SPECSCOPE_TP_COMM", "peer", bound);
}

int main(void) {
    int skip = gpu_require_device();
    if (skip) return skip;
    ss_tp_comm *probe;
    ss_error err;
    const bool nccl = ss_tp_comm_nccl_create(1, &probe, &err) == SS_OK;
    if (nccl) ss_tp_comm_free(probe);
    else printf("NOT RUN: NCCL not usable (%s)\n", err.msg);
    char llama[1024], demo[1024];
    snprintf(llama, sizeof llama, "%s/llama-bf16", FIXTURES_DIR);
    snprintf(demo, sizeof demo, "%s/models/demo/target", SOURCE_DIR);
    if (nccl) check_model(llama), check_model(demo);
    check_two_ranks(demo, nccl); /* 6 heads, 2 kv heads, 1024 MLP rows: split in 2 */
    const char *more = getenv("SPECSCOPE_TP_TEST_MODEL"); /* gpu-check.sh: the llama-3.1-8b geometry */
    if (more && *more) check_two_ranks(more, nccl);
    return check_done();
}
