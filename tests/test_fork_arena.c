/* test_fork_arena.c — fork with a large heap in arenas while threads
 * allocate; the child's heap and its background thread work.
 *
 * The main thread builds a heap of HEAP_MIB (every slab tier and Big
 * blocks, touched: several arenas), while WORKERS threads allocate and free
 * blocks of every tier without pause. The main thread forks FORKS times.
 * Each child:
 *   - checks a sample of the inherited blocks and frees every block the
 *     main thread owns (the heap it inherited as its own) and some of the
 *     workers' (threads that do not exist in the child);
 *   - allocates CHILD_MIB of its own in every tier (calloc, realloc growth
 *     and aligned blocks included), checks and frees it;
 *   - then makes no allocator call and polls its RSS for up to POLL_S: its
 *     background thread (started afresh in the child) must have returned
 *     memory: decay.returns and decay.background_ticks grow, and RSS falls
 *     by at least 3/4 of the main thread's inherited heap below its value
 *     at fork (the workers' blocks, whose heaps have no thread in the
 *     child, stay);
 *   - exits 0 (an alarm of 30 s catches a lock held across fork).
 * In the sanitizer variant (hak_* API) the workers pause while the main
 * thread forks: GCC 12's libasan has no fork handler for its allocator,
 * which pthread_create in the child (the background thread) uses.
 *
 * usage: test_fork_arena [forks] [workers]
 */
#include "hk_proc.h"

#define HEAP_MIB 256
#define CHILD_MIB 64
#define POLL_S 3.0

typedef struct {
  char *p;
  size_t n;
} blk_t;

static blk_t *heap; /* the main thread's blocks (mmap'd table) */
static size_t nheap;
static uint64_t heap_bytes;
static atomic_int stop;
#ifdef HK_MODE_HAKAPI
static pthread_rwlock_t fork_lock = PTHREAD_RWLOCK_INITIALIZER; /* workers pause for fork */
#endif
#define WB 512
static blk_t wblk[16][WB]; /* the workers' blocks, inherited by the children */
static pthread_mutex_t wmu[16];
static int workers = 3;
static atomic_long worker_ops;

static size_t pick_size(hk_rng_t *r) {
  uint64_t d = hk_below(r, 1000);
  if (d < 700) return 1 + hk_below(r, 1040);
  if (d < 930) return hk_logsize(r, 1041, 64 * 1024);
  if (d < 995) return hk_logsize(r, 64 * 1024 + 1, 1024 * 1024);
  return hk_logsize(r, 2 * 1024 * 1024, 6 * 1024 * 1024);
}

static char *alloc_filled(size_t n) {
  char *p = malloc(n);
  REQUIRE(p, "malloc(%zu) failed", n);
  hk_fill_sparse(p, n, (uintptr_t)p);
  return p;
}

static int intact(const blk_t *b) { return hk_check_sparse(b->p, b->n, (uintptr_t)b->p) == (size_t)-1; }

static uint64_t stat_of(const char *name) {
  uint64_t v = 0;
  (void)hk_stat_named(name, &v);
  return v;
}

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

