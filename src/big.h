/* Big tier: blocks above the LargePool get their own 2 MiB-aligned mapping
 * that starts with a SuperSlab-style header (kind HAK_SS_BIG), so free() finds
 * it by the same mask. BigCache keeps recently freed mappings, bounded in
 * bytes and in time, so a buffer that is freed and allocated again does not
 * fault its pages in again. realloc grows and shrinks with mremap. */
#ifndef HAK_BIG_H
#define HAK_BIG_H
#include "common.h"
#include "superslab.h"

#pragma GCC visibility push(hidden) /* internal: no GOT indirection */

void *hak_big_alloc(size_t size, size_t align, bool *zero);
void hak_big_free(hak_ss_t *hdr);
/* Resizes in place or by moving pages (no copy); NULL if it cannot. */
void *hak_big_realloc(hak_ss_t *hdr, size_t size);
/* A big block whose alignment put it outside its header's 2 MiB region. */
hak_ss_t *hak_big_find_unregistered(const void *p);
hak_ss_t *hak_big_find(const void *p); /* the live big block containing p */
hak_ss_t *hak_big_find_locked(const void *p); /* the same, with hak_big_lock() held */
size_t hak_bigcache_flush(void);
/* Unmaps cached runs older than HAKMEM_BIGCACHE_MS. Big operations do this
 * themselves; ACE calls it too, so that a program that has stopped using big
 * blocks but keeps allocating small ones still gets that memory back. */
void hak_bigcache_expire(void);
void hak_big_usage(size_t *live_count, size_t *live_bytes, size_t *cached_count, size_t *cached_bytes);
void hak_big_lock(void);
void hak_big_unlock(void);
void hak_big_reset_lock(void);

HAK_INLINE void *hak_big_user(const hak_ss_t *hdr) { return (char *)hdr + hdr->user_off; }

#pragma GCC visibility pop

#endif
