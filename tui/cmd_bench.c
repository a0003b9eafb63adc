/* cmd_bench.c — `specscope bench`: prefill and decode speed of the forward pass, and plain against
 * speculative generation on the same prompts in one run. Every rate is the median of repeats after a
 * warm-up. On CUDA the run also measures its own ceilings (device-to-device copy bandwidth, cuBLAS
 * bf16 GEMM rate) and reports each speed as a ratio to them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "args.h"
#include "commands.h"
#include "cuda_bench.h"
#include "gen_options.h"
#include "lora_args.h"
#include "report.h"
#include "trace.h"

typedef struct {
    gen_options o;
    int prompt_len;   /* prefill benchmark length */
    int decode_ctx[2]; /* contexts for the decode benchmark (the second only on CUDA) */
    int repeats;
    bool json;
    int scaling_tp[SS_MAX_TP]; /* --tp-scaling: tensor-parallel rank counts to compare */
    int n_scaling;
    const char *trace_path; /* --trace: Chrome trace of the traced decode steps */
    bool kernels;           /* --kernels: per-kernel summary per decoded token */
} bench_opts;

static const char *const prompts[] = {
    "The history of the town begins with a small church on the hill, where",
    "Once upon a time there was a little girl who lived in a village near the forest. One day",
    "In this chapter we describe how the system is configured, and how the",
    "It is a truth universally acknowledged, that a single man in possession of a good fortune,",
};
#define N_PROMPTS (int)(sizeof prompts / sizeof *prompts)

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* Prompt ids for the forward benchmarks: a seeded walk over the vocabulary (never all one id). */
static int *bench_ids(int n, int vocab) {
    int *ids = malloc((size_t)n * sizeof *ids);
    uint64_t x = 0x9E3779B97F4A7C15ull;
    for (int i = 0; ids && i < n; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        ids[i] = (int)(x % (uint64_t)vocab);
    }
    return ids;
}

/* Median ms of one forward over n tokens starting at position start, as greedy decoding runs it: the
 * last row's argmax comes back, not its logits (on CUDA the argmax runs on the device). */
static ss_status time_forward(ss_model *m, const int *ids, int start, int n, int repeats, double *ms, ss_error *err) {
    int *pos = malloc((size_t)n * sizeof *pos), next;
    double *t = malloc((size_t)(repeats + 1) * sizeof *t);
    ss_status st = pos && t ? SS_OK : ss_fail(err, SS_ENOMEM, "out of memory for the benchmark");
    for (int i = 0; !st && i < n; i++) pos[i] = start + i;
    for (int r = 0; !st && r <= repeats; r++) { /* r == 0 is the warm-up */
        double t0 = now_ms();
        st = ss_model_forward_ids(m, ids + start, pos, n, &next, true, err);
        t[r] = now_ms() - t0;
    }
    if (!st) *ms = median(t + 1, repeats);
    free(pos);
    free(t);
    return st;
}

/* The run's own ceilings, measured on CUDA only (zero elsewhere). Decode's is the copy bandwidth of
 * every device the ranks read their weights on: one device's, times devices. */
typedef struct {
    double copy_bytes_per_s;
    double gemm_flops_per_s;
    int devices;
} ceilings;

static double decode_ceiling(const ceilings *c) { return c->copy_bytes_per_s * c->devices; }

typedef struct {
    double prefill_tok_s;
    double prefill_flops_ratio; /* achieved prefill FLOP/s over the GEMM ceiling */
    int decode_ctx[2];
    double decode_tok_s[2];
    double decode_bytes[2]; /* bytes one decode step must read: weights + KV at that context */
    double prefill_flops;   /* achieved FLOP/s */
} forward_numbers;

