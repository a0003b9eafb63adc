/* lora.c — PEFT LoRA adapters: read, check against the model, bind on its backend, apply, norms.
 *
 * An adapter folder, as PEFT's save_pretrained writes it, holds adapter_config.json (r, lora_alpha,
 * use_rslora, ...) and adapter_model.safetensors with one pair of factors per targeted projection:
 *   base_model.model.model.layers.L.self_attn.{q,k,v,o}_proj.lora_{A,B}.weight
 *   base_model.model.model.layers.L.mlp.{gate,up,down}_proj.lora_{A,B}.weight
 * with A [r, in] and B [out, r]. The projection then computes W0 x + scale * s * B (A x), s =
 * lora_alpha / r (lora_alpha / sqrt(r) with use_rslora) as PEFT does, and scale the caller's live
 * multiplier. The factors are applied unmerged, as two small matmuls and a scaled add after the base
 * projection (forward.c), so scale and on/off take effect at the next forward and W0 is never
 * rewritten. What PEFT can store but this does not compute (DoRA, per-module ranks or alphas, LoRA
 * biases, fully saved modules, fan_in_fan_out layouts) is refused with the field that asks for it.
 *
 * Norms are those a person watches while training with Stable-LoRA (DESIGN.md): |A|, |B|, |s B A| and
 * its ratio to |W0|, all Frobenius, in double, and Stable-LoRA's test |A| / ((numel A / numel B) |B|). |B A| comes from the r x r Gram matrices,
 * |B A|^2 = sum_ij (B^T B)_ij (A A^T)_ij, so no out x in product is formed. */
#include <cblas.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "lora.h"

static const char *const module_names[LORA_MODULES] = {"q_proj",    "k_proj",  "v_proj",   "o_proj",
                                                        "gate_proj", "up_proj", "down_proj"};

/* One targeted projection: its factors in the adapter's file and on the model's backend. */
typedef struct {
    int layer;
    lora_module module;
    const ss_tensor *ta, *tb;
    ss_weight a, b;
    double a_norm, b_norm, ab_norm, w0_norm; /* |A|, |B|, |B A| and |W0|, once norms are asked for */
} lora_pair;

struct ss_lora {
    ss_model *m;
    char dir[1024], name[64];
    int rank;
    double scaling; /* s */
    float scale;
    bool enabled;
    ss_checkpoint *ck; /* the factors' file (the CPU backend's weights point into its mapping) */
    int n;
    lora_pair *pairs; /* by layer, then module */
    int *slot;        /* [n_layers * LORA_MODULES]: index into pairs, or -1 */
    bool measured;    /* ab_norm and w0_norm are set */
    ss_lora_norm *rows;
};

/* ---------------------------------------------------------------- geometry */

/* A projection's in and out features in the whole model (tensor parallelism is refused). */
static void module_shape(const ss_config *c, lora_module mod, int64_t *in, int64_t *out) {
    const int64_t q = (int64_t)c->n_heads * c->head_dim, kv = (int64_t)c->n_kv_heads * c->head_dim;
    switch (mod) {
    case LORA_Q: *in = c->hidden, *out = q; return;
    case LORA_K:
    case LORA_V: *in = c->hidden, *out = kv; return;
    case LORA_O: *in = q, *out = c->hidden; return;
    case LORA_GATE:
    case LORA_UP: *in = c->hidden, *out = c->intermediate; return;
    default: *in = c->intermediate, *out = c->hidden; return;
    }
}

/* The widest projection output: lora_u's row. */
static int64_t widest_output(const ss_config *c) {
    int64_t widest = 0;
    for (int mod = 0; mod < LORA_MODULES; mod++) {
        int64_t in, out;
        module_shape(c, (lora_module)mod, &in, &out);
        if (out > widest) widest = out;
    }
    return widest;
}

/* ---------------------------------------------------------------- adapter_config.json */

typedef struct {
    int r;
    double alpha;
    bool rslora;
} lora_config;

/* A field that must be absent, null, false, empty or equal to `fine` (a string): what this engine
 * does not compute. */
