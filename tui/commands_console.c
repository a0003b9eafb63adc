/* commands_console.c — the /command table, its parsing and its completion. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <readline/readline.h>

#include "commands_console.h"


/* ------------------------------------------------------------------ argument parsing */

static char *next_word(char **rest) {
    char *p = *rest;
    while (isspace((unsigned char)*p)) p++;
    if (!*p) {
        *rest = p;
        return NULL;
    }
    char *w = p;
    while (*p && !isspace((unsigned char)*p)) p++;
    if (*p) *p++ = 0;
    *rest = p;
    return w;
}

static bool parse_long(workbench *wb, const char *cmd, const char *v, long lo, long hi, long *out) {
    char *end;
    errno = 0;
    long x = v ? strtol(v, &end, 10) : 0;
    if (!v || errno || end == v || *end || x < lo || x > hi) {
        workbench_say(wb, OUT_ERROR, "%s: '%s' is not an integer in [%ld, %ld]", cmd, v ? v : "", lo, hi);
        return false;
    }
    *out = x;
    return true;
}

static bool parse_double(workbench *wb, const char *cmd, const char *v, double lo, double hi, double *out) {
    char *end;
    errno = 0;
    double x = v ? strtod(v, &end) : 0;
    if (!v || errno || end == v || *end || !isfinite(x) || x < lo || x > hi) {
        workbench_say(wb, OUT_ERROR, "%s: '%s' is not a number in [%g, %g]", cmd, v ? v : "", lo, hi);
        return false;
    }
    *out = x;
    return true;
}

static bool need_arg(workbench *wb, const char *cmd, const char *usage, const char *arg) {
    if (arg && *arg) return true;
    workbench_say(wb, OUT_ERROR, "usage: %s %s", cmd, usage);
    return false;
}

/* ------------------------------------------------------------------ commands */

static void cmd_model(workbench *wb, char *args) {
    if (!need_arg(wb, "/model", "DIR", args)) return;
    workbench_set_models(wb, args, NULL);
}

static void cmd_draft(workbench *wb, char *args) {
    if (!need_arg(wb, "/draft", "DIR|none|ngram", args)) return;
    workbench_set_models(wb, NULL, args);
}

static void cmd_k(workbench *wb, char *args) {
    long k;
    if (!parse_long(wb, "/k", next_word(&args), 0, SS_MAX_K, &k)) return;
    wb->params.k = (int)k;
    workbench_say(wb, OUT_INFO, "k = %ld%s", k, k == 0 ? ": plain decoding from the next message" : " from the next message");
    wb->changed = true;
}

static void cmd_temp(workbench *wb, char *args) {
    double t;
    if (!parse_double(wb, "/temp", next_word(&args), 0, 100, &t)) return;
    wb->params.sampling.temperature = (float)t;
    workbench_say(wb, OUT_INFO, "temperature = %g%s", t, t == 0 ? " (greedy)" : "");
    wb->changed = true;
}

static void cmd_seed(workbench *wb, char *args) {
    const char *v = next_word(&args);
    char *end;
    errno = 0;
    unsigned long long s = v ? strtoull(v, &end, 10) : 0;
    if (!v || errno || end == v || *end || v[0] == '-') {
        workbench_say(wb, OUT_ERROR, "/seed: '%s' is not a non-negative integer", v ? v : "");
        return;
    }
    wb->params.sampling.seed = s;
    workbench_say(wb, OUT_INFO, "seed = %llu", s);
}

static bool is_group_list(const char *s) {
    for (; *s; s++)
        if (!isdigit((unsigned char)*s) && *s != '-' && *s != ',') return false;
    return true;
}

static void cmd_easyspec(workbench *wb, char *args) {
    const char *v = next_word(&args), *mode = next_word(&args);
    ss_params *p = &wb->params;
    if (!need_arg(wb, "/easyspec", "G|GROUPS|off [attn|layer]", v)) return;
    if (mode && strcmp(mode, "attn") != 0 && strcmp(mode, "layer") != 0) {
        workbench_say(wb, OUT_ERROR, "/easyspec: mode '%s' is not attn or layer", mode);
        return;
    }
    if (strcmp(v, "off") == 0) {
        p->easyspec = 0;
        p->easyspec_groups[0] = 0;
        workbench_say(wb, OUT_INFO, "EasySpec off: the draft runs its layers in order");
        wb->changed = true;
        return;
    }
    long g;
    if (strchr(v, '-') || strchr(v, ',')) {
        if (!is_group_list(v) || strlen(v) >= sizeof p->easyspec_groups) {
            workbench_say(wb, OUT_ERROR, "/easyspec: '%s' is not a group list like 0-1,2-3", v);
            return;
        }
        snprintf(p->easyspec_groups, sizeof p->easyspec_groups, "%s", v);
        p->easyspec = 0;
    } else {
        if (!parse_long(wb, "/easyspec", v, 0, 1024, &g)) return;
        p->easyspec = (int)g;
        p->easyspec_groups[0] = 0;
    }
    if (mode) p->easyspec_mode = strcmp(mode, "layer") == 0 ? SS_EASYSPEC_LAYER : SS_EASYSPEC_ATTN;
    const char *how = p->easyspec_mode == SS_EASYSPEC_LAYER ? "whole layers" : "attention";
    if (p->easyspec_groups[0]) workbench_say(wb, OUT_INFO, "EasySpec groups %s (%s in parallel)", v, how);
    else if (p->easyspec >= 2) workbench_say(wb, OUT_INFO, "EasySpec on: groups of %d layers (%s in parallel)", p->easyspec, how);
    else workbench_say(wb, OUT_INFO, "EasySpec off (a group of one layer is the sequential order)");
    if (wb->session && strcmp(ss_session_draft_kind(wb->session), "model") != 0 && (p->easyspec >= 2 || p->easyspec_groups[0]))
        workbench_say(wb, OUT_ERROR, "note: EasySpec needs a draft model (/draft DIR) before the next message");
    wb->changed = true;
}

