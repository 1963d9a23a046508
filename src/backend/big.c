/* Big blocks and BigCache. Every operation here costs a syscall or more, so a
 * single short lock over the live list and the cache is cheap by comparison. */
#include "backend/big.h"
#include "backend/arena.h"
#include "backend/shared_pool.h"
#include "backend/housekeep.h"
#include "base/config.h"
#include "base/counters.h"
#include "base/lock.h"
#include "base/report.h"
#include "mem/registry.h"
#include "os/os.h"

#include <errno.h>
#include <string.h>
#include <time.h>

#define BIG_HDR HAK_BIG_HEADER

static hak_lock_t g_big_lock = HAK_LOCK_INIT;
static hak_big_t *g_big_live;                      /* every live big block */
static hak_big_t *g_cache_new, *g_cache_old;       /* BigCache, newest first */
static size_t g_cache_bytes, g_cache_count;
static size_t g_live_bytes, g_live_count;
/* When the oldest cached run was cached (0: cache empty), readable without
 * the lock so that slow paths can check for expired runs for free. */
static _Atomic uint64_t g_cache_oldest;


static void live_add(hak_big_t *h) {
  h->prev = NULL;
  h->next = g_big_live;
  if (g_big_live) g_big_live->prev = h;
  g_big_live = h;
  g_live_bytes += h->map_size;
  g_live_count++;
}

static void live_remove(hak_big_t *h) {
  if (h->prev) h->prev->next = h->next;
  else g_big_live = h->next;
  if (h->next) h->next->prev = h->prev;
  g_live_bytes -= h->map_size;
  g_live_count--;
}

static void cache_remove(hak_big_t *h) {
  if (h->prev) h->prev->next = h->next;
  else g_cache_new = h->next;
  if (h->next) h->next->prev = h->prev;
  else g_cache_old = h->prev;
  g_cache_bytes -= h->map_size;
  g_cache_count--;
  atomic_store_explicit(&g_cache_oldest, g_cache_old ? g_cache_old->time : 0, memory_order_relaxed);
}

/* Unmapping happens after the lock is dropped: the list of victims is
 * threaded through the headers themselves. */
static void unmap_list(hak_big_t *h) {
  while (h) {
    hak_big_t *next = h->next;
    size_t sz = h->map_size;
    hak_os_commit_add(-(int64_t)sz);
    hak_os_unmap(h, sz);
    h = next;
  }
}

static hak_big_t *cache_evict_locked(size_t room, uint64_t now) {
  hak_big_t *victims = NULL;
  while (g_cache_old && (g_cache_bytes + room > g_cfg.bigcache_bytes ||
                         (now > g_cache_old->time &&
                          now - g_cache_old->time > g_cfg.bigcache_ms))) {
    hak_big_t *h = g_cache_old;
    cache_remove(h);
    hak_registry_clear((uintptr_t)h);
    h->next = victims;
    victims = h;
  }
  return victims;
}

static void header_init(hak_big_t *h, size_t map_size, size_t user_off) {
  h->r.magic = HAK_REGION_MAGIC;
  h->r.kind = HAK_REGION_BIG;
  h->map_size = map_size;
  h->user_off = user_off;
  h->user_size = map_size - user_off;
}

static void cache_insert_locked(hak_big_t *h, uint64_t now) {
  h->live = 0;
  h->time = now;
  h->prev = NULL;
  h->next = g_cache_new;
  if (g_cache_new) g_cache_new->prev = h;
  else g_cache_old = h;
  g_cache_new = h;
  g_cache_bytes += h->map_size;
  g_cache_count++;
  atomic_store_explicit(&g_cache_oldest, g_cache_old->time, memory_order_relaxed);
}

/* Puts a run that is no longer handed out into BigCache, merged with cached
 * runs right before and after it, or unmaps it when it is too large to keep.
 * Runs start on 2 MiB boundaries and are multiples of 2 MiB, so they split
 * and merge without a syscall; each run's first page is its header. */
static void cache_put(hak_big_t *h, uint64_t now) {
  hak_big_t *victims;
  hak_lock(&g_big_lock);
  for (hak_big_t *c = g_cache_new, *next; c; c = next) {
    next = c->next;
    if ((char *)c + c->map_size == (char *)h) { /* c precedes h */
      cache_remove(c);
      hak_registry_clear((uintptr_t)h);
      c->map_size += h->map_size;
      h = c;
      next = g_cache_new; /* the list changed: look again */
    } else if ((char *)h + h->map_size == (char *)c) { /* c follows h */
      cache_remove(c);
      hak_registry_clear((uintptr_t)c);
      h->map_size += c->map_size;
      next = g_cache_new;
    }
  }
  if (h->map_size <= g_cfg.bigcache_bytes) {
    victims = cache_evict_locked(h->map_size, now);
    cache_insert_locked(h, now);
  } else {
    hak_registry_clear((uintptr_t)h);
    h->next = cache_evict_locked(0, now);
    victims = h;
  }
  hak_unlock(&g_big_lock);
  unmap_list(victims);
}

