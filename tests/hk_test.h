/* hk_test.h — shared helpers for the hakmem test programs.
 *
 * One test source is built in several modes (scripts/run_tests.sh picks them):
 *
 *   HK_MODE_LINKED   linked with libhakmem.a: the standard names (malloc, ...)
 *                    are hakmem's; hak_owns/hak_stats_get are called directly.
 *   HK_MODE_PRELOAD  linked with nothing from hakmem and run under LD_PRELOAD:
 *                    hak_owns/hak_stats_get are found with dlsym(RTLD_DEFAULT),
 *                    and their absence is a failure (hakmem was not loaded).
 *   HK_MODE_HAKAPI   linked with libhakmem_core.a (typically the ASan/UBSan
 *                    build): the standard names used by the test are mapped
 *                    onto hak_* with macros, so only the core is exercised.
 *   TEST_AGAINST_GLIBC  developer aid only: plain glibc, the proof-of-service
 *                    checks are skipped. Never used by the runner.
 *
 * Include this header and no system header after it: it includes every
 * system header the tests need, then (in HK_MODE_HAKAPI) defines the macros
 * that map the standard names onto hak_*.
 */
#ifndef HK_TEST_H
#define HK_TEST_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <malloc.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "hakmem.h"

#if !defined(HK_MODE_LINKED) && !defined(HK_MODE_PRELOAD) && !defined(HK_MODE_HAKAPI) && \
    !defined(TEST_AGAINST_GLIBC)
#define HK_MODE_LINKED 1
#endif

#if defined(HK_MODE_LINKED)
#define HK_MODE_NAME "linked"
#elif defined(HK_MODE_PRELOAD)
#define HK_MODE_NAME "preload"
#elif defined(HK_MODE_HAKAPI)
#define HK_MODE_NAME "hakapi"
#else
#define HK_MODE_NAME "glibc"
#endif

#define HK_UNUSED __attribute__((unused))

/* ------------------------------------------------------------------ checks */

/* CHECK, REQUIRE, check_failures, check_finish(): tests/check.h; the summary
 * names the mode ("api [linked]: 1234 checks, ok"). */
#define CHECK_MODE HK_MODE_NAME
#include "check.h"

static HK_UNUSED void hk_note(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "%s: ", check_name);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  fflush(stderr);
}

/* Work scale in percent (HK_TEST_SCALE, default 100): the runner lowers it
 * for sanitizer builds. Never used to assert anything about time. */
static HK_UNUSED long hk_scale(long n) {
  const char *s = getenv("HK_TEST_SCALE");
  long pct = s ? strtol(s, NULL, 10) : 100;
  if (pct <= 0) pct = 100;
  long r = n * pct / 100;
  return r > 0 ? r : 1;
}

static HK_UNUSED uint64_t hk_env_u64(const char *name, uint64_t dflt) {
  const char *s = getenv(name);
  if (!s || !*s) return dflt;
  return strtoull(s, NULL, 0);
}

/* -------------------------------------------------------- random numbers */

static inline uint64_t hk_mix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

typedef struct { uint64_t s; } hk_rng_t;
static inline uint64_t hk_rand(hk_rng_t *r) { return hk_mix64(r->s++); }
/* uniform in [0, n) (n > 0) */
static inline uint64_t hk_below(hk_rng_t *r, uint64_t n) { return hk_rand(r) % n; }
/* log-uniform size in [lo, hi] */
static HK_UNUSED size_t hk_logsize(hk_rng_t *r, size_t lo, size_t hi) {
  int lb = 63 - __builtin_clzll(lo ? lo : 1), hb = 63 - __builtin_clzll(hi);
  int b = lb + (int)hk_below(r, (uint64_t)(hb - lb + 1));
  size_t base = (size_t)1 << b;
  size_t v = base + (size_t)hk_below(r, base);
  if (v < lo) v = lo;
  if (v > hi) v = hi;
  return v;
}

/* ----------------------------------------------------- content patterns */

/* Byte i of a block tagged `tag` is a function of (tag, i): a stale or
 * shifted copy, another block's bytes, or a zeroed page never matches.
 * (mt is the mixed tag, hk_mix64(tag).) */
