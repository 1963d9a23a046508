/* SuperSlab mapping and slab geometry: the only writer of a slab
 * descriptor's geo part. */
#include "backend/superslab.h"
#include "backend/arena.h"
#include "base/config.h"
#include "base/counters.h"
#include "base/lock.h"
#include "mem/registry.h"
#include "mem/size_class.h"
#include "os/os.h"

#include <string.h>

/* Huge pages cut TLB misses and page faults on a large heap, but back a
 * SuperSlab 2 MiB at a time, the pages no block has touched included. So
 * "auto" asks only where the program has been filling its SuperSlabs: one
 * SuperSlab in THP_PROBE_EVERY is mapped with small pages as a probe, and
 * mincore measures it when the next probe is mapped, after the heap grew by
 * THP_PROBE_EVERY SuperSlabs (sooner, one that will fill is still filling).
 * While the last probe read at least THP_DENSE resident and the heap holds
 * HAKMEM_THP_AUTO_BYTES of SuperSlabs, new ones ask. A program that leaves
 * most of its pages untouched (stress-ng's calloc'ed blocks) asks for none;
 * a probe never asks, so a change of habit shows in the next one.
 *
 * Each SuperSlab that asks, and each that gives up, may split its arena's
 * mapping, and Linux allows 65,530 by default: past THP_MAPS_MAX lines in
 * /proc/self/maps (counted at each probe) no SuperSlab asks. */
#define THP_PROBE_EVERY 64u
#define THP_DENSE 896u /* of 1024: at most an eighth of a huge page left unused */
#define THP_MAPS_MAX 4096u
static struct {
  hak_lock_t lock;
  uint64_t seq;     /* SuperSlabs mapped so far */
  hak_ss_t *probe;  /* the last probe, until measured or retired */
  uint32_t density; /* of 1024: what the last measured probe had resident */
  bool room;        /* the last probe counted fewer than THP_MAPS_MAX mappings */
  bool refused;     /* the probe said MADV_NOHUGEPAGE */
  int always;       /* the kernel gives huge pages unasked; -1: not read yet */
} g_thp = {HAK_LOCK_INIT, 0, NULL, 0, false, false, -1};

#ifndef HAKMEM_HARDENED /* no huge pages there: the policy is not built */
static uint32_t resident_share(hak_ss_t *ss) {
  unsigned char vec[HAK_SS_SIZE / HAK_PAGE];
  if (!hak_os_resident(ss, HAK_SS_SIZE, vec)) return UINT32_MAX;
  uint32_t n = 0;
  for (size_t i = 0; i < sizeof vec; i++) n += vec[i] & 1;
  return (uint32_t)(n * 1024u / sizeof vec);
}

/* Whether auto's policy lets ss ask; *refuse: it must say no, or a kernel
 * set to "always" gives it a huge page at its first touch. */
static bool auto_wants(hak_ss_t *ss, bool *refuse) {
  hak_lock(&g_thp.lock);
  bool probe = g_thp.seq++ % THP_PROBE_EVERY == 0;
  if (probe && g_thp.probe) {
    /* Files and mincore only once the heap has grown by a probe interval,
     * where the policy has something to decide. mincore only reads; the
     * probe is still mapped (a retire clears g_thp.probe under this lock). */
    if (g_thp.always < 0) g_thp.always = hak_os_thp_always();
    uint32_t d = resident_share(g_thp.probe);
    /* Under "always", a probe mapped before the mode was read may hold a
     * huge page the kernel gave unasked: its share says nothing. */
    if (d != UINT32_MAX && (!g_thp.always || g_thp.refused)) g_thp.density = d;
    g_thp.room = hak_os_map_count() < THP_MAPS_MAX;
  }
  if (probe) {
    g_thp.probe = ss;
    g_thp.refused = g_thp.always > 0; /* as *refuse below */
  }
  bool yes = !probe && g_thp.room && g_thp.density >= THP_DENSE &&
             atomic_load_explicit(&g_stats.superslabs, memory_order_relaxed) * HAK_SS_SIZE >= g_cfg.thp_auto_bytes;
  *refuse = !yes && g_thp.always > 0;
  hak_unlock(&g_thp.lock);
  return yes;
}
#endif

/* Called before ss is first touched: a fault maps a huge page only where
 * MADV_HUGEPAGE came first. */
static void ss_decide_hugepage(hak_ss_t *ss) {
#ifdef HAKMEM_HARDENED
  (void)ss; /* its guard pages split the mapping: no huge page */
#else
  bool refuse = false;
  bool ask = g_cfg.thp == HAK_THP_ON || (g_cfg.thp == HAK_THP_AUTO && auto_wants(ss, &refuse));
  if (ask) {
    hak_os_hugepage(ss, HAK_SS_SIZE, true);
    /* its first touch: after the madvise */
    atomic_store_explicit(&ss->thp_asked, 1, memory_order_relaxed);
    hak_cnt_add(&g_stats.ss_hugepage, 1);
  } else if (refuse) {
    hak_os_hugepage(ss, HAK_SS_SIZE, false);
  }
#endif
}

void hak_ss_thp_lock(void) { hak_lock(&g_thp.lock); }
void hak_ss_thp_unlock(void) { hak_unlock(&g_thp.lock); }
void hak_ss_thp_reset_lock(void) { hak_lock_reset(&g_thp.lock); }

void hak_ss_thp_give_up(hak_ss_t *ss) {
  if (atomic_load_explicit(&ss->thp_asked, memory_order_relaxed) &&
      !atomic_exchange_explicit(&ss->thp_off, 1, memory_order_relaxed))
    hak_os_hugepage(ss, HAK_SS_SIZE, false);
}

hak_ss_t *hak_ss_new(void *chunk, bool *zero_out) {
  bool zero = false;
  hak_ss_t *ss = chunk ? chunk : hak_arena_alloc(1, &zero);
  *zero_out = zero;
  if (!ss) return NULL;
  if (!zero) memset(ss, 0, HAK_SS_HEADER); /* a Big run's chunk, or a decommit failed: old contents */
  ss_decide_hugepage(ss);
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
  hak_lock(&g_thp.lock); /* in every mode: the probe may date from an earlier one */
  if (g_thp.probe == ss) g_thp.probe = NULL;
  hak_unlock(&g_thp.lock);
  /* The next SuperSlab in this chunk decides on huge pages afresh. */
  hak_ss_thp_give_up(ss);
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
