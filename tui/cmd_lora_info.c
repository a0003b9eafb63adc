/* cmd_lora_info.c — `specscope lora-info`: norms of a PEFT LoRA adapter per layer and module.
 * LoRA adapters have not landed in the engine yet; the subcommand exists so the CLI contract of
 * DESIGN.md is complete, and says so plainly instead of printing anything made up. */
#include <stdio.h>
#include <string.h>

#include "commands.h"

int cmd_lora_info(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            printf("usage: specscope lora-info ADAPTER --model DIR [--json]\n"
                   "Prints ||A||, ||B||, ||s*BA|| and ||s*BA||/||W0|| per layer and module.\n"
                   "Not available yet: LoRA support has not landed in the engine.\n");
            return 0;
        }
    }
    fprintf(stderr, "specscope lora-info: not available yet (LoRA support has not landed)\n");
    return 2;
}
