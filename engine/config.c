/* config.c — Hugging Face config.json -> ss_config.
 *
 * Reads the fields that fix a llama / mistral / qwen2 / qwen3 model's geometry. Both rope layouts are
 * accepted: Transformers 4 (top-level rope_theta + rope_scaling) and Transformers 5 ("rope_parameters"
 * holding rope_theta, rope_type and the scaling factors). Every missing, mistyped, out-of-range or
 * inconsistent field fails with a message naming the file and the field; cfg is only written on success.
 */
#include <errno.h>
#include <limits.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "config.h"

#define MAX_CONFIG_BYTES (16u << 20) /* real config.json files are a few KiB */

/* A field's display name: "key" or "parent.key". */
typedef struct {
    char text[96];
} field_name;

static field_name name_of(const char *parent, const char *key) {
    field_name f;
    snprintf(f.text, sizeof f.text, "%s%s%s", parent ? parent : "", parent ? "." : "", key);
    return f;
}

static const char *type_name(const json_t *v) {
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a fractional number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    case JSON_NULL: return "null";
    }
    return "unknown";
}

/* Absent and null both mean "not given". */
static const json_t *field(const json_t *obj, const char *key) {
    const json_t *v = json_object_get(obj, key);
    return json_is_null(v) ? NULL : v;
}

static ss_status missing(const char *src, const char *parent, const char *key, ss_error *err) {
    return ss_fail(err, SS_EFORMAT, "%s: missing field '%s'", src, name_of(parent, key).text);
}

static ss_status mistyped(const char *src, const char *parent, const char *key, const json_t *v, const char *want,
                          ss_error *err) {
    return ss_fail(err, SS_EFORMAT, "%s: field '%s' must be %s, not %s", src, name_of(parent, key).text, want,
                   type_name(v));
}

/* An integer in [min, INT_MAX]; when absent: an error if required, else dflt. */
static ss_status get_int(const char *src, const json_t *obj, const char *parent, const char *key, bool required,
                         int dflt, int min, int *out, ss_error *err) {
    const json_t *v = field(obj, key);
    if (!v) {
        if (required) return missing(src, parent, key, err);
        *out = dflt;
        return SS_OK;
    }
    if (!json_is_integer(v)) return mistyped(src, parent, key, v, "an integer", err);
    json_int_t x = json_integer_value(v);
    if (x < min || x > INT_MAX)
        return ss_fail(err, SS_EFORMAT, "%s: field '%s' is %lld, must be in [%d, %d]", src, name_of(parent, key).text,
                       (long long)x, min, INT_MAX);
    *out = (int)x;
    return SS_OK;
}

/* A finite number > 0 (integer or real); when absent: an error if required, else dflt. */
static ss_status get_positive(const char *src, const json_t *obj, const char *parent, const char *key,
                              bool required, float dflt, float *out, ss_error *err) {
    const json_t *v = field(obj, key);
    if (!v) {
        if (required) return missing(src, parent, key, err);
        *out = dflt;
        return SS_OK;
    }
    if (!json_is_number(v)) return mistyped(src, parent, key, v, "a number", err);
    double x = json_number_value(v);
    float f = (float)x; /* checked after the conversion: 1e-60 or 1e60 are no float */
    if (!(f > 0) || !isfinite(f))
        return ss_fail(err, SS_EFORMAT, "%s: field '%s' is %g, not a positive float", src, name_of(parent, key).text,
                       x);
    *out = f;
    return SS_OK;
}

static ss_status get_bool(const char *src, const json_t *obj, const char *key, bool dflt, bool *out,
                          ss_error *err) {
    const json_t *v = field(obj, key);
    if (!v) {
        *out = dflt;
        return SS_OK;
    }
    if (!json_is_boolean(v)) return mistyped(src, NULL, key, v, "true or false", err);
    *out = json_is_true(v);
    return SS_OK;
}

/* A string field, or NULL when absent. */
static ss_status get_string(const char *src, const json_t *obj, const char *parent, const char *key,
                            const char **out, ss_error *err) {
    const json_t *v = field(obj, key);
    if (v && !json_is_string(v)) return mistyped(src, parent, key, v, "a string", err);
    *out = v ? json_string_value(v) : NULL;
    return SS_OK;
}

/* ---------------------------------------------------------------- architecture */

