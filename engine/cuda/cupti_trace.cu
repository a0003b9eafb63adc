/* cupti_trace.cu — GPU activity into the tracer (trace.h): CUPTI's activity API with the
 * buffer-requested / buffer-completed callbacks, collecting kernels (CONCURRENT_KERNEL) and copies
 * (MEMCPY). Kernels that are nodes of a CUDA graph launch come as ordinary kernel records, with the
 * graph's id and the graph launch's correlation id, so the decode steps' graphs are traced too.
 *
 * CUPTI stamps its records with ss_trace_now_ns (cuptiActivityRegisterTimestampCallback), so GPU
 * events share the host spans' clock; where that call is missing the offset between the clocks is
 * measured once at start instead.
 *
 * libcupti is opened with dlopen, not linked: a program linked against it would not start on a
 * machine whose loader path lacks it, and tracing is optional. SPECSCOPE_CUPTI_LIB names the file
 * when it is elsewhere (e.g. the copy in Python's nvidia/cuda_cupti/lib). */
#include <cxxabi.h>
#include <dlfcn.h>
#include <pthread.h>

#include <atomic>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cuda_runtime.h>
#include <cupti.h>

extern "C" {
#include "trace.h"
}

namespace {

const size_t kBufferBytes = 8u << 20; /* one activity buffer; CUPTI asks for more as it fills them */
const size_t kBufferAlign = 8;

struct cupti_lib {
    void *handle;
    decltype(&cuptiActivityRegisterCallbacks) register_callbacks;
    decltype(&cuptiActivityRegisterTimestampCallback) register_timestamp; /* optional */
    decltype(&cuptiActivityEnable) enable;
    decltype(&cuptiActivityDisable) disable;
    decltype(&cuptiActivityFlushAll) flush_all;
    decltype(&cuptiActivityGetNextRecord) next_record;
    decltype(&cuptiActivityGetNumDroppedRecords) num_dropped;
    decltype(&cuptiGetTimestamp) get_timestamp;
    decltype(&cuptiGetResultString) result_string;
};

/* CUPTI's callbacks take no user pointer: the one collection's state is process-wide. */
struct collector {
    pthread_mutex_t lock; /* guards tracer against the completed-buffer callback */
    cupti_lib lib;
    bool loaded, callbacks_registered, timestamps_ours;
    ss_tracer *tracer;     /* NULL: not collecting */
    int64_t offset_ns;     /* added to CUPTI times when they are not ours */
};

collector g = {PTHREAD_MUTEX_INITIALIZER, {}, false, false, false, NULL, 0};

/* Whether a collection runs, for ss_trace_gpu_running (read per op: no lock). */
std::atomic<bool> collecting{false};

uint64_t CUPTIAPI host_clock() { return ss_trace_now_ns(); }

const char *result_name(CUptiResult r) {
    const char *s = NULL;
    if (g.lib.result_string) g.lib.result_string(r, &s);
    return s ? s : "unknown CUPTI error";
}

ss_status load_library(ss_error *err) {
    if (g.loaded) return SS_OK;
    const char *path = getenv("SPECSCOPE_CUPTI_LIB");
    if (!path || !*path) path = "libcupti.so.13";
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h)
        return ss_fail(err, SS_EUNSUPPORTED, "trace: cannot open %s (%s); set SPECSCOPE_CUPTI_LIB to its path", path,
                       dlerror());
    cupti_lib lib = {};
    lib.handle = h;
    struct {
        void **slot;
        const char *name;
    } syms[] = {
        {(void **)&lib.register_callbacks, "cuptiActivityRegisterCallbacks"},
        {(void **)&lib.enable, "cuptiActivityEnable"},
        {(void **)&lib.disable, "cuptiActivityDisable"},
        {(void **)&lib.flush_all, "cuptiActivityFlushAll"},
        {(void **)&lib.next_record, "cuptiActivityGetNextRecord"},
        {(void **)&lib.num_dropped, "cuptiActivityGetNumDroppedRecords"},
        {(void **)&lib.get_timestamp, "cuptiGetTimestamp"},
        {(void **)&lib.result_string, "cuptiGetResultString"},
    };
    for (auto &s : syms)
        if (!(*s.slot = dlsym(h, s.name))) {
            dlclose(h);
            return ss_fail(err, SS_EUNSUPPORTED, "trace: %s has no %s", path, s.name);
        }
    lib.register_timestamp =
        (decltype(&cuptiActivityRegisterTimestampCallback))dlsym(h, "cuptiActivityRegisterTimestampCallback");
    g.lib = lib;
    g.loaded = true;
    return SS_OK;
}

