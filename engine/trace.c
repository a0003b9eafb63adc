/* trace.c — the tracer: a ring buffer of timeline events, host spans, Chrome trace export and the
 * per-kernel summary (see trace.h). */
#include <errno.h>
#include <jansson.h>
#include <libgen.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "trace.h"

struct ss_tracer {
    pthread_mutex_t lock;
    ss_trace_event *ring;
    int capacity, head, count; /* head: the oldest event */
    long dropped;
    int step;
    uint64_t origin_ns; /* creation: time zero of the export */
};

static _Atomic(ss_tracer *) active_tracer;

uint64_t ss_trace_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

ss_status ss_tracer_new(int capacity, ss_tracer **out, ss_error *err) {
    *out = NULL;
    if (capacity < 1) return ss_fail(err, SS_EARG, "trace: capacity %d is not a positive number of events", capacity);
    ss_tracer *t = calloc(1, sizeof *t);
    ss_trace_event *ring = malloc((size_t)capacity * sizeof *ring);
    if (!t || !ring) {
        free(t);
        free(ring);
        return ss_fail(err, SS_ENOMEM, "trace: out of memory for %d events", capacity);
    }
    pthread_mutex_init(&t->lock, NULL);
    t->ring = ring;
    t->capacity = capacity;
    t->origin_ns = ss_trace_now_ns();
    *out = t;
    return SS_OK;
}

void ss_tracer_free(ss_tracer *t) {
    if (!t) return;
    ss_tracer *expected = t; /* a freed tracer must not stay the active one */
    atomic_compare_exchange_strong(&active_tracer, &expected, NULL);
    pthread_mutex_destroy(&t->lock);
    free(t->ring);
    free(t);
}

void ss_tracer_add(ss_tracer *t, const ss_trace_event *ev) {
    if (!t) return;
    pthread_mutex_lock(&t->lock);
    if (t->count < t->capacity) {
        t->ring[(t->head + t->count++) % t->capacity] = *ev;
    } else { /* full: the newest replaces the oldest */
        t->ring[t->head] = *ev;
        t->head = (t->head + 1) % t->capacity;
        t->dropped++;
    }
    pthread_mutex_unlock(&t->lock);
}

void ss_tracer_add_dropped(ss_tracer *t, long n) {
    if (!t) return;
    pthread_mutex_lock(&t->lock);
    t->dropped += n;
    pthread_mutex_unlock(&t->lock);
}

int ss_tracer_count(ss_tracer *t) {
    if (!t) return 0;
    pthread_mutex_lock(&t->lock);
    int n = t->count;
    pthread_mutex_unlock(&t->lock);
    return n;
}

long ss_tracer_dropped(ss_tracer *t) {
    if (!t) return 0;
    pthread_mutex_lock(&t->lock);
    long n = t->dropped;
    pthread_mutex_unlock(&t->lock);
    return n;
}

bool ss_tracer_event(ss_tracer *t, int i, ss_trace_event *out) {
    if (!t) return false;
    pthread_mutex_lock(&t->lock);
    bool ok = i >= 0 && i < t->count;
    if (ok) *out = t->ring[(t->head + i) % t->capacity];
    pthread_mutex_unlock(&t->lock);
    return ok;
}

int ss_tracer_copy_recent(ss_tracer *t, ss_trace_track track, uint64_t from_ns, uint64_t to_ns, ss_trace_event *out,
                          int max) {
    if (!t || max < 1) return 0;
    int n = 0;
    pthread_mutex_lock(&t->lock);
    for (int i = t->count - 1; i >= 0 && n < max; i--) { /* newest first, so a cap keeps the newest */
        const ss_trace_event *ev = &t->ring[(t->head + i) % t->capacity];
        if (ev->track == track && ev->start_ns >= from_ns && ev->start_ns <= to_ns) out[n++] = *ev;
    }
    pthread_mutex_unlock(&t->lock);
    for (int i = 0, j = n - 1; i < j; i++, j--) { /* oldest first */
        ss_trace_event tmp = out[i];
        out[i] = out[j];
        out[j] = tmp;
    }
    return n;
}

