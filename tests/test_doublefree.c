/* test_doublefree.c — a second free of a block is caught on every tier,
 * whatever was freed in between, and never hands the block out twice.
 *
 * The shape of the bug (issue 13): p = malloc(n); q = malloc(n);
 * r = malloc(n); free(p); free(q); free(r); free(p); for n = 24, 200, 3000,
 * 20000 and 300000 (Tiny, Tiny, Mid, Mid, Large), a Big block that BigCache
 * holds, an 8-byte block, a block still in its thread's cache, and remote
 * (cross-thread) frees in each order. Each case runs in a child (this
 * program re-executed); the child announces p, and must print exactly one
 * line "hakmem: invalid free(p): double free..." and die of SIGABRT. With
 * HAKMEM_ON_ERROR=warn one child runs every case, prints the same lines,
 * and then eight mallocs of n must return eight different blocks.
 *
 * The test's oracle is shown to work: "foreign_key" cases overwrite the
 * freed block's key word (the second word, see frontend/heap.h) with a value
 * that is not the key, and then the same double free must go unnoticed and
 * hand the block out twice, which the child reports as DUP.
 *
 * usage: test_doublefree                 (runs everything)
 *        test_doublefree case NAME       (internal: one case, abort mode)
 *        test_doublefree warn            (internal: every case, warn mode)
 */
#include "hk_test.h"
#include "hk_spawn.h"

typedef struct {
  const char *name;
  size_t n;
  int how; /* below */
} dcase_t;

enum {
  SEQ,          /* p, q, r; free p, q, r; free p */
  CACHED,       /* p, q, r; free p, q, r; free r (still in the thread's cache) */
  REMOTE,       /* p, q, r here; another thread frees p, q, r, then p */
  REMOTE_LOCAL, /* freed here, then freed again by another thread */
  LOCAL_REMOTE, /* freed by another thread, then again here */
  FOREIGN_KEY,  /* SEQ with the key word of p overwritten before the second free */
};

static const dcase_t cases[] = {
    {"seq_24", 24, SEQ},
    {"seq_200", 200, SEQ},
    {"seq_3000", 3000, SEQ},
    {"seq_20000", 20000, SEQ},
    {"seq_300000", 300000, SEQ},
    {"seq_8", 8, SEQ},
    {"seq_big", 5u << 20, SEQ},
    {"cached_mid", 20000, CACHED},
    {"cached_large", 300000, CACHED},
    {"cached_big", 5u << 20, CACHED},
    {"remote_24", 24, REMOTE},
    {"remote_8", 8, REMOTE},
    {"remote_3000", 3000, REMOTE},
    {"remote_300000", 300000, REMOTE},
    {"remote_local_200", 200, REMOTE_LOCAL},
    {"remote_local_20000", 20000, REMOTE_LOCAL},
    {"local_remote_200", 200, LOCAL_REMOTE},
    {"local_remote_20000", 20000, LOCAL_REMOTE},
};
#define NCASES ((int)(sizeof cases / sizeof cases[0]))

static const dcase_t foreign[] = {
    {"foreign_key_24", 24, FOREIGN_KEY},
    {"foreign_key_8", 8, FOREIGN_KEY},
    {"foreign_key_3000", 3000, FOREIGN_KEY},
};
#define NFOREIGN ((int)(sizeof foreign / sizeof foreign[0]))

/* ------------------------------------------------------------ the child */

static void announce(void *p) {
  printf("EXPECT %p\n", p);
  fflush(stdout);
}

typedef struct {
  char *v[3];
  int first, last; /* free v[first..last] */
  char *again;     /* then free this once more (announced) */
} frees_t;

static void *free_some(void *arg) {
  frees_t *f = arg;
  for (int i = f->first; i <= f->last; i++) free(f->v[i]);
  if (f->again) {
    announce(f->again);
    free(f->again);
  }
  return NULL;
}

static void in_thread(frees_t *f) {
  pthread_t t;
  REQUIRE(pthread_create(&t, NULL, free_some, f) == 0, "pthread_create failed");
  pthread_join(t, NULL);
}

