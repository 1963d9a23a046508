/* Big tier: blocks above the LargePool get their own 2 MiB-aligned mapping
 * that starts with a one-page header (region kind HAK_REGION_BIG), so free()
 * finds it by the same mask as a SuperSlab's. BigCache keeps recently freed mappings, bounded in
 * bytes and in time, so a buffer that is freed and allocated again does not
 * fault its pages in again. realloc grows and shrinks with mremap. */
#ifndef HAK_BIG_H
#define HAK_BIG_H
#include "base/common.h"
#include "mem/registry.h"

#pragma GCC visibility push(hidden) /* internal: no GOT indirection */

/* Every field sits in the header page's first 128 bytes. Free's fast path
 * reads the word at slot * 128 of the region (a slab descriptor's owner in a
 * SuperSlab) for the slot a pointer falls in: for a Big block aligned to
 * 64 KiB..1 MiB that is inside this page, so the rest of it stays zero. */
typedef struct hak_big {
  hak_region_t r;
  uint32_t live;    /* 1 while handed out, 0 while in BigCache */
  size_t map_size;  /* bytes mapped, from the header */
  size_t user_off;  /* user pointer - header */
  size_t user_size; /* usable bytes */
  size_t req_size;  /* bytes last asked for (malloc or realloc): tells a shrink from growth */
  struct hak_big *next, *prev; /* live list, or BigCache */
  uint64_t time;               /* when it was cached */
} hak_big_t;
_Static_assert(sizeof(hak_big_t) <= 128, "Big header fields stay below the first owner probe");
#define HAK_BIG_HEADER ((size_t)HAK_PAGE)

void *hak_big_alloc(size_t size, size_t align, bool *zero);
void hak_big_free(hak_big_t *hdr);
/* Resizes in place or by moving pages (no copy); NULL if it cannot. */
void *hak_big_realloc(hak_big_t *hdr, size_t size);
hak_big_t *hak_big_find(const void *p); /* the live big block containing p */
hak_big_t *hak_big_find_locked(const void *p); /* the same, with hak_big_lock() held */
/* Whether p lies in a BigCache run (a freed mapping, maybe merged with its
 * neighbours, so that its own header is gone); locked: the caller holds the
 * Big lock. */
bool hak_big_in_cache(const void *p, bool locked);
size_t hak_bigcache_flush(void);
/* Whether BigCache holds anything (one relaxed load). */
bool hak_bigcache_held(void);
/* Unmaps cached runs older than HAKMEM_BIGCACHE_MS. Big operations do this
 * themselves; so does the housekeeping hook (housekeep.h). */
void hak_bigcache_expire(void);
void hak_big_usage(size_t *live_count, size_t *live_bytes, size_t *cached_count, size_t *cached_bytes);
void hak_big_lock(void);
void hak_big_unlock(void);
void hak_big_reset_lock(void);

HAK_INLINE void *hak_big_user(const hak_big_t *hdr) { return (char *)hdr + hdr->user_off; }

#pragma GCC visibility pop

#endif
