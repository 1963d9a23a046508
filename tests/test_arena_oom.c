/* test_arena_oom.c — the heap runs out of address space and recovers.
 *
 * A child process lowers its own RLIMIT_AS to what it uses now plus
 * LIMIT_MIB, then allocates blocks of every tier (tiny, mid, large, Big)
 * until malloc returns NULL: that must be NULL with errno ENOMEM, never a
 * crash. It then exhausts each slab tier in turn (1 MiB, 64 KiB, 1 KiB and
 * 16-byte blocks until each fails) and checks that the mappings stayed few
 * (/proc/self/maps lines and hak_stat "os.arenas": arenas grow
 * geometrically, one mapping per reservation, not one per SuperSlab). Then
 * it frees everything and allocates again: the first half of the first
 * sequence must succeed in full (the heap recovered), and after
 * malloc_trim(0) Big blocks, which need address space of their own, must
 * fit again too (RECOVER_BIG_PCT of what they had at first). Every block's
 * pattern is checked before it is freed.
 *
 * The parent only waits: a child killed by a signal (a crash on NULL, an
 * unchecked failed mapping) is a failure.
 *
 * usage: test_arena_oom [limit-MiB]
 */
#include "hk_proc.h"

#define LIMIT_MIB 768
#define MAXBLK (1u << 21)
#define RECOVER_BIG_PCT 50

typedef struct {
  char *p;
  uint32_t n;
} blk_t;

static blk_t *blk;      /* mmap'd before the limit, not from the heap under test */
static size_t nblk;
static size_t *seq_size; /* the sizes of the first sequence, in order */
static size_t nseq;

static size_t pick_size(hk_rng_t *r) {
  uint64_t d = hk_below(r, 100);
  if (d < 40) return 1 + hk_below(r, 1040);
  if (d < 70) return hk_logsize(r, 1041, 64 * 1024);
  if (d < 95) return hk_logsize(r, 64 * 1024 + 1, 1024 * 1024);
  return hk_logsize(r, 2 * 1024 * 1024, 16 * 1024 * 1024);
}

/* the block's first and last 64 bytes carry its pattern: the memory is
 * really there and writable, and the test does not fault in a GiB */
static void mark(char *p, size_t n, uint64_t tag) {
  size_t a = n < 64 ? n : 64;
  hk_fill_range(p, 0, a, tag);
  if (n > 128) hk_fill_range(p, n - 64, n, tag);
}
static int marked(const char *p, size_t n, uint64_t tag) {
  size_t a = n < 64 ? n : 64;
  if (hk_check_range(p, 0, a, tag) != (size_t)-1) return 0;
  if (n > 128 && hk_check_range(p, n - 64, n, tag) != (size_t)-1) return 0;
  return 1;
}

/* one allocation; a NULL must say ENOMEM. Returns the block or NULL. */
static char *take(size_t n, const char *phase) {
  errno = 0;
  char *p = malloc(n);
  if (!p) {
    CHECK(errno == ENOMEM, "%s: malloc(%zu) returned NULL with errno %d (%s), not ENOMEM", phase, n, errno,
          strerror(errno));
    return NULL;
  }
  CHECK(((uintptr_t)p & 15) == 0, "%s: malloc(%zu) = %p misaligned", phase, n, (void *)p);
  REQUIRE(nblk < MAXBLK, "%s: more than %u blocks", phase, MAXBLK);
  mark(p, n, (uintptr_t)p);
  blk[nblk].p = p;
  blk[nblk].n = (uint32_t)n;
  nblk++;
  return p;
}

static size_t free_all(const char *phase) {
  size_t bytes = 0;
  for (size_t i = nblk; i-- > 0;) {
    CHECK(marked(blk[i].p, blk[i].n, (uintptr_t)blk[i].p), "%s: block %p (%u bytes) corrupted", phase,
          (void *)blk[i].p, blk[i].n);
    bytes += blk[i].n;
    free(blk[i].p);
  }
  nblk = 0;
  return bytes;
}

/* allocates n-byte blocks until one fails (or cap blocks); returns how many */
static size_t exhaust(size_t n, size_t cap, const char *phase) {
  size_t got = 0;
  while (got < cap && take(n, phase)) got++;
  return got;
}

