/* sampling.cu — token choice on the device, so that decoding copies back one id per row instead of
 * the logits. argmax follows ss_argmax exactly: the largest value, the lowest index on ties, NaN
 * never chosen over a number (an all-NaN row gives 0). sample_rows draws from the distribution
 * engine/sampler.c defines (temperature, top-k, top-p, min-p) with a uniform the host's RNG drew.
 *
 * Both spread a row over many blocks (one block per row kept one SM of 132 busy, every pass
 * latency-bound). Predicted on the H200 for one row of 128256 logits (0.5 MB, in L2): argmax_rows
 * about 3 us on the device, 126 blocks each reading 1018 values once; sample_rows (T 0.8, top-k 40,
 * top-p 0.9) about 20 us on the device: 8 grid-wide steps of ~1 us of reading plus ~1.5 us of
 * grid barrier each. The host-side times the test prints add the launch, the copy of the ids and
 * the stream synchronisation (~5-8 us). */
#include <cooperative_groups.h>

#include "common.cuh"
#include "kernels.cuh"

namespace sk {

typedef unsigned long long u64;

/* Keys whose unsigned order is the float order (negative floats reversed below the positive). */
__device__ __forceinline__ unsigned order_key(float f) {
    const unsigned b = __float_as_uint(f);
    return (b & 0x80000000u) ? ~b : (b | 0x80000000u);
}
__device__ __forceinline__ float key_value(unsigned k) {
    return __uint_as_float((k & 0x80000000u) ? (k & 0x7fffffffu) : ~k);
}

/* ---------------------------------------------------------------- argmax
 *
 * Each block reduces its slice of the row to one 64-bit key whose unsigned order is ss_argmax's
 * preference: the value's order key above (NaN: 0, below -inf's key 0x007fffff), the complement of
 * the index below (the lower index wins a tie). -0 is read as +0, since the host's `>` sees them
 * equal. The blocks atomicMax their keys into the row's slot; the last block to finish (a counter)
 * writes the index and puts slot and counter back to zero for the next launch. An all-NaN row
 * ends with the key of index 0. */

#define ARGMAX_THREADS 256
#define ARGMAX_MIN_SLICE 1024 /* values per block at least: 4 loads per thread */
#define ARGMAX_MAX_BLOCKS 128
#define ARGMAX_LAUNCH_ROWS 4096 /* rows per launch: bounds gridDim.y and the scratch */

struct argmax_scratch {
    u64 key[ARGMAX_LAUNCH_ROWS];
    unsigned done[ARGMAX_LAUNCH_ROWS];
};

__device__ __forceinline__ u64 argmax_key(float v, int i) {
    if (v == 0.0f) v = 0.0f;
    const unsigned value = v != v ? 0u : order_key(v);
    return ((u64)value << 32) | (u64)(0xffffffffu - (unsigned)i);
}

__device__ __forceinline__ u64 warp_max_u64(u64 v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v = max(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

__global__ void __launch_bounds__(ARGMAX_THREADS) argmax_kernel(int *out, const float *logits, int vocab,
                                                                 argmax_scratch *s) {
    __shared__ u64 red[ARGMAX_THREADS / 32];
    pdl_launch_dependents();
    pdl_wait();
    const int r = blockIdx.y, slice = ceil_div(vocab, gridDim.x);
    const int beg = blockIdx.x * slice, end = min(beg + slice, vocab);
    const float *row = logits + (size_t)r * vocab;
    u64 best = 0;
#pragma unroll 4
    for (int i = beg + threadIdx.x; i < end; i += ARGMAX_THREADS) best = max(best, argmax_key(row[i], i));
    best = warp_max_u64(best);
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    if (lane == 0) red[warp] = best;
    __syncthreads();
    if (threadIdx.x != 0) return;
    for (int w = 1; w < ARGMAX_THREADS / 32; w++) best = max(best, red[w]);
    atomicMax(&s->key[r], best);
    __threadfence(); /* the key is in place before the count says so */
    if (atomicAdd(&s->done[r], 1u) != gridDim.x - 1) return;
    __threadfence();
    const u64 key = atomicExch(&s->key[r], 0ull);
    out[r] = (int)(0xffffffffu - (unsigned)key);
    s->done[r] = 0;
}

cudaError_t argmax_rows(const launch_ctx &c, int *out, const float *logits, int rows, int vocab, void *scratch) {
    const int blocks = min(ARGMAX_MAX_BLOCKS, ceil_div(vocab, ARGMAX_MIN_SLICE));
    for (int r = 0; r < rows; r += ARGMAX_LAUNCH_ROWS) {
        const int count = min(ARGMAX_LAUNCH_ROWS, rows - r);
        const cudaError_t e = launch_kernel(c, argmax_kernel, dim3(blocks, count), dim3(ARGMAX_THREADS), 0, out + r,
                                            logits + (size_t)r * vocab, vocab, (argmax_scratch *)scratch);
        if (e != cudaSuccess) return e;
    }
    return cudaSuccess;
}

/* ---------------------------------------------------------------- sampling
 *
 * With s = logit / T (a true IEEE division, as the host's `/=`), the steps are sampler.c's:
 *   1. max = the largest s (NaN ignored, as the host's `>` does).
 *   2. top-k: kth = the k-th largest s, by a radix select over order-preserving 32-bit keys of s:
 *      three passes (digits of 11, 11, 10 bits), each a histogram of the next digit among the keys
 *      that match the digits found so far, then the bin where the count from the bottom passes
 *      vocab - k. After the last digit the key is one exact float: the host's kth_largest value.
 *      Tokens with s >= kth are kept, so every tie at the cut is kept, as on the host.
 *   3. weights w = exp(s - max) for kept tokens (0 otherwise). top-p: the host keeps w >= floor,
 *      floor = the smallest weight v with mass(w <= v) > (1 - top_p) * total; the same radix select
 *      with mass instead of counts (keys: the bits of w, which order non-negative floats) finds v
 *      exactly that way; ties at the cut share one key, so they are kept or cut together. No
 *      crossing (top_p <= 0): floor = the largest weight, exp(0) = 1. min-p raises the floor to
 *      min(min_p, 1) where it is higher, as on the host.
 *   4. the draw: the first token in index order whose running weight exceeds u * total (weights
 *      scaled by one constant give the same inverse CDF as the host's normalised probs).
 * Masses are integers, w * 2^43 truncated, so sums are exact in any order: the histogram of a digit
 * adds up to its parent bin exactly and exactly one bin, block or lane satisfies each crossing test
 * (a row of up to 2^20 tokens stays below 2^63). The truncation (< 2^-43 per token) and expf's last
 * bit against the host's are the only differences from the host, so a draw differs only when u or a
 * top-p / min-p cut lies within ~1e-7 of the row's mass of a boundary; tokens with weight < 2^-43
 * are never drawn (the host would, with probability < 1e-12).
 *
 * Layout: a cooperative grid (blocks, rows); block b of a row owns the slice [b*slice, (b+1)*slice)
 * of its row. Each step is a pass of every block over its slice, then a grid barrier, then every
 * block reads the same merged result from the row's scratch, so all blocks take the same decisions
 * with no further communication:
 *   - max: the blocks' maxima atomicMax-ed as order keys;
 *   - histograms: per-block shared histograms added (non-zero bins only) into a global one;
 *     every block then scans the 2048 global bins for the crossing bin itself;
 *   - draw: per-block sums of the slice; the one block whose slice holds the target finds the
 *     token inside it through per-warp segment sums.
 * The barriers are grid-wide, so every row takes the same number: a radix select whose total does
 * not pass its target (a row of zero mass) still runs its three barriers, doing nothing.
 * The histograms rotate over three buffers: the one a pass fills was last read by the pick two
 * passes back (before the previous barrier) and is cleared during the pass before it (after that
 * barrier), so none is cleared while read or filled while being cleared. After the draw's barrier
 * every block clears its share of all three and block 0 the max, so the scratch is zero again for
 * the next launch. */

#define SAMPLE_THREADS 256
#define SAMPLE_WARPS (SAMPLE_THREADS / 32)
#define SAMPLE_BINS 2048 /* 2^11: the widest digit */
#define SAMPLE_MIN_SLICE 1024
#define SAMPLE_MAX_BLOCKS 128
#define SAMPLE_BUFFERS 3

struct sample_scratch { /* one row's; zero between launches (seg excepted: rewritten before read) */
    u64 hist[SAMPLE_BUFFERS][SAMPLE_BINS];
    u64 seg[SAMPLE_MAX_BLOCKS];
    unsigned max_key;
};

__device__ __forceinline__ u64 mass_of(float w) { return (u64)((double)w * 0x1p43); }

__device__ __forceinline__ u64 warp_sum_u64(u64 v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__device__ __forceinline__ u64 warp_inclusive_scan_u64(u64 v) {
    const int lane = threadIdx.x & 31;
#pragma unroll
    for (int o = 1; o < 32; o <<= 1) {
        const u64 y = __shfl_up_sync(0xffffffffu, v, o);
        if (lane >= o) v += y;
    }
    return v;
}

/* The amounts of the threads before this one, in thread order; *total gets the block's sum.
 * red: __shared__ u64[32]. Contains __syncthreads. */
__device__ u64 block_exclusive_scan(u64 v, u64 *red, u64 *total) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    const u64 incl = warp_inclusive_scan_u64(v);
    __syncthreads(); /* red may still be read from an earlier call */
    if (lane == 31) red[warp] = incl;
    __syncthreads();
    if (warp == 0) red[lane] = warp_inclusive_scan_u64(lane < warps ? red[lane] : 0);
    __syncthreads();
    *total = red[warps - 1];
    return (warp ? red[warp - 1] : 0) + incl - v;
}

__device__ float block_max(float v, float *red) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    v = warp_max(v);
    __syncthreads();
    if (lane == 0) red[warp] = v;
    __syncthreads();
    return warp_max(lane < warps ? red[lane] : -INFINITY);
}

/* One row's scaled logits and the weight rule of sampler.c's weights(). */
struct sample_row {
    const float *logits;
    float temperature;
    __device__ float scaled(int i) const {
        const float v = logits[i];
        return temperature != 1.0f ? v / temperature : v;
    }
};

/* NaN weights (an infinite or all -inf row) become 0, as the host's `w >= floor ? w : 0`. */
__device__ __forceinline__ float weight(float s, float max, float kth, float floor) {
    const float w = s >= kth ? expf(s - max) : 0.0f;
    return w >= floor ? w : 0.0f;
}

/* This block's share of a row: its slice [beg, end) and the row's scratch. */
struct row_part {
    sample_row row;
    int beg, end;
    sample_scratch *s;
};

/* Zeroes this block's share of count words (every block of the row takes every gridDim.x-th
 * stretch of blockDim.x words). */
__device__ void clear_share(u64 *words, int count) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < count; i += gridDim.x * blockDim.x) words[i] = 0;
}

