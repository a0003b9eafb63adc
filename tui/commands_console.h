/* commands_console.h — the /commands of the interface's console and of the REPL, one table for
 * both: a line that starts with '/' is a command, anything else a chat message. */
#ifndef SPECSCOPE_COMMANDS_CONSOLE_H
#define SPECSCOPE_COMMANDS_CONSOLE_H

#include "workbench.h"

typedef struct {
    const char *name;  /* "/k" */
    const char *args;  /* "N" */
    const char *help;
    void (*run)(workbench *wb, char *args); /* args: the rest of the line, trimmed, writable */
    const char *const *words; /* completions of the first argument (NULL-terminated), or NULL */
    bool files;        /* the argument is a path: complete file names */
} console_command;

extern const console_command console_commands[];
extern const int console_n_commands;

/* Runs one line: a command, or a chat message. Blank lines do nothing. */
void console_execute(workbench *wb, const char *line);

/* readline's attempted-completion function for these commands (both front ends install it). */
char **console_completion(const char *text, int start, int end);

#endif
