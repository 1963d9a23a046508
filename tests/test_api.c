/* test_api.c — conformance of the whole malloc family.
 *
 * Sizes 0..64 MiB with the tier boundaries, alignments 1..4 MiB (size equal
 * to the alignment included), errno on every failure, realloc content across
 * every pair of boundary sizes, calloc zeroing of dirty reused blocks (and
 * the untouched pages of reused blocks left untouched),
 * malloc_usable_size, mallinfo2, malloc_stats, malloc_trim, and the proof that
 * every block comes from hakmem (hak_owns, statistics).
 */
#include "hk_proc.h"

#define KiB ((size_t)1024)
#define MiB ((size_t)1024 * 1024)


/* sizes of the sweep: every tier boundary, both sides */
static const size_t boundary_sizes[] = {
    1, 2, 3, 4, 5, 7, 8, 9, 12, 15, 16, 17, 24, 31, 32, 33, 48, 63, 64, 65, 96, 127, 128, 129, 255,
    256, 257, 511, 512, 513, 768, 1000, 1023, 1024, 1025, 1039, 1040, 1041, 1100, 1536, 2047, 2048,
    2049, 3000, 4095, 4096, 4097, 8191, 8192, 8193, 12288, 16383, 16384, 16385, 24576, 32767, 32768,
    32769, 40960, 45000, 53248, 60000, 65535, 65536, 65537, 98304, 131071, 131072, 131073,
    262144, 500000, 524288, 1 * MiB - 1, 1 * MiB, 1 * MiB + 1, 1536 * KiB, 2 * MiB - 1, 2 * MiB,
    2 * MiB + 1, 3 * MiB, 4 * MiB - 1, 4 * MiB, 4 * MiB + 1, 8 * MiB, 16 * MiB + 3, 32 * MiB,
    64 * MiB - 1, 64 * MiB};
#define NB (sizeof boundary_sizes / sizeof boundary_sizes[0])

static unsigned long n_allocs; /* successful allocations made by this test */

/* Common checks for a block just returned for a request of n bytes with
 * alignment `align` (0: the default rule). Fills the whole usable size. */
static void check_block(void *p, size_t n, size_t align, const char *fn, uint64_t tag) {
  if (!p) return;
  n_allocs++;
  size_t a = align ? align : hk_expected_align(n ? n : 1);
  if (align && align < hk_expected_align(n ? n : 1)) a = hk_expected_align(n ? n : 1);
  CHECK(((uintptr_t)p & (a - 1)) == 0, "%s(%zu, align %zu) = %p not aligned to %zu", fn, n, align, p, a);
  CHECK(hk_owns(p), "%s(%zu) = %p: hak_owns(p) == 0", fn, n, p);
  if (n > 1) CHECK(hk_owns((char *)p + n - 1), "%s(%zu) = %p: hak_owns(last byte) == 0", fn, n, p);
  size_t us = malloc_usable_size(p);
  CHECK(us >= n, "%s(%zu) = %p: malloc_usable_size %zu < requested", fn, n, p, us);
  if (us >= n && us > 0) {
    CHECK(hk_owns((char *)p + us - 1), "%s(%zu) = %p: hak_owns(p + usable - 1) == 0 (usable %zu)", fn, n,
          p, us);
    hk_fill_sparse(p, us, tag);
  }
}

static void verify_block(void *p, size_t us, uint64_t tag, const char *what) {
  size_t bad = hk_check_sparse(p, us, tag);
  CHECK(bad == (size_t)-1, "%s: block %p (usable %zu) corrupted at offset %zu", what, p, us, bad);
}

typedef struct { char *p; size_t us; uint64_t tag; size_t n; } live_t;

static int cmp_live(const void *a, const void *b) {
  const live_t *x = a, *y = b;
  return x->p < y->p ? -1 : x->p > y->p;
}

/* all blocks live together: no two overlap, none was overwritten */
static void check_disjoint(live_t *v, size_t n, const char *what) {
  for (size_t i = 0; i < n; i++)
    if (v[i].p) verify_block(v[i].p, v[i].us, v[i].tag, what);
  qsort(v, n, sizeof *v, cmp_live);
  for (size_t i = 1; i < n; i++)
    if (v[i - 1].p && v[i].p)
      CHECK(v[i - 1].p + v[i - 1].us <= v[i].p, "%s: blocks %p (+%zu) and %p overlap", what,
            (void *)v[i - 1].p, v[i - 1].us, (void *)v[i].p);
}

/* ------------------------------------------------------------ sections */