__device__ __forceinline__ void grid_barrier() {
    __threadfence(); /* global atomics and stores before the barrier are seen after it */
    cooperative_groups::this_grid().sync();
}

/* Radix-select elements: element i's key, and its amount (0: left out). */
struct count_elem { /* top-k: every token counts 1, keyed by its scaled logit */
    sample_row row;
    static constexpr bool unit = true;
    __device__ u64 operator()(int i, unsigned *key) const {
        *key = order_key(row.scaled(i));
        return 1;
    }
};

struct mass_elem { /* top-p: every kept token weighs its weight, keyed by it */
    sample_row row;
    float max, kth;
    static constexpr bool unit = false;
    __device__ u64 operator()(int i, unsigned *key) const {
        const float w = weight(row.scaled(i), max, kth, 0.0f);
        *key = __float_as_uint(w);
        return mass_of(w);
    }
};

/* Adds amount to hist[bin] (bin < 0: nothing). Unit amounts are counted per warp first (the keys of
 * a warp's 32 tokens share few bins); weights go straight to the bins. */
template <bool unit>
__device__ __forceinline__ void add_to_bin(u64 *hist, int bin, u64 amount) {
    if (unit) {
        const unsigned peers = __match_any_sync(0xffffffffu, bin);
        if (bin >= 0 && (threadIdx.x & 31) == __ffs(peers) - 1) atomicAdd(&hist[bin], (u64)__popc(peers));
    } else if (bin >= 0) {
        atomicAdd(&hist[bin], amount);
    }
}

