/* workbench.c — the session, its jobs and their events, shared by the interface and the REPL. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "workbench.h"

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

static bool is_none(const char *draft) { return !draft || !*draft || strcmp(draft, "none") == 0; }

bool workbench_init(workbench *wb, const gen_options *o, const workbench_view *view) {
    memset(wb, 0, sizeof *wb);
    wb->view = *view;
    wb->opts = o->session;
    wb->opts.quiet = true; /* the backend notice goes to the console instead of stderr */
    wb->params = o->params;
    wb->params.chat = true;
    wb->loras = o->loras;
    wb->model_dir = dup_or_null(o->session.model_dir);
    wb->draft_dir = is_none(o->session.draft_dir) ? NULL : strdup(o->session.draft_dir);
    wb->opts.model_dir = wb->model_dir;
    wb->opts.draft_dir = wb->draft_dir;
    transcript_init(&wb->chat);
    spec_stats_init(&wb->stats);
    lua_runner_init(&wb->lua);
    return wb->model_dir && (!o->session.draft_dir || is_none(o->session.draft_dir) || wb->draft_dir);
}

void workbench_say(workbench *wb, out_kind kind, const char *fmt, ...) {
    char buf[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    wb->view.print(wb->view.ud, kind, buf);
    wb->changed = true;
}

static void tell_backend(workbench *wb) {
    ss_model *m = ss_session_target(wb->session);
    const char *notice = ss_model_backend_notice(m);
    if (notice[0]) workbench_say(wb, OUT_INFO, "%s", notice);
}

static bool on_cuda(workbench *wb) { return strcmp(ss_model_backend_name(ss_session_target(wb->session)), "cuda") == 0; }

ss_status workbench_open(workbench *wb, ss_error *err) {
    ss_status st = ss_session_open(&wb->opts, &wb->session, err);
    if (st) return st;
    if ((st = workbench_lora_open(wb, err))) return st;
    tell_backend(wb);
    ss_error terr = {0};
    if (trace_feed_open(&wb->trace, on_cuda(wb), &terr)) workbench_say(wb, OUT_ERROR, "timeline off: %s", terr.msg);
    return SS_OK;
}

void workbench_free(workbench *wb) {
    lua_runner_free(&wb->lua);
    if (wb->session) ss_session_close(wb->session);
    trace_feed_close(&wb->trace);
    transcript_free(&wb->chat);
    spec_stats_free(&wb->stats);
    free(wb->model_dir);
    free(wb->draft_dir);
    free(wb->last_prompt);
    memset(wb, 0, sizeof *wb);
}

bool workbench_busy(workbench *wb) { return wb->job != JOB_NONE || lua_runner_busy(&wb->lua); }

const char *workbench_refusal(workbench *wb) {
    if (!wb->session) return "no model is loaded (/model DIR)";
    if (wb->job != JOB_NONE) return "a generation is running (Ctrl-C stops it)";
    if (lua_runner_busy(&wb->lua)) return "a script is running (Ctrl-C interrupts it)";
    return NULL;
}

static bool session_has_draft(workbench *wb) { return strcmp(ss_session_draft_kind(wb->session), "none") != 0; }

void workbench_chat(workbench *wb, const char *text) {
    const char *why = workbench_refusal(wb);
    if (why) {
        workbench_say(wb, OUT_ERROR, "%s", why);
        return;
    }
    char *prompt = strdup(text);
    if (!prompt || !transcript_begin_turn(&wb->chat, "user") || !transcript_append(&wb->chat, text, SRC_USER) ||
        !transcript_begin_turn(&wb->chat, "assistant")) {
        free(prompt);
        workbench_say(wb, OUT_ERROR, "out of memory for the chat transcript");
        return;
    }
    free(wb->last_prompt);
    wb->last_prompt = prompt;
    ss_error err = {0};
    trace_feed_run_begin(&wb->trace, true);
    if (ss_session_start(wb->session, text, &wb->params, &err)) {
        trace_feed_run_end(&wb->trace);
        transcript_add(&wb->chat, "[not started]", SRC_NOTE);
        workbench_say(wb, OUT_ERROR, "%s", err.msg);
        return;
    }
    spec_stats_begin(&wb->stats, &wb->params, session_has_draft(wb));
    wb->job = JOB_CHAT;
    wb->changed = true;
}

void workbench_baseline(workbench *wb) {
    const char *why = workbench_refusal(wb);
    if (!why && !wb->last_prompt) why = "no prompt yet: send a message first, /baseline then decodes it plainly";
    if (why) {
        workbench_say(wb, OUT_ERROR, "%s", why);
        return;
    }
    /* The last prompt without chat formatting, so the conversation's history stays as it is. */
    ss_params p = wb->params;
    p.k = 0;
    p.chat = false;
    ss_error err = {0};
    trace_feed_run_begin(&wb->trace, true);
    if (ss_session_start(wb->session, wb->last_prompt, &p, &err)) {
        trace_feed_run_end(&wb->trace);
        workbench_say(wb, OUT_ERROR, "%s", err.msg);
        return;
    }
    workbench_say(wb, OUT_INFO, "measuring plain decoding of the last prompt (%d tokens)...", p.max_tokens);
    wb->job = JOB_BASELINE;
}

bool workbench_stop(workbench *wb) {
    if (wb->job != JOB_NONE) {
        ss_session_stop(wb->session);
        return true;
    }
    if (lua_runner_busy(&wb->lua)) {
        lua_runner_interrupt(&wb->lua);
        return true;
    }
    return false;
}

static void chat_done(workbench *wb, const ss_event *ev) {
    spec_stats_done(&wb->stats, &ev->stats, ev->status);
    if (ev->status == SS_ESTOPPED) transcript_add(&wb->chat, " [stopped]", SRC_NOTE);
    else if (ev->status) {
        transcript_add(&wb->chat, " [failed]", SRC_NOTE);
        workbench_say(wb, OUT_ERROR, "%s", ev->msg);
    }
}

static void baseline_done(workbench *wb, const ss_event *ev) {
    const ss_stats *st = &ev->stats;
    if ((ev->status && ev->status != SS_ESTOPPED) || st->generated < 2) {
        workbench_say(wb, OUT_ERROR, "/baseline: %s", ev->status ? ev->msg : "too few tokens to time");
        return;
    }
    spec_stats_set_plain(&wb->stats, st->tokens_per_s, "/baseline");
    double sp = spec_stats_speedup(&wb->stats, &wb->stats.run);
    if (wb->stats.run.speculative && sp > 0)
        workbench_say(wb, OUT_INFO, "plain decoding: %.1f tok/s over %d tokens; the last run's speedup: %.2fx",
                      st->tokens_per_s, st->generated, sp);
    else
        workbench_say(wb, OUT_INFO, "plain decoding: %.1f tok/s over %d tokens", st->tokens_per_s, st->generated);
}

static void session_event(workbench *wb, const ss_event *ev) {
    bool chat = wb->job == JOB_CHAT;
    switch (ev->kind) {
    case SS_EV_TOKEN:
        if (!chat) break;
        transcript_append(&wb->chat, ev->piece, ev->source == 'd' ? SRC_DRAFT : SRC_TARGET);
        if (wb->view.token) wb->view.token(wb->view.ud, ev->piece, ev->source);
        break;
    case SS_EV_STEP:
        if (chat) spec_stats_step(&wb->stats, &ev->step);
        trace_feed_step(&wb->trace);
        break;
    case SS_EV_DONE:
        trace_feed_run_end(&wb->trace);
        if (chat) chat_done(wb, ev);
        else if (wb->job == JOB_BASELINE) baseline_done(wb, ev);
        wb->job = JOB_NONE;
        if (wb->view.finished) wb->view.finished(wb->view.ud);
        break;
    }
}

static void open_script_run(workbench *wb) {
    if (wb->script_run_open) return;
    trace_feed_run_begin(&wb->trace, false); /* host spans only: CUPTI follows chat turns */
    transcript_begin_turn(&wb->chat, "script");
    spec_stats_begin_script(&wb->stats);
    wb->script_run_open = true;
    wb->script_tokens = 0;
}

static void strip_newline(char *s) {
    size_t n = strlen(s);
    if (n && s[n - 1] == '\n') s[n - 1] = 0;
}

static void script_message(workbench *wb, lua_msg *m) {
    switch (m->kind) {
    case LUA_MSG_OUTPUT:
        strip_newline(m->text);
        workbench_say(wb, m->is_error ? OUT_SCRIPT_ERROR : OUT_SCRIPT, "%s", m->text);
        break;
    case LUA_MSG_TOKEN:
        open_script_run(wb);
        wb->script_tokens++;
        transcript_append(&wb->chat, m->text, m->source == 'd' ? SRC_DRAFT : SRC_TARGET);
        if (wb->view.token) wb->view.token(wb->view.ud, m->text, m->source);
        break;
    case LUA_MSG_STEP:
        open_script_run(wb);
        spec_stats_step(&wb->stats, &m->step);
        trace_feed_step(&wb->trace);
        break;
    case LUA_MSG_DONE:
        if (wb->script_run_open) trace_feed_run_end(&wb->trace);
        if (wb->script_run_open) spec_stats_end_script(&wb->stats, m->status, wb->script_tokens);
        wb->script_run_open = false; /* a failure's message and traceback came as output already */
        if (wb->view.finished) wb->view.finished(wb->view.ud);
        break;
    }
    free(m->text);
}

bool workbench_pump(workbench *wb) {
    bool any = false;
    ss_event ev;
    while (wb->session && ss_session_poll(wb->session, &ev)) {
        session_event(wb, &ev);
        any = true;
    }
    lua_msg m;
    while (lua_runner_poll(&wb->lua, &m)) {
        script_message(wb, &m);
        any = true;
    }
    if (trace_feed_refresh(&wb->trace)) any = true; /* at most once per pump, however many steps ended */
    if (any) wb->changed = true;
    return any;
}

bool workbench_set_models(workbench *wb, const char *model_dir, const char *draft_dir) {
    if (wb->job != JOB_NONE || lua_runner_busy(&wb->lua)) {
        workbench_say(wb, OUT_ERROR, "%s", workbench_refusal(wb));
        return false;
    }
    char *model = strdup(model_dir ? model_dir : wb->model_dir);
    const char *want_draft = draft_dir ? draft_dir : wb->draft_dir;
    char *draft = is_none(want_draft) ? NULL : strdup(want_draft);
    if (!model || (!is_none(want_draft) && !draft)) {
        free(model);
        free(draft);
        workbench_say(wb, OUT_ERROR, "out of memory");
        return false;
    }
    ss_session_opts opts = wb->opts;
    opts.model_dir = model;
    opts.draft_dir = draft;
    workbench_say(wb, OUT_INFO, "loading %s%s%s ...", model, draft ? " with draft " : "", draft ? draft : "");
    ss_session *s;
    ss_error err = {0};
    if (ss_session_open(&opts, &s, &err)) {
        workbench_say(wb, OUT_ERROR, "%s (the models stay as they were)", err.msg);
        free(model);
        free(draft);
        return false;
    }
    bool target_changed = strcmp(model, wb->model_dir) != 0;
    const int adapters = wb->session ? ss_model_lora_count(ss_session_target(wb->session)) : 0;
    if (adapters)
        workbench_say(wb, OUT_INFO, "the %d LoRA adapter%s of the old target %s unloaded with it (/lora load DIR)",
                      adapters, adapters == 1 ? "" : "s", adapters == 1 ? "is" : "are");
    lua_runner_forget_state(&wb->lua); /* scripts' spec.current pointed to the old session */
    if (wb->session) ss_session_close(wb->session);
    wb->session = s;
    free(wb->model_dir);
    free(wb->draft_dir);
    wb->model_dir = model;
    wb->draft_dir = draft;
    wb->opts = opts;
    spec_stats_models_changed(&wb->stats, target_changed);
    wb->trace.cuda = wb->trace.tracer && on_cuda(wb); /* the target may have moved to another backend */
    if (!transcript_empty(&wb->chat)) transcript_add(&wb->chat, "\n[models changed: the conversation starts afresh]", SRC_NOTE);
    tell_backend(wb);
    char desc[256];
    workbench_describe(wb, desc, sizeof desc);
    workbench_say(wb, OUT_INFO, "now on %s", desc);
    return true;
}

bool workbench_clear(workbench *wb) {
    if (wb->job != JOB_NONE || lua_runner_busy(&wb->lua)) {
        workbench_say(wb, OUT_ERROR, "%s", workbench_refusal(wb));
        return false;
    }
    transcript_clear(&wb->chat);
    if (wb->session) ss_session_reset(wb->session);
    wb->changed = true;
    return true;
}

/* The last two components of a path: "demo/target". */
static const char *short_path(const char *path) {
    const char *end = path + strlen(path);
    while (end > path && end[-1] == '/') end--;
    int slashes = 0;
    for (const char *p = end; p > path; p--)
        if (p[-1] == '/' && ++slashes == 2) return p;
    return path;
}

void workbench_describe(workbench *wb, char *buf, size_t size) {
    if (!wb->session) {
        snprintf(buf, size, "no model");
        return;
    }
    const char *kind = ss_session_draft_kind(wb->session);
    char draft[160];
    if (strcmp(kind, "model") == 0) snprintf(draft, sizeof draft, " + draft %s", short_path(wb->draft_dir));
    else if (strcmp(kind, "ngram") == 0) snprintf(draft, sizeof draft, " + ngram drafts");
    else snprintf(draft, sizeof draft, ", no draft");
    snprintf(buf, size, "%s%s on %s", short_path(wb->model_dir), draft,
             ss_model_backend_name(ss_session_target(wb->session)));
}
