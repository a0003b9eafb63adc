/* pane_lora.c — the LoRA heatmap of the selected adapter (lora_view.c). While a script runs it may
 * load or unload adapters on its own thread, so the pane keeps the last picture until it ends. */
#include "app.h"
#include "lora_view.h"

void pane_lora_draw(tui *ui, pane_state *ps) {
    workbench *wb = &ui->wb;
    if (!lua_runner_busy(&wb->lua))
        lora_view_build(&ui->lora, wb->session ? ss_session_target(wb->session) : NULL, getmaxx(ps->win) - 3, ui->unicode);
    pane_draw_styled(ui, ps, PANE_LORA, &ui->lora);
}
