/* Statistics by name (hak_stat), as JSON (hak_stats_json, HAKMEM_STATS=json)
 * and in glibc's malloc_info XML. One tree of names, walked by both the JSON
 * writer and the lookup, so every number of the JSON is a hak_stat name (its
 * path joined with dots) and the two never disagree on a name. */
#include "hakmem.h"
#include "backend/big.h"
#include "base/config.h"
#include "base/counters.h"
#include "base/init.h"
#include "base/report.h"
#include "diag/stats.h"
#include "mem/size_class.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

/* --- the tree ------------------------------------------------------------------ */

typedef struct {
  hak_sink_t *k;    /* JSON output, or NULL for a lookup */
  const char *want; /* lookup: the dotted name */
  char path[128];
  size_t plen;
  int depth;
  bool first[8];
  bool found;
  uint64_t value;
  /* JSON text not yet given to k: one sink call per buffer, not per token */
  char buf[512];
  size_t blen;
} vis_t;

static void put(vis_t *v, const char *s) {
  size_t n = v->blen;
  for (; *s; s++) {
    if (n == sizeof v->buf) {
      hak_sink_write(v->k, v->buf, n);
      n = 0;
    }
    v->buf[n++] = *s;
  }
  v->blen = n;
}

static void put_u64(vis_t *v, uint64_t x) {
  char t[24];
  hak_fmt(t, sizeof t, "%u", x);
  put(v, t);
}

static void json_key(vis_t *v, const char *key) {
  if (!v->first[v->depth]) put(v, v->depth == 1 ? ",\n  " : ", ");
  else if (v->depth == 1) put(v, "\n  ");
  v->first[v->depth] = false;
  put(v, "\"");
  put(v, key);
  put(v, "\": ");
}

static void v_open(vis_t *v, const char *key) {
  if (v->k) {
    if (key) json_key(v, key);
    put(v, "{");
  } else if (key) {
    size_t n = strlen(key);
    if (v->plen + n + 2 < sizeof v->path) {
      if (v->plen) v->path[v->plen++] = '.';
      memcpy(v->path + v->plen, key, n + 1);
      v->plen += n;
    }
  }
  v->depth++;
  v->first[v->depth] = true;
}

static void v_close(vis_t *v) {
  v->depth--;
  if (v->k) {
    put(v, v->depth == 0 ? "\n}\n" : "}");
  } else {
    while (v->plen && v->path[v->plen - 1] != '.') v->plen--;
    if (v->plen) v->plen--;
    v->path[v->plen] = 0;
  }
}

static void v_num(vis_t *v, const char *key, uint64_t x) {
  if (v->k) {
    json_key(v, key);
    put_u64(v, x);
    return;
  }
  if (v->found) return;
  size_t n = v->plen;
  if (n) {
    if (strncmp(v->want, v->path, n) || v->want[n] != '.') return;
    n++;
  }
  if (!strcmp(v->want + n, key)) {
    v->found = true;
    v->value = x;
  }
}

/* Strings are JSON only; ours need no escaping (version, mode, tier names). */
static void v_str(vis_t *v, const char *key, const char *s) {
  if (!v->k) return;
  json_key(v, key);
  put(v, "\"");
  put(v, s);
  put(v, "\"");
}

static const char *const k_tier[4] = {"tiny", "mid", "large", "big"};

