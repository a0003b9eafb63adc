/* timeline.h — the timeline pane's model: the last step's phases, found among the tracer's host
 * spans, and on CUDA the GPU time per layer of its draft and verify phases, grouped from the kernel
 * events. Pure functions over copied event lists, so they are tested without a run. */
#ifndef SPECSCOPE_TIMELINE_H
#define SPECSCOPE_TIMELINE_H

#include <stdbool.h>
#include <stdint.h>

#include "trace.h"

#define TL_MAX_PHASES 8
#define TL_MAX_LAYERS 256

typedef struct {
    char phase[12];          /* "prefill", "draft", "verify", "calibrate" */
    char model[8];           /* "target", "draft" */
    uint64_t start_ns, dur_ns;
} tl_phase;

typedef struct {
    double us[TL_MAX_LAYERS]; /* GPU time per layer, summed over the phase's forwards */
    int n_layers;             /* the most layers one forward of the phase ran */
    double other_us;          /* embedding, final norm, LM head, sampling */
    int kernels;              /* kernel events the phase held */
} tl_layers;

typedef struct {
    bool valid;               /* a step was found */
    uint64_t start_ns, end_ns; /* its first span's start, its last span's end */
    tl_phase phase[TL_MAX_PHASES];
    int n_phases;
    tl_layers draft, verify;  /* per-layer GPU time (kernels = 0: none were collected) */
    bool kernels_capped;      /* the copy of the step's kernels hit its cap */
} tl_step;

/* The last step among host spans (oldest first, as the tracer added them: a span is added when it
 * ends). A decoding round adds draft, verify, calibrate, in that order, calibrate always last, so a
 * step is the spans after one calibrate through the next; the first step of a generation thereby
 * takes the prefill spans with it. finished: the generation ended, so spans after the last
 * calibrate (a generation that stopped after its prefill) are a step too. False when none is. */
bool timeline_find_step(const ss_trace_event *spans, int n, bool finished, tl_step *out);

/* Groups the kernel events (any order) that start inside [from_ns, to_ns] into layers; see
 * timeline.c for the rule. Reorders kernels (a permutation: the phase's first, by start). */
void timeline_group_layers(ss_trace_event *kernels, int n, uint64_t from_ns, uint64_t to_ns, tl_layers *out);

/* A phase's bar in a row of width cells that spans the step's wall time: the first cell and the
 * number of cells (at least 1 when the phase has any duration and width > 0). */
void timeline_bar_cells(uint64_t step_start, uint64_t step_ns, uint64_t start, uint64_t dur, int width, int *first,
                        int *cells);

#endif
