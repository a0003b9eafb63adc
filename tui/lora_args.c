/* lora_args.c — see lora_args.h. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lora_args.h"

bool lora_args_add(lora_args *l, const char *cmd, const char *val) {
    if (l->n == MAX_LORA_ARGS) {
        fprintf(stderr, "specscope %s: at most %d --lora adapters\n", cmd, MAX_LORA_ARGS);
        return false;
    }
    const char *colon = strrchr(val, ':');
    size_t len = strlen(val);
    float scale = 1.0f;
    if (colon && colon[1]) {
        char *end;
        errno = 0;
        double v = strtod(colon + 1, &end);
        if (*end == '\0' && errno == 0) {
            if (!isfinite(v)) {
                fprintf(stderr, "specscope %s: --lora '%s': the scale is not a finite number\n", cmd, val);
                return false;
            }
            len = (size_t)(colon - val), scale = (float)v;
        }
    }
    if (len == 0 || len >= sizeof l->dir[0]) {
        fprintf(stderr, "specscope %s: --lora '%s': %s\n", cmd, val, len ? "the folder name is too long" : "no adapter folder");
        return false;
    }
    memcpy(l->dir[l->n], val, len);
    l->dir[l->n][len] = '\0';
    l->scale[l->n++] = scale;
    return true;
}

ss_status lora_args_load(const lora_args *l, ss_model *m, ss_error *err) {
    for (int i = 0; i < l->n; i++) {
        ss_lora *a;
        ss_status st = ss_lora_load(m, l->dir[i], l->scale[i], &a, err);
        if (st != SS_OK) return st;
    }
    return l->merge ? ss_model_lora_merge(m, true, err) : SS_OK;
}
