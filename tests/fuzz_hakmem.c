/* fuzz_hakmem.c — coverage-guided fuzz target for the hak_* API.
 *
 * The input is decoded into a sequence of operations on a table of 64 slots:
 * every allocation function of the API, free / free_sized, usable_size,
 * malloc_trim, hak_owns, bursts of allocations (to fill, drain and empty
 * slabs), and operations handed to a second thread (remote frees, blocks
 * allocated by another heap, thread exit and heap adoption). Sizes cover every
 * tier (Tiny, MidPool, LargePool, Big) and the edges between them; live memory
 * stays below 64 MiB.
 *
 * Checked: alignment (16, or the requested one), usable size >= request and
 * stable, no two live blocks overlap, calloc memory is zero, realloc keeps the
 * prefix, hak_owns is 1 on a live block's first and last bytes and 0 on a
 * freed Big block, errors (ENOMEM / EINVAL) on impossible requests leave the
 * old block alone. With HAKMEM_ON_ERROR=warn in the environment, invalid calls
 * (interior, header, foreign pointers) must each be reported once and change
 * nothing. Every live block carries a pattern derived from its slot
 * and a per-allocation counter over its whole usable range (sparse above
 * 64 KiB: the first and last 4 KiB and one word per 16 KiB); it is verified
 * before every free and realloc, after trims and thread exits, and at the end
 * of each input, which frees everything.
 *
 * Build (see scripts/fuzz.sh):
 *   make BUILD=build-fuzz CC=clang \
 *     CFLAGS='-fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer' \
 *     build-fuzz/libhakmem_core.a
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude \
 *     tests/fuzz_hakmem.c build-fuzz/libhakmem_core.a -pthread -o build-fuzz/fuzz_hakmem
 *
 * Without libFuzzer (-DFUZZ_STANDALONE, any compiler, any core build):
 *   fuzz_hakmem FILE|DIR...        run each input (crash reproducers, a corpus)
 *   fuzz_hakmem -n N [SEED]        run N random inputs from SEED
 * Exit status 0 when every input passed; a failed check prints one
 * "fuzz_hakmem: FAIL ..." line and aborts.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hakmem.h"

#define NSLOTS 64
#define LIVE_LIMIT ((size_t)64 << 20)  /* bytes in the slot table */
#define BURST_LIMIT ((size_t)8 << 20) /* bytes in one burst */
#define BURST_MAX 256
#define BURST_ALLOCS_PER_INPUT 20000
#define FULL_LIMIT ((size_t)64 << 10) /* blocks above this get a sparse pattern */
#define SPARSE_STRIDE 16384             /* one word per stride in the middle of those */
#define LARGE_POOL_MAX ((size_t)1984 << 10) /* a bigger usable size means a Big block */
#define HUGE_MIN ((size_t)1 << 47)      /* no request this large can succeed */

#if defined(__clang__)
#define NOINSTR __attribute__((no_sanitize("address", "undefined", "coverage")))
#else
#define NOINSTR __attribute__((no_sanitize("address", "undefined")))
#endif

typedef struct {
  unsigned char *p;
  size_t req;    /* bytes asked for (the part realloc must keep) */
  size_t usable; /* hak_malloc_usable_size at allocation */
  size_t align;  /* alignment asked for (0: default) */
  uint64_t tag;  /* pattern seed: slot and allocation counter */
  const char *how;
} slot_t;

static slot_t g_slot[NSLOTS];
static size_t g_live;     /* sum of usable sizes in the table */
static uint64_t g_counter; /* allocations in this input */
static unsigned g_burst_allocs;
static const uint8_t *g_in;
static size_t g_len, g_pos;
static unsigned g_opno;
static const char *g_opname = "start";

/* --- failure ------------------------------------------------------------- */

static __attribute__((noreturn, format(printf, 1, 2))) void fail(const char *fmt, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  fprintf(stderr, "fuzz_hakmem: FAIL at op %u (%s): %s\n", g_opno, g_opname, buf);
  fflush(stderr);
  abort();
}

/* --- input --------------------------------------------------------------- */

static unsigned take8(void) { return g_pos < g_len ? g_in[g_pos++] : 0; }
static unsigned take16(void) { return take8() | take8() << 8; }
static size_t take24(void) { return (size_t)take16() | (size_t)take8() << 16; }

static const size_t g_edges[] = {
    0,       1,       7,       8,       15,      16,      17,      31,      32,      33,
    48,      63,      64,      65,      112,     127,     128,     129,     256,     511,
    512,     513,     640,     1023,    1024,    1025,    1039,    1040,    1041,    1279,
    1280,    1281,    2048,    4095,    4096,    4097,    8191,    8192,    8193,    16383,
    16384,   16385,   32768,   40960,   53248,   61440,   65535,   65536,   65537,   81919,
    81920,   81921,   98304,   131072,  131073,  262144,  524288,  1015808, 1015809, 1048576,
    1048577, 1310720, 1835008, 2031615, 2031616, 2031617, 2093056, 2097151, 2097152, 2097153,
    4190208, 4194304, 4194305, 6291456, 8384512, 8388608};
#define NEDGES (sizeof g_edges / sizeof g_edges[0])

