/* lua_files.c — result files from scripts: spec.csv (append rows, flushed one by one, so that an
 * interrupted script leaves every finished row on disk), spec.write (whole files via a temporary
 * file and rename, so a reader never sees half a file) and spec.json (with jansson).
 *
 * Lua errors longjmp: nothing here holds an open FILE or malloc'd memory across a call that can
 * raise. The rows are turned into strings first; the JSON tree is built by code that cannot raise
 * and is owned by a userdata with __gc from then on. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lua_internal.h"

#define JSON_BOX_MT "spec.json_tree"
#define JSON_MAX_DEPTH 100

/* ---------------------------------------------------------------- CSV */

/* Shortest "%.*g" text that reads back as the same double (at most 17 digits). */
static void format_double(double v, char *buf, size_t size) {
    if (isnan(v)) {
        snprintf(buf, size, "nan");
        return;
    }
    if (isinf(v)) {
        snprintf(buf, size, v > 0 ? "inf" : "-inf");
        return;
    }
    for (int digits = 1; digits <= 17; digits++) {
        snprintf(buf, size, "%.*g", digits, v);
        if (strtod(buf, NULL) == v) return;
    }
}

/* Pushes the string at idx as a CSV field, quoted when it holds a separator, quote, line break or
 * edge space (RFC 4180; quotes doubled). */
static void push_csv_field(lua_State *L, int idx) {
    size_t len;
    const char *s = lua_tolstring(L, idx, &len);
    bool quote = len > 0 && (s[0] == ' ' || s[len - 1] == ' ');
    for (size_t i = 0; i < len && !quote; i++) quote = s[i] == ',' || s[i] == '"' || s[i] == '\n' || s[i] == '\r';
    if (!quote) {
        lua_pushvalue(L, idx);
        return;
    }
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    luaL_addchar(&b, '"');
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '"') luaL_addchar(&b, '"');
        luaL_addchar(&b, s[i]);
    }
    luaL_addchar(&b, '"');
    luaL_pushresult(&b);
}

/* Replaces the value on top of the stack with its CSV cell text. */
static void to_cell(lua_State *L, lua_Integer row, const char *column) {
    char num[64];
    switch (lua_type(L, -1)) {
    case LUA_TNIL:
        lua_pushliteral(L, "");
        break;
    case LUA_TBOOLEAN:
        lua_pushstring(L, lua_toboolean(L, -1) ? "true" : "false");
        break;
    case LUA_TNUMBER:
        if (lua_isinteger(L, -1)) snprintf(num, sizeof num, LUA_INTEGER_FMT, (LUAI_UACINT)lua_tointeger(L, -1));
        else format_double(lua_tonumber(L, -1), num, sizeof num);
        lua_pushstring(L, num);
        break;
    case LUA_TSTRING:
        push_csv_field(L, lua_gettop(L));
        break;
    default:
        luaL_error(L, "spec.csv: row %I, column '%s': a %s cannot be a CSV cell", (LUAI_UACINT)row, column,
                   luaL_typename(L, -1));
    }
    lua_remove(L, -2);
}

static int compare_strings(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

/* Pushes the sorted string keys of the table at idx (the first row) as an array. */
static void push_sorted_keys(lua_State *L, int idx) {
    lua_newtable(L);
    int keys = lua_gettop(L);
    lua_Integer n = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        if (lua_type(L, -1) != LUA_TSTRING)
            luaL_error(L, "spec.csv: row 1 has a key that is not a string (%s): give the columns", luaL_typename(L, -1));
        lua_pushvalue(L, -1);
        lua_rawseti(L, keys, ++n);
    }
    const char **names = lua_newuserdatauv(L, (size_t)n * sizeof *names + 1, 0);
    for (lua_Integer i = 0; i < n; i++) {
        lua_rawgeti(L, keys, i + 1);
        names[i] = lua_tostring(L, -1); /* alive: the keys table holds it */
        lua_pop(L, 1);
    }
    qsort(names, (size_t)n, sizeof *names, compare_strings);
    lua_createtable(L, (int)n, 0);
    for (lua_Integer i = 0; i < n; i++) {
        lua_pushstring(L, names[i]);
        lua_rawseti(L, -2, i + 1);
    }
    lua_replace(L, keys);
    lua_pop(L, 1);
}

