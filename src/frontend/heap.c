/* Thread heaps: refill, drain, remote-free collection, thread exit and
 * adoption. Everything here is a slow path of heap.h. */
#include "frontend/heap.h"
#include "backend/big.h"
#include "backend/guard.h"
#include "backend/housekeep.h"
#include "backend/shared_pool.h"
#include "base/config.h"
#include "base/counters.h"
#include "base/init.h"
#include "base/lock.h"
#include "base/report.h"
#include "frontend/ace.h"
#include "frontend/purge.h"
#include "os/os.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>

hak_heap_t g_empty_heap; /* all SLLs empty: every call takes the slow path */
__thread hak_heap_t *t_heap = &g_empty_heap;
uint16_t g_heap_tiny_off[(HAK_TINY_MAX >> 4) + 1];
#ifdef HAKMEM_HARDENED
uintptr_t g_sll_key;
#endif

static hak_lock_t g_heaps_lock = HAK_LOCK_INIT;
static hak_heap_t *g_heaps_all;
/* Heaps of exited threads. Changed under g_heaps_lock by relaxed atomic
 * stores, so that malloc_trim can see it empty without the lock. */
static hak_heap_t *g_heaps_abandoned;
static pthread_key_t g_exit_key; /* its destructor runs hak_heap_thread_exit */
/* Remote frees by threads that never made a heap, per class. */
static _Atomic uint64_t g_remote_out_noheap[HAK_NCLASS];

uint64_t g_heap_sample_mean;
void *(*g_heap_sampler)(unsigned cls, size_t size);
hak_heap_t g_prof_heaps[HAK_PROF_HEAPS]; /* own the slabs of sampled blocks; under their shards' locks */

HAK_INLINE uint16_t sll_off(unsigned cls) {
  return (uint16_t)(offsetof(hak_heap_t, sll) + cls * sizeof(hak_sll_t));
}

static void heap_apply_policy(hak_heap_t *h) {
  const hak_policy_t *pol = hak_policy();
  for (unsigned c = 0; c < HAK_NCLASS; c++) {
    h->sll[c].room += (int32_t)pol->cap[c] - (int32_t)h->sll[c].cap;
    h->sll[c].cap = pol->cap[c];
    h->batch[c] = pol->batch[c];
  }
  h->policy_version = pol->version;
}

/* --- sampling and junk ------------------------------------------------ */
/* One countdown per class, the SLL's tick, serves the guard pool, the
 * profiler and junk: it runs out at the nearer of the next guarded and the
 * next profiled allocation (at every allocation with junk), and never while
 * all three are off. */

#define TICK_OFF ((int64_t)1 << 62) /* no sampling: the tick never runs out */

static uint64_t heap_rand(hak_heap_t *h) {
  uint64_t x = h->rng ? h->rng : ((uintptr_t)h * 0x9e3779b97f4a7c15ull) | 1;
  x ^= x << 13, x ^= x >> 7, x ^= x << 17;
  return h->rng = x;
}

/* One guarded allocation in about N: the gap is uniform in 1..2N-1, so
 * that a program's allocation pattern cannot hide in step with it. */
static int64_t guard_gap(hak_heap_t *h) {
  uint64_t n = g_cfg.guard_sample;
  return n <= 1 ? 1 : (int64_t)(1 + heap_rand(h) % (2 * n - 1));
}

/* -ln(u) for u uniform in (0, 1), without libm: u = m * 2^e with m in [1, 2),
 * ln m = 2 atanh((m - 1) / (m + 1)) by its series (error below 1e-6). */
static double neg_log_uniform(uint64_t r) {
  double u = ((double)(r >> 11) + 0.5) * 0x1p-53;
  union { double d; uint64_t b; } v = {u};
  int e = (int)((v.b >> 52) & 0x7ff) - 1023;
  v.b = (v.b & 0x000fffffffffffffull) | 0x3ff0000000000000ull;
  double z = (v.d - 1) / (v.d + 1), z2 = z * z;
  double ln_m = 2 * z * (1 + z2 * (1.0 / 3 + z2 * (1.0 / 5 + z2 * (1.0 / 7 + z2 * (1.0 / 9)))));
  return -(e * 0.6931471805599453 + ln_m);
}

/* Allocations of class cls up to and including the next profiled one: the
 * one holding the byte an exponential distance of mean g_heap_sample_mean
 * away, so that an allocation of size s is sampled with probability
 * 1 - exp(-s / mean), the rate pprof's heap_v2 unsampling assumes. */
static int64_t sample_distance(hak_heap_t *h, unsigned cls) {
  double d = neg_log_uniform(heap_rand(h) * 0x2545f4914f6cdd1dull) * (double)g_heap_sample_mean / g_class[cls].size;
  return d < (double)TICK_OFF ? (int64_t)d + 1 : TICK_OFF;
}

enum { FIRED_GUARD = 1, FIRED_PROF = 2 };

/* Counts the allocations of the tick that ended and starts the next one;
 * says which samples are due. */
