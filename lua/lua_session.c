/* lua_session.c — spec.open and the session object scripts drive: set, generate (with Lua
 * callbacks per token and per step), reset, close, the last step's timeline and its Chrome trace
 * (the session's own tracer), and the LoRA methods whose engine part has not landed yet.
 *
 * Engine calls never see a Lua error: whatever can raise (building tables, calling the script's
 * callbacks) runs either before or after the engine call, or inside lua_pcall from the callback
 * trampolines, which record the first error, stop the generation and raise it once the engine
 * has returned. Engine memory a Lua error could strand (results, prompt ids) lives in a userdata
 * whose __gc frees it. */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "lua_internal.h"
#include "trace.h"

#define SESSION_MT "spec.session"
#define BOX_MT "spec.generation"

#define SESSION_TRACE_CAPACITY 8192 /* events: the newest few hundred steps' host spans */
/* Host spans s:trace() looks through: a step adds 3 to 5 phase spans and, on the CPU, one per layer of
 * each forward, all after the previous step's calibrate span (as tui/trace_feed.h). */
#define SESSION_TRACE_SPANS 2048

/* The session's user values: its callbacks, and the conversation kept for spec.chat_template. */
enum { UV_ON_TOKEN = 1, UV_ON_STEP, UV_HISTORY, N_UV = UV_HISTORY };

typedef struct {
    ss_session *s;  /* NULL once closed */
    bool borrowed;  /* spec.current: the interface owns it; close only forgets it */
    bool busy;      /* a generate call runs; its callbacks may not generate, reset or close */
    ss_params params;
    ss_tracer *tracer; /* records the session's generations; NULL until the first one */
} lua_session;

/* What one generate call allocates with malloc: freed by __gc should a Lua error intervene. */
typedef struct {
    ss_result result;
    ss_ids prompt;
} gen_box;

static lua_session *check_session(lua_State *L) {
    lua_session *ls = luaL_checkudata(L, 1, SESSION_MT);
    if (!ls->s) luaL_error(L, "spec: session is closed");
    return ls;
}

/* A session that may start a generation or change its state now. */
static lua_session *check_idle(lua_State *L, const char *what) {
    lua_session *ls = check_session(L);
    if (ls->busy) luaL_error(L, "spec: %s: the session is generating (called from one of its callbacks)", what);
    if (ls->borrowed && ss_session_busy(ls->s))
        luaL_error(L, "spec: %s: the interface's session is busy with a generation", what);
    return ls;
}

/* ---------------------------------------------------------------- parameters */

static const char *value_text(lua_State *L, int idx) { return luaL_tolstring(L, idx, NULL); }

static lua_Integer opt_int(lua_State *L, const char *fn, const char *key, lua_Integer lo, lua_Integer hi) {
    int is_int = 0;
    lua_Integer v = lua_type(L, -1) == LUA_TNUMBER ? lua_tointegerx(L, -1, &is_int) : 0;
    if (!is_int || v < lo || v > hi)
        luaL_error(L, "spec: %s: %s must be an integer in [%I, %I] (got %s)", fn, key, (LUAI_UACINT)lo,
                   (LUAI_UACINT)hi, value_text(L, -1));
    return v;
}

static double opt_num(lua_State *L, const char *fn, const char *key, double lo, double hi) {
    int is_num = lua_type(L, -1) == LUA_TNUMBER;
    double v = lua_tonumber(L, -1);
    if (!is_num || !isfinite(v) || v < lo || v > hi) {
        char range[64];
        snprintf(range, sizeof range, "[%g, %g]", lo, hi);
        luaL_error(L, "spec: %s: %s must be a number in %s (got %s)", fn, key, range, value_text(L, -1));
    }
    return v;
}

static bool opt_bool(lua_State *L, const char *fn, const char *key) {
    if (!lua_isboolean(L, -1)) luaL_error(L, "spec: %s: %s must be true or false (got %s)", fn, key, value_text(L, -1));
    return lua_toboolean(L, -1);
}

static const char *opt_str(lua_State *L, const char *fn, const char *key) {
    if (lua_type(L, -1) != LUA_TSTRING) luaL_error(L, "spec: %s: %s must be a string (got %s)", fn, key, value_text(L, -1));
    return lua_tostring(L, -1);
}

