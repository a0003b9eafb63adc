/* styled_text.c — styled lines. */
#include <langinfo.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "styled_text.h"

void styled_init(styled_text *t) { memset(t, 0, sizeof *t); }

void styled_free(styled_text *t) {
    free(t->cells);
    free(t->line_start);
    memset(t, 0, sizeof *t);
}

void styled_clear(styled_text *t) {
    t->n = 0;
    t->n_lines = 0;
    t->failed = false;
}

static bool ensure_line(styled_text *t) {
    if (t->n_lines > 0) return true;
    styled_newline(t);
    return t->n_lines > 0;
}

static void put(styled_text *t, wchar_t ch, theme_role role) {
    if (ch == L'\n') {
        styled_newline(t);
        return;
    }
    if (!ensure_line(t)) return;
    if (t->n == t->cap) {
        int cap = t->cap ? t->cap * 2 : 512;
        styled_cell *c = realloc(t->cells, (size_t)cap * sizeof *c);
        if (!c) {
            t->failed = true;
            return;
        }
        t->cells = c;
        t->cap = cap;
    }
    t->cells[t->n++] = (styled_cell){ch, (unsigned char)role};
}

void styled_newline(styled_text *t) {
    if (t->n_lines == t->cap_lines) {
        int cap = t->cap_lines ? t->cap_lines * 2 : 32;
        int *p = realloc(t->line_start, (size_t)cap * sizeof *p);
        if (!p) {
            t->failed = true;
            return;
        }
        t->line_start = p;
        t->cap_lines = cap;
    }
    t->line_start[t->n_lines++] = t->n;
}

void styled_addw(styled_text *t, theme_role role, const wchar_t *s) {
    for (; *s; s++) put(t, *s, role);
}

void styled_printf(styled_text *t, theme_role role, const char *fmt, ...) {
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    mbstate_t mb;
    memset(&mb, 0, sizeof mb);
    size_t len = strlen(buf);
    for (size_t i = 0; i < len;) {
        wchar_t wc;
        size_t used = mbrtowc(&wc, buf + i, len - i, &mb);
        if (used == (size_t)-1 || used == (size_t)-2 || used == 0) {
            memset(&mb, 0, sizeof mb);
            wc = L'?';
            used = 1;
        }
        put(t, wc, role);
        i += used;
    }
}

const styled_cell *styled_line(const styled_text *t, int i, int *n) {
    if (i < 0 || i >= t->n_lines) {
        *n = 0;
        return NULL;
    }
    int end = i + 1 < t->n_lines ? t->line_start[i + 1] : t->n;
    *n = end - t->line_start[i];
    return t->cells + t->line_start[i];
}

char *styled_line_text(const styled_text *t, int i, char *buf, size_t size) {
    int n;
    const styled_cell *c = styled_line(t, i, &n);
    size_t used = 0;
    mbstate_t mb;
    memset(&mb, 0, sizeof mb);
    for (int k = 0; k < n; k++) {
        char mbuf[MB_LEN_MAX];
        size_t len = wcrtomb(mbuf, c[k].ch, &mb);
        if (len == (size_t)-1) {
            mbuf[0] = '?';
            len = 1;
        }
        if (used + len + 1 > size) break;
        memcpy(buf + used, mbuf, len);
        used += len;
    }
    if (size) buf[used] = 0;
    return buf;
}

bool locale_is_utf8(void) {
    const char *cs = nl_langinfo(CODESET);
    return cs && (strcmp(cs, "UTF-8") == 0 || strcmp(cs, "utf8") == 0);
}