static void tree(vis_t *v, const hak_snap_t *s) {
  v_open(v, NULL);
  v_str(v, "hakmem", HAK_VERSION);
  v_num(v, "schema", 1);
  v_num(v, "pid", (uint64_t)getpid());
  v_str(v, "mode", g_cfg.mode);
  v_num(v, "allocated", s->allocated);
  v_num(v, "active", s->active);
  v_num(v, "committed", s->committed);
  v_num(v, "committed_peak", s->peak);
  v_num(v, "resident", s->resident);
  v_num(v, "mapped", s->mapped);
  v_num(v, "retained", s->retained);
  v_num(v, "mallocs", s->mallocs);
  v_num(v, "frees", s->frees);
  v_num(v, "errors", hak_cnt_get(&g_stats.invalid_frees));
  v_open(v, "tier");
  for (int t = 0; t < 4; t++) {
    v_open(v, k_tier[t]);
    v_num(v, "live", s->tier_live[t]);
    v_num(v, "live_bytes", s->tier_bytes[t]);
    v_num(v, "mallocs", s->tier_mallocs[t]);
    v_num(v, "frees", s->tier_frees[t]);
    v_close(v);
  }
  v_close(v);
  v_open(v, "class");
  for (unsigned c = 0; c < HAK_NCLASS; c++) {
    char key[16];
    hak_fmt(key, sizeof key, "%u", (uint64_t)g_class[c].size);
    v_open(v, key);
    v_str(v, "tier", k_tier[g_class[c].tier]);
    v_num(v, "live", s->live[c]);
    v_num(v, "cached", s->cached[c]);
    v_num(v, "mallocs", s->alloc[c]);
    v_num(v, "frees", s->free[c]);
    v_num(v, "slabs", s->slabs[c]);
    v_num(v, "empty_slabs", s->empty[c]);
    v_num(v, "free_blocks", s->slab_free[c]);
    v_close(v);
  }
  v_close(v);
  v_open(v, "thread_cache");
  v_num(v, "blocks", s->tc_blocks);
  v_num(v, "bytes", s->tc_bytes);
  v_num(v, "refills", s->refills);
  v_num(v, "drains", s->drains);
  v_close(v);
  v_open(v, "free_in_slabs");
  v_num(v, "blocks", s->slab_free_blocks);
  v_num(v, "bytes", s->slab_free_bytes);
  v_close(v);
  v_open(v, "remote_frees");
  v_num(v, "sent", s->remote_free);
  v_num(v, "collected", s->remote_collected);
  v_close(v);
  v_open(v, "heaps");
  v_num(v, "live", s->heaps_in_use);
  v_num(v, "abandoned", s->heaps - s->heaps_in_use);
  v_num(v, "adopted", hak_cnt_get(&g_stats.heaps_adopted));
  v_num(v, "threads_started", hak_cnt_get(&g_stats.threads_started));
  v_close(v);
  v_open(v, "shared_pool");
  v_num(v, "stage1", hak_cnt_get(&g_stats.sp_stage[0]));
  v_num(v, "stage2", hak_cnt_get(&g_stats.sp_stage[1]));
  v_num(v, "stage3", hak_cnt_get(&g_stats.sp_stage[2]));
  v_num(v, "released", hak_cnt_get(&g_stats.sp_release));
  v_num(v, "decommits", hak_cnt_get(&g_stats.sp_decommit));
  v_num(v, "refaults", hak_cnt_get(&g_stats.sp_refaults));
  v_num(v, "empty_slabs", s->empty_slabs);
  v_num(v, "empty_bytes", s->empty_bytes);
  v_num(v, "superslabs", atomic_load_explicit(&g_stats.superslabs, memory_order_relaxed));
  v_num(v, "superslabs_retired", hak_cnt_get(&g_stats.sp_ss_unmapped));
  v_num(v, "hugepage_superslabs", hak_cnt_get(&g_stats.ss_hugepage));
  v_close(v);
  v_open(v, "big");
  v_num(v, "live", s->big_n);
  v_num(v, "live_bytes", s->big_b);
  v_num(v, "cached", s->bc_n);
  v_num(v, "cached_bytes", s->bc_b);
  v_num(v, "cache_hits", hak_cnt_get(&g_stats.bigcache_hits));
  v_num(v, "cache_misses", hak_cnt_get(&g_stats.bigcache_misses));
  v_num(v, "mremap_grows", hak_cnt_get(&g_stats.big_mremaps));
  v_close(v);
  v_open(v, "os");
  static const char *const call[4] = {"mmap", "munmap", "madvise", "mremap"};
  hak_counter_t *calls[4] = {&g_stats.mmap_calls, &g_stats.munmap_calls, &g_stats.madvise_calls,
                             &g_stats.mremap_calls};
  hak_counter_t *bytes[4] = {&g_stats.mmap_bytes, &g_stats.munmap_bytes, &g_stats.madvise_bytes, NULL};
  for (int i = 0; i < 4; i++) {
    v_open(v, call[i]);
    v_num(v, "calls", hak_cnt_get(calls[i]));
    if (bytes[i]) v_num(v, "bytes", hak_cnt_get(bytes[i]));
    v_close(v);
  }
  v_num(v, "arenas", hak_cnt_get(&g_stats.arenas));
  v_close(v);
  v_open(v, "decay");
  v_num(v, "returns", hak_cnt_get(&g_stats.decay_returns));
  v_num(v, "bytes", hak_cnt_get(&g_stats.decay_bytes));
  v_num(v, "background_ticks", hak_cnt_get(&g_stats.bg_wakeups));
  v_close(v);
  v_num(v, "guarded", hak_cnt_get(&g_stats.guard_allocs));
  v_open(v, "prof"); /* the heap profiler (HAKMEM_PROF) */
  v_num(v, "dumps", hak_cnt_get(&g_stats.prof_dumps));
  v_num(v, "dropped", hak_cnt_get(&g_stats.prof_dropped));
  v_close(v);
  v_open(v, "purge"); /* whole free pages of slabs in use (frontend/purge.c) */
  v_num(v, "purges", hak_cnt_get(&g_stats.slab_purges));
  v_num(v, "bytes", hak_cnt_get(&g_stats.slab_purged_bytes));
  v_num(v, "reused_bytes", hak_cnt_get(&g_stats.slab_unpurged_bytes));
  v_close(v);
  v_num(v, "ace_updates", hak_cnt_get(&g_stats.ace_updates));
  v_close(v);
}

