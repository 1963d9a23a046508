/* Purging inside slabs in use (see purge.h). */
#include "frontend/purge.h"
#include "backend/housekeep.h"
#include "base/config.h"
#include "base/counters.h"
#include "base/lock.h"
#include "frontend/heap.h"
#include "os/os.h"

#include <string.h>

#define MAX_BLOCKS 4096 /* the most blocks a slab holds: 64 KiB of 16 B */
#define MAX_PAGES (HAK_SLOTS * HAK_SLOT_PAGES)

/* A slab's page geometry: its pages counted from its first slot's start. */
typedef struct {
  uintptr_t start; /* the first slot's address */
  uintptr_t base;  /* the first block */
  uint32_t bsize, carved, npages;
} span_t;

static span_t span_of(const hak_slab_t *s) {
  span_t g;
  g.start = (uintptr_t)hak_slot_addr(hak_ss_of(s), hak_slab_index(s));
  g.base = s->geo.base;
  g.bsize = s->geo.bsize;
  g.carved = (uint32_t)(((uintptr_t)s->geo.carve - g.base) / g.bsize);
  g.npages = (uint32_t)s->geo.nslots * HAK_SLOT_PAGES;
  return g;
}

/* Blocks [*lo, *hi) are the carved ones that overlap page pg. */
static void page_blocks(const span_t *g, uint32_t pg, uint32_t *lo, uint32_t *hi) {
  uintptr_t ps = g->start + (uintptr_t)pg * HAK_PAGE, pe = ps + HAK_PAGE;
  uint32_t a = ps <= g->base ? 0 : (uint32_t)((ps - g->base) / g->bsize);
  uint32_t b = pe <= g->base ? 0 : (uint32_t)((pe - g->base + g->bsize - 1) / g->bsize);
  *lo = a < g->carved ? a : g->carved;
  *hi = b < g->carved ? b : g->carved;
}

static bool page_purged(const hak_slab_t *s, uint32_t pg) {
  return (s[pg / HAK_SLOT_PAGES].tc.purged >> (pg % HAK_SLOT_PAGES)) & 1;
}

/* Pages [first, last] that block i covers. */
static void block_pages(const span_t *g, uint32_t i, uint32_t *first, uint32_t *last) {
  uintptr_t b = g->base + (uintptr_t)i * g->bsize;
  *first = (uint32_t)((b - g->start) / HAK_PAGE);
  *last = (uint32_t)((b + g->bsize - 1 - g->start) / HAK_PAGE);
}

static bool block_on_purged(const hak_slab_t *s, const span_t *g, uint32_t i) {
  uint32_t f, l;
  block_pages(g, i, &f, &l);
  for (uint32_t pg = f; pg <= l; pg++)
    if (page_purged(s, pg)) return true;
  return false;
}

static void set_purged(hak_slab_t *s, uint32_t pg, bool on) {
  hak_slab_t *slot = &s[pg / HAK_SLOT_PAGES];
  uint16_t m = slot->tc.purged, bit = (uint16_t)(1u << (pg % HAK_SLOT_PAGES));
  __atomic_store_n(&slot->tc.purged, (uint16_t)(on ? m | bit : m & ~bit), __ATOMIC_RELAXED);
}

static void set_flag(hak_slab_t *s, uint8_t f, bool on) {
  uint8_t v = s->tc.flags;
  __atomic_store_n(&s->tc.flags, (uint8_t)(on ? v | f : v & ~f), __ATOMIC_RELAXED);
}