static ss_status bench_forward(ss_model *m, const bench_opts *b, forward_numbers *f, ss_error *err) {
    int ctx = ss_model_max_context(m);
    int need = b->prompt_len > b->decode_ctx[1] ? b->prompt_len : b->decode_ctx[1];
    if (b->decode_ctx[0] > need) need = b->decode_ctx[0];
    if (need + 16 > ctx) need = ctx - 16;
    int *ids = bench_ids(need + 16, ss_model_config(m)->vocab_size);
    if (!ids) return ss_fail(err, SS_ENOMEM, "out of memory for the benchmark prompt");
    double ms;
    int plen = b->prompt_len < ctx - 1 ? b->prompt_len : ctx - 1;
    ss_status st = time_forward(m, ids, 0, plen, b->repeats, &ms, err);
    if (!st) {
        f->prefill_tok_s = plen / (ms / 1e3);
        f->prefill_flops = ss_model_prefill_flops(m, plen) / (ms / 1e3);
    }
    for (int c = 0; !st && c < 2; c++) {
        int at = b->decode_ctx[c];
        f->decode_ctx[c] = 0;
        if (at <= 0 || at + 1 >= ctx) continue;
        st = time_forward(m, ids, 0, at, 1, &ms, err); /* fill the cache up to the context (timing unused) */
        if (!st) st = time_forward(m, ids, at, 1, b->repeats * 8, &ms, err);
        if (st) break;
        f->decode_ctx[c] = at;
        f->decode_tok_s[c] = 1e3 / ms;
        f->decode_bytes[c] = (double)ss_model_weight_bytes(m) + (double)ss_model_kv_bytes(m, at);
    }
    free(ids);
    return st;
}

typedef struct {
    const char *label;
    ss_stats total; /* summed over prompts */
    double tok_s;   /* generated / decode seconds, over all prompts */
} gen_numbers;

/* The row's warm-up: one untimed generation of the first prompt, up to WARMUP_TOKENS tokens, so that
 * first-use costs (module loads, the CUDA graphs of the draft, verify and calibrate shapes, pages of
 * the weights) are not in the timed prompts. */
#define WARMUP_TOKENS 16

static ss_status bench_generate(ss_session *s, const ss_params *p, gen_numbers *g, ss_error *err) {
    memset(&g->total, 0, sizeof g->total);
    ss_params warm = *p;
    if (warm.max_tokens > WARMUP_TOKENS) warm.max_tokens = WARMUP_TOKENS;
    ss_session_reset(s);
    ss_result wr;
    if (ss_session_generate(s, prompts[0], &warm, NULL, &wr, err)) return err->status;
    ss_result_free(&wr);
    double decode_ms = 0;
    for (int i = 0; i < N_PROMPTS; i++) {
        ss_session_reset(s);
        ss_result r;
        ss_status st = ss_session_generate(s, prompts[i], p, NULL, &r, err);
        if (st) return st;
        ss_stats *t = &g->total, *x = &r.stats;
        t->generated += x->generated;
        t->steps += x->steps;
        t->proposed += x->proposed;
        t->accepted += x->accepted;
        for (int j = 0; j < SS_MAX_K; j++) {
            t->pos_proposed[j] += x->pos_proposed[j];
            t->pos_accepted[j] += x->pos_accepted[j];
        }
        t->ms_prefill += x->ms_prefill;
        t->ms_draft += x->ms_draft;
        t->ms_verify += x->ms_verify;
        t->ms_calibrate += x->ms_calibrate;
        t->has_draft = x->has_draft;
        t->k = x->k;
        decode_ms += x->ms_total - x->ms_prefill;
        g->total.mean_accepted_length += x->generated - 1;
        ss_result_free(&r);
    }
    g->tok_s = decode_ms > 0 ? (g->total.generated - N_PROMPTS) / (decode_ms / 1e3) : 0;
    g->total.tokens_per_s = g->tok_s;
    g->total.mean_accepted_length = g->total.steps ? g->total.mean_accepted_length / g->total.steps : 0;
    return SS_OK;
}

/* Decode at the first decode context with the target split over each --tp-scaling rank count, and
 * with a draft (and a tokenizer) plain against speculative generation at that rank count. */
typedef struct {
    int tp;
    double decode_tok_s;
    double plain_tok_s, spec_tok_s; /* 0: not measured (no draft or no tokenizer) */
} scaling_point;

