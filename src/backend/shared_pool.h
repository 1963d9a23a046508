/* Shared pool (SP-SLOT): hands slabs to thread heaps in three stages and
 * takes them back when they are EMPTY. Touched once per slab, never once per
 * block. Stage 1 is a lock-free per-class stack; stages 2 and 3 take one
 * short lock that a single-threaded program never contends. */
#ifndef HAK_SHARED_POOL_H
#define HAK_SHARED_POOL_H
#include "base/common.h"
#include "backend/superslab.h"

#pragma GCC visibility push(hidden) /* internal: no GOT indirection */

/* A slab of class cls with no owner yet (geo.fresh tells whether its memory
 * is known to be zero), or NULL when the OS refuses memory. */
hak_slab_t *hak_sp_acquire(unsigned cls);
/* head: a slab with no block out, already out of every heap list. */
void hak_sp_release(hak_slab_t *head);
/* The adaptive policy's EMPTY budget: what it grew by above the configured
 * one is what decay leaves committed. */
void hak_sp_set_budget(size_t bytes);
/* Decommits EMPTY slabs until at most keep bytes stay EMPTY, and gives
 * wholly unused SuperSlabs beyond spare back to their arenas. Returns bytes
 * released. */
size_t hak_sp_trim(size_t keep, size_t spare);
/* Time-based return, once per half HAKMEM_DECAY_MS: the EMPTY bytes that
 * stayed EMPTY since the last tick go back to the OS (at most max_slabs
 * slabs per call), joined into as few madvise calls as adjacency allows. */
size_t hak_sp_decay(uint64_t now_ms, size_t max_slabs);
/* Around a read of a header at an address the reader does not own
 * (hak_owns); quiescent: no such reader now (arena release). */
void hak_sp_reader_enter(void);
void hak_sp_reader_exit(void);
bool hak_sp_quiescent(void);
size_t hak_sp_empty_bytes(void);
/* Whether UNUSED slots still hold memory (decay gives it back). */
bool hak_sp_has_dirty(void);
size_t hak_sp_empty_slabs(void);
void hak_sp_lock_all(void);
void hak_sp_unlock_all(void);
void hak_sp_reset_locks(void);

#pragma GCC visibility pop

#endif