static unsigned tick_restart(hak_heap_t *h, unsigned cls) {
  int64_t done = h->tick_start[cls] - h->sll[cls].tick;
  unsigned fired = 0;
  h->n_alloc_base[cls] += (uint64_t)done;
  if (g_cfg.guard_sample && (h->guard_rem[cls] -= done) <= 0) {
    fired |= FIRED_GUARD;
    h->guard_rem[cls] = guard_gap(h);
  }
  if (g_heap_sample_mean && (h->prof_rem[cls] -= done) <= 0) {
    fired |= FIRED_PROF;
    h->prof_rem[cls] = sample_distance(h, cls);
  }
  int64_t t = TICK_OFF;
  if (g_cfg.guard_sample && h->guard_rem[cls] < t) t = h->guard_rem[cls];
  if (g_heap_sample_mean && h->prof_rem[cls] < t) t = h->prof_rem[cls];
  if (g_cfg.junk) t = 1;
  h->alloc_base_sum += (uint64_t)(t - h->sll[cls].tick); /* done + t - the old tick_start */
  h->tick_start[cls] = h->sll[cls].tick = t;
  return fired;
}

/* An allocation the slow paths hand out: counted, filled with junk. */
static void *alloc_counted(hak_heap_t *h, unsigned cls, void *b) {
  if (--h->sll[cls].tick == 0) tick_restart(h, cls);
  if (HAK_UNLIKELY(g_cfg.junk)) memset(b, 0xAA, g_class[cls].size);
  return b;
}

/* The tick of cls ran out at this allocation (counted): a guarded block or
 * the profiler's takes its place when due, or NULL. */
static void *tick_fired(hak_heap_t *h, unsigned cls, size_t size) {
  unsigned fired = tick_restart(h, cls);
  if (fired & FIRED_GUARD) {
    void *p = hak_guard_alloc(size);
    if (p) {
      h->n_alloc_base[cls]--; /* not one of the class's blocks */
      h->alloc_base_sum--;
      if (g_cfg.junk) memset(p, 0xAA, size);
      return p;
    }
  }
  if ((fired & FIRED_PROF) && g_heap_sampler) {
    void *b = g_heap_sampler(cls, size);
    if (b) {
      h->sll[cls].n_direct++; /* the class's block, not from the SLL */
      if (g_cfg.junk) memset(b, 0xAA, g_class[cls].size);
      return b;
    }
  }
  return NULL;
}

void *hak_heap_sample_alloc(size_t size, hak_heap_t *h, unsigned cls) {
  void *p = tick_fired(h, cls, size);
  if (p) return p;
  hak_sll_t *l = &h->sll[cls];
  void *b = hak_sll_pop(l, l->head);
  if (g_cfg.junk) memset(b, 0xAA, g_class[cls].size);
  return b;
}

/* HAKMEM_JUNK: a freed block reads 0xDD past its link and key. */
static void junk_freed(void *p, uint32_t bsize) {
  if (bsize > 2 * sizeof(uintptr_t)) memset((char *)p + 2 * sizeof(uintptr_t), 0xDD, bsize - 2 * sizeof(uintptr_t));
}

/* --- slab lists ------------------------------------------------------- */

/* A slab from the pool becomes h's: owner and SLL offset in every slot, and
 * this module's parts of the descriptor start over. */
static hak_slab_t *slab_adopt(hak_heap_t *h, hak_slab_t *s) {
  s->tc.free = NULL;
  s->tc.next = s->tc.prev = NULL;
  s->tc.used = 0;
  s->tc.nfree = 0;
  s->tc.list = HAK_LIST_NONE;
  HAK_ASSERT(!(s->tc.flags & HAK_SLAB_PURGED)); /* slab_give_back forgot them */
  s->tc.flags = 0;
  atomic_store_explicit(&s->rem.list, NULL, memory_order_relaxed);
  hak_ss_slab_set_owner(s, h, sll_off(s->geo.cls));
  return s;
}

/* s holds no block any more: it goes back to the pool. */
static void slab_give_back(hak_slab_t *s) {
  HAK_ASSERT(s->tc.used == 0 && !s->tc.list);
  s->tc.free = NULL;
  s->tc.nfree = 0;
  hak_slab_purge_forget(s);
  hak_sp_release(s);
}

static hak_slab_t **list_head(hak_heap_t *h, unsigned list, unsigned cls) {
  switch (list) {
  case HAK_LIST_PARTIAL: return &h->partial[cls];
  case HAK_LIST_SPARSE0: return &h->sparse[0][cls];
  case HAK_LIST_SPARSE1: return &h->sparse[1][cls];
  default: return &h->purged[cls];
  }
}

void hak_heap_slab_push(hak_heap_t *h, hak_slab_t *s, unsigned list) {
  hak_slab_t **head = list_head(h, list, s->geo.cls);
  s->tc.prev = NULL;
  s->tc.next = *head;
  if (s->tc.next) s->tc.next->tc.prev = s;
  *head = s;
  s->tc.list = (uint8_t)list;
}