void hak_snap_json(hak_sink_t *k, const hak_snap_t *s) {
  vis_t v;
  memset(&v, 0, sizeof v);
  v.k = k;
  tree(&v, s);
  hak_sink_write(k, v.buf, v.blen);
}

/* Which parts of the snapshot a name needs beyond the counters. */
static unsigned flags_for(const char *name) {
  unsigned f = 0;
  if (!strcmp(name, "active") || !strncmp(name, "class.", 6) || !strncmp(name, "free_in_slabs.", 14))
    f |= HAK_SNAP_WALK;
  if (!strcmp(name, "resident")) f |= HAK_SNAP_RESIDENT;
  return f;
}

HAK_API int hak_stat(const char *name, uint64_t *value) {
  if (!name || !value) return -1;
  hak_init();
  vis_t v;
  memset(&v, 0, sizeof v);
  v.want = name;
  hak_snap_lock();
  hak_snap_take(&g_snap, flags_for(name));
  tree(&v, &g_snap);
  hak_snap_unlock();
  if (!v.found) return -1;
  *value = v.value;
  return 0;
}

/* --- malloc_info ----------------------------------------------------------------- */

/* glibc's shape: one <heap> (the slab tiers, which every thread shares)
 * with its free blocks by size class, thread-cache blocks as "fast", free
 * blocks in slabs and EMPTY slabs as "rest"; then the totals, where the
 * live Big mappings are glibc's "mmap" and BigCache joins "rest". */
static void info(hak_sink_t *k, const hak_snap_t *s) {
  uint64_t big_all = s->big_b + s->bc_b;
  uint64_t arena = s->committed > big_all ? s->committed - big_all : 0;
  uint64_t rest_n = s->slab_free_blocks + s->empty_slabs, rest_b = s->slab_free_bytes + s->empty_bytes;
  hak_sink_printf(k, "<malloc version=\"1\">\n<heap nr=\"0\">\n<sizes>\n");
  uint32_t from = 1;
  for (unsigned c = 0; c < HAK_NCLASS; c++) {
    uint64_t n = s->cached[c] + s->slab_free[c];
    if (n)
      hak_sink_printf(k, "  <size from=\"%u\" to=\"%u\" total=\"%u\" count=\"%u\"/>\n", (uint64_t)from,
                      (uint64_t)g_class[c].size, n * g_class[c].size, n);
    from = g_class[c].size + 1;
  }
  if (s->empty_slabs)
    hak_sink_printf(k, "  <unsorted from=\"%u\" to=\"%u\" total=\"%u\" count=\"%u\"/>\n", (uint64_t)HAK_SLOT_SIZE,
                    (uint64_t)(HAK_SLOTS - 1) * HAK_SLOT_SIZE, s->empty_bytes, s->empty_slabs);
  hak_sink_printf(k, "</sizes>\n<total type=\"fast\" count=\"%u\" size=\"%u\"/>\n", s->tc_blocks, s->tc_bytes);
  hak_sink_printf(k, "<total type=\"rest\" count=\"%u\" size=\"%u\"/>\n", rest_n, rest_b);
  hak_sink_printf(k, "<system type=\"current\" size=\"%u\"/>\n<system type=\"max\" size=\"%u\"/>\n", arena,
                  s->peak);
  hak_sink_printf(k, "<aspace type=\"total\" size=\"%u\"/>\n<aspace type=\"mprotect\" size=\"%u\"/>\n</heap>\n",
                  arena, arena);
  hak_sink_printf(k, "<total type=\"fast\" count=\"%u\" size=\"%u\"/>\n", s->tc_blocks, s->tc_bytes);
  hak_sink_printf(k, "<total type=\"rest\" count=\"%u\" size=\"%u\"/>\n", rest_n + s->bc_n, rest_b + s->bc_b);
  hak_sink_printf(k, "<total type=\"mmap\" count=\"%u\" size=\"%u\"/>\n", s->big_n, s->big_b);
  hak_sink_printf(k, "<system type=\"current\" size=\"%u\"/>\n<system type=\"max\" size=\"%u\"/>\n",
                  s->committed, s->peak);
  hak_sink_printf(k, "<aspace type=\"total\" size=\"%u\"/>\n<aspace type=\"mprotect\" size=\"%u\"/>\n</malloc>\n",
                  s->mapped, s->committed);
}

HAK_API int hak_malloc_info(int options, FILE *fp) {
  if (options != 0) return EINVAL;
  if (!fp) return EINVAL;
  hak_init();
  hak_sink_t k = {.fd = -1, .f = fp};
  hak_report_lock();
  hak_snap_lock();
  hak_snap_take(&g_snap, HAK_SNAP_WALK);
  info(&k, &g_snap);
  hak_snap_unlock();
  /* fwrite may allocate (a stream's first buffer): after the snapshot's locks */
  hak_sink_flush(&k);
  hak_report_unlock();
  return 0;
}