void ss_tracer_set_step(ss_tracer *t, int step) {
    if (!t) return;
    pthread_mutex_lock(&t->lock);
    t->step = step;
    pthread_mutex_unlock(&t->lock);
}

void ss_tracer_set_active(ss_tracer *t) { atomic_store(&active_tracer, t); }

ss_tracer *ss_tracer_active(void) { return atomic_load(&active_tracer); }

/* ---------------------------------------------------------------- host spans */

/* The model and phase of the last span begun with them on this thread, for spans begun without
 * (forward.c's per-layer spans, which do not know whose forward or which phase they are in). */
static _Thread_local const char *context_model, *context_phase;

ss_trace_span ss_trace_begin(ss_tracer *t, const char *name, const char *model, const char *phase, int layer) {
    ss_trace_span s = {.t = t, .name = name, .model = model, .phase = phase, .layer = layer, .step = -1};
    if (!t) return s;
    if (model) context_model = model;
    else s.model = context_model;
    if (phase) context_phase = phase;
    else s.phase = context_phase;
    pthread_mutex_lock(&t->lock);
    s.step = t->step;
    pthread_mutex_unlock(&t->lock);
    s.start_ns = ss_trace_now_ns();
    return s;
}

static void copy_field(char *dst, size_t cap, const char *src) { snprintf(dst, cap, "%s", src ? src : ""); }

void ss_trace_end(ss_trace_span *span) {
    if (!span->t) return;
    ss_trace_event ev = {.layer = span->layer, .step = span->step, .start_ns = span->start_ns, .track = SS_TRACK_HOST};
    ev.dur_ns = ss_trace_now_ns() - span->start_ns;
    copy_field(ev.name, sizeof ev.name, span->name);
    copy_field(ev.model, sizeof ev.model, span->model);
    copy_field(ev.phase, sizeof ev.phase, span->phase);
    ss_tracer_add(span->t, &ev);
    span->t = NULL; /* ended once */
}

/* ---------------------------------------------------------------- the last step */

static bool is_phase_span(const ss_trace_event *ev) {
    static const char *const phases[] = {"prefill", "draft", "verify", "calibrate"};
    if (ev->track != SS_TRACK_HOST || ev->layer >= 0) return false; /* per-layer spans are not phases */
    for (size_t i = 0; i < sizeof phases / sizeof *phases; i++)
        if (strcmp(ev->phase, phases[i]) == 0) return true;
    return false;
}

static bool is_calibrate(const ss_trace_event *ev) { return is_phase_span(ev) && strcmp(ev->phase, "calibrate") == 0; }

/* The step's phases: the phase spans in (after, upto]. */
static bool collect_phases(const ss_trace_event *spans, int after, int upto, ss_trace_step *out) {
    for (int i = after + 1; i <= upto; i++) {
        const ss_trace_event *ev = &spans[i];
        if (!is_phase_span(ev) || out->n_phases == SS_TRACE_MAX_PHASES) continue;
        ss_trace_phase *p = &out->phase[out->n_phases++];
        memcpy(p->phase, ev->phase, sizeof p->phase);
        memcpy(p->model, ev->model, sizeof p->model);
        p->start_ns = ev->start_ns;
        p->dur_ns = ev->dur_ns;
        out->step = ev->step;
        if (out->n_phases == 1 || ev->start_ns < out->start_ns) out->start_ns = ev->start_ns;
        if (ev->start_ns + ev->dur_ns > out->end_ns) out->end_ns = ev->start_ns + ev->dur_ns;
    }
    out->valid = out->n_phases > 0;
    return out->valid;
}