static void run_case(const dcase_t *c) {
  frees_t f = {{NULL, NULL, NULL}, 0, 2, NULL};
  for (int i = 0; i < 3; i++) {
    f.v[i] = malloc(c->n);
    REQUIRE(f.v[i], "malloc(%zu) failed", c->n);
    memset(f.v[i], 0x5a, c->n < 4096 ? c->n : 4096);
  }
  char *p = f.v[0];
  switch (c->how) {
  case SEQ:
    f.again = p;
    free_some(&f);
    break;
  case CACHED:
    f.again = f.v[2];
    free_some(&f);
    break;
  case REMOTE:
    f.again = p;
    in_thread(&f);
    break;
  case REMOTE_LOCAL:
    free_some(&f);
    f.first = 1, f.last = 0, f.again = p;
    in_thread(&f);
    break;
  case LOCAL_REMOTE:
    in_thread(&f);
    f.first = 1, f.last = 0, f.again = p;
    free_some(&f);
    break;
  case FOREIGN_KEY:
    free_some(&f);
    ((uintptr_t *)p)[1] ^= 0x10; /* no longer the key of the heap */
    free(p);
    break;
  }
}

/* eight mallocs of n after the case: all different (a block freed twice
 * would come back twice); DUP names a block handed out twice */
static int eight_distinct(size_t n) {
  char *v[8];
  int dup = 0;
  for (int i = 0; i < 8; i++) {
    v[i] = malloc(n);
    REQUIRE(v[i], "malloc(%zu) failed", n);
    for (int j = 0; j < i; j++)
      if (v[j] == v[i]) {
        printf("DUP %p\n", (void *)v[i]);
        fflush(stdout);
        dup++;
      }
  }
  return dup;
}

static const dcase_t *find_case(const char *name) {
  for (int i = 0; i < NCASES; i++)
    if (!strcmp(cases[i].name, name)) return &cases[i];
  for (int i = 0; i < NFOREIGN; i++)
    if (!strcmp(foreign[i].name, name)) return &foreign[i];
  return NULL;
}

static int child_case(const char *name) {
  struct rlimit rl = {0, 0};
  setrlimit(RLIMIT_CORE, &rl);
  alarm(20);
  const dcase_t *c = find_case(name);
  REQUIRE(c, "unknown case %s", name);
  run_case(c);
  /* only a foreign key gets here in abort mode: the double free went
   * unnoticed, and the block comes back twice; the heap is corrupt, so the
   * child leaves at once */
  eight_distinct(c->n);
  printf("RETURNED\n");
  fflush(stdout);
  _exit(0);
}

static int child_warn(void) {
  alarm(30);
  hak_stats_t s0, s1;
  hk_stats(&s0);
  for (int i = 0; i < NCASES; i++) {
    printf("CASE %s\n", cases[i].name);
    fflush(stdout);
    run_case(&cases[i]);
    CHECK(eight_distinct(cases[i].n) == 0, "warn mode, %s: a block was handed out twice", cases[i].name);
  }
  hk_stats(&s1);
  if (HK_HAVE_PROOF)
    CHECK(s1.invalid_frees == s0.invalid_frees + (uint64_t)NCASES,
          "warn mode: invalid_frees went from %" PRIu64 " to %" PRIu64 " after %d double frees", s0.invalid_frees,
          s1.invalid_frees, NCASES);
  printf("WARN-DONE\n");
  fflush(stdout);
  check_finish();
  return 0;
}

/* ----------------------------------------------------------- the parent */

typedef hk_result_t result_t;

/* this program again with args and HAKMEM_ON_ERROR=on_error (NULL: unset) */
static void spawn(char *const args[], const char *on_error, result_t *res) {
  char e1[64];
  hk_env(e1, sizeof e1, "HAKMEM_ON_ERROR", on_error);
  const char *env[] = {e1, NULL};
  hk_spawn(args, env, res);
}

#define first_line hk_first_line

/* lines of err starting "hakmem: "; those that are the double-free report
 * for ptr ("hakmem: invalid free(PTR): double free") are counted in *good */
static int report_lines(const char *err, const char *ptr, int *good, char *line, size_t cap) {
  char want[128];
  snprintf(want, sizeof want, "hakmem: invalid free(%s): double free", ptr);
  int n = 0;
  *good = 0;
  line[0] = 0;
  for (const char *l = err; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
    if (strncmp(l, "hakmem: ", 8)) continue;
    n++;
    if (!strncmp(l, want, strlen(want))) {
      (*good)++;
      first_line(l, line, cap);
    }
  }
  return n;
}