static ss_status scaling_generate(ss_session *s, const bench_opts *b, scaling_point *pt, ss_error *err) {
    if (strcmp(ss_session_draft_kind(s), "none") == 0 || !ss_session_tokenizer(s)) return SS_OK;
    ss_params plain = b->o.params, spec = b->o.params;
    plain.k = 0;
    spec.easyspec = 0;
    spec.easyspec_groups[0] = 0;
    gen_numbers g;
    ss_status st = bench_generate(s, &plain, &g, err);
    if (!st) pt->plain_tok_s = g.tok_s, st = bench_generate(s, &spec, &g, err);
    if (!st) pt->spec_tok_s = g.tok_s;
    return st;
}

static ss_status bench_scaling(const bench_opts *b, scaling_point *pts, ss_error *err) {
    const char *shared = getenv("SPECSCOPE_TP_DEVICES"); /* engine/model.c: ranks take turns on fewer devices */
    if (shared && *shared && b->o.session.backend != SS_BACKEND_CPU)
        fprintf(stderr, "bench: SPECSCOPE_TP_DEVICES=%s: ranks may share devices, so --tp-scaling does not measure "
                        "scaling over GPUs\n", shared);
    for (int i = 0; i < b->n_scaling; i++) {
        ss_session_opts so = b->o.session;
        so.tp = b->scaling_tp[i];
        so.quiet = true;
        ss_session *s;
        ss_status st = ss_session_open(&so, &s, err);
        if (st) return st;
        if ((st = lora_args_load(&b->o.loras, ss_session_target(s), err))) {
            ss_session_close(s);
            return st;
        }
        ss_model *m = ss_session_target(s);
        int at = b->decode_ctx[0] + 1 < ss_model_max_context(m) ? b->decode_ctx[0] : ss_model_max_context(m) - 2;
        int *ids = bench_ids(at + 1, ss_model_config(m)->vocab_size);
        double ms = 0;
        pts[i] = (scaling_point){.tp = b->scaling_tp[i]};
        st = ids ? time_forward(m, ids, 0, at, 1, &ms, err) : ss_fail(err, SS_ENOMEM, "out of memory for the benchmark");
        if (!st) st = time_forward(m, ids, at, 1, b->repeats * 8, &ms, err);
        if (!st) pts[i].decode_tok_s = 1e3 / ms;
        if (!st) st = scaling_generate(s, b, &pts[i], err);
        free(ids);
        ss_session_close(s);
        if (st) return st;
    }
    return SS_OK;
}

/* Speedup and efficiency (speedup / tp) against the first point (tp 1 in the usual "1,2,4"), and
 * speculative decoding's speedup over plain decoding at each rank count. */
static void print_scaling(const scaling_point *pts, int n, int ctx) {
    for (int i = 0; i < n; i++) {
        double speedup = pts[0].decode_tok_s > 0 ? pts[i].decode_tok_s / pts[0].decode_tok_s : 0;
        printf("tp %d: decode @%d %.1f tok/s  speedup %.2fx  efficiency %.0f%%", pts[i].tp, ctx, pts[i].decode_tok_s,
               speedup, 100 * speedup * pts[0].tp / pts[i].tp);
        if (pts[i].plain_tok_s > 0)
            printf("  generate: plain %.1f tok/s, speculative %.1f tok/s (%.2fx)", pts[i].plain_tok_s, pts[i].spec_tok_s,
                   pts[i].spec_tok_s / pts[i].plain_tok_s);
        printf("\n");
    }
}

static json_t *rate_or_null(double v) { return v > 0 ? json_real(v) : json_null(); }

