/* Shared pool: slot states UNUSED / ACTIVE / EMPTY and the acquire stages.
 *   1. an EMPTY slab of the class, popped from a lock-free stack;
 *   2. UNUSED slots of an existing SuperSlab (classes share SuperSlabs), after
 *      turning EMPTY slabs of other classes back into UNUSED slots if needed;
 *   3. a new SuperSlab from the OS. */
#include "backend/shared_pool.h"
#include "base/config.h"
#include "base/counters.h"
#include "base/lock.h"
#include "mem/registry.h"
#include "mem/size_class.h"
#include "os/os.h"

/* EMPTY stacks: (tag << 32) | (slab id + 1); the tag defeats ABA. */
static _Atomic uint64_t g_sp_empty[HAK_NCLASS];
static _Atomic uint64_t g_sp_empty_bytes;
static _Atomic uint64_t g_sp_empty_count;
/* Threads inside an EMPTY-stack pop: a SuperSlab made unreachable is unmapped
 * only once this has been seen at zero, so no pop reads freed metadata. */
static _Atomic uint64_t g_sp_readers;

/* EMPTY bytes kept committed; the adaptive policy (frontend/ace.c) moves it. */
static _Atomic size_t g_sp_budget = 16u << 20;

static hak_lock_t g_sp_lock = HAK_LOCK_INIT; /* SuperSlab list, stage 2/3 */
static hak_lock_t g_sp_trim_lock = HAK_LOCK_INIT;
static hak_ss_t *g_sp_list;      /* every SuperSlab with slabs */
static hak_ss_t *g_sp_hint;      /* where stage 2 last found room */
static hak_ss_t *g_sp_graveyard; /* unreachable, waiting to be unmapped */

static void empty_push(hak_slab_t *s) {
  unsigned cls = s->geo.cls;
  uint64_t id1 = (uint64_t)hak_slab_id(s) + 1;
  /* Account before publishing: once the CAS succeeds another thread may pop
   * the slab, give its slots back and even unmap its SuperSlab. */
  atomic_fetch_add_explicit(&g_sp_empty_bytes, (uint64_t)s->geo.nslots << HAK_SLOT_SHIFT,
                            memory_order_relaxed);
  atomic_fetch_add_explicit(&g_sp_empty_count, 1, memory_order_relaxed);
  uint64_t old = atomic_load_explicit(&g_sp_empty[cls], memory_order_relaxed);
  uint64_t nw;
  do {
    atomic_store_explicit(&s->pool.next, old & 0xffffffffu, memory_order_relaxed);
    nw = ((old >> 32) + 1) << 32 | id1;
  } while (!atomic_compare_exchange_weak_explicit(&g_sp_empty[cls], &old, nw, memory_order_release,
                                                  memory_order_relaxed));
}

static hak_slab_t *empty_pop(unsigned cls) {
  if (!(uint32_t)atomic_load_explicit(&g_sp_empty[cls], memory_order_relaxed)) return NULL;
  atomic_fetch_add_explicit(&g_sp_readers, 1, memory_order_acq_rel);
  hak_slab_t *s = NULL;
  uint64_t old = atomic_load_explicit(&g_sp_empty[cls], memory_order_acquire);
  while ((uint32_t)old) {
    s = hak_slab_from_id((uint32_t)old - 1);
    uint64_t next = atomic_load_explicit(&s->pool.next, memory_order_relaxed);
    uint64_t nw = ((old >> 32) + 1) << 32 | next;
    if (atomic_compare_exchange_weak_explicit(&g_sp_empty[cls], &old, nw, memory_order_acq_rel,
                                              memory_order_acquire))
      break;
    s = NULL;
  }
  atomic_fetch_sub_explicit(&g_sp_readers, 1, memory_order_acq_rel);
  if (s) {
    atomic_fetch_sub_explicit(&g_sp_empty_bytes, (uint64_t)s->geo.nslots << HAK_SLOT_SHIFT,
                              memory_order_relaxed);
    atomic_fetch_sub_explicit(&g_sp_empty_count, 1, memory_order_relaxed);
  }
  return s;
}

/* First slot of a run of n UNUSED slots in mask, or -1. */
static int find_run(uint32_t m, unsigned n) {
  uint32_t x = m;
  for (unsigned i = 1; i < n && x; i++) x &= m >> i;
  return x ? __builtin_ctz(x) : -1;
}

