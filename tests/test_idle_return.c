/* test_idle_return.c — memory goes back to the OS while the program makes no
 * allocator call, checked by RSS.
 *
 * A heap of about 1 GiB (HK_TEST_SCALE scales it), every byte touched:
 * tiny blocks (16..1040 B), mid (1..64 KiB), large (64 KiB..1 MiB) and Big
 * blocks of 2..8 MiB (few enough that BigCache keeps them all). Everything
 * is freed, then the program makes no allocator call at all: it polls
 * /proc/self/statm (open/read into a stack buffer) every POLL_MS for
 * POLL_S seconds and keeps the samples in a static table, printed
 * afterwards. The background thread (HAKMEM_BACKGROUND=1, the default) must
 * bring RSS down to at most 10 % of its peak within DEADLINE_S: EMPTY slabs
 * go back once they stayed EMPTY a whole decay tick (HAKMEM_DECAY_MS/2,
 * 500 ms), BigCache after HAKMEM_BIGCACHE_MS (1000 ms), so 2 s is twice the
 * longer bound.
 *
 * Then the program runs itself again with HAKMEM_BACKGROUND=0 (the same
 * heap, the same poll): without that thread nothing can return memory while
 * the program makes no call, so RSS stays where the frees left it (what is
 * checked: it drops by no more than NOBG_SLACK_PCT of the peak during the
 * poll), and malloc_trim(0) still releases at once (at most 10 % of the
 * peak right after it).
 *
 * usage: test_idle_return [--nobg]   (--nobg: the second run only, with
 *        HAKMEM_BACKGROUND=0 set by the caller)
 */
#include "hk_proc.h"

#define POLL_MS 50
#define POLL_S 3.0
#define DEADLINE_S 2.0
#define NOBG_POLL_S 1.5
#define NOBG_SLACK_PCT 5

typedef struct {
  char *p;
  size_t n;
} blk_t;

static blk_t *blk;
static size_t nblk, maxblk;

typedef struct {
  double t;
  uint64_t rss;
} sample_t;
static sample_t samples[(int)(POLL_S * 1000 / POLL_MS) + 8];
static int nsamples;

static void add_tier(hk_rng_t *r, size_t lo, size_t hi, uint64_t bytes) {
  uint64_t got = 0;
  while (got < bytes) {
    size_t n = hk_logsize(r, lo, hi);
    REQUIRE(nblk < maxblk, "block table full");
    char *p = malloc(n);
    REQUIRE(p, "malloc(%zu) failed", n);
    hk_fill_sparse(p, n, (uintptr_t)p); /* every page of it: whole below 64 KiB, a stripe per page above */
    blk[nblk].p = p;
    blk[nblk].n = n;
    nblk++;
    got += n;
  }
}

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

/* no allocator call from here until it returns */
static void poll_rss(double t0, double secs) {
  nsamples = 0;
  for (;;) {
    double t = hk_now() - t0;
    samples[nsamples].t = t;
    samples[nsamples].rss = hk_rss_bytes();
    nsamples++;
    if (t >= secs || nsamples == (int)(sizeof samples / sizeof *samples)) break;
    sleep_ms(POLL_MS);
  }
}

static void print_timeline(const char *what) {
  char line[4096];
  int o = snprintf(line, sizeof line, "%s:", what);
  for (int i = 0; i < nsamples && o < (int)sizeof line - 40; i++)
    if (i % 4 == 0 || i == nsamples - 1)
      o += snprintf(line + o, sizeof line - (size_t)o, " %.2fs=%.0fM", samples[i].t, HK_MIB(samples[i].rss));
  hk_note("%s", line);
}

/* builds the heap, returns its peak RSS */
static uint64_t build(void) {
  hk_rng_t r = {4242};
  uint64_t mib = 1u << 20;
  add_tier(&r, 16, 1040, (uint64_t)hk_scale(200) * mib);
  add_tier(&r, 1041, 64 * 1024, (uint64_t)hk_scale(300) * mib);
  add_tier(&r, 64 * 1024 + 1, 1024 * 1024, (uint64_t)hk_scale(300) * mib);
  add_tier(&r, 2 * mib + 1, 8 * mib, (uint64_t)hk_scale(220) * mib);
  return hk_rss_bytes();
}

