/* config.h — Hugging Face config.json -> ss_config (declared in specscope.h). */
#ifndef SPECSCOPE_CONFIG_H
#define SPECSCOPE_CONFIG_H

#include "specscope.h"

/* path: the config.json file. Every missing / mistyped / out-of-range field is named. */
ss_status ss_config_load(const char *path, ss_config *cfg, ss_error *err);
/* The same from a buffer (tests, fuzzer); source names it in messages. */
ss_status ss_config_parse(const char *json, size_t len, const char *source, ss_config *cfg, ss_error *err);

#endif
