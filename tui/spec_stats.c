/* spec_stats.c — speculation statistics from the event stream. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spec_stats.h"

void spec_stats_init(spec_stats *s) { memset(s, 0, sizeof *s); }

void spec_stats_free(spec_stats *s) {
    free(s->step_accepted);
    free(s->step_proposed);
    memset(s, 0, sizeof *s);
}

void spec_stats_begin(spec_stats *s, const ss_params *p, bool has_draft) {
    spec_run *r = &s->run;
    memset(r, 0, sizeof *r);
    r->valid = r->live = true;
    r->k = p->k;
    r->speculative = has_draft && p->k > 0;
    r->easyspec = p->easyspec >= 2 ? p->easyspec : 0;
    snprintf(r->groups, sizeof r->groups, "%s", p->easyspec_groups);
    s->runs++;
}

static void record_step(spec_stats *s, const ss_step *st) {
    if (s->n_steps == s->cap_steps) {
        long cap = s->cap_steps ? s->cap_steps * 2 : 1024;
        unsigned char *a = realloc(s->step_accepted, (size_t)cap), *p;
        if (!a) return; /* the sparkline just stops growing */
        s->step_accepted = a;
        if (!(p = realloc(s->step_proposed, (size_t)cap))) return;
        s->step_proposed = p;
        s->cap_steps = cap;
    }
    s->step_accepted[s->n_steps] = (unsigned char)st->accepted;
    s->step_proposed[s->n_steps] = (unsigned char)st->proposed;
    s->n_steps++;
}

void spec_stats_step(spec_stats *s, const ss_step *st) {
    spec_run *r = &s->run;
    if (!r->valid) return;
    r->steps++;
    r->proposed += st->proposed;
    r->accepted += st->accepted;
    r->emitted += st->emitted;
    for (int i = 0; i < st->proposed && i < SS_MAX_K; i++) {
        r->pos_proposed[i]++;
        r->pos_accepted[i] += st->outcome[i] != 0;
    }
    r->ms_draft += st->ms_draft;
    r->ms_verify += st->ms_verify;
    r->ms_calibrate += st->ms_calibrate;
    double ms = r->ms_draft + r->ms_verify + r->ms_calibrate;
    r->tokens_per_s = ms > 0 ? r->emitted / (ms / 1e3) : 0;
    r->mean_accepted_length = (double)r->emitted / r->steps;
    s->session_proposed += st->proposed;
    s->session_accepted += st->accepted;
    record_step(s, st);
}

void spec_stats_begin_script(spec_stats *s) {
    spec_run *r = &s->run;
    memset(r, 0, sizeof *r);
    r->valid = r->live = r->speculative = true;
    r->k = -1;
    s->runs++;
}

void spec_stats_end_script(spec_stats *s, ss_status status, int tokens) {
    s->run.live = false;
    s->run.status = status;
    s->run.generated = tokens;
}

void spec_stats_set_plain(spec_stats *s, double tokens_per_s, const char *how) {
    s->plain_measured = true;
    s->plain_tokens_per_s = tokens_per_s;
    snprintf(s->plain_how, sizeof s->plain_how, "%s", how);
}

void spec_stats_done(spec_stats *s, const ss_stats *st, ss_status status) {
    spec_run *r = &s->run;
    if (!r->valid) return;
    r->live = false;
    r->status = status;
    /* The engine's totals are exact (the steps above were only what had arrived). */
    r->speculative = st->has_draft;
    r->steps = st->steps;
    r->proposed = st->proposed;
    r->accepted = st->accepted;
    memcpy(r->pos_proposed, st->pos_proposed, sizeof r->pos_proposed);
    memcpy(r->pos_accepted, st->pos_accepted, sizeof r->pos_accepted);
    r->ms_draft = st->ms_draft;
    r->ms_verify = st->ms_verify;
    r->ms_calibrate = st->ms_calibrate;
    r->tokens_per_s = st->tokens_per_s;
    r->mean_accepted_length = st->mean_accepted_length;
    r->generated = st->generated;
    bool finished = status == SS_OK || status == SS_ESTOPPED;
    if (!finished || st->generated < 2) return;
    if (r->speculative) {
        if (spec_run_easyspec(r)) s->easyspec_on = *r;
        else s->easyspec_off = *r;
    } else {
        spec_stats_set_plain(s, st->tokens_per_s, "a plain run");
    }
}

void spec_stats_models_changed(spec_stats *s, bool target_changed) {
    if (target_changed) {
        s->plain_measured = false;
        s->plain_tokens_per_s = 0;
        s->plain_how[0] = 0;
    }
    memset(&s->easyspec_off, 0, sizeof s->easyspec_off);
    memset(&s->easyspec_on, 0, sizeof s->easyspec_on);
}

double spec_run_acceptance(const spec_run *r) { return r->proposed > 0 ? (double)r->accepted / r->proposed : -1; }

bool spec_run_easyspec(const spec_run *r) { return r->easyspec >= 2 || r->groups[0]; }

double spec_stats_speedup(const spec_stats *s, const spec_run *r) {
    if (!s->plain_measured || s->plain_tokens_per_s <= 0 || r->tokens_per_s <= 0) return -1;
    return r->tokens_per_s / s->plain_tokens_per_s;
}
