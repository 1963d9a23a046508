/* The hak_* API: malloc, free and the rest of the family. Size picks the
 * tier: one compare for Tiny, one more for MidPool, one more for LargePool,
 * each followed by one table lookup; everything larger is Big. */
#include "api/alloc.h"
#include "hakmem.h"
#include "backend/arena.h"
#include "backend/big.h"
#include "backend/guard.h"
#include "backend/lookup.h"
#include "backend/shared_pool.h"
#include "base/config.h"
#include "base/init.h"
#include "base/report.h"
#include "diag/prof.h"
#include "frontend/heap.h"
#include "mem/size_class.h"
#include "os/os.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

/* realloc growing a slab block to this size or more moves it to the Big tier. */
#ifndef HAK_REALLOC_BIG
#define HAK_REALLOC_BIG ((size_t)128 << 10)
#endif

/* Every new Big block goes through here, so the profiler sees each one
 * (the Big tier, a layer below it, cannot call it). */
static void *big_alloc(size_t n, size_t align, bool *zero) {
  void *p = hak_big_alloc(n, align, zero);
  hak_prof_big_alloc(p, n);
  return p;
}

static HAK_COLD void *big_malloc(size_t n, size_t align, bool *zero) {
  hak_init();
  if (n > HAK_MAX_REQUEST) {
    errno = ENOMEM;
    return NULL;
  }
  /* A size that looked Big before the tables existed may belong to a slab tier. */
  int c = align <= 16 ? hak_size_to_class(n) : hak_class_for_aligned(n, align);
  if (c >= 0) return hak_heap_alloc((unsigned)c, n);
  return big_alloc(n, align, zero);
}

HAK_API void *hak_malloc(size_t n) {
  if (HAK_LIKELY(n <= HAK_TINY_MAX)) return hak_heap_alloc_tiny(n);
  int c = hak_class_above_tiny(n);
  if (HAK_LIKELY(c >= 0)) return hak_heap_alloc((unsigned)c, n);
  bool zero;
  return big_malloc(n, 0, &zero);
}

/* --- free ------------------------------------------------------------------ */

static HAK_NOINLINE void free_slow(void *p) {
  if (HAK_UNLIKELY(hak_guard_holds(p))) {
    hak_guard_free(p);
    return;
  }
  hak_ptr_t r = hak_lookup(p, HAK_LOOKUP_LOCK);
  switch (r.kind) {
  case HAK_PTR_NULL: return;
  case HAK_PTR_BIG:
    hak_prof_big_free(p);
    hak_big_free(r.big);
    return;
  case HAK_PTR_BLOCK:
    if (HAK_UNLIKELY(hak_prof_slab(r.slab))) {
      hak_prof_free_block(r.slab, p);
      return;
    }
    /* Ours, a valid block start, yet the fast path refused: the block
     * holds the heap's free key, so it is most likely free already. */
    if (r.slab->geo.owner == t_heap) hak_heap_free_slow(r.slab, p);
    else hak_heap_remote_free(r.slab, p);
    return;
  default: hak_report_invalid("free", p, r.why, r.block); return;
  }
}

HAK_API void hak_free(void *p) {
  if (HAK_LIKELY(hak_registry_test((uintptr_t)p)) && HAK_LIKELY(hak_heap_free_fast(p))) return;
  free_slow(p);
}

HAK_API void hak_free_sized(void *p, size_t size) {
#if defined(HAKMEM_DEBUG) && HAKMEM_DEBUG
  if (p && hak_malloc_usable_size(p) < size) hak_report_invalid("free_sized", p, "size larger than the block", NULL);
#else
  (void)size;
#endif
  hak_free(p);
}

/* --- sizes ----------------------------------------------------------------- */