void hak_heap_slab_unlink(hak_heap_t *h, hak_slab_t *s) {
  if (s->tc.prev) s->tc.prev->tc.next = s->tc.next;
  else *list_head(h, s->tc.list, s->geo.cls) = s->tc.next;
  if (s->tc.next) s->tc.next->tc.prev = s->tc.prev;
  s->tc.next = s->tc.prev = NULL;
  s->tc.list = HAK_LIST_NONE;
}

/* s leaves whichever list holds it to serve refills, or to go back. */
static void slab_take(hak_heap_t *h, hak_slab_t *s) {
  bool queued = s->tc.flags & HAK_SLAB_QUEUED;
  hak_heap_slab_unlink(h, s);
  if (HAK_UNLIKELY(queued)) hak_purge_dequeue(h, s);
}

/* After blocks came back to slab s: give it back to the pool when it holds no
 * block any more, or make it findable when it just got its first free one. */
static void slab_after_return(hak_heap_t *h, hak_slab_t *s) {
  HAK_ASSERT(s->geo.owner == h && s->geo.head == s && s->tc.used + s->tc.nfree <= s->geo.capacity);
  if (s == h->cur[s->geo.cls] || s == h->spare[s->geo.cls]) return;
  if (s->tc.used == 0) {
    if (s->tc.list) slab_take(h, s);
    /* One wholly free slab per class stays with the heap: a class whose
     * blocks all come back (producer/consumer) would otherwise bounce a slab
     * to the pool and back once per slab's worth of blocks. */
    if (!h->spare[s->geo.cls]) h->spare[s->geo.cls] = s;
    else slab_give_back(s);
  } else {
    if (!s->tc.list) hak_heap_slab_push(h, s, HAK_LIST_PARTIAL);
    else hak_purge_consider(h, s);
  }
}

static void slab_return_block(hak_heap_t *h, void *b) {
  hak_slab_t *s = hak_slab_of(b)->geo.head;
  if (HAK_UNLIKELY(s->tc.used == 0 || s->geo.owner != h)) {
    /* The same block sat twice in the SLL: leak it rather than corrupt. */
    hak_report_corruption(b, "double free: a block was freed twice by its owning thread");
    return;
  }
  hak_sll_set_next(b, s->tc.free);
  s->tc.free = b;
  s->tc.nfree++;
  s->tc.used--;
  slab_after_return(h, s);
}

/* --- remote frees ------------------------------------------------------ */

void hak_heap_remote_free(hak_slab_t *slot, void *p) {
  hak_slab_t *s = slot->geo.head;
  hak_heap_t *owner = slot->geo.owner;
  hak_heap_t *me = t_heap;
  /* The owner's key: the block is free already, on the owner's SLL, its
   * slab's free list or this remote list (none of which another thread may
   * walk). A live block holds it only if the program wrote the owner heap's
   * address into it. */
  uintptr_t key = hak_free_key(owner);
  if (HAK_UNLIKELY(*hak_block_key(p) == key)) {
    hak_report_invalid("free", p, "double free", NULL);
    return;
  }
  if (HAK_UNLIKELY(g_cfg.junk)) junk_freed(p, s->geo.bsize);
  *hak_block_key(p) = key;
  if (me != &g_empty_heap) me->n_remote_out[s->geo.cls]++;
  else atomic_fetch_add_explicit(&g_remote_out_noheap[s->geo.cls], 1, memory_order_relaxed);
  void *old = atomic_load_explicit(&s->rem.list, memory_order_relaxed);
  do {
    hak_sll_set_next(p, old);
  } while (!atomic_compare_exchange_weak_explicit(&s->rem.list, &old, p, memory_order_release,
                                                  memory_order_relaxed));
  if (old) return; /* the slab is already on its owner's pending stack */
  hak_slab_t *top = atomic_load_explicit(&owner->pending, memory_order_relaxed);
  do {
    atomic_store_explicit(&s->rem.pending_next, top, memory_order_relaxed);
  } while (!atomic_compare_exchange_weak_explicit(&owner->pending, &top, s, memory_order_release,
                                                  memory_order_relaxed));
}

/* A remote free that raced with the purge of its block's page (a second
 * free, seen by its thread before the page's bit was): reported, and kept
 * off the list, where it would be handed out twice. */
static void *drop_purged(hak_slab_t *s, void *list) {
  void *keep = NULL;
  while (list) {
    void *next = hak_sll_next(list);
    if (hak_slab_block_purged(s, (uintptr_t)list)) {
      hak_report_invalid("free", list, HAK_WHY_PURGED, NULL);
    } else {
      hak_sll_set_next(list, keep);
      keep = list;
    }
    list = next;
  }
  return keep;
}

/* Takes every slab with remote frees and merges those blocks into the slab's
 * free list in one pass. */
