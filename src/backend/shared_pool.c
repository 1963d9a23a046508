/* Shared pool: slot states UNUSED / ACTIVE / EMPTY and the acquire stages.
 *   1. an EMPTY slab of the class, popped from a lock-free stack;
 *   2. UNUSED slots of an existing SuperSlab (classes share SuperSlabs), after
 *      turning EMPTY slabs of other classes back into UNUSED slots if needed;
 *   3. a new SuperSlab from an arena.
 * Nothing here walks the SuperSlabs: stage 2 finds room through lists by
 * longest UNUSED run, and memory goes back to the OS by age (hak_sp_decay),
 * never by a walk on the free path. */
#include "backend/shared_pool.h"
#include "backend/big.h"
#include "base/config.h"
#include "base/counters.h"
#include "base/lock.h"
#include "mem/registry.h"
#include "mem/size_class.h"
#include "os/os.h"

#include <stdlib.h>

/* EMPTY stacks: (tag << 32) | (slab id + 1); the tag defeats ABA. A popper
 * may read the link of a slab that another thread popped and reused at the
 * same moment: the memory stays mapped (arenas are never unmapped), and the
 * tag makes that CAS fail. */
static _Atomic uint64_t g_sp_empty[HAK_NCLASS];
static _Atomic uint64_t g_sp_empty_bytes;
static _Atomic uint64_t g_sp_empty_count;
/* Threads inside a stage-1 pop or hak_owns: an arena with no chunk in use is
 * unmapped only when this is seen at zero, so no reader of a stale slab id
 * or header finds its memory gone. */
static _Atomic uint64_t g_sp_readers;
/* The least EMPTY bytes seen since the last decay tick: memory that stayed
 * EMPTY the whole tick, which decay returns. */
static _Atomic uint64_t g_sp_low;
/* EMPTY bytes decay leaves in place, raised by the adaptive policy when
 * returned memory is faulted in again soon after (frontend/ace.c). */
static _Atomic size_t g_sp_keep;
static size_t g_sp_budget_default;
/* EMPTY bytes past which the allocation path returns a bounded batch at
 * once, without waiting for a tick: the adaptive policy's budget. */
static _Atomic size_t g_sp_budget = 16u << 20;

static hak_lock_t g_sp_lock = HAK_LOCK_INIT;       /* room lists, slot masks */
static hak_lock_t g_sp_trim_lock = HAK_LOCK_INIT;  /* one trim or decay at a time */
static hak_ss_t *g_room[HAK_SLOTS];                /* by longest UNUSED run, 1..31 */
/* SuperSlabs with every slot UNUSED; written under g_sp_lock, read without
 * it by a trim's test for work */
static _Atomic size_t g_unused_ss;
/* SuperSlabs that may have UNUSED slots still holding memory (EMPTY slabs
 * turned into room for another class, and not all taken): decay gives that
 * memory back too. */
static hak_ss_t *g_dirty;
/* SuperSlabs on g_dirty, for the background thread's test without the lock */
static _Atomic uint32_t g_dirty_count;
static uint64_t g_last_decay, g_last_refaults;
static size_t g_keep_now;

/* --- EMPTY stacks ------------------------------------------------------------ */

static void empty_push(hak_slab_t *s) {
  unsigned cls = s->geo.cls;
  uint64_t id1 = (uint64_t)hak_slab_id(s) + 1;
  /* Account before publishing: once the CAS succeeds another thread may pop
   * the slab and give its slots back. */
  atomic_fetch_add_explicit(&g_sp_empty_bytes, (uint64_t)s->geo.nslots << HAK_SLOT_SHIFT, memory_order_relaxed);
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
  atomic_fetch_add_explicit(&g_sp_readers, 1, memory_order_seq_cst);
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
  atomic_fetch_sub_explicit(&g_sp_readers, 1, memory_order_release);
  if (s) {
    uint64_t now = atomic_fetch_sub_explicit(&g_sp_empty_bytes, (uint64_t)s->geo.nslots << HAK_SLOT_SHIFT,
                                             memory_order_relaxed) -
                   ((uint64_t)s->geo.nslots << HAK_SLOT_SHIFT);
    atomic_fetch_sub_explicit(&g_sp_empty_count, 1, memory_order_relaxed);
    if (now < atomic_load_explicit(&g_sp_low, memory_order_relaxed))
      atomic_store_explicit(&g_sp_low, now, memory_order_relaxed); /* a racy min is close enough */
  }
  return s;
}

