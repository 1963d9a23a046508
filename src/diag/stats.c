/* Statistics: sums the per-heap counters of every heap ever made (heaps are
 * recycled, never freed, so exited threads still count) with the global ones. */
#include "diag/stats.h"
#include "hakmem.h"
#include "backend/big.h"
#include "backend/shared_pool.h"
#include "base/config.h"
#include "base/counters.h"
#include "base/lock.h"
#include "base/report.h"
#include "frontend/ace.h"
#include "frontend/heap.h"
#include "mem/size_class.h"

#include <fcntl.h>
#include <stdarg.h>
#include <string.h>
#include <unistd.h>

typedef struct {
  uint64_t alloc[HAK_NCLASS], free[HAK_NCLASS], refill[HAK_NCLASS], drain[HAK_NCLASS];
  uint64_t cached[HAK_NCLASS]; /* blocks in live threads' SLLs */
  uint64_t remote_out[HAK_NCLASS];
  uint64_t remote_free, remote_collected;
  uint64_t heaps, heaps_in_use;
} heap_sums_t;

static void sum_heaps(heap_sums_t *s) {
  memset(s, 0, sizeof *s);
  for (hak_heap_t *h = hak_heap_list(); h; h = h->all_next) {
    for (unsigned c = 0; c < HAK_NCLASS; c++) {
      /* The SLL's balance: count = refilled - popped + pushed - drained,
       * and popped = allocs - direct, so the local frees (pushes) follow. */
      uint64_t count = h == &g_empty_heap ? 0 : hak_sll_count(&h->sll[c]);
      const hak_sll_t *l = &h->sll[c];
      uint64_t pushed = count + h->n_drained[c] + (l->n_alloc - l->n_direct) - h->n_refilled[c];
      s->alloc[c] += l->n_alloc;
      s->free[c] += pushed + h->n_remote_out[c];
      s->remote_free += h->n_remote_out[c];
      s->remote_collected += h->n_remote_in[c];
      s->refill[c] += h->n_refill[c];
      s->drain[c] += h->n_drain[c];
      s->cached[c] += count;
    }
    s->heaps++;
    s->heaps_in_use += h->in_use != 0;
  }
  for (unsigned c = 0; c < HAK_NCLASS; c++) { /* threads that never allocated */
    uint64_t n = hak_heap_remote_out_noheap(c);
    s->free[c] += n;
    s->remote_free += n;
  }
}

/* Frees counted by the fast path are local ones; remote frees are counted by
 * the owner when it collects them, so per-class frees add both. */
static void fill(hak_stats_t *o, heap_sums_t *s) {
  memset(o, 0, sizeof *o);
  for (unsigned c = 0; c < HAK_NCLASS; c++) {
    o->mallocs[g_class[c].tier] += s->alloc[c];
    o->frees[g_class[c].tier] += s->free[c];
    o->refills += s->refill[c];
    o->drains += s->drain[c];
  }
  o->mallocs[HAK_TIER_BIG] = hak_cnt_get(&g_stats.big_allocs);
  o->frees[HAK_TIER_BIG] = hak_cnt_get(&g_stats.big_frees);
  o->remote_frees = s->remote_free;
  for (int i = 0; i < 3; i++) o->sp_stage[i] = hak_cnt_get(&g_stats.sp_stage[i]);
  o->sp_release = hak_cnt_get(&g_stats.sp_release);
  o->bigcache_hits = hak_cnt_get(&g_stats.bigcache_hits);
  o->bigcache_misses = hak_cnt_get(&g_stats.bigcache_misses);
  o->mmap_calls = hak_cnt_get(&g_stats.mmap_calls);
  o->munmap_calls = hak_cnt_get(&g_stats.munmap_calls);
  o->madvise_calls = hak_cnt_get(&g_stats.madvise_calls);
  o->mremap_calls = hak_cnt_get(&g_stats.mremap_calls);
  o->mmap_bytes = hak_cnt_get(&g_stats.mmap_bytes);
  o->munmap_bytes = hak_cnt_get(&g_stats.munmap_bytes);
  o->madvise_bytes = hak_cnt_get(&g_stats.madvise_bytes);
  o->committed_bytes = atomic_load(&g_stats.committed_bytes);
  o->peak_committed_bytes = atomic_load(&g_stats.peak_committed_bytes);
  o->superslabs = atomic_load(&g_stats.superslabs);
  o->invalid_frees = hak_cnt_get(&g_stats.invalid_frees);
}

