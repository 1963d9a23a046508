/* SuperSlab: a 2 MiB region aligned to 2 MiB. Slot 0 holds this header; the
 * other 31 slots of 64 KiB are carved into slabs of one or more slots.
 * p & ~(2 MiB - 1) finds the header of any block below the Big tier, and
 * (p >> 16) & 31 its slot's descriptor, 128 bytes at slot * 128.
 *
 * The slab descriptor has four parts, each written by one module only:
 *   geo   geometry and ownership: superslab.c (setup, set_owner, set_carve)
 *   tc    the owning thread's slab state: frontend/heap.c, owner thread only
 *   rem   blocks freed by other threads: frontend/heap.c, any thread (atomics)
 *   pool  the slot state and EMPTY-stack link: shared_pool.c
 * Free's fast path reads geo only, which fills the first cache line. */
#ifndef HAK_SUPERSLAB_H
#define HAK_SUPERSLAB_H
#include "base/common.h"
#include "base/config.h"
#include "mem/registry.h"

#pragma GCC visibility push(hidden) /* internal: no GOT indirection */

struct hak_heap;

enum { HAK_SLOT_UNUSED = 0, HAK_SLOT_ACTIVE = 1, HAK_SLOT_EMPTY = 2 };
#define HAK_SS_ALL_SLOTS 0xfffffffeu /* slots 1..31 */

typedef struct hak_slab {
  /* geo. Every slot of a multi-slot slab carries it, so a block that starts
   * in a later slot is freed as fast as one in the first. */
  struct {
    struct hak_heap *owner; /* NULL unless a heap holds the slab */
    struct hak_slab *head;  /* the slab's first slot (itself for the head) */
    uintptr_t base;         /* first block */
    uint64_t div_test;      /* floor(2^64 / bsize) + 1: see hak_is_block_start */
    uint64_t carve_lim;     /* (carve - base) * div_test: see hak_is_carved_block */
    char *carve;            /* head only: next never-handed-out block */
    uint32_t bsize;
    uint16_t capacity;
    uint16_t sll_off; /* the owner's offset of its SLL for this class (set with owner) */
    uint8_t cls;
    uint8_t nslots; /* slots in this slab (head only) */
    uint8_t fresh;  /* head only: memory past carve is known to be zero */
  } geo;
  /* tc: head only, but for purged */
  struct {
    void *free;                   /* blocks returned to the slab */
    struct hak_slab *next, *prev; /* the owner's partial list */
    uint16_t used;                /* blocks out of the slab (user, TLS SLL, remote) */
    uint16_t nfree;               /* blocks on free */
    /* Every slot: which of its 16 pages went back to the OS while the slab
     * stayed in use (frontend/purge.c). A block that overlaps such a page is
     * free and on no list. Read by any thread (hak_slab_block_purged). */
    uint16_t purged;
    uint8_t list; /* which of its heap's lists holds it: HAK_LIST_* (frontend/heap.h) */
    uint8_t flags; /* HAK_SLAB_* */
  } tc;
  /* rem: head only */
  struct {
    _Atomic(void *) list;                  /* MPSC list of blocks freed by other threads */
    struct hak_slab *_Atomic pending_next; /* link on the owner heap's pending stack */
  } rem;
  /* pool: head only */
  struct {
    _Atomic uint64_t next; /* EMPTY stack link (slab id + 1) */
    uint8_t state;         /* HAK_SLOT_* */
  } pool;
} hak_slab_t;

/* The header lives in slot 0's descriptor space, which no slab uses. */
typedef struct hak_ss {
  hak_region_t r;
  _Atomic uint32_t unused_mask;      /* slot i UNUSED: free to carve */
  _Atomic uint32_t dirty_mask;       /* UNUSED slots whose memory is not known to be zero */
  _Atomic uint32_t decommitted_mask; /* UNUSED slots given back to the OS (not never-touched ones) */
  _Atomic uint32_t thp_asked;        /* MADV_HUGEPAGE applied when it was mapped */
  _Atomic uint32_t thp_off;          /* MADV_NOHUGEPAGE applied (at the first decommit) */
  struct hak_ss *next, *prev;        /* the pool's room list (under its lock) */
  uint32_t room;                     /* longest run of UNUSED slots: the list it is on */
  uint32_t listed;                   /* on a room list */
  uint32_t on_dirty;                 /* on the pool's list of SuperSlabs with dirty UNUSED slots */
  struct hak_ss *dirty_next;
} hak_ss_t;

#define HAK_SS_HEADER ((size_t)HAK_SLOTS * sizeof(hak_slab_t)) /* 4 KiB: the header page */
#define HAK_SLOT_PAGES (HAK_SLOT_SIZE / HAK_PAGE)
_Static_assert(HAK_SLOT_PAGES == 16, "a slot's purged mask has a bit per page");

