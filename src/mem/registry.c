/* The registry's bit array (registry.h). */
#include "mem/registry.h"

_Atomic(uint64_t) g_registry[HAK_REG_WORDS];

void hak_registry_set(uintptr_t region) {
  uintptr_t i = region >> HAK_SS_SHIFT;
  atomic_fetch_or_explicit(&g_registry[i >> 6], (uint64_t)1 << (i & 63), memory_order_release);
}

void hak_registry_clear(uintptr_t region) {
  uintptr_t i = region >> HAK_SS_SHIFT;
  atomic_fetch_and_explicit(&g_registry[i >> 6], ~((uint64_t)1 << (i & 63)),
                            memory_order_release);
}
