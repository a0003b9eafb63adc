/* trace_feed.c — the interface's tracer (see trace_feed.h). The worker thread writes the ring;
 * this side reads it only through ss_tracer_copy_recent, under the tracer's lock, once per step. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trace.h"
#include "trace_feed.h"

ss_status trace_feed_open(trace_feed *f, bool cuda, ss_error *err) {
    memset(f, 0, sizeof *f);
    f->cuda = cuda;
    f->finished = true;
    f->host = malloc(TRACE_FEED_HOST_COPY * sizeof *f->host);
    f->kernels = malloc(TRACE_FEED_KERNEL_COPY * sizeof *f->kernels);
    ss_status st = f->host && f->kernels ? ss_tracer_new(SS_TRACE_DEFAULT_CAPACITY, &f->tracer, err)
                                         : ss_fail(err, SS_ENOMEM, "timeline: out of memory for its copy buffers");
    if (st) {
        trace_feed_close(f);
        return st;
    }
    ss_tracer_set_active(f->tracer);
    return SS_OK;
}

void trace_feed_close(trace_feed *f) {
    if (f->gpu_running) {
        ss_error err = {0};
        ss_trace_gpu_stop(&err);
    }
    ss_tracer_free(f->tracer); /* no longer the active one */
    free(f->host);
    free(f->kernels);
    memset(f, 0, sizeof *f);
}

void trace_feed_run_begin(trace_feed *f, bool gpu) {
    if (!f->tracer) return;
    f->finished = false;
    f->steps = 0;
    f->layers_step = 0;
    if (!gpu || !f->cuda || f->gpu_running) return;
    ss_error err = {0};
    f->gpu_running = ss_trace_gpu_start(f->tracer, &err) == SS_OK;
    snprintf(f->gpu_error, sizeof f->gpu_error, "%s", f->gpu_running ? "" : err.msg);
}

void trace_feed_run_end(trace_feed *f) {
    if (!f->tracer) return;
    if (f->gpu_running) { /* CUPTI hands its buffered kernel records over here */
        ss_error err = {0};
        if (ss_trace_gpu_stop(&err)) snprintf(f->gpu_error, sizeof f->gpu_error, "%s", err.msg);
        f->gpu_running = false;
    }
    f->finished = true;
    f->stale = true;
}

void trace_feed_step(trace_feed *f) {
    f->steps++;
    f->stale = true;
}

/* The kernels of the step's draft and verify phases, copied once for the whole step. */
static void group_kernels(trace_feed *f, tl_step *s) {
    int n = ss_tracer_copy_recent(f->tracer, SS_TRACK_GPU_KERNEL, s->start_ns, s->end_ns, f->kernels,
                                  TRACE_FEED_KERNEL_COPY);
    s->kernels_capped = n == TRACE_FEED_KERNEL_COPY;
    for (int i = 0; i < s->n_phases; i++) {
        const tl_phase *p = &s->phase[i];
        tl_layers *out = strcmp(p->phase, "draft") == 0 ? &s->draft : strcmp(p->phase, "verify") == 0 ? &s->verify : NULL;
        /* grouping permutes the buffer; every phase's kernels stay in it */
        if (out) timeline_group_layers(f->kernels, n, p->start_ns, p->start_ns + p->dur_ns, out);
    }
}

/* The CPU's layer spans of the step's draft and verify phases. */
static void host_layers(const trace_feed *f, int n, tl_step *s) {
    for (int i = 0; i < s->n_phases; i++) {
        const tl_phase *p = &s->phase[i];
        tl_layers *out = strcmp(p->phase, "draft") == 0 ? &s->draft : strcmp(p->phase, "verify") == 0 ? &s->verify : NULL;
        if (out) timeline_host_layers(f->host, n, p, out);
    }
}

bool trace_feed_refresh(trace_feed *f) {
    if (!f->tracer || !f->stale) return false;
    f->stale = false;
    int n = ss_tracer_copy_recent(f->tracer, SS_TRACK_HOST, 0, UINT64_MAX, f->host, TRACE_FEED_HOST_COPY);
    tl_step s;
    if (!timeline_find_step(f->host, n, f->finished, &s)) return false;
    if (f->cuda) {
        group_kernels(f, &s);
        if (s.draft.kernels || s.verify.kernels) {
            f->layers_step = f->steps;
        } else if (f->layers_step > 0) { /* not flushed yet: keep the rows of the last step that was */
            s.draft = f->last.draft;
            s.verify = f->last.verify;
        }
    } else {
        host_layers(f, n, &s);
    }
    f->last = s;
    f->step_number = f->steps;
    return true;
}

ss_status trace_feed_export(trace_feed *f, const char *path, ss_error *err) {
    if (!f->tracer) return ss_fail(err, SS_EARG, "trace: the timeline is off in this session; nothing to write to '%s'", path);
    if (ss_trace_check_path(path, err)) return err->status;
    return ss_tracer_write_chrome(f->tracer, path, err);
}
