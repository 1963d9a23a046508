/* test_junk.c — HAKMEM_JUNK=1: new blocks read 0xAA, freed ones 0xDD past
 * their first 16 bytes (the free list's link and double-free key), calloc's
 * blocks still read zero; without it, none of that (so the checks can fail).
 * Big blocks (above the LargePool) are not filled.
 *
 * usage: test_junk              (runs both children)
 *        test_junk child 0|1    (internal: checks with junk off or on)
 */
#include "hk_test.h"

static const size_t sizes[] = {8, 24, 200, 1040, 3000, 20000, 300000};
#define NS (sizeof sizes / sizeof sizes[0])

static size_t count_not(const unsigned char *p, size_t from, size_t n, unsigned char v) {
  size_t bad = 0;
  for (size_t i = from; i < n; i++) bad += p[i] != v;
  return bad;
}

static int child(int on) {
  size_t new_bad = 0, freed_bad = 0, zero_bad = 0;
  for (size_t k = 0; k < NS; k++) {
    for (int it = 0; it < 40; it++) {
      size_t n = sizes[k];
      unsigned char *p = malloc(n), *q = malloc(n);
      REQUIRE(p && q, "malloc(%zu) failed", n);
      new_bad += count_not(p, 0, n, 0xAA) != 0;
      memset(p, 0x11, n);
      free(p);
      /* a use after free on purpose: the block is still mapped, in the thread cache */
      freed_bad += count_not(p, 16, n, 0xDD) != 0;
      unsigned char *c = calloc(1, n);
      REQUIRE(c, "calloc(%zu) failed", n);
      zero_bad += count_not(c, 0, n, 0) != 0;
      free(c);
      free(q);
    }
  }
  CHECK(zero_bad == 0, "junk %d: %zu calloc blocks not zero", on, zero_bad);
  if (on) {
    CHECK(new_bad == 0, "junk on: %zu new blocks not all 0xAA", new_bad);
    CHECK(freed_bad == 0, "junk on: %zu freed blocks not 0xDD past 16 bytes", freed_bad);
  } else {
    CHECK(new_bad > 0 && freed_bad > 0, "junk off: blocks read as junk anyway (new %zu, freed %zu of %zu)", new_bad,
          freed_bad, NS * 40);
  }
  check_finish();
  return 0;
}

int main(int argc, char **argv) {
  hk_init("junk");
  if (argc >= 3 && !strcmp(argv[1], "child")) return child(atoi(argv[2]));
  for (int on = 0; on <= 1; on++) {
    fflush(NULL);
    pid_t pid = fork();
    REQUIRE(pid >= 0, "fork failed");
    if (pid == 0) {
      if (on) setenv("HAKMEM_JUNK", "1", 1);
      else unsetenv("HAKMEM_JUNK");
      char *args[] = {argv[0], "child", on ? "1" : "0", NULL};
      execv("/proc/self/exe", args);
      _exit(127);
    }
    int st;
    waitpid(pid, &st, 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the child with junk %s failed (status %#x)", on ? "on" : "off", st);
  }
  check_finish();
  return 0;
}