/* A size from every tier: mostly small, some around the tier edges, a few Big. */
static size_t draw_size(void) {
  unsigned sel = take8();
  switch (sel & 15) {
  case 0: case 1: case 2: case 3: case 4: return take8() % 65;
  case 5: case 6: return 65 + take16() % (1040 - 64);
  case 7: case 8: return 1041 + take16() % (65536 - 1040);
  case 9: /* LargePool, smaller ones more often */
    return 65537 + take24() % (((2u << 20) - 65536) >> (2 * ((sel >> 4) & 3)));
  case 10: case 11: {
    size_t e = g_edges[take8() % NEDGES];
    int d = (int)(sel >> 4) % 5 - 2; /* -2..2 */
    return (d < 0 && e < (size_t)-d) ? e : e + (size_t)(ptrdiff_t)d;
  }
  case 12: return ((size_t)(take8() % 96) + 1) * 4096 + ((sel >> 4) & 1 ? 0 : sel >> 5);
  case 13: /* Big: 2..8 MiB, now and then (each costs up to 2048 page faults) */
    if ((sel >> 4) < 4) return (2u << 20) + take24() % (6u << 20);
    return 65537 + take16() * 2;
  case 14: return 1041 + take8() * 64;
  default: return take16();
  }
}

/* Keeps the table under LIVE_LIMIT: a request that would not fit becomes Tiny. */
static size_t fit(size_t n, size_t align) {
  size_t cost = n + n / 4 + (align > 65536 ? align : 0) + ((size_t)2 << 20);
  if (g_live + cost > LIVE_LIMIT) return n % 1041;
  return n;
}

static size_t draw_align(void) {
  unsigned b = take8();
  if (b == 255) return 0;
  if (b >= 240) return (size_t)(b - 240) * 24 + 3; /* not a power of two */
  unsigned k = b % 24;                            /* 1 .. 8 MiB */
  if (k > 16 && (b & 0xc0)) k -= 12;              /* Big alignments are rarer: */
  return (size_t)1 << k;                          /* every one is a fresh mapping */
}

/* --- patterns ------------------------------------------------------------ */

static inline uint64_t mix64(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}
#define PAT_K 0x9e3779b97f4a7c15ull
static inline uint8_t pat_byte(uint64_t base, size_t j) {
  return (uint8_t)((base + (uint64_t)(j >> 3) * PAT_K) >> ((j & 7) * 8));
}

NOINSTR static void fill_range(unsigned char *p, uint64_t base, size_t a, size_t b) {
  size_t j = a;
  for (; j < b && (j & 7); j++) p[j] = pat_byte(base, j);
  uint64_t w = base + (uint64_t)(j >> 3) * PAT_K;
  for (; j + 8 <= b; j += 8, w += PAT_K) *(uint64_t *)(p + j) = w;
  for (; j < b; j++) p[j] = pat_byte(base, j);
}

/* Offset of the first byte in [a, b) that does not hold the pattern, or -1. */
NOINSTR static size_t check_range(const unsigned char *p, uint64_t base, size_t a, size_t b) {
  size_t j = a;
  for (; j < b && (j & 7); j++)
    if (p[j] != pat_byte(base, j)) return j;
  uint64_t w = base + (uint64_t)(j >> 3) * PAT_K;
  for (; j + 8 <= b; j += 8, w += PAT_K)
    if (*(const uint64_t *)(p + j) != w) break;
  for (; j < b; j++)
    if (p[j] != pat_byte(base, j)) return j;
  return (size_t)-1;
}

/* The pattern of a block of len bytes: all of it up to FULL_LIMIT, else the
 * first and last 4 KiB and one word per 16 KiB between them (page faults are
 * most of the cost of an input; slabs are carved and decommitted in 64 KiB
 * slots, Big blocks remapped in 2 MiB units). Visits the ranges clipped to [0, limit); check != 0 verifies,
 * returning the first bad offset or -1. */
static size_t pattern(unsigned char *p, size_t len, size_t limit, uint64_t tag, int check) {
  uint64_t base = mix64(tag);
  size_t lim = limit < len ? limit : len;
#define RANGE(a, b)                                                                                \
  do {                                                                                             \
    size_t a_ = (a), b_ = (b) < lim ? (b) : lim;                                                   \
    if (a_ < b_) {                                                                                 \
      if (check) {                                                                                 \
        size_t bad = check_range(p, base, a_, b_);                                                 \
        if (bad != (size_t)-1) return bad;                                                         \
      } else {                                                                                     \
        fill_range(p, base, a_, b_);                                                               \
      }                                                                                            \
    }                                                                                              \
  } while (0)
  if (len <= FULL_LIMIT) {
    RANGE(0, len);
  } else {
    RANGE(0, 4096);
    for (size_t k = 4096; k + 8 <= len - 4096; k += SPARSE_STRIDE) RANGE(k, k + 8);
    RANGE(len - 4096, len);
  }
#undef RANGE
  return (size_t)-1;
}

NOINSTR static size_t first_nonzero(const unsigned char *p, size_t n) {
  size_t j = 0;
  for (; j + 8 <= n; j += 8)
    if (*(const uint64_t *)(p + j)) break;
  for (; j < n; j++)
    if (p[j]) return j;
  return (size_t)-1;
}

static void verify_slot(int s, const char *when) {
  slot_t *b = &g_slot[s];
  if (!b->p) return;
  size_t bad = pattern(b->p, b->usable, b->usable, b->tag, 1);
  if (bad != (size_t)-1)
    fail("%s: slot %d (%s) %p req %zu usable %zu: byte %zu is 0x%02x, expected 0x%02x", when, s,
         b->how, (void *)b->p, b->req, b->usable, bad, b->p[bad], pat_byte(mix64(b->tag), bad));
}

static void verify_all(const char *when) {
  for (int s = 0; s < NSLOTS; s++) verify_slot(s, when);
}

/* --- bookkeeping ------------------------------------------------------------ */

