/* report.h — statistics as JSON, in the shape of DESIGN.md's `generate --json` contract. */
#ifndef SPECSCOPE_REPORT_H
#define SPECSCOPE_REPORT_H

#include <jansson.h>

#include "specscope.h"

/* The "stats" object: generated, steps, tokens_per_s, draft (or null), time_ms. */
json_t *report_stats(const ss_stats *st);
/* The whole generate object: text, tokens, sources, prompt_tokens, stats. */
json_t *report_result(const ss_result *r);
/* Prints a JSON value on one line to stdout, with a newline. */
void report_print(json_t *v);

#endif
