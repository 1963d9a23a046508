/* jemalloc's non-standard API on hakmem's heap: mallocx and the rest of the
 * *allocx family, mallctl with the names programs read (statistics, purge,
 * the thread cache, the profiler) and malloc_stats_print. libhakmem.so/.a
 * export them under jemalloc's names (override.c). Why: a program linked
 * with libjemalloc (Redis, for one) and run under LD_PRELOAD=libhakmem.so
 * would otherwise send these calls to jemalloc. Its statistics would then
 * describe an empty heap, a block from mallocx would reach hakmem's free,
 * and jemalloc would set up its own arenas and background thread for
 * nothing. Tcache and arena bits of the flags are accepted and ignored:
 * hakmem's thread caches and heaps are not chosen by the caller. */
#include "api/jemalloc.h"
#include "api/alloc.h"
#include "hakmem.h"
#include "base/common.h"
#include "base/config.h"
#include "base/init.h"
#include "base/lock.h"
#include "backend/guard.h"
#include "diag/stats.h"
#include "frontend/heap.h"
#include "mem/size_class.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

/* jemalloc's flag bits (its jemalloc_macros.h) */
#define JE_LG_ALIGN_MASK 0x3f
#define JE_ZERO 0x40
#define JE_ARENAS_ALL 4096 /* MALLCTL_ARENAS_ALL: every arena */
#define JE_NARENAS 1u      /* one arena as jemalloc counts them: all of hakmem's heap */

static size_t flags_align(int flags) {
  unsigned lg = (unsigned)flags & JE_LG_ALIGN_MASK;
  return lg ? (size_t)1 << (lg < 63 ? lg : 63) : 0;
}

/* What hak_malloc (or hak_aligned_alloc for align) would make of n: the
 * class it picks, or a Big block's request rounded up to a page. A block of
 * a larger class may serve it (LargePool rounding), so this is the least
 * that malloc_usable_size then says. While guarded sampling is on, any
 * allocation of up to HAK_GUARD_MAX may get a guarded block instead, whose
 * usable size is n rounded up to 16 and ends at its guard page: the least
 * of the two, which a program may write whatever block it gets. 0: no
 * block can be that large. */
static size_t usable_for(size_t n, size_t align) {
  if (!n) n = 1;
  if (n > HAK_MAX_REQUEST || align > HAK_MAX_REQUEST / 2) return 0;
  hak_init();
  int c = align <= 16 ? hak_size_to_class(n) : hak_class_for_aligned(n, align);
  if (c >= 0) {
    size_t u = g_class[c].size;
    if (g_guard_hi && n <= HAK_GUARD_MAX && hak_align_up(n, 16) < u) u = hak_align_up(n, 16);
    return u;
  }
  if (n > HAK_MAX_REQUEST - HAK_PAGE) return 0;
  return hak_align_up(n, HAK_PAGE);
}

/* A new block for mallocx: with JE_ZERO, zero up to its real size (rallocx
 * relies on that to zero only what growth adds). */
static void *alloc_flags(size_t n, int flags) {
  size_t align = flags_align(flags);
  if (flags & JE_ZERO) return hak_alloc_zeroed(n, align);
  return align <= 16 ? hak_malloc(n ? n : 1) : hak_aligned_alloc(align, n ? n : 1);
}

HAK_API void *hak_mallocx(size_t size, int flags) {
  return alloc_flags(size, flags);
}

/* Whatever moves, the bytes up to the smaller of the two real sizes stay
 * (a jemalloc program may use a block's whole real size), and with
 * JE_ZERO what growth adds past the old real size is zero. */