/* The key k where the amounts in ascending key order first exceed the target:
 * amount(keys < k) <= target < amount(keys <= k), with target = target_of(total amount). False when
 * the total does not exceed the target. pass counts the histogram passes of the launch (it picks
 * the buffers). hist: __shared__ u64[SAMPLE_BINS]; red: __shared__ u64[32]. */
template <typename Elem, typename Target>
__device__ bool radix_select(const Elem &elem, const row_part &part, const Target &target_of, int &pass, u64 *hist,
                             u64 *red, unsigned *key_out) {
    __shared__ int found_bin;
    __shared__ u64 found_below;
    const int shifts[3] = {21, 10, 0}, widths[3] = {11, 11, 10};
    unsigned prefix = 0, mask = 0;
    u64 below = 0, target = 0; /* below: the amount of keys under the digits found so far */
    bool crossed = true;
    for (int digit = 0; digit < 3; digit++, pass++) {
        const int shift = shifts[digit], bins = 1 << widths[digit];
        u64 *global = part.s->hist[pass % SAMPLE_BUFFERS];
        clear_share(part.s->hist[(pass + 1) % SAMPLE_BUFFERS], SAMPLE_BINS);
        if (crossed) {
            for (int b = threadIdx.x; b < SAMPLE_BINS; b += blockDim.x) hist[b] = 0;
            __syncthreads();
            for (int base = part.beg; base < part.end; base += blockDim.x) { /* whole warps, for add_to_bin */
                const int i = base + threadIdx.x;
                unsigned key = 0;
                const u64 amount = i < part.end ? elem(i, &key) : 0;
                const int bin =
                    amount && (key & mask) == prefix ? (int)((key >> shift) & (unsigned)(bins - 1)) : -1;
                add_to_bin<Elem::unit>(hist, bin, amount);
            }
            __syncthreads();
            for (int b = threadIdx.x; b < bins; b += blockDim.x)
                if (hist[b]) atomicAdd(global + b, hist[b]);
        }
        grid_barrier();
        if (!crossed) continue;
        /* The pick, from the merged bins: each thread sums `per` of them; the thread whose run
         * holds the target walks its own. */
        constexpr int per = SAMPLE_BINS / SAMPLE_THREADS;
        const int b0 = per * threadIdx.x;
        u64 a[per], sum = 0;
#pragma unroll
        for (int j = 0; j < per; j++) sum += a[j] = b0 + j < bins ? __ldcg(global + b0 + j) : 0;
        u64 total;
        u64 run = below + block_exclusive_scan(sum, red, &total);
        if (digit == 0) { /* the first digit's bins hold the whole row: the same answer in every block */
            target = target_of(total);
            crossed = total > target;
            if (!crossed) continue;
        }
        if (run <= target && target < run + sum)
#pragma unroll
            for (int j = 0; j < per; j++) {
                if (target < run + a[j]) {
                    found_bin = b0 + j, found_below = run;
                    break;
                }
                run += a[j];
            }
        __syncthreads();
        prefix |= (unsigned)found_bin << shift;
        mask |= (unsigned)(bins - 1) << shift;
        below = found_below;
        __syncthreads(); /* found_* are rewritten by the next digit */
    }
    *key_out = prefix;
    return crossed;
}

