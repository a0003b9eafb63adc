/* test_fixtures.c — the engine's logits against Hugging Face transformers' on real checkpoints.
 *
 * Every folder under tests/fixtures/ with a reference.json (made by scripts/make_fixtures.py) is a
 * checkpoint plus reference.json = {"vocab": V, "cases": [{"ids": [...], "logits": "logits0.f32",
 * "greedy": [...]}]}, where the logits file holds little-endian float32 [len(ids), V]: the HF logits at
 * every prompt position, computed in fp32. Per position, max |a - b| / max(1e-6, max |ref|) must stay
 * <= 1e-4 for folders named *-f32 and <= 2e-2 for *-bf16; for *-f32 greedy decoding (batch prefill,
 * then one position at a time) must give exactly the reference ids.
 *
 * Usage: test_fixtures [cpu|cuda|auto]  (default cpu; cuda skips when no device is present). */
#include <dirent.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "check.h"
#include "sampler.h"

#define SKIP 77

static bool ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

static float *read_floats(const char *path, size_t count) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    float *p = malloc(count * sizeof *p);
    bool ok = p && fread(p, sizeof *p, count, f) == count && fgetc(f) == EOF;
    fclose(f);
    if (!ok) {
        free(p);
        return NULL;
    }
    return p;
}

static int *json_ids(const json_t *arr, int *n) {
    *n = json_is_array(arr) ? (int)json_array_size(arr) : 0;
    int *ids = malloc((size_t)(*n ? *n : 1) * sizeof *ids);
    for (int i = 0; i < *n; i++) ids[i] = (int)json_integer_value(json_array_get(arr, (size_t)i));
    return ids;
}

/* Logits at every prompt position, then greedy continuation (f32 fixtures). */
static void run_case(ss_model *m, const char *dir, const char *name, int index, const json_t *c, int vocab,
                     double tol, bool check_greedy) {
    int n, n_greedy;
    int *ids = json_ids(json_object_get(c, "ids"), &n), *greedy = json_ids(json_object_get(c, "greedy"), &n_greedy);
    const char *file = json_string_value(json_object_get(c, "logits"));
    char path[2048];
    snprintf(path, sizeof path, "%s/%s", dir, file ? file : "");
    float *ref = n > 0 && file ? read_floats(path, (size_t)n * vocab) : NULL;
    CHECK_MSG(ref != NULL, "%s case %d: no ids, or %s is not %d x %d float32", name, index, path, n, vocab);
    int total = n + n_greedy;
    float *logits = malloc((size_t)(n > 1 ? n : 1) * vocab * sizeof *logits);
    int *pos = malloc((size_t)(total > 0 ? total : 1) * sizeof *pos);
    for (int i = 0; i < total; i++) pos[i] = i;
    ss_error err = {0};
    if (ref && ss_model_forward(m, ids, pos, n, logits, false, &err) == SS_OK) {
        double worst = 0;
        int worst_at = 0;
        for (int p = 0; p < n; p++) {
            double diff = 0, scale = 1e-6;
            for (int v = 0; v < vocab; v++) {
                size_t at = (size_t)p * vocab + v;
                diff = fmax(diff, fabs(logits[at] - ref[at]));
                scale = fmax(scale, fabs(ref[at]));
            }
            if (diff / scale > worst) worst = diff / scale, worst_at = p;
        }
        printf("%s case %d: %d positions, max relative logit error %.3g at position %d (tolerance %g)\n", name, index,
               n, worst, worst_at, tol);
        CHECK_MSG(worst <= tol, "%s case %d: relative error %g at position %d", name, index, worst, worst_at);

        if (check_greedy && n_greedy > 0) {
            int *out = malloc((size_t)n_greedy * sizeof *out), got = 0;
            out[got++] = ss_argmax(logits + (size_t)(n - 1) * vocab, vocab);
            while (got < n_greedy) {
                int tok = out[got - 1];
                if (ss_model_forward(m, &tok, &pos[n + got - 1], 1, logits, true, &err) != SS_OK) break;
                out[got++] = ss_argmax(logits, vocab);
            }
            int same = 0;
            while (same < got && out[same] == greedy[same]) same++;
            printf("%s case %d: greedy %d of %d ids match\n", name, index, same, n_greedy);
            CHECK_MSG(same == n_greedy, "%s case %d: greedy ids differ from position %d (%d vs reference %d)%s%s",
                      name, index, same, same < got ? out[same] : -1, greedy[same], err.msg[0] ? ": " : "", err.msg);
            free(out);
        }
    }
    CHECK_MSG(err.status == SS_OK, "%s case %d: %s", name, index, err.msg);
    free(ids);
    free(greedy);
    free(ref);
    free(logits);
    free(pos);
}