/* --- room lists (under g_sp_lock) ------------------------------------------- */

static unsigned longest_run(uint32_t m) {
  unsigned n = 0;
  for (; m; n++) m &= m << 1;
  return n;
}

static void unused_ss_add(int d) { /* g_sp_lock held: no RMW needed */
  atomic_store_explicit(&g_unused_ss, atomic_load_explicit(&g_unused_ss, memory_order_relaxed) + (size_t)d,
                        memory_order_relaxed);
}

static void room_unlink(hak_ss_t *ss) {
  if (!ss->listed) return;
  if (ss->prev) ss->prev->next = ss->next;
  else g_room[ss->room] = ss->next;
  if (ss->next) ss->next->prev = ss->prev;
  ss->next = ss->prev = NULL;
  ss->listed = 0;
  if (ss->room == HAK_SLOTS - 1) unused_ss_add(-1);
}

/* Files ss under its longest UNUSED run after its mask changed. */
static void room_update(hak_ss_t *ss) {
  unsigned k = longest_run(atomic_load_explicit(&ss->unused_mask, memory_order_relaxed));
  if (ss->listed && ss->room == k) return;
  room_unlink(ss);
  ss->room = k;
  if (!k) return; /* full: on no list until a slot comes back */
  ss->prev = NULL;
  ss->next = g_room[k];
  if (ss->next) ss->next->prev = ss;
  g_room[k] = ss;
  ss->listed = 1;
  if (k == HAK_SLOTS - 1) unused_ss_add(1);
}

/* First slot of a run of n UNUSED slots in mask, or -1. */
static int find_run(uint32_t m, unsigned n) {
  uint32_t x = m;
  for (unsigned i = 1; i < n && x; i++) x &= m >> i;
  return x ? __builtin_ctz(x) : -1;
}

/* Claims n UNUSED slots of ss (under g_sp_lock); -1 if it has no such run. */
static int claim_slots(hak_ss_t *ss, unsigned n, bool *fresh) {
  uint32_t m = atomic_load_explicit(&ss->unused_mask, memory_order_relaxed);
  int first = find_run(m, n);
  if (first < 0) return -1;
  uint32_t want = hak_slots_mask((unsigned)first, n);
  atomic_store_explicit(&ss->unused_mask, m & ~want, memory_order_release);
  room_update(ss);
  uint32_t dirty = atomic_fetch_and_explicit(&ss->dirty_mask, ~want, memory_order_acq_rel);
  *fresh = !(dirty & want) && !g_cfg.madv_free;
  /* Clean slots were decommitted (or never touched): they count again now. */
  uint32_t clean = want & ~dirty;
  if (clean) hak_os_commit_add((int64_t)__builtin_popcount(clean) << HAK_SLOT_SHIFT);
  uint32_t refault = atomic_fetch_and_explicit(&ss->decommitted_mask, ~want, memory_order_relaxed) & want;
  if (refault) hak_cnt_add(&g_stats.sp_refaults, (uint64_t)__builtin_popcount(refault));
  return first;
}

/* ss has UNUSED slots that hold memory: release_dirty will find it (under
 * g_sp_lock). */
static void dirty_note_locked(hak_ss_t *ss) {
  if (ss->on_dirty) return;
  ss->on_dirty = 1;
  ss->dirty_next = g_dirty;
  g_dirty = ss;
  atomic_fetch_add_explicit(&g_dirty_count, 1, memory_order_relaxed);
}

/* Gives a slab's slots back to its SuperSlab as UNUSED (under g_sp_lock);
 * decommitted says whether its memory went back to the OS (clean) or stays
 * (dirty). */
static void slots_unuse_locked(hak_slab_t *head, bool decommitted) {
  hak_ss_t *ss = hak_ss_of(head);
  uint32_t m = hak_slots_mask(hak_slab_index(head), head->geo.nslots);
  hak_ss_slab_clear(head);
  head->pool.state = HAK_SLOT_UNUSED;
  if (decommitted) {
    atomic_fetch_and_explicit(&ss->dirty_mask, ~m, memory_order_release);
    atomic_fetch_or_explicit(&ss->decommitted_mask, m, memory_order_relaxed);
  } else {
    atomic_fetch_or_explicit(&ss->dirty_mask, m, memory_order_release);
    dirty_note_locked(ss);
  }
  atomic_fetch_or_explicit(&ss->unused_mask, m, memory_order_release);
  room_update(ss);
}

