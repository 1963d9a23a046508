/* SuperSlab mapping and slab geometry. */
#include "superslab.h"
#include "config.h"
#include "heap.h"
#include "os.h"
#include "registry.h"
#include "size_class.h"
#include "stats.h"

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

hak_ss_t *hak_ss_new(void) {
  hak_ss_t *ss = hak_os_map_aligned(HAK_SS_SIZE, HAK_SS_SIZE);
  if (!ss) return NULL;
  /* Before the first touch, or the first fault maps a small page. */
  if (ss_wants_hugepage()) {
    hak_os_hugepage(ss, HAK_SS_SIZE, true);
    hak_cnt_add(&g_stats.ss_hugepage, 1);
  }
  /* Fresh pages are zero: only the fields that are not zero are written. */
  ss->magic = HAK_SS_MAGIC;
  ss->kind = HAK_SS_SLABS;
  atomic_store_explicit(&ss->unused_mask, HAK_SS_ALL_SLOTS, memory_order_relaxed);
  for (unsigned i = 0; i < HAK_SLOTS; i++) ss->slab[i].head = &ss->slab[i];
  hak_os_commit_add((int64_t)hak_align_up(sizeof(hak_ss_t), HAK_PAGE));
  atomic_fetch_add_explicit(&g_stats.superslabs, 1, memory_order_relaxed);
#ifdef HAKMEM_HARDENED
  /* Guard: the rest of slot 0 catches underflows out of slot 1. */
  size_t hdr = hak_align_up(sizeof(hak_ss_t), HAK_PAGE);
  hak_os_protect_none((char *)ss + hdr, HAK_SLOT_SIZE - hdr);
#endif
  hak_registry_set((uintptr_t)ss);
  return ss;
}

void hak_ss_retire(hak_ss_t *ss) {
  hak_registry_clear((uintptr_t)ss);
  hak_os_commit_add(-(int64_t)hak_align_up(sizeof(hak_ss_t), HAK_PAGE));
  atomic_fetch_sub_explicit(&g_stats.superslabs, 1, memory_order_relaxed);
  hak_cnt_add(&g_stats.sp_ss_unmapped, 1);
}

void hak_ss_slab_setup(hak_ss_t *ss, unsigned first, unsigned cls, hak_heap_t *h, bool fresh) {
  const hak_class_info_t *ci = &g_class[cls];
  hak_slab_t *head = &ss->slab[first];
  uintptr_t base = (uintptr_t)hak_slot_addr(ss, first);
  for (unsigned i = 0; i < ci->slots; i++) {
    hak_slab_t *s = &ss->slab[first + i];
    s->head = head;
    s->base = base;
    s->div_test = ci->div_test;
    s->sll_off = (uint16_t)(offsetof(hak_heap_t, sll) + cls * sizeof(hak_sll_t));
    s->bsize = ci->size;
    s->capacity = ci->capacity;
    s->cls = (uint8_t)cls;
    s->nslots = i == 0 ? ci->slots : 0;
  }
  head->free = NULL;
  head->used = 0;
  head->nfree = 0;
  head->state = HAK_SLOT_ACTIVE;
  head->in_partial = 0;
  head->fresh = fresh;
  head->next = head->prev = NULL;
  atomic_store_explicit(&head->remote, NULL, memory_order_relaxed);
  hak_slab_set_carve(head, (char *)base);
  hak_ss_slab_set_owner(head, h);
}

void hak_ss_slab_set_owner(hak_slab_t *head, hak_heap_t *h) {
  for (unsigned i = 0; i < head->nslots; i++) head[i].owner = h;
}
