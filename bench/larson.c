/* larson SECONDS MIN MAX CHUNKS ROUNDS SEED THREADS
 *
 * The Larson–Krishnan server simulation (classic argument order). The main
 * thread allocates CHUNKS blocks for each of THREADS workers. A worker
 * repeats ROUNDS*CHUNKS times: pick a random block of its set, check and free
 * it, allocate a new one of a random size in MIN..MAX and tag it. Then, unless
 * time is up, it starts a new thread that inherits the set — so blocks are
 * freed by threads other than the one that allocated them — and exits. After
 * SECONDS (fractions allowed) the main thread raises the stop flag, waits for
 * every chain, checks and frees what is left.
 * ops = mallocs + frees done by the workers.
 */
#include "bench_common.h"
#include <pthread.h>
#include <stdatomic.h>

#define USAGE "larson SECONDS MIN MAX CHUNKS ROUNDS SEED THREADS   (defaults: 1 8 1000 1000 100 4141 2)"

typedef struct {
  void *p;
  uint64_t tag;
  uint32_t size;
} lblock;

typedef struct {
  lblock *blocks; /* this chain's set */
  uint32_t n, minsz, maxsz, id;
  uint64_t rounds_blocks; /* alloc/free pairs per thread lifetime */
  bench_rng rng;
  uint64_t mallocs, frees, generations, spawn_failures;
  uint64_t sum_alloc, sum_free;
  atomic_int done;
  char pad[64];
} larea;

static atomic_int stop_flag;

static void *larson_worker(void *arg) {
  larea *a = (larea *)arg;
  for (;;) {
    const uint32_t span = a->maxsz - a->minsz + 1;
    for (uint64_t i = 0; i < a->rounds_blocks; i++) {
      uint64_t r = bench_rng_next(&a->rng);
      lblock *b = &a->blocks[bench_bounded32((uint32_t)(r >> 32), a->n)];
      if (!block_ok(b->p, b->size, b->tag))
        bench_fail("chain %u: block %p of %u bytes lost its contents", a->id, b->p, b->size);
      a->sum_free += b->tag;
      free(b->p);
      a->frees++;
      uint32_t size = a->minsz + bench_bounded32((uint32_t)r, span);
      void *p = malloc(size);
      if (!p) bench_fail("chain %u: malloc(%u) returned NULL", a->id, size);
      uint64_t tag = bench_rng_next(&a->rng);
      block_fill(p, size, tag);
      b->p = p;
      b->size = size;
      b->tag = tag;
      a->sum_alloc += tag;
      a->mallocs++;
      if ((i & 255) == 0 && atomic_load_explicit(&stop_flag, memory_order_relaxed)) break;
    }
    if (atomic_load_explicit(&stop_flag, memory_order_relaxed)) break;
    /* hand the set to a new thread */
    pthread_attr_t attr;
    pthread_t t;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    a->generations++;
    int rc = pthread_create(&t, &attr, larson_worker, a);
    pthread_attr_destroy(&attr);
    if (rc == 0) return NULL; /* the new thread owns the set now */
    a->spawn_failures++; /* could not spawn: keep going in this thread */
  }
  atomic_store_explicit(&a->done, 1, memory_order_release);
  return NULL;
}

