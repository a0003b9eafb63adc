/* pane_spec.c — the speculation pane: acceptance overall and per draft position, mean accepted
 * length, the time split, tokens/s and speedup, the session's sparkline, EasySpec off and on. */
#include <stdio.h>

#include "app.h"
#include "spec_view.h"

void pane_spec_draw(tui *ui, pane_state *ps) {
    WINDOW *w = ps->win;
    int h, wd;
    getmaxyx(w, h, wd);
    int width = wd - 3, view = h - 2;
    workbench *wb = &ui->wb;
    const char *kind = wb->session ? ss_session_draft_kind(wb->session) : "none";
    spec_view_build(&ui->spec, &wb->stats, &wb->params, kind, width, ui->unicode);
    int lines = ui->spec.n_lines;
    ps->content_lines = lines;
    ps->view_lines = view;
    ps->scroll = pane_clamp_scroll(ps->scroll, lines, view);
    char note[48] = "";
    int below = lines - ps->scroll - view;
    if (below > 0) snprintf(note, sizeof note, "%d more lines", below);
    pane_frame(w, layout_pane_title(PANE_SPEC), ui->focus == PANE_SPEC, note);
    for (int row = 0; row < view; row++) {
        int n;
        const styled_cell *c = styled_line(&ui->spec, ps->scroll + row, &n);
        int col = 0;
        for (int i = 0; i < n && col < width;) { /* one run per role */
            wchar_t run[256];
            int k = 0;
            unsigned char role = c[i].role;
            while (i < n && c[i].role == role && k < 256) run[k++] = c[i++].ch;
            col += pane_put(w, 1 + row, 2 + col, width - col, run, k, (theme_role)role);
        }
    }
}
