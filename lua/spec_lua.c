/* spec_lua.c — the embedded Lua 5.4 interpreter: an allocator with a cap, an instruction hook that
 * makes scripts interruptible, the sandbox of the default (safe) mode, and running files or strings
 * with tracebacks. Every use of the Lua API runs in protected mode, so that a script (or the memory
 * cap) can make a call fail but never take the host program down. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lualib.h>

#include "lua_internal.h"

#define DEFAULT_MEMORY_LIMIT ((size_t)1 << 30)
#define HOOK_EVERY 1000 /* instructions between two looks at the interrupt flag */

/* ---------------------------------------------------------------- allocator, hook, output */

/* Lua's allocator contract: nsize 0 frees; a block never fails to shrink. Growth past the cap is
 * refused, which Lua turns into a "not enough memory" error after an emergency collection. */
static void *capped_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
    ss_lua *S = ud;
    size_t old = ptr ? osize : 0;
    if (nsize == 0) {
        free(ptr);
        S->mem_used -= old;
        return NULL;
    }
    if (nsize > old && nsize - old > S->mem_limit - S->mem_used) {
        S->mem_refused = true;
        return NULL;
    }
    void *p = realloc(ptr, nsize);
    if (!p) {
        if (nsize > old) return NULL;
        p = ptr; /* a shrink that realloc refused: the old block still serves */
    }
    S->mem_used = S->mem_used - old + nsize;
    return p;
}

ss_lua *spec_owner(lua_State *L) { return *(ss_lua **)lua_getextraspace(L); }

static void interrupt_hook(lua_State *L, lua_Debug *ar) {
    (void)ar;
    spec_check_interrupt(L);
}

void spec_check_interrupt(lua_State *L) {
    ss_lua *S = spec_owner(L);
    if (!atomic_load(&S->interrupted)) return;
    /* From now on at every instruction: a pcall in a loop cannot swallow the interrupt for good,
     * the first instruction outside it raises again. */
    lua_sethook(L, interrupt_hook, LUA_MASKCOUNT, 1);
    luaL_where(L, 0); /* the Lua function the hook stopped, */
    if (lua_rawlen(L, -1) == 0) { /* or, in a C function (spec.sleep, generate), its caller */
        lua_pop(L, 1);
        luaL_where(L, 1);
    }
    lua_pushliteral(L, "interrupted");
    lua_concat(L, 2);
    lua_error(L);
}

void ss_lua_interrupt(ss_lua *S) {
    atomic_store(&S->interrupted, 1);
    S->gen_stop = 1;
}

void spec_emit(ss_lua *S, const char *text, bool is_error) {
    if (S->opts.output) {
        S->opts.output(S->opts.output_ud, text, is_error);
        return;
    }
    FILE *f = is_error ? stderr : stdout;
    fputs(text, f);
    fflush(f);
}

/* print(...): tostring of each argument, tab-separated, to the embedding's output. */
static int print_to_output(lua_State *L) {
    int n = lua_gettop(L);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (int i = 1; i <= n; i++) {
        if (i > 1) luaL_addchar(&b, '\t');
        luaL_tolstring(L, i, NULL);
        luaL_addvalue(&b);
    }
    luaL_addchar(&b, '\n');
    luaL_pushresult(&b);
    spec_emit(spec_owner(L), lua_tostring(L, -1), false);
    return 0;
}

/* io.write(...) when the embedding takes the output (the interface's console pane). */
static int write_to_output(lua_State *L) {
    int n = lua_gettop(L);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (int i = 1; i <= n; i++) {
        luaL_checklstring(L, i, NULL); /* strings and numbers, as io.write takes */
        lua_pushvalue(L, i);
        luaL_addvalue(&b);
    }
    luaL_pushresult(&b);
    spec_emit(spec_owner(L), lua_tostring(L, -1), false);
    return 0;
}

/* ---------------------------------------------------------------- sandbox */

