/* test_safetensors.c — safetensors loading: valid single and sharded checkpoints read back exactly,
 * and every kind of broken file fails with its status and a one-line message naming the culprit. The
 * files are built here at test time (8-byte length + header JSON + data) in a temporary folder. */
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "safetensors.h"

static char tmp_dir[64];

/* ---------------------------------------------------------------- building files */

typedef struct {
    uint8_t *bytes;
    size_t len;
} blob;

/* 8-byte little-endian header length + header + data. With header_len 0 the header is honest and,
 * as real writers do, padded with spaces to a multiple of 8 so the data is aligned; a nonzero
 * header_len is stated as given and nothing is padded. */
static blob make_file(const char *header, const void *data, size_t data_len, uint64_t header_len) {
    size_t text = strlen(header), hlen = header_len ? text : (text + 7) / 8 * 8;
    blob b = {malloc(8 + hlen + data_len + 1), 8 + hlen + data_len};
    uint64_t stated = header_len ? header_len : hlen;
    for (int i = 0; i < 8; i++) b.bytes[i] = (uint8_t)(stated >> (8 * i));
    memcpy(b.bytes + 8, header, text);
    memset(b.bytes + 8 + text, ' ', hlen - text);
    if (data_len) memcpy(b.bytes + 8 + hlen, data, data_len);
    return b;
}

static void write_file(const char *name, const void *bytes, size_t len) {
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", tmp_dir, name);
    FILE *f = fopen(path, "wb");
    CHECK_MSG(f != NULL, "cannot write %s", path);
    if (!f) return;
    if (len) fwrite(bytes, 1, len, f);
    fclose(f);
}

static void write_blob(const char *name, blob b) {
    write_file(name, b.bytes, b.len);
    free(b.bytes);
}

static void remove_file(const char *name) {
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", tmp_dir, name);
    unlink(path);
}

/* One line, naming the culprit and the file. */
static void check_message(const ss_error *err, const char *culprit, const char *file) {
    CHECK_MSG(strstr(err->msg, culprit) != NULL, "message '%s' does not name '%s'", err->msg, culprit);
    CHECK_MSG(strstr(err->msg, file) != NULL, "message '%s' does not name file '%s'", err->msg, file);
    CHECK_MSG(strchr(err->msg, '\n') == NULL && err->msg[0], "message is not one line: '%s'", err->msg);
}

/* ---------------------------------------------------------------- valid single file */

/* Hand-encoded values: f16 1.0 = 0x3c00, -2.0 = 0xc000, 0.5 = 0x3800, 65504 = 0x7bff;
 * bf16 1.0 = 0x3f80, -3.5 = 0xc060. Values are read with memcpy: the data need not be aligned. */
static const float f32_values[6] = {1.5f, -2.25f, 3.0e-7f, 1234.5f, 0.0f, -0.0f};
static const uint16_t f16_bits[4] = {0x3c00, 0xc000, 0x3800, 0x7bff};
static const float f16_values[4] = {1.0f, -2.0f, 0.5f, 65504.0f};
static const uint16_t bf16_bits[2] = {0x3f80, 0xc060};
static const float bf16_values[2] = {1.0f, -3.5f};

static blob valid_file(void) {
    uint8_t data[24 + 8 + 4];
    memcpy(data, f32_values, 24);
    memcpy(data + 24, f16_bits, 8);
    memcpy(data + 32, bf16_bits, 4);
    const char *header = "{\"__metadata__\": {\"format\": \"pt\"},"
                         " \"w.f32\": {\"dtype\": \"F32\", \"shape\": [2, 3], \"data_offsets\": [0, 24]},"
                         " \"w.f16\": {\"dtype\": \"F16\", \"shape\": [4], \"data_offsets\": [24, 32]},"
                         " \"w.bf16\": {\"dtype\": \"BF16\", \"shape\": [1, 2], \"data_offsets\": [32, 36]},"
                         " \"w.empty\": {\"dtype\": \"F32\", \"shape\": [0, 3], \"data_offsets\": [36, 36]}}";
    return make_file(header, data, sizeof data, 0);
}

