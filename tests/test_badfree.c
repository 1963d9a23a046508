/* test_badfree.c — free() of pointers hakmem never handed out, of interior
 * pointers, and double frees; and the opt-in crash report.
 *
 * Each case runs in a child (this program re-executed, so that environment
 * variables are read at start-up as hakmem does). By default the child must
 * print one line on stderr, "hakmem: ..." naming the pointer (as %p prints
 * it) and the fault, then die of SIGABRT. With HAKMEM_ON_ERROR=warn one child
 * runs every case in turn, must print the same lines, keep going, and still
 * allocate correctly afterwards.
 *
 * Crash report: a child faults on a hakmem block whose page it made
 * unreadable (a small block, and a Big block 6 MiB in), or on a wild
 * address, or aborts. With HAKMEM_CRASH_REPORT=1 a
 * fault gets one line saying where the address lies; by default, and for
 * SIGABRT always, hakmem adds nothing to the program's stderr. Under ASan
 * (the .asan variant) hakmem must leave ASan's own handler in place.
 *
 * usage: test_badfree                  (runs everything)
 *        test_badfree case NAME        (internal: one case, abort mode)
 *        test_badfree warn             (internal: all cases, warn mode)
 *        test_badfree crash NAME       (internal: heap | big | wild | abort)
 */
#include "hk_test.h"
#include "hk_spawn.h"

#define R_NOT "not allocated by hakmem"
#define R_INT "interior"
#define R_DBL "double free"

static int g_object[64];

typedef struct {
  const char *name;
  const char *reasons; /* accepted reasons, '|' separated */
} bcase_t;

/* the accepted reasons for each kind of fault: a pointer far (>= 2 MiB)
 * inside a big block, or a second free of a block that is no longer part of
 * any slab, may also be reported as not allocated by hakmem */
static const bcase_t cases[] = {
    {"stack", R_NOT},
    {"static", R_NOT},
    {"foreign_mmap", R_NOT},
    {"foreign_mmap_2m", R_NOT},
    {"interior_tiny_16", R_INT},
    {"interior_tiny_1", R_INT},
    {"interior_1040", R_INT},
    {"interior_mid", R_INT},
    {"interior_large", R_INT},
    {"interior_big", R_INT},
    {"interior_big_2m", R_INT "|" R_NOT},
    {"interior_aligned", R_INT},
    {"double_tiny", R_DBL},
    {"double_tiny_8", R_DBL},
    {"double_1040", R_DBL},
    {"double_mid", R_DBL "|" R_NOT},
    {"double_large", R_DBL "|" R_NOT},
    {"double_big", R_DBL "|" R_NOT},
};
#define NCASES ((int)(sizeof cases / sizeof cases[0]))

/* ------------------------------------------------------------ the child */

/* announce the pointer on stdout (the parent reads it), then free it */
static void bad_free(void *p) {
  printf("EXPECT %p\n", p);
  fflush(stdout);
  free(p);
}

static void *foreign_map(size_t align_2m) {
  size_t len = 8u << 20;
  char *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) return NULL;
  if (align_2m) m = (char *)(((uintptr_t)m + (2u << 20) - 1) & ~(uintptr_t)((2u << 20) - 1));
  memset(m, 0, 4096);
  return m;
}

static void run_case(const char *name) {
  int local[16];
  memset(local, 0, sizeof local);
  char *p;
  if (!strcmp(name, "stack")) {
    bad_free(&local[4]);
  } else if (!strcmp(name, "static")) {
    bad_free(&g_object[2]);
  } else if (!strcmp(name, "foreign_mmap")) {
    p = foreign_map(0);
    bad_free(p + 64);
  } else if (!strcmp(name, "foreign_mmap_2m")) {
    p = foreign_map(1); /* looks like a SuperSlab base, has no header */
    bad_free(p);
  } else if (!strcmp(name, "interior_tiny_16")) {
    p = malloc(64);
    bad_free(p + 16);
  } else if (!strcmp(name, "interior_tiny_1")) {
    p = malloc(100);
    bad_free(p + 1);
  } else if (!strcmp(name, "interior_1040")) {
    p = malloc(1040);
    bad_free(p + 520);
  } else if (!strcmp(name, "interior_mid")) {
    p = malloc(10000);
    bad_free(p + 4096);
  } else if (!strcmp(name, "interior_large")) {
    p = malloc(300000);
    bad_free(p + 65536 + 16);
  } else if (!strcmp(name, "interior_big")) {
    p = malloc(8u << 20);
    bad_free(p + 4096);
  } else if (!strcmp(name, "interior_big_2m")) {
    p = malloc(8u << 20);
    bad_free(p + (2u << 20));
  } else if (!strcmp(name, "interior_aligned")) {
    p = aligned_alloc(4096, 4096);
    bad_free(p + 8);
  } else if (!strncmp(name, "double_", 7)) {
    size_t n = !strcmp(name, "double_tiny")     ? 32
               : !strcmp(name, "double_tiny_8") ? 8
               : !strcmp(name, "double_1040")   ? 1040
               : !strcmp(name, "double_mid")    ? 20000
               : !strcmp(name, "double_large")  ? 500000
                                                : (5u << 20);
    void *keep = malloc(n); /* keeps the slab or region in use */
    p = malloc(n);
    memset(p, 1, n);
    free(p);
    bad_free(p);
    free(keep);
  } else {
    fprintf(stderr, "unknown case %s\n", name);
    _exit(2);
  }
}

