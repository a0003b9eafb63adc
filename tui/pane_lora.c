/* pane_lora.c — the LoRA heatmap. Adapters have not landed in the engine, so the pane says so
 * instead of drawing norms it does not have. */
#include "app.h"

void pane_lora_draw(tui *ui, pane_state *ps) {
    ps->content_lines = ps->view_lines = 0;
    pane_frame(ps->win, layout_pane_title(PANE_LORA), ui->focus == PANE_LORA, NULL);
    pane_message(ps->win, "not available yet (LoRA support has not landed)", TH_NOTICE);
}