static void test_valid_single(void) {
    write_blob("model.safetensors", valid_file());
    ss_checkpoint *ck = NULL;
    ss_error err = {0};
    ss_status st = ss_checkpoint_open(tmp_dir, &ck, &err);
    CHECK_MSG(st == SS_OK, "%s", err.msg);
    if (st != SS_OK) return;
    CHECK(ss_checkpoint_count(ck) == 4);

    const ss_tensor *t = ss_checkpoint_find(ck, "w.f32");
    CHECK(t && t->dtype == SS_F32 && t->ndim == 2 && t->shape[0] == 2 && t->shape[1] == 3 && t->nbytes == 24);
    CHECK(t && strstr(t->file, "model.safetensors") != NULL);
    for (int i = 0; t && i < 6; i++) {
        float v;
        memcpy(&v, (const uint8_t *)t->data + 4 * i, 4);
        CHECK_MSG(memcmp(&v, &f32_values[i], 4) == 0, "f32[%d] = %g, want %g", i, v, f32_values[i]);
    }
    t = ss_checkpoint_find(ck, "w.f16");
    CHECK(t && t->dtype == SS_F16 && t->ndim == 1 && t->shape[0] == 4 && t->nbytes == 8);
    for (int i = 0; t && i < 4; i++) {
        uint16_t h;
        memcpy(&h, (const uint8_t *)t->data + 2 * i, 2);
        CHECK_MSG(ss_f16_to_f32(h) == f16_values[i], "f16[%d] = %g, want %g", i, ss_f16_to_f32(h), f16_values[i]);
    }
    t = ss_checkpoint_find(ck, "w.bf16");
    CHECK(t && t->dtype == SS_BF16 && t->ndim == 2 && t->shape[0] == 1 && t->shape[1] == 2);
    for (int i = 0; t && i < 2; i++) {
        uint16_t h;
        memcpy(&h, (const uint8_t *)t->data + 2 * i, 2);
        CHECK_MSG(ss_bf16_to_f32(h) == bf16_values[i], "bf16[%d] = %g", i, ss_bf16_to_f32(h));
    }
    t = ss_checkpoint_find(ck, "w.empty");
    CHECK(t && t->nbytes == 0 && t->shape[0] == 0);
    CHECK(ss_checkpoint_find(ck, "__metadata__") == NULL);
    CHECK(ss_checkpoint_find(ck, "w.missing") == NULL);
    /* tensor(i) enumerates exactly the tensors find() knows */
    for (int i = 0; i < ss_checkpoint_count(ck); i++) {
        const ss_tensor *e = ss_checkpoint_tensor(ck, i);
        CHECK(e && ss_checkpoint_find(ck, e->name) == e);
    }
    CHECK(ss_checkpoint_tensor(ck, 4) == NULL && ss_checkpoint_tensor(ck, -1) == NULL);

    /* expect: right shape, wrong shape, wrong rank, missing */
    const ss_tensor *got = NULL;
    CHECK(ss_checkpoint_expect(ck, "w.f32", 2, (int64_t[]){2, 3}, &got, &err) == SS_OK &&
          got == ss_checkpoint_find(ck, "w.f32"));
    CHECK(ss_checkpoint_expect(ck, "w.f32", 2, (int64_t[]){3, 2}, NULL, &err) == SS_EFORMAT);
    CHECK_MSG(strstr(err.msg, "tensor 'w.f32' has shape [2, 3] but the config needs [3, 2]") != NULL, "%s", err.msg);
    check_message(&err, "w.f32", "model.safetensors");
    CHECK(ss_checkpoint_expect(ck, "w.f16", 2, (int64_t[]){4, 1}, NULL, &err) == SS_EFORMAT);
    CHECK_MSG(strstr(err.msg, "has shape [4] but the config needs [4, 1]") != NULL, "%s", err.msg);
    CHECK(ss_checkpoint_expect(ck, "lm_head.weight", 1, (int64_t[]){4}, NULL, &err) == SS_EFORMAT);
    check_message(&err, "missing tensor 'lm_head.weight'", tmp_dir);
    ss_checkpoint_close(ck);
    remove_file("model.safetensors");
}

