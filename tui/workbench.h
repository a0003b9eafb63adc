/* workbench.h — what the interface and the REPL share below their screens: the session and its
 * settings, the chat transcript, the speculation statistics, the running job (a chat turn, a
 * /baseline decode, or a script), and the draining of their event queues. A front end supplies
 * a view (where messages, streamed tokens and run ends go) and calls workbench_pump often. */
#ifndef SPECSCOPE_WORKBENCH_H
#define SPECSCOPE_WORKBENCH_H

#include <stdbool.h>

#include "gen_options.h"
#include "lora_args.h"
#include "lua_runner.h"
#include "spec_stats.h"
#include "specscope.h"
#include "trace_feed.h"
#include "transcript.h"

typedef enum { OUT_INFO = 0, OUT_ERROR, OUT_ECHO, OUT_SCRIPT, OUT_SCRIPT_ERROR } out_kind;

typedef struct {
    void (*print)(void *ud, out_kind kind, const char *text); /* one message, no trailing newline */
    void (*token)(void *ud, const char *piece, char source);  /* optional: a chat token arrived */
    void (*finished)(void *ud);                                 /* optional: a run or script ended */
    void *ud;
} workbench_view;

typedef enum { JOB_NONE = 0, JOB_CHAT, JOB_BASELINE } job_kind;

typedef struct {
    ss_session_opts opts; /* model_dir / draft_dir point into the strings below */
    char *model_dir, *draft_dir;
    ss_params params;     /* the next run's settings (chat = true) */
    lora_args loras;      /* --lora: loaded onto the target when the session opens */
    ss_session *session;
    transcript chat;
    spec_stats stats;
    trace_feed trace;     /* the timeline: the tracer's ring and the last step copied from it */
    lua_runner lua;
    job_kind job;
    bool script_run_open; /* a script's tokens or steps arrived and its chat turn is open */
    int script_tokens;    /* tokens the script's generations produced so far */
    char *last_prompt;    /* what /baseline decodes */
    workbench_view view;
    bool quit;            /* /quit asked */
    bool changed;         /* something to redraw since the front end last cleared it */
} workbench;

/* Copies the options; opens nothing yet. */
bool workbench_init(workbench *wb, const gen_options *o, const workbench_view *view);
/* Opens the session (returns the engine's status; err names the culprit). */
ss_status workbench_open(workbench *wb, ss_error *err);
/* Stops what runs and frees everything. */
void workbench_free(workbench *wb);

void workbench_say(workbench *wb, out_kind kind, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
bool workbench_busy(workbench *wb);
/* A chat message: a new user turn, then the generation streams into the transcript. */
void workbench_chat(workbench *wb, const char *text);
/* Plain decoding of the last prompt, to measure the rate speculative runs are compared with. */
void workbench_baseline(workbench *wb);
/* Asks the generation to stop, or interrupts the script. Returns false when nothing runs. */
bool workbench_stop(workbench *wb);
/* Drains the session's and the script's events. Returns true when something changed. */
bool workbench_pump(workbench *wb);
/* Replaces the session with one on other models (NULL keeps that part). The old session stays
 * when the new one fails to open. */
bool workbench_set_models(workbench *wb, const char *model_dir, const char *draft_dir);
/* Forgets the conversation (transcript and the session's history); refused while a job runs. */
bool workbench_clear(workbench *wb);
/* Why a new job (or a change to the models) cannot start now, or NULL. */
const char *workbench_refusal(workbench *wb);

/* LoRA adapters on the session's target (workbench_lora.c). The selected one is the last loaded:
 * /lora scale, on, off and unload act on it. Each returns false after saying why. */
ss_status workbench_lora_open(workbench *wb, ss_error *err); /* the --lora adapters, at open */
bool workbench_lora_load(workbench *wb, const char *dir, float scale);
bool workbench_lora_scale(workbench *wb, float scale);
bool workbench_lora_enable(workbench *wb, bool on);
bool workbench_lora_unload(workbench *wb);
void workbench_lora_list(workbench *wb);
bool workbench_lora_merge(workbench *wb, bool on); /* fold all of them into the weights, or unfold */
ss_lora *workbench_lora_selected(workbench *wb); /* NULL when none is loaded */

/* "demo/target + model draft on cpu": for the status line. */
void workbench_describe(workbench *wb, char *buf, size_t size);

#endif
