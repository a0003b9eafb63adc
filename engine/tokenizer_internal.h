/* tokenizer_internal.h — the parts of the tokenizer (tokenizer*.c) and what chat.c reads from it.
 *
 * The pipeline follows Hugging Face `tokenizers` (the reference for tokenizer.json semantics):
 *   text -> split on added tokens (raw) -> normalizer -> split on added tokens (normalized)
 *        -> pre-tokenizer -> BPE model per pre-token -> post-processor (BOS/EOS when asked)
 *   ids  -> tokens -> decoder chain -> text
 * Offsets are not tracked: only ids come out, so each stage rewrites plain byte strings.
 */
#ifndef SS_TOKENIZER_INTERNAL_H
#define SS_TOKENIZER_INTERNAL_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <jansson.h>
#include <pcre2.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "specscope.h"

/* ---------------------------------------------------------------- byte buffers and string lists (tokenizer_util.c) */

typedef struct {
    char *p;
    size_t n, cap;
} tk_buf;

bool tk_buf_reserve(tk_buf *b, size_t extra); /* false: out of memory */
bool tk_buf_put(tk_buf *b, const void *s, size_t n);
void tk_buf_free(tk_buf *b);

/* Strings stored back to back. at_start: the string begins at offset 0 of the original input (the
 * Metaspace pre-tokenizer's prepend_scheme "first" looks at it). */
typedef struct {
    size_t off, len;
    bool at_start;
} tk_span;

typedef struct {
    tk_buf text;
    tk_span *v;
    int n, cap;
} tk_list;

bool tk_list_add(tk_list *l, const char *s, size_t n, bool at_start); /* s must not point into l */
void tk_list_clear(tk_list *l);
void tk_list_free(tk_list *l);
static inline const char *tk_list_str(const tk_list *l, int i) { return l->text.p + l->v[i].off; }

ss_status tk_oom(ss_error *err); /* the one out-of-memory message of the tokenizer */

/* ---------------------------------------------------------------- JSON fields (tokenizer_util.c) */