void CUPTIAPI buffer_requested(uint8_t **buffer, size_t *size, size_t *max_records) {
    void *p = NULL;
    if (posix_memalign(&p, kBufferAlign, kBufferBytes) != 0) p = NULL;
    *buffer = (uint8_t *)p;
    *size = p ? kBufferBytes : 0; /* no buffer: CUPTI drops the records and counts them */
    *max_records = 0;
}

/* The demangled, shortened kernel name (the raw one when it does not demangle: extern "C"). */
void kernel_name(const char *raw, char *out, size_t len) {
    int status = -1;
    char *demangled = raw ? abi::__cxa_demangle(raw, NULL, NULL, &status) : NULL;
    ss_trace_short_name(status == 0 && demangled ? demangled : raw ? raw : "?", out, len);
    free(demangled);
}

/* A record a forced flush handed over before its activity finished has no end yet: dropped. */
bool complete(uint64_t start, uint64_t end) { return start != 0 && end >= start; }

void add_kernel(ss_tracer *t, const CUpti_ActivityKernel10 *k) {
    if (!complete(k->start, k->end)) return ss_tracer_add_dropped(t, 1);
    ss_trace_event ev = {};
    kernel_name(k->name, ev.name, sizeof ev.name);
    ev.layer = ev.step = -1;
    ev.start_ns = (uint64_t)((int64_t)k->start + g.offset_ns);
    ev.dur_ns = k->end > k->start ? k->end - k->start : 0;
    ev.track = SS_TRACK_GPU_KERNEL;
    ev.correlation = k->correlationId;
    ev.graph_id = k->graphId;
    ss_tracer_add(t, &ev);
}

const char *copy_kind(uint8_t kind) {
    switch (kind) {
    case CUPTI_ACTIVITY_MEMCPY_KIND_HTOD: return "memcpy HtoD";
    case CUPTI_ACTIVITY_MEMCPY_KIND_DTOH: return "memcpy DtoH";
    case CUPTI_ACTIVITY_MEMCPY_KIND_DTOD: return "memcpy DtoD";
    case CUPTI_ACTIVITY_MEMCPY_KIND_HTOH: return "memcpy HtoH";
    case CUPTI_ACTIVITY_MEMCPY_KIND_PTOP: return "memcpy PtoP";
    default: return "memcpy";
    }
}

void add_copy(ss_tracer *t, const CUpti_ActivityMemcpy6 *c) {
    if (!complete(c->start, c->end)) return ss_tracer_add_dropped(t, 1);
    ss_trace_event ev = {};
    snprintf(ev.name, sizeof ev.name, "%s", copy_kind(c->copyKind));
    ev.layer = ev.step = -1;
    ev.start_ns = (uint64_t)((int64_t)c->start + g.offset_ns);
    ev.dur_ns = c->end > c->start ? c->end - c->start : 0;
    ev.track = SS_TRACK_GPU_MEMCPY;
    ev.correlation = c->correlationId;
    ev.graph_id = c->graphId;
    ev.bytes = c->bytes;
    ss_tracer_add(t, &ev);
}

void CUPTIAPI buffer_completed(CUcontext ctx, uint32_t stream, uint8_t *buffer, size_t size, size_t valid) {
    pthread_mutex_lock(&g.lock);
    ss_tracer *t = g.tracer; /* records arriving after stop (none: stop flushes first) are dropped */
    CUpti_Activity *rec = NULL;
    while (t && g.lib.next_record(buffer, valid, &rec) == CUPTI_SUCCESS) {
        if (rec->kind == CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL || rec->kind == CUPTI_ACTIVITY_KIND_KERNEL)
            add_kernel(t, (const CUpti_ActivityKernel10 *)rec);
        else if (rec->kind == CUPTI_ACTIVITY_KIND_MEMCPY)
            add_copy(t, (const CUpti_ActivityMemcpy6 *)rec);
    }
    size_t dropped = 0;
    if (t && g.lib.num_dropped(ctx, stream, &dropped) == CUPTI_SUCCESS && dropped) ss_tracer_add_dropped(t, (long)dropped);
    pthread_mutex_unlock(&g.lock);
    free(buffer);
}

