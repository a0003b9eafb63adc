/* cmd_tokenize.c — `specscope tokenize`: text on stdin -> token ids with a folder's tokenizer.json.
 *
 * Plain mode encodes the whole of stdin, byte for byte (a trailing newline is part of the text),
 * and prints one line of space-separated ids. --jsonl reads one {"text": ...} object per line and
 * prints one {"ids": [...]} line for each (blank lines are skipped). Special tokens (BOS/EOS) are
 * added only with --add-special. --pieces also shows each token's vocabulary string. --bench times
 * the load and the encoding of stdin (scripts/bench_tokenizer.sh runs it). */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "args.h"
#include "commands.h"
#include "specscope.h"

static void usage(FILE *out) {
    fprintf(out,
            "usage: specscope tokenize (--model DIR | --tokenizer DIR) [--jsonl] [--pieces] [--add-special]\n\n"
            "Tokenizes the text on stdin with DIR/tokenizer.json (and DIR/tokenizer_config.json).\n"
            "  --model DIR, --tokenizer DIR   the folder holding tokenizer.json\n"
            "  --jsonl         read {\"text\": ...} lines, print {\"ids\": [...]} lines\n"
            "                  (otherwise the whole of stdin, newlines included, is one text: one line of ids)\n"
            "  --pieces        show the pieces too: \"ID<TAB>PIECE\" lines (PIECE JSON-quoted), or a\n"
            "                  \"pieces\" array beside \"ids\" with --jsonl\n"
            "  --add-special   add the special tokens of the post-processor (BOS, ...); off by default\n"
            "  --bench         time loading and encoding stdin (best of repeated runs, at least 1 s); no ids\n"
            "Exit status: 0 ok, 1 runtime failure, 2 bad usage or bad input (one line on stderr).\n");
}

typedef struct {
    const char *dir;
    bool jsonl, pieces, add_special, bench;
} options;

static int parse_args(int argc, char **argv, options *o) {
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (is_help(a)) {
            usage(stdout);
            return 0;
        }
        if (strcmp(a, "--model") == 0 || strcmp(a, "--tokenizer") == 0) {
            if (!(o->dir = arg_value("tokenize", argc, argv, &i))) return 2;
        } else if (strcmp(a, "--jsonl") == 0) {
            o->jsonl = true;
        } else if (strcmp(a, "--pieces") == 0) {
            o->pieces = true;
        } else if (strcmp(a, "--add-special") == 0) {
            o->add_special = true;
        } else if (strcmp(a, "--bench") == 0) {
            o->bench = true;
        } else {
            fprintf(stderr, "specscope tokenize: unknown option '%s' (see --help)\n", a);
            return 2;
        }
    }
    if (!o->dir) {
        fprintf(stderr, "specscope tokenize: give --model DIR or --tokenizer DIR (see --help)\n");
        return 2;
    }
    return -1; /* go on */
}

static int exit_status(ss_status st) { return st == SS_ENOMEM || st == SS_EDEVICE ? 1 : 2; }

/* The piece as a JSON string (escapes make whitespace and control characters visible). */
static void print_piece_json(const ss_tokenizer *tok, int id) {
    const char *piece = ss_tokenizer_piece(tok, id);
    json_t *s = json_string(piece ? piece : "");
    char *text = s ? json_dumps(s, JSON_ENCODE_ANY) : NULL;
    fputs(text ? text : "\"\"", stdout);
    free(text);
    json_decref(s);
}

static void print_ids_line(const ss_ids *ids) {
    for (int i = 0; i < ids->n; i++) printf(i ? " %d" : "%d", ids->ids[i]);
    putchar('\n');
}

static void print_json_line(const ss_tokenizer *tok, const ss_ids *ids, bool pieces) {
    fputs("{\"ids\": [", stdout);
    for (int i = 0; i < ids->n; i++) printf(i ? ", %d" : "%d", ids->ids[i]);
    fputs("]", stdout);
    if (pieces) {
        fputs(", \"pieces\": [", stdout);
        for (int i = 0; i < ids->n; i++) {
            if (i) fputs(", ", stdout);
            print_piece_json(tok, ids->ids[i]);
        }
        fputs("]", stdout);
    }
    fputs("}\n", stdout);
}

static char *read_all(FILE *f, size_t *len) {
    size_t cap = 1 << 16, n = 0, got;
    char *buf = malloc(cap);
    while (buf && (got = fread(buf + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap) {
            char *b = realloc(buf, cap * 2);
            if (!b) {
                free(buf);
                return NULL;
            }
            buf = b;
            cap *= 2;
        }
    }
    *len = n;
    return buf;
}

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec * 1e-6;
}

