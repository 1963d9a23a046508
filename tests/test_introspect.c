/* test_introspect.c — statistics by name (hak_stat), the JSON, malloc_info,
 * mallinfo2, mallopt and the options at run time.
 *
 * A known live pattern (10,000 blocks of 1000 B, 100 of 100 KiB, 3 of
 * 5 MiB) must move "allocated" by the sum of the blocks' usable sizes
 * (within 1 %) and the per-tier and per-class live counts by the block
 * counts; malloc_info's totals and mallinfo2 must agree with hak_stat
 * within one slab; mallopt must return 0 for what it does not honour and 1
 * for what it does, and the setting must take effect (M_MMAP_THRESHOLD
 * lowered: a 300 KiB block becomes Big); hak_option_set must refuse bad
 * values, unknown names and start-up-only options, and keep the value.
 *
 *   introspect.X              the checks
 *   introspect.X dump DIR     keeps the pattern live and writes DIR/stats.json,
 *                             DIR/info.xml and DIR/expect.json for
 *                             tests/test_introspect.py (Python's json and
 *                             xml.etree parse them)
 */
#include "hk_test.h"

#define KiB ((size_t)1024)
#define MiB ((size_t)1024 * 1024)
#define SLAB ((uint64_t)64 * 1024) /* one slot: the tolerance between two snapshots */

/* The hak_* introspection API: linked directly, or found in the preloaded
 * library; the standard names that only libhakmem.so/.a export map onto
 * the core in the HAKAPI (sanitizer) build. */
#if defined(HK_MODE_PRELOAD)
#define HAKFN(name) ((__typeof__(&name))dlsym(RTLD_DEFAULT, #name))
#else
#define HAKFN(name) (&name)
#endif
#if defined(HK_MODE_HAKAPI)
#define mallopt(p, v) hak_mallopt(p, v)
#define malloc_info(o, f) hak_malloc_info(o, f)
#endif

static int (*p_stat)(const char *, uint64_t *);
static int (*p_json)(int);
static int (*p_set)(const char *, const char *);
static int (*p_get)(const char *, char *, size_t);

static uint64_t stat_of(const char *name) {
  uint64_t v = 0;
  int r = p_stat(name, &v);
  CHECK(r == 0, "hak_stat(\"%s\") = %d: the name should exist", name, r);
  return v;
}

static void resolve(void) {
  p_stat = HAKFN(hak_stat);
  p_json = HAKFN(hak_stats_json);
  p_set = HAKFN(hak_option_set);
  p_get = HAKFN(hak_option_get);
  REQUIRE(p_stat && p_json && p_set && p_get, "the introspection API is not exported");
}

/* --- the pattern ----------------------------------------------------------- */

#define N_SMALL 10000
#define N_LARGE 100
#define N_BIG 3
static void *g_small[N_SMALL], *g_large[N_LARGE], *g_big[N_BIG];

/* Allocates the pattern; returns the sum of the usable sizes. */
static uint64_t pattern_alloc(uint64_t *requested) {
  uint64_t us = 0;
  for (int i = 0; i < N_SMALL; i++) {
    g_small[i] = malloc(1000);
    REQUIRE(g_small[i], "malloc(1000) failed");
    memset(g_small[i], 1, 1000);
    us += malloc_usable_size(g_small[i]);
  }
  for (int i = 0; i < N_LARGE; i++) {
    g_large[i] = malloc(100 * KiB);
    REQUIRE(g_large[i], "malloc(100 KiB) failed");
    memset(g_large[i], 2, 4096);
    us += malloc_usable_size(g_large[i]);
  }
  for (int i = 0; i < N_BIG; i++) {
    g_big[i] = malloc(5 * MiB);
    REQUIRE(g_big[i], "malloc(5 MiB) failed");
    memset(g_big[i], 3, 4096);
    us += malloc_usable_size(g_big[i]);
  }
  *requested = (uint64_t)N_SMALL * 1000 + N_LARGE * 100 * KiB + N_BIG * 5 * MiB;
  return us;
}

static void pattern_free(void) {
  for (int i = 0; i < N_SMALL; i++) free(g_small[i]);
  for (int i = 0; i < N_LARGE; i++) free(g_large[i]);
  for (int i = 0; i < N_BIG; i++) free(g_big[i]);
}

static uint64_t absdiff(uint64_t a, uint64_t b) { return a > b ? a - b : b - a; }

