/* lua_runner.h — /lua CODE and /run SCRIPT on a background thread. The script's output and the
 * tokens and steps of any generation it runs come back as messages through a bounded,
 * mutex-protected queue that the interface's thread drains (ncurses is never touched from the
 * script's thread). One script at a time; the Lua state lives on between scripts so that
 * variables persist, until the session it points to changes. */
#ifndef SPECSCOPE_LUA_RUNNER_H
#define SPECSCOPE_LUA_RUNNER_H

#include <pthread.h>
#include <stdbool.h>

#include "spec_lua.h"
#include "specscope.h"

typedef enum { LUA_MSG_OUTPUT = 1, LUA_MSG_TOKEN, LUA_MSG_STEP, LUA_MSG_DONE } lua_msg_kind;

typedef struct {
    lua_msg_kind kind;
    bool is_error;  /* OUTPUT: an error traceback */
    char *text;     /* OUTPUT: malloc'd, the receiver frees it; TOKEN: the piece; DONE: error message */
    char source;    /* TOKEN */
    ss_step step;   /* STEP */
    ss_status status; /* DONE */
} lua_msg;

typedef struct {
    ss_lua *L;
    ss_session *session; /* what L's spec.current points to */
    pthread_t thread;
    bool thread_live;
    bool busy;          /* under lock */
    bool draining;      /* under lock: posts no longer wait for room (the reader is going away) */
    pthread_mutex_t lock;
    pthread_cond_t not_full;
    lua_msg *queue;
    int q_head, q_len, q_cap;
    /* The job. */
    char *code;         /* /lua */
    char **argv;        /* /run: argv[0] is the script path */
    int argc;
    ss_callbacks observer;
    volatile int stop;  /* the observer's stop flag: set by an interrupt, so a generation the
                           script runs ends at its next step as well */
} lua_runner;

void lua_runner_init(lua_runner *r);
/* Interrupts a running script, waits for it, frees the state. */
void lua_runner_free(lua_runner *r);
/* Starts code (/lua) or a script file with arguments (/run). Fails when a script is running. */
ss_status lua_runner_start_code(lua_runner *r, ss_session *session, const char *code, ss_error *err);
ss_status lua_runner_start_file(lua_runner *r, ss_session *session, int argc, char **argv, ss_error *err);
bool lua_runner_busy(lua_runner *r);
void lua_runner_interrupt(lua_runner *r);
/* Takes the next message; false when there is none. */
bool lua_runner_poll(lua_runner *r, lua_msg *out);
/* The session changed: the next script gets a fresh state (call only when not busy). */
void lua_runner_forget_state(lua_runner *r);

#endif
