/* test_jemalloc.c — jemalloc's non-standard API on hakmem (api/jemalloc.c).
 *
 * A program linked with libjemalloc and run under LD_PRELOAD=libhakmem.so
 * must reach hakmem with every call: mallocx, rallocx, xallocx, sallocx,
 * dallocx, sdallocx, nallocx with their flags (alignment, zero); mallctl,
 * mallctlnametomib and mallctlbymib with jemalloc's error codes and its
 * epoch rule (statistics change only when epoch is written); and
 * malloc_stats_print through a callback. Blocks cross freely between the
 * two APIs, and every block is hakmem's (hak_owns).
 */
#include <stdbool.h>

#include "hk_test.h"
#include "hk_proc.h"
#include "hk_spawn.h"

#define KiB ((size_t)1024)
#define MiB (KiB * 1024)
#define LG_ALIGN(la) ((int)(la))
#define ZERO 0x40
#define TCACHE_NONE (1 << 8) /* MALLOCX_TCACHE_NONE: accepted, ignored */

#if defined(HK_MODE_HAKAPI)
#define JE(name) hak_##name
#else
/* weak: the preload binary is linked with nothing of hakmem's, and a
 * missing export must fail the test, not the link */
#define JE(name) name
extern void *mallocx(size_t, int) __attribute__((weak));
extern void *rallocx(void *, size_t, int) __attribute__((weak));
extern size_t xallocx(void *, size_t, size_t, int) __attribute__((weak));
extern size_t sallocx(const void *, int) __attribute__((weak));
extern void dallocx(void *, int) __attribute__((weak));
extern void sdallocx(void *, size_t, int) __attribute__((weak));
extern size_t nallocx(size_t, int) __attribute__((weak));
extern int mallctl(const char *, void *, size_t *, void *, size_t) __attribute__((weak));
extern int mallctlnametomib(const char *, size_t *, size_t *) __attribute__((weak));
extern int mallctlbymib(const size_t *, size_t, void *, size_t *, void *, size_t)
    __attribute__((weak));
extern void malloc_stats_print(void (*)(void *, const char *), void *, const char *)
    __attribute__((weak));
#endif

static size_t all_zero(const unsigned char *p, size_t from, size_t to) {
  for (size_t i = from; i < to; i++)
    if (p[i]) return i;
  return to;
}

static const size_t sizes[] = {1, 17, 100, 1000, 5000, 40000, 70000, 300000, 1 * MiB, 3 * MiB};
#define NS (sizeof sizes / sizeof sizes[0])
static const unsigned aligns[] = {0, 4, 6, 12, 16, 21};
#define NA (sizeof aligns / sizeof aligns[0])

