/* lua_internal.h — what the parts of the embedded `spec` module share (the lua folder only). */
#ifndef SPECSCOPE_LUA_INTERNAL_H
#define SPECSCOPE_LUA_INTERNAL_H

#include <lauxlib.h>
#include <lua.h>
#include <stdatomic.h>

#include "spec_lua.h"

/* The version string scripts see as spec.version. */
#define SPEC_LUA_VERSION "0.1"

/* Registry key of the `spec` module table (spec.chat_template is looked up there). */
#define SPEC_MODULE_KEY "specscope.spec"

struct ss_lua {
    lua_State *L;
    ss_lua_opts opts;
    size_t mem_used, mem_limit; /* bytes the Lua allocator handed out, and its cap */
    bool mem_refused;           /* the cap refused a request since the current run began */
    atomic_int interrupted;     /* set by ss_lua_interrupt; cleared when a run begins */
    volatile int gen_stop;      /* the stop flag of the generation running now */
};

/* The interpreter that owns L (any of its threads). */
ss_lua *spec_owner(lua_State *L);
/* Raises "interrupted" when ss_lua_interrupt was called, and makes sure the script cannot catch
 * it for good (the instruction hook fires again at every instruction from then on). */
void spec_check_interrupt(lua_State *L);
/* Sends text to the embedding's output (stdout / stderr when it gave none). */
void spec_emit(ss_lua *S, const char *text, bool is_error);

/* Opens the `spec` table (left on the stack) with everything below registered in it. */
void spec_open_module(lua_State *L, ss_lua *S);
/* spec.open and the session methods (lua_session.c). */
void spec_register_session(lua_State *L, ss_lua *S);
/* spec.csv, spec.json, spec.write (lua_files.c). */
void spec_register_files(lua_State *L);

#endif
