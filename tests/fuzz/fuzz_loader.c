/* fuzz_loader.c — libFuzzer target for the checkpoint loader: each input is tried both as a whole
 * safetensors file (ss_checkpoint_add_buffer) and as a config.json (ss_config_parse). Besides the
 * sanitizers it checks the promises the rest of the engine relies on: every accepted tensor's bytes lie
 * inside the input and match its shape, and an accepted config has a consistent geometry. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "config.h"
#include "safetensors.h"

static void require(int cond) {
    if (!cond) __builtin_trap();
}

static void check_message(const ss_error *err) { require(err->msg[0] && !strchr(err->msg, '\n')); }

static void fuzz_safetensors(const uint8_t *data, size_t size) {
    ss_checkpoint *ck = ss_checkpoint_new();
    ss_error err = {0};
    if (ss_checkpoint_add_buffer(ck, data, size, "fuzz.safetensors", &err) != SS_OK) {
        check_message(&err);
        require(ss_checkpoint_count(ck) == 0);
    }
    for (int i = 0; i < ss_checkpoint_count(ck); i++) {
        const ss_tensor *t = ss_checkpoint_tensor(ck, i);
        const uint8_t *p = t->data;
        require(p >= data + 8 && p + t->nbytes <= data + size);
        size_t numel = 1;
        for (int d = 0; d < t->ndim; d++) numel *= (size_t)t->shape[d];
        require(numel * ss_dtype_size(t->dtype) == t->nbytes);
        require(ss_checkpoint_find(ck, t->name) == t);
        require(ss_checkpoint_expect(ck, t->name, t->ndim, t->shape, NULL, &err) == SS_OK);
    }
    ss_checkpoint_close(ck);
}

static void fuzz_config(const uint8_t *data, size_t size) {
    ss_config c;
    ss_error err = {0};
    if (ss_config_parse((const char *)data, size, "fuzz/config.json", &c, &err) != SS_OK) {
        check_message(&err);
        return;
    }
    require(c.vocab_size > 0 && c.hidden > 0 && c.intermediate > 0 && c.n_layers > 0);
    require(c.n_heads > 0 && c.n_kv_heads > 0 && c.n_heads % c.n_kv_heads == 0);
    require(c.head_dim > 0 && c.head_dim % 2 == 0 && c.max_position > 0);
    require(c.rms_eps > 0 && c.rope_theta > 0 && c.rope_factor > 0);
    require(c.bos_id >= -1 && c.bos_id < c.vocab_size && c.n_eos >= 0 && c.n_eos <= SS_MAX_EOS);
    for (int i = 0; i < c.n_eos; i++) require(c.eos_ids[i] >= 0 && c.eos_ids[i] < c.vocab_size);
    if (c.rope_type == SS_ROPE_LLAMA3) require(c.rope_high_freq_factor > c.rope_low_freq_factor);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_safetensors(data, size);
    fuzz_config(data, size);
    return 0;
}
