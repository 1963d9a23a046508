/* The CHECK macro of the unit tests (tests/unit_*.c): counts checks and
 * failures, prints each failure with its location, never stops the test. */
#ifndef UNIT_CHECK_H
#define UNIT_CHECK_H
#include <stdio.h>

static int g_fail, g_checks;
#define CHECK(c, ...)                                                                              \
  do {                                                                                             \
    g_checks++;                                                                                    \
    if (!(c)) {                                                                                    \
      g_fail++;                                                                                    \
      fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #c);                       \
      fprintf(stderr, __VA_ARGS__);                                                                \
      fputc('\n', stderr);                                                                         \
    }                                                                                              \
  } while (0)

#endif