HAK_API size_t hak_malloc_usable_size(const void *p) {
  if (HAK_UNLIKELY(hak_guard_holds(p))) return hak_guard_usable(p, "malloc_usable_size");
  hak_ptr_t r = hak_lookup(p, HAK_LOOKUP_LOCK);
  switch (r.kind) {
  case HAK_PTR_BLOCK: return r.slab->geo.bsize;
  case HAK_PTR_BIG: return r.big->user_size;
  case HAK_PTR_NULL: return 0;
  default: hak_report_invalid("malloc_usable_size", p, r.why, r.block); return 0;
  }
}

/* hak_owns may be asked about a block another thread is freeing this very
 * moment: the big lock keeps the Big table's entries still while it reads
 * them, and the reader count keeps arenas (unmapped only by
 * hak_arena_release_free, once no reader is inside) mapped while it reads
 * SuperSlab headers. */
HAK_API int hak_owns(const void *p) {
  if (!p) return 0;
  hak_init();
  if (hak_guard_holds(p)) return hak_guard_owns(p);
  hak_big_lock();
  hak_sp_reader_enter();
  int r = hak_ptr_is_ours(hak_lookup(p, HAK_LOOKUP_LOCKED).kind);
  hak_sp_reader_exit();
  hak_big_unlock();
  return r;
}

/* --- calloc, realloc ------------------------------------------------------- */

/* Zeroing a block that is not known to be zero (calloc, MALLOCX_ZERO).
 * memset faults in every page the block spans, also those the program will
 * never touch: stress-ng writes one word of each calloc'ed block, and memset
 * made the rest resident (jemalloc, which zeroes such blocks with
 * MADV_DONTNEED, stayed far smaller). MADV_DONTNEED costs more than memset
 * when the program then uses the pages (a TLB shootdown, then a fault per
 * page, two when it reads first: large_heap several times slower). So
 * the program's own habit decides, per power-of-two size: one zeroing in
 * ZERO_SAMPLE of that size leaves a few pages from the middle of its block
 * to the OS and keeps them as a probe, and the next such sampled zeroing
 * asks mincore which of them the program has touched since (whatever
 * zeroed the other blocks, the probe shows only the program's use). The
 * share left untouched, averaged, picks how the others are zeroed: while
 * the program uses what it callocs, only one zeroing in ZERO_SAMPLE makes
 * system calls, and costs a few faults. Where a huge page may back the
 * block, memset: a partial MADV_DONTNEED would split it. */
#define ZERO_OS_MIN ((size_t)4 * HAK_PAGE)   /* below, memset */
#define ZERO_BY_OS ((size_t)2 * HAK_SS_SIZE) /* from here on, by the OS: too long to write */
#define ZERO_SAMPLE 32u
#define ZERO_SIZES 8   /* 16 KiB, 32 KiB, ..., 2 MiB and up */
#define ZERO_ONE 1024u /* an average of 1: every page left untouched */
#define ZERO_PROBE_PAGES 4u /* from the middle of the block: its first page is the likeliest used */
static _Atomic uint32_t g_zero_untouched[ZERO_SIZES];
static __thread struct {
  uintptr_t lo; /* the probe's first page */
  uint32_t pages; /* 0: no probe */
  uint32_t tick;
} t_zero[ZERO_SIZES];

static void zero_os_or_write(uintptr_t lo, uintptr_t hi) {
  if (!hak_os_zero((void *)lo, hi - lo)) memset((void *)lo, 0, hi - lo);
}

/* What the program did with size k's probe since it was zeroed. Read at the
 * next sampled zeroing of size k, or sooner when a block holding the probe
 * is about to be zeroed again (reused at once: the blocks of a class go
 * last out, first in). A probe's block may have been freed or even unmapped
 * since: mincore only reads, and what it says of a block reused by malloc
 * still describes this program. */
static void probe_read(unsigned k) {
  unsigned char vec[ZERO_PROBE_PAGES];
  size_t np = t_zero[k].pages, untouched = 0;
  t_zero[k].pages = 0;
  if (!np || !hak_os_resident((void *)t_zero[k].lo, np * HAK_PAGE, vec)) return;
  for (size_t i = 0; i < np; i++) untouched += !(vec[i] & 1);
  uint32_t old = atomic_load_explicit(&g_zero_untouched[k], memory_order_relaxed);
  uint32_t now = (uint32_t)(untouched * ZERO_ONE / np);
  atomic_store_explicit(&g_zero_untouched[k], old - old / 8 + now / 8, memory_order_relaxed);
}

