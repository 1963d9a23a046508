/* Big blocks, their descriptor table and BigCache. Every operation here
 * costs a syscall or more, so a single short lock over the live list, the
 * cache and the table's entries is cheap by comparison. */
#include "backend/big.h"
#include "backend/arena.h"
#include "backend/shared_pool.h"
#include "backend/housekeep.h"
#include "base/config.h"
#include "base/counters.h"
#include "base/lock.h"
#include "base/report.h"
#include "os/os.h"

#include <errno.h>
#include <string.h>
#include <time.h>

#define CHUNK HAK_SS_SIZE

/* --- the descriptor table --------------------------------------------------- */

/* One entry per chunk of the 47-bit address space, in leaves of LEAF_N
 * entries (8 GiB of address space each, 320 KiB of address space, touched
 * only where runs start) that are mapped on first use and never unmapped,
 * so a reader never meets an unmapped entry. */
#define LEAF_BITS 12
#define LEAF_N ((size_t)1 << LEAF_BITS)
#define DIR_N ((size_t)1 << (HAK_ADDR_BITS - HAK_SS_SHIFT - LEAF_BITS))
static hak_big_t *_Atomic g_dir[DIR_N];
/* chunks of the longest run ever described: bounds the walk */
static _Atomic size_t g_span_max = 1;

/* The entry of a's chunk; with make, its leaf is mapped if it is not yet.
 * NULL outside the table, or when a new leaf cannot be mapped. */
static hak_big_t *entry_of(uintptr_t a, bool make) {
  uintptr_t c = a >> HAK_SS_SHIFT;
  if (c >> (HAK_ADDR_BITS - HAK_SS_SHIFT)) return NULL;
  hak_big_t *leaf = atomic_load_explicit(&g_dir[c >> LEAF_BITS], memory_order_acquire);
  if (!leaf && make) {
    hak_big_t *fresh = hak_os_map(LEAF_N * sizeof(hak_big_t));
    if (!fresh) return NULL;
    if (atomic_compare_exchange_strong_explicit(&g_dir[c >> LEAF_BITS], &leaf, fresh,
                                                memory_order_acq_rel, memory_order_acquire))
      leaf = fresh;
    else
      hak_os_unmap(fresh, LEAF_N * sizeof(hak_big_t)); /* another thread mapped it first */
  }
  return leaf ? &leaf[c & (LEAF_N - 1)] : NULL;
}

/* A run reached map_size bytes (made, grown or merged): the walk's bound. */
static void span_note(size_t map_size) {
  size_t span = map_size / CHUNK;
  size_t cur = atomic_load_explicit(&g_span_max, memory_order_relaxed);
  while (span > cur && !atomic_compare_exchange_weak_explicit(
                           &g_span_max, &cur, span, memory_order_relaxed, memory_order_relaxed)) {
  }
}

static bool described(const hak_big_t *e) {
  return atomic_load_explicit(&e->magic, memory_order_acquire) == HAK_BIG_MAGIC;
}

/* Under the Big lock: the descriptor of a new run at base, not yet listed. */
static hak_big_t *desc_new(uintptr_t base, size_t map_size, bool arena) {
  hak_big_t *e = entry_of(base, true);
  if (!e) return NULL;
  e->base = base;
  e->map_size = map_size;
  e->user_size = map_size;
  e->req_size = map_size;
  e->next = e->prev = NULL;
  e->time = 0;
  e->live = 0;
  e->arena = arena;
  span_note(map_size);
  atomic_store_explicit(&e->magic, HAK_BIG_MAGIC, memory_order_release);
  return e;
}

static void desc_clear(hak_big_t *e) {
  atomic_store_explicit(&e->magic, 0, memory_order_release);
}

/* --- runs ------------------------------------------------------------------- */

/* Memory for a run of size bytes (whole chunks): an arena's chunks where it
 * fits, else a mapping of its own aligned to align. *zero: it reads zero. */