HAK_API void *hak_rallocx(void *p, size_t size, int flags) {
  if (!p) return alloc_flags(size, flags);
  size_t old = hak_malloc_usable_size(p);
  if (!old) return NULL; /* not a block (already reported) */
  if (!size) size = 1;
  size_t align = flags_align(flags);
  bool aligned = align <= 16 || !((uintptr_t)p & (align - 1));
  bool zero = flags & JE_ZERO;
  void *q;
  if (size > old && align <= 16 && (!zero || old > g_large_max)) {
    /* copies all of old; a Big block may grow in place, over pages that
     * need not be zero */
    q = hak_realloc(p, size);
    if (q && zero) {
      size_t u = hak_malloc_usable_size(q);
      if (u > old) hak_zero((char *)q + old, u - old);
    }
  } else if (size <= old && aligned && (size > old / 2 || old <= 32)) {
    q = p; /* shrinking by less than half stays, as in hak_realloc */
  } else {
    q = alloc_flags(size, flags); /* with JE_ZERO, zero past what is copied */
    if (q) {
      size_t u = hak_malloc_usable_size(q);
      memcpy(q, p, old < u ? old : u);
      hak_free(p);
    }
  }
  return q;
}

/* Never resizes: a block grows only by moving here, which xallocx must not
 * do. jemalloc too returns the real size when it cannot resize in place. */
HAK_API size_t hak_xallocx(void *p, size_t size, size_t extra, int flags) {
  (void)size, (void)extra, (void)flags;
  return hak_malloc_usable_size(p);
}

HAK_API size_t hak_sallocx(const void *p, int flags) {
  (void)flags;
  return hak_malloc_usable_size(p);
}

HAK_API void hak_dallocx(void *p, int flags) {
  (void)flags;
  hak_free(p);
}

HAK_API void hak_sdallocx(void *p, size_t size, int flags) {
  (void)flags;
  hak_free_sized(p, size);
}

HAK_API size_t hak_nallocx(size_t size, int flags) {
  return usable_for(size, flags_align(flags));
}

HAK_API void hak_malloc_stats_print(void (*write_cb)(void *, const char *), void *arg,
                                    const char *opts) {
  hak_stats_write(write_cb, arg, opts && strchr(opts, 'J'));
}

/* --- mallctl ----------------------------------------------------------------- */

/* The statistics as of the last write to "epoch", as jemalloc keeps them:
 * a program reads several of them as one consistent set. hakmem's size
 * classes are jemalloc's bins, all in one arena. */
static struct {
  uint64_t epoch;
  bool taken;
  size_t allocated, active, resident, mapped, retained, dirty, big;
  uint64_t small_mallocs, small_frees, big_mallocs, big_frees;
  size_t curregs[HAK_NCLASS], curslabs[HAK_NCLASS];
  uint64_t nmalloc[HAK_NCLASS], ndalloc[HAK_NCLASS];
} g_je;
static hak_lock_t g_je_lock = HAK_LOCK_INIT;

void hak_je_atfork_child(void) { hak_lock_reset(&g_je_lock); }

static void je_refresh_locked(void) {
  hak_snap_lock();
  const hak_snap_t *s = &g_snap;
  hak_snap_take(&g_snap, HAK_SNAP_WALK | HAK_SNAP_RESIDENT);
  g_je.allocated = (size_t)s->allocated;
  g_je.active = (size_t)s->active;
  g_je.resident = (size_t)s->resident;
  g_je.mapped = (size_t)s->mapped;
  g_je.retained = (size_t)s->retained;
  g_je.dirty = (size_t)(s->empty_bytes + s->bc_b);
  g_je.big = (size_t)s->tier_bytes[HAK_TIER_BIG];
  g_je.big_mallocs = s->tier_mallocs[HAK_TIER_BIG];
  g_je.big_frees = s->tier_frees[HAK_TIER_BIG];
  g_je.small_mallocs = s->mallocs - g_je.big_mallocs;
  g_je.small_frees = s->frees - g_je.big_frees;
  for (unsigned c = 0; c < HAK_NCLASS; c++) {
    /* A block in a thread cache is in use, as in jemalloc's tcache. The
     * slab walk and the counters are read at different moments: a slab
     * count short of the blocks in use is raised to hold them, so that
     * regs * slabs - in use (Redis's fragmentation) never goes negative. */
    uint64_t used = s->live[c] + s->cached[c], cap = g_class[c].capacity;
    uint64_t slabs = s->slabs[c], need = cap ? (used + cap - 1) / cap : 0;
    g_je.curregs[c] = (size_t)used;
    g_je.curslabs[c] = (size_t)(slabs > need ? slabs : need);
    g_je.nmalloc[c] = s->alloc[c];
    g_je.ndalloc[c] = s->free[c];
  }
  hak_snap_unlock();
  g_je.taken = true;
}

