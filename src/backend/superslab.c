/* SuperSlab mapping and slab geometry: the only writer of a slab
 * descriptor's geo part. */
#include "backend/superslab.h"
#include "backend/arena.h"
#include "base/config.h"
#include "base/counters.h"
#include "mem/registry.h"
#include "mem/size_class.h"
#include "os/os.h"

#include <string.h>

/* Huge pages cut TLB misses on a large heap, but back a SuperSlab 2 MiB at a
 * time, untouched slab tails included. "auto" pays that only once the heap
 * is large (HAKMEM_THP_AUTO_BYTES of SuperSlabs mapped), where the misses
 * cost the most and the tails the least in proportion. */
static bool ss_wants_hugepage(void) {
#ifdef HAKMEM_HARDENED
  return false; /* its guard pages split the mapping: no huge page */
#else
  if (g_cfg.thp == HAK_THP_ON) return true;
  if (g_cfg.thp != HAK_THP_AUTO) return false;
  uint64_t mapped = atomic_load_explicit(&g_stats.superslabs, memory_order_relaxed);
  return mapped * HAK_SS_SIZE >= g_cfg.thp_auto_bytes;
#endif
}

hak_ss_t *hak_ss_new(void *chunk, bool *zero_out) {
  bool zero = false;
  hak_ss_t *ss = chunk ? chunk : hak_arena_alloc(1, &zero);
  *zero_out = zero;
  if (!ss) return NULL;
  if (!zero) memset(ss, 0, HAK_SS_HEADER); /* a Big run's chunk, or a decommit failed: old contents */
  /* Before the first touch, or the first fault maps a small page. */
  if (ss_wants_hugepage()) {
    hak_os_hugepage(ss, HAK_SS_SIZE, true);
    hak_cnt_add(&g_stats.ss_hugepage, 1);
  }
  /* Fresh pages are zero: only the fields that are not zero are written. */
  ss->r.magic = HAK_REGION_MAGIC;
  ss->r.kind = HAK_REGION_SLABS;
  atomic_store_explicit(&ss->unused_mask, HAK_SS_ALL_SLOTS, memory_order_relaxed);
  if (!zero) atomic_store_explicit(&ss->dirty_mask, HAK_SS_ALL_SLOTS, memory_order_relaxed);
  for (unsigned i = 1; i < HAK_SLOTS; i++) hak_ss_slab(ss, i)->geo.head = hak_ss_slab(ss, i);
  hak_os_commit_add((int64_t)HAK_SS_HEADER);
  atomic_fetch_add_explicit(&g_stats.superslabs, 1, memory_order_relaxed);
#ifdef HAKMEM_HARDENED
  /* Guard: the rest of slot 0 catches underflows out of slot 1. */
  hak_os_protect_none((char *)ss + HAK_SS_HEADER, HAK_SLOT_SIZE - HAK_SS_HEADER);
#endif
  hak_registry_set((uintptr_t)ss);
  return ss;
}

void hak_ss_retire(hak_ss_t *ss) {
  hak_registry_clear((uintptr_t)ss);
  hak_os_commit_add(-(int64_t)HAK_SS_HEADER);
  atomic_fetch_sub_explicit(&g_stats.superslabs, 1, memory_order_relaxed);
  hak_cnt_add(&g_stats.sp_ss_unmapped, 1);
#ifdef HAKMEM_HARDENED
  hak_os_protect_rw((char *)ss + HAK_SS_HEADER, HAK_SLOT_SIZE - HAK_SS_HEADER);
#endif
  /* The next SuperSlab in this chunk decides on huge pages afresh. */
  if (g_cfg.thp != HAK_THP_OFF) hak_os_hugepage(ss, HAK_SS_SIZE, false);
  /* The arena's chunks read zero: one madvise for the whole SuperSlab, and
   * the address space stays reserved for the next one. */
  /* MADV_FREE keeps the contents until the kernel needs the memory */
  hak_arena_free(ss, 1, hak_os_decommit(ss, HAK_SS_SIZE) && !g_cfg.madv_free);
}

void hak_ss_slab_setup(hak_ss_t *ss, unsigned first, unsigned cls, bool fresh) {
  const hak_class_info_t *ci = &g_class[cls];
  hak_slab_t *head = hak_ss_slab(ss, first);
  uintptr_t base = (uintptr_t)hak_slot_addr(ss, first);
  for (unsigned i = 0; i < ci->slots; i++) {
    hak_slab_t *s = &head[i];
    s->geo.owner = NULL;
    s->geo.head = head;
    s->geo.base = base;
    s->geo.div_test = ci->div_test;
    s->geo.bsize = ci->size;
    s->geo.capacity = ci->capacity;
    s->geo.cls = (uint8_t)cls;
    s->geo.nslots = i == 0 ? ci->slots : 0;
  }
  head->geo.fresh = fresh;
  hak_slab_set_carve(head, (char *)base);
}

void hak_ss_slab_rewind(hak_slab_t *head) {
  head->geo.fresh = 0;
  hak_slab_set_carve(head, (char *)head->geo.base);
}

void hak_ss_slab_clear(hak_slab_t *head) {
  unsigned n = head->geo.nslots;
  for (unsigned i = 0; i < n; i++) {
    head[i].geo.owner = NULL;
    head[i].geo.bsize = 0;
    head[i].geo.nslots = 0;
    head[i].geo.head = &head[i];
  }
}

void hak_ss_slab_set_owner(hak_slab_t *head, struct hak_heap *h, uint16_t sll_off) {
  for (unsigned i = 0; i < head->geo.nslots; i++) {
    head[i].geo.sll_off = sll_off;
    head[i].geo.owner = h;
  }
}
