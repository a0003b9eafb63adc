/* timeline.c — the last step's phases and per-layer GPU time (see timeline.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "timeline.h"

/* ------------------------------------------------------------------ the last step */

bool timeline_find_step(const ss_trace_event *spans, int n, bool finished, tl_step *out) {
    memset(out, 0, sizeof *out);
    ss_trace_step found;
    if (!ss_trace_find_last_step(spans, n, finished, &found)) return false;
    out->valid = true;
    out->start_ns = found.start_ns;
    out->end_ns = found.end_ns;
    out->n_phases = found.n_phases;
    memcpy(out->phase, found.phase, sizeof out->phase);
    return true;
}

/* ------------------------------------------------------------------ kernels into layers */

/* Layer rule. Kernels carry no layer, so the layers are read off the launch sequence:
 *  - every forward starts with one embedding launch (kernels/embed.cu), which splits a phase's
 *    kernels into forwards (the draft phase runs one per drafted token, verify one);
 *  - every layer makes exactly one attention launch (kernels/attention_*.cu: "attn" in the name),
 *    EasySpec groups included (their attention runs layer by layer), so the j-th attention launch
 *    of a forward is layer j's;
 *  - a layer's kernels are its pre-attention work (norm, QKV, RoPE, KV store), its attention and
 *    its post-attention work (output projection, MLP, residuals). The pre-attention count is read
 *    off layer 0 (the launches between the embedding and the first attention) and taken to be the
 *    same in every layer, so layer j starts that many launches before its attention; the last
 *    layer is as long (in launches) as the one before it;
 *  - what is left (embedding, final norm, LM head, sampling) is "other".
 * This is exact for plain layers, whose launch sequence repeats; inside an EasySpec group the
 * group's shared norm/QKV and MLPs are charged by position, so the split among the group's layers
 * is approximate while the group's total stays right. One GPU only (a tensor-parallel run's ranks
 * interleave their launches). */

static bool is_attention(const ss_trace_event *ev) { return strstr(ev->name, "attn") != NULL; }
static bool is_embedding(const ss_trace_event *ev) { return strstr(ev->name, "embed") != NULL; }

static int by_start(const void *a, const void *b) {
    const ss_trace_event *x = a, *y = b;
    return (x->start_ns > y->start_ns) - (x->start_ns < y->start_ns);
}

static void charge(tl_layers *out, int layer, const ss_trace_event *ev) {
    double us = (double)ev->dur_ns / 1e3;
    if (layer < 0 || layer >= TL_MAX_LAYERS) {
        out->other_us += us;
        return;
    }
    out->us[layer] += us;
    if (layer + 1 > out->n_layers) out->n_layers = layer + 1;
}

/* One forward: kernels [s, e), sorted by start. */
static void group_forward(const ss_trace_event *k, int s, int e, tl_layers *out) {
    int body = s + (is_embedding(&k[s]) ? 1 : 0);
    int first_attn = -1, n_attn = 0;
    for (int i = body; i < e; i++)
        if (is_attention(&k[i]) && n_attn++ == 0) first_attn = i;
    if (n_attn == 0) {
        for (int i = s; i < e; i++) charge(out, -1, &k[i]);
        return;
    }
    int pre = first_attn - body;
    int layer = -1, start = s, prev_start = s, layer_end = e, seen = 0;
    for (int i = s; i < e; i++) {
        if (i >= body && i + pre < e && is_attention(&k[i + pre]) && seen < n_attn) {
            /* layer `seen` starts pre launches before its attention */
            prev_start = start;
            start = i;
            layer = seen++;
            if (seen == n_attn) layer_end = seen > 1 ? start + (start - prev_start) : e;
        }
        charge(out, layer >= 0 && i < layer_end ? layer : -1, &k[i]);
    }
}

void timeline_group_layers(ss_trace_event *kernels, int n, uint64_t from_ns, uint64_t to_ns, tl_layers *out) {
    memset(out, 0, sizeof *out);
    int m = 0; /* the phase's kernels to the front, by swaps, so the other phases' stay in the list */
    for (int i = 0; i < n; i++) {
        if (kernels[i].start_ns < from_ns || kernels[i].start_ns > to_ns) continue;
        ss_trace_event tmp = kernels[m];
        kernels[m++] = kernels[i];
        kernels[i] = tmp;
    }
    qsort(kernels, (size_t)m, sizeof *kernels, by_start);
    out->kernels = m;
    for (int s = 0; s < m;) {
        int e = s + 1;
        while (e < m && !is_embedding(&kernels[e])) e++;
        group_forward(kernels, s, e, out);
        s = e;
    }
}

/* ------------------------------------------------------------------ bars */

void timeline_bar_cells(uint64_t step_start, uint64_t step_ns, uint64_t start, uint64_t dur, int width, int *first,
                        int *cells) {
    *first = *cells = 0;
    if (width <= 0 || step_ns == 0) return;
    double from = start > step_start ? (double)(start - step_start) / (double)step_ns : 0;
    double to = from + (double)dur / (double)step_ns;
    int a = (int)floor(from * width), b = (int)ceil(to * width);
    if (a > width - 1) a = width - 1;
    if (b > width) b = width;
    if (b <= a && dur > 0) b = a + 1; /* a short phase still shows */
    *first = a;
    *cells = b > a ? b - a : 0;
}

void timeline_host_layers(const ss_trace_event *spans, int n, const tl_phase *phase, tl_layers *out) {
    memset(out, 0, sizeof *out);
    const uint64_t from = phase->start_ns, to = phase->start_ns + phase->dur_ns;
    double inside = 0;
    for (int i = 0; i < n; i++) {
        const ss_trace_event *e = &spans[i];
        if (e->track != SS_TRACK_HOST || e->layer < 0 || e->layer >= TL_MAX_LAYERS || e->start_ns < from ||
            e->start_ns + e->dur_ns > to)
            continue;
        out->us[e->layer] += (double)e->dur_ns / 1e3;
        inside += (double)e->dur_ns / 1e3;
        if (e->layer + 1 > out->n_layers) out->n_layers = e->layer + 1;
        out->kernels++;
    }
    const double phase_us = (double)phase->dur_ns / 1e3;
    out->other_us = phase_us > inside ? phase_us - inside : 0;
}