/* The sums are large: kept off the stack, in static buffers under locks that
 * a fork child resets (a report running in another thread at fork time). */
static heap_sums_t g_sums;
static hak_lock_t g_sums_lock = HAK_LOCK_INIT;

HAK_API void hak_stats_get(hak_stats_t *out) {
  hak_lock(&g_sums_lock);
  sum_heaps(&g_sums);
  fill(out, &g_sums);
  hak_unlock(&g_sums_lock);
}

/* --- the report ------------------------------------------------------------ */

/* The report is built in a static buffer (no malloc at exit) and written
 * with one write(2), or to a FILE for hak_stats_print. */
typedef struct {
  int fd; /* write(2) target, or -1 for the FILE */
  FILE *f;
  size_t len;
} sink_t;

static char g_report[24576];
static hak_lock_t g_report_lock = HAK_LOCK_INIT;

static void out(sink_t *k, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  if (k->len < sizeof g_report) k->len += hak_vfmt(g_report + k->len, sizeof g_report - k->len, fmt, ap);
  if (k->len >= sizeof g_report) k->len = sizeof g_report - 1;
  va_end(ap);
}

static void flush(sink_t *k) {
  const char *p = g_report;
  size_t n = k->len;
  if (k->f) {
    fwrite(p, 1, n, k->f);
    fflush(k->f);
    return;
  }
  while (n) {
    ssize_t w = write(k->fd, p, n);
    if (w <= 0) return;
    p += w;
    n -= (size_t)w;
  }
}

static const char *tier_name[4] = {"tiny", "mid", "large", "big"};

static void report(sink_t *k) {
  heap_sums_t *s = &g_sums;
  hak_stats_t o;
  sum_heaps(s);
  fill(&o, s);
  size_t big_n, big_b, bc_n, bc_b;
  hak_big_usage(&big_n, &big_b, &bc_n, &bc_b);
  out(k, "hakmem %s statistics (pid %u, mode %s, learn %u)\n", HAK_VERSION, (uint64_t)getpid(),
      g_cfg.mode, (uint64_t)g_cfg.learn);
  out(k, "  %s %s %s %s %s %s %s\n", "class     size", "     mallocs", "       frees",
      "  refills", "   drains", " cached", "   cap");
  for (unsigned c = 0; c < HAK_NCLASS; c++) {
    if (!s->alloc[c] && !s->free[c]) continue;
    char line[160];
    hak_fmt(line, sizeof line, "  %s", tier_name[g_class[c].tier]);
    out(k, "%s", line);
    char num[32];
    size_t n = hak_fmt(num, sizeof num, "%u", (uint64_t)g_class[c].size);
    for (size_t i = strlen(tier_name[g_class[c].tier]) + n; i < 14; i++) out(k, " ");
    out(k, "%s", num);
    uint64_t vals[6] = {s->alloc[c], s->free[c], s->refill[c], s->drain[c], s->cached[c],
                        hak_policy()->cap[c]};
    const int width[6] = {13, 13, 10, 10, 8, 7};
    for (int v = 0; v < 6; v++) {
      n = hak_fmt(num, sizeof num, "%u", vals[v]);
      for (size_t i = n; i < (size_t)width[v]; i++) out(k, " ");
      out(k, "%s", num);
    }
    out(k, "\n");
  }
  for (int t = 0; t < 4; t++)
    out(k, "  tier %s: mallocs %u, frees %u\n", tier_name[t], o.mallocs[t], o.frees[t]);
  out(k, "  remote frees: %u sent, %u collected by their owners\n", s->remote_free, s->remote_collected);
  out(k, "  shared pool: stage1 (EMPTY reuse) %u, stage2 (UNUSED slot) %u, stage3 (new SuperSlab) %u, "
         "released %u, decommitted %u, SuperSlabs now %u (huge pages asked for %u), unmapped %u, "
         "EMPTY now %u KiB\n",
      o.sp_stage[0], o.sp_stage[1], o.sp_stage[2], o.sp_release,
      hak_cnt_get(&g_stats.sp_decommit), o.superslabs, hak_cnt_get(&g_stats.ss_hugepage),
      hak_cnt_get(&g_stats.sp_ss_unmapped),
      (uint64_t)(hak_sp_empty_bytes() >> 10));
  out(k, "  big: allocs %u, frees %u, live %u (%u KiB), BigCache hits %u, misses %u, "
         "cached %u (%u KiB), mremap grows %u\n",
      o.mallocs[3], o.frees[3], (uint64_t)big_n, (uint64_t)(big_b >> 10), o.bigcache_hits,
      o.bigcache_misses, (uint64_t)bc_n, (uint64_t)(bc_b >> 10), hak_cnt_get(&g_stats.big_mremaps));
  out(k, "  os: mmap %u (%u KiB), munmap %u (%u KiB), madvise %u (%u KiB), mremap %u\n",
      o.mmap_calls, o.mmap_bytes >> 10, o.munmap_calls, o.munmap_bytes >> 10, o.madvise_calls,
      o.madvise_bytes >> 10, o.mremap_calls);
  out(k, "  memory: committed %u KiB, peak %u KiB; threads %u (heaps %u, in use %u, adopted %u); "
         "ACE updates %u; invalid frees %u\n",
      o.committed_bytes >> 10, o.peak_committed_bytes >> 10,
      hak_cnt_get(&g_stats.threads_started), s->heaps, s->heaps_in_use,
      hak_cnt_get(&g_stats.heaps_adopted), hak_cnt_get(&g_stats.ace_updates), o.invalid_frees);
  uint64_t m = o.mallocs[0] + o.mallocs[1] + o.mallocs[2] + o.mallocs[3];
  uint64_t f = o.frees[0] + o.frees[1] + o.frees[2] + o.frees[3];
  out(k, "hakmem-stats: mallocs=%u frees=%u tiny=%u mid=%u large=%u big=%u remote_frees=%u "
         "refills=%u drains=%u sp_stage1=%u sp_stage2=%u sp_stage3=%u mmap=%u munmap=%u "
         "madvise=%u mremap=%u committed_kib=%u peak_committed_kib=%u bigcache_hits=%u "
         "invalid_frees=%u\n",
      m, f, o.mallocs[0], o.mallocs[1], o.mallocs[2], o.mallocs[3], o.remote_frees, o.refills,
      o.drains, o.sp_stage[0], o.sp_stage[1], o.sp_stage[2], o.mmap_calls, o.munmap_calls,
      o.madvise_calls, o.mremap_calls, o.committed_bytes >> 10, o.peak_committed_bytes >> 10,
      o.bigcache_hits, o.invalid_frees);
}