void hak_zero(void *p, size_t n) {
  uintptr_t a = (uintptr_t)p, lo = hak_align_up(a, HAK_PAGE), hi = (a + n) & ~(uintptr_t)(HAK_PAGE - 1);
  if (n < ZERO_OS_MIN || (n < ZERO_BY_OS && hak_ss_huge_at(p))) { /* [lo, hi) holds 3 pages or more */
    memset(p, 0, n);
    return;
  }
  memset(p, 0, lo - a);
  memset((void *)hi, 0, a + n - hi);
  if (n >= ZERO_BY_OS) {
    zero_os_or_write(lo, hi);
    return;
  }
  unsigned k = (unsigned)(63 - __builtin_clzll(n)) - 14; /* n >= 16 KiB: 0 */
  if (k >= ZERO_SIZES) k = ZERO_SIZES - 1;
  if (t_zero[k].pages && t_zero[k].lo - lo < hi - lo) probe_read(k); /* the probe starts in this block */
  bool by_os = atomic_load_explicit(&g_zero_untouched[k], memory_order_relaxed) > ZERO_ONE / 2;
  if (t_zero[k].tick++ % ZERO_SAMPLE) {
    if (by_os)
      zero_os_or_write(lo, hi);
    else
      memset((void *)lo, 0, hi - lo);
    return;
  }
  probe_read(k);
  size_t np = (hi - lo) / HAK_PAGE, w = np < ZERO_PROBE_PAGES ? np : ZERO_PROBE_PAGES;
  uintptr_t w0 = lo + (np - w) / 2 * HAK_PAGE, w1 = w0 + w * HAK_PAGE;
  bool probed = hak_os_zero((void *)(by_os ? lo : w0), by_os ? hi - lo : w1 - w0);
  if (!probed || !by_os) { /* memset around the probe, or all of it if the OS refused */
    memset((void *)lo, 0, (probed ? w0 : hi) - lo);
    if (probed) memset((void *)w1, 0, hi - w1);
  }
  if (probed) {
    t_zero[k].lo = w0;
    t_zero[k].pages = (uint32_t)w;
  }
}

/* A known-zero block has never been touched. Its first read would map the
 * kernel's zero page, and the write that follows would copy it and flush
 * the TLB of every CPU running the process: two faults and an IPI where a
 * write costs one. Programs read calloc'ed memory before they write it
 * (hash buckets, flags), so a block of up to HAK_LARGE_LIMIT (what a
 * slab could hold) takes its faults here, by a write of one zero per page
 * (glibc and tcmalloc write such blocks whole). A larger Big block stays
 * untouched: that is where sparse arrays live. */
static void prefault_zero(void *p, size_t n) {
  for (uintptr_t a = (uintptr_t)p, end = a + n; a < end; a = (a | (HAK_PAGE - 1)) + 1)
    *(volatile char *)a = 0;
}

HAK_API void *hak_calloc(size_t n, size_t size) {
  size_t total;
  if (HAK_UNLIKELY(__builtin_mul_overflow(n, size, &total) || total > HAK_MAX_REQUEST)) {
    errno = ENOMEM;
    return NULL;
  }
  bool zero = false;
  void *p;
  if (HAK_LIKELY(total <= HAK_TINY_MAX)) {
    p = hak_heap_alloc(g_cls_tiny[(total + 15) >> 4], total);
  } else {
    hak_init();
    int c = hak_class_above_tiny(total);
    if (c >= 0) {
      p = hak_heap_alloc_zero_aware(t_heap, (unsigned)c, &zero);
    } else {
      p = big_alloc(total, 0, &zero);
    }
  }
  if (p && !zero)
    hak_zero(p, total);
  else if (p && total <= HAK_LARGE_LIMIT)
    prefault_zero(p, total);
  return p;
}

