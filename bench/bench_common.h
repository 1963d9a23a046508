/* bench_common.h — shared helpers for the hakmem benchmark programs.
 *
 * Every benchmark uses only the standard malloc API, so one binary serves any
 * allocator through LD_PRELOAD. Each program verifies its own work (tags
 * written into every block and checked before the block is freed) and prints
 * one machine-readable line:
 *
 *   RESULT workload=<name> ops=<N> seconds=<S> ops_per_sec=<X> check=ok
 *          [hakmem_owned=<k>/<n>] [extra=<key>=<value>[,...]]
 *
 * On a failed check the program prints a diagnostic on stderr, a RESULT line
 * with check=FAIL, and exits with status 3 (without touching the heap again).
 */
#ifndef BENCH_COMMON_H
#define BENCH_COMMON_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define BENCH_EXIT_CHECK 3 /* exit status of a failed content check */
#define BENCH_EXIT_USAGE 2
#define BENCH_UNUSED __attribute__((unused))

/* ---------- PRNG: splitmix64 for seeding, xorshift64* for the loops ---------- */

static inline uint64_t bench_splitmix64(uint64_t *s) {
  uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

typedef struct {
  uint64_t s;
} bench_rng;

static inline void bench_rng_seed(bench_rng *r, uint64_t seed, uint64_t stream) {
  uint64_t s = seed ^ (stream * 0xD1B54A32D192ED03ull);
  r->s = bench_splitmix64(&s);
  if (r->s == 0) r->s = 0x2545F4914F6CDD1Dull;
}

static inline uint64_t bench_rng_next(bench_rng *r) {
  uint64_t x = r->s;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  r->s = x;
  return x * 0x2545F4914F6CDD1Dull;
}

/* Map 32 random bits onto [0, n) without division (Lemire). */
static inline uint32_t bench_bounded32(uint32_t bits, uint32_t n) {
  return (uint32_t)(((uint64_t)bits * n) >> 32);
}

/* Uniform in [lo, hi] (inclusive) from 32 random bits. */
static inline size_t bench_uniform(uint32_t bits, size_t lo, size_t hi) {
  return lo + bench_bounded32(bits, (uint32_t)(hi - lo + 1));
}

/* ---------- time, errors, arguments ---------- */

static inline double bench_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static const char *bench_workload_name = "?";

static void bench_fail(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
static void bench_fail(const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  /* stdio may allocate; a corrupted heap must not hide the verdict, so the
   * message goes out with write(2) first. */
  char line[700];
  int n = snprintf(line, sizeof line, "CHECK FAILED [%s]: %s\n", bench_workload_name, msg);
  if (n > 0) {
    ssize_t w = write(2, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
    (void)w;
  }
  n = snprintf(line, sizeof line, "RESULT workload=%s check=FAIL\n", bench_workload_name);
  if (n > 0) {
    fflush(stdout);
    ssize_t w = write(1, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
    (void)w;
  }
  _exit(BENCH_EXIT_CHECK);
}

static void bench_usage(const char *usage) __attribute__((noreturn));
static void bench_usage(const char *usage) {
  fprintf(stderr, "usage: %s\n", usage);
  exit(BENCH_EXIT_USAGE);
}

/* Positional argument i as an unsigned integer (default if absent). */
static BENCH_UNUSED uint64_t bench_arg_u64(int argc, char **argv, int i, uint64_t dflt, const char *usage) {
  if (i >= argc) return dflt;
  char *end = NULL;
  errno = 0;
  unsigned long long v = strtoull(argv[i], &end, 0);
  if (errno || end == argv[i] || *end != '\0' || argv[i][0] == '-') bench_usage(usage);
  return (uint64_t)v;
}

static BENCH_UNUSED double bench_arg_double(int argc, char **argv, int i, double dflt, const char *usage) {
  if (i >= argc) return dflt;
  char *end = NULL;
  errno = 0;
  double v = strtod(argv[i], &end);
  if (errno || end == argv[i] || *end != '\0' || !(v > 0)) bench_usage(usage);
  return v;
}

static BENCH_UNUSED void *bench_xmalloc(size_t n) {
  void *p = malloc(n);
  if (!p) bench_fail("malloc(%zu) returned NULL", n);
  return p;
}

/* ---------- block contents: a tag written into every block, checked before free ----------
 * Bytes written: the first 8 bytes (or the first byte of a block shorter than
 * 9 bytes), the last byte, and one byte in every further 4 KiB page, so blocks
 * that overlap, lose their contents or get handed out twice are caught. */

static inline unsigned char bench_tag_byte(uint64_t tag, size_t off) {
  return (unsigned char)((tag >> 48) ^ (off >> 12) ^ 0x5Au);
}

static inline void block_fill(void *p, size_t size, uint64_t tag) {
  unsigned char *b = (unsigned char *)p;
  if (size >= 9)
    memcpy(b, &tag, 8);
  else
    b[0] = (unsigned char)tag;
  for (size_t off = 4096; off + 1 < size; off += 4096) b[off] = bench_tag_byte(tag, off);
  if (size > 1) b[size - 1] = bench_tag_byte(tag, 1);
}

static inline int block_ok(const void *p, size_t size, uint64_t tag) {
  const unsigned char *b = (const unsigned char *)p;
  if (size >= 9) {
    uint64_t t;
    memcpy(&t, b, 8);
    if (t != tag) return 0;
  } else if (b[0] != (unsigned char)tag) {
    return 0;
  }
  for (size_t off = 4096; off + 1 < size; off += 4096)
    if (b[off] != bench_tag_byte(tag, off)) return 0;
  if (size > 1 && b[size - 1] != bench_tag_byte(tag, 1)) return 0;
  return 1;
}

/* ---------- proof of service: hak_owns ----------
 * If the process runs on hakmem, hak_owns is visible through dlsym. Check a
 * sample of the workload's live blocks plus NFRESH fresh blocks with sizes
 * spread over [minsz, maxsz]; append " hakmem_owned=k/n" to out. Without
 * hakmem, out is left empty. */

typedef int (*bench_owns_fn)(const void *);

static BENCH_UNUSED bench_owns_fn bench_find_owns(void) {
  void *sym = dlsym(RTLD_DEFAULT, "hak_owns");
  bench_owns_fn f = NULL;
  if (sym) memcpy(&f, &sym, sizeof f);
  return f;
}

#define BENCH_OWN_FRESH 64
#define BENCH_OWN_LIVE_MAX 64

static BENCH_UNUSED void bench_owned_check(char *out, size_t outsz, void *const *live, size_t nlive, size_t minsz,
                              size_t maxsz, int nfresh) {
  out[0] = '\0';
  bench_owns_fn owns = bench_find_owns();
  if (!owns) return;
  unsigned k = 0, n = 0;
  /* live blocks: an even sample of the non-NULL entries */
  size_t step = nlive > BENCH_OWN_LIVE_MAX ? nlive / BENCH_OWN_LIVE_MAX : 1;
  for (size_t i = 0; i < nlive && n < BENCH_OWN_LIVE_MAX; i += step) {
    if (!live[i]) continue;
    n++;
    k += owns(live[i]) ? 1u : 0u;
  }
  /* fresh blocks */
  if (nfresh > BENCH_OWN_FRESH) nfresh = BENCH_OWN_FRESH;
  void *fresh[BENCH_OWN_FRESH];
  int keep = maxsz <= (64u << 10); /* keep small ones live together; big ones one at a time */
  for (int i = 0; i < nfresh; i++) {
    size_t sz = nfresh > 1 ? minsz + (maxsz - minsz) * (size_t)i / (size_t)(nfresh - 1) : minsz;
    void *p = malloc(sz);
    if (!p) bench_fail("malloc(%zu) returned NULL in ownership check", sz);
    ((unsigned char *)p)[0] = 1;
    ((unsigned char *)p)[sz - 1] = 2;
    n++;
    k += (owns(p) && owns((unsigned char *)p + sz - 1)) ? 1u : 0u;
    if (keep)
      fresh[i] = p;
    else
      free(p);
  }
  if (keep)
    for (int i = 0; i < nfresh; i++) free(fresh[i]);
  snprintf(out, outsz, " hakmem_owned=%u/%u", k, n);
}

/* ---------- the RESULT line ---------- */

static BENCH_UNUSED void bench_result(uint64_t ops, double secs, const char *owned, const char *extra) {
  if (secs <= 0) secs = 1e-9;
  printf("RESULT workload=%s ops=%" PRIu64 " seconds=%.6f ops_per_sec=%.1f check=ok%s%s%s\n",
         bench_workload_name, ops, secs, (double)ops / secs, owned ? owned : "",
         (extra && extra[0]) ? " extra=" : "", (extra && extra[0]) ? extra : "");
  fflush(stdout);
}

static inline long bench_minflt(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_minflt;
}

#endif
