/* Heap profiler (HAKMEM_PROF=1): allocations sampled by bytes, each with its
 * stack, kept in a bounded table mapped from the OS; written as gperftools'
 * legacy heap profile (pprof reads it) at exit, every HAKMEM_PROF_INTERVAL
 * bytes of live-heap growth, on HAKMEM_PROF_SIGNAL and by hak_prof_dump;
 * the leak report at exit with HAKMEM_PROF_LEAKS=1. Slab blocks are sampled
 * through the heap's countdown (frontend/heap.h) and live in the profiler's
 * own heap; Big blocks through a byte countdown here. */
#ifndef HAK_PROF_H
#define HAK_PROF_H
#include "backend/superslab.h"
#include "base/common.h"
#include "frontend/heap.h"

#pragma GCC visibility push(hidden) /* internal: no GOT indirection */

extern bool g_prof_on;
/* Live sampled Big blocks: a Big free asks the table only when there are. */
extern _Atomic uint32_t g_prof_big_live;

void hak_prof_init(void);        /* start-up (hak_init_slow), after the heap's tables */
void hak_prof_constructor(void); /* library constructor: unwinder, signal thread */
void hak_prof_exit(void);        /* library destructor: the exit profile and leak report */
void hak_prof_lock(void);        /* fork: every shard's lock, then the stack table's */
void hak_prof_unlock(void);
void hak_prof_atfork_child(void);

/* A Big block of size bytes was handed out (p is its user pointer). */
void hak_prof_big_alloc_slow(void *p, size_t size);
HAK_INLINE void hak_prof_big_alloc(void *p, size_t size) {
  if (HAK_UNLIKELY(g_prof_on) && p) hak_prof_big_alloc_slow(p, size);
}
/* A Big block is freed or resized: its sample, if any, goes. */
void hak_prof_big_free_slow(const void *p);
HAK_INLINE void hak_prof_big_free(const void *p) {
  if (HAK_UNLIKELY(atomic_load_explicit(&g_prof_big_live, memory_order_relaxed))) hak_prof_big_free_slow(p);
}
/* Whether slab s holds sampled blocks (then free's slow path calls
 * hak_prof_free_block instead of freeing p the usual way). */
HAK_INLINE bool hak_prof_slab(const hak_slab_t *s) { return hak_heap_is_prof(s->geo.owner); }
void hak_prof_free_block(hak_slab_t *s, void *p);

#pragma GCC visibility pop

#endif
