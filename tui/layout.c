/* layout.c — pane rectangles.
 *
 *   80x24 .. 149 columns             150 columns and more
 *   +--------------+-- speculation   +----------+-- speculation --+-- timeline
 *   | chat         |                 | chat     |                 |
 *   |              +-- timeline      |          |                 +-- lora
 *   |              +-- lora          |          |                 |
 *   +-- console ------------------   +-- console ----------------------------
 *   status line                      status line
 */
#include <string.h>

#include "layout.h"

static const char *const titles[N_PANES] = {"chat", "speculation", "timeline", "lora", "console"};

const char *layout_pane_title(pane_id id) { return id >= 0 && id < N_PANES ? titles[id] : "?"; }

static int clamp(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

static void show(layout *l, pane_id id, int y, int x, int h, int w) {
    l->pane[id] = (rect){y, x, h, w};
    l->visible[id] = h >= 3 && w >= 8;
}

/* Timeline above lora in a column, each a sixth of the height (3 rows at least). */
static void side_column(layout *l, int top_h, int x, int w, bool with_spec) {
    int small = top_h / 6 < 3 ? 3 : top_h / 6;
    if (with_spec) {
        int spec_h = top_h - 2 * small;
        show(l, PANE_SPEC, 0, x, spec_h, w);
        show(l, PANE_TIMELINE, spec_h, x, small, w);
        show(l, PANE_LORA, spec_h + small, x, top_h - spec_h - small, w);
    } else {
        int half = top_h / 2;
        show(l, PANE_TIMELINE, 0, x, half, w);
        show(l, PANE_LORA, half, x, top_h - half, w);
    }
}

void layout_compute(layout *l, int rows, int cols, int zoom) {
    memset(l, 0, sizeof *l);
    if (rows < 8 || cols < 30) {
        l->too_small = true;
        return;
    }
    l->status = (rect){rows - 1, 0, 1, cols};
    int avail = rows - 1;
    l->cramped = rows < LAYOUT_MIN_ROWS || cols < LAYOUT_MIN_COLS;
    int console_h = clamp(avail / 4, 6, 14);
    if (l->cramped) console_h = clamp(avail / 3, 4, 8);
    int top_h = avail - console_h;

    if (zoom == PANE_CONSOLE) {
        show(l, PANE_CONSOLE, 0, 0, avail, cols);
        return;
    }
    show(l, PANE_CONSOLE, top_h, 0, console_h, cols);
    if (zoom >= 0 && zoom < N_PANES) {
        show(l, (pane_id)zoom, 0, 0, top_h, cols);
        return;
    }
    if (l->cramped) {
        show(l, PANE_CHAT, 0, 0, top_h, cols);
        return;
    }
    if (cols >= 150) {
        int chat_w = cols * 45 / 100, spec_w = (cols - chat_w) / 2;
        show(l, PANE_CHAT, 0, 0, top_h, chat_w);
        show(l, PANE_SPEC, 0, chat_w, top_h, spec_w);
        side_column(l, top_h, chat_w + spec_w, cols - chat_w - spec_w, false);
    } else {
        int chat_w = cols * 55 / 100;
        show(l, PANE_CHAT, 0, 0, top_h, chat_w);
        side_column(l, top_h, chat_w, cols - chat_w, true);
    }
}

int layout_pane_at(const layout *l, int y, int x) {
    for (int i = 0; i < N_PANES; i++) {
        const rect *r = &l->pane[i];
        if (l->visible[i] && y >= r->y && y < r->y + r->h && x >= r->x && x < r->x + r->w) return i;
    }
    return -1;
}