static void *run_map(size_t size, size_t align, bool *arena, bool *zero) {
  void *p = NULL;
  *arena = false;
  *zero = true;
  /* HAKMEM_THP=1 asks huge pages for Big blocks: MADV_HUGEPAGE stays with
   * the address range, so they take mappings of their own, whose flag goes
   * with them, instead of marking arena chunks that SuperSlabs reuse. */
  if (align <= CHUNK && size <= HAK_ARENA_BIG_MAX && g_cfg.thp != HAK_THP_ON) {
    p = hak_arena_alloc(size / CHUNK, zero);
    *arena = p != NULL;
  }
  if (!p) {
    *zero = true;
    p = hak_os_map_aligned(size, align > CHUNK ? align : CHUNK);
    /* Refused: empty arenas may hold the address space (RLIMIT_AS). */
    if (!p && hak_arena_release_free(hak_sp_quiescent))
      p = hak_os_map_aligned(size, align > CHUNK ? align : CHUNK);
  }
  return p;
}

/* Gives a run's memory back: an arena's chunks stay reserved there. */
static void run_unmap(void *p, size_t size, bool arena) {
  if (arena) /* MADV_FREE keeps the contents until the kernel needs the memory */
    hak_arena_free(p, size / CHUNK, hak_os_decommit(p, size) && !g_cfg.madv_free);
  else
    hak_os_unmap(p, size);
}

/* --- lists ------------------------------------------------------------------ */

static hak_lock_t g_big_lock = HAK_LOCK_INIT;
static hak_big_t *g_big_live;                /* every live big block */
static hak_big_t *g_cache_new, *g_cache_old; /* BigCache, newest first */
static size_t g_cache_bytes, g_cache_count;
static size_t g_live_bytes, g_live_user, g_live_count;
/* When the oldest cached run was cached (0: cache empty), readable without
 * the lock so that slow paths can check for expired runs for free. */
static _Atomic uint64_t g_cache_oldest;

static void live_add(hak_big_t *h) {
  h->prev = NULL;
  h->next = g_big_live;
  if (g_big_live) g_big_live->prev = h;
  g_big_live = h;
  g_live_bytes += h->map_size;
  g_live_user += h->user_size;
  g_live_count++;
}

static void live_remove(hak_big_t *h) {
  if (h->prev)
    h->prev->next = h->next;
  else
    g_big_live = h->next;
  if (h->next) h->next->prev = h->prev;
  g_live_bytes -= h->map_size;
  g_live_user -= h->user_size;
  g_live_count--;
}

static void cache_remove(hak_big_t *h) {
  if (h->prev)
    h->prev->next = h->next;
  else
    g_cache_new = h->next;
  if (h->next)
    h->next->prev = h->prev;
  else
    g_cache_old = h->prev;
  g_cache_bytes -= h->map_size;
  g_cache_count--;
  atomic_store_explicit(&g_cache_oldest, g_cache_old ? g_cache_old->time : 0, memory_order_relaxed);
}

/* Runs leaving BigCache: their descriptors are cleared under the lock, and
 * their memory goes back after it is dropped. A victim's base and size
 * travel in a small array; past its end, the rest wait for the next batch. */
typedef struct {
  uintptr_t base[32];
  size_t size[32];
  bool arena[32];
  unsigned n;
} victims_t;

static void victim_add_run(victims_t *v, uintptr_t base, size_t size, bool arena) {
  v->base[v->n] = base;
  v->size[v->n] = size;
  v->arena[v->n] = arena;
  v->n++;
}

/* v has room (callers check v->n < 32 or start with an empty one) */
static void victim_add(victims_t *v, hak_big_t *h) {
  victim_add_run(v, h->base, h->map_size, h->arena);
  desc_clear(h);
}

static void victims_release(victims_t *v) {
  for (unsigned i = 0; i < v->n; i++) {
    hak_os_commit_add(-(int64_t)v->size[i]);
    run_unmap((void *)v->base[i], v->size[i], v->arena[i]);
  }
  v->n = 0;
}

