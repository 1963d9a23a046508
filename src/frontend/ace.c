/* ACE: adapts the FrozenPolicy from windows of slow-path events.
 *
 * A class whose SLL both drains (too many frees in a row for its cap) and
 * refills (too many mallocs in a row) within a window is oscillating across
 * its capacity: doubling CAP turns those slow paths into fast ones. A class
 * that refills often without draining gets bigger batches. Classes idle for
 * several windows drift back to the defaults, which bounds the memory that
 * thread caches hold. Policies are immutable once published; a heap picks up
 * a new one on its next slow path. */
#include "frontend/ace.h"
#include "backend/shared_pool.h"
#include "base/config.h"
#include "base/counters.h"
#include "base/lock.h"

#define ACE_WINDOW 512 /* slow-path events between decisions */
#define ACE_SNAPSHOTS 8 /* readers copy a policy in far less than 8 windows */

static hak_policy_t g_snap[ACE_SNAPSHOTS];
static unsigned g_snap_next;
static hak_policy_t g_default;
_Atomic(const hak_policy_t *) g_policy = &g_snap[0];
_Atomic uint64_t g_policy_version;

static _Atomic uint32_t g_win_refill[HAK_NCLASS], g_win_drain[HAK_NCLASS];
static _Atomic uint32_t g_win_events;
static hak_lock_t g_ace_lock = HAK_LOCK_INIT;
static uint8_t g_idle[HAK_NCLASS];
static uint64_t g_last_decommit, g_last_refaults;
static uint32_t g_quiet_windows;

static uint32_t clamp_u32(uint64_t v, uint32_t lo, uint32_t hi) {
  return v < lo ? lo : v > hi ? hi : (uint32_t)v;
}

void hak_ace_init(void) {
  hak_policy_t *p = &g_default;
  for (unsigned c = 0; c < HAK_NCLASS; c++) {
    uint32_t sz = g_class[c].size;
    /* A byte budget per class, at most fast_cap blocks; Tiny classes keep at
     * least 32 so that small-block churn stays on the fast path. */
    uint32_t min_cap = g_class[c].tier == HAK_TIER_TINY ? 32 : 1;
    uint32_t cap = clamp_u32(g_cfg.fast_cap_bytes / sz, min_cap, g_cfg.fast_cap);
    if (g_class[c].tier == HAK_TIER_MID) {
      /* Mid slabs hold few blocks (1-51): room for two slabs' worth lets a
       * refill take a slab's whole free list at once (refill_sll), bounded
       * to 8x the byte budget (128 KiB by default) per class, which is two
       * whole slabs for every class up to 32 KiB. */
      uint32_t two_slabs = clamp_u32(2u * g_class[c].capacity, 1, (uint32_t)((8ull * g_cfg.fast_cap_bytes) / sz));
      if (cap < two_slabs) cap = clamp_u32(two_slabs, 1, g_cfg.fast_cap);
    }
    if (cap < min_cap) cap = min_cap;
    p->cap[c] = cap;
    uint32_t batch = clamp_u32(g_cfg.refill_bytes / sz, 1, 512);
    if (batch > cap / 2 && cap >= 2) batch = cap / 2;
    if (batch < 1) batch = 1;
    p->batch[c] = (uint16_t)batch;
  }
  p->empty_budget = g_cfg.empty_budget;
  p->w_max = g_cfg.w_max;
  p->version = 1;
  g_snap[0] = *p;
  atomic_store_explicit(&g_policy, &g_snap[0], memory_order_release);
  atomic_store_explicit(&g_policy_version, 1, memory_order_release);
  hak_sp_set_budget(p->empty_budget);
}

