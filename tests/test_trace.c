/* test_trace.c — the tracer (engine/trace.c) on the CPU:
 *  - the ring buffer keeps the newest events in order and counts the ones it dropped;
 *  - host spans carry their fields, the tracer's step, and a duration from the monotonic clock;
 *  - the Chrome trace JSON parses with jansson and holds every event with its fields and the
 *    metadata names of the processes and threads;
 *  - the per-kernel summary against hand-computed numbers (overlapping kernels counted once in the
 *    busy time);
 *  - kernel name shortening, an unwritable path (one line naming it), and the GPU collection's
 *    answer where it cannot run. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "trace.h"

static ss_trace_event gpu_event(const char *name, ss_trace_track track, uint64_t start_ns, uint64_t dur_ns) {
    ss_trace_event ev = {.layer = -1, .step = -1, .start_ns = start_ns, .dur_ns = dur_ns, .track = track};
    snprintf(ev.name, sizeof ev.name, "%s", name);
    return ev;
}

static void test_ring(void) {
    ss_tracer *t;
    ss_error err = {0};
    CHECK(ss_tracer_new(0, &t, &err) == SS_EARG && t == NULL);
    CHECK(ss_tracer_new(4, &t, &err) == SS_OK);
    for (int i = 0; i < 3; i++) {
        ss_trace_event ev = gpu_event("k", SS_TRACK_GPU_KERNEL, 1000 + (uint64_t)i, 1);
        ev.step = i;
        ss_tracer_add(t, &ev);
    }
    CHECK(ss_tracer_count(t) == 3 && ss_tracer_dropped(t) == 0);
    for (int i = 3; i < 10; i++) { /* 7 more into a ring of 4: the 6 oldest go */
        ss_trace_event ev = gpu_event("k", SS_TRACK_GPU_KERNEL, 1000 + (uint64_t)i, 1);
        ev.step = i;
        ss_tracer_add(t, &ev);
    }
    CHECK(ss_tracer_count(t) == 4);
    CHECK(ss_tracer_dropped(t) == 6);
    ss_trace_event ev;
    for (int i = 0; i < 4; i++) {
        CHECK(ss_tracer_event(t, i, &ev));
        CHECK_MSG(ev.step == 6 + i, "event %d has step %d, expected %d", i, ev.step, 6 + i);
    }
    CHECK(!ss_tracer_event(t, 4, &ev) && !ss_tracer_event(t, -1, &ev));
    ss_tracer_add_dropped(t, 5);
    CHECK(ss_tracer_dropped(t) == 11);
    ss_tracer_free(t);
}

static void test_spans(void) {
    ss_tracer *t;
    ss_error err = {0};
    CHECK(ss_tracer_new(16, &t, &err) == SS_OK);
    ss_tracer_set_step(t, 7);
    uint64_t before = ss_trace_now_ns();
    ss_trace_span outer = ss_trace_begin(t, "verify", "target", "verify", -1);
    ss_trace_span inner = ss_trace_begin(t, "layer 3", "target", "verify", 3);
    struct timespec pause = {0, 2000000}; /* 2 ms */
    nanosleep(&pause, NULL);
    ss_trace_end(&inner);
    ss_trace_end(&outer);
    ss_trace_end(&outer); /* a second end adds nothing */
    uint64_t after = ss_trace_now_ns();
    CHECK(ss_tracer_count(t) == 2);
    ss_trace_event a, b;
    CHECK(ss_tracer_event(t, 0, &a) && ss_tracer_event(t, 1, &b));
    CHECK(strcmp(a.name, "layer 3") == 0 && a.layer == 3 && a.step == 7 && a.track == SS_TRACK_HOST);
    CHECK(strcmp(b.name, "verify") == 0 && strcmp(b.model, "target") == 0 && strcmp(b.phase, "verify") == 0);
    CHECK(b.layer == -1 && b.step == 7);
    CHECK(a.dur_ns >= 2000000 && b.dur_ns >= a.dur_ns);                    /* slept 2 ms inside both */
    CHECK(b.start_ns >= before && b.start_ns <= a.start_ns);               /* outer began first */
    CHECK(b.start_ns + b.dur_ns <= after && a.start_ns + a.dur_ns <= b.start_ns + b.dur_ns);

    /* model and phase left NULL: those of the last span that gave them (here "target", "verify") */
    ss_trace_span layer = ss_trace_begin(t, "layer", NULL, NULL, 0);
    ss_trace_end(&layer);
    ss_trace_span draft = ss_trace_begin(t, "draft", "draft", "draft", -1);
    ss_trace_span dlayer = ss_trace_begin(t, "layer", NULL, NULL, 1);
    ss_trace_end(&dlayer);
    ss_trace_end(&draft);
    ss_trace_event c, d;
    CHECK(ss_tracer_count(t) == 5 && ss_tracer_event(t, 2, &c) && ss_tracer_event(t, 3, &d));
    CHECK(strcmp(c.model, "target") == 0 && strcmp(c.phase, "verify") == 0 && c.layer == 0);
    CHECK(strcmp(d.model, "draft") == 0 && strcmp(d.phase, "draft") == 0 && d.layer == 1);

    ss_trace_span off = ss_trace_begin(NULL, "x", "target", "decode", -1); /* tracing off: nothing */
    ss_trace_end(&off);
    ss_tracer_add(NULL, &a);

    CHECK(ss_tracer_active() == NULL);
    ss_tracer_set_active(t);
    CHECK(ss_tracer_active() == t);
    ss_tracer_free(t); /* freeing the active tracer turns tracing off */
    CHECK(ss_tracer_active() == NULL);
}