static int inside_live(const void *q) {
  for (int s = 0; s < NSLOTS; s++)
    if (g_slot[s].p && (const unsigned char *)q >= g_slot[s].p &&
        (const unsigned char *)q < g_slot[s].p + g_slot[s].usable)
      return 1;
  return 0;
}

/* Checks a block that the API just handed out. */
static size_t check_new(void *p, size_t req, size_t align, const char *how) {
  if (!p) fail("%s(%zu, align %zu) returned NULL (errno %d)", how, req, align, errno);
  uintptr_t a = (uintptr_t)p;
  if (a & 15) fail("%s(%zu) = %p: not 16-aligned", how, req, p);
  if (align > 1 && (a & (align - 1))) fail("%s(%zu, align %zu) = %p: misaligned", how, req, align, p);
  size_t us = hak_malloc_usable_size(p);
  if (us < req) fail("%s(%zu) = %p: usable size %zu < request", how, req, p, us);
  if (!hak_owns(p)) fail("%s(%zu) = %p: hak_owns(first byte) = 0", how, req, p);
  if (us && !hak_owns((char *)p + us - 1))
    fail("%s(%zu) = %p: hak_owns(last usable byte, +%zu) = 0", how, req, p, us - 1);
  for (int s = 0; s < NSLOTS; s++) {
    slot_t *o = &g_slot[s];
    if (o->p && (unsigned char *)p < o->p + o->usable && o->p < (unsigned char *)p + (us ? us : 1))
      fail("%s(%zu) = %p (usable %zu) overlaps live slot %d %p (req %zu, usable %zu, %s)", how,
           req, p, us, s, (void *)o->p, o->req, o->usable, o->how);
  }
  return us;
}

static void install(int s, void *p, size_t req, size_t align, const char *how) {
  size_t us = check_new(p, req, align, how);
  slot_t *b = &g_slot[s];
  b->p = p;
  b->req = req;
  b->usable = us;
  b->align = align;
  b->how = how;
  b->tag = ((uint64_t)s << 40) ^ ++g_counter;
  pattern(b->p, us, us, b->tag, 0);
  g_live += us;
}

static void forget(int s) {
  g_live -= g_slot[s].usable;
  memset(&g_slot[s], 0, sizeof g_slot[s]);
}

/* A freed Big block is no longer hakmem's (unless another live block took its
 * address, which the table would show). */
static void check_freed(void *p, size_t usable, const char *how) {
  if (usable > LARGE_POOL_MAX && !inside_live(p) && hak_owns(p))
    fail("%s: hak_owns(%p) = 1 after freeing a Big block (usable %zu)", how, p, usable);
}

/* --- the second thread ------------------------------------------------------ */

enum { W_MALLOC, W_CALLOC, W_REALLOC, W_MEMALIGN, W_FREE, W_FREE_ARRAY, W_ALLOC_ARRAY, W_TRIM, W_EXIT };
typedef struct {
  int op;
  void *p;
  size_t n, m;
  void **arr;
  size_t cnt;
  void *ret;
  int err;
} wcmd_t;

static wcmd_t g_cmd;
static sem_t g_go, g_done;
static pthread_t g_worker;
static int g_worker_up, g_sems;
/* FUZZ_HAKMEM_ASYNC=1: the other thread frees a burst's blocks while this one
 * goes on with the next operations (real races; inputs no longer replay
 * exactly). Off by default. */
static int g_async, g_async_busy;
static void *g_async_arr[BURST_MAX];

static void wait_async(void) {
  if (!g_async_busy) return;
  while (sem_wait(&g_done) != 0) {
  }
  g_async_busy = 0;
}

static void *worker_main(void *arg) {
  (void)arg;
  for (;;) {
    while (sem_wait(&g_go) != 0) {
    }
    wcmd_t *c = &g_cmd;
    errno = 0;
    switch (c->op) {
    case W_MALLOC: c->ret = hak_malloc(c->n); break;
    case W_CALLOC: c->ret = hak_calloc(c->n, c->m); break;
    case W_REALLOC: c->ret = hak_realloc(c->p, c->n); break;
    case W_MEMALIGN: c->ret = hak_memalign(c->m, c->n); break;
    case W_FREE: hak_free(c->p); break;
    case W_FREE_ARRAY:
      for (size_t i = 0; i < c->cnt; i++) hak_free(c->arr[i]);
      break;
    case W_ALLOC_ARRAY:
      for (size_t i = 0; i < c->cnt; i++) c->arr[i] = hak_malloc(c->n + (c->m ? (i * 37) % c->m : 0));
      break;
    case W_TRIM: hak_malloc_trim(c->n); break;
    case W_EXIT: sem_post(&g_done); return NULL;
    }
    c->err = errno;
    sem_post(&g_done);
  }
}

static void start_worker(void) {
  if (!g_sems) {
    sem_init(&g_go, 0, 0);
    sem_init(&g_done, 0, 0);
    g_sems = 1;
  }
  if (!g_worker_up) {
    if (pthread_create(&g_worker, NULL, worker_main, NULL) != 0) fail("pthread_create");
    g_worker_up = 1;
  }
}

static void wcall(wcmd_t *c) {
  wait_async();
  if (!g_worker_up && c->op == W_EXIT) return;
  start_worker();
  g_cmd = *c;
  sem_post(&g_go);
  while (sem_wait(&g_done) != 0) {
  }
  *c = g_cmd;
  if (c->op == W_EXIT) {
    pthread_join(g_worker, NULL);
    g_worker_up = 0;
  }
}

/* Hands the other thread blocks to free and does not wait for it. */
static void wfree_async(void **arr, size_t cnt) {
  wait_async();
  start_worker();
  memcpy(g_async_arr, arr, cnt * sizeof arr[0]);
  g_cmd = (wcmd_t){.op = W_FREE_ARRAY, .arr = g_async_arr, .cnt = cnt};
  g_async_busy = 1;
  sem_post(&g_go);
}