static void run_fixture(const char *dir, const char *name, ss_backend_kind backend) {
    char path[2048];
    snprintf(path, sizeof path, "%s/reference.json", dir);
    json_error_t jerr;
    json_t *root = json_load_file(path, 0, &jerr);
    const json_t *cases = json_object_get(root, "cases");
    int vocab = (int)json_integer_value(json_object_get(root, "vocab"));
    CHECK_MSG(root && json_is_array(cases) && vocab > 0, "%s: unreadable: %s", path, root ? "no cases/vocab" : jerr.text);
    if (!root || !json_is_array(cases) || vocab <= 0) {
        json_decref(root);
        return;
    }
    bool f32 = ends_with(name, "-f32"), bf16 = ends_with(name, "-bf16");
    CHECK_MSG(f32 || bf16, "%s: the folder name must end in -f32 or -bf16 (it sets the tolerance)", name);
    int longest = 0;
    for (size_t i = 0; i < json_array_size(cases); i++) {
        const json_t *c = json_array_get(cases, i);
        int len = (int)(json_array_size(json_object_get(c, "ids")) + json_array_size(json_object_get(c, "greedy")));
        if (len > longest) longest = len;
    }
    ss_model_opts opts = {.dir = dir, .backend = backend, .max_context = longest + 1, .quiet = true};
    ss_model *m = NULL;
    ss_error err = {0};
    CHECK_MSG(ss_model_load(&opts, &m, &err) == SS_OK, "%s: %s", name, err.msg);
    if (m) {
        CHECK_MSG(ss_model_config(m)->vocab_size == vocab, "%s: config vocab %d, reference %d", name,
                  ss_model_config(m)->vocab_size, vocab);
        if (ss_model_config(m)->vocab_size == vocab)
            for (size_t i = 0; i < json_array_size(cases); i++)
                run_case(m, dir, name, (int)i, json_array_get(cases, i), vocab, f32 ? 1e-4 : 2e-2, f32);
        ss_model_free(m);
    }
    json_decref(root);
}

static int by_name(const struct dirent **a, const struct dirent **b) { return strcmp((*a)->d_name, (*b)->d_name); }

int main(int argc, char **argv) {
    ss_backend_kind backend = SS_BACKEND_CPU;
    if (argc > 1 && strcmp(argv[1], "cuda") == 0) {
        char why[256];
        if (!ss_backend_cuda_available(why, sizeof why)) {
            printf("skip: no CUDA device (%s)\n", why);
            return SKIP;
        }
        backend = SS_BACKEND_CUDA;
    } else if (argc > 1 && strcmp(argv[1], "auto") == 0) {
        backend = SS_BACKEND_AUTO;
    } else if (argc > 1 && strcmp(argv[1], "cpu") != 0) {
        fprintf(stderr, "usage: test_fixtures [cpu|cuda|auto]\n");
        return 2;
    }
    struct dirent **entries = NULL;
    int n = scandir(FIXTURES_DIR, &entries, NULL, by_name), found = 0;
    for (int i = 0; i < n; i++) {
        char dir[1024], ref[1100];
        snprintf(dir, sizeof dir, "%s/%s", FIXTURES_DIR, entries[i]->d_name);
        snprintf(ref, sizeof ref, "%s/reference.json", dir);
        FILE *f = entries[i]->d_name[0] != '.' ? fopen(ref, "r") : NULL;
        if (f) {
            fclose(f);
            found++;
            run_fixture(dir, entries[i]->d_name, backend);
        }
        free(entries[i]);
    }
    free(entries);
    if (!found) {
        printf("skip: no folder with a reference.json under %s (scripts/make_fixtures.py makes them)\n", FIXTURES_DIR);
        return SKIP;
    }
    return check_done();
}
