/* app.h — the ncurses interface: five panes around a workbench, a status line, a help overlay,
 * keys and mouse. Everything here runs on the one interface thread; the generation and scripts
 * run on their own threads and reach it only through the workbench's queues. */
#ifndef SPECSCOPE_APP_H
#define SPECSCOPE_APP_H

#include <curses.h>
#include <stdbool.h>

#include "layout.h"
#include "styled_text.h"
#include "transcript.h"
#include "workbench.h"

typedef struct {
    WINDOW *win;
    int scroll;        /* chat, console: lines up from the bottom (0 follows the end);
                          the others: lines down from the top */
    int content_lines; /* at the last draw, to bound scrolling */
    int view_lines;    /* rows of content the pane showed */
} pane_state;

typedef struct {
    workbench wb;
    layout lay;
    int rows, cols;
    pane_state panes[N_PANES];
    WINDOW *status, *overlay;
    int focus;          /* a pane_id */
    int zoom;           /* a pane_id, or -1 */
    bool help;          /* the help overlay is open */
    bool unicode;       /* block elements can be drawn */
    transcript console; /* the console's output */
    styled_text spec;   /* the speculation pane's content, rebuilt each frame */
    styled_text timeline; /* the timeline pane's content, laid out each frame from the trace feed */
    styled_text lora;     /* the lora pane's content (lora_view.c) */
    int cursor_y, cursor_x; /* where the console's input cursor goes (screen cells), -1: hidden */
    bool dirty;
} tui;

/* Sets up the workbench with the interface as its view (nothing is opened yet). */
bool app_init(tui *ui, const gen_options *o);
/* Runs the interface on the opened workbench until /quit, F10 or Ctrl-Q. Returns the exit status. */
int app_run(tui *ui);
void app_free(tui *ui);

/* Panes (pane_*.c): draw into ps->win, which the frame around them already fills. */
void pane_chat_draw(tui *ui, pane_state *ps);
void pane_spec_draw(tui *ui, pane_state *ps);
void pane_timeline_draw(tui *ui, pane_state *ps);
void pane_lora_draw(tui *ui, pane_state *ps);
void pane_console_draw(tui *ui, pane_state *ps);
/* Console output (the workbench's print hook lands here). */
void pane_console_print(tui *ui, out_kind kind, const char *text);

/* Shared drawing (pane.c). */
/* The box, the title (highlighted when focused) and an optional note at the right of the top border. */
void pane_frame(WINDOW *w, const char *title, bool focused, const char *note);
/* Draws n wide characters in role at (y, x), clipped to maxw columns; returns the columns used. */
int pane_put(WINDOW *w, int y, int x, int maxw, const wchar_t *s, int n, theme_role role);
/* Draws transcript lines [first, first+count) of t into the rectangle (top, left, width). */
void pane_draw_transcript(WINDOW *w, transcript *t, int top, int left, int width, int first, int count,
                          theme_role (*role_of)(char source));
/* Styled lines of t in a framed, scrolling pane (title of pane id; "N more lines" when cut). */
void pane_draw_styled(tui *ui, pane_state *ps, pane_id id, const styled_text *t);
/* Clamps a scroll offset to [0, content - view]. */
int pane_clamp_scroll(int scroll, int content, int view);
/* A centred one-line message in a pane (for panes with nothing to show). */
void pane_message(WINDOW *w, const char *text, theme_role role);

#endif