struct rank_target { /* the (vocab - k)-th smallest: the k-th largest */
    u64 index;
    __device__ u64 operator()(u64) const { return index; }
};

struct mass_target { /* the host's budget (1 - top_p) * total, in mass units */
    double fraction;
    __device__ u64 operator()(u64 total) const {
        const double t = fraction * (double)total;
        return t >= (double)total ? total : (u64)t;
    }
};

/* Step 1: the largest scaled logit of the row (-inf when every one is NaN). */
__device__ float row_max(const row_part &part, float *redf) {
    float max = -INFINITY;
    for (int i = part.beg + threadIdx.x; i < part.end; i += blockDim.x) max = fmaxf(max, part.row.scaled(i));
    max = block_max(max, redf); /* never NaN: fmaxf keeps the -inf it starts from */
    if (threadIdx.x == 0) atomicMax(&part.s->max_key, order_key(max));
    grid_barrier();
    return key_value(__ldcg(&part.s->max_key));
}

/* Step 4: the token where the running weight in index order first exceeds u * total; 0 when every
 * weight is 0 (as ss_sample_at). Warp w of the block owns [beg + w*per, beg + (w+1)*per) of its
 * slice; the block whose slice holds the target finds the warp whose segment holds it, and that
 * warp walks its segment 32 tokens at a time. Returns -1 in the blocks that have nothing to write. */
