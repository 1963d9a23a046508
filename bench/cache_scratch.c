/* cache_scratch THREADS ITERS OBJSIZE REPS SEED
 *
 * False-sharing check (after Hoard's cache-scratch). The main thread
 * allocates one small object per worker, back to back, and hands one to each
 * worker. A worker writes to its object REPS times and frees it (a free by a
 * thread that did not allocate it), then ITERS times: allocates an object of
 * OBJSIZE bytes, writes every byte REPS times, checks it and frees it. An
 * allocator that hands a worker memory on a cache line another worker is
 * writing makes the writes slow.
 * ops = THREADS * (ITERS + 1) * REPS object write passes.
 */
#include "bench_common.h"
#include <pthread.h>

#define USAGE "cache_scratch THREADS ITERS OBJSIZE REPS SEED   (defaults: 2 1000 8 2000 1234567)"

typedef struct {
  unsigned char *given;
  uint32_t id;
  uint64_t iters, reps, objsize, seed;
  pthread_barrier_t *bar;
  uint64_t checked;
  char pad[64];
} cjob;

static void write_passes(volatile unsigned char *a, uint64_t objsize, uint64_t reps, unsigned char base) {
  for (uint64_t r = 0; r < reps; r++)
    for (uint64_t k = 0; k < objsize; k++) a[k] = (unsigned char)(base + r + k);
}

static int check_passes(const volatile unsigned char *a, uint64_t objsize, uint64_t reps, unsigned char base) {
  for (uint64_t k = 0; k < objsize; k++)
    if (a[k] != (unsigned char)(base + (reps - 1) + k)) return 0;
  return 1;
}

static void *worker(void *arg) {
  cjob *j = (cjob *)arg;
  bench_rng rng;
  bench_rng_seed(&rng, j->seed, j->id + 1);
  pthread_barrier_wait(j->bar);
  unsigned char base = (unsigned char)bench_rng_next(&rng);
  write_passes(j->given, j->objsize, j->reps, base);
  if (!check_passes(j->given, j->objsize, j->reps, base))
    bench_fail("worker %u: handed object %p was overwritten", j->id, (void *)j->given);
  free(j->given);
  j->given = NULL;
  for (uint64_t i = 0; i < j->iters; i++) {
    unsigned char *a = (unsigned char *)malloc(j->objsize);
    if (!a) bench_fail("worker %u: malloc(%" PRIu64 ") returned NULL", j->id, j->objsize);
    base = (unsigned char)bench_rng_next(&rng);
    write_passes(a, j->objsize, j->reps, base);
    if (!check_passes(a, j->objsize, j->reps, base))
      bench_fail("worker %u: object %p was overwritten by someone else", j->id, (void *)a);
    j->checked++;
    free(a);
  }
  pthread_barrier_wait(j->bar);
  return NULL;
}

int main(int argc, char **argv) {
  bench_workload_name = "cache_scratch";
  if (argc > 6) bench_usage(USAGE);
  uint64_t nt = bench_arg_u64(argc, argv, 1, 2, USAGE);
  uint64_t iters = bench_arg_u64(argc, argv, 2, 1000, USAGE);
  uint64_t objsize = bench_arg_u64(argc, argv, 3, 8, USAGE);
  uint64_t reps = bench_arg_u64(argc, argv, 4, 2000, USAGE);
  uint64_t seed = bench_arg_u64(argc, argv, 5, 1234567, USAGE);
  if (nt < 1 || nt > 1024 || objsize < 1 || objsize > (1u << 20) || reps < 1) bench_usage(USAGE);

  cjob *jobs = (cjob *)calloc(nt, sizeof(cjob));
  pthread_t *th = (pthread_t *)calloc(nt, sizeof(pthread_t));
  if (!jobs || !th) bench_fail("setup allocation failed");
  pthread_barrier_t bar;
  pthread_barrier_init(&bar, NULL, (unsigned)nt + 1);
  /* the objects handed out are allocated back to back by the main thread */
  for (uint64_t i = 0; i < nt; i++) {
    jobs[i].given = (unsigned char *)bench_xmalloc(objsize);
    jobs[i].id = (uint32_t)i;
    jobs[i].iters = iters;
    jobs[i].reps = reps;
    jobs[i].objsize = objsize;
    jobs[i].seed = seed;
    jobs[i].bar = &bar;
  }
  for (uint64_t i = 0; i < nt; i++)
    if (pthread_create(&th[i], NULL, worker, &jobs[i]) != 0) bench_fail("pthread_create failed");
  pthread_barrier_wait(&bar);
  double t0 = bench_now();
  pthread_barrier_wait(&bar);
  double t1 = bench_now();
  uint64_t checked = 0;
  for (uint64_t i = 0; i < nt; i++) {
    pthread_join(th[i], NULL);
    checked += jobs[i].checked;
  }
  if (checked != nt * iters) bench_fail("checked %" PRIu64 " objects, expected %" PRIu64, checked, nt * iters);
  pthread_barrier_destroy(&bar);

  char owned[64] = "";
  bench_owned_check(owned, sizeof owned, NULL, 0, objsize, objsize, BENCH_OWN_FRESH);
  char extra[96];
  snprintf(extra, sizeof extra, "threads=%u,objsize=%" PRIu64 ",mallocs=%" PRIu64, (unsigned)nt, objsize,
           nt * (iters + 1));
  bench_result(nt * (iters + 1) * reps, t1 - t0, owned, extra);
  free(jobs);
  free(th);
  return 0;
}
