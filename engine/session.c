/* session.c — a chat session: the target (and draft) models, the tokenizer and chat format, the
 * conversation history, and a worker thread that runs one generation at a time and posts its
 * tokens, steps and end to a bounded event queue that the interface drains. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "spec.h"

#define QUEUE_CAP 4096
#define MAX_STOP 16

typedef struct {
    char *role, *content;
} turn;

struct ss_session {
    ss_model *target, *draft;
    ss_draft_kind draft_kind;
    ss_tokenizer *tok;
    ss_chat_format *chat;
    ss_kv_state kv;
    int vocab;
    int eos_ids[MAX_STOP], n_eos;   /* plain prompts stop here */
    int turn_ids[MAX_STOP], n_turn; /* chat prompts stop here (end of turn + EOS) */
    turn *history;
    int n_history;
    ss_plan plan; /* EasySpec plan of the draft, when one is prepared */
    char plan_key[160];

    /* Worker and its event queue. */
    pthread_t thread;
    bool thread_live;
    pthread_mutex_t lock;
    pthread_cond_t not_full;
    ss_event queue[QUEUE_CAP];
    int q_head, q_len;
    volatile int stop;
    bool busy;
    char *job_prompt;
    ss_params job_params;
};

static bool file_exists(const char *dir, const char *name) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    struct stat st;
    return stat(path, &st) == 0;
}

/* Draft and target must index the same vocabulary: same tokenizer pieces when both ship one,
 * else the same vocab_size. Extra embedding rows past the tokenizer are fine (masked). */
static ss_status check_vocab(ss_session *s, const char *draft_dir, ss_error *err) {
    int tv = ss_model_config(s->target)->vocab_size, dv = ss_model_config(s->draft)->vocab_size;
    if (!s->tok || !file_exists(draft_dir, "tokenizer.json")) {
        if (tv != dv)
            return ss_fail(err, SS_EARG, "%s: draft vocab_size %d differs from the target's %d", draft_dir, dv, tv);
        s->vocab = tv;
        return SS_OK;
    }
    ss_tokenizer *dt;
    if (ss_tokenizer_load(draft_dir, &dt, err)) return err->status;
    int n = ss_tokenizer_vocab_size(s->tok);
    ss_status st = SS_OK;
    if (ss_tokenizer_vocab_size(dt) != n) {
        st = ss_fail(err, SS_EARG, "%s: draft tokenizer has %d tokens, the target's has %d: the vocabularies differ",
                     draft_dir, ss_tokenizer_vocab_size(dt), n);
    } else {
        for (int id = 0; id < n; id++) {
            const char *a = ss_tokenizer_piece(s->tok, id), *b = ss_tokenizer_piece(dt, id);
            if ((a || b) && (!a || !b || strcmp(a, b) != 0)) {
                st = ss_fail(err, SS_EARG, "%s: draft token %d is '%s' but the target's is '%s': the vocabularies differ",
                             draft_dir, id, b ? b : "(none)", a ? a : "(none)");
                break;
            }
        }
    }
    ss_tokenizer_free(dt);
    if (!st && (n > tv || n > dv))
        st = ss_fail(err, SS_EARG, "%s: the tokenizer has %d tokens but a model's vocab_size is %d", draft_dir, n,
                     n > tv ? tv : dv);
    s->vocab = n;
    return st;
}

static void collect_stop_ids(ss_session *s) {
    const ss_config *c = ss_model_config(s->target);
    for (int i = 0; i < c->n_eos && s->n_eos < MAX_STOP; i++) s->eos_ids[s->n_eos++] = c->eos_ids[i];
    if (s->tok && ss_tokenizer_eos(s->tok) >= 0 && s->n_eos < MAX_STOP) s->eos_ids[s->n_eos++] = ss_tokenizer_eos(s->tok);
    s->n_turn = s->chat ? ss_chat_format_stop_ids(s->chat, s->turn_ids, MAX_STOP) : 0;
    for (int i = 0; i < s->n_eos && s->n_turn < MAX_STOP; i++) s->turn_ids[s->n_turn++] = s->eos_ids[i];
}

