/* safetensors.h — memory-mapped safetensors checkpoints (single file or sharded).
 *
 * ss_checkpoint_open() maps every shard, parses and validates each header (length inside the file,
 * known dtype, shape x dtype size == byte count, byte ranges inside the data section and not
 * overlapping) and indexes the tensors by name. Tensors stay in the mapping: no copy.
 */
#ifndef SPECSCOPE_SAFETENSORS_H
#define SPECSCOPE_SAFETENSORS_H

#include "specscope.h"

#define SS_MAX_DIMS 4

typedef struct {
    const char *name;
    ss_dtype dtype;
    int ndim;
    int64_t shape[SS_MAX_DIMS];
    const void *data; /* inside the mapping; aligned to the element size when the writer aligned it (the
                         safetensors library does), so read through memcpy or check the alignment */
    size_t nbytes;
    const char *file; /* path of the shard that holds it */
} ss_tensor;

typedef struct ss_checkpoint ss_checkpoint;

/* dir holds model.safetensors, or model.safetensors.index.json + the shards it names. */
ss_status ss_checkpoint_open(const char *dir, ss_checkpoint **out, ss_error *err);
/* One safetensors file by path (a LoRA adapter's adapter_model.safetensors). */
ss_status ss_checkpoint_open_file(const char *path, ss_checkpoint **out, ss_error *err);
void ss_checkpoint_close(ss_checkpoint *ck);
const ss_tensor *ss_checkpoint_find(const ss_checkpoint *ck, const char *name);
int ss_checkpoint_count(const ss_checkpoint *ck);
const ss_tensor *ss_checkpoint_tensor(const ss_checkpoint *ck, int i);

/* Parses one safetensors header held in memory (the whole file: 8-byte length + JSON + data).
 * Exposed for tests and the fuzzer. file names the source in messages. Tensors are appended to
 * the checkpoint; their data points into buf, which must outlive it (names and file are copied).
 * On failure the checkpoint is unchanged. */
ss_status ss_checkpoint_add_buffer(ss_checkpoint *ck, const void *buf, size_t len, const char *file,
                                   ss_error *err);
ss_checkpoint *ss_checkpoint_new(void);

/* Checks that a tensor exists with this exact shape (ndim dims) and a float dtype; the message
 * names the tensor, the file and the shapes. */
ss_status ss_checkpoint_expect(const ss_checkpoint *ck, const char *name, int ndim, const int64_t *shape,
                               const ss_tensor **out, ss_error *err);

#endif
