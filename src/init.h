/* Start-up, thread exit and fork. */
#ifndef HAK_INIT_H
#define HAK_INIT_H
#include "common.h"

#pragma GCC visibility push(hidden) /* internal: no GOT indirection */

extern _Atomic int g_hak_ready; /* 2 once hakmem can serve */
void hak_init_slow(void);
/* Sets hakmem up on first use; it cannot fail (nothing in it allocates). */
HAK_INLINE void hak_init(void) {
  if (HAK_UNLIKELY(atomic_load_explicit(&g_hak_ready, memory_order_acquire) != 2)) hak_init_slow();
}
struct hak_heap;
void hak_thread_register_exit(struct hak_heap *h);

#pragma GCC visibility pop

#endif
