/* Arenas: address space reserved in large aligned ranges (MAP_NORESERVE,
 * growing geometrically from 64 MiB to 4 GiB), handed out in 2 MiB chunks.
 * SuperSlabs are carved from them (Big blocks still map their own), so
 * the number of mappings grows with the logarithm of the heap, and a heap
 * that has reached its size makes no mmap or munmap: a chunk given back
 * stays reserved for the next one. Touched once per chunk, never per block. */
#ifndef HAK_ARENA_H
#define HAK_ARENA_H
#include "base/common.h"

#pragma GCC visibility push(hidden) /* internal: no GOT indirection */

#define HAK_ARENA_FIRST ((size_t)64 << 20)
#define HAK_ARENA_LAST ((size_t)4 << 30) /* the largest reservation */
#define HAK_ARENA_MAX 256                 /* reservations; past them, plain mappings */

/* A run of n 2 MiB chunks, 2 MiB aligned; *zero tells whether its memory
 * reads zero (it does unless a decommit failed). NULL when the OS refuses
 * address space. */
void *hak_arena_alloc(size_t n, bool *zero);
/* Gives a run back; zero: its memory reads zero (decommitted or never
 * touched). */
void hak_arena_free(void *p, size_t n, bool zero);
/* Unmaps the arenas that hold no chunk in use, when quiescent() says no
 * reader can be looking into one: for malloc_trim and for a mapping the OS
 * refused (under RLIMIT_AS the reservations count). Returns bytes released. */
size_t hak_arena_release_free(bool (*quiescent)(void));
void hak_arena_lock(void);
void hak_arena_unlock(void);
void hak_arena_reset_lock(void);

#pragma GCC visibility pop

#endif
