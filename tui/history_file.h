/* history_file.h — the command line's history, kept across runs in
 * $XDG_STATE_HOME/specscope/history (default ~/.local/state/specscope/history), shared by the
 * interface's console and the REPL. Failing to read or write it is never fatal. */
#ifndef SPECSCOPE_HISTORY_FILE_H
#define SPECSCOPE_HISTORY_FILE_H

#include <stdbool.h>
#include <stddef.h>

/* The file's path for these environment values (either may be NULL); false when neither gives one.
 * XDG_STATE_HOME counts only when absolute, as the XDG base directory specification asks. */
bool history_path_for(const char *xdg_state_home, const char *home, char *buf, size_t size);
/* Loads the history into readline (creating the folder when needed). */
void history_load(void);
/* Adds a line to readline's history and appends it to the file. */
void history_remember(const char *line);

#endif
