/* test_tui_transcript.c — the chat and console text model (tui/transcript.c): decoding, source
 * tags, turns, /save, trimming, and the incremental word wrap checked against wrapping the whole
 * text at once. */
#include <locale.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "transcript.h"

static bool utf8;

/* The cells of line i as a wide string. */
static const wchar_t *line_text(const transcript *t, int i) {
    static wchar_t buf[512];
    const wrapped_line *l = &t->lines[i];
    size_t n = 0;
    for (size_t c = l->start; c < l->end && n < 511; c++) buf[n++] = t->cells[c].ch;
    buf[n] = 0;
    return buf;
}

static void test_wrap_basics(void) {
    transcript t;
    transcript_init(&t);
    transcript_append(&t, "hello world foo", SRC_TARGET);
    CHECK(transcript_wrap(&t, 10) == 2);
    CHECK(wcscmp(line_text(&t, 0), L"hello ") == 0);
    CHECK(wcscmp(line_text(&t, 1), L"world foo") == 0);
    transcript_append(&t, "bar", SRC_DRAFT); /* "foobar" no longer fits after "world " */
    CHECK(transcript_wrap(&t, 10) == 3);
    CHECK(wcscmp(line_text(&t, 1), L"world ") == 0);
    CHECK(wcscmp(line_text(&t, 2), L"foobar") == 0);
    transcript_append(&t, "\nabcdefghijklmn", SRC_DRAFT); /* a word wider than the line breaks mid-word */
    CHECK(transcript_wrap(&t, 10) == 5);
    CHECK(wcscmp(line_text(&t, 3), L"abcdefghij") == 0);
    CHECK(wcscmp(line_text(&t, 4), L"klmn") == 0);
    CHECK(transcript_wrap(&t, 40) == 2); /* a new width wraps everything again */
    CHECK(wcscmp(line_text(&t, 0), L"hello world foobar") == 0);
    transcript_free(&t);
}

/* Random words (some wide, some newlines) appended in random pieces must wrap exactly as the
 * whole text appended at once. */
static void test_incremental_matches_whole(void) {
    static const char *const words[] = {"a", "kernel", "draft", "x", "supercalifragilistic", "\n", " ", "  "};
    static const char *const wide[] = {"日本語", "漢字"};
    srand(7);
    int mismatches = 0;
    for (int trial = 0; trial < 200; trial++) {
        char text[2048] = "";
        for (int i = 0; i < 60; i++) {
            const char *w = utf8 && rand() % 9 == 0 ? wide[rand() % 2] : words[rand() % 8];
            strcat(text, w);
            if (w[0] != '\n' && w[0] != ' ') strcat(text, " ");
        }
        int width = 3 + rand() % 30;
        transcript whole, parts;
        transcript_init(&whole);
        transcript_init(&parts);
        transcript_append(&whole, text, SRC_TARGET);
        transcript_wrap(&whole, width);
        size_t len = strlen(text), at = 0;
        while (at < len) { /* pieces cut only between UTF-8 sequences, as the engine posts them */
            size_t take = 1 + (size_t)(rand() % 9);
            if (at + take > len) take = len - at;
            while (at + take < len && ((unsigned char)text[at + take] & 0xC0) == 0x80) take++;
            char piece[64];
            memcpy(piece, text + at, take);
            piece[take] = 0;
            transcript_append(&parts, piece, rand() % 2 ? SRC_DRAFT : SRC_TARGET);
            if (rand() % 3 == 0) transcript_wrap(&parts, width);
            at += take;
        }
        transcript_wrap(&parts, width);
        bool same = whole.n_lines == parts.n_lines;
        for (int i = 0; same && i < whole.n_lines; i++)
            same = whole.lines[i].start == parts.lines[i].start && whole.lines[i].end == parts.lines[i].end;
        int widest = 0;
        for (int i = 0; i < whole.n_lines; i++) {
            int w = 0;
            for (size_t c = whole.lines[i].start; c < whole.lines[i].end; c++) w += cell_width(whole.cells[c].ch);
            if (w > widest) widest = w;
        }
        same = same && widest <= (width < 2 ? 2 : width);
        mismatches += !same;
        transcript_free(&whole);
        transcript_free(&parts);
    }
    CHECK_MSG(mismatches == 0, "%d of 200 texts wrapped differently in pieces", mismatches);
}

