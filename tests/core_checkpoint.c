/* core_checkpoint.c — writes random Llama-family checkpoints for the core tests. */
#include "core_checkpoint.h"

#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---------------------------------------------------------------- values */

static uint64_t next_u64(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static float uniform_pm1(uint64_t *s) { return (float)((double)(next_u64(s) >> 11) * 0x1.0p-52 - 1.0); }

/* f32 -> IEEE half, round to nearest even; the test values are far from the subnormal range. */
static uint16_t f32_to_f16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    uint32_t sign = (u >> 16) & 0x8000u;
    int exp = (int)((u >> 23) & 0xff) - 127 + 15;
    uint32_t mant = u & 0x7fffffu;
    if (exp <= 0) return (uint16_t)sign; /* flush tiny values to zero */
    if (exp >= 31) return (uint16_t)(sign | 0x7c00u);
    uint32_t h = sign | ((uint32_t)exp << 10) | (mant >> 13);
    uint32_t rest = mant & 0x1fffu;
    if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) h++;
    return (uint16_t)h;
}

/* Rounds v to the dtype; writes its bytes to dst. */
static float store(ss_dtype dtype, float v, unsigned char *dst) {
    if (dtype == SS_F32) {
        memcpy(dst, &v, 4);
        return v;
    }
    uint16_t h = dtype == SS_BF16 ? ss_f32_to_bf16(v) : f32_to_f16(v);
    memcpy(dst, &h, 2);
    return dtype == SS_BF16 ? ss_bf16_to_f32(h) : ss_f16_to_f32(h);
}

/* ---------------------------------------------------------------- tensor list */

typedef enum { KIND_MATRIX, KIND_EMBED, KIND_NORM, KIND_BIAS } tensor_kind;

static int add_tensor(ck_model *m, const char *name, int rows, int cols, tensor_kind kind, uint64_t *rng) {
    if (m->spec.omit && strcmp(m->spec.omit, name) == 0) return 0;
    ck_tensor *grown = realloc(m->t, (size_t)(m->n + 1) * sizeof *grown);
    if (!grown) return -1;
    m->t = grown;
    ck_tensor *t = &m->t[m->n];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->rows = rows;
    t->cols = cols;
    t->data = malloc((size_t)rows * cols * sizeof(float));
    if (!t->data) return -1;
    m->n++;
    /* Matrices: std 1/sqrt(fan_in) keeps activations O(1); norms near 1; small biases. */
    float scale = kind == KIND_MATRIX ? sqrtf(3.0f / (float)cols) : kind == KIND_EMBED ? 1.0f : kind == KIND_NORM ? 0.3f : 0.2f;
    for (size_t i = 0; i < (size_t)rows * cols; i++)
        t->data[i] = (kind == KIND_NORM ? 1.0f : 0.0f) + scale * uniform_pm1(rng);
    uint64_t noise = m->spec.noise_seed ^ (uint64_t)m->n * 0x9E3779B97F4A7C15ull;
    for (size_t i = 0; m->spec.noise > 0 && i < (size_t)rows * cols; i++)
        t->data[i] += m->spec.noise * scale * uniform_pm1(&noise);
    return 0;
}

static int build(ck_model *m) {
    const ck_spec *s = &m->spec;
    uint64_t rng = s->seed;
    int hd = m->head_dim, qd = s->heads * hd, kd = s->kv_heads * hd;
    if (add_tensor(m, "model.embed_tokens.weight", s->vocab, s->hidden, KIND_EMBED, &rng)) return -1;
    for (int l = 0; l < s->layers; l++) {
        struct {
            const char *suffix;
            int rows, cols;
            tensor_kind kind;
            bool wanted;
        } list[] = {
            {"input_layernorm.weight", 1, s->hidden, KIND_NORM, true},
            {"self_attn.q_proj.weight", qd, s->hidden, KIND_MATRIX, true},
            {"self_attn.k_proj.weight", kd, s->hidden, KIND_MATRIX, true},
            {"self_attn.v_proj.weight", kd, s->hidden, KIND_MATRIX, true},
            {"self_attn.o_proj.weight", s->hidden, qd, KIND_MATRIX, true},
            {"self_attn.q_proj.bias", 1, qd, KIND_BIAS, strcmp(s->arch, "qwen2") == 0},
            {"self_attn.k_proj.bias", 1, kd, KIND_BIAS, strcmp(s->arch, "qwen2") == 0},
            {"self_attn.v_proj.bias", 1, kd, KIND_BIAS, strcmp(s->arch, "qwen2") == 0},
            {"self_attn.q_norm.weight", 1, hd, KIND_NORM, strcmp(s->arch, "qwen3") == 0},
            {"self_attn.k_norm.weight", 1, hd, KIND_NORM, strcmp(s->arch, "qwen3") == 0},
            {"post_attention_layernorm.weight", 1, s->hidden, KIND_NORM, true},
            {"mlp.gate_proj.weight", s->intermediate, s->hidden, KIND_MATRIX, true},
            {"mlp.up_proj.weight", s->intermediate, s->hidden, KIND_MATRIX, true},
            {"mlp.down_proj.weight", s->hidden, s->intermediate, KIND_MATRIX, true},
        };
        for (size_t i = 0; i < sizeof list / sizeof list[0]; i++) {
            if (!list[i].wanted) continue;
            char name[96];
            snprintf(name, sizeof name, "model.layers.%d.%s", l, list[i].suffix);
            if (add_tensor(m, name, list[i].rows, list[i].cols, list[i].kind, &rng)) return -1;
        }
    }
    if (add_tensor(m, "model.norm.weight", 1, s->hidden, KIND_NORM, &rng)) return -1;
    if (!s->tied && add_tensor(m, "lm_head.weight", s->vocab, s->hidden, KIND_MATRIX, &rng)) return -1;
    return 0;
}