static const json_t *find_event(const json_t *list, const char *ph, const char *name) {
    size_t i;
    const json_t *e;
    json_array_foreach(list, i, e) {
        if (strcmp(json_string_value(json_object_get(e, "ph")), ph) == 0 &&
            strcmp(json_string_value(json_object_get(e, "name")), name) == 0)
            return e;
    }
    return NULL;
}

/* A metadata event's name for (pid, tid); tid 0: the process. */
static const char *meta_name(const json_t *list, const char *what, int pid, int tid) {
    size_t i;
    const json_t *e;
    json_array_foreach(list, i, e) {
        if (strcmp(json_string_value(json_object_get(e, "ph")), "M") || strcmp(json_string_value(json_object_get(e, "name")), what))
            continue;
        if (json_integer_value(json_object_get(e, "pid")) != pid) continue;
        if (tid && json_integer_value(json_object_get(e, "tid")) != tid) continue;
        return json_string_value(json_object_get(json_object_get(e, "args"), "name"));
    }
    return NULL;
}

static void test_chrome(void) {
    ss_tracer *t;
    ss_error err = {0};
    CHECK(ss_tracer_new(3, &t, &err) == SS_OK);
    ss_trace_event drop = gpu_event("dropped", SS_TRACK_GPU_KERNEL, 0, 1);
    ss_tracer_add(t, &drop); /* pushed out by the three below */
    uint64_t t0 = ss_trace_now_ns();
    ss_trace_event host = {.layer = 2, .step = 5, .start_ns = t0 + 1000000, .dur_ns = 250000, .track = SS_TRACK_HOST};
    strcpy(host.name, "layer 2");
    strcpy(host.model, "draft");
    strcpy(host.phase, "draft");
    ss_trace_event kern = gpu_event("gemv_kernel", SS_TRACK_GPU_KERNEL, t0 + 1100000, 12500);
    kern.correlation = 42;
    kern.graph_id = 9;
    ss_trace_event copy = gpu_event("memcpy DtoH", SS_TRACK_GPU_MEMCPY, t0 + 1200000, 3000);
    copy.bytes = 4;
    ss_tracer_add(t, &host);
    ss_tracer_add(t, &kern);
    ss_tracer_add(t, &copy);

    char dir[] = "/tmp/ss_trace_XXXXXX", path[64];
    CHECK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof path, "%s/t.json", dir);
    CHECK_MSG(ss_tracer_write_chrome(t, path, &err) == SS_OK, "%s", err.msg);
    json_error_t jerr;
    json_t *root = json_load_file(path, 0, &jerr);
    CHECK_MSG(root != NULL, "%s: %s", path, jerr.text);
    const json_t *list = json_object_get(root, "traceEvents");
    CHECK(json_is_array(list));
    CHECK(json_integer_value(json_object_get(json_object_get(root, "otherData"), "dropped_events")) == 1);
    CHECK(find_event(list, "X", "dropped") == NULL);

    const json_t *h = find_event(list, "X", "layer 2"), *k = find_event(list, "X", "gemv_kernel"),
                 *c = find_event(list, "X", "memcpy DtoH");
    CHECK(h && k && c);
    if (h && k && c) {
        const json_t *ha = json_object_get(h, "args");
        CHECK(strcmp(json_string_value(json_object_get(h, "cat")), "draft") == 0);
        CHECK(strcmp(json_string_value(json_object_get(ha, "phase")), "draft") == 0);
        CHECK(json_integer_value(json_object_get(ha, "layer")) == 2 && json_integer_value(json_object_get(ha, "step")) == 5);
        CHECK_NEAR(json_number_value(json_object_get(h, "dur")), 250.0, 1e-9);
        /* ts in µs on one time base: the kernel began 100 µs after the span, the copy 200 µs. */
        double hts = json_number_value(json_object_get(h, "ts"));
        CHECK_NEAR(json_number_value(json_object_get(k, "ts")) - hts, 100.0, 1e-6);
        CHECK_NEAR(json_number_value(json_object_get(c, "ts")) - hts, 200.0, 1e-6);
        CHECK(hts >= 0);
        CHECK_NEAR(json_number_value(json_object_get(k, "dur")), 12.5, 1e-9);
        CHECK(strcmp(json_string_value(json_object_get(k, "cat")), "kernel") == 0);
        CHECK(json_integer_value(json_object_get(json_object_get(k, "args"), "correlation")) == 42);
        CHECK(json_integer_value(json_object_get(json_object_get(k, "args"), "graph_id")) == 9);
        CHECK(json_integer_value(json_object_get(json_object_get(c, "args"), "bytes")) == 4);
        /* host and GPU on different processes, kernels and copies on different threads */
        int hpid = (int)json_integer_value(json_object_get(h, "pid")), kpid = (int)json_integer_value(json_object_get(k, "pid"));
        int htid = (int)json_integer_value(json_object_get(h, "tid")), ktid = (int)json_integer_value(json_object_get(k, "tid"));
        int ctid = (int)json_integer_value(json_object_get(c, "tid"));
        CHECK(hpid != kpid && json_integer_value(json_object_get(c, "pid")) == kpid && ktid != ctid);
        const char *hp = meta_name(list, "process_name", hpid, 0), *gp = meta_name(list, "process_name", kpid, 0);
        const char *ht = meta_name(list, "thread_name", hpid, htid), *kt = meta_name(list, "thread_name", kpid, ktid);
        CHECK(hp && strcmp(hp, "specscope host") == 0 && gp && strcmp(gp, "GPU") == 0);
        CHECK(ht && strcmp(ht, "draft") == 0 && kt && strcmp(kt, "kernels") == 0);
    }
    json_decref(root);
    unlink(path);
    rmdir(dir);
    ss_tracer_free(t);
}

