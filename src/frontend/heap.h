/* Thread-local frontend. Each thread has a heap: for every class a TLS SLL
 * (singly linked free list of blocks, capped at fast_cap), the slab it
 * refills from, and a list of its other slabs that have free blocks.
 * malloc pops the SLL; free by the owning thread pushes it; free by another
 * thread pushes onto the slab's remote list (one CAS), which the owner
 * collects in bulk when it refills. No lock, atomic RMW or syscall on the
 * local paths. */
#ifndef HAK_HEAP_H
#define HAK_HEAP_H
#include "backend/superslab.h"
#include "base/common.h"
#include "base/lock.h"
#include "mem/size_class.h"

#pragma GCC visibility push(hidden) /* internal: no GOT indirection */

typedef struct hak_sll { /* 32 bytes: the whole fast-path state of a class */
  void *head;
  int32_t room;      /* cap minus the blocks on the list: free drains below 0 */
  uint32_t cap;      /* fast_cap for this class; 0 in the empty heap */
  int64_t tick;      /* allocations to go before the sampling slow path (the only fast-path
                      * counter; the heap's n_alloc_base and tick_start turn it into a count) */
  uint64_t n_direct; /* allocations that bypassed the list */
} hak_sll_t;
#define HAK_SLL_SHIFT 5
_Static_assert(sizeof(hak_sll_t) == 1u << HAK_SLL_SHIFT, "SLL entry size");

HAK_INLINE uint32_t hak_sll_count(const hak_sll_t *l) { return (uint32_t)((int32_t)l->cap - l->room); }

typedef struct hak_heap {
  hak_sll_t sll[HAK_NCLASS];
  /* Counters, summed by the stats report. Only sll[].n_alloc is counted on
   * a fast path; local frees follow from the SLL's balance (see stats.c). */
  uint64_t n_refilled[HAK_NCLASS]; /* blocks moved slab -> SLL */
  uint64_t n_alloc_base[HAK_NCLASS]; /* pops before the SLL's tick last started over */
  int64_t tick_start[HAK_NCLASS];    /* what the tick started from */
  uint64_t rng;                      /* sampling periods */
  uint64_t n_drained[HAK_NCLASS];  /* blocks moved SLL -> slab */
  uint64_t n_remote_in[HAK_NCLASS];  /* frees by other threads, collected */
  uint64_t n_remote_out[HAK_NCLASS]; /* frees this thread sent to other heaps */
  hak_slab_t *cur[HAK_NCLASS];     /* slab the SLL refills from */
  hak_slab_t *partial[HAK_NCLASS]; /* other owned slabs with free blocks */
  hak_slab_t *spare[HAK_NCLASS];   /* one wholly free slab kept back from the pool */
  uint16_t batch[HAK_NCLASS];      /* blocks per refill */
  uint64_t n_refill[HAK_NCLASS], n_drain[HAK_NCLASS];
  uint64_t policy_version;
  /* ACE window: slow-path events per class since the last report */
  uint32_t win_refill[HAK_NCLASS], win_drain[HAK_NCLASS];
  uint32_t win_events;
  uint8_t quiet[HAK_NCLASS]; /* windows in a row without a refill or drain */
  uint64_t trim_mark;        /* allocations counted at the previous malloc_trim */
  /* The sum of n_alloc_base and tick_start over every class, kept as they
   * change: malloc_trim counts the allocations from it and the ticks alone. */
  uint64_t alloc_base_sum;
  int64_t guard_rem[HAK_NCLASS];  /* allocations to the next guarded one (HAKMEM_GUARD_SAMPLE) */
  int64_t prof_rem[HAK_NCLASS];   /* ... and to the next profiled one (HAKMEM_PROF) */
  /* Held by the owner in every slow path that touches its slabs, and by the
   * background thread while it purges the slabs this heap queued (purge.c):
   * uncontended, one CAS and one exchange per refill or drain. */
  hak_lock_t lock;
  /* Mostly free slabs waiting for a purge, in two generations: the newer
   * one, sparse[sparse_cur], collects; the older one is purged when the
   * newer one is half a decay old (purge.c). Then they swap. */
  struct hak_slab *sparse[2][HAK_NCLASS];
  struct hak_slab *purged[HAK_NCLASS]; /* slabs with purged pages: refills take them last */
  uint64_t sparse_ms;                  /* when the newer generation started */
  _Atomic uint32_t sparse_n;           /* slabs on the sparse lists */
  uint8_t sparse_cur;
  struct hak_heap *all_next;       /* every heap ever made (never freed) */
  struct hak_heap *abandoned_next; /* heaps of exited threads, for adoption */
  int in_use;
  /* Slabs with blocks on their remote list, pushed by other threads. */
  _Alignas(HAK_CACHELINE) struct hak_slab *_Atomic pending;
  char pad_[HAK_CACHELINE - sizeof(void *)];
} hak_heap_t;

