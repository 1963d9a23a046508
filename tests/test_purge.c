/* test_purge.c — whole free pages of slabs still in use go back to the OS.
 *
 * The shape of a server after a big delete (Redis after FLUSHALL): many
 * small blocks, nearly all freed in random order, a few survivors scattered
 * over every slab. The slabs never become EMPTY, so only a purge inside them
 * can return their memory. Checked, with no allocator call while waiting:
 *   - within 3 s of the last free (HAKMEM_DECAY_MS is 1 s: queued slabs wait
 *     half to one decay, then a background tick), at least 80 % of the pages
 *     that hold no survivor are no longer resident (mincore), and the purge
 *     counter says hakmem did it;
 *   - the survivors' contents are intact;
 *   - freeing a block of a purged page again is reported as a double free,
 *     from the owning thread and from another one (warn mode: the program
 *     goes on), and no block is handed out twice afterwards;
 *   - the purged blocks are handed out again, once each (no two live blocks
 *     overlap), writable, and the counter of reused bytes moves;
 *   - malloc_trim(0) purges at once, without the wait;
 *   - with HAKMEM_ON_ERROR unset, the double free aborts.
 *
 * usage: test_purge [warn|abort]   (internal: the children)
 */
#include "hk_proc.h"
#include "hk_spawn.h"

#define BSIZE 32
#define NBLK (1u << 18) /* 8 MiB of 32-byte blocks: 128 slabs */
#define KEEP_EVERY 512  /* one survivor per 16 KiB: 4 live pages of 16 per slab */
#define PAGE 4096

static char **blk;

static int survivor(size_t i) {
  return i % KEEP_EVERY == 0;
}

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

static uint64_t stat_of(const char *name) {
  uint64_t v = 0;
  (void)hk_stat_named(name, &v);
  return v;
}

static void build(void) {
  for (size_t i = 0; i < NBLK; i++) {
    blk[i] = malloc(BSIZE);
    REQUIRE(blk[i], "malloc(%d) failed", BSIZE);
    hk_fill(blk[i], BSIZE, i);
  }
}

/* frees every non-survivor, in random order */
static void free_most(void) {
  static uint32_t order[NBLK];
  size_t n = 0;
  for (size_t i = 0; i < NBLK; i++)
    if (!survivor(i)) order[n++] = (uint32_t)i;
  hk_rng_t r = {77};
  for (size_t i = n; i > 1; i--) {
    size_t j = hk_below(&r, i);
    uint32_t t = order[i - 1];
    order[i - 1] = order[j];
    order[j] = t;
  }
  for (size_t i = 0; i < n; i++) {
    free(blk[order[i]]);
    blk[order[i]] = NULL;
  }
}

/* Pages that held a freed block and no survivor, and how many of those are
 * resident. Reads the block table only: no allocator call. */
static void residency(size_t *pages, size_t *resident, char **freed) {
  static uintptr_t live_page[NBLK / KEEP_EVERY + 1];
  size_t nl = 0;
  for (size_t i = 0; i < NBLK; i++)
    if (blk[i]) live_page[nl++] = (uintptr_t)blk[i] / PAGE;
  *pages = *resident = 0;
  uintptr_t last = 0;
  for (size_t i = 0; i < NBLK; i++) {
    if (!freed[i]) continue;
    uintptr_t pg = (uintptr_t)freed[i] / PAGE;
    if (pg == last) continue;
    last = pg;
    int shared = 0;
    for (size_t k = 0; k < nl && !shared; k++)
      shared = live_page[k] == pg;
    if (shared) continue;
    unsigned char v = 0;
    if (mincore((void *)(pg * PAGE), PAGE, &v) != 0) continue;
    (*pages)++;
    *resident += v & 1;
  }
}

static void check_survivors(const char *when) {
  for (size_t i = 0; i < NBLK; i++)
    if (blk[i])
      CHECK(hk_check(blk[i], BSIZE, i) == (size_t)-1, "%s: survivor %zu (%p) corrupted", when, i,
            (void *)blk[i]);
}

static int cmp_ptr(const void *a, const void *b) {
  uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
  return x < y ? -1 : x > y;
}

