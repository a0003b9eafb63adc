/* transcript.h — text as a pane shows it: characters tagged with where they came from, and a
 * word-wrapped line index kept up to date incrementally. The chat pane's transcript also keeps the
 * turns as generated (for /save); the console's output is a transcript without turns. */
#ifndef SPECSCOPE_TRANSCRIPT_H
#define SPECSCOPE_TRANSCRIPT_H

#include <stdbool.h>
#include <stddef.h>
#include <wchar.h>

typedef enum {
    SRC_USER = 'u',   /* the person's turn */
    SRC_DRAFT = 'd',  /* an accepted draft token */
    SRC_TARGET = 't', /* a token of the target (correction or bonus) */
    SRC_NOTE = 'n',   /* a remark of the program ([stopped], informational output) */
    SRC_ERROR = 'e',  /* an error message */
    SRC_ECHO = 'c',   /* a command line as typed */
    SRC_SCRIPT = 's', /* a script's output */
} cell_source;

typedef struct {
    wchar_t ch;
    char source; /* a cell_source */
} cell;

typedef struct {
    size_t start, end; /* cells [start, end) drawn on this line */
} wrapped_line;

typedef struct {
    char role[16];     /* "user", "assistant", "script" */
    char *text;        /* UTF-8 as generated, for /save */
    size_t len, cap;
} turn;

typedef struct {
    cell *cells;
    size_t n_cells, cap_cells;
    turn *turns;
    int n_turns, cap_turns;
    mbstate_t mb; /* a multibyte character may be split across token pieces */
    /* Line index for wrap_width; lines before the last never change as text is appended. */
    int wrap_width;
    wrapped_line *lines;
    int n_lines, cap_lines;
    size_t wrapped_cells; /* n_cells when the index was last brought up to date */
} transcript;

void transcript_init(transcript *t);
void transcript_free(transcript *t);
void transcript_clear(transcript *t);
/* Starts a turn on a new paragraph; user turns are drawn after a "> " marker. Returns false when
 * out of memory (the transcript stays as it was). */
bool transcript_begin_turn(transcript *t, const char *role);
/* Appends UTF-8 text to the current turn, tagged with source. */
bool transcript_append(transcript *t, const char *utf8, char source);
/* Text drawn but not part of any turn's text (a remark such as "[stopped]", console output). */
bool transcript_add(transcript *t, const char *utf8, char source);
/* Keeps at most about max_cells, dropping whole lines from the front (the console's bound). */
void transcript_trim(transcript *t, size_t max_cells);
bool transcript_empty(const transcript *t);

/* Brings the line index up to date for width columns (re-wrapping everything when it changed).
 * Returns the number of lines. */
int transcript_wrap(transcript *t, int width);

/* Writes the turns as "### role" sections of plain text. Returns 0, or errno. */
int transcript_save(const transcript *t, const char *path);

/* Display width of a cell (wcwidth, with unprintable characters counted as 1). */
int cell_width(wchar_t ch);

#endif
