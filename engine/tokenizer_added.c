/* tokenizer_added.c — added tokens (tokenizer.json "added_tokens"): special and plain, matched in the
 * text before the model sees it.
 *
 * Two matchers, as in Hugging Face's AddedVocabulary: tokens with normalized = false are found in
 * the raw text, the others in the normalized text (by their normalized content). Each matcher is a
 * byte trie; the scan takes the leftmost match and, there, the longest (Aho-Corasick's
 * leftmost-longest). single_word discards a match glued to a word character on either side; lstrip
 * and rstrip swallow the whitespace before / after a match. */
#include <stdlib.h>
#include <string.h>

#include "tokenizer_internal.h"

/* ---------------------------------------------------------------- parsing */

static ss_status parse_token(json_t *t, const char *file, const char *path, tk_added *a, ss_error *err) {
    if (!json_is_object(t)) return tk_bad(err, SS_EFORMAT, file, path, "expected an object");
    long id;
    const char *content;
    size_t len;
    if (!json_object_get(t, "id")) return tk_bad(err, SS_EFORMAT, file, path, "missing id");
    if (tk_get_int(t, "id", file, path, 0, (1 << 30) - 1, 0, &id, err) ||
        tk_get_string(t, "content", file, path, true, &content, &len, err) ||
        tk_get_bool(t, "special", file, path, false, &a->special, err) ||
        tk_get_bool(t, "normalized", file, path, !a->special, &a->normalized, err) ||
        tk_get_bool(t, "lstrip", file, path, false, &a->lstrip, err) ||
        tk_get_bool(t, "rstrip", file, path, false, &a->rstrip, err) ||
        tk_get_bool(t, "single_word", file, path, false, &a->single_word, err))
        return err->status;
    if (len == 0) {
        char p[TK_PATH_MAX];
        tk_path(p, sizeof p, path, "content");
        return tk_bad(err, SS_EFORMAT, file, p, "an added token cannot be empty");
    }
    a->id = (int)id;
    a->content = malloc(len + 1);
    if (!a->content) return tk_oom(err);
    memcpy(a->content, content, len + 1);
    a->len = len;
    return SS_OK;
}

ss_status tk_added_parse(json_t *arr, const char *file, tk_added_vocab *av, ss_error *err) {
    *av = (tk_added_vocab){0};
    memset(av->raw.root_child, 0xFF, sizeof av->raw.root_child);
    memset(av->normalized.root_child, 0xFF, sizeof av->normalized.root_child);
    if (!arr || json_is_null(arr)) return SS_OK;
    if (!json_is_array(arr)) return tk_bad(err, SS_EFORMAT, file, "added_tokens", "expected an array");
    size_t n = json_array_size(arr);
    av->v = calloc(n ? n : 1, sizeof *av->v);
    if (!av->v) return tk_oom(err);
    for (size_t i = 0; i < n; i++) {
        char p[TK_PATH_MAX];
        tk_path_index(p, sizeof p, "added_tokens", i);
        ss_status st = parse_token(json_array_get(arr, i), file, p, &av->v[i], err);
        if (st) {
            tk_added_free(av);
            return st;
        }
        av->n++;
    }
    return SS_OK;
}

void tk_added_free(tk_added_vocab *av) {
    for (int i = 0; i < av->n; i++) {
        if (av->v[i].pattern != av->v[i].content) free(av->v[i].pattern);
        free(av->v[i].content);
    }
    free(av->v);
    free(av->raw.nodes);
    free(av->normalized.nodes);
    pcre2_code_free(av->word_char);
    *av = (tk_added_vocab){0};
}

/* ---------------------------------------------------------------- the tries */

static int32_t new_node(tk_trie *t, unsigned char byte) {
    if (t->n == t->cap) {
        int cap = t->cap ? t->cap * 2 : 256;
        tk_trie_node *v = realloc(t->nodes, (size_t)cap * sizeof *v);
        if (!v) return -1;
        t->nodes = v;
        t->cap = cap;
    }
    t->nodes[t->n] = (tk_trie_node){-1, -1, -1, byte};
    return t->n++;
}

static int32_t child(const tk_trie *t, int32_t node, unsigned char byte) {
    if (node < 0) return t->root_child[byte];
    for (int32_t c = t->nodes[node].first_child; c >= 0; c = t->nodes[c].next_sibling)
        if (t->nodes[c].byte == byte) return c;
    return -1;
}

/* The first token given a pattern keeps it (Aho-Corasick prefers the earlier of equal matches). */
static bool trie_insert(tk_trie *t, const char *s, size_t n, int token) {
    int32_t node = -1;
    for (size_t i = 0; i < n; i++) {
        unsigned char b = (unsigned char)s[i];
        int32_t c = child(t, node, b);
        if (c < 0) {
            if ((c = new_node(t, b)) < 0) return false;
            if (node < 0) {
                t->root_child[b] = c;
            } else {
                t->nodes[c].next_sibling = t->nodes[node].first_child;
                t->nodes[node].first_child = c;
            }
        }
        node = c;
    }
    if (t->nodes[node].token < 0) t->nodes[node].token = token;
    return true;
}