static void family(void) {
  for (size_t i = 0; i < NS; i++)
    for (size_t a = 0; a < NA; a++) {
      size_t n = sizes[i], align = aligns[a] ? (size_t)1 << aligns[a] : 1;
      int flags = LG_ALIGN(aligns[a]) | ZERO | (a & 1 ? TCACHE_NONE : 0);
      unsigned char *p = JE(mallocx)(n, flags);
      REQUIRE(p, "mallocx(%zu, lg_align %u) failed", n, aligns[a]);
      CHECK(hk_owns(p), "mallocx(%zu) block %p is not hakmem's", n, (void *)p);
      CHECK(((uintptr_t)p & (align - 1)) == 0, "mallocx(%zu, align %zu) = %p, misaligned", n, align,
            (void *)p);
      size_t u = JE(sallocx)(p, 0);
      CHECK(u >= n && u == malloc_usable_size(p), "sallocx %zu, usable %zu, asked %zu", u,
            malloc_usable_size(p), n);
      size_t na = JE(nallocx)(n, flags);
      CHECK(na >= n && na <= u, "nallocx(%zu, lg_align %u) = %zu, real size %zu", n, aligns[a], na,
            u);
      CHECK(all_zero(p, 0, u) == u, "MALLOCX_ZERO block of %zu: byte %zu of %zu not zero", n,
            all_zero(p, 0, u), u);
      hk_fill(p, u, 7 + i);
      /* growth: the old contents stay, what growth adds is zero */
      size_t n2 = 2 * n + 7;
      unsigned char *q = JE(rallocx)(p, n2, flags);
      REQUIRE(q, "rallocx(%zu -> %zu) failed", n, n2);
      size_t u2 = JE(sallocx)(q, 0);
      CHECK(((uintptr_t)q & (align - 1)) == 0, "rallocx kept no alignment %zu: %p", align,
            (void *)q);
      CHECK(u2 >= n2, "rallocx real size %zu < %zu", u2, n2);
      size_t kept = u < u2 ? u : u2; /* jemalloc's rule: up to the smaller real size */
      CHECK(hk_check(q, kept, 7 + i) == (size_t)-1, "rallocx(%zu -> %zu) lost byte %zu", n, n2,
            hk_check(q, kept, 7 + i));
      CHECK(all_zero(q, u, u2) == u2, "rallocx(ZERO) growth: byte %zu not zero",
            all_zero(q, u, u2));
      /* xallocx never moves and reports the real size; the block is intact */
      CHECK(JE(xallocx)(q, n2 * 4, 0, 0) == u2, "xallocx did not return the real size %zu", u2);
      CHECK(hk_check(q, kept, 7 + i) == (size_t)-1 && all_zero(q, u, u2) == u2,
            "xallocx changed the block's contents");
      /* shrinking keeps the prefix */
      size_t n3 = n / 3 + 1;
      unsigned char *r = JE(rallocx)(q, n3, LG_ALIGN(aligns[a]));
      REQUIRE(r, "rallocx shrink failed");
      CHECK(((uintptr_t)r & (align - 1)) == 0, "shrunk block misaligned");
      size_t u3 = JE(sallocx)(r, 0), kept3 = kept < u3 ? kept : u3;
      CHECK(hk_check(r, kept3, 7 + i) == (size_t)-1, "rallocx shrink lost byte %zu",
            hk_check(r, kept3, 7 + i));
      if (a & 1)
        JE(sdallocx)(r, n3, flags);
      else
        JE(dallocx)(r, 0);
    }
  /* the two APIs share one heap */
  void *p = JE(mallocx)(123, 0);
  REQUIRE(p, "mallocx failed");
  free(p);
  p = malloc(5000);
  REQUIRE(p, "malloc failed");
  JE(dallocx)(p, 0);
  p = JE(rallocx)(NULL, 64, ZERO);
  REQUIRE(p, "rallocx(NULL) failed");
  CHECK(all_zero(p, 0, 64) == 64, "rallocx(NULL, ZERO) not zero");
  p = realloc(p, 100000);
  REQUIRE(p, "realloc failed");
  JE(sdallocx)(p, 100000, 0);
  CHECK(JE(nallocx)(SIZE_MAX, 0) == 0, "nallocx(SIZE_MAX) != 0");
  CHECK(JE(nallocx)((size_t)PTRDIFF_MAX + 1, 0) == 0, "nallocx(PTRDIFF_MAX + 1) != 0");
  errno = 0;
  CHECK(JE(mallocx)((size_t)PTRDIFF_MAX + 1, 0) == NULL && errno == ENOMEM,
        "impossible mallocx: not NULL/ENOMEM");
}

static size_t read_size(const char *name) {
  size_t v = 0, len = sizeof v;
  int r = JE(mallctl)(name, &v, &len, NULL, 0);
  CHECK(r == 0 && len == sizeof v, "mallctl(%s) = %d, len %zu", name, r, len);
  return v;
}

static void epoch(void) {
  uint64_t e = 1;
  size_t len = sizeof e;
  CHECK(JE(mallctl)("epoch", &e, &len, &e, sizeof e) == 0, "epoch refresh failed");
}