static json_t *scaling_json(const scaling_point *pts, int n, int ctx) {
    json_t *a = json_array();
    for (int i = 0; i < n; i++) {
        const scaling_point *p = &pts[i];
        double speedup = pts[0].decode_tok_s > 0 ? p->decode_tok_s / pts[0].decode_tok_s : 0;
        json_array_append_new(
            a, json_pack("{s:i, s:i, s:f, s:f, s:f, s:o, s:o, s:o}", "tp", p->tp, "context", ctx, "decode_tokens_per_s",
                         p->decode_tok_s, "speedup", speedup, "efficiency", speedup * pts[0].tp / p->tp,
                         "plain_tokens_per_s", rate_or_null(p->plain_tok_s), "spec_tokens_per_s",
                         rate_or_null(p->spec_tok_s), "spec_speedup",
                         p->plain_tok_s > 0 ? json_real(p->spec_tok_s / p->plain_tok_s) : json_null()));
    }
    return a;
}

/* --trace / --kernels: after the timed runs (so tracing costs them nothing), repeats * 8 more decode
 * steps at the first decode context, traced: a host span per forward and, on CUDA, every kernel and
 * copy (CUPTI). The summary divides by those steps, so its columns are per decoded token. */
typedef struct {
    bool gpu; /* kernels were collected */
    int context, steps;
    double wall_us; /* host time per traced step (tracing included) */
    ss_kernel_summary sum;
} kernel_numbers;

static ss_status traced_steps(ss_model *m, ss_tracer *t, const int *ids, int at, int steps, kernel_numbers *k,
                              ss_error *err) {
    int next;
    ss_status st = SS_OK;
    double t0 = now_ms();
    for (int i = 0; !st && i < steps; i++) {
        ss_tracer_set_step(t, i);
        ss_trace_span span = ss_trace_begin(t, "decode", "target", "decode", -1);
        st = ss_model_forward_ids(m, ids + at, &at, 1, &next, true, err);
        ss_trace_end(&span);
    }
    k->wall_us = (now_ms() - t0) * 1e3 / steps;
    return st;
}

static ss_status trace_decode(ss_model *m, const bench_opts *b, kernel_numbers *k, ss_error *err) {
    ss_tracer *t;
    ss_status st = ss_tracer_new(SS_TRACE_DEFAULT_CAPACITY, &t, err);
    if (st) return st;
    int ctx = ss_model_max_context(m), at = b->decode_ctx[0] + 1 < ctx ? b->decode_ctx[0] : ctx - 2;
    int *ids = bench_ids(at + 1, ss_model_config(m)->vocab_size);
    double ms;
    k->context = at;
    k->steps = b->repeats * 8;
    /* Fill the cache up to the context, and warm the step up (its CUDA graph captured) untraced. */
    st = ids ? time_forward(m, ids, 0, at, 1, &ms, err) : ss_fail(err, SS_ENOMEM, "out of memory for the benchmark");
    if (!st) st = time_forward(m, ids, at, 1, 1, &ms, err);
    if (!st && strcmp(ss_model_backend_name(m), "cuda") == 0) {
        ss_error gerr = {0};
        k->gpu = ss_trace_gpu_start(t, &gerr) == SS_OK;
        if (!k->gpu) fprintf(stderr, "specscope bench: %s: no kernel timeline\n", gerr.msg);
    }
    ss_tracer_set_active(t);
    if (!st) st = traced_steps(m, t, ids, at, k->steps, k, err);
    ss_tracer_set_active(NULL);
    if (k->gpu) {
        ss_error gerr = {0};
        if (ss_trace_gpu_stop(&gerr)) fprintf(stderr, "specscope bench: %s\n", gerr.msg);
    }
    if (!st && k->gpu) st = ss_tracer_kernel_summary(t, k->steps, &k->sum, err);
    if (!st && b->trace_path) st = ss_tracer_write_chrome(t, b->trace_path, err);
    free(ids);
    ss_tracer_free(t);
    return st;
}

