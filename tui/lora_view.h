/* lora_view.h — the lora pane's content as styled lines: the selected adapter (the last loaded),
 * its scale and state, and a heatmap of |s*BA|/|W0| over layers (rows) and modules (columns). */
#ifndef SPECSCOPE_LORA_VIEW_H
#define SPECSCOPE_LORA_VIEW_H

#include <stdbool.h>

#include "specscope.h"
#include "styled_text.h"

/* m: the session's target (NULL: no model); width: the columns to fill. */
void lora_view_build(styled_text *out, ss_model *m, int width, bool unicode);

#endif
