/* console_input.h — readline inside ncurses, through its callback interface: keys that ncurses
 * reads are handed to readline one byte at a time (rl_getc_function reads them from a small
 * queue), readline never touches the terminal (its output goes to /dev/null, its redisplay only
 * asks for a frame), and the console pane draws rl_line_buffer itself. */
#ifndef SPECSCOPE_CONSOLE_INPUT_H
#define SPECSCOPE_CONSOLE_INPUT_H

#include <stdbool.h>
#include <wchar.h>

/* Call before initscr (readline reads the terminal description once; ncurses must come after so
 * that its terminal stays the current one). */
void console_input_prepare(void);
/* on_line gets each entered line (malloc'd; the callee frees it); on_matches gets completion
 * candidates to show; redisplay is called when the line changed. */
void console_input_start(void (*on_line)(char *line), void (*on_matches)(char **matches, int n),
                         void (*redisplay)(void));
void console_input_stop(void);

/* A character typed (wide, from wget_wch). */
void console_input_char(wchar_t ch);
/* An ncurses function key (KEY_LEFT, KEY_BACKSPACE, ...): true when it was a line-editing key. */
bool console_input_key(int key);
bool console_input_empty(void);
/* Empties the line (Ctrl-C with nothing to stop). */
void console_input_clear(void);

#endif