bool ss_trace_find_last_step(const ss_trace_event *spans, int n, bool finished, ss_trace_step *out) {
    memset(out, 0, sizeof *out);
    int last_cal = -1, prev_cal = -1, last_phase = -1;
    for (int i = 0; i < n; i++) {
        if (!is_phase_span(&spans[i])) continue;
        last_phase = i;
        if (is_calibrate(&spans[i])) prev_cal = last_cal, last_cal = i;
    }
    if (finished && last_phase > last_cal) return collect_phases(spans, last_cal, last_phase, out);
    if (last_cal < 0) return false; /* mid-round: the round has not ended yet */
    return collect_phases(spans, prev_cal, last_cal, out);
}

/* ---------------------------------------------------------------- snapshot */

/* A copy of the events kept, oldest first, so the export and the summary run without the lock. */
static ss_trace_event *snapshot(ss_tracer *t, int *n, long *dropped, ss_error *err) {
    pthread_mutex_lock(&t->lock);
    ss_trace_event *evs = malloc((size_t)(t->count ? t->count : 1) * sizeof *evs);
    for (int i = 0; evs && i < t->count; i++) evs[i] = t->ring[(t->head + i) % t->capacity];
    *n = t->count;
    if (dropped) *dropped = t->dropped;
    pthread_mutex_unlock(&t->lock);
    if (!evs) ss_fail(err, SS_ENOMEM, "trace: out of memory for a copy of %d events", *n);
    return evs;
}

/* ---------------------------------------------------------------- Chrome trace export */

enum { PID_HOST = 1, PID_GPU = 2 };

typedef struct {
    int pid, tid;
    const char *thread;
} track_id;

static track_id track_of(const ss_trace_event *ev) {
    if (ev->track == SS_TRACK_GPU_KERNEL) return (track_id){PID_GPU, 1, "kernels"};
    if (ev->track == SS_TRACK_GPU_MEMCPY) return (track_id){PID_GPU, 2, "copies"};
    if (strcmp(ev->model, "target") == 0) return (track_id){PID_HOST, 1, "target"};
    if (strcmp(ev->model, "draft") == 0) return (track_id){PID_HOST, 2, "draft"};
    return (track_id){PID_HOST, 3, "run"};
}

static const char *category_of(const ss_trace_event *ev) {
    if (ev->track == SS_TRACK_GPU_KERNEL) return "kernel";
    if (ev->track == SS_TRACK_GPU_MEMCPY) return "memcpy";
    return ev->model[0] ? ev->model : "run";
}

static json_t *event_args(const ss_trace_event *ev) {
    json_t *args = json_object();
    if (ev->track == SS_TRACK_HOST) {
        if (ev->phase[0]) json_object_set_new(args, "phase", json_string(ev->phase));
        if (ev->layer >= 0) json_object_set_new(args, "layer", json_integer(ev->layer));
        if (ev->step >= 0) json_object_set_new(args, "step", json_integer(ev->step));
        return args;
    }
    json_object_set_new(args, "correlation", json_integer(ev->correlation));
    if (ev->graph_id) json_object_set_new(args, "graph_id", json_integer(ev->graph_id));
    if (ev->track == SS_TRACK_GPU_MEMCPY) json_object_set_new(args, "bytes", json_integer((json_int_t)ev->bytes));
    return args;
}

static json_t *metadata(const char *what, int pid, int tid, const char *name) {
    json_t *m = json_pack("{s:s, s:s, s:i, s:{s:s}}", "name", what, "ph", "M", "pid", pid, "args", "name", name);
    if (tid) json_object_set_new(m, "tid", json_integer(tid));
    return m;
}

/* Names the processes and the threads the events use (tid 1..3 per process). */
static void append_metadata(json_t *list, const bool used[3][4], const ss_trace_event *evs, int n) {
    static const char *const process[3] = {NULL, "specscope host", "GPU"};
    for (int pid = PID_HOST; pid <= PID_GPU; pid++) {
        bool any = used[pid][1] || used[pid][2] || used[pid][3];
        if (any) json_array_append_new(list, metadata("process_name", pid, 0, process[pid]));
        for (int tid = 1; tid <= 3; tid++) {
            if (!used[pid][tid]) continue;
            for (int i = 0; i < n; i++) { /* the thread's name from its first event */
                track_id id = track_of(&evs[i]);
                if (id.pid != pid || id.tid != tid) continue;
                json_array_append_new(list, metadata("thread_name", pid, tid, id.thread));
                break;
            }
        }
    }
}

