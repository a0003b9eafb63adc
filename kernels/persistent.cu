/* persistent.cu — GEMVs that stream their weights through shared memory with bulk asynchronous
 * copies: a run of decode kernels as one persistent kernel (opt-in: still slower end to end than
 * the separate kernels; docs/cuda.md), and the same machinery for one GEMV launched alone
 * (gemv_ring_kernel, on by default for llama-3.1-8b-sized launches; below).
 *
 * A decode step is ~5 kernels a layer (q/k/v GEMV, attention, o GEMV, gate/up GEMV, down GEMV),
 * each a few to tens of microseconds of weight streaming, and each kernel boundary drains one grid
 * and ramps up the next: with the register-pipelined GEMV (gemv.cu) every launch spends a fixed
 * 5-8 us ramping up and draining, which holds the 1B geometry at ~60% of the copy bandwidth. Here
 * one grid (one block per SM, all resident: 8 computing warps and a producer warp) runs the
 * launches as phases separated by grid barriers, and the weights do not wait for them:
 *
 * - Each computing warp owns a ring of `depth` slots of shared memory (4 KB each, one GEMV step:
 *   the 4 KB of a row, or 2 KB of each of two rows, that a warp of the register kernel loads in one
 *   batch). Lane c of the producer warp fills warp c's slots with bulk copies (bulk.cuh) that
 *   complete the slot's "full" mbarrier; the warp releases a slot through its "empty" one. No
 *   register is held for a byte in flight: a block keeps 128-160 KB of weights in flight.
 * - The producer follows its warp's steps through *every* GEMV phase of the launch (weights never
 *   depend on earlier phases), so while the warp waits at a grid barrier, runs an attention phase
 *   or stages the next input vector, its ring fills with the next projection's weights.
 * - A warp sums a slot with the register kernel's accumulate_batch and finish_unit: each lane sums
 *   the same chunks in the same order, so a phase computes exactly the bits the separate kernel
 *   does with teams of one warp (tests/gpu/test_gpu_ops.c checks it), and greedy speculative
 *   decoding (verification through the register kernel) keeps plain greedy's choices.
 *
 * Measured (H200): long phases stream at 92-99% of the copy bandwidth (lm_head), better than the
 * register kernel, but each phase boundary still costs ~3-4 us of latency (grid barrier, staging
 * the normalised vector, the last warps of a phase, attention), which the rings do not hide in
 * short phases: their copies have landed before the boundary starts.
 *
 * Attention phases run two 128-thread attention blocks per 256 computing threads, each on its own
 * named barrier. What one phase wrote, the next reads through L2 (ld.cg), never a possibly stale
 * L1 line.
 *
 * Deadlock rule: the grid barrier needs every block resident, so the kernel lets the next kernel
 * launch early (PDL) only in its last phase, after the last barrier; and the first phase waits for
 * the previous kernel with the PDL wait, not a barrier.
 *
 * gemv_ring_kernel is one GEMV phase launched alone, one block an SM with 4 slots a warp (128 KB in
 * flight, as the register GEMV keeps): no barrier, so it lets the next kernel launch at its start,
 * and its producer streams from the block's start, before the PDL wait. Measured against the
 * register GEMV (H200, same binary): llama-3.1-8b decode +3.5-4% (every launch of it gains; 5
 * slots a warp gain nothing), llama-3.2-1b -3.5% with only its down projection on the ring and
 * -8% with its gate/up, qwen2.5-0.5b -10% with its down projection. The launch costs a few us more
 * than the register kernel's (the 1B down: ~13 against ~9 us exposed) and then streams faster,
 * which pays only on the larger launches; why the 1B's 33.5 MB down projection loses where the
 * 8B's 33.5 MB o projection gains is not understood yet. */
#include "attention_decode.cuh"
#include "bulk.cuh"
#include "gemv.cuh"

