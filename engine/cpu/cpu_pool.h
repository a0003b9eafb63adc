/* cpu_pool.h — a small persistent thread pool for the CPU backend's data-parallel loops.
 *
 * cpu_pool_for() splits [0, count) into chunks and runs them on the pool's threads and the calling
 * thread; it returns when every chunk is done. One caller at a time (a backend belongs to one model,
 * which one thread drives). */
#ifndef SPECSCOPE_CPU_POOL_H
#define SPECSCOPE_CPU_POOL_H

/* Processes items [begin, end); thread is in [0, cpu_pool_threads()) and names per-thread scratch. */
typedef void (*cpu_range_fn)(void *ctx, int begin, int end, int thread);

typedef struct cpu_pool cpu_pool;

/* threads: total including the caller; <= 0 picks the number of CPUs this process may run on
 * (or $SPECSCOPE_THREADS when set). NULL when out of memory or a thread cannot start. */
cpu_pool *cpu_pool_create(int threads);
void cpu_pool_destroy(cpu_pool *pool);
int cpu_pool_threads(const cpu_pool *pool);
/* grain: the smallest chunk worth handing to another thread. */
void cpu_pool_for(cpu_pool *pool, int count, int grain, cpu_range_fn fn, void *ctx);

#endif