/* load / loadfile with the mode argument (at the position in upvalue 2) forced to text: a
 * malformed binary chunk could crash the interpreter. */
static int load_text_only(lua_State *L) {
    int mode_arg = (int)lua_tointeger(L, lua_upvalueindex(2));
    if (lua_gettop(L) < mode_arg) lua_settop(L, mode_arg);
    lua_pushliteral(L, "t");
    lua_replace(L, mode_arg);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
    return lua_gettop(L);
}

static int dofile_text_only(lua_State *L) {
    const char *path = luaL_optstring(L, 1, NULL);
    lua_settop(L, 1);
    if (luaL_loadfilex(L, path, "t") != LUA_OK) return lua_error(L);
    lua_call(L, 0, LUA_MULTRET);
    return lua_gettop(L) - 1;
}

static void wrap_loader(lua_State *L, const char *name, int mode_arg) {
    lua_getglobal(L, name);
    lua_pushinteger(L, mode_arg);
    lua_pushcclosure(L, load_text_only, 2);
    lua_setglobal(L, name);
}

/* require's searcher for Lua files, text chunks only (package.searchpath over package.path). */
static int search_lua_text(lua_State *L) {
    const char *name = luaL_checkstring(L, 1);
    lua_getglobal(L, "package");
    lua_getfield(L, -1, "searchpath");
    lua_pushstring(L, name);
    lua_getfield(L, -3, "path");
    lua_call(L, 2, 2);
    if (lua_isnil(L, -2)) return 1; /* the message of the paths tried */
    const char *file = lua_tostring(L, -2);
    if (luaL_loadfilex(L, file, "t") != LUA_OK)
        return luaL_error(L, "error loading module '%s' from file '%s':\n\t%s", name, file, lua_tostring(L, -1));
    lua_pushstring(L, file);
    return 2;
}

static void set_field_nil(lua_State *L, const char *table, const char *field) {
    if (lua_getglobal(L, table) == LUA_TTABLE) {
        lua_pushnil(L);
        lua_setfield(L, -2, field);
    }
    lua_pop(L, 1);
}

/* Keeps a few functions of a library and drops the rest. */
static void keep_only(lua_State *L, const char *lib, const char *const *names) {
    lua_getglobal(L, lib);
    lua_newtable(L);
    for (int i = 0; names[i]; i++) {
        lua_getfield(L, -2, names[i]);
        lua_setfield(L, -2, names[i]);
    }
    lua_setglobal(L, lib);
    lua_pop(L, 1);
}

/* Safe mode: no processes, no exit, no native code, no binary chunks, no hooks or registry
 * access through the debug library (debug.sethook would disarm the interrupt). */
static void apply_sandbox(lua_State *L) {
    set_field_nil(L, "os", "execute");
    set_field_nil(L, "os", "exit");
    set_field_nil(L, "io", "popen");
    set_field_nil(L, "package", "loadlib");
    lua_getglobal(L, "package");
    lua_pushliteral(L, "");
    lua_setfield(L, -2, "cpath");
    lua_getfield(L, -1, "searchers");
    lua_createtable(L, 2, 0);
    lua_rawgeti(L, -2, 1); /* package.preload */
    lua_rawseti(L, -2, 1);
    lua_pushcfunction(L, search_lua_text);
    lua_rawseti(L, -2, 2);
    lua_setfield(L, -3, "searchers");
    lua_pop(L, 2);
    wrap_loader(L, "load", 3);
    wrap_loader(L, "loadfile", 2);
    lua_pushcfunction(L, dofile_text_only);
    lua_setglobal(L, "dofile");
    static const char *const debug_kept[] = {"traceback", "getinfo", NULL};
    keep_only(L, "debug", debug_kept);
}

/* ---------------------------------------------------------------- setting up */

