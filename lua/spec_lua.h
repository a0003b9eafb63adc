/* spec_lua.h — the embedded Lua 5.4 interpreter with the `spec` module (docs/lua.md).
 * Used by `specscope run`, and by the interface's /lua and /run commands. */
#ifndef SPECSCOPE_SPEC_LUA_H
#define SPECSCOPE_SPEC_LUA_H

#include "specscope.h"

typedef struct ss_lua ss_lua;

typedef struct {
    bool unsafe;          /* allow os.execute, io.popen, C modules (--unsafe) */
    size_t memory_limit;  /* bytes for all Lua allocations; 0: default (1 GiB) */
    /* Where print() and error tracebacks go; NULL: stdout / stderr. Called on the script's thread. */
    void (*output)(void *ud, const char *text, bool is_error);
    void *output_ud;
    /* Every generation a script runs also reports its tokens and steps here (the interface shows
     * them live); NULL: nobody watches. Its stop flag, when it has one and it is set, also ends the
     * generation at its next token or step: generate raises "generation stopped" (or
     * "interrupted" when ss_lua_interrupt was called). */
    const ss_callbacks *observer;
    /* The interface's own session, reachable from scripts as spec.current (may be NULL). */
    ss_session *current;
} ss_lua_opts;

ss_status ss_lua_new(const ss_lua_opts *opts, ss_lua **out, ss_error *err);
void ss_lua_free(ss_lua *L);
/* Runs a script file with spec.args = argv[0..argc). Errors carry a traceback with file:line.
 * On failure the whole message and traceback have gone to the output (is_error), err holds its
 * first line, and the status says what happened: SS_EIO the file cannot be read, SS_EFORMAT it does
 * not compile, SS_EARG the script raised an error, SS_ENOMEM it hit the memory limit, SS_ESTOPPED
 * it was interrupted. The interpreter stays usable after any of them. */
ss_status ss_lua_run_file(ss_lua *L, const char *path, int argc, char **argv, ss_error *err);
/* The same for a piece of code (the interface's /lua): an expression's values are printed, as in
 * the stand-alone interpreter. chunkname: "=name" as Lua spells it; NULL: "=(lua)". */
ss_status ss_lua_run_string(ss_lua *L, const char *code, const char *chunkname, ss_error *err);
/* Interrupts the running script at its next instruction hook; safe from a signal handler or
 * another thread. The script fails with "interrupted". */
void ss_lua_interrupt(ss_lua *L);

#endif
