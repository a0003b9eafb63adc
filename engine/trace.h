/* trace.h — timelines of a run: host spans (per step, phase, layer) and GPU activity (kernels and
 * copies, collected with CUPTI) in one bounded ring buffer, exported as Chrome trace-event JSON
 * (opens in Perfetto) and summarised per kernel.
 *
 * Every time is on one clock, ss_trace_now_ns() (CLOCK_MONOTONIC): host spans read it directly and
 * the CUPTI collector has CUPTI stamp its records with it, so host and GPU events line up. Adding
 * events is thread-safe (CUPTI hands its records over on its own thread). Every call that takes a
 * tracer accepts NULL and then does nothing, so a hook costs one branch when tracing is off. */
#ifndef SPECSCOPE_TRACE_H
#define SPECSCOPE_TRACE_H

#include "specscope.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { SS_TRACK_HOST = 0, SS_TRACK_GPU_KERNEL, SS_TRACK_GPU_MEMCPY } ss_trace_track;

#define SS_TRACE_NAME 128
#define SS_TRACE_DEFAULT_CAPACITY (1 << 16) /* events kept (about 14 MB) */

typedef struct {
    char name[SS_TRACE_NAME]; /* the span's name, or the kernel's short name (ss_trace_short_name) */
    char model[8];            /* category: "target", "draft", or "" (GPU events, whole-run spans) */
    char phase[12];           /* "prefill", "decode", "draft", "verify", "calibrate", or "" */
    int layer;                /* -1: not one layer */
    int step;                 /* the tracer's step when the span began; -1 for GPU events */
    uint64_t start_ns, dur_ns;
    ss_trace_track track;
    uint32_t correlation; /* GPU: CUPTI's id of the launching API call (the graph launch's for graph nodes) */
    uint32_t graph_id;    /* GPU: the CUDA graph the node ran in; 0 outside graphs */
    uint64_t bytes;       /* memcpy: bytes copied */
} ss_trace_event;

typedef struct ss_tracer ss_tracer;

uint64_t ss_trace_now_ns(void);

/* A tracer keeping the newest `capacity` events (the oldest are dropped and counted). */
ss_status ss_tracer_new(int capacity, ss_tracer **out, ss_error *err);
void ss_tracer_free(ss_tracer *t);
void ss_tracer_add(ss_tracer *t, const ss_trace_event *ev);
void ss_tracer_add_dropped(ss_tracer *t, long n); /* events lost before they reached the tracer (CUPTI) */
int ss_tracer_count(ss_tracer *t);
long ss_tracer_dropped(ss_tracer *t);
/* The i-th event kept, oldest first; false when i is out of range. */
bool ss_tracer_event(ss_tracer *t, int i, ss_trace_event *out);
/* For a reader on another thread (the TUI): copies the newest events kept on `track` whose start
 * lies in [from_ns, to_ns], at most max of them, into out, oldest first; returns how many. One lock,
 * no allocation, so a reader that copies once per step costs the writer next to nothing. */
int ss_tracer_copy_recent(ss_tracer *t, ss_trace_track track, uint64_t from_ns, uint64_t to_ns, ss_trace_event *out,
                          int max);
/* The step number that spans begun from now on carry. */
void ss_tracer_set_step(ss_tracer *t, int step);

/* The process's tracer, which engine hooks (spec.c, forward.c) record into; NULL: tracing off. */
void ss_tracer_set_active(ss_tracer *t);
ss_tracer *ss_tracer_active(void);

/* A host span: begin stamps the start, end adds the event. The strings must live until end (string
 * literals, in practice). model or phase NULL: those of the last span begun with one on this thread,
 * so a per-layer hook needs not know whose forward it is in. A span never ended adds nothing. */
typedef struct {
    ss_tracer *t;
    const char *name, *model, *phase;
    int layer, step;
    uint64_t start_ns;
} ss_trace_span;

ss_trace_span ss_trace_begin(ss_tracer *t, const char *name, const char *model, const char *phase, int layer);
void ss_trace_end(ss_trace_span *span);

/* The last step among host spans, as the timeline pane and the Lua s:trace() show it. */
#define SS_TRACE_MAX_PHASES 8

typedef struct {
    char phase[12]; /* "prefill", "draft", "verify", "calibrate" */
    char model[8];  /* "target", "draft" */
    uint64_t start_ns, dur_ns;
} ss_trace_phase;