/* Takes need bytes from BigCache: the smallest run that holds them, split
 * when it is larger (the rest stays cached, its pages still there), or else
 * the largest run, grown with mremap (only the new part will fault). */
static hak_big_t *cache_take(size_t need, uint64_t now) {
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
    hak_big_t *rest = (hak_big_t *)((char *)fit + need);
    /* The new header lands on old user data: every owner probe in its page
     * must read NULL before the registry bit makes free() look at it. */
    memset(rest, 0, HAK_BIG_HEADER);
    header_init(rest, fit->map_size - need, BIG_HDR);
    hak_registry_set((uintptr_t)rest);
    fit->map_size = need;
    cache_insert_locked(rest, now); /* newest end of the list, so newest time */
  }
  hak_big_t *victims = cache_evict_locked(0, now);
  hak_unlock(&g_big_lock);
  unmap_list(victims);
  if (!h || h->map_size >= need) return h;
  size_t old = h->map_size;
  if (hak_os_remap_inplace(h, old, need)) {
    hak_os_commit_add((int64_t)(need - old));
    h->map_size = need;
    return h;
  }
  /* Moving the pages unmaps the old place: under the lock, as every change
   * of a registered Big region is, so hak_owns never reads a moving header. */
  hak_lock(&g_big_lock);
  hak_registry_clear((uintptr_t)h);
  hak_big_t *n = hak_os_remap_aligned(h, old, need, HAK_SS_SIZE);
  hak_registry_set((uintptr_t)(n ? n : h));
  hak_unlock(&g_big_lock);
  if (!n) { /* could not grow it: it goes back to the cache */
    cache_put(h, now);
    return NULL;
  }
  hak_os_commit_add((int64_t)(need - old));
  n->map_size = need;
  return n;
}

void *hak_big_alloc(size_t size, size_t align, bool *zero) {
  *zero = false;
  if (align < HAK_PAGE) align = HAK_PAGE;
  size_t off = align > BIG_HDR ? align : BIG_HDR;
  if (size > ((size_t)1 << HAK_ADDR_BITS) - off - 2 * HAK_SS_SIZE) {
    errno = ENOMEM;
    return NULL;
  }
  size_t need = hak_align_up(off + size, HAK_SS_SIZE);
  size_t map_align = align >= HAK_SS_SIZE ? align : HAK_SS_SIZE;
  hak_big_t *h = align < HAK_SS_SIZE ? cache_take(need, hak_os_now_ms()) : NULL;
  if (h) {
    hak_cnt_add(&g_stats.bigcache_hits, 1);
  } else {
    hak_cnt_add(&g_stats.bigcache_misses, 1);
    h = hak_os_map_aligned(need, map_align);
    /* Refused: empty arenas may hold the address space (RLIMIT_AS). */
    if (!h && hak_arena_release_free(hak_sp_quiescent)) h = hak_os_map_aligned(need, map_align);
    if (!h) {
      errno = ENOMEM;
      return NULL;
    }
    hak_os_commit_add((int64_t)need);
    header_init(h, need, off);
    if (g_cfg.thp == HAK_THP_ON) hak_os_hugepage((char *)h + off, need - off, true);
    *zero = true;
    hak_registry_set((uintptr_t)h);
  }
  h->user_off = off;
  h->user_size = h->map_size - off;
  h->req_size = size;
  hak_lock(&g_big_lock);
  h->live = 1;
  live_add(h);
  hak_unlock(&g_big_lock);
  hak_cnt_add(&g_stats.big_allocs, 1);
  return (char *)h + off;
}

void hak_big_free(hak_big_t *h) {
  uint64_t now = hak_os_now_ms();
  hak_cnt_add(&g_stats.big_frees, 1);
  hak_lock(&g_big_lock);
  if (!h->live) { /* lost a race with another free of the same block */
    hak_unlock(&g_big_lock);
    hak_report_invalid("free", hak_big_user(h), "double free of a big block", NULL);
    return;
  }
  h->live = 0;
  live_remove(h);
  hak_unlock(&g_big_lock);
  cache_put(h, now);
  hak_housekeep_poke(); /* BigCache's expiry needs no further call */
}

static void *big_resize(hak_big_t *h, size_t size);

void *hak_big_realloc(hak_big_t *h, size_t size) {
  size_t off = h->user_off;
  void *q = big_resize(h, size);
  if (q) ((hak_big_t *)((char *)q - off))->req_size = size;
  return q;
}

