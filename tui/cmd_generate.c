/* cmd_generate.c — `specscope generate`: one prompt, plain or speculative decoding, streamed text
 * or the JSON object of DESIGN.md's contract. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "commands.h"
#include "gen_options.h"
#include "report.h"

static void usage(FILE *out) {
    fprintf(out,
            "usage: specscope generate [--model DIR] [--draft DIR|ngram] (-p TEXT | --prompt-file F | --prompt-ids IDS)\n"
            "                          [options] [--json]\n\n"
            "Generates a continuation of the prompt with the target model, speculatively when a draft is given.\n"
            "Text goes to stdout as it is generated, a statistics line to stderr; --json prints one object:\n"
            "{text, tokens, sources, prompt_tokens, stats} (sources: d = accepted draft token, t = target token).\n\n"
            "  -p TEXT                the prompt text (tokenized with the model's tokenizer.json)\n"
            "  --prompt-file F        read the prompt text from a file\n"
            "  --prompt-ids IDS       the prompt as token ids (\"1 2 3\"): no tokenizer, no BOS added\n"
            "  --json                 print the result as one JSON object\n"
            "  --lora DIR[:SCALE]     apply a PEFT LoRA adapter (not available yet)\n"
            "  --trace FILE.json      write a Chrome trace of the run (not available yet)\n"
            "%s",
            gen_options_help);
}

static volatile int stop_requested;
static void on_sigint(int sig) {
    (void)sig;
    stop_requested = 1;
}

static void print_piece(void *ud, const char *piece, int id, char source) {
    (void)ud, (void)id, (void)source;
    fputs(piece, stdout);
    fflush(stdout);
}

static char *read_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = NULL;
    size_t len = 0, cap = 0, got;
    do {
        if (len + 4096 + 1 > cap) {
            cap = (len + 4096 + 1) * 2;
            char *b = realloc(buf, cap);
            if (!b) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = b;
        }
        got = fread(buf + len, 1, 4096, f);
        len += got;
    } while (got > 0);
    fclose(f);
    buf[len] = 0;
    return buf;
}

static void print_stats_line(const ss_stats *st) {
    fprintf(stderr, "specscope: %d prompt + %d generated tokens, prefill %.1f ms, %.1f tok/s", st->prompt_tokens,
            st->generated, st->ms_prefill, st->tokens_per_s);
    if (st->has_draft && st->proposed)
        fprintf(stderr, ", k=%d acceptance %.3f, %.2f tokens/step", st->k, (double)st->accepted / st->proposed,
                st->mean_accepted_length);
    fputc('\n', stderr);
}

static int exit_code(ss_status st) { return st == SS_ENOMEM || st == SS_EDEVICE || st == SS_ESTOPPED ? 1 : 2; }

int cmd_generate(int argc, char **argv) {
    gen_options o;
    gen_options_default(&o);
    const char *text = NULL, *prompt_file = NULL, *ids_text = NULL;
    bool json = false;
    for (int i = 1; i < argc; i++) {
        int r = gen_options_parse(&o, "generate", argc, argv, &i);
        if (r < 0) return 2;
        if (r > 0) continue;
        const char *a = argv[i];
        if (is_help(a)) {
            usage(stdout);
            return 0;
        } else if (strcmp(a, "--json") == 0) {
            json = true;
        } else if (strcmp(a, "-p") == 0 || strcmp(a, "--prompt") == 0) {
            if (!(text = arg_value("generate", argc, argv, &i))) return 2;
        } else if (strcmp(a, "--prompt-file") == 0) {
            if (!(prompt_file = arg_value("generate", argc, argv, &i))) return 2;
        } else if (strcmp(a, "--prompt-ids") == 0) {
            if (!(ids_text = arg_value("generate", argc, argv, &i))) return 2;
        } else if (strcmp(a, "--lora") == 0 || strcmp(a, "--trace") == 0) {
            fprintf(stderr, "specscope generate: %s is not available yet (%s has not landed)\n", a,
                    a[2] == 'l' ? "LoRA support" : "the tracer");
            return 2;
        } else {
            fprintf(stderr, "specscope generate: unknown option '%s' (see --help)\n", a);
            return 2;
        }
    }
    if (!!text + !!prompt_file + !!ids_text != 1) {
        fprintf(stderr, "specscope generate: give exactly one of -p TEXT, --prompt-file F, --prompt-ids IDS\n");
        return 2;
    }
    ss_ids ids = {0};
    char *file_text = NULL;
    if (ids_text && !arg_ids("generate", "--prompt-ids", ids_text, &ids)) return 2;
    if (prompt_file && !(text = file_text = read_file(prompt_file))) {
        fprintf(stderr, "specscope generate: cannot read prompt file '%s'\n", prompt_file);
        return 2;
    }

    ss_error err = {0};
    ss_session *s;
    ss_status st = ss_session_open(&o.session, &s, &err);
    if (st) {
        fprintf(stderr, "specscope generate: %s\n", err.msg);
        ss_ids_free(&ids);
        free(file_text);
        return exit_code(st);
    }
    signal(SIGINT, on_sigint);
    ss_callbacks cb = {.on_token = json ? NULL : print_piece, .stop = &stop_requested};
    ss_result r;
    st = ids.n ? ss_session_generate_ids(s, ids.ids, ids.n, &o.params, &cb, &r, &err)
               : ss_session_generate(s, text, &o.params, &cb, &r, &err);
    signal(SIGINT, SIG_DFL);
    if (!st || st == SS_ESTOPPED) {
        if (json) {
            json_t *obj = report_result(&r);
            report_print(obj);
            json_decref(obj);
        } else {
            putchar('\n');
            print_stats_line(&r.stats);
        }
        ss_result_free(&r);
    }
    if (st) fprintf(stderr, "specscope generate: %s\n", err.msg);
    ss_session_close(s);
    ss_ids_free(&ids);
    free(file_text);
    return st ? exit_code(st) : 0;
}