/* to_big: the block goes to the Big tier (a slab tier if that fails). */
static void *realloc_move(void *p, size_t old_usable, size_t n, bool to_big) {
  bool zero;
  void *q = to_big ? big_alloc(n, 0, &zero) : NULL;
  if (!q) q = hak_malloc(n);
  if (!q) return NULL; /* errno is ENOMEM; p stays valid */
  memcpy(q, p, old_usable < n ? old_usable : n);
  hak_free(p);
  return q;
}

HAK_API void *hak_realloc(void *p, size_t n) {
  if (!p) return hak_malloc(n);
  if (n == 0) { /* glibc's behaviour: free and return NULL */
    hak_free(p);
    return NULL;
  }
  if (n > HAK_MAX_REQUEST) {
    errno = ENOMEM;
    return NULL;
  }
  if (HAK_UNLIKELY(hak_guard_holds(p))) { /* a sampled block moves to an ordinary one */
    size_t old = hak_guard_usable(p, "realloc");
    if (!old) {
      errno = EINVAL;
      return NULL;
    }
    return realloc_move(p, old, n, false);
  }
  hak_ptr_t r = hak_lookup(p, HAK_LOOKUP_LOCK);
  if (r.kind != HAK_PTR_BLOCK && r.kind != HAK_PTR_BIG) {
    hak_report_invalid("realloc", p, r.why, r.block);
    errno = EINVAL;
    return NULL;
  }
  if (r.kind == HAK_PTR_BIG) {
    hak_big_t *h = r.big;
    size_t old = h->user_size;
    /* Shrunk to well under what was last asked for, and to a slab size:
     * a slab serves it better than a mapping. */
    if (n <= g_large_max / 2 && n < h->req_size / 2) return realloc_move(p, old, n, false);
    hak_prof_big_free(p); /* resized in place or moved: sampled again as new */
    void *q = hak_big_realloc(h, n);
    if (q) {
      hak_prof_big_alloc(q, n);
      return q;
    }
    return realloc_move(p, old, n, false);
  }
  size_t old = r.slab->geo.bsize;
  /* In place while the block has room; on shrinking, until it would waste
   * more than half of itself. */
  if (n <= old && (n > old / 2 || hak_size_to_class(n) == (int)r.slab->geo.cls || old <= 32)) return p;
  /* Grown by at most 2x to HAK_REALLOC_BIG or more, as a buffer that grows
   * step by step is: move to the Big tier once, where further growth is an
   * mremap or stays in place instead of a copy at every class. A jump to an
   * unrelated size (a program reusing a pointer for new contents) stays in
   * the slabs: a Big block there is a fresh mapping faulted in page by
   * page. */
  return realloc_move(p, old, n, n > old && n >= HAK_REALLOC_BIG && n / 2 <= old);
}

HAK_API void *hak_reallocarray(void *p, size_t n, size_t size) {
  size_t total;
  if (__builtin_mul_overflow(n, size, &total)) {
    errno = ENOMEM;
    return NULL;
  }
  return hak_realloc(p, total);
}

/* --- aligned ----------------------------------------------------------------- */

static void *aligned_impl(size_t align, size_t n) {
  if (align <= 16) return hak_malloc(n);
  if (n > HAK_MAX_REQUEST || align > HAK_MAX_REQUEST / 2) {
    errno = ENOMEM;
    return NULL;
  }
  hak_init();
  int c = hak_class_for_aligned(n, align);
  if (c >= 0) return hak_heap_alloc((unsigned)c, g_class[c].size);
  bool zero;
  return big_alloc(n ? n : 1, align, &zero);
}

/* mallocx's MALLOCX_ZERO (api/jemalloc.c): every usable byte is zero, and
 * memory known to be fresh from the OS is not written, so that an untouched
 * block stays untouched. */
