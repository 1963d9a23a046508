/* Global counters of the slow paths, one struct for the whole library: each
 * layer adds to its own fields (named in the comments), and the diagnostics
 * layer reads them. The fast paths count in their thread's heap instead. */
#ifndef HAK_COUNTERS_H
#define HAK_COUNTERS_H
#include "base/common.h"

#pragma GCC visibility push(hidden) /* internal: no GOT indirection */

typedef struct hak_counters {
  /* os */
  hak_counter_t mmap_calls, munmap_calls, madvise_calls, mremap_calls;
  hak_counter_t mmap_bytes, munmap_bytes, madvise_bytes;
  _Atomic uint64_t committed_bytes, peak_committed_bytes;
  /* backend: shared pool and SuperSlabs */
  hak_counter_t sp_stage[3], sp_release, sp_decommit, sp_ss_unmapped;
  hak_counter_t sp_refaults; /* decommitted slots claimed again: their memory faults in again (ACE) */
  _Atomic uint64_t superslabs;
  hak_counter_t ss_hugepage; /* SuperSlabs mapped with MADV_HUGEPAGE (HAKMEM_THP) */
  /* backend: arenas and time-based return */
  hak_counter_t arenas;                     /* address-space reservations made */
  hak_counter_t decay_returns, decay_bytes; /* time-based returns to the OS: batches, bytes */
  hak_counter_t bg_wakeups;                 /* background thread ticks that found work */
  /* backend: guard pool (HAKMEM_GUARD_SAMPLE) */
  hak_counter_t guard_allocs;
  /* backend: Big tier */
  hak_counter_t big_allocs, big_frees, bigcache_hits, bigcache_misses, big_mremaps;
  /* base: reports */
  hak_counter_t invalid_frees;
  /* frontend */
  hak_counter_t threads_started, heaps_adopted;
  hak_counter_t ace_updates;
  /* frontend: pages of slabs in use given back (purge.c) and taken again */
  hak_counter_t slab_purges, slab_purged_bytes, slab_unpurged_bytes;
  /* diag: heap profiler */
  hak_counter_t prof_dropped, prof_dumps;
} hak_counters_t;

extern hak_counters_t g_stats;

#pragma GCC visibility pop

#endif
