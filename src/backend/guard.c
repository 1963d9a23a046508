/* The guard pool: HAK_GUARD_SLOTS slots, each HAK_GUARD_MAX bytes of data
 * pages followed by one PROT_NONE page (and one more before the first
 * slot), mapped PROT_NONE as address space only. A block is right-aligned
 * in its slot's data, so the byte past its end (after rounding to its
 * alignment) is on the guard page; only the pages it covers are made
 * readable. Freed, those pages go back to PROT_NONE (their memory is kept:
 * 256 slots bound it) and the slot joins the tail of the free FIFO: it is
 * reused only after every other free slot, which is the bounded quarantine.
 *
 * Backtraces come from libunwind when it is installed (hak_os_load_unwinder:
 * ten times cheaper), else from glibc's backtrace(); either is primed at
 * start-up, since its first call loads the unwinder and allocates. A
 * frame-pointer walk would be cheaper still but reads garbage in the code
 * most programs and libraries are built with (-O2 omits frame pointers),
 * where the unwinders follow .eh_frame and are exact. A sampled allocation
 * pays for two traces once in N. */
#include "backend/guard.h"
#include "base/config.h"
#include "base/counters.h"
#include "base/lock.h"
#include "base/report.h"
#include "os/os.h"

#include <dlfcn.h>
#include <execinfo.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#define SLOTS 256
#define DEPTH 24
#define STRIDE (HAK_GUARD_MAX + HAK_PAGE) /* data, then its guard page */

enum { SLOT_FREE, SLOT_LIVE, SLOT_FREED };

typedef struct {
  uintptr_t user; /* the block (0: never used) */
  size_t size;    /* bytes asked for */
  int state;
  uint32_t alloc_tid, free_tid;
  int alloc_n, free_n;
  void *alloc_bt[DEPTH], *free_bt[DEPTH];
} slot_t;

uintptr_t g_guard_lo, g_guard_hi;
static uintptr_t g_data; /* slot 0's data */
static slot_t g_slot[SLOTS];
static uint16_t g_fifo[SLOTS]; /* free slots, oldest freed first */
static unsigned g_fifo_head, g_fifo_n;
static hak_lock_t g_guard_lock_ = HAK_LOCK_INIT;
static __thread int t_busy; /* backtrace() must not come back here */

static hak_unwind_fn g_unwind; /* NULL: glibc's backtrace() */

static __thread uint32_t t_tid; /* 0: not asked yet; a system call saved per trace */

static uint32_t tid(void) {
  if (!t_tid) t_tid = (uint32_t)syscall(SYS_gettid);
  return t_tid;
}

static int trace(void **pcs, int max) { return g_unwind ? g_unwind(pcs, max) : backtrace(pcs, max); }

void hak_guard_init(void) {
  size_t len = HAK_PAGE + (size_t)SLOTS * STRIDE;
  /* 2 MiB-aligned: no registered region shares the pool's 2 MiB regions */
  char *m = hak_os_map_aligned(hak_align_up(len, HAK_SS_SIZE), HAK_SS_SIZE);
  if (!m) return; /* sampling stays off */
  hak_os_protect_none(m, hak_align_up(len, HAK_SS_SIZE));
  g_data = (uintptr_t)m + HAK_PAGE;
  for (unsigned i = 0; i < SLOTS; i++) g_fifo[i] = (uint16_t)i;
  g_fifo_n = SLOTS;
  void *prime[4];
  t_busy = 1;
  if (!dlsym(RTLD_DEFAULT, "__tsan_init")) g_unwind = hak_os_load_unwinder();
  trace(prime, 4);
  t_busy = 0;
  g_guard_lo = (uintptr_t)m;
  g_guard_hi = (uintptr_t)m + len;
}

static uintptr_t slot_data(unsigned i) { return g_data + (uintptr_t)i * STRIDE; }
static uintptr_t slot_end(unsigned i) { return slot_data(i) + HAK_GUARD_MAX; }