static ss_status open_draft(ss_session *s, const ss_session_opts *opts, ss_error *err) {
    s->vocab = s->tok ? ss_tokenizer_vocab_size(s->tok) : ss_model_config(s->target)->vocab_size;
    if (s->vocab > ss_model_config(s->target)->vocab_size) s->vocab = ss_model_config(s->target)->vocab_size;
    const char *d = opts->draft_dir;
    if (!d || !*d || strcmp(d, "none") == 0) return SS_OK;
    if (strcmp(d, "ngram") == 0) {
        s->draft_kind = SS_DRAFT_NGRAM;
        return SS_OK;
    }
    ss_model_opts mo = {.dir = d, .backend = opts->backend, .max_context = opts->max_context, .quiet = true};
    if (ss_model_load(&mo, &s->draft, err)) return err->status;
    s->draft_kind = SS_DRAFT_MODEL;
    return check_vocab(s, d, err);
}

ss_status ss_session_open(const ss_session_opts *opts, ss_session **out, ss_error *err) {
    *out = NULL;
    if (!opts->model_dir) return ss_fail(err, SS_EARG, "no model folder given");
    ss_session *s = calloc(1, sizeof *s);
    if (!s) return ss_fail(err, SS_ENOMEM, "out of memory for a session");
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->not_full, NULL);
    /* Quiet until everything loaded: a bad draft or tokenizer ends with its one error line alone. */
    ss_model_opts mo = {.dir = opts->model_dir, .backend = opts->backend, .max_context = opts->max_context,
                        .quiet = true, .tp = opts->tp};
    ss_status st = ss_model_load(&mo, &s->target, err);
    if (!st && file_exists(opts->model_dir, "tokenizer.json")) {
        st = ss_tokenizer_load(opts->model_dir, &s->tok, err);
        if (!st) st = ss_chat_format_detect(s->tok, &s->chat, err);
    }
    if (!st) st = open_draft(s, opts, err);
    if (st) {
        ss_session_close(s);
        return st;
    }
    collect_stop_ids(s);
    if (!opts->quiet && ss_model_backend_notice(s->target)[0]) fprintf(stderr, "%s\n", ss_model_backend_notice(s->target));
    *out = s;
    return SS_OK;
}

static void clear_history(ss_session *s) {
    for (int i = 0; i < s->n_history; i++) {
        free(s->history[i].role);
        free(s->history[i].content);
    }
    free(s->history);
    s->history = NULL;
    s->n_history = 0;
}

void ss_session_close(ss_session *s) {
    if (!s) return;
    ss_session_stop(s);
    ss_session_join(s);
    if (s->plan.groups) ss_plan_free(s->draft, &s->plan);
    clear_history(s);
    ss_kv_state_free(&s->kv);
    if (s->chat) ss_chat_format_free(s->chat);
    if (s->tok) ss_tokenizer_free(s->tok);
    if (s->draft) ss_model_free(s->draft);
    if (s->target) ss_model_free(s->target);
    free(s->job_prompt);
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->not_full);
    free(s);
}

void ss_session_reset(ss_session *s) {
    clear_history(s);
    s->kv.target_ids.n = 0;
    s->kv.draft_ids.n = 0;
}

ss_model *ss_session_target(ss_session *s) { return s->target; }
ss_model *ss_session_draft(ss_session *s) { return s->draft; }
ss_tokenizer *ss_session_tokenizer(ss_session *s) { return s->tok; }

const char *ss_session_draft_kind(const ss_session *s) {
    return s->draft_kind == SS_DRAFT_MODEL ? "model" : s->draft_kind == SS_DRAFT_NGRAM ? "ngram" : "none";
}

