/* timeline.h — the timeline pane's model: the last step's phases, found among the tracer's host
 * spans, and on CUDA the GPU time per layer of its draft and verify phases, grouped from the kernel
 * events. Pure functions over copied event lists, so they are tested without a run. */
#ifndef SPECSCOPE_TIMELINE_H
#define SPECSCOPE_TIMELINE_H

#include <stdbool.h>
#include <stdint.h>

#include "trace.h"

#define TL_MAX_PHASES SS_TRACE_MAX_PHASES
#define TL_MAX_LAYERS 256

typedef ss_trace_phase tl_phase; /* "prefill", "draft", "verify", "calibrate"; model "target" / "draft" */

typedef struct {
    double us[TL_MAX_LAYERS]; /* time per layer, summed over the phase's forwards */
    int n_layers;             /* the most layers one forward of the phase ran */
    double other_us;          /* the rest of the phase: embedding, final norm, LM head, sampling */
    int kernels;              /* events the phase held: kernels (CUDA), or layer spans (CPU) */
} tl_layers;

typedef struct {
    bool valid;               /* a step was found */
    uint64_t start_ns, end_ns; /* its first span's start, its last span's end */
    tl_phase phase[TL_MAX_PHASES];
    int n_phases;
    tl_layers draft, verify;  /* per-layer time (kernels = 0: none were collected) */
    bool kernels_capped;      /* the copy of the step's kernels hit its cap */
} tl_step;

/* The last step among host spans (oldest first): ss_trace_find_last_step (engine/trace.h, the rule
 * is there), its phases copied into out with no layers yet. False when there is none. */
bool timeline_find_step(const ss_trace_event *spans, int n, bool finished, tl_step *out);

/* Groups the kernel events (any order) that start inside [from_ns, to_ns] into layers; see
 * timeline.c for the rule. Reorders kernels (a permutation: the phase's first, by start). */
void timeline_group_layers(ss_trace_event *kernels, int n, uint64_t from_ns, uint64_t to_ns, tl_layers *out);

/* The CPU's per-layer time of a phase: the host layer spans (forward.c records one per layer, or per
 * EasySpec group under its first layer) inside the phase's span, summed per layer; other_us is the
 * phase's time outside them. */
void timeline_host_layers(const ss_trace_event *spans, int n, const tl_phase *phase, tl_layers *out);

/* A phase's bar in a row of width cells that spans the step's wall time: the first cell and the
 * number of cells (at least 1 when the phase has any duration and width > 0). */
void timeline_bar_cells(uint64_t step_start, uint64_t step_ns, uint64_t start, uint64_t dur, int width, int *first,
                        int *cells);

#endif