static void test_allocated(void) {
  uint64_t a0 = stat_of("allocated"), t0 = stat_of("tier.tiny.live"), l0 = stat_of("tier.large.live");
  uint64_t b0 = stat_of("tier.big.live"), c0 = stat_of("class.1024.live"), bm0 = stat_of("tier.big.mallocs");
  uint64_t req, us = pattern_alloc(&req);
  uint64_t a1 = stat_of("allocated");
  uint64_t d = a1 - a0;
  hk_note("allocated moved by %" PRIu64 " bytes; the blocks' usable sizes add up to %" PRIu64
          ", the requests to %" PRIu64, d, us, req);
  CHECK(absdiff(d, us) * 100 <= us, "allocated moved by %" PRIu64 ", not within 1 %% of the usable %" PRIu64, d, us);
  CHECK(stat_of("tier.tiny.live") - t0 == N_SMALL, "tier.tiny.live moved by %" PRIu64,
        stat_of("tier.tiny.live") - t0);
  CHECK(stat_of("tier.large.live") - l0 == N_LARGE, "tier.large.live moved by %" PRIu64,
        stat_of("tier.large.live") - l0);
  CHECK(stat_of("tier.big.live") - b0 == N_BIG, "tier.big.live moved by %" PRIu64, stat_of("tier.big.live") - b0);
  CHECK(stat_of("tier.big.mallocs") - bm0 == N_BIG, "tier.big.mallocs moved by %" PRIu64,
        stat_of("tier.big.mallocs") - bm0);
  CHECK(stat_of("class.1024.live") - c0 == N_SMALL, "class.1024.live moved by %" PRIu64,
        stat_of("class.1024.live") - c0);
  /* the figures agree with each other */
  uint64_t active = stat_of("active"), committed = stat_of("committed"), mapped = stat_of("mapped");
  CHECK(active + SLAB >= a1, "active %" PRIu64 " < allocated %" PRIu64, active, a1);
  CHECK(committed + SLAB >= active, "committed %" PRIu64 " < active %" PRIu64, committed, active);
  CHECK(mapped >= committed, "mapped %" PRIu64 " < committed %" PRIu64, mapped, committed);
  CHECK(stat_of("retained") == mapped - committed, "retained != mapped - committed");
  CHECK(stat_of("resident") > 0, "resident is 0 (/proc/self/statm unreadable?)");
  CHECK(stat_of("committed_peak") >= committed, "committed_peak below committed");
  hk_mallinfo_t mi = hk_mallinfo2();
  uint64_t big_usable = stat_of("tier.big.live_bytes");
  CHECK(absdiff(mi.uordblks + big_usable, stat_of("allocated")) <= SLAB,
        "mallinfo2 uordblks %zu + Big %" PRIu64 " != allocated %" PRIu64, mi.uordblks, big_usable,
        stat_of("allocated"));
  CHECK(mi.hblks == stat_of("big.live"), "mallinfo2 hblks %zu != big.live", mi.hblks);
  CHECK(mi.hblkhd == stat_of("big.live_bytes"), "mallinfo2 hblkhd %zu != big.live_bytes", mi.hblkhd);
  CHECK(absdiff(mi.arena + mi.hblkhd + stat_of("big.cached_bytes"), stat_of("committed")) <= SLAB,
        "mallinfo2 arena %zu + Big != committed", mi.arena);
  CHECK(mi.fsmblks == stat_of("thread_cache.bytes"), "mallinfo2 fsmblks != thread_cache.bytes");
  pattern_free();
  uint64_t a2 = stat_of("allocated");
  CHECK(a2 + us / 2 < a1, "allocated did not drop after the frees (%" PRIu64 " -> %" PRIu64 ")", a1, a2);
}

static void test_names(void) {
  uint64_t v;
  CHECK(p_stat("no.such.name", &v) == -1, "an unknown name must give -1");
  CHECK(p_stat("tier", &v) == -1, "an object is not a number: -1");
  CHECK(p_stat("class.1000.live", &v) == -1, "1000 is not a class size: -1");
  CHECK(p_stat("allocated", NULL) == -1, "no place for the value: -1");
  static const char *const names[] = {
      "allocated", "active", "resident", "mapped", "retained", "committed", "mallocs", "frees", "errors",
      "tier.mid.frees", "class.16.mallocs", "class.2031616.live", "heaps.live", "heaps.abandoned",
      "os.mmap.calls", "os.mmap.bytes", "os.munmap.bytes", "os.madvise.bytes", "os.mremap.calls",
      "decay.returns", "decay.bytes", "big.cached_bytes", "shared_pool.empty_bytes", "thread_cache.blocks"};
  for (unsigned i = 0; i < sizeof names / sizeof names[0]; i++) CHECK(p_stat(names[i], &v) == 0, "%s", names[i]);
  CHECK(stat_of("heaps.live") >= 1, "this thread's heap is live");
  CHECK(stat_of("os.mmap.calls") > 0, "no mmap counted");
}

