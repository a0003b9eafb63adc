/* sampling.cu — token choice on the device, so that decoding copies back one id per row instead of
 * the logits. argmax follows ss_argmax exactly: the largest value, the lowest index on ties, NaN
 * never chosen over a number (an all-NaN row gives 0). sample_rows draws from the distribution
 * engine/sampler.c defines (temperature, top-k, top-p, min-p) with a uniform the host's RNG drew. */
#include "common.cuh"
#include "kernels.cuh"

namespace sk {

#define ARGMAX_THREADS 1024

/* Whether (v2, i2) beats (v1, i1). */
__device__ __forceinline__ bool better(float v1, int i1, float v2, int i2) {
    const bool nan1 = v1 != v1, nan2 = v2 != v2;
    if (nan1 != nan2) return nan1;
    if (v2 > v1) return true;
    if (v2 < v1) return false;
    return i2 < i1;
}

__global__ void __launch_bounds__(ARGMAX_THREADS) argmax_kernel(int *out, const float *logits, int vocab) {
    __shared__ float sv[32];
    __shared__ int si[32];
    pdl_launch_dependents();
    pdl_wait();
    const float *row = logits + (size_t)blockIdx.x * vocab;
    float best = NAN;
    int at = 0x7fffffff;
    for (int i = threadIdx.x; i < vocab; i += blockDim.x) {
        const float v = row[i];
        if (better(best, at, v, i)) best = v, at = i;
    }
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
        const float v = __shfl_xor_sync(0xffffffffu, best, o);
        const int i = __shfl_xor_sync(0xffffffffu, at, o);
        if (better(best, at, v, i)) best = v, at = i;
    }
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    if (lane == 0) sv[warp] = best, si[warp] = at;
    __syncthreads();
    if (warp == 0) {
        best = lane < (int)(blockDim.x >> 5) ? sv[lane] : NAN;
        at = lane < (int)(blockDim.x >> 5) ? si[lane] : 0x7fffffff;
#pragma unroll
        for (int o = 16; o > 0; o >>= 1) {
            const float v = __shfl_xor_sync(0xffffffffu, best, o);
            const int i = __shfl_xor_sync(0xffffffffu, at, o);
            if (better(best, at, v, i)) best = v, at = i;
        }
        if (lane == 0) out[blockIdx.x] = at < vocab ? at : 0;
    }
}

cudaError_t argmax_rows(const launch_ctx &c, int *out, const float *logits, int rows, int vocab) {
    return launch_kernel(c, argmax_kernel, dim3(rows), dim3(ARGMAX_THREADS), 0, out, logits, vocab);
}

/* ---------------------------------------------------------------- sampling
 *
 * One block per row, every step a pass over the row (from L2 after the first: 0.5-1 MB for a
 * 128k-256k vocabulary), nothing sorted. With s = logit / T (a true IEEE division, as the host's
 * `/=`), the steps are sampler.c's:
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
 *      scaled by one constant give the same inverse CDF as the host's normalised probs): per-warp
 *      segment sums, then the one warp whose segment holds the target walks it 32 tokens at a time.
 * Masses are integers, w * 2^43 truncated, so sums are exact in any order: the histogram of a digit
 * adds up to its parent bin exactly and exactly one bin or lane satisfies each crossing test (a row
 * of up to 2^20 tokens stays below 2^63). The truncation (< 2^-43 per token) and expf's last bit
 * against the host's are the only differences from the host, so a draw differs only when u or a
 * top-p / min-p cut lies within ~1e-7 of the row's mass of a boundary; tokens with weight < 2^-43
 * are never drawn (the host would, with probability < 1e-12). */

#define SAMPLE_THREADS 1024
#define SAMPLE_WARPS (SAMPLE_THREADS / 32)
#define SAMPLE_BINS 2048 /* 2^11: the widest digit */

typedef unsigned long long u64;

__device__ __forceinline__ u64 mass_of(float w) { return (u64)((double)w * 0x1p43); }

/* Keys whose unsigned order is the float order (negative floats reversed below the positive). */
__device__ __forceinline__ unsigned order_key(float f) {
    const unsigned b = __float_as_uint(f);
    return (b & 0x80000000u) ? ~b : (b | 0x80000000u);
}
__device__ __forceinline__ float key_value(unsigned k) {
    return __uint_as_float((k & 0x80000000u) ? (k & 0x7fffffffu) : ~k);
}

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
 * the total does not exceed the target. hist: __shared__ u64[SAMPLE_BINS]; red: __shared__ u64[32]. */