size_t hak_slab_purge(hak_slab_t *s) {
  HAK_ASSERT(s->tc.flags & HAK_SLAB_QUEUED);
  span_t g = span_of(s);
  if (s->geo.capacity > MAX_BLOCKS || !s->tc.nfree) return 0;
  /* Free: on the list, or off it because a purged page holds it already. */
  uint64_t free_map[MAX_BLOCKS / 64];
  memset(free_map, 0, (g.carved + 63) / 64 * 8);
  void *b = s->tc.free;
  for (uint32_t n = s->tc.nfree; b && n; n--, b = hak_sll_next(b)) {
    uint32_t i = (uint32_t)(((uintptr_t)b - g.base) / g.bsize);
    if ((uintptr_t)b < g.base || i >= g.carved)
      return 0; /* a list a use after free broke: leave it */
    free_map[i / 64] |= 1ull << (i % 64);
  }
  bool had = s->tc.flags & HAK_SLAB_PURGED;
  uint32_t newly[MAX_PAGES / 32] = {0};
  uint32_t count = 0;
  for (uint32_t pg = 0; pg < g.npages; pg++) {
    if (page_purged(s, pg)) continue;
    uint32_t lo, hi;
    page_blocks(&g, pg, &lo, &hi);
    if (lo == hi) continue; /* past the carve point: never written, or the pool's */
    /* A block not yet carved would start in it, handed out with the page's
     * bit set later. */
    if (g.carved < s->geo.capacity &&
        g.base + (uintptr_t)g.carved * g.bsize < g.start + (uintptr_t)(pg + 1) * HAK_PAGE)
      continue;
    bool all_free = true;
    for (uint32_t i = lo; i < hi && all_free; i++)
      all_free = ((free_map[i / 64] >> (i % 64)) & 1) || (had && block_on_purged(s, &g, i));
    if (all_free) {
      newly[pg / 32] |= 1u << (pg % 32);
      count++;
    }
  }
  /* Too little to pay for the syscall and the faults when the slab is used again. */
  if (count < 2) return 0;
  for (uint32_t pg = 0; pg < g.npages; pg++)
    if ((newly[pg / 32] >> (pg % 32)) & 1) set_purged(s, pg, true);
  set_flag(s, HAK_SLAB_PURGED, true); /* the carve limit stays 0: s is queued */
  /* Off the list: every block that overlaps a purged page. */
  void **link = &s->tc.free, *keep_tail = NULL;
  uint32_t kept = 0;
  b = s->tc.free;
  for (uint32_t n = s->tc.nfree; b && n; n--) {
    void *next = hak_sll_next(b);
    uint32_t i = (uint32_t)(((uintptr_t)b - g.base) / g.bsize);
    if (!block_on_purged(s, &g, i)) {
      if (keep_tail)
        hak_sll_set_next(keep_tail, b);
      else
        *link = b;
      keep_tail = b;
      kept++;
    }
    b = next;
  }
  if (keep_tail)
    hak_sll_set_next(keep_tail, NULL);
  else
    *link = NULL;
  s->tc.nfree = (uint16_t)kept;
  /* One madvise per run of adjacent pages. */
  size_t bytes = 0;
  for (uint32_t pg = 0; pg < g.npages;) {
    if (!((newly[pg / 32] >> (pg % 32)) & 1)) {
      pg++;
      continue;
    }
    uint32_t end = pg;
    while (end < g.npages && ((newly[end / 32] >> (end % 32)) & 1))
      end++;
    hak_ss_thp_give_up(hak_ss_of(s));
    /* Refused: the pages keep their contents, which no list names any more;
     * the bookkeeping stays as it is, so the memory is only kept longer. */
    if (hak_os_decommit((void *)(g.start + (uintptr_t)pg * HAK_PAGE),
                        (size_t)(end - pg) * HAK_PAGE))
      bytes += (size_t)(end - pg) * HAK_PAGE;
    pg = end;
  }
  hak_cnt_add(&g_stats.slab_purges, 1);
  hak_cnt_add(&g_stats.slab_purged_bytes, bytes);
  return bytes;
}

uint32_t hak_slab_unpurge(hak_heap_t *h, hak_slab_t *s, uint32_t want) {
  if (!(s->tc.flags & HAK_SLAB_PURGED)) return 0;
  span_t g = span_of(s);
  uintptr_t key = hak_free_key(h);
  uint32_t got = 0, pages = 0;
  bool left = false;
  for (uint32_t pg = 0; pg < g.npages; pg++) {
    if (!page_purged(s, pg)) continue;
    if (got >= want) {
      left = true;
      break;
    }
    set_purged(s, pg, false);
    pages++;
    uint32_t lo, hi;
    page_blocks(&g, pg, &lo, &hi);
    /* A block that overlaps another purged page comes back with the last
     * of them, so each comes back once. */
    for (uint32_t i = lo; i < hi; i++) {
      if (block_on_purged(s, &g, i)) continue;
      void *blk = (void *)(g.base + (uintptr_t)i * g.bsize);
      *hak_block_key(blk) = key;
      hak_sll_set_next(blk, s->tc.free);
      s->tc.free = blk;
      s->tc.nfree++;
      got++;
    }
  }
  if (!left) { /* no purged page is left */
    set_flag(s, HAK_SLAB_PURGED, false);
    hak_slab_reset_lim(s);
  }
  hak_cnt_add(&g_stats.slab_unpurged_bytes, (uint64_t)pages * HAK_PAGE);
  return got;
}

void hak_slab_purge_forget(hak_slab_t *s) {
  if (!(s->tc.flags & HAK_SLAB_PURGED)) return;
  for (unsigned i = 0; i < s->geo.nslots; i++)
    __atomic_store_n(&s[i].tc.purged, 0, __ATOMIC_RELAXED);
  set_flag(s, HAK_SLAB_PURGED, false);
  hak_slab_reset_lim(s);
}

/* --- the purge queue ------------------------------------------------------ */