/* --- operations ------------------------------------------------------------- */

static void release(int s, int how) { /* 0 free, 1 free_sized, 2 by the other thread */
  slot_t *b = &g_slot[s];
  if (!b->p) return;
  verify_slot(s, "before free");
  void *p = b->p;
  size_t us = b->usable, req = b->req;
  forget(s);
  if (how == 1) {
    hak_free_sized(p, req);
  } else if (how == 2) {
    wcmd_t c = {.op = W_FREE, .p = p};
    wcall(&c);
  } else {
    hak_free(p);
  }
  check_freed(p, us, how == 2 ? "remote free" : "free");
}

static void op_realloc(int s, size_t n, int remote, int array) {
  slot_t *b = &g_slot[s];
  verify_slot(s, "before realloc");
  slot_t old = *b;
  size_t cnt = 1, esz = n;
  if (array) { /* reallocarray: split n into count * size */
    cnt = (take8() % 8) + 1;
    esz = n / cnt;
    n = cnt * esz;
  }
  void *q;
  errno = 0;
  if (remote) {
    wcmd_t c = {.op = W_REALLOC, .p = old.p, .n = n};
    wcall(&c);
    q = c.ret;
    errno = c.err;
  } else {
    q = array ? hak_reallocarray(old.p, cnt, esz) : hak_realloc(old.p, n);
  }
  const char *how = remote ? "remote realloc" : array ? "reallocarray" : "realloc";
  if (old.p && n == 0) { /* frees, returns NULL (glibc) */
    if (q) fail("%s(%p, 0) returned %p, expected NULL", how, (void *)old.p, q);
    forget(s);
    check_freed(old.p, old.usable, how);
    return;
  }
  if (!q) fail("%s(%p, %zu) returned NULL (errno %d)", how, (void *)old.p, n, errno);
  if (old.p) {
    size_t keep = old.req < n ? old.req : n;
    size_t bad = pattern(q, old.usable, keep, old.tag, 1);
    if (bad != (size_t)-1)
      fail("%s(%p req %zu usable %zu, %zu) = %p: byte %zu not kept (0x%02x, expected 0x%02x)", how,
           (void *)old.p, old.req, old.usable, n, q, bad, ((unsigned char *)q)[bad],
           pat_byte(mix64(old.tag), bad));
    forget(s);
  }
  install(s, q, n, 0, how);
  if (old.p && q != old.p) check_freed(old.p, old.usable, how);
}

static void op_aligned(int s, int kind) {
  size_t align = draw_align();
  size_t n = draw_size();
  if (align > ((size_t)8 << 20)) align = (size_t)8 << 20;
  n = fit(n, align);
  if (g_live + align + n + ((size_t)4 << 20) > LIVE_LIMIT && align > 65536) align = 64;
  release(s, 0);
  int pow2 = align && !(align & (align - 1));
  void *p = NULL;
  errno = 0;
  switch (kind) {
  case 0: { /* posix_memalign */
    void *sentinel = (void *)(uintptr_t)0x5a5a5a5a;
    p = sentinel;
    int rc = hak_posix_memalign(&p, align, n);
    if (!pow2 || align < sizeof(void *)) {
      if (rc != EINVAL) fail("posix_memalign(align %zu, %zu) = %d, expected EINVAL", align, n, rc);
      if (p != sentinel) fail("posix_memalign(align %zu) failed but wrote *out", align);
      return;
    }
    if (rc) fail("posix_memalign(align %zu, %zu) = %d", align, n, rc);
    install(s, p, n, align, "posix_memalign");
    return;
  }
  case 1: /* aligned_alloc */
    p = hak_aligned_alloc(align, n);
    if (!pow2) {
      if (p || errno != EINVAL)
        fail("aligned_alloc(align %zu, %zu) = %p errno %d, expected NULL/EINVAL", align, n, p, errno);
      return;
    }
    install(s, p, n, align, "aligned_alloc");
    return;
  case 2: { /* memalign rounds the alignment up to a power of two */
    p = hak_memalign(align, n);
    size_t a = 1;
    while (a < align) a <<= 1;
    install(s, p, n, a, "memalign");
    return;
  }
  case 3: /* the same from the other thread */
  default: {
    size_t a = 1;
    while (a < align) a <<= 1;
    wcmd_t c = {.op = W_MEMALIGN, .n = n, .m = a};
    wcall(&c);
    errno = c.err;
    install(s, c.ret, n, a, "remote memalign");
    return;
  }
  }
}

static void op_calloc(int s, int remote) {
  size_t n = fit(draw_size(), 0);
  size_t cnt = (take8() % 16) + 1, esz = n / cnt;
  n = cnt * esz;
  release(s, 0);
  void *p;
  errno = 0;
  if (remote) {
    wcmd_t c = {.op = W_CALLOC, .n = cnt, .m = esz};
    wcall(&c);
    p = c.ret;
    errno = c.err;
  } else {
    p = hak_calloc(cnt, esz);
  }
  if (!p) fail("calloc(%zu, %zu) returned NULL (errno %d)", cnt, esz, errno);
  size_t bad = first_nonzero(p, n);
  if (bad != (size_t)-1)
    fail("%scalloc(%zu, %zu) = %p (usable %zu): byte %zu is 0x%02x, not zero", remote ? "remote " : "",
         cnt, esz, p, hak_malloc_usable_size(p), bad, ((unsigned char *)p)[bad]);
  install(s, p, n, 0, remote ? "remote calloc" : "calloc");
}