static void collect_pending(hak_heap_t *h) {
  hak_slab_t *s = atomic_exchange_explicit(&h->pending, NULL, memory_order_acquire);
  while (s) {
    /* Read the link first: once remote is emptied, another thread may push
     * the slab again and overwrite it. */
    hak_slab_t *next = atomic_load_explicit(&s->rem.pending_next, memory_order_relaxed);
    /* acq_rel: the load above must not move after the exchange. */
    void *list = atomic_exchange_explicit(&s->rem.list, NULL, memory_order_acq_rel);
    if (HAK_UNLIKELY(list && (s->tc.flags & HAK_SLAB_PURGED))) list = drop_purged(s, list);
    if (list) {
      uint32_t n = 1;
      void *tail = list;
      for (void *nx; (nx = hak_sll_next(tail)) != NULL; tail = nx) {
        if (++n > s->tc.used) {
          hak_report_corruption(list, "double free: a block was freed twice from another thread");
          break;
        }
      }
      if (n <= s->tc.used) {
        hak_sll_set_next(tail, s->tc.free);
        s->tc.free = list;
        s->tc.nfree += n;
        s->tc.used -= n;
        h->n_remote_in[s->geo.cls] += n;
        slab_after_return(h, s);
      }
    }
    s = next;
  }
}

/* Whether p, a block of h's slab s, is free: on h's SLL for its class, or on
 * the slab's free list once the remote frees are in. Walks at most the
 * lists' counts, so a list a use after free damaged cannot loop it. */
static bool block_is_free(hak_heap_t *h, hak_slab_t *s, void *p) {
  if (atomic_load_explicit(&h->pending, memory_order_relaxed)) collect_pending(h);
  hak_sll_t *l = (hak_sll_t *)((char *)h + s->geo.sll_off);
  void *b = l->head;
  for (uint32_t n = hak_sll_count(l); b && n; n--, b = hak_sll_next(b))
    if (b == p) return true;
  b = s->tc.free;
  for (uint32_t n = s->tc.nfree; b && n; n--, b = hak_sll_next(b))
    if (b == p) return true;
  return false;
}

static void drain_locked(hak_heap_t *h, unsigned cls);

void hak_heap_free_slow(hak_slab_t *slot, void *p) {
  hak_heap_t *h = t_heap;
  hak_slab_t *s = slot->geo.head;
  hak_lock(&h->lock);
  if (*hak_block_key(p) == hak_free_key(h) && block_is_free(h, s, p)) {
    hak_unlock(&h->lock);
    hak_report_invalid("free", p, "double free", NULL);
    return;
  }
  /* A live block whose second word held the key by chance, or any block
   * with junk on: the fast path's push. */
  if (HAK_UNLIKELY(g_cfg.junk)) junk_freed(p, s->geo.bsize);
  hak_sll_t *l = (hak_sll_t *)((char *)h + s->geo.sll_off);
  *hak_block_key(p) = hak_free_key(h);
  hak_sll_set_next(p, l->head);
  l->head = p;
  if (--l->room < 0) drain_locked(h, s->geo.cls);
  hak_unlock(&h->lock);
  hak_housekeep_start_pending();
}

/* --- refill and drain -------------------------------------------------- */

/* No block to hand out: none listed, none to carve, none purged. */
static bool slab_full(const hak_slab_t *s) {
  return !s->tc.free && s->geo.carve >= hak_slab_end(s) && !(s->tc.flags & HAK_SLAB_PURGED);
}

/* A slab that serves refills again may be queued again when it empties. */
static hak_slab_t *slab_reuse(hak_slab_t *s) {
  __atomic_store_n(&s->tc.flags, (uint8_t)(s->tc.flags & HAK_SLAB_PURGED), __ATOMIC_RELAXED);
  return s;
}

/* Slabs with free blocks first, and of those the ones waiting for a purge
 * last, oldest generation first (taking one spares its purge); then the
 * spare; then slabs whose free pages went back to the OS, which fault in
 * again as they are used; then the pool. */
static hak_slab_t *next_slab(hak_heap_t *h, unsigned cls) {
  hak_slab_t *s = h->partial[cls];
  if (!s) s = h->sparse[h->sparse_cur ^ 1][cls];
  if (!s) s = h->sparse[h->sparse_cur][cls];
  if (!s && (s = h->spare[cls])) {
    h->spare[cls] = NULL;
    return slab_reuse(s);
  }
  if (!s) s = h->purged[cls];
  if (s) {
    slab_take(h, s);
    return slab_reuse(s);
  }
  s = hak_sp_acquire(cls);
  return s ? slab_adopt(h, s) : NULL;
}

/* Gives the pool every slab of h that holds no block: spares, and current
 * slabs whose blocks all came back. */
static void release_idle(hak_heap_t *h) {
  for (unsigned c = 0; c < HAK_NCLASS; c++) {
    hak_slab_t *s = h->spare[c];
    if (s) {
      h->spare[c] = NULL;
      slab_give_back(s);
    }
    s = h->cur[c];
    if (s && s->tc.used == 0) {
      h->cur[c] = NULL;
      slab_give_back(s);
    }
  }
}

/* Moves up to want blocks of class cls onto the SLL: recycled ones first,
 * then never-used ones carved in address order. */