enum { /* tc.flags */
  HAK_SLAB_PURGED = 1, /* some slot's purged mask is not 0: carve_lim reads 0 */
  /* The slab was queued for a purge since it last served refills, with at
   * most 1/8, 1/32 or 1/128 of its blocks out (frontend/purge.c) */
  HAK_SLAB_TRIED_8 = 2,
  HAK_SLAB_TRIED_32 = 4,
  HAK_SLAB_TRIED_128 = 8,
  HAK_SLAB_QUEUED = 16, /* on its heap's purge queue: carve_lim reads 0 */
};

_Static_assert(sizeof(hak_slab_t) == 128, "slab descriptor is two cache lines");
_Static_assert(offsetof(hak_slab_t, tc) == 64, "free's fast path reads one cache line");
_Static_assert(offsetof(hak_slab_t, geo.owner) == offsetof(hak_region_t, nil_owner), "owner probe");
_Static_assert(sizeof(hak_ss_t) <= sizeof(hak_slab_t), "header fits in slot 0's descriptor");
_Static_assert(HAK_SS_HEADER == HAK_PAGE, "header is one page");

HAK_INLINE hak_ss_t *hak_ss_of(const void *p) {
  return (hak_ss_t *)((uintptr_t)p & ~(uintptr_t)HAK_SS_MASK);
}
HAK_INLINE unsigned hak_slot_of(const void *p) {
  return (unsigned)(((uintptr_t)p >> HAK_SLOT_SHIFT) & (HAK_SLOTS - 1));
}
/* Slot 0's "descriptor" is the header, whose owner word reads NULL. */
HAK_INLINE hak_slab_t *hak_ss_slab(hak_ss_t *ss, unsigned slot) {
  return (hak_slab_t *)((char *)ss + (size_t)slot * sizeof(hak_slab_t));
}
HAK_INLINE hak_slab_t *hak_slab_of(const void *p) { return hak_ss_slab(hak_ss_of(p), hak_slot_of(p)); }
HAK_INLINE char *hak_slot_addr(hak_ss_t *ss, unsigned slot) {
  return (char *)ss + ((size_t)slot << HAK_SLOT_SHIFT);
}
HAK_INLINE unsigned hak_slab_index(const hak_slab_t *s) {
  return (unsigned)(((uintptr_t)s & HAK_SS_MASK) / sizeof(hak_slab_t));
}
/* A slab's id packs its address in 31 bits: (address of its slot) >> 16. */
HAK_INLINE uint32_t hak_slab_id(const hak_slab_t *s) {
  return (uint32_t)(((uintptr_t)hak_ss_of(s) >> HAK_SLOT_SHIFT) + hak_slab_index(s));
}
HAK_INLINE hak_slab_t *hak_slab_from_id(uint32_t id) {
  uintptr_t a = (uintptr_t)id << HAK_SLOT_SHIFT;
  return hak_ss_slab((hak_ss_t *)(a & ~(uintptr_t)HAK_SS_MASK), id & (HAK_SLOTS - 1));
}
HAK_INLINE uint32_t hak_slots_mask(unsigned first, unsigned n) {
  return (uint32_t)((((uint64_t)1 << n) - 1) << first);
}
HAK_INLINE char *hak_slab_end(const hak_slab_t *s) {
  return (char *)s->geo.base + (size_t)s->geo.capacity * s->geo.bsize;
}

/* Whether a is the start of a block, by one multiply. With c = div_test =
 * floor(2^64 / d) + 1 and e = d * c - 2^64 (0 < e <= d), an offset n = k*d + r
 * inside a slab gives n * c mod 2^64 = k*e + r*c: exactly k*e when r == 0, and
 * at least c otherwise (no wrap while (k + 1) * e < c, true for slabs of at
 * most 2 MiB and blocks of at most 1 MiB). unit_internals checks it for every
 * class and offset. */
HAK_INLINE bool hak_is_block_start(const hak_slab_t *s, uintptr_t a) {
  return (uint64_t)(a - s->geo.base) * s->geo.div_test < s->geo.div_test;
}

/* Whether a is the start of a block that was ever handed out: k*e grows with
 * the block index k, so one compare against (carve - base) * c covers both
 * "is a block start" and "lies below the carve point". */
HAK_INLINE bool hak_is_carved_block(const hak_slab_t *s, uintptr_t a) {
  /* Relaxed: another thread's free or hak_owns reads the limit while the
   * owner moves it up; any value it sees is at or past the block's carve. */
  return (uint64_t)(a - s->geo.base) * s->geo.div_test <
         __atomic_load_n(&s->geo.carve_lim, __ATOMIC_RELAXED);
}

/* The same for the slab's owner, the limit's only writer: a plain load,
 * which the compiler folds into the compare (free's fast path). */
HAK_INLINE bool hak_is_carved_block_owned(const hak_slab_t *s, uintptr_t a) {
  return (uint64_t)(a - s->geo.base) * s->geo.div_test < s->geo.carve_lim;
}

/* Moves a slab's carve point; every slot keeps the limit so that free's check
 * reads only the slot it already has. */