/* Requests that cannot succeed: NULL and ENOMEM (or EINVAL), old block intact. */
static void op_huge(int s) {
  static const size_t huge[] = {SIZE_MAX,           SIZE_MAX - 15,         (size_t)PTRDIFF_MAX,
                                (size_t)PTRDIFF_MAX + 1, HUGE_MIN,         HUGE_MIN + 4096,
                                (size_t)1 << 48,    (size_t)1 << 62};
  unsigned v = take8();
  size_t n = huge[(v >> 3) % (sizeof huge / sizeof huge[0])];
  void *p = (void *)1;
  int rc = 0;
  errno = 0;
  switch (v & 7) {
  case 0: p = hak_malloc(n); break;
  case 1: p = hak_calloc(n, 1); break;
  case 2: p = hak_calloc(n / 2 + 1, 2 + (v >> 7)); break; /* overflows or too big */
  case 3: {
    slot_t *b = &g_slot[s];
    if (!b->p) return;
    p = hak_realloc(b->p, n);
    if (p) fail("realloc(%p, %zu) = %p, expected NULL", (void *)b->p, n, p);
    if (errno != ENOMEM) fail("realloc(%p, %zu): errno %d, expected ENOMEM", (void *)b->p, n, errno);
    verify_slot(s, "after a failed realloc");
    return;
  }
  case 4: {
    slot_t *b = &g_slot[s];
    if (!b->p) return;
    p = hak_reallocarray(b->p, n / 3 + 1, 4);
    if (p) fail("reallocarray(%p, %zu, 4) = %p, expected NULL", (void *)b->p, n / 3 + 1, p);
    if (errno != ENOMEM) fail("reallocarray: errno %d, expected ENOMEM", errno);
    verify_slot(s, "after a failed reallocarray");
    return;
  }
  case 5: {
    void *out = (void *)2;
    rc = hak_posix_memalign(&out, (v & 64) ? 64 : (size_t)1 << 62, (v & 64) ? n : 16);
    if (rc != ENOMEM) fail("posix_memalign(huge) = %d, expected ENOMEM", rc);
    if (out != (void *)2) fail("posix_memalign(huge) failed but wrote *out");
    return;
  }
  case 6: p = (v & 64) ? hak_aligned_alloc(4096, n) : hak_memalign((size_t)1 << 62, 16); break;
  default: p = (v & 64) ? hak_pvalloc(n) : hak_valloc(n); break;
  }
  if (p) fail("variant %u, size %zu: returned %p, expected NULL", v & 7, n, p);
  if (errno != ENOMEM && errno != EINVAL) fail("variant %u, size %zu: errno %d", v & 7, n, errno);
}

static int cmp_ptr(const void *a, const void *b) {
  uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
  return x < y ? -1 : x > y;
}

static void burst_stamp(void *p, size_t us, uint64_t t) {
  *(uint64_t *)p = t;
  *(uint64_t *)((char *)p + us - 8) = ~t;
}
static void burst_check(void *p, uint64_t t) {
  size_t us = hak_malloc_usable_size(p);
  if (us < 16) fail("burst block %p: usable size %zu", p, us);
  if (*(uint64_t *)p != t || *(uint64_t *)((char *)p + us - 8) != ~t)
    fail("burst block %p (usable %zu): stamp lost", p, us);
}

/* k blocks of one size (or a small spread of sizes), then freed in some order,
 * partly or wholly by the other thread, or the other way round. */
static void op_burst(int remote) {
  void *arr[BURST_MAX], *other[BURST_MAX];
  size_t n = draw_size();
  if (n > ((size_t)2 << 20)) n %= (size_t)2 << 20;
  unsigned k = take8() + 1, mode = take8();
  size_t spread = (mode & 8) ? (take8() % 128) * 16 + 16 : 0;
  size_t per = n + spread + n / 4 + 64;
  size_t room = LIVE_LIMIT > g_live ? LIVE_LIMIT - g_live : 0;
  if (room > BURST_LIMIT) room = BURST_LIMIT;
  if ((size_t)k * per > room) k = (unsigned)(room / per);
  if (k > BURST_ALLOCS_PER_INPUT - g_burst_allocs) k = BURST_ALLOCS_PER_INPUT - g_burst_allocs;
  if (k == 0) return;
  g_burst_allocs += k;
  int worker_allocs = remote && (mode & 16);
  if (worker_allocs) {
    wcmd_t c = {.op = W_ALLOC_ARRAY, .arr = arr, .cnt = k, .n = n, .m = spread};
    wcall(&c);
  } else {
    for (unsigned i = 0; i < k; i++) arr[i] = hak_malloc(n + (spread ? (i * 37) % spread : 0));
  }
  for (unsigned i = 0; i < k; i++) {
    size_t want = n + (spread ? (i * 37) % spread : 0);
    size_t us = check_new(arr[i], want, 0, worker_allocs ? "remote burst malloc" : "burst malloc");
    burst_stamp(arr[i], us, ((uint64_t)i << 32) ^ (uintptr_t)arr[i]);
  }
  /* no two burst blocks overlap */
  memcpy(other, arr, k * sizeof arr[0]);
  qsort(other, k, sizeof other[0], cmp_ptr);
  for (unsigned i = 1; i < k; i++) {
    size_t us = hak_malloc_usable_size(other[i - 1]);
    if ((char *)other[i - 1] + us > (char *)other[i])
      fail("burst blocks %p (usable %zu) and %p overlap", other[i - 1], us, other[i]);
  }
  for (unsigned i = 0; i < k; i++) burst_check(arr[i], ((uint64_t)i << 32) ^ (uintptr_t)arr[i]);
  /* free order */
  unsigned order[BURST_MAX];
  switch (mode & 3) {
  case 0: for (unsigned i = 0; i < k; i++) order[i] = i; break;
  case 1: for (unsigned i = 0; i < k; i++) order[i] = k - 1 - i; break;
  case 2: {
    unsigned j = 0;
    for (unsigned i = 0; i < k; i += 2) order[j++] = i;
    for (unsigned i = 1; i < k; i += 2) order[j++] = i;
    break;
  }
  default: {
    for (unsigned i = 0; i < k; i++) order[i] = i;
    uint32_t x = take8() * 2654435761u + 1;
    for (unsigned i = k - 1; i > 0; i--) {
      x = x * 1103515245u + 12345u;
      unsigned j = (x >> 16) % (i + 1), t = order[i];
      order[i] = order[j];
      order[j] = t;
    }
  }
  }
  /* who frees what: all here, all there, or split */
  unsigned split = !remote ? k : (mode & 32) ? 0 : (mode & 64) ? k / 2 : k;
  if (remote && !(mode & 32) && !(mode & 64) && !worker_allocs) split = 0; /* worker frees all */
  unsigned nthere = 0;
  for (unsigned i = 0; i < k; i++) {
    void *p = arr[order[i]];
    if (i < split) hak_free(p);
    else other[nthere++] = p;
  }
  if (nthere && g_async) {
    wfree_async(other, nthere);
  } else if (nthere) {
    wcmd_t c = {.op = W_FREE_ARRAY, .arr = other, .cnt = nthere};
    wcall(&c);
  }
}