static uint32_t refill_sll(hak_heap_t *h, unsigned cls, uint32_t want) {
  hak_sll_t *l = &h->sll[cls];
  uint32_t got = 0;
  while (got < want) {
    hak_slab_t *s = h->cur[cls];
    if (!s) {
      s = next_slab(h, cls);
      if (!s) break;
      h->cur[cls] = s;
    }
    HAK_ASSERT(s->geo.owner == h && s->geo.head == s && s->geo.cls == cls && s->pool.state == HAK_SLOT_ACTIVE);
    HAK_TRACE("hakmem: refill class %u from slab %p (used %u, free %u)", cls, (void *)s,
              (uint64_t)s->tc.used, (uint64_t)s->tc.nfree);
    if (HAK_UNLIKELY(!s->tc.free && (s->tc.flags & HAK_SLAB_PURGED))) hak_slab_unpurge(h, s, want - got);
    if (!l->head && s->tc.free && (s->tc.nfree <= want || s->tc.nfree <= (uint32_t)l->room / 2)) {
      /* The slab's whole free list becomes the SLL as it is, when that leaves
       * the SLL at most half full (else the next frees would drain it
       * again). Walking the list would cost a cache miss per block, since
       * freed blocks are cold: that walk dominated refills of Mid classes. */
      l->head = s->tc.free;
      s->tc.free = NULL;
      got += s->tc.nfree;
      s->tc.used += s->tc.nfree;
      s->tc.nfree = 0;
    }
    while (got < want && s->tc.free) {
      void *b = s->tc.free;
      s->tc.free = hak_sll_next(b);
      hak_sll_set_next(b, l->head);
      l->head = b;
      s->tc.nfree--;
      s->tc.used++;
      got++;
    }
    char *end = hak_slab_end(s);
    if (got < want && s->geo.carve < end) {
      uint32_t bs = s->geo.bsize;
      uint32_t n = (uint32_t)((end - s->geo.carve) / bs);
      if (n > want - got) n = want - got;
      char *first = s->geo.carve;
      char *b = first;
      for (uint32_t i = 1; i < n; i++, b += bs) hak_sll_set_next(b, b + bs);
      hak_sll_set_next(b, l->head);
      l->head = first;
      hak_slab_set_carve(s, first + (size_t)n * bs);
      s->tc.used += n;
      got += n;
    }
    if (slab_full(s)) h->cur[cls] = NULL; /* full: returns via partial */
  }
  l->room -= (int32_t)got;
  h->n_refilled[cls] += got;
  return got;
}

/* A thread's first allocation. It may also be the process's, whose class was
 * picked before the tables existed, so it starts over from the size. */
static HAK_COLD void *refill_init_thread(size_t size) {
  if (!hak_heap_get()) {
    errno = ENOMEM;
    return NULL;
  }
  int c = hak_size_to_class(size);
  if (c >= 0) return hak_heap_alloc((unsigned)c, size);
  bool zero;
  return hak_big_alloc(size, 0, &zero);
}

/* LargePool W_MAX rounding: rather than carving a new slab, take a cached
 * block of a larger class that wastes at most w_max. Only classes whose
 * blocks are aligned at least as well as this class's qualify, since an
 * aligned request picked this class for its alignment. */
static void *take_larger(hak_heap_t *h, unsigned cls) {
  uint32_t size = g_class[cls].size;
  uint32_t align_mask = (size & -size) - 1; /* this class's blocks are (mask+1)-aligned */
  double limit = (double)size * hak_policy()->w_max;
  for (unsigned c = cls + 1; c < HAK_NCLASS && g_class[c].size <= limit; c++) {
    hak_sll_t *l = &h->sll[c];
    void *b = l->head;
    if (b && !(g_class[c].size & align_mask)) return alloc_counted(h, c, hak_sll_pop(l, b));
  }
  return NULL;
}

static void drain_to(hak_heap_t *h, unsigned cls, uint32_t keep);

/* Hands the window's counts to the policy and runs the housekeeping that
 * is due; the window starts over. */
static void heap_report(hak_heap_t *h) {
  hak_ace_report(h->win_refill, h->win_drain, h->win_events);
  for (unsigned c = 0; c < HAK_NCLASS; c++) h->win_refill[c] = h->win_drain[c] = 0;
  h->win_events = 0;
  hak_housekeep();
}

/* Every HAK_ACE_HEAP_EVENTS slow-path events: a class whose SLL saw no refill
 * and no drain for two such windows is idle or cycles within its list. Its
 * cached blocks come from scattered slabs (after a burst of frees, often one
 * slab each) and would keep those slabs from ever going back to the pool, so
 * they go back to their slabs; a busy class pays one refill for it. */
static void heap_window_end(hak_heap_t *h) {
  if (atomic_load_explicit(&h->sparse_n, memory_order_relaxed)) hak_purge_due(h, hak_os_now_ms(), false, true);
  for (unsigned c = 0; c < HAK_NCLASS; c++) {
    if (h->win_refill[c] || h->win_drain[c]) h->quiet[c] = 0;
    else if (h->sll[c].head && ++h->quiet[c] >= 2) {
      drain_to(h, c, 0);
      h->quiet[c] = 0;
    }
  }
  heap_report(h);
}