static void *thread_body(void *arg) {
  void *p = malloc(64);
  free(p);
  return arg;
}

static void test_heaps(void) {
  pthread_t t;
  REQUIRE(pthread_create(&t, NULL, thread_body, NULL) == 0);
  pthread_join(t, NULL);
  /* its heap waits for adoption, or a later thread took it */
  CHECK(stat_of("heaps.abandoned") + stat_of("heaps.adopted") >= 1, "an exited thread's heap is not counted");
}

/* --- JSON and malloc_info ---------------------------------------------------- */

static char g_xml[65536], g_json[65536];

/* A FILE over a static buffer: fprintf into it allocates nothing. */
static size_t info_to_buffer(int options, int *ret) {
  memset(g_xml, 0, sizeof g_xml);
  FILE *f = fmemopen(g_xml, sizeof g_xml - 1, "w");
  REQUIRE(f, "fmemopen");
  static char fbuf[8192];
  setvbuf(f, fbuf, _IOFBF, sizeof fbuf);
  *ret = malloc_info(options, f);
  fclose(f);
  return strlen(g_xml);
}

static uint64_t xml_attr(const char *tag, const char *type, const char *attr, int nth) {
  /* the nth (0: first) <tag type="type" ...> element's attr="N" */
  char pat[96];
  snprintf(pat, sizeof pat, "<%s type=\"%s\"", tag, type);
  const char *p = g_xml;
  for (int i = 0; p && i <= nth; i++) {
    p = strstr(p, pat);
    if (p && i < nth) p += strlen(pat);
  }
  if (!p) return UINT64_MAX;
  char a[40];
  snprintf(a, sizeof a, " %s=\"", attr);
  const char *q = strstr(p, a);
  const char *end = strchr(p, '>');
  if (!q || (end && q > end)) return UINT64_MAX;
  return strtoull(q + strlen(a), NULL, 10);
}

static void test_info(void) {
  uint64_t req;
  pattern_alloc(&req);
  int ret;
  size_t n = info_to_buffer(0, &ret);
  CHECK(ret == 0, "malloc_info(0, f) = %d", ret);
  CHECK(n > 0 && !strncmp(g_xml, "<malloc version=\"1\">", 20), "malloc_info's first element: %.40s", g_xml);
  CHECK(strstr(g_xml, "</malloc>") != NULL, "malloc_info has no </malloc>");
  CHECK(strstr(g_xml, "<heap nr=\"0\">") && strstr(g_xml, "<sizes>"), "no <heap nr=\"0\"> with <sizes>");
  /* the totals (the second <total type="fast">, after the heap's) against hak_stat */
  uint64_t mmap_n = xml_attr("total", "mmap", "count", 0), mmap_b = xml_attr("total", "mmap", "size", 0);
  uint64_t cur = xml_attr("system", "current", "size", 1), max = xml_attr("system", "max", "size", 1);
  uint64_t aspace = xml_attr("aspace", "total", "size", 1), fast = xml_attr("total", "fast", "size", 1);
  CHECK(mmap_n == stat_of("big.live"), "<total type=mmap> count %" PRIu64 " != big.live", mmap_n);
  CHECK(mmap_b == stat_of("big.live_bytes"), "<total type=mmap> size %" PRIu64 " != big.live_bytes", mmap_b);
  CHECK(absdiff(cur, stat_of("committed")) <= SLAB, "<system current> %" PRIu64 " vs committed %" PRIu64, cur,
        stat_of("committed"));
  CHECK(max >= cur && absdiff(max, stat_of("committed_peak")) <= SLAB, "<system max> %" PRIu64, max);
  CHECK(absdiff(aspace, stat_of("mapped")) <= 2 * MiB, "<aspace total> %" PRIu64 " vs mapped", aspace);
  CHECK(absdiff(fast, stat_of("thread_cache.bytes")) <= SLAB, "<total fast> %" PRIu64, fast);
  hk_mallinfo_t mi = hk_mallinfo2();
  CHECK(absdiff(xml_attr("system", "current", "size", 0), mi.arena) <= SLAB, "heap 0's <system current> != arena");
  n = info_to_buffer(1, &ret);
  CHECK(ret == EINVAL && n == 0, "malloc_info(1, f) = %d, wrote %zu bytes: EINVAL and nothing", ret, n);
  /* the JSON: one object, its numbers those of hak_stat */
  char path[] = "/tmp/hk_introspect_XXXXXX";
  int fd = mkstemp(path);
  REQUIRE(fd >= 0, "mkstemp");
  unlink(path);
  CHECK(p_json(fd) == 0, "hak_stats_json failed");
  ssize_t len = pread(fd, g_json, sizeof g_json - 1, 0);
  close(fd);
  CHECK(len > 100 && g_json[0] == '{' && !strcmp(g_json + len - 2, "}\n"), "the JSON is not one object");
  if (len > 0) {
    g_json[len] = 0;
    const char *m = strstr(g_json, "\"mallocs\": ");
    CHECK(m != NULL, "no \"mallocs\" in the JSON");
    CHECK(strstr(g_json, "\"allocated\": ") && strstr(g_json, "\"tier\": {\"tiny\": {"), "JSON keys missing");
  }
  CHECK(p_json(-1) == -1, "hak_stats_json(-1) must fail");
  pattern_free();
}

