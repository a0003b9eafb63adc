/* tokenizer_bpe.c — the BPE model of tokenizer.json: vocabulary, merges, and the merge loop.
 *
 * A word starts as its characters (or, with byte_fallback, the <0xNN> tokens of characters the
 * vocabulary lacks; else unk_token, fused when fuse_unk). Then the pair of neighbours with the lowest
 * merge rank is merged, leftmost first on ties, until no pair is in the merge table. Symbols are a
 * doubly linked list over an array and candidate merges sit in a binary heap keyed by (rank,
 * position); a popped candidate whose symbols have changed since is stale and skipped. That is
 * O(n log n) per word, and the same order of merges as Hugging Face's Word::merge_all. With
 * ignore_merges, a word that is itself in the vocabulary is one token. Within one encode call,
 * short words already merged are looked up in a cache instead of merged again (text repeats its
 * words; the cache lives and dies with the call, so encoding stays free of shared state). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer_internal.h"

struct tk_symbol {
    int32_t id, prev, next;
    bool removed;
};

struct tk_merge_cand {
    uint32_t rank;
    int32_t pos, merged;
};

/* ---------------------------------------------------------------- hashing */

#define CACHE_SLOTS 32768     /* power of two */
#define CACHE_MAX_WORDS 16384 /* at most half full */
#define CACHE_MAX_WORD 256    /* longer words are merged each time */
#define CACHE_AFTER 256       /* short texts do without: the cache starts after this many words */

struct tk_word_cache {
    int32_t slots[CACHE_SLOTS]; /* index into words, -1 empty */
    struct {
        uint32_t key_off, key_len, ids_off, n_ids;
    } words[CACHE_MAX_WORDS];
    int n_words;
    tk_buf keys;
    int32_t *ids;
    size_t n_ids, cap_ids;
};

static uint64_t hash_bytes(const char *s, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 0x100000001b3ull;
    return h ^ (h >> 29);
}

static uint64_t hash_pair(uint64_t key) {
    key ^= key >> 33;
    key *= 0xff51afd7ed558ccdull;
    key ^= key >> 33;
    return key;
}

static uint32_t table_size(size_t n) {
    uint32_t size = 16;
    while (size < 2 * n) size *= 2;
    return size;
}

int tk_bpe_lookup(const tk_bpe *bpe, const char *s, size_t n) {
    if (!bpe->index.slots) return -1;
    uint32_t mask = bpe->index.mask;
    for (uint32_t i = (uint32_t)hash_bytes(s, n) & mask;; i = (i + 1) & mask) {
        int32_t e = bpe->index.slots[i];
        if (e < 0) return -1;
        const tk_vocab_entry *v = &bpe->ent[e];
        if (v->len == n && memcmp(bpe->arena.p + v->off, s, n) == 0) return v->id;
    }
}

const char *tk_bpe_piece(const tk_bpe *bpe, int id, size_t *len) {
    if (id < 0 || id >= bpe->n_ids || bpe->entry_of_id[id] < 0) return NULL;
    const tk_vocab_entry *v = &bpe->ent[bpe->entry_of_id[id]];
    if (len) *len = v->len;
    return bpe->arena.p + v->off;
}

static bool merge_get(const tk_merge_map *m, int32_t a, int32_t b, uint32_t *rank, int32_t *merged) {
    if (!m->slots) return false;
    uint64_t key = ((uint64_t)(uint32_t)a << 32 | (uint32_t)b) + 1;
    for (uint32_t i = (uint32_t)hash_pair(key) & m->mask;; i = (i + 1) & m->mask) {
        const tk_merge_slot *s = &m->slots[i];
        if (s->key == 0) return false;
        if (s->key == key) {
            *rank = s->rank;
            *merged = s->merged;
            return true;
        }
    }
}

/* A later duplicate of a merge replaces the earlier one, as a Rust HashMap built from the list does. */
static void merge_put(tk_merge_map *m, int32_t a, int32_t b, uint32_t rank, int32_t merged) {
    uint64_t key = ((uint64_t)(uint32_t)a << 32 | (uint32_t)b) + 1;
    uint32_t i = (uint32_t)hash_pair(key) & m->mask;
    while (m->slots[i].key != 0 && m->slots[i].key != key) i = (i + 1) & m->mask;
    m->slots[i] = (tk_merge_slot){key, rank, merged};
}

