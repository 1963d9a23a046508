/* test_oversub.c — the shared pool's locks with more threads than cores.
 *
 * THREADS threads (default 10, on a 2-core machine: most of the time a lock
 * holder is preempted) each do ROUNDS rounds of: allocate K blocks of
 * 32 KiB..512 KiB (mid and large classes, so nearly every round needs slabs
 * from the shared pool and gives them back: stage 1/2/3 acquires and
 * releases, room lists, arena chunks), some with calloc (must read zero,
 * also while a trim decommits next door), hand a quarter of them to the
 * next thread (remote frees), check and free the rest and what the previous
 * thread handed over. TRIMMERS more threads call malloc_trim(0) in a loop
 * (decommit, SuperSlab retirement) until the workers finish; one of them
 * also reads the statistics now and then (hak_stats_get, and hak_stat
 * "active", which walks the SuperSlab headers). What is
 * checked: every block's contents, calloc zeroes, that it completes (the
 * runner's timeout catches a lost wake-up), and that afterwards a
 * malloc_trim(0) leaves no EMPTY slab behind. Nothing about time.
 *
 * usage: test_oversub [threads] [rounds]
 */
#include "hk_proc.h"

#define K 48
#define TRIMMERS 2
#define MAXT 64

typedef struct {
  char *p;
  size_t n;
  uint64_t tag;
} blk_t;

/* one mailbox per thread: blocks handed to it by the previous thread */
typedef struct {
  pthread_mutex_t mu;
  blk_t b[4 * K];
  int n;
} box_t;

static box_t box[MAXT];
static int nthreads = 10;
static long rounds = 300;
static atomic_int workers_left;
static atomic_long n_blocks, n_calloc, n_remote, n_trims;

static void check_free(blk_t *b, const char *who) {
  CHECK(hk_check_sparse(b->p, b->n, b->tag) == (size_t)-1, "%s: block %p (%zu B) corrupted", who, (void *)b->p,
        b->n);
  free(b->p);
}

static void *worker(void *arg) {
  int id = (int)(intptr_t)arg;
  hk_rng_t r = {hk_mix64((uint64_t)id + 11)};
  blk_t mine[K];
  blk_t got[4 * K];
  for (long round = 0; round < rounds; round++) {
    for (int i = 0; i < K; i++) {
      size_t n = hk_logsize(&r, 32 * 1024, 512 * 1024);
      char *p;
      if (i % 6 == 0) {
        p = calloc(1, n);
        REQUIRE(p, "calloc(1, %zu) failed", n);
        for (size_t o = 0; o < n; o += 4096)
          if (p[o] || p[o + 4095 < n ? o + 4095 : n - 1]) {
            CHECK(0, "calloc(1, %zu) = %p not zero at page %zu", n, (void *)p, o / 4096);
            break;
          }
        atomic_fetch_add_explicit(&n_calloc, 1, memory_order_relaxed);
      } else {
        p = malloc(n);
        REQUIRE(p, "malloc(%zu) failed", n);
      }
      mine[i].p = p;
      mine[i].n = n;
      mine[i].tag = hk_rand(&r);
      hk_fill_sparse(p, n, mine[i].tag);
    }
    /* a quarter goes to the next thread, which frees them (remote frees) */
    box_t *to = &box[(id + 1) % nthreads];
    int keep = K;
    pthread_mutex_lock(&to->mu);
    while (keep > K * 3 / 4 && to->n < 4 * K) to->b[to->n++] = mine[--keep];
    pthread_mutex_unlock(&to->mu);
    atomic_fetch_add_explicit(&n_remote, K - keep, memory_order_relaxed);
    for (int i = 0; i < keep; i++) check_free(&mine[i], "owner");
    /* what the previous thread handed over */
    box_t *me = &box[id];
    pthread_mutex_lock(&me->mu);
    int ng = me->n;
    memcpy(got, me->b, (size_t)ng * sizeof *got);
    me->n = 0;
    pthread_mutex_unlock(&me->mu);
    for (int i = 0; i < ng; i++) check_free(&got[i], "receiver");
    atomic_fetch_add_explicit(&n_blocks, K, memory_order_relaxed);
  }
  atomic_fetch_sub(&workers_left, 1);
  return NULL;
}