/* ---------------------------------------------------------------- sharded */

/* Shard 1 holds a, shard 2 holds b and c. */
static void write_shards(void) {
    float a[4] = {1, 2, 3, 4}, bc[3] = {-1, -2, 7};
    write_blob("model-00001-of-00002.safetensors",
               make_file("{\"a\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [0, 16]}}", a, 16, 0));
    write_blob("model-00002-of-00002.safetensors",
               make_file("{\"b\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]},"
                         " \"c\": {\"dtype\": \"BF16\", \"shape\": [2], \"data_offsets\": [8, 12]}}", bc, 12, 0));
}

static void write_index(const char *weight_map) {
    char text[512];
    snprintf(text, sizeof text, "{\"metadata\": {\"total_size\": 24}, \"weight_map\": %s}", weight_map);
    write_file("model.safetensors.index.json", text, strlen(text));
}

/* Opens the folder expecting failure with status and a message naming culprit and file. */
static void check_open_fails(ss_status want, const char *culprit, const char *file) {
    ss_checkpoint *ck = (ss_checkpoint *)&ck; /* must be reset to NULL */
    ss_error err = {0};
    ss_status st = ss_checkpoint_open(tmp_dir, &ck, &err);
    CHECK_MSG(st == want, "status %s, want %s (%s)", ss_status_name(st), ss_status_name(want), err.msg);
    CHECK(ck == NULL);
    check_message(&err, culprit, file);
}

static void test_sharded(void) {
    write_shards();
    write_index("{\"a\": \"model-00001-of-00002.safetensors\", \"b\": \"model-00002-of-00002.safetensors\","
                " \"c\": \"model-00002-of-00002.safetensors\"}");
    ss_checkpoint *ck = NULL;
    ss_error err = {0};
    ss_status st = ss_checkpoint_open(tmp_dir, &ck, &err);
    CHECK_MSG(st == SS_OK, "%s", err.msg);
    if (st == SS_OK) {
        CHECK(ss_checkpoint_count(ck) == 3);
        const ss_tensor *a = ss_checkpoint_find(ck, "a"), *b = ss_checkpoint_find(ck, "b"), *c = ss_checkpoint_find(ck, "c");
        CHECK(a && strstr(a->file, "model-00001-of-00002.safetensors"));
        CHECK(b && strstr(b->file, "model-00002-of-00002.safetensors"));
        CHECK(c && c->file == b->file && c->dtype == SS_BF16 && c->nbytes == 4);
        float va = 0, vb = 0;
        if (a) memcpy(&va, (const uint8_t *)a->data + 12, 4);
        if (b) memcpy(&vb, (const uint8_t *)b->data + 4, 4);
        CHECK(va == 4.0f && vb == -2.0f);
        ss_checkpoint_close(ck);
    }

    /* a shard listed but missing */
    write_index("{\"a\": \"model-00001-of-00002.safetensors\", \"c\": \"model-00003-of-00003.safetensors\"}");
    check_open_fails(SS_EIO, "model-00003-of-00003.safetensors", "model.safetensors.index.json");
    /* the index names a tensor absent from its shard */
    write_index("{\"a\": \"model-00001-of-00002.safetensors\", \"zz\": \"model-00002-of-00002.safetensors\"}");
    check_open_fails(SS_EFORMAT, "'zz'", "model.safetensors.index.json");
    /* the tensor exists, but in another shard than the index says */
    write_index("{\"a\": \"model-00001-of-00002.safetensors\", \"b\": \"model-00002-of-00002.safetensors\","
                " \"c\": \"model-00001-of-00002.safetensors\"}");
    check_open_fails(SS_EFORMAT, "tensor 'c' is in", "model.safetensors.index.json");
    /* a shard name that leaves the folder */
    write_index("{\"a\": \"../model-00001-of-00002.safetensors\"}");
    check_open_fails(SS_EFORMAT, "'a'", "model.safetensors.index.json");
    write_index("{\"a\": 7}");
    check_open_fails(SS_EFORMAT, "'a'", "model.safetensors.index.json");
    write_index("[1]");
    check_open_fails(SS_EFORMAT, "weight_map", "model.safetensors.index.json");
    write_file("model.safetensors.index.json", "{\"weight_map\": {", 16);
    check_open_fails(SS_EFORMAT, "line 1", "model.safetensors.index.json");
    /* the same tensor in two shards */
    float x[1] = {5};
    write_blob("model-00002-of-00002.safetensors",
               make_file("{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}}", x, 4, 0));
    write_index("{\"a\": \"model-00001-of-00002.safetensors\", \"b\": \"model-00002-of-00002.safetensors\"}");
    check_open_fails(SS_EFORMAT, "duplicate tensor 'a'", "model-00002-of-00002.safetensors");

    remove_file("model.safetensors.index.json");
    remove_file("model-00001-of-00002.safetensors");
    remove_file("model-00002-of-00002.safetensors");
}