static void ctl(void) {
  const char *ver = NULL;
  size_t len = sizeof ver;
  CHECK(JE(mallctl)("version", &ver, &len, NULL, 0) == 0 && ver && !strncmp(ver, "hakmem-", 7),
        "version: %s", ver ? ver : "(none)");
  epoch();
  size_t a0 = read_size("stats.allocated");
  size_t n = 64 * MiB;
  char *big = malloc(n);
  REQUIRE(big, "malloc(64 MiB) failed");
  memset(big, 1, n);
  CHECK(read_size("stats.allocated") == a0, "stats changed without an epoch write");
  epoch();
  size_t a1 = read_size("stats.allocated"), act = read_size("stats.active");
  size_t res = read_size("stats.resident"), map = read_size("stats.mapped");
  CHECK(a1 >= a0 + n, "stats.allocated %zu -> %zu after a 64 MiB block", a0, a1);
  CHECK(act >= a1 && res >= n && map >= act,
        "active %zu, resident %zu, mapped %zu vs allocated %zu", act, res, map, a1);
  (void)read_size("stats.retained");
  free(big);
  epoch();
  CHECK(read_size("stats.allocated") + n / 2 < a1, "stats.allocated did not fall after the free");

  /* jemalloc's error codes */
  size_t v = 0, short_len = 4;
  CHECK(JE(mallctl)("no.such.name", &v, &len, NULL, 0) == ENOENT, "unknown name: not ENOENT");
  CHECK(JE(mallctl)("stats.allocated", &v, &short_len, NULL, 0) == EINVAL,
        "short oldlen: not EINVAL");
  len = sizeof v;
  CHECK(JE(mallctl)("stats.allocated", NULL, NULL, &v, sizeof v) == EPERM,
        "write to a read-only name: not EPERM");
  CHECK(JE(mallctl)("thread.tcache.flush", &v, &len, NULL, 0) == EPERM,
        "read of a command: not EPERM");
  CHECK(JE(mallctl)("thread.tcache.flush", NULL, NULL, NULL, 0) == 0, "thread.tcache.flush failed");
  bool bg = false, on = true;
  size_t blen = sizeof bg;
  CHECK(JE(mallctl)("background_thread", &bg, &blen, &on, sizeof on) == 0,
        "background_thread write failed");
  CHECK(JE(mallctl)("background_thread", NULL, NULL, &on, 4) == EINVAL, "bad newlen: not EINVAL");
  CHECK(JE(mallctl)("arena.7.purge", NULL, NULL, NULL, 0) == ENOENT, "arena.7.purge: not ENOENT");
  CHECK(JE(mallctl)("stats.arenas.3.pactive", &v, &len, NULL, 0) == ENOENT,
        "stats.arenas.3 (no such arena): not ENOENT");
  unsigned narenas = 0;
  len = sizeof narenas;
  CHECK(JE(mallctl)("arenas.narenas", &narenas, &len, NULL, 0) == 0 && narenas >= 1,
        "arenas.narenas");
  CHECK(read_size("arenas.page") == (size_t)sysconf(_SC_PAGESIZE), "arenas.page");

  /* arena.<narenas>.purge (Redis's after FLUSHALL) gives memory back at once */
  enum { NB = 8192 };
  static void *blocks[NB];
  for (int i = 0; i < NB; i++) {
    blocks[i] = malloc(8 * KiB);
    REQUIRE(blocks[i], "malloc(8 KiB) failed");
    memset(blocks[i], 3, 8 * KiB);
  }
  uint64_t before = hk_rss_bytes();
  for (int i = 0; i < NB; i++)
    free(blocks[i]);
  char name[32];
  snprintf(name, sizeof name, "arena.%u.purge", narenas);
  CHECK(JE(mallctl)(name, NULL, NULL, NULL, 0) == 0, "%s failed", name);
  uint64_t after = hk_rss_bytes();
  CHECK(after + 48 * MiB <= before, "%s: RSS %" PRIu64 " -> %" PRIu64 " KiB", name, before >> 10,
        after >> 10);

  /* MIBs: one number per component; mib[1] picks the arena */
  size_t mib[4], miblen = 4;
  CHECK(JE(mallctlnametomib)("arena.0.purge", mib, &miblen) == 0 && miblen == 3,
        "nametomib(arena.0.purge)");
  mib[1] = 4096; /* MALLCTL_ARENAS_ALL */
  CHECK(JE(mallctlbymib)(mib, miblen, NULL, NULL, NULL, 0) == 0, "bymib arena.4096.purge failed");
  miblen = 4;
  CHECK(JE(mallctlnametomib)("stats.allocated", mib, &miblen) == 0 && miblen == 2,
        "nametomib(stats.allocated)");
  size_t by = 0;
  len = sizeof by;
  CHECK(JE(mallctlbymib)(mib, miblen, &by, &len, NULL, 0) == 0 &&
            by == read_size("stats.allocated"),
        "bymib(stats.allocated) %zu", by);
  /* a MIB shorter than its name is a prefix, which names no value */
  miblen = 1;
  CHECK(JE(mallctlnametomib)("stats.allocated", mib, &miblen) == 0 && miblen == 1,
        "nametomib of a partial MIB: miblen %zu", miblen);
  CHECK(JE(mallctlbymib)(mib, miblen, &by, &len, NULL, 0) == ENOENT, "bymib(partial): not ENOENT");
  CHECK(JE(mallctlnametomib)("no.such", mib, &miblen) == ENOENT, "nametomib(unknown): not ENOENT");
}

