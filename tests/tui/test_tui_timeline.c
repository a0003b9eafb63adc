/* test_tui_timeline.c — the timeline pane's model: the last step found among host spans, kernels
 * grouped into layers, bars placed on the step's wall time, the tracer's copy of recent events, and
 * the feed's per-layer rows while CUPTI's records arrive late, each against values worked out by
 * hand from synthetic event lists. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "timeline.h"
#include "trace_feed.h"

static ss_trace_event span(const char *phase, const char *model, uint64_t start, uint64_t dur) {
    ss_trace_event ev = {.layer = -1, .start_ns = start, .dur_ns = dur, .track = SS_TRACK_HOST};
    snprintf(ev.name, sizeof ev.name, "%s", phase);
    snprintf(ev.phase, sizeof ev.phase, "%s", phase);
    snprintf(ev.model, sizeof ev.model, "%s", model);
    return ev;
}

static ss_trace_event kernel(const char *name, uint64_t start, uint64_t dur) {
    ss_trace_event ev = {.layer = -1, .step = -1, .start_ns = start, .dur_ns = dur, .track = SS_TRACK_GPU_KERNEL};
    snprintf(ev.name, sizeof ev.name, "%s", name);
    return ev;
}

/* Two rounds after a prefill, then a third round's draft (mid-round). */
static int rounds(ss_trace_event *s) {
    int n = 0;
    s[n++] = span("prefill", "target", 0, 100);
    s[n++] = span("prefill", "draft", 100, 50);
    s[n++] = span("draft", "draft", 160, 20);
    s[n++] = span("verify", "target", 180, 40);
    s[n++] = span("calibrate", "draft", 225, 5);
    s[n++] = span("draft", "draft", 300, 30);
    ss_trace_event layer_span = span("verify", "target", 330, 2);
    layer_span.layer = 0; /* a per-layer span: not a phase row */
    s[n++] = layer_span;
    s[n++] = span("verify", "target", 330, 60);
    s[n++] = span("calibrate", "draft", 395, 5);
    s[n++] = span("draft", "draft", 420, 30);
    return n;
}

static void test_find_step(void) {
    ss_trace_event s[16];
    int n = rounds(s);
    tl_step st;
    CHECK(timeline_find_step(s, n, false, &st));
    CHECK(st.n_phases == 3 && strcmp(st.phase[0].phase, "draft") == 0 && strcmp(st.phase[1].phase, "verify") == 0 &&
          strcmp(st.phase[2].phase, "calibrate") == 0);
    CHECK(st.start_ns == 300 && st.end_ns == 400 && st.phase[1].dur_ns == 60);
    /* the first round takes the prefill spans with it */
    CHECK(timeline_find_step(s, 5, false, &st));
    CHECK(st.n_phases == 5 && strcmp(st.phase[0].phase, "prefill") == 0 && strcmp(st.phase[1].model, "draft") == 0);
    CHECK(st.start_ns == 0 && st.end_ns == 230);
    /* mid-round with no round ended yet: nothing; once the run ended, the prefill alone */
    CHECK(!timeline_find_step(s, 2, false, &st) && !st.valid);
    CHECK(timeline_find_step(s, 2, true, &st) && st.n_phases == 2 && st.end_ns == 150);
    /* finished after the third round's draft (a failed round): that draft is the step */
    CHECK(timeline_find_step(s, n, true, &st) && st.n_phases == 1 && st.start_ns == 420);
    CHECK(!timeline_find_step(s, 0, true, &st));
}

/* One forward of three plain layers: embed, then per layer norm, qkv, rope (pre-attention), attn,
 * o, norm, gate, silu, down; then the final norm, the LM head and argmax. Layer l's kernels take
 * (l + 1) us each, the rest 0.5 us. Returns the kernels added. */
static int forward(ss_trace_event *k, uint64_t t0) {
    static const char *const per_layer[] = {"rmsnorm_kernel", "gemv_kernel", "prep_kernel", "attn_decode_kernel",
                                            "gemv_kernel",    "rmsnorm_kernel", "gemv_kernel", "silu_mul_kernel",
                                            "gemv_kernel"};
    int n = 0;
    uint64_t t = t0;
    k[n++] = kernel("embed_kernel", t, 500), t += 1000;
    for (int l = 0; l < 3; l++)
        for (int i = 0; i < 9; i++) k[n++] = kernel(per_layer[i], t, (uint64_t)(l + 1) * 1000), t += 10000;
    for (int i = 0; i < 3; i++) k[n++] = kernel(i == 2 ? "argmax_kernel" : "gemv_kernel", t, 500), t += 1000;
    return n;
}