static void test_proof(void) {
  hak_stats_t s0, s1, s2;
  enum { N = 2000 };
  static void *v[N];
  hk_stats(&s0);
  for (int i = 0; i < N; i++) {
    size_t n = (i % 4 == 3) ? 2000 + (size_t)i * 37 : 8 + (size_t)(i % 1000);
    v[i] = malloc(n);
    REQUIRE(v[i] != NULL, "malloc(%zu) failed", n);
    n_allocs++;
    CHECK(hk_owns(v[i]), "malloc(%zu) = %p not owned by hakmem", n, v[i]);
    memset(v[i], 0x5a, n);
  }
  hk_stats(&s1);
  for (int i = 0; i < N; i++) free(v[i]);
  hk_stats(&s2);
  if (HK_HAVE_PROOF) {
    CHECK(hk_total_mallocs(&s1) >= hk_total_mallocs(&s0) + N,
          "statistics: mallocs went from %" PRIu64 " to %" PRIu64 " over %d mallocs",
          hk_total_mallocs(&s0), hk_total_mallocs(&s1), N);
    CHECK(hk_total_frees(&s2) >= hk_total_frees(&s1) + N,
          "statistics: frees went from %" PRIu64 " to %" PRIu64 " over %d frees", hk_total_frees(&s1),
          hk_total_frees(&s2), N);
    CHECK(s1.committed_bytes > 0, "statistics: committed_bytes == 0 with live blocks");
    CHECK(s1.peak_committed_bytes >= s1.committed_bytes, "statistics: peak %" PRIu64 " < committed %" PRIu64,
          s1.peak_committed_bytes, s1.committed_bytes);
    CHECK(s1.mmap_calls > 0 && s1.mmap_bytes > 0, "statistics: no mmap counted");
  }
}

static void test_malloc_sweep(void) {
  live_t v[NB];
  for (size_t i = 0; i < NB; i++) {
    size_t n = boundary_sizes[i];
    errno = 0;
    char *p = malloc(n);
    REQUIRE(p != NULL, "malloc(%zu) = NULL (errno %d)", n, errno);
    v[i].p = p;
    v[i].n = n;
    v[i].tag = hk_mix64(i * 7919 + 1);
    check_block(p, n, 0, "malloc", v[i].tag);
    v[i].us = malloc_usable_size(p);
  }
  check_disjoint(v, NB, "malloc sweep");
  for (size_t i = 0; i < NB; i++) free(v[i].p);

  /* every size 1..2100 one after another, and 200 log-uniform sizes */
  hk_rng_t r = {42};
  for (size_t n = 1; n <= 2100 + 200; n++) {
    size_t sz = n <= 2100 ? n : hk_logsize(&r, 1, 8 * MiB);
    char *p = malloc(sz);
    REQUIRE(p != NULL, "malloc(%zu) = NULL", sz);
    check_block(p, sz, 0, "malloc", n);
    verify_block(p, malloc_usable_size(p), n, "malloc single");
    free(p);
  }

  /* malloc(0): NULL or a unique, freeable pointer */
  void *z[8];
  for (int i = 0; i < 8; i++) {
    z[i] = malloc(0);
    if (z[i]) {
      CHECK(hk_owns(z[i]), "malloc(0) = %p not owned", z[i]);
      for (int j = 0; j < i; j++) CHECK(z[j] != z[i], "malloc(0) returned %p twice", z[i]);
    }
  }
  for (int i = 0; i < 8; i++) free(z[i]);
  free(NULL);
  CHECK(malloc_usable_size(NULL) == 0, "malloc_usable_size(NULL) != 0");
}

static void test_many_small(void) {
  /* many blocks of each small size live together */
  enum { PER = 300 };
  static live_t v[PER * 12];
  static const size_t sizes[] = {1, 8, 16, 24, 48, 100, 256, 512, 1000, 1040, 1041, 4000};
  size_t k = 0;
  for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++)
    for (int i = 0; i < PER; i++, k++) {
      v[k].n = sizes[s];
      v[k].p = malloc(v[k].n);
      REQUIRE(v[k].p, "malloc(%zu) failed", v[k].n);
      v[k].tag = hk_mix64(k + 99);
      check_block(v[k].p, v[k].n, 0, "malloc", v[k].tag);
      v[k].us = malloc_usable_size(v[k].p);
    }
  check_disjoint(v, k, "many small");
  /* free every other one, reallocate, check again */
  for (size_t i = 0; i < k; i += 2) {
    free(v[i].p);
    v[i].p = malloc(v[i].n);
    REQUIRE(v[i].p, "malloc(%zu) failed", v[i].n);
    v[i].tag ^= 0xabcdef;
    check_block(v[i].p, v[i].n, 0, "malloc", v[i].tag);
    v[i].us = malloc_usable_size(v[i].p);
  }
  check_disjoint(v, k, "many small (reused)");
  for (size_t i = 0; i < k; i++) free(v[i].p);
}

static int all_zero(const void *p, size_t n) {
  const unsigned char *b = p;
  size_t i = 0;
  for (; i < n && ((uintptr_t)(b + i) & 7); i++)
    if (b[i]) return 0;
  for (; i + 8 <= n; i += 8)
    if (*(const uint64_t *)(const void *)(b + i)) return 0;
  for (; i < n; i++)
    if (b[i]) return 0;
  return 1;
}