static size_t read_size_i(const char *fmt, unsigned i, unsigned j) {
  char name[96];
  snprintf(name, sizeof name, fmt, i, j);
  return read_size(name);
}

/* What Redis 7.2 and later read in zmalloc_get_allocator_info and
 * zmalloc_get_frag_smallbins, where each call is an assert: the muzzy
 * pages, the per-arena figures and, per bin, the block size, blocks per
 * slab, slabs and blocks in use. The bins are hakmem's size classes, with
 * the blocks the program holds. */
static void bins(void) {
  enum { NB = 20000 };
  static void *blocks[NB];
  for (int i = 0; i < NB; i++) {
    blocks[i] = malloc(100);
    REQUIRE(blocks[i], "malloc(100) failed");
  }
  size_t bsize = malloc_usable_size(blocks[0]);
  epoch();
  size_t muzzy = read_size_i("stats.arenas.%u.pmuzzy", 4096, 0);
  CHECK(muzzy == 0, "pmuzzy %zu", muzzy);
  size_t page = read_size("arenas.page");
  size_t pactive = read_size_i("stats.arenas.%u.pactive", 4096, 0);
  size_t small = read_size_i("stats.arenas.%u.small.allocated", 4096, 0);
  size_t large = read_size_i("stats.arenas.%u.large.allocated", 0, 0);
  size_t all = read_size("stats.allocated");
  CHECK(pactive * page == read_size("stats.active"), "pactive %zu pages, stats.active %zu", pactive,
        read_size("stats.active"));
  CHECK(small + large == all && small >= NB * bsize, "small %zu + large %zu != allocated %zu", small,
        large, all);
  unsigned nbins = 0;
  size_t len = sizeof nbins;
  REQUIRE(JE(mallctl)("arenas.nbins", &nbins, &len, NULL, 0) == 0 && nbins > 1, "arenas.nbins");
  size_t frag = 0, prev = 0, found = 0;
  for (unsigned j = 0; j < nbins; j++) {
    size_t reg_size = read_size_i("arenas.bin.%u.size", j, 0);
    CHECK(reg_size > prev, "bin %u size %zu after %zu", j, reg_size, prev);
    prev = reg_size;
    size_t curregs = read_size_i("stats.arenas.%u.bins.%u.curregs", 4096, j);
    size_t curslabs = read_size_i("stats.arenas.%u.bins.%u.curslabs", 4096, j);
    uint32_t nregs = 0;
    char name[64];
    snprintf(name, sizeof name, "arenas.bin.%u.nregs", j);
    len = sizeof nregs;
    CHECK(JE(mallctl)(name, &nregs, &len, NULL, 0) == 0 && len == 4 && nregs >= 1, "%s", name);
    CHECK((size_t)nregs * curslabs >= curregs, "bin %u: %u regs x %zu slabs < %zu in use", j, nregs,
          curslabs, curregs);
    frag += ((size_t)nregs * curslabs - curregs) * reg_size;
    if (reg_size == bsize) {
      found = 1;
      CHECK(curregs >= NB && curslabs >= NB / nregs, "bin of %zu: %zu in use, %zu slabs, %u each",
            bsize, curregs, curslabs, nregs);
    }
  }
  CHECK(found, "no bin of size %zu", bsize);
  CHECK(frag <= read_size("stats.active"), "fragmentation %zu > active", frag);
  char name[64];
  snprintf(name, sizeof name, "arenas.bin.%u.size", nbins);
  CHECK(JE(mallctl)(name, &prev, &len, NULL, 0) == ENOENT, "bin nbins: not ENOENT");
  /* the bin's number in a MIB: jemalloc's own example, mib[2] */
  size_t mib[6], miblen = 6, z = 0;
  REQUIRE(JE(mallctlnametomib)("arenas.bin.0.size", mib, &miblen) == 0 && miblen == 4, "nametomib");
  mib[2] = nbins - 1;
  len = sizeof z;
  CHECK(JE(mallctlbymib)(mib, miblen, &z, &len, NULL, 0) == 0 && z == prev, "bymib bin %u: %zu",
        nbins - 1, z);
  miblen = 6;
  REQUIRE(JE(mallctlnametomib)("stats.arenas.0.bins.0.curregs", mib, &miblen) == 0 && miblen == 6,
          "nametomib(curregs)");
  for (unsigned j = 0; j < nbins; j++) {
    mib[4] = j;
    len = sizeof z;
    CHECK(JE(mallctlbymib)(mib, miblen, &z, &len, NULL, 0) == 0 &&
              z == read_size_i("stats.arenas.%u.bins.%u.curregs", 0, j),
          "bymib curregs of bin %u", j);
  }
  for (int i = 0; i < NB; i++)
    free(blocks[i]);
}