__device__ int draw(const row_part &part, float max, float kth, float floor, double u, u64 *red) {
    __shared__ u64 seg[SAMPLE_WARPS];
    __shared__ u64 slice_before;
    __shared__ int token;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int per = ceil_div(part.end - part.beg, SAMPLE_WARPS);
    const int beg = min(part.beg + warp * per, part.end), end = min(beg + per, part.end);
    const sample_row &row = part.row;
    u64 sum = 0;
    for (int i = beg + lane; i < end; i += 32) sum += mass_of(weight(row.scaled(i), max, kth, floor));
    sum = warp_sum_u64(sum);
    if (lane == 0) seg[warp] = sum;
    if (threadIdx.x == 0) token = -1;
    __syncthreads();
    u64 mine = 0, before = 0;
    for (int w = 0; w < SAMPLE_WARPS; w++) mine += seg[w], before += w < warp ? seg[w] : 0;
    if (threadIdx.x == 0) part.s->seg[blockIdx.x] = mine;
    grid_barrier();
    /* The slices before this block's, and the row's total: thread t reads slice t's sum. */
    u64 total;
    const u64 earlier =
        block_exclusive_scan(threadIdx.x < gridDim.x ? __ldcg(&part.s->seg[threadIdx.x]) : 0, red, &total);
    if (threadIdx.x == blockIdx.x) slice_before = earlier;
    __syncthreads();
    if (total == 0) return blockIdx.x == 0 ? 0 : -1;
    u64 target = (u64)(u * (double)total);
    if (target >= total) target = total - 1; /* u * total rounded up to total */
    before += slice_before;
    if (before <= target && target < before + seg[warp]) { /* one warp of one block */
        for (int base = beg; base < end; base += 32) {
            const int i = base + lane;
            const u64 incl = warp_inclusive_scan_u64(i < end ? mass_of(weight(row.scaled(i), max, kth, floor)) : 0);
            const u64 tile = __shfl_sync(0xffffffffu, incl, 31);
            if (before + tile > target) {
                const unsigned hit = __ballot_sync(0xffffffffu, before + incl > target);
                if (lane == 0) token = base + __ffs(hit) - 1;
                break;
            }
            before += tile;
        }
    }
    __syncthreads();
    return token;
}