/* One generation parameter (value on top of the stack); the ranges are the CLI's. */
static void set_param(lua_State *L, const char *fn, const char *key, ss_params *p) {
    ss_sampling *sp = &p->sampling;
    if (strcmp(key, "k") == 0) p->k = (int)opt_int(L, fn, key, 0, SS_MAX_K);
    else if (strcmp(key, "temperature") == 0) sp->temperature = (float)opt_num(L, fn, key, 0, 100);
    else if (strcmp(key, "top_k") == 0) sp->top_k = (int)opt_int(L, fn, key, 0, 1 << 24);
    else if (strcmp(key, "top_p") == 0) sp->top_p = (float)opt_num(L, fn, key, 0, 1);
    else if (strcmp(key, "min_p") == 0) sp->min_p = (float)opt_num(L, fn, key, 0, 1);
    else if (strcmp(key, "repeat_penalty") == 0) sp->repeat_penalty = (float)opt_num(L, fn, key, 0.01, 100);
    else if (strcmp(key, "seed") == 0) sp->seed = (uint64_t)opt_int(L, fn, key, 0, LUA_MAXINTEGER);
    else if (strcmp(key, "max_tokens") == 0) p->max_tokens = (int)opt_int(L, fn, key, 0, 1 << 20);
    else if (strcmp(key, "easyspec") == 0) p->easyspec = (int)opt_int(L, fn, key, 0, 1024);
    else if (strcmp(key, "adaptive") == 0) p->adaptive = (float)opt_num(L, fn, key, 0, 1);
    else if (strcmp(key, "chat") == 0) p->chat = opt_bool(L, fn, key);
    else if (strcmp(key, "stop_at_eos") == 0) p->stop_at_eos = opt_bool(L, fn, key);
    else if (strcmp(key, "easyspec_mode") == 0) {
        const char *m = opt_str(L, fn, key);
        if (strcmp(m, "attn") == 0) p->easyspec_mode = SS_EASYSPEC_ATTN;
        else if (strcmp(m, "layer") == 0) p->easyspec_mode = SS_EASYSPEC_LAYER;
        else luaL_error(L, "spec: %s: easyspec_mode must be \"attn\" or \"layer\" (got \"%s\")", fn, m);
    } else if (strcmp(key, "groups") == 0 || strcmp(key, "easyspec_groups") == 0) {
        const char *g = opt_str(L, fn, key);
        if (strlen(g) >= sizeof p->easyspec_groups)
            luaL_error(L, "spec: %s: %s is longer than %d characters", fn, key, (int)sizeof p->easyspec_groups - 1);
        strcpy(p->easyspec_groups, g);
    } else {
        luaL_error(L, "spec: %s: unknown option '%s'", fn, key);
    }
}

/* Applies every key of the table at idx to p. */
static void apply_params(lua_State *L, int idx, const char *fn, ss_params *p) {
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        if (lua_type(L, -2) != LUA_TSTRING)
            luaL_error(L, "spec: %s: option names are strings (got %s)", fn, value_text(L, -2));
        set_param(L, fn, lua_tostring(L, -2), p);
        lua_pop(L, 1);
    }
}

static void set_number(lua_State *L, const char *key, double v) {
    lua_pushnumber(L, v);
    lua_setfield(L, -2, key);
}

static void set_integer(lua_State *L, const char *key, lua_Integer v) {
    lua_pushinteger(L, v);
    lua_setfield(L, -2, key);
}

static void push_params(lua_State *L, const ss_params *p) {
    const ss_sampling *sp = &p->sampling;
    lua_createtable(L, 0, 16);
    set_integer(L, "k", p->k);
    set_number(L, "temperature", sp->temperature);
    set_integer(L, "top_k", sp->top_k);
    set_number(L, "top_p", sp->top_p);
    set_number(L, "min_p", sp->min_p);
    set_number(L, "repeat_penalty", sp->repeat_penalty);
    set_integer(L, "seed", (lua_Integer)sp->seed);
    set_integer(L, "max_tokens", p->max_tokens);
    set_integer(L, "easyspec", p->easyspec);
    lua_pushstring(L, p->easyspec_mode == SS_EASYSPEC_LAYER ? "layer" : "attn");
    lua_setfield(L, -2, "easyspec_mode");
    lua_pushstring(L, p->easyspec_groups);
    lua_setfield(L, -2, "groups");
    set_number(L, "adaptive", p->adaptive);
    lua_pushboolean(L, p->chat);
    lua_setfield(L, -2, "chat");
    lua_pushboolean(L, p->stop_at_eos);
    lua_setfield(L, -2, "stop_at_eos");
}

/* ---------------------------------------------------------------- spec.open */

static ss_backend_kind backend_option(lua_State *L) {
    const char *b = opt_str(L, "open", "backend");
    if (strcmp(b, "auto") == 0) return SS_BACKEND_AUTO;
    if (strcmp(b, "cpu") == 0) return SS_BACKEND_CPU;
    if (strcmp(b, "cuda") == 0) return SS_BACKEND_CUDA;
    luaL_error(L, "spec: open: backend must be \"auto\", \"cpu\" or \"cuda\" (got \"%s\")", b);
    return SS_BACKEND_AUTO;
}

/* spec.open{model = DIR, draft = DIR | "ngram" | "none" | false, backend = "auto", max_context = N,
 * quiet = true}. No model: the bundled demo pair (its draft too unless draft is given). */
