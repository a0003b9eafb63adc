/* trace_feed.h — the session's tracer as the interface sees it: a ring the engine's hooks record
 * into while the workbench is open (on CUDA, with every kernel of a chat turn, collected with
 * CUPTI), the last step's timeline copied out of it once per step, and its export. CUPTI's records
 * arrive in flushes (spec.c asks for one after a round at most every SS_TRACE_LIVE_FLUSH_NS), so
 * while a turn runs the per-layer rows are those of the last step whose kernels have arrived. */
#ifndef SPECSCOPE_TRACE_FEED_H
#define SPECSCOPE_TRACE_FEED_H

#include <stdbool.h>

#include "specscope.h"
#include "timeline.h"

/* Host spans looked at per refresh: a step adds 3 to 5 phase spans and, on the CPU, one per layer of
 * each forward (k draft forwards and a verify: a few hundred for deep models), all after the
 * previous step's calibrate span, which must be in the window too. */
#define TRACE_FEED_HOST_COPY 2048
#define TRACE_FEED_KERNEL_COPY 16384 /* kernel events copied per refresh (a step of a large pair) */

typedef struct {
    ss_tracer *tracer;   /* NULL: the timeline is off (the notice says why) */
    bool cuda;           /* the target runs on CUDA: kernels are collected during chat turns */
    bool gpu_running;    /* a CUPTI collection is on */
    bool finished;       /* no generation runs: the spans after the last round are a step too */
    bool stale;          /* a step ended since the last copy */
    int steps;           /* steps of the current run */
    int step_number;     /* the shown step's number in its run */
    int layers_step;     /* CUDA: the step whose kernels the per-layer rows show (0: none yet) */
    tl_step last;        /* the last step's timeline */
    ss_trace_event *host, *kernels; /* copy buffers, allocated once */
    char gpu_error[512]; /* why CUPTI did not collect the last chat turn's kernels, or "" */
} trace_feed;

/* Creates the tracer and makes it the process's active one. On failure the feed stays off and
 * err says why (the interface goes on without a timeline). */
ss_status trace_feed_open(trace_feed *f, bool cuda, ss_error *err);
void trace_feed_close(trace_feed *f);
/* A generation starts / ends (on the interface thread; the worker is idle at the end). gpu: collect
 * its kernels (chat turns; on CUDA only). */
void trace_feed_run_begin(trace_feed *f, bool gpu);
void trace_feed_run_end(trace_feed *f);
/* A step ended: the copy is redone at the next refresh. */
void trace_feed_step(trace_feed *f);
/* Copies the last step out of the tracer when one ended since the last copy; true when it did. */
bool trace_feed_refresh(trace_feed *f);
/* The ring as a Chrome trace (err names the file when it cannot be written). */
ss_status trace_feed_export(trace_feed *f, const char *path, ss_error *err);

#endif
