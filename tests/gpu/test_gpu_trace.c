/* test_gpu_trace.c — kernel timelines through CUPTI (engine/cuda/cupti_trace.cu) on a random llama
 * checkpoint decoding on CUDA, after the decode step's CUDA graph is captured:
 *  - the traced steps give kernel events, every one with a plausible duration (0 < dur < 100 ms) and
 *    a start inside the host's window around the steps (one clock for host and GPU);
 *  - the GEMV and the decode attention kernels are among them, by name, each at least once per step
 *    per layer; with graphs on (the default) the kernels carry the graph's id: graph nodes are traced;
 *  - a flush while collecting hands the finished steps' records over, none dropped (the live
 *    timeline of the interface);
 *  - the summary's per-step numbers add up, and the Chrome export takes the GPU events.
 * Prints "SKIPPED: ..." and exits 77 without a CUDA device. */
#include <jansson.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "core_checkpoint.h"
#include "gpu_test.h"
#include "trace.h"

enum { LAYERS = 2, STEPS = 4, CONTEXT = 32 };

static ss_model *load_model(const char *dir) {
    ck_spec spec = {.arch = "llama", .vocab = 512, .hidden = 256, .intermediate = 512, .layers = LAYERS, .heads = 4,
                    .kv_heads = 2, .dtype = SS_BF16, .rope_theta = 10000, .max_position = 512, .seed = 21};
    if (ck_write(dir, &spec, NULL) != 0) return NULL;
    ss_model_opts opts = {.dir = dir, .backend = SS_BACKEND_CUDA, .max_context = 128, .quiet = true};
    ss_model *m = NULL;
    ss_error err = {0};
    CHECK_MSG(ss_model_load(&opts, &m, &err) == SS_OK, "%s: %s", dir, err.msg);
    return m;
}

/* Decode `steps` tokens at position `at` (the same position each time: a fixed-shape step). */
static ss_status decode(ss_model *m, const int *ids, int at, int steps, ss_error *err) {
    int next;
    for (int i = 0; i < steps; i++)
        if (ss_model_forward_ids(m, ids + at, &at, 1, &next, true, err)) return err->status;
    return SS_OK;
}

static void check_events(ss_tracer *t, uint64_t window_start, uint64_t window_end) {
    int kernels = 0, in_graph = 0, gemv = 0, attn = 0, bad_dur = 0, outside = 0;
    ss_trace_event ev;
    for (int i = 0; ss_tracer_event(t, i, &ev); i++) {
        if (ev.track != SS_TRACK_GPU_KERNEL) continue;
        kernels++;
        in_graph += ev.graph_id != 0;
        gemv += strstr(ev.name, "gemv") != NULL;
        attn += strstr(ev.name, "attn") != NULL;
        bad_dur += ev.dur_ns == 0 || ev.dur_ns > 100000000ull;
        /* CUPTI maps GPU times onto the host clock by interpolation: allow it 200 us */
        outside += ev.start_ns + 200000 < window_start || ev.start_ns + ev.dur_ns > window_end + 200000;
    }
    printf("%d kernel events over %d steps (%d in a graph), %d gemv, %d attention, %ld dropped\n", kernels, STEPS,
           in_graph, gemv, attn, ss_tracer_dropped(t));
    CHECK_MSG(kernels >= STEPS * LAYERS, "%d kernel events for %d steps of %d layers", kernels, STEPS, LAYERS);
    CHECK_MSG(bad_dur == 0, "%d kernels with a duration of 0 or over 100 ms", bad_dur);
    CHECK_MSG(outside == 0, "%d kernels outside the host's window around the steps (clocks not aligned)", outside);
    CHECK_MSG(gemv >= STEPS * LAYERS, "%d gemv kernels", gemv);
    CHECK_MSG(attn >= STEPS * LAYERS, "%d attention kernels", attn);
    const char *graphs = getenv("SPECSCOPE_CUDA_GRAPHS");
    if (!graphs || strcmp(graphs, "0") != 0) CHECK_MSG(in_graph > 0, "no kernel carries a graph id with graphs on");
}