/* The EasySpec plan the params ask for, prepared once and kept while they stay the same. */
static ss_status easyspec_plan(ss_session *s, const ss_params *p, const ss_plan **out, ss_error *err) {
    *out = NULL;
    char spec[130];
    if (p->easyspec_groups[0]) snprintf(spec, sizeof spec, "%s", p->easyspec_groups);
    else if (p->easyspec >= 2) snprintf(spec, sizeof spec, "%d", p->easyspec);
    else return SS_OK;
    if (s->draft_kind != SS_DRAFT_MODEL)
        return ss_fail(err, SS_EARG, "EasySpec groups need a draft model (the session has draft '%s')",
                       ss_session_draft_kind(s));
    char key[160];
    snprintf(key, sizeof key, "%s/%d", spec, (int)p->easyspec_mode);
    if (!s->plan.groups || strcmp(key, s->plan_key) != 0) {
        if (s->plan.groups) ss_plan_free(s->draft, &s->plan);
        s->plan_key[0] = 0;
        if (ss_plan_parse(s->draft, spec, p->easyspec_mode, &s->plan, err) || ss_plan_prepare(s->draft, &s->plan, err)) {
            ss_plan_free(s->draft, &s->plan);
            return ss_fail_prefix(err, "EasySpec groups '%s'", spec);
        }
        snprintf(s->plan_key, sizeof s->plan_key, "%s", key);
    }
    *out = &s->plan;
    return SS_OK;
}

static ss_status run_generation(ss_session *s, const int *ids, int n, bool chat, const ss_params *p,
                                const ss_callbacks *cb, ss_result *out, ss_error *err) {
    ss_generator g = {.target = s->target, .draft = s->draft, .draft_kind = s->draft_kind, .vocab = s->vocab,
                      .tok = s->tok};
    g.stop_ids = chat ? s->turn_ids : s->eos_ids;
    g.n_stop = chat ? s->n_turn : s->n_eos;
    if (easyspec_plan(s, p, &g.draft_plan, err)) return err->status;
    return ss_generate(&g, &s->kv, ids, n, p, cb, out, err);
}

ss_status ss_session_generate_ids(ss_session *s, const int *ids, int n, const ss_params *params,
                                  const ss_callbacks *cb, ss_result *out, ss_error *err) {
    memset(out, 0, sizeof *out);
    return run_generation(s, ids, n, params->chat && s->chat, params, cb, out, err);
}

static ss_status push_turn(ss_session *s, const char *role, const char *content, ss_error *err) {
    turn *h = realloc(s->history, (size_t)(s->n_history + 1) * sizeof *h);
    if (!h) return ss_fail(err, SS_ENOMEM, "out of memory for the chat history");
    s->history = h;
    h[s->n_history].role = strdup(role);
    h[s->n_history].content = strdup(content);
    if (!h[s->n_history].role || !h[s->n_history].content) {
        free(h[s->n_history].role);
        free(h[s->n_history].content);
        return ss_fail(err, SS_ENOMEM, "out of memory for the chat history");
    }
    s->n_history++;
    return SS_OK;
}

/* The chat prompt: the whole history plus the new user turn, rendered by the model's format. */
static ss_status render_chat(ss_session *s, const char *prompt, char **text, ss_error *err) {
    ss_message *msgs = malloc((size_t)(s->n_history + 1) * sizeof *msgs);
    if (!msgs) return ss_fail(err, SS_ENOMEM, "out of memory for the chat history");
    for (int i = 0; i < s->n_history; i++) msgs[i] = (ss_message){s->history[i].role, s->history[i].content};
    msgs[s->n_history] = (ss_message){"user", prompt};
    ss_status st = ss_chat_format_render(s->chat, msgs, s->n_history + 1, text, err);
    free(msgs);
    return st;
}

ss_status ss_session_generate(ss_session *s, const char *prompt, const ss_params *params, const ss_callbacks *cb,
                              ss_result *out, ss_error *err) {
    memset(out, 0, sizeof *out);
    if (!s->tok)
        return ss_fail(err, SS_EARG, "the model folder has no tokenizer.json: give prompt ids instead of text");
    bool chat = params->chat && s->chat;
    char *text = NULL;
    if (chat && render_chat(s, prompt, &text, err)) return err->status;
    ss_ids ids = {0};
    ss_status st = ss_tokenizer_encode(s->tok, chat ? text : prompt, strlen(chat ? text : prompt), !chat, &ids, err);
    free(text);
    if (!st) st = run_generation(s, ids.ids, ids.n, chat, params, cb, out, err);
    ss_ids_free(&ids);
    if (!st && chat && (push_turn(s, "user", prompt, err) || push_turn(s, "assistant", out->text, err))) {
        ss_result_free(out);
        return err->status;
    }
    return st;
}

