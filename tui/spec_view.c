/* spec_view.c — the speculation pane's lines. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "meters.h"
#include "spec_view.h"

#define LABEL_W 11

typedef struct {
    styled_text *t;
    int width, bar_w;
    bool unicode;
    const char *dot; /* separator between settings */
} view;

static void label(view *v, const char *text) { styled_printf(v->t, TH_LABEL, "%-*s", LABEL_W, text); }

static void bar(view *v, double fraction) {
    wchar_t buf[128];
    int w = v->bar_w < 127 ? v->bar_w : 127;
    int filled = meter_bar(buf, w, fraction, v->unicode);
    wchar_t rest = buf[filled];
    buf[filled] = 0;
    styled_addw(v->t, TH_BAR, buf);
    buf[filled] = rest;
    styled_addw(v->t, TH_BAR_EMPTY, buf + filled);
}

static void settings_line(view *v, const ss_params *p, const char *draft_kind) {
    label(v, "next run");
    if (strcmp(draft_kind, "none") == 0) {
        styled_printf(v->t, TH_NORMAL, "plain decoding (no draft: /draft DIR|ngram)");
    } else if (p->k <= 0) {
        styled_printf(v->t, TH_NORMAL, "plain decoding (k 0)%sdraft %s", v->dot, draft_kind);
    } else {
        styled_printf(v->t, TH_VALUE, "k %d", p->k);
        styled_printf(v->t, TH_NORMAL, "%sdraft %s%sEasySpec ", v->dot, draft_kind, v->dot);
        if (p->easyspec_groups[0]) styled_printf(v->t, TH_VALUE, "%s", p->easyspec_groups);
        else if (p->easyspec >= 2) styled_printf(v->t, TH_VALUE, "G=%d", p->easyspec);
        else styled_printf(v->t, TH_VALUE, "off");
    }
    styled_printf(v->t, TH_NORMAL, "%stemp %g", v->dot, p->sampling.temperature);
    styled_newline(v->t);
}

static const char *run_state(const spec_run *r) {
    if (r->live) return "running";
    return r->status == SS_OK ? "done" : r->status == SS_ESTOPPED ? "stopped" : "failed";
}

static void run_line(view *v, const spec_stats *s) {
    const spec_run *r = &s->run;
    label(v, "last run");
    long tokens = r->live ? r->emitted + (r->steps > 0) : r->generated;
    styled_printf(v->t, TH_VALUE, "#%d %s", s->runs, run_state(r));
    styled_printf(v->t, TH_NORMAL, "%s", r->k < 0 ? " (script)" : "");
    if (r->k > 0 && r->speculative) styled_printf(v->t, TH_NORMAL, "%sk %d", v->dot, r->k);
    styled_printf(v->t, TH_NORMAL, "%s%ld token%s%s%ld step%s", v->dot, tokens, tokens == 1 ? "" : "s", v->dot,
                  r->steps, r->steps == 1 ? "" : "s");
    styled_newline(v->t);
}

static void acceptance_lines(view *v, const spec_run *r) {
    label(v, "acceptance");
    double acc = spec_run_acceptance(r);
    if (acc < 0) {
        styled_printf(v->t, TH_NORMAL, "no draft tokens proposed yet\n");
    } else {
        bar(v, acc);
        styled_printf(v->t, TH_VALUE, " %.3f", acc);
        styled_printf(v->t, TH_LABEL, " (%ld/%ld)\n", r->accepted, r->proposed);
    }
    for (int i = 0; i < SS_MAX_K; i++) {
        bool asked = r->k > 0 ? i < r->k : r->pos_proposed[i] > 0;
        if (!asked) continue;
        char name[16];
        snprintf(name, sizeof name, "  pos %d", i + 1);
        label(v, name);
        if (r->pos_proposed[i] == 0) {
            styled_printf(v->t, TH_LABEL, "not reached\n");
            continue;
        }
        double f = (double)r->pos_accepted[i] / r->pos_proposed[i];
        bar(v, f);
        styled_printf(v->t, TH_VALUE, " %.3f", f);
        styled_printf(v->t, TH_LABEL, " (%ld/%ld)\n", r->pos_accepted[i], r->pos_proposed[i]);
    }
    if (r->steps == 0) return;
    label(v, "mean len");
    styled_printf(v->t, TH_VALUE, "%.2f", r->mean_accepted_length);
    styled_printf(v->t, TH_NORMAL, " tokens per target step\n");
}