static void test_calloc(void) {
  for (size_t i = 0; i < NB; i++) {
    size_t n = boundary_sizes[i];
    /* a dirty block of the same size, freed just before */
    char *d = malloc(n);
    REQUIRE(d, "malloc(%zu) failed", n);
    n_allocs++;
    memset(d, 0xa5, malloc_usable_size(d));
    free(d);
    char *p = calloc(1, n);
    REQUIRE(p, "calloc(1, %zu) failed", n);
    CHECK(all_zero(p, n), "calloc(1, %zu) = %p not zeroed (dirty block %p freed before)", n, p, d);
    check_block(p, n, 0, "calloc", 3);
    free(p);
    if (n >= 8) {
      p = calloc(n / 8, 8);
      REQUIRE(p, "calloc(%zu, 8) failed", n / 8);
      CHECK(all_zero(p, n / 8 * 8), "calloc(%zu, 8) not zeroed", n / 8);
      check_block(p, n / 8 * 8, 0, "calloc", 4);
      free(p);
    }
  }
  /* a batch of dirty blocks of one class, then a batch of callocs */
  static const size_t cs[] = {16, 64, 1024, 1040, 8192, 40000, 70000, 300000, 3 * MiB};
  for (size_t c = 0; c < sizeof cs / sizeof cs[0]; c++) {
    void *v[64];
    for (int i = 0; i < 64; i++) {
      v[i] = malloc(cs[c]);
      REQUIRE(v[i], "malloc(%zu) failed", cs[c]);
      memset(v[i], 0xff, cs[c]);
    }
    for (int i = 0; i < 64; i++) free(v[i]);
    for (int i = 0; i < 64; i++) {
      v[i] = calloc(cs[c], 1);
      REQUIRE(v[i], "calloc(%zu, 1) failed", cs[c]);
      CHECK(all_zero(v[i], cs[c]), "calloc(%zu, 1) = %p (batch %d) not zeroed", cs[c], v[i], i);
      CHECK(hk_owns(v[i]), "calloc block %p not owned", v[i]);
      memset(v[i], 0xee, cs[c]);
    }
    for (int i = 0; i < 64; i++) free(v[i]);
  }
  /* zero-sized */
  void *p = calloc(0, 16);
  if (p) CHECK(hk_owns(p), "calloc(0,16) = %p not owned", p);
  free(p);
  p = calloc(16, 0);
  if (p) CHECK(hk_owns(p), "calloc(16,0) = %p not owned", p);
  free(p);
  /* overflow */
  static const size_t ov[][2] = {{SIZE_MAX / 2 + 1, 2}, {SIZE_MAX, SIZE_MAX}, {(size_t)1 << 33, (size_t)1 << 33},
                                 {SIZE_MAX / 16 + 1, 16}, {3, SIZE_MAX / 3 + 1}, {65536, (SIZE_MAX >> 16) + 1}};
  for (size_t i = 0; i < sizeof ov / sizeof ov[0]; i++) {
    errno = 0;
    void *q = calloc(ov[i][0], ov[i][1]);
    CHECK(q == NULL, "calloc(%zu, %zu) overflow returned %p", ov[i][0], ov[i][1], q);
    CHECK(errno == ENOMEM, "calloc(%zu, %zu) overflow: errno %d, want ENOMEM", ov[i][0], ov[i][1], errno);
  }
  errno = 0;
  void *q = calloc(1, SIZE_MAX);
  CHECK(q == NULL && errno == ENOMEM, "calloc(1, SIZE_MAX) = %p errno %d", q, errno);
}

/* Resident pages of [p, p + n) that no other block shares (mincore). */
static size_t resident_inner_pages(const void *p, size_t n, size_t *inner) {
  uintptr_t lo = ((uintptr_t)p + 4095) & ~(uintptr_t)4095, hi = ((uintptr_t)p + n) & ~(uintptr_t)4095, got = 0;
  unsigned char vec[256];
  *inner = hi > lo ? (hi - lo) / 4096 : 0;
  for (uintptr_t a = lo; a < hi; a += sizeof vec * 4096) {
    size_t np = (hi - a) / 4096 < sizeof vec ? (hi - a) / 4096 : sizeof vec;
    if (mincore((void *)a, np * 4096, vec) != 0) return 0;
    for (size_t i = 0; i < np; i++) got += vec[i] & 1;
  }
  return got;
}

/* calloc of reused blocks, which are not known to be zero, for each tier:
 * whatever the program wrote into them before (every page, every other
 * page, or one word at each end), every byte reads zero; and the pages it
 * never touched stay untouched. stress-ng's shape: a word written per
 * calloc'ed block. Zeroing them with memset would fault in every page. */