/* Pushes the column names at index `columns` joined as a CSV line, or one row's cells. */
static void push_line(lua_State *L, int columns, int row, lua_Integer row_no) {
    lua_Integer n = (lua_Integer)lua_rawlen(L, columns);
    luaL_checkstack(L, (int)(2 * n + 4), "spec.csv: too many columns");
    int base = lua_gettop(L);
    for (lua_Integer j = 1; j <= n; j++) {
        if (j > 1) lua_pushliteral(L, ",");
        lua_rawgeti(L, columns, j);
        if (row) {
            const char *name = lua_tostring(L, -1);
            lua_getfield(L, row, name);
            to_cell(L, row_no, name);
            lua_remove(L, -2);
        } else {
            push_csv_field(L, lua_gettop(L));
            lua_remove(L, -2);
        }
    }
    lua_concat(L, lua_gettop(L) - base);
}

/* Reads the first line of f and tells whether it equals header; keeps its start in shown. */
static bool first_line_is(FILE *f, const char *header, char *shown, size_t shown_size) {
    size_t i = 0;
    bool same = true;
    int ch;
    while ((ch = fgetc(f)) != EOF && ch != '\n') {
        if (ch == '\r') continue;
        if (i + 1 < shown_size) shown[i] = (char)ch, shown[i + 1] = 0;
        same = same && header[i] != 0 && header[i] == ch;
        i++;
    }
    return same && header[i] == 0;
}

/* Writes the lines (strings in the table at index lines, header at 0) to path, opened for
 * appending; no Lua call that can raise happens while the file is open. Returns 0 or an errno. */
static int append_lines(lua_State *L, const char *path, int lines, lua_Integer n, bool *header_mismatch,
                        char *shown, size_t shown_size) {
    lua_rawgeti(L, lines, 0);
    const char *header = lua_tostring(L, -1);
    lua_pop(L, 1); /* the table keeps it alive */
    *header_mismatch = false;
    FILE *existing = fopen(path, "r");
    if (existing) {
        struct stat st;
        if (fstat(fileno(existing), &st) == 0 && st.st_size > 0)
            *header_mismatch = !first_line_is(existing, header, shown, shown_size);
        fclose(existing);
        if (*header_mismatch) return 0;
    }
    FILE *f = fopen(path, "a");
    if (!f) return errno;
    struct stat st;
    bool empty = fstat(fileno(f), &st) == 0 && st.st_size == 0;
    int failure = 0;
    for (lua_Integer i = empty ? 0 : 1; i <= n && !failure; i++) {
        lua_rawgeti(L, lines, i);
        size_t len;
        const char *line = lua_tolstring(L, -1, &len);
        if (fwrite(line, 1, len, f) != len || fputc('\n', f) == EOF || fflush(f) != 0) failure = errno ? errno : EIO;
        lua_pop(L, 1);
    }
    if (fclose(f) != 0 && !failure) failure = errno ? errno : EIO;
    return failure;
}

/* spec.csv(path, rows [, columns]) -> number of rows written. rows: an array of tables (or one
 * row table); columns: their order, by default the sorted keys of the first row. */
