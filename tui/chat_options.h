/* chat_options.h — the options of `specscope chat` and `specscope repl` (the same for both). */
#ifndef SPECSCOPE_CHAT_OPTIONS_H
#define SPECSCOPE_CHAT_OPTIONS_H

#include "gen_options.h"

/* Parses argv (argv[0] is the subcommand). Returns -1 to go on, or an exit status: 0 after --help,
 * 2 after a one-line error on stderr. With neither --model nor --draft, the session is the demo
 * pair (target and draft). */
int chat_options_parse(const char *cmd, int argc, char **argv, gen_options *o);

#endif
