/* tiny_model.c — small random checkpoints for tests (see tiny_model.h). */
#include "tiny_model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

tiny_spec tiny_default(void) {
    return (tiny_spec){.vocab = 64, .hidden = 32, .intermediate = 64, .layers = 2, .heads = 4, .kv_heads = 2,
                       .tied = true, .scale = 0.2f, .seed = 1};
}

static uint64_t mix(uint64_t x) {
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static uint64_t name_hash(const char *name, uint64_t seed) {
    uint64_t h = seed * 0x9E3779B97F4A7C15ull + 1469598103934665603ull;
    for (; *name; name++) h = mix(h ^ (unsigned char)*name);
    return h;
}

/* Standard normal from two hashed uniforms (Box-Muller). */
static float normal(uint64_t *state) {
    *state = mix(*state + 0x9E3779B97F4A7C15ull);
    double u1 = ((*state >> 11) + 1.0) / 9007199254740993.0;
    *state = mix(*state + 0x9E3779B97F4A7C15ull);
    double u2 = (*state >> 11) / 9007199254740992.0;
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

typedef struct {
    char name[96];
    int rows, cols; /* cols 0: a vector of rows */
    float mean, std;
} tensor_desc;

static int describe(const tiny_spec *s, tensor_desc *t, int max) {
    int n = 0, hd = s->hidden / s->heads;
    int q = s->heads * hd, kv = s->kv_heads * hd;
#define ADD(NAME, R, C, MEAN, STD)                                        \
    do {                                                                  \
        if (n < max) t[n] = (tensor_desc){"", (R), (C), (MEAN), (STD)}; \
        if (n < max) snprintf(t[n].name, sizeof t[n].name, "%s", NAME);   \
        n++;                                                              \
    } while (0)
    ADD("model.embed_tokens.weight", s->vocab, s->hidden, 0, 1.0f);
    for (int l = 0; l < s->layers; l++) {
        char b[96];
        static const struct { const char *suffix; int kind; } parts[] = {
            {"input_layernorm.weight", 0}, {"self_attn.q_proj.weight", 1}, {"self_attn.k_proj.weight", 2},
            {"self_attn.v_proj.weight", 2}, {"self_attn.o_proj.weight", 3}, {"post_attention_layernorm.weight", 0},
            {"mlp.gate_proj.weight", 4}, {"mlp.up_proj.weight", 4}, {"mlp.down_proj.weight", 5}};
        for (size_t i = 0; i < sizeof parts / sizeof *parts; i++) {
            snprintf(b, sizeof b, "model.layers.%d.%s", l, parts[i].suffix);
            switch (parts[i].kind) {
            case 0: ADD(b, s->hidden, 0, 1.0f, 0.1f); break;
            case 1: ADD(b, q, s->hidden, 0, s->scale); break;
            case 2: ADD(b, kv, s->hidden, 0, s->scale); break;
            case 3: ADD(b, s->hidden, q, 0, s->scale); break;
            case 4: ADD(b, s->intermediate, s->hidden, 0, s->scale); break;
            default: ADD(b, s->hidden, s->intermediate, 0, s->scale); break;
            }
        }
    }
    ADD("model.norm.weight", s->hidden, 0, 1.0f, 0.1f);
    if (!s->tied) ADD("lm_head.weight", s->vocab, s->hidden, 0, s->scale);
#undef ADD
    return n;
}

static int write_config(const char *dir, const tiny_spec *s) {
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", dir);
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    fprintf(f,
            "{\"architectures\": [\"LlamaForCausalLM\"], \"model_type\": \"llama\", \"vocab_size\": %d,\n"
            " \"hidden_size\": %d, \"intermediate_size\": %d, \"num_hidden_layers\": %d,\n"
            " \"num_attention_heads\": %d, \"num_key_value_heads\": %d, \"max_position_embeddings\": 512,\n"
            " \"rms_norm_eps\": 1e-05, \"rope_theta\": 10000.0, \"tie_word_embeddings\": %s,\n"
            " \"bos_token_id\": 0, \"eos_token_id\": 1, \"torch_dtype\": \"float32\"}\n",
            s->vocab, s->hidden, s->intermediate, s->layers, s->heads, s->kv_heads, s->tied ? "true" : "false");
    return fclose(f);
}

int tiny_model_write(const char *dir, const tiny_spec *s) {
    mkdir(dir, 0755);
    if (write_config(dir, s)) return -1;
    tensor_desc t[512];
    int n = describe(s, t, 512);
    if (n > 512) return -1;
    /* Header: names, shapes, offsets; padded with spaces to a multiple of 8. */
    size_t cap = 256 + (size_t)n * 200, len = 0, offset = 0;
    char *header = malloc(cap);
    if (!header) return -1;
    len += (size_t)snprintf(header + len, cap - len, "{");
    for (int i = 0; i < n; i++) {
        size_t bytes = (size_t)t[i].rows * (t[i].cols ? t[i].cols : 1) * 4;
        char shape[48];
        if (t[i].cols) snprintf(shape, sizeof shape, "[%d, %d]", t[i].rows, t[i].cols);
        else snprintf(shape, sizeof shape, "[%d]", t[i].rows);
        len += (size_t)snprintf(header + len, cap - len, "%s\"%s\": {\"dtype\": \"F32\", \"shape\": %s, \"data_offsets\": [%zu, %zu]}",
                                i ? ", " : "", t[i].name, shape, offset, offset + bytes);
        offset += bytes;
    }
    len += (size_t)snprintf(header + len, cap - len, "}");
    while (len % 8) header[len++] = ' ';
    char path[4096];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    FILE *f = fopen(path, "wb");
    if (!f) {
        free(header);
        return -1;
    }
    uint64_t hlen = len;
    fwrite(&hlen, 8, 1, f);
    fwrite(header, 1, len, f);
    free(header);
    for (int i = 0; i < n; i++) {
        size_t count = (size_t)t[i].rows * (t[i].cols ? t[i].cols : 1);
        uint64_t base = name_hash(t[i].name, s->seed), noise = name_hash(t[i].name, s->noise_seed ^ 0x5bd1e995);
        for (size_t j = 0; j < count; j++) {
            float v = t[i].mean + t[i].std * normal(&base);
            if (s->noise > 0) v += s->noise * (t[i].std > 0 ? t[i].std : 1) * normal(&noise);
            fwrite(&v, 4, 1, f);
        }
    }
    return fclose(f);
}

int tiny_tempdir(char *out, size_t len) {
    const char *tmp = getenv("TMPDIR");
    snprintf(out, len, "%s/specscope-test-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    return mkdtemp(out) ? 0 : -1;
}

void tiny_remove(const char *dir) {
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
}
