/* Tier tests (MidPool, LargePool, Big/BigCache): boundaries, alignment per
 * tier, cross-thread frees and thread exit per tier, realloc across every
 * pair of tiers, BigCache reuse and bound, mremap growth, malloc_trim, and a
 * fragmentation bound for a long mixed Mid/Large pattern. Linked with
 * libhakmem_core.a and -Isrc; exits non-zero on any failed check. */
#include "hakmem.h"
#include "backend/big.h"
#include "base/config.h"
#include "frontend/heap.h"
#include "mem/size_class.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "check.h"

static int tier_of(const void *p) {
  if (!hak_registry_test((uintptr_t)p))
    return hak_big_find(p, HAK_BIG_FIND_LOCK) ? HAK_TIER_BIG : -1;
  return g_class[hak_slab_of(p)->geo.cls].tier;
}

static void fill(unsigned char *p, size_t n, unsigned seed) {
  for (size_t i = 0; i < n; i += (i < 4096 ? 1 : 509)) p[i] = (unsigned char)(seed + i * 31);
  if (n) p[n - 1] = (unsigned char)(seed ^ 0x5a);
}
static int same(const unsigned char *p, size_t n, unsigned seed) {
  for (size_t i = 0; i < n; i += (i < 4096 ? 1 : 509))
    if (i != n - 1 && p[i] != (unsigned char)(seed + i * 31)) return 0;
  return !n || p[n - 1] == (unsigned char)(seed ^ 0x5a);
}

static const size_t k_sizes[] = {1039, 1040, 1041, 65535, 65536, 65537, 1048575, 1048576, 1048577,
                                 (2u << 20) - 1, 2u << 20, (2u << 20) + 1, 40960, 53248, 8192,
                                 32768, 1984u << 10, (1984u << 10) + 1};

static void test_boundaries(void) {
  for (unsigned i = 0; i < sizeof k_sizes / sizeof k_sizes[0]; i++) {
    size_t n = k_sizes[i];
    unsigned char *p = hak_malloc(n);
    CHECK(p && hak_owns(p) && hak_owns(p + n - 1), "malloc(%zu) owned", n);
    if (!p) continue;
    int want = n <= HAK_TINY_MAX ? HAK_TIER_TINY : n <= HAK_MID_MAX ? HAK_TIER_MID
               : n <= g_large_max ? HAK_TIER_LARGE : HAK_TIER_BIG;
    CHECK(tier_of(p) == want, "malloc(%zu) in tier %d, expected %d", n, tier_of(p), want);
    CHECK(hak_malloc_usable_size(p) >= n, "usable size of %zu", n);
    CHECK(((uintptr_t)p & 15) == 0, "16-aligned");
    fill(p, hak_malloc_usable_size(p), (unsigned)i);
    CHECK(same(p, hak_malloc_usable_size(p), (unsigned)i), "whole usable size writable");
    hak_free(p);
  }
}

static void test_alignment_per_tier(void) {
  static const size_t sizes[] = {100, 3000, 40000, 70000, 600000, 3u << 20};
  for (size_t a = 16; a <= (4u << 20); a <<= 1)
    for (unsigned i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
      void *p = hak_aligned_alloc(a, sizes[i]);
      CHECK(p && ((uintptr_t)p & (a - 1)) == 0, "aligned_alloc(%zu, %zu) = %p", a, sizes[i], p);
      if (!p) continue;
      CHECK(hak_owns(p) && hak_malloc_usable_size(p) >= sizes[i], "aligned block usable");
      memset(p, 0x77, sizes[i]);
      hak_free(p);
      p = hak_aligned_alloc(a, a); /* size == alignment */
      CHECK(p && ((uintptr_t)p & (a - 1)) == 0, "aligned_alloc(%zu, %zu)", a, a);
      hak_free(p);
    }
}

static void test_realloc_pairs(void) {
  for (unsigned i = 0; i < sizeof k_sizes / sizeof k_sizes[0]; i++)
    for (unsigned j = 0; j < sizeof k_sizes / sizeof k_sizes[0]; j++) {
      size_t a = k_sizes[i], b = k_sizes[j];
      unsigned char *p = hak_malloc(a);
      size_t usable = hak_malloc_usable_size(p);
      fill(p, a, i * 7 + j);
      unsigned char *q = hak_realloc(p, b);
      CHECK(q != NULL, "realloc(%zu -> %zu)", a, b);
      if (!q) {
        hak_free(p);
        continue;
      }
      size_t keep = a < b ? a : b;
      unsigned char *ref = malloc(keep);
      fill(ref, a < b ? a : b, i * 7 + j);
      if (a <= b) CHECK(same(q, a, i * 7 + j), "content kept by realloc(%zu -> %zu)", a, b);
      else {
        /* shrinking keeps the first b bytes: compare the sampled ones */
        int ok = 1;
        for (size_t k = 0; k + 1 < b; k += (k < 4096 ? 1 : 509))
          if (q[k] != (unsigned char)(i * 7 + j + k * 31)) ok = 0;
        CHECK(ok, "content kept by realloc(%zu -> %zu)", a, b);
      }
      free(ref);
      CHECK(hak_malloc_usable_size(q) >= b, "usable after realloc");
      if (b <= usable && b > usable / 2)
        CHECK(q == p, "shrink within the block stays in place (%zu -> %zu)", a, b);
      hak_free(q);
    }
}