typedef enum { T_VOID, T_BOOL, T_UNSIGNED, T_U32, T_SIZE, T_U64, T_STR } je_type_t;
typedef enum {
  N_VERSION,
  N_EPOCH,
  N_CONFIG_STATS,
  N_OPT_PROF,
  N_PROF_DUMP,
  N_BACKGROUND,
  N_NARENAS,
  N_PAGE,
  N_QUANTUM,
  N_NBINS,
  N_BIN_SIZE,
  N_BIN_NREGS,
  N_BIN_SLAB_SIZE,
  N_ARENA_PURGE,
  N_TCACHE_FLUSH,
  N_ALLOCATED, /* the statistics as of the last epoch, from here on */
  N_ACTIVE,
  N_RESIDENT,
  N_MAPPED,
  N_RETAINED,
  N_A_PACTIVE,
  N_A_PDIRTY,
  N_A_PMUZZY,
  N_A_MAPPED,
  N_A_RETAINED,
  N_A_RESIDENT,
  N_A_SMALL_ALLOCATED,
  N_A_SMALL_NMALLOC,
  N_A_SMALL_NDALLOC,
  N_A_LARGE_ALLOCATED,
  N_A_LARGE_NMALLOC,
  N_A_LARGE_NDALLOC,
  N_A_BIN_CURREGS,
  N_A_BIN_CURSLABS,
  N_A_BIN_NMALLOC,
  N_A_BIN_NDALLOC,
  N_COUNT
} je_name_t;

/* "*" stands for a number: an arena index ("arena", "stats.arenas"), then
 * a bin (a size class). */