HAK_INLINE void hak_slab_set_carve(hak_slab_t *head, char *carve) {
  uint64_t lim = (uint64_t)((uintptr_t)carve - head->geo.base) * head->geo.div_test;
  /* HAKMEM_JUNK: no block passes free's fast check, so every free reaches
   * the slow path that fills it (the lookup goes by carve, not the limit). */
  if (HAK_UNLIKELY(g_cfg.junk)) lim = 0;
  /* Purged pages, or pages the background thread may purge: likewise, so
   * that a second free of one of their blocks meets hak_slab_block_purged
   * in the lookup, and the owner's free takes the heap's lock. */
  if (HAK_UNLIKELY(__atomic_load_n(&head->tc.flags, __ATOMIC_RELAXED) & (HAK_SLAB_PURGED | HAK_SLAB_QUEUED))) lim = 0;
  __atomic_store_n(&head->geo.carve, carve, __ATOMIC_RELAXED); /* read by in_slab (lookup.c) */
  for (unsigned i = 0; i < head->geo.nslots; i++) __atomic_store_n(&head[i].geo.carve_lim, lim, __ATOMIC_RELAXED);
}

/* The slab's carve limit again from its carve point, after its flags or
 * junk changed what it should read. */
HAK_INLINE void hak_slab_reset_lim(hak_slab_t *head) { hak_slab_set_carve(head, head->geo.carve); }

#define HAK_WHY_PURGED "double free (the block's page was returned to the OS)"

/* Whether the block at a, of slab head, overlaps a purged page: then it is
 * free, whatever its memory reads (zero), and a free of it is a second one.
 * Relaxed loads: the owner clears a page's bit before any of its blocks is
 * handed out again, and that hand-out reaches other threads only through
 * the program's own synchronisation. */
HAK_INLINE bool hak_slab_block_purged(const hak_slab_t *head, uintptr_t a) {
  if (!(__atomic_load_n(&head->tc.flags, __ATOMIC_RELAXED) & HAK_SLAB_PURGED)) return false;
  uintptr_t start = (uintptr_t)head & ~(uintptr_t)HAK_SS_MASK;
  start += (uintptr_t)hak_slab_index(head) << HAK_SLOT_SHIFT;
  size_t first = (a - start) / HAK_PAGE, last = (a + head->geo.bsize - 1 - start) / HAK_PAGE;
  for (size_t pg = first; pg <= last; pg++)
    if ((__atomic_load_n(&head[pg / HAK_SLOT_PAGES].tc.purged, __ATOMIC_RELAXED) >> (pg % HAK_SLOT_PAGES)) & 1)
      return true;
  return false;
}

/* Initialises and registers a SuperSlab in chunk (not zero), or, when chunk
 * is NULL, in a chunk of an arena; *zero: its slots read zero. */
hak_ss_t *hak_ss_new(void *chunk, bool *zero);
/* Gives a wholly unused SuperSlab back to its arena: unregistered,
 * decommitted, its address space kept reserved (so a late reader of its
 * header still reads mapped memory). */
void hak_ss_retire(hak_ss_t *ss);
/* Before ss's first madvise that gives memory back: a huge page would be
 * split, and khugepaged could fill the range in again. ss keeps small pages
 * from then on (MADV_NOHUGEPAGE, also where a kernel set to "always" gave
 * the huge page without asking). */
void hak_ss_thp_give_up(hak_ss_t *ss);
/* fork: the lock of the huge-page policy (taken with no other lock held) */
void hak_ss_thp_lock(void);
void hak_ss_thp_unlock(void);
void hak_ss_thp_reset_lock(void);
/* Whether p's memory may sit on a huge page: a partial MADV_DONTNEED would
 * split it. */
HAK_INLINE bool hak_ss_huge_at(const void *p) {
  if (g_cfg.thp == HAK_THP_OFF) return false;
  if (!hak_registry_test((uintptr_t)p)) return g_cfg.thp == HAK_THP_ON; /* Big blocks ask only then */
  hak_ss_t *ss = hak_ss_of(p);
  return atomic_load_explicit(&ss->thp_asked, memory_order_relaxed) &&
         !atomic_load_explicit(&ss->thp_off, memory_order_relaxed);
}
/* Lays out slots [first, first+n) as one slab of class cls, no owner, carve
 * point at its base; fresh: its memory is known to be zero. */
void hak_ss_slab_setup(hak_ss_t *ss, unsigned first, unsigned cls, bool fresh);
/* A slab that keeps its geometry for reuse: carve point back to its base. */
void hak_ss_slab_rewind(hak_slab_t *head);
/* Slots [first, first+n) describe no slab any more. */
void hak_ss_slab_clear(hak_slab_t *head);
/* Points every slot of a slab at owner h, whose SLL for the slab's class is
 * at byte offset sll_off (h NULL when it leaves a heap). */
void hak_ss_slab_set_owner(hak_slab_t *head, struct hak_heap *h, uint16_t sll_off);

#pragma GCC visibility pop

#endif
