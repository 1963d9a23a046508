/* One-line reports of bad input (invalid and double frees, corruption), and
 * the formatter every report uses. */
#ifndef HAK_REPORT_H
#define HAK_REPORT_H
#include "base/common.h"

#include <stdarg.h>

/* "hakmem: invalid free(0x...): what" on stderr, then abort() unless
 * HAKMEM_ON_ERROR=warn. Never touches the block. */
void hak_report_invalid(const char *fn, const void *p, const char *what, const void *block);
void hak_report_corruption(const void *p, const char *what);
/* Formats into buf without allocating; returns length. */
size_t hak_fmt(char *buf, size_t cap, const char *fmt, ...);

#pragma GCC visibility push(hidden) /* internal: no GOT indirection */
size_t hak_vfmt(char *buf, size_t cap, const char *fmt, va_list ap);
/* write(2) to stderr, whole: async-signal-safe. */
void hak_say(const char *s, size_t n);

#pragma GCC visibility pop

#endif