static ss_status parse_arch(const char *src, const json_t *root, ss_config *c, ss_error *err) {
    static const struct {
        const char *name;
        ss_arch arch;
    } archs[] = {{"llama", SS_ARCH_LLAMA}, {"mistral", SS_ARCH_MISTRAL}, {"qwen2", SS_ARCH_QWEN2}, {"qwen3", SS_ARCH_QWEN3}};
    const char *type;
    ss_status st = get_string(src, root, NULL, "model_type", &type, err);
    if (st != SS_OK) return st;
    if (!type) return missing(src, NULL, "model_type", err);
    size_t i = 0;
    while (i < sizeof archs / sizeof archs[0] && strcmp(type, archs[i].name) != 0) i++;
    if (i == sizeof archs / sizeof archs[0])
        return ss_fail(err, SS_EUNSUPPORTED,
                       "%s: unknown architecture '%s' (model_type); supported: llama, mistral, qwen2, qwen3", src, type);
    c->arch = archs[i].arch;
    snprintf(c->arch_name, sizeof c->arch_name, "%s", archs[i].name);
    c->qkv_bias = c->arch == SS_ARCH_QWEN2; /* qwen2 always has q/k/v biases and no attention_bias field */
    c->qk_norm = c->arch == SS_ARCH_QWEN3;

    /* Biases the forward pass does not have. Qwen2's q/k/v biases are fixed by the architecture and
     * its attention_bias field, if any, is ignored (as Transformers does). */
    bool attention_bias, mlp_bias;
    if ((st = get_bool(src, root, "attention_bias", false, &attention_bias, err)) ||
        (st = get_bool(src, root, "mlp_bias", false, &mlp_bias, err)))
        return st;
    if (attention_bias && c->arch != SS_ARCH_QWEN2)
        return ss_fail(err, SS_EUNSUPPORTED, "%s: %s with attention_bias=true is not supported", src, type);
    if (mlp_bias) return ss_fail(err, SS_EUNSUPPORTED, "%s: %s with mlp_bias=true is not supported", src, type);
    const char *act;
    if ((st = get_string(src, root, NULL, "hidden_act", &act, err)) != SS_OK) return st;
    if (act && strcmp(act, "silu") != 0)
        return ss_fail(err, SS_EUNSUPPORTED, "%s: hidden_act '%s' is not supported; supported: silu", src, act);
    return SS_OK;
}

/* ---------------------------------------------------------------- geometry */

static ss_status parse_geometry(const char *src, const json_t *root, ss_config *c, ss_error *err) {
    ss_status st;
    if ((st = get_int(src, root, NULL, "vocab_size", true, 0, 1, &c->vocab_size, err)) ||
        (st = get_int(src, root, NULL, "hidden_size", true, 0, 1, &c->hidden, err)) ||
        (st = get_int(src, root, NULL, "intermediate_size", true, 0, 1, &c->intermediate, err)) ||
        (st = get_int(src, root, NULL, "num_hidden_layers", true, 0, 1, &c->n_layers, err)) ||
        (st = get_int(src, root, NULL, "num_attention_heads", true, 0, 1, &c->n_heads, err)) ||
        (st = get_int(src, root, NULL, "num_key_value_heads", false, c->n_heads, 1, &c->n_kv_heads, err)) ||
        (st = get_int(src, root, NULL, "head_dim", false, 0, 1, &c->head_dim, err)) ||
        (st = get_int(src, root, NULL, "max_position_embeddings", true, 0, 1, &c->max_position, err)) ||
        (st = get_positive(src, root, NULL, "rms_norm_eps", true, 0, &c->rms_eps, err)) ||
        (st = get_bool(src, root, "tie_word_embeddings", false, &c->tie_embeddings, err)))
        return st;
    if (c->n_heads % c->n_kv_heads != 0)
        return ss_fail(err, SS_EFORMAT, "%s: num_attention_heads (%d) is not a multiple of num_key_value_heads (%d)",
                       src, c->n_heads, c->n_kv_heads);
    if (c->head_dim == 0) { /* no explicit head_dim: the heads split hidden_size */
        if (c->hidden % c->n_heads != 0)
            return ss_fail(err, SS_EFORMAT,
                           "%s: hidden_size (%d) is not a multiple of num_attention_heads (%d) and head_dim is not given",
                           src, c->hidden, c->n_heads);
        c->head_dim = c->hidden / c->n_heads;
    }
    if (c->head_dim % 2 != 0)
        return ss_fail(err, SS_EFORMAT, "%s: head_dim is %d; rotary embeddings need it even", src, c->head_dim);
    return SS_OK;
}