static void test_cells_and_turns(void) {
    transcript t;
    transcript_init(&t);
    CHECK(transcript_empty(&t));
    transcript_begin_turn(&t, "user");
    transcript_append(&t, "hi", SRC_USER);
    transcript_begin_turn(&t, "assistant");
    transcript_append(&t, " the", SRC_TARGET);
    transcript_append(&t, " end\tx\x1b[1m", SRC_DRAFT);
    transcript_add(&t, " [stopped]", SRC_NOTE);
    /* "> hi" "\n\n" " the" " end" 4 spaces "x" "?[1m" " [stopped]" */
    const wchar_t *want = L"> hi\n\n the end    x?[1m [stopped]";
    CHECK(t.n_cells == wcslen(want));
    bool same = true;
    for (size_t i = 0; i < t.n_cells && i < wcslen(want); i++) same &= t.cells[i].ch == want[i];
    CHECK(same);
    CHECK(t.cells[0].source == SRC_USER && t.cells[2].source == SRC_USER);
    CHECK(t.cells[4].source == SRC_NOTE);              /* the blank line between turns */
    CHECK(t.cells[7].source == SRC_TARGET);            /* "the" */
    CHECK(t.cells[11].source == SRC_DRAFT);            /* "end" */
    CHECK(t.cells[t.n_cells - 1].source == SRC_NOTE);  /* "[stopped]" */
    CHECK(t.n_turns == 2 && strcmp(t.turns[1].text, " the end\tx\x1b[1m") == 0);

    char path[] = "/tmp/ss_transcript_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    close(fd);
    CHECK(transcript_save(&t, path) == 0);
    FILE *f = fopen(path, "r");
    char buf[256] = "";
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    buf[n] = 0;
    if (f) fclose(f);
    unlink(path);
    CHECK(strcmp(buf, "### user\nhi\n\n### assistant\n the end\tx\x1b[1m\n\n") == 0);
    CHECK(transcript_save(&t, "/nonexistent-dir/x.txt") != 0);

    transcript_clear(&t);
    CHECK(transcript_empty(&t) && t.n_turns == 0);
    transcript_free(&t);
}

static void test_split_character(void) {
    if (!utf8) {
        printf("(no UTF-8 locale: the split-character check is left out)\n");
        return;
    }
    transcript t;
    transcript_init(&t);
    transcript_append(&t, "caf\xC3", SRC_TARGET);
    transcript_append(&t, "\xA9!", SRC_DRAFT);
    CHECK(t.n_cells == 5 && t.cells[3].ch == L'é' && t.cells[4].ch == L'!');
    transcript_append(&t, "\xFF", SRC_DRAFT); /* not UTF-8 at all */
    CHECK(t.n_cells == 6 && t.cells[5].ch == L'?');
    transcript_free(&t);
}

static void test_trim(void) {
    transcript t;
    transcript_init(&t);
    char line[32];
    for (int i = 0; i < 100; i++) {
        snprintf(line, sizeof line, "line %03d\n", i); /* 9 cells each */
        transcript_add(&t, line, SRC_NOTE);
    }
    transcript_wrap(&t, 20);
    transcript_trim(&t, 200);
    CHECK(t.n_cells <= 200 && t.n_cells > 0);
    CHECK(t.cells[0].ch == L'l' && t.cells[t.n_cells - 1].ch == L'\n'); /* whole lines kept */
    CHECK(transcript_wrap(&t, 20) == (int)(t.n_cells / 9) + 1);
    CHECK(wcscmp(line_text(&t, t.n_lines - 2), L"line 099") == 0);
    transcript_free(&t);
}

int main(void) {
    utf8 = setlocale(LC_ALL, "C.UTF-8") != NULL;
    test_wrap_basics();
    test_incremental_matches_whole();
    test_cells_and_turns();
    test_split_character();
    test_trim();
    return check_done();
}