/* Takes the runs that have outstayed their time, or that must go to make
 * room bytes: as many as v holds. */
static void cache_evict_locked(victims_t *v, size_t room, uint64_t now) {
  while (g_cache_old && v->n < 32 &&
         (g_cache_bytes + room > g_cfg.bigcache_bytes ||
          (now > g_cache_old->time && now - g_cache_old->time > g_cfg.bigcache_ms))) {
    hak_big_t *h = g_cache_old;
    cache_remove(h);
    victim_add(v, h);
  }
}

static void cache_insert_locked(hak_big_t *h, uint64_t now) {
  h->live = 0;
  h->time = now;
  h->prev = NULL;
  h->next = g_cache_new;
  if (g_cache_new)
    g_cache_new->prev = h;
  else
    g_cache_old = h;
  g_cache_new = h;
  g_cache_bytes += h->map_size;
  g_cache_count++;
  atomic_store_explicit(&g_cache_oldest, g_cache_old->time, memory_order_relaxed);
}

/* Two adjacent runs may become one: both of the same arena, or both
 * mappings of their own (one munmap covers two adjacent mappings). */
static bool same_backing(const hak_big_t *a, const hak_big_t *b) {
  if (a->arena != b->arena) return false;
  return !a->arena || hak_arena_index((void *)a->base) == hak_arena_index((void *)b->base);
}

/* Puts a run that is no longer handed out into BigCache, merged with cached
 * runs right before and after it, or gives it back when it is too large to
 * keep. Runs are whole chunks, so they split and merge without a syscall. */
static void cache_put(hak_big_t *h, uint64_t now) {
  victims_t v = {.n = 0};
  hak_lock(&g_big_lock);
  for (hak_big_t *c = g_cache_new, *next; c; c = next) {
    next = c->next;
    if (c->base + c->map_size == h->base && same_backing(c, h)) { /* c precedes h */
      cache_remove(c);
      c->map_size += h->map_size;
      span_note(c->map_size);
      desc_clear(h);
      h = c;
      next = g_cache_new; /* the list changed: look again */
    } else if (h->base + h->map_size == c->base && same_backing(c, h)) { /* c follows h */
      cache_remove(c);
      h->map_size += c->map_size;
      span_note(h->map_size);
      desc_clear(c);
      next = g_cache_new;
    }
  }
  if (h->map_size <= g_cfg.bigcache_bytes) {
    cache_evict_locked(&v, h->map_size, now);
    cache_insert_locked(h, now);
  } else {
    victim_add(&v, h);
    cache_evict_locked(&v, 0, now);
  }
  hak_unlock(&g_big_lock);
  victims_release(&v);
}

/* Under the Big lock: grows run h (on no list) to need bytes in place, the
 * arena's next chunks or mremap of a mapping of its own; else, with
 * GROW_MOVE, by moving its pages into a new mapping, and with GROW_COPY too,
 * when the kernel refuses the move, by a copy into a new run. Returns its
 * descriptor (h's, or the new run's with h cleared), NULL if it cannot (h
 * unchanged). */
