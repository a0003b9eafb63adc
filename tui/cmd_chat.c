/* cmd_chat.c — `specscope chat` (and `specscope` alone): the terminal interface, or the REPL when
 * stdin or stdout is not a terminal. */
#include <locale.h>
#include <stdio.h>
#include <unistd.h>

#include "app.h"
#include "chat_options.h"
#include "commands.h"

int cmd_chat(int argc, char **argv) {
    gen_options o;
    int r = chat_options_parse("chat", argc, argv, &o);
    if (r >= 0) return r;
    if (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO)) return cmd_repl(argc, argv);
    setlocale(LC_ALL, "");
    static tui ui; /* large (the pane states, buffers): not on the stack */
    if (!app_init(&ui, &o)) {
        fprintf(stderr, "specscope chat: out of memory\n");
        app_free(&ui);
        return 1;
    }
    ss_error err = {0};
    ss_status st = workbench_open(&ui.wb, &err);
    if (st) {
        fprintf(stderr, "specscope chat: %s\n", err.msg);
        app_free(&ui);
        return st == SS_ENOMEM || st == SS_EDEVICE ? 1 : 2;
    }
    int status = app_run(&ui);
    app_free(&ui);
    return status;
}