/* Decommits the UNUSED slots that still hold memory, at most max_ss
 * SuperSlabs of them. The slots are taken out of the room lists while
 * their madvise runs, so no claim sees them half given back. */
static size_t release_dirty(size_t max_ss) {
  size_t released = 0;
  if (!atomic_load_explicit(&g_dirty_count, memory_order_relaxed)) return 0;
  for (size_t k = 0; k < max_ss; k++) {
    hak_lock(&g_sp_lock);
    hak_ss_t *ss = g_dirty;
    uint32_t m = 0;
    if (ss) {
      g_dirty = ss->dirty_next;
      ss->on_dirty = 0;
      atomic_fetch_sub_explicit(&g_dirty_count, 1, memory_order_relaxed);
      uint32_t unused = atomic_load_explicit(&ss->unused_mask, memory_order_relaxed);
      m = unused & atomic_load_explicit(&ss->dirty_mask, memory_order_relaxed);
      atomic_store_explicit(&ss->unused_mask, unused & ~m, memory_order_relaxed);
      room_update(ss);
    }
    hak_unlock(&g_sp_lock);
    if (!ss) break;
    uint32_t done = 0;
    for (uint32_t rest = m; rest;) {
      unsigned first = (unsigned)__builtin_ctz(rest), n = 0;
      while (first + n < HAK_SLOTS && (rest >> (first + n) & 1)) n++;
      uint32_t run = hak_slots_mask(first, n);
      rest &= ~run;
      if (hak_os_decommit(hak_slot_addr(ss, first), (size_t)n << HAK_SLOT_SHIFT)) done |= run;
    }
    hak_os_commit_add(-((int64_t)__builtin_popcount(done) << HAK_SLOT_SHIFT));
    released += (size_t)__builtin_popcount(done) << HAK_SLOT_SHIFT;
    hak_lock(&g_sp_lock);
    atomic_fetch_and_explicit(&ss->dirty_mask, ~done, memory_order_relaxed);
    atomic_fetch_or_explicit(&ss->decommitted_mask, done, memory_order_relaxed);
    atomic_fetch_or_explicit(&ss->unused_mask, m, memory_order_release);
    room_update(ss);
    if (m & ~done && !ss->on_dirty) { /* a refused madvise: try again later */
      ss->on_dirty = 1;
      ss->dirty_next = g_dirty;
      g_dirty = ss;
      atomic_fetch_add_explicit(&g_dirty_count, 1, memory_order_relaxed);
    }
    hak_unlock(&g_sp_lock);
  }
  return released;
}

/* --- acquire and release ----------------------------------------------------- */

static hak_slab_t *slab_new(hak_ss_t *ss, unsigned first, unsigned cls, bool fresh) {
  hak_ss_slab_setup(ss, first, cls, fresh);
  hak_slab_t *head = hak_ss_slab(ss, first);
  head->pool.state = HAK_SLOT_ACTIVE;
  return head;
}

/* Best fit: the SuperSlab whose longest UNUSED run is the shortest that holds n. */
static hak_slab_t *stage2(unsigned cls, unsigned n) {
  bool fresh = false;
  hak_lock(&g_sp_lock);
  for (unsigned k = n; k < HAK_SLOTS; k++) {
    hak_ss_t *ss = g_room[k];
    if (!ss) continue;
    int first = claim_slots(ss, n, &fresh);
    HAK_ASSERT(first >= 0);
    hak_unlock(&g_sp_lock);
    return slab_new(ss, (unsigned)first, cls, fresh);
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
    hak_lock(&g_sp_lock);
    for (unsigned c = 0; c < HAK_NCLASS && freed < n; c++) {
      hak_slab_t *e = empty_pop(c);
      if (!e) continue;
      freed += e->geo.nslots;
      slots_unuse_locked(e, false);
    }
    hak_unlock(&g_sp_lock);
    if (!freed) break;
  }
  /* Stage 3: a new SuperSlab, in a chunk of a cached Big run if one is
   * resident there (hak_bigcache_yield). */
  bool zero;
  hak_ss_t *ss = hak_ss_new(hak_bigcache_yield(), &zero);
  if (!ss) return NULL;
  bool fresh = false;
  hak_lock(&g_sp_lock);
  int first = claim_slots(ss, n, &fresh);
  if (!zero) dirty_note_locked(ss); /* its other slots hold memory: decay gives it back */
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
}

