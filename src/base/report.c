/* One-line reports of bad input, assertions and traces. Everything here
 * writes with write(2) from a stack buffer: no stdio, no allocation, so it
 * also works inside a signal handler and while the heap is in doubt. */
#include "base/report.h"
#include "base/config.h"
#include "base/counters.h"

#include <stdarg.h>
#include <stdlib.h>
#include <unistd.h>

/* Minimal formatter: %s, %p, %d, %u, %lu, %zu, %llu. Async-signal-safe. */
size_t hak_vfmt(char *buf, size_t cap, const char *f, va_list ap) {
  size_t n = 0;
/* c is evaluated whether or not it fits: the loops below advance in it */
#define PUT(c)                                                                                     \
  do {                                                                                             \
    char c_ = (char)(c);                                                                           \
    if (n + 1 < cap) buf[n++] = c_;                                                                \
  } while (0)
  for (; *f; f++) {
    if (*f != '%') {
      PUT(*f);
      continue;
    }
    f++;
    while (*f == 'l' || *f == 'z') f++;
    char tmp[24];
    int t = 0;
    if (*f == 's') {
      const char *s = va_arg(ap, const char *);
      if (!s) s = "(null)";
      while (*s) PUT(*s++);
    } else if (*f == 'p') {
      uintptr_t v = (uintptr_t)va_arg(ap, void *);
      PUT('0');
      PUT('x');
      do {
        tmp[t++] = "0123456789abcdef"[v & 15];
        v >>= 4;
      } while (v);
      while (t) PUT(tmp[--t]);
    } else if (*f == 'd' || *f == 'u') {
      /* every integer argument is passed as 64-bit by the callers */
      uint64_t v = va_arg(ap, uint64_t);
      if (*f == 'd' && (int64_t)v < 0) {
        PUT('-');
        v = (uint64_t)(-(int64_t)v);
      }
      do {
        tmp[t++] = (char)('0' + v % 10);
        v /= 10;
      } while (v);
      while (t) PUT(tmp[--t]);
    } else if (*f) {
      PUT(*f);
    } else {
      break;
    }
  }
#undef PUT
  buf[n < cap ? n : cap - 1] = 0;
  return n;
}

size_t hak_fmt(char *buf, size_t cap, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  size_t n = hak_vfmt(buf, cap, fmt, ap);
  va_end(ap);
  return n;
}

void hak_say(const char *s, size_t n) {
  while (n) {
    ssize_t w = write(2, s, n);
    if (w <= 0) return;
    s += w;
    n -= (size_t)w;
  }
}

void hak_report_invalid(const char *fn, const void *p, const char *what, const void *block) {
  char buf[320];
  size_t n;
  if (block)
    n = hak_fmt(buf, sizeof buf, "hakmem: invalid %s(%p): %s (block starts at %p)%s\n", fn, p,
                what, block, g_cfg.on_error_warn ? "; ignored" : "");
  else
    n = hak_fmt(buf, sizeof buf, "hakmem: invalid %s(%p): %s%s\n", fn, p, what,
                g_cfg.on_error_warn ? "; ignored" : "");
  hak_say(buf, n);
  hak_cnt_add(&g_stats.invalid_frees, 1);
  if (!g_cfg.on_error_warn) abort();
}

void hak_report_corruption(const void *p, const char *what) {
  char buf[320];
  size_t n = hak_fmt(buf, sizeof buf, "hakmem: heap corruption near %p: %s%s\n", p, what,
                     g_cfg.on_error_warn ? "; the affected blocks are leaked" : "");
  hak_say(buf, n);
  hak_cnt_add(&g_stats.invalid_frees, 1);
  if (!g_cfg.on_error_warn) abort();
}

void hak_assert_fail(const char *cond, const char *file, int line) {
  char buf[320];
  size_t n = hak_fmt(buf, sizeof buf, "hakmem: assertion failed: %s at %s:%d\n", cond, file,
                     (uint64_t)(int64_t)line);
  hak_say(buf, n);
  abort();
}

void hak_trace(const char *fmt, ...) {
  if (!g_cfg.debug) return;
  char buf[320];
  va_list ap;
  va_start(ap, fmt);
  size_t n = hak_vfmt(buf, sizeof buf - 1, fmt, ap);
  va_end(ap);
  buf[n++] = '\n';
  hak_say(buf, n);
}