/* ---------------------------------------------------------------- loading */

static ss_status load_vocab(json_t *vocab, const char *file, tk_bpe *bpe, ss_error *err) {
    if (!json_is_object(vocab)) return tk_bad(err, SS_EFORMAT, file, "model.vocab", "expected an object of string: id");
    size_t n = json_object_size(vocab), bytes = 0, len;
    const char *key;
    json_t *val;
    json_object_keylen_foreach(vocab, key, len, val) bytes += len + 1;
    bpe->ent = malloc((n ? n : 1) * sizeof *bpe->ent);
    bpe->index.mask = table_size(n) - 1;
    bpe->index.slots = malloc(((size_t)bpe->index.mask + 1) * sizeof *bpe->index.slots);
    if (!bpe->ent || !bpe->index.slots || !tk_buf_reserve(&bpe->arena, bytes + 1)) return tk_oom(err);
    memset(bpe->index.slots, 0xFF, ((size_t)bpe->index.mask + 1) * sizeof *bpe->index.slots);
    int max_id = -1;
    json_object_keylen_foreach(vocab, key, len, val) {
        if (!json_is_integer(val) || json_integer_value(val) < 0 || json_integer_value(val) >= (1 << 30)) {
            char p[TK_PATH_MAX];
            snprintf(p, sizeof p, "model.vocab[\"%.40s\"]", key);
            return tk_bad(err, SS_EFORMAT, file, p, "expected a token id (an integer in [0, 2^30))");
        }
        int id = (int)json_integer_value(val);
        tk_vocab_entry *e = &bpe->ent[bpe->n_ent];
        *e = (tk_vocab_entry){(uint32_t)bpe->arena.n, (uint32_t)len, id};
        tk_buf_put(&bpe->arena, key, len + 1); /* reserved above */
        uint32_t i = (uint32_t)hash_bytes(key, len) & bpe->index.mask;
        while (bpe->index.slots[i] >= 0) i = (i + 1) & bpe->index.mask;
        bpe->index.slots[i] = bpe->n_ent++;
        if (id > max_id) max_id = id;
    }
    bpe->n_ids = max_id + 1;
    bpe->entry_of_id = malloc((size_t)(bpe->n_ids ? bpe->n_ids : 1) * sizeof *bpe->entry_of_id);
    if (!bpe->entry_of_id) return tk_oom(err);
    memset(bpe->entry_of_id, 0xFF, (size_t)(bpe->n_ids ? bpe->n_ids : 1) * sizeof *bpe->entry_of_id);
    for (int e = 0; e < bpe->n_ent; e++)
        if (bpe->entry_of_id[bpe->ent[e].id] < 0) bpe->entry_of_id[bpe->ent[e].id] = e;
    return SS_OK;
}

/* One merge: "left right" or ["left", "right"]. */
static ss_status merge_sides(json_t *m, const char *file, const char *path, const char **a, size_t *alen,
                             const char **b, size_t *blen, ss_error *err) {
    if (json_is_string(m)) {
        const char *s = json_string_value(m);
        const char *space = strchr(s, ' ');
        if (!space || strchr(space + 1, ' '))
            return tk_bad(err, SS_EFORMAT, file, path, "expected \"left right\" with exactly one space");
        *a = s;
        *alen = (size_t)(space - s);
        *b = space + 1;
        *blen = strlen(space + 1);
        return SS_OK;
    }
    if (json_is_array(m) && json_array_size(m) == 2 && json_is_string(json_array_get(m, 0)) &&
        json_is_string(json_array_get(m, 1))) {
        *a = json_string_value(json_array_get(m, 0));
        *alen = json_string_length(json_array_get(m, 0));
        *b = json_string_value(json_array_get(m, 1));
        *blen = json_string_length(json_array_get(m, 1));
        return SS_OK;
    }
    return tk_bad(err, SS_EFORMAT, file, path, "expected a string or a pair of strings");
}

