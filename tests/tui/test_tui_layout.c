/* test_tui_layout.c — pane rectangles (tui/layout.c) for every terminal size from 80x24 to 250x80
 * and every zoom: panes stay on screen, never overlap, tile the area above the status line, and
 * are large enough for their titles. */
#include <string.h>

#include "check.h"
#include "layout.h"

static int owner[100][260];

/* Marks each visible pane's cells; returns false on an overlap or a cell off the screen. */
static bool paint(const layout *l, int rows, int cols) {
    memset(owner, -1, sizeof owner);
    for (int i = 0; i < N_PANES; i++) {
        if (!l->visible[i]) continue;
        const rect *r = &l->pane[i];
        if (r->y < 0 || r->x < 0 || r->y + r->h > rows - 1 || r->x + r->w > cols) return false;
        for (int y = r->y; y < r->y + r->h; y++)
            for (int x = r->x; x < r->x + r->w; x++) {
                if (owner[y][x] != -1) return false;
                owner[y][x] = i;
            }
    }
    return true;
}

static bool tiles(int rows, int cols) {
    for (int y = 0; y < rows - 1; y++)
        for (int x = 0; x < cols; x++)
            if (owner[y][x] == -1) return false;
    return true;
}

static void test_all_sizes(void) {
    int bad = 0;
    for (int rows = 24; rows <= 80; rows += 3)
        for (int cols = 80; cols <= 250; cols += 7)
            for (int zoom = -1; zoom < N_PANES; zoom++) {
                layout l;
                layout_compute(&l, rows, cols, zoom);
                bool ok = !l.too_small && !l.cramped && paint(&l, rows, cols) && tiles(rows, cols);
                ok = ok && l.status.y == rows - 1 && l.status.w == cols;
                for (int i = 0; i < N_PANES && ok; i++) {
                    bool want = zoom < 0 || i == zoom || (i == PANE_CONSOLE);
                    ok = l.visible[i] == want;
                    if (ok && want) ok = l.pane[i].w >= (int)strlen(layout_pane_title(i)) + 6 && l.pane[i].h >= 3;
                    if (ok && want) ok = layout_pane_at(&l, l.pane[i].y + l.pane[i].h / 2, l.pane[i].x + l.pane[i].w / 2) == i;
                }
                if (!ok && bad++ < 5) CHECK_MSG(ok, "%dx%d zoom %d", cols, rows, zoom);
            }
    CHECK(bad == 0);
}

static void test_shapes(void) {
    layout l;
    layout_compute(&l, 24, 80, -1);
    CHECK(l.pane[PANE_CHAT].w == 44 && l.pane[PANE_SPEC].x == 44 && l.pane[PANE_SPEC].w == 36);
    CHECK(l.pane[PANE_CONSOLE].y == 17 && l.pane[PANE_CONSOLE].h == 6);
    CHECK(l.pane[PANE_TIMELINE].h == 3 && l.pane[PANE_LORA].h == 3 && l.pane[PANE_SPEC].h == 11);
    layout_compute(&l, 50, 200, -1); /* wide: speculation gets its own column */
    CHECK(l.pane[PANE_SPEC].h == l.pane[PANE_CHAT].h && l.pane[PANE_TIMELINE].x > l.pane[PANE_SPEC].x);
    layout_compute(&l, 40, 120, PANE_CONSOLE);
    CHECK(l.visible[PANE_CONSOLE] && l.pane[PANE_CONSOLE].h == 39 && !l.visible[PANE_CHAT]);
    layout_compute(&l, 20, 60, -1); /* below 80x24: chat and console only */
    CHECK(l.cramped && l.visible[PANE_CHAT] && l.visible[PANE_CONSOLE] && !l.visible[PANE_SPEC]);
    CHECK(paint(&l, 20, 60) && tiles(20, 60));
    layout_compute(&l, 20, 60, PANE_LORA); /* ...and zoom shows the others */
    CHECK(l.visible[PANE_LORA] && !l.visible[PANE_CHAT]);
    layout_compute(&l, 5, 20, -1);
    CHECK(l.too_small);
    CHECK(layout_pane_at(&l, 0, 0) == -1);
    CHECK(strcmp(layout_pane_title(PANE_SPEC), "speculation") == 0);
}

int main(void) {
    test_all_sizes();
    test_shapes();
    return check_done();
}