void *hak_alloc_zeroed(size_t n, size_t align) {
  if (n > HAK_MAX_REQUEST || align > HAK_MAX_REQUEST / 2) {
    errno = ENOMEM;
    return NULL;
  }
  hak_init();
  if (!n) n = 1;
  int c = align <= 16 ? hak_size_to_class(n) : hak_class_for_aligned(n, align);
  bool zero = false;
  void *p = c >= 0 ? hak_heap_alloc_zero_aware(t_heap, (unsigned)c, &zero) : big_alloc(n, align, &zero);
  if (p && !zero) hak_zero(p, hak_malloc_usable_size(p));
  return p;
}

HAK_API int hak_posix_memalign(void **out, size_t align, size_t n) {
  if (align < sizeof(void *) || !hak_is_pow2(align)) return EINVAL;
  int saved = errno;
  void *p = aligned_impl(align, n);
  if (!p) return ENOMEM;
  errno = saved;
  *out = p;
  return 0;
}

HAK_API void *hak_aligned_alloc(size_t align, size_t n) {
  if (!hak_is_pow2(align)) {
    errno = EINVAL;
    return NULL;
  }
  return aligned_impl(align, n);
}

HAK_API void *hak_memalign(size_t align, size_t n) {
  /* glibc rounds a non-power-of-two alignment up to the next power of two */
  if (align > HAK_MAX_REQUEST / 2) {
    errno = EINVAL;
    return NULL;
  }
  if (!hak_is_pow2(align)) {
    size_t a = 1;
    while (a < align) a <<= 1;
    align = a;
  }
  return aligned_impl(align, n);
}

HAK_API void *hak_valloc(size_t n) { return aligned_impl(HAK_PAGE, n); }

HAK_API void *hak_pvalloc(size_t n) {
  if (n > HAK_MAX_REQUEST) {
    errno = ENOMEM;
    return NULL;
  }
  return aligned_impl(HAK_PAGE, n ? hak_align_up(n, HAK_PAGE) : HAK_PAGE);
}

/* --- trim and info --------------------------------------------------------- */

HAK_API int hak_malloc_trim(size_t pad) {
  hak_init();
  /* Other threads' caches are theirs. The caller's goes back unless it
   * made only a few allocations since its previous trim: programs such as
   * stress-ng call malloc_trim(0) every few operations, and a flush costs
   * them a refill of every class. */
  hak_heap_trim(t_heap);
  hak_heap_collect_abandoned();
  size_t released = hak_bigcache_flush();
  released += hak_sp_trim(pad, 0);
  /* Address space too: under RLIMIT_AS, empty reservations count. */
  if (!pad) released += hak_arena_release_free(hak_sp_quiescent);
  return released > 0;
}

HAK_API const char *hak_version(void) { return HAK_VERSION; }

/* --- the override layer's hot names ---------------------------------------- */
/* Built a second time with HAK_OVERRIDE for libhakmem.so/.a: the standard
 * names become aliases of the hak_* functions, so malloc and free cost no
 * extra jump. The rest of the override layer is in override.c. */
#ifdef HAK_OVERRIDE
#define HAK_ALIAS(name, target)                                                                    \
  extern __typeof(target) name __attribute__((alias(#target), visibility("default")))
HAK_ALIAS(malloc, hak_malloc);
HAK_ALIAS(free, hak_free);
HAK_ALIAS(calloc, hak_calloc);
HAK_ALIAS(realloc, hak_realloc);
HAK_ALIAS(reallocarray, hak_reallocarray);
HAK_ALIAS(posix_memalign, hak_posix_memalign);
HAK_ALIAS(aligned_alloc, hak_aligned_alloc);
HAK_ALIAS(memalign, hak_memalign);
HAK_ALIAS(valloc, hak_valloc);
HAK_ALIAS(pvalloc, hak_pvalloc);
HAK_ALIAS(malloc_trim, hak_malloc_trim);
HAK_ALIAS(cfree, hak_free);
HAK_ALIAS(free_sized, hak_free_sized);
#endif
