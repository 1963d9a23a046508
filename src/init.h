/* Start-up, thread exit and fork. */
#ifndef HAK_INIT_H
#define HAK_INIT_H
#include "common.h"

#pragma GCC visibility push(hidden) /* internal: no GOT indirection */

extern _Atomic int g_hak_ready; /* 2 once hakmem can serve */
bool hak_init_slow(void);
HAK_INLINE bool hak_init(void) {
  return HAK_LIKELY(atomic_load_explicit(&g_hak_ready, memory_order_acquire) == 2) || hak_init_slow();
}
struct hak_heap;
void hak_thread_register_exit(struct hak_heap *h);

#pragma GCC visibility pop

#endif