static void test_calloc_reused(void) {
  static const size_t sizes[] = {16 * KiB, 20 * KiB + 100, 40000, 64 * KiB, 300000, 1 * MiB + 5000, 3 * MiB, 5 * MiB};
  enum { MAXK = 512 };
  static unsigned char *v[MAXK];
  for (size_t c = 0; c < sizeof sizes / sizeof sizes[0]; c++) {
    /* 8 MiB of blocks: under the EMPTY budget, so that their slabs stay
     * between rounds rather than come back fresh (and prefaulted) */
    size_t n = sizes[c], k = 8 * MiB / n;
    if (k < 6) k = 6;
    if (k > MAXK) k = MAXK;
    int rounds = 2048 / (int)k > 48 ? 2048 / (int)k : 48; /* enough zeroings of the size to learn from */
    /* one word at each end: the pages between are never touched (calloc
     * faults in the pages of a block fresh from the OS: they are zero, and a
     * program that reads them first would fault twice; so the blocks are
     * malloc'ed first) */
    for (size_t i = 0; i < k; i++) {
      v[i] = malloc(n);
      REQUIRE(v[i], "malloc(%zu) failed", n);
      n_allocs++;
      *(uint64_t *)v[i] = 1;
      *(uint64_t *)(v[i] + (n - 8) / 8 * 8) = 1;
    }
    for (size_t i = 0; i < k; i++) free(v[i]);
    for (int r = 0; r < rounds; r++) {
      for (size_t i = 0; i < k; i++) {
        v[i] = calloc(1, n);
        REQUIRE(v[i], "calloc(1, %zu) failed", n);
        n_allocs++;
        uint64_t *head = (uint64_t *)v[i], *tail = (uint64_t *)(v[i] + (n - 8) / 8 * 8);
        CHECK(*head == 0 && *tail == 0, "calloc(1, %zu) = %p (round %d) not zeroed: %#llx %#llx", n,
              (void *)v[i], r, (unsigned long long)*head, (unsigned long long)*tail);
        *head = ~(uint64_t)0;
        *tail = ~(uint64_t)0;
      }
      if (r < rounds - 1)
        for (size_t i = 0; i < k; i++) free(v[i]);
    }
    /* The two written words may each keep a page; of the others at most a
     * quarter (memset keeps them all). A 16 KiB block is too short: its two
     * written pages are half of it, and memset is as good. */
    size_t resident = 0, inner = 0;
    for (size_t i = 0; i < k; i++) {
      size_t in;
      resident += resident_inner_pages(v[i], n, &in);
      inner += in;
    }
    CHECK(!HK_HAVE_PROOF || n <= 16 * KiB || resident <= 2 * k + (inner - 2 * k) / 4,
          "%zu live calloc(1, %zu) blocks with one word written at each end: %zu of their %zu inner pages "
          "resident (their untouched pages were written)",
          k, n, resident, inner);
    for (size_t i = 0; i < k; i++) {
      CHECK(hk_owns(v[i]), "calloc block %p not owned", (void *)v[i]);
      free(v[i]);
    }
    /* every page written, then every other one: each byte checked */
    for (int r = 0; r < 8; r++) {
      for (size_t i = 0; i < k; i++) {
        v[i] = calloc(n, 1);
        REQUIRE(v[i], "calloc(%zu, 1) failed", n);
        n_allocs++;
        CHECK(all_zero(v[i], n), "calloc(%zu, 1) = %p (round %d) not zeroed", n, (void *)v[i], r);
        for (size_t o = 0; o < n; o += 4096)
          if (r < 4 || (o / 4096) % 2) memset(v[i] + o, 0xa5, n - o < 4096 ? n - o : 4096);
      }
      for (size_t i = 0; i < k; i++) free(v[i]);
    }
  }
}

/* A program that frees a big buffer and then grows its small objects
 * reuses the buffer's resident memory (new SuperSlabs take chunks of the
 * cached run) or gives it back (a run in a mapping of its own, here one
 * aligned to 4 MiB) instead of adding new memory beside it; the small blocks
 * keep their contents and calloc'ed ones read zero, although those chunks
 * were written before. */
static void bigcache_reuse(size_t align) {
  enum { SMALL = 1000, NSMALL = 24 * 1024 };
  size_t big_n = 32 * MiB;
  static unsigned char *v[NSMALL];
  unsigned char *big = align ? aligned_alloc(align, big_n) : malloc(big_n);
  REQUIRE(big, "a 32 MiB block (alignment %zu) failed", align);
  n_allocs++;
  memset(big, 0x5a, big_n);
  uint64_t rss1 = hk_rss_bytes();
  free(big);
  for (size_t i = 0; i < NSMALL; i++) {
    v[i] = i % 2 ? calloc(1, SMALL) : malloc(SMALL);
    REQUIRE(v[i], "small block %zu failed", i);
    n_allocs++;
    if (i % 2) CHECK(all_zero(v[i], SMALL), "calloc(1, %d) = %p over a reused Big run not zeroed", SMALL, (void *)v[i]);
    hk_fill(v[i], SMALL, i);
  }
  uint64_t rss2 = hk_rss_bytes();
  CHECK(!HK_HAVE_PROOF || rss2 < rss1 + 12 * MiB,
        "24 MiB of small blocks after a 32 MiB block (alignment %zu) was freed: RSS %" PRIu64 " -> %" PRIu64
        " KiB (the freed block's memory was neither reused nor given back)",
        align, rss1 >> 10, rss2 >> 10);
  for (size_t i = 0; i < NSMALL; i++) {
    CHECK(hk_check(v[i], SMALL, i) == (size_t)-1, "small block %zu lost byte %zu", i, hk_check(v[i], SMALL, i));
    CHECK(hk_owns(v[i]), "small block %p not owned", (void *)v[i]);
  }
  big = malloc(big_n);
  REQUIRE(big, "malloc(32 MiB) after the reuse failed");
  n_allocs++;
  hk_fill(big, big_n, 77);
  CHECK(hk_check(big, big_n, 77) == (size_t)-1, "big block lost a byte");
  for (size_t i = 0; i < NSMALL; i++) free(v[i]);
  free(big);
  malloc_trim(0); /* the next round starts with no cached run and little room */
}

static void test_bigcache_reuse(void) {
  bigcache_reuse(0);
  bigcache_reuse(4 * MiB);
}

static const size_t realloc_sizes[] = {1, 8, 15, 16, 17, 100, 1024, 1040, 1041, 2000, 8192, 32768,
                                       40960, 53248, 65535, 65536, 65537, 200000, 1 * MiB - 1, 1 * MiB,
                                       1 * MiB + 1, 2 * MiB - 1, 2 * MiB, 2 * MiB + 1, 5 * MiB};
#define NR (sizeof realloc_sizes / sizeof realloc_sizes[0])