static json_t *chrome_json(const ss_trace_event *evs, int n, long dropped, uint64_t origin_ns) {
    for (int i = 0; i < n; i++)
        if (evs[i].start_ns < origin_ns) origin_ns = evs[i].start_ns;
    json_t *list = json_array();
    bool used[3][4] = {{false}};
    for (int i = 0; i < n; i++) {
        const ss_trace_event *ev = &evs[i];
        track_id id = track_of(ev);
        used[id.pid][id.tid] = true;
        json_array_append_new(list, json_pack("{s:s, s:s, s:s, s:f, s:f, s:i, s:i, s:o}", "name", ev->name, "cat",
                                              category_of(ev), "ph", "X", "ts", (double)(ev->start_ns - origin_ns) / 1e3,
                                              "dur", (double)ev->dur_ns / 1e3, "pid", id.pid, "tid", id.tid, "args",
                                              event_args(ev)));
    }
    append_metadata(list, used, evs, n);
    return json_pack("{s:o, s:s, s:{s:I, s:s}}", "traceEvents", list, "displayTimeUnit", "ms", "otherData",
                     "dropped_events", (json_int_t)dropped, "clock", "CLOCK_MONOTONIC");
}

ss_status ss_tracer_write_chrome(ss_tracer *t, const char *path, ss_error *err) {
    if (!t) return ss_fail(err, SS_EARG, "trace: no tracer to write to '%s'", path);
    int n;
    long dropped;
    ss_trace_event *evs = snapshot(t, &n, &dropped, err);
    if (!evs) return err->status;
    json_t *root = chrome_json(evs, n, dropped, t->origin_ns);
    free(evs);
    if (!root) return ss_fail(err, SS_ENOMEM, "trace: out of memory building the JSON for '%s'", path);
    FILE *f = fopen(path, "w");
    if (!f) {
        int e = errno;
        json_decref(root);
        return ss_fail(err, SS_EIO, "trace: cannot write '%s': %s", path, strerror(e));
    }
    int bad = json_dumpf(root, f, JSON_COMPACT);
    int e = ferror(f) ? errno : 0;
    bad |= fclose(f) != 0;
    json_decref(root);
    if (bad) {
        unlink(path); /* no half-written trace left behind */
        return ss_fail(err, SS_EIO, "trace: cannot write '%s': %s", path, e ? strerror(e) : "write failed");
    }
    return SS_OK;
}

ss_status ss_trace_check_path(const char *path, ss_error *err) {
    if (!path || !*path) return ss_fail(err, SS_EARG, "trace: an empty file name");
    struct stat sb;
    if (stat(path, &sb) == 0) {
        if (S_ISDIR(sb.st_mode)) return ss_fail(err, SS_EIO, "trace: cannot write '%s': it is a folder", path);
        if (access(path, W_OK) != 0) return ss_fail(err, SS_EIO, "trace: cannot write '%s': %s", path, strerror(errno));
        return SS_OK;
    }
    char *copy = strdup(path);
    if (!copy) return ss_fail(err, SS_ENOMEM, "trace: out of memory");
    int rc = access(dirname(copy), W_OK), e = errno;
    free(copy);
    if (rc != 0) return ss_fail(err, SS_EIO, "trace: cannot write '%s': %s", path, strerror(e));
    return SS_OK;
}

/* ---------------------------------------------------------------- per-kernel summary */

typedef struct {
    const char *name;
    ss_trace_track track;
    uint64_t start_ns, dur_ns;
    uint64_t exposed_ns; /* ss_kernel_row.exposed_per_step_us */
} gpu_item;

static int by_track_name(const void *a, const void *b) {
    const gpu_item *x = a, *y = b;
    if (x->track != y->track) return (int)x->track - (int)y->track;
    return strcmp(x->name, y->name);
}