static void speed_lines(view *v, const spec_stats *s) {
    const spec_run *r = &s->run;
    label(v, "tokens/s");
    if (r->steps == 0) {
        styled_printf(v->t, TH_LABEL, "no decode steps yet\n");
        return;
    }
    styled_printf(v->t, TH_VALUE, "%.1f", r->tokens_per_s);
    styled_printf(v->t, TH_LABEL, "%s\n", r->live ? " (so far)" : "");
    label(v, "speedup");
    double sp = spec_stats_speedup(s, r);
    if (!r->speculative) {
        styled_printf(v->t, TH_NORMAL, "1.00x: this run is plain decoding\n");
    } else if (sp < 0) {
        styled_printf(v->t, TH_NOTICE, "not measured yet (/baseline or /k 0)\n");
    } else {
        styled_printf(v->t, TH_VALUE, "%.2fx", sp);
        styled_printf(v->t, TH_LABEL, " over plain %.1f tok/s (%s)\n", s->plain_tokens_per_s, s->plain_how);
    }
}

static void time_lines(view *v, const spec_run *r) {
    double parts[3] = {r->ms_draft, r->ms_verify, r->ms_calibrate};
    double total = parts[0] + parts[1] + parts[2];
    label(v, "time");
    if (total <= 0) {
        styled_printf(v->t, TH_LABEL, "no steps yet\n");
        return;
    }
    int cells[3];
    meter_split(parts, 3, v->bar_w, cells);
    static const theme_role roles[3] = {TH_BAR, TH_VERIFY, TH_CALIBRATE};
    const wchar_t *glyphs = v->unicode ? L"█▓░" : L"#=-";
    for (int i = 0; i < 3; i++)
        for (int c = 0; c < cells[i]; c++) styled_addw(v->t, roles[i], (wchar_t[]){glyphs[i], 0});
    styled_printf(v->t, TH_LABEL, " %.0f/%.0f/%.0f%%\n", 100 * parts[0] / total, 100 * parts[1] / total,
                  100 * parts[2] / total);
    label(v, "");
    styled_printf(v->t, TH_BAR, "draft %.1f", parts[0]);
    styled_printf(v->t, TH_VERIFY, "  verify %.1f", parts[1]);
    styled_printf(v->t, TH_CALIBRATE, "  calibrate %.1f", parts[2]);
    styled_printf(v->t, TH_LABEL, " ms\n");
}

static void session_line(view *v, const spec_stats *s) {
    label(v, "session");
    double *vals = malloc((size_t)(v->bar_w > 0 ? v->bar_w : 1) * sizeof *vals);
    wchar_t *spark = malloc((size_t)(v->bar_w + 1) * sizeof *spark);
    int n = vals && spark ? meter_buckets(s->step_accepted, s->step_proposed, s->n_steps, v->bar_w, vals) : 0;
    if (n > 0) {
        meter_sparkline(spark, vals, n, v->unicode);
        styled_addw(v->t, TH_SPARK, spark);
    }
    double acc = s->session_proposed > 0 ? (double)s->session_accepted / s->session_proposed : 0;
    if (s->session_proposed > 0 && v->width - LABEL_W - n >= 22)
        styled_printf(v->t, TH_LABEL, " %.3f over %ld step%s", acc, s->n_steps, s->n_steps == 1 ? "" : "s");
    else if (s->session_proposed > 0)
        styled_printf(v->t, TH_LABEL, " %.3f", acc);
    else
        styled_printf(v->t, TH_LABEL, "acceptance per step appears here");
    styled_newline(v->t);
    free(vals);
    free(spark);
}

