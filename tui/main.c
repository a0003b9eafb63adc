/* main.c — the specscope program: subcommand dispatch. With no subcommand it opens the interface
 * on the bundled demo pair (or the plain REPL when stdin or stdout is not a terminal). */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "commands.h"

typedef struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} subcommand;

static const subcommand subcommands[] = {
    {"chat", cmd_chat, "the interactive interface (default)"},
    {"repl", cmd_repl, "the same commands in a plain readline REPL"},
    {"generate", cmd_generate, "generate from a prompt (plain or speculative), text or --json"},
    {"tokenize", cmd_tokenize, "text on stdin -> token ids"},
    {"bench", cmd_bench, "prefill / decode / speculative decoding speed"},
    {"lora-info", cmd_lora_info, "norms of a LoRA adapter per layer and module"},
    {"run", cmd_run, "run a Lua script headless"},
};
#define N_SUBCOMMANDS (sizeof subcommands / sizeof subcommands[0])

static void usage(FILE *out) {
    fprintf(out, "usage: specscope [SUBCOMMAND] [OPTIONS]\n\n"
                 "specscope: a terminal workbench for speculative decoding, LoRA adapters and GPU kernels.\n"
                 "With no subcommand it opens the interface on the bundled demo pair (models/demo).\n\n"
                 "subcommands:\n");
    for (size_t i = 0; i < N_SUBCOMMANDS; i++)
        fprintf(out, "  %-10s %s\n", subcommands[i].name, subcommands[i].summary);
    fprintf(out, "\n`specscope SUBCOMMAND --help` describes each one.\n");
}

/* The demo pair ships in models/demo of the source tree; an installed or moved binary also looks
 * beside itself (DIR/models/demo, DIR/../models/demo). */
static const char *find_demo(const char *which) {
    static char found[2][PATH_MAX];
    char *slot = found[strcmp(which, "draft") == 0];
    if (slot[0]) return slot;
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    const char *candidates[3] = {SPECSCOPE_SOURCE_DIR, NULL, NULL};
    char beside[PATH_MAX], above[PATH_MAX];
    if (n > 0) {
        exe[n] = 0;
        char *slash = strrchr(exe, '/');
        if (slash) *slash = 0;
        snprintf(beside, sizeof beside, "%s", exe);
        snprintf(above, sizeof above, "%s/..", exe);
        candidates[1] = beside;
        candidates[2] = above;
    }
    for (int i = 0; i < 3; i++) {
        if (!candidates[i]) continue;
        char config[PATH_MAX + 64];
        snprintf(config, sizeof config, "%s/models/demo/%s/config.json", candidates[i], which);
        if (access(config, R_OK) == 0) {
            snprintf(slot, PATH_MAX, "%s/models/demo/%s", candidates[i], which);
            return slot;
        }
    }
    snprintf(slot, PATH_MAX, "%s/models/demo/%s", SPECSCOPE_SOURCE_DIR, which);
    return slot;
}

const char *demo_target_dir(void) { return find_demo("target"); }
const char *demo_draft_dir(void) { return find_demo("draft"); }

int main(int argc, char **argv) {
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        usage(stdout);
        return 0;
    }
    if (argc >= 2 && strcmp(argv[1], "--version") == 0) {
        printf("specscope 0.1\n");
        return 0;
    }
    if (argc >= 2 && argv[1][0] != '-') {
        for (size_t i = 0; i < N_SUBCOMMANDS; i++)
            if (strcmp(argv[1], subcommands[i].name) == 0) return subcommands[i].run(argc - 1, argv + 1);
        fprintf(stderr, "specscope: unknown subcommand '%s' (try specscope --help)\n", argv[1]);
        return 2;
    }
    /* No subcommand: options go to the interface, which itself falls back to the REPL off a TTY. */
    argv[0] = "chat";
    return cmd_chat(argc, argv);
}