/* ---------------------------------------------------------------- rotary embeddings */

/* The scaling object (rope_scaling, or rope_parameters in Transformers 5); parent names it in messages. */
static ss_status parse_rope_scaling(const char *src, const json_t *s, const char *parent, ss_config *c,
                                    ss_error *err) {
    const char *type, *type_key = "rope_type";
    ss_status st = get_string(src, s, parent, type_key, &type, err);
    if (st == SS_OK && !type) st = get_string(src, s, parent, type_key = "type", &type, err);
    if (st != SS_OK) return st;
    if (!type || strcmp(type, "default") == 0) {
        c->rope_type = SS_ROPE_DEFAULT;
        return SS_OK;
    }
    if (strcmp(type, "linear") == 0) {
        c->rope_type = SS_ROPE_LINEAR;
        return get_positive(src, s, parent, "factor", true, 0, &c->rope_factor, err);
    }
    if (strcmp(type, "llama3") == 0) {
        c->rope_type = SS_ROPE_LLAMA3;
        if ((st = get_positive(src, s, parent, "factor", true, 0, &c->rope_factor, err)) ||
            (st = get_positive(src, s, parent, "low_freq_factor", true, 0, &c->rope_low_freq_factor, err)) ||
            (st = get_positive(src, s, parent, "high_freq_factor", true, 0, &c->rope_high_freq_factor, err)) ||
            (st = get_int(src, s, parent, "original_max_position_embeddings", true, 0, 1,
                          &c->rope_original_max_position, err)))
            return st;
        /* llama3 interpolates between the two wavelengths: it divides by their difference. */
        if (c->rope_high_freq_factor <= c->rope_low_freq_factor)
            return ss_fail(err, SS_EFORMAT, "%s: field '%s' (%g) must be greater than %s.low_freq_factor (%g)", src,
                           name_of(parent, "high_freq_factor").text, c->rope_high_freq_factor, parent,
                           c->rope_low_freq_factor);
        return SS_OK;
    }
    return ss_fail(err, SS_EUNSUPPORTED, "%s: field '%s' is '%s'; supported: default, linear, llama3", src,
                   name_of(parent, type_key).text, type);
}

static ss_status parse_rope(const char *src, const json_t *root, ss_config *c, ss_error *err) {
    c->rope_type = SS_ROPE_DEFAULT;
    c->rope_factor = 1.0f;
    ss_status st = get_positive(src, root, NULL, "rope_theta", false, 10000.0f, &c->rope_theta, err);
    if (st != SS_OK) return st;
    const char *parent = "rope_parameters";
    const json_t *s = field(root, parent);
    if (s) {
        if (!json_is_object(s)) return mistyped(src, NULL, parent, s, "an object", err);
        if ((st = get_positive(src, s, parent, "rope_theta", false, c->rope_theta, &c->rope_theta, err))) return st;
    } else {
        s = field(root, parent = "rope_scaling");
        if (!s) return SS_OK;
        if (!json_is_object(s)) return mistyped(src, NULL, parent, s, "an object", err);
    }
    return parse_rope_scaling(src, s, parent, c, err);
}

/* ---------------------------------------------------------------- special tokens, dtype */

static ss_status token_id(const char *src, const char *key, const json_t *v, int vocab, int *out, ss_error *err) {
    if (!json_is_integer(v)) return mistyped(src, NULL, key, v, "an integer, a list of integers or null", err);
    json_int_t id = json_integer_value(v);
    if (id < 0 || id >= vocab)
        return ss_fail(err, SS_EFORMAT, "%s: field '%s' has id %lld, outside the vocabulary [0, %d)", src, key,
                       (long long)id, vocab);
    *out = (int)id;
    return SS_OK;
}

static ss_status parse_tokens(const char *src, const json_t *root, ss_config *c, ss_error *err) {
    const json_t *bos = field(root, "bos_token_id");
    c->bos_id = -1;
    ss_status st = bos ? token_id(src, "bos_token_id", bos, c->vocab_size, &c->bos_id, err) : SS_OK;
    if (st != SS_OK) return st;

    const json_t *eos = field(root, "eos_token_id");
    c->n_eos = 0;
    if (!eos) return SS_OK;
    if (!json_is_array(eos)) {
        c->n_eos = 1;
        return token_id(src, "eos_token_id", eos, c->vocab_size, &c->eos_ids[0], err);
    }
    if (json_array_size(eos) > SS_MAX_EOS)
        return ss_fail(err, SS_EUNSUPPORTED, "%s: field 'eos_token_id' lists %zu ids, at most %d are supported", src,
                       json_array_size(eos), SS_MAX_EOS);
    size_t i;
    const json_t *id;
    json_array_foreach(eos, i, id) {
        if ((st = token_id(src, "eos_token_id", id, c->vocab_size, &c->eos_ids[i], err)) != SS_OK) return st;
    }
    c->n_eos = (int)json_array_size(eos);
    return SS_OK;
}