namespace sk {

static_assert(sizeof(persistent_params) <= 32764, "a launch's parameters must fit the 32 KB kernel parameter limit");

/* Bytes of a ring slot: one step of a warp, GEMV_LOADS 16-byte chunks per lane (R rows of
 * SLOT / R bytes each). */
#define BULK_SLOT (32 * 16 * GEMV_LOADS)
#define PERSIST_MAX_DEPTH 8
/* The GEMV_WARPS warps that compute, and one that issues every copy. */
#define PERSIST_THREADS (GEMV_THREADS + 32)
#define PERSIST_PRODUCER GEMV_WARPS

/* The rings' bookkeeping: for each computing warp, a "full" mbarrier a slot (the producer's
 * arrival and the copy's bytes) and an "empty" one (the warp's arrival when it has read the slot),
 * and the producer's copy of the phase it is copying for that warp. */
struct ring_smem {
    uint64_t full[GEMV_WARPS][PERSIST_MAX_DEPTH], empty[GEMV_WARPS][PERSIST_MAX_DEPTH];
    gemv_params prod[GEMV_WARPS];
};


/* The barrier of the computing warps (the producer never waits with them): named barrier 15 (the
 * attention blocks take 1 and 2). */
struct compute_barrier {
    __device__ __forceinline__ void operator()() const {
        asm volatile("bar.sync 15, %0;" ::"n"(GEMV_THREADS) : "memory");
    }
};

/* The grid barrier: a 64-bit count of arrivals that only grows, over every launch on it. Block
 * thread 0 adds its arrival (release: the block's writes, ordered before it by the block's barrier,
 * are visible to whoever sees the count) and polls (acquire) until barrier k of the launch has
 * every block's arrival: base + (k + 1) * blocks, where base, the count when the launch started, is
 * a multiple of blocks (every launch on the counter has the same grid) and is read by each block
 * before its own first arrival, so it reads a value in [base, base + blocks - 1]. One add and one
 * round trip of polling: the reset-and-generation barrier before it (atomicAdd with a result, then
 * a reset and a generation bump by the last block) cost ~2.5 us a phase on the H200. */
struct grid_sync {
    unsigned long long *count, base;
    unsigned k; /* barriers passed in this launch */
};

__device__ __forceinline__ grid_sync grid_sync_start(unsigned long long *count) {
    grid_sync g = {count, 0, 0};
    if (threadIdx.x == 0) {
        unsigned long long v;
        asm volatile("ld.relaxed.gpu.global.u64 %0, [%1];" : "=l"(v) : "l"(count) : "memory");
        g.base = v - v % gridDim.x;
    }
    return g;
}

__device__ __forceinline__ void grid_barrier(grid_sync &g) {
    compute_barrier()();
    if (threadIdx.x == 0) {
        const unsigned long long target = g.base + (unsigned long long)(g.k + 1) * gridDim.x;
        asm volatile("red.release.gpu.global.add.u64 [%0], 1;" ::"l"(g.count) : "memory");
        unsigned long long v;
        do {
            asm volatile("ld.acquire.gpu.global.u64 %0, [%1];" : "=l"(v) : "l"(g.count) : "memory");
        } while (v < target);
    }
    g.k++;
    compute_barrier()();
}

/* What a phase does before the rest: the first phase waits for the previous kernel (PDL), the
 * others for every block to finish the phase before (grid barrier); the last lets the next kernel
 * launch (only then: all of this grid is resident). */
__device__ __forceinline__ void phase_wait(grid_sync &g, bool first, bool last) {
    if (first)
        pdl_wait();
    else
        grid_barrier(g);
    if (last) pdl_launch_dependents();
}

/* Loads per lane and row in a step: a 4 KB slot holds a batch of every row of the unit (2 KB of
 * each row of a pair; the register kernel reads a pair's rows one after the other instead). Lane l
 * sums its chunks of a row in the same increasing order either way, so the bits agree. */
template <int KIND> __host__ __device__ constexpr int step_loads() { return GEMV_LOADS / (KIND == GEMV_ROWS ? 1 : 2); }

/* Computing warp `warp`'s walk through a GEMV phase (one warp a unit). */
template <int KIND>
__device__ __forceinline__ warp_walk phase_walk(const gemv_params &p, int warp) {
    return walk_of<KIND>(p, blockIdx.x, gridDim.x, warp, 1, step_loads<KIND>());
}

/* ---------------------------------------------------------------- the producer */

/* Lane c of the producer warp fills computing warp c's ring: it walks the launch's GEMV phases in
 * order (phase `index`, pp.count when none is left; its `kind`; the steps `left` there) and the
 * warp's units and batches in each, copying a step into each slot the warp has released. It reads
 * a phase's parameters from its copy in shared memory (`prod`), and only when a unit starts. */
struct ring_writer {
    uint64_t *full, *empty;
    char *slots;
    gemv_params *prod;
    int warp, depth, put;
    unsigned parity; /* of the empty phase the next slot must have completed (1 first: all free) */
    int index, kind, left;
    int unit, stride, batch, nbatches;
    int pieces, piece, row_bytes; /* rows a step reads (R), bytes of each in a step, bytes of a row */
    const char *src[2];           /* the unit's rows */
};

/* Moves the writer to the next GEMV phase in which its warp has steps (or past the last). */
template <typename P>
__device__ __forceinline__ void writer_next_phase(ring_writer &wr, const P &pp) {
    for (wr.index++; wr.index < pp.count; wr.index++) {
        wr.kind = pp.ph[wr.index].kind;
        if (wr.kind == PHASE_ATTN) continue;
        static_assert(sizeof(gemv_params) % 4 == 0, "parameters copy as words");
        const unsigned *from = reinterpret_cast<const unsigned *>(&pp.ph[wr.index].gemv);
        for (int w = 0; w < (int)(sizeof(gemv_params) / 4); w++) reinterpret_cast<unsigned *>(wr.prod)[w] = from[w];
        const warp_walk w = wr.kind == GEMV_ROWS  ? phase_walk<GEMV_ROWS>(*wr.prod, wr.warp)
                            : wr.kind == GEMV_GLU ? phase_walk<GEMV_GLU>(*wr.prod, wr.warp)
                                                  : phase_walk<GEMV_PAIRS>(*wr.prod, wr.warp);
        wr.left = w.steps, wr.unit = w.first_unit, wr.stride = w.stride;
        wr.batch = 0, wr.nbatches = w.nbatches;
        wr.pieces = wr.kind == GEMV_ROWS ? 1 : 2;
        wr.piece = BULK_SLOT / wr.pieces, wr.row_bytes = 2 * wr.prod->cols;
        if (wr.left > 0) return;
    }
}

/* The rows of the writer's unit. */
template <int KIND>
__device__ __forceinline__ void unit_sources(ring_writer &wr) {
    int r[2];
    const int seg = unit_rows<KIND>(*wr.prod, wr.unit, r);
    for (int k = 0; k < (KIND == GEMV_ROWS ? 1 : 2); k++)
        wr.src[k] = reinterpret_cast<const char *>(unit_row<KIND>(*wr.prod, seg, r, k));
}

/* Copies the warp's next step into the next slot (released by the warp: the caller checked). */
template <typename P>
__device__ __forceinline__ void writer_push(ring_writer &wr, const P &pp) {
    if (wr.batch == 0) {
        if (wr.kind == GEMV_ROWS) unit_sources<GEMV_ROWS>(wr);
        else if (wr.kind == GEMV_GLU) unit_sources<GEMV_GLU>(wr);
        else unit_sources<GEMV_PAIRS>(wr);
    }
    const int at = wr.batch * wr.piece;
    const uint32_t bytes = wr.row_bytes - at < wr.piece ? wr.row_bytes - at : wr.piece;
    char *dst = wr.slots + (size_t)wr.put * BULK_SLOT;
    mbar_expect(wr.full + wr.put, wr.pieces * bytes);
    bulk_copy(dst, wr.src[0] + at, bytes, wr.full + wr.put);
    if (wr.pieces == 2) bulk_copy(dst + wr.piece, wr.src[1] + at, bytes, wr.full + wr.put);
    if (++wr.batch == wr.nbatches) wr.batch = 0, wr.unit += wr.stride;
    if (++wr.put == wr.depth) wr.put = 0, wr.parity ^= 1;
    if (--wr.left == 0) writer_next_phase(wr, pp);
}

/* The producer warp: lanes 0 .. GEMV_WARPS - 1 fill their warps' rings until every step of the
 * launch is copied, sleeping briefly when no ring has a free slot. Weights only: no wait for
 * earlier kernels or phases, except the PDL wait every thread makes before it returns. */
template <typename P>
__device__ void produce(const P &pp, ring_smem &rs, char *rings, int lane) {
    ring_writer wr = {};
    bool live = lane < GEMV_WARPS;
    if (live) {
        wr.full = rs.full[lane], wr.empty = rs.empty[lane], wr.prod = &rs.prod[lane];
        wr.slots = rings + (size_t)lane * pp.depth * BULK_SLOT;
        wr.warp = lane, wr.depth = pp.depth, wr.parity = 1, wr.index = -1;
        writer_next_phase(wr, pp);
        live = wr.index < pp.count;
    }
    while (__any_sync(0xffffffffu, live)) {
        const bool ready = live && mbar_test(wr.empty + wr.put, wr.parity);
        if (ready) {
            writer_push(wr, pp);
            live = wr.index < pp.count;
        }
        if (!__any_sync(0xffffffffu, ready)) __nanosleep(32);
    }
    pdl_wait();
}

/* ---------------------------------------------------------------- the computing warps */

/* A computing warp's side of its ring: the slot it reads next and the full phase it waits for. */
struct ring_reader {
    uint64_t *full, *empty;
    const char *slots;
    int depth, take;
    unsigned parity;
};

/* Waits for the oldest slot and reads batch `batch` of a unit from it (lane l: the register
 * kernel's chunks l, l + 32, ... of the batch). */
template <int R, int U>
__device__ __forceinline__ void ring_read(const ring_reader &rd, int batch, int nchunks, int lane, uint4 buf[R][U]) {
    mbar_wait(rd.full + rd.take, rd.parity);
    const char *src = rd.slots + (size_t)rd.take * BULK_SLOT;
    const int first = 32 * batch * U;
#pragma unroll
    for (int u = 0; u < U; u++)
#pragma unroll
        for (int k = 0; k < R; k++)
            buf[k][u] = first + lane + 32 * u < nchunks ? lds16(src + k * (BULK_SLOT / R) + 16 * (lane + 32 * u))
                                                        : make_uint4(0, 0, 0, 0);
}

/* Hands the slot back to the producer. After the values read from it were used (so the reads are
 * complete), and after the whole warp's (the __syncwarp). */
__device__ __forceinline__ void ring_release(ring_reader &rd, int lane) {
    __syncwarp();
    if (lane == 0) mbar_arrive(rd.empty + rd.take);
    if (++rd.take == rd.depth) rd.take = 0, rd.parity ^= 1;
}

/* Lane l's residual entry for the warp's unit l (l < 32; the epilogue of unit n takes lane n's by
 * shuffle): loaded together right after the wait, instead of one dependent round trip a unit. */
template <int KIND>
__device__ __forceinline__ float residual_of_lane(const gemv_params &p, const warp_walk &w, int lane) {
    if (KIND != GEMV_ROWS || !p.residual || lane * w.nbatches >= w.steps) return 0.0f;
    int r[2];
    unit_rows<KIND>(p, w.first_unit + lane * w.stride, r);
    return __ldcg(p.residual + r[0]);
}

/* A GEMV phase: the warp's units one after another, each read batch by batch from the ring. */
template <int KIND, typename Wait>
__device__ __forceinline__ void gemv_phase(const gemv_params &p, float *xs, ring_reader &rd, Wait wait) {
    constexpr int R = KIND == GEMV_ROWS ? 1 : 2, U = step_loads<KIND>();
    const int lane = threadIdx.x & 31;
    const warp_walk w = phase_walk<KIND>(p, threadIdx.x >> 5);
    const int nchunks = w.nchunks, nbatches = w.nbatches, xstride = vector_stride(p.cols);
    const uint16_t *norm_w = copy_norm_weight(p, reinterpret_cast<uint16_t *>(xs + xstride));
    prefetch_constants(p);
    wait();
    const bool residual = KIND == GEMV_ROWS && p.residual;
    const float resid_lane = residual_of_lane<KIND>(p, w, lane);
    cp_async_wait<0>(); /* the norm weight's copies */
    stage_vector(p, 0, xs, blockIdx.x, compute_barrier(), norm_w);
    compute_barrier()();
    float acc[R][1];
#pragma unroll
    for (int k = 0; k < R; k++) acc[k][0] = 0.0f;
    int unit = w.first_unit;
    for (int n = 0; n * nbatches < w.steps; n++, unit += w.stride) {
        for (int b = 0; b < nbatches; b++) {
            uint4 buf[R][U];
            ring_read<R, U>(rd, b, nchunks, lane, buf);
            accumulate_batch<1, R, U>(1, b, lane, nchunks, xstride, xs, buf, acc);
            ring_release(rd, lane);
        }
        int r[2];
        const int seg = unit_rows<KIND>(p, unit, r);
        float resid[1] = {0.0f};
        if (residual) {
            resid[0] = __shfl_sync(0xffffffffu, resid_lane, n & 31);
            if (n >= 32 && lane == 0) resid[0] = __ldcg(p.residual + r[0]);
        }
        finish_unit<KIND, 1, R>(p, w, n, seg, r, lane, 1, acc, resid);
    }
}

/* The attention launch's blocks (split fastest, then head, then query), two at a time per block.
 * Each half meets at its barrier between two of them: the last reads of one head's merge (its
 * warps' sums in sm, read after the merge's last barrier) must be done before the next head's
 * warps write theirs. */
template <int LPK>
__device__ void attention_blocks(const attn_params &p, attn_decode_smem sm[2]) {
    const int half = threadIdx.x / DEC_THREADS, tid = threadIdx.x % DEC_THREADS;
    const int count = p.splits * p.heads * p.n;
    for (int vb = 2 * blockIdx.x + half; vb < count; vb += 2 * gridDim.x) {
        const int s = vb % p.splits, h = vb / p.splits % p.heads, i = vb / (p.splits * p.heads);
        attn_decode_run<LPK>(p, s, h, i, p.positions[i] + 1, tid, 1 + half, sm[half]);
        block_sync(1 + half);
    }
}

__device__ __forceinline__ void attention_phase(const attn_params &p, attn_decode_smem sm[2]) {
    switch (attn_decode_lpk(p.head_dim)) {
    case 1: attention_blocks<1>(p, sm); break;
    case 2: attention_blocks<2>(p, sm); break;
    case 4: attention_blocks<4>(p, sm); break;
    case 8: attention_blocks<8>(p, sm); break;
    case 16: attention_blocks<16>(p, sm); break;
    default: attention_blocks<32>(p, sm); break;
    }
}

/* What both kernels run: the phases of pp in order. ALONE: pp is one GEMV launched on its own
 * (gemv_ring_kernel): no grid barrier, so the next kernel may launch at once (its blocks start as
 * this one's leave), and no attention. */
template <typename P, bool ALONE>
__device__ __forceinline__ void run_phases(const P &pp) {
    extern __shared__ __align__(128) float xs[]; /* the input vector and the norm weight, then the rings */
    __shared__ __align__(16) phase ph[2];
    __shared__ __align__(16) ring_smem rs;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    if (ALONE) pdl_launch_dependents();
    char *rings = reinterpret_cast<char *>(xs) + pp.ring_offset;
    if (warp == PERSIST_PRODUCER && lane < GEMV_WARPS) {
        for (int d = 0; d < pp.depth; d++) mbar_init(&rs.full[lane][d]), mbar_init(&rs.empty[lane][d]);
        mbar_init_done();
    }
    __syncthreads(); /* the only barrier of the whole block: the producer then runs on its own */
    if (warp == PERSIST_PRODUCER) return produce(pp, rs, rings, lane);
    ring_reader rd = {rs.full[warp], rs.empty[warp], rings + (size_t)warp * pp.depth * BULK_SLOT, pp.depth, 0, 0};
    grid_sync gs = {};
    if constexpr (!ALONE) gs = grid_sync_start(pp.barrier);
    /* The phases' parameters in shared memory (indexed by i they would no longer be constant-bank
     * operands, and the GEMV reads them in its inner loop), double-buffered: phase i + 1's words are
     * loaded while phase i runs, so the load's latency is off the path between phases. */
    static_assert(sizeof(phase) % 4 == 0 && sizeof(phase) / 4 <= GEMV_THREADS, "a phase copies as a word a thread");
    const int words = (int)(sizeof(phase) / 4), t = threadIdx.x;
    if (t < words) reinterpret_cast<unsigned *>(&ph[0])[t] = reinterpret_cast<const unsigned *>(&pp.ph[0])[t];
    for (int i = 0; i < pp.count; i++) {
        compute_barrier()(); /* ph[i & 1] is written; ph[(i + 1) & 1] is free (phase i - 1 is done) */
        const phase &cur = ph[i & 1];
        const bool more = i + 1 < pp.count;
        const unsigned next = more && t < words ? reinterpret_cast<const unsigned *>(&pp.ph[i + 1])[t] : 0u;
        auto wait = [&] {
            if (ALONE) pdl_wait();
            else phase_wait(gs, i == 0, i == pp.count - 1);
        };
        switch (cur.kind) {
        case GEMV_ROWS: gemv_phase<GEMV_ROWS>(cur.gemv, xs, rd, wait); break;
        case GEMV_GLU: gemv_phase<GEMV_GLU>(cur.gemv, xs, rd, wait); break;
        case GEMV_PAIRS: gemv_phase<GEMV_PAIRS>(cur.gemv, xs, rd, wait); break;
        default:
            if constexpr (!ALONE) {
                __shared__ attn_decode_smem sm[GEMV_THREADS / DEC_THREADS];
                wait();
                attention_phase(cur.attn, sm);
            }
        }
        if (more && t < words) reinterpret_cast<unsigned *>(&ph[(i + 1) & 1])[t] = next;
    }
}

__global__ void __launch_bounds__(PERSIST_THREADS, 1) persistent_kernel(const __grid_constant__ persistent_params pp) {
    run_phases<persistent_params, false>(pp);
}

__global__ void __launch_bounds__(PERSIST_THREADS, 1) gemv_ring_kernel(const __grid_constant__ ring_params pp) {
    run_phases<ring_params, true>(pp);
}

/* The kernel's static shared memory (the attention blocks' state, the rings' bookkeeping, two
 * phases' parameters, the GEMV's reduction buffer), as the compiler laid it out. */
static size_t static_smem() {
    static size_t bytes;
    cudaFuncAttributes a;
    if (!bytes && cudaFuncGetAttributes(&a, persistent_kernel) == cudaSuccess) bytes = a.sharedSizeBytes;
    return bytes ? bytes : 64 * 1024; /* unknown: leave the rings little room, not too much */
}

/* Where the rings start: after the largest input vector of the launch (xbytes), 128-byte aligned. */
static size_t ring_offset(size_t xbytes) { return (xbytes + 127) & ~(size_t)127; }

/* Slots per warp that fit beside that vector (the more, the more bytes in flight). */
static int ring_depth(size_t xbytes, size_t smem_optin) {
    const size_t used = static_smem() + ring_offset(xbytes);
    if (used >= smem_optin) return 0;
    const size_t depth = (smem_optin - used) / (GEMV_WARPS * BULK_SLOT);
    return depth < PERSIST_MAX_DEPTH ? (int)depth : PERSIST_MAX_DEPTH;
}

/* One-vector launches whose rings get at least 2 slots a warp, and whose rows start 16-byte
 * aligned (bulk copies need it). */
bool persistent_takes(const gemv_params &p, size_t smem_optin) {
    if (p.nvec != 1 || p.cols % 8 || ring_depth(persistent_smem_of(p.cols), smem_optin) < 2) return false;
    for (int s = 0; s < p.nseg; s++)
        if ((uintptr_t)p.seg[s].w & 15) return false;
    return true;
}

bool persistent_takes(const attn_params &p) { return p.head_dim <= SK_PREP_MAX_HEAD_DIM && p.head_dim % 8 == 0; }

size_t persistent_smem_of(int cols) { return (size_t)vector_stride(cols) * sizeof(float) + norm_copy_bytes(cols); }

size_t persistent_smem(size_t xbytes, size_t smem_optin) {
    return ring_offset(xbytes) + (size_t)GEMV_WARPS * ring_depth(xbytes, smem_optin) * BULK_SLOT;
}

int persistent_blocks_per_sm(size_t smem) {
    int blocks = 0;
    if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&blocks, persistent_kernel, PERSIST_THREADS, smem) != cudaSuccess)
        return 0;
    return blocks < 1 ? 0 : 1;
}