static void print_kernels(const kernel_numbers *k) {
    const ss_kernel_summary *s = &k->sum;
    long launches = 0;
    for (int i = 0; i < s->n; i++) launches += s->rows[i].count;
    printf("kernels per decoded token @%d (%d traced steps): GPU busy %.1f us of %.1f us wall (%.1f%%), %.1f "
           "launches\n",
           k->context, k->steps, s->busy_us / k->steps, k->wall_us, 100 * s->busy_us / k->steps / k->wall_us,
           (double)launches / k->steps);
    printf("  %6s %10s %11s %9s %13s  %s\n", "share", "us/token", "calls/token", "mean us", "exposed us/tok",
           "kernel");
    for (int i = 0; i < s->n; i++) {
        const ss_kernel_row *r = &s->rows[i];
        printf("  %5.1f%% %10.2f %11.2f %9.2f %13.2f  %s\n", 100 * r->share, r->per_step_us, r->calls_per_step,
               r->mean_us, r->exposed_per_step_us, r->name);
    }
}

static json_t *kernels_json(const ss_kernel_summary *s) {
    json_t *rows = json_array();
    for (int i = 0; i < s->n; i++) {
        const ss_kernel_row *r = &s->rows[i];
        json_array_append_new(rows, json_pack("{s:s, s:s, s:I, s:f, s:f, s:f, s:f, s:f, s:f}", "name", r->name, "kind",
                                              r->track == SS_TRACK_GPU_MEMCPY ? "memcpy" : "kernel", "count",
                                              (json_int_t)r->count, "calls_per_token", r->calls_per_step, "us_per_token",
                                              r->per_step_us, "mean_us", r->mean_us, "total_us", r->total_us, "share",
                                              r->share, "exposed_us_per_token", r->exposed_per_step_us));
    }
    return rows;
}

static json_t *kernels_per_token_json(const kernel_numbers *k) {
    return json_pack("{s:i, s:i, s:f, s:f, s:f}", "context", k->context, "steps", k->steps, "gpu_busy_us",
                     k->sum.busy_us / k->steps, "gpu_us", k->sum.gpu_us / k->steps, "wall_us", k->wall_us);
}


static void usage(FILE *out) {
    fprintf(out,
            "usage: specscope bench [--model DIR] [--draft DIR|ngram] [--backend B] [--tp N] [--tp-scaling LIST]\n"
            "                       [--prompt-len P] [-n N] [--lora DIR[:SCALE]]... [--lora-merge] [--json]\n"
            "                       [--trace FILE.json] [--kernels]\n\n"
            "Measures, in one run: prefill tokens/s over a P-token prompt; decode tokens/s at batch 1 with 128\n"
            "(and on CUDA 4096) tokens of context; with a draft, plain and speculative generation of N tokens on\n"
            "the same %d prompts (N defaults to 64 here; both rates, speedup, acceptance, mean accepted length),\n"
            "and with --easyspec G the same again with EasySpec drafting. On CUDA it also measures the\n"
            "device-to-device copy bandwidth and the cuBLAS bf16 GEMM rate, and reports achieved bandwidth as a\n"
            "ratio to the copy bandwidth.\n"
            "With --tp N every measurement runs on the target split over N tensor-parallel ranks.\n\n"
            "  --prompt-len P         prefill benchmark length (default 512; 2048 on CUDA)\n"
            "  --tp-scaling LIST      also decode (at 128 tokens of context) with the target split over each\n"
            "                         rank count of LIST, e.g. 1,2,4: tokens/s, speedup and efficiency;\n"
            "                         with --draft, plain and speculative generation at each count too\n"
            "  --repeats R            timed repeats after one warm-up, median reported (default 5)\n"
            "  --trace FILE.json      after the timed runs, trace R*8 more decode steps at 128 tokens of\n"
            "                         context and write a Chrome trace (Perfetto; docs/trace.md)\n"
            "  --kernels              (CUDA) print the time of each kernel per decoded token in those steps,\n"
            "                         and its exposed part (its share of the critical path: with PDL a\n"
            "                         kernel's own duration also counts its wait for the one before)\n"
            "  --lora DIR[:SCALE]     measure with a PEFT LoRA adapter on the target (repeatable; docs/lora.md)\n"
            "  --lora-merge           with the adapters folded into the weights\n"
            "  --json                 print one JSON object\n%s",
            N_PROMPTS, gen_options_help);
}

static json_t *gen_json(const gen_numbers *g) {
    json_t *o = report_stats(&g->total);
    json_object_set_new(o, "label", json_string(g->label));
    return o;
}

