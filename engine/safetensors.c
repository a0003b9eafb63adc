/* safetensors.c — memory-mapped safetensors checkpoints (single file or sharded).
 *
 * A safetensors file is an 8-byte little-endian header length N, N bytes of JSON
 * {"name": {"dtype": "BF16", "shape": [..], "data_offsets": [begin, end]}, "__metadata__": {..}},
 * then the data section; offsets are relative to the data section. Every header is validated in full
 * before any of its tensors is added, so a failed add leaves the checkpoint as it was. Only the
 * header pages of a mapping are touched while opening; tensor data is read by whoever uses it.
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "safetensors.h"

#define SINGLE_FILE "model.safetensors"
#define INDEX_FILE "model.safetensors.index.json"

/* Where tensors come from: a mapped shard (map != NULL) or a caller's buffer. */
typedef struct {
    char *path;
    void *map;
    size_t map_len;
} ss_source;

/* Name -> tensor index, sorted by name for bsearch. */
typedef struct {
    const char *name;
    int index;
} ss_name_entry;

struct ss_checkpoint {
    char *where; /* the folder (or "checkpoint"), for messages about the whole checkpoint */
    ss_tensor *tensors;
    int n_tensors;
    ss_name_entry *by_name; /* n_tensors entries */
    ss_source *sources;
    int n_sources;
};

/* A tensor parsed from a header but not yet added; begin locates its range for the overlap check. */
typedef struct {
    ss_tensor t;
    uint64_t begin;
} ss_pending;

static int compare_names(const void *a, const void *b) {
    return strcmp(((const ss_name_entry *)a)->name, ((const ss_name_entry *)b)->name);
}

static int compare_begin(const void *a, const void *b) {
    const ss_pending *x = a, *y = b;
    return (x->begin > y->begin) - (x->begin < y->begin);
}

ss_checkpoint *ss_checkpoint_new(void) { return calloc(1, sizeof(ss_checkpoint)); }

void ss_checkpoint_close(ss_checkpoint *ck) {
    if (!ck) return;
    for (int i = 0; i < ck->n_tensors; i++) free((char *)ck->tensors[i].name);
    for (int i = 0; i < ck->n_sources; i++) {
        if (ck->sources[i].map) munmap(ck->sources[i].map, ck->sources[i].map_len);
        free(ck->sources[i].path);
    }
    free(ck->tensors);
    free(ck->by_name);
    free(ck->sources);
    free(ck->where);
    free(ck);
}

const ss_tensor *ss_checkpoint_find(const ss_checkpoint *ck, const char *name) {
    if (!ck || !name || ck->n_tensors == 0) return NULL;
    ss_name_entry key = {name, -1};
    const ss_name_entry *hit = bsearch(&key, ck->by_name, (size_t)ck->n_tensors, sizeof key, compare_names);
    return hit ? &ck->tensors[hit->index] : NULL;
}

int ss_checkpoint_count(const ss_checkpoint *ck) { return ck ? ck->n_tensors : 0; }

const ss_tensor *ss_checkpoint_tensor(const ss_checkpoint *ck, int i) {
    return ck && i >= 0 && i < ck->n_tensors ? &ck->tensors[i] : NULL;
}

/* ---------------------------------------------------------------- header validation */

static bool parse_dtype(const char *s, ss_dtype *out) {
    static const struct {
        const char *name;
        ss_dtype dtype;
    } known[] = {{"F32", SS_F32}, {"F16", SS_F16}, {"BF16", SS_BF16}};
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (strcmp(s, known[i].name) == 0) {
            *out = known[i].dtype;
            return true;
        }
    return false;
}

/* A JSON integer in [0, INT64_MAX]. */
static bool get_u64(const json_t *v, uint64_t *out) {
    if (!json_is_integer(v) || json_integer_value(v) < 0) return false;
    *out = (uint64_t)json_integer_value(v);
    return true;
}