static void report_to(int fd, FILE *f) {
  sink_t k = {fd, f, 0};
  hak_lock(&g_report_lock);
  hak_lock(&g_sums_lock);
  report(&k);
  hak_unlock(&g_sums_lock);
  flush(&k);
  hak_unlock(&g_report_lock);
}

void hak_stats_reset_locks(void) {
  hak_lock_reset(&g_report_lock);
  hak_lock_reset(&g_sums_lock);
}

/* Programs such as coreutils close stderr before exit: the report goes to a
 * copy of it taken at start-up (hak_stats_keep_stderr). */
static int g_report_fd = 2;
void hak_stats_keep_stderr(void) {
  int fd = fcntl(2, F_DUPFD_CLOEXEC, 100);
  if (fd >= 0) g_report_fd = fd;
}
void hak_stats_report_exit(void) { report_to(g_report_fd, NULL); }
HAK_API void hak_stats_print(FILE *f) { report_to(-1, f); }
HAK_API void hak_malloc_stats(void) { report_to(2, NULL); }

HAK_API struct hak_mallinfo hak_mallinfo2(void) {
  struct hak_mallinfo mi;
  memset(&mi, 0, sizeof mi);
  hak_lock(&g_sums_lock);
  sum_heaps(&g_sums);
  size_t in_use = 0;
  for (unsigned c = 0; c < HAK_NCLASS; c++) {
    uint64_t live = g_sums.alloc[c] > g_sums.free[c] ? g_sums.alloc[c] - g_sums.free[c] : 0;
    in_use += (size_t)live * g_class[c].size;
  }
  hak_unlock(&g_sums_lock);
  size_t big_n, big_b, bc_n, bc_b;
  hak_big_usage(&big_n, &big_b, &bc_n, &bc_b);
  size_t committed = atomic_load(&g_stats.committed_bytes);
  mi.arena = committed;
  mi.ordblks = hak_sp_empty_slabs();
  mi.hblks = big_n;
  mi.hblkhd = big_b;
  mi.usmblks = atomic_load(&g_stats.peak_committed_bytes);
  mi.uordblks = in_use + big_b;
  mi.fordblks = committed > mi.uordblks ? committed - mi.uordblks : 0;
  mi.keepcost = hak_sp_empty_bytes() + bc_b;
  return mi;
}