static int l_open(lua_State *L) {
    ss_session_opts o = {.backend = SS_BACKEND_AUTO, .quiet = true};
    bool draft_given = false;
    if (!lua_isnoneornil(L, 1)) {
        luaL_checktype(L, 1, LUA_TTABLE);
        lua_pushnil(L);
        while (lua_next(L, 1)) {
            const char *key = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "";
            if (strcmp(key, "model") == 0) o.model_dir = opt_str(L, "open", key);
            else if (strcmp(key, "draft") == 0) {
                draft_given = true;
                o.draft_dir = lua_isboolean(L, -1) && !lua_toboolean(L, -1) ? NULL : opt_str(L, "open", key);
            } else if (strcmp(key, "backend") == 0) o.backend = backend_option(L);
            else if (strcmp(key, "max_context") == 0) o.max_context = (int)opt_int(L, "open", key, 16, 1 << 20);
            else if (strcmp(key, "quiet") == 0) o.quiet = opt_bool(L, "open", key);
            else luaL_error(L, "spec: open: unknown option '%s'", value_text(L, -2));
            lua_pop(L, 1); /* the strings stay alive in the table at index 1 */
        }
    }
    if (!o.model_dir) {
        o.model_dir = demo_target_dir();
        if (!draft_given) o.draft_dir = demo_draft_dir();
    }
    if (o.draft_dir && strcmp(o.draft_dir, "none") == 0) o.draft_dir = NULL;

    lua_session *ls = lua_newuserdatauv(L, sizeof *ls, N_UV);
    memset(ls, 0, sizeof *ls);
    ss_params_default(&ls->params);
    luaL_setmetatable(L, SESSION_MT);
    lua_newtable(L);
    lua_setiuservalue(L, -2, UV_HISTORY);
    ss_error err = {0};
    if (ss_session_open(&o, &ls->s, &err)) return luaL_error(L, "spec: open: %s", err.msg);
    return 1;
}

/* ---------------------------------------------------------------- set, params, info, reset, callbacks */

static int l_set(lua_State *L) {
    lua_session *ls = check_session(L);
    luaL_checktype(L, 2, LUA_TTABLE);
    ss_params p = ls->params; /* all or nothing: a bad key leaves the session's parameters alone */
    apply_params(L, 2, "set", &p);
    ls->params = p;
    return 0;
}

static int l_params(lua_State *L) {
    push_params(L, &check_session(L)->params);
    return 1;
}

static int l_info(lua_State *L) {
    lua_session *ls = check_session(L);
    ss_model *target = ss_session_target(ls->s), *draft = ss_session_draft(ls->s);
    const ss_config *c = ss_model_config(target);
    lua_createtable(L, 0, 8);
    lua_pushstring(L, ss_model_backend_name(target));
    lua_setfield(L, -2, "backend");
    lua_pushstring(L, ss_session_draft_kind(ls->s));
    lua_setfield(L, -2, "draft");
    lua_pushstring(L, c->arch_name);
    lua_setfield(L, -2, "arch");
    set_integer(L, "layers", c->n_layers);
    set_integer(L, "vocab_size", c->vocab_size);
    set_integer(L, "max_context", ss_model_max_context(target));
    if (draft) set_integer(L, "draft_layers", ss_model_config(draft)->n_layers);
    return 1;
}

static int l_reset(lua_State *L) {
    lua_session *ls = check_idle(L, "reset");
    ss_session_reset(ls->s);
    lua_newtable(L);
    lua_setiuservalue(L, 1, UV_HISTORY);
    return 0;
}

static int set_callback(lua_State *L, int slot) {
    check_session(L);
    if (!lua_isnoneornil(L, 2)) luaL_checktype(L, 2, LUA_TFUNCTION);
    lua_settop(L, 2);
    lua_setiuservalue(L, 1, slot);
    return 0;
}

static int l_on_token(lua_State *L) { return set_callback(L, UV_ON_TOKEN); }
static int l_on_step(lua_State *L) { return set_callback(L, UV_ON_STEP); }

/* ---------------------------------------------------------------- generate: callbacks */

typedef struct {
    ss_lua *S;
    lua_State *L;
    const ss_callbacks *observer; /* the embedding's watcher, told of every token and step */
    ss_tracer *tracer;            /* the session's: numbers its steps */
    int steps;                    /* steps ended so far */
    bool lua_token, lua_step;     /* the session has Lua callbacks */
    int error_idx;                /* stack index of the first callback error; 0 while none */
    bool no_stack;                /* the Lua stack could not grow for a callback */
    bool stopped_by_callback;     /* a callback returned false */
    /* the event the protected part turns into a Lua call */
    const char *piece;
    int id;
    char source;
    const ss_step *step;
} gen_ctx;

/* Protected: calls the Lua callback in user value `slot` of the session (argument 1) with the
 * event's arguments pushed by push_args; a callback returning false stops the generation. */