/* --- returning memory ------------------------------------------------------- */

#define BATCH 64 /* slabs per decommit batch: adjacent ones share one madvise */

static int by_address(const void *a, const void *b) {
  uintptr_t x = (uintptr_t) * (hak_slab_t *const *)a, y = (uintptr_t) * (hak_slab_t *const *)b;
  return x < y ? -1 : x > y;
}

/* Decommits a batch of popped EMPTY slabs, joining adjacent ones into one
 * range and the ranges into one call where the OS allows, then gives their
 * slots back as clean UNUSED ones. */
static void decommit_batch(hak_slab_t **v, unsigned n) {
  bool done[BATCH], ok[BATCH];
  void *start[BATCH];
  size_t len[BATCH];
  unsigned first[BATCH + 1], nr = 0;
  qsort(v, n, sizeof *v, by_address);
  for (unsigned i = 0; i < n;) {
    hak_ss_t *ss = hak_ss_of(v[i]);
    hak_ss_thp_give_up(ss);
    char *s = hak_slot_addr(ss, hak_slab_index(v[i]));
    char *end = s + ((size_t)v[i]->geo.nslots << HAK_SLOT_SHIFT);
    unsigned j = i + 1;
    while (j < n && (char *)hak_slot_addr(hak_ss_of(v[j]), hak_slab_index(v[j])) == end) {
      end += (size_t)v[j]->geo.nslots << HAK_SLOT_SHIFT;
      j++;
    }
    start[nr] = s;
    len[nr] = (size_t)(end - s);
    first[nr++] = i;
    i = j;
  }
  first[nr] = n;
  hak_os_decommit_many(start, len, nr, ok);
  for (unsigned k = 0; k < nr; k++) {
    /* A refused madvise leaves the slots dirty: they come back UNUSED, not
     * clean, so no one takes their memory for zero. */
    if (ok[k]) {
      hak_os_commit_add(-(int64_t)len[k]);
      hak_cnt_add(&g_stats.sp_decommit, 1);
    }
    for (unsigned i = first[k]; i < first[k + 1]; i++) done[i] = ok[k];
  }
  hak_lock(&g_sp_lock);
  for (unsigned i = 0; i < n; i++) slots_unuse_locked(v[i], done[i]);
  hak_unlock(&g_sp_lock);
}

/* Decommits EMPTY slabs, largest classes first (most bytes per madvise),
 * until at most keep bytes stay EMPTY or max_slabs were taken. */
static size_t release_empty(size_t keep, size_t max_slabs) {
  hak_slab_t *batch[BATCH];
  unsigned n = 0;
  size_t released = 0, taken = 0;
  for (int c = HAK_NCLASS - 1; c >= 0 && taken < max_slabs; c--) {
    /* malloc_trim calls come in loops (stress-ng calls it every few operations),
     * mostly with nothing EMPTY: stop at once rather than visit every class. */
    if (atomic_load_explicit(&g_sp_empty_bytes, memory_order_relaxed) <= keep) break;
    while (taken < max_slabs && atomic_load_explicit(&g_sp_empty_bytes, memory_order_relaxed) > keep) {
      hak_slab_t *s = empty_pop((unsigned)c);
      if (!s) break;
      released += (size_t)s->geo.nslots << HAK_SLOT_SHIFT;
      taken++;
      batch[n++] = s;
      if (n == BATCH) {
        decommit_batch(batch, n);
        n = 0;
      }
    }
  }
  if (n) decommit_batch(batch, n);
  return released;
}

/* Gives wholly unused SuperSlabs beyond spare back to their arenas. */
static size_t retire_unused(size_t spare) {
  size_t released = 0;
  while (atomic_load_explicit(&g_unused_ss, memory_order_relaxed) > spare) {
    hak_lock(&g_sp_lock);
    hak_ss_t *ss = atomic_load_explicit(&g_unused_ss, memory_order_relaxed) > spare ? g_room[HAK_SLOTS - 1] : NULL;
    if (ss) room_unlink(ss);
    hak_unlock(&g_sp_lock);
    if (!ss) return released;
    uint32_t dirty = atomic_load_explicit(&ss->dirty_mask, memory_order_relaxed);
    hak_os_commit_add(-((int64_t)__builtin_popcount(dirty) << HAK_SLOT_SHIFT));
    released += HAK_SS_SIZE;
    hak_ss_retire(ss);
  }
  return released;
}