static ss_status refuse_field(const json_t *root, const char *path, const char *key, const char *fine, ss_error *err) {
    const json_t *v = json_object_get(root, key);
    bool ok = !v || json_is_null(v) || json_is_false(v) || (json_is_object(v) && json_object_size(v) == 0) ||
              (json_is_array(v) && json_array_size(v) == 0) || (fine && json_is_string(v) && !strcmp(json_string_value(v), fine));
    return ok ? SS_OK : ss_fail(err, SS_EUNSUPPORTED, "%s: '%s' is set; this LoRA implementation does not support it", path, key);
}

static ss_status read_config(const char *path, lora_config *cfg, ss_error *err) {
    json_error_t jerr;
    json_t *root = json_load_file(path, 0, &jerr);
    if (!root) {
        struct stat st;
        if (stat(path, &st) != 0) return ss_fail(err, SS_EIO, "%s: not found", path);
        return ss_fail(err, SS_EFORMAT, "%s: invalid JSON: %s (line %d, column %d)", path, jerr.text, jerr.line,
                       jerr.column);
    }
    ss_status st = SS_OK;
    const json_t *type = json_object_get(root, "peft_type"), *r = json_object_get(root, "r"),
                 *alpha = json_object_get(root, "lora_alpha"), *rs = json_object_get(root, "use_rslora");
    if (!json_is_object(root))
        st = ss_fail(err, SS_EFORMAT, "%s: not a JSON object", path);
    else if (type && (!json_is_string(type) || strcmp(json_string_value(type), "LORA")))
        st = ss_fail(err, SS_EUNSUPPORTED, "%s: peft_type is %s, not \"LORA\"", path,
                     json_is_string(type) ? json_string_value(type) : "not a string");
    else if (!json_is_integer(r) || json_integer_value(r) < 1 || json_integer_value(r) > 65536)
        st = ss_fail(err, SS_EFORMAT, "%s: field 'r' %s", path, r ? "is not an integer in 1..65536" : "is missing");
    else if (!json_is_number(alpha) || !isfinite(json_number_value(alpha)))
        st = ss_fail(err, SS_EFORMAT, "%s: field 'lora_alpha' %s", path, alpha ? "is not a finite number" : "is missing");
    else if (rs && !json_is_boolean(rs))
        st = ss_fail(err, SS_EFORMAT, "%s: field 'use_rslora' is not a boolean", path);
    const char *refused[] = {"use_dora", "rank_pattern", "alpha_pattern", "modules_to_save", "fan_in_fan_out", "lora_bias"};
    for (size_t i = 0; st == SS_OK && i < sizeof refused / sizeof *refused; i++)
        st = refuse_field(root, path, refused[i], NULL, err);
    if (st == SS_OK) st = refuse_field(root, path, "bias", "none", err);
    if (st == SS_OK) *cfg = (lora_config){(int)json_integer_value(r), json_number_value(alpha), rs && json_is_true(rs)};
    json_decref(root);
    return st;
}

/* ---------------------------------------------------------------- tensor names */

/* "base_model.model.model.layers.L.GROUP.MODULE.lora_X.weight" (the "base_model.model." prefix
 * optional) -> layer, module and factor 'A' or 'B'; false for anything else. */
static bool parse_name(const char *name, int *layer, lora_module *mod, char *factor) {
    const char *p = name;
    if (!strncmp(p, "base_model.model.", 17)) p += 17;
    if (strncmp(p, "model.layers.", 13)) return false;
    p += 13;
    char *end;
    long l = strtol(p, &end, 10);
    if (end == p || *end != '.' || l < 0 || l > 1000000 || (p[0] == '0' && end - p > 1)) return false;
    p = end + 1;
    for (int m = 0; m < LORA_MODULES; m++) {
        const char *group = m <= LORA_O ? "self_attn." : "mlp.";
        size_t gl = strlen(group), ml = strlen(module_names[m]);
        if (strncmp(p, group, gl) || strncmp(p + gl, module_names[m], ml)) continue;
        const char *rest = p + gl + ml;
        if (strcmp(rest, ".lora_A.weight") && strcmp(rest, ".lora_B.weight")) return false;
        *layer = (int)l, *mod = (lora_module)m, *factor = rest[6];
        return true;
    }
    return false;
}

