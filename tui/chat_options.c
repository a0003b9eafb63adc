/* chat_options.c — option parsing shared by the interface and the REPL. */
#include <stdio.h>
#include <string.h>

#include "args.h"
#include "chat_options.h"
#include "commands.h"

static void usage(const char *cmd) {
    printf("usage: specscope %s [--model DIR] [--draft DIR|none|ngram] [--lora DIR[:SCALE]]... "
           "[--backend auto|cpu|cuda] [--k K] [options]\n\n",
           cmd);
    if (strcmp(cmd, "repl") == 0)
        printf("The interface's commands in a plain read-eval-print loop: each line is a /command or a chat\n"
               "message; the answer streams to stdout with a statistics line after it. Reads stdin without\n"
               "prompts when it is not a terminal. /help lists the commands.\n\n");
    else
        printf("The terminal interface: chat, speculation, timeline, lora and console panes. Falls back to\n"
               "`specscope repl` when stdin or stdout is not a terminal. F1 in the interface lists the keys.\n\n");
    printf("With neither --model nor --draft it runs on the bundled demo pair (target and draft).\n"
           "  --lora DIR[:SCALE]     apply a PEFT LoRA adapter to the target at SCALE (default 1); repeatable\n"
           "  --lora-merge           fold the adapters into the weights (no cost per token; docs/lora.md)\n"
           "%s",
           gen_options_help);
}

int chat_options_parse(const char *cmd, int argc, char **argv, gen_options *o) {
    gen_options_default(o);
    bool model_given = false, draft_given = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (is_help(a)) {
            usage(cmd);
            return 0;
        }
        if (strcmp(a, "--lora") == 0) {
            const char *v = arg_value(cmd, argc, argv, &i);
            if (!v || !lora_args_add(&o->loras, cmd, v)) return 2;
            continue;
        }
        if (strcmp(a, "--lora-merge") == 0) {
            o->loras.merge = true;
            continue;
        }
        model_given |= strcmp(a, "--model") == 0;
        draft_given |= strcmp(a, "--draft") == 0;
        int r = gen_options_parse(o, cmd, argc, argv, &i);
        if (r < 0) return 2;
        if (r == 0) {
            fprintf(stderr, "specscope %s: unknown option '%s' (see --help)\n", cmd, a);
            return 2;
        }
    }
    if (!model_given && !draft_given) o->session.draft_dir = demo_draft_dir();
    o->params.chat = true;
    return -1;
}