static void test_realloc(void) {
  /* realloc(NULL, n) behaves as malloc */
  for (size_t i = 0; i < NR; i++) {
    void *p = realloc(NULL, realloc_sizes[i]);
    REQUIRE(p, "realloc(NULL, %zu) failed", realloc_sizes[i]);
    check_block(p, realloc_sizes[i], 0, "realloc(NULL)", i);
    free(p);
  }
  /* every pair of sizes, both directions */
  for (size_t i = 0; i < NR; i++) {
    for (size_t j = 0; j < NR; j++) {
      size_t a = realloc_sizes[i], b = realloc_sizes[j];
      uint64_t tag = hk_mix64(i * 1000 + j);
      char *p = malloc(a);
      REQUIRE(p, "malloc(%zu) failed", a);
      n_allocs++;
      hk_fill(p, a, tag);
      char *q = realloc(p, b);
      REQUIRE(q, "realloc(%p, %zu -> %zu) failed (errno %d)", (void *)p, a, b, errno);
      n_allocs++;
      CHECK(hk_owns(q), "realloc(%zu -> %zu) = %p not owned", a, b, (void *)q);
      CHECK(((uintptr_t)q & (hk_expected_align(b) - 1)) == 0, "realloc(%zu -> %zu) = %p misaligned", a, b,
            (void *)q);
      CHECK(hk_owns(q + b - 1), "realloc(%zu -> %zu) = %p: last byte not owned", a, b, (void *)q);
      CHECK(malloc_usable_size(q) >= b, "realloc(%zu -> %zu): usable %zu", a, b, malloc_usable_size(q));
      size_t keep = a < b ? a : b;
      size_t bad = hk_check(q, keep, tag);
      CHECK(bad == (size_t)-1, "realloc(%zu -> %zu) %p -> %p: content lost at offset %zu", a, b, (void *)p,
            (void *)q, bad);
      if (b > a) memset(q + a, 0x33, b - a); /* the new tail is writable */
      free(q);
    }
  }
  /* growth by steps, 1 B .. 64 MiB, like a string being appended to */
  char *p = NULL;
  size_t have = 0;
  uint64_t tag = 777;
  for (size_t n = 1; n <= 64 * MiB; n = n * 3 / 2 + 1) {
    char *q = realloc(p, n);
    REQUIRE(q, "realloc grow to %zu failed", n);
    n_allocs++;
    size_t bad = hk_check(q, have, tag);
    CHECK(bad == (size_t)-1, "realloc grow %zu -> %zu: content lost at %zu", have, n, bad);
    CHECK(hk_owns(q) && hk_owns(q + n - 1), "realloc grow to %zu: %p not owned", n, (void *)q);
    hk_fill_range(q, have, n, tag);
    p = q;
    have = n;
  }
  /* and shrinking down again */
  while (have > 1) {
    size_t n = have / 3 * 2;
    if (n < 1) n = 1;
    char *q = realloc(p, n);
    REQUIRE(q, "realloc shrink to %zu failed", n);
    size_t bad = hk_check(q, n, tag);
    CHECK(bad == (size_t)-1, "realloc shrink %zu -> %zu: content lost at %zu", have, n, bad);
    CHECK(hk_owns(q), "realloc shrink to %zu: %p not owned", n, (void *)q);
    p = q;
    have = n;
  }
  free(p);

  /* realloc to the same size and to its usable size keeps the content */
  p = malloc(300);
  hk_fill(p, 300, 5);
  p = realloc(p, 300);
  REQUIRE(p, "realloc same size failed");
  CHECK(hk_check(p, 300, 5) == (size_t)-1, "realloc same size lost content");
  size_t us = malloc_usable_size(p);
  p = realloc(p, us);
  REQUIRE(p, "realloc to usable size failed");
  CHECK(hk_check(p, 300, 5) == (size_t)-1, "realloc to usable size lost content");
  free(p);

  /* realloc(p, 0): frees (NULL) or returns a minimal block */
  p = malloc(100);
  void *q = realloc(p, 0);
  if (q) {
    CHECK(hk_owns(q), "realloc(p, 0) = %p not owned", q);
    free(q);
  }
  p = malloc(3 * MiB);
  q = realloc(p, 0);
  if (q) free(q);

  /* impossible sizes: NULL, ENOMEM, the block stays valid */
  static const size_t tiers[] = {40, 4000, 100000, 3 * MiB};
  for (size_t t = 0; t < 4; t++) {
    p = malloc(tiers[t]);
    REQUIRE(p, "malloc failed");
    hk_fill(p, tiers[t], t);
    static const size_t huge[] = {SIZE_MAX, SIZE_MAX - 4096, (size_t)PTRDIFF_MAX + 1, (size_t)1 << 50};
    for (int h = 0; h < 4; h++) {
      errno = 0;
      q = realloc(p, huge[h]);
      CHECK(q == NULL, "realloc(%zu-byte block, %zu) = %p", tiers[t], huge[h], q);
      CHECK(errno == ENOMEM, "realloc(%zu-byte block, %zu): errno %d, want ENOMEM", tiers[t], huge[h], errno);
      if (q) {
        p = q;
        break;
      }
    }
    CHECK(hk_check(p, tiers[t], t) == (size_t)-1, "block of %zu damaged by failed realloc", tiers[t]);
    CHECK(hk_owns(p), "block of %zu no longer owned after failed realloc", tiers[t]);
    free(p);
  }
  errno = 0;
  q = realloc(NULL, SIZE_MAX);
  CHECK(q == NULL && errno == ENOMEM, "realloc(NULL, SIZE_MAX) = %p errno %d", q, errno);
}

