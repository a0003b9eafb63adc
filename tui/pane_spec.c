/* pane_spec.c — the speculation pane: acceptance overall and per draft position, mean accepted
 * length, the time split, tokens/s and speedup, the session's sparkline, EasySpec off and on. */

#include "app.h"
#include "spec_view.h"

void pane_spec_draw(tui *ui, pane_state *ps) {
    workbench *wb = &ui->wb;
    const char *kind = wb->session ? ss_session_draft_kind(wb->session) : "none";
    spec_view_build(&ui->spec, &wb->stats, &wb->params, kind, getmaxx(ps->win) - 3, ui->unicode);
    pane_draw_styled(ui, ps, PANE_SPEC, &ui->spec);
}