/* ---------------------------------------------------------------- worker and event queue */

static void post(ss_session *s, const ss_event *ev) {
    pthread_mutex_lock(&s->lock);
    while (s->q_len == QUEUE_CAP) pthread_cond_wait(&s->not_full, &s->lock); /* the UI drains it */
    s->queue[(s->q_head + s->q_len) % QUEUE_CAP] = *ev;
    s->q_len++;
    pthread_mutex_unlock(&s->lock);
}

/* A token's text in pieces that fit an event, cut only between UTF-8 sequences. */
static void post_token(void *ud, const char *piece, int id, char source) {
    ss_session *s = ud;
    ss_event ev = {.kind = SS_EV_TOKEN, .id = id, .source = source};
    size_t len = strlen(piece), off = 0;
    do {
        size_t take = len - off;
        if (take > sizeof ev.piece - 1) {
            take = sizeof ev.piece - 1;
            while (take > 0 && ((unsigned char)piece[off + take] & 0xC0) == 0x80) take--;
        }
        memcpy(ev.piece, piece + off, take);
        ev.piece[take] = 0;
        post(s, &ev);
        ev.continued = true;
        off += take;
    } while (off < len);
}

static void post_step(void *ud, const ss_step *step) {
    ss_event ev = {.kind = SS_EV_STEP, .step = *step};
    post(ud, &ev);
}

static void *worker(void *arg) {
    ss_session *s = arg;
    ss_callbacks cb = {.on_token = post_token, .on_step = post_step, .ud = s, .stop = &s->stop};
    ss_result r;
    ss_error err = {0};
    ss_status st = ss_session_generate(s, s->job_prompt, &s->job_params, &cb, &r, &err);
    ss_event ev = {.kind = SS_EV_DONE, .stats = r.stats, .status = st};
    if (st) snprintf(ev.msg, sizeof ev.msg, "%s", err.msg);
    ss_result_free(&r);
    post(s, &ev);
    pthread_mutex_lock(&s->lock);
    s->busy = false;
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

ss_status ss_session_start(ss_session *s, const char *prompt, const ss_params *params, ss_error *err) {
    if (ss_session_busy(s)) return ss_fail(err, SS_EARG, "a generation is already running");
    ss_session_join(s);
    char *copy = strdup(prompt);
    if (!copy) return ss_fail(err, SS_ENOMEM, "out of memory for the prompt");
    free(s->job_prompt);
    s->job_prompt = copy;
    s->job_params = *params;
    s->stop = 0;
    s->busy = true;
    if (pthread_create(&s->thread, NULL, worker, s) != 0) {
        s->busy = false;
        return ss_fail(err, SS_ENOMEM, "could not start the generation thread");
    }
    s->thread_live = true;
    return SS_OK;
}

bool ss_session_busy(ss_session *s) {
    pthread_mutex_lock(&s->lock);
    bool busy = s->busy;
    pthread_mutex_unlock(&s->lock);
    return busy;
}

bool ss_session_poll(ss_session *s, ss_event *ev) {
    pthread_mutex_lock(&s->lock);
    bool got = s->q_len > 0;
    if (got) {
        *ev = s->queue[s->q_head];
        s->q_head = (s->q_head + 1) % QUEUE_CAP;
        s->q_len--;
        pthread_cond_signal(&s->not_full);
    }
    pthread_mutex_unlock(&s->lock);
    return got;
}

void ss_session_stop(ss_session *s) { s->stop = 1; }

/* Waits for the worker; events it still posts while the queue is full are dropped here, since
 * nobody will read them once the caller stops polling. */
void ss_session_join(ss_session *s) {
    if (!s->thread_live) return;
    while (ss_session_busy(s)) {
        ss_event ev;
        if (!ss_session_poll(s, &ev)) nanosleep(&(struct timespec){0, 1000000}, NULL);
    }
    pthread_join(s->thread, NULL);
    s->thread_live = false;
}