static void test_unwritable(void) {
    ss_tracer *t;
    ss_error err = {0};
    CHECK(ss_tracer_new(4, &t, &err) == SS_OK);
    const char *path = "/nonexistent-dir/trace.json";
    CHECK(ss_tracer_write_chrome(t, path, &err) == SS_EIO);
    CHECK_MSG(strstr(err.msg, path) != NULL && strchr(err.msg, '\n') == NULL, "message: %s", err.msg);
    ss_tracer_free(t);

    /* The check before a run: the same answer, and nothing created where it can be written. */
    CHECK(ss_trace_check_path(path, &err) == SS_EIO && strstr(err.msg, path) != NULL);
    CHECK(ss_trace_check_path("/tmp", &err) == SS_EIO && strstr(err.msg, "folder") != NULL);
    CHECK(ss_trace_check_path("", &err) == SS_EARG);
    char dir[] = "/tmp/ss_trace_XXXXXX", ok_path[64];
    CHECK(mkdtemp(dir) != NULL);
    snprintf(ok_path, sizeof ok_path, "%s/new.json", dir);
    CHECK_MSG(ss_trace_check_path(ok_path, &err) == SS_OK, "%s", err.msg);
    CHECK(access(ok_path, F_OK) != 0);
    rmdir(dir);
}