static void shuffle(ss_trace_event *k, int n) {
    srand(7);
    for (int i = n - 1; i > 0; i--) {
        int j = rand() % (i + 1);
        ss_trace_event tmp = k[i];
        k[i] = k[j];
        k[j] = tmp;
    }
}

static void test_group_layers(void) {
    ss_trace_event k[200];
    int n = 0;
    n += forward(k + n, 1000000);          /* draft phase: two forwards */
    n += forward(k + n, 2000000);
    n += forward(k + n, 5000000);          /* verify phase: one */
    k[n++] = kernel("gemv_kernel", 9000000, 777000); /* outside both windows */
    shuffle(k, n);
    tl_layers draft, verify;
    timeline_group_layers(k, n, 1000000, 3000000, &draft);
    timeline_group_layers(k, n, 5000000, 6000000, &verify); /* the first call kept every event in k */
    CHECK(draft.kernels == 62 && verify.kernels == 31);
    CHECK(draft.n_layers == 3 && verify.n_layers == 3);
    for (int l = 0; l < 3; l++) {
        CHECK_NEAR(verify.us[l], 9.0 * (l + 1), 1e-9);
        CHECK_NEAR(draft.us[l], 18.0 * (l + 1), 1e-9);
    }
    CHECK_NEAR(verify.other_us, 2.0, 1e-9); /* embed, final norm, head, argmax */
    CHECK_NEAR(draft.other_us, 4.0, 1e-9);
    /* kernels without an attention launch are all "other" */
    ss_trace_event only[2] = {kernel("embed_kernel", 10, 1000), kernel("gemv_kernel", 20, 3000)};
    timeline_group_layers(only, 2, 0, 100, &verify);
    CHECK(verify.n_layers == 0 && verify.kernels == 2);
    CHECK_NEAR(verify.other_us, 4.0, 1e-9);
    timeline_group_layers(only, 0, 0, 100, &verify);
    CHECK(verify.kernels == 0 && verify.other_us == 0);
}

/* CPU layer spans (times in ns): two verify forwards of a 3-layer model inside a 100 ns phase (66 ns
 * of layers, 34 outside them), a layer span ending after the phase, the phase span itself (layer
 * -1), and a layer index past the table: only the six count. */
static void test_host_layers(void) {
    ss_trace_event s[10];
    int n = 0;
    s[n++] = span("verify", "target", 1000, 100); /* the phase itself: no layer */
    for (int f = 0; f < 2; f++)
        for (int l = 0; l < 3; l++) {
            ss_trace_event e = span("verify", "target", 1005 + 45 * (uint64_t)f + 12 * (uint64_t)l, 10 + (uint64_t)l);
            e.layer = l;
            s[n++] = e; /* 10, 11, 12 ns per forward: 33 each, 66 in all */
        }
    ss_trace_event late = span("verify", "target", 1099, 5); /* ends after the phase */
    late.layer = 0;
    s[n++] = late;
    ss_trace_event far = span("verify", "target", 1050, 14);
    far.layer = TL_MAX_LAYERS; /* past the table */
    s[n++] = far;
    tl_phase phase = {.start_ns = 1000, .dur_ns = 100};
    snprintf(phase.phase, sizeof phase.phase, "verify");
    tl_layers out;
    timeline_host_layers(s, n, &phase, &out);
    CHECK(out.n_layers == 3 && out.kernels == 6);
    CHECK_NEAR(out.us[0], 0.020, 1e-12);
    CHECK_NEAR(out.us[1], 0.022, 1e-12);
    CHECK_NEAR(out.us[2], 0.024, 1e-12);
    CHECK_NEAR(out.other_us, 0.100 - 0.066, 1e-12);
}

static void test_bar_cells(void) {
    int first, cells;
    timeline_bar_cells(1000, 1000, 1250, 250, 40, &first, &cells);
    CHECK(first == 10 && cells == 10);
    timeline_bar_cells(1000, 1000, 1000, 1000, 40, &first, &cells);
    CHECK(first == 0 && cells == 40);
    timeline_bar_cells(1000, 1000, 1999, 1, 40, &first, &cells); /* short and last: one cell, inside */
    CHECK(first == 39 && cells == 1);
    timeline_bar_cells(1000, 1000, 1500, 0, 40, &first, &cells); /* no duration: no cell */
    CHECK(first == 20 && cells == 0);
    timeline_bar_cells(1000, 0, 1000, 5, 40, &first, &cells); /* no wall time: nothing drawn */
    CHECK(first == 0 && cells == 0);
}