/* ---------------------------------------------------------------- files */

static int write_config(const char *dir, const ck_model *m) {
    const ck_spec *s = &m->spec;
    char path[1024];
    snprintf(path, sizeof path, "%s/config.json", dir);
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    fprintf(f, "{\"model_type\": \"%s\", \"vocab_size\": %d, \"hidden_size\": %d, \"intermediate_size\": %d,\n", s->arch,
            s->vocab, s->hidden, s->intermediate);
    fprintf(f, " \"num_hidden_layers\": %d, \"num_attention_heads\": %d, \"num_key_value_heads\": %d,\n", s->layers,
            s->heads, s->kv_heads);
    if (s->head_dim) fprintf(f, " \"head_dim\": %d,\n", s->head_dim);
    fprintf(f, " \"max_position_embeddings\": %d, \"rms_norm_eps\": 1e-05, \"rope_theta\": %.1f,\n",
            s->max_position ? s->max_position : 512, s->rope_theta > 0 ? s->rope_theta : 10000.0f);
    if (s->rope == SS_ROPE_LINEAR)
        fprintf(f, " \"rope_scaling\": {\"rope_type\": \"linear\", \"factor\": %g},\n", s->rope_factor);
    if (s->rope == SS_ROPE_LLAMA3)
        fprintf(f,
                " \"rope_scaling\": {\"rope_type\": \"llama3\", \"factor\": %g, \"low_freq_factor\": %g,"
                " \"high_freq_factor\": %g, \"original_max_position_embeddings\": %d},\n",
                s->rope_factor, s->rope_low, s->rope_high, s->rope_original);
    fprintf(f, " \"tie_word_embeddings\": %s, \"hidden_act\": \"silu\", \"bos_token_id\": 1, \"eos_token_id\": 2,\n",
            s->tied ? "true" : "false");
    fprintf(f, " \"torch_dtype\": \"%s\"}\n",
            s->dtype == SS_F32 ? "float32" : s->dtype == SS_BF16 ? "bfloat16" : "float16");
    return fclose(f) == 0 ? 0 : -1;
}

static int write_safetensors(const char *dir, ck_model *m) {
    ss_dtype dtype = m->spec.dtype;
    size_t esize = ss_dtype_size(dtype), total = 0;
    char *header = NULL;
    size_t hlen = 0;
    FILE *h = open_memstream(&header, &hlen);
    if (!h) return -1;
    fputc('{', h);
    for (int i = 0; i < m->n; i++) {
        const ck_tensor *t = &m->t[i];
        size_t bytes = (size_t)t->rows * t->cols * esize;
        if (t->rows == 1)
            fprintf(h, "%s\"%s\":{\"dtype\":\"%s\",\"shape\":[%d],\"data_offsets\":[%zu,%zu]}", i ? "," : "", t->name,
                    ss_dtype_name(dtype), t->cols, total, total + bytes);
        else
            fprintf(h, "%s\"%s\":{\"dtype\":\"%s\",\"shape\":[%d,%d],\"data_offsets\":[%zu,%zu]}", i ? "," : "",
                    t->name, ss_dtype_name(dtype), t->rows, t->cols, total, total + bytes);
        total += bytes;
    }
    fputc('}', h);
    while ((ftell(h) % 8) != 0) fputc(' ', h);
    fclose(h);

    char path[1024];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    FILE *f = fopen(path, "wb");
    unsigned char *data = malloc(total ? total : 1);
    int rc = f && data ? 0 : -1;
    if (rc == 0) {
        size_t at = 0;
        for (int i = 0; i < m->n; i++) {
            ck_tensor *t = &m->t[i];
            for (size_t j = 0; j < (size_t)t->rows * t->cols; j++, at += esize)
                t->data[j] = store(dtype, t->data[j], data + at);
        }
        uint64_t len = hlen;
        unsigned char len_le[8];
        for (int i = 0; i < 8; i++) len_le[i] = (unsigned char)(len >> (8 * i));
        if (fwrite(len_le, 1, 8, f) != 8 || fwrite(header, 1, hlen, f) != hlen || fwrite(data, 1, total, f) != total)
            rc = -1;
    }
    if (f && fclose(f) != 0) rc = -1;
    free(data);
    free(header);
    return rc;
}

int ck_write(const char *dir, const ck_spec *spec, ck_model *out) {
    ck_model m = {.spec = *spec, .head_dim = spec->head_dim ? spec->head_dim : spec->hidden / spec->heads};
    mkdir(dir, 0755); /* an existing folder is fine: its files are replaced */
    int rc = build(&m) || write_config(dir, &m) || write_safetensors(dir, &m) ? -1 : 0;
    if (rc == 0 && out)
        *out = m;
    else
        ck_free(&m);
    return rc;
}

const float *ck_find(const ck_model *m, const char *name) {
    for (int i = 0; i < m->n; i++)
        if (strcmp(m->t[i].name, name) == 0) return m->t[i].data;
    return NULL;
}

void ck_free(ck_model *m) {
    for (int i = 0; i < m->n; i++) free(m->t[i].data);
    free(m->t);
    m->t = NULL;
    m->n = 0;
}

int ck_tempdir(char *out, size_t len) {
    const char *tmp = getenv("TMPDIR");
    snprintf(out, len, "%s/specscope-core-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    return mkdtemp(out) ? 0 : -1;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) { return remove(path); }

void ck_remove(const char *dir) { nftw(dir, remove_entry, 8, FTW_DEPTH | FTW_PHYS); }