static bool has_shape(const ss_tensor *t, int64_t rows, int64_t cols) {
    return t->ndim == 2 && t->shape[0] == rows && t->shape[1] == cols;
}

typedef struct {
    char text[96];
} shape_str;

static shape_str shape_text(const ss_tensor *t) {
    shape_str s = {"["};
    for (int d = 0; d < t->ndim; d++)
        snprintf(s.text + strlen(s.text), sizeof s.text - strlen(s.text), "%s%lld", d ? ", " : "", (long long)t->shape[d]);
    snprintf(s.text + strlen(s.text), sizeof s.text - strlen(s.text), "]");
    return s;
}

/* Sorts the adapter's tensors into slots and checks every pair against the model. */
static ss_status collect_pairs(ss_lora *a, const char *file, ss_error *err) {
    const ss_config *c = &a->m->cfg;
    const size_t slots = (size_t)c->n_layers * LORA_MODULES;
    const ss_tensor **ta = calloc(slots, sizeof *ta), **tb = calloc(slots, sizeof *tb);
    a->slot = malloc(slots * sizeof *a->slot);
    ss_status st = ta && tb && a->slot ? SS_OK : ss_fail(err, SS_ENOMEM, "%s: out of memory", file);
    for (int i = 0; st == SS_OK && i < ss_checkpoint_count(a->ck); i++) {
        const ss_tensor *t = ss_checkpoint_tensor(a->ck, i);
        int layer;
        lora_module mod;
        char factor;
        if (!parse_name(t->name, &layer, &mod, &factor))
            st = ss_fail(err, SS_EUNSUPPORTED,
                         "%s: tensor '%s' is not a LoRA factor of a decoder projection (q/k/v/o, gate/up/down)", file,
                         t->name);
        else if (layer >= c->n_layers)
            st = ss_fail(err, SS_EFORMAT, "%s: tensor '%s' is for layer %d; the model has %d layers", file, t->name,
                         layer, c->n_layers);
        else (factor == 'A' ? ta : tb)[(size_t)layer * LORA_MODULES + mod] = t;
    }
    for (size_t k = 0; st == SS_OK && k < slots; k++) {
        a->slot[k] = -1;
        if (!ta[k] && !tb[k]) continue;
        const int layer = (int)(k / LORA_MODULES);
        const lora_module mod = (lora_module)(k % LORA_MODULES);
        int64_t in, out;
        module_shape(c, mod, &in, &out);
        const ss_tensor *A = ta[k], *B = tb[k];
        if (!A || !B)
            st = ss_fail(err, SS_EFORMAT, "%s: layer %d %s has lora_%c but no lora_%c", file, layer, module_names[mod],
                         A ? 'A' : 'B', A ? 'B' : 'A');
        else if (!has_shape(A, a->rank, in))
            st = ss_fail(err, SS_EFORMAT, "%s: %s has shape %s, expected [%d, %lld] (r, in) for the model's %s", file,
                         A->name, shape_text(A).text, a->rank, (long long)in, module_names[mod]);
        else if (!has_shape(B, out, a->rank))
            st = ss_fail(err, SS_EFORMAT, "%s: %s has shape %s, expected [%lld, %d] (out, r) for the model's %s", file,
                         B->name, shape_text(B).text, (long long)out, a->rank, module_names[mod]);
        else
            a->pairs[a->n] = (lora_pair){.layer = layer, .module = mod, .ta = A, .tb = B}, a->slot[k] = a->n++;
    }
    if (st == SS_OK && a->n == 0) st = ss_fail(err, SS_EFORMAT, "%s: no LoRA factors in it", file);
    free(ta);
    free(tb);
    return st;
}

/* ---------------------------------------------------------------- binding */

static void release(ss_lora *a) {
    const ss_backend_ops *o = a->m->be->ops;
    for (int i = 0; i < a->n; i++) {
        if (a->pairs[i].a.data) o->free_weight(a->m->be, &a->pairs[i].a);
        if (a->pairs[i].b.data) o->free_weight(a->m->be, &a->pairs[i].b);
    }
    ss_checkpoint_close(a->ck);
    free(a->pairs);
    free(a->slot);
    free(a->rows);
    free(a);
}