static int call_callback(lua_State *L, int slot, int (*push_args)(lua_State *L, const gen_ctx *c)) {
    gen_ctx *c = lua_touserdata(L, 2);
    lua_settop(L, 1);
    if (lua_getiuservalue(L, 1, slot) != LUA_TFUNCTION) return 0; /* cleared by an earlier callback */
    lua_call(L, push_args(L, c), 1);
    if (lua_isboolean(L, -1) && !lua_toboolean(L, -1)) {
        c->stopped_by_callback = true;
        c->S->gen_stop = 1;
    }
    return 0;
}

static int push_token_args(lua_State *L, const gen_ctx *c) {
    lua_pushstring(L, c->piece ? c->piece : "");
    lua_pushinteger(L, c->id);
    lua_pushlstring(L, &c->source, 1);
    return 3;
}

static int push_step_args(lua_State *L, const gen_ctx *c) {
    const ss_step *st = c->step;
    lua_createtable(L, 0, 5);
    set_integer(L, "proposed", st->proposed);
    set_integer(L, "accepted", st->accepted);
    set_integer(L, "emitted", st->emitted);
    lua_createtable(L, st->proposed, 0);
    for (int i = 0; i < st->proposed && i < SS_MAX_K; i++) {
        lua_pushboolean(L, st->outcome[i]);
        lua_rawseti(L, -2, i + 1);
    }
    lua_setfield(L, -2, "outcome");
    lua_createtable(L, 0, 3);
    set_number(L, "draft", st->ms_draft);
    set_number(L, "verify", st->ms_verify);
    set_number(L, "calibrate", st->ms_calibrate);
    lua_setfield(L, -2, "time_ms");
    return 1;
}

static int protected_token(lua_State *L) { return call_callback(L, UV_ON_TOKEN, push_token_args); }
static int protected_step(lua_State *L) { return call_callback(L, UV_ON_STEP, push_step_args); }

/* Runs f(session, c) in protected mode from inside the engine, which l_generate called: the stack
 * is still l_generate's, the session at index 1. The first error stays on that stack. */
static void run_protected(gen_ctx *c, lua_CFunction f) {
    lua_State *L = c->L;
    if (c->error_idx || c->no_stack) return;
    if (!lua_checkstack(L, LUA_MINSTACK)) {
        c->no_stack = true;
        c->S->gen_stop = 1;
        return;
    }
    lua_pushcfunction(L, f);
    lua_pushvalue(L, 1);
    lua_pushlightuserdata(L, c);
    if (lua_pcall(L, 2, 0, 0) != LUA_OK) {
        c->error_idx = lua_gettop(L);
        c->S->gen_stop = 1;
    }
}

/* The observer sees every event; its stop flag, when it has one, stops the generation too. */
static void check_observer_stop(gen_ctx *c) {
    if (c->observer && c->observer->stop && *c->observer->stop) c->S->gen_stop = 1;
}

static void token_trampoline(void *ud, const char *piece, int id, char source) {
    gen_ctx *c = ud;
    if (c->observer && c->observer->on_token) c->observer->on_token(c->observer->ud, piece, id, source);
    check_observer_stop(c);
    if (!c->lua_token) return;
    c->piece = piece;
    c->id = id;
    c->source = source;
    run_protected(c, protected_token);
}

static void step_trampoline(void *ud, const ss_step *step) {
    gen_ctx *c = ud;
    ss_tracer_set_step(c->tracer, ++c->steps + 1); /* the spans of the next round */
    if (c->observer && c->observer->on_step) c->observer->on_step(c->observer->ud, step);
    check_observer_stop(c);
    if (!c->lua_step) return;
    c->step = step;
    run_protected(c, protected_step);
}

/* ---------------------------------------------------------------- generate: the result */

static void push_draft_stats(lua_State *L, const ss_stats *st) {
    lua_createtable(L, 0, 7);
    set_integer(L, "k", st->k);
    set_integer(L, "proposed", st->proposed);
    set_integer(L, "accepted", st->accepted);
    set_number(L, "acceptance_rate", st->proposed ? (double)st->accepted / st->proposed : 0);
    set_number(L, "mean_accepted_length", st->mean_accepted_length);
    int k = st->k < SS_MAX_K ? st->k : SS_MAX_K;
    lua_createtable(L, k, 0);
    for (int i = 0; i < k; i++) {
        lua_pushnumber(L, st->pos_proposed[i] ? (double)st->pos_accepted[i] / st->pos_proposed[i] : 0);
        lua_rawseti(L, -2, i + 1);
    }
    lua_setfield(L, -2, "per_position");
    lua_createtable(L, k, 0);
    for (int i = 0; i < k; i++) {
        lua_pushinteger(L, st->pos_proposed[i]);
        lua_rawseti(L, -2, i + 1);
    }
    lua_setfield(L, -2, "per_position_proposed");
}