static void run_child(uint64_t salt) {
  alarm(30);
  uint64_t rss0 = hk_rss_bytes();
  uint64_t ret0 = stat_of("decay.returns"), ticks0 = stat_of("decay.background_ticks");
  /* inherited: the main thread's heap is this thread's own */
  for (size_t i = 0; i < nheap; i++) {
    if (i % 7 == 0) CHECK(intact(&heap[i]), "child: inherited block %p (%zu B) corrupted", (void *)heap[i].p, heap[i].n);
    free(heap[i].p);
  }
  /* and some of the workers' (their threads do not exist here) */
  for (int w = 0; w < workers; w++)
    for (int i = 0; i < WB; i += 2)
      if (wblk[w][i].p) {
        CHECK(intact(&wblk[w][i]), "child: worker block corrupted");
        free(wblk[w][i].p);
      }
  uint64_t rss1 = hk_rss_bytes();
  /* a heap of the child's own, every tier */
  hk_rng_t r = {salt};
  size_t cap = 1u << 18, n = 0;
  blk_t *own = mmap(NULL, cap * sizeof *own, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  REQUIRE(own != MAP_FAILED, "child: mmap failed");
  uint64_t bytes = 0, want = (uint64_t)hk_scale(CHILD_MIB) << 20;
  while (bytes < want && n < cap) {
    size_t sz = pick_size(&r);
    char *p;
    switch (n % 8) {
    case 0:
      p = calloc(1, sz);
      REQUIRE(p, "child: calloc(%zu) failed", sz);
      for (size_t o = 0; o < sz; o += 4096) CHECK(p[o] == 0, "child: calloc(%zu) not zero at %zu", sz, o);
      hk_fill_sparse(p, sz, (uintptr_t)p);
      break;
    case 1:
      p = aligned_alloc(4096, sz);
      REQUIRE(p, "child: aligned_alloc(4096, %zu) failed", sz);
      CHECK(((uintptr_t)p & 4095) == 0, "child: aligned_alloc misaligned");
      hk_fill_sparse(p, sz, (uintptr_t)p);
      break;
    case 2: { /* realloc growth across tiers, into Big */
      size_t s = 100;
      p = malloc(s);
      REQUIRE(p, "child: malloc failed");
      hk_fill(p, s, 77);
      while (s < sz * 4 && s < (8u << 20)) {
        size_t ns = s * 3;
        char *q = realloc(p, ns);
        REQUIRE(q, "child: realloc(%zu) failed", ns);
        CHECK(hk_check(q, s < 4096 ? s : 4096, 77) == (size_t)-1, "child: realloc lost the contents");
        p = q;
        s = ns;
        hk_fill(p, s < 4096 ? s : 4096, 77);
      }
      hk_fill_sparse(p, s, (uintptr_t)p);
      sz = s;
      break;
    }
    default: p = alloc_filled(sz); break;
    }
    own[n].p = p;
    own[n].n = sz;
    n++;
    bytes += sz;
  }
  uint64_t rss2 = hk_rss_bytes();
  for (size_t i = 0; i < n; i++) {
    CHECK(intact(&own[i]), "child: own block %p (%zu B) corrupted", (void *)own[i].p, own[i].n);
    free(own[i].p);
  }
  munmap(own, cap * sizeof *own);
  /* no allocator call from here until the poll ends */
  double t0 = hk_now(), t = 0;
  uint64_t rss3 = hk_rss_bytes(), low = rss3;
  /* the inherited heap of the main thread and the child's own went back:
   * RSS ends at least 3/4 of the inherited heap below what it was at fork */
  uint64_t target = rss0 > heap_bytes * 3 / 4 ? rss0 - heap_bytes * 3 / 4 : 0;
  while ((t = hk_now() - t0) < POLL_S) {
    sleep_ms(50);
    uint64_t x = hk_rss_bytes();
    if (x < low) low = x;
    /* done once RSS is low and, where the statistics tell, the child's own
     * background thread has done work: the frees themselves may have
     * returned enough before any of its ticks found something due */
    if (low <= target && (!HK_HAVE_PROOF || stat_of("decay.background_ticks") > ticks0)) break;
  }
  uint64_t ret1 = stat_of("decay.returns"), ticks1 = stat_of("decay.background_ticks");
  hk_note("child %d: RSS %.0f MiB at fork, %.0f after freeing the inherited heap, %.0f with its own %.0f MiB, %.0f "
          "after freeing it, %.0f %.2f s later; decay returns +%" PRIu64 ", background ticks +%" PRIu64,
          (int)getpid(), HK_MIB(rss0), HK_MIB(rss1), HK_MIB(rss2), HK_MIB(bytes), HK_MIB(rss3), HK_MIB(low), t,
          ret1 - ret0, ticks1 - ticks0);
  if (HK_HAVE_PROOF) {
    CHECK(ret1 > ret0, "child: no time-based return in the child");
    CHECK(ticks1 > ticks0, "child: its background thread did no work (not started after fork?)");
  }
  CHECK(low <= target,
        "child: RSS %.0f MiB after %.1f s idle, not below %.0f MiB (%.0f at fork, less 3/4 of the %.0f MiB inherited "
        "heap it freed)",
        HK_MIB(low), t, HK_MIB(target), HK_MIB(rss0), HK_MIB(heap_bytes));
  /* it still allocates in every tier after all that */
  for (int i = 0; i < 4; i++) {
    size_t sz = (size_t)16 << (i * 6);
    char *p = alloc_filled(sz);
    CHECK(hk_owns(p), "child: block not owned");
    free(p);
  }
  if (check_failures) _exit(1);
  exit(0);
}

static void *worker(void *arg) {
  int id = (int)(intptr_t)arg;
  hk_rng_t r = {(uint64_t)id * 7919 + 3};
  long ops = 0;
  while (!atomic_load(&stop)) {
#ifdef HK_MODE_HAKAPI
    pthread_rwlock_rdlock(&fork_lock);
#endif
    int i = (int)hk_below(&r, WB);
    size_t n = pick_size(&r);
    char *p = alloc_filled(n);
    pthread_mutex_lock(&wmu[id]);
    blk_t old = wblk[id][i];
    wblk[id][i].p = p;
    wblk[id][i].n = n;
    pthread_mutex_unlock(&wmu[id]);
    if (old.p) {
      CHECK(intact(&old), "worker: block corrupted");
      free(old.p);
    }
#ifdef HK_MODE_HAKAPI
    pthread_rwlock_unlock(&fork_lock);
#endif
    /* a pause now and then: the children get a core on a 2-core machine */
    if (++ops % 512 == 0) sleep_ms(1);
  }
  atomic_fetch_add(&worker_ops, ops);
  return NULL;
}

int main(int argc, char **argv) {
  hk_init("fork_arena");
  int forks = argc > 1 ? atoi(argv[1]) : 3;
  workers = argc > 2 ? atoi(argv[2]) : 3;
  if (workers < 1) workers = 1;
  if (workers > 16) workers = 16;
  for (int i = 0; i < 16; i++) pthread_mutex_init(&wmu[i], NULL);
  size_t cap = 1u << 20;
  heap = mmap(NULL, cap * sizeof *heap, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  REQUIRE(heap != MAP_FAILED, "mmap failed");
  pthread_t th[16];
  for (int i = 0; i < workers; i++)
    REQUIRE(pthread_create(&th[i], NULL, worker, (void *)(intptr_t)i) == 0, "pthread_create failed");
  hk_rng_t r = {99};
  uint64_t bytes = 0, want = (uint64_t)hk_scale(HEAP_MIB) << 20;
  while (bytes < want && nheap < cap) {
    size_t n = pick_size(&r);
    heap[nheap].p = alloc_filled(n);
    heap[nheap].n = n;
    nheap++;
    bytes += n;
  }
  heap_bytes = bytes;
  uint64_t arenas = stat_of("os.arenas");
  hak_stats_t s;
  hk_stats(&s);
  hk_note("parent: %zu blocks, %.0f MiB, in %" PRIu64 " SuperSlabs and %" PRIu64 " arenas; RSS %.0f MiB; %d forks, "
          "%d workers",
          nheap, HK_MIB(bytes), s.superslabs, arenas, HK_MIB(hk_rss_bytes()), forks, workers);
  if (HK_HAVE_PROOF) CHECK(arenas >= 2, "the heap fits one arena (%" PRIu64 "): not a test of arenas", arenas);
  for (int f = 0; f < forks; f++) {
#ifdef HK_MODE_HAKAPI
    pthread_rwlock_wrlock(&fork_lock);
#endif
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) run_child((uint64_t)f * 1000 + 1);
#ifdef HK_MODE_HAKAPI
    pthread_rwlock_unlock(&fork_lock);
#endif
    REQUIRE(pid > 0, "fork: %s", strerror(errno));
    /* the parent goes on allocating while the child runs */
    for (int i = 0; i < 2000; i++) free(alloc_filled(pick_size(&r)));
    int st;
    REQUIRE(waitpid(pid, &st, 0) == pid, "waitpid: %s", strerror(errno));
    if (WIFSIGNALED(st))
      CHECK(0, "child %d killed by signal %d (%s)%s", (int)pid, WTERMSIG(st), strsignal(WTERMSIG(st)),
            WTERMSIG(st) == SIGALRM ? ": hung for 30 s, a lock held across fork?" : "");
    else
      CHECK(WEXITSTATUS(st) == 0, "child %d exited with status %d", (int)pid, WEXITSTATUS(st));
  }
  atomic_store(&stop, 1);
  for (int i = 0; i < workers; i++) pthread_join(th[i], NULL);
  for (size_t i = 0; i < nheap; i++) {
    CHECK(intact(&heap[i]), "parent: block %p corrupted", (void *)heap[i].p);
    free(heap[i].p);
  }
  for (int w = 0; w < workers; w++)
    for (int i = 0; i < WB; i++)
      if (wblk[w][i].p) {
        CHECK(intact(&wblk[w][i]), "parent: worker block corrupted");
        free(wblk[w][i].p);
      }
  hk_note("workers did %ld operations", atomic_load(&worker_ops));
  check_finish();
}
