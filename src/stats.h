/* Statistics: global counters for slow paths (OS calls, shared pool), and
 * per-heap counters for the fast paths, summed when a report is asked for. */
#ifndef HAK_STATS_H
#define HAK_STATS_H
#include "common.h"
#include "hakmem.h"
#include "size_class.h"

#pragma GCC visibility push(hidden) /* internal: no GOT indirection */

typedef struct hak_global_stats {
  hak_counter_t mmap_calls, munmap_calls, madvise_calls, mremap_calls;
  hak_counter_t mmap_bytes, munmap_bytes, madvise_bytes;
  _Atomic uint64_t committed_bytes, peak_committed_bytes;
  hak_counter_t sp_stage[3], sp_release, sp_decommit, sp_ss_unmapped;
  hak_counter_t sp_refaults; /* decommitted slots claimed again: their memory faults in again (ACE) */
  _Atomic uint64_t superslabs;
  hak_counter_t ss_hugepage; /* SuperSlabs mapped with MADV_HUGEPAGE (HAKMEM_THP) */
  hak_counter_t big_allocs, big_frees, bigcache_hits, bigcache_misses, big_mremaps;
  hak_counter_t invalid_frees;
  hak_counter_t threads_started, heaps_adopted;
  hak_counter_t ace_updates;
  _Atomic uint64_t remote_out_noheap[HAK_NCLASS]; /* remote frees by threads without a heap, per class */
} hak_global_stats_t;

extern hak_global_stats_t g_stats;

void hak_stats_report_exit(void); /* HAKMEM_STATS=1 report at exit, no malloc */
void hak_stats_keep_stderr(void);
void hak_stats_reset_locks(void); /* fork child */

#pragma GCC visibility pop

#endif