static int claim_slots(hak_ss_t *ss, unsigned n, bool *fresh) {
  uint32_t m = atomic_load_explicit(&ss->unused_mask, memory_order_acquire);
  for (;;) {
    int first = find_run(m, n);
    if (first < 0) return -1;
    uint32_t want = hak_slots_mask((unsigned)first, n);
    if (atomic_compare_exchange_weak_explicit(&ss->unused_mask, &m, m & ~want,
                                              memory_order_acq_rel, memory_order_acquire)) {
      uint32_t dirty = atomic_fetch_and_explicit(&ss->dirty_mask, ~want, memory_order_acq_rel);
      *fresh = !(dirty & want) && !g_cfg.madv_free;
      /* Clean slots were decommitted (or never touched): they count again now. */
      uint32_t clean = want & ~dirty;
      if (clean) hak_os_commit_add((int64_t)__builtin_popcount(clean) << HAK_SLOT_SHIFT);
      uint32_t refault = atomic_fetch_and_explicit(&ss->decommitted_mask, ~want, memory_order_relaxed) & want;
      if (refault) hak_cnt_add(&g_stats.sp_refaults, (uint64_t)__builtin_popcount(refault));
      return first;
    }
  }
}

/* Gives a slab's slots back to its SuperSlab as UNUSED; decommit says whether
 * its memory goes back to the OS (then it is clean) or stays (dirty). */
static void slots_unuse(hak_slab_t *head, bool decommit) {
  hak_ss_t *ss = hak_ss_of(head);
  unsigned first = hak_slab_index(head), n = head->geo.nslots;
  uint32_t m = hak_slots_mask(first, n);
  hak_ss_slab_clear(head);
  head->pool.state = HAK_SLOT_UNUSED;
  if (decommit) {
    /* A decommit splits the SuperSlab's huge page if it has one (asked for,
     * or given by a kernel set to "always"); without MADV_NOHUGEPAGE,
     * khugepaged could collapse the range again and fill the memory given
     * back in. The SuperSlab keeps small pages from then on. */
    if (g_cfg.thp != HAK_THP_OFF && !atomic_exchange_explicit(&ss->thp_off, 1, memory_order_relaxed))
      hak_os_hugepage(ss, HAK_SS_SIZE, false);
    hak_os_decommit(hak_slot_addr(ss, first), (size_t)n << HAK_SLOT_SHIFT);
    hak_os_commit_add(-((int64_t)n << HAK_SLOT_SHIFT));
    hak_cnt_add(&g_stats.sp_decommit, 1);
    atomic_fetch_and_explicit(&ss->dirty_mask, ~m, memory_order_release);
    atomic_fetch_or_explicit(&ss->decommitted_mask, m, memory_order_relaxed);
  } else {
    atomic_fetch_or_explicit(&ss->dirty_mask, m, memory_order_release);
  }
  atomic_fetch_or_explicit(&ss->unused_mask, m, memory_order_release);
}

static hak_slab_t *slab_new(hak_ss_t *ss, unsigned first, unsigned cls, bool fresh) {
  hak_ss_slab_setup(ss, first, cls, fresh);
  hak_slab_t *head = hak_ss_slab(ss, first);
  head->pool.state = HAK_SLOT_ACTIVE;
  return head;
}

static hak_slab_t *stage2(unsigned cls, unsigned n) {
  bool fresh = false;
  hak_lock(&g_sp_lock);
  hak_ss_t *start = g_sp_hint ? g_sp_hint : g_sp_list;
  hak_ss_t *ss = start;
  while (ss) {
    int first = claim_slots(ss, n, &fresh);
    if (first >= 0) {
      g_sp_hint = ss;
      hak_unlock(&g_sp_lock);
      return slab_new(ss, (unsigned)first, cls, fresh);
    }
    ss = ss->next ? ss->next : g_sp_list;
    if (ss == start) break;
  }
  hak_unlock(&g_sp_lock);
  return NULL;
}

hak_slab_t *hak_sp_acquire(unsigned cls) {
  unsigned n = g_class[cls].slots;
  /* Stage 1: an EMPTY slab of this class keeps its geometry. */
  hak_slab_t *s = empty_pop(cls);
  if (s) {
    hak_cnt_add(&g_stats.sp_stage[0], 1);
    hak_ss_slab_rewind(s);
    s->pool.state = HAK_SLOT_ACTIVE;
    return s;
  }
  /* Stage 2: UNUSED slots; EMPTY slabs of other classes become UNUSED first
   * when nothing else has room, so a phase change reuses memory. */
  for (int round = 0; round < 4; round++) {
    s = stage2(cls, n);
    if (s) {
      hak_cnt_add(&g_stats.sp_stage[1], 1);
      return s;
    }
    if (!atomic_load_explicit(&g_sp_empty_count, memory_order_relaxed)) break;
    unsigned freed = 0;
    for (unsigned c = 0; c < HAK_NCLASS && freed < n; c++) {
      hak_slab_t *e = empty_pop(c);
      if (!e) continue;
      freed += e->geo.nslots;
      slots_unuse(e, false);
    }
    if (!freed) break;
  }
  /* Stage 3: a new SuperSlab. */
  hak_ss_t *ss = hak_ss_new();
  if (!ss) return NULL;
  bool fresh = false;
  int first = claim_slots(ss, n, &fresh);
  hak_lock(&g_sp_lock);
  ss->next = g_sp_list;
  if (g_sp_list) g_sp_list->prev = ss;
  g_sp_list = ss;
  g_sp_hint = ss;
  hak_unlock(&g_sp_lock);
  hak_cnt_add(&g_stats.sp_stage[2], 1);
  HAK_TRACE("hakmem: new SuperSlab %p for class %u", (void *)ss, (uint64_t)cls);
  return slab_new(ss, (unsigned)first, cls, fresh);
}

