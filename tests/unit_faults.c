/* unit_faults.c — the OS refuses one call: every allocation still either
 * succeeds with memory that is really there or fails with ENOMEM, calloc
 * memory is still zero, and the heap recovers.
 *
 * A fixed workload covers every tier and every OS call kind: tiny, mid,
 * large and Big blocks (malloc, then calloc over freed dirty blocks), a
 * realloc chain from 100 bytes to 16 MiB and back (slab tiers, the move to
 * Big, mremap growth in place and by moving), aligned blocks up to a 2 MiB
 * alignment, malloc_trim(0) with one block in five still live (decommits
 * EMPTY slabs of SuperSlabs that stay, unmaps BigCache) and calloc into
 * those slots, then malloc_trim(0) with nothing live (retires every
 * SuperSlab to its arena) and calloc into SuperSlabs set up again in the
 * retired chunks. A child process runs it once with no failure and counts
 * the calls of each kind (HAK_OS_FAIL_MAP: mmap; _REMAP: mremap; _ADVISE:
 * madvise, the decommits). Then for each kind and each k = 1 .. count + 1
 * (every k up to 16, then about 48 more spread up to the last call, one past
 * it; half as many under HK_TEST_SCALE=50) a fresh child (fork of a parent
 * that never allocated) runs it with the
 * k-th call of that kind failing (src/os/os.h: g_os_fail_mask,
 * g_os_fail_countdown), and checks:
 *   - every allocation returns NULL with errno ENOMEM (posix_memalign:
 *     ENOMEM), or a block of at least the size asked, owned by hakmem,
 *     aligned as asked, writable (a pattern written over all of it below
 *     64 KiB, a stripe of every page above, read back before it is freed);
 *   - calloc memory reads zero, every byte below 64 KiB, a word every 32
 *     bytes above (a refused madvise must leave the slots marked dirty);
 *   - a failed realloc leaves the old block as it was;
 *   - with the injection cleared, one more round of every tier succeeds and
 *     everything can be freed, and malloc_trim(0) then leaves no EMPTY slab
 *     and no SuperSlab.
 * The background thread is off and the time bounds are pushed out of reach
 * in the children, so a run is deterministic: the k-th call is the same
 * call every time, and k <= count must fire.
 *
 * usage: unit_faults [map|remap|advise] [k]   (one run, for a failure's log)
 */
#include "base/config.h"
#include "base/counters.h"
#include "backend/shared_pool.h"
#include "os/os.h"

#define HK_MODE_HAKAPI 1
#include "hk_test.h"

#define MAXB 4096
#define EVERY 16   /* every k up to this */
#define SAMPLED 48 /* then about this many more, spread out */

typedef struct {
  char *p;
  size_t n;
  uint64_t tag;
} blk_t;

static blk_t v[MAXB];
static int nv;
static long nulls, allocs;

/* what the children tell the parent */
typedef struct {
  uint64_t calls[3];
  long nulls, allocs;
  int fired;
} report_t;
static report_t *rep;

static const char *const kind_name[3] = {"map", "remap", "advise"};
static const uint32_t kind_bit[3] = {HAK_OS_FAIL_MAP, HAK_OS_FAIL_REMAP, HAK_OS_FAIL_ADVISE};

/* whole below 64 KiB; above, the first and last page and a stripe of
 * every page in between (stale contents in a calloc block show) */
static void fill(char *p, size_t n, uint64_t tag) { hk_fill_sparse(p, n, tag); }
static int intact(const char *p, size_t n, uint64_t tag) { return hk_check_sparse(p, n, tag) == (size_t)-1; }
static int zeroed(const char *p, size_t n) {
  size_t step = n <= (64u << 10) ? 8 : 32;
  size_t i = 0;
  for (; i + 8 <= n; i += step) {
    uint64_t w;
    memcpy(&w, p + i, 8);
    if (w) return 0;
  }
  for (i = n & ~(size_t)7; i < n; i++)
    if (p[i]) return 0;
  return 1;
}