static inline uint64_t hk_pat_word(uint64_t tag, size_t wi) {
  return tag ^ ((uint64_t)(wi + 1) * 0x9e3779b97f4a7c15ULL);
}
static inline unsigned char hk_pat_byte(uint64_t tag, size_t i) {
  return (unsigned char)(hk_pat_word(tag, i >> 3) >> ((i & 7) * 8));
}

static HK_UNUSED void hk_fill_range(void *p, size_t from, size_t to, uint64_t tag) {
  unsigned char *b = (unsigned char *)p;
  uint64_t mt = hk_mix64(tag);
  size_t i = from;
  while (i < to && ((i & 7) || ((uintptr_t)(b + i) & 7))) {
    b[i] = hk_pat_byte(mt, i);
    i++;
  }
  if (((uintptr_t)(b + i) & 7) == 0 && (i & 7) == 0) {
    for (; i + 8 <= to; i += 8) *(uint64_t *)(void *)(b + i) = hk_pat_word(mt, i >> 3);
  }
  for (; i < to; i++) b[i] = hk_pat_byte(mt, i);
}

/* first mismatching offset in [from, to), or (size_t)-1 */
static HK_UNUSED size_t hk_check_range(const void *p, size_t from, size_t to, uint64_t tag) {
  const unsigned char *b = (const unsigned char *)p;
  uint64_t mt = hk_mix64(tag);
  size_t i = from;
  while (i < to && ((i & 7) || ((uintptr_t)(b + i) & 7))) {
    if (b[i] != hk_pat_byte(mt, i)) return i;
    i++;
  }
  if (((uintptr_t)(b + i) & 7) == 0 && (i & 7) == 0) {
    for (; i + 8 <= to; i += 8) {
      if (*(const uint64_t *)(const void *)(b + i) != hk_pat_word(mt, i >> 3)) {
        for (size_t k = i; k < i + 8; k++)
          if (b[k] != hk_pat_byte(mt, k)) return k;
      }
    }
  }
  for (; i < to; i++)
    if (b[i] != hk_pat_byte(mt, i)) return i;
  return (size_t)-1;
}

static inline void hk_fill(void *p, size_t n, uint64_t tag) { hk_fill_range(p, 0, n, tag); }
static inline size_t hk_check(const void *p, size_t n, uint64_t tag) {
  return hk_check_range(p, 0, n, tag);
}

/* Sparse pattern for big blocks: the first and last 4 KiB and one 64-byte
 * stripe per 4 KiB page in between (every page is touched, cost O(pages)). */
#define HK_SPARSE_MIN ((size_t)64 * 1024)
static inline size_t hk_stripe(uint64_t tag) { return (size_t)((tag >> 7) % (4096 - 64)) & ~(size_t)7; }

static HK_UNUSED void hk_fill_sparse(void *p, size_t n, uint64_t tag) {
  if (n < HK_SPARSE_MIN) {
    hk_fill(p, n, tag);
    return;
  }
  hk_fill_range(p, 0, 4096, tag);
  for (size_t s = 4096 + hk_stripe(tag); s + 64 <= n - 4096; s += 4096) hk_fill_range(p, s, s + 64, tag);
  hk_fill_range(p, n - 4096, n, tag);
}

/* first bad offset among the bytes of [0, keep) that hk_fill_sparse(p, n)
 * defined, or (size_t)-1 (keep <= n: what survives a shrinking realloc) */
static HK_UNUSED size_t hk_check_sparse_prefix(const void *p, size_t n, size_t keep, uint64_t tag) {
  if (n < HK_SPARSE_MIN) return hk_check(p, keep, tag);
  size_t r = hk_check_range(p, 0, keep < 4096 ? keep : 4096, tag);
  if (r != (size_t)-1) return r;
  for (size_t s = 4096 + hk_stripe(tag); s + 64 <= n - 4096 && s + 64 <= keep; s += 4096) {
    r = hk_check_range(p, s, s + 64, tag);
    if (r != (size_t)-1) return r;
  }
  if (n - 4096 < keep) return hk_check_range(p, n - 4096, keep, tag);
  return (size_t)-1;
}
static inline size_t hk_check_sparse(const void *p, size_t n, uint64_t tag) {
  return hk_check_sparse_prefix(p, n, n, tag);
}

/* ------------------------------------------------------- proof of service */

typedef int (*hk_owns_fn)(const void *);
typedef void (*hk_stats_fn)(hak_stats_t *);

