/* fuzz_lora.c — libFuzzer target for PEFT LoRA adapters (engine/lora.c). Each input becomes, by its
 * first byte, adapter_config.json (beside the llama-all fixture's adapter_model.safetensors) or
 * adapter_model.safetensors (beside its adapter_config.json) in a scratch folder, which is loaded
 * onto the llama-f32 test checkpoint on the CPU. Besides the sanitizers it checks the promises of
 * ss_lora_load: a refused adapter leaves a one-line message and nothing bound, so the model's logits
 * are the base's bit for bit; an accepted one gives finite norms and logits, and unloading it gives
 * the base's logits back bit for bit. scripts/fuzz.sh lora drives it. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "specscope.h"

#define N_IDS 3

static ss_model *model;
static char scratch[] = "/tmp/specscope-fuzz-lora-XXXXXX";
static char *good_config, *good_tensors;
static size_t good_config_len, good_tensors_len;
static float *base_logits, *logits;
static size_t logit_count;

static void require(int cond) {
    if (!cond) __builtin_trap();
}

static char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    require(f != NULL);
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc(*len ? *len : 1);
    require(buf && fread(buf, 1, *len, f) == *len);
    fclose(f);
    return buf;
}

static void put(const char *name, const void *data, size_t len) {
    char path[256];
    snprintf(path, sizeof path, "%s/%s", scratch, name);
    FILE *f = fopen(path, "wb");
    require(f && fwrite(data, 1, len, f) == len && fclose(f) == 0);
}

static void forward(float *out) {
    static const int ids[N_IDS] = {1, 7, 42}, pos[N_IDS] = {0, 1, 2};
    ss_error err = {0};
    require(ss_model_forward(model, ids, pos, N_IDS, out, false, &err) == SS_OK);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    ss_model_opts o = {.dir = FIXTURES_DIR "/llama-f32", .backend = SS_BACKEND_CPU, .max_context = 16, .quiet = true};
    ss_error err = {0};
    require(ss_model_load(&o, &model, &err) == SS_OK);
    require(mkdtemp(scratch) != NULL);
    good_config = slurp(FIXTURES_DIR "/lora/llama-all/adapter_config.json", &good_config_len);
    good_tensors = slurp(FIXTURES_DIR "/lora/llama-all/adapter_model.safetensors", &good_tensors_len);
    logit_count = (size_t)N_IDS * (size_t)ss_model_config(model)->vocab_size;
    base_logits = malloc(logit_count * sizeof *base_logits), logits = malloc(logit_count * sizeof *logits);
    require(base_logits && logits);
    forward(base_logits);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) return 0;
    const int as_config = data[0] & 1;
    put("adapter_config.json", as_config ? (const void *)(data + 1) : good_config, as_config ? size - 1 : good_config_len);
    put("adapter_model.safetensors", as_config ? good_tensors : (const void *)(data + 1),
        as_config ? good_tensors_len : size - 1);
    ss_lora *a = NULL;
    ss_error err = {0};
    if (ss_lora_load(model, scratch, 1.0f, &a, &err) != SS_OK) {
        require(err.msg[0] && !strchr(err.msg, '\n') && a == NULL && ss_model_lora_count(model) == 0);
        forward(logits);
        require(!memcmp(logits, base_logits, logit_count * sizeof *logits));
        return 0;
    }
    require(a != NULL && ss_model_lora_count(model) == 1);
    const ss_lora_norm *rows;
    int n;
    if (ss_lora_norms(a, &rows, &n, &err) == SS_OK) {
        require(n > 0);
        for (int i = 0; i < n; i++) /* NaN factors give NaN norms; nothing gives a negative one */
            require(!(rows[i].a < 0) && !(rows[i].b < 0) && !(rows[i].ba < 0) && !(rows[i].rel < 0) &&
                    !(rows[i].stable < 0));
    } else {
        require(err.msg[0] && !strchr(err.msg, '\n'));
    }
    forward(logits); /* the factors may hold anything, infinities included: only no crash is promised */
    ss_lora_unload(a);
    require(ss_model_lora_count(model) == 0);
    forward(logits);
    require(!memcmp(logits, base_logits, logit_count * sizeof *logits));
    return 0;
}
