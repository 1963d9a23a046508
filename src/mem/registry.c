/* The registry's bit array (registry.h). */
#include "mem/registry.h"

_Atomic(uint64_t) g_registry[HAK_REG_WORDS];
_Atomic(uint64_t) g_registry_pages[(HAK_REG_PAGES + 63) / 64];

void hak_registry_set(uintptr_t region) {
  uintptr_t i = region >> HAK_SS_SHIFT;
  uintptr_t pg = (i >> 6) / HAK_REG_PAGE_WORDS;
  /* the page's bit first: a walker that sees the region's bit also sees it */
  atomic_fetch_or_explicit(&g_registry_pages[pg >> 6], (uint64_t)1 << (pg & 63), memory_order_release);
  atomic_fetch_or_explicit(&g_registry[i >> 6], (uint64_t)1 << (i & 63), memory_order_release);
}

void hak_registry_clear(uintptr_t region) {
  uintptr_t i = region >> HAK_SS_SHIFT;
  atomic_fetch_and_explicit(&g_registry[i >> 6], ~((uint64_t)1 << (i & 63)),
                            memory_order_release);
}