static hak_lock_t g_purge_lock = HAK_LOCK_INIT; /* the background thread's purge pass */

void hak_purge_consider(hak_heap_t *h, hak_slab_t *s) {
  uint32_t u = s->tc.used, cap = s->geo.capacity;
  if (HAK_LIKELY(u * 8 > cap)) return;
  uint8_t lvl = u * 128 <= cap  ? HAK_SLAB_TRIED_128 | HAK_SLAB_TRIED_32 | HAK_SLAB_TRIED_8
                : u * 32 <= cap ? HAK_SLAB_TRIED_32 | HAK_SLAB_TRIED_8
                                : HAK_SLAB_TRIED_8;
  uint8_t f = s->tc.flags;
  if ((f & lvl) == lvl || (f & HAK_SLAB_QUEUED) || hak_heap_is_prof(h)) return;
  if (s->tc.list != HAK_LIST_PARTIAL && s->tc.list != HAK_LIST_PURGED) return;
  hak_heap_slab_unlink(h, s);
  uint32_t n = atomic_load_explicit(&h->sparse_n, memory_order_relaxed);
  if (!n) h->sparse_ms = hak_os_now_ms(); /* a generation starts */
  hak_heap_slab_push(h, s, HAK_LIST_SPARSE0 + h->sparse_cur);
  set_flag(s, lvl | HAK_SLAB_QUEUED, true);
  hak_slab_reset_lim(s); /* carve_lim 0: the owner's frees take the lock */
  atomic_store_explicit(&h->sparse_n, n + 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&g_hk_purge_queued, 1, memory_order_relaxed);
  hak_housekeep_note();
}

static void unqueued(hak_heap_t *h) {
  atomic_store_explicit(&h->sparse_n, atomic_load_explicit(&h->sparse_n, memory_order_relaxed) - 1,
                        memory_order_relaxed);
  atomic_fetch_sub_explicit(&g_hk_purge_queued, 1, memory_order_relaxed);
}

void hak_purge_dequeue(hak_heap_t *h, hak_slab_t *s) {
  unqueued(h);
  set_flag(s, HAK_SLAB_QUEUED, false);
  hak_slab_reset_lim(s);
}

/* Purges the slabs of sparse list gen; each goes to the purged list, or back
 * to the partial one if nothing could go. */
static size_t purge_generation(hak_heap_t *h, unsigned gen, bool owner) {
  size_t bytes = 0;
  for (unsigned c = 0; c < HAK_NCLASS; c++) {
    hak_slab_t *s;
    while ((s = h->sparse[gen][c])) {
      hak_heap_slab_unlink(h, s);
      bytes += hak_slab_purge(s);
      hak_heap_slab_push(h, s,
                         (s->tc.flags & HAK_SLAB_PURGED) ? HAK_LIST_PURGED : HAK_LIST_PARTIAL);
      set_flag(s, HAK_SLAB_QUEUED, false);
      /* Only the owner writes the limit that its free's fast path reads
       * without an atomic; until it does, the slab's frees take the lock. */
      if (owner) hak_slab_reset_lim(s);
      unqueued(h);
    }
  }
  return bytes;
}

size_t hak_purge_due(hak_heap_t *h, uint64_t now_ms, bool all, bool owner) {
  if (!atomic_load_explicit(&h->sparse_n, memory_order_relaxed)) return 0;
  if (!all && now_ms - h->sparse_ms < g_cfg.decay_ms / 2) return 0;
  unsigned newer = h->sparse_cur;
  size_t bytes = purge_generation(h, newer ^ 1, owner);
  if (all) bytes += purge_generation(h, newer, owner);
  /* The older list is empty: it collects from now on. */
  h->sparse_cur = (uint8_t)(newer ^ 1);
  h->sparse_ms = now_ms;
  return bytes;
}

/* The background thread's pass: each heap with queued slabs whose lock is
 * free (a heap whose owner is in a slow path waits for the next tick). */
static size_t purge_background(uint64_t now_ms) {
  size_t bytes = 0;
  hak_lock(&g_purge_lock);
  for (hak_heap_t *h = hak_heap_first(); h; h = h->all_next) {
    if (!atomic_load_explicit(&h->sparse_n, memory_order_relaxed) || !hak_trylock(&h->lock))
      continue;
    bytes += hak_purge_due(h, now_ms, false, false);
    hak_unlock(&h->lock);
  }
  hak_unlock(&g_purge_lock);
  return bytes;
}

void hak_purge_init(void) {
  g_hk_purge = purge_background;
}
void hak_purge_lock_all(void) {
  hak_lock(&g_purge_lock);
}
void hak_purge_unlock_all(void) {
  hak_unlock(&g_purge_lock);
}
void hak_purge_atfork_child(void) {
  hak_lock_reset(&g_purge_lock);
}
