/* The lock of every slow path: a futex lock (0 free, 1 held, 2 held with
 * sleepers). A thread that finds it taken spins briefly, then sleeps in the
 * kernel instead of yielding in a loop, so a preempted holder never has
 * spinners burning its CPU. Uncontended, it is one CAS to take and one
 * exchange to give back: a single-threaded program makes no futex call. */
#ifndef HAK_LOCK_H
#define HAK_LOCK_H
#include "base/common.h"

#pragma GCC visibility push(hidden) /* internal: no GOT indirection */

typedef struct {
  _Atomic uint32_t v;
} hak_lock_t;
#define HAK_LOCK_INIT {0}

void hak_lock_slow(hak_lock_t *l);
void hak_lock_wake(hak_lock_t *l);

HAK_INLINE bool hak_trylock(hak_lock_t *l) {
  uint32_t free_ = 0;
  return atomic_compare_exchange_strong_explicit(&l->v, &free_, 1, memory_order_acquire,
                                                 memory_order_relaxed);
}
HAK_INLINE void hak_lock(hak_lock_t *l) {
  if (HAK_UNLIKELY(!hak_trylock(l))) hak_lock_slow(l);
}
HAK_INLINE void hak_unlock(hak_lock_t *l) {
  if (HAK_UNLIKELY(atomic_exchange_explicit(&l->v, 0, memory_order_release) == 2)) hak_lock_wake(l);
}
/* A fork child: the holder may have been another thread, which is gone. */
HAK_INLINE void hak_lock_reset(hak_lock_t *l) { atomic_store_explicit(&l->v, 0, memory_order_relaxed); }

#pragma GCC visibility pop

#endif