/* A refill of one block (large classes): carved and handed out as it is.
 * Linking it into the SLL first would write into it, and fault in a page
 * of a block the program may never touch. NULL: refill_sll's way applies. */
static void *carve_one(hak_heap_t *h, unsigned cls) {
  hak_slab_t *s = h->cur[cls];
  if (!s) {
    if (!(s = next_slab(h, cls))) return NULL;
    h->cur[cls] = s;
  }
  char *end = hak_slab_end(s);
  if (s->tc.free || s->geo.carve >= end) return NULL;
  void *b = s->geo.carve;
  /* A rewound slab's memory may hold an old key (hak_free_key); a fresh
   * one is zero, and is not touched here. */
  if (!s->geo.fresh) *hak_block_key(b) = 0;
  hak_slab_set_carve(s, s->geo.carve + s->geo.bsize);
  s->tc.used++;
  h->sll[cls].n_direct++;
  if (slab_full(s)) h->cur[cls] = NULL; /* full: returns via partial */
  return alloc_counted(h, cls, b);
}

static bool has_listed_slab(const hak_heap_t *h, unsigned cls) {
  return h->partial[cls] || h->sparse[0][cls] || h->sparse[1][cls] || h->purged[cls];
}

/* The part of a refill that touches h's slabs, under h->lock: a block taken
 * directly (*out), or the SLL refilled (true), or out of memory (false). */
static bool refill_locked(hak_heap_t *h, unsigned cls, void **out) {
  *out = NULL;
  if (HAK_UNLIKELY(h->policy_version != atomic_load_explicit(&g_policy_version, memory_order_relaxed)))
    heap_apply_policy(h);
  if (atomic_load_explicit(&h->pending, memory_order_relaxed)) collect_pending(h);
  if (h->sll[cls].head) return true;
  if (g_class[cls].tier == HAK_TIER_LARGE && !h->cur[cls] && !has_listed_slab(h, cls) && (*out = take_larger(h, cls)))
    return true;
  h->n_refill[cls]++;
  h->win_refill[cls]++;
  if (++h->win_events >= HAK_ACE_HEAP_EVENTS) heap_window_end(h);
  if (h->batch[cls] == 1 && (*out = carve_one(h, cls))) return true;
  return refill_sll(h, cls, h->batch[cls]) != 0;
}

void *hak_heap_refill_alloc(size_t size, hak_heap_t *h, unsigned cls) {
  if (HAK_UNLIKELY(h == &g_empty_heap)) return refill_init_thread(size);
  /* This allocation would run the tick out: a sample may take its place
   * here (a class that carve_one serves never pops from its SLL). */
  if (HAK_UNLIKELY(h->sll[cls].tick == 1)) {
    h->sll[cls].tick = 0;
    void *p = tick_fired(h, cls, size);
    if (p) return p;
    h->n_alloc_base[cls]--; /* not taken: the path below counts it */
    h->alloc_base_sum--;
  }
  hak_housekeep_start_pending();
  void *b;
  hak_lock(&h->lock);
  bool ok = refill_locked(h, cls, &b);
  hak_unlock(&h->lock);
  if (!ok) {
    errno = ENOMEM;
    return NULL;
  }
  if (b) return b;
  /* sampled like the fast path's pops: a class that only ever refills
   * (one block cached) is sampled too */
  hak_sll_t *l = &h->sll[cls];
  if (--l->tick == 0) return hak_heap_sample_alloc(size, h, cls);
  b = hak_sll_pop(l, l->head);
  if (HAK_UNLIKELY(g_cfg.junk)) memset(b, 0xAA, g_class[cls].size);
  return b;
}

/* Gives an SLL's blocks back to their slabs, keeping the keep most recently
 * freed ones (the ones most likely still in cache). */
static void drain_to(hak_heap_t *h, unsigned cls, uint32_t keep) {
  hak_sll_t *l = &h->sll[cls];
  uint32_t n = hak_sll_count(l);
  if (n <= keep) return;
  h->n_drained[cls] += n - keep;
  l->room += (int32_t)(n - keep);
  void *b;
  if (keep == 0) {
    b = l->head;
    l->head = NULL;
  } else {
    void *last = l->head;
    for (uint32_t i = 1; i < keep; i++) last = hak_sll_next(last);
    b = hak_sll_next(last);
    hak_sll_set_next(last, NULL);
  }
  for (uint32_t i = keep; i < n; i++) {
    void *next = hak_sll_next(b);
    slab_return_block(h, b);
    b = next;
  }
}

static void drain_locked(hak_heap_t *h, unsigned cls) {
  h->n_drain[cls]++;
  h->win_drain[cls]++;
  if (++h->win_events >= HAK_ACE_HEAP_EVENTS) heap_window_end(h);
  drain_to(h, cls, h->sll[cls].cap / 2);
}