static void cmd_lora(workbench *wb, char *args) {
    const char *sub = next_word(&args), *dir, *value;
    double scale = 1;
    if (sub && !strcmp(sub, "load") && (dir = next_word(&args))) {
        if ((value = next_word(&args)) && !parse_double(wb, "/lora load", value, -1e6, 1e6, &scale)) return;
        workbench_lora_load(wb, dir, (float)scale);
    } else if (sub && !strcmp(sub, "scale") && (value = next_word(&args))) {
        if (parse_double(wb, "/lora scale", value, -1e6, 1e6, &scale)) workbench_lora_scale(wb, (float)scale);
    } else if (sub && (!strcmp(sub, "on") || !strcmp(sub, "off"))) {
        workbench_lora_enable(wb, !strcmp(sub, "on"));
    } else if (sub && !strcmp(sub, "unload")) {
        workbench_lora_unload(wb);
    } else if (sub && !strcmp(sub, "list")) {
        workbench_lora_list(wb);
    } else if (sub && !strcmp(sub, "merge") && (value = next_word(&args)) && (!strcmp(value, "on") || !strcmp(value, "off"))) {
        workbench_lora_merge(wb, !strcmp(value, "on"));
    } else {
        workbench_say(wb, OUT_ERROR, "usage: /lora load DIR [SCALE] | scale S | on | off | unload | list | merge on|off");
    }
}

static void cmd_trace(workbench *wb, char *args) {
    if (!need_arg(wb, "/trace", "FILE.json", args)) return;
    ss_error err = {0};
    if (trace_feed_export(&wb->trace, args, &err)) {
        workbench_say(wb, OUT_ERROR, "/trace: %s", err.msg);
        return;
    }
    workbench_say(wb, OUT_INFO, "wrote %s: the session's timeline (Chrome trace; open it in Perfetto)", args);
}

static void cmd_clear(workbench *wb, char *args) {
    (void)args;
    if (workbench_clear(wb)) workbench_say(wb, OUT_INFO, "the conversation is cleared");
}

static void cmd_save(workbench *wb, char *args) {
    if (!need_arg(wb, "/save", "FILE", args)) return;
    int e = transcript_save(&wb->chat, args);
    if (e) workbench_say(wb, OUT_ERROR, "/save: cannot write '%s': %s", args, strerror(e));
    else workbench_say(wb, OUT_INFO, "transcript saved to %s (%d turns)", args, wb->chat.n_turns);
}

static void cmd_lua(workbench *wb, char *args) {
    if (!need_arg(wb, "/lua", "CODE", args)) return;
    ss_error err = {0};
    if (lua_runner_start_code(&wb->lua, wb->session, args, &err)) workbench_say(wb, OUT_ERROR, "/lua: %s", err.msg);
    wb->changed = true;
}

static void cmd_run(workbench *wb, char *args) {
    char *argv[64];
    int argc = 0;
    char *w;
    while (argc < 64 && (w = next_word(&args))) argv[argc++] = w;
    if (argc == 0) {
        workbench_say(wb, OUT_ERROR, "usage: /run SCRIPT [ARGS...]");
        return;
    }
    ss_error err = {0};
    if (lua_runner_start_file(&wb->lua, wb->session, argc, argv, &err)) workbench_say(wb, OUT_ERROR, "/run: %s", err.msg);
    wb->changed = true;
}

static void cmd_baseline(workbench *wb, char *args) {
    (void)args;
    workbench_baseline(wb);
}

static void cmd_help(workbench *wb, char *args) {
    (void)args;
    workbench_say(wb, OUT_INFO, "commands (anything else is a chat message):");
    for (int i = 0; i < console_n_commands; i++) {
        const console_command *c = &console_commands[i];
        char head[64];
        snprintf(head, sizeof head, "%s %s", c->name, c->args);
        workbench_say(wb, OUT_INFO, "  %-36s %s", head, c->help);
    }
}

