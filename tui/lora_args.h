/* lora_args.h — `--lora DIR[:SCALE]` options: parsed while reading the command line, loaded onto the
 * target model once it is open (generate, chat, repl). */
#ifndef SPECSCOPE_LORA_ARGS_H
#define SPECSCOPE_LORA_ARGS_H

#include <stdbool.h>

#include "specscope.h"

#define MAX_LORA_ARGS 8

typedef struct { /* copies, so the options can be copied by value */
    char dir[MAX_LORA_ARGS][1024];
    float scale[MAX_LORA_ARGS];
    int n;
    bool merge; /* --lora-merge: fold them into the weights (ss_model_lora_merge) */
} lora_args;

/* Adds one "DIR" or "DIR:SCALE" (SCALE a finite number; a DIR that itself ends in ":<number>" can
 * be given as "DIR:<number>:1"). false, with a message naming cmd, on a bad value or too many. */
bool lora_args_add(lora_args *l, const char *cmd, const char *val);
/* Loads each onto m in order, then merges them when asked; the first failure's status (what loaded
 * before it stays bound). */
ss_status lora_args_load(const lora_args *l, ss_model *m, ss_error *err);

#endif