/* The shared scratch: lora_u once, lora_t grown to the largest rank. */
static ss_status reserve_scratch(ss_model *m, int rank, ss_error *err) {
    const ss_backend_ops *o = m->be->ops;
    const size_t batch = (size_t)m->s.max_batch;
    ss_status st = SS_OK;
    if (!m->lora_u) st = o->alloc(m->be, batch * (size_t)widest_output(&m->cfg) * sizeof(float), (void **)&m->lora_u, err);
    if (st == SS_OK && rank > m->lora_t_rank) {
        float *t = NULL;
        st = o->alloc(m->be, batch * (size_t)rank * sizeof(float), (void **)&t, err);
        if (st == SS_OK) o->free(m->be, m->lora_t), m->lora_t = t, m->lora_t_rank = rank;
    }
    return st == SS_OK ? SS_OK : ss_fail_prefix(err, "%s: LoRA scratch", m->dir);
}

static ss_status bind(ss_lora *a, const char *file, ss_error *err) {
    ss_model *m = a->m;
    ss_status st = SS_OK;
    for (int i = 0; st == SS_OK && i < a->n; i++) {
        lora_pair *p = &a->pairs[i];
        st = m->be->ops->upload(m->be, p->ta, &p->a, err);
        if (st == SS_OK) st = m->be->ops->upload(m->be, p->tb, &p->b, err);
    }
    if (st == SS_OK) st = reserve_scratch(m, a->rank, err);
    ss_lora **list = st == SS_OK ? realloc(m->loras, (size_t)(m->n_loras + 1) * sizeof *list) : NULL;
    if (st == SS_OK && !list) st = ss_fail(err, SS_ENOMEM, "%s: out of memory", file);
    if (st != SS_OK) return st;
    m->loras = list;
    m->loras[m->n_loras++] = a;
    m->lora_version++;
    m->lora_dirty = m->lora_merged;
    return SS_OK;
}

ss_status ss_lora_load(ss_model *m, const char *dir, float scale, ss_lora **out, ss_error *err) {
    if (!m || !dir || !out) return ss_fail(err, SS_EARG, "ss_lora_load: no model, folder or result pointer");
    *out = NULL;
    if (m->tp > 1)
        return ss_fail(err, SS_EUNSUPPORTED, "%s: LoRA adapters on a model split over %d tensor-parallel ranks", dir, m->tp);
    if (!isfinite(scale)) return ss_fail(err, SS_EARG, "%s: LoRA scale is not a finite number", dir);
    char config[1100], file[1100];
    snprintf(config, sizeof config, "%s/adapter_config.json", dir);
    snprintf(file, sizeof file, "%s/adapter_model.safetensors", dir);
    lora_config cfg = {0};
    ss_status st = read_config(config, &cfg, err);
    if (st != SS_OK) return st;
    ss_lora *a = calloc(1, sizeof *a);
    if (!a) return ss_fail(err, SS_ENOMEM, "%s: out of memory", dir);
    *a = (ss_lora){.m = m, .rank = cfg.r, .scale = scale, .enabled = true,
                   .scaling = cfg.alpha / (cfg.rslora ? sqrt((double)cfg.r) : (double)cfg.r)};
    snprintf(a->dir, sizeof a->dir, "%s", dir);
    size_t len = strlen(a->dir);
    while (len > 1 && a->dir[len - 1] == '/') a->dir[--len] = '\0';
    const char *slash = strrchr(a->dir, '/');
    ss_lora_set_name(a, slash && slash[1] ? slash + 1 : a->dir);
    st = ss_checkpoint_open_file(file, &a->ck, err);
    if (st == SS_OK && !(a->pairs = calloc((size_t)m->cfg.n_layers * LORA_MODULES, sizeof *a->pairs)))
        st = ss_fail(err, SS_ENOMEM, "%s: out of memory", dir);
    if (st == SS_OK) st = collect_pairs(a, file, err);
    if (st == SS_OK) st = bind(a, file, err);
    if (st != SS_OK) {
        release(a);
        return st;
    }
    *out = a;
    return SS_OK;
}