/* Validates one header entry and fills p (name not yet copied). data_len: size of the data section. */
static ss_status parse_entry(const char *file, const char *name, const json_t *entry, const uint8_t *data,
                             uint64_t data_len, ss_pending *p, ss_error *err) {
    if (!json_is_object(entry))
        return ss_fail(err, SS_EFORMAT, "%s: tensor '%s': header entry is not a JSON object", file, name);

    const json_t *dtype = json_object_get(entry, "dtype");
    if (!json_is_string(dtype))
        return ss_fail(err, SS_EFORMAT, "%s: tensor '%s': field 'dtype' %s", file, name,
                       dtype ? "is not a string" : "is missing");
    if (!parse_dtype(json_string_value(dtype), &p->t.dtype))
        return ss_fail(err, SS_EUNSUPPORTED, "%s: tensor '%s': dtype '%s' is not supported (F32, F16, BF16 are)",
                       file, name, json_string_value(dtype));

    const json_t *shape = json_object_get(entry, "shape");
    if (!json_is_array(shape))
        return ss_fail(err, SS_EFORMAT, "%s: tensor '%s': field 'shape' %s", file, name,
                       shape ? "is not an array" : "is missing");
    size_t ndim = json_array_size(shape);
    if (ndim > SS_MAX_DIMS)
        return ss_fail(err, SS_EUNSUPPORTED, "%s: tensor '%s': shape has %zu dimensions, at most %d are supported",
                       file, name, ndim, SS_MAX_DIMS);
    p->t.ndim = (int)ndim;
    uint64_t numel = 1;
    for (size_t d = 0; d < ndim; d++) {
        uint64_t dim;
        if (!get_u64(json_array_get(shape, d), &dim))
            return ss_fail(err, SS_EFORMAT, "%s: tensor '%s': shape[%zu] is not a non-negative integer", file,
                           name, d);
        p->t.shape[d] = (int64_t)dim;
        if (__builtin_mul_overflow(numel, dim, &numel))
            return ss_fail(err, SS_EFORMAT, "%s: tensor '%s': shape overflows 64-bit element count", file, name);
    }
    uint64_t nbytes;
    if (__builtin_mul_overflow(numel, (uint64_t)ss_dtype_size(p->t.dtype), &nbytes))
        return ss_fail(err, SS_EFORMAT, "%s: tensor '%s': shape overflows 64-bit byte count", file, name);

    const json_t *offsets = json_object_get(entry, "data_offsets");
    uint64_t begin, end;
    if (!json_is_array(offsets) || json_array_size(offsets) != 2 ||
        !get_u64(json_array_get(offsets, 0), &begin) || !get_u64(json_array_get(offsets, 1), &end))
        return ss_fail(err, SS_EFORMAT, "%s: tensor '%s': field 'data_offsets' %s", file, name,
                       offsets ? "is not [begin, end] with non-negative integers" : "is missing");
    if (end < begin)
        return ss_fail(err, SS_EFORMAT, "%s: tensor '%s': data_offsets [%llu, %llu) end before begin", file,
                       name, (unsigned long long)begin, (unsigned long long)end);
    if (end > data_len)
        return ss_fail(err, SS_EFORMAT, "%s: tensor '%s': data_offsets [%llu, %llu) end past data section (%llu bytes)",
                       file, name, (unsigned long long)begin, (unsigned long long)end,
                       (unsigned long long)data_len);
    if (end - begin != nbytes)
        return ss_fail(err, SS_EFORMAT,
                       "%s: tensor '%s': shape x %s needs %llu bytes but data_offsets [%llu, %llu) hold %llu", file,
                       name, ss_dtype_name(p->t.dtype), (unsigned long long)nbytes, (unsigned long long)begin,
                       (unsigned long long)end, (unsigned long long)(end - begin));
    /* The backends read elements in place from the mapping: an element that straddles its natural
     * alignment would be undefined behaviour there (the safetensors library always aligns). */
    if ((uintptr_t)(data + begin) % ss_dtype_size(p->t.dtype) != 0)
        return ss_fail(err, SS_EUNSUPPORTED, "%s: tensor '%s': data at offset %llu is not aligned to its %zu-byte %s elements",
                       file, name, (unsigned long long)begin, ss_dtype_size(p->t.dtype), ss_dtype_name(p->t.dtype));
    p->begin = begin;
    p->t.nbytes = (size_t)nbytes;
    p->t.data = data + begin;
    return SS_OK;
}