enum { GROW_MOVE = 1, GROW_COPY = 2 }; /* 0: in place only */
static hak_big_t *run_grow(hak_big_t *h, size_t need, int how) {
  size_t old = h->map_size;
  bool grown = h->arena ? hak_arena_extend((void *)h->base, old / CHUNK, (need - old) / CHUNK)
                        : hak_os_remap_inplace((void *)h->base, old, need);
  if (grown) {
    hak_os_commit_add((int64_t)(need - old));
    h->map_size = need;
    span_note(need);
    return h;
  }
  if (!(how & GROW_MOVE)) return NULL;
  hak_big_t *n = NULL;
  /* The pages move, without a copy, into a new mapping of the run's own. An
   * arena's range stays mapped behind them (MREMAP_DONTUNMAP): a hole there
   * could be taken by another mmap before it was reserved again. */
  char *dst = hak_os_map_aligned(need, CHUNK);
  if (dst && (n = desc_new((uintptr_t)dst, need, false)) &&
      hak_os_move((void *)h->base, old, dst, h->arena)) {
    if (h->arena) hak_arena_free((void *)h->base, old / CHUNK, true);
  } else {
    /* A refused move may have unmapped [dst, dst + old) already; only the
     * rest is surely still this call's to unmap. Then copy. */
    if (n) desc_clear(n);
    if (dst && need > old) hak_os_unmap(dst + old, need - old);
    if (!(how & GROW_COPY)) return NULL;
    bool arena, zero;
    void *to = run_map(need, CHUNK, &arena, &zero);
    if (!to) return NULL;
    n = desc_new((uintptr_t)to, need, arena);
    if (!n) {
      run_unmap(to, need, arena);
      return NULL;
    }
    memcpy(to, (void *)h->base, h->user_size < old ? h->user_size : old);
    run_unmap((void *)h->base, old, h->arena);
  }
  hak_os_commit_add((int64_t)(need - old));
  n->user_size = h->user_size;
  n->req_size = h->req_size;
  desc_clear(h);
  return n;
}

/* Takes need bytes from BigCache: the smallest run that holds them, split
 * when it is larger (the rest stays cached, its pages still there), or else
 * the largest run, grown (only the new part will fault). */
static hak_big_t *cache_take(size_t need, uint64_t now) {
  victims_t v = {.n = 0};
  hak_lock(&g_big_lock);
  hak_big_t *fit = NULL, *smaller = NULL;
  for (hak_big_t *c = g_cache_new; c; c = c->next) {
    if (c->map_size >= need) {
      if (!fit || c->map_size < fit->map_size) fit = c;
    } else if (!smaller || c->map_size > smaller->map_size) {
      smaller = c;
    }
  }
  hak_big_t *h = fit ? fit : smaller;
  if (h) cache_remove(h);
  if (fit && fit->map_size > need) {
    hak_big_t *rest = desc_new(fit->base + need, fit->map_size - need, fit->arena);
    if (rest) {
      fit->map_size = need;
      cache_insert_locked(rest, now); /* newest end of the list, so newest time */
    }
  }
  if (h && h->map_size < need) {
    /* its pages are what makes it worth taking: moved, never copied */
    hak_big_t *g = run_grow(h, need, GROW_MOVE);
    if (!g) cache_insert_locked(h, now); /* it goes back; a new run serves */
    h = g;
  }
  cache_evict_locked(&v, 0, now);
  hak_unlock(&g_big_lock);
  victims_release(&v);
  return h;
}

void *hak_big_alloc(size_t size, size_t align, bool *zero) {
  *zero = false;
  if (size > ((size_t)1 << HAK_ADDR_BITS) - 2 * CHUNK ||
      align > ((size_t)1 << (HAK_ADDR_BITS - 1))) {
    errno = ENOMEM;
    return NULL;
  }
  size_t need = hak_align_up(size ? size : 1, CHUNK);
  hak_big_t *h = align <= CHUNK ? cache_take(need, hak_os_now_ms()) : NULL;
  if (h) {
    hak_cnt_add(&g_stats.bigcache_hits, 1);
  } else {
    hak_cnt_add(&g_stats.bigcache_misses, 1);
    bool arena;
    void *p = run_map(need, align, &arena, zero);
    if (!p) {
      errno = ENOMEM;
      return NULL;
    }
    hak_lock(&g_big_lock);
    h = desc_new((uintptr_t)p, need, arena);
    hak_unlock(&g_big_lock);
    if (!h) {
      run_unmap(p, need, arena);
      *zero = false;
      errno = ENOMEM;
      return NULL;
    }
    hak_os_commit_add((int64_t)need);
    if (g_cfg.thp == HAK_THP_ON) hak_os_hugepage(p, need, true);
  }
  h->user_size = hak_align_up(size ? size : 1, HAK_PAGE);
  h->req_size = size;
  hak_lock(&g_big_lock);
  h->live = 1;
  live_add(h);
  hak_unlock(&g_big_lock);
  hak_cnt_add(&g_stats.big_allocs, 1);
  return (void *)h->base;
}