static void push_stats(lua_State *L, const ss_stats *st) {
    lua_createtable(L, 0, 5);
    set_integer(L, "generated", st->generated);
    set_integer(L, "steps", st->steps);
    set_number(L, "tokens_per_s", st->tokens_per_s);
    if (st->has_draft) {
        push_draft_stats(L, st);
        lua_setfield(L, -2, "draft");
    }
    lua_createtable(L, 0, 5);
    set_number(L, "prefill", st->ms_prefill);
    set_number(L, "draft", st->ms_draft);
    set_number(L, "verify", st->ms_verify);
    set_number(L, "calibrate", st->ms_calibrate);
    set_number(L, "total", st->ms_total);
    lua_setfield(L, -2, "time_ms");
}

static void push_result(lua_State *L, const ss_result *r, bool stopped) {
    lua_createtable(L, 0, 6);
    lua_pushstring(L, r->text ? r->text : "");
    lua_setfield(L, -2, "text");
    lua_createtable(L, r->tokens.n, 0);
    for (int i = 0; i < r->tokens.n; i++) {
        lua_pushinteger(L, r->tokens.ids[i]);
        lua_rawseti(L, -2, i + 1);
    }
    lua_setfield(L, -2, "tokens");
    lua_createtable(L, r->tokens.n, 0);
    for (int i = 0; i < r->tokens.n; i++) {
        lua_pushlstring(L, &r->sources[i], 1);
        lua_rawseti(L, -2, i + 1);
    }
    lua_setfield(L, -2, "sources");
    set_integer(L, "prompt_tokens", r->stats.prompt_tokens);
    lua_pushboolean(L, stopped);
    lua_setfield(L, -2, "stopped");
    push_stats(L, &r->stats);
    lua_setfield(L, -2, "stats");
}

/* ---------------------------------------------------------------- the session's tracer */

/* The session's tracer, made at its first use (raises when it cannot be). */
static ss_tracer *session_tracer(lua_State *L, lua_session *ls) {
    ss_error err = {0};
    if (!ls->tracer && ss_tracer_new(SESSION_TRACE_CAPACITY, &ls->tracer, &err))
        luaL_error(L, "spec: %s", err.msg);
    return ls->tracer;
}

static void push_phase(lua_State *L, const ss_trace_phase *p, uint64_t step_start_ns) {
    lua_createtable(L, 0, 4);
    lua_pushstring(L, p->phase);
    lua_setfield(L, -2, "phase");
    lua_pushstring(L, p->model);
    lua_setfield(L, -2, "model");
    set_number(L, "start_ms", (double)(p->start_ns - step_start_ns) / 1e6);
    set_number(L, "ms", (double)p->dur_ns / 1e6);
}

/* s:trace(): the last step traced, {step =, wall_ms =, phases = {{phase =, model =, start_ms =, ms =}}},
 * or nil. From a callback of a running generation, the last step that has ended. */
static int l_trace(lua_State *L) {
    lua_session *ls = check_session(L);
    ss_trace_event *spans = lua_newuserdatauv(L, SESSION_TRACE_SPANS * sizeof *spans, 0); /* freed by the GC */
    int n = ss_tracer_copy_recent(ls->tracer, SS_TRACK_HOST, 0, UINT64_MAX, spans, SESSION_TRACE_SPANS);
    ss_trace_step step;
    if (!ss_trace_find_last_step(spans, n, !ls->busy, &step)) {
        lua_pushnil(L);
        return 1;
    }
    lua_createtable(L, 0, 3);
    set_integer(L, "step", step.step);
    set_number(L, "wall_ms", (double)(step.end_ns - step.start_ns) / 1e6);
    lua_createtable(L, step.n_phases, 0);
    for (int i = 0; i < step.n_phases; i++) {
        push_phase(L, &step.phase[i], step.start_ns);
        lua_rawseti(L, -2, i + 1);
    }
    lua_setfield(L, -2, "phases");
    return 1;
}

/* s:trace_save(PATH): the session's trace as Chrome trace-event JSON; returns the events written. */
static int l_trace_save(lua_State *L) {
    lua_session *ls = check_session(L);
    const char *path = luaL_checkstring(L, 2);
    ss_tracer *tracer = session_tracer(L, ls);
    ss_error err = {0};
    if (ss_trace_check_path(path, &err) || ss_tracer_write_chrome(tracer, path, &err))
        return luaL_error(L, "spec: trace_save: %s", err.msg);
    lua_pushinteger(L, ss_tracer_count(tracer));
    return 1;
}

/* ---------------------------------------------------------------- generate */

static int box_gc(lua_State *L) {
    gen_box *b = luaL_checkudata(L, 1, BOX_MT);
    ss_result_free(&b->result);
    ss_ids_free(&b->prompt);
    return 0;
}

/* A prompt given as a table of token ids. */
static void read_prompt_ids(lua_State *L, int idx, ss_ids *out) {
    lua_Integer n = luaL_len(L, idx);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_geti(L, idx, i);
        int is_int;
        lua_Integer id = lua_tointegerx(L, -1, &is_int);
        if (!is_int || id < 0 || id > INT_MAX)
            luaL_error(L, "spec: generate: prompt[%I] is not a token id (got %s)", (LUAI_UACINT)i, value_text(L, -1));
        ss_error err;
        if (ss_ids_push(out, (int)id, &err)) luaL_error(L, "spec: generate: %s", err.msg);
        lua_pop(L, 1);
    }
}

