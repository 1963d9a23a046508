/* Registry: one bit per 2 MiB of address space, set for every region whose
 * first bytes are a hakmem header (SuperSlab or big mapping). free() asks it
 * before it reads anything at the masked address, so a foreign pointer is
 * reported instead of followed. */
#ifndef HAK_REGISTRY_H
#define HAK_REGISTRY_H
#include "common.h"

#pragma GCC visibility push(hidden) /* internal: no GOT indirection */

#define HAK_REG_WORDS ((size_t)1 << (HAK_ADDR_BITS - HAK_SS_SHIFT - 6))
/* 2^26 bits, 8 MiB of .bss: a page of it is touched only where a region is
 * registered; reads elsewhere see the kernel's zero page. Being static, it is
 * valid before hakmem initialises, and free reaches it without loading a
 * pointer. */
extern _Atomic(uint64_t) g_registry[HAK_REG_WORDS];

void hak_registry_set(uintptr_t region);
void hak_registry_clear(uintptr_t region);

HAK_INLINE bool hak_registry_test(uintptr_t a) {
  uintptr_t w = a >> (HAK_SS_SHIFT + 6);
  if (HAK_UNLIKELY(w >= HAK_REG_WORDS)) return false;
  return (atomic_load_explicit(&g_registry[w], memory_order_relaxed) >> ((a >> HAK_SS_SHIFT) & 63)) & 1;
}

#pragma GCC visibility pop

#endif
