/* Options at run time (hak_option_set/get) and mallopt: the table of
 * base/config.c parses and stores; what a change implies beyond the store
 * (a new Big threshold, a new EMPTY budget, a smaller BigCache) is applied
 * here, where every layer below is in reach. */
#include "hakmem.h"
#include "backend/big.h"
#include "backend/shared_pool.h"
#include "base/config.h"
#include "base/init.h"
#include "diag/stats.h"
#include "frontend/ace.h"
#include "mem/size_class.h"

#include <errno.h>
#include <malloc.h>
#include <string.h>

static void apply(int id) {
  switch (id) {
  case HAK_OPT_BIG_THRESHOLD: hak_size_class_set_big_threshold(g_cfg.big_threshold); break;
  case HAK_OPT_EMPTY_BUDGET: {
    size_t b = __atomic_load_n(&g_cfg.empty_budget, __ATOMIC_RELAXED);
    hak_ace_set_empty_budget(b);
    if (hak_sp_empty_bytes() > b) hak_sp_trim(b, g_cfg.spare_superslabs);
    break;
  }
  case HAK_OPT_BIGCACHE_BYTES: {
    /* The bound applies at every Big free; a cache above the new one is
     * emptied now rather than at the next free. */
    size_t n, b, u, cn, cb;
    hak_big_usage(&n, &b, &u, &cn, &cb);
    if (cb > __atomic_load_n(&g_cfg.bigcache_bytes, __ATOMIC_RELAXED)) hak_bigcache_flush();
    break;
  }
  case HAK_OPT_STATS:
  case HAK_OPT_STATS_FILE:
    /* The report will be written at exit: keep stderr for it now. */
    if (g_cfg.stats) hak_stats_keep_stderr();
    break;
  default: break;
  }
}

HAK_API int hak_option_set(const char *name, const char *value) {
  hak_init();
  int id = hak_opt_find(name);
  if (id < 0) return ENOENT;
  int r = hak_opt_store(id, value, true);
  if (r == 0) apply(id);
  return r;
}

HAK_API int hak_option_get(const char *name, char *buf, size_t len) {
  hak_init();
  int id = hak_opt_find(name);
  if (id < 0) return ENOENT;
  if (!buf || !len) return ERANGE;
  char tmp[640]; /* more than any value: the longest is HAKMEM_STATS_FILE's 511 bytes */
  hak_opt_format(id, tmp, sizeof tmp);
  size_t n = strlen(tmp), k = n < len ? n : len - 1;
  memcpy(buf, tmp, k);
  buf[k] = 0;
  return n < len ? 0 : ERANGE;
}

static int set_u64(int id, uint64_t v) {
  if (hak_opt_store_u64(id, v)) return 0;
  apply(id);
  return 1;
}

/* glibc's parameters with hakmem's meanings; 1 only when the value is
 * honoured as asked (docs/CONFIG.md, "mallopt"). */
HAK_API int hak_mallopt(int param, int value) {
  hak_init();
  switch (param) {
  case M_MMAP_THRESHOLD:
    /* Only within what the slab tiers can serve: MidPool sizes never go
     * Big, and the LargePool ends at HAK_LARGE_LIMIT. */
    if (value < (int)HAK_MID_MAX || value > (int)HAK_LARGE_LIMIT) return 0;
    return set_u64(HAK_OPT_BIG_THRESHOLD, (uint64_t)value);
  case M_TRIM_THRESHOLD:
    /* EMPTY slab memory kept before the pool gives it back; -1 (glibc:
     * never trim) keeps all of it. */
    if (value < -1) return 0;
    return set_u64(HAK_OPT_EMPTY_BUDGET, value == -1 ? (uint64_t)1 << 46 : (uint64_t)value);
  case M_TOP_PAD:
    /* freed memory kept past a trim: BigCache's bound */
    if (value < 0) return 0;
    return set_u64(HAK_OPT_BIGCACHE_BYTES, (uint64_t)value);
  case M_CHECK_ACTION:
    if (value < 0 || value > 3) return 0;
    return hak_opt_store(HAK_OPT_ON_ERROR, value <= 1 ? "warn" : "abort", true) == 0;
  default: return 0;
  }
}
