/* Big tier: blocks above the LargePool, each a run of whole 2 MiB chunks
 * that starts the block (2 MiB aligned), carved from an arena where it fits
 * and else a mapping of its own. A run's descriptor lives out of band, in a
 * table with one entry per 2 MiB of address space: nothing is written into
 * the block, so an untouched Big block costs no page, and the registry does
 * not mark it, so free()'s fast path never reads inside one (its slow path
 * finds the descriptor by address). BigCache keeps recently freed runs,
 * bounded in bytes and in time, so a buffer that is freed and allocated again
 * does not fault its pages in again. realloc grows a run in place (the
 * arena's next chunks, or mremap of its own mapping) or moves its pages with
 * mremap, never copying them. */
#ifndef HAK_BIG_H
#define HAK_BIG_H
#include "base/common.h"

#pragma GCC visibility push(hidden) /* internal: no GOT indirection */

#define HAK_BIG_MAGIC 0x68616b6d656d4247ull /* "hakmemBG": the entry describes a run */

/* The descriptor of a run: the table entry of its first chunk. Written under
 * the Big lock; free's lookup reads the entry of the chunk a pointer falls in
 * without it (magic with an acquire load, then the fields). */
typedef struct hak_big {
  _Atomic uint64_t magic; /* HAK_BIG_MAGIC; 0 for any other chunk */
  uintptr_t base;         /* the run's first byte, which is the block's */
  size_t map_size;        /* bytes in the run: whole chunks */
  size_t user_size;       /* usable bytes: the request rounded up to a page */
  size_t req_size;        /* bytes last asked for (malloc or realloc): tells a shrink from growth */
  struct hak_big *next, *prev; /* live list, or BigCache */
  uint64_t time;               /* when it was cached */
  uint32_t live;               /* 1 while handed out, 0 while in BigCache */
  uint32_t arena;              /* its chunks belong to an arena (else it is a mapping of its own) */
} hak_big_t;

void *hak_big_alloc(size_t size, size_t align, bool *zero);
void hak_big_free(hak_big_t *hdr);
/* Resizes in place or by moving pages (no copy); NULL if it cannot. */
void *hak_big_realloc(hak_big_t *hdr, size_t size);
/* The run (live or in BigCache) that holds p, or NULL. The entry of p's
 * chunk answers for a pointer into a run's first 2 MiB, with no lock; deeper
 * pointers take a walk back through the table, bounded by the longest run
 * ever made. Lock: HAK_BIG_FIND_LOCK takes the Big lock for the walk,
 * HAK_BIG_FIND_LOCKED has it held, HAK_BIG_FIND_SIGNAL takes none (in a
 * signal handler, where the table's entries are read as they are). */
enum { HAK_BIG_FIND_LOCK, HAK_BIG_FIND_LOCKED, HAK_BIG_FIND_SIGNAL };
hak_big_t *hak_big_find(const void *p, int lock);
size_t hak_bigcache_flush(void);
/* For a new SuperSlab: the last 2 MiB chunk of the oldest run cached in an
 * arena, taken out of BigCache, or NULL. Its pages are not zero; the
 * committed figure keeps its slots (1..31), which the SuperSlab holds as
 * dirty UNUSED slots. When no cached run is in an arena, the oldest one goes
 * back to the OS instead (and NULL). */
void *hak_bigcache_yield(void);
/* Whether BigCache holds anything (one relaxed load). */
bool hak_bigcache_held(void);
/* Gives back cached runs older than HAKMEM_BIGCACHE_MS; whether there were
 * any. Big operations do this themselves; so does the housekeeping hook
 * (housekeep.h). */
bool hak_bigcache_expire(void);
/* live_bytes: whole runs; live_user: their usable bytes */
void hak_big_usage(size_t *live_count, size_t *live_bytes, size_t *live_user, size_t *cached_count,
                   size_t *cached_bytes);
void hak_big_lock(void);
void hak_big_unlock(void);
void hak_big_reset_lock(void);

HAK_INLINE void *hak_big_user(const hak_big_t *hdr) {
  return (void *)hdr->base;
}

#pragma GCC visibility pop

#endif