static int setup_state(lua_State *L) {
    ss_lua *S = spec_owner(L);
    luaL_openlibs(L);
    if (!S->opts.unsafe) apply_sandbox(L);
    lua_pushcfunction(L, print_to_output);
    lua_setglobal(L, "print");
    if (S->opts.output) {
        lua_getglobal(L, "io");
        lua_pushcfunction(L, write_to_output);
        lua_setfield(L, -2, "write");
        lua_pop(L, 1);
    }
    spec_open_module(L, S);
    lua_pushvalue(L, -1);
    lua_setglobal(L, "spec");
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    lua_pushvalue(L, -2);
    lua_setfield(L, -2, "spec"); /* require "spec" works too */
    return 0;
}

ss_status ss_lua_new(const ss_lua_opts *opts, ss_lua **out, ss_error *err) {
    *out = NULL;
    ss_lua *S = calloc(1, sizeof *S);
    if (!S) return ss_fail(err, SS_ENOMEM, "out of memory for a Lua interpreter");
    if (opts) S->opts = *opts;
    S->mem_limit = S->opts.memory_limit ? S->opts.memory_limit : DEFAULT_MEMORY_LIMIT;
    atomic_init(&S->interrupted, 0);
    S->L = lua_newstate(capped_alloc, S);
    if (!S->L) {
        free(S);
        return ss_fail(err, SS_ENOMEM, "a Lua state does not fit the memory limit");
    }
    *(ss_lua **)lua_getextraspace(S->L) = S;
    lua_sethook(S->L, interrupt_hook, LUA_MASKCOUNT, HOOK_EVERY);
    lua_pushcfunction(S->L, setup_state);
    if (lua_pcall(S->L, 0, 0, 0) != LUA_OK) {
        ss_fail(err, S->mem_refused ? SS_ENOMEM : SS_EARG, "setting up Lua: %s", lua_tostring(S->L, -1));
        ss_lua_free(S);
        return err->status;
    }
    *out = S;
    return SS_OK;
}

void ss_lua_free(ss_lua *S) {
    if (!S) return;
    lua_close(S->L); /* collects the sessions scripts left open */
    free(S);
}

/* ---------------------------------------------------------------- running */

/* Message handler: the error with a traceback (file:line of each level). */
static int traceback_handler(lua_State *L) {
    const char *msg = lua_tostring(L, 1);
    if (!msg) {
        if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING) msg = lua_tostring(L, -1);
        else msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    }
    luaL_traceback(L, L, msg, 1);
    return 1;
}

/* The error on top of the stack, reported: the whole message and traceback to the output, its
 * first line into err. */
static ss_status report_error(ss_lua *S, int rc, ss_status status, ss_error *err) {
    lua_State *L = S->L;
    const char *msg = lua_tostring(L, -1);
    if (!msg) msg = "(error object is not a string)";
    /* A memory error a callback or pcall caught and raised again arrives as a runtime error. */
    bool out_of_memory = rc == LUA_ERRMEM || (S->mem_refused && strstr(msg, "not enough memory"));
    char text[256];
    if (out_of_memory && S->mem_refused) {
        snprintf(text, sizeof text, "not enough memory: the Lua memory limit of %zu MiB is reached",
                 S->mem_limit >> 20);
        msg = text;
    }
    if (atomic_load(&S->interrupted)) status = SS_ESTOPPED;
    else if (out_of_memory) status = SS_ENOMEM;
    spec_emit(S, msg, true);
    spec_emit(S, "\n", true);
    int first_line = (int)strcspn(msg, "\n");
    return ss_fail(err, status, "%.*s", first_line, msg);
}

typedef struct {
    const char *path, *code, *chunkname;
    int argc;
    char **argv;
    bool as_expression; /* try "return CODE" first */
    int load_rc;        /* the loader's status when loading failed */
} chunk_source;

