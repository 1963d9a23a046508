/* Start-up, fork and exit. Initialisation: no allocation, no dlsym, no recursion. The first malloc of
 * the process (or the library constructor, whichever comes first) runs it;
 * the first malloc of every other thread only creates that thread's heap. */
#include "base/init.h"
#include "api/jemalloc.h"
#include "backend/arena.h"
#include "backend/big.h"
#include "backend/guard.h"
#include "backend/housekeep.h"
#include "backend/shared_pool.h"
#include "base/config.h"
#include "base/lock.h"
#include "diag/crash.h"
#include "diag/prof.h"
#include "diag/stats.h"
#include "frontend/ace.h"
#include "frontend/heap.h"
#include "mem/size_class.h"

#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <time.h>

_Atomic int g_hak_ready;
static __thread int t_initialising;

static void atfork_prepare(void) {
  hak_prof_lock();
  hak_heap_lock_all();
  hak_sp_lock_all();
  hak_big_lock();
  hak_arena_lock();
  hak_ss_thp_lock();
  hak_guard_lock();
}
static void atfork_parent(void) {
  hak_guard_unlock();
  hak_ss_thp_unlock();
  hak_arena_unlock();
  hak_big_unlock();
  hak_sp_unlock_all();
  hak_heap_unlock_all();
  hak_prof_unlock();
}
static void atfork_child(void) {
  hak_guard_atfork_child();
  hak_arena_reset_lock();
  hak_ss_thp_reset_lock();
  hak_big_reset_lock();
  hak_sp_reset_locks();
  hak_housekeep_atfork_child();
  hak_heap_atfork_child();
  hak_stats_reset_locks();
  hak_je_atfork_child();
  hak_ace_reset_lock();
  hak_prof_atfork_child();
}

void hak_init_slow(void) {
  if (atomic_load_explicit(&g_hak_ready, memory_order_acquire) == 2) return;
  if (t_initialising) return; /* re-entered from pthread_atfork & co: the core is ready */
  int expect = 0;
  if (!atomic_compare_exchange_strong(&g_hak_ready, &expect, 1)) {
    while (atomic_load_explicit(&g_hak_ready, memory_order_acquire) != 2) sched_yield();
    return;
  }
  t_initialising = 1;
  hak_config_init();
  hak_size_class_init();
  hak_ace_init();
#ifdef HAKMEM_HARDENED
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  g_sll_key = ((uintptr_t)ts.tv_nsec * 0x9e3779b97f4a7c15ull) ^ (uintptr_t)&ts ^ 0x5bd1e995u;
#endif
  hak_heap_init();
  hak_prof_init();
  pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
  if (g_cfg.guard_sample) hak_guard_init();
  if (g_cfg.crash_report || g_guard_hi) hak_crash_handler_install();
  if (g_cfg.stats) hak_stats_keep_stderr();
  t_initialising = 0;
  atomic_store_explicit(&g_hak_ready, 2, memory_order_release);
}

__attribute__((constructor)) static void hak_constructor(void) {
  hak_init();
  hak_prof_constructor();
}

__attribute__((destructor)) static void hak_destructor(void) {
  hak_prof_exit();
  if (g_cfg.stats) hak_stats_report_exit();
}