static const struct {
  const char *name;
  je_type_t type;
  bool readable, writable;
} g_names[N_COUNT] = {
    [N_VERSION] = {"version", T_STR, true, false},
    [N_EPOCH] = {"epoch", T_U64, true, true},
    [N_CONFIG_STATS] = {"config.stats", T_BOOL, true, false},
    [N_OPT_PROF] = {"opt.prof", T_BOOL, true, false},
    [N_PROF_DUMP] = {"prof.dump", T_STR, false, true},
    /* hakmem's own thread (HAKMEM_BACKGROUND) starts once there is memory
     * to return: a write is accepted and changes nothing */
    [N_BACKGROUND] = {"background_thread", T_BOOL, true, true},
    [N_NARENAS] = {"arenas.narenas", T_UNSIGNED, true, false},
    [N_PAGE] = {"arenas.page", T_SIZE, true, false},
    [N_QUANTUM] = {"arenas.quantum", T_SIZE, true, false},
    [N_NBINS] = {"arenas.nbins", T_UNSIGNED, true, false},
    [N_BIN_SIZE] = {"arenas.bin.*.size", T_SIZE, true, false},
    [N_BIN_NREGS] = {"arenas.bin.*.nregs", T_U32, true, false},
    [N_BIN_SLAB_SIZE] = {"arenas.bin.*.slab_size", T_SIZE, true, false},
    [N_ARENA_PURGE] = {"arena.*.purge", T_VOID, false, false},
    [N_TCACHE_FLUSH] = {"thread.tcache.flush", T_VOID, false, false},
    [N_ALLOCATED] = {"stats.allocated", T_SIZE, true, false},
    [N_ACTIVE] = {"stats.active", T_SIZE, true, false},
    [N_RESIDENT] = {"stats.resident", T_SIZE, true, false},
    [N_MAPPED] = {"stats.mapped", T_SIZE, true, false},
    [N_RETAINED] = {"stats.retained", T_SIZE, true, false},
    [N_A_PACTIVE] = {"stats.arenas.*.pactive", T_SIZE, true, false},
    [N_A_PDIRTY] = {"stats.arenas.*.pdirty", T_SIZE, true, false},
    /* pages given back with MADV_FREE (HAKMEM_MADV_FREE) are not told
     * apart from the others: always 0 */
    [N_A_PMUZZY] = {"stats.arenas.*.pmuzzy", T_SIZE, true, false},
    [N_A_MAPPED] = {"stats.arenas.*.mapped", T_SIZE, true, false},
    [N_A_RETAINED] = {"stats.arenas.*.retained", T_SIZE, true, false},
    [N_A_RESIDENT] = {"stats.arenas.*.resident", T_SIZE, true, false},
    [N_A_SMALL_ALLOCATED] = {"stats.arenas.*.small.allocated", T_SIZE, true, false},
    [N_A_SMALL_NMALLOC] = {"stats.arenas.*.small.nmalloc", T_U64, true, false},
    [N_A_SMALL_NDALLOC] = {"stats.arenas.*.small.ndalloc", T_U64, true, false},
    [N_A_LARGE_ALLOCATED] = {"stats.arenas.*.large.allocated", T_SIZE, true, false},
    [N_A_LARGE_NMALLOC] = {"stats.arenas.*.large.nmalloc", T_U64, true, false},
    [N_A_LARGE_NDALLOC] = {"stats.arenas.*.large.ndalloc", T_U64, true, false},
    [N_A_BIN_CURREGS] = {"stats.arenas.*.bins.*.curregs", T_SIZE, true, false},
    [N_A_BIN_CURSLABS] = {"stats.arenas.*.bins.*.curslabs", T_SIZE, true, false},
    [N_A_BIN_NMALLOC] = {"stats.arenas.*.bins.*.nmalloc", T_U64, true, false},
    [N_A_BIN_NDALLOC] = {"stats.arenas.*.bins.*.ndalloc", T_U64, true, false},
};

static size_t type_size(je_type_t t) {
  switch (t) {
  case T_BOOL:
    return sizeof(bool);
  case T_UNSIGNED:
    return sizeof(unsigned);
  case T_U32:
    return sizeof(uint32_t);
  case T_SIZE:
    return sizeof(size_t);
  case T_U64:
    return sizeof(uint64_t);
  case T_STR:
    return sizeof(const char *);
  default:
    return 0;
  }
}

static size_t components(const char *pattern) {
  size_t n = 1;
  for (const char *c = pattern; *c; c++)
    n += *c == '.';
  return n;
}

/* Whether component i of entry e's name is the "*" of a number. */
static bool is_number(int e, size_t i) {
  const char *p = g_names[e].name;
  for (; i && *p; p++) i -= *p == '.';
  return *p == '*';
}

/* The entry that name spells; num gets the numbers its "*"s matched, in
 * order. -1: no such name. */
static int je_lookup(const char *name, size_t num[2]) {
  if (!name) return -1;
  for (int e = 0; e < N_COUNT; e++) {
    const char *p = g_names[e].name, *q = name;
    unsigned k = 0;
    bool ok = true;
    while (ok && *p) {
      if (*p == '*') {
        if (*q < '0' || *q > '9') {
          ok = false;
          break;
        }
        size_t v = 0;
        while (*q >= '0' && *q <= '9' && v < 1000000)
          v = v * 10 + (size_t)(*q++ - '0');
        num[k++] = v;
        p++;
      } else if (*p++ != *q++) {
        ok = false;
      }
    }
    if (ok && !*q) return e;
  }
  return -1;
}

