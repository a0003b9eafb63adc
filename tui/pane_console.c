/* pane_console.c — the console: command output above, the readline command line at the bottom
 * (console_input.c feeds readline; this draws its buffer, scrolled sideways to keep the cursor in
 * view, and tells the frame where the terminal cursor goes). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <readline/readline.h>

#include "app.h"

#define CONSOLE_MAX_CELLS 200000

static theme_role console_role(char source) {
    return source == SRC_ERROR ? TH_ERROR : source == SRC_ECHO ? TH_PROMPT : TH_NORMAL;
}

void pane_console_print(tui *ui, out_kind kind, const char *text) {
    char source = kind == OUT_ERROR || kind == OUT_SCRIPT_ERROR ? SRC_ERROR
                  : kind == OUT_ECHO                            ? SRC_ECHO
                  : kind == OUT_SCRIPT                          ? SRC_SCRIPT
                                                                : SRC_NOTE;
    transcript *t = &ui->console;
    if (t->n_cells && t->cells[t->n_cells - 1].ch != L'\n') transcript_add(t, "\n", source);
    transcript_add(t, text, source);
    transcript_add(t, "\n", source);
    transcript_trim(t, CONSOLE_MAX_CELLS);
    ui->panes[PANE_CONSOLE].scroll = 0; /* new output brings the view back to the end */
    ui->dirty = true;
}

/* UTF-8 (or whatever the locale's) bytes to wide characters; *cursor_at gets the index of the
 * character at byte offset `point`. Returns the count. */
static int widen(const char *s, int point, wchar_t *out, int cap, int *cursor_at) {
    mbstate_t mb;
    memset(&mb, 0, sizeof mb);
    size_t len = strlen(s);
    int n = 0;
    *cursor_at = -1;
    for (size_t i = 0; i < len && n < cap;) {
        if ((int)i >= point && *cursor_at < 0) *cursor_at = n;
        wchar_t wc;
        size_t used = mbrtowc(&wc, s + i, len - i, &mb);
        if (used == (size_t)-1 || used == (size_t)-2 || used == 0) {
            memset(&mb, 0, sizeof mb);
            wc = L'?';
            used = 1;
        }
        out[n++] = wc;
        i += used;
    }
    if (*cursor_at < 0) *cursor_at = n;
    return n;
}

static int span_width(const wchar_t *s, int from, int to) {
    int w = 0;
    for (int i = from; i < to; i++) w += cell_width(s[i]);
    return w;
}

static void draw_input(tui *ui, WINDOW *w, int y, int width) {
    const wchar_t *glyph = ui->unicode ? L"› " : L"> ";
    int x = 1 + pane_put(w, y, 1, width, glyph, 2, TH_PROMPT);
    static wchar_t buf[4096];
    int cursor, n = 0;
    /* readline's own prompt: empty, except while it searches the history ("(reverse-i-search)") */
    const char *shown = rl_display_prompt ? rl_display_prompt : "";
    if (shown[0]) {
        n = widen(shown, 0, buf, 4096, &cursor);
        x += pane_put(w, y, x, width - (x - 1), buf, n, TH_LABEL);
    }
    n = widen(rl_line_buffer ? rl_line_buffer : "", rl_point, buf, 4096, &cursor);
    int avail = width - (x - 1) - 1;
    if (avail < 1) {
        ui->cursor_y = ui->cursor_x = -1;
        return;
    }
    int start = 0;
    while (start < cursor && span_width(buf, start, cursor) > avail) start++;
    pane_put(w, y, x, avail + 1, buf + start, n - start, TH_NORMAL);
    int wy, wx;
    getbegyx(w, wy, wx);
    ui->cursor_y = wy + y;
    ui->cursor_x = wx + x + span_width(buf, start, cursor);
}

void pane_console_draw(tui *ui, pane_state *ps) {
    WINDOW *w = ps->win;
    int h, wd;
    getmaxyx(w, h, wd);
    int width = wd - 2, view = h - 3;
    int lines = transcript_wrap(&ui->console, width);
    /* the wrap leaves an empty last line after the final newline: not worth a row */
    if (lines > 0 && ui->console.lines[lines - 1].start == ui->console.lines[lines - 1].end) lines--;
    if (ps->scroll > 0 && lines > ps->content_lines) ps->scroll += lines - ps->content_lines; /* stay put */
    ps->content_lines = lines;
    ps->view_lines = view;
    ps->scroll = pane_clamp_scroll(ps->scroll, lines, view);
    int first = lines - view - ps->scroll;
    if (first < 0) first = 0;
    char note[48] = "";
    if (ps->scroll > 0) snprintf(note, sizeof note, "%d more lines below", ps->scroll);
    pane_frame(w, layout_pane_title(PANE_CONSOLE), ui->focus == PANE_CONSOLE, note);
    if (view > 0) pane_draw_transcript(w, &ui->console, 1, 1, width, first, lines - first < view ? lines - first : view, console_role);
    draw_input(ui, w, h - 2, width);
}
