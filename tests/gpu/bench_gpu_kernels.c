/* bench_gpu_kernels.c — the ceilings and the batch-1 GEMV against cuBLASLt on the weight shapes of
 * the benchmark presets (scripts/gpu-check.sh runs it; timings are printed, never asserted).
 * Usage: bench_gpu_kernels [--quick | --shape NAME | --attention]   (--quick: one preset's shapes;
 * --shape: the GEMV shape of that name alone, e.g. "1b lm_head"; --attention: the attention lines
 * alone; the last two for a profiler). Exit 0 ok, 1 failure, 2 bad usage, 77 without a CUDA
 * device. */
#include <stdio.h>
#include <string.h>

#include "cuda_bench.h"
#include "gpu_test.h"

typedef struct {
    const char *what;
    int rows, cols;
    bool glu;
} shape;

/* q, k/v, o, gate/up (alone and as the fused GLU launch), down, lm_head of llama-3.2-1b and
 * llama-3.1-8b; qkv of qwen2.5-0.5b. */
static const shape shapes[] = {
    {"1b q/o", 2048, 2048, false},         {"1b k/v", 512, 2048, false},     {"1b gate/up", 8192, 2048, false},
    {"1b gate+up GLU", 8192, 2048, true},  {"1b down", 2048, 8192, false},   {"1b lm_head", 128256, 2048, false},
    {"8b q/o", 4096, 4096, false},         {"8b k/v", 1024, 4096, false},    {"8b gate/up", 14336, 4096, false},
    {"8b gate+up GLU", 14336, 4096, true}, {"8b down", 4096, 14336, false},  {"8b lm_head", 128256, 4096, false},
    {"0.5b q", 896, 896, false},           {"0.5b down", 896, 4864, false},
};

/* Decode attention after 128 to 4096 tokens of context (the token decoded next, as specscope
 * bench's "decode @128": 129 keys) and one layer's prefill attention, for the 1B and 8B heads
 * (launches back to back in a CUDA graph); gemm_peak (0: not measured) is the prefill's reference
 * rate. Returns nonzero on failure. */
static int attention_lines(double copy, double gemm_peak) {
    ss_error err = {0};
    static const struct {
        const char *what;
        int heads, kv_heads, head_dim;
    } attn[] = {{"1b", 32, 8, 64}, {"8b", 32, 8, 128}};
    static const int contexts[] = {128, 256, 512, 1024, 4096};
    for (size_t i = 0; i < sizeof attn / sizeof *attn; i++) {
        for (size_t j = 0; j < sizeof contexts / sizeof *contexts; j++) {
            double s = 0;
            const int keys = contexts[j] + 1;
            if (ss_cuda_attention_time(attn[i].heads, attn[i].kv_heads, attn[i].head_dim, 1, keys, &s, &err)) {
                fprintf(stderr, "%s\n", err.msg);
                return 1;
            }
            double kv = 2.0 * keys * attn[i].kv_heads * attn[i].head_dim * 2;
            printf("attention decode %s @%d: %.2f us, KV %.2f MB at %.1f%% of copy bandwidth\n", attn[i].what,
                   contexts[j], s * 1e6, kv / 1e6, 100 * kv / s / copy);
        }
        /* One layer's attention of a 2048-token prefill: causal, so query i does 4 * head_dim
         * FLOPs per head for each of its i + 1 keys. */
        const int prompt = 2048;
        double s = 0;
        if (ss_cuda_attention_time(attn[i].heads, attn[i].kv_heads, attn[i].head_dim, prompt, prompt, &s, &err)) {
            fprintf(stderr, "%s\n", err.msg);
            return 1;
        }
        double flops = 4.0 * attn[i].head_dim * attn[i].heads * ((double)prompt * (prompt + 1) / 2);
        printf("attention prefill %s %d tokens: %.1f us, %.1f TFLOP/s", attn[i].what, prompt, s * 1e6, flops / s / 1e12);
        if (gemm_peak > 0) printf(" (%.1f%% of the best cuBLASLt rate above)", 100 * flops / s / gemm_peak);
        printf("\n");
    }
    return 0;
}

int main(int argc, char **argv) {
    int skip = gpu_require_device();
    if (skip) return skip;
    bool quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
    bool attention_only = argc > 1 && strcmp(argv[1], "--attention") == 0;
    const char *only = argc > 2 && strcmp(argv[1], "--shape") == 0 ? argv[2] : NULL;
    if (argc > 1 && !quick && !only && !attention_only) {
        fprintf(stderr, "usage: bench_gpu_kernels [--quick | --shape NAME | --attention]\n");
        return 2;
    }
    ss_error err = {0};
    double copy = 0, gemm = 0, gemm_peak = 0;
    if (ss_cuda_copy_bandwidth(&copy, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    printf("copy bandwidth (read + write): %.3f TB/s\n", copy / 1e12);
    if (attention_only) return attention_lines(copy, 0) ? 1 : 0;
    static const int gemms[][3] = {{2048, 14336, 4096}, {2048, 4096, 4096}, {256, 4096, 4096}, {256, 14336, 4096},
                                   {2048, 8192, 2048}};
    for (size_t i = 0; i < sizeof gemms / sizeof *gemms; i++) {
        if (ss_cuda_gemm_rate(gemms[i][0], gemms[i][1], gemms[i][2], &gemm, &err)) {
            fprintf(stderr, "%s\n", err.msg);
            return 1;
        }
        printf("cuBLASLt bf16 GEMM m=%d n=%d k=%d: %.1f TFLOP/s\n", gemms[i][0], gemms[i][1], gemms[i][2], gemm / 1e12);
        if (gemm > gemm_peak) gemm_peak = gemm;
    }
    printf("%-15s %7s %6s %10s %14s %8s %8s %12s %8s %12s %12s\n", "GEMV", "rows", "cols", "ours GB/s", "cuBLASLt GB/s",
           "ours/cp", "speedup", "phases GB/s", "phas/cp", "1 cold GB/s", "1 in L2 GB/s");
    size_t n = quick ? 6 : sizeof shapes / sizeof *shapes;
    for (size_t i = 0; i < n; i++) {
        if (only && strcmp(only, shapes[i].what) != 0) continue;
        ss_gemv_rates r;
        if (ss_cuda_gemv_rate(shapes[i].rows, shapes[i].cols, shapes[i].glu, &r, &err)) {
            fprintf(stderr, "%s\n", err.msg);
            return 1;
        }
        printf("%-15s %7d %6d %10.1f %14.1f %7.1f%% %7.2fx %12.1f %7.1f%% %12.1f %12.1f\n", shapes[i].what, shapes[i].rows,
               shapes[i].cols, r.gemv / 1e9, r.cublas / 1e9, 100 * r.gemv / copy, r.gemv / r.cublas, r.persistent / 1e9,
               100 * r.persistent / copy, r.single_cold / 1e9, r.single_l2 / 1e9);
    }
    if (only) return 0;
    double in_graph = 0, one_by_one = 0;
    if (ss_cuda_boundary_time(&in_graph, &one_by_one, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    printf("kernel boundary (empty kernels back to back, PDL): %.2f us in a graph, %.2f us launched one by one\n",
           in_graph * 1e6, one_by_one * 1e6);
    return attention_lines(copy, gemm_peak) ? 1 : 0;
}