typedef struct {
    bool valid;                /* a step was found */
    int step;                  /* the tracer's step number its last phase began in (ss_tracer_set_step) */
    uint64_t start_ns, end_ns; /* its first phase's start, its last phase's end */
    ss_trace_phase phase[SS_TRACE_MAX_PHASES];
    int n_phases;
} ss_trace_step;

/* Finds the last step in host spans listed oldest first, as the tracer added them (a span is added
 * when it ends; ss_tracer_copy_recent gives such a list). A decoding round adds draft, verify,
 * calibrate, in that order, calibrate always last, so a step is the phase spans after one calibrate
 * through the next; the first step of a generation thereby takes the prefill spans with it.
 * Per-layer spans (layer >= 0) are no phases. finished: the generation ended, so spans after the
 * last calibrate (a generation that stopped after its prefill) are a step too. Pure; false (and
 * out->valid false) when there is no step. */
bool ss_trace_find_last_step(const ss_trace_event *spans, int n, bool finished, ss_trace_step *out);

/* Chrome trace-event JSON: "X" events with ts / dur in microseconds from the tracer's creation, one
 * process for the host (a thread per model) and one for the GPU (kernels, copies), named by "M"
 * metadata events. Fails with a one-line message naming the file when it cannot be written. */
ss_status ss_tracer_write_chrome(ss_tracer *t, const char *path, ss_error *err);
/* Whether a trace could be written to path (its folder exists and is writable, and path is not a
 * folder), checked before a run so that a bad path fails at once; creates nothing. */
ss_status ss_trace_check_path(const char *path, ss_error *err);

/* Per-kernel summary of the GPU events kept: one row per (track, name), largest total first. */
typedef struct {
    char name[SS_TRACE_NAME];
    ss_trace_track track; /* SS_TRACK_GPU_KERNEL or SS_TRACK_GPU_MEMCPY */
    long count;
    double total_us, mean_us;
    double share;        /* of the summed GPU event time */
    double per_step_us;  /* total_us / steps */
    double calls_per_step;
    /* Per step, the part of its events after every event that ended earlier had ended: how much
     * later the GPU's work ended because of this kernel. With PDL a kernel starts early and waits
     * for the one before, so its duration counts that wait too; this does not. Summed over the
     * rows it is at most busy_us / steps. */
    double exposed_per_step_us;
} ss_kernel_row;

typedef struct {
    ss_kernel_row *rows;
    int n;
    int steps;
    double gpu_us;  /* summed durations of every GPU event */
    double busy_us; /* time at least one GPU event ran (overlapping events, e.g. PDL, count once) */
} ss_kernel_summary;

/* steps >= 1 divides the per-step columns. An empty summary (n = 0) when no GPU events were kept. */
ss_status ss_tracer_kernel_summary(ss_tracer *t, int steps, ss_kernel_summary *out, ss_error *err);
void ss_kernel_summary_free(ss_kernel_summary *s);

/* A readable kernel name from a demangled one: the qualified name without return type or parameter
 * list; template arguments kept when the result fits in out, else written "<...>". */
void ss_trace_short_name(const char *demangled, char *out, size_t out_len);

/* GPU activity (engine/cuda/cupti_trace.cu): kernels and copies, including the nodes of CUDA graph
 * launches, into t until stop. SS_EUNSUPPORTED with the reason when CUPTI cannot trace here (built
 * without CUDA, libcupti missing, no device, refused): the caller goes on host-only. One collection
 * at a time. */
ss_status ss_trace_gpu_start(ss_tracer *t, ss_error *err);
/* Waits for the device, hands every record still buffered to the tracer, and stops collecting.
 * Nothing happens when no collection runs. */
ss_status ss_trace_gpu_stop(ss_error *err);
/* Hands the records buffered so far to the tracer without stopping (the work they describe should
 * be finished: records of work still running are dropped). Nothing happens when no collection runs. */
ss_status ss_trace_gpu_flush(ss_error *err);
/* ss_trace_gpu_flush when a collection runs and at least interval_ns passed since the last one
 * (spec.c calls it after each round, when the round's work is finished, so that the interface's
 * timeline shows kernels while a turn runs; errors are left for ss_trace_gpu_stop to report). */
#define SS_TRACE_LIVE_FLUSH_NS 200000000ull
void ss_trace_gpu_flush_every(uint64_t interval_ns);
/* Whether a GPU collection runs (the CUDA backend then launches kernel by kernel, so that the
 * timeline has every kernel: no persistent kernel). */
bool ss_trace_gpu_running(void);

#ifdef __cplusplus
}
#endif
#endif
