/* chat.c — built-in chat formats, chosen from the model's chat_template and special tokens.
 *
 * The Jinja chat_template of tokenizer_config.json is not run; it is recognised by its markers and
 * rendered by C code written to produce, byte for byte, what the real templates produce with
 * add_generation_prompt=true (checked against the templates in ../shared/tokenizers by tests/test_chat.c):
 *   llama3   "<|start_header_id|>"      Llama 3: headers, trimmed contents, <|eot_id|>
 *   chatml   "<|im_start|>"             Qwen / ChatML; Qwen3's <think> handling of past turns, and a
 *                                       default system prompt when the template has one (Qwen2.5)
 *   llama2   "[INST]" and "<<SYS>>"     Llama 2: <s>[INST] <<SYS>>...<</SYS>> ... [/INST] answer </s>
 *   mistral  "[INST]" alone             Mistral v0.1: <s>[INST] ... [/INST]answer</s> (a system message
 *                                       goes in front of the first user message, then a blank line)
 *   plain    anything else              "User: ...\nAssistant: ..." lines
 * Without a template, the special tokens decide (<|start_header_id|> -> llama3, <|im_start|> -> chatml).
 *
 * The rendered text is self-contained: it already holds the BOS text where the template puts it
 * (Llama 3's template writes "<|begin_of_text|>" itself, Llama 2's writes "<s>" before each
 * [INST]), so it must be encoded WITHOUT adding special tokens again (ss_tokenizer_encode with
 * add_special = false); the plain format spells out the BOS the post-processor would add.
 * Generation stops at the end-of-turn tokens (<|eot_id|>, <|eom_id|>, <|im_end|>, </s>) and EOS. */
#include <stdlib.h>
#include <string.h>

#include "tokenizer_internal.h"

typedef enum { FMT_LLAMA3, FMT_CHATML, FMT_LLAMA2, FMT_MISTRAL, FMT_PLAIN } fmt_kind;

static const char *const FORMAT_NAMES[] = {"llama3", "chatml", "llama2", "mistral", "plain"};

#define MAX_STOP 8

struct ss_chat_format {
    fmt_kind kind;
    char *bos, *eos;        /* the texts of the BOS / EOS tokens ("" when none) */
    char *default_system;   /* chatml: the template's system prompt for conversations without one */
    bool think;             /* chatml: Qwen3's template (reasoning kept only after the last query) */
    int stop[MAX_STOP], n_stop;
};

/* ---------------------------------------------------------------- detection */

static bool has_token(const ss_tokenizer *tok, const char *piece) { return ss_tokenizer_token_id(tok, piece) >= 0; }

static fmt_kind pick_format(const ss_tokenizer *tok, const char *tmpl) {
    if (tmpl) {
        if (strstr(tmpl, "<|start_header_id|>")) return FMT_LLAMA3;
        if (strstr(tmpl, "<|im_start|>")) return FMT_CHATML;
        if (strstr(tmpl, "[INST]")) return strstr(tmpl, "<<SYS>>") ? FMT_LLAMA2 : FMT_MISTRAL;
        return FMT_PLAIN;
    }
    if (has_token(tok, "<|start_header_id|>") && has_token(tok, "<|eot_id|>")) return FMT_LLAMA3;
    if (has_token(tok, "<|im_start|>") && has_token(tok, "<|im_end|>")) return FMT_CHATML;
    return FMT_PLAIN;
}

/* ChatML templates that give a system prompt of their own (Qwen2.5: "You are Qwen, ...") spell it
 * as the literal '<|im_start|>system\n...<|im_end|>' in the branch for conversations without one.
 * *out: that prompt with the template's \n escapes undone, or NULL; false only when out of memory. */
static bool default_system_prompt(const char *tmpl, char **out) {
    static const char OPEN[] = "<|im_start|>system\\n";
    for (const char *p = strstr(tmpl, OPEN); p; p = strstr(p + 1, OPEN)) {
        const char *start = p + sizeof OPEN - 1, *end = strstr(start, "<|im_end|>");
        if (!end || start == end || memchr(start, '\'', (size_t)(end - start)) || memchr(start, '"', (size_t)(end - start)))
            continue; /* the system message's own content is spliced in here, not a literal */
        char *text = malloc((size_t)(end - start) + 1);
        if (!text) return false;
        size_t n = 0;
        for (const char *q = start; q < end; q++) {
            if (q[0] == '\\' && q + 1 < end && q[1] == 'n') {
                text[n++] = '\n';
                q++;
            } else {
                text[n++] = *q;
            }
        }
        text[n] = 0;
        *out = text;
        return true;
    }
    *out = NULL;
    return true;
}