static int by_start(const void *a, const void *b) {
    const gpu_item *x = a, *y = b;
    return (x->start_ns > y->start_ns) - (x->start_ns < y->start_ns);
}

static int by_end(const void *a, const void *b) {
    const gpu_item *x = a, *y = b;
    uint64_t ex = x->start_ns + x->dur_ns, ey = y->start_ns + y->dur_ns;
    return (ex > ey) - (ex < ey);
}

/* Each item's exposed time: its end less the later of its start and the last end before it. */
static void mark_exposed(gpu_item *items, int n) {
    qsort(items, (size_t)n, sizeof *items, by_end);
    uint64_t last_end = 0;
    for (int i = 0; i < n; i++) {
        uint64_t s = items[i].start_ns, e = s + items[i].dur_ns, from = s > last_end ? s : last_end;
        items[i].exposed_ns = e > from ? e - from : 0;
        if (e > last_end) last_end = e;
    }
}

static int by_total_desc(const void *a, const void *b) {
    const ss_kernel_row *x = a, *y = b;
    if (x->total_us != y->total_us) return x->total_us < y->total_us ? 1 : -1;
    return strcmp(x->name, y->name);
}

/* Length of the union of the intervals (sorted by start here). */
static uint64_t busy_ns(gpu_item *items, int n) {
    qsort(items, (size_t)n, sizeof *items, by_start);
    uint64_t busy = 0, cur_start = 0, cur_end = 0;
    for (int i = 0; i < n; i++) {
        uint64_t s = items[i].start_ns, e = s + items[i].dur_ns;
        if (i == 0 || s > cur_end) {
            busy += cur_end - cur_start;
            cur_start = s, cur_end = e;
        } else if (e > cur_end) {
            cur_end = e;
        }
    }
    return busy + (cur_end - cur_start);
}

/* One row per run of equal (track, name) in items (sorted by_track_name). */
static int group_rows(const gpu_item *items, int n, int steps, double gpu_us, ss_kernel_row *rows) {
    int nrows = 0;
    for (int i = 0; i < n;) {
        ss_kernel_row *r = &rows[nrows++];
        memset(r, 0, sizeof *r);
        copy_field(r->name, sizeof r->name, items[i].name);
        r->track = items[i].track;
        int j = i;
        for (; j < n && items[j].track == items[i].track && strcmp(items[j].name, items[i].name) == 0; j++) {
            r->total_us += (double)items[j].dur_ns / 1e3;
            r->exposed_per_step_us += (double)items[j].exposed_ns / 1e3 / steps;
        }
        r->count = j - i;
        r->mean_us = r->total_us / (double)r->count;
        r->share = gpu_us > 0 ? r->total_us / gpu_us : 0;
        r->per_step_us = r->total_us / steps;
        r->calls_per_step = (double)r->count / steps;
        i = j;
    }
    return nrows;
}

ss_status ss_tracer_kernel_summary(ss_tracer *t, int steps, ss_kernel_summary *out, ss_error *err) {
    memset(out, 0, sizeof *out);
    if (!t) return ss_fail(err, SS_EARG, "trace: no tracer to summarise");
    if (steps < 1) return ss_fail(err, SS_EARG, "trace: summary over %d steps (at least 1)", steps);
    int n;
    ss_trace_event *evs = snapshot(t, &n, NULL, err);
    if (!evs) return err->status;
    gpu_item *items = malloc((size_t)(n ? n : 1) * sizeof *items);
    ss_kernel_row *rows = malloc((size_t)(n ? n : 1) * sizeof *rows);
    if (!items || !rows) {
        free(evs), free(items), free(rows);
        return ss_fail(err, SS_ENOMEM, "trace: out of memory summarising %d events", n);
    }
    int m = 0;
    double gpu_us = 0;
    for (int i = 0; i < n; i++) {
        if (evs[i].track == SS_TRACK_HOST) continue;
        items[m++] = (gpu_item){evs[i].name, evs[i].track, evs[i].start_ns, evs[i].dur_ns, 0};
        gpu_us += (double)evs[i].dur_ns / 1e3;
    }
    mark_exposed(items, m);
    qsort(items, (size_t)m, sizeof *items, by_track_name);
    out->n = group_rows(items, m, steps, gpu_us, rows);
    qsort(rows, (size_t)out->n, sizeof *rows, by_total_desc);
    out->rows = rows;
    out->steps = steps;
    out->gpu_us = gpu_us;
    out->busy_us = (double)busy_ns(items, m) / 1e3;
    free(items);
    free(evs);
    return SS_OK;
}