static void test_summary(void) {
    ss_tracer *t;
    ss_error err = {0};
    CHECK(ss_tracer_new(64, &t, &err) == SS_OK);
    /* Two steps. gemv: 4 calls of 10 µs; attn: 2 calls of 30 µs; a DtoH copy: 2 of 5 µs; one host
     * span (not GPU time). The second attn overlaps the gemv before it by 4 µs (PDL). */
    uint64_t us = 1000;
    ss_trace_event evs[] = {
        gpu_event("gemv_kernel", SS_TRACK_GPU_KERNEL, 0 * us, 10 * us),
        gpu_event("gemv_kernel", SS_TRACK_GPU_KERNEL, 10 * us, 10 * us),
        gpu_event("attn_decode_kernel", SS_TRACK_GPU_KERNEL, 20 * us, 30 * us),
        gpu_event("memcpy DtoH", SS_TRACK_GPU_MEMCPY, 50 * us, 5 * us),
        gpu_event("gemv_kernel", SS_TRACK_GPU_KERNEL, 100 * us, 10 * us),
        gpu_event("gemv_kernel", SS_TRACK_GPU_KERNEL, 110 * us, 10 * us),
        gpu_event("attn_decode_kernel", SS_TRACK_GPU_KERNEL, 116 * us, 30 * us),
        gpu_event("memcpy DtoH", SS_TRACK_GPU_MEMCPY, 146 * us, 5 * us),
    };
    for (size_t i = 0; i < sizeof evs / sizeof *evs; i++) ss_tracer_add(t, &evs[i]);
    ss_trace_span s = ss_trace_begin(t, "decode", "target", "decode", -1);
    ss_trace_end(&s);

    ss_kernel_summary sum;
    CHECK(ss_tracer_kernel_summary(t, 0, &sum, &err) == SS_EARG);
    CHECK_MSG(ss_tracer_kernel_summary(t, 2, &sum, &err) == SS_OK, "%s", err.msg);
    CHECK(sum.n == 3 && sum.steps == 2);
    CHECK_NEAR(sum.gpu_us, 110.0, 1e-9); /* 40 + 60 + 10 */
    /* union: [0, 55) and [100, 151) */
    CHECK_NEAR(sum.busy_us, 106.0, 1e-9);
    if (sum.n == 3) {
        const ss_kernel_row *a = &sum.rows[0], *g = &sum.rows[1], *c = &sum.rows[2]; /* largest total first */
        CHECK(strcmp(a->name, "attn_decode_kernel") == 0 && a->track == SS_TRACK_GPU_KERNEL);
        CHECK(a->count == 2);
        CHECK_NEAR(a->total_us, 60.0, 1e-9);
        CHECK_NEAR(a->mean_us, 30.0, 1e-9);
        CHECK_NEAR(a->share, 60.0 / 110.0, 1e-12);
        CHECK_NEAR(a->per_step_us, 30.0, 1e-9);
        CHECK_NEAR(a->calls_per_step, 1.0, 1e-12);
        /* the second attn adds 26 of its 30 us: the gemv before it ended at 120 */
        CHECK_NEAR(a->exposed_per_step_us, (30.0 + 26.0) / 2, 1e-9);
        CHECK(strcmp(g->name, "gemv_kernel") == 0 && g->count == 4);
        CHECK_NEAR(g->total_us, 40.0, 1e-9);
        CHECK_NEAR(g->mean_us, 10.0, 1e-9);
        CHECK_NEAR(g->share, 40.0 / 110.0, 1e-12);
        CHECK_NEAR(g->per_step_us, 20.0, 1e-9);
        CHECK_NEAR(g->calls_per_step, 2.0, 1e-12);
        CHECK_NEAR(g->exposed_per_step_us, 20.0, 1e-9);
        CHECK(strcmp(c->name, "memcpy DtoH") == 0 && c->track == SS_TRACK_GPU_MEMCPY && c->count == 2);
        CHECK_NEAR(c->share, 10.0 / 110.0, 1e-12);
        /* no gaps inside the two busy spans: the exposed times add up to busy_us */
        CHECK_NEAR(2 * (a->exposed_per_step_us + g->exposed_per_step_us + c->exposed_per_step_us), sum.busy_us, 1e-9);
    }
    ss_kernel_summary_free(&sum);
    CHECK(sum.rows == NULL && sum.n == 0);
    ss_tracer_free(t);

    CHECK(ss_tracer_new(4, &t, &err) == SS_OK); /* no GPU events: an empty summary */
    CHECK(ss_tracer_kernel_summary(t, 1, &sum, &err) == SS_OK && sum.n == 0 && sum.gpu_us == 0 && sum.busy_us == 0);
    ss_kernel_summary_free(&sum);
    ss_tracer_free(t);
}