static void set_script_args(lua_State *L, const chunk_source *src) {
    lua_getfield(L, LUA_REGISTRYINDEX, SPEC_MODULE_KEY);
    lua_createtable(L, src->argc, 0);
    for (int i = 0; i < src->argc; i++) {
        lua_pushstring(L, src->argv[i]);
        lua_rawseti(L, -2, i + 1);
    }
    lua_pushvalue(L, -1);
    lua_setfield(L, -3, "args");
    lua_pushstring(L, src->path); /* the stand-alone interpreter's `arg`, arg[0] the script */
    lua_rawseti(L, -2, 0);
    lua_setglobal(L, "arg");
    lua_pop(L, 1);
}

/* Protected: prepares spec.args and loads the chunk, leaving it on the stack. */
static int load_chunk(lua_State *L) {
    chunk_source *src = lua_touserdata(L, 1);
    lua_settop(L, 0);
    int rc;
    if (src->path) {
        set_script_args(L, src);
        rc = luaL_loadfilex(L, src->path, "t");
    } else {
        rc = LUA_ERRSYNTAX;
        if (src->as_expression) {
            lua_pushfstring(L, "return %s;", src->code);
            rc = luaL_loadbufferx(L, lua_tostring(L, -1), lua_rawlen(L, -1), src->chunkname, "t");
            lua_remove(L, -2);
            if (rc != LUA_OK) lua_pop(L, 1);
        }
        if (rc != LUA_OK) rc = luaL_loadbufferx(L, src->code, strlen(src->code), src->chunkname, "t");
    }
    if (rc != LUA_OK) {
        src->load_rc = rc;
        return lua_error(L);
    }
    return 1;
}

/* Protected: calls the chunk (argument 1); with argument 2 true, prints what it returns. */
static int call_chunk(lua_State *L) {
    bool print_results = lua_toboolean(L, 2);
    lua_settop(L, 1);
    lua_call(L, 0, LUA_MULTRET);
    if (print_results && lua_gettop(L) > 0) {
        lua_pushcfunction(L, print_to_output);
        lua_insert(L, 1);
        lua_call(L, lua_gettop(L) - 1, 0);
    }
    return 0;
}

static ss_status run_chunk(ss_lua *S, chunk_source *src, ss_error *err) {
    lua_State *L = S->L;
    atomic_store(&S->interrupted, 0);
    S->gen_stop = 0;
    S->mem_refused = false;
    lua_sethook(L, interrupt_hook, LUA_MASKCOUNT, HOOK_EVERY);
    int base = lua_gettop(L);
    ss_status st = SS_OK;
    lua_pushcfunction(L, traceback_handler);
    lua_pushcfunction(L, load_chunk);
    lua_pushlightuserdata(L, src);
    int rc = lua_pcall(L, 1, 1, 0);
    if (rc != LUA_OK) {
        st = src->load_rc == LUA_ERRFILE ? SS_EIO : src->load_rc == LUA_ERRSYNTAX ? SS_EFORMAT : SS_ENOMEM;
        st = report_error(S, rc, st, err);
    } else {
        lua_pushcfunction(L, call_chunk);
        lua_insert(L, -2);
        lua_pushboolean(L, src->as_expression);
        rc = lua_pcall(L, 2, 0, base + 1);
        if (rc != LUA_OK) st = report_error(S, rc, SS_EARG, err);
    }
    lua_settop(L, base);
    lua_gc(L, LUA_GCCOLLECT); /* what a failed script left behind goes now, not at the cap */
    return st;
}

ss_status ss_lua_run_file(ss_lua *S, const char *path, int argc, char **argv, ss_error *err) {
    chunk_source src = {.path = path, .argc = argc, .argv = argv};
    return run_chunk(S, &src, err);
}

ss_status ss_lua_run_string(ss_lua *S, const char *code, const char *chunkname, ss_error *err) {
    chunk_source src = {.code = code, .chunkname = chunkname ? chunkname : "=(lua)", .as_expression = true};
    return run_chunk(S, &src, err);
}
