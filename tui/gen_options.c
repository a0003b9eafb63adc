/* gen_options.c — parsing of the shared model / generation options. */
#include <stdio.h>
#include <string.h>

#include "args.h"
#include "commands.h"
#include "gen_options.h"

const char gen_options_help[] =
    "  --model DIR            target checkpoint folder (default: the bundled demo target)\n"
    "  --draft DIR|ngram|none draft model folder, prompt lookup, or none (default: none)\n"
    "  --backend auto|cpu|cuda  compute backend (default auto: CUDA when a device is present)\n"
    "  --ctx N                KV cache length (default: min(max_position_embeddings, 4096))\n"
    "  --tp N                 split the target over N tensor-parallel ranks, 1..8 (CPU ranks with\n"
    "                         --backend cpu, CUDA device r for rank r; the draft stays on one device;\n"
    "                         default 1)\n"
    "  -n N                   tokens to generate (default 128)\n"
    "  --temp T               temperature, 0 = greedy (default 0)\n"
    "  --top-k K  --top-p P  --min-p P  --repeat-penalty R   sampling filters (default off)\n"
    "  --seed S               random seed (default 1)\n"
    "  --k K                  draft tokens per round, 1..16 (default 4)\n"
    "  --adaptive X           stop drafting when the draft's top probability < X (default off)\n"
    "  --easyspec G           EasySpec: draft layers in parallel groups of G (default off)\n"
    "  --easyspec-mode M      attn (attention parallel, MLPs in order) or layer (default attn)\n"
    "  --groups LIST          explicit EasySpec groups, e.g. 0-1,2-3 (overrides --easyspec)\n"
    "  --chat                 wrap the prompt in the model's chat format\n";

void gen_options_default(gen_options *o) {
    memset(o, 0, sizeof *o);
    o->session.model_dir = demo_target_dir();
    o->session.backend = SS_BACKEND_AUTO;
    ss_params_default(&o->params);
}

int gen_options_parse(gen_options *o, const char *cmd, int argc, char **argv, int *i) {
    const char *opt = argv[*i];
    ss_params *p = &o->params;
    if (strcmp(opt, "--chat") == 0) {
        p->chat = true;
        return 1;
    }
    static const char *const with_value[] = {"--model", "--draft", "--backend", "--ctx", "-n", "--temp", "--top-k",
                                             "--top-p", "--min-p", "--repeat-penalty", "--seed", "--k", "--adaptive",
                                             "--easyspec", "--easyspec-mode", "--groups", "--tp"};
    bool known = false;
    for (size_t j = 0; j < sizeof with_value / sizeof *with_value; j++) known |= strcmp(opt, with_value[j]) == 0;
    if (!known) return 0;
    const char *v = arg_value(cmd, argc, argv, i);
    if (!v) return -1;
    bool ok = true;
    if (strcmp(opt, "--model") == 0) o->session.model_dir = v;
    else if (strcmp(opt, "--draft") == 0) o->session.draft_dir = v;
    else if (strcmp(opt, "--backend") == 0) ok = arg_backend(cmd, v, &o->session.backend);
    else if (strcmp(opt, "--ctx") == 0) ok = arg_int(cmd, opt, v, 16, 1 << 20, &o->session.max_context);
    else if (strcmp(opt, "--tp") == 0) ok = arg_int(cmd, opt, v, 1, SS_MAX_TP, &o->session.tp);
    else if (strcmp(opt, "-n") == 0) ok = arg_int(cmd, opt, v, 0, 1 << 20, &p->max_tokens);
    else if (strcmp(opt, "--temp") == 0) ok = arg_float(cmd, opt, v, 0, 100, &p->sampling.temperature);
    else if (strcmp(opt, "--top-k") == 0) ok = arg_int(cmd, opt, v, 0, 1 << 24, &p->sampling.top_k);
    else if (strcmp(opt, "--top-p") == 0) ok = arg_float(cmd, opt, v, 0, 1, &p->sampling.top_p);
    else if (strcmp(opt, "--min-p") == 0) ok = arg_float(cmd, opt, v, 0, 1, &p->sampling.min_p);
    else if (strcmp(opt, "--repeat-penalty") == 0) ok = arg_float(cmd, opt, v, 0.01, 100, &p->sampling.repeat_penalty);
    else if (strcmp(opt, "--seed") == 0) ok = arg_u64(cmd, opt, v, &p->sampling.seed);
    else if (strcmp(opt, "--k") == 0) ok = arg_int(cmd, opt, v, 1, SS_MAX_K, &p->k);
    else if (strcmp(opt, "--adaptive") == 0) ok = arg_float(cmd, opt, v, 0, 1, &p->adaptive);
    else if (strcmp(opt, "--easyspec") == 0) ok = arg_int(cmd, opt, v, 0, 1024, &p->easyspec);
    else if (strcmp(opt, "--easyspec-mode") == 0) {
        if (strcmp(v, "attn") == 0) p->easyspec_mode = SS_EASYSPEC_ATTN;
        else if (strcmp(v, "layer") == 0) p->easyspec_mode = SS_EASYSPEC_LAYER;
        else {
            fprintf(stderr, "specscope %s: --easyspec-mode '%s' is not attn or layer\n", cmd, v);
            ok = false;
        }
    } else if (strcmp(opt, "--groups") == 0) {
        if (strlen(v) >= sizeof p->easyspec_groups) {
            fprintf(stderr, "specscope %s: --groups '%.20s...' is too long\n", cmd, v);
            ok = false;
        } else {
            snprintf(p->easyspec_groups, sizeof p->easyspec_groups, "%s", v);
        }
    }
    return ok ? 1 : -1;
}