void *hak_guard_alloc(size_t size) {
  if (!g_guard_hi || size > HAK_GUARD_MAX || t_busy) return NULL;
  size_t align = size & -size;
  if (align < 16) align = 16;
  /* an aligned_alloc may have picked this size for an alignment above a
   * page, which a slot's data does not have */
  if (align > HAK_PAGE) return NULL;
  size_t need = size ? hak_align_up(size, 16) : 16;
  t_busy = 1;
  hak_lock(&g_guard_lock_);
  if (!g_fifo_n) {
    hak_unlock(&g_guard_lock_);
    t_busy = 0;
    return NULL;
  }
  unsigned i = g_fifo[g_fifo_head];
  g_fifo_head = (g_fifo_head + 1) % SLOTS;
  g_fifo_n--;
  slot_t *s = &g_slot[i];
  s->state = SLOT_LIVE;
  hak_unlock(&g_guard_lock_);
  uintptr_t p = (slot_end(i) - need) & ~(uintptr_t)(align - 1);
  uintptr_t first = p & ~(uintptr_t)(HAK_PAGE - 1);
  hak_os_protect_rw((void *)first, slot_end(i) - first);
  s->user = p;
  s->size = size;
  s->alloc_tid = tid();
  s->alloc_n = trace(s->alloc_bt, DEPTH);
  s->free_n = 0;
  t_busy = 0;
  hak_cnt_add(&g_stats.guard_allocs, 1);
  return (void *)p;
}

/* The slot a pool address belongs to: its data or the guard page after it.
 * -1 for the page before slot 0. */
static int slot_of(uintptr_t a) {
  if (a < g_data) return -1;
  unsigned i = (unsigned)((a - g_data) / STRIDE);
  return i < SLOTS ? (int)i : -1;
}

static void say_trace(const char *what, uint32_t who, void *const *bt, int n) {
  char buf[400];
  size_t len = hak_fmt(buf, sizeof buf, "hakmem:   %s by thread %u:\n", what, (uint64_t)who);
  hak_say(buf, len);
  for (int k = 0; k < n; k++) {
    Dl_info di;
    if (dladdr(bt[k], &di) && di.dli_fname) {
      uintptr_t off = (uintptr_t)bt[k] - (uintptr_t)di.dli_fbase;
      if (di.dli_sname)
        len = hak_fmt(buf, sizeof buf, "hakmem:     #%u %p %s+%p (%s+%p)\n", (uint64_t)k, bt[k], di.dli_sname,
                      (void *)((uintptr_t)bt[k] - (uintptr_t)di.dli_saddr), di.dli_fname, (void *)off);
      else
        len = hak_fmt(buf, sizeof buf, "hakmem:     #%u %p (%s+%p)\n", (uint64_t)k, bt[k], di.dli_fname,
                      (void *)off);
    } else {
      len = hak_fmt(buf, sizeof buf, "hakmem:     #%u %p\n", (uint64_t)k, bt[k]);
    }
    hak_say(buf, len);
  }
}

static void say_traces(const slot_t *s) {
  say_trace("allocated", s->alloc_tid, s->alloc_bt, s->alloc_n);
  if (s->state == SLOT_FREED) say_trace("freed", s->free_tid, s->free_bt, s->free_n);
}