/* --- mallopt --------------------------------------------------------------- */

static void opt_is(const char *name, const char *want) {
  char buf[64] = "";
  int r = p_get(name, buf, sizeof buf);
  CHECK(r == 0 && !strcmp(buf, want), "hak_option_get(%s) = %d, \"%s\"; expected \"%s\"", name, r, buf, want);
}

static int child_double_free(void) {
  fflush(NULL);
  pid_t pid = fork();
  if (pid == 0) {
    int fd = open("/dev/null", O_WRONLY);
    if (fd >= 0) dup2(fd, 2);
    char *p = malloc(48);
    free(p);
    free(p);
    _exit(0);
  }
  int st;
  waitpid(pid, &st, 0);
  return st;
}

static void test_mallopt(void) {
  CHECK(mallopt(12345, 1) == 0, "an unknown parameter must give 0");
  CHECK(mallopt(M_MXFAST, 64) == 0, "M_MXFAST is not honoured: 0");
  CHECK(mallopt(M_ARENA_MAX, 1) == 0, "M_ARENA_MAX is not honoured: 0");
  CHECK(mallopt(M_MMAP_MAX, 0) == 0, "M_MMAP_MAX is not honoured: 0");
  /* M_MMAP_THRESHOLD: a 300 KiB block is LargePool by default, Big below it */
  uint64_t b0 = stat_of("tier.big.mallocs"), l0 = stat_of("tier.large.mallocs");
  void *p = malloc(300 * KiB);
  CHECK(stat_of("tier.large.mallocs") == l0 + 1 && stat_of("tier.big.mallocs") == b0,
        "300 KiB is not LargePool by default");
  free(p);
  CHECK(mallopt(M_MMAP_THRESHOLD, 256 * 1024) == 1, "M_MMAP_THRESHOLD 256 KiB is honoured: 1");
  opt_is("HAKMEM_BIG_THRESHOLD", "256k");
  b0 = stat_of("tier.big.mallocs");
  l0 = stat_of("tier.large.mallocs");
  p = malloc(300 * KiB);
  CHECK(p && stat_of("tier.big.mallocs") == b0 + 1, "after M_MMAP_THRESHOLD 256 KiB, 300 KiB is not Big");
  CHECK(stat_of("tier.large.mallocs") == l0, "after M_MMAP_THRESHOLD 256 KiB, 300 KiB still went LargePool");
  void *q = malloc(200 * KiB);
  CHECK(stat_of("tier.large.mallocs") == l0 + 1, "200 KiB should stay LargePool");
  free(q);
  free(p);
  CHECK(mallopt(M_MMAP_THRESHOLD, 4 << 20) == 0, "4 MiB is beyond the LargePool: 0");
  CHECK(mallopt(M_MMAP_THRESHOLD, 4096) == 0, "4 KiB is below the MidPool: 0");
  opt_is("BIG_THRESHOLD", "256k");
  CHECK(p_set("HAKMEM_BIG_THRESHOLD", "2m") == 0, "resetting the threshold");
  b0 = stat_of("tier.big.mallocs");
  p = malloc(300 * KiB);
  CHECK(stat_of("tier.big.mallocs") == b0, "back at 2m, 300 KiB is LargePool again");
  free(p);
  /* M_TRIM_THRESHOLD: the EMPTY budget; 0 gives EMPTY slabs back now */
  CHECK(p_set("HAKMEM_EMPTY_BUDGET", "64m") == 0, "budget 64m");
  static void *v[20000];
  for (int i = 0; i < 20000; i++) v[i] = malloc(2000);
  for (int i = 0; i < 20000; i++) free(v[i]);
  hk_note("EMPTY bytes after freeing 20,000 blocks: %" PRIu64, stat_of("shared_pool.empty_bytes"));
  CHECK(mallopt(M_TRIM_THRESHOLD, 0) == 1, "M_TRIM_THRESHOLD 0 is honoured: 1");
  opt_is("HAKMEM_EMPTY_BUDGET", "0");
  CHECK(stat_of("shared_pool.empty_bytes") == 0, "EMPTY bytes %" PRIu64 " with a budget of 0",
        stat_of("shared_pool.empty_bytes"));
  CHECK(mallopt(M_TRIM_THRESHOLD, -1) == 1, "M_TRIM_THRESHOLD -1 (keep all) is honoured");
  CHECK(mallopt(M_TRIM_THRESHOLD, -2) == 0, "M_TRIM_THRESHOLD -2 means nothing: 0");
  CHECK(p_set("HAKMEM_EMPTY_BUDGET", "16m") == 0, "budget back to 16m");
  /* M_TOP_PAD: BigCache's bound; 0 keeps no freed Big mapping */
  CHECK(mallopt(M_TOP_PAD, 0) == 1, "M_TOP_PAD 0 is honoured: 1");
  opt_is("HAKMEM_BIGCACHE_BYTES", "0");
  p = malloc(5 * MiB);
  free(p);
  CHECK(stat_of("big.cached_bytes") == 0, "BigCache holds %" PRIu64 " bytes with M_TOP_PAD 0",
        stat_of("big.cached_bytes"));
  CHECK(mallopt(M_TOP_PAD, -1) == 0, "a negative M_TOP_PAD: 0");
  CHECK(mallopt(M_TOP_PAD, 256 << 20) == 1, "M_TOP_PAD 256 MiB");
  opt_is("HAKMEM_BIGCACHE_BYTES", "256m");
  p = malloc(5 * MiB);
  free(p);
  CHECK(stat_of("big.cached_bytes") > 0, "BigCache keeps a freed 5 MiB block again");
  /* M_CHECK_ACTION: 0/1 warn and go on, 2/3 abort */
  CHECK(mallopt(M_CHECK_ACTION, 1) == 1, "M_CHECK_ACTION 1");
  opt_is("HAKMEM_ON_ERROR", "warn");
  int st = child_double_free();
  CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "with M_CHECK_ACTION 1 a double free should warn and go on (status %d)", st);
  uint64_t e0 = stat_of("errors");
  char *dp = malloc(48);
  free(dp);
  { /* the report line goes to stderr: keep the log clean of it */
    int saved = dup(2), nul = open("/dev/null", O_WRONLY);
    dup2(nul, 2);
    free(dp);
    dup2(saved, 2);
    close(saved);
    close(nul);
  }
  CHECK(stat_of("errors") == e0 + 1, "the double free caught is counted in errors");
  CHECK(mallopt(M_CHECK_ACTION, 3) == 1, "M_CHECK_ACTION 3");
  opt_is("HAKMEM_ON_ERROR", "abort");
  st = child_double_free();
  CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT, "with M_CHECK_ACTION 3 a double free should abort (status %d)", st);
  CHECK(mallopt(M_CHECK_ACTION, 7) == 0, "M_CHECK_ACTION 7 is not honoured");
}