/* spec.chat_template, when the script set one (pushed), else nothing pushed and false. */
static bool push_chat_template(lua_State *L) {
    lua_getfield(L, LUA_REGISTRYINDEX, SPEC_MODULE_KEY);
    lua_getfield(L, -1, "chat_template");
    lua_remove(L, -2);
    if (lua_isfunction(L, -1)) return true;
    lua_pop(L, 1);
    return false;
}

static void push_message(lua_State *L, const char *role, int content_idx) {
    lua_createtable(L, 0, 2);
    lua_pushstring(L, role);
    lua_setfield(L, -2, "role");
    lua_pushvalue(L, content_idx);
    lua_setfield(L, -2, "content");
}

/* Renders the conversation so far plus the new user turn (prompt at index 2) with the script's
 * template (on top of the stack, popped) and tokenizes it, special tokens as written. */
static void render_with_template(lua_State *L, lua_session *ls, ss_ids *out) {
    lua_getiuservalue(L, 1, UV_HISTORY);
    lua_Integer n = luaL_len(L, -1);
    lua_createtable(L, (int)n + 1, 0); /* copies: the template cannot edit the history */
    for (lua_Integer i = 1; i <= n; i++) {
        lua_geti(L, -2, i);
        lua_getfield(L, -1, "role");
        lua_getfield(L, -2, "content");
        push_message(L, lua_tostring(L, -2), lua_gettop(L));
        lua_rawseti(L, -5, i);
        lua_pop(L, 3);
    }
    push_message(L, "user", 2);
    lua_rawseti(L, -2, n + 1);
    lua_remove(L, -2);
    lua_call(L, 1, 1);
    if (lua_type(L, -1) != LUA_TSTRING)
        luaL_error(L, "spec: chat_template must return a string (got %s)", luaL_typename(L, -1));
    ss_tokenizer *tok = ss_session_tokenizer(ls->s);
    if (!tok) luaL_error(L, "spec: generate: the model has no tokenizer.json to encode the chat template's text");
    size_t len;
    const char *text = lua_tolstring(L, -1, &len);
    ss_error err;
    if (ss_tokenizer_encode(tok, text, len, false, out, &err)) luaL_error(L, "spec: generate: %s", err.msg);
    lua_pop(L, 1);
}

static void append_history(lua_State *L, int prompt_idx, int text_idx) {
    lua_getiuservalue(L, 1, UV_HISTORY);
    lua_Integer n = luaL_len(L, -1);
    push_message(L, "user", prompt_idx);
    lua_rawseti(L, -2, n + 1);
    push_message(L, "assistant", text_idx);
    lua_rawseti(L, -2, n + 2);
    lua_pop(L, 1);
}

/* s:generate(prompt [, opts]): prompt is text, or a table of token ids (no BOS added, no chat). */
static int l_generate(lua_State *L) {
    ss_lua *S = spec_owner(L);
    lua_session *ls = check_idle(L, "generate");
    bool ids_prompt = lua_istable(L, 2);
    if (!ids_prompt && lua_type(L, 2) != LUA_TSTRING)
        return luaL_argerror(L, 2, "a prompt string or a table of token ids expected");
    ss_params params = ls->params;
    if (!lua_isnoneornil(L, 3)) {
        luaL_checktype(L, 3, LUA_TTABLE);
        apply_params(L, 3, "generate", &params);
    }
    lua_settop(L, 2);
    gen_box *box = lua_newuserdatauv(L, sizeof *box, 0); /* index 3 */
    memset(box, 0, sizeof *box);
    luaL_setmetatable(L, BOX_MT);
    if (ids_prompt) read_prompt_ids(L, 2, &box->prompt);
    bool templated = !ids_prompt && params.chat && push_chat_template(L);
    if (templated) /* rendered by the script's template; generate_ids keeps chat for the end-of-turn stops */
        render_with_template(L, ls, &box->prompt);

    ss_tracer *tracer = session_tracer(L, ls);
    gen_ctx c = {.S = S, .L = L, .observer = S->opts.observer, .tracer = tracer};
    c.lua_token = lua_getiuservalue(L, 1, UV_ON_TOKEN) == LUA_TFUNCTION;
    c.lua_step = lua_getiuservalue(L, 1, UV_ON_STEP) == LUA_TFUNCTION;
    lua_pop(L, 2);
    bool observed = c.observer != NULL;
    ss_callbacks cb = {.on_token = c.lua_token || observed ? token_trampoline : NULL,
                       .on_step = step_trampoline, /* numbers the traced steps */
                       .ud = &c,
                       .stop = &S->gen_stop};
    S->gen_stop = atomic_load(&S->interrupted);
    ss_error err = {0};
    /* The session's tracer records this generation; the one active before (the interface's, or an
     * outer session's when a callback generates) takes over again after it. */
    ss_tracer *outer = ss_tracer_active();
    ss_tracer_set_active(tracer);
    ss_tracer_set_step(tracer, 1);
    ls->busy = true;
    ss_status st = ids_prompt || templated
                       ? ss_session_generate_ids(ls->s, box->prompt.ids, box->prompt.n, &params, &cb, &box->result, &err)
                       : ss_session_generate(ls->s, lua_tostring(L, 2), &params, &cb, &box->result, &err);
    ls->busy = false;
    ss_tracer_set_active(outer);

    if (c.error_idx) {
        lua_pushvalue(L, c.error_idx);
        return lua_error(L);
    }
    spec_check_interrupt(L);
    if (c.no_stack) return luaL_error(L, "spec: generate: no Lua stack space left for a callback");
    if (st && !(st == SS_ESTOPPED && c.stopped_by_callback)) return luaL_error(L, "spec: generate: %s", err.msg);
    push_result(L, &box->result, st == SS_ESTOPPED);
    ss_result_free(&box->result);
    if (templated) {
        lua_getfield(L, -1, "text");
        append_history(L, 2, lua_gettop(L));
        lua_pop(L, 1);
    }
    return 1;
}