static void op_owns(void) {
  int local = 0;
  if (hak_owns(NULL)) fail("hak_owns(NULL) = 1");
  if (hak_owns(&local)) fail("hak_owns(stack) = 1");
  if (hak_owns(g_slot)) fail("hak_owns(.bss) = 1");
  void *m = malloc(48); /* libc's (ASan's in the fuzz build) */
  if (m && hak_owns(m)) fail("hak_owns(libc malloc block %p) = 1", m);
  free(m);
  for (int s = 0; s < NSLOTS; s++) {
    slot_t *b = &g_slot[s];
    if (!b->p) continue;
    if (!hak_owns(b->p)) fail("hak_owns(slot %d %p) = 0", s, (void *)b->p);
    if (b->req && !hak_owns(b->p + b->req - 1))
      fail("hak_owns(slot %d %p + req-1 %zu) = 0", s, (void *)b->p, b->req - 1);
    if (!hak_owns(b->p + b->usable / 2)) fail("hak_owns(slot %d middle) = 0", s);
    if (!hak_owns(b->p + b->usable - 1))
      fail("hak_owns(slot %d %p + usable-1 %zu) = 0", s, (void *)b->p, b->usable - 1);
  }
}

/* Invalid calls hakmem promises to recognise: interior pointers, pointers into
 * its headers, foreign pointers. Only with HAKMEM_ON_ERROR=warn (otherwise the
 * report aborts): each must count one invalid free and leave the block alone.
 * The report lines go to /dev/null. */
static int g_warn_mode, g_devnull = -1, g_stderr = -1;
static uint64_t g_invalid_expected; /* invalid calls made so far */

static void op_bad(int s) {
  unsigned v = take8();
  slot_t *b = &g_slot[s];
  if (!g_warn_mode) return;
  if (g_devnull < 0) {
    g_devnull = open("/dev/null", O_WRONLY);
    g_stderr = dup(2);
    if (g_devnull < 0 || g_stderr < 0) fail("cannot open /dev/null");
  }
  int local = 0;
  void *bad, *ret = NULL;
  const char *what;
  unsigned kind = v % 6;
  if (!b->p && kind < 4) kind = 4;
  switch (kind) {
  case 0: case 1: case 2: bad = b->p + 8; what = "interior pointer"; break;
  case 3: bad = (void *)(((uintptr_t)b->p & ~(uintptr_t)((2u << 20) - 1)) + 64); what = "header"; break;
  case 4: bad = (v & 8) ? (void *)&local : (void *)&g_slot[(v >> 4) % NSLOTS]; what = "foreign"; break;
  default: bad = (void *)(uintptr_t)(((v >> 3) + 1) << 21); what = "unmapped"; break;
  }
  if (kind >= 4) kind = (v >> 6) % 3; /* free, realloc or usable_size */
  hak_stats_t st0, st1;
  hak_stats_get(&st0);
  fflush(stderr);
  dup2(g_devnull, 2);
  size_t us = 1;
  errno = 0;
  switch (kind) {
  case 0: case 3: hak_free(bad); break;
  case 1: ret = hak_realloc(bad, 100); break;
  default: us = hak_malloc_usable_size(bad); break;
  }
  int err = errno;
  dup2(g_stderr, 2);
  hak_stats_get(&st1);
  g_invalid_expected++;
  if (st1.invalid_frees != st0.invalid_frees + 1)
    fail("%s %p (slot %d %p, usable %zu), call %u: %llu invalid calls counted, expected 1", what, bad,
         s, (void *)b->p, b->usable, kind,
         (unsigned long long)(st1.invalid_frees - st0.invalid_frees));
  if (kind == 1 && (ret || err != EINVAL))
    fail("realloc(%s %p) = %p errno %d, expected NULL/EINVAL", what, bad, ret, err);
  if (kind == 2 && us != 0) fail("malloc_usable_size(%s %p) = %zu, expected 0", what, bad, us);
  if (b->p) verify_slot(s, "after an invalid call");
}