/* --- options --------------------------------------------------------------- */

static void test_options(void) {
  char buf[64];
  CHECK(p_set("HAKMEM_EMPTY_BUDGET", "64m") == 0, "set EMPTY_BUDGET 64m");
  opt_is("HAKMEM_EMPTY_BUDGET", "64m");
  CHECK(p_set("EMPTY_BUDGET", "64MiB") == EINVAL, "64MiB is not a size hakmem accepts: EINVAL");
  opt_is("empty_budget", "64m");
  CHECK(p_set("HAKMEM_EMPTY_BUDGET", NULL) == EINVAL, "no value: EINVAL");
  CHECK(p_set("HAKMEM_EMPTY_BUDGET", "16m") == 0, "set EMPTY_BUDGET 16m");
  CHECK(p_set("HAKMEM_FAST_CAP", "512") == EPERM, "FAST_CAP is start-up only: EPERM");
  CHECK(p_set("HAKMEM_MODE", "fast") == EPERM, "MODE is start-up only: EPERM");
  CHECK(p_set("HAKMEM_FASTCAP", "512") == ENOENT, "no such option: ENOENT");
  CHECK(p_get("HAKMEM_FASTCAP", buf, sizeof buf) == ENOENT, "no such option: ENOENT");
  CHECK(p_get("HAKMEM_FAST_CAP", buf, sizeof buf) == 0, "every option can be read");
  CHECK(p_get("HAKMEM_BIGCACHE_BYTES", buf, 3) == ERANGE && strlen(buf) == 2, "a short buffer: ERANGE, cut");
  CHECK(p_set("HAKMEM_BIGCACHE_MS", "lots") == EINVAL, "BIGCACHE_MS=lots: EINVAL");
  CHECK(p_set("HAKMEM_BIGCACHE_MS", "250") == 0, "BIGCACHE_MS 250");
  opt_is("HAKMEM_BIGCACHE_MS", "250");
  CHECK(p_set("HAKMEM_BIGCACHE_MS", "1000") == 0, "BIGCACHE_MS back");
  CHECK(p_set("HAKMEM_ON_ERROR", "sometimes") == EINVAL, "ON_ERROR=sometimes: EINVAL");
  opt_is("HAKMEM_ON_ERROR", "abort");
  CHECK(p_set("HAKMEM_STATS", "json") == 0 && p_set("HAKMEM_STATS", "0") == 0, "STATS can change");
  if (!getenv("HAKMEM_MODE")) opt_is("HAKMEM_MODE", "balanced");
}