/* ---------------------------------------------------------------- LoRA adapters (engine/lora.c) */

/* The target's adapter called name (argument 2), or a Lua error naming it. */
static ss_lora *check_lora(lua_State *L, lua_session *ls, const char *fn) {
    const char *name = luaL_checkstring(L, 2);
    ss_lora *a = ss_model_lora_find(ss_session_target(ls->s), name);
    if (!a) luaL_error(L, "spec: %s: no adapter named '%s' is loaded", fn, name);
    return a;
}

/* s:lora_load(DIR [, {name = NAME, scale = S}]) -> NAME (default: the folder's last component). */
static int l_lora_load(lua_State *L) {
    lua_session *ls = check_idle(L, "lora_load");
    const char *dir = luaL_checkstring(L, 2);
    const char *name = NULL;
    lua_Number scale = 1;
    if (!lua_isnoneornil(L, 3)) {
        luaL_checktype(L, 3, LUA_TTABLE);
        if (lua_getfield(L, 3, "name") != LUA_TNIL) {
            if (lua_type(L, -1) != LUA_TSTRING) luaL_error(L, "spec: lora_load: name must be a string (got %s)", value_text(L, -1));
            name = lua_tostring(L, -1);
        }
        if (lua_getfield(L, 3, "scale") != LUA_TNIL) {
            int ok = 0;
            scale = lua_tonumberx(L, -1, &ok);
            if (!ok || !isfinite(scale)) luaL_error(L, "spec: lora_load: scale must be a finite number (got %s)", value_text(L, -1));
        }
    }
    ss_model *m = ss_session_target(ls->s);
    if (name && ss_model_lora_find(m, name)) luaL_error(L, "spec: lora_load: an adapter named '%s' is loaded already", name);
    ss_lora *a;
    ss_error err = {0};
    if (ss_lora_load(m, dir, (float)scale, &a, &err)) luaL_error(L, "spec: lora_load: %s", err.msg);
    if (name) ss_lora_set_name(a, name);
    else if (ss_model_lora_find(m, ss_lora_name(a)) != a) {
        lua_pushstring(L, ss_lora_name(a)); /* the name outlives the adapter */
        ss_lora_unload(a);
        luaL_error(L, "spec: lora_load: an adapter named '%s' is loaded already (give {name = ...})", lua_tostring(L, -1));
    }
    lua_pushstring(L, ss_lora_name(a));
    return 1;
}

static int l_lora_scale(lua_State *L) {
    lua_session *ls = check_idle(L, "lora_scale");
    ss_lora *a = check_lora(L, ls, "lora_scale");
    lua_Number v = luaL_checknumber(L, 3);
    if (!isfinite(v)) luaL_error(L, "spec: lora_scale: the scale must be a finite number");
    ss_lora_set_scale(a, (float)v);
    return 0;
}

static int l_lora_enable(lua_State *L) {
    lua_session *ls = check_idle(L, "lora_enable");
    ss_lora *a = check_lora(L, ls, "lora_enable");
    luaL_checktype(L, 3, LUA_TBOOLEAN);
    ss_lora_set_enabled(a, lua_toboolean(L, 3));
    return 0;
}

static int l_lora_unload(lua_State *L) {
    lua_session *ls = check_idle(L, "lora_unload");
    ss_lora_unload(check_lora(L, ls, "lora_unload"));
    return 0;
}

/* s:lora_merge(BOOL): fold the adapters into the weights, or unfold them (docs/lora.md). */
static int l_lora_merge(lua_State *L) {
    lua_session *ls = check_idle(L, "lora_merge");
    luaL_checktype(L, 2, LUA_TBOOLEAN);
    ss_error err = {0};
    if (ss_model_lora_merge(ss_session_target(ls->s), lua_toboolean(L, 2), &err)) luaL_error(L, "spec: lora_merge: %s", err.msg);
    return 0;
}

