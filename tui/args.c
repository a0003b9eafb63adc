/* args.c — checked parsing of option values shared by the subcommands. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"

const char *arg_value(const char *cmd, int argc, char **argv, int *i) {
    if (*i + 1 >= argc) {
        fprintf(stderr, "specscope %s: option %s needs a value\n", cmd, argv[*i]);
        return NULL;
    }
    return argv[++*i];
}

bool arg_int(const char *cmd, const char *opt, const char *val, long lo, long hi, int *out) {
    char *end;
    errno = 0;
    long v = strtol(val, &end, 10);
    if (errno || end == val || *end || v < lo || v > hi) {
        fprintf(stderr, "specscope %s: %s '%s' is not an integer in [%ld, %ld]\n", cmd, opt, val, lo, hi);
        return false;
    }
    *out = (int)v;
    return true;
}

bool arg_u64(const char *cmd, const char *opt, const char *val, uint64_t *out) {
    char *end;
    errno = 0;
    unsigned long long v = strtoull(val, &end, 10);
    if (errno || end == val || *end || val[0] == '-') {
        fprintf(stderr, "specscope %s: %s '%s' is not a non-negative integer\n", cmd, opt, val);
        return false;
    }
    *out = v;
    return true;
}

bool arg_float(const char *cmd, const char *opt, const char *val, double lo, double hi, float *out) {
    char *end;
    errno = 0;
    double v = strtod(val, &end);
    if (errno || end == val || *end || !isfinite(v) || v < lo || v > hi) {
        fprintf(stderr, "specscope %s: %s '%s' is not a number in [%g, %g]\n", cmd, opt, val, lo, hi);
        return false;
    }
    *out = (float)v;
    return true;
}

bool arg_backend(const char *cmd, const char *val, ss_backend_kind *out) {
    if (strcmp(val, "auto") == 0) *out = SS_BACKEND_AUTO;
    else if (strcmp(val, "cpu") == 0) *out = SS_BACKEND_CPU;
    else if (strcmp(val, "cuda") == 0) *out = SS_BACKEND_CUDA;
    else {
        fprintf(stderr, "specscope %s: --backend '%s' is not one of auto, cpu, cuda\n", cmd, val);
        return false;
    }
    return true;
}

bool arg_ids(const char *cmd, const char *opt, const char *val, ss_ids *out) {
    const char *p = val;
    while (*p) {
        while (*p == ' ' || *p == ',' || *p == '\t' || *p == '\n') p++;
        if (!*p) break;
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (end == p || errno || v < 0 || v > 0x7fffffff || (*end && !strchr(" ,\t\n", *end))) {
            fprintf(stderr, "specscope %s: %s: '%.20s' is not a token id\n", cmd, opt, p);
            return false;
        }
        if (ss_ids_push(out, (int)v, NULL)) {
            fprintf(stderr, "specscope %s: out of memory reading %s\n", cmd, opt);
            return false;
        }
        p = end;
    }
    if (out->n == 0) {
        fprintf(stderr, "specscope %s: %s holds no token ids\n", cmd, opt);
        return false;
    }
    return true;
}

bool is_help(const char *arg) { return strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0; }
