/* lora_view.c — the lora pane's lines (lora_view.h). The heatmap's shade is a cell's |s*BA|/|W0|
 * against the largest of the adapter, so the module that moves its weights most stands out; the
 * largest values are also printed as numbers, since a shade is only a rank. */
#include <stdio.h>
#include <string.h>

#include "lora_view.h"

#define MODULES 7
static const char *const modules[MODULES] = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"};
static const char *const heads[MODULES] = {"q", "k", "v", "o", "gate", "up", "down"};
#define CELL 5 /* columns per module */

static int module_index(const char *name) {
    for (int i = 0; i < MODULES; i++)
        if (!strcmp(modules[i], name)) return i;
    return -1;
}

static void header(styled_text *t, ss_model *m, ss_lora *a) {
    styled_printf(t, TH_VALUE, "%s", ss_lora_name(a));
    styled_printf(t, TH_NORMAL, "  r ");
    styled_printf(t, TH_VALUE, "%d", ss_lora_rank(a));
    styled_printf(t, TH_NORMAL, "  s ");
    styled_printf(t, TH_VALUE, "%.4g", ss_lora_scaling(a));
    styled_printf(t, TH_NORMAL, "  scale ");
    styled_printf(t, TH_VALUE, "%g", ss_lora_scale(a));
    styled_printf(t, ss_lora_enabled(a) ? TH_DRAFT : TH_NOTICE, "  %s", ss_lora_enabled(a) ? "on" : "off");
    if (ss_model_lora_merged(m)) styled_printf(t, TH_NORMAL, "  merged");
    for (int i = 0; i < ss_model_lora_count(m) - 1; i++) {
        ss_lora *o = ss_model_lora(m, i);
        styled_printf(t, TH_NORMAL, "%s%s (%g, %s)", i ? ", " : "   also ", ss_lora_name(o), ss_lora_scale(o),
                      ss_lora_enabled(o) ? "on" : "off");
    }
    styled_newline(t);
}

/* One cell: the shade of v / top (8 levels; a dot where the module is not targeted). */
static void cell(styled_text *t, double v, double top, bool targeted, bool unicode) {
    static const wchar_t *const blocks = L"\u2581\u2582\u2583\u2584\u2585\u2586\u2587\u2588";
    static const char ascii[] = ".:-=+*#@";
    if (!targeted) {
        styled_printf(t, TH_BAR_EMPTY, "  %s  ", unicode ? "\u00b7" : ".");
        return;
    }
    int level = top > 0 ? (int)(v / top * 8) : 0;
    level = level < 0 ? 0 : level > 7 ? 7 : level;
    wchar_t w[CELL + 1] = L"     ";
    w[1] = w[2] = w[3] = unicode ? blocks[level] : (wchar_t)ascii[level];
    styled_addw(t, TH_BAR, w);
}

/* The three largest cells as numbers. */
static void largest(styled_text *t, const ss_lora_norm *rows, int n) {
    int best[3] = {-1, -1, -1};
    for (int i = 0; i < n; i++)
        for (int k = 0; k < 3; k++)
            if (best[k] < 0 || rows[i].rel > rows[best[k]].rel) {
                memmove(best + k + 1, best + k, (size_t)(2 - k) * sizeof *best);
                best[k] = i;
                break;
            }
    styled_printf(t, TH_LABEL, "largest ");
    for (int k = 0; k < 3 && best[k] >= 0; k++) {
        styled_printf(t, TH_NORMAL, "%slayer %d %s ", k ? ", " : "", rows[best[k]].layer, rows[best[k]].module);
        styled_printf(t, TH_VALUE, "%.3g", rows[best[k]].rel);
    }
    styled_newline(t);
}

void lora_view_build(styled_text *out, ss_model *m, int width, bool unicode) {
    (void)width; /* lines are clipped by the pane */
    styled_clear(out);
    ss_lora *a = m && ss_model_lora_count(m) ? ss_model_lora(m, ss_model_lora_count(m) - 1) : NULL;
    if (!a) {
        styled_printf(out, TH_NOTICE, "no adapter loaded: /lora load DIR [SCALE] (or --lora DIR[:SCALE])");
        return;
    }
    header(out, m, a);
    const ss_lora_norm *rows;
    int n;
    ss_error err = {0};
    if (ss_lora_norms(a, &rows, &n, &err)) {
        styled_printf(out, TH_ERROR, "norms: %s\n", err.msg);
        return;
    }
    double top = 0;
    int last_layer = 0;
    for (int i = 0; i < n; i++) {
        if (rows[i].rel > top) top = rows[i].rel;
        if (rows[i].layer > last_layer) last_layer = rows[i].layer;
    }
    styled_printf(out, TH_LABEL, "|s*BA|/|W0|");
    styled_printf(out, TH_NORMAL, " by layer and module; full cell = ");
    styled_printf(out, TH_VALUE, "%.3g\n", top);
    styled_printf(out, TH_LABEL, "layer");
    for (int k = 0; k < MODULES; k++) styled_printf(out, TH_LABEL, "%*s ", CELL - 1, heads[k]);
    styled_newline(out);
    int r = 0;
    for (int layer = rows[0].layer; layer <= last_layer; layer++) {
        double v[MODULES] = {0};
        bool has[MODULES] = {false};
        for (; r < n && rows[r].layer == layer; r++) {
            int k = module_index(rows[r].module);
            if (k >= 0) v[k] = rows[r].rel, has[k] = true;
        }
        styled_printf(out, TH_NORMAL, "%5d", layer);
        for (int k = 0; k < MODULES; k++) cell(out, v[k], top, has[k], unicode);
        styled_newline(out);
    }
    largest(out, rows, n);
    int shrinking = 0;
    for (int i = 0; i < n; i++) shrinking += rows[i].stable >= 1;
    styled_printf(out, TH_LABEL, "Stable-LoRA ");
    styled_printf(out, TH_NORMAL, "|A| >= (numel A / numel B) |B| (A still shrinks): ");
    styled_printf(out, TH_VALUE, "%d", shrinking);
    styled_printf(out, TH_NORMAL, " of %d modules\n", n);
    styled_printf(out, TH_NOTICE, "focused: + - scale by 0.1, space on/off; /lora merge on|off");
}
