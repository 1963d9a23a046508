/* test_guard.c — HAKMEM_GUARD_SAMPLE: a sampled block's overflow, use after
 * free and double free are each reported with the block's address, size,
 * the offset, and backtraces of its allocation and free that name the
 * program's own call sites.
 *
 * Each fault runs in a child (this program re-executed with
 * HAKMEM_GUARD_SAMPLE=1, so that every allocation up to 64 KiB is sampled
 * while guard slots are free). The child allocates a 96-byte block in
 * alloc_site, checks that it is guarded (its end is a page boundary),
 * announces the block and the addresses of alloc_site and free_site, and
 * commits the fault. The parent checks the report line by line. The ASan
 * variant (whose own SIGSEGV handler takes the faults) checks the double
 * free only.
 *
 * usage: test_guard                 (runs everything)
 *        test_guard case NAME       (internal: overflow | uaf | double | off)
 */
#include "hk_test.h"
#include "hk_spawn.h"

#define N 96

static volatile int g_sink;

/* call sites the backtraces must name: not inlined, not tail calls */
static __attribute__((noinline)) char *alloc_site(size_t n) {
  char *p = malloc(n);
  __asm__ volatile("" ::: "memory");
  g_sink++;
  return p;
}
static __attribute__((noinline)) void free_site(char *p) {
  free(p);
  __asm__ volatile("" ::: "memory");
  g_sink++;
}

static int child_case(const char *name) {
  struct rlimit rl = {0, 0};
  setrlimit(RLIMIT_CORE, &rl);
  alarm(20);
  char *p = alloc_site(N);
  REQUIRE(p, "malloc(%d) failed", N);
  int guarded = ((uintptr_t)p + N) % 4096 == 0;
  printf("BLOCK %p GUARDED %d ALLOC %p FREE %p\n", (void *)p, guarded, (void *)alloc_site, (void *)free_site);
  fflush(stdout);
  memset(p, 1, N);
  if (!strcmp(name, "overflow")) {
    p[N] = 2; /* one byte past the end: the guard page */
  } else if (!strcmp(name, "uaf")) {
    free_site(p);
    g_sink = p[8];
  } else if (!strcmp(name, "double")) {
    free_site(p);
    free_site(p);
  } else if (!strcmp(name, "off")) {
    free_site(p);
  }
  printf("RETURNED\n");
  fflush(stdout);
  return 0;
}

typedef hk_result_t result_t;

/* this program again with args, HAKMEM_GUARD_SAMPLE=sample and
 * HAKMEM_ON_ERROR=on_error (NULL: unset) */
static void spawn(char *const args[], const char *sample, const char *on_error, result_t *res) {
  char e1[64], e2[64];
  hk_env(e1, sizeof e1, "HAKMEM_GUARD_SAMPLE", sample);
  hk_env(e2, sizeof e2, "HAKMEM_ON_ERROR", on_error);
  const char *env[] = {e1, e2, NULL};
  hk_spawn(args, env, res);
}

#define first_line hk_first_line

/* whether the trace after the line starting with head (up to the next
 * "by thread" line) has a frame inside [fn, fn + 256) */
static int trace_names(const char *err, const char *head, uintptr_t fn) {
  const char *t = strstr(err, head);
  if (!t) return 0;
  t = strchr(t, '\n');
  while (t && *++t) {
    char l[400];
    first_line(t, l, sizeof l);
    if (strncmp(l, "hakmem:     #", 13)) break; /* the frames end */
    const char *x = strstr(l, " 0x");
    if (x) {
      uintptr_t a = (uintptr_t)strtoull(x + 1, NULL, 16);
      if (a > fn && a < fn + 256) return 1;
    }
    t = strchr(t, '\n');
  }
  return 0;
}

/* runs case name and checks: death by sig (0: a normal exit), the report's
 * first line, and the traces (freed: the free trace must be there) */
static void check_case(char *argv0, const char *name, const char *on_error, int sig, const char *what, long off,
                       int freed) {
  static result_t res;
  char *args[] = {argv0, "case", (char *)name, NULL};
  spawn(args, "1", on_error, &res);
  void *p = NULL, *fa = NULL, *ff = NULL;
  int guarded = 0;
  const char *b = strstr(res.out, "BLOCK ");
  char fl[400];
  first_line(res.err, fl, sizeof fl);
  if (!b || sscanf(b, "BLOCK %p GUARDED %d ALLOC %p FREE %p", &p, &guarded, &fa, &ff) != 4) {
    CHECK(0, "%s: the child did not start its case (status %#x, stderr: %s)", name, res.status, fl);
    return;
  }
  REQUIRE(guarded, "%s: with HAKMEM_GUARD_SAMPLE=1 the block %p is not right-aligned against a page", name, p);
  int got = WIFSIGNALED(res.status) ? WTERMSIG(res.status) : 0;
  CHECK(got == sig && (sig || WEXITSTATUS(res.status) == 0),
        "%s: want %s %d, got status %#x (stderr: %s)", name, sig ? "signal" : "exit", sig, res.status, fl);
  char want[300];
  if (!strcmp(what, "double free"))
    snprintf(want, sizeof want, "hakmem: invalid free(%p): double free of a guarded block of %d bytes at %p (offset 0)",
             p, N, p);
  else
    snprintf(want, sizeof want, "hakmem: %s at address %p: offset %ld of the %d-byte guarded block at %p", what,
             (void *)((char *)p + off), off, N, p);
  const char *l = strstr(res.err, want);
  CHECK(l != NULL, "%s: want the line '%s'; stderr starts: %s", name, want, fl);
  if (on_error) CHECK(l && !strncmp(l + strlen(want), "; ignored", 9), "%s: warn mode: the line lacks '; ignored'", name);
  CHECK(trace_names(res.err, "hakmem:   allocated by thread", (uintptr_t)fa),
        "%s: the allocation backtrace does not name alloc_site (%p): %.600s", name, fa, res.err);
  if (freed)
    CHECK(trace_names(res.err, "hakmem:   freed by thread", (uintptr_t)ff),
          "%s: the free backtrace does not name free_site (%p): %.600s", name, ff, res.err);
  else
    CHECK(!strstr(res.err, "freed by thread"), "%s: a free backtrace for a block never freed", name);
  if (l) {
    first_line(l, fl, sizeof fl);
    hk_note("%-9s %s", name, fl);
  }
}

int main(int argc, char **argv) {
  hk_init("guard");
  if (argc >= 3 && !strcmp(argv[1], "case")) return child_case(argv[2]);
#if !defined(HK_MODE_HAKAPI)
  check_case(argv[0], "overflow", NULL, SIGSEGV, "buffer overflow", N, 0);
  check_case(argv[0], "uaf", NULL, SIGSEGV, "use after free", 8, 1);
#endif
  check_case(argv[0], "double", NULL, SIGABRT, "double free", 0, 1);
  check_case(argv[0], "double", "warn", 0, "double free", 0, 1);
  /* off by default: the same use after free is not on a guarded page */
  static result_t res;
  char *args[] = {argv[0], "case", "off", NULL};
  spawn(args, NULL, NULL, &res);
  int guarded = 1;
  const char *b = strstr(res.out, "BLOCK ");
  CHECK(b && sscanf(b, "BLOCK %*p GUARDED %d", &guarded) == 1 && !guarded && strstr(res.out, "RETURNED"),
        "without HAKMEM_GUARD_SAMPLE the block should be an ordinary one: %.200s", res.out);
  check_finish();
  return 0;
}
