/* ids.c — growable token-id lists. */
#include <stdlib.h>

#include "specscope.h"

ss_status ss_ids_push(ss_ids *ids, int id, ss_error *err) {
    if (ids->n == ids->cap) {
        int cap = ids->cap ? ids->cap * 2 : 64;
        int *p = realloc(ids->ids, (size_t)cap * sizeof *p);
        if (!p) return ss_fail(err, SS_ENOMEM, "out of memory growing a token list to %d ids", cap);
        ids->ids = p;
        ids->cap = cap;
    }
    ids->ids[ids->n++] = id;
    return SS_OK;
}

void ss_ids_free(ss_ids *ids) {
    free(ids->ids);
    ids->ids = NULL;
    ids->n = ids->cap = 0;
}
