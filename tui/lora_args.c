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
    float scale = 1.0f;
    const char *dir = val;
    if (colon && colon[1]) {
        char *end;
        errno = 0;
        double v = strtod(colon + 1, &end);
        if (*end == '\0' && errno == 0) {
            if (!isfinite(v)) {
                fprintf(stderr, "specscope %s: --lora '%s': the scale is not a finite number\n", cmd, val);
                return false;
            }
            size_t len = (size_t)(colon - val);
            if (len == 0 || len >= sizeof l->owned[0]) {
                fprintf(stderr, "specscope %s: --lora '%s': no adapter folder before the scale\n", cmd, val);
                return false;
            }
            memcpy(l->owned[l->n], val, len);
            l->owned[l->n][len] = '\0';
            dir = l->owned[l->n], scale = (float)v;
        }
    }
    if (!*dir) {
        fprintf(stderr, "specscope %s: --lora needs an adapter folder\n", cmd);
        return false;
    }
    l->dir[l->n] = dir, l->scale[l->n] = scale, l->n++;
    return true;
}

bool lora_args_load(const lora_args *l, const char *cmd, ss_model *m) {
    for (int i = 0; i < l->n; i++) {
        ss_error err = {0};
        ss_lora *a;
        if (ss_lora_load(m, l->dir[i], l->scale[i], &a, &err) != SS_OK) {
            fprintf(stderr, "specscope %s: %s\n", cmd, err.msg);
            return false;
        }
    }
    return true;
}