__global__ void __launch_bounds__(SAMPLE_THREADS) sample_kernel(int *out, const float *logits, int vocab,
                                                                 const __grid_constant__ sample_params p,
                                                                 sample_scratch *scratch) {
    __shared__ u64 hist[SAMPLE_BINS];
    __shared__ u64 red[32];
    __shared__ float redf[32];
    const int r = blockIdx.y, slice = ceil_div(vocab, gridDim.x);
    row_part part;
    part.row = {logits + (size_t)r * vocab, p.temperature};
    part.beg = min((int)blockIdx.x * slice, vocab);
    part.end = min(part.beg + slice, vocab);
    part.s = scratch + r;
    const float max = row_max(part, redf);
    float kth = -INFINITY, floor = 0.0f;
    unsigned key;
    int pass = 0;
    if (p.top_k > 0 && p.top_k < vocab &&
        radix_select(count_elem{part.row}, part, rank_target{(u64)(vocab - p.top_k)}, pass, hist, red, &key))
        kth = key_value(key);
    if (p.top_p < 1.0f)
        floor = radix_select(mass_elem{part.row, max, kth}, part, mass_target{1.0 - (double)p.top_p}, pass, hist,
                             red, &key)
                    ? __uint_as_float(key)
                    : 1.0f;
    if (p.min_p > 0.0f && p.min_p > floor) floor = fminf(p.min_p, 1.0f);
    const int token = draw(part, max, kth, floor, p.uniform[r], red);
    if (threadIdx.x == 0 && token >= 0) out[r] = token;
    /* Every block has read the histograms and the max (before the draw's barrier): zero them. */
    clear_share(&part.s->hist[0][0], SAMPLE_BUFFERS * SAMPLE_BINS);
    if (blockIdx.x == 0 && threadIdx.x == 0) part.s->max_key = 0;
}

size_t sampling_scratch_bytes() {
    const size_t argmax = sizeof(argmax_scratch), sample = SK_SAMPLE_MAX_ROWS * sizeof(sample_scratch);
    return argmax > sample ? argmax : sample;
}

struct occupancy {
    cudaError_t error;
    int per_sm;
};

static occupancy sample_occupancy() {
    occupancy o = {cudaSuccess, 0};
    o.error = cudaOccupancyMaxActiveBlocksPerMultiprocessor(&o.per_sm, sample_kernel, SAMPLE_THREADS, 0);
    return o;
}

/* Blocks per row: enough that each reads about SAMPLE_MIN_SLICE tokens, at most as many as fit on
 * the device at once with the other rows' (the grid barrier needs every block resident). The
 * occupancy is asked once: it depends on the kernel and the architecture (sm_90) only. */
static int sample_blocks(const launch_ctx &c, int rows, int vocab, cudaError_t *e) {
    static const occupancy o = sample_occupancy();
    *e = o.error;
    const int resident = o.per_sm * c.sms / rows;
    return max(1, min(min(SAMPLE_MAX_BLOCKS, ceil_div(vocab, SAMPLE_MIN_SLICE)), resident));
}

cudaError_t sample_rows(const launch_ctx &c, int *out, const float *logits, int rows, int vocab,
                        const sample_params &p, void *scratch) {
    cudaError_t e;
    const int blocks = sample_blocks(c, rows, vocab, &e);
    if (e != cudaSuccess) return e;
    /* A cooperative launch: every block resident, or an error instead of a hang. Not a dependent
     * launch (PDL): the copy of the ids right after it waits for it anyway. */
    cudaLaunchAttribute attr[1];
    attr[0].id = cudaLaunchAttributeCooperative;
    attr[0].val.cooperative = 1;
    cudaLaunchConfig_t cfg = {};
    cfg.gridDim = dim3(blocks, rows);
    cfg.blockDim = dim3(SAMPLE_THREADS);
    cfg.stream = c.stream;
    cfg.attrs = attr;
    cfg.numAttrs = 1;
    return cudaLaunchKernelEx(&cfg, sample_kernel, out, logits, vocab, p, (sample_scratch *)scratch);
}

} // namespace sk