/* A slab block that realloc grows to 128 KiB or more moves to the Big tier
 * once; growth after that stays in its mapping, and only a real shrink (below
 * half of what was last asked for) brings it back to a slab. */
static void test_realloc_growth_to_big(void) {
  unsigned char *p = hak_malloc(100u << 10);
  fill(p, 100u << 10, 3);
  CHECK(tier_of(p) != HAK_TIER_BIG, "100 KiB starts in a slab");
  unsigned char *q = hak_realloc(p, 200u << 10);
  CHECK(q && tier_of(q) == HAK_TIER_BIG && same(q, 100u << 10, 3),
        "grown to 200 KiB: Big, content kept");
  fill(q, 200u << 10, 5);
  unsigned char *r = hak_realloc(q, 900u << 10);
  CHECK(r == q && same(r, 200u << 10, 5), "grown to 900 KiB: in place, content kept");
  r = hak_realloc(r, 500u << 10);
  CHECK(r == q, "500 KiB of a 900 KiB request: stays");
  unsigned char *s = hak_realloc(r, 100u << 10);
  CHECK(s && s != r && tier_of(s) != HAK_TIER_BIG, "shrunk to 100 KiB: back in a slab");
  int ok = 1;
  for (size_t k = 0; k < (100u << 10); k += (k < 4096 ? 1 : 509)) /* fill()'s samples */
    if (s[k] != (unsigned char)(5 + k * 31)) ok = 0;
  CHECK(ok, "content kept by the shrink");
  hak_free(s);
}

typedef struct {
  void **blocks;
  int n;
} xfer_t;

static void *free_them(void *arg) {
  xfer_t *x = arg;
  for (int i = 0; i < x->n; i++) hak_free(x->blocks[i]);
  return NULL;
}

static void *alloc_them(void *arg) {
  xfer_t *x = arg;
  for (int i = 0; i < x->n; i++) {
    x->blocks[i] = hak_malloc(k_sizes[i % (sizeof k_sizes / sizeof k_sizes[0])]);
    memset(x->blocks[i], i, 1000);
  }
  return NULL; /* exits with its blocks live */
}

static void test_cross_thread_and_exit(void) {
  enum { N = 360 };
  void *blocks[N];
  xfer_t x = {blocks, N};
  pthread_t t;
  /* blocks of every tier, allocated by a thread that exits, freed by another */
  pthread_create(&t, NULL, alloc_them, &x);
  pthread_join(t, NULL);
  for (int i = 0; i < N; i++) {
    CHECK(hak_owns(blocks[i]), "block of exited thread live");
    CHECK(((unsigned char *)blocks[i])[999] == (unsigned char)i, "content kept");
  }
  pthread_create(&t, NULL, free_them, &x);
  pthread_join(t, NULL);
  hak_malloc_trim(0);
  hak_stats_t s;
  hak_stats_get(&s);
  CHECK(s.committed_bytes < (4u << 20), "everything back after trim: %llu KiB committed",
        (unsigned long long)(s.committed_bytes >> 10));
}

