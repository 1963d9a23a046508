/* Reports of bad input (invalid and double frees) and the crash report. */
#ifndef HAK_ERRORS_H
#define HAK_ERRORS_H
#include "common.h"

/* "hakmem: invalid free(0x...): what" on stderr, then abort() unless
 * HAKMEM_ON_ERROR=warn. Never touches the block. */
void hak_report_invalid(const char *fn, const void *p, const char *what, const void *block);
void hak_report_corruption(const void *p, const char *what);
void hak_crash_handler_install(void);
/* Formats into buf without allocating; returns length. */
size_t hak_fmt(char *buf, size_t cap, const char *fmt, ...);
#include <stdarg.h>

#pragma GCC visibility push(hidden) /* internal: no GOT indirection */
size_t hak_vfmt(char *buf, size_t cap, const char *fmt, va_list ap);

#pragma GCC visibility pop

#endif