/* Fresh memory asked zeroed stays untouched: mallocx(ZERO) of an aligned
 * Big block and rallocx(ZERO) growth out of a slab write no page. */
static void zero_untouched(void) {
  size_t n = 256 * MiB;
  uint64_t before = hk_rss_bytes();
  unsigned char *p = JE(mallocx)(n, LG_ALIGN(21) | ZERO);
  REQUIRE(p, "mallocx(256 MiB, align 2 MiB, ZERO) failed");
  CHECK(((uintptr_t)p & (2 * MiB - 1)) == 0, "misaligned %p", (void *)p);
  uint64_t mid = hk_rss_bytes();
  CHECK(mid < before + 64 * MiB, "mallocx(256 MiB, ZERO) touched it: RSS %" PRIu64 " -> %" PRIu64 " KiB",
        before >> 10, mid >> 10);
  CHECK(all_zero(p, 0, n) == n, "not zero at %zu", all_zero(p, 0, n));
  JE(dallocx)(p, 0);
  unsigned char *q = JE(mallocx)(3000, 0);
  REQUIRE(q, "mallocx(3000)");
  hk_fill(q, 3000, 5);
  before = hk_rss_bytes();
  q = JE(rallocx)(q, n, ZERO);
  REQUIRE(q, "rallocx(3000 -> 256 MiB, ZERO) failed");
  mid = hk_rss_bytes();
  CHECK(mid < before + 64 * MiB, "rallocx(ZERO) growth touched it: RSS %" PRIu64 " -> %" PRIu64 " KiB",
        before >> 10, mid >> 10);
  CHECK(hk_check(q, 3000, 5) == (size_t)-1, "rallocx lost byte %zu", hk_check(q, 3000, 5));
  CHECK(all_zero(q, 3000, n) == n, "growth not zero at %zu", all_zero(q, 3000, n));
  JE(dallocx)(q, 0);
}