static void test_copy_recent(void) {
    ss_tracer *t;
    ss_error err = {0};
    CHECK(ss_tracer_new(4, &t, &err) == SS_OK);
    if (!t) return;
    ss_trace_event evs[6] = {span("draft", "draft", 10, 1),    kernel("a", 20, 1), span("verify", "target", 30, 1),
                             kernel("b", 40, 1), span("calibrate", "draft", 50, 1), kernel("c", 60, 1)};
    for (int i = 0; i < 6; i++) ss_tracer_add(t, &evs[i]); /* the first two are dropped */
    ss_trace_event out[4];
    int n = ss_tracer_copy_recent(t, SS_TRACK_HOST, 0, UINT64_MAX, out, 4);
    CHECK(n == 2 && out[0].start_ns == 30 && out[1].start_ns == 50);
    n = ss_tracer_copy_recent(t, SS_TRACK_GPU_KERNEL, 0, UINT64_MAX, out, 1); /* the cap keeps the newest */
    CHECK(n == 1 && strcmp(out[0].name, "c") == 0);
    n = ss_tracer_copy_recent(t, SS_TRACK_GPU_KERNEL, 35, 45, out, 4);
    CHECK(n == 1 && out[0].start_ns == 40);
    CHECK(ss_tracer_copy_recent(t, SS_TRACK_HOST, 0, UINT64_MAX, out, 0) == 0);
    CHECK(ss_tracer_copy_recent(NULL, SS_TRACK_HOST, 0, UINT64_MAX, out, 4) == 0);
    ss_tracer_free(t);
}

/* One round at t0 (ns): a draft phase of two forwards, a verify phase of one, a calibrate span;
 * with_kernels: the forwards' kernels too (else CUPTI has not handed them over yet). */
static void add_round(ss_tracer *t, uint64_t t0, bool with_kernels) {
    ss_trace_event ev[3] = {span("draft", "draft", t0, 2000000), span("verify", "target", t0 + 4000000, 1000000),
                            span("calibrate", "draft", t0 + 5100000, 100)};
    for (int i = 0; i < 3; i++) ss_tracer_add(t, &ev[i]);
    if (!with_kernels) return;
    ss_trace_event k[100];
    int n = forward(k, t0);
    n += forward(k + n, t0 + 1000000);
    n += forward(k + n, t0 + 4000000);
    for (int i = 0; i < n; i++) ss_tracer_add(t, &k[i]);
}

/* On CUDA, while a turn runs, a step whose kernels have not arrived keeps the per-layer rows of the
 * last step whose kernels did (and the feed says which step that is); a step with kernels replaces
 * them; a new run starts with none. */
static void test_feed_late_kernels(void) {
    trace_feed f;
    ss_error err = {0};
    CHECK(trace_feed_open(&f, true, &err) == SS_OK);
    if (!f.tracer) return;
    trace_feed_run_begin(&f, false); /* no CUPTI here: the kernel events are added by hand */
    add_round(f.tracer, 10000000, true);
    trace_feed_step(&f);
    CHECK(trace_feed_refresh(&f));
    CHECK(f.step_number == 1 && f.layers_step == 1 && f.last.verify.kernels == 31 && f.last.draft.kernels == 62);
    add_round(f.tracer, 20000000, false);
    trace_feed_step(&f);
    CHECK(trace_feed_refresh(&f));
    CHECK(f.step_number == 2 && f.layers_step == 1 && f.last.start_ns == 20000000);
    CHECK(f.last.verify.kernels == 31 && f.last.verify.n_layers == 3);
    CHECK_NEAR(f.last.verify.us[2], 27.0, 1e-9);
    add_round(f.tracer, 30000000, true);
    trace_feed_step(&f);
    CHECK(trace_feed_refresh(&f) && f.step_number == 3 && f.layers_step == 3);
    trace_feed_run_end(&f);
    trace_feed_run_begin(&f, false);
    add_round(f.tracer, 40000000, false);
    trace_feed_step(&f);
    CHECK(trace_feed_refresh(&f) && f.step_number == 1 && f.layers_step == 0 && f.last.verify.kernels == 0);
    trace_feed_close(&f);
}

int main(void) {
    test_find_step();
    test_group_layers();
    test_host_layers();
    test_bar_cells();
    test_copy_recent();
    test_feed_late_kernels();
    return check_done();
}
