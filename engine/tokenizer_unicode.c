/* tokenizer_unicode.c — UTF-8 decoding and repair, White_Space and NFC for the tokenizer.
 *
 * NFC follows UAX #15: full canonical decomposition, canonical ordering of combining marks, then
 * canonical composition; the tables come from scripts/gen_nfc_table.py. Text without any character
 * that NFC can change (the usual case) is left alone without being rewritten. */
#include <stdlib.h>
#include <string.h>

#include "tokenizer_internal.h"
#include "tokenizer_nfc_table.h"

/* ---------------------------------------------------------------- UTF-8 */

static bool is_cont(unsigned char c) { return (c & 0xC0) == 0x80; }

/* The range the second byte of a sequence led by `lead` must fall in, and the sequence length. */
static int lead_info(unsigned char lead, unsigned char *lo, unsigned char *hi) {
    *lo = 0x80;
    *hi = 0xBF;
    if (lead >= 0xC2 && lead <= 0xDF) return 2;
    if (lead >= 0xE0 && lead <= 0xEF) {
        if (lead == 0xE0) *lo = 0xA0;
        if (lead == 0xED) *hi = 0x9F; /* no surrogates */
        return 3;
    }
    if (lead >= 0xF0 && lead <= 0xF4) {
        if (lead == 0xF0) *lo = 0x90;
        if (lead == 0xF4) *hi = 0x8F;
        return 4;
    }
    return 0;
}

/* How many bytes of s form a valid prefix of one sequence (full length when complete). */
static int valid_prefix(const unsigned char *s, size_t n, int *need) {
    unsigned char lo, hi;
    *need = lead_info(s[0], &lo, &hi);
    if (*need == 0) return 0;
    int k = 1;
    if (n > 1 && s[1] >= lo && s[1] <= hi) {
        k = 2;
        while (k < *need && (size_t)k < n && is_cont(s[k])) k++;
    }
    return k;
}

int tk_utf8_next(const char *str, size_t n, uint32_t *cp) {
    const unsigned char *s = (const unsigned char *)str;
    if (n == 0) return 0;
    if (s[0] < 0x80) {
        *cp = s[0];
        return 1;
    }
    int need, k = valid_prefix(s, n, &need);
    if (need == 0 || k < need) return 0;
    uint32_t c = s[0] & (0x7F >> need);
    for (int i = 1; i < need; i++) c = (c << 6) | (s[i] & 0x3F);
    *cp = c;
    return need;
}

size_t tk_utf8_invalid_at(const char *s, size_t n) {
    size_t i = 0;
    uint32_t cp;
    while (i < n) {
        if ((unsigned char)s[i] < 0x80) {
            i++;
            continue;
        }
        int k = tk_utf8_next(s + i, n - i, &cp);
        if (k == 0) return i;
        i += (size_t)k;
    }
    return n;
}

bool tk_utf8_put(tk_buf *b, uint32_t cp) {
    char u[4];
    int k;
    if (cp < 0x80) {
        u[0] = (char)cp;
        k = 1;
    } else if (cp < 0x800) {
        u[0] = (char)(0xC0 | cp >> 6);
        u[1] = (char)(0x80 | (cp & 0x3F));
        k = 2;
    } else if (cp < 0x10000) {
        u[0] = (char)(0xE0 | cp >> 12);
        u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        u[2] = (char)(0x80 | (cp & 0x3F));
        k = 3;
    } else {
        u[0] = (char)(0xF0 | cp >> 18);
        u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        u[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        u[3] = (char)(0x80 | (cp & 0x3F));
        k = 4;
    }
    return tk_buf_put(b, u, (size_t)k);
}

static const char REPLACEMENT[] = "\xEF\xBF\xBD";

bool tk_utf8_lossy(tk_buf *out, const char *str, size_t n, bool final, size_t *pending) {
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0, run = 0; /* run: start of the valid stretch not yet copied */
    *pending = 0;
    if (!tk_buf_reserve(out, n + 1)) return false;
    while (i < n) {
        if (s[i] < 0x80) {
            i++;
            continue;
        }
        int need, k = valid_prefix(s + i, n - i, &need);
        if (need && k == need) {
            i += (size_t)k;
            continue;
        }
        if (!tk_buf_put(out, s + run, i - run)) return false;
        if (need && i + (size_t)k == n && !final) { /* only incomplete: later bytes may finish it */
            *pending = (size_t)k;
            return tk_buf_put(out, s + i, (size_t)k);
        }
        if (!tk_buf_put(out, REPLACEMENT, 3)) return false;
        i += k ? (size_t)k : 1;
        run = i;
    }
    return tk_buf_put(out, s + run, n - run);
}

bool tk_is_whitespace(uint32_t c) {
    return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

/* ---------------------------------------------------------------- NFC */

enum { S_BASE = 0xAC00, L_BASE = 0x1100, V_BASE = 0x1161, T_BASE = 0x11A7, L_COUNT = 19, V_COUNT = 21,
       T_COUNT = 28, N_COUNT = V_COUNT * T_COUNT, S_COUNT = L_COUNT * N_COUNT };

static int ccc_of(uint32_t cp) {
    size_t lo = 0, hi = sizeof nfc_ccc / sizeof nfc_ccc[0];
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (cp < nfc_ccc[mid].lo) hi = mid;
        else if (cp > nfc_ccc[mid].hi) lo = mid + 1;
        else return nfc_ccc[mid].ccc;
    }
    return 0;
}

static bool is_unstable(uint32_t cp) {
    size_t lo = 0, hi = sizeof nfc_unstable / sizeof nfc_unstable[0];
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (cp < nfc_unstable[mid].lo) hi = mid;
        else if (cp > nfc_unstable[mid].hi) lo = mid + 1;
        else return true;
    }
    return false;
}