static ss_status load_merges(json_t *merges, const char *file, tk_bpe *bpe, ss_error *err) {
    if (!merges || json_is_null(merges)) merges = NULL; /* a vocabulary with no merges is legal */
    else if (!json_is_array(merges)) return tk_bad(err, SS_EFORMAT, file, "model.merges", "expected an array");
    size_t n = merges ? json_array_size(merges) : 0;
    if (n >= (1u << 31)) return tk_bad(err, SS_EFORMAT, file, "model.merges", "too many merges");
    tk_merge_map *m = &bpe->merges;
    m->mask = table_size(n) - 1;
    m->slots = calloc((size_t)m->mask + 1, sizeof *m->slots);
    tk_buf joined = {0};
    if (!m->slots) return tk_oom(err);
    size_t skip = bpe->subword_prefix ? strlen(bpe->subword_prefix) : 0;
    ss_status st = SS_OK;
    for (size_t i = 0; !st && i < n; i++) {
        char p[TK_PATH_MAX];
        const char *a = NULL, *b = NULL;
        size_t alen = 0, blen = 0;
        tk_path_index(p, sizeof p, "model.merges", i);
        if ((st = merge_sides(json_array_get(merges, i), file, p, &a, &alen, &b, &blen, err))) break;
        int ia = tk_bpe_lookup(bpe, a, alen), ib = tk_bpe_lookup(bpe, b, blen);
        if (ia < 0 || ib < 0) {
            st = tk_bad(err, SS_EFORMAT, file, p, "'%.*s' is not in model.vocab", (int)(ia < 0 ? alen : blen),
                        ia < 0 ? a : b);
            break;
        }
        size_t cut = blen >= skip ? skip : blen; /* the merged token drops the right side's prefix */
        joined.n = 0;
        if (!tk_buf_put(&joined, a, alen) || !tk_buf_put(&joined, b + cut, blen - cut)) {
            st = tk_oom(err);
            break;
        }
        int merged = tk_bpe_lookup(bpe, joined.p, joined.n);
        if (merged < 0) {
            st = tk_bad(err, SS_EFORMAT, file, p, "the merged token '%.*s' is not in model.vocab", (int)joined.n,
                        joined.p);
            break;
        }
        merge_put(m, ia, ib, (uint32_t)i, merged);
    }
    tk_buf_free(&joined);
    return st;
}

static ss_status copy_opt_string(json_t *model, const char *key, const char *file, char **out, ss_error *err) {
    const char *s;
    size_t len;
    if (tk_get_string(model, key, file, "model", false, &s, &len, err)) return err->status;
    if (!s) return SS_OK;
    *out = malloc(len + 1);
    if (!*out) return tk_oom(err);
    memcpy(*out, s, len + 1);
    return SS_OK;
}

static ss_status load_options(json_t *model, const char *file, tk_bpe *bpe, ss_error *err) {
    const char *unk;
    json_t *dropout = json_object_get(model, "dropout");
    if (dropout && !json_is_null(dropout) && !(json_is_number(dropout) && json_number_value(dropout) == 0.0))
        return ss_fail(err, SS_EUNSUPPORTED, "%s: BPE dropout is not supported (model.dropout)", file);
    if (tk_get_bool(model, "fuse_unk", file, "model", false, &bpe->fuse_unk, err) ||
        tk_get_bool(model, "byte_fallback", file, "model", false, &bpe->byte_fallback, err) ||
        tk_get_bool(model, "ignore_merges", file, "model", false, &bpe->ignore_merges, err) ||
        tk_get_string(model, "unk_token", file, "model", false, &unk, NULL, err) ||
        copy_opt_string(model, "continuing_subword_prefix", file, &bpe->subword_prefix, err) ||
        copy_opt_string(model, "end_of_word_suffix", file, &bpe->word_suffix, err))
        return err->status;
    bpe->unk_id = -1;
    if (unk) {
        bpe->unk_id = tk_bpe_lookup(bpe, unk, strlen(unk));
        if (bpe->unk_id < 0) return tk_bad(err, SS_EFORMAT, file, "model.unk_token", "'%s' is not in model.vocab", unk);
    }
    for (int b = 0; b < 256; b++) {
        char name[8];
        snprintf(name, sizeof name, "<0x%02X>", b);
        bpe->byte_ids[b] = tk_bpe_lookup(bpe, name, 6);
    }
    return SS_OK;
}

