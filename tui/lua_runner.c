/* lua_runner.c — scripts on a background thread, their output through a queue. */
#include <stdlib.h>
#include <string.h>

#include "lua_runner.h"

#define LUA_QUEUE_CAP 4096

void lua_runner_init(lua_runner *r) {
    memset(r, 0, sizeof *r);
    pthread_mutex_init(&r->lock, NULL);
    pthread_cond_init(&r->not_full, NULL);
}

static void free_job(lua_runner *r) {
    free(r->code);
    r->code = NULL;
    for (int i = 0; i < r->argc; i++) free(r->argv[i]);
    free(r->argv);
    r->argv = NULL;
    r->argc = 0;
}

/* Called on the script's thread. Waits while the queue is full, unless the reader is leaving. */
static void post(lua_runner *r, lua_msg *m) {
    pthread_mutex_lock(&r->lock);
    while (r->q_len == r->q_cap && !r->draining) pthread_cond_wait(&r->not_full, &r->lock);
    if (r->q_len == r->q_cap) {
        free(m->text);
    } else {
        r->queue[(r->q_head + r->q_len) % r->q_cap] = *m;
        r->q_len++;
    }
    pthread_mutex_unlock(&r->lock);
}

static void on_output(void *ud, const char *text, bool is_error) {
    lua_msg m = {.kind = LUA_MSG_OUTPUT, .is_error = is_error, .text = strdup(text)};
    if (m.text) post(ud, &m);
}

static void on_token(void *ud, const char *piece, int id, char source) {
    (void)id;
    lua_msg m = {.kind = LUA_MSG_TOKEN, .source = source, .text = strdup(piece)};
    if (m.text) post(ud, &m);
}

static void on_step(void *ud, const ss_step *step) {
    lua_msg m = {.kind = LUA_MSG_STEP, .step = *step};
    post(ud, &m);
}

static void *script_thread(void *arg) {
    lua_runner *r = arg;
    ss_error err = {0};
    ss_status st = r->code ? ss_lua_run_string(r->L, r->code, "=console", &err)
                           : ss_lua_run_file(r->L, r->argv[0], r->argc - 1, r->argv + 1, &err);
    lua_msg m = {.kind = LUA_MSG_DONE, .status = st, .text = st ? strdup(err.msg) : NULL};
    post(r, &m);
    pthread_mutex_lock(&r->lock);
    r->busy = false;
    pthread_mutex_unlock(&r->lock);
    return NULL;
}

static void join_thread(lua_runner *r) {
    if (!r->thread_live) return;
    pthread_join(r->thread, NULL);
    r->thread_live = false;
}

static ss_status prepare(lua_runner *r, ss_session *session, ss_error *err) {
    if (lua_runner_busy(r)) return ss_fail(err, SS_EARG, "a script is already running (Ctrl-C interrupts it)");
    join_thread(r);
    free_job(r);
    if (!r->queue) {
        r->queue = calloc(LUA_QUEUE_CAP, sizeof *r->queue);
        if (!r->queue) return ss_fail(err, SS_ENOMEM, "out of memory for the script's message queue");
        r->q_cap = LUA_QUEUE_CAP;
    }
    if (r->L && r->session != session) lua_runner_forget_state(r);
    if (!r->L) {
        r->observer = (ss_callbacks){.on_token = on_token, .on_step = on_step, .ud = r, .stop = &r->stop};
        ss_lua_opts opts = {.output = on_output, .output_ud = r, .observer = &r->observer, .current = session};
        if (ss_lua_new(&opts, &r->L, err)) return err->status;
        r->session = session;
    }
    return SS_OK;
}

static ss_status launch(lua_runner *r, ss_error *err) {
    r->stop = 0;
    r->draining = false;
    r->busy = true;
    if (pthread_create(&r->thread, NULL, script_thread, r) != 0) {
        r->busy = false;
        free_job(r);
        return ss_fail(err, SS_ENOMEM, "could not start the script's thread");
    }
    r->thread_live = true;
    return SS_OK;
}

ss_status lua_runner_start_code(lua_runner *r, ss_session *session, const char *code, ss_error *err) {
    if (prepare(r, session, err)) return err->status;
    if (!(r->code = strdup(code))) return ss_fail(err, SS_ENOMEM, "out of memory for the Lua code");
    return launch(r, err);
}

ss_status lua_runner_start_file(lua_runner *r, ss_session *session, int argc, char **argv, ss_error *err) {
    if (argc < 1) return ss_fail(err, SS_EARG, "no script given");
    if (prepare(r, session, err)) return err->status;
    if (!(r->argv = calloc((size_t)argc + 1, sizeof *r->argv))) return ss_fail(err, SS_ENOMEM, "out of memory");
    for (int i = 0; i < argc; i++) {
        if (!(r->argv[i] = strdup(argv[i]))) {
            free_job(r);
            return ss_fail(err, SS_ENOMEM, "out of memory for the script's arguments");
        }
        r->argc = i + 1;
    }
    return launch(r, err);
}

bool lua_runner_busy(lua_runner *r) {
    pthread_mutex_lock(&r->lock);
    bool busy = r->busy;
    pthread_mutex_unlock(&r->lock);
    return busy;
}

void lua_runner_interrupt(lua_runner *r) {
    if (!lua_runner_busy(r)) return;
    r->stop = 1;
    ss_lua_interrupt(r->L);
}

bool lua_runner_poll(lua_runner *r, lua_msg *out) {
    pthread_mutex_lock(&r->lock);
    bool got = r->q_len > 0;
    if (got) {
        *out = r->queue[r->q_head];
        r->q_head = (r->q_head + 1) % r->q_cap;
        r->q_len--;
        pthread_cond_signal(&r->not_full);
    }
    pthread_mutex_unlock(&r->lock);
    return got;
}

void lua_runner_forget_state(lua_runner *r) {
    if (r->L) ss_lua_free(r->L);
    r->L = NULL;
    r->session = NULL;
}

void lua_runner_free(lua_runner *r) {
    lua_runner_interrupt(r);
    pthread_mutex_lock(&r->lock);
    r->draining = true; /* nobody reads any more: a waiting post drops its message and returns */
    pthread_cond_broadcast(&r->not_full);
    pthread_mutex_unlock(&r->lock);
    join_thread(r);
    lua_msg m;
    while (r->queue && lua_runner_poll(r, &m)) free(m.text);
    lua_runner_forget_state(r);
    free_job(r);
    free(r->queue);
    pthread_mutex_destroy(&r->lock);
    pthread_cond_destroy(&r->not_full);
    memset(r, 0, sizeof *r);
}
