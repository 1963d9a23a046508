/* Configuration: HAKMEM_* environment variables, read once at start-up
 * without allocating. Every variable is documented in docs/CONFIG.md. */
#ifndef HAK_CONFIG_H
#define HAK_CONFIG_H
#include "base/common.h"

#pragma GCC visibility push(hidden) /* internal: no GOT indirection */

enum { HAK_THP_OFF = 0, HAK_THP_ON = 1, HAK_THP_AUTO = 2 };

typedef struct hak_config {
  int stats;              /* HAKMEM_STATS: print the report at exit */
  int on_error_warn;      /* HAKMEM_ON_ERROR=warn: report bad frees and continue */
  int learn;              /* HAKMEM_LEARN: ACE adapts the policy */
  int madv_free;          /* HAKMEM_MADV_FREE: MADV_FREE instead of MADV_DONTNEED */
  int thp;                /* HAKMEM_THP: HAK_THP_OFF, HAK_THP_ON (SuperSlabs and big blocks), HAK_THP_AUTO */
  int crash_report;       /* HAKMEM_CRASH_REPORT: signal handler for crash reports */
  int debug;              /* HAKMEM_DEBUG: trace (debug builds only) */
  size_t thp_auto_bytes;  /* HAKMEM_THP_AUTO_BYTES: SuperSlab bytes mapped before auto asks for huge pages */
  size_t big_threshold;   /* HAKMEM_BIG_THRESHOLD: above this, own mapping */
  uint32_t fast_cap;      /* HAKMEM_FAST_CAP: TLS SLL capacity, blocks (tiny) */
  uint32_t fast_cap_bytes; /* HAKMEM_FAST_CAP_BYTES: TLS SLL capacity in bytes (mid/large) */
  uint32_t refill_bytes;  /* HAKMEM_REFILL_BYTES: bytes carved per refill */
  double w_max;           /* HAKMEM_W_MAX: a request may take a class up to w_max times its size */
  size_t empty_budget;    /* HAKMEM_EMPTY_BUDGET: EMPTY slab bytes kept committed */
  size_t spare_superslabs; /* HAKMEM_SPARE_SUPERSLABS: wholly unused SuperSlabs kept mapped */
  size_t bigcache_bytes;  /* HAKMEM_BIGCACHE_BYTES: freed big mappings kept for reuse */
  uint32_t bigcache_ms;   /* HAKMEM_BIGCACHE_MS: how long a cached big mapping may wait */
  const char *mode;       /* HAKMEM_MODE: fast | balanced | low-memory */
} hak_config_t;

extern hak_config_t g_cfg;
extern const bool g_hak_hardened; /* a HARDENED=1 build (tests adapt to it) */
void hak_config_init(void);

#pragma GCC visibility pop

#endif