/* Registers the callbacks (once per process) and the clock, enables the two kinds. */
ss_status enable_collection(ss_error *err) {
    CUptiResult r;
    if (!g.callbacks_registered) {
        /* The clock first: it must be set before any kind is enabled. */
        g.timestamps_ours = g.lib.register_timestamp && g.lib.register_timestamp(host_clock) == CUPTI_SUCCESS;
        if ((r = g.lib.register_callbacks(buffer_requested, buffer_completed)) != CUPTI_SUCCESS)
            return ss_fail(err, SS_EUNSUPPORTED, "trace: CUPTI refused the activity callbacks: %s", result_name(r));
        g.callbacks_registered = true;
    }
    g.offset_ns = 0;
    uint64_t cupti_now = 0;
    if (!g.timestamps_ours && g.lib.get_timestamp(&cupti_now) == CUPTI_SUCCESS)
        g.offset_ns = (int64_t)ss_trace_now_ns() - (int64_t)cupti_now;
    if ((r = g.lib.enable(CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL)) != CUPTI_SUCCESS)
        return ss_fail(err, SS_EUNSUPPORTED, "trace: CUPTI cannot trace kernels here: %s", result_name(r));
    if ((r = g.lib.enable(CUPTI_ACTIVITY_KIND_MEMCPY)) != CUPTI_SUCCESS) {
        g.lib.disable(CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL);
        return ss_fail(err, SS_EUNSUPPORTED, "trace: CUPTI cannot trace copies here: %s", result_name(r));
    }
    return SS_OK;
}

} // namespace

extern "C" ss_status ss_trace_gpu_start(ss_tracer *t, ss_error *err) {
    if (!t) return ss_fail(err, SS_EARG, "trace: GPU collection needs a tracer");
    int devices = 0;
    cudaError_t ce = cudaGetDeviceCount(&devices);
    if (ce != cudaSuccess || devices == 0)
        return ss_fail(err, SS_EUNSUPPORTED, "trace: no CUDA device for kernel timelines (%s)",
                       ce != cudaSuccess ? cudaGetErrorString(ce) : "none found");
    pthread_mutex_lock(&g.lock);
    bool busy = g.tracer != NULL;
    pthread_mutex_unlock(&g.lock);
    if (busy) return ss_fail(err, SS_EARG, "trace: a GPU collection is already running");
    ss_status st = load_library(err);
    if (!st) st = enable_collection(err);
    if (st) return st;
    pthread_mutex_lock(&g.lock);
    g.tracer = t;
    pthread_mutex_unlock(&g.lock);
    collecting = true;
    return SS_OK;
}

extern "C" bool ss_trace_gpu_running(void) { return collecting; }

extern "C" ss_status ss_trace_gpu_flush(ss_error *err) {
    if (!collecting) return SS_OK;
    /* Forced: the buffer being filled too; the records of work still running come back without an
     * end and are dropped (add_kernel), so callers flush after work they have waited for. */
    CUptiResult r = g.lib.flush_all(CUPTI_ACTIVITY_FLAG_FLUSH_FORCED);
    return r == CUPTI_SUCCESS ? SS_OK : ss_fail(err, SS_EDEVICE, "trace: CUPTI flush: %s", result_name(r));
}

extern "C" ss_status ss_trace_gpu_stop(ss_error *err) {
    pthread_mutex_lock(&g.lock);
    bool running = g.tracer != NULL;
    pthread_mutex_unlock(&g.lock);
    if (!running) return SS_OK;
    cudaError_t ce = cudaDeviceSynchronize(); /* every record of the work issued so far is complete */
    /* Forced: hands over the buffers still being filled too (buffer_completed runs inside). */
    CUptiResult r = g.lib.flush_all(CUPTI_ACTIVITY_FLAG_FLUSH_FORCED);
    g.lib.disable(CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL);
    g.lib.disable(CUPTI_ACTIVITY_KIND_MEMCPY);
    pthread_mutex_lock(&g.lock);
    g.tracer = NULL;
    pthread_mutex_unlock(&g.lock);
    collecting = false;
    if (ce != cudaSuccess)
        return ss_fail(err, SS_EDEVICE, "trace: waiting for the device before the CUPTI flush: %s",
                       cudaGetErrorString(ce));
    if (r != CUPTI_SUCCESS) return ss_fail(err, SS_EDEVICE, "trace: CUPTI flush: %s", result_name(r));
    return SS_OK;
}