static void *big_resize(hak_big_t *h, size_t size) {
  size_t off = h->user_off;
  if (size > ((size_t)1 << HAK_ADDR_BITS) - off - 2 * HAK_SS_SIZE) return NULL;
  size_t need = hak_align_up(off + size, HAK_SS_SIZE);
  size_t old = h->map_size;
  if (need <= old) {
    /* Shrink in place; give the tail back only when it is worth a syscall. */
    if (old - need >= HAK_SS_SIZE && need < old / 2 && hak_os_remap_inplace(h, old, need)) {
      hak_os_commit_add(-(int64_t)(old - need));
      hak_lock(&g_big_lock);
      g_live_bytes -= old - need;
      h->map_size = need;
      h->user_size = need - off;
      hak_unlock(&g_big_lock);
    }
    return (char *)h + off;
  }
  hak_cnt_add(&g_stats.big_mremaps, 1);
  /* Grow by half again as much, so that a buffer growing in small steps does
   * not pay one mremap per step. */
  size_t want = need + ((need - old) < old / 2 ? hak_align_up(old / 2, HAK_SS_SIZE) : 0);
  hak_lock(&g_big_lock);
  if (hak_os_remap_inplace(h, old, want) || (want != need && hak_os_remap_inplace(h, old, (want = need)))) {
    g_live_bytes += want - old;
    h->map_size = want;
    h->user_size = want - off;
    hak_unlock(&g_big_lock);
    hak_os_commit_add((int64_t)(want - old));
    return (char *)h + off;
  }
  /* Move the pages to a new aligned place: no copy, and the list node (the
   * header) moves with them. */
  size_t align = off > HAK_SS_SIZE ? off : HAK_SS_SIZE;
  hak_big_t *prev = h->prev, *next = h->next;
  hak_big_t *n = hak_os_remap_aligned(h, old, need, align);
  if (!n) {
    hak_unlock(&g_big_lock);
    return NULL;
  }
  if (prev) prev->next = n;
  else g_big_live = n;
  if (next) next->prev = n;
  g_live_bytes += need - old;
  n->map_size = need;
  n->user_size = need - off;
  hak_registry_clear((uintptr_t)h);
  hak_registry_set((uintptr_t)n);
  hak_unlock(&g_big_lock);
  hak_os_commit_add((int64_t)(need - old));
  return (char *)n + off;
}

hak_big_t *hak_big_find_locked(const void *p) {
  uintptr_t a = (uintptr_t)p;
  for (hak_big_t *h = g_big_live; h; h = h->next) {
    uintptr_t u = (uintptr_t)h + h->user_off;
    if (a >= u && a < (uintptr_t)h + h->map_size) return h;
  }
  return NULL;
}

bool hak_big_in_cache(const void *p, bool locked) {
  uintptr_t a = (uintptr_t)p;
  bool found = false;
  if (!locked) hak_lock(&g_big_lock);
  for (hak_big_t *h = g_cache_new; h && !found; h = h->next)
    found = a >= (uintptr_t)h && a < (uintptr_t)h + h->map_size;
  if (!locked) hak_unlock(&g_big_lock);
  return found;
}

hak_big_t *hak_big_find(const void *p) {
  hak_lock(&g_big_lock);
  hak_big_t *found = hak_big_find_locked(p);
  hak_unlock(&g_big_lock);
  return found;
}

void hak_bigcache_expire(void) {
  uint64_t oldest = atomic_load_explicit(&g_cache_oldest, memory_order_relaxed);
  if (!oldest) return;
  uint64_t now = hak_os_now_ms();
  if (now <= oldest || now - oldest <= g_cfg.bigcache_ms) return;
  hak_lock(&g_big_lock);
  hak_big_t *victims = cache_evict_locked(0, now);
  hak_unlock(&g_big_lock);
  unmap_list(victims);
}

bool hak_bigcache_held(void) { return atomic_load_explicit(&g_cache_oldest, memory_order_relaxed) != 0; }

size_t hak_bigcache_flush(void) {
  hak_lock(&g_big_lock);
  size_t bytes = g_cache_bytes;
  hak_big_t *victims = NULL;
  while (g_cache_old) {
    hak_big_t *h = g_cache_old;
    cache_remove(h);
    hak_registry_clear((uintptr_t)h);
    h->next = victims;
    victims = h;
  }
  hak_unlock(&g_big_lock);
  unmap_list(victims);
  return bytes;
}

void hak_big_usage(size_t *live_count, size_t *live_bytes, size_t *cached_count, size_t *cached_bytes) {
  hak_lock(&g_big_lock);
  *live_count = g_live_count;
  *live_bytes = g_live_bytes;
  *cached_count = g_cache_count;
  *cached_bytes = g_cache_bytes;
  hak_unlock(&g_big_lock);
}

void hak_big_lock(void) { hak_lock(&g_big_lock); }
void hak_big_unlock(void) { hak_unlock(&g_big_lock); }
void hak_big_reset_lock(void) { hak_lock_reset(&g_big_lock); }
