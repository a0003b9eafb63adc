/* gemv.cuh — the device side of gemv.cu, shared with the persistent decode kernel (persistent.cu),
 * which runs the same body between grid barriers instead of PDL waits. See gemv.cu for the design. */
#ifndef SPECSCOPE_KERNELS_GEMV_CUH
#define SPECSCOPE_KERNELS_GEMV_CUH

#include "bulk.cuh"
#include "common.cuh"
#include "kernels.cuh"

namespace sk {

#define GEMV_THREADS 256
#define GEMV_WARPS (GEMV_THREADS / 32)
#define GEMV_MAX_BLOCKS_PER_SM 2
#define GEMV_LOADS 8 /* 16-byte loads per lane in flight per batch (two batches in flight) */

/* Shared-memory index of element c of the staged vector: 4 floats of padding every 32. */
__device__ __forceinline__ int xpad(int c) { return c + ((c >> 5) << 2); }

/* Floats one staged vector takes (a multiple of 4, so every vector starts 16-byte aligned). */
__host__ __device__ static inline int vector_stride(int cols) { return cols + 4 * (cols / 32 + 1); }

/* Bytes of the norm weight's copy in shared memory, after the staged vectors (cols % 8 == 0: a
 * multiple of 16). */
__host__ __device__ static inline int norm_copy_bytes(int cols) { return cols * 2; }

/* The RMSNorm weight into shared memory (dst), by cp.async issued before anything else of the
 * launch: stage_vector reads it right after the wait. Read from global memory there, its loads
 * went out behind the block's 64 KB of weight loads and took 3-5 us of a q/k/v or gate/up launch's
 * staging on the H200 (per-block globaltimer stamps; the L1 prefetch of prefetch_constants did not
 * keep it). Returns where stage_vector finds it: dst, or p.norm_w itself when it is not 16-byte
 * aligned (or there is none). Each thread waits for its copies (cp_async_wait) before
 * stage_vector, whose barriers make them visible to all. */
__device__ __forceinline__ const uint16_t *copy_norm_weight(const gemv_params &p, uint16_t *dst) {
    if (!p.norm || !p.norm_w || ((uintptr_t)p.norm_w & 15)) return p.norm_w;
    for (int c = 8 * threadIdx.x; c < p.cols; c += 8 * GEMV_THREADS) cp_async16(dst + c, p.norm_w + c);
    cp_async_commit();
    return dst;
}

/* Stages vector v of x (normalised when asked, with norm_w: copy_norm_weight's answer) into shared
 * memory; block 0 writes the normalised vector out. x is read through L2 (ld.cg): inside a
 * persistent kernel other blocks wrote it. Run by the block's first GEMV_THREADS threads, which
 * meet at sync (the caller synchronises after). */
template <typename Sync>
__device__ __forceinline__ void stage_vector(const gemv_params &p, int vec, float *xs, int block, Sync sync,
                                             const uint16_t *norm_w) {
    __shared__ float red[32];
    const int cols = p.cols;
    const float *x = p.x + (size_t)vec * cols;
    float ss = 0.0f;
    if (((uintptr_t)x & 15) == 0) {
        for (int c4 = threadIdx.x; c4 < cols / 4; c4 += GEMV_THREADS) {
            float4 v = __ldcg(reinterpret_cast<const float4 *>(x) + c4);
            *reinterpret_cast<float4 *>(xs + xpad(4 * c4)) = v;
            ss += v.x * v.x + v.y * v.y + v.z * v.z + v.w * v.w;
        }
    } else {
        for (int c = threadIdx.x; c < cols; c += GEMV_THREADS) {
            float v = __ldcg(x + c);
            xs[xpad(c)] = v;
            ss += v * v;
        }
    }
    if (!p.norm) return; /* the caller synchronises */
    ss = block_sum(ss, red, GEMV_WARPS, sync);
    const float inv = 1.0f / sqrtf(ss / (float)cols + p.eps);
    /* Four columns a thread and step (cols % 8 == 0; a group of 4 never straddles the padding):
     * one column a step made this pass a chain of 8-16 shared-memory round trips (0.5-1 us of the
     * H200's staging by timestamps; decode moved within its spread, docs/cuda.md). Each element is
     * still (x * inv) * w. */
    for (int c4 = threadIdx.x; c4 < cols / 4; c4 += GEMV_THREADS) {
        float4 *at = reinterpret_cast<float4 *>(xs + xpad(4 * c4));
        float v[4] = {at->x * inv, at->y * inv, at->z * inv, at->w * inv};
#pragma unroll
        for (int j = 0; j < 4; j++)
            if (norm_w) v[j] = bf16_at(norm_w, 4 * c4 + j) * v[j];
        *at = make_float4(v[0], v[1], v[2], v[3]);
        if (block == 0 && p.norm_out)
#pragma unroll
            for (int j = 0; j < 4; j++) p.norm_out[(size_t)vec * cols + 4 * c4 + j] = v[j];
    }
}

/* What one warp streams: its team's units first_unit, first_unit + stride, ..., each row read in
 * nbatches batches. A unit is one row (GEMV_ROWS), a gate/up row pair (GEMV_GLU) or two rows of
 * one segment (GEMV_PAIRS). With row_steps 1 a step reads batch s % nbatches of every row of the
 * team's unit s / nbatches; with row_steps R (the rows of a unit) a step reads one row's batch,
 * row (s / nbatches) % R, so the unit's rows follow each other and a step of a q/k/v pair reads as
 * many contiguous bytes of its row as a step of a single row does. A team of `team` warps (1, 2, 4 or 8)
 * shares each unit: member m reads each row's groups of 32 U chunks m, m + team, ..., so every warp
 * load stays 512 contiguous bytes (split-K inside the block). Lane l sums its chunks of a row in
 * increasing order whatever the walk, so walks of one warp a unit give the same bits. */
struct warp_walk {
    int first_unit, stride, nbatches, nchunks, steps, row_steps;
    int team, member;
};

/* Steps per unit. */
__device__ __forceinline__ int unit_steps(const warp_walk &w) { return w.nbatches * w.row_steps; }

/* Whether step s is its unit's last. */
__device__ __forceinline__ bool unit_ends(const warp_walk &w, int s) { return s % unit_steps(w) == unit_steps(w) - 1; }

/* R rows per unit (2 for gate/up), U loads in flight per row and lane: the unit's chunk batch
 * `batch` of the rows (counted over the whole team: member m's batch b is b * team + m). */
template <int R, int U>
__device__ __forceinline__ void load_batch(const uint4 *const rows[R], int batch, int lane, int nchunks, uint4 buf[R][U]) {
#pragma unroll
    for (int u = 0; u < U; u++) {
        const int j = lane + 32 * (batch * U + u);
#pragma unroll
        for (int r = 0; r < R; r++) buf[r][u] = j < nchunks ? load_stream16(rows[r] + j) : make_uint4(0, 0, 0, 0);
    }
}

/* Step s's batch of its row, counted over the team. */
__device__ __forceinline__ int team_batch(const warp_walk &w, int s) { return s % w.nbatches * w.team + w.member; }

/* The row (of the R a unit reads) that a one-row step s reads. */
__device__ __forceinline__ int step_row(const warp_walk &w, int s) { return s / w.nbatches % w.row_steps; }

__host__ __device__ __forceinline__ int seg_units(const gemv_params &p, int kind, int s) {
    return kind == GEMV_PAIRS ? p.seg[s].rows / 2 : p.seg[s].rows;
}

__host__ __device__ __forceinline__ int total_units(const gemv_params &p, int kind) {
    if (kind == GEMV_GLU) return p.seg[0].rows;
    int units = 0;
    for (int s = 0; s < p.nseg; s++) units += seg_units(p, kind, s);
    return units;
}

/* The walk of warp `warp` of block `block` in a launch of `grid` blocks, U loads per lane and row
 * in a batch, row_steps as in warp_walk. */
template <int KIND>
__device__ __forceinline__ warp_walk walk_of(const gemv_params &p, int block, int grid, int warp, int team, int U,
                                             int row_steps = 1) {
    const int units = total_units(p, KIND);
    warp_walk w;
    w.team = team;
    w.member = warp % team;
    w.first_unit = block * (GEMV_WARPS / team) + warp / team;
    w.stride = grid * (GEMV_WARPS / team);
    w.nchunks = p.cols / 8;
    w.nbatches = ceil_div(w.nchunks, 32 * U * team);
    w.row_steps = row_steps;
    w.steps = w.first_unit < units ? ceil_div(units - w.first_unit, w.stride) * unit_steps(w) : 0;
    return w;
}

/* Where unit u's results go: segment and rows r[0], r[1]. Pairs of a rotated segment are the
 * rotate_half partners (d, d + head_dim / 2) of one head, so the epilogue holds both. */
template <int KIND>
__device__ __forceinline__ int unit_rows(const gemv_params &p, int u, int r[2]) {
    int s = 0;
    if (KIND != GEMV_GLU)
        while (s + 1 < p.nseg && u >= seg_units(p, KIND, s)) u -= seg_units(p, KIND, s++);
    if (KIND != GEMV_PAIRS) {
        r[0] = r[1] = u;
    } else if (p.seg[s].rope_hd) {
        const int half = p.seg[s].rope_hd / 2;
        r[0] = (u / half) * p.seg[s].rope_hd + u % half, r[1] = r[0] + half;
    } else {
        r[0] = 2 * u, r[1] = 2 * u + 1;
    }
    return s;
}

/* The segment and rows of step s's unit. */
template <int KIND>
__device__ __forceinline__ int step_rows(const gemv_params &p, const warp_walk &w, int s, int r[2]) {
    return unit_rows<KIND>(p, w.first_unit + (s / unit_steps(w)) * w.stride, r);
}

/* Row k (of the R a unit reads) of segment seg's weight. */
template <int KIND>
__device__ __forceinline__ const uint16_t *unit_row(const gemv_params &p, int seg, const int r[2], int k) {
    return p.seg[KIND == GEMV_GLU ? k : seg].w + (size_t)r[k] * p.cols;
}

/* Rows one step of the register kernel reads: both of a gate/up pair (two matrices streamed side
 * by side: one row a step made the fused launch 4-9% slower on the H200), one otherwise. */
template <int KIND> __host__ __device__ constexpr int step_rows_read() { return KIND == GEMV_GLU ? 2 : 1; }

/* The loads of step s: RS rows, all of the unit's (row_steps 1) or the step's one (row_steps R). */
template <int KIND, int RS, int U>
__device__ __forceinline__ void load_step(const gemv_params &p, const warp_walk &w, int s, int lane, uint4 buf[RS][U]) {
    int r[2];
    const int seg = step_rows<KIND>(p, w, s, r);
    const uint4 *rows[RS];
#pragma unroll
    for (int k = 0; k < RS; k++) {
        if (w.row_steps == 1 || step_row(w, s) == 0) /* constant indices: r stays in registers */
            rows[k] = reinterpret_cast<const uint4 *>(unit_row<KIND>(p, seg, r, k));
        else
            rows[k] = reinterpret_cast<const uint4 *>(unit_row<KIND>(p, seg, r, 1));
    }
    load_batch<RS, U>(rows, team_batch(w, s), lane, w.nchunks, buf);
}

__device__ __forceinline__ float bias_at(const gemv_seg &s, int row) { return s.bias ? bf16_at(s.bias, row) : 0.0f; }

/* The results of one unit for vector v (lane 0): y[k] is row r[k]'s dot product. */
template <int KIND>
__device__ __forceinline__ void unit_epilogue(const gemv_params &p, int seg, const int r[2], int v, const float y[2],
                                              float resid) {
    const gemv_seg &s0 = p.seg[seg];
    const size_t at = (size_t)v * s0.rows + r[0];
    if (KIND == GEMV_ROWS) {
        const float out = y[0] + bias_at(s0, r[0]);
        s0.out[at] = out;
        if (p.residual) p.residual[at] = resid + out;
    } else if (KIND == GEMV_GLU) {
        const float g = y[0] + bias_at(s0, r[0]), up = y[1] + bias_at(p.seg[1], r[0]);
        s0.out[at] = g / (1.0f + expf(-g)) * up;
        p.seg[1].out[at] = up;
    } else {
        float a = y[0] + bias_at(s0, r[0]), b = y[1] + bias_at(s0, r[1]);
        const int pos = p.positions[v];
        if (s0.rope_hd) {
            float c, sn;
            rope_cos_sin(pos, p.inv_freq[r[0] % s0.rope_hd], c, sn);
            rotate_pair(a, b, c, sn);
        }
        s0.out[at] = a;
        s0.out[(size_t)v * s0.rows + r[1]] = b;
        if (s0.cache) {
            s0.cache[(size_t)pos * s0.rows + r[0]] = f32_to_bf16(a);
            s0.cache[(size_t)pos * s0.rows + r[1]] = f32_to_bf16(b);
        }
    }
}

/* Lane 0's copy of the residual entries that step s's unit adds to (GEMV_ROWS with a residual; an
 * earlier kernel wrote them, so only after the PDL wait), loaded with the weights of the unit's last
 * batch so that the epilogue does not wait for them. The last batch, not the first: the epilogue
 * runs in the last batch's step, which reads the buffer of that step's parity (ra / rb); loaded at
 * the first batch, a unit of an even number of batches added the other buffer's stale values
 * (the 8B o projection, the 1B down projection). Only member 0 of a team runs the epilogue. */
template <int KIND, int NV>
__device__ __forceinline__ void load_residual(const gemv_params &p, const warp_walk &w, int s, int lane, float resid[NV]) {
    if (KIND != GEMV_ROWS || !p.residual || lane != 0 || w.member != 0 || !unit_ends(w, s)) return;
    int r[2];
    const int seg = step_rows<KIND>(p, w, s, r);
#pragma unroll
    for (int v = 0; v < NV; v++)
        if (v < p.nvec) resid[v] = __ldcg(p.residual + (size_t)v * p.seg[seg].rows + r[0]);
}

/* Replaces acc by the sums over the team's warps (in member 0's lane 0; the other members' acc are
 * then spent), added in member order so that the result does not depend on timing. Each warp sums
 * over its lanes; members 1.. write theirs to shared memory and the team meets at its named
 * barrier (1 + team; 0 is __syncthreads). Two sets of slots, by the parity of the team's unit: a
 * member writes unit k + 2's sums only after unit k + 1's barrier, which member 0 reaches after
 * reading unit k's, so one barrier per unit suffices. */
template <int R, int NV>
__device__ __forceinline__ void team_sum(const warp_walk &w, int unit, int lane, int nv, float acc[R][NV]) {
    __shared__ float part[2][GEMV_WARPS - 1][R * NV]; /* a slot per warp that is not a member 0 */
    const int warp = threadIdx.x >> 5, team = warp / w.team;
    float(*slot)[R * NV] = part[unit & 1] + (warp - w.member - team); /* member m's: slot[m - 1] */
#pragma unroll
    for (int k = 0; k < R; k++)
#pragma unroll
        for (int v = 0; v < NV; v++)
            if (v < nv) acc[k][v] = warp_sum(acc[k][v]);
    if (w.member > 0 && lane == 0)
#pragma unroll
        for (int k = 0; k < R; k++)
#pragma unroll
            for (int v = 0; v < NV; v++)
                if (v < nv) slot[w.member - 1][k * NV + v] = acc[k][v];
    asm volatile("bar.sync %0, %1;" ::"r"(1 + team), "r"(32 * w.team) : "memory");
    if (w.member > 0 || lane != 0) return;
    for (int m = 1; m < w.team; m++)
#pragma unroll
        for (int k = 0; k < R; k++)
#pragma unroll
            for (int v = 0; v < NV; v++)
                if (v < nv) acc[k][v] += slot[m - 1][k * NV + v];
}

/* Adds batch `batch` (of the warp's share of the unit: team_batch) of the unit's rows, in buf, times
 * the staged vectors to acc: lane l sums its chunks in order, the order every path keeps. */
template <int NV, int R, int U>
__device__ __forceinline__ void accumulate_batch(int nv, int batch, int lane, int nchunks, int xstride, const float *xs,
                                                 const uint4 buf[R][U], float acc[R][NV]) {
#pragma unroll
    for (int u = 0; u < U; u++) {
        const int j = lane + 32 * (batch * U + u);
        if (j < nchunks) {
#pragma unroll
            for (int v = 0; v < NV; v++) {
                if (v >= nv) break;
                const float *xp = xs + v * xstride + xpad(8 * j);
                const float4 x0 = *reinterpret_cast<const float4 *>(xp);
                const float4 x1 = *reinterpret_cast<const float4 *>(xp + 4);
#pragma unroll
                for (int k = 0; k < R; k++) acc[k][v] += dot8(buf[k][u], x0, x1);
            }
        }
    }
}

/* After a unit's last batch: reduces acc over the warp (and the team), writes the unit's outputs
 * (member 0's epilogues; seg, r: the unit's rows; resid: its residual entries) and clears acc. */
template <int KIND, int NV, int R>
__device__ __forceinline__ void finish_unit(const gemv_params &p, const warp_walk &w, int unit_of_warp, int seg,
                                            const int r[2], int lane, int nv, float acc[R][NV], const float resid[NV]) {
    if (w.team > 1) team_sum<R, NV>(w, unit_of_warp, lane, nv, acc);
#pragma unroll
    for (int v = 0; v < NV; v++) {
        if (v >= nv) break;
        float y[2];
#pragma unroll
        for (int k = 0; k < R; k++) y[k] = w.team > 1 ? acc[k][v] : warp_sum(acc[k][v]), acc[k][v] = 0.0f;
        if (R == 1) y[1] = 0.0f;
        if (lane == 0 && w.member == 0) unit_epilogue<KIND>(p, seg, r, v, y, resid[v]);
    }
}

/* Accumulates step s (RS of the unit's R rows) from buf into its rows' sums; at the last step of a
 * unit, finishes the unit (resid: load_residual's values for it). */
template <int KIND, int NV, int R, int RS, int U>
__device__ __forceinline__ void consume_step(const gemv_params &p, const warp_walk &w, int s, int lane, int xstride,
                                             const float *xs, const uint4 buf[RS][U], float acc[R][NV],
                                             const float resid[NV]) {
    const int batch = team_batch(w, s);
    if (RS == R || step_row(w, s) == 0) /* constant row indices: acc stays in registers */
        accumulate_batch<NV, RS, U>(p.nvec, batch, lane, w.nchunks, xstride, xs, buf, acc);
    else
        accumulate_batch<NV, RS, U>(p.nvec, batch, lane, w.nchunks, xstride, xs, buf, acc + 1);
    if (!unit_ends(w, s)) return;
    int r[2];
    const int seg = step_rows<KIND>(p, w, s, r);
    finish_unit<KIND, NV, R>(p, w, s / unit_steps(w), seg, r, lane, p.nvec, acc, resid);
}

/* The constants the q/k/v epilogue reads after the wait, into L1 before it: the rotary table and
 * the positions. */
__device__ __forceinline__ void prefetch_constants(const gemv_params &p) {
    const int line = 128;
    if (threadIdx.x == 0 && p.positions) prefetch_l1(p.positions);
    if (p.inv_freq && threadIdx.x < 4) prefetch_l1(p.inv_freq + threadIdx.x * (line / 4)); /* rope_hd <= 256 */
}

/* The body of a GEMV launch as block `block` of `grid`; wait() stands between what may run before
 * the previous work is done (weight loads, constants) and the rest: the PDL wait in gemv_kernel, a
 * grid barrier in the persistent kernel. xs: the dynamic shared memory (gemv_smem). NV: the most
 * vectors this instantiation takes (p.nvec <= NV). LOADS: 16-byte loads per lane in one step, over
 * step_rows_read rows (a q/k/v pair reads its two rows one after the other, 4 KB a step of each;
 * a gate/up pair reads 2 KB of both in a step). team: warps sharing a unit (1, 2, 4 or 8; team_for in gemv.cu picks
 * it), a constant in every caller so that team 1 compiles to the code without teams (no barrier, no
 * shared memory). Software-pipelined: the loads of step s + 1 are in flight while step s is summed,
 * and step s + 2's go out right after (two register buffers, up to 2U loads outstanding per lane,
 * and no wait between rows). On the H200 this took the 8B down projection from 72% to 88% of the
 * copy bandwidth and the gate/up launch to 96% (docs/cuda.md). */
template <int KIND, int NV, int LOADS, typename Wait>
__device__ __forceinline__ void gemv_run(const gemv_params &p, float *xs, int block, int grid, Wait wait, int team = 1) {
    constexpr int R = KIND == GEMV_ROWS ? 1 : 2, RS = step_rows_read<KIND>(), U = LOADS / RS;
    const int xstride = vector_stride(p.cols);
    const int lane = threadIdx.x & 31;
    const warp_walk w = walk_of<KIND>(p, block, grid, threadIdx.x >> 5, team, U, R / RS);
    const uint16_t *norm_w = copy_norm_weight(p, reinterpret_cast<uint16_t *>(xs + p.nvec * xstride));

    /* The first two steps' loads go out before the wait (weights are constant): the block fetches
     * while the previous kernel (or phase) finishes. */
    uint4 a[RS][U], b[RS][U];
    if (w.steps > 0) load_step<KIND, RS, U>(p, w, 0, lane, a);
    if (w.steps > 1) load_step<KIND, RS, U>(p, w, 1, lane, b);
    prefetch_constants(p);
    wait();
    /* One residual buffer per weight buffer: a unit's entries travel with its weights. */
    float ra[NV], rb[NV];
    load_residual<KIND, NV>(p, w, 0, lane, ra);
    load_residual<KIND, NV>(p, w, 1, lane, rb);
    cp_async_wait<0>(); /* the norm weight's copies */
    for (int v = 0; v < p.nvec; v++) stage_vector(p, v, xs + v * xstride, block, block_barrier(), norm_w);
    __syncthreads();

    float acc[R][NV];
#pragma unroll
    for (int k = 0; k < R; k++)
#pragma unroll
        for (int v = 0; v < NV; v++) acc[k][v] = 0.0f;
    for (int s = 0; s < w.steps; s += 2) {
        consume_step<KIND, NV, R, RS, U>(p, w, s, lane, xstride, xs, a, acc, ra);
        if (s + 2 < w.steps) load_step<KIND, RS, U>(p, w, s + 2, lane, a), load_residual<KIND, NV>(p, w, s + 2, lane, ra);
        if (s + 1 >= w.steps) break;
        consume_step<KIND, NV, R, RS, U>(p, w, s + 1, lane, xstride, xs, b, acc, rb);
        if (s + 3 < w.steps) load_step<KIND, RS, U>(p, w, s + 3, lane, b), load_residual<KIND, NV>(p, w, s + 3, lane, rb);
    }
}

} // namespace sk

#endif
