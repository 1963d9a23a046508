/* The process's start-up gate. Any layer's first touch may be the process's
 * first allocation, so every layer may call hak_init(); hak_init_slow is
 * defined at the top (api/init.c), the one call in hakmem that goes up the
 * layer order. */
#ifndef HAK_INIT_H
#define HAK_INIT_H
#include "base/common.h"

#pragma GCC visibility push(hidden) /* internal: no GOT indirection */

extern _Atomic int g_hak_ready; /* 2 once hakmem can serve */
void hak_init_slow(void);
/* Sets hakmem up on first use; it cannot fail (nothing in it allocates). */
HAK_INLINE void hak_init(void) {
  if (HAK_UNLIKELY(atomic_load_explicit(&g_hak_ready, memory_order_acquire) != 2)) hak_init_slow();
}

#pragma GCC visibility pop

#endif