void ss_lora_unload(ss_lora *a) {
    if (!a) return;
    ss_model *m = a->m;
    for (int i = 0; i < m->n_loras; i++)
        if (m->loras[i] == a) {
            memmove(m->loras + i, m->loras + i + 1, (size_t)(m->n_loras - i - 1) * sizeof *m->loras);
            m->n_loras--;
            break;
        }
    m->lora_version++;
    m->lora_dirty = m->lora_merged;
    release(a);
}

void ss_lora_free_all(ss_model *m) {
    while (m->n_loras) ss_lora_unload(m->loras[m->n_loras - 1]);
    free(m->loras);
    m->loras = NULL;
    free(m->lora_folded); /* the layer weights themselves go with the model */
    m->lora_folded = NULL;
    if (m->be) m->be->ops->free(m->be, m->lora_t), m->be->ops->free(m->be, m->lora_u);
    m->lora_t = m->lora_u = NULL;
}

/* ---------------------------------------------------------------- the forward's part */

void ss_lora_apply(ss_model *m, int layer, lora_module module, float *out, const float *in, int n) {
    const ss_backend_ops *o = m->be->ops;
    for (int i = 0; !m->lora_merged && i < m->n_loras; i++) {
        const ss_lora *a = m->loras[i];
        const int k = a->slot[layer * LORA_MODULES + module];
        if (!a->enabled || k < 0) continue;
        const lora_pair *p = &a->pairs[k];
        o->matmul(m->be, m->lora_t, in, &p->a, NULL, n);         /* [n, r] = in A^T */
        o->matmul(m->be, m->lora_u, m->lora_t, &p->b, NULL, n);  /* [n, out] = t B^T */
        o->scale_add(m->be, out, (float)(a->scale * a->scaling), m->lora_u, (size_t)n * (size_t)p->b.rows);
    }
}

size_t ss_lora_bytes(const ss_model *m) {
    size_t total = 0;
    for (int i = 0; !m->lora_merged && i < m->n_loras; i++)
        for (int k = 0; m->loras[i]->enabled && k < m->loras[i]->n; k++) {
            const lora_pair *p = &m->loras[i]->pairs[k];
            total += ((size_t)p->a.rows * p->a.cols + (size_t)p->b.rows * p->b.cols) * ss_dtype_size(p->a.dtype);
        }
    return total;
}


/* ---------------------------------------------------------------- merged mode */

static ss_weight *layer_weight(ss_layer *L, lora_module mod) {
    ss_weight *const w[LORA_MODULES] = {&L->q, &L->k, &L->v, &L->o, &L->gate, &L->up, &L->down};
    return w[mod];
}

static const ss_tensor *base_tensor(const ss_model *m, int layer, lora_module mod) {
    char name[160];
    snprintf(name, sizeof name, "model.layers.%d.%s.%s.weight", layer, mod <= LORA_O ? "self_attn" : "mlp",
             module_names[mod]);
    return ss_checkpoint_find(m->ck, name);
}

/* A tensor's elements as floats (malloc'd). */
static float *as_floats(const ss_tensor *t, size_t count) {
    float *f = malloc(count * sizeof *f);
    const size_t es = ss_dtype_size(t->dtype);
    for (size_t i = 0; f && i < count; i++) f[i] = ss_element_f32(t->dtype, (const char *)t->data + i * es);
    return f;
}

/* w = W0 + sum over the enabled adapters of scale s B A (fp32 on the host, one sgemm an adapter). */
static ss_status fold(ss_model *m, int layer, lora_module mod, const ss_tensor *w0, ss_weight *w, ss_error *err) {
    const size_t out = (size_t)w0->shape[0], in = (size_t)w0->shape[1];
    float *sum = as_floats(w0, out * in);
    ss_status st = sum ? SS_OK : ss_fail(err, SS_ENOMEM, "%s: out of memory to merge %s", m->dir, w0->name);
    for (int i = 0; st == SS_OK && i < m->n_loras; i++) {
        const ss_lora *a = m->loras[i];
        const int k = a->slot[layer * LORA_MODULES + mod];
        if (!a->enabled || k < 0) continue;
        const size_t r = (size_t)a->rank;
        float *A = as_floats(a->pairs[k].ta, r * in), *B = as_floats(a->pairs[k].tb, out * r);
        if (A && B)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)out, (int)in, (int)r,
                        (float)(a->scale * a->scaling), B, (int)r, A, (int)in, 1.0f, sum, (int)in);
        else st = ss_fail(err, SS_ENOMEM, "%s: out of memory to merge %s", a->dir, w0->name);
        free(A), free(B);
    }
    ss_weight folded = {0};
    if (st == SS_OK) st = m->be->ops->upload_f32(m->be, sum, (int)out, (int)in, &folded, err);
    free(sum);
    if (st != SS_OK) return st;
    m->be->ops->free_weight(m->be, w);
    *w = folded;
    return SS_OK;
}

