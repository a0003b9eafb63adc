/* specscope.h — the engine's one public header.
 *
 * Everything outside engine/ (the CLI, the TUI, the Lua module, tests) talks to the engine through
 * this file. Every call that can fail returns an ss_status and fills an ss_error whose message names
 * the culprit (file, tensor, field); on failure nothing half-built is left behind.
 */
#ifndef SPECSCOPE_H
#define SPECSCOPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- errors */

typedef enum {
    SS_OK = 0,
    SS_EIO,          /* a file is missing, unreadable or truncated */
    SS_EFORMAT,      /* a file is malformed or lies about its contents */
    SS_EUNSUPPORTED, /* valid input we do not handle (architecture, tokenizer model, dtype) */
    SS_ENOMEM,       /* out of host or device memory */
    SS_EARG,         /* a bad argument from the caller */
    SS_EDEVICE,      /* a GPU runtime error other than out of memory */
    SS_ESTOPPED,     /* the caller asked to stop */
} ss_status;

typedef struct {
    ss_status status;
    char msg[512]; /* one line, no trailing newline */
} ss_error;

/* Formats msg into err (when err is non-NULL) and returns status. */
ss_status ss_fail(ss_error *err, ss_status status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Prefixes an existing message: "context: old message". */
ss_status ss_fail_prefix(ss_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
const char *ss_status_name(ss_status status);

/* ---------------------------------------------------------------- dtypes, config */

typedef enum { SS_F32 = 0, SS_F16, SS_BF16 } ss_dtype;
size_t ss_dtype_size(ss_dtype dtype);
const char *ss_dtype_name(ss_dtype dtype);
float ss_bf16_to_f32(uint16_t h);
float ss_f16_to_f32(uint16_t h);
uint16_t ss_f32_to_bf16(float f); /* round to nearest even */
float ss_element_f32(ss_dtype dtype, const void *p); /* one stored element (any alignment) as a float */

typedef enum { SS_ARCH_LLAMA = 0, SS_ARCH_MISTRAL, SS_ARCH_QWEN2, SS_ARCH_QWEN3 } ss_arch;
typedef enum { SS_ROPE_DEFAULT = 0, SS_ROPE_LLAMA3, SS_ROPE_LINEAR } ss_rope_type;

#define SS_MAX_EOS 8

/* Model geometry from a Hugging Face config.json. */
typedef struct {
    ss_arch arch;
    char arch_name[32]; /* "llama", "mistral", "qwen2", "qwen3" (model_type) */
    int vocab_size;
    int hidden;       /* hidden_size */
    int intermediate; /* intermediate_size */
    int n_layers;
    int n_heads;
    int n_kv_heads;
    int head_dim; /* explicit head_dim or hidden / n_heads */
    int max_position;
    float rms_eps;
    float rope_theta;
    ss_rope_type rope_type;
    float rope_factor; /* llama3 / linear scaling */
    float rope_low_freq_factor, rope_high_freq_factor;
    int rope_original_max_position;
    bool tie_embeddings;
    bool qkv_bias; /* qwen2 */
    bool qk_norm;  /* qwen3 */
    int bos_id;    /* -1 when absent */
    int eos_ids[SS_MAX_EOS];
    int n_eos;
    ss_dtype dtype; /* torch_dtype, informational */
} ss_config;

/* ---------------------------------------------------------------- token lists */

typedef struct {
    int *ids;
    int n, cap;
} ss_ids;

ss_status ss_ids_push(ss_ids *ids, int id, ss_error *err);
void ss_ids_free(ss_ids *ids);

/* ---------------------------------------------------------------- tokenizer */

typedef struct ss_tokenizer ss_tokenizer;

/* Reads DIR/tokenizer.json (and DIR/tokenizer_config.json when present). */
ss_status ss_tokenizer_load(const char *dir, ss_tokenizer **out, ss_error *err);
void ss_tokenizer_free(ss_tokenizer *tok);
/* Appends ids to out. add_special: BOS etc. per post_processor / add_bos_token. */
ss_status ss_tokenizer_encode(const ss_tokenizer *tok, const char *text, size_t len, bool add_special,
                              ss_ids *out, ss_error *err);
/* Whole decode into a malloc'd NUL-terminated string. skip_special drops special tokens. */
ss_status ss_tokenizer_decode(const ss_tokenizer *tok, const int *ids, int n, bool skip_special,
                              char **out, ss_error *err);
int ss_tokenizer_vocab_size(const ss_tokenizer *tok); /* including added tokens */
const char *ss_tokenizer_piece(const ss_tokenizer *tok, int id); /* raw vocabulary string or NULL */
int ss_tokenizer_token_id(const ss_tokenizer *tok, const char *piece); /* -1 when absent */
bool ss_tokenizer_is_special(const ss_tokenizer *tok, int id);
int ss_tokenizer_bos(const ss_tokenizer *tok); /* -1 when none */
int ss_tokenizer_eos(const ss_tokenizer *tok); /* -1 when none */

/* Streaming decode: feed ids one at a time, get only complete UTF-8 text. */
typedef struct ss_stream_decoder ss_stream_decoder;
ss_stream_decoder *ss_stream_decoder_new(const ss_tokenizer *tok, bool skip_special);
/* Returns a NUL-terminated string valid until the next call (possibly ""). */
const char *ss_stream_decoder_push(ss_stream_decoder *dec, int id);
const char *ss_stream_decoder_flush(ss_stream_decoder *dec); /* whatever is pending, bytes repaired */
void ss_stream_decoder_free(ss_stream_decoder *dec);

/* ---------------------------------------------------------------- chat formatting */

typedef struct {
    const char *role; /* "system", "user", "assistant" */
    const char *content;
} ss_message;

typedef struct ss_chat_format ss_chat_format;
/* Picks a built-in format from the tokenizer's chat_template and special tokens. */
ss_status ss_chat_format_detect(const ss_tokenizer *tok, ss_chat_format **out, ss_error *err);
const char *ss_chat_format_name(const ss_chat_format *fmt); /* "llama3", "chatml", "llama2", ... */
/* Renders the conversation, ending with the opening of the assistant's turn; malloc'd. */
ss_status ss_chat_format_render(const ss_chat_format *fmt, const ss_message *msgs, int n, char **out,
                                ss_error *err);
/* End-of-turn ids: generation stops at any of these (EOS included). */
int ss_chat_format_stop_ids(const ss_chat_format *fmt, int *ids, int max);
void ss_chat_format_free(ss_chat_format *fmt);

/* ---------------------------------------------------------------- models */

typedef enum { SS_BACKEND_AUTO = 0, SS_BACKEND_CPU, SS_BACKEND_CUDA } ss_backend_kind;

typedef struct ss_model ss_model;

#define SS_MAX_TP 8 /* the most tensor-parallel ranks a model is split over (one host's GPUs) */

typedef struct {
    const char *dir;         /* HF checkpoint folder: config.json + *.safetensors */
    ss_backend_kind backend; /* AUTO: CUDA when a device is present, else CPU (one-line notice) */
    int max_context;         /* KV cache length; 0: min(max_position, 4096) */
    bool quiet;              /* no notice on stderr about the backend choice */
    int tp;                  /* tensor-parallel ranks, 0 or 1: none (CPU ranks, or CUDA devices 0..tp-1) */
} ss_model_opts;

ss_status ss_model_load(const ss_model_opts *opts, ss_model **out, ss_error *err);
void ss_model_free(ss_model *m);
const ss_config *ss_model_config(const ss_model *m);
const char *ss_model_backend_name(const ss_model *m); /* "cpu" or "cuda" */
/* The CUDA devices the model's ranks run on: tp, or fewer under SPECSCOPE_TP_DEVICES; 1 on the CPU. */
int ss_model_devices(const ss_model *m);
/* What --backend auto chose and why ("" for an explicit choice); printed by the load unless quiet. */
const char *ss_model_backend_notice(const ss_model *m);
int ss_model_max_context(const ss_model *m);
size_t ss_model_weight_bytes(const ss_model *m); /* bytes read per decoded token, weights only */
size_t ss_model_kv_bytes(const ss_model *m, int context); /* K and V bytes one decode step reads */
double ss_model_prefill_flops(const ss_model *m, int n); /* matrix + attention FLOPs of an n-token prefill */

/* Runs the forward over n tokens at explicit positions, writing their K/V at those positions.
 * logits: NULL, or [n, vocab] floats (host) for every position, or with last_only [vocab]. */
ss_status ss_model_forward(ss_model *m, const int *tokens, const int *positions, int n, float *logits,
                           bool last_only, ss_error *err);
/* The same forward, handing back the argmax id (ss_argmax's rule: lowest index on ties) of every row
 * ([n]) or, with last_only, of the last ([1]) instead of logits: on CUDA only the ids are copied. */
ss_status ss_model_forward_ids(ss_model *m, const int *tokens, const int *positions, int n, int *ids,
                               bool last_only, ss_error *err);
/* Copies one layer's K and V for positions [0, len) into host floats [len, n_kv_heads*head_dim]. */
ss_status ss_model_read_kv(ss_model *m, int layer, int len, float *k, float *v, ss_error *err);

/* ---------------------------------------------------------------- LoRA adapters */

/* A PEFT LoRA adapter bound to a model: each projection it targets (q/k/v/o, gate/up/down of a
 * layer) computes W0 x + scale * s * B (A x), A [r, in], B [out, r], s = lora_alpha / r (lora_alpha /
 * sqrt(r) with use_rslora), scale the caller's multiplier (1: the adapter as trained). Several may be
 * loaded; each has its own scale and can be switched off. The model owns its adapters
 * (ss_model_free frees them). engine/lora.c; docs/lora.md. */
typedef struct ss_lora ss_lora;

/* One targeted projection's norms (Frobenius), at the adapter's current scale: a = |A|, b = |B|,
 * ba = |scale s B A|, rel = ba / |W0|; stable = |A| / ((numel(A) / numel(B)) |B|), Stable-LoRA's
 * test (DESIGN.md): it shrinks A while this is >= 1 and stops for good once it falls below
 * (INFINITY while B is zero, as PEFT initialises it). */
typedef struct {
    int layer;
    const char *module; /* "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj" */
    double a, b, ba, rel, stable;
} ss_lora_norm;

/* Reads dir/adapter_config.json and dir/adapter_model.safetensors and binds the adapter to m at
 * scale (enabled). Every tensor is checked against the model's geometry; nothing is bound on error. */
ss_status ss_lora_load(ss_model *m, const char *dir, float scale, ss_lora **out, ss_error *err);
void ss_lora_unload(ss_lora *a); /* unbinds and frees; a may be NULL */
int ss_model_lora_count(const ss_model *m);
ss_lora *ss_model_lora(const ss_model *m, int i); /* in load order; NULL outside [0, count) */
const char *ss_lora_dir(const ss_lora *a);
/* A name to find it by (ss_model_lora_find): the folder's last component until renamed. */
const char *ss_lora_name(const ss_lora *a);
void ss_lora_set_name(ss_lora *a, const char *name); /* at most 63 bytes are kept */
ss_lora *ss_model_lora_find(const ss_model *m, const char *name); /* NULL when none has that name */
int ss_lora_rank(const ss_lora *a);
double ss_lora_scaling(const ss_lora *a); /* s, from the adapter's config */
float ss_lora_scale(const ss_lora *a);
void ss_lora_set_scale(ss_lora *a, float scale);
bool ss_lora_enabled(const ss_lora *a);
void ss_lora_set_enabled(ss_lora *a, bool on);
/* Merged mode: on, every projection the enabled adapters target holds W0 + sum of scale s B A in its
 * own weight (one upload, then no cost per token: no extra launches or reads); off, the unmerged
 * updates again. While merged, a load, unload, scale or on/off change refolds the weights before the
 * next forward (it reads the targeted W0 from the checkpoint and takes a moment on a large model).
 * On CUDA the folded weights are bf16 like every weight. Errors of a later refold show at that
 * forward. */
ss_status ss_model_lora_merge(ss_model *m, bool on, ss_error *err);
bool ss_model_lora_merged(const ss_model *m);
/* The targeted projections' norms in layer, then module order (*n of them; valid until the adapter
 * is unloaded or its scale changes). The first call reads each targeted W0 from the checkpoint. */
ss_status ss_lora_norms(ss_lora *a, const ss_lora_norm **rows, int *n, ss_error *err);

/* ---------------------------------------------------------------- sampling */

typedef struct {
    float temperature; /* 0: greedy */
    int top_k;         /* 0: off */
    float top_p;       /* 1: off */
    float min_p;       /* 0: off */
    float repeat_penalty; /* 1: off; applied over the ids in the context */
    uint64_t seed;
} ss_sampling;

void ss_sampling_default(ss_sampling *s);

/* ---------------------------------------------------------------- sessions and generation */

#define SS_MAX_K 16

typedef enum { SS_EASYSPEC_ATTN = 0, SS_EASYSPEC_LAYER } ss_easyspec_mode;

typedef struct {
    ss_sampling sampling;
    int max_tokens;        /* default 128 */
    int k;                 /* draft tokens per round, 1..SS_MAX_K (default 4); 0: plain decoding */
    float adaptive;        /* 0: fixed k; else stop drafting when the draft's top prob < adaptive */
    int easyspec;          /* group size G; 0 or 1: off */
    ss_easyspec_mode easyspec_mode;
    char easyspec_groups[128]; /* explicit groups "0-1,2-3" (overrides easyspec when set) */
    bool chat;             /* wrap in the chat format; the session keeps the history */
    bool stop_at_eos;      /* default true */
} ss_params;

void ss_params_default(ss_params *p);

/* Statistics of one generate call, the "stats" object of `generate --json`. */
typedef struct {
    int prompt_tokens;
    int generated;
    int steps; /* forward passes of the target after prefill */
    double tokens_per_s;
    bool has_draft;
    int k;
    long proposed, accepted;
    double mean_accepted_length; /* tokens emitted per target step */
    long pos_proposed[SS_MAX_K], pos_accepted[SS_MAX_K];
    double ms_prefill, ms_draft, ms_verify, ms_calibrate, ms_total;
} ss_stats;

/* One draft-and-verify round (or one plain decode step). */
typedef struct {
    int proposed, accepted, emitted;
    unsigned char outcome[SS_MAX_K]; /* 1 accepted, 0 rejected, per draft position */
    double ms_draft, ms_verify, ms_calibrate;
} ss_step;

typedef struct {
    void (*on_token)(void *ud, const char *piece, int id, char source); /* source 'd' or 't' */
    void (*on_step)(void *ud, const ss_step *step);
    void *ud;
    volatile int *stop; /* nonzero: finish the current step and return SS_ESTOPPED */
} ss_callbacks;

typedef struct {
    char *text;
    ss_ids tokens;
    char *sources; /* one 'd' / 't' per generated token */
    ss_stats stats;
} ss_result;

void ss_result_free(ss_result *r);

typedef struct ss_session ss_session;

typedef struct {
    const char *model_dir;
    const char *draft_dir; /* NULL: none; "ngram": prompt lookup; else a checkpoint folder */
    ss_backend_kind backend;
    int max_context;
    bool quiet;
    int tp; /* the target's tensor-parallel ranks (0 or 1: none); the draft stays on one device */
} ss_session_opts;

ss_status ss_session_open(const ss_session_opts *opts, ss_session **out, ss_error *err);
void ss_session_close(ss_session *s);
/* Text prompt: tokenized (and chat-formatted with history when params->chat). */
ss_status ss_session_generate(ss_session *s, const char *prompt, const ss_params *params,
                              const ss_callbacks *cb, ss_result *out, ss_error *err);
/* Raw ids, no BOS added, no chat formatting, history ignored. With params->chat the ids are taken
 * as an already formatted chat prompt: generation also stops at the format's end-of-turn ids. */
ss_status ss_session_generate_ids(ss_session *s, const int *ids, int n, const ss_params *params,
                                  const ss_callbacks *cb, ss_result *out, ss_error *err);
void ss_session_reset(ss_session *s); /* forget the history */
ss_model *ss_session_target(ss_session *s);
ss_model *ss_session_draft(ss_session *s);    /* NULL without a draft model */
const char *ss_session_draft_kind(const ss_session *s); /* "none", "model", "ngram" */
ss_tokenizer *ss_session_tokenizer(ss_session *s); /* NULL when the folder has no tokenizer.json */

/* Worker thread and event queue, for the UI: one generation at a time runs in the background. */
typedef enum { SS_EV_TOKEN = 1, SS_EV_STEP, SS_EV_DONE } ss_event_kind;

typedef struct {
    ss_event_kind kind;
    int id;          /* TOKEN */
    char source;     /* TOKEN: 'd' or 't' */
    char piece[64];  /* TOKEN: complete UTF-8 text, possibly empty; a longer piece comes as
                        several events, the later ones with continued = true */
    bool continued;  /* TOKEN: more text of the previous token, not a new token */
    ss_step step;    /* STEP */
    ss_stats stats;  /* DONE */
    ss_status status; /* DONE */
    char msg[512];   /* DONE: error message when status != SS_OK */
} ss_event;

ss_status ss_session_start(ss_session *s, const char *prompt, const ss_params *params, ss_error *err);
bool ss_session_busy(ss_session *s);
bool ss_session_poll(ss_session *s, ss_event *ev); /* false when the queue is empty */
void ss_session_stop(ss_session *s);               /* ask the worker to stop; returns at once */
void ss_session_join(ss_session *s);               /* wait for the worker to end */

#ifdef __cplusplus
}
#endif
#endif
