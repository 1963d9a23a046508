/* OS interface: every mmap/munmap/madvise/mremap hakmem makes goes through here
 * so that the statistics count them. */
#ifndef HAK_OS_H
#define HAK_OS_H
#include "base/common.h"

#pragma GCC visibility push(hidden) /* internal: no GOT indirection */

void *hak_os_map(size_t size);                        /* NULL on failure */
void *hak_os_map_aligned(size_t size, size_t align); /* align: power of two >= page */
void hak_os_unmap(void *p, size_t size);
/* Contents become zero (or undefined with MADV_FREE); false if the OS
 * refused, and then they are what they were. */
bool hak_os_decommit(void *p, size_t size);
/* hak_os_decommit for n ranges (p[i], size[i]), sorted and apart; ok[i]
 * tells which the OS took. In a process with threads on other CPUs each
 * madvise ends with a TLB shootdown, an interrupt to every one of them:
 * where the kernel allows (process_madvise on the caller itself, Linux
 * 6.13; kernels with 2025's batched flushes for it flush once for the
 * whole vector), one call covers every range. Elsewhere, one madvise per
 * range. */
void hak_os_decommit_many(void *const *p, const size_t *size, size_t n, bool *ok);
/* Contents become zero (MADV_DONTNEED, whatever HAKMEM_MADV_FREE says);
 * false if the OS refused. */
bool hak_os_zero(void *p, size_t size);
/* mincore: vec[i] & 1 says whether page i of [p, p + size) (p page-aligned)
 * is mapped: written, or read (the zero page). A page swapped out reads as
 * absent. False if the OS refused (not fault-injected: it changes nothing). */
bool hak_os_resident(void *p, size_t size, unsigned char *vec);
bool hak_os_remap_inplace(void *p, size_t old_size, size_t new_size);
/* Moves the pages of [p, p + size) to dst, a mapping the caller holds, which
 * they replace. With keep_source, [p, p + size) stays mapped, empty
 * (MREMAP_DONTUNMAP, Linux 5.7); else it is unmapped. False if the OS
 * refused; then [dst, dst + size) may be unmapped already. */
bool hak_os_move(void *p, size_t size, void *dst, bool keep_source);
/* MADV_HUGEPAGE, or with on false MADV_NOHUGEPAGE (no khugepaged collapse either) */
void hak_os_hugepage(void *p, size_t size, bool on);
/* The kernel gives huge pages to every anonymous mapping, asked or not. */
bool hak_os_thp_always(void);
/* Lines in /proc/self/maps: the process's mappings (0 if unreadable). */
unsigned hak_os_map_count(void);
void hak_os_protect_none(void *p, size_t size); /* guard pages (hardened build) */
void hak_os_protect_rw(void *p, size_t size);

/* A detached helper thread of hakmem's own, with every signal blocked (the
 * program's signals are not for it) and a name that top and /proc show.
 * False if the thread could not be made. */
bool hak_os_thread(void *(*fn)(void *), size_t stack, const char *name);

/* libunwind's unw_backtrace (libunwind.so.8), or NULL if it is not there.
 * About ten times cheaper than glibc's backtrace() once warm (0.5-0.8 us
 * for 24 frames against 6-8 us: it caches per address). Loading it
 * allocates: call it at start-up. ThreadSanitizer's interceptors crash in
 * it, so callers skip it there. */
typedef int (*hak_unwind_fn)(void **pcs, int max);
hak_unwind_fn hak_os_load_unwinder(void);

/* Fault injection for the tests: the k-th call of a kind in the mask
 * (counting from when the countdown is set) fails as if the OS refused. */
enum { HAK_OS_FAIL_MAP = 1, HAK_OS_FAIL_REMAP = 2, HAK_OS_FAIL_ADVISE = 4 };
extern _Atomic int64_t g_os_fail_countdown; /* 0: off */
extern _Atomic uint32_t g_os_fail_mask;

/* CLOCK_MONOTONIC_COARSE in milliseconds: the clock of every delay (decay,
 * BigCache, purges); a vDSO read, no syscall. */
uint64_t hak_os_now_ms(void);

/* Committed-memory bookkeeping (bytes the program may have touched). */
void hak_os_commit_add(int64_t delta);

#pragma GCC visibility pop

#endif