/* n blocks of BSIZE: none overlaps another or a survivor */
static void check_distinct(char **p, size_t n, const char *when) {
  static uintptr_t all[2 * NBLK];
  size_t k = 0;
  for (size_t i = 0; i < n; i++)
    all[k++] = (uintptr_t)p[i];
  for (size_t i = 0; i < NBLK; i++)
    if (blk[i]) all[k++] = (uintptr_t)blk[i];
  qsort(all, k, sizeof *all, cmp_ptr);
  size_t bad = 0;
  for (size_t i = 1; i < k; i++)
    bad += all[i] - all[i - 1] < BSIZE;
  CHECK(bad == 0, "%s: %zu blocks overlap another live block (a block handed out twice)", when,
        bad);
}

static void *remote_free(void *p) {
  free(p);
  return NULL;
}

/* HAKMEM_ON_ERROR=warn: the double frees of purged blocks are reported and
 * the heap stays sound. */
static int child_warn(void) {
  static char *freed[NBLK];
  build();
  memcpy(freed, blk, sizeof freed);
  for (size_t i = 0; i < NBLK; i++)
    if (survivor(i)) freed[i] = NULL;
  free_most();
  sleep_ms(3000);
  size_t pages, resident;
  residency(&pages, &resident, freed);
  REQUIRE(pages > 0 && resident * 5 <= pages,
          "warn child: %zu of %zu pages still resident: nothing purged", resident, pages);
  /* two freed blocks on purged (not resident) pages */
  char *again = NULL, *remote = NULL;
  for (size_t i = 0; i < NBLK && !remote; i++) {
    unsigned char v = 1;
    if (!freed[i] ||
        mincore((void *)((uintptr_t)freed[i] & ~(uintptr_t)(PAGE - 1)), PAGE, &v) != 0 || (v & 1))
      continue;
    if (!again)
      again = freed[i];
    else
      remote = freed[i];
  }
  REQUIRE(remote, "no freed block on a page that went back to the OS");
  uint64_t inv0 = stat_of("errors");
  free(again); /* the owner's second free */
  pthread_t t;
  REQUIRE(pthread_create(&t, NULL, remote_free, remote) == 0, "pthread_create failed");
  pthread_join(t, NULL);
  uint64_t inv1 = stat_of("errors");
  if (HK_HAVE_PROOF)
    CHECK(inv1 == inv0 + 2, "invalid_frees went from %" PRIu64 " to %" PRIu64, inv0, inv1);
  static char *re[NBLK];
  for (size_t i = 0; i < NBLK; i++) {
    re[i] = malloc(BSIZE);
    REQUIRE(re[i], "malloc failed");
    memset(re[i], 0x5a, BSIZE);
  }
  check_distinct(re, NBLK, "after the double frees");
  check_survivors("after the double frees");
  for (size_t i = 0; i < NBLK; i++)
    free(re[i]);
  return check_summary("purge warn");
}

/* default HAKMEM_ON_ERROR: the double free of a purged block aborts */
static int child_abort(void) {
  static char *freed[NBLK];
  build();
  memcpy(freed, blk, sizeof freed);
  free_most();
  malloc_trim(0); /* purges at once */
  for (size_t i = 0; i < NBLK; i++) {
    unsigned char v = 1;
    if (survivor(i) ||
        mincore((void *)((uintptr_t)freed[i] & ~(uintptr_t)(PAGE - 1)), PAGE, &v) != 0 || (v & 1))
      continue;
    free(freed[i]);
    break;
  }
  hk_note("abort child: the double free was not caught");
  return 0;
}

static void spawn_mode(char *argv0, const char *mode, const char *on_error, hk_result_t *res) {
  char e1[64];
  hk_env(e1, sizeof e1, "HAKMEM_ON_ERROR", on_error);
  const char *env[] = {e1, NULL};
  char *args[] = {argv0, (char *)mode, NULL};
  hk_spawn(args, env, res);
}

