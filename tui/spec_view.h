/* spec_view.h — the speculation pane's content as styled lines (the pane draws them; the REPL
 * prints a one-line summary), built from spec_stats and the settings of the next run. */
#ifndef SPECSCOPE_SPEC_VIEW_H
#define SPECSCOPE_SPEC_VIEW_H

#include <stddef.h>

#include "spec_stats.h"
#include "styled_text.h"

/* draft_kind: "none", "model" or "ngram" (ss_session_draft_kind); width: the columns to fill. */
void spec_view_build(styled_text *out, const spec_stats *s, const ss_params *next, const char *draft_kind,
                     int width, bool unicode);

/* One line about the last run: tokens, k, acceptance, mean accepted length, tokens/s, speedup. */
void spec_view_summary(const spec_stats *s, char *buf, size_t size);

#endif