static int child_abort_mode(const char *name) {
  struct rlimit rl = {0, 0};
  setrlimit(RLIMIT_CORE, &rl); /* no core files */
  alarm(20);                   /* a hang ends as SIGALRM */
  run_case(name);
  /* hakmem should not have returned */
  printf("RETURNED\n");
  fflush(stdout);
  return 0;
}

/* Each fault announces its address and the report hakmem should give (the
 * geometry: 2 MiB SuperSlabs of 64 KiB slots, Big blocks in their own
 * mapping whose header starts the first 2 MiB region). */
static int child_crash_mode(const char *name) {
  struct rlimit rl = {0, 0};
  setrlimit(RLIMIT_CORE, &rl);
  alarm(20);
  const uintptr_t ss_mask = ((uintptr_t)2 << 20) - 1;
  volatile char *at;
  if (!strcmp(name, "heap")) {
    char *p = malloc(100);
    REQUIRE(p != NULL, "malloc(100) failed");
    memset(p, 7, 100);
    printf("WHERE inside hakmem's heap: SuperSlab %p, slot %u, a slab of %zu-byte blocks\n",
           (void *)((uintptr_t)p & ~ss_mask), (unsigned)(((uintptr_t)p >> 16) & 31), malloc_usable_size(p));
    at = p;
  } else if (!strcmp(name, "big")) {
    char *p = malloc(16u << 20);
    REQUIRE(p != NULL, "malloc(16 MiB) failed");
    memset(p, 7, 4096);
    printf("WHERE inside hakmem's heap: Big block run %p of \n", (void *)p);
    at = p + (6u << 20) + 100; /* past the first 2 MiB: found by a walk of the Big table */
  } else if (!strcmp(name, "wild")) {
    printf("WHERE not in hakmem's heap\n");
    at = (volatile char *)(uintptr_t)0x10;
  } else {
    printf("EXPECT abort\n");
    fflush(stdout);
    abort();
  }
  if (at != (volatile char *)(uintptr_t)0x10)
    REQUIRE(mprotect((void *)((uintptr_t)at & ~(uintptr_t)4095), 4096, PROT_NONE) == 0, "mprotect failed");
  printf("EXPECT %p\n", (void *)at);
  fflush(stdout);
  printf("READ %d\n", *at);
  printf("RETURNED\n");
  fflush(stdout);
  return 0;
}

static int child_warn_mode(void) {
  alarm(30); /* a hang ends as SIGALRM */
  hak_stats_t s0, s1;
  hk_stats(&s0);
  for (int i = 0; i < NCASES; i++) {
    printf("CASE %s\n", cases[i].name);
    fflush(stdout);
    run_case(cases[i].name);
  }
  hk_stats(&s1);
  if (HK_HAVE_PROOF)
    CHECK(s1.invalid_frees >= s0.invalid_frees + (uint64_t)NCASES,
          "warn mode: invalid_frees went from %" PRIu64 " to %" PRIu64 " after %d bad frees", s0.invalid_frees,
          s1.invalid_frees, NCASES);
  /* the allocator is still correct: every size class used above hands out
   * distinct, intact blocks (a double free must not have put a block on a
   * free list twice) */
  static const size_t sizes[] = {8, 32, 64, 100, 1040, 4096, 10000, 20000, 300000, 500000, 5u << 20};
  for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
    enum { N = 200 };
    char *v[N];
    int n = sizes[k] > 100000 ? 12 : N;
    for (int i = 0; i < n; i++) {
      v[i] = malloc(sizes[k]);
      REQUIRE(v[i], "warn mode: malloc(%zu) failed", sizes[k]);
      CHECK(hk_owns(v[i]), "warn mode: block not owned");
      for (int j = 0; j < i; j++)
        CHECK(v[j] != v[i], "warn mode: malloc(%zu) returned %p twice (after a double free)", sizes[k],
              (void *)v[i]);
      hk_fill_sparse(v[i], sizes[k], (uint64_t)i * 977 + k);
    }
    for (int i = 0; i < n; i++) {
      CHECK(hk_check_sparse(v[i], sizes[k], (uint64_t)i * 977 + k) == (size_t)-1,
            "warn mode: block of %zu corrupted", sizes[k]);
      free(v[i]);
    }
  }
  printf("WARN-DONE\n");
  fflush(stdout);
  check_finish();
  return 0;
}