static void ace_decide(void) {
  const hak_policy_t *cur = hak_policy();
  hak_policy_t next = *cur;
  bool changed = false;
  for (unsigned c = 0; c < HAK_NCLASS; c++) {
    uint32_t r = atomic_exchange_explicit(&g_win_refill[c], 0, memory_order_relaxed);
    uint32_t d = atomic_exchange_explicit(&g_win_drain[c], 0, memory_order_relaxed);
    uint32_t cap_max = g_default.cap[c] * 8;
    if (d >= 8 && r >= 8 && next.cap[c] < cap_max) {
      next.cap[c] = next.cap[c] * 2 > cap_max ? cap_max : next.cap[c] * 2;
      changed = true;
      g_idle[c] = 0;
    } else if (r >= 32 && d < 4 && next.batch[c] < next.cap[c] / 2 && next.batch[c] < 512) {
      next.batch[c] = (uint16_t)(next.batch[c] * 2);
      changed = true;
      g_idle[c] = 0;
    } else if (r == 0 && d == 0 && ++g_idle[c] >= 4 &&
               (next.cap[c] != g_default.cap[c] || next.batch[c] != g_default.batch[c])) {
      next.cap[c] = next.cap[c] / 2 < g_default.cap[c] ? g_default.cap[c] : next.cap[c] / 2;
      next.batch[c] = g_default.batch[c];
      changed = true;
      g_idle[c] = 0;
    }
  }
  /* EMPTY budget: decommits, and claims of slots decommitted before, in the
   * same window mean memory is going back to the OS only to be faulted in
   * again; keep more. Decommits alone are a program freeing what it no
   * longer needs, and claims of never-touched slots are growth: the budget
   * stays. Quiet windows let it fall back to the default. */
  uint64_t dec = hak_cnt_get(&g_stats.sp_decommit);
  uint64_t refaults = hak_cnt_get(&g_stats.sp_refaults);
  bool refaulting = refaults - g_last_refaults >= 4;
  g_last_refaults = refaults;
  if (dec - g_last_decommit >= 4 && refaulting && next.empty_budget < 16 * g_default.empty_budget) {
    next.empty_budget *= 2;
    changed = true;
    g_quiet_windows = 0;
  } else if (dec == g_last_decommit && next.empty_budget > g_default.empty_budget &&
             ++g_quiet_windows >= 8) {
    next.empty_budget /= 2;
    changed = true;
    g_quiet_windows = 0;
  }
  g_last_decommit = dec;
  if (!changed) return;
  next.version = cur->version + 1;
  hak_policy_t *slot = &g_snap[++g_snap_next % ACE_SNAPSHOTS];
  *slot = next;
  atomic_store_explicit(&g_policy, slot, memory_order_release);
  if (next.empty_budget != cur->empty_budget) hak_sp_set_budget(next.empty_budget);
  atomic_store_explicit(&g_policy_version, next.version, memory_order_release);
  hak_cnt_add(&g_stats.ace_updates, 1);
}

void hak_ace_reset_lock(void) { hak_lock_reset(&g_ace_lock); }

/* A new configured EMPTY budget (hak_option_set, mallopt): the policy starts
 * from it again, and ACE's later moves are relative to it. */
void hak_ace_set_empty_budget(size_t bytes) {
  hak_lock(&g_ace_lock);
  g_default.empty_budget = bytes;
  const hak_policy_t *cur = hak_policy();
  hak_policy_t next = *cur;
  next.empty_budget = bytes;
  next.version = cur->version + 1;
  hak_policy_t *slot = &g_snap[++g_snap_next % ACE_SNAPSHOTS];
  *slot = next;
  atomic_store_explicit(&g_policy, slot, memory_order_release);
  hak_sp_set_budget(bytes);
  atomic_store_explicit(&g_policy_version, next.version, memory_order_release);
  g_quiet_windows = 0;
  hak_unlock(&g_ace_lock);
}

void hak_ace_report(const uint32_t *refill, const uint32_t *drain, uint32_t ev) {
  if (!g_cfg.learn) return;
  for (unsigned c = 0; c < HAK_NCLASS; c++) {
    if (refill[c]) atomic_fetch_add_explicit(&g_win_refill[c], refill[c], memory_order_relaxed);
    if (drain[c]) atomic_fetch_add_explicit(&g_win_drain[c], drain[c], memory_order_relaxed);
  }
  uint32_t total = atomic_fetch_add_explicit(&g_win_events, ev, memory_order_relaxed) + ev;
  if (total < ACE_WINDOW) return;
  if (!hak_trylock(&g_ace_lock)) return;
  atomic_store_explicit(&g_win_events, 0, memory_order_relaxed);
  ace_decide();
  hak_unlock(&g_ace_lock);
}