/* ---------------------------------------------------------------- broken files */

static void test_missing(void) {
    check_open_fails(SS_EIO, "no model.safetensors or model.safetensors.index.json", tmp_dir);
    ss_checkpoint *ck = NULL;
    ss_error err = {0};
    CHECK(ss_checkpoint_open("/nonexistent/specscope/folder", &ck, &err) == SS_EIO && ck == NULL);
    check_message(&err, "not found", "/nonexistent/specscope/folder");
}

/* Truncated files on disk: the message names the path. */
static void test_truncated_files(void) {
    write_file("model.safetensors", "\x10\0\0\0\0", 5);
    check_open_fails(SS_EIO, "too short", "model.safetensors");
    write_file("model.safetensors", "", 0);
    check_open_fails(SS_EIO, "too short", "model.safetensors");
    float v[2] = {1, 2};
    write_blob("model.safetensors",
               make_file("{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}}", v, 8, 4096));
    check_open_fails(SS_EIO, "header length 4096", "model.safetensors");
    /* cut inside the data section: the last tensor's range runs past the end */
    blob b = valid_file();
    write_file("model.safetensors", b.bytes, b.len - 3);
    free(b.bytes);
    check_open_fails(SS_EFORMAT, "'w.bf16'", "model.safetensors");
    remove_file("model.safetensors");
}

typedef struct {
    const char *what;
    const char *header;
    size_t data_len;
    ss_status status;
    const char *culprit; /* must appear in the message */
} bad_header;