static void add_stop(ss_chat_format *f, int id) {
    if (id < 0 || f->n_stop == MAX_STOP) return;
    for (int i = 0; i < f->n_stop; i++)
        if (f->stop[i] == id) return;
    f->stop[f->n_stop++] = id;
}

static void collect_stops(ss_chat_format *f, const ss_tokenizer *tok) {
    static const char *const TURN_ENDS[][2] = {
        [FMT_LLAMA3] = {"<|eot_id|>", "<|eom_id|>"},
        [FMT_CHATML] = {"<|im_end|>", "<|endoftext|>"},
        [FMT_LLAMA2] = {"</s>", NULL},
        [FMT_MISTRAL] = {"</s>", NULL},
        [FMT_PLAIN] = {NULL, NULL},
    };
    for (int i = 0; i < 2; i++)
        if (TURN_ENDS[f->kind][i]) add_stop(f, ss_tokenizer_token_id(tok, TURN_ENDS[f->kind][i]));
    add_stop(f, ss_tokenizer_eos(tok));
}

static char *dup_piece(const ss_tokenizer *tok, int id) {
    const char *p = id >= 0 ? ss_tokenizer_piece(tok, id) : NULL;
    return strdup(p ? p : "");
}

ss_status ss_chat_format_detect(const ss_tokenizer *tok, ss_chat_format **out, ss_error *err) {
    *out = NULL;
    ss_chat_format *f = calloc(1, sizeof *f);
    if (!f) return ss_fail(err, SS_ENOMEM, "out of memory for a chat format");
    const char *tmpl = tk_chat_template(tok);
    f->kind = pick_format(tok, tmpl);
    f->bos = f->kind == FMT_PLAIN ? tk_special_prefix_text(tok) : dup_piece(tok, ss_tokenizer_bos(tok));
    f->eos = dup_piece(tok, ss_tokenizer_eos(tok));
    bool ok = f->bos && f->eos;
    if (ok && f->kind == FMT_CHATML && tmpl) {
        f->think = strstr(tmpl, "</think>") != NULL;
        ok = default_system_prompt(tmpl, &f->default_system);
    }
    if (!ok) {
        ss_chat_format_free(f);
        return ss_fail(err, SS_ENOMEM, "out of memory for a chat format");
    }
    collect_stops(f, tok);
    *out = f;
    return SS_OK;
}

const char *ss_chat_format_name(const ss_chat_format *fmt) { return FORMAT_NAMES[fmt->kind]; }

int ss_chat_format_stop_ids(const ss_chat_format *fmt, int *ids, int max) {
    int n = fmt->n_stop < max ? fmt->n_stop : max;
    memcpy(ids, fmt->stop, (size_t)(n > 0 ? n : 0) * sizeof *ids);
    return n;
}

void ss_chat_format_free(ss_chat_format *fmt) {
    if (!fmt) return;
    free(fmt->bos);
    free(fmt->eos);
    free(fmt->default_system);
    free(fmt);
}

/* ---------------------------------------------------------------- text helpers */

typedef struct {
    const char *s;
    size_t n;
} slice;

static slice whole(const char *s) { return (slice){s, strlen(s)}; }

/* Python's str.isspace(): Unicode White_Space plus the separators U+001C..U+001F. */
static bool py_space(uint32_t cp) { return tk_is_whitespace(cp) || (cp >= 0x1C && cp <= 0x1F); }

/* str.strip() (Jinja's trim) on both sides or one. */
static slice strip(slice t, bool left, bool right) {
    uint32_t cp;
    int k;
    while (left && t.n > 0 && (k = tk_utf8_next(t.s, t.n, &cp)) > 0 && py_space(cp)) {
        t.s += k;
        t.n -= (size_t)k;
    }
    while (right && t.n > 0) {
        size_t c = t.n - 1;
        while (c > 0 && ((unsigned char)t.s[c] & 0xC0) == 0x80) c--;
        if (tk_utf8_next(t.s + c, t.n - c, &cp) <= 0 || !py_space(cp)) break;
        t.n = c;
    }
    return t;
}