void hak_sp_release(hak_slab_t *head) {
  HAK_ASSERT(head->geo.head == head && atomic_load_explicit(&head->rem.list, memory_order_relaxed) == NULL);
  HAK_TRACE("hakmem: slab %p of class %u back to the shared pool", (void *)head, (uint64_t)head->geo.cls);
  hak_ss_slab_set_owner(head, NULL, 0);
  head->pool.state = HAK_SLOT_EMPTY;
  empty_push(head);
  hak_cnt_add(&g_stats.sp_release, 1);
  size_t budget = atomic_load_explicit(&g_sp_budget, memory_order_relaxed);
  if (atomic_load_explicit(&g_sp_empty_bytes, memory_order_relaxed) > budget)
    hak_sp_trim(budget / 2, g_cfg.spare_superslabs);
}

static void graveyard_flush(void) {
  /* Called with g_sp_lock held. */
  if (!g_sp_graveyard || atomic_load_explicit(&g_sp_readers, memory_order_seq_cst)) return;
  hak_ss_t *ss = g_sp_graveyard;
  g_sp_graveyard = NULL;
  while (ss) {
    hak_ss_t *next = ss->next;
    hak_os_unmap(ss, HAK_SS_SIZE);
    ss = next;
  }
}

size_t hak_sp_trim(size_t keep, size_t spare) {
  if (!hak_trylock(&g_sp_trim_lock)) return 0;
  size_t released = 0;
  /* Decommit EMPTY slabs, largest classes first (most bytes per madvise). */
  for (int c = HAK_NCLASS - 1; c >= 0; c--) {
    while (atomic_load_explicit(&g_sp_empty_bytes, memory_order_relaxed) > keep) {
      hak_slab_t *s = empty_pop((unsigned)c);
      if (!s) break;
      released += (size_t)s->geo.nslots << HAK_SLOT_SHIFT;
      slots_unuse(s, true);
    }
  }
  /* Unmap wholly unused SuperSlabs beyond the spares. Dirty UNUSED slots of
   * an otherwise unused SuperSlab are released with it. */
  hak_lock(&g_sp_lock);
  size_t unused_seen = 0;
  for (hak_ss_t *ss = g_sp_list, *next; ss; ss = next) {
    next = ss->next;
    if (atomic_load_explicit(&ss->unused_mask, memory_order_acquire) != HAK_SS_ALL_SLOTS) continue;
    if (unused_seen++ < spare) continue;
    /* Claim every slot so no stage-2 walker can take one while we unmap. */
    uint32_t expect = HAK_SS_ALL_SLOTS;
    if (!atomic_compare_exchange_strong(&ss->unused_mask, &expect, 0)) continue;
    uint32_t dirty = atomic_load_explicit(&ss->dirty_mask, memory_order_relaxed);
    hak_os_commit_add(-((int64_t)__builtin_popcount(dirty) << HAK_SLOT_SHIFT));
    released += HAK_SS_SIZE;
    if (ss->prev) ss->prev->next = ss->next;
    else g_sp_list = ss->next;
    if (ss->next) ss->next->prev = ss->prev;
    if (g_sp_hint == ss) g_sp_hint = g_sp_list;
    hak_ss_retire(ss);
    ss->next = g_sp_graveyard;
    g_sp_graveyard = ss;
  }
  graveyard_flush();
  hak_unlock(&g_sp_lock);
  hak_unlock(&g_sp_trim_lock);
  return released;
}

void hak_sp_set_budget(size_t bytes) { atomic_store_explicit(&g_sp_budget, bytes, memory_order_relaxed); }

void hak_sp_reader_enter(void) { atomic_fetch_add_explicit(&g_sp_readers, 1, memory_order_seq_cst); }
void hak_sp_reader_exit(void) { atomic_fetch_sub_explicit(&g_sp_readers, 1, memory_order_release); }

size_t hak_sp_empty_bytes(void) { return atomic_load_explicit(&g_sp_empty_bytes, memory_order_relaxed); }
size_t hak_sp_empty_slabs(void) { return atomic_load_explicit(&g_sp_empty_count, memory_order_relaxed); }

void hak_sp_lock_all(void) {
  hak_lock(&g_sp_trim_lock);
  hak_lock(&g_sp_lock);
}
void hak_sp_unlock_all(void) {
  hak_unlock(&g_sp_lock);
  hak_unlock(&g_sp_trim_lock);
}
void hak_sp_reset_locks(void) {
  hak_lock_reset(&g_sp_lock);
  hak_lock_reset(&g_sp_trim_lock);
  /* Threads that were inside a pop do not exist in the child. */
  atomic_store_explicit(&g_sp_readers, 0, memory_order_relaxed);
}