static const bad_header bad_headers[] = {
    {"offsets out of range", "{\"up\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [0, 16]}}", 8, SS_EFORMAT,
     "tensor 'up': data_offsets [0, 16) end past data section (8 bytes)"},
    {"end before begin", "{\"up\": {\"dtype\": \"F32\", \"shape\": [0], \"data_offsets\": [8, 4]}}", 8, SS_EFORMAT,
     "tensor 'up'"},
    {"overlap", "{\"a\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [0, 16]},"
                " \"b\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [8, 24]}}", 24, SS_EFORMAT,
     "tensor 'b': data_offsets [8, 24) overlap tensor 'a'"},
    {"overlap inside a long range", "{\"a\": {\"dtype\": \"F32\", \"shape\": [8], \"data_offsets\": [0, 32]},"
                                    " \"b\": {\"dtype\": \"F32\", \"shape\": [0], \"data_offsets\": [4, 4]},"
                                    " \"c\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [12, 16]}}",
     32, SS_EFORMAT, "tensor 'c': data_offsets [12, 16) overlap tensor 'a'"},
    {"shape vs bytes", "{\"w\": {\"dtype\": \"BF16\", \"shape\": [3, 3], \"data_offsets\": [0, 16]}}", 16, SS_EFORMAT,
     "tensor 'w': shape x BF16 needs 18 bytes but data_offsets [0, 16) hold 16"},
    {"dtype I64", "{\"pos\": {\"dtype\": \"I64\", \"shape\": [2], \"data_offsets\": [0, 16]}}", 16, SS_EUNSUPPORTED,
     "tensor 'pos': dtype 'I64'"},
    {"dtype F8", "{\"q\": {\"dtype\": \"F8_E4M3\", \"shape\": [2], \"data_offsets\": [0, 2]}}", 2, SS_EUNSUPPORTED,
     "tensor 'q': dtype 'F8_E4M3'"},
    {"duplicate", "{\"dup.weight\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]},"
                  " \"dup.weight\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [4, 8]}}", 8, SS_EFORMAT,
     "dup.weight"},
    {"malformed JSON", "{\"a\": {\"dtype\": \"F32\", \"shape\": [1], ", 4, SS_EFORMAT, "header is not valid JSON"},
    {"not an object", "[1, 2, 3]", 0, SS_EFORMAT, "header is not a JSON object"},
    {"empty header", "", 0, SS_EFORMAT, "header is not valid JSON"},
    {"entry not an object", "{\"a\": [1]}", 0, SS_EFORMAT, "tensor 'a'"},
    {"no dtype", "{\"a\": {\"shape\": [1], \"data_offsets\": [0, 4]}}", 4, SS_EFORMAT, "tensor 'a': field 'dtype'"},
    {"dtype not a string", "{\"a\": {\"dtype\": 4, \"shape\": [1], \"data_offsets\": [0, 4]}}", 4, SS_EFORMAT,
     "tensor 'a': field 'dtype'"},
    {"no shape", "{\"a\": {\"dtype\": \"F32\", \"data_offsets\": [0, 4]}}", 4, SS_EFORMAT, "tensor 'a': field 'shape'"},
    {"negative dim", "{\"a\": {\"dtype\": \"F32\", \"shape\": [-1], \"data_offsets\": [0, 4]}}", 4, SS_EFORMAT,
     "tensor 'a': shape[0]"},
    {"fractional dim", "{\"a\": {\"dtype\": \"F32\", \"shape\": [1, 1.5], \"data_offsets\": [0, 4]}}", 4, SS_EFORMAT,
     "tensor 'a': shape[1]"},
    {"too many dims", "{\"a\": {\"dtype\": \"F32\", \"shape\": [1, 1, 1, 1, 1], \"data_offsets\": [0, 4]}}", 4,
     SS_EUNSUPPORTED, "tensor 'a': shape has 5 dimensions"},
    {"element count overflow",
     "{\"a\": {\"dtype\": \"F32\", \"shape\": [4294967296, 4294967296, 2], \"data_offsets\": [0, 4]}}", 4, SS_EFORMAT,
     "tensor 'a': shape overflows"},
    {"byte count overflow", "{\"a\": {\"dtype\": \"F32\", \"shape\": [4611686018427387904], \"data_offsets\": [0, 4]}}",
     4, SS_EFORMAT, "tensor 'a': shape overflows"},
    {"no offsets", "{\"a\": {\"dtype\": \"F32\", \"shape\": [1]}}", 4, SS_EFORMAT, "tensor 'a': field 'data_offsets'"},
    {"one offset", "{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [4]}}", 4, SS_EFORMAT,
     "tensor 'a': field 'data_offsets'"},
    {"negative offset", "{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [-4, 0]}}", 4, SS_EFORMAT,
     "tensor 'a': field 'data_offsets'"},
    {"metadata not an object", "{\"__metadata__\": 3}", 0, SS_EFORMAT, "__metadata__"},
    {"misaligned element", "{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [2, 6]}}", 8,
     SS_EUNSUPPORTED, "tensor 'a': data at offset 2 is not aligned"},
};

