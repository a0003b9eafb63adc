/* test_lua.c — the embedded Lua interpreter (the lua folder) from the embedding's side.
 *
 *   test_lua          the parts without models: tests/lua/test_pure.lua (csv, json, write, args,
 *                     sandbox, argument errors), and what the host sees of failing scripts: errors
 *                     with file:line and tracebacks, endless loops interrupted from another thread,
 *                     runaway allocation under the memory cap, rows left on disk by an interrupted
 *                     script, and the interpreter still working after each of them.
 *   test_lua session  tests/lua/test_session.lua on the demo pair, with spec.current and an
 *                     observer (skips with 77 when models/demo is absent).
 *   test_lua trace    tests/lua/test_trace.lua on the demo pair (s:trace, s:trace_save) under a
 *                     tracer of the host's own, which must stay active and see nothing; the trace
 *                     file the script wrote is parsed here (skips with 77 without models/demo).
 */
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "commands.h"
#include "spec_lua.h"
#include "trace.h"

#define LUA_TESTS SOURCE_DIR "/tests/lua/"

const char *demo_target_dir(void) { return SOURCE_DIR "/models/demo/target"; }
const char *demo_draft_dir(void) { return SOURCE_DIR "/models/demo/draft"; }

/* Everything the interpreter printed, split by stream. */
typedef struct {
    char out[1 << 16], errors[1 << 16];
} captured;

static void append(char *buf, const char *text) {
    size_t used = strlen(buf), room = (1 << 16) - used - 1;
    strncat(buf + used, text, room);
}

static void capture(void *ud, const char *text, bool is_error) {
    captured *c = ud;
    append(is_error ? c->errors : c->out, text);
}

