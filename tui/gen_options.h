/* gen_options.h — the model and generation options that generate, bench, chat and repl share:
 *   --model DIR --draft DIR|ngram|none --backend auto|cpu|cuda --ctx N --tp N
 *   -n N --temp T --top-k K --top-p P --min-p P --repeat-penalty R --seed S
 *   --k K --adaptive X --easyspec G --easyspec-mode attn|layer --groups LIST --chat
 */
#ifndef SPECSCOPE_GEN_OPTIONS_H
#define SPECSCOPE_GEN_OPTIONS_H

#include "lora_args.h"
#include "specscope.h"

typedef struct {
    ss_session_opts session;
    ss_params params;
    lora_args loras; /* --lora DIR[:SCALE]: generate, chat and repl read it (lora_args.h) */
} gen_options;

/* Defaults: the demo target, no draft, auto backend, ss_params_default. */
void gen_options_default(gen_options *o);
/* Parses argv[*i] (and its value) when it is one of the options above: returns 1 when consumed,
 * 0 when it is not a generation option, -1 after printing an error for a bad value. */
int gen_options_parse(gen_options *o, const char *cmd, int argc, char **argv, int *i);
/* The help text for these options. */
extern const char gen_options_help[];

#endif