_Static_assert(offsetof(hak_heap_t, sll) == 0, "cls << HAK_SLL_SHIFT is a class's SLL offset");

extern hak_heap_t g_empty_heap;
extern __thread hak_heap_t *t_heap;
/* Size / 16 -> the byte offset of its Tiny class's SLL in a heap, ready so
 * that malloc's fast path needs no shift. */
extern uint16_t g_heap_tiny_off[(HAK_TINY_MAX >> 4) + 1];

void hak_heap_init(void); /* process start-up: tables and the thread-exit hook */

/* The slab lists of a heap, named by a slab's tc.list: owner, under
 * h->lock (purge.c moves slabs between them too). */
enum { HAK_LIST_NONE, HAK_LIST_PARTIAL, HAK_LIST_SPARSE0, HAK_LIST_SPARSE1, HAK_LIST_PURGED };
void hak_heap_slab_push(hak_heap_t *h, struct hak_slab *s, unsigned list);
void hak_heap_slab_unlink(hak_heap_t *h, struct hak_slab *s);

/* Allocations of class cls popped from h's SLL so far (statistics). */
HAK_INLINE uint64_t hak_sll_allocs(const hak_heap_t *h, unsigned cls) {
  return h->n_alloc_base[cls] + (uint64_t)(h->tick_start[cls] - h->sll[cls].tick);
}

/* The profiler's hooks (diag/prof.c sets them at start-up). Sampling is by
 * bytes: each class counts down allocations to the next sample, drawn so that
 * the samples form a Poisson process of mean g_heap_sample_mean bytes over
 * the class's bytes; 0: no sampling. g_heap_sampler records a sampled
 * allocation of class cls and returns the block to hand out, from the
 * profiler's own heap (hak_heap_prof_alloc), or NULL to decline. */
extern uint64_t g_heap_sample_mean;
extern void *(*g_heap_sampler)(unsigned cls, size_t size);
/* Sampled blocks come from heaps no thread owns, so free's fast path
 * refuses them and free's slow path sends them to the profiler. Each of
 * its shards has one of these heaps, and takes and frees their blocks under
 * the shard's lock, which also covers the shard's tables (diag/prof.c), so
 * that a sample costs one lock and not two. */
#define HAK_PROF_HEAPS 16
extern hak_heap_t g_prof_heaps[HAK_PROF_HEAPS];
HAK_INLINE bool hak_heap_is_prof(const hak_heap_t *h) {
  return (uintptr_t)h - (uintptr_t)g_prof_heaps < sizeof g_prof_heaps;
}
void *hak_heap_prof_alloc(hak_heap_t *h, unsigned cls); /* h's shard lock held */
void hak_heap_prof_free(hak_slab_t *s, void *p);        /* the lock of s's owner's shard held */

/* Slow paths (heap.c) */
/* An SLL's tick ran out: a guarded allocation (HAKMEM_GUARD_SAMPLE), a junk
 * fill (HAKMEM_JUNK), or a plain pop; off, a tick lasts 2^62 allocations. */
void *hak_heap_sample_alloc(size_t size, hak_heap_t *h, unsigned cls);
/* size is the request: a thread's first malloc may have picked its class
 * before the tables were set up, so that path starts over from the size. */
void *hak_heap_refill_alloc(size_t size, hak_heap_t *h, unsigned cls);
void hak_heap_drain(hak_heap_t *h, unsigned cls);
/* A free of p, a block of slab s that another thread's heap holds. */
void hak_heap_remote_free(hak_slab_t *s, void *p);
/* A free of p, a block of slab s that this thread's heap holds, that the
 * fast path refused: its key says it is free already (reported if the
 * heap's lists hold it), or junk is on. */
void hak_heap_free_slow(hak_slab_t *s, void *p);
uint64_t hak_heap_remote_out_noheap(unsigned cls);
hak_heap_t *hak_heap_get(void); /* this thread's heap, created on first use; NULL if out of memory */
void hak_heap_thread_exit(void);
void hak_heap_collect_abandoned(void);
/* Takes a block of class cls directly from a slab, bypassing the SLL, and
 * tells whether its memory is known to be zero (for calloc). */
void *hak_heap_alloc_zero_aware(hak_heap_t *h, unsigned cls, bool *zero);
/* Flushes this thread's SLLs back to their slabs (thread exit). */
void hak_heap_flush(hak_heap_t *h);
/* malloc_trim's part: flushes like hak_heap_flush unless h made fewer than
 * HAK_TRIM_ALLOCS_PER_CLASS allocations per class it caches since its
 * previous malloc_trim. A flush costs the next allocations up to one refill
 * per class, so a program calling malloc_trim in a loop pays at most one
 * refill per that many allocations. Returns whether it flushed. */