ss_status tk_bpe_parse(json_t *model, const char *file, tk_bpe *bpe, ss_error *err) {
    *bpe = (tk_bpe){0};
    if (!json_is_object(model)) return tk_bad(err, SS_EFORMAT, file, "model", "expected an object");
    const char *type;
    if (tk_get_string(model, "type", file, "model", false, &type, NULL, err)) return err->status;
    if (!type && json_object_get(model, "merges")) type = "BPE"; /* older files name no type */
    if (!type) return tk_bad(err, SS_EFORMAT, file, "model.type", "missing (expected a string)");
    if (strcmp(type, "BPE") != 0)
        return ss_fail(err, SS_EUNSUPPORTED, "%s: unsupported tokenizer model '%s' (model.type)", file, type);
    ss_status st = load_vocab(json_object_get(model, "vocab"), file, bpe, err);
    if (!st) st = load_options(model, file, bpe, err);
    if (!st) st = load_merges(json_object_get(model, "merges"), file, bpe, err);
    if (st) tk_bpe_free(bpe);
    return st;
}

void tk_bpe_free(tk_bpe *bpe) {
    tk_buf_free(&bpe->arena);
    free(bpe->ent);
    free(bpe->index.slots);
    free(bpe->entry_of_id);
    free(bpe->merges.slots);
    free(bpe->subword_prefix);
    free(bpe->word_suffix);
    *bpe = (tk_bpe){0};
}

/* ---------------------------------------------------------------- the merge loop */

static bool work_reserve(tk_bpe_work *w, size_t n) {
    if ((size_t)w->sym_cap < n) {
        struct tk_symbol *s = realloc(w->sym, n * sizeof *s);
        if (!s) return false;
        w->sym = s;
        w->sym_cap = (int)n;
    }
    if ((size_t)w->heap_cap < n) {
        struct tk_merge_cand *h = realloc(w->heap, n * sizeof *h);
        if (!h) return false;
        w->heap = h;
        w->heap_cap = (int)n;
    }
    return true;
}

void tk_bpe_work_free(tk_bpe_work *w) {
    if (w->cache) {
        tk_buf_free(&w->cache->keys);
        free(w->cache->ids);
        free(w->cache);
    }
    tk_buf_free(&w->piece);
    free(w->sym);
    free(w->heap);
    *w = (tk_bpe_work){0};
}

static bool cand_less(const struct tk_merge_cand *a, const struct tk_merge_cand *b) {
    return a->rank != b->rank ? a->rank < b->rank : a->pos < b->pos;
}

/* The heap never holds more candidates than live pairs plus stale ones; each merge pushes at most
 * two, so its size stays below 2n + n: grown on demand. */
static bool heap_push(tk_bpe_work *w, struct tk_merge_cand c) {
    if (w->heap_n == w->heap_cap) {
        int cap = w->heap_cap * 2 + 16;
        struct tk_merge_cand *h = realloc(w->heap, (size_t)cap * sizeof *h);
        if (!h) return false;
        w->heap = h;
        w->heap_cap = cap;
    }
    int i = w->heap_n++;
    while (i > 0) {
        int parent = (i - 1) / 2;
        if (!cand_less(&c, &w->heap[parent])) break;
        w->heap[i] = w->heap[parent];
        i = parent;
    }
    w->heap[i] = c;
    return true;
}

static struct tk_merge_cand heap_pop(tk_bpe_work *w) {
    struct tk_merge_cand top = w->heap[0], last = w->heap[--w->heap_n];
    int i = 0, n = w->heap_n;
    for (;;) {
        int child = 2 * i + 1;
        if (child >= n) break;
        if (child + 1 < n && cand_less(&w->heap[child + 1], &w->heap[child])) child++;
        if (!cand_less(&w->heap[child], &last)) break;
        w->heap[i] = w->heap[child];
        i = child;
    }
    if (n > 0) w->heap[i] = last;
    return top;
}