static const nfc_decomposition *decomposition_of(uint32_t cp) {
    size_t lo = 0, hi = sizeof nfc_decomp / sizeof nfc_decomp[0];
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (cp < nfc_decomp[mid].cp) hi = mid;
        else if (cp > nfc_decomp[mid].cp) lo = mid + 1;
        else return &nfc_decomp[mid];
    }
    return NULL;
}

/* The primary composite of a + b, or 0. */
static uint32_t compose(uint32_t a, uint32_t b) {
    if (a >= L_BASE && a < L_BASE + L_COUNT && b >= V_BASE && b < V_BASE + V_COUNT)
        return S_BASE + ((a - L_BASE) * V_COUNT + (b - V_BASE)) * T_COUNT;
    if (a >= S_BASE && a < S_BASE + S_COUNT && (a - S_BASE) % T_COUNT == 0 && b > T_BASE && b < T_BASE + T_COUNT)
        return a + (b - T_BASE);
    size_t lo = 0, hi = sizeof nfc_comp / sizeof nfc_comp[0];
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        const nfc_composition *c = &nfc_comp[mid];
        if (a < c->a || (a == c->a && b < c->b)) hi = mid;
        else if (a > c->a || b > c->b) lo = mid + 1;
        else return c->cp;
    }
    return 0;
}

typedef struct {
    uint32_t *cp;
    int n, cap;
} cp_list;

static bool cp_push(cp_list *l, uint32_t cp) {
    if (l->n == l->cap) {
        int cap = l->cap ? l->cap * 2 : 64;
        uint32_t *p = realloc(l->cp, (size_t)cap * sizeof *p);
        if (!p) return false;
        l->cp = p;
        l->cap = cap;
    }
    l->cp[l->n++] = cp;
    return true;
}

static bool decompose(cp_list *l, uint32_t cp) {
    if (cp >= S_BASE && cp < S_BASE + S_COUNT) {
        uint32_t s = cp - S_BASE, t = s % T_COUNT;
        if (!cp_push(l, L_BASE + s / N_COUNT) || !cp_push(l, V_BASE + (s % N_COUNT) / T_COUNT)) return false;
        return t == 0 || cp_push(l, T_BASE + t);
    }
    const nfc_decomposition *d = decomposition_of(cp);
    if (!d) return cp_push(l, cp);
    return decompose(l, d->a) && (d->b == 0 || decompose(l, d->b));
}

/* Stable sort of each run of combining marks by class. Runs are short: insertion sort. */
static void canonical_order(cp_list *l) {
    for (int i = 1; i < l->n; i++) {
        int c = ccc_of(l->cp[i]);
        if (c == 0) continue;
        uint32_t cp = l->cp[i];
        int j = i;
        while (j > 0 && ccc_of(l->cp[j - 1]) > c) {
            l->cp[j] = l->cp[j - 1];
            j--;
        }
        l->cp[j] = cp;
    }
}

static void canonical_compose(cp_list *l) {
    if (l->n == 0) return;
    int starter = 0, kept = 1;
    int last_class = ccc_of(l->cp[0]) ? 256 : 0; /* a leading mark blocks everything after it */
    for (int i = 1; i < l->n; i++) {
        uint32_t c = l->cp[i];
        int cls = ccc_of(c);
        uint32_t composite = last_class == 256 ? 0 : compose(l->cp[starter], c);
        if (composite && (last_class < cls || last_class == 0)) {
            l->cp[starter] = composite;
            continue;
        }
        if (cls == 0) {
            starter = kept;
            last_class = 0;
        } else {
            last_class = cls;
        }
        l->cp[kept++] = c;
    }
    l->n = kept;
}

bool tk_nfc(const char *s, size_t n, tk_buf *out, bool *changed) {
    *changed = false;
    size_t i = 0;
    uint32_t cp;
    bool any = false;
    while (i < n && !any) {
        if ((unsigned char)s[i] < 0x80) {
            i++;
            continue;
        }
        int k = tk_utf8_next(s + i, n - i, &cp);
        if (k == 0) return true; /* callers pass valid UTF-8; leave anything else alone */
        any = is_unstable(cp);
        i += (size_t)k;
    }
    if (!any) return true;
    cp_list l = {0};
    bool ok = true;
    for (i = 0; ok && i < n;) {
        int k = tk_utf8_next(s + i, n - i, &cp);
        if (k == 0) break;
        ok = decompose(&l, cp);
        i += (size_t)k;
    }
    if (ok) {
        canonical_order(&l);
        canonical_compose(&l);
        out->n = 0;
        ok = tk_buf_reserve(out, n + 1);
        for (int j = 0; ok && j < l.n; j++) ok = tk_utf8_put(out, l.cp[j]);
        *changed = ok;
    }
    free(l.cp);
    return ok;
}