static void check_abort_case(char *argv0, const dcase_t *c) {
  static result_t res;
  char *args[] = {argv0, "case", (char *)c->name, NULL};
  spawn(args, NULL, &res);
  char ptr[64] = "", fl[300], line[300];
  first_line(res.err, fl, sizeof fl);
  const char *e = strstr(res.out, "EXPECT ");
  if (!e || sscanf(e, "EXPECT %63s", ptr) != 1) {
    CHECK(0, "%s: the child did not reach the double free (status %#x, stderr: %s)", c->name, res.status, fl);
    return;
  }
  int sig = WIFSIGNALED(res.status) ? WTERMSIG(res.status) : 0;
  int good, any = report_lines(res.err, ptr, &good, line, sizeof line);
  CHECK(sig == SIGABRT, "%s: the second free(%s) should end in SIGABRT; child %s %d (stdout: %.80s; stderr: %s)",
        c->name, ptr, sig ? "got signal" : "exited with", sig ? sig : WEXITSTATUS(res.status), res.out, fl);
  CHECK(good == 1 && any == 1, "%s: want one line 'hakmem: invalid free(%s): double free'; got %d report(s): %s",
        c->name, ptr, any, fl);
  if (good == 1) hk_note("%-20s SIGABRT, %s", c->name, line);
}

/* the oracle: with the key overwritten, the same double free is not caught
 * and the block is handed out twice */
static void check_foreign_key(char *argv0, const dcase_t *c) {
  static result_t res;
  char *args[] = {argv0, "case", (char *)c->name, NULL};
  spawn(args, NULL, &res);
  char fl[300];
  first_line(res.err, fl, sizeof fl);
  CHECK(WIFEXITED(res.status) && WEXITSTATUS(res.status) == 0 && strstr(res.out, "DUP ") &&
            strstr(res.out, "RETURNED"),
        "%s: with a foreign key the double free should go unnoticed and hand a block out twice "
        "(status %#x, stdout: %.80s, stderr: %s)",
        c->name, res.status, res.out, fl);
  if (strstr(res.out, "DUP ")) hk_note("%-20s not caught with a foreign key: a block handed out twice", c->name);
}

static void check_warn(char *argv0) {
  static result_t res;
  char *args[] = {argv0, "warn", NULL};
  spawn(args, "warn", &res);
  char fl[300];
  first_line(res.err, fl, sizeof fl);
  CHECK(WIFEXITED(res.status) && WEXITSTATUS(res.status) == 0 && strstr(res.out, "WARN-DONE"),
        "warn mode: the child failed (status %#x, stdout: %.200s, stderr: %s)", res.status, res.out, fl);
  CHECK(!strstr(res.out, "DUP "), "warn mode: a block was handed out twice: %.200s", strstr(res.out, "DUP "));
  /* every case's pointer has its one report, marked as ignored */
  int reports = 0;
  for (const char *e = res.out; (e = strstr(e, "EXPECT ")); e++) {
    char ptr[64], want[128];
    if (sscanf(e, "EXPECT %63s", ptr) != 1) continue;
    snprintf(want, sizeof want, "hakmem: invalid free(%s): double free", ptr);
    const char *l = strstr(res.err, want);
    CHECK(l && strstr(l, "; ignored"), "warn mode: no '%s ...; ignored' line", want);
    reports++;
  }
  CHECK(reports == NCASES, "warn mode: %d of %d cases reached their double free", reports, NCASES);
}

int main(int argc, char **argv) {
  hk_init("doublefree");
  if (argc >= 3 && !strcmp(argv[1], "case")) return child_case(argv[2]);
  if (argc >= 2 && !strcmp(argv[1], "warn")) return child_warn();
  for (int i = 0; i < NCASES; i++) check_abort_case(argv[0], &cases[i]);
  for (int i = 0; i < NFOREIGN; i++) check_foreign_key(argv[0], &foreign[i]);
  check_warn(argv[0]);
  check_finish();
  return 0;
}