static void print_text(const char *backend, int tp, const forward_numbers *f, const ceilings *c,
                       const gen_numbers *gens, int n_gens) {
    printf("backend %s, tp %d\n", backend, tp);
    if (c->copy_bytes_per_s > 0)
        printf("ceilings: copy %.2f TB/s (read + write), cuBLAS bf16 GEMM %.1f TFLOP/s\n", c->copy_bytes_per_s / 1e12,
               c->gemm_flops_per_s / 1e12);
    printf("prefill: %.1f tok/s", f->prefill_tok_s);
    if (c->gemm_flops_per_s > 0) printf(" (%.1f%% of the GEMM rate)", 100 * f->prefill_flops_ratio);
    printf("\n");
    for (int i = 0; i < 2; i++) {
        if (!f->decode_ctx[i]) continue;
        printf("decode @%d: %.1f tok/s, %.1f MB/token, %.1f GB/s", f->decode_ctx[i], f->decode_tok_s[i],
               f->decode_bytes[i] / 1e6, f->decode_bytes[i] * f->decode_tok_s[i] / 1e9);
        if (c->copy_bytes_per_s > 0) {
            printf(" = %.1f%% of ", 100 * f->decode_bytes[i] * f->decode_tok_s[i] / decode_ceiling(c));
            if (c->devices > 1) printf("%d devices' ", c->devices);
            printf("copy bandwidth");
        }
        printf("\n");
    }
    for (int i = 0; i < n_gens; i++) {
        const ss_stats *t = &gens[i].total;
        printf("%-10s %8.1f tok/s", gens[i].label, gens[i].tok_s);
        if (i > 0) printf("  speedup %.2fx", gens[0].tok_s > 0 ? gens[i].tok_s / gens[0].tok_s : 0);
        if (t->proposed)
            printf("  acceptance %.3f  mean accepted length %.2f  draft %.0f ms  verify %.0f ms  calibrate %.0f ms",
                   (double)t->accepted / t->proposed, t->mean_accepted_length, t->ms_draft, t->ms_verify, t->ms_calibrate);
        printf("\n");
    }
}

static json_t *forward_json(const forward_numbers *f, const ceilings *c) {
    json_t *dec = json_array();
    for (int i = 0; i < 2; i++) {
        if (!f->decode_ctx[i]) continue;
        double bw = f->decode_bytes[i] * f->decode_tok_s[i];
        json_array_append_new(dec, json_pack("{s:i, s:f, s:f, s:f, s:o}", "context", f->decode_ctx[i], "tokens_per_s",
                                             f->decode_tok_s[i], "bytes_per_token", f->decode_bytes[i],
                                             "bytes_per_s", bw, "bandwidth_ratio",
                                             c->copy_bytes_per_s > 0 ? json_real(bw / decode_ceiling(c)) : json_null()));
    }
    return json_pack("{s:f, s:f, s:o, s:o}", "prefill_tokens_per_s", f->prefill_tok_s, "prefill_flops_per_s",
                     f->prefill_flops, "prefill_gemm_ratio",
                     c->gemm_flops_per_s > 0 ? json_real(f->prefill_flops_ratio) : json_null(), "decode", dec);
}

/* cuBLAS bf16 GEMM on the prefill's largest product (tokens x hidden -> intermediate) and the
 * device copy bandwidth: the ceilings measured in the same run. */
static ss_status measure_ceilings(ss_model *m, int prompt_len, ceilings *c, ss_error *err) {
    memset(c, 0, sizeof *c);
    c->devices = ss_model_devices(m);
    if (strcmp(ss_model_backend_name(m), "cuda") != 0) return SS_OK;
    const ss_config *cfg = ss_model_config(m);
    if (ss_cuda_copy_bandwidth(&c->copy_bytes_per_s, err)) return err->status;
    return ss_cuda_gemm_rate(prompt_len, cfg->intermediate, cfg->hidden, &c->gemm_flops_per_s, err);
}