/* a result: NULL must be ENOMEM; a block must be usable */
static char *took(char *p, size_t n, size_t align, const char *what) {
  allocs++;
  if (!p) {
    CHECK(errno == ENOMEM, "%s(%zu) = NULL with errno %d (%s), not ENOMEM", what, n, errno, strerror(errno));
    nulls++;
    return NULL;
  }
  CHECK(hak_owns(p), "%s(%zu) = %p, not hakmem's", what, n, (void *)p);
  CHECK(hak_malloc_usable_size(p) >= n, "%s(%zu) = %p has %zu usable bytes", what, n, (void *)p,
        hak_malloc_usable_size(p));
  CHECK(((uintptr_t)p & (align - 1)) == 0, "%s(%zu) = %p not %zu-aligned", what, n, (void *)p, align);
  return p;
}

static void keep(char *p, size_t n, uint64_t tag) {
  fill(p, n, tag);
  REQUIRE(nv < MAXB, "block table full");
  v[nv].p = p;
  v[nv].n = n;
  v[nv].tag = tag;
  nv++;
}

static void drop(int i) {
  CHECK(intact(v[i].p, v[i].n, v[i].tag), "block %p (%zu B) corrupted", (void *)v[i].p, v[i].n);
  hak_free(v[i].p);
  v[i].p = NULL;
}

static void drop_all(void) {
  for (int i = 0; i < nv; i++)
    if (v[i].p) drop(i);
  nv = 0;
}

/* one Big block in 64 (every Big block is an mmap of its own), few large
 * ones: each run is a fresh heap whose pages all fault in */
static size_t tier_size(hk_rng_t *r, int i) {
  int t = i % 64;
  if (t == 63) return hk_logsize(r, (2u << 20) + 1, 3u << 20);
  t %= 16;
  if (t < 10) return 1 + hk_below(r, 1040);
  if (t < 14) return hk_logsize(r, 1041, 64 * 1024);
  return hk_logsize(r, 64 * 1024 + 1, t == 14 ? 256 * 1024 : 1024 * 1024);
}

/* calloc over whatever the heap has: zero, then dirtied and kept */
static void calloc_round(uint64_t seed, int n) {
  hk_rng_t r = {seed};
  for (int i = 0; i < n; i++) {
    size_t sz = tier_size(&r, i);
    errno = 0;
    char *p = took(hak_calloc(1, sz), sz, 16, "calloc");
    if (!p) continue;
    CHECK(zeroed(p, sz), "calloc(1, %zu) = %p is not zero", sz, (void *)p);
    keep(p, sz, seed + (uint64_t)i);
  }
}

static void realloc_chain(void) {
  size_t n = 100;
  /* A Big block after each grown one, so that the next growth cannot take
   * the arena's following chunks and moves the pages (mremap) instead. */
  enum { PINS = 16 };
  void *pin[PINS];
  int npin = 0;
  errno = 0;
  char *p = took(hak_malloc(n), n, 16, "malloc");
  if (!p) return;
  fill(p, n, 5);
  size_t sizes[] = {300, 1000, 5000, 40000, 100000, 300000, 1u << 20, 3u << 20, 7u << 20, 12u << 20,
                    16u << 20, 1u << 20, 1000, 16u << 20};
  for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
    size_t m = sizes[i];
    errno = 0;
    char *q = hak_realloc(p, m);
    if (!q) {
      took(NULL, m, 16, "realloc");
      CHECK(intact(p, n, 5), "a failed realloc(%zu -> %zu) changed the old block", n, m);
      continue;
    }
    took(q, m, 16, "realloc");
    size_t kept = n < m ? n : m;
    /* what survives: the pattern of the old size, up to the new one */
    CHECK(hk_check_sparse_prefix(q, n, kept, 5) == (size_t)-1, "realloc(%zu -> %zu) lost the contents", n, m);
    p = q;
    n = m;
    fill(p, n, 5);
    if (m >= (1u << 20) && npin < PINS) {
      errno = 0;
      if ((pin[npin] = took(hak_malloc(2u << 20), 2u << 20, 16, "malloc"))) npin++;
    }
  }
  while (npin)
    hak_free(pin[--npin]);
  keep(p, n, 5);
}

static void aligned_round(void) {
  struct {
    size_t align, n;
  } a[] = {{64, 100}, {4096, 5000}, {64u << 10, 200u << 10}, {1u << 20, 1u << 20}, {2u << 20, 3u << 20}};
  for (size_t i = 0; i < sizeof a / sizeof *a; i++) {
    void *p = NULL;
    int e = hak_posix_memalign(&p, a[i].align, a[i].n);
    CHECK(e == 0 || e == ENOMEM, "posix_memalign(%zu, %zu) returned %d", a[i].align, a[i].n, e);
    if (e) {
      errno = ENOMEM;
      p = NULL;
    }
    if (took(p, a[i].n, a[i].align, "posix_memalign")) keep(p, a[i].n, 900 + i);
  }
}

