/* cmd_repl.c — `specscope repl`: the console's commands in a plain read-eval-print loop. Each line
 * is a /command or a chat message; answers stream to stdout and end with a statistics line.
 * Interactive (stdin a terminal): readline with the shared history and completion. Otherwise the
 * lines are read as they come, without prompts, so that the REPL can be scripted. */
#include <locale.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <readline/readline.h>

#include "chat_options.h"
#include "commands.h"
#include "commands_console.h"
#include "history_file.h"
#include "spec_view.h"
#include "workbench.h"

typedef struct {
    workbench wb;
    bool streamed; /* tokens were printed since the last run ended */
} repl;

static volatile sig_atomic_t got_sigint;
static void on_sigint(int sig) {
    (void)sig;
    got_sigint = 1;
}

static void print_hook(void *ud, out_kind kind, const char *text) {
    repl *r = ud;
    if (r->streamed) { /* a message in the middle of an answer starts on its own line */
        putchar('\n');
        r->streamed = false;
    }
    FILE *out = kind == OUT_ERROR || kind == OUT_SCRIPT_ERROR ? stderr : stdout;
    fflush(stdout);
    fprintf(out, "%s\n", text);
    fflush(out);
}

static void token_hook(void *ud, const char *piece, char source) {
    (void)source;
    repl *r = ud;
    fputs(piece, stdout);
    fflush(stdout);
    r->streamed = true;
}

static void finished_hook(void *ud) {
    repl *r = ud;
    if (!r->streamed) return;
    char summary[512];
    spec_view_summary(&r->wb.stats, summary, sizeof summary);
    printf("\n%s\n", summary);
    fflush(stdout);
    r->streamed = false;
}

/* Runs the job a line started to its end; Ctrl-C stops it. */
static void wait_for_job(repl *r) {
    struct sigaction sa = {.sa_handler = on_sigint}, old;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old);
    got_sigint = 0;
    while (workbench_busy(&r->wb)) {
        if (!workbench_pump(&r->wb)) nanosleep(&(struct timespec){0, 2000000}, NULL);
        if (got_sigint) {
            got_sigint = 0;
            workbench_stop(&r->wb);
        }
    }
    workbench_pump(&r->wb);
    sigaction(SIGINT, &old, NULL);
}

static char *read_line(bool interactive) {
    if (interactive) return readline("specscope> ");
    char *line = NULL;
    size_t cap = 0;
    ssize_t n = getline(&line, &cap, stdin);
    if (n < 0) {
        free(line);
        return NULL;
    }
    if (n > 0 && line[n - 1] == '\n') line[n - 1] = 0;
    return line;
}

int cmd_repl(int argc, char **argv) {
    gen_options o;
    int st = chat_options_parse("repl", argc, argv, &o);
    if (st >= 0) return st;
    setlocale(LC_ALL, "");
    static repl r;
    workbench_view view = {.print = print_hook, .token = token_hook, .finished = finished_hook, .ud = &r};
    if (!workbench_init(&r.wb, &o, &view)) {
        fprintf(stderr, "specscope repl: out of memory\n");
        workbench_free(&r.wb);
        return 1;
    }
    ss_error err = {0};
    ss_status os = workbench_open(&r.wb, &err);
    if (os) {
        fprintf(stderr, "specscope repl: %s\n", err.msg);
        workbench_free(&r.wb);
        return os == SS_ENOMEM || os == SS_EDEVICE ? 1 : 2;
    }
    bool interactive = isatty(STDIN_FILENO);
    if (interactive) {
        rl_readline_name = "specscope";
        rl_attempted_completion_function = console_completion;
        history_load();
        char desc[256];
        workbench_describe(&r.wb, desc, sizeof desc);
        printf("specscope repl on %s: type a message, or /help\n", desc);
    }
    char *line;
    while (!r.wb.quit && (line = read_line(interactive))) {
        if (interactive) history_remember(line);
        console_execute(&r.wb, line);
        free(line);
        wait_for_job(&r);
    }
    workbench_free(&r.wb);
    return 0;
}