static void put(void *oldp, size_t *oldlenp, const void *v, size_t n, int *ret) {
  if (*oldlenp != n) {
    size_t k = *oldlenp < n ? *oldlenp : n;
    memcpy(oldp, v, k);
    *oldlenp = k;
    *ret = EINVAL;
    return;
  }
  memcpy(oldp, v, n);
}

/* Whether the numbers in a name name something that exists, as jemalloc
 * checks them: arena.<i> for i up to narenas (narenas itself and
 * MALLCTL_ARENAS_ALL mean every arena), stats.arenas.<i> for the one arena
 * and MALLCTL_ARENAS_ALL, a bin below nbins. */
static bool je_numbers_ok(int e, const size_t num[2]) {
  switch ((je_name_t)e) {
  case N_ARENA_PURGE:
    return num[0] <= JE_NARENAS || num[0] == JE_ARENAS_ALL;
  case N_BIN_SIZE:
  case N_BIN_NREGS:
  case N_BIN_SLAB_SIZE:
    return num[0] < HAK_NCLASS;
  default:
    if (e < N_A_PACTIVE) return true;
    return (num[0] == 0 || num[0] == JE_ARENAS_ALL) && (e < N_A_BIN_CURREGS || num[1] < HAK_NCLASS);
  }
}

/* A statistic as of the last epoch (num: the bin, where it has one). */
static uint64_t je_stat(int e, const size_t num[2]) {
  size_t c = num[1];
  switch ((je_name_t)e) {
  case N_ALLOCATED:
    return g_je.allocated;
  case N_ACTIVE:
    return g_je.active;
  case N_RESIDENT:
  case N_A_RESIDENT:
    return g_je.resident;
  case N_MAPPED:
  case N_A_MAPPED:
    return g_je.mapped;
  case N_RETAINED:
  case N_A_RETAINED:
    return g_je.retained;
  case N_A_PACTIVE:
    return g_je.active / HAK_PAGE;
  case N_A_PDIRTY:
    return g_je.dirty / HAK_PAGE;
  case N_A_SMALL_ALLOCATED:
    return g_je.allocated - g_je.big;
  case N_A_SMALL_NMALLOC:
    return g_je.small_mallocs;
  case N_A_SMALL_NDALLOC:
    return g_je.small_frees;
  case N_A_LARGE_ALLOCATED:
    return g_je.big;
  case N_A_LARGE_NMALLOC:
    return g_je.big_mallocs;
  case N_A_LARGE_NDALLOC:
    return g_je.big_frees;
  case N_A_BIN_CURREGS:
    return g_je.curregs[c];
  case N_A_BIN_CURSLABS:
    return g_je.curslabs[c];
  case N_A_BIN_NMALLOC:
    return g_je.nmalloc[c];
  case N_A_BIN_NDALLOC:
    return g_je.ndalloc[c];
  default: /* pmuzzy */
    return 0;
  }
}

