/* args.h — command-line option values, checked: a bad value prints one line naming the option
 * and the value, and the caller exits with status 2. */
#ifndef SPECSCOPE_ARGS_H
#define SPECSCOPE_ARGS_H

#include <stdbool.h>
#include <stdint.h>

#include "specscope.h"

/* The value after option argv[*i] (advancing *i), or NULL with a message when it is missing. */
const char *arg_value(const char *cmd, int argc, char **argv, int *i);
bool arg_int(const char *cmd, const char *opt, const char *val, long lo, long hi, int *out);
bool arg_u64(const char *cmd, const char *opt, const char *val, uint64_t *out);
bool arg_float(const char *cmd, const char *opt, const char *val, double lo, double hi, float *out);
bool arg_backend(const char *cmd, const char *val, ss_backend_kind *out);
/* "1 2 3" or "1,2,3" -> ids. */
bool arg_ids(const char *cmd, const char *opt, const char *val, ss_ids *out);
bool is_help(const char *arg);

#endif
