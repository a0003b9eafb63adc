/* history_file.c — readline history in the XDG state folder. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <readline/history.h>

#include "history_file.h"

#define HISTORY_LINES 1000

bool history_path_for(const char *xdg_state_home, const char *home, char *buf, size_t size) {
    int n;
    if (xdg_state_home && xdg_state_home[0] == '/')
        n = snprintf(buf, size, "%s/specscope/history", xdg_state_home);
    else if (home && home[0])
        n = snprintf(buf, size, "%s/.local/state/specscope/history", home);
    else
        return false;
    return n > 0 && (size_t)n < size;
}

static const char *path(void) {
    static char buf[PATH_MAX];
    static int known = -1;
    if (known < 0) known = history_path_for(getenv("XDG_STATE_HOME"), getenv("HOME"), buf, sizeof buf);
    return known ? buf : NULL;
}

/* mkdir -p of the file's folder. */
static void make_folder(const char *file) {
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", file);
    char *slash = strrchr(dir, '/');
    if (!slash) return;
    *slash = 0;
    for (char *p = dir + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        mkdir(dir, 0700);
        *p = '/';
    }
    mkdir(dir, 0700);
}

void history_load(void) {
    using_history();
    stifle_history(HISTORY_LINES);
    const char *file = path();
    if (!file) return;
    make_folder(file);
    read_history(file);
}

void history_remember(const char *line) {
    if (!line[0]) return;
    HIST_ENTRY *last = history_length > 0 ? history_get(history_base + history_length - 1) : NULL;
    if (last && strcmp(last->line, line) == 0) return; /* no repeats in a row */
    add_history(line);
    const char *file = path();
    if (!file) return;
    /* append_history needs the file to exist */
    if (append_history(1, file) == ENOENT) write_history(file);
    history_truncate_file(file, HISTORY_LINES);
}