/* --- dump mode: files for tests/test_introspect.py ---------------------------- */

static int dump(const char *dir) {
  char path[512];
  uint64_t a0 = stat_of("allocated"), req;
  uint64_t us = pattern_alloc(&req);
  uint64_t big_live = stat_of("tier.big.live");
  /* the three, with nothing allocated in between (the files are opened first) */
  snprintf(path, sizeof path, "%s/stats.json", dir);
  int jfd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  snprintf(path, sizeof path, "%s/info.xml", dir);
  FILE *xf = fopen(path, "w");
  REQUIRE(jfd >= 0 && xf, "cannot create the files in %s", dir);
  static char xbuf[1 << 16];
  setvbuf(xf, xbuf, _IOFBF, sizeof xbuf);
  REQUIRE(p_json(jfd) == 0, "hak_stats_json");
  REQUIRE(malloc_info(0, xf) == 0, "malloc_info");
  hk_mallinfo_t mi = hk_mallinfo2();
  close(jfd);
  fclose(xf);
  snprintf(path, sizeof path, "%s/expect.json", dir);
  FILE *e = fopen(path, "w");
  REQUIRE(e, "%s", path);
  fprintf(e,
          "{\"baseline_allocated\": %" PRIu64 ", \"usable\": %" PRIu64 ", \"requested\": %" PRIu64
          ", \"big_live\": %" PRIu64 ", \"n_small\": %d, \"n_large\": %d, \"n_big\": %d,\n"
          " \"mallinfo2\": {\"arena\": %zu, \"ordblks\": %zu, \"smblks\": %zu, \"hblks\": %zu, \"hblkhd\": %zu,"
          " \"usmblks\": %zu, \"fsmblks\": %zu, \"uordblks\": %zu, \"fordblks\": %zu, \"keepcost\": %zu}}\n",
          a0, us, req, big_live, N_SMALL, N_LARGE, N_BIG, mi.arena, mi.ordblks, mi.smblks, mi.hblks, mi.hblkhd,
          mi.usmblks, mi.fsmblks, mi.uordblks, mi.fordblks, mi.keepcost);
  fclose(e);
  pattern_free();
  return check_summary("introspect dump");
}

int main(int argc, char **argv) {
  hk_init("introspect");
  resolve();
  if (argc > 2 && !strcmp(argv[1], "dump")) return dump(argv[2]);
  test_allocated();
  test_names();
  test_heaps();
  test_info();
  test_mallopt();
  test_options();
  check_finish();
}