static hk_owns_fn hk_owns_p;
static hk_stats_fn hk_stats_p;

#if defined(HK_MODE_PRELOAD)
static HK_UNUSED void hk_init(const char *name) {
  check_name = name;
  hk_owns_p = (hk_owns_fn)dlsym(RTLD_DEFAULT, "hak_owns");
  hk_stats_p = (hk_stats_fn)dlsym(RTLD_DEFAULT, "hak_stats_get");
  REQUIRE(hk_owns_p != NULL, "hak_owns not found: hakmem is not loaded (LD_PRELOAD=%s)",
          getenv("LD_PRELOAD") ? getenv("LD_PRELOAD") : "(unset)");
  REQUIRE(hk_stats_p != NULL, "hak_stats_get not found: hakmem is not loaded");
  /* malloc itself must resolve to hakmem's library, not libc */
  Dl_info di;
  void *m = dlsym(RTLD_DEFAULT, "malloc");
  REQUIRE(m && dladdr(m, &di) && di.dli_fname && strstr(di.dli_fname, "hakmem"),
          "malloc resolves to %s, not to hakmem", (m && dladdr(m, &di)) ? di.dli_fname : "?");
}
#elif defined(TEST_AGAINST_GLIBC)
static int hk_glibc_owns(const void *p) { return p != NULL; }
static void hk_glibc_stats(hak_stats_t *s) { memset(s, 0, sizeof *s); }
static HK_UNUSED void hk_init(const char *name) {
  check_name = name;
  hk_owns_p = hk_glibc_owns;
  hk_stats_p = hk_glibc_stats;
}
#else
static HK_UNUSED void hk_init(const char *name) {
  check_name = name;
  hk_owns_p = hak_owns;
  hk_stats_p = hak_stats_get;
}
#endif

/* 1 when the statistics counters can serve as proof (not the glibc shim) */
#if defined(TEST_AGAINST_GLIBC)
#define HK_HAVE_PROOF 0
#else
#define HK_HAVE_PROOF 1
#endif

static inline int hk_owns(const void *p) { return hk_owns_p(p); }
static inline void hk_stats(hak_stats_t *s) {
  memset(s, 0, sizeof *s);
  hk_stats_p(s);
}
static HK_UNUSED uint64_t hk_total_mallocs(const hak_stats_t *s) {
  uint64_t t = 0;
  for (int i = 0; i < HAK_STAT_TIERS; i++) t += s->mallocs[i];
  return t;
}
static HK_UNUSED uint64_t hk_total_frees(const hak_stats_t *s) {
  uint64_t t = 0;
  for (int i = 0; i < HAK_STAT_TIERS; i++) t += s->frees[i];
  return t;
}

/* glibc's mallinfo2 vs hakmem's identical-layout struct */
#if defined(HK_MODE_HAKAPI)
typedef struct hak_mallinfo hk_mallinfo_t;
#define hk_mallinfo2() hak_mallinfo2()
#else
typedef struct mallinfo2 hk_mallinfo_t;
#define hk_mallinfo2() mallinfo2()
#endif

/* -------------------------------------------------- the hak_* API mapping */
#if defined(HK_MODE_HAKAPI)
#define malloc(n) hak_malloc(n)
#define free(p) hak_free(p)
#define calloc(n, s) hak_calloc(n, s)
#define realloc(p, n) hak_realloc(p, n)
#define reallocarray(p, n, s) hak_reallocarray(p, n, s)
#define posix_memalign(o, a, n) hak_posix_memalign(o, a, n)
#define aligned_alloc(a, n) hak_aligned_alloc(a, n)
#define memalign(a, n) hak_memalign(a, n)
#define valloc(n) hak_valloc(n)
#define pvalloc(n) hak_pvalloc(n)
#define malloc_usable_size(p) hak_malloc_usable_size(p)
#define malloc_trim(n) hak_malloc_trim(n)
#define malloc_stats() hak_malloc_stats()
#endif

/* a few helpers every test uses */
static inline int hk_is_pow2(size_t x) { return x && !(x & (x - 1)); }
static HK_UNUSED size_t hk_expected_align(size_t n) {
  if (n >= 16) return 16;
  size_t a = 1;
  while (a < n) a <<= 1;
  return a;
}
static HK_UNUSED double hk_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

#endif