static void free_all(void) {
  for (size_t i = 0; i < nblk; i++) {
    CHECK(hk_check_sparse(blk[i].p, blk[i].n, (uintptr_t)blk[i].p) == (size_t)-1, "block %p (%zu B) corrupted",
          (void *)blk[i].p, blk[i].n);
    free(blk[i].p);
  }
  nblk = 0;
}

static uint64_t counter(const char *name) {
  uint64_t v = 0;
  (void)hk_stat_named(name, &v);
  return v;
}

static int run_nobg(void) {
  uint64_t base = hk_rss_bytes();
  uint64_t peak = build();
  free_all();
  double t0 = hk_now();
  uint64_t after_free = hk_rss_bytes();
  poll_rss(t0, NOBG_POLL_S);
  uint64_t end = samples[nsamples - 1].rss;
  print_timeline("HAKMEM_BACKGROUND=0, RSS after the last free");
  malloc_trim(0);
  uint64_t trimmed = hk_rss_bytes();
  hk_note("HAKMEM_BACKGROUND=0: base %.0f MiB, peak %.0f MiB, after the frees %.0f MiB, %.1f s later %.0f MiB, "
          "after malloc_trim(0) %.0f MiB; background ticks %" PRIu64,
          HK_MIB(base), HK_MIB(peak), HK_MIB(after_free), NOBG_POLL_S, HK_MIB(end), HK_MIB(trimmed),
          counter("decay.background_ticks"));
  CHECK(after_free < end + peak * NOBG_SLACK_PCT / 100,
        "RSS fell from %.0f to %.0f MiB with HAKMEM_BACKGROUND=0 and no allocator call: who returned it?",
        HK_MIB(after_free), HK_MIB(end));
  CHECK(counter("decay.background_ticks") == 0, "background ticks with HAKMEM_BACKGROUND=0");
  CHECK(trimmed <= peak / 10, "malloc_trim(0) left %.0f MiB of a %.0f MiB peak resident", HK_MIB(trimmed),
        HK_MIB(peak));
  return check_summary("idle_return --nobg");
}

int main(int argc, char **argv) {
  hk_init("idle_return");
  maxblk = 1u << 20;
  blk = mmap(NULL, maxblk * sizeof *blk, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  REQUIRE(blk != MAP_FAILED, "mmap of the block table failed");
  if (argc > 1 && !strcmp(argv[1], "--nobg")) return run_nobg();

  uint64_t base = hk_rss_bytes();
  uint64_t peak = build();
  size_t n = nblk;
  free_all();
  double t0 = hk_now();
  uint64_t ticks0 = counter("decay.background_ticks"), returns0 = counter("decay.returns");
  poll_rss(t0, POLL_S);
  uint64_t ticks1 = counter("decay.background_ticks"), returns1 = counter("decay.returns");
  print_timeline("RSS after the last free");
  double reached = -1;
  for (int i = 0; i < nsamples && reached < 0; i++)
    if (samples[i].rss <= peak / 10) reached = samples[i].t;
  hk_note("%zu blocks: base %.0f MiB, peak %.0f MiB; 10 %% of the peak reached after %.2f s (-1: never); %.0f MiB "
          "at the end; background ticks %" PRIu64 " -> %" PRIu64 ", time-based returns %" PRIu64 " -> %" PRIu64,
          n, HK_MIB(base), HK_MIB(peak), reached, HK_MIB(samples[nsamples - 1].rss), ticks0, ticks1, returns0,
          returns1);
  CHECK(reached >= 0 && reached <= DEADLINE_S,
        "RSS did not fall to 10 %% of its %.0f MiB peak within %.1f s of the last free without allocator calls "
        "(reached after %.2f s, -1: never; %.0f MiB at %.1f s)",
        HK_MIB(peak), DEADLINE_S, reached, HK_MIB(samples[nsamples - 1].rss), samples[nsamples - 1].t);
  if (HK_HAVE_PROOF) CHECK(ticks1 > ticks0, "the background thread did no work");

  /* the same without the background thread */
  fflush(stderr);
  pid_t pid = fork();
  REQUIRE(pid >= 0, "fork: %s", strerror(errno));
  if (pid == 0) {
    setenv("HAKMEM_BACKGROUND", "0", 1);
    char *args[] = {argv[0], (char *)"--nobg", NULL};
    execv("/proc/self/exe", args);
    _exit(127);
  }
  int st;
  REQUIRE(waitpid(pid, &st, 0) == pid, "waitpid: %s", strerror(errno));
  CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the HAKMEM_BACKGROUND=0 run failed (status %#x)", st);
  check_finish();
}