static void test_reallocarray(void) {
  char *p = reallocarray(NULL, 10, 100);
  REQUIRE(p, "reallocarray(NULL, 10, 100) failed");
  check_block(p, 1000, 0, "reallocarray", 0);
  hk_fill(p, 1000, 9);
  p = reallocarray(p, 1000, 100);
  REQUIRE(p, "reallocarray(p, 1000, 100) failed");
  CHECK(hk_owns(p), "reallocarray(p, 1000, 100) = %p not owned", (void *)p);
  CHECK(hk_check(p, 1000, 9) == (size_t)-1, "reallocarray lost content");
  CHECK(malloc_usable_size(p) >= 100000, "reallocarray usable %zu", malloc_usable_size(p));
  errno = 0;
  void *q = reallocarray(p, SIZE_MAX / 2, 3);
  CHECK(q == NULL && errno == ENOMEM, "reallocarray overflow = %p errno %d", q, errno);
  errno = 0;
  q = reallocarray(p, (size_t)1 << 40, (size_t)1 << 40);
  CHECK(q == NULL && errno == ENOMEM, "reallocarray overflow = %p errno %d", q, errno);
  CHECK(hk_check(p, 1000, 9) == (size_t)-1, "reallocarray overflow damaged block");
  CHECK(hk_owns(p), "block freed by a failed reallocarray");
  p = reallocarray(p, 3, 5);
  REQUIRE(p, "reallocarray shrink failed");
  CHECK(hk_check(p, 15, 9) == (size_t)-1, "reallocarray shrink lost content");
  free(p);
  errno = 0;
  q = reallocarray(NULL, SIZE_MAX, 2);
  CHECK(q == NULL && errno == ENOMEM, "reallocarray(NULL, SIZE_MAX, 2) = %p errno %d", q, errno);
}

enum { F_POSIX, F_ALIGNED, F_MEMALIGN, F_N };
static const char *const fname[] = {"posix_memalign", "aligned_alloc", "memalign"};

static void *aligned_by(int f, size_t a, size_t n, int *err) {
  void *p = NULL;
  errno = 0;
  *err = 0;
  switch (f) {
  case F_POSIX:
    *err = posix_memalign(&p, a, n);
    if (*err) p = NULL;
    break;
  case F_ALIGNED:
    p = aligned_alloc(a, n);
    *err = p ? 0 : errno;
    break;
  default:
    p = memalign(a, n);
    *err = p ? 0 : errno;
    break;
  }
  return p;
}