size_t hak_sp_trim(size_t keep, size_t spare) {
  uint64_t empty = atomic_load_explicit(&g_sp_empty_bytes, memory_order_relaxed);
  /* malloc_trim comes in loops, mostly with nothing to give back: then no
   * lock. The low mark is set as a trim would (decay's racy min allows it). */
  if (empty <= keep && !atomic_load_explicit(&g_dirty_count, memory_order_relaxed) &&
      atomic_load_explicit(&g_unused_ss, memory_order_relaxed) <= spare) {
    atomic_store_explicit(&g_sp_low, empty, memory_order_relaxed);
    return 0;
  }
  hak_lock(&g_sp_trim_lock);
  size_t released = release_empty(keep, SIZE_MAX);
  released += release_dirty(SIZE_MAX);
  released += retire_unused(spare);
  atomic_store_explicit(&g_sp_low, atomic_load_explicit(&g_sp_empty_bytes, memory_order_relaxed),
                        memory_order_relaxed);
  hak_unlock(&g_sp_trim_lock);
  return released;
}

size_t hak_sp_decay(uint64_t now_ms, size_t max_slabs) {
  if (!hak_trylock(&g_sp_trim_lock)) return 0;
  size_t released = 0;
  size_t budget = atomic_load_explicit(&g_sp_budget, memory_order_relaxed);
  if (atomic_load_explicit(&g_sp_empty_bytes, memory_order_relaxed) > budget) {
    /* A phase change left more EMPTY memory than the budget: a batch goes
     * back now. */
    released = release_empty(budget, max_slabs);
  } else if (now_ms - g_last_decay >= g_cfg.decay_ms / 2) {
    g_last_decay = now_ms;
    /* What stayed EMPTY for the whole tick is idle: it goes back. */
    uint64_t low = atomic_load_explicit(&g_sp_low, memory_order_relaxed);
    uint64_t now = atomic_load_explicit(&g_sp_empty_bytes, memory_order_relaxed);
    /* The policy's reserve against refaults covers about twice what was
     * faulted in again during the tick, and halves on each quiet tick, so a
     * program that has settled, or takes a slab now and then, gets its
     * memory back. */
    uint64_t refaults = hak_cnt_get(&g_stats.sp_refaults);
    size_t again = (size_t)(refaults - g_last_refaults) << (HAK_SLOT_SHIFT + 1);
    size_t cap = atomic_load_explicit(&g_sp_keep, memory_order_relaxed);
    g_keep_now = g_keep_now / 2 > again ? g_keep_now / 2 : again;
    if (g_keep_now > cap) g_keep_now = cap;
    g_last_refaults = refaults;
    size_t keep = g_keep_now;
    if (low > now) low = now;
    if (low > keep) released = release_empty(now - (low - keep), max_slabs);
    released += release_dirty(max_slabs);
    released += retire_unused(g_cfg.spare_superslabs);
    atomic_store_explicit(&g_sp_low, atomic_load_explicit(&g_sp_empty_bytes, memory_order_relaxed),
                          memory_order_relaxed);
  }
  if (released) {
    hak_cnt_add(&g_stats.decay_returns, 1);
    hak_cnt_add(&g_stats.decay_bytes, released);
  }
  hak_unlock(&g_sp_trim_lock);
  return released;
}

void hak_sp_set_budget(size_t bytes) {
  /* The policy's budget starts at the configured one; what it grew by is
   * what decay keeps. */
  if (!g_sp_budget_default) g_sp_budget_default = bytes;
  atomic_store_explicit(&g_sp_budget, bytes, memory_order_relaxed);
  atomic_store_explicit(&g_sp_keep, bytes > g_sp_budget_default ? bytes - g_sp_budget_default : 0,
                        memory_order_relaxed);
}

void hak_sp_reader_enter(void) { atomic_fetch_add_explicit(&g_sp_readers, 1, memory_order_seq_cst); }
void hak_sp_reader_exit(void) { atomic_fetch_sub_explicit(&g_sp_readers, 1, memory_order_release); }
bool hak_sp_quiescent(void) { return atomic_load_explicit(&g_sp_readers, memory_order_seq_cst) == 0; }

bool hak_sp_has_dirty(void) { return atomic_load_explicit(&g_dirty_count, memory_order_relaxed) != 0; }
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
  atomic_store_explicit(&g_sp_readers, 0, memory_order_relaxed); /* the other threads are gone */
}