/* Sorted by begin, disjoint ranges each start at or after the end of the previous non-empty one. */
static ss_status check_overlaps(const char *file, ss_pending *p, int n, ss_error *err) {
    qsort(p, (size_t)n, sizeof *p, compare_begin);
    const ss_pending *prev = NULL;
    for (int i = 0; i < n; i++) {
        if (p[i].t.nbytes == 0) continue;
        if (prev && p[i].begin < prev->begin + prev->t.nbytes)
            return ss_fail(err, SS_EFORMAT, "%s: tensor '%s': data_offsets [%llu, %llu) overlap tensor '%s' [%llu, %llu)",
                           file, p[i].t.name, (unsigned long long)p[i].begin,
                           (unsigned long long)(p[i].begin + p[i].t.nbytes), prev->t.name,
                           (unsigned long long)prev->begin, (unsigned long long)(prev->begin + prev->t.nbytes));
        prev = &p[i];
    }
    return SS_OK;
}

/* Parses and validates the whole header; on success *out holds n entries whose names point into root. */
static ss_status parse_header(const char *file, const uint8_t *buf, size_t len, json_t **root_out,
                              ss_pending **out, int *n_out, ss_error *err) {
    if (len < 8)
        return ss_fail(err, SS_EIO, "%s: file is %zu bytes, too short for the 8-byte header length (truncated?)",
                       file, len);
    uint64_t header_len = 0;
    for (int i = 7; i >= 0; i--) header_len = header_len << 8 | buf[i];
    if (header_len > len - 8)
        return ss_fail(err, SS_EIO, "%s: header length %llu runs past the end of the file (%zu bytes; truncated?)",
                       file, (unsigned long long)header_len, len);

    json_error_t jerr;
    json_t *root = json_loadb((const char *)buf + 8, (size_t)header_len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        const char *what = json_error_code(&jerr) == json_error_duplicate_key ? "duplicate key in header"
                                                                             : "header is not valid JSON";
        return ss_fail(err, SS_EFORMAT, "%s: %s: %s (line %d, column %d)", file, what, jerr.text, jerr.line,
                       jerr.column);
    }
    if (!json_is_object(root)) {
        json_decref(root);
        return ss_fail(err, SS_EFORMAT, "%s: header is not a JSON object", file);
    }

    const uint8_t *data = buf + 8 + header_len;
    uint64_t data_len = len - 8 - header_len;
    ss_pending *pending = calloc(json_object_size(root) + 1, sizeof *pending);
    if (!pending) {
        json_decref(root);
        return ss_fail(err, SS_ENOMEM, "%s: out of memory for %zu header entries", file, json_object_size(root));
    }
    int n = 0;
    ss_status st = SS_OK;
    const char *name;
    json_t *entry;
    json_object_foreach(root, name, entry) {
        if (strcmp(name, "__metadata__") == 0) {
            if (!json_is_object(entry)) st = ss_fail(err, SS_EFORMAT, "%s: '__metadata__' is not a JSON object", file);
        } else {
            st = parse_entry(file, name, entry, data, data_len, &pending[n], err);
            pending[n++].t.name = name;
        }
        if (st != SS_OK) break;
    }
    if (st == SS_OK) st = check_overlaps(file, pending, n, err);
    if (st != SS_OK) {
        free(pending);
        json_decref(root);
        return st;
    }
    *root_out = root;
    *out = pending;
    *n_out = n;
    return SS_OK;
}

