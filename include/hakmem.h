/* hakmem — a general-purpose memory allocator.
 *
 * Public API. The core is reachable through the hak_* names below whether or
 * not the standard names are overridden: libhakmem.so / libhakmem.a also
 * export malloc, free, ... mapped onto these; libhakmem_core.a does not.
 */
#ifndef HAKMEM_H
#define HAKMEM_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define HAK_VERSION "0.1.0"

/* The malloc family, same contracts as the C/POSIX/glibc functions. */
void *hak_malloc(size_t size);
void hak_free(void *p);
void *hak_calloc(size_t n, size_t size);
void *hak_realloc(void *p, size_t size);
void *hak_reallocarray(void *p, size_t n, size_t size);
int hak_posix_memalign(void **out, size_t alignment, size_t size);
void *hak_aligned_alloc(size_t alignment, size_t size);
void *hak_memalign(size_t alignment, size_t size);
void *hak_valloc(size_t size);
void *hak_pvalloc(size_t size);
size_t hak_malloc_usable_size(const void *p);
int hak_malloc_trim(size_t pad);
void hak_malloc_stats(void);

/* Free with a known size (C23 free_sized / C++ sized delete); the size is
 * checked in debug builds only. */
void hak_free_sized(void *p, size_t size);

/* 1 if p points into a block of hakmem's (any byte of it): a live block, or,
 * below the Big tier, a freed block that hakmem keeps cached for reuse.
 * 0 for memory hakmem never handed out, and for freed Big blocks. Never
 * follows a pointer it does not own. */
int hak_owns(const void *p);

/* mallinfo2-compatible figures (glibc's struct mallinfo2 layout). */
struct hak_mallinfo {
  size_t arena;    /* bytes mapped from the OS (SuperSlabs + big mappings) */
  size_t ordblks;  /* number of free slabs (EMPTY) */
  size_t smblks;   /* unused: 0 */
  size_t hblks;    /* number of live big mappings */
  size_t hblkhd;   /* bytes in live big mappings */
  size_t usmblks;  /* peak committed bytes */
  size_t fsmblks;  /* unused: 0 */
  size_t uordblks; /* bytes in allocated blocks */
  size_t fordblks; /* committed bytes not in allocated blocks */
  size_t keepcost; /* bytes that malloc_trim(0) could release */
};
struct hak_mallinfo hak_mallinfo2(void);

/* Statistics. Counters are summed over all threads (live and exited). */
enum { HAK_STAT_TIERS = 4 }; /* 0 tiny, 1 mid, 2 large, 3 big */
typedef struct hak_stats {
  uint64_t mallocs[HAK_STAT_TIERS]; /* blocks handed out, per tier */
  uint64_t frees[HAK_STAT_TIERS];   /* blocks taken back, per tier */
  uint64_t remote_frees;            /* frees by a thread that does not own the slab */
  uint64_t refills;                 /* thread cache refills from slabs */
  uint64_t drains;                  /* thread cache drains back to slabs */
  uint64_t sp_stage[3];             /* shared pool: 1 EMPTY reuse, 2 UNUSED slot, 3 new SuperSlab */
  uint64_t sp_release;              /* slabs given back to the shared pool */
  uint64_t bigcache_hits, bigcache_misses;
  uint64_t mmap_calls, munmap_calls, madvise_calls, mremap_calls;
  uint64_t mmap_bytes, munmap_bytes, madvise_bytes;
  uint64_t committed_bytes;      /* now */
  uint64_t peak_committed_bytes; /* high-water mark */
  uint64_t superslabs;           /* SuperSlabs mapped now */
  uint64_t invalid_frees;        /* bad frees reported (warn mode) */
} hak_stats_t;
void hak_stats_get(hak_stats_t *out);
/* Human-readable report (the HAKMEM_STATS=1 exit report) to a stream. */
void hak_stats_print(FILE *f);

const char *hak_version(void);

#ifdef __cplusplus
}
#endif
#endif
