/* pane_timeline.c — the last step's timeline: one row per phase with a bar placed and sized on the
 * step's wall time, and the time per layer of the draft and verify phases (GPU kernels on CUDA,
 * host layer spans on the CPU). The numbers come from the workbench's trace feed, copied once per
 * step; a frame only lays them out. */
#include <stdio.h>
#include <string.h>

#include "app.h"
#include "meters.h"

#define LABEL_W 15
#define MS_W 12   /* " 12345.67 ms" */
#define CELL_W 26 /* one layer: index, microseconds, bar, gap */
#define CELL_BAR 9
#define MAX_BAR 256

/* n cells of a bar: filled (fill) or empty, in their roles. */
static void bar_run(styled_text *t, int n, bool fill, bool unicode) {
    wchar_t buf[MAX_BAR + 1];
    if (n <= 0) return;
    if (n > MAX_BAR) n = MAX_BAR;
    meter_bar(buf, n, fill ? 1 : 0, unicode);
    styled_addw(t, fill ? TH_BAR : TH_BAR_EMPTY, buf);
}

static void phase_row(styled_text *t, const tl_step *s, const tl_phase *p, int width, bool unicode) {
    char label[32];
    if (strcmp(p->phase, "prefill") == 0) snprintf(label, sizeof label, "prefill %s", p->model);
    else snprintf(label, sizeof label, "%s", p->phase);
    styled_printf(t, TH_LABEL, "%-*s", LABEL_W, label);
    int bar_w = width - LABEL_W - MS_W, first, cells;
    if (bar_w < 4) bar_w = 4;
    timeline_bar_cells(s->start_ns, s->end_ns - s->start_ns, p->start_ns, p->dur_ns, bar_w, &first, &cells);
    bar_run(t, first, false, unicode);
    bar_run(t, cells, true, unicode);
    bar_run(t, bar_w - first - cells, false, unicode);
    styled_printf(t, TH_VALUE, " %8.2f ms\n", (double)p->dur_ns / 1e6);
}

/* The layers of one phase, column-major in as many columns as the width holds. */
static void layer_grid(styled_text *t, const char *phase, const char *device, const tl_layers *l, int width,
                       bool unicode) {
    double total = l->other_us, max = 0;
    for (int i = 0; i < l->n_layers; i++) {
        total += l->us[i];
        if (l->us[i] > max) max = l->us[i];
    }
    styled_printf(t, TH_LABEL, "%s %s per layer: ", phase, device);
    styled_printf(t, TH_VALUE, "%d layers, %.1f us", l->n_layers, total);
    /* GPU: the kernels outside the layers; CPU: the phase's time outside the layer spans, host work
     * included, so it is named for what was measured, nothing more. */
    styled_printf(t, TH_LABEL, strcmp(device, "GPU") == 0 ? " (other %.1f us: embed, head, sampling)\n"
                                                         : " (%.1f us of the phase outside the layers)\n",
                  l->other_us);
    int cols = width / CELL_W > 0 ? width / CELL_W : 1;
    int rows = (l->n_layers + cols - 1) / cols;
    for (int r = 0; r < rows; r++) {
        for (int c = 0; c < cols; c++) {
            int i = c * rows + r;
            if (i >= l->n_layers) break;
            styled_printf(t, TH_LABEL, " %3d", i);
            styled_printf(t, TH_VALUE, " %8.1f us ", l->us[i]);
            wchar_t buf[CELL_BAR + 1];
            int filled = meter_bar(buf, CELL_BAR, max > 0 ? l->us[i] / max : 0, unicode);
            wchar_t rest = buf[filled];
            buf[filled] = 0;
            styled_addw(t, TH_BAR, buf);
            buf[filled] = rest;
            styled_addw(t, TH_BAR_EMPTY, buf + filled);
        }
        styled_newline(t);
    }
}

static void layers_part(styled_text *t, const trace_feed *f, int width, bool unicode) {
    const tl_step *s = &f->last;
    if (!f->cuda) { /* host spans per layer */
        if (s->draft.kernels) layer_grid(t, "draft", "CPU", &s->draft, width, unicode);
        if (s->verify.kernels) layer_grid(t, "verify", "CPU", &s->verify, width, unicode);
    } else if (f->gpu_error[0]) {
        styled_printf(t, TH_NOTICE, "per-layer GPU timeline: %s\n", f->gpu_error);
    } else if (s->draft.kernels == 0 && s->verify.kernels == 0) {
        styled_printf(t, TH_NOTICE, "%s\n",
                      f->finished ? "per-layer GPU timeline: no kernels in this step (a chat turn collects them)"
                                  : "per-layer GPU timeline: waiting for CUPTI's next flush (at most every 0.2 s)");
    } else {
        if (f->layers_step != f->step_number)
            styled_printf(t, TH_NOTICE, "per layer: step %d (the kernels CUPTI has handed over so far)\n",
                          f->layers_step);
        if (s->draft.kernels) layer_grid(t, "draft", "GPU", &s->draft, width, unicode);
        if (s->verify.kernels) layer_grid(t, "verify", "GPU", &s->verify, width, unicode);
        if (s->kernels_capped) styled_printf(t, TH_NOTICE, "(kernel copy capped at %d events)\n", TRACE_FEED_KERNEL_COPY);
    }
}

static void build(styled_text *t, const trace_feed *f, int width, bool unicode) {
    const tl_step *s = &f->last;
    styled_clear(t);
    styled_printf(t, TH_LABEL, "step ");
    styled_printf(t, TH_VALUE, "%d", f->step_number);
    styled_printf(t, TH_LABEL, "%s wall ", f->finished ? " (last of the run)," : ",");
    styled_printf(t, TH_VALUE, "%.2f ms\n", (double)(s->end_ns - s->start_ns) / 1e6);
    for (int i = 0; i < s->n_phases; i++) phase_row(t, s, &s->phase[i], width, unicode);
    layers_part(t, f, width, unicode);
}

void pane_timeline_draw(tui *ui, pane_state *ps) {
    WINDOW *w = ps->win;
    const trace_feed *f = &ui->wb.trace;
    if (!f->tracer || !f->last.valid) {
        ps->content_lines = ps->view_lines = 0;
        pane_frame(w, layout_pane_title(PANE_TIMELINE), ui->focus == PANE_TIMELINE, NULL);
        pane_message(w, f->tracer ? "no step yet: send a message" : "timeline off (see the console)", TH_NOTICE);
        return;
    }
    build(&ui->timeline, f, getmaxx(w) - 3, ui->unicode);
    pane_draw_styled(ui, ps, PANE_TIMELINE, &ui->timeline);
}