/* Each bad header fails with its status and message, and leaves the checkpoint as it was. */
static void test_bad_headers(void) {
    uint8_t zeros[64] = {0};
    float one = 1.0f;
    for (size_t i = 0; i < sizeof bad_headers / sizeof bad_headers[0]; i++) {
        const bad_header *c = &bad_headers[i];
        ss_checkpoint *ck = ss_checkpoint_new();
        ss_error err = {0};
        blob good = make_file("{\"keep\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}}", &one, 4, 0);
        CHECK(ss_checkpoint_add_buffer(ck, good.bytes, good.len, "good.safetensors", &err) == SS_OK);
        blob b = make_file(c->header, zeros, c->data_len, 0);
        ss_status st = ss_checkpoint_add_buffer(ck, b.bytes, b.len, "bad.safetensors", &err);
        CHECK_MSG(st == c->status, "%s: status %s, want %s (%s)", c->what, ss_status_name(st),
                  ss_status_name(c->status), err.msg);
        check_message(&err, c->culprit, "bad.safetensors");
        CHECK_MSG(ss_checkpoint_count(ck) == 1 && ss_checkpoint_find(ck, "keep"), "%s: checkpoint changed", c->what);
        ss_checkpoint_close(ck);
        free(b.bytes);
        free(good.bytes);
    }
}

/* A tensor name in a second buffer that the first already holds. */
static void test_duplicate_across_buffers(void) {
    float v = 2.0f;
    ss_checkpoint *ck = ss_checkpoint_new();
    ss_error err = {0};
    blob b = make_file("{\"x\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}}", &v, 4, 0);
    CHECK(ss_checkpoint_add_buffer(ck, b.bytes, b.len, "one.safetensors", &err) == SS_OK);
    CHECK(ss_checkpoint_add_buffer(ck, b.bytes, b.len, "two.safetensors", &err) == SS_EFORMAT);
    check_message(&err, "duplicate tensor 'x' (already in one.safetensors)", "two.safetensors");
    CHECK(ss_checkpoint_count(ck) == 1);
    const ss_tensor *t = ss_checkpoint_find(ck, "x");
    CHECK(t && strcmp(t->file, "one.safetensors") == 0);
    ss_checkpoint_close(ck);
    free(b.bytes);
}

/* Names are copied: the checkpoint does not point into the header JSON or the caller's strings. */
static void test_names_owned(void) {
    float v[2] = {1, 2};
    char file[32] = "scratch.safetensors";
    ss_checkpoint *ck = ss_checkpoint_new();
    ss_error err = {0};
    blob b = make_file("{\"long.tensor.name\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}}", v, 8, 0);
    CHECK(ss_checkpoint_add_buffer(ck, b.bytes, b.len, file, &err) == SS_OK);
    memset(b.bytes + 8, 'X', 20); /* scribble over the header JSON */
    memset(file, 'Y', 10);
    const ss_tensor *t = ss_checkpoint_find(ck, "long.tensor.name");
    CHECK(t && strcmp(t->name, "long.tensor.name") == 0 && strcmp(t->file, "scratch.safetensors") == 0);
    ss_checkpoint_close(ck);
    free(b.bytes);
}

int main(void) {
    snprintf(tmp_dir, sizeof tmp_dir, "/tmp/ss_safetensors_XXXXXX");
    if (!mkdtemp(tmp_dir)) {
        perror("mkdtemp");
        return 1;
    }
    test_valid_single();
    test_sharded();
    test_missing();
    test_truncated_files();
    test_bad_headers();
    test_duplicate_across_buffers();
    test_names_owned();
    rmdir(tmp_dir);
    return check_done();
}