static void op_stats(void) {
  wait_async();
  hak_stats_t st;
  hak_stats_get(&st);
  struct hak_mallinfo mi = hak_mallinfo2();
  size_t nbig = 0, bigbytes = 0;
  for (int s = 0; s < NSLOTS; s++)
    if (g_slot[s].p && g_slot[s].usable > LARGE_POOL_MAX) {
      nbig++;
      bigbytes += g_slot[s].usable;
    }
  if (mi.hblks < nbig) fail("mallinfo2.hblks %zu < %zu live Big blocks", mi.hblks, nbig);
  if (mi.hblkhd < bigbytes) fail("mallinfo2.hblkhd %zu < %zu bytes in live Big blocks", mi.hblkhd, bigbytes);
  uint64_t out = 0, live = 0;
  for (int t = 0; t < HAK_STAT_TIERS; t++) out += st.mallocs[t] - st.frees[t];
  for (int i = 0; i < NSLOTS; i++) live += g_slot[i].p != NULL;
  if (out != live)
    fail("stats: mallocs - frees = %lld over all tiers, %llu blocks live", (long long)out,
         (unsigned long long)live);
  if (st.committed_bytes > st.peak_committed_bytes)
    fail("committed %llu > peak %llu", (unsigned long long)st.committed_bytes,
         (unsigned long long)st.peak_committed_bytes);
}

enum {
  OP_MALLOC, OP_CALLOC, OP_REALLOC, OP_REALLOCARRAY, OP_POSIX_MEMALIGN, OP_ALIGNED_ALLOC,
  OP_MEMALIGN, OP_VALLOC, OP_PVALLOC, OP_FREE, OP_FREE_SIZED, OP_USABLE, OP_TRIM, OP_OWNS,
  OP_VERIFY, OP_STATS, OP_HUGE, OP_BURST, OP_SWAP, OP_FREE_SOME, OP_R_FREE, OP_R_ALLOC,
  OP_R_REALLOC, OP_R_BURST, OP_R_RESTART, OP_R_TRIM, OP_R_CALLOC, OP_R_MEMALIGN, OP_BAD, NOPS
};
static const char *const g_opnames[NOPS] = {
    "malloc", "calloc", "realloc", "reallocarray", "posix_memalign", "aligned_alloc", "memalign",
    "valloc", "pvalloc", "free", "free_sized", "usable_size", "malloc_trim", "owns", "verify",
    "stats", "huge", "burst", "swap", "free_some", "remote_free", "remote_malloc",
    "remote_realloc", "remote_burst", "remote_restart", "remote_trim", "remote_calloc",
    "remote_memalign", "invalid_call"};
static const uint8_t g_weight[NOPS] = {
    10, 3, 7, 2, 2, 2, 2, 1, 1, 9, 3, 2, 1, 1, 1, 1, 2, 4, 1, 2, 4, 3, 2, 3, 1, 1, 1, 1, 2};
static uint8_t g_optab[256];
static unsigned g_nop;

static void init_optab(void) {
  if (g_nop) return;
  for (unsigned o = 0; o < NOPS; o++)
    for (unsigned w = 0; w < g_weight[o]; w++) g_optab[g_nop++] = (uint8_t)o;
}