/* ----------------------------------------------------------- the parent */

typedef hk_result_t result_t;

/* run this program again with the given arguments, HAKMEM_ON_ERROR and
 * HAKMEM_CRASH_REPORT (NULL: unset) */
static void spawn(char *const args[], const char *on_error, const char *crash_report, result_t *res) {
  char e1[64], e2[64];
  hk_env(e1, sizeof e1, "HAKMEM_ON_ERROR", on_error);
  hk_env(e2, sizeof e2, "HAKMEM_CRASH_REPORT", crash_report);
  const char *env[] = {e1, e2, NULL};
  hk_spawn(args, env, res);
}

static int has_reason(const char *line, const char *reasons, char *which, size_t wcap) {
  char buf[256];
  snprintf(buf, sizeof buf, "%s", reasons);
  for (char *tok = strtok(buf, "|"); tok; tok = strtok(NULL, "|"))
    if (strstr(line, tok)) {
      snprintf(which, wcap, "%s", tok);
      return 1;
    }
  return 0;
}

/* count the report lines in err for the pointer text ptr; the good one is
 * copied into line */
static int report_lines(const char *err, const char *ptr, const char *reasons, char *line, size_t lcap,
                        int *any_hakmem_lines) {
  int good = 0;
  *any_hakmem_lines = 0;
  line[0] = 0;
  for (const char *s = err; *s;) {
    const char *e = strchr(s, '\n');
    size_t len = e ? (size_t)(e - s) : strlen(s);
    char l[1024];
    snprintf(l, sizeof l, "%.*s", (int)(len < sizeof l - 1 ? len : sizeof l - 1), s);
    char which[64];
    int is_report = !strncmp(l, "hakmem: ", 8) &&
                    (strstr(l, R_NOT) || strstr(l, R_INT) || strstr(l, R_DBL));
    if (is_report) (*any_hakmem_lines)++;
    if (is_report && strstr(l, ptr) && has_reason(l, reasons, which, sizeof which)) {
      good++;
      snprintf(line, lcap, "%s", l);
    }
    s += len + (e ? 1 : 0);
  }
  return good;
}

#define first_line hk_first_line

