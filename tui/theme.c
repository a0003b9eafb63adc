/* theme.c — colours with a monochrome fallback. */
#include <stdlib.h>

#include "theme.h"

typedef struct {
    short fg, bg;     /* colour mode: pair colours (-1: the terminal's default) */
    attr_t colour_attrs;
    attr_t mono_attrs; /* monochrome: the only distinction there is */
} role_style;

static const role_style styles[TH_COUNT] = {
    [TH_NORMAL] = {-1, -1, A_NORMAL, A_NORMAL},
    [TH_BORDER] = {COLOR_BLUE, -1, A_NORMAL, A_DIM},
    [TH_BORDER_FOCUS] = {COLOR_CYAN, -1, A_BOLD, A_BOLD},
    [TH_TITLE] = {COLOR_CYAN, -1, A_NORMAL, A_NORMAL},
    [TH_TITLE_FOCUS] = {COLOR_BLACK, COLOR_CYAN, A_BOLD, A_REVERSE | A_BOLD},
    [TH_USER] = {COLOR_CYAN, -1, A_BOLD, A_DIM},
    [TH_DRAFT] = {COLOR_GREEN, -1, A_NORMAL, A_BOLD},
    [TH_TARGET] = {COLOR_YELLOW, -1, A_NORMAL, A_NORMAL},
    [TH_NOTICE] = {COLOR_MAGENTA, -1, A_NORMAL, A_DIM},
    [TH_ERROR] = {COLOR_RED, -1, A_BOLD, A_BOLD | A_UNDERLINE},
    [TH_LABEL] = {-1, -1, A_DIM, A_NORMAL},
    [TH_VALUE] = {-1, -1, A_BOLD, A_BOLD},
    [TH_BAR] = {COLOR_GREEN, -1, A_NORMAL, A_NORMAL},
    [TH_BAR_EMPTY] = {COLOR_BLUE, -1, A_DIM, A_DIM},
    [TH_VERIFY] = {COLOR_YELLOW, -1, A_NORMAL, A_NORMAL},
    [TH_CALIBRATE] = {COLOR_MAGENTA, -1, A_NORMAL, A_NORMAL},
    [TH_SPARK] = {COLOR_GREEN, -1, A_NORMAL, A_NORMAL},
    [TH_STATUS] = {COLOR_BLACK, COLOR_WHITE, A_NORMAL, A_REVERSE},
    [TH_PROMPT] = {COLOR_CYAN, -1, A_BOLD, A_BOLD},
};

static bool in_colour;

bool theme_wants_colour(const char *no_color_env, bool terminal_has_colours) {
    if (no_color_env && no_color_env[0]) return false;
    return terminal_has_colours;
}

void theme_init(void) {
    in_colour = theme_wants_colour(getenv("NO_COLOR"), has_colors()); /* COLORS is known only after start_color */
    if (!in_colour) return;
    start_color();
    use_default_colors();
    for (int r = 1; r < TH_COUNT; r++) init_pair((short)r, styles[r].fg, styles[r].bg);
}

bool theme_in_colour(void) { return in_colour; }

void theme_style(theme_role role, attr_t *attrs, short *pair) {
    *attrs = in_colour ? styles[role].colour_attrs : styles[role].mono_attrs;
    *pair = in_colour ? (short)role : 0;
}

void theme_set(WINDOW *w, theme_role role) {
    attr_t a;
    short p;
    theme_style(role, &a, &p);
    wattr_set(w, a, p, NULL);
}