static bool push_pair(const tk_bpe *bpe, tk_bpe_work *w, int pos) {
    int next = w->sym[pos].next;
    uint32_t rank;
    int32_t merged;
    if (next < 0 || !merge_get(&bpe->merges, w->sym[pos].id, w->sym[next].id, &rank, &merged)) return true;
    return heap_push(w, (struct tk_merge_cand){rank, pos, merged});
}

static ss_status merge_all(const tk_bpe *bpe, tk_bpe_work *w, int n, ss_error *err) {
    w->heap_n = 0;
    for (int i = 0; i + 1 < n; i++)
        if (!push_pair(bpe, w, i)) return tk_oom(err);
    while (w->heap_n > 0) {
        struct tk_merge_cand top = heap_pop(w);
        struct tk_symbol *left = &w->sym[top.pos];
        if (left->removed || left->next < 0) continue;
        struct tk_symbol *right = &w->sym[left->next];
        uint32_t rank;
        int32_t merged;
        if (!merge_get(&bpe->merges, left->id, right->id, &rank, &merged) || merged != top.merged) continue; /* stale */
        left->id = merged;
        right->removed = true;
        left->next = right->next;
        if (right->next >= 0) w->sym[right->next].prev = top.pos;
        if (left->prev >= 0 && !push_pair(bpe, w, left->prev)) return tk_oom(err);
        if (!push_pair(bpe, w, top.pos)) return tk_oom(err);
    }
    return SS_OK;
}

static bool add_symbol(tk_bpe_work *w, int *n, int id) {
    if (*n == w->sym_cap && !work_reserve(w, (size_t)w->sym_cap * 2 + 16)) return false;
    w->sym[*n] = (struct tk_symbol){id, *n - 1, -1, false};
    if (*n > 0) w->sym[*n - 1].next = *n;
    (*n)++;
    return true;
}

/* The initial symbols of a word, as BPE::merge_word builds them. */
static ss_status initial_symbols(const tk_bpe *bpe, const char *word, size_t len, tk_bpe_work *w, int *n_out,
                                 ss_error *err) {
    tk_buf s = w->piece;
    int n = 0, unk = -1; /* unk: a pending unknown, fused with the next when fuse_unk */
    uint32_t cp;
    ss_status st = SS_OK;
    for (size_t i = 0; !st && i < len;) {
        int k = tk_utf8_next(word + i, len - i, &cp);
        if (k <= 0) k = 1; /* pieces are valid UTF-8; stay safe anyway */
        s.n = 0;
        bool ok = (i == 0 || !bpe->subword_prefix || tk_buf_put(&s, bpe->subword_prefix, strlen(bpe->subword_prefix))) &&
                  tk_buf_put(&s, word + i, (size_t)k) &&
                  (i + (size_t)k < len || !bpe->word_suffix || tk_buf_put(&s, bpe->word_suffix, strlen(bpe->word_suffix)));
        i += (size_t)k;
        if (!ok) {
            st = tk_oom(err);
            break;
        }
        int id = tk_bpe_lookup(bpe, s.p, s.n);
        if (id >= 0) {
            if (unk >= 0 && !add_symbol(w, &n, unk)) st = tk_oom(err);
            unk = -1;
            if (!st && !add_symbol(w, &n, id)) st = tk_oom(err);
            continue;
        }
        if (bpe->byte_fallback) {
            bool all = true;
            for (size_t b = 0; b < s.n; b++) all = all && bpe->byte_ids[(unsigned char)s.p[b]] >= 0;
            if (all) { /* like Hugging Face, a pending unknown waits until after these bytes */
                for (size_t b = 0; !st && b < s.n; b++)
                    if (!add_symbol(w, &n, bpe->byte_ids[(unsigned char)s.p[b]])) st = tk_oom(err);
                continue;
            }
        }
        if (bpe->unk_id >= 0) {
            if (unk >= 0 && !bpe->fuse_unk && !add_symbol(w, &n, unk)) st = tk_oom(err);
            unk = bpe->unk_id;
        }
    }
    if (!st && unk >= 0 && !add_symbol(w, &n, unk)) st = tk_oom(err);
    w->piece = s;
    *n_out = n;
    return st;
}

