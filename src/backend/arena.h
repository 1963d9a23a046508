/* Arenas: address space reserved in large aligned ranges (MAP_NORESERVE,
 * growing geometrically from 64 MiB to 4 GiB), handed out in runs of 2 MiB
 * chunks. SuperSlabs (one chunk) and Big blocks (runs, up to
 * HAK_ARENA_BIG_MAX) are carved from them, so the number of mappings grows
 * with the logarithm of the heap, and a heap that has reached its size makes
 * no mmap or munmap: a chunk given back stays reserved for the next one. */
#ifndef HAK_ARENA_H
#define HAK_ARENA_H
#include "base/common.h"

#pragma GCC visibility push(hidden) /* internal: no GOT indirection */

#define HAK_ARENA_FIRST ((size_t)64 << 20)
#define HAK_ARENA_LAST ((size_t)4 << 30) /* the largest reservation */
#define HAK_ARENA_MAX 256                /* reservations; past them, plain mappings */
/* The longest Big run taken from an arena; longer ones are mappings of their
 * own, few by their size, so that no reservation is made for one block. */
#define HAK_ARENA_BIG_MAX (HAK_ARENA_LAST / 4)

/* A run of n 2 MiB chunks, 2 MiB aligned; *zero tells whether its memory
 * reads zero (it does unless a decommit failed). NULL when the OS refuses
 * address space. */
void *hak_arena_alloc(size_t n, bool *zero);
/* Gives a run back; zero: its memory reads zero (decommitted or never
 * touched). */
void hak_arena_free(void *p, size_t n, bool zero);
/* Takes the more chunks right after a run of n at p, if they are free in
 * the same arena (a Big block grown in place); false otherwise. */
bool hak_arena_extend(void *p, size_t n, size_t more);
/* The arena that holds p, as an index, or -1 for an address outside every
 * arena (runs of two arenas never merge). */
int hak_arena_index(const void *p);
/* Unmaps the arenas that hold no chunk in use, when quiescent() says no
 * reader can be looking into one: for malloc_trim and for a mapping the OS
 * refused (under RLIMIT_AS the reservations count). Returns bytes released. */
size_t hak_arena_release_free(bool (*quiescent)(void));
void hak_arena_lock(void);
void hak_arena_unlock(void);
void hak_arena_reset_lock(void);

#pragma GCC visibility pop

#endif