void hak_guard_free(void *p) {
  uintptr_t a = (uintptr_t)p;
  int i = slot_of(a);
  slot_t *s = i >= 0 ? &g_slot[i] : NULL;
  hak_lock(&g_guard_lock_);
  int state = s ? s->state : SLOT_FREE;
  bool ok = s && state == SLOT_LIVE && s->user == a;
  if (ok) s->state = SLOT_FREED; /* a racing second free now sees it freed */
  hak_unlock(&g_guard_lock_);
  if (!ok) {
    char buf[320];
    size_t n;
    if (s && s->user == a && state == SLOT_FREED)
      n = hak_fmt(buf, sizeof buf,
                  "hakmem: invalid free(%p): double free of a guarded block of %zu bytes at %p (offset 0)%s\n", p,
                  (uint64_t)s->size, p, g_cfg.on_error_warn ? "; ignored" : "");
    else if (s && s->user && a >= slot_data((unsigned)i) && a < s->user + s->size)
      n = hak_fmt(buf, sizeof buf,
                  "hakmem: invalid free(%p): %s pointer into a guarded block of %zu bytes at %p (offset %d)%s\n",
                  p, state == SLOT_LIVE ? "interior" : "freed", (uint64_t)s->size, (void *)s->user,
                  (uint64_t)(int64_t)(a - s->user), g_cfg.on_error_warn ? "; ignored" : "");
    else
      n = hak_fmt(buf, sizeof buf, "hakmem: invalid free(%p): not allocated by hakmem (in the guard pool)%s\n", p,
                  g_cfg.on_error_warn ? "; ignored" : "");
    hak_say(buf, n);
    if (s && s->user) say_traces(s);
    hak_cnt_add(&g_stats.invalid_frees, 1);
    if (!g_cfg.on_error_warn) abort();
    return;
  }
  t_busy = 1;
  s->free_tid = tid();
  s->free_n = trace(s->free_bt, DEPTH);
  t_busy = 0;
  uintptr_t first = a & ~(uintptr_t)(HAK_PAGE - 1);
  hak_os_protect_none((void *)first, slot_end((unsigned)i) - first);
  /* no decommit: a slot keeps its pages (256 slots bound them), so reuse
   * makes no page fault and free one system call less */
  hak_lock(&g_guard_lock_);
  g_fifo[(g_fifo_head + g_fifo_n) % SLOTS] = (uint16_t)i;
  g_fifo_n++;
  hak_unlock(&g_guard_lock_);
}

size_t hak_guard_usable(const void *p, const char *fn) {
  uintptr_t a = (uintptr_t)p;
  int i = slot_of(a);
  if (i >= 0 && g_slot[i].state == SLOT_LIVE && g_slot[i].user == a) return slot_end((unsigned)i) - a;
  if (fn) hak_report_invalid(fn, p, "not a live guarded block", NULL);
  return 0;
}

bool hak_guard_owns(const void *p) {
  uintptr_t a = (uintptr_t)p;
  int i = slot_of(a);
  return i >= 0 && g_slot[i].state == SLOT_LIVE && a >= g_slot[i].user && a < slot_end((unsigned)i);
}

bool hak_guard_fault(const void *addr) {
  uintptr_t a = (uintptr_t)addr;
  if (!hak_guard_holds(addr)) return false;
  int i = slot_of(a);
  char buf[400];
  size_t n;
  /* No lock: the handler may have interrupted its holder. A fault in a
   * guard page belongs to the slot before it (an overflow); below a block,
   * to its own slot (an underflow). */
  const slot_t *s = i >= 0 ? &g_slot[i] : NULL;
  if (!s || !s->user) {
    n = hak_fmt(buf, sizeof buf, "hakmem: fault at address %p: in hakmem's guard pool, no block there\n", addr);
    hak_say(buf, n);
    return true;
  }
  const char *what = s->state == SLOT_FREED ? "use after free"
                     : a >= s->user + s->size ? "buffer overflow"
                     : a < s->user            ? "buffer underflow"
                                              : "fault";
  n = hak_fmt(buf, sizeof buf, "hakmem: %s at address %p: offset %d of the %zu-byte guarded block at %p\n", what,
              addr, (uint64_t)(int64_t)(a - s->user), (uint64_t)s->size, (void *)s->user);
  hak_say(buf, n);
  say_traces(s);
  return true;
}

void hak_guard_lock(void) { hak_lock(&g_guard_lock_); }
void hak_guard_unlock(void) { hak_unlock(&g_guard_lock_); }
void hak_guard_atfork_child(void) {
  hak_lock_reset(&g_guard_lock_);
  t_tid = 0; /* the child's only thread has a new id */
}