/* ---------------------------------------------------------------- the word cache */

/* The slot holding word, or the empty slot where it would go. */
static uint32_t cache_slot(const struct tk_word_cache *c, const char *word, size_t len) {
    uint32_t i = (uint32_t)hash_bytes(word, len) & (CACHE_SLOTS - 1);
    for (; c->slots[i] >= 0; i = (i + 1) & (CACHE_SLOTS - 1)) {
        uint32_t e = (uint32_t)c->slots[i];
        if (c->words[e].key_len == len && memcmp(c->keys.p + c->words[e].key_off, word, len) == 0) break;
    }
    return i;
}

static bool cache_ready(tk_bpe_work *w) {
    if (w->cache) return true;
    w->cache = malloc(sizeof *w->cache);
    if (!w->cache) return false;
    memset(w->cache->slots, 0xFF, sizeof w->cache->slots);
    w->cache->n_words = 0;
    w->cache->keys = (tk_buf){0};
    w->cache->ids = NULL;
    w->cache->n_ids = w->cache->cap_ids = 0;
    return true;
}

/* Remembers ids[0..n) for word; a full cache just stops growing. */
static void cache_put(struct tk_word_cache *c, uint32_t slot, const char *word, size_t len, const int *ids, int n) {
    if (c->n_words == CACHE_MAX_WORDS) return;
    if (c->n_ids + (size_t)n > c->cap_ids) {
        size_t cap = c->cap_ids ? c->cap_ids * 2 : 4096;
        while (cap < c->n_ids + (size_t)n) cap *= 2;
        int32_t *p = realloc(c->ids, cap * sizeof *p);
        if (!p) return;
        c->ids = p;
        c->cap_ids = cap;
    }
    size_t key_off = c->keys.n;
    if (!tk_buf_put(&c->keys, word, len)) return;
    memcpy(c->ids + c->n_ids, ids, (size_t)n * sizeof *ids);
    c->words[c->n_words].key_off = (uint32_t)key_off;
    c->words[c->n_words].key_len = (uint32_t)len;
    c->words[c->n_words].ids_off = (uint32_t)c->n_ids;
    c->words[c->n_words].n_ids = (uint32_t)n;
    c->slots[slot] = c->n_words++;
    c->n_ids += (size_t)n;
}

static ss_status merge_word(const tk_bpe *bpe, const char *word, size_t len, tk_bpe_work *w, ss_ids *out, ss_error *err) {
    if (!work_reserve(w, len + 1)) return tk_oom(err);
    int n;
    if (initial_symbols(bpe, word, len, w, &n, err) || merge_all(bpe, w, n, err)) return err->status;
    for (int i = n > 0 ? 0 : -1; i >= 0; i = w->sym[i].next)
        if (ss_ids_push(out, w->sym[i].id, err)) return err->status;
    return SS_OK;
}

ss_status tk_bpe_encode_word(const tk_bpe *bpe, const char *word, size_t len, tk_bpe_work *w, ss_ids *out,
                             ss_error *err) {
    if (len == 0) return SS_OK;
    if (bpe->ignore_merges) {
        int id = tk_bpe_lookup(bpe, word, len);
        if (id >= 0) return ss_ids_push(out, id, err);
    }
    if (len > CACHE_MAX_WORD || ++w->words < CACHE_AFTER || !cache_ready(w)) return merge_word(bpe, word, len, w, out, err);
    struct tk_word_cache *c = w->cache;
    uint32_t slot = cache_slot(c, word, len);
    if (c->slots[slot] >= 0) {
        uint32_t e = (uint32_t)c->slots[slot];
        for (uint32_t k = 0; k < c->words[e].n_ids; k++)
            if (ss_ids_push(out, c->ids[c->words[e].ids_off + k], err)) return err->status;
        return SS_OK;
    }
    int start = out->n;
    if (merge_word(bpe, word, len, w, out, err)) return err->status;
    cache_put(c, slot, word, len, out->ids + start, out->n - start);
    return SS_OK;
}