void hak_big_free(hak_big_t *h) {
  uint64_t now = hak_os_now_ms();
  hak_cnt_add(&g_stats.big_frees, 1);
  hak_lock(&g_big_lock);
  if (!described(h) || !h->live) { /* lost a race with another free of the same block */
    hak_unlock(&g_big_lock);
    hak_report_invalid("free", (void *)h->base, "double free of a big block", NULL);
    return;
  }
  h->live = 0;
  live_remove(h);
  hak_unlock(&g_big_lock);
  cache_put(h, now);
  hak_housekeep_poke(); /* BigCache's expiry needs no further call */
}

void *hak_big_realloc(hak_big_t *h, size_t size) {
  if (size > ((size_t)1 << HAK_ADDR_BITS) - 2 * CHUNK) return NULL;
  size_t need = hak_align_up(size, CHUNK), user = hak_align_up(size, HAK_PAGE);
  victims_t v = {.n = 0};
  hak_lock(&g_big_lock);
  if (!described(h) || !h->live) { /* lost a race with a free of the same block */
    hak_unlock(&g_big_lock);
    hak_report_invalid("realloc", (void *)h->base, "double free of a big block", NULL);
    return NULL;
  }
  live_remove(h);
  size_t old = h->map_size;
  if (need <= old) {
    /* Shrink in place; give the tail back only when it is worth a syscall. */
    if (old - need >= CHUNK && need < old / 2) {
      h->map_size = need;
      victim_add_run(&v, h->base + need, old - need, h->arena);
    }
  } else {
    hak_cnt_add(&g_stats.big_mremaps, 1);
    /* Grow by half again as much, so that a buffer growing in small steps
     * does not pay one move per step. */
    size_t want = need + ((need - old) < old / 2 ? hak_align_up(old / 2, CHUNK) : 0);
    hak_big_t *g = run_grow(h, want, GROW_MOVE | GROW_COPY);
    if (!g && want != need) g = run_grow(h, need, GROW_MOVE | GROW_COPY);
    if (!g) {
      live_add(h);
      hak_unlock(&g_big_lock);
      return NULL;
    }
    h = g;
  }
  h->user_size = user;
  h->req_size = size;
  h->live = 1;
  live_add(h);
  hak_unlock(&g_big_lock);
  victims_release(&v);
  return (void *)h->base;
}

/* --- lookup ----------------------------------------------------------------- */

/* The nearest run that starts at or below a: its entry, if the run holds a. */
static hak_big_t *walk_back(uintptr_t a) {
  uintptr_t c = a & ~(uintptr_t)(CHUNK - 1);
  size_t span = atomic_load_explicit(&g_span_max, memory_order_relaxed);
  for (size_t i = 0; i < span && c >= CHUNK; i++, c -= CHUNK) {
    hak_big_t *e = entry_of(c, false);
    if (!e) { /* a leaf never mapped: no run starts in its 8 GiB */
      size_t skip = (size_t)((c >> HAK_SS_SHIFT) & (LEAF_N - 1));
      i += skip;
      c -= (uintptr_t)skip * CHUNK;
      continue;
    }
    if (!described(e)) continue;
    return a < e->base + e->map_size ? e : NULL;
  }
  return NULL;
}

hak_big_t *hak_big_find(const void *p, int lock) {
  uintptr_t a = (uintptr_t)p;
  hak_big_t *e = entry_of(a, false);
  if (e && described(e)) return a < e->base + e->map_size ? e : NULL;
  if (lock == HAK_BIG_FIND_LOCK) hak_lock(&g_big_lock);
  e = walk_back(a);
  if (lock == HAK_BIG_FIND_LOCK) hak_unlock(&g_big_lock);
  return e;
}