/* ---------------------------------------------------------------- adding a header's tensors */

/* The name index after adding p[0..n) (names already owned): fails on a name already present. */
static ss_status merged_index(const ss_checkpoint *ck, const char *file, const ss_pending *p, int n,
                              ss_name_entry **out, ss_error *err) {
    int total = ck->n_tensors + n;
    ss_name_entry *idx = malloc(((size_t)total + 1) * sizeof *idx);
    if (!idx) return ss_fail(err, SS_ENOMEM, "%s: out of memory indexing %d tensors", file, total);
    if (ck->n_tensors) memcpy(idx, ck->by_name, (size_t)ck->n_tensors * sizeof *idx);
    for (int i = 0; i < n; i++) idx[ck->n_tensors + i] = (ss_name_entry){p[i].t.name, ck->n_tensors + i};
    qsort(idx, (size_t)total, sizeof *idx, compare_names);
    for (int i = 1; i < total; i++) {
        if (strcmp(idx[i - 1].name, idx[i].name) != 0) continue;
        /* Within one header jansson already rejected duplicates, so one of the pair is older. */
        int older = idx[i - 1].index < idx[i].index ? idx[i - 1].index : idx[i].index;
        ss_fail(err, SS_EFORMAT, "%s: duplicate tensor '%s' (already in %s)", file, idx[i].name,
                ck->tensors[older].file);
        free(idx);
        return SS_EFORMAT;
    }
    *out = idx;
    return SS_OK;
}

static void free_pending_names(ss_pending *p, int n) {
    for (int i = 0; i < n; i++) free((char *)p[i].t.name);
}

/* Copies each pending name out of the JSON tree, so the tree can go. */
static ss_status own_names(const char *file, ss_pending *p, int n, ss_error *err) {
    for (int i = 0; i < n; i++) {
        char *copy = strdup(p[i].t.name);
        if (!copy) {
            free_pending_names(p, i);
            return ss_fail(err, SS_ENOMEM, "%s: out of memory copying tensor names", file);
        }
        p[i].t.name = copy;
    }
    return SS_OK;
}

/* Grows the arrays that a commit fills; the checkpoint's contents are unchanged. */
static ss_status reserve(ss_checkpoint *ck, const char *file, int n, ss_error *err) {
    ss_tensor *t = realloc(ck->tensors, ((size_t)ck->n_tensors + n + 1) * sizeof *t);
    if (t) ck->tensors = t;
    ss_source *s = realloc(ck->sources, ((size_t)ck->n_sources + 1) * sizeof *s);
    if (s) ck->sources = s;
    if (!t || !s) return ss_fail(err, SS_ENOMEM, "%s: out of memory adding %d tensors", file, n);
    return SS_OK;
}

/* Validates buf as a whole safetensors file and adds its tensors. map (may be NULL) is the mapping
 * behind buf: on success the checkpoint owns it; on failure the caller still does. */
static ss_status add_header(ss_checkpoint *ck, const void *buf, size_t len, const char *file, void *map,
                            size_t map_len, ss_error *err) {
    json_t *root;
    ss_pending *p;
    int n;
    ss_status st = parse_header(file, buf, len, &root, &p, &n, err);
    if (st != SS_OK) return st;
    st = own_names(file, p, n, err);
    json_decref(root);
    if (st != SS_OK) {
        free(p);
        return st;
    }
    char *path = strdup(file);
    ss_name_entry *idx = NULL;
    if (!path) st = ss_fail(err, SS_ENOMEM, "%s: out of memory", file);
    if (st == SS_OK) st = reserve(ck, file, n, err);
    if (st == SS_OK) st = merged_index(ck, file, p, n, &idx, err);
    if (st != SS_OK) {
        free(path);
        free_pending_names(p, n);
        free(p);
        return st;
    }
    for (int i = 0; i < n; i++) {
        p[i].t.file = path;
        ck->tensors[ck->n_tensors++] = p[i].t;
    }
    free(p);
    free(ck->by_name);
    ck->by_name = idx;
    ck->sources[ck->n_sources++] = (ss_source){path, map, map_len};
    return SS_OK;
}

