/* tiny_model.h — writes small random Llama-family checkpoints (config.json + model.safetensors,
 * F32) for tests that need real model folders: speculative decoding, sessions, the CLI.
 * Each tensor's values come from a hash of (seed, tensor name), so a draft written with the same
 * base seed and fewer layers shares the target's weights, plus its own noise: a draft that
 * agrees with the target often but not always. */
#ifndef SPECSCOPE_TINY_MODEL_H
#define SPECSCOPE_TINY_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    int vocab, hidden, intermediate, layers, heads, kv_heads;
    bool tied;
    float scale;       /* std of matrix weights; embeddings get 1.0 so logits are spread */
    uint64_t seed;     /* base weights */
    float noise;       /* std of extra noise on every weight (0: none) */
    uint64_t noise_seed;
} tiny_spec;

tiny_spec tiny_default(void);
/* Writes dir/config.json and dir/model.safetensors (dir is created). Returns 0 on success. */
int tiny_model_write(const char *dir, const tiny_spec *s);
/* A fresh temporary folder under $TMPDIR (or /tmp), path in out. */
int tiny_tempdir(char *out, size_t len);
/* rm -r of a folder the test made. */
void tiny_remove(const char *dir);

#endif