/* --- BigCache's upkeep and the numbers -------------------------------------- */

bool hak_bigcache_expire(void) {
  uint64_t oldest = atomic_load_explicit(&g_cache_oldest, memory_order_relaxed);
  if (!oldest) return false;
  uint64_t now = hak_os_now_ms();
  if (now <= oldest || now - oldest <= g_cfg.bigcache_ms) return false;
  victims_t v = {.n = 0};
  bool any = false, more = true;
  while (more) {
    hak_lock(&g_big_lock);
    cache_evict_locked(&v, 0, now);
    hak_unlock(&g_big_lock);
    any |= v.n != 0;
    more = v.n == 32;
    victims_release(&v);
  }
  return any;
}

/* A SuperSlab that needs memory while BigCache holds resident runs takes
 * one of their chunks rather than fault in a new one beside them, and when
 * the oldest runs are mappings of their own (grown by mremap, say), which a
 * SuperSlab cannot live in, the oldest goes back to the OS: a program that
 * frees its big buffers and then grows its small objects (sqlite's VACUUM)
 * peaks at the larger of the two, not at their sum. It costs a steady
 * program nothing: only growth makes SuperSlabs. */
void *hak_bigcache_yield(void) {
  if (!atomic_load_explicit(&g_cache_oldest, memory_order_relaxed)) return NULL;
  void *c = NULL;
  victims_t v = {.n = 0};
  hak_lock(&g_big_lock);
  hak_big_t *h = g_cache_old;
  while (h && !h->arena) h = h->prev; /* towards the newer */
  if (!h && g_cache_old) {
    hak_big_t *o = g_cache_old;
    cache_remove(o);
    victim_add(&v, o);
  } else if (h && h->map_size == CHUNK) {
    cache_remove(h);
    desc_clear(h);
    c = (void *)h->base;
  } else if (h) {
    h->map_size -= CHUNK;
    h->user_size = h->req_size = h->map_size;
    g_cache_bytes -= CHUNK;
    c = (void *)(h->base + h->map_size);
  }
  hak_unlock(&g_big_lock);
  victims_release(&v);
  /* slot 0 leaves the count: the SuperSlab counts its header page */
  if (c) hak_os_commit_add(-(int64_t)HAK_SLOT_SIZE);
  return c;
}

bool hak_bigcache_held(void) {
  return atomic_load_explicit(&g_cache_oldest, memory_order_relaxed) != 0;
}

size_t hak_bigcache_flush(void) {
  if (!hak_bigcache_held()) return 0; /* empty: no lock */
  size_t bytes = 0;
  victims_t v = {.n = 0};
  for (;;) {
    hak_lock(&g_big_lock);
    while (g_cache_old && v.n < 32) {
      hak_big_t *h = g_cache_old;
      bytes += h->map_size;
      cache_remove(h);
      victim_add(&v, h);
    }
    hak_unlock(&g_big_lock);
    if (!v.n) break;
    victims_release(&v);
  }
  return bytes;
}

void hak_big_usage(size_t *live_count, size_t *live_bytes, size_t *live_user, size_t *cached_count,
                   size_t *cached_bytes) {
  hak_lock(&g_big_lock);
  *live_count = g_live_count;
  *live_bytes = g_live_bytes;
  *live_user = g_live_user;
  *cached_count = g_cache_count;
  *cached_bytes = g_cache_bytes;
  hak_unlock(&g_big_lock);
}

void hak_big_lock(void) {
  hak_lock(&g_big_lock);
}
void hak_big_unlock(void) {
  hak_unlock(&g_big_lock);
}
void hak_big_reset_lock(void) {
  hak_lock_reset(&g_big_lock);
}