template <typename Elem, typename Target>
__device__ bool radix_select(const Elem &elem, int vocab, const Target &target_of, u64 *hist, u64 *red,
                             unsigned *key_out) {
    __shared__ int found_bin;
    __shared__ u64 found_below;
    const int shifts[3] = {21, 10, 0}, widths[3] = {11, 11, 10};
    unsigned prefix = 0, mask = 0;
    u64 below = 0, target = 0; /* below: the amount of keys under the digits found so far */
    for (int pass = 0; pass < 3; pass++) {
        const int shift = shifts[pass], bins = 1 << widths[pass];
        for (int b = threadIdx.x; b < SAMPLE_BINS; b += blockDim.x) hist[b] = 0;
        __syncthreads();
        for (int base = 0; base < vocab; base += blockDim.x) { /* whole warps, for add_to_bin */
            const int i = base + threadIdx.x;
            unsigned key = 0;
            const u64 amount = i < vocab ? elem(i, &key) : 0;
            const int bin = amount && (key & mask) == prefix ? (int)((key >> shift) & (unsigned)(bins - 1)) : -1;
            add_to_bin<Elem::unit>(hist, bin, amount);
        }
        __syncthreads();
        const int b0 = 2 * threadIdx.x; /* two bins per thread: 2048 bins over 1024 threads */
        const u64 a0 = b0 < bins ? hist[b0] : 0, a1 = b0 + 1 < bins ? hist[b0 + 1] : 0;
        u64 total;
        const u64 before = below + block_exclusive_scan(a0 + a1, red, &total);
        if (pass == 0) {
            target = target_of(total);
            if (total <= target) return false; /* the same answer in every thread */
        }
        if (before <= target && target < before + a0) found_bin = b0, found_below = before;
        else if (before + a0 <= target && target < before + a0 + a1) found_bin = b0 + 1, found_below = before + a0;
        __syncthreads();
        prefix |= (unsigned)found_bin << shift;
        mask |= (unsigned)(bins - 1) << shift;
        below = found_below;
        __syncthreads(); /* found_* are rewritten by the next pass */
    }
    *key_out = prefix;
    return true;
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

/* Step 4: the token where the running weight in index order first exceeds u * total; 0 when every
 * weight is 0 (as ss_sample_at). Warp w owns tokens [w*per, (w+1)*per). */
__device__ int draw(const sample_row &row, int vocab, float max, float kth, float floor, double u) {
    __shared__ u64 seg[SAMPLE_WARPS];
    __shared__ int token;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    const int per = ceil_div(vocab, warps), beg = min(warp * per, vocab), end = min(beg + per, vocab);
    u64 sum = 0;
    for (int i = beg + lane; i < end; i += 32) sum += mass_of(weight(row.scaled(i), max, kth, floor));
    sum = warp_sum_u64(sum);
    if (lane == 0) seg[warp] = sum;
    if (threadIdx.x == 0) token = 0;
    __syncthreads();
    u64 total = 0, before = 0;
    for (int w = 0; w < warps; w++) total += seg[w], before += w < warp ? seg[w] : 0;
    u64 target = (u64)(u * (double)total);
    if (target >= total && total) target = total - 1; /* u * total rounded up to total */
    if (before <= target && target < before + seg[warp]) { /* one warp: the segment holding the target */
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
                                                                 sample_params p) {
    __shared__ u64 hist[SAMPLE_BINS];
    __shared__ u64 red[32];
    __shared__ float redf[32];
    pdl_launch_dependents();
    pdl_wait();
    const sample_row row = {logits + (size_t)blockIdx.x * vocab, p.temperature};
    float max = -INFINITY;
    for (int i = threadIdx.x; i < vocab; i += blockDim.x) max = fmaxf(max, row.scaled(i));
    max = block_max(max, redf);
    float kth = -INFINITY, floor = 0.0f;
    unsigned key;
    if (p.top_k > 0 && p.top_k < vocab &&
        radix_select(count_elem{row}, vocab, rank_target{(u64)(vocab - p.top_k)}, hist, red, &key))
        kth = key_value(key);
    if (p.top_p < 1.0f)
        floor = radix_select(mass_elem{row, max, kth}, vocab, mass_target{1.0 - (double)p.top_p}, hist, red, &key)
                    ? __uint_as_float(key)
                    : 1.0f;
    if (p.min_p > 0.0f && p.min_p > floor) floor = fminf(p.min_p, 1.0f);
    const int token = draw(row, vocab, max, kth, floor, p.uniform[blockIdx.x]);
    if (threadIdx.x == 0) out[blockIdx.x] = token;
}

cudaError_t sample_rows(const launch_ctx &c, int *out, const float *logits, int rows, int vocab,
                        const sample_params &p) {
    return launch_kernel(c, sample_kernel, dim3(rows), dim3(SAMPLE_THREADS), 0, out, logits, vocab, p);
}

} // namespace sk
