/* check.h — the CHECK and REQUIRE of every test program: tests/test_*.c
 * (through hk_test.h), tests/test_*.cpp and tests/unit_*.c. C and C++.
 *
 *   CHECK(cond[, fmt, ...])    counts a check; when cond is false, prints
 *                                CHECK FAILED file:line: cond -- message
 *                              on stderr and goes on (the message is printf's
 *                              fmt, a string literal, and its arguments, which
 *                              are evaluated only on failure)
 *   REQUIRE(cond[, fmt, ...])  the same, and on failure ends the process
 *                              through check_finish() (status 1)
 *   check_summary(name)        prints "name: N checks, ok" or
 *                              "name: M of N checks failed" on stderr and
 *                              returns the exit status (0 or 1):
 *                              `return check_summary("unit_tiers");`
 *   check_finish()             check_summary(check_name), then exits with
 *                              that status (_exit on failure: no atexit
 *                              handler runs in a heap that failed a check)
 *
 * check_failures and check_count are the counts so far (counted atomically:
 * threads check too); check_name (default
 * "test") and CHECK_MODE (a string literal defined before this header is
 * included, e.g. "linked") name the program in the summary. Only the first
 * CHECK_MAX_SHOWN failures are printed; all are counted.
 * scripts/run_tests.sh shows the first "CHECK FAILED" line as the reason.
 */
#ifndef HK_CHECK_H
#define HK_CHECK_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define CHECK_MAX_SHOWN 40

static int check_failures, check_count;
static const char *check_name = "test";

__attribute__((unused)) static void check_fail(const char *file, int line, const char *expr,
                                               const char *fmt, ...) {
  int n = __atomic_add_fetch(&check_failures, 1, __ATOMIC_RELAXED);
  if (n > CHECK_MAX_SHOWN) {
    if (n == CHECK_MAX_SHOWN + 1) fprintf(stderr, "CHECK: (further failures not shown)\n");
    return;
  }
  fprintf(stderr, "CHECK FAILED %s:%d: %s", file, line, expr);
  if (fmt && *fmt) {
    va_list ap;
    va_start(ap, fmt);
    fputs(" -- ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
  }
  fputc('\n', stderr);
  fflush(stderr);
}

__attribute__((unused)) static int check_summary(const char *name) {
#ifdef CHECK_MODE
  fprintf(stderr, "%s [%s]: ", name, CHECK_MODE);
#else
  fprintf(stderr, "%s: ", name);
#endif
  if (check_failures)
    fprintf(stderr, "%d of %d checks failed\n", check_failures, check_count);
  else
    fprintf(stderr, "%d checks, ok\n", check_count);
  fflush(stderr);
  return check_failures ? 1 : 0;
}

__attribute__((unused)) static void check_finish(void) {
  if (check_summary(check_name)) _exit(1);
  exit(0);
}

#define CHECK(cond, ...)                                                                 \
  do {                                                                                   \
    (void)__atomic_add_fetch(&check_count, 1, __ATOMIC_RELAXED);                          \
    if (!(cond)) check_fail(__FILE__, __LINE__, #cond, "" __VA_ARGS__);                  \
  } while (0)

#define REQUIRE(cond, ...)                                                               \
  do {                                                                                   \
    (void)__atomic_add_fetch(&check_count, 1, __ATOMIC_RELAXED);                          \
    if (!(cond)) {                                                                       \
      check_fail(__FILE__, __LINE__, #cond, "" __VA_ARGS__);                             \
      check_finish();                                                                    \
    }                                                                                    \
  } while (0)

#endif