static int l_csv(lua_State *L) {
    const char *path = luaL_checkstring(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    if (!lua_isnoneornil(L, 3)) luaL_checktype(L, 3, LUA_TTABLE);
    lua_settop(L, 3);
    if (lua_rawlen(L, 2) == 0) { /* one row given as a table of cells, or no rows */
        lua_pushnil(L);
        if (lua_next(L, 2)) {
            lua_pop(L, 2);
            lua_createtable(L, 1, 0);
            lua_pushvalue(L, 2);
            lua_rawseti(L, -2, 1);
            lua_replace(L, 2);
        }
    }
    lua_Integer n = (lua_Integer)lua_rawlen(L, 2);
    if (lua_isnil(L, 3)) {
        if (n == 0) return luaL_error(L, "spec.csv: no rows and no columns to write to '%s'", path);
        if (lua_rawgeti(L, 2, 1) != LUA_TTABLE) return luaL_error(L, "spec.csv: row 1 is not a table (got %s)", luaL_typename(L, -1));
        push_sorted_keys(L, 4);
        lua_replace(L, 3);
        lua_settop(L, 3);
    } else {
        lua_Integer nc = (lua_Integer)lua_rawlen(L, 3);
        for (lua_Integer j = 1; j <= nc; j++)
            if (lua_rawgeti(L, 3, j) != LUA_TSTRING)
                return luaL_error(L, "spec.csv: column %I is not a string (got %s)", (LUAI_UACINT)j, luaL_typename(L, -1));
        lua_settop(L, 3);
    }
    if (lua_rawlen(L, 3) == 0) return luaL_error(L, "spec.csv: no columns to write to '%s'", path);

    lua_createtable(L, (int)n, 1); /* 4: the lines, header at 0 */
    push_line(L, 3, 0, 0);
    lua_rawseti(L, 4, 0);
    for (lua_Integer i = 1; i <= n; i++) {
        if (lua_rawgeti(L, 2, i) != LUA_TTABLE)
            return luaL_error(L, "spec.csv: row %I is not a table (got %s)", (LUAI_UACINT)i, luaL_typename(L, -1));
        push_line(L, 3, 5, i);
        lua_rawseti(L, 4, i);
        lua_pop(L, 1);
    }
    bool mismatch;
    char shown[128] = "";
    int failure = append_lines(L, path, 4, n, &mismatch, shown, sizeof shown);
    if (mismatch) {
        lua_rawgeti(L, 4, 0);
        return luaL_error(L, "spec.csv: '%s' already starts with another header ('%s'), not '%s'", path, shown,
                          lua_tostring(L, -1));
    }
    if (failure) return luaL_error(L, "spec.csv: cannot append to '%s': %s", path, strerror(failure));
    lua_pushinteger(L, n);
    return 1;
}

/* ---------------------------------------------------------------- spec.write */

/* spec.write(path, text): the whole file, or nothing, under path. */
static int l_write(lua_State *L) {
    static atomic_uint counter;
    const char *path = luaL_checkstring(L, 1);
    size_t len;
    const char *text = luaL_checklstring(L, 2, &len);
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld.%u", path, (long)getpid(), atomic_fetch_add(&counter, 1)) >=
        (int)sizeof tmp)
        return luaL_error(L, "spec.write: the path '%s' is too long", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd < 0) return luaL_error(L, "spec.write: cannot create '%s': %s", tmp, strerror(errno));
    int failure = 0;
    for (size_t done = 0; done < len && !failure;) {
        ssize_t w = write(fd, text + done, len - done);
        if (w < 0 && errno != EINTR) failure = errno;
        else if (w > 0) done += (size_t)w;
    }
    if (!failure && fsync(fd) != 0) failure = errno;
    if (close(fd) != 0 && !failure) failure = errno;
    if (!failure && rename(tmp, path) != 0) failure = errno;
    if (failure) {
        unlink(tmp);
        return luaL_error(L, "spec.write: cannot write '%s': %s", path, strerror(failure));
    }
    return 0;
}

/* ---------------------------------------------------------------- spec.json */

typedef struct {
    json_t *tree;
    char *text;
} json_box;

static void json_box_free(json_box *b) {
    json_decref(b->tree);
    free(b->text);
    b->tree = NULL;
    b->text = NULL;
}

static int json_box_gc(lua_State *L) {
    json_box_free(luaL_checkudata(L, 1, JSON_BOX_MT));
    return 0;
}

/* Arrays: tables whose keys are exactly 1..n (the empty table too). */
static bool is_array(lua_State *L, int idx) {
    lua_Unsigned n = lua_rawlen(L, idx), count = 0;
    bool keys_in_range = true;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        count++;
        if (!lua_isinteger(L, -2) || lua_tointeger(L, -2) < 1 || (lua_Unsigned)lua_tointeger(L, -2) > n)
            keys_in_range = false;
        lua_pop(L, 1);
    }
    return keys_in_range && count == n;
}

/* The JSON tree of the value at idx (absolute), or NULL with the reason in why. Raises no Lua
 * error: its partial trees would leak. */