static void run_op(unsigned op) {
  int s = (int)(take8() % NSLOTS);
  switch (op) {
  case OP_MALLOC: {
    size_t n = fit(draw_size(), 0);
    release(s, 0);
    install(s, hak_malloc(n), n, 0, "malloc");
    break;
  }
  case OP_CALLOC: op_calloc(s, 0); break;
  case OP_R_CALLOC: op_calloc(s, 1); break;
  case OP_REALLOC:
  case OP_REALLOCARRAY:
  case OP_R_REALLOC: {
    size_t n = draw_size();
    size_t cur = g_slot[s].usable;
    g_live -= cur; /* the old block's bytes are replaced, not added to */
    n = fit(n, 0);
    g_live += cur;
    op_realloc(s, n, op == OP_R_REALLOC, op == OP_REALLOCARRAY);
    break;
  }
  case OP_POSIX_MEMALIGN: op_aligned(s, 0); break;
  case OP_ALIGNED_ALLOC: op_aligned(s, 1); break;
  case OP_MEMALIGN: op_aligned(s, 2); break;
  case OP_R_MEMALIGN: op_aligned(s, 3); break;
  case OP_VALLOC:
  case OP_PVALLOC: {
    size_t n = fit(draw_size(), 4096);
    release(s, 0);
    if (op == OP_VALLOC) {
      install(s, hak_valloc(n), n, 4096, "valloc");
    } else {
      size_t r = n ? (n + 4095) & ~(size_t)4095 : 4096;
      void *p = hak_pvalloc(n);
      install(s, p, r, 4096, "pvalloc");
    }
    break;
  }
  case OP_FREE: release(s, 0); break;
  case OP_FREE_SIZED: release(s, 1); break;
  case OP_R_FREE: release(s, 2); break;
  case OP_USABLE: {
    if (hak_malloc_usable_size(NULL) != 0) fail("malloc_usable_size(NULL) != 0");
    slot_t *b = &g_slot[s];
    if (!b->p) break;
    size_t us = hak_malloc_usable_size(b->p);
    if (us != b->usable)
      fail("slot %d %p: usable size changed from %zu to %zu", s, (void *)b->p, b->usable, us);
    break;
  }
  case OP_TRIM:
  case OP_R_TRIM: {
    static const size_t pads[] = {0, 0, 4096, 1u << 20, 64u << 20};
    size_t pad = pads[take8() % 5];
    if (op == OP_TRIM) {
      hak_malloc_trim(pad);
    } else {
      wcmd_t c = {.op = W_TRIM, .n = pad};
      wcall(&c);
    }
    verify_all("after malloc_trim");
    break;
  }
  case OP_OWNS: op_owns(); break;
  case OP_VERIFY:
#ifdef FUZZ_SELFTEST /* proves that a corrupted block is caught and reported */
    if (g_slot[s].p) g_slot[s].p[g_slot[s].usable - 1] ^= 1;
#endif
    verify_all("verify");
    break;
  case OP_STATS: op_stats(); break;
  case OP_HUGE: op_huge(s); break;
  case OP_BAD: op_bad(s); break;
  case OP_BURST: op_burst(0); break;
  case OP_R_BURST: op_burst(1); break;
  case OP_SWAP: {
    int t = (int)(take8() % NSLOTS);
    slot_t tmp = g_slot[s];
    g_slot[s] = g_slot[t];
    g_slot[t] = tmp; /* tags stay with their blocks */
    break;
  }
  case OP_FREE_SOME: {
    unsigned m = take8() % 8 + 2, how = take8() % 3;
    for (int i = s % (int)m; i < NSLOTS; i += (int)m) release(i, (int)how);
    break;
  }
  case OP_R_ALLOC: {
    size_t n = fit(draw_size(), 0);
    release(s, 0);
    wcmd_t c = {.op = W_MALLOC, .n = n};
    wcall(&c);
    errno = c.err;
    install(s, c.ret, n, 0, "remote malloc");
    break;
  }
  case OP_R_RESTART: {
    wcmd_t c = {.op = W_EXIT};
    wcall(&c);
    verify_all("after a thread exit");
    break;
  }
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  init_optab();
  g_in = data;
  g_len = size;
  g_pos = 0;
  g_counter = 0;
  g_burst_allocs = 0;
  g_opno = 0;
  while (g_pos < g_len) {
    unsigned op = g_optab[take8() % g_nop];
    g_opname = g_opnames[op];
    run_op(op);
    g_opno++;
  }
  g_opname = "end of input";
  wait_async();
  verify_all("end of input");
  for (int s = 0; s < NSLOTS; s++) release(s, 0);
  if (g_live != 0) fail("live byte count %zu after freeing everything", g_live);
  /* nothing is live: every tier's counts balance, and no report was made
   * other than for the invalid calls (HAKMEM_ON_ERROR=warn goes on after one) */
  hak_stats_t st;
  hak_stats_get(&st);
  for (int t = 0; t < HAK_STAT_TIERS; t++)
    if (st.mallocs[t] != st.frees[t])
      fail("stats: tier %d: %llu mallocs, %llu frees, nothing live", t,
           (unsigned long long)st.mallocs[t], (unsigned long long)st.frees[t]);
  if (st.invalid_frees != g_invalid_expected)
    fail("hakmem reported %llu invalid calls or corruptions, %llu were made",
         (unsigned long long)st.invalid_frees, (unsigned long long)g_invalid_expected);
  return 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  init_optab();
  const char *oe = getenv("HAKMEM_ON_ERROR");
  g_warn_mode = oe && (!strcmp(oe, "warn") || !strcmp(oe, "continue"));
  const char *as = getenv("FUZZ_HAKMEM_ASYNC");
  g_async = as && *as && *as != '0';
  return 0;
}

#ifdef FUZZ_STANDALONE
static unsigned long g_inputs;

static int run_file(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    perror(path);
    return 1;
  }
  static uint8_t buf[1 << 20];
  size_t n = fread(buf, 1, sizeof buf, f);
  fclose(f);
  uint8_t *copy = malloc(n ? n : 1); /* exact size, as libFuzzer passes it */
  memcpy(copy, buf, n);
  LLVMFuzzerTestOneInput(copy, n);
  free(copy);
  g_inputs++;
  return 0;
}

static int run_path(const char *path) {
  struct stat st;
  if (stat(path, &st) != 0) {
    perror(path);
    return 1;
  }
  if (!S_ISDIR(st.st_mode)) return run_file(path);
  DIR *d = opendir(path);
  if (!d) {
    perror(path);
    return 1;
  }
  int rc = 0;
  struct dirent *e;
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.') continue;
    char sub[4096];
    snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
    rc |= run_path(sub);
  }
  closedir(d);
  return rc;
}

int main(int argc, char **argv) {
  LLVMFuzzerInitialize(&argc, &argv);
  if (argc >= 3 && !strcmp(argv[1], "-n")) {
    unsigned long count = strtoul(argv[2], NULL, 0);
    uint64_t x = argc >= 4 ? strtoull(argv[3], NULL, 0) : 1;
    static uint8_t buf[4096];
    for (unsigned long i = 0; i < count; i++) {
      uint64_t seed = mix64(x + i);
      size_t len = 1 + seed % sizeof buf;
      uint64_t r = seed;
      for (size_t j = 0; j < len; j++) {
        r = r * 6364136223846793005ull + 1442695040888963407ull;
        buf[j] = (uint8_t)(r >> 56);
      }
      LLVMFuzzerTestOneInput(buf, len);
      g_inputs++;
    }
  } else if (argc >= 2) {
    int rc = 0;
    for (int i = 1; i < argc; i++) rc |= run_path(argv[i]);
    if (rc) return 2;
  } else {
    fprintf(stderr, "usage: %s FILE|DIR... | -n COUNT [SEED]\n", argv[0]);
    return 2;
  }
  if (g_worker_up) {
    wcmd_t c = {.op = W_EXIT};
    wcall(&c);
  }
  printf("fuzz_hakmem: %lu inputs passed\n", g_inputs);
  return 0;
}
#endif
