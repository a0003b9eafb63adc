/* cmd_lora_info.c — `specscope lora-info ADAPTER --model DIR [--json]`: the norms of a PEFT LoRA
 * adapter per layer and module (engine/lora.c): |A|, |B|, |s B A| and |s B A| / |W0|, and
 * Stable-LoRA's test |A| / ((numel A / numel B) |B|). The model is
 * loaded on the CPU (only its checkpoint's W0 and the adapter's factors are read), so it runs
 * anywhere and on any model size the host can map. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "args.h"
#include "commands.h"

static void usage(FILE *f) {
    fprintf(f, "usage: specscope lora-info ADAPTER --model DIR [--scale S] [--json]\n"
               "Prints |A|, |B|, |s*BA| and |s*BA|/|W0| (Frobenius norms) for every layer and module the PEFT\n"
               "LoRA adapter in folder ADAPTER targets, s = lora_alpha / r (or / sqrt(r) with rsLoRA) times\n"
               "S (default 1), and Stable-LoRA's test |A| / ((numel A / numel B) |B|): training with\n"
               "Stable-LoRA shrinks A while it is >= 1 (inf while B is zero). ADAPTER holds\n"
               "adapter_config.json and adapter_model.safetensors.\n\n"
               "  --model DIR   the base checkpoint the adapter was trained on (default: the demo target)\n"
               "  --scale S     the adapter's multiplier (default 1)\n"
               "  --json        one JSON array of {\"layer\", \"module\", \"a\", \"b\", \"ba\", \"rel\", \"stable\"}\n"
               "                (\"stable\" null while B is zero)\n");
}

static void print_table(const ss_lora *a, const ss_lora_norm *rows, int n) {
    printf("# %s: r %d, s %.6g, scale %g\n", ss_lora_dir(a), ss_lora_rank(a), ss_lora_scaling(a), ss_lora_scale(a));
    printf("%5s  %-9s  %12s  %12s  %12s  %12s  %8s\n", "layer", "module", "|A|", "|B|", "|s*BA|", "|s*BA|/|W0|",
           "stable");
    int shrinking = 0;
    for (int i = 0; i < n; i++) {
        printf("%5d  %-9s  %12.6g  %12.6g  %12.6g  %12.6g  %8.4g\n", rows[i].layer, rows[i].module, rows[i].a,
               rows[i].b, rows[i].ba, rows[i].rel, rows[i].stable);
        shrinking += rows[i].stable >= 1;
    }
    printf("# stable = |A| / ((numel A / numel B) |B|): Stable-LoRA shrinks A while >= 1 (%d of %d modules now)\n",
           shrinking, n);
}

static void print_json(const ss_lora_norm *rows, int n) {
    json_t *arr = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(arr, json_pack("{s:i, s:s, s:f, s:f, s:f, s:f, s:o}", "layer", rows[i].layer, "module",
                                             rows[i].module, "a", rows[i].a, "b", rows[i].b, "ba", rows[i].ba, "rel",
                                             rows[i].rel, "stable",
                                             isfinite(rows[i].stable) ? json_real(rows[i].stable) : json_null()));
    json_dumpf(arr, stdout, JSON_COMPACT | JSON_REAL_PRECISION(17));
    putchar('\n');
    json_decref(arr);
}

int cmd_lora_info(int argc, char **argv) {
    const char *adapter = NULL, *model_dir = NULL;
    float scale = 1.0f;
    bool json = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        if (is_help(a)) {
            usage(stdout);
            return 0;
        } else if (strcmp(a, "--json") == 0) {
            json = true;
        } else if (strcmp(a, "--model") == 0) {
            if (!(model_dir = arg_value("lora-info", argc, argv, &i))) return 2;
        } else if (strcmp(a, "--scale") == 0) {
            if (!(v = arg_value("lora-info", argc, argv, &i)) || !arg_float("lora-info", "--scale", v, -1e6, 1e6, &scale))
                return 2;
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "specscope lora-info: unknown option '%s' (see --help)\n", a);
            return 2;
        } else if (adapter) {
            fprintf(stderr, "specscope lora-info: one adapter folder at a time ('%s' and '%s')\n", adapter, a);
            return 2;
        } else {
            adapter = a;
        }
    }
    if (!adapter) {
        fprintf(stderr, "specscope lora-info: give the adapter folder (see --help)\n");
        return 2;
    }
    ss_model_opts mo = {.dir = model_dir ? model_dir : demo_target_dir(), .backend = SS_BACKEND_CPU, .quiet = true,
                        .max_context = 16};
    ss_error err = {0};
    ss_model *m;
    ss_lora *lora;
    const ss_lora_norm *rows;
    int n;
    ss_status st = ss_model_load(&mo, &m, &err);
    if (st == SS_OK) {
        st = ss_lora_load(m, adapter, scale, &lora, &err);
        if (st == SS_OK) st = ss_lora_norms(lora, &rows, &n, &err);
        if (st == SS_OK && json) print_json(rows, n);
        else if (st == SS_OK) print_table(lora, rows, n);
        ss_model_free(m);
    }
    if (st != SS_OK) fprintf(stderr, "specscope lora-info: %s\n", err.msg);
    return st == SS_OK ? 0 : st == SS_ENOMEM ? 1 : 2;
}