static void child(uint64_t limit_mib) {
  hk_rng_t r = {20260101};
  blk = mmap(NULL, (size_t)MAXBLK * sizeof *blk, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  seq_size = mmap(NULL, (size_t)MAXBLK * sizeof *seq_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                  -1, 0);
  REQUIRE(blk != MAP_FAILED && seq_size != MAP_FAILED, "mmap of the block table failed");
  /* the allocator is initialised, every tier has been used once */
  for (int i = 0; i < 4; i++) free(malloc((size_t)16 << (i * 6)));
  uint64_t vm_kib = hk_status_kib("VmSize");
  REQUIRE(vm_kib > 0, "no VmSize in /proc/self/status");
  struct rlimit rl;
  rl.rlim_cur = rl.rlim_max = (rlim_t)(vm_kib * 1024 + limit_mib * 1024 * 1024);
  hk_note("VmSize %" PRIu64 " MiB now: RLIMIT_AS %" PRIu64 " MiB (+%" PRIu64 " MiB)", vm_kib >> 10,
          (uint64_t)(rl.rlim_cur >> 20), limit_mib);
  REQUIRE(setrlimit(RLIMIT_AS, &rl) == 0, "setrlimit: %s", strerror(errno));

  /* 1. the mixed sequence until the first NULL */
  uint64_t bytes1 = 0, big1 = 0;
  size_t failed_size = 0;
  for (;;) {
    size_t n = pick_size(&r);
    if (!take(n, "mixed")) {
      failed_size = n;
      break;
    }
    seq_size[nseq++] = n;
    bytes1 += n;
    if (n > 2u << 20) big1 += n;
  }
  long maps1 = hk_maps_count();
  hk_note("mixed: %zu blocks, %.1f MiB (Big %.1f MiB) before malloc(%zu) failed; %ld mappings", nseq,
          HK_MIB(bytes1), HK_MIB(big1), failed_size, maps1);
  CHECK(bytes1 >= (uint64_t)limit_mib * 1024 * 1024 / 4, "only %.1f MiB allocated under a limit of +%" PRIu64 " MiB",
        HK_MIB(bytes1), limit_mib);

  /* 2. each slab tier until it fails too */
  size_t n1m = exhaust(1u << 20, 1u << 20, "exhaust 1M");
  size_t n64k = exhaust(64u << 10, 1u << 20, "exhaust 64K");
  size_t n1k = exhaust(1u << 10, 1u << 20, "exhaust 1K");
  size_t n16 = exhaust(16, MAXBLK - nblk - 1, "exhaust 16");
  long maps2 = hk_maps_count();
  uint64_t arenas = 0, reserved = 0;
  (void)hk_stat_named("os.arenas", &arenas);
  (void)hk_stat_named("mapped", &reserved);
  hk_note("then %zu x 1 MiB, %zu x 64 KiB, %zu x 1 KiB, %zu x 16 B; %zu blocks live; %ld mappings, %" PRIu64
          " arenas, mapped %.1f MiB",
          n1m, n64k, n1k, n16, nblk, maps2, arenas, HK_MIB(reserved));
  CHECK(nblk < MAXBLK - 1, "16-byte blocks never failed (%zu blocks)", nblk);
  /* the process's own mappings (binary, libraries, stack: ~30), the arenas
   * (a handful, plus halved retries near the limit) and the live Big
   * blocks' mappings, most of them merged by the kernel */
  CHECK(maps2 < 400, "%ld mappings at exhaustion: arenas do not grow geometrically?", maps2);
  CHECK(arenas < 48, "%" PRIu64 " arenas reserved for %.1f MiB", arenas, HK_MIB(bytes1));

  /* 3. free everything; the first half of the sequence must fit again */
  free_all("free 1");
  size_t half = nseq / 2, got = 0;
  uint64_t bytes2 = 0;
  for (size_t i = 0; i < half; i++) {
    if (!take(seq_size[i], "again")) break;
    bytes2 += seq_size[i];
    got++;
  }
  hk_note("again: %zu of the first %zu blocks (%.1f MiB)", got, half, HK_MIB(bytes2));
  CHECK(got == half, "after freeing everything, malloc failed at block %zu of %zu (%.1f MiB in)", got, half,
        HK_MIB(bytes2));
  free_all("free 2");

  /* 4. after malloc_trim, Big blocks (own mappings) get address space again */
  malloc_trim(0);
  size_t bigs = 0;
  uint64_t bigb = 0;
  while (bigb < big1 * RECOVER_BIG_PCT / 100 + (8u << 20)) {
    if (!take(8u << 20, "big after trim")) break;
    bigs++;
    bigb += 8u << 20;
  }
  uint64_t mapped3 = 0;
  (void)hk_stat_named("mapped", &mapped3);
  hk_note("after free and malloc_trim: %zu Big blocks of 8 MiB (%.1f MiB; the first sequence had %.1f MiB of "
          "Big blocks); mapped %.1f MiB",
          bigs, HK_MIB(bigb), HK_MIB(big1), HK_MIB(mapped3));
  CHECK(bigb >= big1 * RECOVER_BIG_PCT / 100,
        "after freeing everything and malloc_trim(0), only %.1f MiB of Big blocks fit (%.1f MiB at first): the "
        "empty arenas keep the address space",
        HK_MIB(bigb), HK_MIB(big1));
  uint64_t limit_bytes = limit_mib << 20;
  free_all("free 3");

  /* 5. the slab tiers alone take all the address space (1 MiB blocks: one
   * per SuperSlab), then give it back: Big blocks must fit again */
  size_t slabs = exhaust(1u << 20, MAXBLK - nblk - 1, "slabs only");
  (void)hk_stat_named("os.arenas", &arenas);
  long maps5 = hk_maps_count();
  hk_note("slab tiers alone: %zu blocks of 1 MiB (one SuperSlab each), %" PRIu64 " arenas, %ld mappings", slabs,
          arenas, maps5);
  CHECK(maps5 < 150, "%ld mappings for %zu SuperSlabs: not carved from a few arenas?", maps5, slabs);
  free_all("free 4");
  malloc_trim(0);
  bigs = 0;
  bigb = 0;
  while (bigb < limit_bytes * RECOVER_BIG_PCT / 100 + (8u << 20)) {
    if (!take(8u << 20, "big after slabs")) break;
    bigs++;
    bigb += 8u << 20;
  }
  (void)hk_stat_named("mapped", &mapped3);
  hk_note("then, after free and malloc_trim: %zu Big blocks of 8 MiB (%.1f MiB); mapped %.1f MiB", bigs,
          HK_MIB(bigb), HK_MIB(mapped3));
  CHECK(bigb >= limit_bytes * RECOVER_BIG_PCT / 100,
        "after the slab tiers used the address space (%zu x 1 MiB) and everything was freed and trimmed, only "
        "%.1f MiB of Big blocks fit under a limit of +%" PRIu64 " MiB: the empty arenas keep their reservations "
        "(%.1f MiB mapped)",
        slabs, HK_MIB(bigb), limit_mib, HK_MIB(mapped3));
  free_all("free 5");

  /* 6. every tier still works */
  size_t sizes[] = {16, 1000, 5000, 64u << 10, 1u << 20, 3u << 20};
  for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
    char *p = take(sizes[i], "final");
    CHECK(p != NULL, "final: malloc(%zu) failed", sizes[i]);
    if (p) CHECK(hk_owns(p), "final: %p not hakmem's", (void *)p);
  }
  char *c = calloc(1000, 1000);
  CHECK(c != NULL, "final: calloc(1000, 1000) failed");
  for (size_t i = 0; c && i < 1000 * 1000; i += 4096) CHECK(c[i] == 0, "calloc memory not zero at %zu", i);
  free(c);
  free_all("free 6");
  check_finish();
}

int main(int argc, char **argv) {
  hk_init("arena_oom");
  uint64_t limit = argc > 1 ? strtoull(argv[1], NULL, 0) : LIMIT_MIB;
  fflush(stderr);
  pid_t pid = fork();
  REQUIRE(pid >= 0, "fork: %s", strerror(errno));
  if (pid == 0) {
    alarm(60);
    child(limit);
    _exit(3);
  }
  int st;
  REQUIRE(waitpid(pid, &st, 0) == pid, "waitpid: %s", strerror(errno));
  if (WIFSIGNALED(st))
    CHECK(0, "the child was killed by signal %d (%s) while out of address space", WTERMSIG(st),
          strsignal(WTERMSIG(st)));
  else
    CHECK(WEXITSTATUS(st) == 0, "the child failed (exit status %d; its CHECK lines are above)", WEXITSTATUS(st));
  check_finish();
}
