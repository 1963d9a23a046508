/* Registry: one bit per 2 MiB of address space, set for every region whose
 * first bytes are a hakmem header: a SuperSlab's (Big blocks keep theirs out
 * of band, backend/big.h). free() asks it before it reads anything at the
 * masked address, so a foreign pointer is reported instead of followed. */
#ifndef HAK_REGISTRY_H
#define HAK_REGISTRY_H
#include "base/common.h"

#pragma GCC visibility push(hidden) /* internal: no GOT indirection */

/* The first bytes of every registered region. Its first word sits where a
 * slab descriptor's owner would be (superslab.h): it is always NULL, so
 * free's fast path, which reads the owner of the slot a pointer falls in,
 * falls through to the lookup for a pointer into the header. */
enum { HAK_REGION_SLABS = 1 };
#define HAK_REGION_MAGIC 0x68616b6d656d5353ull /* "hakmemSS" */
typedef struct hak_region {
  void *nil_owner;
  uint64_t magic;
  uint32_t kind; /* HAK_REGION_* */
  uint32_t pad_;
} hak_region_t;

HAK_INLINE hak_region_t *hak_region_of(const void *p) {
  return (hak_region_t *)((uintptr_t)p & ~(uintptr_t)HAK_SS_MASK);
}

#define HAK_REG_WORDS ((size_t)1 << (HAK_ADDR_BITS - HAK_SS_SHIFT - 6))
/* 2^26 bits, 8 MiB of .bss: a page of it is touched only where a region is
 * registered; reads elsewhere see the kernel's zero page. Being static, it is
 * valid before hakmem initialises, and free reaches it without loading a
 * pointer. */
extern _Atomic(uint64_t) g_registry[HAK_REG_WORDS];

/* One bit per page of g_registry (512 words) in which a bit was ever set,
 * never cleared: a walk of every registered region (diag/stats.c) reads
 * those pages only. Reading all 8 MiB costs ~2000 zero-page faults, ~4 ms,
 * in every process that writes its statistics at exit. */
#define HAK_REG_PAGE_WORDS ((size_t)HAK_PAGE / sizeof(uint64_t))
#define HAK_REG_PAGES (HAK_REG_WORDS / HAK_REG_PAGE_WORDS)
extern _Atomic(uint64_t) g_registry_pages[(HAK_REG_PAGES + 63) / 64];

void hak_registry_set(uintptr_t region);
void hak_registry_clear(uintptr_t region);

HAK_INLINE bool hak_registry_test(uintptr_t a) {
  uintptr_t w = a >> (HAK_SS_SHIFT + 6);
  if (HAK_UNLIKELY(w >= HAK_REG_WORDS)) return false;
  return (atomic_load_explicit(&g_registry[w], memory_order_relaxed) >> ((a >> HAK_SS_SHIFT) & 63)) & 1;
}

#pragma GCC visibility pop

#endif