/* Encodes stdin again and again for at least a second (and 3 times) and reports the best run. */
static int bench(const ss_tokenizer *tok, const options *o, double load_ms) {
    size_t len;
    char *text = read_all(stdin, &len);
    if (!text) {
        fprintf(stderr, "specscope tokenize: out of memory reading stdin\n");
        return 1;
    }
    ss_ids ids = {0};
    ss_error err;
    double best = 0, start = now_ms();
    for (int run = 0; run < 3 || now_ms() - start < 1000; run++) {
        ids.n = 0;
        double t0 = now_ms();
        ss_status st = ss_tokenizer_encode(tok, text, len, o->add_special, &ids, &err);
        double ms = now_ms() - t0;
        if (st) {
            fprintf(stderr, "specscope tokenize: stdin: %s\n", err.msg);
            free(text);
            ss_ids_free(&ids);
            return exit_status(st);
        }
        if (run == 0 || ms < best) best = ms;
    }
    printf("load %.1f ms | %zu bytes -> %d tokens | encode %.1f ms = %.2f MB/s\n", load_ms, len, ids.n, best,
           best > 0 ? len / 1e3 / best : 0.0);
    free(text);
    ss_ids_free(&ids);
    return 0;
}

static int tokenize_all(const ss_tokenizer *tok, const options *o) {
    size_t len;
    char *text = read_all(stdin, &len);
    if (!text) {
        fprintf(stderr, "specscope tokenize: out of memory reading stdin\n");
        return 1;
    }
    ss_ids ids = {0};
    ss_error err;
    ss_status st = ss_tokenizer_encode(tok, text, len, o->add_special, &ids, &err);
    free(text);
    if (st) {
        fprintf(stderr, "specscope tokenize: stdin: %s\n", err.msg);
        return exit_status(st);
    }
    if (o->pieces) {
        for (int i = 0; i < ids.n; i++) {
            printf("%d\t", ids.ids[i]);
            print_piece_json(tok, ids.ids[i]);
            putchar('\n');
        }
    } else {
        print_ids_line(&ids);
    }
    ss_ids_free(&ids);
    return 0;
}

static bool blank(const char *s) {
    for (; *s; s++)
        if (!strchr(" \t\r\n", *s)) return false;
    return true;
}

/* One {"text": ...} line -> ids; 0 ok, else the exit status after the message. */
static int tokenize_line(const ss_tokenizer *tok, const options *o, const char *line, size_t len, long lineno) {
    json_error_t jerr;
    json_t *obj = json_loadb(line, len, JSON_ALLOW_NUL, &jerr);
    json_t *text = json_is_object(obj) ? json_object_get(obj, "text") : NULL;
    if (!json_is_string(text)) {
        if (!obj) fprintf(stderr, "specscope tokenize: stdin line %ld: bad JSON: %s\n", lineno, jerr.text);
        else fprintf(stderr, "specscope tokenize: stdin line %ld: expected {\"text\": STRING}\n", lineno);
        json_decref(obj);
        return 2;
    }
    ss_ids ids = {0};
    ss_error err;
    ss_status st = ss_tokenizer_encode(tok, json_string_value(text), json_string_length(text), o->add_special, &ids, &err);
    json_decref(obj);
    if (st) {
        fprintf(stderr, "specscope tokenize: stdin line %ld: %s\n", lineno, err.msg);
        return exit_status(st);
    }
    print_json_line(tok, &ids, o->pieces);
    fflush(stdout); /* one answer per line, also when driven line by line through a pipe */
    ss_ids_free(&ids);
    return 0;
}

static int tokenize_jsonl(const ss_tokenizer *tok, const options *o) {
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    long lineno = 0;
    int rc = 0;
    while (rc == 0 && (n = getline(&line, &cap, stdin)) >= 0) {
        lineno++;
        if (blank(line)) continue;
        rc = tokenize_line(tok, o, line, (size_t)n, lineno);
    }
    free(line);
    return rc;
}

int cmd_tokenize(int argc, char **argv) {
    options o = {0};
    int rc = parse_args(argc, argv, &o);
    if (rc >= 0) return rc;
    ss_tokenizer *tok;
    ss_error err;
    double t0 = now_ms();
    ss_status st = ss_tokenizer_load(o.dir, &tok, &err);
    if (st) {
        fprintf(stderr, "specscope tokenize: %s\n", err.msg);
        return exit_status(st);
    }
    double load_ms = now_ms() - t0;
    rc = o.bench ? bench(tok, &o, load_ms) : o.jsonl ? tokenize_jsonl(tok, &o) : tokenize_all(tok, &o);
    ss_tokenizer_free(tok);
    if (fflush(stdout) != 0 && rc == 0) {
        fprintf(stderr, "specscope tokenize: cannot write stdout\n");
        rc = 1;
    }
    return rc;
}