/* str.strip('\n') and friends. */
static slice strip_newlines(slice t, bool left, bool right) {
    while (left && t.n > 0 && t.s[0] == '\n') t.s++, t.n--;
    while (right && t.n > 0 && t.s[t.n - 1] == '\n') t.n--;
    return t;
}

static const char *find_last(const char *s, size_t n, const char *needle) {
    size_t k = strlen(needle);
    for (size_t i = n >= k ? n - k + 1 : 0; i-- > 0;)
        if (memcmp(s + i, needle, k) == 0) return s + i;
    return NULL;
}

typedef struct {
    tk_buf b;
    bool ok;
} text;

static void put(text *t, slice s) { t->ok = t->ok && tk_buf_put(&t->b, s.s, s.n); }
static void puts_(text *t, const char *s) { put(t, whole(s)); }

/* ---------------------------------------------------------------- the formats */

static void render_llama3(const ss_chat_format *f, const ss_message *m, int n, text *t) {
    for (int i = 0; i < n; i++) {
        if (i == 0) puts_(t, f->bos);
        puts_(t, "<|start_header_id|>");
        puts_(t, m[i].role);
        puts_(t, "<|end_header_id|>\n\n");
        put(t, strip(whole(m[i].content), true, true));
        puts_(t, "<|eot_id|>");
    }
    puts_(t, "<|start_header_id|>assistant<|end_header_id|>\n\n");
}

/* Qwen3's template on an assistant message holding "</think>": the answer is what follows the last
 * </think> (leading newlines dropped), the reasoning what precedes the first one, after the last
 * <think> there, with newlines trimmed. */
static void split_reasoning(const char *content, slice *reasoning, slice *answer) {
    *answer = whole(content);
    *reasoning = (slice){"", 0};
    const char *close = strstr(content, "</think>");
    if (!close) return;
    slice before = strip_newlines((slice){content, (size_t)(close - content)}, false, true);
    const char *open = find_last(before.s, before.n, "<think>");
    if (open) before = (slice){open + 7, before.n - (size_t)(open + 7 - before.s)};
    *reasoning = strip_newlines(before, true, false);
    *answer = strip_newlines(whole(find_last(content, strlen(content), "</think>") + 8), true, false);
}

static bool is_tool_response(const char *content) {
    size_t n = strlen(content);
    return strncmp(content, "<tool_response>", 15) == 0 && n >= 16 && strcmp(content + n - 16, "</tool_response>") == 0;
}

/* Qwen3 keeps an assistant turn's reasoning only after the last user query (and there only for the
 * last turn or one that has reasoning); earlier turns keep just the answer. */
static void chatml_assistant_qwen3(const ss_message *m, bool after_query, bool last, text *t) {
    slice reasoning, answer;
    split_reasoning(m->content, &reasoning, &answer);
    puts_(t, "<|im_start|>assistant\n");
    if (after_query && (last || reasoning.n > 0)) {
        puts_(t, "<think>\n");
        put(t, strip_newlines(reasoning, true, true));
        puts_(t, "\n</think>\n\n");
        put(t, strip_newlines(answer, true, false));
    } else {
        put(t, answer);
    }
    puts_(t, "<|im_end|>\n");
}

static void render_chatml(const ss_chat_format *f, const ss_message *m, int n, text *t) {
    if (f->default_system && !(n > 0 && strcmp(m[0].role, "system") == 0)) {
        puts_(t, "<|im_start|>system\n");
        puts_(t, f->default_system);
        puts_(t, "<|im_end|>\n");
    }
    int last_query = n - 1;
    for (int i = n - 1; i >= 0; i--)
        if (strcmp(m[i].role, "user") == 0 && !is_tool_response(m[i].content)) {
            last_query = i;
            break;
        }
    for (int i = 0; i < n; i++) {
        if (f->think && strcmp(m[i].role, "assistant") == 0) {
            chatml_assistant_qwen3(&m[i], i > last_query, i == n - 1, t);
            continue;
        }
        puts_(t, "<|im_start|>");
        puts_(t, m[i].role);
        puts_(t, "\n");
        puts_(t, m[i].content);
        puts_(t, "<|im_end|>\n");
    }
    puts_(t, "<|im_start|>assistant\n");
}

