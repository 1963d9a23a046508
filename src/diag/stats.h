/* Statistics: one snapshot of the per-heap counters of every heap, the
 * global ones (base/counters.h) and the backend's figures, which every
 * reader uses (hak_stats_get, hak_stat, the JSON, malloc_info, mallinfo2,
 * the text report), so their numbers agree with each other. */
#ifndef HAK_STATS_H
#define HAK_STATS_H
#include "base/common.h"
#include "mem/size_class.h"

#include <stdio.h>

#pragma GCC visibility push(hidden) /* internal: no GOT indirection */

enum {
  HAK_SNAP_WALK = 1,     /* walk the SuperSlabs: slabs per class, "active" */
  HAK_SNAP_RESIDENT = 2, /* read /proc/self/statm: "resident" */
};

typedef struct hak_snap {
  unsigned flags;
  /* per class */
  uint64_t alloc[HAK_NCLASS], free[HAK_NCLASS], live[HAK_NCLASS], cached[HAK_NCLASS];
  uint64_t refill[HAK_NCLASS], drain[HAK_NCLASS];
  uint64_t slabs[HAK_NCLASS], empty[HAK_NCLASS], slab_free[HAK_NCLASS]; /* HAK_SNAP_WALK */
  /* per tier */
  uint64_t tier_live[4], tier_bytes[4], tier_mallocs[4], tier_frees[4];
  uint64_t remote_free, remote_collected, refills, drains;
  uint64_t heaps, heaps_in_use;
  /* memory */
  uint64_t allocated, active, committed, peak, mapped, retained, resident;
  uint64_t empty_bytes, empty_slabs;
  uint64_t big_n, big_b, bc_n, bc_b;       /* live Big mappings, BigCache */
  uint64_t tc_blocks, tc_bytes;            /* free blocks in thread caches */
  uint64_t slab_free_blocks, slab_free_bytes; /* free blocks in held slabs (HAK_SNAP_WALK) */
  uint64_t mallocs, frees;
} hak_snap_t;

/* The snapshot is large: one static instance, under its lock. */
extern hak_snap_t g_snap;
void hak_snap_lock(void);
void hak_snap_unlock(void);
void hak_snap_take(hak_snap_t *s, unsigned flags); /* with hak_snap_lock held */

/* An output buffer (static, under the report lock) written with write(2)
 * to fd, or to f when fd < 0, or kept for cb. Flushed whenever it fills. */
typedef struct hak_sink {
  int fd;
  FILE *f;
  size_t len;
  int err;
  /* instead of fd and f: the whole text, NUL-terminated, once the report's
   * locks are released (the caller's code may call back into hakmem) */
  void (*cb)(void *, const char *);
  void *cb_arg;
  char *text; /* the text so far (hak_malloc'ed), for cb */
  size_t text_len;
} hak_sink_t;
void hak_report_lock(void);
void hak_report_unlock(void);
void hak_sink_printf(hak_sink_t *k, const char *fmt, ...);
/* The same without formatting. The JSON writer buffers its tokens and
 * writes them with this: formatting them one call each cost as many
 * instructions as a short-lived process's whole run (git --version), at
 * every exit with HAKMEM_STATS=json. */
void hak_sink_write(hak_sink_t *k, const char *s, size_t n);
void hak_sink_flush(hak_sink_t *k);

/* introspect.c: the JSON object of a snapshot. */
void hak_snap_json(hak_sink_t *k, const hak_snap_t *s);

void hak_stats_report_exit(void); /* HAKMEM_STATS at exit, no malloc */
void hak_stats_keep_stderr(void);
void hak_stats_reset_locks(void); /* fork child (also restarts the signal thread) */

#pragma GCC visibility pop

#endif
