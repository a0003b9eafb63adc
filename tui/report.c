/* report.c — JSON renderings of generation results and statistics. */
#include <stdio.h>
#include <stdlib.h>

#include "report.h"

static json_t *draft_stats(const ss_stats *st) {
    if (!st->has_draft) return json_null();
    json_t *per = json_array();
    for (int i = 0; i < st->k && i < SS_MAX_K; i++)
        json_array_append_new(per, st->pos_proposed[i] ? json_real((double)st->pos_accepted[i] / st->pos_proposed[i])
                                                       : json_null());
    return json_pack("{s:i, s:I, s:I, s:o, s:f, s:o}", "k", st->k, "proposed", (json_int_t)st->proposed, "accepted",
                     (json_int_t)st->accepted, "acceptance_rate",
                     st->proposed ? json_real((double)st->accepted / st->proposed) : json_null(),
                     "mean_accepted_length", st->mean_accepted_length, "per_position", per);
}

json_t *report_stats(const ss_stats *st) {
    return json_pack("{s:i, s:i, s:f, s:o, s:{s:f, s:f, s:f, s:f}}", "generated", st->generated, "steps", st->steps,
                     "tokens_per_s", st->tokens_per_s, "draft", draft_stats(st), "time_ms", "prefill",
                     st->ms_prefill, "draft", st->ms_draft, "verify", st->ms_verify, "calibrate", st->ms_calibrate);
}

json_t *report_result(const ss_result *r) {
    json_t *tokens = json_array(), *sources = json_array();
    for (int i = 0; i < r->tokens.n; i++) {
        json_array_append_new(tokens, json_integer(r->tokens.ids[i]));
        json_array_append_new(sources, json_stringn(&r->sources[i], 1));
    }
    json_t *text = json_string(r->text ? r->text : "");
    if (!text) text = json_string("");  /* decoders repair invalid UTF-8, so this is a last resort */
    return json_pack("{s:o, s:o, s:o, s:i, s:o}", "text", text, "tokens", tokens, "sources", sources,
                     "prompt_tokens", r->stats.prompt_tokens, "stats", report_stats(&r->stats));
}

void report_print(json_t *v) {
    char *s = json_dumps(v, JSON_COMPACT | JSON_ENSURE_ASCII | JSON_REAL_PRECISION(10));
    if (s) puts(s);
    free(s);
}