/* One row of the EasySpec table: a figure of each side, or "-" where that side has no run. */
static void easyspec_row(view *v, const spec_stats *s, const char *name, int which) {
    const spec_run *side[2] = {&s->easyspec_off, &s->easyspec_on};
    styled_printf(v->t, TH_LABEL, "  %-14s", name);
    for (int i = 0; i < 2; i++) {
        const spec_run *r = side[i];
        char cell[32] = "-";
        if (r->valid) {
            double sp = spec_stats_speedup(s, r);
            switch (which) {
            case 0: snprintf(cell, sizeof cell, "%.3f", spec_run_acceptance(r)); break;
            case 1: snprintf(cell, sizeof cell, "%.2f", r->mean_accepted_length); break;
            case 2: snprintf(cell, sizeof cell, "%.2f", r->steps ? r->ms_draft / r->steps : 0); break;
            case 3: snprintf(cell, sizeof cell, "%.1f", r->tokens_per_s); break;
            default:
                if (sp > 0) snprintf(cell, sizeof cell, "%.2fx", sp);
                break;
            }
        }
        styled_printf(v->t, TH_VALUE, "%-14s", cell);
    }
    styled_newline(v->t);
}

static void easyspec_table(view *v, const spec_stats *s) {
    styled_printf(v->t, TH_LABEL, "%-16s", "EasySpec");
    styled_printf(v->t, TH_VALUE, "%-14s", "off");
    char on[32];
    const spec_run *r = &s->easyspec_on;
    if (r->valid && r->groups[0]) snprintf(on, sizeof on, "on %.10s", r->groups);
    else if (r->valid) snprintf(on, sizeof on, "on (G=%d)", r->easyspec);
    else snprintf(on, sizeof on, "on");
    styled_printf(v->t, TH_VALUE, "%-14s\n", on);
    static const char *const rows[] = {"acceptance", "mean len", "draft ms/step", "tokens/s", "speedup"};
    for (int i = 0; i < 5; i++) easyspec_row(v, s, rows[i], i);
}

void spec_view_build(styled_text *out, const spec_stats *s, const ss_params *next, const char *draft_kind,
                     int width, bool unicode) {
    styled_clear(out);
    view v = {.t = out, .width = width, .unicode = unicode, .dot = unicode ? " · " : ", "};
    v.bar_w = width - LABEL_W - 16;
    if (v.bar_w > 40) v.bar_w = 40;
    if (v.bar_w < 6) v.bar_w = 6;
    settings_line(&v, next, draft_kind);
    if (!s->run.valid) {
        styled_printf(out, TH_NOTICE, "no run yet: type a message in the console\n");
    } else {
        run_line(&v, s);
        if (s->run.speculative) acceptance_lines(&v, &s->run);
        speed_lines(&v, s);
        time_lines(&v, &s->run);
    }
    session_line(&v, s);
    easyspec_table(&v, s);
}

void spec_view_summary(const spec_stats *s, char *buf, size_t size) {
    const spec_run *r = &s->run;
    int n = snprintf(buf, size, "[%d tokens, %.1f tok/s", r->generated, r->tokens_per_s);
    double acc = spec_run_acceptance(r);
    if (r->speculative && acc >= 0 && n >= 0 && (size_t)n < size)
        n += snprintf(buf + n, size - n, ", k=%d, acceptance %.3f (%ld/%ld), %.2f tokens/step", r->k, acc, r->accepted,
                      r->proposed, r->mean_accepted_length);
    double sp = spec_stats_speedup(s, r);
    if (r->speculative && n >= 0 && (size_t)n < size) {
        if (sp > 0) n += snprintf(buf + n, size - n, ", speedup %.2fx over plain %.1f tok/s", sp, s->plain_tokens_per_s);
        else n += snprintf(buf + n, size - n, ", speedup not measured yet");
    }
    if (n >= 0 && (size_t)n < size) snprintf(buf + n, size - n, "]");
}
