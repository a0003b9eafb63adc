/* pane.c — drawing shared by the panes: frames, clipped wide text, transcripts. */
#include <stdio.h>
#include <string.h>

#include "app.h"

void pane_frame(WINDOW *w, const char *title, bool focused, const char *note) {
    int h, wd;
    getmaxyx(w, h, wd);
    (void)h;
    theme_set(w, focused ? TH_BORDER_FOCUS : TH_BORDER);
    box(w, 0, 0);
    theme_set(w, focused ? TH_TITLE_FOCUS : TH_TITLE);
    mvwprintw(w, 0, 2, " %.*s ", wd > 6 ? wd - 6 : 0, title);
    if (note && note[0]) {
        int len = (int)strlen(note), x = wd - len - 4;
        if (x > (int)strlen(title) + 5) {
            theme_set(w, TH_LABEL);
            mvwprintw(w, 0, x, " %s ", note);
        }
    }
    theme_set(w, TH_NORMAL);
}

int pane_put(WINDOW *w, int y, int x, int maxw, const wchar_t *s, int n, theme_role role) {
    int used = 0, count = 0;
    while (count < n) {
        int cw = wcwidth(s[count]);
        if (cw < 0) cw = 1;
        if (used + cw > maxw) break;
        used += cw;
        count++;
    }
    if (count == 0) return 0;
    theme_set(w, role);
    mvwaddnwstr(w, y, x, s, count);
    theme_set(w, TH_NORMAL);
    return used;
}

void pane_draw_transcript(WINDOW *w, transcript *t, int top, int left, int width, int first, int count,
                          theme_role (*role_of)(char source)) {
    wchar_t run[512];
    for (int i = 0; i < count; i++) {
        int li = first + i;
        if (li < 0 || li >= t->n_lines) continue;
        const wrapped_line *line = &t->lines[li];
        int col = 0;
        size_t c = line->start;
        while (c < line->end && col < width) { /* one run per source */
            char src = t->cells[c].source;
            int n = 0;
            while (c < line->end && t->cells[c].source == src && n < (int)(sizeof run / sizeof *run)) run[n++] = t->cells[c++].ch;
            col += pane_put(w, top + i, left + col, width - col, run, n, role_of(src));
        }
    }
}

void pane_draw_styled(tui *ui, pane_state *ps, pane_id id, const styled_text *t) {
    WINDOW *w = ps->win;
    int h, wd;
    getmaxyx(w, h, wd);
    int width = wd - 3, view = h - 2, lines = t->n_lines;
    ps->content_lines = lines;
    ps->view_lines = view;
    ps->scroll = pane_clamp_scroll(ps->scroll, lines, view);
    char note[48] = "";
    int below = lines - ps->scroll - view;
    if (below > 0) snprintf(note, sizeof note, "%d more lines", below);
    pane_frame(w, layout_pane_title(id), ui->focus == (int)id, note);
    for (int row = 0; row < view; row++) {
        int n;
        const styled_cell *c = styled_line(t, ps->scroll + row, &n);
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

int pane_clamp_scroll(int scroll, int content, int view) {
    int max = content - view;
    if (max < 0) max = 0;
    return scroll < 0 ? 0 : scroll > max ? max : scroll;
}

void pane_message(WINDOW *w, const char *text, theme_role role) {
    int h, wd;
    getmaxyx(w, h, wd);
    int inner = wd - 4, rows = h - 2;
    if (inner < 1 || rows < 1) return;
    /* word-wrap into at most `rows` lines, then centre the block */
    const char *starts[16];
    int lens[16], n = 0;
    const char *p = text;
    while (*p && n < 16 && n < rows) {
        while (*p == ' ') p++;
        int len = (int)strlen(p);
        if (len > inner) {
            len = inner;
            while (len > 0 && p[len] != ' ') len--;
            if (len == 0) len = inner;
        }
        starts[n] = p;
        lens[n++] = len;
        p += len;
    }
    int top = 1 + (rows - n) / 2;
    theme_set(w, role);
    for (int i = 0; i < n; i++) mvwaddnstr(w, top + i, 2 + (inner - lens[i]) / 2, starts[i], lens[i]);
    theme_set(w, TH_NORMAL);
}
