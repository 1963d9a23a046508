/* Statistics: sums the per-heap counters of every heap ever made (heaps are
 * recycled, never freed, so exited threads still count) with the global
 * ones, into one snapshot that every reader shares; the text report; the
 * exit report and HAKMEM_STATS_SIGNAL. Nothing here allocates: static
 * buffers, write(2). */
#include "diag/stats.h"
#include "hakmem.h"
#include "backend/big.h"
#include "backend/shared_pool.h"
#include "base/config.h"
#include "base/counters.h"
#include "base/init.h"
#include "base/lock.h"
#include "base/report.h"
#include "frontend/ace.h"
#include "frontend/heap.h"
#include "mem/registry.h"
#include "os/os.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdarg.h>
#include <string.h>
#include <unistd.h>

hak_snap_t g_snap;
static hak_lock_t g_snap_lock = HAK_LOCK_INIT;
void hak_snap_lock(void) { hak_lock(&g_snap_lock); }
void hak_snap_unlock(void) { hak_unlock(&g_snap_lock); }

/* --- the snapshot ------------------------------------------------------------ */

static void sum_heaps(hak_snap_t *s) {
  for (hak_heap_t *h = hak_heap_list(); h; h = h->all_next) {
    for (unsigned c = 0; c < HAK_NCLASS; c++) {
      /* The SLL's balance: count = refilled - popped + pushed - drained,
       * and popped = allocs - direct, so the local frees (pushes) follow. */
      uint64_t count = h == &g_empty_heap ? 0 : hak_sll_count(&h->sll[c]);
      const hak_sll_t *l = &h->sll[c];
      uint64_t allocs = hak_sll_allocs(h, c);
      uint64_t pushed = count + h->n_drained[c] + (allocs - l->n_direct) - h->n_refilled[c];
      s->alloc[c] += allocs;
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

/* Slabs per class and state, from the SuperSlab headers the registry names.
 * The Big lock keeps the other threads' Big operations (which move arena
 * chunks, where SuperSlabs live too) out meanwhile; SuperSlabs stay mapped
 * in their arenas. The descriptors are read without their owners' locks: a
 * slab that changes state during the walk is counted in one state or the
 * other. Only the registry's pages that ever held a bit are read
 * (g_registry_pages): the rest of its 8 MiB is the zero page. */
static void walk_superslabs(hak_snap_t *s) {
  hak_big_lock();
  for (size_t w = 0; w < HAK_REG_WORDS; w++) {
    size_t pg = w / HAK_REG_PAGE_WORDS;
    if (w % HAK_REG_PAGE_WORDS == 0 &&
        !((atomic_load_explicit(&g_registry_pages[pg >> 6], memory_order_acquire) >> (pg & 63)) & 1)) {
      w += HAK_REG_PAGE_WORDS - 1; /* a page no region was ever registered in */
      continue;
    }
    uint64_t bits = atomic_load_explicit(&g_registry[w], memory_order_acquire);
    while (bits) {
      unsigned b = (unsigned)__builtin_ctzll(bits);
      bits &= bits - 1;
      uintptr_t a = ((uintptr_t)w * 64 + b) << HAK_SS_SHIFT;
      if (!hak_registry_test(a)) continue;
      const volatile hak_region_t *r = (const volatile hak_region_t *)a;
      if (r->magic != HAK_REGION_MAGIC || r->kind != HAK_REGION_SLABS) continue;
      hak_ss_t *ss = (hak_ss_t *)a;
      for (unsigned i = 1; i < HAK_SLOTS;) {
        const volatile hak_slab_t *sl = hak_ss_slab(ss, i);
        unsigned n = sl->geo.nslots, cls = sl->geo.cls, st = sl->pool.state;
        if (n == 0 || n > HAK_SLOTS - i || cls >= HAK_NCLASS) {
          i++;
          continue;
        }
        if (st == HAK_SLOT_ACTIVE) s->slabs[cls]++;
        else if (st == HAK_SLOT_EMPTY) s->empty[cls]++;
        i += n;
      }
    }
  }
  hak_big_unlock();
}

/* The process's resident set from /proc/self/statm (the whole process, not
 * only hakmem's memory): open, read, close, no allocation. 0 if unreadable. */
static uint64_t read_resident(void) {
  int saved = errno;
  int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
  uint64_t pages = 0;
  if (fd >= 0) {
    char buf[128];
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n > 0) {
      buf[n] = 0;
      const char *p = buf;
      while (*p && *p != ' ') p++; /* size */
      while (*p == ' ') p++;
      while (*p >= '0' && *p <= '9') pages = pages * 10 + (uint64_t)(*p++ - '0');
    }
  }
  errno = saved;
  long psz = sysconf(_SC_PAGESIZE);
  return pages * (uint64_t)(psz > 0 ? psz : HAK_PAGE);
}

void hak_snap_take(hak_snap_t *s, unsigned flags) {
  memset(s, 0, sizeof *s);
  s->flags = flags;
  sum_heaps(s);
  size_t big_n, big_b, big_u, bc_n, bc_b;
  hak_big_usage(&big_n, &big_b, &big_u, &bc_n, &bc_b);
  s->big_n = big_n, s->big_b = big_b, s->bc_n = bc_n, s->bc_b = bc_b;
  if (flags & HAK_SNAP_WALK) walk_superslabs(s);
  for (unsigned c = 0; c < HAK_NCLASS; c++) {
    const hak_class_info_t *ci = &g_class[c];
    s->live[c] = s->alloc[c] > s->free[c] ? s->alloc[c] - s->free[c] : 0;
    s->tier_live[ci->tier] += s->live[c];
    s->tier_bytes[ci->tier] += s->live[c] * ci->size;
    s->tier_mallocs[ci->tier] += s->alloc[c];
    s->tier_frees[ci->tier] += s->free[c];
    s->refills += s->refill[c];
    s->drains += s->drain[c];
    s->tc_blocks += s->cached[c];
    s->tc_bytes += s->cached[c] * ci->size;
    if (flags & HAK_SNAP_WALK) {
      uint64_t cap = s->slabs[c] * ci->capacity, used = s->live[c] + s->cached[c];
      s->slab_free[c] = cap > used ? cap - used : 0;
      s->slab_free_blocks += s->slab_free[c];
      s->slab_free_bytes += s->slab_free[c] * ci->size;
      s->active += s->slabs[c] * ci->slots * HAK_SLOT_SIZE;
    }
  }
  /* A Big block counts its usable bytes (what malloc_usable_size says),
   * its run whole in active. */
  s->tier_live[HAK_TIER_BIG] = big_n;
  s->tier_bytes[HAK_TIER_BIG] = big_u;
  s->tier_mallocs[HAK_TIER_BIG] = hak_cnt_get(&g_stats.big_allocs);
  s->tier_frees[HAK_TIER_BIG] = hak_cnt_get(&g_stats.big_frees);
  if (flags & HAK_SNAP_WALK) s->active += big_b;
  for (int t = 0; t < 4; t++) {
    s->allocated += s->tier_bytes[t];
    s->mallocs += s->tier_mallocs[t];
    s->frees += s->tier_frees[t];
  }
  s->committed = atomic_load_explicit(&g_stats.committed_bytes, memory_order_relaxed);
  s->peak = atomic_load_explicit(&g_stats.peak_committed_bytes, memory_order_relaxed);
  /* Address space hakmem holds: what it mapped less what it unmapped (an
   * arena's reservation counts whole; mremap's size changes are not in these
   * counters). */
  uint64_t mm = hak_cnt_get(&g_stats.mmap_bytes), mu = hak_cnt_get(&g_stats.munmap_bytes);
  s->mapped = mm > mu ? mm - mu : 0;
  if (s->mapped < s->committed) s->mapped = s->committed;
  s->retained = s->mapped - s->committed;
  s->empty_bytes = hak_sp_empty_bytes();
  s->empty_slabs = hak_sp_empty_slabs();
  if (flags & HAK_SNAP_RESIDENT) s->resident = read_resident();
}

/* --- hak_stats_get and mallinfo2 -------------------------------------------- */

static void fill(hak_stats_t *o, const hak_snap_t *s) {
  memset(o, 0, sizeof *o);
  for (int t = 0; t < 4; t++) {
    o->mallocs[t] = s->tier_mallocs[t];
    o->frees[t] = s->tier_frees[t];
  }
  o->refills = s->refills;
  o->drains = s->drains;
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
  o->committed_bytes = s->committed;
  o->peak_committed_bytes = s->peak;
  o->superslabs = atomic_load_explicit(&g_stats.superslabs, memory_order_relaxed);
  o->invalid_frees = hak_cnt_get(&g_stats.invalid_frees);
}

HAK_API void hak_stats_get(hak_stats_t *out) {
  hak_lock(&g_snap_lock);
  hak_snap_take(&g_snap, 0);
  fill(out, &g_snap);
  hak_unlock(&g_snap_lock);
}

HAK_API struct hak_mallinfo hak_mallinfo2(void) {
  struct hak_mallinfo mi;
  memset(&mi, 0, sizeof mi);
  hak_lock(&g_snap_lock);
  const hak_snap_t *s = &g_snap;
  hak_snap_take(&g_snap, 0);
  uint64_t big_all = s->big_b + s->bc_b;
  mi.arena = s->committed > big_all ? s->committed - big_all : 0;
  mi.ordblks = s->empty_slabs;
  mi.smblks = s->tc_blocks;
  mi.hblks = s->big_n;
  mi.hblkhd = s->big_b;
  mi.usmblks = s->peak;
  mi.fsmblks = s->tc_bytes;
  mi.uordblks = s->allocated - s->tier_bytes[HAK_TIER_BIG];
  mi.fordblks = mi.arena > mi.uordblks ? mi.arena - mi.uordblks : 0;
  mi.keepcost = s->empty_bytes + s->bc_b;
  hak_unlock(&g_snap_lock);
  return mi;
}

/* --- output ----------------------------------------------------------------- */

static char g_out[16384];
static hak_lock_t g_report_lock = HAK_LOCK_INIT;
void hak_report_lock(void) { hak_lock(&g_report_lock); }
void hak_report_unlock(void) { hak_unlock(&g_report_lock); }

void hak_sink_flush(hak_sink_t *k) {
  const char *p = g_out;
  size_t n = k->len;
  k->len = 0;
  if (k->cb) {
    char *t = n && !k->err ? hak_realloc(k->text, k->text_len + n + 1) : k->text;
    if (n && !t) k->err = 1;
    if (!n || !t) return;
    memcpy(t + k->text_len, p, n);
    k->text_len += n;
    t[k->text_len] = 0;
    k->text = t;
    return;
  }
  if (k->f) {
    if (n && fwrite(p, 1, n, k->f) != n) k->err = 1;
    return;
  }
  while (n) {
    ssize_t w = write(k->fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      k->err = 1;
      return;
    }
    p += w;
    n -= (size_t)w;
  }
}

void hak_sink_printf(hak_sink_t *k, const char *fmt, ...) {
  char tmp[1024];
  va_list ap;
  va_start(ap, fmt);
  size_t n = hak_vfmt(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  if (n >= sizeof tmp) n = sizeof tmp - 1;
  hak_sink_write(k, tmp, n);
}

void hak_sink_write(hak_sink_t *k, const char *s, size_t n) {
  while (n) {
    if (k->len == sizeof g_out) hak_sink_flush(k);
    size_t m = sizeof g_out - k->len < n ? sizeof g_out - k->len : n;
    memcpy(g_out + k->len, s, m);
    k->len += m;
    s += m;
    n -= m;
  }
}

/* --- the text report (HAKMEM_STATS=1, malloc_stats) -------------------------- */

static const char *tier_name[4] = {"tiny", "mid", "large", "big"};

static void report(hak_sink_t *k, const hak_snap_t *s) {
  hak_stats_t o;
  fill(&o, s);
  hak_sink_printf(k, "hakmem %s statistics (pid %u, mode %s, learn %u)\n", HAK_VERSION, (uint64_t)getpid(),
                  g_cfg.mode, (uint64_t)g_cfg.learn);
  hak_sink_printf(k, "  %s %s %s %s %s %s %s\n", "class     size", "     mallocs", "       frees",
                  "  refills", "   drains", " cached", "   cap");
  for (unsigned c = 0; c < HAK_NCLASS; c++) {
    if (!s->alloc[c] && !s->free[c]) continue;
    hak_sink_printf(k, "  %s", tier_name[g_class[c].tier]);
    char num[32];
    size_t n = hak_fmt(num, sizeof num, "%u", (uint64_t)g_class[c].size);
    for (size_t i = strlen(tier_name[g_class[c].tier]) + n; i < 14; i++) hak_sink_printf(k, " ");
    hak_sink_printf(k, "%s", num);
    uint64_t vals[6] = {s->alloc[c], s->free[c], s->refill[c], s->drain[c], s->cached[c], hak_policy()->cap[c]};
    const int width[6] = {13, 13, 10, 10, 8, 7};
    for (int v = 0; v < 6; v++) {
      n = hak_fmt(num, sizeof num, "%u", vals[v]);
      for (size_t i = n; i < (size_t)width[v]; i++) hak_sink_printf(k, " ");
      hak_sink_printf(k, "%s", num);
    }
    hak_sink_printf(k, "\n");
  }
  for (int t = 0; t < 4; t++)
    hak_sink_printf(k, "  tier %s: mallocs %u, frees %u\n", tier_name[t], o.mallocs[t], o.frees[t]);
  hak_sink_printf(k, "  remote frees: %u sent, %u collected by their owners\n", s->remote_free,
                  s->remote_collected);
  hak_sink_printf(k, "  shared pool: stage1 (EMPTY reuse) %u, stage2 (UNUSED slot) %u, stage3 (new SuperSlab) %u, "
                     "released %u, decommitted %u, SuperSlabs now %u (huge pages asked for %u), unmapped %u, "
                     "EMPTY now %u KiB\n",
                  o.sp_stage[0], o.sp_stage[1], o.sp_stage[2], o.sp_release, hak_cnt_get(&g_stats.sp_decommit),
                  o.superslabs, hak_cnt_get(&g_stats.ss_hugepage), hak_cnt_get(&g_stats.sp_ss_unmapped),
                  s->empty_bytes >> 10);
  hak_sink_printf(k, "  big: allocs %u, frees %u, live %u (%u KiB), BigCache hits %u, misses %u, "
                     "cached %u (%u KiB), mremap grows %u\n",
                  o.mallocs[3], o.frees[3], s->big_n, s->big_b >> 10, o.bigcache_hits, o.bigcache_misses,
                  s->bc_n, s->bc_b >> 10, hak_cnt_get(&g_stats.big_mremaps));
  hak_sink_printf(k, "  os: mmap %u (%u KiB), munmap %u (%u KiB), madvise %u (%u KiB), mremap %u\n",
                  o.mmap_calls, o.mmap_bytes >> 10, o.munmap_calls, o.munmap_bytes >> 10, o.madvise_calls,
                  o.madvise_bytes >> 10, o.mremap_calls);
  hak_sink_printf(k, "  memory: committed %u KiB, peak %u KiB, allocated %u KiB, time-based returns %u "
                     "(%u KiB); threads %u (heaps %u, in use %u, adopted %u); ACE updates %u; invalid frees %u\n",
                  o.committed_bytes >> 10, o.peak_committed_bytes >> 10, s->allocated >> 10,
                  hak_cnt_get(&g_stats.decay_returns), hak_cnt_get(&g_stats.decay_bytes) >> 10,
                  hak_cnt_get(&g_stats.threads_started), s->heaps, s->heaps_in_use,
                  hak_cnt_get(&g_stats.heaps_adopted), hak_cnt_get(&g_stats.ace_updates), o.invalid_frees);
  hak_sink_printf(k, "  purged pages of slabs in use: %u purges, %u KiB given back, %u KiB used again; "
                     "guarded allocations %u\n",
                  hak_cnt_get(&g_stats.slab_purges), hak_cnt_get(&g_stats.slab_purged_bytes) >> 10,
                  hak_cnt_get(&g_stats.slab_unpurged_bytes) >> 10, hak_cnt_get(&g_stats.guard_allocs));
  hak_sink_printf(k, "hakmem-stats: mallocs=%u frees=%u tiny=%u mid=%u large=%u big=%u remote_frees=%u "
                     "refills=%u drains=%u sp_stage1=%u sp_stage2=%u sp_stage3=%u mmap=%u munmap=%u "
                     "madvise=%u mremap=%u committed_kib=%u peak_committed_kib=%u bigcache_hits=%u "
                     "invalid_frees=%u guarded=%u\n",
                  s->mallocs, s->frees, o.mallocs[0], o.mallocs[1], o.mallocs[2], o.mallocs[3], o.remote_frees,
                  o.refills, o.drains, o.sp_stage[0], o.sp_stage[1], o.sp_stage[2], o.mmap_calls,
                  o.munmap_calls, o.madvise_calls, o.mremap_calls, o.committed_bytes >> 10,
                  o.peak_committed_bytes >> 10, o.bigcache_hits, o.invalid_frees,
                  hak_cnt_get(&g_stats.guard_allocs));
}

/* format: HAK_STATS_TEXT or HAK_STATS_JSON. Returns 0, or -1 on a failed write. */
static int write_sink(hak_sink_t k, int format) {
  hak_lock(&g_report_lock);
  hak_lock(&g_snap_lock);
  if (format == HAK_STATS_JSON) {
    hak_snap_take(&g_snap, HAK_SNAP_WALK | HAK_SNAP_RESIDENT);
    hak_snap_json(&k, &g_snap);
  } else {
    hak_snap_take(&g_snap, 0);
    report(&k, &g_snap);
  }
  hak_unlock(&g_snap_lock);
  hak_sink_flush(&k);
  if (k.f) fflush(k.f);
  hak_unlock(&g_report_lock);
  if (k.cb) {
    if (k.text && !k.err) k.cb(k.cb_arg, k.text);
    hak_free(k.text);
  }
  return k.err ? -1 : 0;
}

static int write_stats(int fd, FILE *f, int format) {
  hak_sink_t k = {.fd = fd, .f = f};
  return write_sink(k, format);
}

HAK_API int hak_stats_write(void (*write_cb)(void *arg, const char *text), void *arg, int json) {
  hak_init();
  if (!write_cb) return write_stats(2, NULL, json ? HAK_STATS_JSON : HAK_STATS_TEXT);
  hak_sink_t k = {.fd = -1, .cb = write_cb, .cb_arg = arg};
  return write_sink(k, json ? HAK_STATS_JSON : HAK_STATS_TEXT);
}

HAK_API int hak_stats_json(int fd) {
  hak_init();
  return write_stats(fd, NULL, HAK_STATS_JSON);
}
HAK_API void hak_stats_print(FILE *f) { write_stats(-1, f, HAK_STATS_TEXT); }
HAK_API void hak_malloc_stats(void) { write_stats(2, NULL, HAK_STATS_TEXT); }

/* --- exit, files, the signal --------------------------------------------------- */

/* Programs such as coreutils close stderr before exit: the report goes to a
 * copy of it taken at start-up (hak_stats_keep_stderr). */
static int g_report_fd = 2;
void hak_stats_keep_stderr(void) {
  if (g_report_fd != 2) return;
  int fd = fcntl(2, F_DUPFD_CLOEXEC, 100);
  if (fd >= 0) g_report_fd = fd;
}

/* To HAKMEM_STATS_FILE (%p expanded) if set, else to the copy of stderr. */
static void write_to_target(int format) {
  char path[600];
  if (hak_cfg_stats_path(path, sizeof path)) {
    int saved = errno;
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd >= 0) {
      write_stats(fd, NULL, format);
      close(fd);
      errno = saved;
      return;
    }
    char line[700];
    size_t n = hak_fmt(line, sizeof line, "hakmem: HAKMEM_STATS_FILE %s: cannot open it (errno %u); the "
                       "statistics go to stderr\n", path, (uint64_t)errno);
    errno = saved;
    hak_say(line, n < sizeof line ? n : sizeof line - 1);
  }
  write_stats(g_report_fd, NULL, format);
}

void hak_stats_report_exit(void) {
  int format = __atomic_load_n(&g_cfg.stats, __ATOMIC_RELAXED);
  if (format) write_to_target(format);
}

/* HAKMEM_STATS_SIGNAL: the handler only posts a semaphore (async-signal-
 * safe); a thread of hakmem's, which blocks every signal, waits on it and
 * writes the JSON with the ordinary locks. So the handler neither allocates
 * nor takes a lock the interrupted code might hold. */
static sem_t g_sig_sem;
static int g_sig_thread; /* 1 while this process has the thread */

static void sig_handler(int sig) {
  (void)sig;
  int saved = errno;
  sem_post(&g_sig_sem);
  errno = saved;
}

static void *sig_main(void *arg) {
  (void)arg;
  for (;;) {
    while (sem_wait(&g_sig_sem) != 0) {
    }
    write_to_target(HAK_STATS_JSON);
  }
  return NULL;
}

static void sig_thread_start(void) {
  if (sem_init(&g_sig_sem, 0, 0) != 0) return;
  g_sig_thread = hak_os_thread(sig_main, 64u << 10, "hakmem-stats");
}

/* From the library's constructor: the first point where creating a thread
 * (which may call malloc) is safe. */
__attribute__((constructor)) static void stats_constructor(void) {
  hak_init();
  int sig = g_cfg.stats_signal;
  if (!sig) return;
  hak_stats_keep_stderr();
  struct sigaction old;
  if (sigaction(sig, NULL, &old) == 0 && !(old.sa_flags & SA_SIGINFO) && old.sa_handler != SIG_DFL &&
      old.sa_handler != SIG_IGN) {
    char line[160];
    size_t n = hak_fmt(line, sizeof line, "hakmem: HAKMEM_STATS_SIGNAL: signal %u already has a handler; "
                       "left alone\n", (uint64_t)sig);
    hak_say(line, n);
    return;
  }
  sig_thread_start();
  if (!g_sig_thread) {
    hak_say("hakmem: HAKMEM_STATS_SIGNAL: could not start the statistics thread; no handler\n", 81);
    return;
  }
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = sig_handler;
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  sigaction(sig, &sa, NULL);
}

void hak_stats_reset_locks(void) {
  hak_lock_reset(&g_report_lock);
  hak_lock_reset(&g_snap_lock);
  hak_cfg_atfork_child();
  /* Only the forking thread exists in the child: it gets its own
   * statistics thread, so the signal works there too. */
  if (g_sig_thread) sig_thread_start();
}
