/* theme.h — the interface's styles: one role per kind of thing drawn, mapped to a colour pair
 * when the terminal has colours and NO_COLOR is unset, else to plain attributes (bold, dim,
 * underline) so that every distinction survives on a monochrome terminal. */
#ifndef SPECSCOPE_THEME_H
#define SPECSCOPE_THEME_H

#include <curses.h>
#include <stdbool.h>

typedef enum {
    TH_NORMAL = 0,
    TH_BORDER,
    TH_BORDER_FOCUS,
    TH_TITLE,
    TH_TITLE_FOCUS,
    TH_USER,      /* the person's chat turns */
    TH_DRAFT,     /* a draft token the target accepted */
    TH_TARGET,    /* a token the target produced (correction or bonus) */
    TH_NOTICE,    /* remarks the program adds: [stopped], hints */
    TH_ERROR,
    TH_LABEL,     /* names of figures */
    TH_VALUE,     /* figures */
    TH_BAR,       /* filled part of a bar */
    TH_BAR_EMPTY, /* the rest of a bar */
    TH_VERIFY,    /* the verify share of the time split */
    TH_CALIBRATE, /* the calibrate share of the time split */
    TH_SPARK,
    TH_STATUS,    /* the bottom status line */
    TH_PROMPT,    /* the console's prompt */
    TH_COUNT
} theme_role;

/* Whether to use colours: the terminal has them and NO_COLOR is unset or empty (no-color.org). */
bool theme_wants_colour(const char *no_color_env, bool terminal_has_colours);

/* After initscr: decides colour or monochrome and sets up the pairs. */
void theme_init(void);
bool theme_in_colour(void);
/* The attributes and colour pair of a role, for wattr_set / setcchar. */
void theme_style(theme_role role, attr_t *attrs, short *pair);
/* Sets a window's current attributes to a role. */
void theme_set(WINDOW *w, theme_role role);

#endif