static void check_summary(ss_tracer *t) {
    ss_kernel_summary s;
    ss_error err = {0};
    CHECK_MSG(ss_tracer_kernel_summary(t, STEPS, &s, &err) == SS_OK, "%s", err.msg);
    double share = 0, per_step = 0;
    for (int i = 0; i < s.n; i++) {
        share += s.rows[i].share;
        per_step += s.rows[i].per_step_us;
        printf("  %5.1f%% %8.2f us/step %5.2f calls/step  %s\n", 100 * s.rows[i].share, s.rows[i].per_step_us,
               s.rows[i].calls_per_step, s.rows[i].name);
    }
    CHECK(s.n > 0);
    CHECK_NEAR(share, 1.0, 1e-9);
    CHECK_NEAR(per_step * STEPS, s.gpu_us, 1e-6);
    CHECK(s.busy_us > 0 && s.busy_us <= s.gpu_us + 1e-6);
    ss_kernel_summary_free(&s);
}

static void check_export(ss_tracer *t, const char *dir) {
    char path[1100];
    snprintf(path, sizeof path, "%s/trace.json", dir);
    ss_error err = {0};
    CHECK_MSG(ss_tracer_write_chrome(t, path, &err) == SS_OK, "%s", err.msg);
    json_t *root = json_load_file(path, 0, NULL);
    size_t i, gpu = 0;
    json_t *e;
    json_array_foreach(json_object_get(root, "traceEvents"), i, e) {
        const char *cat = json_string_value(json_object_get(e, "cat"));
        gpu += cat && strcmp(cat, "kernel") == 0;
    }
    CHECK_MSG(gpu > 0, "%s holds no kernel events", path);
    json_decref(root);
    unlink(path);
}

int main(void) {
    int skip = gpu_require_device();
    if (skip) return skip;
    char dir[1024];
    if (ck_tempdir(dir, sizeof dir)) {
        printf("cannot make a temporary folder\n");
        return 1;
    }
    ss_model *m = load_model(dir);
    int ids[CONTEXT + 1];
    for (int i = 0; i <= CONTEXT; i++) ids[i] = (i * 37 + 11) % 512;
    int pos[CONTEXT];
    for (int i = 0; i < CONTEXT; i++) pos[i] = i;
    ss_error err = {0};
    ss_tracer *t = NULL;
    if (m && ss_model_forward_ids(m, ids, pos, CONTEXT, &ids[CONTEXT], true, &err) == SS_OK &&
        decode(m, ids, CONTEXT, 3, &err) == SS_OK && /* run directly, captured, replayed */
        ss_tracer_new(SS_TRACE_DEFAULT_CAPACITY, &t, &err) == SS_OK) {
        ss_status st = ss_trace_gpu_start(t, &err);
        CHECK_MSG(st == SS_OK, "%s", err.msg);
        if (st == SS_OK) {
            uint64_t before = ss_trace_now_ns();
            CHECK_MSG(decode(m, ids, CONTEXT, STEPS, &err) == SS_OK, "%s", err.msg);
            uint64_t after = ss_trace_now_ns();
            /* A flush while collecting hands the finished steps' kernels over (the live timeline). */
            const int held = ss_tracer_count(t);
            CHECK_MSG(ss_trace_gpu_flush(&err) == SS_OK, "%s", err.msg);
            const int flushed = ss_tracer_count(t) - held;
            printf("flush while collecting: %d events handed over, %ld dropped\n", flushed, ss_tracer_dropped(t));
            CHECK_MSG(flushed >= STEPS * LAYERS, "a flush handed over %d events", flushed);
            CHECK_MSG(ss_tracer_dropped(t) == 0, "%ld records dropped (incomplete after the flush?)", ss_tracer_dropped(t));
            CHECK_MSG(ss_trace_gpu_stop(&err) == SS_OK, "%s", err.msg);
            check_events(t, before, after);
            check_summary(t);
            check_export(t, dir);
        }
    }
    CHECK_MSG(err.status == SS_OK, "%s", err.msg);
    ss_tracer_free(t);
    ss_model_free(m);
    ck_remove(dir);
    return check_done();
}