/* Whether an enabled adapter targets (layer, mod). */
static bool targeted(const ss_model *m, int layer, lora_module mod) {
    for (int i = 0; i < m->n_loras; i++)
        if (m->loras[i]->enabled && m->loras[i]->slot[layer * LORA_MODULES + mod] >= 0) return true;
    return false;
}

ss_status ss_lora_refold(ss_model *m, ss_error *err) {
    if (!m->lora_dirty) return SS_OK;
    const int slots = m->cfg.n_layers * LORA_MODULES;
    if (!m->lora_folded && !(m->lora_folded = calloc((size_t)slots, 1)))
        return ss_fail(err, SS_ENOMEM, "%s: out of memory for the LoRA folds", m->dir);
    for (int k = 0; k < slots; k++) {
        const int layer = k / LORA_MODULES;
        const lora_module mod = (lora_module)(k % LORA_MODULES);
        const bool want = m->lora_merged && targeted(m, layer, mod);
        if (!want && !m->lora_folded[k]) continue;
        const ss_tensor *w0 = base_tensor(m, layer, mod);
        ss_weight *w = layer_weight(&m->layers[layer], mod);
        ss_status st;
        if (!w0) st = ss_fail(err, SS_EFORMAT, "%s: no %s weight in layer %d", m->dir, module_names[mod], layer);
        else if (want) st = fold(m, layer, mod, w0, w, err);
        else { /* back to the checkpoint's own weight */
            ss_weight plain = {0};
            st = m->be->ops->upload(m->be, w0, &plain, err);
            if (st == SS_OK) m->be->ops->free_weight(m->be, w), *w = plain;
        }
        if (st != SS_OK) return ss_fail_prefix(err, "%s: LoRA merge", m->dir);
        m->lora_folded[k] = want;
    }
    m->lora_dirty = false;
    m->lora_version++;
    return SS_OK;
}

ss_status ss_model_lora_merge(ss_model *m, bool on, ss_error *err) {
    if (on == m->lora_merged && !m->lora_dirty) return SS_OK;
    m->lora_merged = on;
    m->lora_dirty = true;
    m->lora_version++;
    return ss_lora_refold(m, err);
}

bool ss_model_lora_merged(const ss_model *m) { return m->lora_merged; }

/* ---------------------------------------------------------------- accessors */

int ss_model_lora_count(const ss_model *m) { return m ? m->n_loras : 0; }
ss_lora *ss_model_lora(const ss_model *m, int i) { return m && i >= 0 && i < m->n_loras ? m->loras[i] : NULL; }
const char *ss_lora_dir(const ss_lora *a) { return a->dir; }
const char *ss_lora_name(const ss_lora *a) { return a->name; }
void ss_lora_set_name(ss_lora *a, const char *name) { snprintf(a->name, sizeof a->name, "%s", name ? name : ""); }

ss_lora *ss_model_lora_find(const ss_model *m, const char *name) {
    for (int i = 0; m && name && i < m->n_loras; i++)
        if (!strcmp(m->loras[i]->name, name)) return m->loras[i];
    return NULL;
}
int ss_lora_rank(const ss_lora *a) { return a->rank; }
double ss_lora_scaling(const ss_lora *a) { return a->scaling; }
float ss_lora_scale(const ss_lora *a) { return a->scale; }
bool ss_lora_enabled(const ss_lora *a) { return a->enabled; }

void ss_lora_set_scale(ss_lora *a, float scale) {
    if (!isfinite(scale) || scale == a->scale) return;
    a->scale = scale;
    a->m->lora_version++;
    a->m->lora_dirty = a->m->lora_merged;
}

