/* error.c — status codes and one-line error messages. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "specscope.h"

/* Messages are one line: newlines from nested sources (JSON parsers, CUDA) become spaces. */
static void flatten(char *s) {
    for (; *s; s++)
        if (*s == '\n' || *s == '\r') *s = ' ';
}

ss_status ss_fail(ss_error *err, ss_status status, const char *fmt, ...) {
    if (!err) return status;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    flatten(err->msg);
    err->status = status;
    return status;
}

ss_status ss_fail_prefix(ss_error *err, const char *fmt, ...) {
    if (!err) return SS_EARG;
    char prefix[256], old[sizeof err->msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof old);
    snprintf(err->msg, sizeof err->msg, "%s: %s", prefix, old);
    flatten(err->msg);
    return err->status;
}

const char *ss_status_name(ss_status status) {
    switch (status) {
    case SS_OK: return "ok";
    case SS_EIO: return "i/o error";
    case SS_EFORMAT: return "format error";
    case SS_EUNSUPPORTED: return "unsupported";
    case SS_ENOMEM: return "out of memory";
    case SS_EARG: return "bad argument";
    case SS_EDEVICE: return "device error";
    case SS_ESTOPPED: return "stopped";
    }
    return "unknown";
}