/* the lines of err that start with "hakmem: " */
static int hakmem_lines(const char *err, char *first, size_t cap) {
  int n = 0;
  first[0] = 0;
  for (const char *l = err; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
    if (!strncmp(l, "hakmem: ", 8) && n++ == 0) first_line(l, first, cap);
  return n;
}

static void check_crash_report(void) {
  static const struct {
    const char *name, *report; /* report: HAKMEM_CRASH_REPORT, NULL = unset */
    int sig, line;             /* line: hakmem must print its report */
  } cc[] = {
      {"heap", "1", SIGSEGV, 1}, {"big", "1", SIGSEGV, 1},   {"wild", "1", SIGSEGV, 1},
      {"heap", NULL, SIGSEGV, 0}, {"abort", "1", SIGABRT, 0},
  };
  static result_t res;
  char *argv0 = (char *)"test_badfree";
  for (unsigned i = 0; i < sizeof cc / sizeof cc[0]; i++) {
    char *args[] = {argv0, "crash", (char *)cc[i].name, NULL};
    spawn(args, NULL, cc[i].report, &res);
    char ptr[64] = "", line[300], fl[300], where[200] = "";
    int got = hakmem_lines(res.err, line, sizeof line);
    first_line(res.err, fl, sizeof fl);
    const char *w = strstr(res.out, "WHERE ");
    if (w) first_line(w + 6, where, sizeof where);
    const char *e = strstr(res.out, "EXPECT ");
    const char *tag = cc[i].report ? "HAKMEM_CRASH_REPORT=1" : "by default";
    if (!e || sscanf(e, "EXPECT %63s", ptr) != 1 || strstr(res.out, "RETURNED")) {
      CHECK(0, "crash %s (%s): the child did not fault as planned (status %#x, stderr: %s)", cc[i].name, tag,
            res.status, fl);
      continue;
    }
#if defined(HK_MODE_HAKAPI)
    /* ASan's own SEGV handler runs and ends the child; hakmem adds nothing */
    CHECK(!(WIFEXITED(res.status) && WEXITSTATUS(res.status) == 0), "crash %s (%s): the child exited 0",
          cc[i].name, tag);
    CHECK(got == 0, "crash %s (%s): hakmem printed '%s' over the sanitizer's handler", cc[i].name, tag, line);
    (void)where;
#else
    int sig = WIFSIGNALED(res.status) ? WTERMSIG(res.status) : 0;
    CHECK(sig == cc[i].sig, "crash %s (%s): want death by signal %d, got status %#x (stderr: %s)", cc[i].name, tag,
          cc[i].sig, res.status, fl);
    if (!cc[i].line) {
      CHECK(got == 0, "crash %s (%s): hakmem added '%s' to the program's stderr", cc[i].name, tag, line);
    } else {
      char want[300];
      snprintf(want, sizeof want, "hakmem: SIGSEGV at address %s: %s", ptr, where);
      CHECK(got == 1 && where[0] && !strncmp(line, want, strlen(want)),
            "crash %s (%s): want one line starting '%s', got %d: '%s'", cc[i].name, tag, want, got, line);
    }
    if (got) hk_note("crash %-5s %s: %s", cc[i].name, tag, line);
#endif
  }
}

int main(int argc, char **argv) {
  hk_init("badfree");
  if (argc >= 3 && !strcmp(argv[1], "case")) return child_abort_mode(argv[2]);
  if (argc >= 2 && !strcmp(argv[1], "warn")) return child_warn_mode();
  if (argc >= 3 && !strcmp(argv[1], "crash")) return child_crash_mode(argv[2]);

  static result_t res;
  /* abort mode: one child per case */
  for (int i = 0; i < NCASES; i++) {
    char *args[] = {argv[0], "case", (char *)cases[i].name, NULL};
    spawn(args, NULL, NULL, &res);
    char ptr[64] = "", fl[300];
    if (sscanf(res.out, "EXPECT %63s", ptr) != 1) {
      first_line(res.err, fl, sizeof fl);
      CHECK(0, "%s: the child did not reach the bad free (status %#x, stderr: %s)", cases[i].name, res.status, fl);
      continue;
    }
    int sig = WIFSIGNALED(res.status) ? WTERMSIG(res.status) : 0;
    first_line(res.err, fl, sizeof fl);
    CHECK(sig == SIGABRT, "%s: free(%s) should end in SIGABRT, child %s %d (stderr: %s)", cases[i].name, ptr,
          sig ? "got signal" : "exited with", sig ? sig : WEXITSTATUS(res.status), fl);
    char line[1024];
    int any;
    int good = report_lines(res.err, ptr, cases[i].reasons, line, sizeof line, &any);
    CHECK(good == 1 && any == 1,
          "%s: free(%s): want exactly one stderr line 'hakmem: ...' with the pointer and '%s'; got %d such line(s), "
          "%d report line(s); stderr starts: %s",
          cases[i].name, ptr, cases[i].reasons, good, any, fl);
    if (good == 1) hk_note("%-18s SIGABRT, %s", cases[i].name, line);
  }

  /* warn mode: everything in one process, which must carry on */
  char *args[] = {argv[0], "warn", NULL};
  spawn(args, "warn", NULL, &res);
  CHECK(WIFEXITED(res.status) && WEXITSTATUS(res.status) == 0,
        "warn mode: the child did not exit 0 (status %#x); its stderr ends: %.400s", res.status,
        strlen(res.err) > 400 ? res.err + strlen(res.err) - 400 : res.err);
  CHECK(strstr(res.out, "WARN-DONE") != NULL, "warn mode: the child did not finish");
  /* every EXPECTed pointer has its line */
  int idx = -1, seen = 0;
  char *save = NULL;
  for (char *l = strtok_r(res.out, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
    char w[64], ptr[64];
    if (sscanf(l, "CASE %63s", w) == 1) {
      for (idx = 0; idx < NCASES && strcmp(cases[idx].name, w); idx++)
        ;
    } else if (sscanf(l, "EXPECT %63s", ptr) == 1 && idx >= 0 && idx < NCASES) {
      char line[1024];
      int any;
      int good = report_lines(res.err, ptr, cases[idx].reasons, line, sizeof line, &any);
      CHECK(good >= 1, "warn mode: %s: free(%s): no stderr line 'hakmem: ...' with the pointer and '%s'",
            cases[idx].name, ptr, cases[idx].reasons);
      seen++;
    }
  }
  CHECK(seen == NCASES, "warn mode: %d of %d cases reached", seen, NCASES);
  if (check_failures) fprintf(stderr, "--- warn-mode child stderr ---\n%s--- end ---\n", res.err);

  check_crash_report();
  check_finish();
}