#define HAK_TRIM_ALLOCS_PER_CLASS 4
bool hak_heap_trim(hak_heap_t *h);
void hak_heap_atfork_child(void);
void hak_heap_lock_all(void);
void hak_heap_unlock_all(void);
hak_heap_t *hak_heap_list(void);
/* The same, read under the list's lock, for a thread that walks it while
 * others add heaps (their links never change once added). */
hak_heap_t *hak_heap_first(void);

#ifdef HAKMEM_HARDENED
extern uintptr_t g_sll_key;
HAK_INLINE void *hak_sll_next(void *b) {
  return (void *)(*(uintptr_t *)b ^ g_sll_key ^ ((uintptr_t)b >> 12));
}
HAK_INLINE void hak_sll_set_next(void *b, void *next) {
  *(uintptr_t *)b = (uintptr_t)next ^ g_sll_key ^ ((uintptr_t)b >> 12);
}
#else
HAK_INLINE void *hak_sll_next(void *b) { return *(void **)b; }
HAK_INLINE void hak_sll_set_next(void *b, void *next) { *(void **)b = next; }
#endif

/* Double-free key. Every free block of a slab (on an SLL, on its slab's free
 * list or remote list) holds in its second word the key of the heap that owns
 * the slab; every block handed out has that word cleared first. So free finds
 * a second free of a block by one compare, whichever list it sits on, and
 * never writes a live block's data (a block whose second word the program set
 * to the key by chance is told apart by a walk of the lists, in heap.c).
 * Blocks are at least 16 bytes: link and key fit in every one, malloc(8)'s
 * too. The key is the heap's address, which free holds in a register anyway;
 * hardened builds mix in the free-list secret so that a use after free does
 * not read a heap address. */
HAK_INLINE uintptr_t hak_free_key(const struct hak_heap *h) {
#ifdef HAKMEM_HARDENED
  return (uintptr_t)h ^ g_sll_key;
#else
  return (uintptr_t)h;
#endif
}
HAK_INLINE uintptr_t *hak_block_key(void *b) { return (uintptr_t *)b + 1; }

/* The free-list pop, b being l's head (not NULL); the caller counts it. */
HAK_INLINE void *hak_sll_pop(hak_sll_t *l, void *b) {
  l->head = hak_sll_next(b);
  *hak_block_key(b) = 0; /* a live block: see hak_free_key */
  l->room++;
  return b;
}

/* off: the class's SLL offset in the heap (cls << HAK_SLL_SHIFT). */
HAK_INLINE void *hak_heap_alloc_at(size_t off, size_t size) {
  hak_heap_t *h = t_heap;
  hak_sll_t *l = (hak_sll_t *)((char *)h + off);
  void *b = l->head;
  if (HAK_UNLIKELY(!b)) return hak_heap_refill_alloc(size, h, (unsigned)(off >> HAK_SLL_SHIFT));
  /* The count of allocations doubles as the sampling countdown: one
   * decrement and a branch never taken while sampling and junk are off. */
  if (HAK_UNLIKELY(--l->tick == 0)) return hak_heap_sample_alloc(size, h, (unsigned)(off >> HAK_SLL_SHIFT));
  return hak_sll_pop(l, b);
}

HAK_INLINE void *hak_heap_alloc(unsigned cls, size_t size) {
  return hak_heap_alloc_at((size_t)cls << HAK_SLL_SHIFT, size);
}

HAK_INLINE void *hak_heap_alloc_tiny(size_t size) {
  return hak_heap_alloc_at(g_heap_tiny_off[(size + 15) >> 4], size);
}

/* Free of a block in a slab; returns false when the fast path does not apply
 * (not ours, another heap's, Big, or a fault to report). */
HAK_INLINE bool hak_heap_free_fast(void *p) {
  uintptr_t a = (uintptr_t)p;
  hak_heap_t *h = t_heap;
  hak_slab_t *s = hak_slab_of(p);
  if (HAK_UNLIKELY(s->geo.owner != h)) return false;
  if (HAK_UNLIKELY(!hak_is_carved_block_owned(s, a))) return false;
  uintptr_t key = hak_free_key(h);
  if (HAK_UNLIKELY(*hak_block_key(p) == key)) return false; /* a double free, most likely: the slow path checks */
  *hak_block_key(p) = key;
  hak_sll_t *l = (hak_sll_t *)((char *)h + s->geo.sll_off);
  hak_sll_set_next(p, l->head);
  l->head = p;
  if (HAK_UNLIKELY(--l->room < 0)) hak_heap_drain(h, s->geo.cls);
  return true;
}

#pragma GCC visibility pop

#endif