/* "1,2,4": rank counts 1..SS_MAX_TP. */
static bool parse_tp_list(const char *v, bench_opts *b) {
    const char *p = v;
    b->n_scaling = 0;
    while (*p && b->n_scaling < SS_MAX_TP) {
        char *end;
        long tp = strtol(p, &end, 10);
        if (end == p || tp < 1 || tp > SS_MAX_TP || (*end && *end != ',')) break;
        b->scaling_tp[b->n_scaling++] = (int)tp;
        p = *end ? end + 1 : end;
    }
    if (*p || b->n_scaling == 0) {
        fprintf(stderr, "specscope bench: --tp-scaling '%s' is not a list of rank counts 1..%d, e.g. 1,2,4\n", v,
                SS_MAX_TP);
        return false;
    }
    return true;
}

static int parse(bench_opts *b, int argc, char **argv) {
    gen_options_default(&b->o);
    b->o.params.max_tokens = 64;
    b->prompt_len = 0;
    b->decode_ctx[0] = 128;
    b->repeats = 5;
    for (int i = 1; i < argc; i++) {
        int r = gen_options_parse(&b->o, "bench", argc, argv, &i);
        if (r < 0) return 2;
        if (r > 0) continue;
        const char *a = argv[i], *v;
        if (is_help(a)) {
            usage(stdout);
            return 0;
        } else if (strcmp(a, "--json") == 0) {
            b->json = true;
        } else if (strcmp(a, "--prompt-len") == 0) {
            if (!(v = arg_value("bench", argc, argv, &i)) || !arg_int("bench", a, v, 1, 1 << 20, &b->prompt_len)) return 2;
        } else if (strcmp(a, "--tp-scaling") == 0) {
            if (!(v = arg_value("bench", argc, argv, &i)) || !parse_tp_list(v, b)) return 2;
        } else if (strcmp(a, "--trace") == 0) {
            if (!(v = arg_value("bench", argc, argv, &i))) return 2;
            ss_error err = {0};
            if (ss_trace_check_path(v, &err)) {
                fprintf(stderr, "specscope bench: %s\n", err.msg);
                return 2;
            }
            b->trace_path = v;
        } else if (strcmp(a, "--kernels") == 0) {
            b->kernels = true;
        } else if (strcmp(a, "--lora") == 0) {
            if (!(v = arg_value("bench", argc, argv, &i)) || !lora_args_add(&b->o.loras, "bench", v)) return 2;
        } else if (strcmp(a, "--lora-merge") == 0) {
            b->o.loras.merge = true;
        } else if (strcmp(a, "--repeats") == 0) {
            if (!(v = arg_value("bench", argc, argv, &i)) || !arg_int("bench", a, v, 1, 1000, &b->repeats)) return 2;
        } else {
            fprintf(stderr, "specscope bench: unknown option '%s' (see --help)\n", a);
            return 2;
        }
    }
    return -1;
}