static void test_aligned(void) {
  static live_t v[64 * 3];
  for (size_t a = 1; a <= 4 * MiB; a <<= 1) {
    size_t sizes[] = {1, a > 1 ? a - 1 : 2, a, a + 1, 2 * a, 100, 1040, 70000, 3 * MiB + 5, a / 2 + 3};
    size_t ns = sizeof sizes / sizeof sizes[0];
    size_t k = 0;
    for (int f = 0; f < F_N; f++) {
      if (f == F_POSIX && a < sizeof(void *)) continue;
      for (size_t s = 0; s < ns; s++) {
        int err;
        void *p = aligned_by(f, a, sizes[s], &err);
        CHECK(p != NULL, "%s(align %zu, size %zu) failed: error %d", fname[f], a, sizes[s], err);
        if (!p) continue;
        v[k].p = p;
        v[k].n = sizes[s];
        v[k].tag = hk_mix64(a * 131 + s * 7 + (size_t)f);
        check_block(p, sizes[s], a, fname[f], v[k].tag);
        v[k].us = malloc_usable_size(p);
        k++;
      }
    }
    check_disjoint(v, k, "aligned blocks");
    for (size_t i = 0; i < k; i++) free(v[i].p);
  }
  /* the same, with frees interleaved so that freed space gets reused */
  hk_rng_t r = {7};
  for (int i = 0; i < 3000; i++) {
    size_t a = (size_t)1 << hk_below(&r, 17);
    size_t n = hk_logsize(&r, 1, 300000);
    int f = (int)hk_below(&r, F_N), err;
    if (f == F_POSIX && a < sizeof(void *)) a = sizeof(void *);
    void *p = aligned_by(f, a, n, &err);
    CHECK(p != NULL, "%s(%zu, %zu) failed: %d", fname[f], a, n, err);
    if (!p) continue;
    check_block(p, n, a, fname[f], (uint64_t)i);
    verify_block(p, malloc_usable_size(p), (uint64_t)i, "aligned random");
    free(p);
  }

  /* rounds of aligned blocks of growing sizes, each round freed before the
   * next: slabs and spans freed by one round are reused by the next */
  for (size_t a = 4096; a <= MiB; a <<= 1) {
    for (size_t n = 16 * KiB; n < 2 * MiB; n = n * 5 / 4) {
      enum { R = 48 };
      void *w[R];
      for (int i = 0; i < R; i++) {
        size_t sz = n + (size_t)i * 4096;
        int f = i % F_N, err;
        w[i] = aligned_by(f, a, sz, &err);
        CHECK(w[i] != NULL, "%s(%zu, %zu) failed: %d", fname[f], a, sz, err);
        if (!w[i]) continue;
        n_allocs++;
        CHECK(((uintptr_t)w[i] & (a - 1)) == 0, "%s(align %zu, size %zu) = %p misaligned (rounds of aligned blocks)",
              fname[f], a, sz, w[i]);
        CHECK(hk_owns(w[i]) && hk_owns((char *)w[i] + sz - 1), "%s(%zu, %zu) = %p not owned", fname[f], a, sz,
              w[i]);
        ((char *)w[i])[0] = 1;
        ((char *)w[i])[sz - 1] = 2;
      }
      for (int i = 0; i < R; i++) free(w[i]);
    }
  }

  /* bad alignments */
  static const size_t bad_posix[] = {0, 1, 2, 4, 3, 12, 24, 48, 96, sizeof(void *) * 3, (size_t)1 << 20 | 8};
  for (size_t i = 0; i < sizeof bad_posix / sizeof bad_posix[0]; i++) {
    void *out = (void *)(uintptr_t)0x1234;
    int e = posix_memalign(&out, bad_posix[i], 64);
    CHECK(e == EINVAL, "posix_memalign(align %zu) returned %d, want EINVAL", bad_posix[i], e);
    if (e == 0) free(out);
  }
  static const size_t bad_aligned[] = {0, 3, 12, 24, 48, 100, 4097};
  for (size_t i = 0; i < sizeof bad_aligned / sizeof bad_aligned[0]; i++) {
    errno = 0;
    void *p = aligned_alloc(bad_aligned[i], 64);
#ifdef TEST_AGAINST_GLIBC /* glibc 2.36 rounds the alignment up */
    free(p);
#else
    CHECK(p == NULL, "aligned_alloc(%zu, 64) = %p, want NULL", bad_aligned[i], p);
    CHECK(errno == EINVAL, "aligned_alloc(%zu, 64): errno %d, want EINVAL", bad_aligned[i], errno);
    if (p) free(p);
#endif
  }
  /* impossible sizes */
  for (size_t a = 16; a <= 4 * MiB; a <<= 4) {
    void *out = NULL;
    int e = posix_memalign(&out, a, SIZE_MAX - a);
    CHECK(e == ENOMEM, "posix_memalign(%zu, huge) returned %d, want ENOMEM", a, e);
    errno = 0;
    void *p = aligned_alloc(a, SIZE_MAX);
    CHECK(p == NULL && errno == ENOMEM, "aligned_alloc(%zu, SIZE_MAX) = %p errno %d", a, p, errno);
    errno = 0;
    p = memalign(a, SIZE_MAX - 2 * a);
    CHECK(p == NULL && errno == ENOMEM, "memalign(%zu, huge) = %p errno %d", a, p, errno);
    errno = 0;
    p = memalign(a, (size_t)1 << 50);
    CHECK(p == NULL && errno == ENOMEM, "memalign(%zu, 1<<50) = %p errno %d", a, p, errno);
  }
}

static void test_valloc(void) {
  size_t pg = (size_t)sysconf(_SC_PAGESIZE);
  static const size_t sizes[] = {1, 100, 4095, 4096, 4097, 10000, 65536, 1 * MiB + 1, 3 * MiB};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    void *p = valloc(sizes[i]);
    REQUIRE(p, "valloc(%zu) failed", sizes[i]);
    check_block(p, sizes[i], pg, "valloc", i);
    free(p);
    p = pvalloc(sizes[i]);
    REQUIRE(p, "pvalloc(%zu) failed", sizes[i]);
    size_t rounded = (sizes[i] + pg - 1) / pg * pg;
    check_block(p, rounded, pg, "pvalloc", i);
    free(p);
  }
  void *p = pvalloc(0);
  if (p) {
    CHECK(((uintptr_t)p & (pg - 1)) == 0, "pvalloc(0) = %p not page aligned", p);
    CHECK(hk_owns(p), "pvalloc(0) = %p not owned", p);
    free(p);
  }
  errno = 0;
  p = valloc(SIZE_MAX);
  CHECK(p == NULL && errno == ENOMEM, "valloc(SIZE_MAX) = %p errno %d", p, errno);
  errno = 0;
  p = pvalloc(SIZE_MAX - 100); /* rounding up overflows */
  CHECK(p == NULL && errno == ENOMEM, "pvalloc(SIZE_MAX-100) = %p errno %d", p, errno);
}

static void test_impossible(void) {
  static const size_t huge[] = {SIZE_MAX,           SIZE_MAX - 1,      SIZE_MAX - 4096, SIZE_MAX - (64 * MiB),
                                SIZE_MAX / 2,       (size_t)PTRDIFF_MAX, (size_t)PTRDIFF_MAX + 1,
                                (size_t)1 << 50,    (size_t)1 << 48};
  for (size_t i = 0; i < sizeof huge / sizeof huge[0]; i++) {
    errno = 0;
    void *p = malloc(huge[i]);
    CHECK(p == NULL, "malloc(%zu) = %p", huge[i], p);
    CHECK(errno == ENOMEM, "malloc(%zu): errno %d, want ENOMEM", huge[i], errno);
    if (p) free(p);
  }
  /* and the allocator still works */
  void *p = malloc(100);
  REQUIRE(p && hk_owns(p), "malloc after failures");
  free(p);
}