/* "dtype" (Transformers 5) or "torch_dtype"; float32 when neither is given, as Transformers assumes. */
static ss_status parse_dtype(const char *src, const json_t *root, ss_config *c, ss_error *err) {
    static const struct {
        const char *name;
        ss_dtype dtype;
    } dtypes[] = {{"float32", SS_F32}, {"float16", SS_F16}, {"bfloat16", SS_BF16}};
    const char *key = "dtype", *value;
    ss_status st = get_string(src, root, NULL, key, &value, err);
    if (st == SS_OK && !value) st = get_string(src, root, NULL, key = "torch_dtype", &value, err);
    if (st != SS_OK) return st;
    c->dtype = SS_F32;
    if (!value) return SS_OK;
    for (size_t i = 0; i < sizeof dtypes / sizeof dtypes[0]; i++)
        if (strcmp(value, dtypes[i].name) == 0) {
            c->dtype = dtypes[i].dtype;
            return SS_OK;
        }
    return ss_fail(err, SS_EUNSUPPORTED, "%s: field '%s' is '%s'; supported: float32, float16, bfloat16", src, key,
                   value);
}

/* ---------------------------------------------------------------- entry points */

ss_status ss_config_parse(const char *json, size_t len, const char *source, ss_config *cfg, ss_error *err) {
    const char *src = source ? source : "config.json";
    if (!json && len) return ss_fail(err, SS_EARG, "%s: no buffer", src);
    json_error_t jerr;
    json_t *root = json_loadb(len ? json : "", len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return ss_fail(err, SS_EFORMAT, "%s: invalid JSON at line %d, column %d: %s", src, jerr.line, jerr.column,
                       jerr.text);
    ss_config c;
    memset(&c, 0, sizeof c);
    ss_status st;
    if (!json_is_object(root))
        st = ss_fail(err, SS_EFORMAT, "%s: not a JSON object", src);
    else if ((st = parse_arch(src, root, &c, err)) == SS_OK && (st = parse_geometry(src, root, &c, err)) == SS_OK &&
             (st = parse_rope(src, root, &c, err)) == SS_OK && (st = parse_tokens(src, root, &c, err)) == SS_OK)
        st = parse_dtype(src, root, &c, err);
    json_decref(root);
    if (st == SS_OK) *cfg = c;
    return st;
}

/* Reads the whole file; a missing file is reported as "NAME not found in DIR". */
static ss_status read_file(const char *path, char **out, size_t *len, ss_error *err) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (errno != ENOENT) return ss_fail(err, SS_EIO, "%s: %s", path, strerror(errno));
        const char *slash = strrchr(path, '/');
        if (!slash) return ss_fail(err, SS_EIO, "%s not found in .", path);
        return ss_fail(err, SS_EIO, "%s not found in %.*s", slash + 1, (int)(slash - path), path);
    }
    struct stat st;
    bool regular = fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode);
    if (!regular || st.st_size > MAX_CONFIG_BYTES) {
        fclose(f);
        return ss_fail(err, SS_EIO, "%s: %s", path, regular ? "larger than 16 MiB" : "not a regular file");
    }
    long size = (long)st.st_size;
    char *buf = malloc((size_t)size + 1);
    size_t n = buf ? fread(buf, 1, (size_t)size, f) : 0;
    fclose(f);
    if (!buf || n != (size_t)size) {
        ss_status st_read = buf ? SS_EIO : SS_ENOMEM;
        free(buf);
        return ss_fail(err, st_read, "%s: cannot read %ld bytes", path, size);
    }
    *out = buf;
    *len = n;
    return SS_OK;
}

ss_status ss_config_load(const char *path, ss_config *cfg, ss_error *err) {
    if (!path || !cfg) return ss_fail(err, SS_EARG, "ss_config_load: no path or config");
    char *buf;
    size_t len;
    ss_status st = read_file(path, &buf, &len, err);
    if (st != SS_OK) return st;
    st = ss_config_parse(buf, len, path, cfg, err);
    free(buf);
    return st;
}
