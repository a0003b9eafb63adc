/* console_input.c — the readline bridge. */
#include <curses.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <readline/history.h>
#include <readline/readline.h>

#include "console_input.h"

static unsigned char pending[64]; /* bytes of the key being fed */
static int pending_head, pending_len;
static FILE *devnull;
static void (*show_matches)(char **matches, int n);
static void (*line_changed)(void);

static int feed_getc(FILE *in) {
    (void)in;
    if (pending_len == 0) return 0; /* never asked for more than was queued; NUL does nothing */
    pending_len--;
    return pending[pending_head++];
}

static int feed_available(void) { return pending_len > 0; }

static void redisplay(void) {
    if (line_changed) line_changed();
}

static void display_matches(char **matches, int n, int max_len) {
    (void)max_len;
    if (show_matches) show_matches(matches + 1, n);
    rl_forced_update_display();
}

void console_input_prepare(void) {
    rl_catch_signals = 0;
    rl_catch_sigwinch = 0;
    rl_change_environment = 0;
    rl_prep_term_function = NULL;
    rl_deprep_term_function = NULL;
    devnull = fopen("/dev/null", "w");
    rl_outstream = devnull;
    rl_instream = stdin;
    rl_readline_name = "specscope";
    rl_initialize();
    rl_variable_bind("bell-style", "none");
    rl_variable_bind("enable-bracketed-paste", "off");
    rl_variable_bind("horizontal-scroll-mode", "on");
    rl_variable_bind("show-all-if-ambiguous", "on"); /* one Tab lists the candidates */
}

void console_input_start(void (*on_line)(char *line), void (*on_matches)(char **matches, int n),
                         void (*redisplay_cb)(void)) {
    show_matches = on_matches;
    line_changed = redisplay_cb;
    rl_getc_function = feed_getc;
    rl_input_available_hook = feed_available;
    rl_redisplay_function = redisplay;
    rl_completion_display_matches_hook = display_matches;
    rl_callback_handler_install("", on_line);
}

void console_input_stop(void) {
    rl_callback_handler_remove();
    if (devnull) fclose(devnull);
    devnull = NULL;
    rl_outstream = stdout;
}

static void feed(const char *bytes, int n) {
    if (n <= 0 || n > (int)sizeof pending) return;
    memcpy(pending, bytes, (size_t)n);
    pending_head = 0;
    pending_len = n;
    while (pending_len > 0) rl_callback_read_char();
}

void console_input_char(wchar_t ch) {
    char buf[MB_LEN_MAX];
    mbstate_t mb;
    memset(&mb, 0, sizeof mb);
    if (ch == L'\n' || ch == L'\r') {
        feed("\r", 1);
        return;
    }
    size_t n = wcrtomb(buf, ch, &mb);
    if (n != (size_t)-1) feed(buf, (int)n);
}

bool console_input_key(int key) {
    switch (key) {
    case KEY_LEFT: rl_backward_char(1, 0); break;
    case KEY_RIGHT: rl_forward_char(1, 0); break;
    case KEY_UP: rl_get_previous_history(1, 0); break;
    case KEY_DOWN: rl_get_next_history(1, 0); break;
    case KEY_HOME: rl_beg_of_line(1, 0); break;
    case KEY_END: rl_end_of_line(1, 0); break;
    case KEY_DC: rl_delete(1, 0); break;
    case KEY_BACKSPACE: feed("\177", 1); return true;
    case KEY_ENTER: feed("\r", 1); return true;
    default: return false;
    }
    redisplay();
    return true;
}

bool console_input_empty(void) { return rl_end == 0; }

void console_input_clear(void) {
    rl_replace_line("", 0);
    rl_point = rl_end = 0;
    redisplay();
}