static void test_info(void) {
  enum { N = 40 };
  void *v[N];
  hk_mallinfo_t m0 = hk_mallinfo2();
  for (int i = 0; i < N; i++) {
    v[i] = malloc(MiB - 100 * (size_t)i);
    REQUIRE(v[i], "malloc failed");
    memset(v[i], 1, 4096);
  }
  hk_mallinfo_t m1 = hk_mallinfo2();
  size_t used0 = m0.uordblks + m0.hblkhd, used1 = m1.uordblks + m1.hblkhd;
  CHECK(used1 >= used0 + 30 * MiB, "mallinfo2: uordblks+hblkhd %zu -> %zu after allocating ~40 MiB", used0,
        used1);
  CHECK(m1.arena + m1.hblkhd >= 30 * MiB, "mallinfo2: arena %zu + hblkhd %zu < 30 MiB with 40 MiB live",
        m1.arena, m1.hblkhd);
  for (int i = 0; i < N; i++) free(v[i]);
  hk_mallinfo_t m2 = hk_mallinfo2();
  CHECK(m2.uordblks + m2.hblkhd < used1, "mallinfo2: in-use bytes did not drop after free (%zu -> %zu)",
        used1, m2.uordblks + m2.hblkhd);

  /* malloc_stats prints something and returns */
  fflush(stderr);
  malloc_stats();
  fflush(stderr);

  /* malloc_trim(0) hands memory back: free 96 MiB of small and mid blocks */
  enum { M = 96 * 1024 };
  static void *w[M];
  for (int i = 0; i < M; i++) {
    w[i] = malloc(i % 2 ? 512 : 1536);
    REQUIRE(w[i], "malloc failed");
    memset(w[i], 7, 512);
  }
  hak_stats_t s1, s2;
  hk_stats(&s1);
  for (int i = 0; i < M; i++) free(w[i]);
  int t = malloc_trim(0);
  CHECK(t == 0 || t == 1, "malloc_trim returned %d", t);
  hk_stats(&s2);
  if (HK_HAVE_PROOF) {
    CHECK(s2.committed_bytes + 48 * MiB <= s1.committed_bytes,
          "malloc_trim(0) after freeing 96 MiB of blocks: committed %" PRIu64 " -> %" PRIu64
          " bytes (want at least 48 MiB released)",
          s1.committed_bytes, s2.committed_bytes);
    CHECK(s2.peak_committed_bytes >= s1.committed_bytes, "peak_committed_bytes %" PRIu64 " < earlier committed %" PRIu64,
          s2.peak_committed_bytes, s1.committed_bytes);
  }
  t = malloc_trim(1 << 20);
  CHECK(t == 0 || t == 1, "malloc_trim(1MiB) returned %d", t);
  /* still works afterwards, including the blocks' old places */
  for (int i = 0; i < 1000; i++) {
    w[i] = malloc(i % 2 ? 512 : 1536);
    REQUIRE(w[i], "malloc after trim failed");
    CHECK(hk_owns(w[i]), "block after trim not owned");
    hk_fill(w[i], 512, i);
  }
  for (int i = 0; i < 1000; i++) {
    CHECK(hk_check(w[i], 512, i) == (size_t)-1, "block after trim corrupted");
    free(w[i]);
  }
}

static void test_free_sized(void) {
#if !defined(TEST_AGAINST_GLIBC)
  void (*fs)(void *, size_t) = NULL;
#if defined(HK_MODE_PRELOAD)
  fs = (void (*)(void *, size_t))dlsym(RTLD_DEFAULT, "hak_free_sized");
  CHECK(fs != NULL, "hak_free_sized not exported");
#else
  fs = hak_free_sized;
#endif
  if (!fs) return;
  for (size_t i = 0; i < NB; i += 3) {
    void *p = malloc(boundary_sizes[i]);
    REQUIRE(p, "malloc failed");
    n_allocs++;
    fs(p, boundary_sizes[i]);
  }
#endif
}

int main(int argc, char **argv) {
  hk_init("api");
  hak_stats_t s0, s1;
  hk_stats(&s0);
  const char *only = argc > 1 ? argv[1] : NULL;
#define SECTION(name)                                                          \
  if (!only || !strcmp(only, #name)) {                                         \
    double t0 = hk_now();                                                      \
    test_##name();                                                             \
    hk_note("section %-16s %.2fs, %d failure(s) so far", #name, hk_now() - t0, check_failures); \
  }
  SECTION(bigcache_reuse); /* first: the other sections leave room in SuperSlabs, which it would use */
  SECTION(proof);
  SECTION(malloc_sweep);
  SECTION(many_small);
  SECTION(calloc);
  SECTION(calloc_reused);
  SECTION(realloc);
  SECTION(reallocarray);
  SECTION(aligned);
  SECTION(valloc);
  SECTION(impossible);
  SECTION(info);
  SECTION(free_sized);
  hk_stats(&s1);
  if (HK_HAVE_PROOF && !only)
    CHECK(hk_total_mallocs(&s1) >= hk_total_mallocs(&s0) + n_allocs,
          "statistics count %" PRIu64 " mallocs, the test made at least %lu",
          hk_total_mallocs(&s1) - hk_total_mallocs(&s0), n_allocs);
  check_finish();
}