void ss_lora_set_enabled(ss_lora *a, bool on) {
    if (on == a->enabled) return;
    a->enabled = on;
    a->m->lora_version++;
    a->m->lora_dirty = a->m->lora_merged;
}

/* ---------------------------------------------------------------- norms */

/* A tensor's elements as doubles (malloc'd). */
static double *as_doubles(const ss_tensor *t, size_t count) {
    double *d = malloc(count * sizeof *d);
    const size_t es = ss_dtype_size(t->dtype);
    for (size_t i = 0; d && i < count; i++) d[i] = ss_element_f32(t->dtype, (const char *)t->data + i * es);
    return d;
}

static double frobenius(const double *x, size_t count) {
    double s = 0;
    for (size_t i = 0; i < count; i++) s += x[i] * x[i];
    return sqrt(s);
}

/* |B A| from G_A = A A^T and G_B = B^T B (r x r each). */
static double product_norm(const double *A, const double *B, int r, size_t in, size_t out) {
    double sum = 0;
    for (int i = 0; i < r; i++)
        for (int j = 0; j < r; j++) {
            double ga = 0, gb = 0;
            for (size_t k = 0; k < in; k++) ga += A[i * in + k] * A[j * in + k];
            for (size_t k = 0; k < out; k++) gb += B[k * r + i] * B[k * r + j];
            sum += ga * gb;
        }
    return sqrt(sum > 0 ? sum : 0);
}

static ss_status measure_pair(ss_lora *a, lora_pair *p, ss_error *err) {
    const ss_model *m = a->m;
    char name[160];
    snprintf(name, sizeof name, "model.layers.%d.%s.%s.weight", p->layer, p->module <= LORA_O ? "self_attn" : "mlp",
             module_names[p->module]);
    const ss_tensor *w0 = ss_checkpoint_find(m->ck, name);
    if (!w0) return ss_fail(err, SS_EFORMAT, "%s: the model has no tensor '%s'", m->dir, name);
    const size_t in = (size_t)p->ta->shape[1], out = (size_t)p->tb->shape[0], r = (size_t)a->rank;
    double *A = as_doubles(p->ta, r * in), *B = as_doubles(p->tb, out * r);
    if (!A || !B) {
        free(A), free(B);
        return ss_fail(err, SS_ENOMEM, "%s: out of memory for the norms", a->dir);
    }
    p->a_norm = frobenius(A, r * in), p->b_norm = frobenius(B, out * r);
    p->ab_norm = product_norm(A, B, a->rank, in, out);
    free(A), free(B);
    double s = 0;
    const size_t es = ss_dtype_size(w0->dtype), count = w0->nbytes / es;
    for (size_t i = 0; i < count; i++) {
        const double v = ss_element_f32(w0->dtype, (const char *)w0->data + i * es);
        s += v * v;
    }
    p->w0_norm = sqrt(s);
    return SS_OK;
}

ss_status ss_lora_norms(ss_lora *a, const ss_lora_norm **rows, int *n, ss_error *err) {
    if (!a->rows && !(a->rows = calloc((size_t)a->n, sizeof *a->rows)))
        return ss_fail(err, SS_ENOMEM, "%s: out of memory for the norms", a->dir);
    for (int i = 0; !a->measured && i < a->n; i++) {
        ss_status st = measure_pair(a, &a->pairs[i], err);
        if (st != SS_OK) return st;
    }
    a->measured = true;
    const double s = fabs((double)a->scale * a->scaling);
    for (int i = 0; i < a->n; i++) {
        const lora_pair *p = &a->pairs[i];
        /* numel(A) / numel(B) = r in / (out r) = in / out */
        const double in_over_out = (double)p->ta->shape[1] / (double)p->tb->shape[0];
        a->rows[i] = (ss_lora_norm){p->layer,
                                    module_names[p->module],
                                    p->a_norm,
                                    p->b_norm,
                                    s * p->ab_norm,
                                    p->w0_norm > 0 ? s * p->ab_norm / p->w0_norm : 0,
                                    p->b_norm > 0 ? p->a_norm / (in_over_out * p->b_norm) : INFINITY};
    }
    *rows = a->rows, *n = a->n;
    return SS_OK;
}