cudaError_t persistent(const launch_ctx &c, persistent_params &p, size_t xbytes, int blocks) {
    p.depth = ring_depth(xbytes, c.smem_optin);
    p.ring_offset = (unsigned)ring_offset(xbytes);
    return launch_kernel(c, persistent_kernel, dim3(blocks), dim3(PERSIST_THREADS), persistent_smem(xbytes, c.smem_optin), p);
}

/* ---------------------------------------------------------------- one GEMV alone */

/* The ring GEMV's static shared memory, as the compiler laid it out. */
static size_t ring_static_smem() {
    static size_t bytes;
    cudaFuncAttributes a;
    if (!bytes && cudaFuncGetAttributes(&a, gemv_ring_kernel) == cudaSuccess) bytes = a.sharedSizeBytes;
    return bytes ? bytes : 64 * 1024;
}

static size_t ring_smem(int cols) { return ring_offset(persistent_smem_of(cols)) + (size_t)GEMV_WARPS * RING_DEPTH * BULK_SLOT; }

bool gemv_ring_shape(const gemv_params &p, size_t smem_optin) {
    int rows = 0;
    for (int s = 0; s < p.nseg; s++) rows += p.seg[s].rows;
    if (p.cols % 8 || p.cols < RING_MIN_COLS || rows < RING_MIN_ROWS || ring_static_smem() + ring_smem(p.cols) > smem_optin) return false;
    for (int s = 0; s < p.nseg; s++)
        if ((uintptr_t)p.seg[s].w & 15) return false;
    return true;
}

cudaError_t gemv_ring(const launch_ctx &c, const gemv_params &g) {
    ring_params p = {};
    p.count = 1;
    p.depth = RING_DEPTH;
    p.ring_offset = (unsigned)ring_offset(persistent_smem_of(g.cols));
    p.ph[0].kind = gemv_kind(g);
    p.ph[0].gemv = g;
    return launch_kernel(c, gemv_ring_kernel, dim3(c.sms), dim3(PERSIST_THREADS), ring_smem(g.cols), p);
}

cudaError_t setup_persistent(size_t smem_optin) {
    cudaError_t e = cudaFuncSetAttribute(persistent_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                         (int)(smem_optin - static_smem()));
    if (e == cudaSuccess)
        e = cudaFuncSetAttribute(gemv_ring_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                 (int)(smem_optin - ring_static_smem()));
    return e;
}

} // namespace sk