static void render_llama2(const ss_chat_format *f, const ss_message *m, int n, text *t) {
    const char *system = n > 0 && strcmp(m[0].role, "system") == 0 ? m[0].content : NULL;
    int first = system ? 1 : 0;
    tk_buf joined = {0};
    for (int i = first; i < n; i++) {
        slice content = whole(m[i].content);
        if (i == first && system) {
            joined.n = 0;
            t->ok = t->ok && tk_buf_put(&joined, "<<SYS>>\n", 8) && tk_buf_put(&joined, system, strlen(system)) &&
                    tk_buf_put(&joined, "\n<</SYS>>\n\n", 11) && tk_buf_put(&joined, content.s, content.n);
            if (!t->ok) break;
            content = (slice){joined.p, joined.n};
        }
        if (strcmp(m[i].role, "user") == 0) {
            puts_(t, f->bos);
            puts_(t, "[INST] ");
            put(t, strip(content, true, true));
            puts_(t, " [/INST]");
        } else if (strcmp(m[i].role, "assistant") == 0) {
            puts_(t, " ");
            put(t, strip(content, true, true));
            puts_(t, " ");
            puts_(t, f->eos);
        }
    }
    tk_buf_free(&joined);
}

static void render_mistral(const ss_chat_format *f, const ss_message *m, int n, text *t) {
    const char *system = n > 0 && strcmp(m[0].role, "system") == 0 ? m[0].content : NULL;
    bool system_pending = system != NULL;
    puts_(t, f->bos);
    for (int i = system ? 1 : 0; i < n; i++) {
        if (strcmp(m[i].role, "user") == 0) {
            puts_(t, "[INST] ");
            if (system_pending) {
                puts_(t, system);
                puts_(t, "\n\n");
                system_pending = false;
            }
            puts_(t, m[i].content);
            puts_(t, " [/INST]");
        } else if (strcmp(m[i].role, "assistant") == 0) {
            puts_(t, m[i].content);
            puts_(t, f->eos);
        }
    }
}

static void render_plain(const ss_chat_format *f, const ss_message *m, int n, text *t) {
    puts_(t, f->bos);
    for (int i = 0; i < n; i++) {
        if (strcmp(m[i].role, "system") == 0) {
            puts_(t, m[i].content);
            puts_(t, "\n\n");
            continue;
        }
        puts_(t, strcmp(m[i].role, "user") == 0 ? "User: " : "Assistant: ");
        puts_(t, m[i].content);
        puts_(t, "\n");
    }
    puts_(t, "Assistant:");
}

ss_status ss_chat_format_render(const ss_chat_format *fmt, const ss_message *msgs, int n, char **out, ss_error *err) {
    *out = NULL;
    if (n < 0 || (n > 0 && !msgs)) return ss_fail(err, SS_EARG, "chat render: bad message list (n = %d)", n);
    for (int i = 0; i < n; i++) {
        const char *r = msgs[i].role;
        if (!r || !msgs[i].content) return ss_fail(err, SS_EARG, "chat message %d: missing role or content", i);
        if (strcmp(r, "system") != 0 && strcmp(r, "user") != 0 && strcmp(r, "assistant") != 0)
            return ss_fail(err, SS_EARG, "chat message %d: role '%.32s' is not system, user or assistant", i, r);
    }
    text t = {.ok = true};
    puts_(&t, ""); /* an empty conversation still gives a string */
    switch (fmt->kind) {
    case FMT_LLAMA3: render_llama3(fmt, msgs, n, &t); break;
    case FMT_CHATML: render_chatml(fmt, msgs, n, &t); break;
    case FMT_LLAMA2: render_llama2(fmt, msgs, n, &t); break;
    case FMT_MISTRAL: render_mistral(fmt, msgs, n, &t); break;
    case FMT_PLAIN: render_plain(fmt, msgs, n, &t); break;
    }
    if (!t.ok) {
        tk_buf_free(&t.b);
        return ss_fail(err, SS_ENOMEM, "out of memory rendering a chat prompt");
    }
    *out = t.b.p;
    return SS_OK;
}
