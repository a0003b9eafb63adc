/* cmd_generate.c — `specscope generate`: one prompt, plain or speculative decoding, streamed text
 * or the JSON object of DESIGN.md's contract. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "commands.h"
#include "gen_options.h"
#include "lora_args.h"
#include "report.h"
#include "trace.h"

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
            "  --lora DIR[:SCALE]     apply a PEFT LoRA adapter to the target at SCALE (default 1); repeatable\n"
            "  --lora-merge           fold the adapters into the weights (no cost per token; docs/lora.md)\n"
            "  --trace FILE.json      write a Chrome trace of the run (Perfetto): prefill and each step on the\n"
            "                         host, and on CUDA every kernel and copy (docs/trace.md)\n"
            "%s",
            gen_options_help);
}

static volatile int stop_requested;
static void on_sigint(int sig) {
    (void)sig;
    stop_requested = 1;
}

/* What the callbacks need: whether to stream the text, and the trace's open span (prefill until the
 * first token, then the round running until its on_step). */
typedef struct {
    bool print;
    ss_tracer *tracer;
    int step;
    ss_trace_span span;
} run_state;

static void on_token(void *ud, const char *piece, int id, char source) {
    run_state *rs = ud;
    (void)id, (void)source;
    if (rs->print) {
        fputs(piece, stdout);
        fflush(stdout);
    }
    if (rs->tracer && rs->step == 0) { /* the first token ends the prefill */
        ss_trace_end(&rs->span);
        ss_tracer_set_step(rs->tracer, rs->step = 1);
        rs->span = ss_trace_begin(rs->tracer, "step", "target", "decode", -1);
    }
}

static void on_step(void *ud, const ss_step *step) {
    run_state *rs = ud;
    (void)step;
    ss_trace_end(&rs->span);
    ss_tracer_set_step(rs->tracer, ++rs->step);
    rs->span = ss_trace_begin(rs->tracer, "step", "target", "decode", -1);
}

/* --trace: a tracer that the engine's hooks see too, and on CUDA the GPU's kernels and copies (a
 * one-line notice and host spans only where CUPTI cannot run). */
static ss_tracer *start_trace(ss_session *s, ss_error *err) {
    ss_tracer *t;
    if (ss_tracer_new(SS_TRACE_DEFAULT_CAPACITY, &t, err)) return NULL;
    ss_tracer_set_active(t);
    if (strcmp(ss_model_backend_name(ss_session_target(s)), "cuda") == 0) {
        ss_error gerr = {0};
        if (ss_trace_gpu_start(t, &gerr)) fprintf(stderr, "specscope generate: %s: host spans only\n", gerr.msg);
    }
    return t;
}

/* Stops the GPU collection and writes the trace; false (the message in err) when that fails. */
static bool finish_trace(ss_tracer *t, const char *path, ss_error *err) {
    ss_tracer_set_active(NULL);
    ss_error gerr = {0};
    if (ss_trace_gpu_stop(&gerr)) fprintf(stderr, "specscope generate: %s\n", gerr.msg);
    long dropped = ss_tracer_dropped(t);
    if (dropped)
        fprintf(stderr, "specscope generate: trace: the oldest %ld events were dropped (%d kept)\n", dropped,
                SS_TRACE_DEFAULT_CAPACITY);
    bool ok = ss_tracer_write_chrome(t, path, err) == SS_OK;
    ss_tracer_free(t);
    return ok;
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
    const char *text = NULL, *prompt_file = NULL, *ids_text = NULL, *trace_path = NULL;
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
        } else if (strcmp(a, "--trace") == 0) {
            if (!(trace_path = arg_value("generate", argc, argv, &i))) return 2;
        } else if (strcmp(a, "--lora") == 0) {
            const char *v = arg_value("generate", argc, argv, &i);
            if (!v || !lora_args_add(&o.loras, "generate", v)) return 2;
        } else if (strcmp(a, "--lora-merge") == 0) {
            o.loras.merge = true;
        } else {
            fprintf(stderr, "specscope generate: unknown option '%s' (see --help)\n", a);
            return 2;
        }
    }
    if (!!text + !!prompt_file + !!ids_text != 1) {
        fprintf(stderr, "specscope generate: give exactly one of -p TEXT, --prompt-file F, --prompt-ids IDS\n");
        return 2;
    }
    ss_error err = {0};
    if (trace_path && ss_trace_check_path(trace_path, &err)) {
        fprintf(stderr, "specscope generate: %s\n", err.msg);
        return 2;
    }
    ss_ids ids = {0};
    char *file_text = NULL;
    if (ids_text && !arg_ids("generate", "--prompt-ids", ids_text, &ids)) return 2;
    if (prompt_file && !(text = file_text = read_file(prompt_file))) {
        fprintf(stderr, "specscope generate: cannot read prompt file '%s'\n", prompt_file);
        return 2;
    }

    ss_session *s;
    ss_status st = ss_session_open(&o.session, &s, &err);
    if (st) {
        fprintf(stderr, "specscope generate: %s\n", err.msg);
        ss_ids_free(&ids);
        free(file_text);
        return exit_code(st);
    }
    if ((st = lora_args_load(&o.loras, ss_session_target(s), &err))) {
        fprintf(stderr, "specscope generate: %s\n", err.msg);
        ss_session_close(s);
        ss_ids_free(&ids);
        free(file_text);
        return exit_code(st);
    }
    run_state rs = {.print = !json};
    if (trace_path && !(rs.tracer = start_trace(s, &err))) {
        fprintf(stderr, "specscope generate: %s\n", err.msg);
        ss_session_close(s);
        ss_ids_free(&ids);
        free(file_text);
        return 1;
    }
    signal(SIGINT, on_sigint);
    ss_callbacks cb = {.on_token = rs.print || rs.tracer ? on_token : NULL,
                       .on_step = rs.tracer ? on_step : NULL,
                       .ud = &rs,
                       .stop = &stop_requested};
    ss_result r;
    rs.span = ss_trace_begin(rs.tracer, "prefill", "target", "prefill", -1);
    st = ids.n ? ss_session_generate_ids(s, ids.ids, ids.n, &o.params, &cb, &r, &err)
               : ss_session_generate(s, text, &o.params, &cb, &r, &err);
    signal(SIGINT, SIG_DFL);
    ss_error terr = {0};
    bool trace_ok = !rs.tracer || finish_trace(rs.tracer, trace_path, &terr); /* the open span is unfinished: left out */
    if (!st || st == SS_ESTOPPED) {
        if (json) {
            json_t *obj = report_result(&r);
            report_print(obj);
            json_decref(obj);
        } else {
            putchar('\n');
            fflush(stdout); /* the text before the stats line on stderr, also when both go to one pipe */
            print_stats_line(&r.stats);
        }
        ss_result_free(&r);
    }
    if (st) fprintf(stderr, "specscope generate: %s\n", err.msg);
    if (!trace_ok) fprintf(stderr, "specscope generate: %s\n", terr.msg);
    ss_session_close(s);
    ss_ids_free(&ids);
    free(file_text);
    return st ? exit_code(st) : trace_ok ? 0 : 1;
}
