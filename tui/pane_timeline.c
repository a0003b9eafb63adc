/* pane_timeline.c — the per-layer timeline of the last step. The tracer has not landed in the
 * engine, so the pane says so instead of drawing anything it could not measure. */
#include "app.h"

void pane_timeline_draw(tui *ui, pane_state *ps) {
    ps->content_lines = ps->view_lines = 0;
    pane_frame(ps->win, layout_pane_title(PANE_TIMELINE), ui->focus == PANE_TIMELINE, NULL);
    pane_message(ps->win, "not available yet (tracer has not landed)", TH_NOTICE);
}