static void test_bigcache(void) {
  hak_malloc_trim(0);
  hak_stats_t a, b;
  struct rusage r0, r1;
  unsigned char *p = hak_malloc(24u << 20);
  memset(p, 1, 24u << 20);
  hak_free(p);
  hak_stats_get(&a);
  getrusage(RUSAGE_SELF, &r0);
  unsigned char *q = hak_malloc(20u << 20); /* served from the cached run */
  memset(q, 2, 20u << 20);
  getrusage(RUSAGE_SELF, &r1);
  hak_stats_get(&b);
  CHECK(b.bigcache_hits == a.bigcache_hits + 1, "BigCache hit");
  CHECK(b.mmap_calls == a.mmap_calls, "no mmap for a cached size");
  CHECK(r1.ru_minflt - r0.ru_minflt < 256, "reuse faults %ld pages (of 5120)", r1.ru_minflt - r0.ru_minflt);
  /* mremap growth keeps the contents and does not copy */
  q = hak_realloc(q, 200u << 20);
  CHECK(q && q[0] == 2 && q[(20u << 20) - 1] == 2, "mremap growth keeps content");
  hak_stats_get(&a);
  CHECK(a.mremap_calls > b.mremap_calls, "realloc of a big block used mremap");
  hak_free(q);
  /* The cache's byte bound: free far more than it may keep. */
  enum { M = 12 };
  void *bs[M];
  for (int i = 0; i < M; i++)
    bs[i] = hak_malloc((64u << 20) + (unsigned)i * 4096);
  for (int i = 0; i < M; i++)
    hak_free(bs[i]);
  size_t live_n, live_b, live_u, c_n, c_b;
  hak_big_usage(&live_n, &live_b, &live_u, &c_n, &c_b);
  CHECK(c_b <= (256u << 20), "BigCache holds %zu MiB, bound 256 MiB", c_b >> 20);
  CHECK(hak_malloc_trim(0) == 1, "malloc_trim reports a release");
  hak_big_usage(&live_n, &live_b, &live_u, &c_n, &c_b);
  CHECK(c_b == 0 && c_n == 0, "malloc_trim empties BigCache");
  /* The time bound holds without further big operations: small-object
   * traffic (its slow paths report to ACE) expires the cached run. */
  uint32_t saved_ms = g_cfg.bigcache_ms;
  g_cfg.bigcache_ms = 50;
  hak_free(hak_malloc(16u << 20));
  hak_big_usage(&live_n, &live_b, &live_u, &c_n, &c_b);
  CHECK(c_n == 1, "the freed run is cached (%zu runs)", c_n);
  struct timespec pause = {0, 120 * 1000 * 1000};
  nanosleep(&pause, NULL);
  enum { S = 4096 };
  static void *small[S];
  for (int round = 0; round < 20; round++) {
    for (int i = 0; i < S; i++) small[i] = hak_malloc(48);
    for (int i = 0; i < S; i++) hak_free(small[i]);
  }
  hak_big_usage(&live_n, &live_b, &live_u, &c_n, &c_b);
  CHECK(c_n == 0 && c_b == 0,
        "a run cached longer than HAKMEM_BIGCACHE_MS is unmapped (%zu runs left)", c_n);
  g_cfg.bigcache_ms = saved_ms;
}

/* A long mixed pattern of Mid and Large blocks, in phases (Mid, Large, both):
 * committed memory (whole slabs, EMPTY budget and thread caches included)
 * stays within 2.5x of the live bytes whenever more than 64 MiB is live.
 * Measured when written: worst 2.07x, right after the Mid -> Large switch. */
static void test_fragmentation(void) {
  hak_malloc_trim(0);
  enum { SLOTS = 3000, ITERS = 300000 };
  static void *slot[SLOTS];
  static size_t size[SLOTS];
  uint64_t x = 88172645463325252ull, live = 0, peak_live = 0;
  hak_stats_t s;
  uint64_t worst_ratio_x100 = 0;
  for (int it = 0; it < ITERS; it++) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    int i = (int)(x % SLOTS);
    if (slot[i]) {
      hak_free(slot[i]);
      live -= size[i];
      slot[i] = NULL;
    } else {
      /* phases: mostly Mid, then mostly Large, then mixed */
      int phase = (it / 50000) % 3;
      size_t n = (phase == 0 || (phase == 2 && (x >> 20) % 2)) ? 1041 + (x >> 24) % 64500
                                                              : 65537 + (x >> 24) % 900000;
      slot[i] = hak_malloc(n);
      size[i] = n;
      live += n;
      memset(slot[i], 0x3c, 64);
    }
    if (live > peak_live) peak_live = live;
    if (it % 10000 == 9999) {
      hak_stats_get(&s);
      uint64_t r = s.committed_bytes * 100 / (live ? live : 1);
      if (live > (64u << 20) && r > worst_ratio_x100) worst_ratio_x100 = r;
    }
  }
  hak_stats_get(&s);
  CHECK(worst_ratio_x100 <= 250, "committed stayed within 2.5x of live bytes (worst %llu%%)",
        (unsigned long long)worst_ratio_x100);
  CHECK(s.peak_committed_bytes <= 2 * peak_live + (64u << 20), "peak committed %llu MiB for peak live %llu MiB",
        (unsigned long long)(s.peak_committed_bytes >> 20), (unsigned long long)(peak_live >> 20));
  printf("fragmentation: peak live %llu MiB, peak committed %llu MiB, worst committed/live %llu%%\n",
         (unsigned long long)(peak_live >> 20), (unsigned long long)(s.peak_committed_bytes >> 20),
         (unsigned long long)worst_ratio_x100);
  for (int i = 0; i < SLOTS; i++) hak_free(slot[i]);
}

int main(void) {
  hak_free(hak_malloc(1));
  test_boundaries();
  test_alignment_per_tier();
  test_realloc_pairs();
  test_realloc_growth_to_big();
  test_cross_thread_and_exit();
  test_bigcache();
  test_fragmentation();
  return check_summary("unit_tiers");
}