static void cmd_quit(workbench *wb, char *args) {
    (void)args;
    wb->quit = true;
}

static const char *const draft_words[] = {"none", "ngram", NULL};
static const char *const easyspec_words[] = {"off", "2", "3", "4", NULL};
static const char *const lora_words[] = {"load", "scale", "on", "off", "unload", "list", "merge", NULL};

const console_command console_commands[] = {
    {"/model", "DIR", "load another target model (the draft stays)", cmd_model, NULL, true},
    {"/draft", "DIR|none|ngram", "draft model folder, no drafting, or prompt lookup", cmd_draft, draft_words, true},
    {"/k", "N", "draft tokens per round, 0 (plain decoding) to 16", cmd_k, NULL, false},
    {"/temp", "T", "sampling temperature, 0 = greedy", cmd_temp, NULL, false},
    {"/seed", "S", "random seed of the sampler", cmd_seed, NULL, false},
    {"/easyspec", "G|GROUPS|off [attn|layer]", "EasySpec layer-parallel drafting in groups of G layers", cmd_easyspec,
     easyspec_words, false},
    {"/lora", "load DIR [S]|scale S|on|off", "PEFT LoRA adapters (also: unload, list, merge)", cmd_lora,
     lora_words, false},
    {"/trace", "FILE.json", "write the session's timeline as a Chrome trace (Perfetto)", cmd_trace, NULL, true},
    {"/baseline", "", "decode the last prompt plainly to measure the speedup", cmd_baseline, NULL, false},
    {"/clear", "", "forget the conversation", cmd_clear, NULL, false},
    {"/save", "FILE", "write the transcript to a file", cmd_save, NULL, true},
    {"/lua", "CODE", "run Lua code (the spec module; spec.current is this session)", cmd_lua, NULL, false},
    {"/run", "SCRIPT [ARGS...]", "run a Lua script file", cmd_run, NULL, true},
    {"/help", "", "list the commands", cmd_help, NULL, false},
    {"/quit", "", "leave", cmd_quit, NULL, false},
};
const int console_n_commands = sizeof console_commands / sizeof console_commands[0];

static const console_command *find_command(const char *name, size_t len) {
    for (int i = 0; i < console_n_commands; i++)
        if (strlen(console_commands[i].name) == len && strncmp(console_commands[i].name, name, len) == 0)
            return &console_commands[i];
    return NULL;
}

void console_execute(workbench *wb, const char *line) {
    while (isspace((unsigned char)*line)) line++;
    if (!*line) return;
    if (line[0] != '/') {
        workbench_chat(wb, line);
        return;
    }
    char *copy = strdup(line);
    if (!copy) {
        workbench_say(wb, OUT_ERROR, "out of memory");
        return;
    }
    size_t n = strcspn(copy, " \t");
    const console_command *c = find_command(copy, n);
    char *args = copy + n;
    while (isspace((unsigned char)*args)) args++;
    size_t len = strlen(args);
    while (len && isspace((unsigned char)args[len - 1])) args[--len] = 0;
    if (c) c->run(wb, args);
    else workbench_say(wb, OUT_ERROR, "unknown command '%.*s' (/help lists them)", (int)n, copy);
    free(copy);
}

/* ------------------------------------------------------------------ completion */

static const console_command *completing; /* the command whose argument is being completed */

static char *command_names(const char *text, int state) {
    static int i;
    static size_t len;
    if (!state) {
        i = 0;
        len = strlen(text);
    }
    while (i < console_n_commands) {
        const char *name = console_commands[i++].name;
        if (strncmp(name, text, len) == 0) return strdup(name);
    }
    return NULL;
}

/* The command's fixed words first, then (for a path argument) file names. */
static char *argument_words(const char *text, int state) {
    static int i, file_state;
    static size_t len;
    if (!state) {
        i = file_state = 0;
        len = strlen(text);
    }
    const char *const *words = completing->words;
    while (words && words[i]) {
        const char *w = words[i++];
        if (strncmp(w, text, len) == 0) return strdup(w);
    }
    if (!completing->files) return NULL;
    return rl_filename_completion_function(text, file_state++);
}

char **console_completion(const char *text, int start, int end) {
    (void)end;
    rl_attempted_completion_over = 1; /* no file names unless a command takes a path */
    const char *line = rl_line_buffer;
    size_t lead = strspn(line, " \t");
    if ((size_t)start <= lead) return line[lead] == '/' ? rl_completion_matches(text, command_names) : NULL;
    size_t n = strcspn(line + lead, " \t");
    completing = find_command(line + lead, n);
    if (!completing) return NULL;
    size_t arg_start = lead + n + strspn(line + lead + n, " \t");
    if ((size_t)start != arg_start) return NULL; /* only the first argument has completions */
    return rl_completion_matches(text, argument_words);
}