/* Under HAKMEM_GUARD_SAMPLE=1 (a child of this test) nearly every block of up
 * to 64 KiB is a guarded one, whose end is its guard page: nallocx must not
 * promise more than such a block holds. A program writes the whole size
 * that nallocx said. */
static int child_guard(void) {
  size_t worst = 0;
  for (size_t n = 1; n <= 70000; n += n < 64 ? 1 : n / 7) {
    size_t na = JE(nallocx)(n, 0);
    unsigned char *p = JE(mallocx)(n, 0);
    if (!p || na < n || JE(sallocx)(p, 0) < na) {
      printf("BAD n %zu nallocx %zu real %zu\n", n, na, p ? JE(sallocx)(p, 0) : 0);
      return 1;
    }
    memset(p, 1, na);
    JE(dallocx)(p, 0);
    worst = n;
  }
  printf("GUARD OK %zu\n", worst);
  return 0;
}

static void guard(const char *self) {
  static hk_result_t res;
  char *args[] = {(char *)self, "guard", NULL};
  const char *env[] = {"HAKMEM_GUARD_SAMPLE=1", NULL};
  hk_spawn(args, env, &res);
  CHECK(res.status == 0 && strstr(res.out, "GUARD OK"),
        "with HAKMEM_GUARD_SAMPLE=1: status %d, %.200s %.300s", res.status, res.out, res.err);
}

typedef struct {
  char text[65536];
  size_t len;
  int calls;
} collect_t;

static void collect(void *arg, const char *s) {
  collect_t *c = arg;
  size_t n = strlen(s);
  if (c->len + n < sizeof c->text) {
    memcpy(c->text + c->len, s, n + 1);
    c->len += n;
  }
  c->calls++;
}

/* The callback may call hakmem back, even malloc_stats_print itself: it
 * runs after the report's locks are released. */
static collect_t g_inner;
static void collect_reentering(void *arg, const char *s) {
  collect(arg, s);
  void *p = malloc(100);
  free(p);
  epoch();
  if (!g_inner.calls) JE(malloc_stats_print)(collect, &g_inner, "J");
}

static void stats_print(void) {
  static collect_t c;
  JE(malloc_stats_print)(collect_reentering, &c, NULL);
  CHECK(g_inner.calls >= 1 && g_inner.text[0] == '{', "malloc_stats_print from its own callback");
  memset(&c, 0, sizeof c);
  JE(malloc_stats_print)(collect, &c, NULL);
  CHECK(c.calls >= 1 && strstr(c.text, "hakmem") && strstr(c.text, "statistics"),
        "text report: %.80s", c.text);
  memset(&c, 0, sizeof c);
  JE(malloc_stats_print)(collect, &c, "J");
  CHECK(c.text[0] == '{' && strstr(c.text, "\"allocated\""), "JSON report: %.80s", c.text);
}

int main(int argc, char **argv) {
  hk_init("jemalloc");
  if (argc >= 2 && !strcmp(argv[1], "guard")) return child_guard();
#if !defined(HK_MODE_HAKAPI)
  REQUIRE(mallocx && rallocx && xallocx && sallocx && dallocx && sdallocx && nallocx && mallctl &&
              mallctlnametomib && mallctlbymib && malloc_stats_print,
          "jemalloc's names are not exported");
#endif
  family();
  ctl();
  bins();
  zero_untouched();
  stats_print();
  guard(argv[0]);
  check_finish();
}
