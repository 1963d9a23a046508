/* Sampled guarded allocations (HAKMEM_GUARD_SAMPLE=N, the idea of
 * GWP-ASan): about one allocation in N of up to HAK_GUARD_MAX bytes gets a
 * slot of its own pages in the guard pool, its end right against a
 * PROT_NONE page; once freed its pages are PROT_NONE too and the slot waits
 * behind every other free slot before it is used again. An overflow past the
 * end, a use after free (a fault in the pool, hak_guard_fault) and a double
 * free (hak_guard_free) are reported with the block's address, size, the
 * offset and the backtraces of its allocation and free. Off, the pool is
 * never mapped and hak_guard_holds is false for every pointer. */
#ifndef HAK_GUARD_H
#define HAK_GUARD_H
#include "base/common.h"

#pragma GCC visibility push(hidden) /* internal: no GOT indirection */

#define HAK_GUARD_MAX ((size_t)64 << 10) /* the largest sampled allocation */

extern uintptr_t g_guard_lo, g_guard_hi; /* the pool; both 0 while off */

/* Whether p lies in the guard pool (one subtract and compare). */
HAK_INLINE bool hak_guard_holds(const void *p) { return (uintptr_t)p - g_guard_lo < g_guard_hi - g_guard_lo; }

/* Start-up, with HAKMEM_GUARD_SAMPLE set: maps the pool (address space
 * only) and primes backtrace(), whose first call loads the unwinder and
 * allocates. */
void hak_guard_init(void);
/* A guarded block of size bytes, aligned as a block of that size needs
 * (16 bytes, more for a multiple of a larger power of two, up to a page);
 * NULL when no slot is free or the size is a multiple of twice a page.
 * Never allocates. */
void *hak_guard_alloc(size_t size);
/* Frees a guarded block; a double free or a pointer that is not a live
 * guarded block's start is reported. */
void hak_guard_free(void *p);
/* The usable size of a live guarded block, 0 for anything else (reported
 * as fn's invalid pointer when report is set). */
size_t hak_guard_usable(const void *p, const char *fn);
/* In a SIGSEGV or SIGBUS handler: if addr lies in the pool, writes the
 * report (overflow, underflow or use after free) and returns true. */
bool hak_guard_fault(const void *addr);
/* Whether p points into a live guarded block (hak_owns). */
bool hak_guard_owns(const void *p);
void hak_guard_lock(void);
void hak_guard_unlock(void);
void hak_guard_atfork_child(void);

#pragma GCC visibility pop

#endif