int main(int argc, char **argv) {
  hk_init("purge");
  blk = mmap(NULL, NBLK * sizeof *blk, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  REQUIRE(blk != MAP_FAILED, "mmap of the block table failed");
  if (argc > 1 && !strcmp(argv[1], "warn")) return child_warn();
  if (argc > 1 && !strcmp(argv[1], "abort")) return child_abort();

  static char *freed[NBLK];
  build();
  memcpy(freed, blk, sizeof freed);
  for (size_t i = 0; i < NBLK; i++)
    if (survivor(i)) freed[i] = NULL;
  uint64_t purged0 = stat_of("purge.bytes");
  free_most();
  double t0 = hk_now();
  size_t pages = 0, resident = 0;
  double reached = -1;
  while (hk_now() - t0 < 3.0) { /* no allocator call in this loop */
    sleep_ms(100);
    residency(&pages, &resident, freed);
    if (resident * 5 <= pages) {
      reached = hk_now() - t0;
      break;
    }
  }
  uint64_t purged1 = stat_of("purge.bytes");
  hk_note("%zu pages hold freed blocks and no survivor: %zu resident at the end; 80 %% gone after "
          "%.2f s (-1: "
          "never); purged %" PRIu64 " KiB",
          pages, resident, reached, (purged1 - purged0) >> 10);
  if (HK_HAVE_PROOF) {
    CHECK(reached >= 0, "%zu of %zu free pages still resident 3 s after the last free", resident,
          pages);
    CHECK(purged1 - purged0 >= (uint64_t)pages * PAGE / 2,
          "the purge counter moved by %" PRIu64 " KiB only", (purged1 - purged0) >> 10);
  }
  check_survivors("after the purge");

  /* the purged blocks are used again, once each */
  uint64_t reused0 = stat_of("purge.reused_bytes");
  static char *re[NBLK];
  for (size_t i = 0; i < NBLK; i++) {
    re[i] = malloc(BSIZE);
    REQUIRE(re[i], "malloc failed");
    hk_fill(re[i], BSIZE, i + NBLK);
  }
  check_distinct(re, NBLK, "after the reuse");
  for (size_t i = 0; i < NBLK; i++)
    CHECK(hk_check(re[i], BSIZE, i + NBLK) == (size_t)-1, "reused block %zu corrupted", i);
  check_survivors("after the reuse");
  if (HK_HAVE_PROOF)
    CHECK(stat_of("purge.reused_bytes") > reused0,
          "no purged page was used again (reused bytes %" PRIu64 ")",
          stat_of("purge.reused_bytes"));

  /* malloc_trim(0): at once */
  for (size_t i = 0; i < NBLK; i++)
    free(re[i]);
  for (size_t i = 0; i < NBLK; i++)
    if (!blk[i]) {
      blk[i] = malloc(BSIZE);
      REQUIRE(blk[i], "malloc failed");
      hk_fill(blk[i], BSIZE, i);
    }
  memcpy(freed, blk, sizeof freed);
  for (size_t i = 0; i < NBLK; i++)
    if (survivor(i)) freed[i] = NULL;
  free_most();
  uint64_t before_trim = stat_of("purge.bytes");
  malloc_trim(0);
  residency(&pages, &resident, freed);
  hk_note("malloc_trim(0): %zu of %zu free pages resident right after it; purged %" PRIu64 " KiB",
          resident, pages, (stat_of("purge.bytes") - before_trim) >> 10);
  if (HK_HAVE_PROOF)
    CHECK(resident * 5 <= pages, "malloc_trim(0) left %zu of %zu free pages resident", resident,
          pages);
  check_survivors("after malloc_trim");

  hk_result_t res;
  spawn_mode(argv[0], "warn", "warn", &res);
  CHECK(WIFEXITED(res.status) && WEXITSTATUS(res.status) == 0,
        "the warn child failed (status %#x):\n%s%s", res.status, res.out, res.err);
  if (HK_HAVE_PROOF)
    CHECK(strstr(res.err, "double free (the block's page was returned to the OS)") != NULL,
          "warn child: no double-free report; stderr:\n%s", res.err);
  spawn_mode(argv[0], "abort", NULL, &res);
  if (HK_HAVE_PROOF) {
    CHECK(WIFSIGNALED(res.status) && WTERMSIG(res.status) == SIGABRT,
          "abort child: status %#x, not SIGABRT:\n%s", res.status, res.err);
    CHECK(strstr(res.err, "invalid free(") && strstr(res.err, "double free"),
          "abort child: no report:\n%s", res.err);
  }
  check_finish();
}