ss_status ss_checkpoint_add_buffer(ss_checkpoint *ck, const void *buf, size_t len, const char *file,
                                   ss_error *err) {
    if (!ck || (!buf && len)) return ss_fail(err, SS_EARG, "ss_checkpoint_add_buffer: no checkpoint or buffer");
    return add_header(ck, len ? buf : "", len, file ? file : "buffer", NULL, 0, err);
}

/* ---------------------------------------------------------------- files */

static ss_status add_file(ss_checkpoint *ck, const char *path, ss_error *err) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return ss_fail(err, SS_EIO, "%s: %s", path, errno == ENOENT ? "not found" : strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return ss_fail(err, SS_EIO, "%s: not a regular file", path);
    }
    size_t len = (size_t)st.st_size;
    void *map = NULL;
    if (len > 0) { /* mmap refuses empty files; an empty file fails validation below */
        map = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
        if (map == MAP_FAILED) {
            int e = errno;
            close(fd);
            return ss_fail(err, SS_EIO, "%s: mmap of %zu bytes failed: %s", path, len, strerror(e));
        }
    }
    close(fd);
    ss_status status = add_header(ck, map ? map : "", len, path, map, len, err);
    if (status != SS_OK && map) munmap(map, len);
    return status;
}

static bool has_source(const ss_checkpoint *ck, const char *path) {
    for (int i = 0; i < ck->n_sources; i++)
        if (strcmp(ck->sources[i].path, path) == 0) return true;
    return false;
}

static bool is_file(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* Maps every shard the index names once, then checks that each tensor is in the shard named for it. */
static ss_status add_shards(ss_checkpoint *ck, const char *dir, const char *index, const json_t *weight_map,
                            ss_error *err) {
    char path[4096];
    const char *name;
    json_t *shard;
    json_object_foreach((json_t *)weight_map, name, shard) {
        const char *s = json_string_value(shard);
        if (!s || !*s || strchr(s, '/'))
            return ss_fail(err, SS_EFORMAT, "%s: weight_map['%s'] is not a file name in the folder", index, name);
        if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, s) >= sizeof path)
            return ss_fail(err, SS_EARG, "%s: shard path too long for '%s'", index, s);
        if (has_source(ck, path)) continue;
        if (!is_file(path))
            return ss_fail(err, SS_EIO, "%s: shard '%s' not found (named for tensor '%s')", index, s, name);
        ss_status st = add_file(ck, path, err);
        if (st != SS_OK) return st;
    }
    json_object_foreach((json_t *)weight_map, name, shard) {
        snprintf(path, sizeof path, "%s/%s", dir, json_string_value(shard));
        const ss_tensor *t = ss_checkpoint_find(ck, name);
        if (!t)
            return ss_fail(err, SS_EFORMAT, "%s: tensor '%s' is not in its shard '%s'", index, name,
                           json_string_value(shard));
        if (strcmp(t->file, path) != 0)
            return ss_fail(err, SS_EFORMAT, "%s: tensor '%s' is in %s, not in its shard '%s'", index, name, t->file,
                           json_string_value(shard));
    }
    return SS_OK;
}

static ss_status add_index(ss_checkpoint *ck, const char *dir, const char *index, ss_error *err) {
    json_error_t jerr;
    json_t *root = json_load_file(index, 0, &jerr);
    if (!root)
        return ss_fail(err, SS_EFORMAT, "%s: invalid JSON: %s (line %d, column %d)", index, jerr.text, jerr.line,
                       jerr.column);
    const json_t *weight_map = json_object_get(root, "weight_map");
    ss_status st;
    if (!json_is_object(weight_map))
        st = ss_fail(err, SS_EFORMAT, "%s: field 'weight_map' %s", index,
                     weight_map ? "is not a JSON object" : "is missing");
    else
        st = add_shards(ck, dir, index, weight_map, err);
    json_decref(root);
    return st;
}

