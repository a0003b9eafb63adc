/* layout.h — where the five panes go for a terminal size and a zoom state. Pure arithmetic, so
 * that every size from 80x24 up can be checked without a terminal. */
#ifndef SPECSCOPE_LAYOUT_H
#define SPECSCOPE_LAYOUT_H

#include <stdbool.h>

typedef enum { PANE_CHAT = 0, PANE_SPEC, PANE_TIMELINE, PANE_LORA, PANE_CONSOLE, N_PANES } pane_id;

typedef struct {
    int y, x, h, w;
} rect;

typedef struct {
    rect pane[N_PANES];
    bool visible[N_PANES];
    rect status;     /* the one-line status bar at the bottom */
    bool cramped;    /* smaller than 80x24: only chat and console share the screen (zoom shows the rest) */
    bool too_small;  /* nothing fits: only a message is drawn */
} layout;

#define LAYOUT_MIN_COLS 80
#define LAYOUT_MIN_ROWS 24

/* zoom: -1 for none, else the pane that takes the screen (the console keeps its strip below any
 * other zoomed pane, since it holds the command line). */
void layout_compute(layout *l, int rows, int cols, int zoom);

/* The pane whose rectangle holds the cell, or -1. */
int layout_pane_at(const layout *l, int y, int x);

/* The pane names, as the titles show them. */
const char *layout_pane_title(pane_id id);

#endif
