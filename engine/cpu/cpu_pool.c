/* cpu_pool.c — persistent worker threads that share out the chunks of one loop at a time.
 *
 * A decode step is a few hundred short loops, so waking sleeping threads through the kernel for
 * each one costs as much as the work (it was 40% of a small model's decode time). Workers therefore
 * spin for a short while after each loop, watching the generation counter, before they sleep on the
 * condition variable; the caller waits for the loop's end by spinning too (yielding when it drags). */
#include "cpu_pool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define CPU_RELAX() _mm_pause()
#else
#define CPU_RELAX() ((void)0)
#endif

/* Pause iterations a worker spins before sleeping: tens of microseconds, longer than the gaps
 * between the loops of one forward, short enough not to slow OpenBLAS threads down for long. */
#define SPIN_BEFORE_SLEEP 1000
/* Pause iterations the caller spins before yielding its time slice while waiting. */
#define SPIN_BEFORE_YIELD 2000

typedef struct {
    cpu_pool *pool;
    int index; /* 1..threads-1; the caller is 0 */
} worker_arg;

struct cpu_pool {
    int threads; /* including the caller */
    int started; /* worker threads running */
    pthread_t *workers;
    worker_arg *args;
    atomic_ulong generation; /* bumped for every loop handed out */
    atomic_int busy;         /* workers not yet finished with the current loop */
    atomic_int sleepers;     /* workers blocked (or about to block) on wake */
    atomic_bool quit;
    pthread_mutex_t mu;
    pthread_cond_t wake;
    /* The current loop, written before generation is bumped. */
    cpu_range_fn fn;
    void *ctx;
    int count, chunk;
    atomic_int next;
};

static int available_cpus(void) {
    const char *env = getenv("SPECSCOPE_THREADS");
    if (env && atoi(env) > 0) return atoi(env);
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0) return CPU_COUNT(&set);
    return 1;
}

static void run_chunks(cpu_pool *p, int thread) {
    for (;;) {
        int begin = atomic_fetch_add(&p->next, p->chunk);
        if (begin >= p->count) return;
        int end = begin + p->chunk < p->count ? begin + p->chunk : p->count;
        p->fn(p->ctx, begin, end, thread);
    }
}

/* Returns the new generation, or the old one when quitting. */
static unsigned long wait_for_work(cpu_pool *p, unsigned long seen) {
    for (int i = 0; i < SPIN_BEFORE_SLEEP; i++) {
        unsigned long g = atomic_load(&p->generation);
        if (g != seen || atomic_load(&p->quit)) return g;
        CPU_RELAX();
    }
    /* sleepers is raised before generation is re-read; the caller bumps generation before it reads
     * sleepers: one of the two sees the other, so no wake-up is lost. */
    pthread_mutex_lock(&p->mu);
    atomic_fetch_add(&p->sleepers, 1);
    unsigned long g;
    while ((g = atomic_load(&p->generation)) == seen && !atomic_load(&p->quit)) pthread_cond_wait(&p->wake, &p->mu);
    atomic_fetch_sub(&p->sleepers, 1);
    pthread_mutex_unlock(&p->mu);
    return g;
}

static void *worker_main(void *arg) {
    worker_arg *wa = arg;
    cpu_pool *p = wa->pool;
    unsigned long seen = 0;
    for (;;) {
        seen = wait_for_work(p, seen);
        if (atomic_load(&p->quit)) return NULL;
        run_chunks(p, wa->index);
        atomic_fetch_sub(&p->busy, 1);
    }
}

cpu_pool *cpu_pool_create(int threads) {
    cpu_pool *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->threads = threads > 0 ? threads : available_cpus();
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->wake, NULL);
    p->workers = calloc((size_t)p->threads, sizeof *p->workers);
    p->args = calloc((size_t)p->threads, sizeof *p->args);
    if (!p->workers || !p->args) {
        cpu_pool_destroy(p);
        return NULL;
    }
    for (int i = 1; i < p->threads; i++) {
        p->args[i] = (worker_arg){p, i};
        if (pthread_create(&p->workers[i], NULL, worker_main, &p->args[i]) != 0) {
            cpu_pool_destroy(p);
            return NULL;
        }
        p->started = i;
    }
    return p;
}

void cpu_pool_destroy(cpu_pool *p) {
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    atomic_store(&p->quit, true);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    for (int i = 1; i <= p->started; i++) pthread_join(p->workers[i], NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->wake);
    free(p->workers);
    free(p->args);
    free(p);
}

int cpu_pool_threads(const cpu_pool *p) { return p->threads; }

void cpu_pool_for(cpu_pool *p, int count, int grain, cpu_range_fn fn, void *ctx) {
    if (count <= 0) return;
    if (grain < 1) grain = 1;
    if (p->threads == 1 || count <= grain) {
        fn(ctx, 0, count, 0);
        return;
    }
    /* About four chunks per thread balances uneven chunks without much contention on next. */
    int chunk = (count + p->threads * 4 - 1) / (p->threads * 4);
    if (chunk < grain) chunk = grain;

    p->fn = fn;
    p->ctx = ctx;
    p->count = count;
    p->chunk = chunk;
    atomic_store(&p->next, 0);
    atomic_store(&p->busy, p->threads - 1);
    atomic_fetch_add(&p->generation, 1); /* publishes the loop (sequentially consistent) */
    if (atomic_load(&p->sleepers) > 0) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->wake);
        pthread_mutex_unlock(&p->mu);
    }

    run_chunks(p, 0);

    for (int spins = 0; atomic_load(&p->busy) > 0; spins++) {
        if (spins < SPIN_BEFORE_YIELD)
            CPU_RELAX();
        else
            sched_yield();
    }
}
