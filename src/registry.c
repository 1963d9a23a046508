#include "registry.h"
#include "os.h"

/* Until hak_init maps the real bitmap, region 0 (NULL) reads as "not ours";
 * hak_init runs from a constructor and from the first malloc, before any
 * pointer hakmem handed out can reach free. */
static _Atomic(uint64_t) reg_boot[1];
_Atomic(uint64_t) *g_registry = reg_boot;

#define REG_BYTES (((size_t)1 << (HAK_ADDR_BITS - HAK_SS_SHIFT)) / 8)

bool hak_registry_init(void) {
  _Atomic(uint64_t) *r = hak_os_map(REG_BYTES); /* untouched pages stay uncommitted */
  if (!r) return false;
  g_registry = r;
  return true;
}

void hak_registry_set(uintptr_t region) {
  uintptr_t i = region >> HAK_SS_SHIFT;
  atomic_fetch_or_explicit(&g_registry[i >> 6], (uint64_t)1 << (i & 63), memory_order_release);
}

void hak_registry_clear(uintptr_t region) {
  uintptr_t i = region >> HAK_SS_SHIFT;
  atomic_fetch_and_explicit(&g_registry[i >> 6], ~((uint64_t)1 << (i & 63)),
                            memory_order_release);
}