/* A phase change in a fresh heap: EMPTY slabs of one class (under the EMPTY
 * budget, so nothing decommits them) fill the SuperSlabs, and become dirty
 * UNUSED slots when another class needs room (stage 2); some are left over
 * when that class is freed too, and stay dirty until their SuperSlab
 * retires. */
static void phase_change(void) {
  for (int pass = 0; pass < 2; pass++) {
    size_t sz = pass ? 200u << 10 : 48u << 10;
    int n = pass ? 40 : 280;
    int first = nv;
    for (int i = 0; i < n; i++) {
      errno = 0;
      char *p = took(hak_malloc(sz), sz, 16, "malloc");
      if (p) keep(p, sz, 5000 + (uint64_t)(pass * 1000 + i));
    }
    for (int i = first; i < nv; i++) drop(i);
    nv = first;
  }
}

static void workload(void) {
  hk_rng_t r = {77};
  /* a phase change, trimmed at once: SuperSlabs with dirty UNUSED slots
   * retire, and calloc takes their chunks again */
  phase_change();
  hak_malloc_trim(0);
  calloc_round(500, 200);
  drop_all();
  /* every tier */
  for (int i = 0; i < 400; i++) {
    size_t sz = tier_size(&r, i);
    errno = 0;
    char *p = took(hak_malloc(sz), sz, hk_expected_align(sz), "malloc");
    if (p) keep(p, sz, (uint64_t)i);
  }
  /* every other one freed: calloc lands on dirty blocks */
  for (int i = 0; i < nv; i += 2) drop(i);
  calloc_round(1000, 200);
  realloc_chain();
  aligned_round();
  /* all but one block in five back, trimmed: EMPTY slabs decommitted, the
   * SuperSlabs stay (the pins keep them), BigCache unmapped */
  for (int i = 0; i < nv; i++)
    if (v[i].p && i % 5) drop(i);
  hak_malloc_trim(0);
  calloc_round(2000, 300); /* decommitted slots, perhaps not (refused) */
  /* everything back */
  drop_all();
  /* trimmed with nothing live: every SuperSlab retires to its arena, some
   * with dirty UNUSED slots that only the retirement's madvise clears */
  hak_malloc_trim(0);
  calloc_round(3000, 300); /* SuperSlabs set up again in retired chunks */
  drop_all();
}

/* with the injection off: one more round must succeed in full */
static void recovery(void) {
  long n0 = nulls;
  calloc_round(4000, 200);
  realloc_chain();
  aligned_round();
  CHECK(nulls == n0, "%ld allocations failed after the injection was cleared", nulls - n0);
  drop_all();
  hak_malloc_trim(0);
  hak_stats_t s;
  hak_stats_get(&s);
  CHECK(hak_sp_empty_slabs() == 0, "%zu EMPTY slabs after the last malloc_trim(0)", hak_sp_empty_slabs());
  CHECK(s.superslabs == 0, "%" PRIu64 " SuperSlabs after freeing everything and malloc_trim(0)", s.superslabs);
}

static void child(int kind, long k) {
  /* deterministic: no background thread, no time-based return or expiry */
  g_cfg.background = 0;
  g_cfg.decay_ms = 1u << 30;
  g_cfg.bigcache_ms = 1u << 30;
  uint64_t c0[3] = {hak_cnt_get(&g_stats.mmap_calls), hak_cnt_get(&g_stats.mremap_calls),
                    hak_cnt_get(&g_stats.madvise_calls)};
  if (kind >= 0) {
    atomic_store(&g_os_fail_mask, kind_bit[kind]);
    atomic_store(&g_os_fail_countdown, k);
  }
  workload();
  rep->fired = kind >= 0 && atomic_load(&g_os_fail_countdown) == 0;
  atomic_store(&g_os_fail_countdown, 0);
  atomic_store(&g_os_fail_mask, 0);
  rep->calls[0] = hak_cnt_get(&g_stats.mmap_calls) - c0[0];
  rep->calls[1] = hak_cnt_get(&g_stats.mremap_calls) - c0[1];
  rep->calls[2] = hak_cnt_get(&g_stats.madvise_calls) - c0[2];
  rep->nulls = nulls;
  rep->allocs = allocs;
  recovery();
  if (check_failures) {
    fprintf(stderr, "unit_faults: the run with the %ld-th %s call failing: %d checks failed (rerun: unit_faults %s %ld)\n",
            k, kind >= 0 ? kind_name[kind] : "(none)", check_failures, kind >= 0 ? kind_name[kind] : "none", k);
    _exit(1);
  }
  _exit(0);
}