static int je_ctl(int e, const size_t num[2], void *oldp, size_t *oldlenp, void *newp, size_t newlen) {
  if (!je_numbers_ok(e, num)) return ENOENT;
  je_type_t t = g_names[e].type;
  bool reading = oldp && oldlenp, writing = newp != NULL;
  if (t == T_VOID) {
    if (oldp || oldlenp || newp || newlen) return EPERM;
  } else {
    if ((oldp || oldlenp) && !g_names[e].readable) return EPERM;
    if ((newp || newlen) && !g_names[e].writable) return EPERM;
    if (writing && newlen != type_size(t)) return EINVAL;
  }
  hak_init();
  int ret = 0;
  union {
    bool b;
    unsigned u;
    uint32_t w;
    size_t z;
    uint64_t q;
    const char *s;
  } v;
  memset(&v, 0, sizeof v);
  switch ((je_name_t)e) {
  case N_VERSION:
    v.s = "hakmem-" HAK_VERSION;
    break;
  case N_EPOCH:
    hak_lock(&g_je_lock);
    if (writing || !g_je.taken) {
      je_refresh_locked();
      if (writing) g_je.epoch++;
    }
    v.q = g_je.epoch;
    hak_unlock(&g_je_lock);
    break;
  case N_CONFIG_STATS:
    v.b = true;
    break;
  case N_OPT_PROF:
    v.b = g_cfg.prof != 0;
    break;
  case N_PROF_DUMP: {
    const char *path = writing ? *(const char *const *)newp : NULL;
    if (hak_prof_dump(path) != 0) return EFAULT;
    return 0;
  }
  case N_BACKGROUND:
    v.b = g_cfg.background != 0;
    break;
  case N_NARENAS:
    v.u = JE_NARENAS;
    break;
  case N_PAGE:
    v.z = HAK_PAGE;
    break;
  case N_QUANTUM:
    v.z = 16;
    break;
  case N_NBINS:
    v.u = HAK_NCLASS;
    break;
  case N_BIN_SIZE:
    v.z = g_class[num[0]].size;
    break;
  case N_BIN_NREGS:
    v.w = g_class[num[0]].capacity;
    break;
  case N_BIN_SLAB_SIZE:
    v.z = (size_t)g_class[num[0]].slots * HAK_SLOT_SIZE;
    break;
  case N_ARENA_PURGE:
    hak_malloc_trim(0);
    return 0;
  case N_TCACHE_FLUSH:
    if (t_heap != &g_empty_heap) hak_heap_flush(t_heap);
    return 0;
  default: /* the statistics as of the last epoch */
    hak_lock(&g_je_lock);
    if (!g_je.taken) je_refresh_locked();
    if (t == T_U64)
      v.q = je_stat(e, num);
    else
      v.z = (size_t)je_stat(e, num);
    hak_unlock(&g_je_lock);
    break;
  }
  if (reading) put(oldp, oldlenp, &v, type_size(t), &ret);
  return ret;
}

HAK_API int hak_mallctl(const char *name, void *oldp, size_t *oldlenp, void *newp, size_t newlen) {
  size_t num[2] = {0, 0};
  int e = je_lookup(name, num);
  return e < 0 ? ENOENT : je_ctl(e, num, oldp, oldlenp, newp, newlen);
}

/* A MIB has one number per component, as jemalloc's: the entry, then each
 * component's own number (an arena index or a bin where the name has one,
 * else 0), so that a program may set mib[2] to pick another bin. A MIB
 * shorter than the name is its prefix, which mallctlbymib refuses with
 * ENOENT, as jemalloc does an inner node. */
HAK_API int hak_mallctlnametomib(const char *name, size_t *mibp, size_t *miblenp) {
  size_t num[2] = {0, 0};
  int e = je_lookup(name, num);
  if (e < 0 || !je_numbers_ok(e, num)) return ENOENT;
  if (!mibp || !miblenp) return EINVAL;
  size_t n = components(g_names[e].name), k = 0;
  if (*miblenp < n) n = *miblenp;
  for (size_t i = 0; i < n; i++)
    mibp[i] = i == 0 ? (size_t)e : (is_number(e, i) ? num[k++] : 0);
  *miblenp = n;
  return 0;
}

HAK_API int hak_mallctlbymib(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp,
                             void *newp, size_t newlen) {
  if (!mib || !miblen || mib[0] >= N_COUNT) return ENOENT;
  int e = (int)mib[0];
  size_t n = components(g_names[e].name);
  if (miblen != n) return ENOENT;
  size_t num[2] = {0, 0}, k = 0;
  for (size_t i = 1; i < n; i++)
    if (is_number(e, i)) num[k++] = mib[i];
  return je_ctl(e, num, oldp, oldlenp, newp, newlen);
}