static ss_lua *new_lua(captured *c, size_t memory_limit, bool unsafe) {
    memset(c, 0, sizeof *c);
    ss_lua_opts o = {.unsafe = unsafe, .memory_limit = memory_limit, .output = capture, .output_ud = c};
    ss_lua *L = NULL;
    ss_error err = {0};
    if (ss_lua_new(&o, &L, &err)) {
        fprintf(stderr, "ss_lua_new: %s\n", err.msg);
        exit(1);
    }
    return L;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ---------------------------------------------------------------- interrupting from a thread */

typedef struct {
    ss_lua *L;
    double delay_s;
} interrupter;

static void *interrupt_later(void *arg) {
    interrupter *it = arg;
    usleep((useconds_t)(it->delay_s * 1e6));
    ss_lua_interrupt(it->L);
    return NULL;
}

/* Runs code with an interrupt arriving after delay_s; returns the status and the time it took. */
static ss_status run_interrupted(ss_lua *L, const char *code, double delay_s, double *took, ss_error *err) {
    interrupter it = {L, delay_s};
    pthread_t t;
    pthread_create(&t, NULL, interrupt_later, &it);
    double t0 = now_s();
    ss_status st = ss_lua_run_string(L, code, "=loop", err);
    *took = now_s() - t0;
    pthread_join(t, NULL);
    return st;
}

/* The host goes on after a failure: the same interpreter runs the next piece of code. */
static void check_still_works(ss_lua *L, captured *c) {
    c->out[0] = 0;
    ss_error err = {0};
    CHECK(ss_lua_run_string(L, "return 40 + 2", NULL, &err) == SS_OK);
    CHECK_MSG(strcmp(c->out, "42\n") == 0, "output '%s'", c->out);
}

/* ---------------------------------------------------------------- the checks */

static void test_pure_script(void) {
    captured c;
    ss_lua *L = new_lua(&c, 0, false);
    char *argv[] = {"--out", "x.csv", "-n", "5", "positional"};
    ss_error err = {0};
    ss_status st = ss_lua_run_file(L, LUA_TESTS "test_pure.lua", 5, argv, &err);
    CHECK_MSG(st == SS_OK, "%s\n%s", err.msg, c.errors);
    fputs(c.out, stdout);
    ss_lua_free(L);
}

static void test_output_and_results(void) {
    captured c;
    ss_lua *L = new_lua(&c, 0, false);
    ss_error err = {0};
    CHECK(ss_lua_run_string(L, "print('a', 1, nil, true) io.write('b', 2, '\\n')", NULL, &err) == SS_OK);
    CHECK_MSG(strcmp(c.out, "a\t1\tnil\ttrue\nb2\n") == 0, "output '%s'", c.out);
    c.out[0] = 0;
    CHECK(ss_lua_run_string(L, "x = 5", NULL, &err) == SS_OK); /* a statement prints nothing */
    CHECK(ss_lua_run_string(L, "x * 2, 'y'", NULL, &err) == SS_OK);
    CHECK_MSG(strcmp(c.out, "10\ty\n") == 0, "globals persist between runs: '%s'", c.out);
    ss_lua_free(L);
}

static void test_errors(void) {
    captured c;
    ss_lua *L = new_lua(&c, 0, false);
    ss_error err = {0};
    ss_status st = ss_lua_run_file(L, LUA_TESTS "fail_error.lua", 0, NULL, &err);
    CHECK(st == SS_EARG);
    CHECK_MSG(strstr(err.msg, "fail_error.lua:4: the table has no field 'missing'"), "msg '%s'", err.msg);
    CHECK_MSG(!strchr(err.msg, '\n'), "one line: '%s'", err.msg);
    CHECK_MSG(strstr(c.errors, "stack traceback:") && strstr(c.errors, "fail_error.lua:8:") &&
                  strstr(c.errors, "fail_error.lua:11:"),
              "traceback with file:line of each level:\n%s", c.errors);
    check_still_works(L, &c);

    st = ss_lua_run_string(L, "local t = nil\nreturn t.x", "=inline", &err);
    CHECK(st == SS_EARG);
    CHECK_MSG(strstr(err.msg, "inline:2: attempt to index a nil value (local 't')"), "msg '%s'", err.msg);
    st = ss_lua_run_string(L, "error({})", "=inline", &err);
    CHECK_MSG(st == SS_EARG && strstr(err.msg, "error object is a table value"), "msg '%s'", err.msg);

    st = ss_lua_run_file(L, LUA_TESTS "fail_syntax.lua", 0, NULL, &err);
    CHECK(st == SS_EFORMAT);
    CHECK_MSG(strstr(err.msg, "fail_syntax.lua:3:"), "msg '%s'", err.msg);
    st = ss_lua_run_file(L, LUA_TESTS "no_such_script.lua", 0, NULL, &err);
    CHECK(st == SS_EIO);
    CHECK_MSG(strstr(err.msg, "cannot open") && strstr(err.msg, "no_such_script.lua"), "msg '%s'", err.msg);
    check_still_works(L, &c);
    ss_lua_free(L);
}

static void test_interrupts(void) {
    captured c;
    ss_lua *L = new_lua(&c, 0, false);
    ss_error err = {0};
    double took;
    static const char *const endless[] = {
        "while true do end",
        "local n = 0 while true do n = n + 1 end",
        /* a script that catches every error still ends */
        "while true do pcall(function() while true do end end) end",
        "local co = coroutine.wrap(function() while true do end end) co()",
        "spec.sleep(1e6)",
        "local s = '' while true do s = tostring(#s) end",
    };
    for (size_t i = 0; i < sizeof endless / sizeof *endless; i++) {
        ss_status st = run_interrupted(L, endless[i], 0.1, &took, &err);
        CHECK_MSG(st == SS_ESTOPPED, "'%s': status %d", endless[i], st);
        CHECK_MSG(strstr(err.msg, "interrupted"), "'%s': msg '%s'", endless[i], err.msg);
        CHECK_MSG(took < 3, "'%s' took %.2f s to stop", endless[i], took);
        check_still_works(L, &c);
    }
    /* An interrupt is for the script running now, not the next one. */
    ss_lua_interrupt(L);
    check_still_works(L, &c);
    ss_lua_free(L);
}

static void test_memory_cap(void) {
    captured c;
    ss_lua *L = new_lua(&c, 24u << 20, false);
    ss_error err = {0};
    ss_status st = ss_lua_run_string(L, "local t = {} while true do t[#t + 1] = string.rep('x', 1 << 20) .. #t end",
                                      "=hog", &err);
    CHECK(st == SS_ENOMEM);
    CHECK_MSG(strstr(err.msg, "not enough memory") && strstr(err.msg, "24 MiB"), "msg '%s'", err.msg);
    check_still_works(L, &c);
    /* The garbage of the failed script went: 8 MiB fit again (string.rep needs twice that). */
    c.out[0] = 0;
    CHECK(ss_lua_run_string(L, "return #string.rep('y', 8 << 20)", NULL, &err) == SS_OK);
    CHECK_MSG(strcmp(c.out, "8388608\n") == 0, "output '%s'", c.out);
    st = ss_lua_run_string(L, "return #string.rep('y', 64 << 20)", NULL, &err);
    CHECK(st == SS_ENOMEM);
    /* caught by pcall and raised again: still a memory error */
    st = ss_lua_run_string(L, "local ok, e = pcall(string.rep, 'y', 64 << 20) error(e)", NULL, &err);
    CHECK_MSG(st == SS_ENOMEM && strstr(err.msg, "24 MiB"), "status %d, msg '%s'", st, err.msg);
    check_still_works(L, &c);
    ss_lua_free(L);

    ss_lua *tiny = NULL;
    ss_lua_opts o = {.memory_limit = 4096};
    CHECK(ss_lua_new(&o, &tiny, &err) == SS_ENOMEM && tiny == NULL);
    CHECK_MSG(strstr(err.msg, "memory"), "msg '%s'", err.msg);
}

static int count_lines(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    int n = 0, ch;
    while ((ch = fgetc(f)) != EOF) n += ch == '\n';
    fclose(f);
    return n;
}

static void test_interrupted_rows_stay(void) {
    captured c;
    ss_lua *L = new_lua(&c, 0, false);
    char path[] = "/tmp/specscope_test_lua_XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    unlink(path);
    char code[512];
    snprintf(code, sizeof code,
             "for i = 1, 3 do spec.csv('%s', {{i = i, sq = i * i}}) end\n"
             "while true do end",
             path);
    ss_error err = {0};
    double took;
    CHECK(run_interrupted(L, code, 0.1, &took, &err) == SS_ESTOPPED);
    CHECK_MSG(count_lines(path) == 4, "%d lines in %s", count_lines(path), path);
    unlink(path);
    ss_lua_free(L);
}

static void test_sandbox_modes(void) {
    captured c;
    const char *probe = "return os.execute == nil, io.popen == nil, os.exit == nil, package.loadlib == nil, "
                        "debug.sethook == nil, #package.searchers";
    ss_error err = {0};
    ss_lua *safe = new_lua(&c, 0, false);
    CHECK(ss_lua_run_string(safe, probe, NULL, &err) == SS_OK);
    CHECK_MSG(strcmp(c.out, "true\ttrue\ttrue\ttrue\ttrue\t2\n") == 0, "safe: '%s'", c.out);
    ss_lua_free(safe);
    ss_lua *unsafe = new_lua(&c, 0, true);
    CHECK(ss_lua_run_string(unsafe, probe, NULL, &err) == SS_OK);
    CHECK_MSG(strcmp(c.out, "false\tfalse\tfalse\tfalse\tfalse\t4\n") == 0, "unsafe: '%s'", c.out);
    ss_lua_free(unsafe);
}

/* ---------------------------------------------------------------- sessions (the demo pair) */

typedef struct {
    int tokens, steps;
} observed;

static void observe_token(void *ud, const char *piece, int id, char source) {
    (void)piece, (void)id, (void)source;
    ((observed *)ud)->tokens++;
}

static void observe_step(void *ud, const ss_step *step) {
    (void)step;
    ((observed *)ud)->steps++;
}

static bool have_demo_pair(void) {
    char config[4096];
    snprintf(config, sizeof config, "%s/config.json", demo_target_dir());
    if (access(config, R_OK) == 0) return true;
    printf("SKIPPED: no demo pair (%s is absent)\n", config);
    return false;
}

static int test_sessions(void) {
    if (!have_demo_pair()) return 77;
    ss_session_opts so = {.model_dir = demo_target_dir(), .quiet = true};
    ss_session *current;
    ss_error err = {0};
    if (ss_session_open(&so, &current, &err)) {
        fprintf(stderr, "ss_session_open: %s\n", err.msg);
        return 1;
    }
    observed seen = {0};
    ss_callbacks observer = {.on_token = observe_token, .on_step = observe_step, .ud = &seen};
    captured c;
    memset(&c, 0, sizeof c);
    ss_lua_opts o = {.output = capture, .output_ud = &c, .observer = &observer, .current = current};
    ss_lua *L;
    if (ss_lua_new(&o, &L, &err)) {
        fprintf(stderr, "ss_lua_new: %s\n", err.msg);
        return 1;
    }
    char *argv[] = {(char *)demo_target_dir(), (char *)demo_draft_dir()};
    ss_status st = ss_lua_run_file(L, LUA_TESTS "test_session.lua", 2, argv, &err);
    CHECK_MSG(st == SS_OK, "%s\n%s", err.msg, c.errors);
    fputs(c.out, stdout);
    CHECK_MSG(seen.tokens > 0 && seen.steps > 0, "observer saw %d tokens, %d steps", seen.tokens, seen.steps);
    /* The observer's stop flag (the interface's stop key) ends a script's generation too. */
    volatile int stop = 1;
    observer.stop = &stop;
    seen.tokens = 0;
    st = ss_lua_run_string(L,
                           "local s <close> = spec.open{}\n"
                           "local ok, e = pcall(s.generate, s, 'The', {max_tokens = 50})\n"
                           "assert(not ok and e:find('generation stopped', 1, true), e)",
                           "=stop", &err);
    CHECK_MSG(st == SS_OK, "%s", err.msg);
    CHECK_MSG(seen.tokens == 1, "stopped after %d tokens", seen.tokens);
    ss_lua_free(L);

    /* The script closed spec.current: the interface's session must still work. */
    ss_params p;
    ss_params_default(&p);
    p.max_tokens = 4;
    ss_result r;
    CHECK(ss_session_generate(current, "The", &p, NULL, &r, &err) == SS_OK);
    CHECK(r.tokens.n >= 1 && r.tokens.n <= 4);
    ss_result_free(&r);
    ss_session_close(current);
    return check_done();
}

/* ---------------------------------------------------------------- traces (the demo pair) */

/* The Chrome trace the script wrote after its k 4 generation: host spans only, each of a phase, the
 * rounds' on the model threads (target, draft) with draft and verify among them. */
static void check_trace_file(const char *path, int steps_expected_min) {
    json_error_t jerr;
    json_t *root = json_load_file(path, 0, &jerr);
    CHECK_MSG(root != NULL, "%s does not parse: %s (line %d)", path, jerr.text, jerr.line);
    json_t *events = json_object_get(root, "traceEvents");
    CHECK(json_is_array(events));
    int spans = 0, drafts = 0, verifies = 0, prefills = 0, layers = 0, on_model_threads = 0;
    size_t i;
    json_t *ev;
    json_array_foreach(events, i, ev) {
        if (strcmp(json_string_value(json_object_get(ev, "ph")), "X") != 0) continue;
        spans++;
        const char *cat = json_string_value(json_object_get(ev, "cat"));
        const char *phase = json_string_value(json_object_get(json_object_get(ev, "args"), "phase"));
        CHECK_MSG(json_integer_value(json_object_get(ev, "pid")) == 1, "event %zu is not a host span", i);
        CHECK_MSG(json_number_value(json_object_get(ev, "dur")) >= 0, "event %zu: negative dur", i);
        on_model_threads += cat && (strcmp(cat, "target") == 0 || strcmp(cat, "draft") == 0);
        if (json_object_get(json_object_get(ev, "args"), "layer")) { /* a layer inside a phase (CPU) */
            layers++;
            continue;
        }
        drafts += phase && strcmp(phase, "draft") == 0;
        verifies += phase && strcmp(phase, "verify") == 0;
        prefills += phase && strcmp(phase, "prefill") == 0;
    }
    CHECK_MSG(spans > 0 && on_model_threads == spans, "%d spans, %d on target/draft", spans, on_model_threads);
    CHECK_MSG(prefills == 2 && drafts >= steps_expected_min && verifies == drafts,
              "prefill %d, draft %d, verify %d spans", prefills, drafts, verifies);
    CHECK_MSG(layers >= 8 * verifies, "%d layer spans for %d verify forwards of the 8-layer target", layers, verifies);
    json_decref(root);
}

static int test_traces(void) {
    if (!have_demo_pair()) return 77;
    char folder[] = "/tmp/test_lua_trace.XXXXXX";
    if (!mkdtemp(folder)) {
        perror("mkdtemp");
        return 1;
    }
    char path[256], nested[300];
    snprintf(path, sizeof path, "%s/k4.json", folder);
    snprintf(nested, sizeof nested, "%s.p", path);
    ss_error err = {0};
    ss_session_opts so = {.model_dir = demo_target_dir(), .quiet = true};
    ss_session *current;
    ss_tracer *host;
    if (ss_session_open(&so, &current, &err) || ss_tracer_new(64, &host, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    ss_tracer_set_active(host); /* as the interface's timeline does */
    captured c;
    ss_lua_opts o = {.output = capture, .output_ud = &c, .current = current};
    memset(&c, 0, sizeof c);
    ss_lua *L;
    if (ss_lua_new(&o, &L, &err)) {
        fprintf(stderr, "ss_lua_new: %s\n", err.msg);
        return 1;
    }
    char *argv[] = {path, folder};
    ss_status st = ss_lua_run_file(L, LUA_TESTS "test_trace.lua", 2, argv, &err);
    CHECK_MSG(st == SS_OK, "%s\n%s", err.msg, c.errors);
    fputs(c.out, stdout);
    ss_lua_free(L);
    CHECK_MSG(ss_tracer_active() == host, "the host's tracer is no longer the active one");
    CHECK_MSG(ss_tracer_count(host) == 0, "the host's tracer got %d of the scripts' events", ss_tracer_count(host));
    check_trace_file(path, 2);
    unlink(path);
    unlink(nested);
    rmdir(folder);
    ss_tracer_set_active(NULL);
    ss_tracer_free(host);
    ss_session_close(current);
    return check_done();
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "session") == 0) return test_sessions();
    if (argc > 1 && strcmp(argv[1], "trace") == 0) return test_traces();
    test_pure_script();
    test_output_and_results();
    test_errors();
    test_interrupts();
    test_memory_cap();
    test_interrupted_rows_stay();
    test_sandbox_modes();
    return check_done();
}