int cmd_bench(int argc, char **argv) {
    bench_opts b = {0};
    int rc = parse(&b, argc, argv);
    if (rc >= 0) return rc;
    ss_error err = {0};
    ss_session *s;
    if (ss_session_open(&b.o.session, &s, &err)) {
        fprintf(stderr, "specscope bench: %s\n", err.msg);
        return err.status == SS_ENOMEM || err.status == SS_EDEVICE ? 1 : 2;
    }
    if (lora_args_load(&b.o.loras, ss_session_target(s), &err)) {
        fprintf(stderr, "specscope bench: %s\n", err.msg);
        ss_session_close(s);
        return err.status == SS_ENOMEM || err.status == SS_EDEVICE ? 1 : 2;
    }
    ss_model *m = ss_session_target(s);
    bool cuda = strcmp(ss_model_backend_name(m), "cuda") == 0;
    if (!b.prompt_len) b.prompt_len = cuda ? 2048 : 512;
    b.decode_ctx[1] = cuda ? 4096 : 0;

    ceilings c;
    forward_numbers f = {0};
    gen_numbers gens[3];
    int n_gens = 0;
    scaling_point scaling[SS_MAX_TP];
    ss_status st = measure_ceilings(m, b.prompt_len, &c, &err);
    if (!st) st = bench_forward(m, &b, &f, &err);
    if (!st && c.gemm_flops_per_s > 0) f.prefill_flops_ratio = f.prefill_flops / c.gemm_flops_per_s;
    bool has_draft = strcmp(ss_session_draft_kind(s), "none") != 0;
    if (!st && has_draft && !ss_session_tokenizer(s))
        fprintf(stderr, "bench: %s has no tokenizer.json, and the plain and speculative rows generate from text "
                        "prompts: not measured\n", b.o.session.model_dir ? b.o.session.model_dir : "the model");
    if (!st && has_draft && ss_session_tokenizer(s)) {
        /* Plain decoding is the same session with k = 0 (no drafting), so the rows differ only in
         * drafting. */
        ss_params plain = b.o.params, spec = b.o.params;
        plain.k = 0;
        spec.easyspec = 0;
        spec.easyspec_groups[0] = 0;
        gens[0].label = "plain";
        st = bench_generate(s, &plain, &gens[0], &err);
        gens[1].label = "spec";
        if (!st) st = bench_generate(s, &spec, &gens[1], &err);
        n_gens = 2;
        if (!st && (b.o.params.easyspec >= 2 || b.o.params.easyspec_groups[0])) {
            gens[2].label = "easyspec";
            st = bench_generate(s, &b.o.params, &gens[2], &err);
            n_gens = 3;
        }
    }
    if (!st && b.n_scaling) st = bench_scaling(&b, scaling, &err);
    kernel_numbers kn = {0};
    if (b.kernels && !cuda)
        fprintf(stderr, "specscope bench: --kernels: the %s backend has no kernel timeline\n", ss_model_backend_name(m));
    if (!st && (b.trace_path || (b.kernels && cuda))) st = trace_decode(m, &b, &kn, &err);
    int tp = b.o.session.tp ? b.o.session.tp : 1;
    if (st) {
        fprintf(stderr, "specscope bench: %s\n", err.msg);
    } else if (b.json) {
        json_t *runs = json_array();
        for (int i = 0; i < n_gens; i++) json_array_append_new(runs, gen_json(&gens[i]));
        json_t *o = json_pack("{s:s, s:s, s:o, s:o, s:o, s:o, s:o}", "model", b.o.session.model_dir, "backend",
                              ss_model_backend_name(m), "copy_bytes_per_s",
                              c.copy_bytes_per_s > 0 ? json_real(c.copy_bytes_per_s) : json_null(),
                              "gemm_flops_per_s", c.gemm_flops_per_s > 0 ? json_real(c.gemm_flops_per_s) : json_null(),
                              "forward", forward_json(&f, &c), "generate", runs, "speedup",
                              n_gens > 1 && gens[0].tok_s > 0 ? json_real(gens[1].tok_s / gens[0].tok_s) : json_null());
        json_object_set_new(o, "tp", json_integer(tp));
        json_object_set_new(o, "devices", json_integer(c.devices));
        if (b.n_scaling) json_object_set_new(o, "tp_scaling", scaling_json(scaling, b.n_scaling, b.decode_ctx[0]));
        if (b.kernels) {
            json_object_set_new(o, "kernels", kn.gpu ? kernels_json(&kn.sum) : json_null());
            json_object_set_new(o, "kernels_per_token", kn.gpu ? kernels_per_token_json(&kn) : json_null());
        }
        report_print(o);
        json_decref(o);
    } else {
        print_text(ss_model_backend_name(m), tp, &f, &c, gens, n_gens);
        if (b.n_scaling) print_scaling(scaling, b.n_scaling, b.decode_ctx[0]);
        if (b.kernels && kn.gpu) print_kernels(&kn);
    }
    ss_kernel_summary_free(&kn.sum);
    ss_session_close(s);
    return st ? (st == SS_ENOMEM || st == SS_EDEVICE ? 1 : 2) : 0;
}