static json_t *to_json(lua_State *L, int idx, int depth, char *why, size_t why_size) {
    switch (lua_type(L, idx)) {
    case LUA_TNIL:
        return json_null();
    case LUA_TBOOLEAN:
        return json_boolean(lua_toboolean(L, idx));
    case LUA_TNUMBER: {
        if (lua_isinteger(L, idx)) return json_integer((json_int_t)lua_tointeger(L, idx));
        double v = lua_tonumber(L, idx);
        if (!isfinite(v)) snprintf(why, why_size, "%s cannot be written as JSON", isnan(v) ? "NaN" : "infinity");
        return isfinite(v) ? json_real(v) : NULL;
    }
    case LUA_TSTRING: {
        size_t len;
        const char *s = lua_tolstring(L, idx, &len);
        json_t *j = json_stringn(s, len);
        if (!j) snprintf(why, why_size, "the string '%.40s' is not valid UTF-8", s);
        return j;
    }
    case LUA_TTABLE:
        break;
    default:
        snprintf(why, why_size, "a %s cannot be written as JSON", luaL_typename(L, idx));
        return NULL;
    }
    if (depth >= JSON_MAX_DEPTH || !lua_checkstack(L, 4)) {
        snprintf(why, why_size, "tables nested deeper than %d levels (does a table contain itself?)", JSON_MAX_DEPTH);
        return NULL;
    }
    if (is_array(L, idx)) {
        json_t *arr = json_array();
        lua_Unsigned n = lua_rawlen(L, idx);
        for (lua_Unsigned i = 1; i <= n && arr; i++) {
            lua_rawgeti(L, idx, (lua_Integer)i);
            json_t *item = to_json(L, lua_gettop(L), depth + 1, why, why_size);
            lua_pop(L, 1);
            if (!item || json_array_append_new(arr, item)) {
                json_decref(arr);
                arr = NULL;
            }
        }
        return arr;
    }
    json_t *obj = json_object();
    lua_pushnil(L);
    while (obj && lua_next(L, idx)) {
        char key[64];
        const char *k = key;
        if (lua_type(L, -2) == LUA_TSTRING) k = lua_tostring(L, -2);
        else if (lua_isinteger(L, -2)) snprintf(key, sizeof key, LUA_INTEGER_FMT, (LUAI_UACINT)lua_tointeger(L, -2));
        else k = NULL;
        json_t *item = k ? to_json(L, lua_gettop(L), depth + 1, why, why_size) : NULL;
        if (!k) snprintf(why, why_size, "a %s key cannot be a JSON object key", luaL_typename(L, -2));
        lua_pop(L, 1);
        if (!item || json_object_set_new(obj, k, item)) {
            if (item && !why[0]) snprintf(why, why_size, "the key '%.40s' is not valid UTF-8", k);
            json_decref(obj);
            obj = NULL;
            lua_pop(L, 1); /* the key lua_next left */
        }
    }
    return obj;
}

/* spec.json(value [, indent]) -> text: objects with sorted keys, integers as integers, floats
 * with 17 significant digits; NaN, infinities, functions and cycles are errors. */
static int l_json(lua_State *L) {
    luaL_checkany(L, 1);
    lua_Integer indent = luaL_optinteger(L, 2, 0);
    luaL_argcheck(L, indent >= 0 && indent <= 31, 2, "indent must be in [0, 31]");
    lua_settop(L, 1);
    json_box *box = lua_newuserdatauv(L, sizeof *box, 0);
    box->tree = NULL;
    box->text = NULL;
    luaL_setmetatable(L, JSON_BOX_MT);
    char why[160] = "";
    box->tree = to_json(L, 1, 0, why, sizeof why);
    if (!box->tree) return luaL_error(L, "spec.json: %s", why[0] ? why : "out of memory");
    size_t flags = JSON_ENCODE_ANY | JSON_SORT_KEYS | JSON_REAL_PRECISION(17) |
                   (indent ? JSON_INDENT(indent) : JSON_COMPACT);
    box->text = json_dumps(box->tree, flags);
    if (!box->text) return luaL_error(L, "spec.json: out of memory");
    lua_pushstring(L, box->text);
    json_box_free(box);
    return 1;
}

void spec_register_files(lua_State *L) {
    luaL_newmetatable(L, JSON_BOX_MT);
    lua_pushcfunction(L, json_box_gc);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);
    lua_pushcfunction(L, l_csv);
    lua_setfield(L, -2, "csv");
    lua_pushcfunction(L, l_json);
    lua_setfield(L, -2, "json");
    lua_pushcfunction(L, l_write);
    lua_setfield(L, -2, "write");
}
