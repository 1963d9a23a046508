/* Error reports. Everything here writes with write(2) from a stack buffer:
 * no stdio, no allocation, so it also works inside a signal handler and
 * while the heap is in doubt. */
#include "errors.h"
#include "config.h"
#include "registry.h"
#include "stats.h"
#include "superslab.h"

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Minimal formatter: %s, %p, %d, %u, %lu, %zu, %llu. Async-signal-safe. */
size_t hak_vfmt(char *buf, size_t cap, const char *f, va_list ap) {
  size_t n = 0;
#define PUT(c)                                                                                     \
  do {                                                                                             \
    if (n + 1 < cap) buf[n++] = (c);                                                               \
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

static void say(const char *s, size_t n) {
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
  say(buf, n);
  hak_cnt_add(&g_stats.invalid_frees, 1);
  if (!g_cfg.on_error_warn) abort();
}

void hak_report_corruption(const void *p, const char *what) {
  char buf[320];
  size_t n = hak_fmt(buf, sizeof buf, "hakmem: heap corruption near %p: %s%s\n", p, what,
                     g_cfg.on_error_warn ? "; the affected blocks are leaked" : "");
  say(buf, n);
  hak_cnt_add(&g_stats.invalid_frees, 1);
  if (!g_cfg.on_error_warn) abort();
}

void hak_assert_fail(const char *cond, const char *file, int line) {
  char buf[320];
  size_t n = hak_fmt(buf, sizeof buf, "hakmem: assertion failed: %s at %s:%d\n", cond, file,
                     (uint64_t)(int64_t)line);
  say(buf, n);
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
  say(buf, n);
}

/* --- crash report ---------------------------------------------------------- */

/* Opt-in (HAKMEM_CRASH_REPORT=1): an allocator that put handlers on every
 * program's signals would add lines to ordinary crashes and keep tools that
 * only install a handler over the default one (libFuzzer, faulthandler's
 * chaining) from theirs. SIGABRT is left alone: hakmem's own aborts print
 * their reason before they abort. */
/* The region that holds a: its own, or for an address deep inside a Big
 * block the block's first region (the registry marks only that one). Bounded
 * walk down: a 128 GiB mapping at most. */
static hak_ss_t *crash_region(uintptr_t a) {
  if (hak_registry_test(a)) return hak_ss_of((void *)a);
  uintptr_t r = a & ~(uintptr_t)HAK_SS_MASK;
  for (unsigned i = 0; i < (1u << 16) && r >= HAK_SS_SIZE; i++) {
    r -= HAK_SS_SIZE;
    if (!hak_registry_test(r)) continue;
    hak_ss_t *ss = (hak_ss_t *)r;
    if (ss->magic == HAK_SS_MAGIC && ss->kind == HAK_SS_BIG && r + ss->map_size > a) return ss;
    return NULL;
  }
  return NULL;
}

static void crash_handler(int sig, siginfo_t *si, void *uc) {
  (void)uc;
  char buf[320], where[200];
  uintptr_t a = (uintptr_t)si->si_addr;
  /* A registered region's header is mapped, except while a trim is
   * unmapping it: a second fault here then ends the process with the
   * default action (SA_RESETHAND), only without this line. */
  hak_ss_t *ss = crash_region(a);
  if (!ss) {
    hak_fmt(where, sizeof where, "not in hakmem's heap");
  } else if (ss->magic != HAK_SS_MAGIC) {
    hak_fmt(where, sizeof where, "in hakmem's region %p, header unreadable", (void *)ss);
  } else if (ss->kind == HAK_SS_BIG) {
    hak_fmt(where, sizeof where, "inside hakmem's heap: Big block mapping %p of %zu bytes", (void *)ss,
            (uint64_t)ss->map_size);
  } else {
    unsigned slot = hak_slot_of(si->si_addr);
    const hak_slab_t *s = &ss->slab[slot];
    if (slot == 0)
      hak_fmt(where, sizeof where, "inside hakmem's heap: SuperSlab %p, its header", (void *)ss);
    else if (s->owner && s->head->state == HAK_SLOT_ACTIVE)
      hak_fmt(where, sizeof where, "inside hakmem's heap: SuperSlab %p, slot %u, a slab of %u-byte blocks",
              (void *)ss, (uint64_t)slot, (uint64_t)s->bsize);
    else
      hak_fmt(where, sizeof where, "inside hakmem's heap: SuperSlab %p, slot %u, holding no live block",
              (void *)ss, (uint64_t)slot);
  }
  size_t n = hak_fmt(buf, sizeof buf, "hakmem: %s at address %p: %s\n", sig == SIGSEGV ? "SIGSEGV" : "SIGBUS",
                     si->si_addr, where);
  say(buf, n);
  /* SA_RESETHAND restored the default action: re-raise so the exit status and
   * core dump are what they would have been without hakmem. */
  raise(sig);
}

void hak_crash_handler_install(void) {
  static const int sigs[] = {SIGSEGV, SIGBUS};
  for (unsigned i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
    struct sigaction old;
    if (sigaction(sigs[i], NULL, &old) != 0) continue;
    if (!(old.sa_flags & SA_SIGINFO) && old.sa_handler != SIG_DFL) continue;
    if (old.sa_flags & SA_SIGINFO) continue; /* the program's own handler */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = crash_handler;
    sa.sa_flags = SA_SIGINFO | SA_RESETHAND | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    sigaction(sigs[i], &sa, NULL);
  }
}
