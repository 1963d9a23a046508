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

/* mallinfo2-compatible figures (glibc's struct mallinfo2 layout), from the
 * same snapshot as hak_stat and malloc_info, with glibc's meanings: the
 * slab tiers are the "arena", Big blocks the "mmapped" chunks. */
struct hak_mallinfo {
  size_t arena;    /* bytes committed outside live Big mappings: the slab tiers and metadata */
  size_t ordblks;  /* free slabs (EMPTY), kept for reuse */
  size_t smblks;   /* free blocks in the thread caches ("fastbins") */
  size_t hblks;    /* live Big mappings */
  size_t hblkhd;   /* bytes in live Big mappings */
  size_t usmblks;  /* peak committed bytes */
  size_t fsmblks;  /* bytes of the free blocks in the thread caches */
  size_t uordblks; /* bytes in live blocks of the slab tiers (hak_stat "allocated" less Big) */
  size_t fordblks; /* arena - uordblks */
  size_t keepcost; /* bytes that malloc_trim(0) could release: EMPTY slabs and BigCache */
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

/* Statistics by name: 0 and the value, or -1 for a name that does not
 * exist. Every number of hak_stats_json's object is a name, its path joined
 * with dots: "allocated", "active", "resident", "mapped", "retained",
 * "tier.big.live", "class.1024.mallocs", "os.mmap.bytes", "decay.returns",
 * "heaps.abandoned", "errors", ... (docs/CONFIG.md lists them). Takes locks
 * and reads /proc for "resident": not for a signal handler. */
int hak_stat(const char *name, uint64_t *value);
/* Writes the statistics as one JSON object and a newline to fd, with
 * write(2) from a static buffer (no allocation). 0, or -1 if a write
 * failed. */
int hak_stats_json(int fd);
/* The text report, or the JSON object if json is nonzero, handed to
 * write_cb in NUL-terminated pieces (to stderr when write_cb is NULL).
 * write_cb must not call back into the statistics. 0, or -1 if a write to
 * stderr failed. */
int hak_stats_write(void (*write_cb)(void *arg, const char *text), void *arg, int json);

/* glibc's mallopt and malloc_info with hakmem's meanings (the standard
 * names of libhakmem.so/.a call these): hak_mallopt returns 1 when it
 * honours the parameter and value (M_MMAP_THRESHOLD, M_TRIM_THRESHOLD,
 * M_TOP_PAD, M_CHECK_ACTION), 0 otherwise; hak_malloc_info writes glibc's
 * XML shape and returns 0, or EINVAL when options is not 0. */
int hak_mallopt(int param, int value);
int hak_malloc_info(int options, FILE *fp);

/* Options at run time. name: "HAKMEM_EMPTY_BUDGET" or "EMPTY_BUDGET";
 * value as the environment variable would spell it ("64m"). Only options
 * that can change safely while the program runs may be set (budgets,
 * delays, thresholds, on-error, statistics). Return 0, ENOENT for an
 * unknown name, EPERM for a start-up-only option, EINVAL for a value it
 * does not accept (nothing changes then). hak_option_get works for every
 * option and writes the value in force, NUL-terminated: 0, ENOENT, or
 * ERANGE when len is too small (buf then holds what fits). */
int hak_option_set(const char *name, const char *value);
int hak_option_get(const char *name, char *buf, size_t len);

/* Heap profiler (HAKMEM_PROF=1, docs/CONFIG.md "Heap profiling"): writes
 * the sampled live heap and all allocations since start as a gperftools
 * heap profile (google-pprof --text PROGRAM FILE reads it) to path, or to
 * HAKMEM_PROF_PREFIX.PID.SEQ.heap when path is NULL. 0, or -1 with errno
 * (ENOSYS when profiling is off). Not for a signal handler: use
 * HAKMEM_PROF_SIGNAL. */
int hak_prof_dump(const char *path);

/* jemalloc's non-standard API, with its contracts (jemalloc(3)); libhakmem.so
 * and libhakmem.a also export these under jemalloc's names (mallocx,
 * rallocx, xallocx, sallocx, dallocx, sdallocx, nallocx, mallctl,
 * mallctlnametomib, mallctlbymib, malloc_stats_print), so that a program
 * linked with libjemalloc runs wholly on hakmem under LD_PRELOAD. flags:
 * MALLOCX_LG_ALIGN(la) in the low 6 bits and MALLOCX_ZERO (0x40) are
 * honoured; tcache and arena bits are ignored. xallocx never resizes (it
 * returns the real size). mallctl knows: version, epoch, config.stats,
 * opt.prof, prof.dump, background_thread, arenas.narenas, arenas.page,
 * arenas.quantum, arena.<i>.purge (malloc_trim(0)), thread.tcache.flush,
 * stats.allocated, stats.active, stats.resident, stats.mapped and
 * stats.retained (as of the last write to epoch); ENOENT for the rest.
 * malloc_stats_print writes the text report, or the JSON object when opts
 * holds 'J'. docs/CONFIG.md, "jemalloc's API". */
void *hak_mallocx(size_t size, int flags);
void *hak_rallocx(void *p, size_t size, int flags);
size_t hak_xallocx(void *p, size_t size, size_t extra, int flags);
size_t hak_sallocx(const void *p, int flags);
void hak_dallocx(void *p, int flags);
void hak_sdallocx(void *p, size_t size, int flags);
size_t hak_nallocx(size_t size, int flags);
int hak_mallctl(const char *name, void *oldp, size_t *oldlenp, void *newp, size_t newlen);
int hak_mallctlnametomib(const char *name, size_t *mibp, size_t *miblenp);
int hak_mallctlbymib(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp, void *newp, size_t newlen);
void hak_malloc_stats_print(void (*write_cb)(void *arg, const char *text), void *arg, const char *opts);

const char *hak_version(void);

#ifdef __cplusplus
}
#endif
#endif
