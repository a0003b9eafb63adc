/* lua_module.c — the `spec` table: version, args, sleep, parse_args, and the parts registered by
 * lua_session.c (open, current) and lua_files.c (csv, json, write). */
#include <math.h>
#include <string.h>
#include <time.h>

#include "lua_internal.h"

#define SLEEP_SLICE_S 0.01 /* spec.sleep looks at the interrupt flag this often */

/* spec.sleep(seconds): an interruptible pause. */
static int l_sleep(lua_State *L) {
    double seconds = luaL_checknumber(L, 1);
    luaL_argcheck(L, isfinite(seconds) && seconds >= 0, 1, "a non-negative number of seconds expected");
    struct timespec end, now;
    clock_gettime(CLOCK_MONOTONIC, &end);
    end.tv_sec += (time_t)seconds;
    end.tv_nsec += (long)((seconds - floor(seconds)) * 1e9);
    if (end.tv_nsec >= 1000000000L) end.tv_sec++, end.tv_nsec -= 1000000000L;
    for (;;) {
        spec_check_interrupt(L);
        clock_gettime(CLOCK_MONOTONIC, &now);
        double left = (double)(end.tv_sec - now.tv_sec) + (end.tv_nsec - now.tv_nsec) / 1e9;
        if (left <= 0) return 0;
        double slice = left < SLEEP_SLICE_S ? left : SLEEP_SLICE_S;
        struct timespec ts = {0, (long)(slice * 1e9)};
        nanosleep(&ts, NULL);
    }
}

/* The value of option `name` converted to the type of its default (on top of the stack). */
static void convert_option(lua_State *L, const char *name, const char *value) {
    switch (lua_type(L, -1)) {
    case LUA_TNUMBER: {
        bool want_int = lua_isinteger(L, -1);
        lua_pop(L, 1);
        if (!lua_stringtonumber(L, value) || (want_int && !lua_isinteger(L, -1)))
            luaL_error(L, "spec: option --%s: '%s' is not %s", name, value, want_int ? "an integer" : "a number");
        break;
    }
    case LUA_TSTRING:
        lua_pop(L, 1);
        lua_pushstring(L, value);
        break;
    default:
        luaL_error(L, "spec: parse_args: the default of '%s' must be a string, a number or a boolean", name);
    }
}

/* spec.parse_args(defaults [, args]): "--name VALUE", "-name VALUE" or "--name=VALUE" for each key
 * of defaults (dashes in names read as underscores), converted to the default's type; a boolean
 * default makes a flag without a value. Other arguments come back as the array part. */
static int l_parse_args(lua_State *L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 2);
    if (lua_isnil(L, 2)) {
        lua_getfield(L, LUA_REGISTRYINDEX, SPEC_MODULE_KEY);
        lua_getfield(L, -1, "args");
        lua_replace(L, 2);
        lua_pop(L, 1);
    }
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_newtable(L); /* 3: the result, defaults first */
    lua_pushnil(L);
    while (lua_next(L, 1)) {
        lua_pushvalue(L, -2);
        lua_insert(L, -2);
        lua_settable(L, 3);
    }
    lua_Integer n = luaL_len(L, 2), positional = 0;
    for (lua_Integer i = 1; i <= n; i++) {
        lua_geti(L, 2, i);
        const char *arg = luaL_tolstring(L, 4, NULL); /* 5 */
        bool numeric = lua_stringtonumber(L, arg) != 0;
        if (numeric) lua_pop(L, 1);
        if (arg[0] != '-' || !arg[1] || numeric) { /* "-", "-1.5" and words are positional */
            lua_rawseti(L, 3, ++positional);
            lua_settop(L, 3);
            continue;
        }
        const char *name_start = arg + (arg[1] == '-' ? 2 : 1);
        const char *eq = strchr(name_start, '=');
        luaL_Buffer b;
        luaL_buffinit(L, &b);
        for (const char *p = name_start; *p && p != eq; p++) luaL_addchar(&b, *p == '-' ? '_' : *p);
        luaL_pushresult(&b); /* 6 */
        const char *name = lua_tostring(L, 6);
        lua_pushvalue(L, 6);
        if (lua_gettable(L, 1) == LUA_TNIL) return luaL_error(L, "spec: unknown option '%s'", arg); /* 7 */
        if (lua_isboolean(L, 7)) {
            if (eq) return luaL_error(L, "spec: option --%s takes no value", name);
            lua_pushboolean(L, 1);
        } else {
            const char *value = eq ? eq + 1 : NULL;
            if (!value) {
                if (i == n) return luaL_error(L, "spec: option '%s' needs a value", arg);
                lua_geti(L, 2, ++i);
                value = luaL_tolstring(L, -1, NULL);
            }
            lua_pushvalue(L, 7);
            convert_option(L, name, value);
        }
        lua_setfield(L, 3, name);
        lua_settop(L, 3);
    }
    return 1;
}

void spec_open_module(lua_State *L, ss_lua *S) {
    lua_newtable(L);
    lua_pushliteral(L, SPEC_LUA_VERSION);
    lua_setfield(L, -2, "version");
    lua_newtable(L);
    lua_setfield(L, -2, "args");
    lua_pushcfunction(L, l_sleep);
    lua_setfield(L, -2, "sleep");
    lua_pushcfunction(L, l_parse_args);
    lua_setfield(L, -2, "parse_args");
    spec_register_files(L);
    spec_register_session(L, S);
    lua_pushvalue(L, -1);
    lua_setfield(L, LUA_REGISTRYINDEX, SPEC_MODULE_KEY);
}
