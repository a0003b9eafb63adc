/* styled_text.h — lines of wide characters, each tagged with a theme role: what a pane's content
 * builder produces and the pane draws (clipped, never wrapped). */
#ifndef SPECSCOPE_STYLED_TEXT_H
#define SPECSCOPE_STYLED_TEXT_H

#include <stdbool.h>
#include <wchar.h>

#include "theme.h"

typedef struct {
    wchar_t ch;
    unsigned char role; /* theme_role */
} styled_cell;

typedef struct {
    styled_cell *cells;
    int n, cap;
    int *line_start; /* line i is cells [line_start[i], line_start[i+1] or n) */
    int n_lines, cap_lines;
    bool failed;     /* out of memory at some point: the text is cut short */
} styled_text;

void styled_init(styled_text *t);
void styled_free(styled_text *t);
void styled_clear(styled_text *t);
/* printf-formatted (multibyte) text in role; '\n' starts a new line. */
void styled_printf(styled_text *t, theme_role role, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void styled_addw(styled_text *t, theme_role role, const wchar_t *s);
void styled_newline(styled_text *t);
/* Line i: its cells and their count. */
const styled_cell *styled_line(const styled_text *t, int i, int *n);
/* Line i as multibyte text (for plain output); returns buf. */
char *styled_line_text(const styled_text *t, int i, char *buf, size_t size);

/* Whether the locale's character set is UTF-8 (block elements can be drawn). */
bool locale_is_utf8(void);

#endif
