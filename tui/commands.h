/* commands.h — the subcommands of the specscope program, one file each (tui/cmd_*.c).
 * Each takes the arguments after the subcommand name (argv[0] is the subcommand) and returns the
 * process exit status: 0 success, 1 a runtime failure, 2 bad input or bad usage (one line on
 * stderr naming the culprit). Each accepts --help. */
#ifndef SPECSCOPE_COMMANDS_H
#define SPECSCOPE_COMMANDS_H

int cmd_chat(int argc, char **argv);      /* cmd_chat.c: the ncurses interface (default) */
int cmd_repl(int argc, char **argv);      /* cmd_repl.c: plain readline REPL */
int cmd_generate(int argc, char **argv);  /* cmd_generate.c */
int cmd_tokenize(int argc, char **argv);  /* cmd_tokenize.c */
int cmd_bench(int argc, char **argv);     /* cmd_bench.c */
int cmd_lora_info(int argc, char **argv); /* cmd_lora_info.c */
int cmd_run(int argc, char **argv);       /* cmd_run.c: headless Lua */

/* The bundled demo pair, found beside the executable or in the source tree. */
const char *demo_target_dir(void);
const char *demo_draft_dir(void);

#endif