static void *trimmer(void *arg) {
  int id = (int)(intptr_t)arg;
  while (atomic_load(&workers_left) > 0) {
    malloc_trim(0);
    long t = atomic_fetch_add_explicit(&n_trims, 1, memory_order_relaxed);
    /* the statistics read the other threads' heaps and walk the SuperSlab
     * headers while they change */
    if (id == 0 && t % 8 == 0) {
      hak_stats_t s;
      hk_stats(&s);
      uint64_t v;
      (void)hk_stat_named("active", &v);
    }
    struct timespec ts = {0, 200000};
    nanosleep(&ts, NULL);
  }
  return NULL;
}

int main(int argc, char **argv) {
  hk_init("oversub");
  nthreads = argc > 1 ? atoi(argv[1]) : 10;
  if (nthreads < 2) nthreads = 2;
  if (nthreads > MAXT) nthreads = MAXT;
  rounds = hk_scale(argc > 2 ? atol(argv[2]) : 300);
  hk_note("%d workers x %ld rounds of %d blocks of 32..512 KiB, %d trimmers, %ld cores", nthreads, rounds, K,
          TRIMMERS, sysconf(_SC_NPROCESSORS_ONLN));
  for (int i = 0; i < nthreads; i++) pthread_mutex_init(&box[i].mu, NULL);
  hak_stats_t s0, s1;
  hk_stats(&s0);
  atomic_store(&workers_left, nthreads);
  pthread_t th[MAXT + TRIMMERS];
  for (int i = 0; i < nthreads; i++)
    REQUIRE(pthread_create(&th[i], NULL, worker, (void *)(intptr_t)i) == 0, "pthread_create failed");
  for (int i = 0; i < TRIMMERS; i++)
    REQUIRE(pthread_create(&th[nthreads + i], NULL, trimmer, (void *)(intptr_t)i) == 0, "pthread_create failed");
  for (int i = 0; i < nthreads + TRIMMERS; i++) pthread_join(th[i], NULL);
  /* blocks still in the mailboxes */
  for (int i = 0; i < nthreads; i++) {
    for (int j = 0; j < box[i].n; j++) check_free(&box[i].b[j], "main");
    box[i].n = 0;
  }
  malloc_trim(0);
  hk_stats(&s1);
  uint64_t empty = 0;
  (void)hk_stat_named("shared_pool.empty_slabs", &empty);
  hk_note("%ld blocks (%ld calloc, %ld freed by another thread), %ld trims; shared pool: stage1 %" PRIu64
          ", stage2 %" PRIu64 ", stage3 %" PRIu64 ", released %" PRIu64 "; SuperSlabs now %" PRIu64
          ", EMPTY slabs after the last trim %" PRIu64,
          atomic_load(&n_blocks), atomic_load(&n_calloc), atomic_load(&n_remote), atomic_load(&n_trims),
          s1.sp_stage[0] - s0.sp_stage[0], s1.sp_stage[1] - s0.sp_stage[1], s1.sp_stage[2] - s0.sp_stage[2],
          s1.sp_release - s0.sp_release, s1.superslabs, empty);
  CHECK(atomic_load(&n_blocks) == (long)nthreads * rounds * K, "blocks: %ld", atomic_load(&n_blocks));
  if (HK_HAVE_PROOF) {
    CHECK(s1.sp_release - s0.sp_release > (uint64_t)rounds, "slabs were hardly ever released: not a test of the pool");
    CHECK(empty == 0, "%" PRIu64 " EMPTY slabs after malloc_trim(0) with no thread holding any", empty);
  }
  check_finish();
}