int main(int argc, char **argv) {
  bench_workload_name = "larson";
  if (argc > 8) bench_usage(USAGE);
  double secs = bench_arg_double(argc, argv, 1, 1.0, USAGE);
  uint64_t mn = bench_arg_u64(argc, argv, 2, 8, USAGE);
  uint64_t mx = bench_arg_u64(argc, argv, 3, 1000, USAGE);
  uint64_t chunks = bench_arg_u64(argc, argv, 4, 1000, USAGE);
  uint64_t rounds = bench_arg_u64(argc, argv, 5, 100, USAGE);
  uint64_t seed = bench_arg_u64(argc, argv, 6, 4141, USAGE);
  uint64_t nt = bench_arg_u64(argc, argv, 7, 2, USAGE);
  if (mn < 1 || mx < mn || mx > (1u << 30) || chunks < 1 || chunks > (1u << 24) || rounds < 1 || nt < 1 ||
      nt > 1024)
    bench_usage(USAGE);

  larea *areas = (larea *)aligned_alloc(64, ((nt * sizeof(larea)) + 63) & ~(size_t)63);
  lblock *all = (lblock *)calloc(nt * chunks, sizeof(lblock));
  if (!areas || !all) bench_fail("allocation of the block sets failed");
  memset(areas, 0, nt * sizeof(larea));
  atomic_store(&stop_flag, 0);

  /* the main thread allocates every initial block */
  bench_rng mrng;
  bench_rng_seed(&mrng, seed, 0);
  uint64_t main_sum = 0;
  for (uint64_t i = 0; i < nt * chunks; i++) {
    uint64_t r = bench_rng_next(&mrng);
    uint32_t size = (uint32_t)mn + bench_bounded32((uint32_t)r, (uint32_t)(mx - mn + 1));
    all[i].p = bench_xmalloc(size);
    all[i].size = size;
    all[i].tag = r;
    block_fill(all[i].p, size, r);
    main_sum += r;
  }
  for (uint64_t t = 0; t < nt; t++) {
    larea *a = &areas[t];
    a->blocks = &all[t * chunks];
    a->n = (uint32_t)chunks;
    a->minsz = (uint32_t)mn;
    a->maxsz = (uint32_t)mx;
    a->id = (uint32_t)t;
    a->rounds_blocks = rounds * chunks;
    bench_rng_seed(&a->rng, seed, t + 1);
    atomic_init(&a->done, 0);
  }

  double t0 = bench_now();
  for (uint64_t t = 0; t < nt; t++) {
    pthread_attr_t attr;
    pthread_t th;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&th, &attr, larson_worker, &areas[t]) != 0) bench_fail("pthread_create failed");
    pthread_attr_destroy(&attr);
  }
  struct timespec ts = {(time_t)secs, (long)((secs - (double)(time_t)secs) * 1e9)};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
  atomic_store(&stop_flag, 1);
  for (uint64_t t = 0; t < nt; t++) {
    while (!atomic_load_explicit(&areas[t].done, memory_order_acquire)) {
      struct timespec w = {0, 200000};
      nanosleep(&w, NULL);
    }
  }
  double t1 = bench_now();

  char owned[64] = "";
  {
    size_t nl = nt * chunks;
    void **live = (void **)calloc(nl, sizeof(void *));
    if (!live) bench_fail("calloc failed");
    for (size_t i = 0; i < nl; i++) live[i] = all[i].p;
    bench_owned_check(owned, sizeof owned, live, nl, mn, mx, BENCH_OWN_FRESH);
    free(live);
  }

  uint64_t ops = 0, gens = 0, fails = 0, sum_alloc = main_sum, sum_free = 0;
  for (uint64_t t = 0; t < nt; t++) {
    larea *a = &areas[t];
    ops += a->mallocs + a->frees;
    gens += a->generations;
    fails += a->spawn_failures;
    sum_alloc += a->sum_alloc;
    sum_free += a->sum_free;
  }
  for (uint64_t i = 0; i < nt * chunks; i++) {
    if (!block_ok(all[i].p, all[i].size, all[i].tag))
      bench_fail("live block %p of %u bytes lost its contents", all[i].p, all[i].size);
    sum_free += all[i].tag;
    free(all[i].p);
  }
  if (sum_alloc != sum_free) bench_fail("checksum mismatch");
  char extra[128];
  snprintf(extra, sizeof extra, "threads=%u,thread_handoffs=%" PRIu64 ",spawn_failures=%" PRIu64, (unsigned)nt,
           gens, fails);
  bench_result(ops, t1 - t0, owned, extra);
  free(all);
  free(areas);
  return 0;
}
