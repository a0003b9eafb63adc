/* transcript.c — the conversation's cells, turns and wrapped lines. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wctype.h>

#include "transcript.h"

void transcript_init(transcript *t) { memset(t, 0, sizeof *t); }

void transcript_free(transcript *t) {
    for (int i = 0; i < t->n_turns; i++) free(t->turns[i].text);
    free(t->turns);
    free(t->cells);
    free(t->lines);
    memset(t, 0, sizeof *t);
}

void transcript_clear(transcript *t) {
    transcript_free(t);
    transcript_init(t);
}

bool transcript_empty(const transcript *t) { return t->n_cells == 0; }

int cell_width(wchar_t ch) {
    int w = wcwidth(ch);
    return w < 0 ? 1 : w;
}

static bool push_cell(transcript *t, wchar_t ch, char source) {
    if (t->n_cells == t->cap_cells) {
        size_t cap = t->cap_cells ? t->cap_cells * 2 : 1024;
        cell *c = realloc(t->cells, cap * sizeof *c);
        if (!c) return false;
        t->cells = c;
        t->cap_cells = cap;
    }
    t->cells[t->n_cells++] = (cell){ch, source};
    return true;
}

/* Decodes UTF-8 into cells with the locale's mbrtowc (the program sets the locale): a tab becomes
 * spaces, other control characters and undecodable bytes become '?', so nothing reaches the
 * terminal that could move its cursor. */
static bool push_text(transcript *t, const char *s, char source) {
    size_t len = strlen(s), before = t->n_cells;
    for (size_t i = 0; i < len;) {
        wchar_t wc;
        size_t used = mbrtowc(&wc, s + i, len - i, &t->mb);
        if (used == (size_t)-2) break; /* the rest of the character comes with the next piece */
        if (used == (size_t)-1) {
            memset(&t->mb, 0, sizeof t->mb);
            wc = L'?';
            used = 1;
        }
        if (used == 0) used = 1; /* an embedded NUL cannot happen in a C string; keeps the loop moving */
        i += used;
        bool ok = true;
        if (wc == L'\t') {
            for (int k = 0; k < 4 && ok; k++) ok = push_cell(t, L' ', source);
        } else {
            ok = push_cell(t, wc != L'\n' && iswcntrl((wint_t)wc) ? L'?' : wc, source);
        }
        if (!ok) {
            t->n_cells = before;
            return false;
        }
    }
    return true;
}

static bool turn_text_append(turn *tr, const char *s) {
    size_t n = strlen(s);
    if (tr->len + n + 1 > tr->cap) {
        size_t cap = (tr->len + n + 1) * 2;
        char *p = realloc(tr->text, cap);
        if (!p) return false;
        tr->text = p;
        tr->cap = cap;
    }
    memcpy(tr->text + tr->len, s, n + 1);
    tr->len += n;
    return true;
}

bool transcript_begin_turn(transcript *t, const char *role) {
    if (t->n_turns == t->cap_turns) {
        int cap = t->cap_turns ? t->cap_turns * 2 : 16;
        turn *p = realloc(t->turns, (size_t)cap * sizeof *p);
        if (!p) return false;
        t->turns = p;
        t->cap_turns = cap;
    }
    size_t before = t->n_cells;
    bool ok = true;
    if (t->n_cells > 0) { /* a blank line between turns */
        if (t->cells[t->n_cells - 1].ch != L'\n') ok = push_cell(t, L'\n', SRC_NOTE);
        if (ok) ok = push_cell(t, L'\n', SRC_NOTE);
    }
    if (ok && strcmp(role, "user") == 0) ok = push_text(t, "> ", SRC_USER);
    if (!ok) {
        t->n_cells = before;
        return false;
    }
    turn *tr = &t->turns[t->n_turns++];
    memset(tr, 0, sizeof *tr);
    snprintf(tr->role, sizeof tr->role, "%s", role);
    memset(&t->mb, 0, sizeof t->mb);
    return true;
}

bool transcript_append(transcript *t, const char *utf8, char source) {
    if (t->n_turns == 0 && !transcript_begin_turn(t, "assistant")) return false;
    turn *tr = &t->turns[t->n_turns - 1];
    size_t before = tr->len;
    if (!turn_text_append(tr, utf8)) return false;
    if (!push_text(t, utf8, source)) {
        tr->len = before;
        tr->text[before] = 0;
        return false;
    }
    return true;
}

bool transcript_add(transcript *t, const char *utf8, char source) { return push_text(t, utf8, source); }

void transcript_trim(transcript *t, size_t max_cells) {
    if (t->n_cells <= max_cells) return;
    size_t cut = t->n_cells - max_cells / 2;
    while (cut < t->n_cells && t->cells[cut - 1].ch != L'\n') cut++; /* start at a line */
    memmove(t->cells, t->cells + cut, (t->n_cells - cut) * sizeof *t->cells);
    t->n_cells -= cut;
    t->n_lines = 0; /* every line moved: wrap again */
    t->wrapped_cells = SIZE_MAX;
}

static bool push_line(transcript *t, size_t start, size_t end) {
    if (t->n_lines == t->cap_lines) {
        int cap = t->cap_lines ? t->cap_lines * 2 : 256;
        wrapped_line *p = realloc(t->lines, (size_t)cap * sizeof *p);
        if (!p) return false;
        t->lines = p;
        t->cap_lines = cap;
    }
    t->lines[t->n_lines++] = (wrapped_line){start, end};
    return true;
}

/* Greedy word wrap from cell i to the end. A line ends at a newline, or before the word that would
 * overflow it (mid-word when one word is wider than the line). The last line stays open: it is the
 * only one that text appended later can change, so the next call starts again from it. */
static void wrap_from(transcript *t, size_t i) {
    int width = t->wrap_width;
    for (;;) {
        int col = 0;
        size_t j = i, brk = SIZE_MAX;
        while (j < t->n_cells && t->cells[j].ch != L'\n') {
            int w = cell_width(t->cells[j].ch);
            if (col + w > width && j > i) break;
            col += w;
            if (t->cells[j].ch == L' ') brk = j + 1;
            j++;
        }
        if (j >= t->n_cells) {
            push_line(t, i, t->n_cells);
            return;
        }
        if (t->cells[j].ch == L'\n') {
            if (!push_line(t, i, j)) return;
            i = j + 1;
            continue;
        }
        size_t next = brk != SIZE_MAX && brk > i ? brk : j;
        if (!push_line(t, i, next)) return;
        i = next;
    }
}

int transcript_wrap(transcript *t, int width) {
    if (width < 1) width = 1;
    if (width != t->wrap_width) {
        t->wrap_width = width;
        t->n_lines = 0;
        t->wrapped_cells = SIZE_MAX;
    }
    if (t->wrapped_cells == t->n_cells && t->n_lines > 0) return t->n_lines;
    size_t from = 0;
    if (t->n_lines > 0) from = t->lines[--t->n_lines].start;
    wrap_from(t, from);
    t->wrapped_cells = t->n_cells;
    return t->n_lines;
}

int transcript_save(const transcript *t, const char *path) {
    FILE *f = fopen(path, "w");
    if (!f) return errno;
    for (int i = 0; i < t->n_turns; i++)
        fprintf(f, "### %s\n%s\n\n", t->turns[i].role, t->turns[i].text ? t->turns[i].text : "");
    int e = ferror(f) ? EIO : 0;
    if (fclose(f) != 0 && !e) e = errno;
    return e;
}