void ss_kernel_summary_free(ss_kernel_summary *s) {
    free(s->rows);
    memset(s, 0, sizeof *s);
}

/* ---------------------------------------------------------------- kernel names */

/* Index of the '(' opening the parameter list: the first at bracket depth 0 that is not the
 * "(anonymous namespace)" of a qualified name; len when there is none (an unmangled C name). */
static size_t params_at(const char *s, size_t len) {
    static const char anon[] = "(anonymous namespace)";
    int depth = 0;
    for (size_t i = 0; i < len; i++) {
        if (strncmp(s + i, anon, sizeof anon - 1) == 0) {
            i += sizeof anon - 2;
        } else if (s[i] == '<') {
            depth++;
        } else if (s[i] == '>' && depth > 0) {
            depth--;
        } else if (s[i] == '(' && depth == 0) {
            return i;
        }
    }
    return len;
}

/* Start of the name proper: after the last space at bracket depth 0 (the return type's end). */
static size_t name_start(const char *s, size_t end) {
    int depth = 0;
    size_t start = 0;
    for (size_t i = 0; i < end; i++) {
        if (s[i] == '<' || s[i] == '(') depth++;
        else if ((s[i] == '>' || s[i] == ')') && depth > 0) depth--;
        else if (s[i] == ' ' && depth == 0) start = i + 1;
    }
    return start;
}

void ss_trace_short_name(const char *demangled, char *out, size_t out_len) {
    if (!out_len) return;
    size_t len = strlen(demangled), end = params_at(demangled, len), start = name_start(demangled, end);
    const char *s = demangled + start;
    size_t n = end - start, o = 0;
    if (n < out_len) { /* fits with its template arguments */
        memcpy(out, s, n);
        out[n] = 0;
        return;
    }
    int depth = 0;
    for (size_t i = 0; i < n && o + 1 < out_len; i++) { /* template arguments become "<...>" */
        if (s[i] == '<' && depth++ == 0) {
            for (const char *p = "<...>"; *p && o + 1 < out_len; p++) out[o++] = *p;
        } else if (s[i] == '>' && depth > 0) {
            depth--;
        } else if (depth == 0) {
            out[o++] = s[i];
        }
    }
    out[o] = 0;
}

void ss_trace_gpu_flush_every(uint64_t interval_ns) {
    static _Atomic uint64_t last_ns;
    if (!ss_trace_gpu_running()) return;
    uint64_t now = ss_trace_now_ns(), last = atomic_load(&last_ns);
    if (now - last < interval_ns || !atomic_compare_exchange_strong(&last_ns, &last, now)) return;
    ss_error err = {0};
    ss_trace_gpu_flush(&err);
}

/* ---------------------------------------------------------------- builds without CUDA */

#ifndef SPECSCOPE_HAVE_CUDA
ss_status ss_trace_gpu_start(ss_tracer *t, ss_error *err) {
    (void)t;
    return ss_fail(err, SS_EUNSUPPORTED, "trace: kernel timelines need the CUDA build");
}

ss_status ss_trace_gpu_stop(ss_error *err) {
    (void)err;
    return SS_OK;
}

ss_status ss_trace_gpu_flush(ss_error *err) {
    (void)err;
    return SS_OK;
}

bool ss_trace_gpu_running(void) { return false; }
#endif