ss_status ss_checkpoint_open(const char *dir, ss_checkpoint **out, ss_error *err) {
    if (!dir || !out) return ss_fail(err, SS_EARG, "ss_checkpoint_open: no folder or result pointer");
    *out = NULL;
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return ss_fail(err, SS_EIO, "checkpoint folder '%s' not found", dir);
    ss_checkpoint *ck = ss_checkpoint_new();
    if (!ck || !(ck->where = strdup(dir))) {
        ss_checkpoint_close(ck);
        return ss_fail(err, SS_ENOMEM, "%s: out of memory", dir);
    }
    char single[4096], index[4096];
    snprintf(single, sizeof single, "%s/" SINGLE_FILE, dir);
    snprintf(index, sizeof index, "%s/" INDEX_FILE, dir);
    ss_status status;
    if (is_file(single))
        status = add_file(ck, single, err);
    else if (is_file(index))
        status = add_index(ck, dir, index, err);
    else
        status = ss_fail(err, SS_EIO, "%s: no " SINGLE_FILE " or " INDEX_FILE, dir);
    if (status != SS_OK) {
        ss_checkpoint_close(ck);
        return status;
    }
    *out = ck;
    return SS_OK;
}

ss_status ss_checkpoint_open_file(const char *path, ss_checkpoint **out, ss_error *err) {
    if (!path || !out) return ss_fail(err, SS_EARG, "ss_checkpoint_open_file: no path or result pointer");
    *out = NULL;
    ss_checkpoint *ck = ss_checkpoint_new();
    if (!ck || !(ck->where = strdup(path))) {
        ss_checkpoint_close(ck);
        return ss_fail(err, SS_ENOMEM, "%s: out of memory", path);
    }
    ss_status status = is_file(path) ? add_file(ck, path, err) : ss_fail(err, SS_EIO, "%s: not found", path);
    if (status != SS_OK) {
        ss_checkpoint_close(ck);
        return status;
    }
    *out = ck;
    return SS_OK;
}

/* ---------------------------------------------------------------- shape checks */

static void format_shape(char *buf, size_t size, int ndim, const int64_t *shape) {
    size_t used = (size_t)snprintf(buf, size, "[");
    for (int d = 0; d < ndim && used < size; d++)
        used += (size_t)snprintf(buf + used, size - used, "%s%lld", d ? ", " : "", (long long)shape[d]);
    if (used < size) snprintf(buf + used, size - used, "]");
}

ss_status ss_checkpoint_expect(const ss_checkpoint *ck, const char *name, int ndim, const int64_t *shape,
                               const ss_tensor **out, ss_error *err) {
    if (ndim < 0 || ndim > SS_MAX_DIMS)
        return ss_fail(err, SS_EARG, "ss_checkpoint_expect: tensor '%s': %d dimensions asked", name, ndim);
    const ss_tensor *t = ss_checkpoint_find(ck, name);
    if (!t)
        return ss_fail(err, SS_EFORMAT, "%s: missing tensor '%s'", ck && ck->where ? ck->where : "checkpoint",
                       name);
    /* Only F32 / F16 / BF16 tensors get into a checkpoint, so the dtype is a float one already. */
    bool same = t->ndim == ndim;
    for (int d = 0; same && d < ndim; d++) same = t->shape[d] == shape[d];
    if (!same) {
        char have[128], want[128];
        format_shape(have, sizeof have, t->ndim, t->shape);
        format_shape(want, sizeof want, ndim, shape);
        return ss_fail(err, SS_EFORMAT, "%s: tensor '%s' has shape %s but the config needs %s", t->file, name,
                       have, want);
    }
    if (out) *out = t;
    return SS_OK;
}