/* A long launch that spans an idle gap between two shorter ones ending before it: the gap it fills
 * is busy, but it moved the end of the work only past the later of them, so the exposed times add up
 * to less than the busy time (docs/trace.md). */
static void test_exposed_gap(void) {
    ss_tracer *t;
    ss_error err = {0};
    CHECK(ss_tracer_new(8, &t, &err) == SS_OK);
    uint64_t us = 1000;
    ss_trace_event evs[] = {
        gpu_event("a", SS_TRACK_GPU_KERNEL, 0 * us, 10 * us),  /* [0, 10) */
        gpu_event("c", SS_TRACK_GPU_KERNEL, 20 * us, 5 * us),  /* [20, 25) */
        gpu_event("b", SS_TRACK_GPU_KERNEL, 5 * us, 25 * us),  /* [5, 30): spans the gap [10, 20) */
    };
    for (size_t i = 0; i < sizeof evs / sizeof *evs; i++) ss_tracer_add(t, &evs[i]);
    ss_kernel_summary sum;
    CHECK_MSG(ss_tracer_kernel_summary(t, 1, &sum, &err) == SS_OK, "%s", err.msg);
    CHECK(sum.n == 3);
    CHECK_NEAR(sum.busy_us, 30.0, 1e-9);
    double exposed[3] = {0};
    for (int i = 0; i < sum.n; i++) {
        const int k = sum.rows[i].name[0] - 'a';
        CHECK(k >= 0 && k < 3);
        if (k >= 0 && k < 3) exposed[k] = sum.rows[i].exposed_per_step_us;
    }
    CHECK_NEAR(exposed[0], 10.0, 1e-9); /* a: all of it */
    CHECK_NEAR(exposed[2], 5.0, 1e-9);  /* c: [20, 25), after a ended */
    CHECK_NEAR(exposed[1], 5.0, 1e-9);  /* b: only [25, 30), after c ended */
    ss_kernel_summary_free(&sum);
    ss_tracer_free(t);
}

static void check_short(const char *in, size_t cap, const char *want) {
    char out[SS_TRACE_NAME];
    ss_trace_short_name(in, out, cap);
    CHECK_MSG(strcmp(out, want) == 0, "'%s' -> '%s', expected '%s'", in, out, want);
}

static void test_short_names(void) {
    check_short("gemv_kernel(gemv_params)", SS_TRACE_NAME, "gemv_kernel");
    check_short("argmax_kernel", SS_TRACE_NAME, "argmax_kernel"); /* extern "C" / not demangled */
    check_short("void attn<128, true>(float const*, int)", SS_TRACE_NAME, "attn<128, true>");
    check_short("void cutlass::Kernel<cutlass::gemm::Gemm<float, 4> >(cutlass::Params)", SS_TRACE_NAME,
                "cutlass::Kernel<cutlass::gemm::Gemm<float, 4> >");
    check_short("void (anonymous namespace)::fill(unsigned int*, unsigned long)", SS_TRACE_NAME,
                "(anonymous namespace)::fill");
    check_short("void cutlass::Kernel<cutlass::gemm::Gemm<float, 4> >(cutlass::Params)", 24, "cutlass::Kernel<...>");
    check_short("void k<1>(int)", 4, "k<."); /* truncated to the buffer */
}

static void test_gpu_unavailable(void) {
    /* Built without CUDA, or no device / driver here: one line saying why, nothing collected. */
    ss_tracer *t;
    ss_error err = {0};
    CHECK(ss_tracer_new(4, &t, &err) == SS_OK);
    ss_status st = ss_trace_gpu_start(t, &err);
    if (st == SS_OK) { /* a machine with a device: collection works, stop ends it */
        CHECK(ss_trace_gpu_stop(&err) == SS_OK);
    } else {
        CHECK(st == SS_EUNSUPPORTED);
        CHECK_MSG(strncmp(err.msg, "trace: ", 7) == 0 && strchr(err.msg, '\n') == NULL, "message: %s", err.msg);
        printf("GPU collection here: %s\n", err.msg);
        CHECK(ss_trace_gpu_stop(&err) == SS_OK); /* stopping nothing is fine */
    }
    ss_tracer_free(t);
}

int main(void) {
    test_ring();
    test_spans();
    test_chrome();
    test_unwritable();
    test_summary();
    test_exposed_gap();
    test_short_names();
    test_gpu_unavailable();
    return check_done();
}
