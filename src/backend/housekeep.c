/* Housekeeping: what is due, in one place, and the background thread. */
#include "backend/housekeep.h"
#include "backend/big.h"
#include "backend/shared_pool.h"
#include "base/config.h"
#include "base/counters.h"
#include "os/os.h"

#include <errno.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define CALL_BOUND 64 /* slabs one allocation-path call may decommit */
#define IDLE_TICKS 8  /* ticks with nothing to return before the thread parks */

enum { BG_OFF, BG_STARTING, BG_RUNNING, BG_FAILED };
static _Atomic int g_bg = BG_OFF;
static _Atomic uint32_t g_bg_parked; /* futex word: 1 while the thread sleeps with no work */
_Atomic int g_hk_start_pending;
size_t (*g_hk_purge)(uint64_t now_ms);
_Atomic uint32_t g_hk_purge_queued;


/* Memory to return: EMPTY slabs, UNUSED slots still dirty (a slab of one
 * class that became room for another and was then given up), BigCache,
 * mostly free slabs the heaps queued. */
static bool has_work(void) {
  return hak_sp_empty_bytes() != 0 || hak_sp_has_dirty() || hak_bigcache_held() ||
         atomic_load_explicit(&g_hk_purge_queued, memory_order_relaxed);
}

static void futex(_Atomic uint32_t *w, int op, uint32_t val) {
  int saved = errno;
  syscall(SYS_futex, (uint32_t *)w, op | FUTEX_PRIVATE_FLAG, val, NULL, NULL, 0);
  errno = saved;
}

static void *bg_main(void *arg) {
  (void)arg;
  unsigned idle = 0;
  for (;;) {
    uint32_t tick = g_cfg.decay_ms / 4 ? g_cfg.decay_ms / 4 : 1;
    struct timespec ts = {tick / 1000, (long)(tick % 1000) * 1000000};
    nanosleep(&ts, NULL);
    if (has_work()) {
      idle = 0;
      uint64_t now = hak_os_now_ms();
      bool did = hak_sp_decay(now, SIZE_MAX);
      if (hak_bigcache_expire()) did = true;
      if (did) hak_cnt_add(&g_stats.bg_wakeups, 1);
      if (g_hk_purge && atomic_load_explicit(&g_hk_purge_queued, memory_order_relaxed))
        g_hk_purge(now);
    } else if (++idle >= IDLE_TICKS) {
      /* Nothing held: sleep until hak_housekeep sees memory to return. */
      atomic_store_explicit(&g_bg_parked, 1, memory_order_seq_cst);
      if (!has_work())
        while (atomic_load_explicit(&g_bg_parked, memory_order_acquire)) futex(&g_bg_parked, FUTEX_WAIT, 1);
      atomic_store_explicit(&g_bg_parked, 0, memory_order_relaxed);
      idle = 0;
    }
  }
  return NULL;
}

void hak_housekeep_start(void) {
  atomic_store_explicit(&g_hk_start_pending, 0, memory_order_relaxed);
  int expect = BG_OFF;
  if (!atomic_compare_exchange_strong(&g_bg, &expect, BG_STARTING)) return;
  bool ok = hak_os_thread(bg_main, 128u << 10, "hakmem-bg");
  /* A program that may not make threads keeps the allocation-path return. */
  atomic_store_explicit(&g_bg, ok ? BG_RUNNING : BG_FAILED, memory_order_release);
}

static void wake(void) {
  if (atomic_load_explicit(&g_bg, memory_order_acquire) != BG_RUNNING ||
      !atomic_load_explicit(&g_bg_parked, memory_order_relaxed))
    return;
  uint32_t one = 1;
  if (atomic_compare_exchange_strong(&g_bg_parked, &one, 0)) futex(&g_bg_parked, FUTEX_WAKE, 1);
}

void hak_housekeep(void) {
  hak_bigcache_expire(); /* a relaxed load, and a clock read while BigCache holds something */
  if (hak_sp_empty_bytes() || hak_sp_has_dirty()) hak_sp_decay(hak_os_now_ms(), CALL_BOUND);
  if (has_work()) hak_housekeep_note();
}

void hak_housekeep_note(void) {
  if (!g_cfg.background) return;
  if (atomic_load_explicit(&g_bg, memory_order_acquire) == BG_OFF)
    atomic_store_explicit(&g_hk_start_pending, 1, memory_order_relaxed);
  else wake();
}

void hak_housekeep_poke(void) {
  if (!g_cfg.background) return;
  if (atomic_load_explicit(&g_bg, memory_order_acquire) == BG_OFF) hak_housekeep_start();
  else wake();
}

/* Only the forking thread exists in the child: the next memory to return
 * starts a new background thread there. */
void hak_housekeep_atfork_child(void) {
  atomic_store_explicit(&g_bg, BG_OFF, memory_order_relaxed);
  atomic_store_explicit(&g_bg_parked, 0, memory_order_relaxed);
  atomic_store_explicit(&g_hk_start_pending, 0, memory_order_relaxed);
}
