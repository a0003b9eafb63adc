/* cmd_run.c — `specscope run`: a Lua script headless, with the `spec` module (docs/lua.md). */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>

#include "args.h"
#include "commands.h"
#include "spec_lua.h"

static void usage(FILE *out) {
    fprintf(out,
            "usage: specscope run [--unsafe] [--memory-limit MB] [--time-limit S] SCRIPT.lua [ARGS...]\n\n"
            "Runs a Lua 5.4 script with the `spec` module (sessions, generation, CSV / JSON results; see\n"
            "docs/lua.md). The arguments after the script are spec.args (and arg) in the script.\n"
            "Ctrl-C interrupts the script; an error prints a traceback with file:line.\n\n"
            "  --unsafe            allow os.execute, io.popen, os.exit, C modules and binary chunks\n"
            "  --memory-limit MB   cap on the script's own allocations (default 1024; models not included)\n"
            "  --time-limit S      interrupt the script after S seconds (default: no limit)\n\n"
            "exit status: 0 the script ended, 1 it raised an error, ran out of memory or was interrupted,\n"
            "2 bad usage, or the script cannot be read or does not compile\n");
}

static ss_lua *running; /* the interpreter the signal handlers interrupt */
static volatile sig_atomic_t time_is_up;

static void on_sigint(int sig) {
    (void)sig;
    if (running) ss_lua_interrupt(running);
}

static void on_alarm(int sig) {
    (void)sig;
    time_is_up = 1;
    if (running) ss_lua_interrupt(running);
}

static void arm_timer(float seconds) {
    struct itimerval t = {0};
    t.it_value.tv_sec = (time_t)seconds;
    t.it_value.tv_usec = (suseconds_t)((seconds - (float)t.it_value.tv_sec) * 1e6f);
    if (t.it_value.tv_sec == 0 && t.it_value.tv_usec == 0) t.it_value.tv_usec = 1;
    setitimer(ITIMER_REAL, &t, NULL);
}

int cmd_run(int argc, char **argv) {
    ss_lua_opts opts = {0};
    float time_limit = 0;
    int i = 1;
    for (; i < argc && argv[i][0] == '-' && argv[i][1]; i++) {
        const char *a = argv[i];
        int mb;
        if (is_help(a)) {
            usage(stdout);
            return 0;
        } else if (strcmp(a, "--unsafe") == 0) {
            opts.unsafe = true;
        } else if (strcmp(a, "--memory-limit") == 0) {
            const char *v = arg_value("run", argc, argv, &i);
            if (!v || !arg_int("run", a, v, 1, 1 << 20, &mb)) return 2;
            opts.memory_limit = (size_t)mb << 20;
        } else if (strcmp(a, "--time-limit") == 0) {
            const char *v = arg_value("run", argc, argv, &i);
            if (!v || !arg_float("run", a, v, 0.001, 1e7, &time_limit)) return 2;
        } else {
            fprintf(stderr, "specscope run: unknown option '%s' (see --help)\n", a);
            return 2;
        }
    }
    if (i >= argc) {
        fprintf(stderr, "specscope run: no script given (usage: specscope run [OPTIONS] SCRIPT.lua [ARGS...])\n");
        return 2;
    }
    const char *script = argv[i];

    ss_error err = {0};
    ss_lua *L;
    if (ss_lua_new(&opts, &L, &err)) {
        fprintf(stderr, "specscope run: %s\n", err.msg);
        return 1;
    }
    running = L;
    struct sigaction sa = {0}, old_int, old_alarm;
    sa.sa_handler = on_sigint;
    sigaction(SIGINT, &sa, &old_int);
    sa.sa_handler = on_alarm;
    sigaction(SIGALRM, &sa, &old_alarm);
    if (time_limit > 0) arm_timer(time_limit);

    /* The script reported its own error (message and traceback) on stderr. */
    ss_status st = ss_lua_run_file(L, script, argc - i - 1, argv + i + 1, &err);

    setitimer(ITIMER_REAL, &(struct itimerval){0}, NULL);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGALRM, &old_alarm, NULL);
    running = NULL;
    ss_lua_free(L);
    if (st == SS_ESTOPPED)
        fprintf(stderr, "specscope run: %s interrupted%s\n", script, time_is_up ? " (time limit reached)" : "");
    if (st == SS_EIO || st == SS_EFORMAT) return 2;
    return st ? 1 : 0;
}