/* runs one child; 0 when it passed */
static int run(int kind, long k) {
  memset(rep, 0, sizeof *rep);
  fflush(stderr);
  pid_t pid = fork();
  REQUIRE(pid >= 0, "fork: %s", strerror(errno));
  if (pid == 0) {
    alarm(60);
    child(kind, k);
  }
  int st;
  REQUIRE(waitpid(pid, &st, 0) == pid, "waitpid: %s", strerror(errno));
  if (WIFSIGNALED(st)) {
    CHECK(0, "with the %ld-th %s call failing the child was killed by signal %d (%s)", k,
          kind >= 0 ? kind_name[kind] : "(none)", WTERMSIG(st), strsignal(WTERMSIG(st)));
    return 1;
  }
  CHECK(WEXITSTATUS(st) == 0, "with the %ld-th %s call failing the child failed (status %d)", k,
        kind >= 0 ? kind_name[kind] : "(none)", WEXITSTATUS(st));
  return WEXITSTATUS(st) != 0;
}

int main(int argc, char **argv) {
  check_name = "unit_faults";
  rep = mmap(NULL, sizeof *rep, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  REQUIRE(rep != MAP_FAILED, "mmap failed");
  if (argc > 2) { /* one run */
    int kind = -1;
    for (int i = 0; i < 3; i++)
      if (!strcmp(argv[1], kind_name[i])) kind = i;
    long k = atol(argv[2]);
    run(kind, k);
    fprintf(stderr, "unit_faults: %s #%ld: fired %d, %ld of %ld allocations NULL; %" PRIu64 " mmap, %" PRIu64
            " mremap, %" PRIu64 " madvise calls\n",
            argv[1], k, rep->fired, rep->nulls, rep->allocs, rep->calls[0], rep->calls[1], rep->calls[2]);
    return check_summary("unit_faults");
  }
  /* how many calls of each kind the workload makes */
  run(-1, 0);
  report_t base = *rep;
  REQUIRE(base.nulls == 0, "%ld allocations failed with no injection", base.nulls);
  fprintf(stderr, "unit_faults: the workload: %ld allocations, %" PRIu64 " mmap, %" PRIu64 " mremap, %" PRIu64
          " madvise calls\n",
          base.allocs, base.calls[0], base.calls[1], base.calls[2]);
  CHECK(base.calls[0] >= 3 && base.calls[1] >= 2 && base.calls[2] >= 3,
        "the workload makes too few calls of some kind to test it");
  /* every k up to EVERY, then about SAMPLED more spread evenly up to the
   * last call, then one past it (fewer under HK_TEST_SCALE, the sanitizer
   * run): one run is a fork and a fresh heap */
  long every = hk_scale(EVERY), sampled = hk_scale(SAMPLED);
  for (int kind = 0; kind < 3; kind++) {
    long count = (long)base.calls[kind], fired = 0, failed = 0, nul = 0, runs = 0;
    long stride = count > every ? (count - every + sampled - 1) / sampled : 1;
    for (long k = 1; k <= count + 1;
         k = k < every ? k + 1 : (k + stride < count ? k + stride : (k < count ? count : k + 1))) {
      failed += run(kind, k);
      runs++;
      fired += rep->fired;
      nul += rep->nulls;
      if (k <= count) CHECK(rep->fired, "the %ld-th %s call of %ld never came", k, kind_name[kind], count);
      else CHECK(!rep->fired, "a %ld-th %s call happened: the workload is not deterministic", k, kind_name[kind]);
      if (failed >= 5) break; /* enough to read */
    }
    fprintf(stderr, "unit_faults: %s: %ld runs, %ld with a failed call, %ld allocations returned NULL in all, %ld runs failed\n",
            kind_name[kind], runs, fired, nul, failed);
  }
  return check_summary("unit_faults");
}