void hak_heap_drain(hak_heap_t *h, unsigned cls) {
  hak_lock(&h->lock);
  drain_locked(h, cls);
  hak_unlock(&h->lock);
  /* A program whose last act is to free everything still gets its memory
   * back: the background thread may start here, the SLL being consistent. */
  hak_housekeep_start_pending();
}


/* calloc's path: a block carved from a slab whose memory is fresh from the
 * OS is already zero, so calloc need not clear it. */
void *hak_heap_alloc_zero_aware(hak_heap_t *h, unsigned cls, bool *zero) {
  *zero = false;
  if (h == &g_empty_heap && !(h = hak_heap_get())) {
    errno = ENOMEM;
    return NULL;
  }
  if (h->sll[cls].head) return hak_heap_alloc(cls, g_class[cls].size);
  hak_lock(&h->lock);
  if (atomic_load_explicit(&h->pending, memory_order_relaxed)) collect_pending(h);
  hak_slab_t *s = h->cur[cls];
  if (s && !s->tc.free && (s->tc.flags & HAK_SLAB_PURGED)) hak_slab_unpurge(h, s, 1);
  if (s && slab_full(s)) s = h->cur[cls] = NULL;
  if (!s) {
    if (!(s = next_slab(h, cls))) {
      hak_unlock(&h->lock);
      errno = ENOMEM;
      return NULL;
    }
    h->cur[cls] = s;
  }
  if (s->tc.free || s->geo.carve >= hak_slab_end(s)) {
    hak_unlock(&h->lock);
    return hak_heap_alloc(cls, g_class[cls].size);
  }
  void *b = s->geo.carve;
  hak_slab_set_carve(s, s->geo.carve + s->geo.bsize);
  s->tc.used++;
  /* counted, and no junk: this is calloc's block */
  if (--h->sll[cls].tick == 0) tick_restart(h, cls);
  h->sll[cls].n_direct++;
  *zero = s->geo.fresh; /* if not, calloc clears the block, and its old key */
  hak_unlock(&h->lock);
  return b;
}

/* --- thread heaps -------------------------------------------------------- */

static hak_heap_t *heap_new(void) {
  size_t sz = hak_align_up(sizeof(hak_heap_t), HAK_PAGE);
  hak_heap_t *h = hak_os_map(sz);
  if (!h) return NULL;
  hak_os_commit_add((int64_t)sz);
  hak_lock(&g_heaps_lock);
  h->all_next = g_heaps_all;
  g_heaps_all = h;
  hak_unlock(&g_heaps_lock);
  return h;
}

hak_heap_t *hak_heap_get(void) {
  hak_heap_t *h = t_heap;
  if (HAK_LIKELY(h != &g_empty_heap)) return h;
  hak_init();
  hak_lock(&g_heaps_lock);
  h = g_heaps_abandoned;
  if (h) __atomic_store_n(&g_heaps_abandoned, h->abandoned_next, __ATOMIC_RELAXED);
  hak_unlock(&g_heaps_lock);
  if (h) hak_cnt_add(&g_stats.heaps_adopted, 1);
  else if (!(h = heap_new())) return NULL;
  h->abandoned_next = NULL;
  h->in_use = 1;
  heap_apply_policy(h);
  if (!h->tick_start[0]) /* a new heap: its ticks start */
    for (unsigned c = 0; c < HAK_NCLASS; c++) tick_restart(h, c);
  hak_cnt_add(&g_stats.threads_started, 1);
  t_heap = h;
  pthread_setspecific(g_exit_key, h); /* a non-NULL value arms the destructor */
  return h;
}

static void flush_locked(hak_heap_t *h) {
  if (atomic_load_explicit(&h->pending, memory_order_relaxed)) collect_pending(h);
  for (unsigned c = 0; c < HAK_NCLASS; c++) drain_to(h, c, 0);
  release_idle(h);
}

void hak_heap_flush(hak_heap_t *h) {
  if (h == &g_empty_heap) return;
  hak_lock(&h->lock);
  flush_locked(h);
  hak_unlock(&h->lock);
}

bool hak_heap_trim(hak_heap_t *h) {
  if (h == &g_empty_heap) return false;
  /* Programs call malloc_trim in loops (stress-ng every few operations):
   * one pass over the SLLs, whose entries hold both the heads and ticks. */
  uint64_t classes = 0, allocs = h->alloc_base_sum; /* the sum of hak_sll_allocs */
  unsigned c = 0;
  for (; c + 4 <= HAK_NCLASS; c += 4) { /* four at a time: a quarter of the loop's own instructions */
    const hak_sll_t *l = &h->sll[c];
    classes += l[0].head != NULL;
    classes += l[1].head != NULL;
    classes += l[2].head != NULL;
    classes += l[3].head != NULL;
    allocs -= (uint64_t)l[0].tick + (uint64_t)l[1].tick + (uint64_t)l[2].tick + (uint64_t)l[3].tick;
  }
  for (; c < HAK_NCLASS; c++) {
    classes += h->sll[c].head != NULL;
    allocs -= (uint64_t)h->sll[c].tick;
  }
  uint64_t since = allocs - h->trim_mark;
  h->trim_mark = allocs;
  if (since < HAK_TRIM_ALLOCS_PER_CLASS * classes) return false;
  hak_lock(&h->lock);
  flush_locked(h);
  hak_purge_due(h, hak_os_now_ms(), true, true); /* what waits for its delay goes now */
  hak_unlock(&h->lock);
  return true;
}

