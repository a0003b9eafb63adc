/* core_checkpoint.h — small random checkpoints for the model / forward tests: config.json and
 * model.safetensors (F32, F16 or BF16) in a folder, plus the same weights as host floats (after
 * rounding to the stored dtype) for an independent reference implementation. */
#ifndef SPECSCOPE_CORE_CHECKPOINT_H
#define SPECSCOPE_CORE_CHECKPOINT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "specscope.h"

typedef struct {
    const char *arch; /* model_type: llama, mistral, qwen2 (q/k/v biases), qwen3 (q/k norms) */
    int vocab, hidden, intermediate, layers, heads, kv_heads;
    int head_dim; /* 0: hidden / heads, not written to config.json */
    ss_dtype dtype;
    bool tied;          /* tie_word_embeddings; no lm_head.weight written */
    ss_rope_type rope;  /* DEFAULT, LINEAR (factor) or LLAMA3 (all four) */
    float rope_theta, rope_factor, rope_low, rope_high;
    int rope_original;
    int max_position;
    uint64_t seed;
    /* A draft-like variant: the same seed with fewer layers shares the first layers' weights (they
     * are drawn in order), and noise > 0 adds noise * (each tensor's scale) drawn from noise_seed, so
     * it agrees with the original often but not always. */
    float noise;
    uint64_t noise_seed;
    const char *omit; /* a tensor left out (error tests), or NULL */
} ck_spec;

typedef struct {
    char name[96];
    int rows, cols; /* vectors: rows = 1 */
    float *data;
} ck_tensor;

typedef struct {
    ck_spec spec;
    int head_dim;
    ck_tensor *t;
    int n;
} ck_model;

/* Writes dir/config.json and dir/model.safetensors (creating dir); fills out (NULL: not kept). 0 on success. */
int ck_write(const char *dir, const ck_spec *spec, ck_model *out);
const float *ck_find(const ck_model *m, const char *name); /* NULL when absent */
void ck_free(ck_model *m);
/* A fresh folder under $TMPDIR or /tmp; ck_remove deletes it with its files. */
int ck_tempdir(char *out, size_t len);
void ck_remove(const char *dir);

#endif
