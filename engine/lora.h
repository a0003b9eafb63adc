/* lora.h — LoRA adapters inside the engine: what forward.c applies and model.c frees. The public
 * face is ss_lora_* in specscope.h. */
#ifndef SPECSCOPE_LORA_H
#define SPECSCOPE_LORA_H

#include "model.h"

/* The projections an adapter can target, in the order norms are listed. */
typedef enum { LORA_Q = 0, LORA_K, LORA_V, LORA_O, LORA_GATE, LORA_UP, LORA_DOWN, LORA_MODULES } lora_module;

/* out[n, rows of the projection] += scale * s * B (A in) for every enabled adapter that targets
 * (layer, module), in load order. Issues nothing when none does, so a model without adapters runs
 * exactly the ops it ran before adapters existed. */
void ss_lora_apply(ss_model *m, int layer, lora_module module, float *out, const float *in, int n);

/* In merged mode, refolds the weights when an adapter changed since the last fold (forward.c calls
 * it before every forward, outside any graph capture: it uploads weights). */
ss_status ss_lora_refold(ss_model *m, ss_error *err);

/* Bytes of the factors of m's enabled adapters, as the backend holds them (a decoded token reads
 * them all). */
size_t ss_lora_bytes(const ss_model *m);

/* Unbinds and frees every adapter of m (model teardown, before the backend goes). */
void ss_lora_free_all(ss_model *m);

#endif
