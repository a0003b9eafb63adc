/* spec_stats.h — what the speculation pane shows, gathered from the event stream: the current (or
 * last) run, live from its steps and exact once its DONE arrives; the last finished run with
 * EasySpec off and with it on; the measured plain-decoding rate; acceptance per step over the
 * whole session for the sparkline. Numbers only ever come from the engine's own measurements. */
#ifndef SPECSCOPE_SPEC_STATS_H
#define SPECSCOPE_SPEC_STATS_H

#include <stdbool.h>

#include "specscope.h"

typedef struct {
    bool valid;        /* a run began */
    bool live;         /* no DONE yet: figures come from the steps so far */
    bool speculative;  /* drafting was on (a draft and k > 0) */
    int k;             /* k the run asked for */
    int easyspec;      /* EasySpec group size of the run (0: off) */
    char groups[128];  /* explicit EasySpec groups of the run, when given */
    long steps, proposed, accepted, emitted;
    long pos_proposed[SS_MAX_K], pos_accepted[SS_MAX_K];
    double ms_draft, ms_verify, ms_calibrate;
    double tokens_per_s;     /* live: emitted / step time; done: the engine's figure */
    double mean_accepted_length;
    int generated;
    ss_status status;  /* of the DONE */
} spec_run;

typedef struct {
    spec_run run;              /* the current or last run */
    spec_run easyspec_off;     /* the last finished speculative run without EasySpec */
    spec_run easyspec_on;      /* ... and with it */
    bool plain_measured;
    double plain_tokens_per_s;
    char plain_how[48];        /* "first plain run", "/baseline" */
    int runs;                  /* runs begun in the session */
    /* Per step over the session, for the sparkline. */
    unsigned char *step_accepted, *step_proposed;
    long n_steps, cap_steps;
    long session_proposed, session_accepted;
} spec_stats;

void spec_stats_init(spec_stats *s);
void spec_stats_free(spec_stats *s);
/* A run begins with these params; speculative: the session has a draft (model or ngram). */
void spec_stats_begin(spec_stats *s, const ss_params *p, bool has_draft);
/* A script's generations: their params are the script's own, so only the steps tell (k = -1). */
void spec_stats_begin_script(spec_stats *s);
void spec_stats_step(spec_stats *s, const ss_step *step);
/* The run ended with the engine's exact totals. A finished non-speculative run that generated at
 * least two tokens measures the plain-decoding rate. */
void spec_stats_done(spec_stats *s, const ss_stats *st, ss_status status);
/* A script ended after its generations produced `tokens` tokens: its run keeps the figures its
 * steps gave. */
void spec_stats_end_script(spec_stats *s, ss_status status, int tokens);
/* A plain decode run apart from the chat (/baseline) measured the plain rate. */
void spec_stats_set_plain(spec_stats *s, double tokens_per_s, const char *how);
/* The models changed: the EasySpec comparison is of another pair now, and when the target
 * changed its plain rate is no longer known. */
void spec_stats_models_changed(spec_stats *s, bool target_changed);

double spec_run_acceptance(const spec_run *r); /* accepted / proposed, or -1 when none proposed */
bool spec_run_easyspec(const spec_run *r);
/* Speedup of run r over the measured plain rate, or -1 when that is not measured. */
double spec_stats_speedup(const spec_stats *s, const spec_run *r);

#endif
