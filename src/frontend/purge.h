/* Purging inside slabs in use: the whole pages of a mostly free slab whose
 * blocks are all free go back to the OS while its live blocks stay. After a
 * program frees most of a large heap, its survivors are scattered over many
 * slabs; without this, each 64 KiB slab that keeps one of them keeps all its
 * pages resident (a slab with no live block goes back whole, by decay).
 *
 * A purged page's blocks leave the slab's free list, since their links read
 * zero now, and the page's bit in its slot's tc.purged mask says so. The
 * slab's carve_lim reads 0 meanwhile, so every free of one of its blocks
 * takes the lookup, where hak_slab_block_purged tells a second free of a
 * purged block from a live one. The blocks come back, page by page, when
 * the slab runs out of listed ones (hak_slab_unpurge).
 *
 * The slab's tc part is written under its heap's lock (heap.h), by the owner,
 * or by the background thread for a purge. */
#ifndef HAK_PURGE_H
#define HAK_PURGE_H
#include "backend/superslab.h"

#pragma GCC visibility push(hidden) /* internal: no GOT indirection */

struct hak_heap;

/* --- how --------------------------------------------------------------- */
/* Returns every whole page of slab s that holds no live block (none out of
 * the slab: on the thread cache, remote, or the program's) to the OS, and
 * takes their blocks off its free list. Walks the free list twice. Returns
 * the bytes returned. s is queued (its carve limit reads 0 already); under
 * its heap's lock, from the owner or the background thread. */
size_t hak_slab_purge(hak_slab_t *s);
/* Puts the blocks of s's purged pages back on its free list, page by page
 * in address order, until at least want blocks came back or none is left;
 * their memory faults in again as they are written. Returns the blocks. */
uint32_t hak_slab_unpurge(struct hak_heap *h, hak_slab_t *s, uint32_t want);
/* s leaves its heap: its purged pages need no bookkeeping any more (their
 * blocks' memory reads zero, as the pool's memory may). */
void hak_slab_purge_forget(hak_slab_t *s);

/* --- when: the purge queue ---------------------------------------------
 * A slab on its heap's partial list that gets blocks back with at most 1/8
 * of them out is queued, and again at 1/32 and 1/128 (each level once per
 * stay on the partial list, so the walks cost O(1) per block freed). It is
 * purged once it has waited HAKMEM_DECAY_MS, the delay of EMPTY slabs, by
 * the background thread, or by the owner at the end of a window of its slow
 * paths; malloc_trim purges the caller's queue at once. A slab that serves
 * refills again before that leaves the queue untouched, so steady churn
 * pays nothing. The purge waits for the end of a burst of frees: a slab's
 * last free blocks are what empty its pages. */

/* Owner, under h->lock: s, on h's partial list, got blocks back. */
void hak_purge_consider(struct hak_heap *h, hak_slab_t *s);
/* Owner, under h->lock: s leaves h's partial list. */
void hak_purge_dequeue(struct hak_heap *h, hak_slab_t *s);
/* Under h->lock: purges h's queued slabs that have waited long enough at
 * now (every one with all). owner: the caller is h's thread, which may
 * also reset the slabs' carve limits. Returns the bytes returned. */
size_t hak_purge_due(struct hak_heap *h, uint64_t now_ms, bool all, bool owner);
void hak_purge_init(void);     /* start-up: the background thread's hook */
void hak_purge_lock_all(void); /* fork: no background purge is half done */
void hak_purge_unlock_all(void);
void hak_purge_atfork_child(void);

#pragma GCC visibility pop

#endif