ss_status tk_added_build(tk_added_vocab *av, const tk_normalizer *nz, const char *file, ss_error *err) {
    pcre2_match_data *md = pcre2_match_data_create(1, NULL);
    tk_buf norm = {0};
    ss_status st = md ? SS_OK : tk_oom(err);
    bool single_word = false;
    for (int i = 0; !st && i < av->n; i++) {
        tk_added *a = &av->v[i];
        single_word = single_word || a->single_word;
        a->pattern = a->content;
        a->pattern_len = a->len;
        if (a->normalized && nz->n > 0) {
            if ((st = tk_normalize(nz, a->content, a->len, &norm, md, err))) break;
            if (norm.n == 0) continue; /* normalized away: it can never match */
            a->pattern = malloc(norm.n + 1);
            if (!a->pattern) {
                a->pattern = a->content;
                st = tk_oom(err);
                break;
            }
            memcpy(a->pattern, norm.p, norm.n + 1);
            a->pattern_len = norm.n;
        }
        if (!trie_insert(a->normalized ? &av->normalized : &av->raw, a->pattern, a->pattern_len, i)) st = tk_oom(err);
    }
    tk_buf_free(&norm);
    pcre2_match_data_free(md);
    if (!st && single_word) {
        /* Rust's char::is_alphanumeric() or '_'. */
        static const char WORD[] = "[\\p{Alphabetic}\\p{N}_]";
        av->word_char = tk_regex_compile(WORD, sizeof WORD - 1, false, file, "added_tokens", err);
        if (!av->word_char) st = err->status;
    }
    return st;
}

void tk_added_resolve_ids(tk_added_vocab *av, const tk_bpe *bpe) {
    for (int i = 0; i < av->n; i++) {
        int id = tk_bpe_lookup(bpe, av->v[i].content, av->v[i].len);
        if (id >= 0) av->v[i].id = id;
    }
}

int tk_added_find(const tk_added_vocab *av, const char *s, size_t n) {
    for (int i = 0; i < av->n; i++)
        if (av->v[i].len == n && memcmp(av->v[i].content, s, n) == 0) return i;
    return -1;
}

/* ---------------------------------------------------------------- matching */

/* Longest pattern of t starting at s[0], or -1. */
static int longest_at(const tk_trie *t, const char *s, size_t n, size_t *len) {
    int best = -1;
    int32_t node = -1;
    for (size_t i = 0; i < n; i++) {
        node = child(t, node, (unsigned char)s[i]);
        if (node < 0) break;
        if (t->nodes[node].token >= 0) {
            best = t->nodes[node].token;
            *len = i + 1;
        }
    }
    return best;
}

static bool word_char_at(const tk_added_vocab *av, const char *s, size_t n, pcre2_match_data *md) {
    return pcre2_match(av->word_char, (PCRE2_SPTR)s, n, 0, PCRE2_ANCHORED | PCRE2_NO_UTF_CHECK, md, NULL) >= 0;
}

/* Start of the character that ends s[0..end). */
static size_t char_before(const char *s, size_t end) {
    size_t i = end - 1;
    while (i > 0 && ((unsigned char)s[i] & 0xC0) == 0x80) i--;
    return i;
}

static bool single_word_ok(const tk_added_vocab *av, const char *s, size_t n, size_t start, size_t end,
                           pcre2_match_data *md) {
    if (start > 0) {
        size_t c = char_before(s, start);
        if (word_char_at(av, s + c, start - c, md)) return false;
    }
    return end >= n || !word_char_at(av, s + end, n - end, md);
}

static size_t whitespace_before(const char *s, size_t start, size_t floor) {
    uint32_t cp;
    while (start > floor) {
        size_t c = char_before(s, start);
        if (tk_utf8_next(s + c, start - c, &cp) <= 0 || !tk_is_whitespace(cp)) break;
        start = c;
    }
    return start;
}

static size_t whitespace_after(const char *s, size_t n, size_t end) {
    uint32_t cp;
    int k;
    while (end < n && (k = tk_utf8_next(s + end, n - end, &cp)) > 0 && tk_is_whitespace(cp)) end += (size_t)k;
    return end;
}

ss_status tk_added_split(const tk_added_vocab *av, bool normalized, const char *s, size_t n, bool at_start,
                         pcre2_match_data *md, tk_segment_fn seg, void *ud, ss_error *err) {
    const tk_trie *t = normalized ? &av->normalized : &av->raw;
    size_t done = 0; /* text before this is handed out */
    for (size_t pos = 0; t->n > 0 && pos < n;) {
        size_t start = pos, len = 0;
        int tok = -1;
        for (; start < n; start++)
            if (t->root_child[(unsigned char)s[start]] >= 0 && (tok = longest_at(t, s + start, n - start, &len)) >= 0) break;
        if (tok < 0) break;
        const tk_added *a = &av->v[tok];
        size_t end = start + len;
        pos = end; /* the scan resumes after the match, kept or not */
        if (a->single_word && !single_word_ok(av, s, n, start, end, md)) continue;
        if (a->lstrip) start = whitespace_before(s, start, done);
        if (a->rstrip) end = whitespace_after(s, n, end);
        if (start > done && seg(ud, s + done, start - done, -1, at_start && done == 0, err)) return err->status;
        if (seg(ud, s + start, end - start, a->id, false, err)) return err->status;
        done = pos = end;
    }
    if (done < n || n == 0) return seg(ud, s + done, n - done, -1, at_start && done == 0, err);
    return SS_OK;
}