void hak_heap_thread_exit(void) {
  hak_heap_t *h = t_heap;
  if (h == &g_empty_heap) return;
  hak_heap_flush(h);
  if (h->win_events) heap_report(h);
  t_heap = &g_empty_heap;
  hak_lock(&g_heaps_lock);
  h->in_use = 0;
  h->abandoned_next = g_heaps_abandoned;
  __atomic_store_n(&g_heaps_abandoned, h, __ATOMIC_RELAXED);
  hak_unlock(&g_heaps_lock);
}

/* Slabs of exited threads may still receive remote frees: collect them so
 * their memory returns to the pool (malloc_trim). */
void hak_heap_collect_abandoned(void) {
  /* malloc_trim comes in loops; most programs have no exited thread's heap */
  if (!__atomic_load_n(&g_heaps_abandoned, __ATOMIC_RELAXED)) return;
  hak_lock(&g_heaps_lock);
  for (hak_heap_t *h = g_heaps_abandoned; h; h = h->abandoned_next) {
    hak_lock(&h->lock);
    if (atomic_load_explicit(&h->pending, memory_order_relaxed)) collect_pending(h);
    release_idle(h);
    hak_unlock(&h->lock);
  }
  hak_unlock(&g_heaps_lock);
}

static void on_thread_exit(void *arg) {
  (void)arg;
  hak_heap_thread_exit();
}

void hak_heap_init(void) {
  for (size_t i = 0; i <= (HAK_TINY_MAX >> 4); i++) g_heap_tiny_off[i] = sll_off(g_cls_tiny[i]);
  pthread_key_create(&g_exit_key, on_thread_exit);
  hak_purge_init();
}

uint64_t hak_heap_remote_out_noheap(unsigned cls) {
  return atomic_load_explicit(&g_remote_out_noheap[cls], memory_order_relaxed);
}

hak_heap_t *hak_heap_list(void) { return g_heaps_all; }
hak_heap_t *hak_heap_first(void) {
  hak_lock(&g_heaps_lock);
  hak_heap_t *h = g_heaps_all;
  hak_unlock(&g_heaps_lock);
  return h;
}
void hak_heap_lock_all(void) {
  /* the profiler's locks are taken before this, by its part of fork */
  hak_purge_lock_all(); /* first: the background purge takes heaps' locks under it */
  hak_lock(&g_heaps_lock);
}
void hak_heap_unlock_all(void) {
  hak_unlock(&g_heaps_lock);
  hak_purge_unlock_all();
}

/* In a forked child only this thread exists: heaps of the other threads stay
 * as they were (they may have been mid-update) and are never reused. */
void hak_heap_atfork_child(void) {
  hak_lock_reset(&g_heaps_lock);
  hak_purge_atfork_child();
  /* The forking thread's heap: no other thread held its lock (the
   * background thread purges under the purge lock, which fork holds). */
  if (t_heap != &g_empty_heap) hak_lock_reset(&t_heap->lock);
}

/* --- the profiler's heap ------------------------------------------------- */
/* No SLL (its caps stay 0): a sampled block comes straight from a slab and
 * goes straight back, so the slab's used count is the live samples. */

void *hak_heap_prof_alloc(hak_heap_t *h, unsigned cls) {
  void *b = NULL;
  for (hak_slab_t *s = h->cur[cls]; !b;) {
    if (!s && !(s = h->cur[cls] = next_slab(h, cls))) break;
    if (s->tc.free) {
      b = s->tc.free;
      s->tc.free = hak_sll_next(b);
      s->tc.nfree--;
    } else if (s->geo.carve < hak_slab_end(s)) {
      b = s->geo.carve;
      hak_slab_set_carve(s, s->geo.carve + s->geo.bsize);
    } else {
      h->cur[cls] = s = NULL; /* full: it comes back through partial */
      continue;
    }
    s->tc.used++;
    if (!s->tc.free && s->geo.carve >= hak_slab_end(s)) h->cur[cls] = NULL;
  }
  /* A live block's key word is never its heap's key: this memory may hold
   * one from an earlier owner, and a realloc would copy it into a block of
   * that heap, whose next remote free would read as a double free. */
  if (b) *hak_block_key(b) = 0;
  return b;
}

void hak_heap_prof_free(hak_slab_t *s, void *p) {
  /* Counted as a free into another heap, which it is, so that the
   * statistics' balance of the freeing thread's classes holds. */
  unsigned cls = s->geo.cls;
  hak_heap_t *me = t_heap;
  if (me != &g_empty_heap) me->n_remote_out[cls]++;
  else atomic_fetch_add_explicit(&g_remote_out_noheap[cls], 1, memory_order_relaxed);
  slab_return_block(s->geo.owner, p);
}