/* Errors read "FILE: PATH: message", PATH the field (e.g. "model.merges[17]"). */
#define TK_PATH_MAX 160
ss_status tk_bad(ss_error *err, ss_status status, const char *file, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
void tk_path(char *out, size_t size, const char *path, const char *key); /* "path.key" */
void tk_path_index(char *out, size_t size, const char *path, size_t i); /* "path[i]" */
/* Optional members: missing or null gives the default (strings: NULL). */
ss_status tk_get_string(json_t *obj, const char *key, const char *file, const char *path, bool required,
                        const char **s, size_t *len, ss_error *err);
ss_status tk_get_bool(json_t *obj, const char *key, const char *file, const char *path, bool dflt, bool *out,
                      ss_error *err);
ss_status tk_get_int(json_t *obj, const char *key, const char *file, const char *path, long lo, long hi, long dflt,
                     long *out, ss_error *err);
/* obj must be an object with a string "type". */
ss_status tk_get_type(json_t *obj, const char *file, const char *path, const char **type, ss_error *err);

/* ---------------------------------------------------------------- UTF-8 and Unicode (tokenizer_unicode.c) */

/* Length of the valid UTF-8 sequence at s (1..4), or 0 when s[0..n) does not start with one. */
int tk_utf8_next(const char *s, size_t n, uint32_t *cp);
size_t tk_utf8_invalid_at(const char *s, size_t n); /* offset of the first invalid byte, or n */
bool tk_utf8_put(tk_buf *b, uint32_t cp);
/* Appends s with invalid sequences replaced by U+FFFD the way Rust's String::from_utf8_lossy does
 * (one U+FFFD per maximal invalid subpart). With final false a trailing sequence that is only
 * incomplete is copied raw and its length returned (0 otherwise). */
bool tk_utf8_lossy(tk_buf *out, const char *s, size_t n, bool final, size_t *pending);
bool tk_is_whitespace(uint32_t cp); /* Unicode White_Space, as Rust's char::is_whitespace */
/* NFC. *changed false: out untouched (s already NFC). */
bool tk_nfc(const char *s, size_t n, tk_buf *out, bool *changed);

/* ---------------------------------------------------------------- regular expressions (PCRE2, tokenizer_util.c) */

/* A compiled pattern from the file: PCRE2_UTF | PCRE2_UCP, JIT when available. literal: the
 * pattern is a plain string ({"String": ...}). */
pcre2_code *tk_regex_compile(const char *pat, size_t len, bool literal, const char *file, const char *path,
                             ss_error *err);
/* {"String": s} or {"Regex": r}, as Split, Replace (normalizer and decoder) give their pattern. */
pcre2_code *tk_parse_pattern(json_t *pattern, const char *file, const char *path, ss_error *err);
/* Next match at or after *pos with Oniguruma's find_iter rules (an empty match right after the
 * previous match is skipped). Returns 1 match, 0 no more, -1 error (err filled). */
typedef struct {
    size_t pos;
    size_t last_end;
    bool has_last;
} tk_regex_iter;
int tk_regex_next(const pcre2_code *re, const char *s, size_t n, tk_regex_iter *it, pcre2_match_data *md,
                  size_t *start, size_t *end, ss_error *err);

/* ---------------------------------------------------------------- normalizers (tokenizer_normalize.c) */

typedef enum { TK_NORM_PREPEND, TK_NORM_APPEND, TK_NORM_REPLACE, TK_NORM_NFC, TK_NORM_STRIP } tk_norm_kind;

typedef struct {
    tk_norm_kind kind;
    char *text; /* PREPEND / APPEND: the string; REPLACE: the content */
    size_t text_len;
    pcre2_code *re; /* REPLACE */
    bool left, right; /* STRIP */
} tk_norm_step;

typedef struct {
    tk_norm_step *steps; /* nested Sequences flattened */
    int n;
} tk_normalizer;

ss_status tk_normalizer_parse(json_t *j, const char *file, tk_normalizer *nz, ss_error *err);
/* Normalizes s into out (cleared first). */
ss_status tk_normalize(const tk_normalizer *nz, const char *s, size_t n, tk_buf *out, pcre2_match_data *md,
                       ss_error *err);
void tk_normalizer_free(tk_normalizer *nz);

/* ---------------------------------------------------------------- pre-tokenizers (tokenizer_pretok.c) */

typedef enum {
    TK_SPLIT_REMOVED,
    TK_SPLIT_ISOLATED,
    TK_SPLIT_MERGED_WITH_PREVIOUS,
    TK_SPLIT_MERGED_WITH_NEXT,
    TK_SPLIT_CONTIGUOUS
} tk_split_behavior;

typedef enum { TK_PRE_SPLIT, TK_PRE_BYTELEVEL, TK_PRE_METASPACE } tk_pre_kind;
typedef enum { TK_PREPEND_ALWAYS, TK_PREPEND_FIRST, TK_PREPEND_NEVER } tk_prepend_scheme;

typedef struct {
    tk_pre_kind kind;
    pcre2_code *re; /* SPLIT; BYTELEVEL with use_regex: the GPT-2 pattern */
    tk_split_behavior behavior;
    bool invert;
    bool add_prefix_space; /* BYTELEVEL */
    char replacement[8];   /* METASPACE: one character, UTF-8 */
    tk_prepend_scheme prepend;
    bool split;
} tk_pre_step;

typedef struct {
    tk_pre_step *steps;
    int n;
} tk_pretokenizer;

ss_status tk_pretokenizer_parse(json_t *j, const char *file, tk_pretokenizer *pt, ss_error *err);
/* Splits and rewrites the strings of *io; tmp is scratch. */
ss_status tk_pretokenize(const tk_pretokenizer *pt, tk_list *io, tk_list *tmp, pcre2_match_data *md, ss_error *err);
void tk_pretokenizer_free(tk_pretokenizer *pt);
/* GPT-2's byte <-> character table: writes the UTF-8 (1 or 2 bytes) of the character standing for b. */
int tk_byte_char(unsigned char b, char out[2]);
/* The byte a byte-level character stands for, or -1. */
int tk_char_byte(uint32_t cp);

/* ---------------------------------------------------------------- the BPE model (tokenizer_bpe.c) */

typedef struct {
    int32_t *slots; /* index into ent, -1 empty */
    uint32_t mask;
} tk_index;

typedef struct {
    uint32_t off, len; /* in arena */
    int32_t id;
} tk_vocab_entry;

typedef struct {
    uint64_t key; /* (left id << 32 | right id) + 1, 0 empty */
    uint32_t rank;
    int32_t merged;
} tk_merge_slot; /* one cache line holds four: a probe costs one miss */

typedef struct {
    tk_merge_slot *slots;
    uint32_t mask;
} tk_merge_map;

typedef struct {
    tk_buf arena;
    tk_vocab_entry *ent;
    int n_ent;
    tk_index index;
    int32_t *entry_of_id; /* id -> ent index (first string given that id) or -1 */
    int n_ids;            /* largest id + 1 */
    tk_merge_map merges;
    int unk_id; /* -1: none */
    bool fuse_unk, byte_fallback, ignore_merges;
    char *subword_prefix, *word_suffix; /* continuing_subword_prefix, end_of_word_suffix (NULL: none) */
    int byte_ids[256]; /* <0xNN> for byte_fallback, -1 when absent */
} tk_bpe;

typedef struct { /* scratch reused from word to word within one encode call */
    struct tk_symbol *sym;
    struct tk_merge_cand *heap;
    int sym_cap, heap_cap, heap_n;
    tk_buf piece;
    struct tk_word_cache *cache; /* short words merged before, with their ids */
    int words;                   /* words seen so far */
} tk_bpe_work;

ss_status tk_bpe_parse(json_t *model, const char *file, tk_bpe *bpe, ss_error *err);
int tk_bpe_lookup(const tk_bpe *bpe, const char *s, size_t n); /* -1 when absent */
const char *tk_bpe_piece(const tk_bpe *bpe, int id, size_t *len); /* NULL when id has no string */
ss_status tk_bpe_encode_word(const tk_bpe *bpe, const char *w, size_t n, tk_bpe_work *work, ss_ids *out, ss_error *err);
void tk_bpe_work_free(tk_bpe_work *work);
void tk_bpe_free(tk_bpe *bpe);

/* ---------------------------------------------------------------- added tokens (tokenizer_added.c) */

typedef struct {
    int id;
    char *content;
    size_t len;
    char *pattern; /* what is matched: content, normalized when normalized is set */
    size_t pattern_len;
    bool special, lstrip, rstrip, single_word, normalized;
} tk_added;

typedef struct {
    int32_t first_child, next_sibling, token; /* token: index into added, -1 none */
    unsigned char byte;
} tk_trie_node;

typedef struct {
    tk_trie_node *nodes;
    int n, cap;
    int32_t root_child[256];
} tk_trie;

typedef struct {
    tk_added *v;
    int n;
    tk_trie raw, normalized;
    pcre2_code *word_char; /* single_word boundaries, when some token asks for them */
} tk_added_vocab;

ss_status tk_added_parse(json_t *arr, const char *file, tk_added_vocab *av, ss_error *err);
/* Builds the matchers; normalized tokens are matched by their normalized content. */
ss_status tk_added_build(tk_added_vocab *av, const tk_normalizer *nz, const char *file, ss_error *err);
/* Splits s on the added tokens of one set (normalized or raw), leftmost-longest, calling seg for each
 * piece of text (token < 0) and each token (id >= 0). at_start: s begins the original input. */
typedef ss_status (*tk_segment_fn)(void *ud, const char *s, size_t n, int token, bool at_start, ss_error *err);
ss_status tk_added_split(const tk_added_vocab *av, bool normalized, const char *s, size_t n, bool at_start,
                         pcre2_match_data *md, tk_segment_fn seg, void *ud, ss_error *err);
int tk_added_find(const tk_added_vocab *av, const char *s, size_t n); /* index into v, -1 */
/* An added token whose content the model's vocabulary already holds takes that id, whatever the
 * file says (Hugging Face does not add it twice). */
void tk_added_resolve_ids(tk_added_vocab *av, const tk_bpe *bpe);
void tk_added_free(tk_added_vocab *av);

/* ---------------------------------------------------------------- decoders (tokenizer_decode.c) */

typedef enum {
    TK_DEC_BYTELEVEL,
    TK_DEC_REPLACE,
    TK_DEC_BYTEFALLBACK,
    TK_DEC_FUSE,
    TK_DEC_STRIP,
    TK_DEC_METASPACE
} tk_dec_kind;

typedef struct {
    tk_dec_kind kind;
    pcre2_code *re; /* REPLACE */
    char *text;     /* REPLACE: content */
    size_t text_len;
    uint32_t strip_char; /* STRIP */
    int start, stop;     /* STRIP */
    char replacement[8]; /* METASPACE */
    bool prepend;        /* METASPACE: prepend_scheme is not "never" */
} tk_dec_step;

typedef struct {
    tk_dec_step *steps;
    int n;
    bool present; /* false: tokens are joined with spaces */
} tk_decoder;

ss_status tk_decoder_parse(json_t *j, const char *file, tk_decoder *dec, ss_error *err);
void tk_decoder_free(tk_decoder *dec);

/* ---------------------------------------------------------------- the tokenizer */

struct ss_tokenizer {
    char *file; /* DIR/tokenizer.json, for messages */
    tk_normalizer normalizer;
    tk_pretokenizer pretokenizer;
    tk_bpe bpe;
    tk_added_vocab added;
    tk_decoder decoder;
    int32_t *added_of_id; /* id -> index into added.v, -1 */
    int vocab_size;       /* largest id + 1, added tokens included */
    int prefix[8], n_prefix; /* post-processing of a single sequence: prefix + ids + suffix */
    int suffix[8], n_suffix;
    int bos_id, eos_id;
    char *chat_template; /* tokenizer_config.json's chat_template (or chat_template.jinja), or NULL */
};

/* Decodes ids into raw text. final false (streaming): a trailing byte sequence that may still be
 * completed by later tokens is left raw at the end of out and its length put in *pending. */
ss_status tk_decode(const ss_tokenizer *tok, const int *ids, int n, bool skip_special, bool final, tk_buf *out,
                    size_t *pending, ss_error *err);

/* For chat.c. */
const char *tk_chat_template(const ss_tokenizer *tok);
/* The text of the tokens the post-processor puts before a single sequence (e.g. "<s>"), malloc'd. */
char *tk_special_prefix_text(const ss_tokenizer *tok);

#endif