/* Appends adapter a's norm rows to the array at the top of the stack. */
static void push_norms(lua_State *L, ss_lora *a) {
    const ss_lora_norm *rows;
    int n;
    ss_error err = {0};
    if (ss_lora_norms(a, &rows, &n, &err)) luaL_error(L, "spec: lora_norms: %s", err.msg);
    for (int i = 0; i < n; i++) {
        lua_createtable(L, 0, 8);
        lua_pushstring(L, ss_lora_name(a)), lua_setfield(L, -2, "adapter");
        lua_pushinteger(L, rows[i].layer), lua_setfield(L, -2, "layer");
        lua_pushstring(L, rows[i].module), lua_setfield(L, -2, "module");
        lua_pushnumber(L, rows[i].a), lua_setfield(L, -2, "a");
        lua_pushnumber(L, rows[i].b), lua_setfield(L, -2, "b");
        lua_pushnumber(L, rows[i].ba), lua_setfield(L, -2, "ba");
        lua_pushnumber(L, rows[i].rel), lua_setfield(L, -2, "rel");
        lua_pushnumber(L, rows[i].stable), lua_setfield(L, -2, "stable"); /* math.huge while B is zero */
        lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
    }
}

/* s:lora_norms([NAME]) -> {{adapter =, layer =, module =, a =, b =, ba =, rel =, stable =}, ...}: that
 * adapter's rows, or every loaded adapter's in load order. */
static int l_lora_norms(lua_State *L) {
    lua_session *ls = check_idle(L, "lora_norms");
    ss_model *m = ss_session_target(ls->s);
    ss_lora *only = lua_isnoneornil(L, 2) ? NULL : check_lora(L, ls, "lora_norms");
    lua_newtable(L);
    for (int i = 0; i < ss_model_lora_count(m); i++)
        if (!only || ss_model_lora(m, i) == only) push_norms(L, ss_model_lora(m, i));
    return 1;
}

/* ---------------------------------------------------------------- close, metatable */

static void close_session(lua_session *ls) {
    if (!ls->s || ls->busy) return;
    if (!ls->borrowed) ss_session_close(ls->s);
    ls->s = NULL;
    ss_tracer_free(ls->tracer);
    ls->tracer = NULL;
}

static int l_close(lua_State *L) {
    lua_session *ls = luaL_checkudata(L, 1, SESSION_MT);
    if (ls->busy) return luaL_error(L, "spec: close: the session is generating (called from one of its callbacks)");
    close_session(ls);
    return 0;
}

static int l_gc(lua_State *L) {
    close_session(luaL_checkudata(L, 1, SESSION_MT));
    return 0;
}

static int l_tostring(lua_State *L) {
    lua_session *ls = luaL_checkudata(L, 1, SESSION_MT);
    if (!ls->s) lua_pushliteral(L, "spec.session (closed)");
    else
        lua_pushfstring(L, "spec.session (%s, draft: %s)", ss_model_backend_name(ss_session_target(ls->s)),
                        ss_session_draft_kind(ls->s));
    return 1;
}

static const luaL_Reg session_methods[] = {
    {"set", l_set},           {"params", l_params},     {"info", l_info},   {"generate", l_generate},
    {"reset", l_reset},       {"on_token", l_on_token}, {"on_step", l_on_step}, {"close", l_close},
    {"trace", l_trace},       {"trace_save", l_trace_save}, {"lora_load", l_lora_load},
    {"lora_scale", l_lora_scale}, {"lora_enable", l_lora_enable}, {"lora_unload", l_lora_unload},
    {"lora_norms", l_lora_norms}, {"lora_merge", l_lora_merge}, {NULL, NULL},
};

static const luaL_Reg session_meta[] = {
    {"__gc", l_gc}, {"__close", l_gc}, {"__tostring", l_tostring}, {NULL, NULL},
};

void spec_register_session(lua_State *L, ss_lua *S) {
    luaL_newmetatable(L, BOX_MT);
    lua_pushcfunction(L, box_gc);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);

    luaL_newmetatable(L, SESSION_MT);
    luaL_setfuncs(L, session_meta, 0);
    luaL_newlib(L, session_methods);
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);

    lua_pushcfunction(L, l_open);
    lua_setfield(L, -2, "open");
    if (S->opts.current) {
        lua_session *ls = lua_newuserdatauv(L, sizeof *ls, N_UV);
        memset(ls, 0, sizeof *ls);
        ls->s = S->opts.current;
        ls->borrowed = true;
        ss_params_default(&ls->params);
        luaL_setmetatable(L, SESSION_MT);
        lua_newtable(L);
        lua_setiuservalue(L, -2, UV_HISTORY);
        lua_setfield(L, -2, "current");
    }
}
