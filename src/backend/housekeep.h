/* Housekeeping: memory that has waited long enough goes back to the OS.
 * Thread heaps call hak_housekeep once per window of slow-path events
 * (frontend/heap.c); a background thread, started the first time there is
 * memory to return, does the same when the program makes no allocator call
 * at all (HAKMEM_BACKGROUND=0 turns it off). */
#ifndef HAK_HOUSEKEEP_H
#define HAK_HOUSEKEEP_H
#include "base/common.h"

#pragma GCC visibility push(hidden) /* internal: no GOT indirection */

/* Cheap when nothing is due: it reads the clock only when something waits,
 * and returns a bounded batch at a time. */
void hak_housekeep(void);

extern _Atomic int g_hk_start_pending;
void hak_housekeep_start(void);
/* The background thread is created here, from a point where the calling
 * thread's heap is consistent (the start of a refill), since creating a
 * thread may itself call malloc. */
HAK_INLINE void hak_housekeep_start_pending(void) {
  if (HAK_UNLIKELY(atomic_load_explicit(&g_hk_start_pending, memory_order_relaxed))) hak_housekeep_start();
}
void hak_housekeep_atfork_child(void);
/* The heaps' purge of the mostly free slabs they queued (frontend/purge.c
 * sets it at start-up), which the background thread runs each tick while
 * g_hk_purge_queued, the queued slabs of all heaps, is not 0. */
extern size_t (*g_hk_purge)(uint64_t now_ms);
extern _Atomic uint32_t g_hk_purge_queued;
/* Memory to return appeared in a heap's slow path: the background thread
 * starts at that thread's next refill or drain, or wakes now. */
void hak_housekeep_note(void);
/* Memory to return appeared outside a heap's window (a Big free): start or
 * wake the background thread. Called with no lock held. */
void hak_housekeep_poke(void);

#pragma GCC visibility pop

#endif
