/* The heap profiler (prof.h). Memory: tables mapped from the OS (only
 * touched pages count), never malloc. The stacks are one table, read without
 * a lock; the live samples and the per-stack counts are in shards, one per
 * thread up to HAK_PROF_HEAPS, each with its lock. The decision to sample
 * takes no lock (it is the heap's countdown, or the thread's Big byte
 * countdown). */
#include "diag/prof.h"
#include "hakmem.h"
#include "backend/big.h"
#include "backend/lookup.h"
#include "backend/shared_pool.h"
#include "base/config.h"
#include "base/counters.h"
#include "base/lock.h"
#include "base/report.h"
#include "mem/size_class.h"
#include "os/os.h"

#include <dlfcn.h>
#include <errno.h>
#include <execinfo.h>
#include <fcntl.h>
#include <link.h>
#include <semaphore.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#define PROF_DEPTH 64
#define PROF_BUCKETS (1u << 15)       /* distinct (stack, usable size) pairs */
#define PROF_BIDX (PROF_BUCKETS * 2u) /* their hash index */
#define PROF_LIVE_BITS 18 /* at most 2^18 live samples per shard */
#define PROF_LIVE_FIRST_BITS 12
#define PROF_TOP 20                   /* stacks in the leak report */
#define PROF_BIG HAK_PROF_HEAPS       /* the shard of Big blocks' samples */

/* A stack and usable size: written once, before it is published in the
 * index, and read without a lock after. */
typedef struct {
  uint64_t hash, usable;
  uint32_t depth;
  uintptr_t pc[PROF_DEPTH];
} prof_bucket_t;

typedef struct {
  uint64_t live_n, live_req, alloc_n; /* samples (pprof unsamples them) */
} prof_cnt_t;

typedef struct {
  uintptr_t addr; /* 0: empty slot */
  uint64_t req;
  uint32_t bucket; /* | PROF_COUNTED: est went into g_w.live_total */
  float est;       /* what it added, taken off again as it was */
} prof_live_t;
#define PROF_COUNTED 0x80000000u

/* A shard: the live samples, and the per-stack counts, of the threads that
 * sample into it (slab blocks: its heap in g_prof_heaps holds their blocks,
 * so a free finds the shard from the block's slab; Big blocks: PROF_BIG).
 * With one shard for all, every sample moved the lock's, the counts' and
 * the profiler heap's cache lines between the cores. */
typedef struct {
  hak_lock_t lock;
  uint32_t nlive, live_bits;
  /* The live samples' table starts small and doubles (a new mapping, every
   * record moved) while it is three quarters full, so that its probes stay
   * in a few cache lines and pages for the hundreds of live samples of a
   * typical heap instead of spreading over a table sized for the largest. */
  prof_live_t *live; /* both mapped at the shard's first sample */
  prof_cnt_t *cnt;   /* per bucket */
} __attribute__((aligned(HAK_CACHELINE))) prof_shard_t;

bool g_prof_on;
_Atomic uint32_t g_prof_big_live;
static prof_shard_t g_shard[HAK_PROF_HEAPS + 1];
static struct { /* read by every sample */
  prof_bucket_t *buckets;
  uint32_t *bidx; /* bucket + 1; 0: empty (atomic loads: buckets are added without the shards' locks) */
  _Atomic int ready; /* the unwinder is primed: samples may be taken */
} g_pt __attribute__((aligned(HAK_CACHELINE)));
/* Written seldom: when a stack is new, a thread samples for the first time,
 * or (HAKMEM_PROF_INTERVAL only) a sample is taken or freed. */
static struct {
  hak_lock_t bucket_lock; /* adds buckets; taken with no shard's lock held, but by fork after them */
  _Atomic uint32_t nbuckets;
  _Atomic uint32_t next_shard;
  _Atomic int64_t live_total, next_dump; /* all shards' live estimate, and the next interval dump */
} g_w __attribute__((aligned(HAK_CACHELINE)));
static __thread uint32_t t_shard; /* its shard + 1; 0: none yet */
static _Atomic uint32_t g_seq; /* dumps of this process */
static __thread int t_busy;   /* in the profiler: a malloc from here is not sampled */
static __thread int64_t t_big_left;
static __thread uint64_t t_rng;
static uintptr_t g_self_lo, g_self_hi; /* hakmem's own code: frames skipped */
static hak_unwind_fn g_unw_backtrace;
static int g_unwinder;

/* --- numbers without libm ---------------------------------------------------- */

static double exp_neg(double x) { /* e^-x, x >= 0 */
  if (x > 700) return 0;
  int k = (int)(x / 0.6931471805599453);
  double r = x - k * 0.6931471805599453, t = 1, s = 1;
  for (int i = 1; i < 14; i++) s += (t *= -r / i);
  union { double d; uint64_t b; } v = {s};
  v.b -= (uint64_t)k << 52;
  return v.d;
}

/* pprof's heap_v2 unsampling: a block of size s was sampled with probability
 * 1 - exp(-s / rate). */
static double unsample(uint64_t usable) {
  double x = (double)usable / (double)g_cfg.prof_sample;
  return x < 1e-6 ? 1 / x : 1 / (1 - exp_neg(x));
}

static double neg_log_u(void) { /* -ln(u), u uniform in (0, 1) */
  uint64_t x = t_rng ? t_rng : ((uintptr_t)&t_rng * 0x9e3779b97f4a7c15ull) | 1;
  x ^= x >> 12, x ^= x << 25, x ^= x >> 27;
  t_rng = x;
  double u = ((double)((x * 0x2545f4914f6cdd1dull) >> 11) + 0.5) * 0x1p-53, l = 0;
  while (u < 0.5) u *= 2, l += 0.6931471805599453;
  double z = (u - 1) / (u + 1), z2 = z * z; /* ln u = 2 atanh(z) */
  return l - 2 * z * (1 + z2 * (1.0 / 3 + z2 * (1.0 / 5 + z2 * (1.0 / 7 + z2 * (1.0 / 9 + z2 / 11)))));
}

/* --- stacks ------------------------------------------------------------------ */

static int fp_walk(void **pcs, int max) {
  uintptr_t *fp = __builtin_frame_address(0);
  int n = 0;
  while (n < max && fp && !((uintptr_t)fp & 7)) {
    uintptr_t *next = (uintptr_t *)fp[0];
    if (!fp[1]) break;
    pcs[n++] = (void *)fp[1];
    if (next <= fp || (uintptr_t)next - (uintptr_t)fp > (1u << 20)) break;
    fp = next;
  }
  return n;
}

/* The stack of the allocation, hakmem's own frames left out. */
static HAK_NOINLINE uint32_t capture(uintptr_t *out) {
  void *pcs[PROF_DEPTH + 16];
  int n;
  if (g_unwinder == HAK_UNWIND_FP) n = fp_walk(pcs, PROF_DEPTH + 16);
  else if (g_unwinder == HAK_UNWIND_LIBUNWIND) n = g_unw_backtrace(pcs, PROF_DEPTH + 16);
  else n = backtrace(pcs, PROF_DEPTH + 16);
  int i = 0;
  while (i < n && (uintptr_t)pcs[i] >= g_self_lo && (uintptr_t)pcs[i] < g_self_hi) i++;
  uint32_t d = 0;
  for (; i < n && d < PROF_DEPTH; i++) out[d++] = (uintptr_t)pcs[i];
  return d;
}

/* The tables are mapped untouched, and a probe's first access to one of
 * their pages is a read: the kernel would map the zero page, and the write
 * that follows would fault again and flush the TLB of every CPU the process
 * runs on (do_wp_page, which perf showed under record). An atomic add of 0
 * writes first, so the page is allocated in one fault. */
static void touch_for_write(void *p) { __atomic_fetch_add((char *)p, 0, __ATOMIC_RELAXED); }

static uint64_t stack_hash(const uintptr_t *pc, uint32_t d, uint64_t usable) {
  uint64_t h = usable * 0x9e3779b97f4a7c15ull ^ d;
  for (uint32_t i = 0; i < d; i++) h = (h ^ pc[i]) * 0x100000001b3ull, h ^= h >> 29;
  return h | 1;
}

/* The bucket of this stack and size (h: their stack_hash), UINT32_MAX if
 * none; *slot: where the probe ended. */
static uint32_t bucket_find(const uintptr_t *pc, uint32_t d, uint64_t usable, uint64_t h, uint32_t *slot) {
  for (uint32_t i = (uint32_t)h & (PROF_BIDX - 1);; i = (i + 1) & (PROF_BIDX - 1)) {
    uint32_t b = __atomic_load_n(&g_pt.bidx[i], __ATOMIC_ACQUIRE);
    if (!b) {
      *slot = i;
      return UINT32_MAX;
    }
    prof_bucket_t *e = &g_pt.buckets[b - 1];
    if (e->hash == h && e->usable == usable && e->depth == d && !memcmp(e->pc, pc, d * sizeof *pc)) return b - 1;
  }
}

/* The bucket, made if new (under g_w.bucket_lock, so that two threads do not
 * make the same one); UINT32_MAX when the table is full. No lock when it
 * exists, which is nearly always. */
static uint32_t bucket_get(const uintptr_t *pc, uint32_t d, uint64_t usable, uint64_t h) {
  uint32_t slot, b = bucket_find(pc, d, usable, h, &slot);
  if (b != UINT32_MAX) return b;
  hak_lock(&g_w.bucket_lock);
  b = bucket_find(pc, d, usable, h, &slot);
  uint32_t n = atomic_load_explicit(&g_w.nbuckets, memory_order_relaxed);
  if (b == UINT32_MAX && n < PROF_BUCKETS) {
    prof_bucket_t *nb = &g_pt.buckets[n];
    nb->hash = h;
    nb->usable = usable;
    nb->depth = d;
    memcpy(nb->pc, pc, d * sizeof *pc);
    atomic_store_explicit(&g_w.nbuckets, n + 1, memory_order_release);
    __atomic_store_n(&g_pt.bidx[slot], n + 1, __ATOMIC_RELEASE);
    b = n;
  }
  hak_unlock(&g_w.bucket_lock);
  return b;
}

static uint32_t live_mask(const prof_shard_t *sh) { return (1u << sh->live_bits) - 1; }
static uint32_t live_slot(const prof_shard_t *sh, uintptr_t a) {
  return (uint32_t)((a >> 4) * 0x9e3779b97f4a7c15ull >> (64 - sh->live_bits));
}

static void live_put(prof_shard_t *sh, prof_live_t e) {
  uint32_t i = live_slot(sh, e.addr);
  touch_for_write(&sh->live[i]);
  while (sh->live[i].addr) i = (i + 1) & live_mask(sh);
  sh->live[i] = e;
}

/* Doubles the table; false at its largest or when the OS refuses. */
static bool live_grow(prof_shard_t *sh) {
  if (sh->live_bits >= PROF_LIVE_BITS) return false;
  size_t old_n = (size_t)1 << sh->live_bits;
  prof_live_t *old = sh->live, *fresh = hak_os_map(2 * old_n * sizeof *fresh);
  if (!fresh) return false;
  sh->live = fresh;
  sh->live_bits++;
  for (size_t i = 0; i < old_n; i++)
    if (old[i].addr) live_put(sh, old[i]);
  hak_os_unmap(old, old_n * sizeof *old);
  return true;
}

/* The shard's tables, at its first sample (its lock held); false if the OS
 * refused them. */
static bool shard_ready(prof_shard_t *sh) {
  if (sh->live) return true;
  if (!sh->cnt && !(sh->cnt = hak_os_map(PROF_BUCKETS * sizeof(prof_cnt_t)))) return false;
  sh->live_bits = PROF_LIVE_FIRST_BITS;
  return (sh->live = hak_os_map(((size_t)1 << PROF_LIVE_FIRST_BITS) * sizeof(prof_live_t))) != NULL;
}

static bool live_insert(prof_shard_t *sh, uintptr_t a, uint64_t req, uint32_t bucket, float est) {
  if (!shard_ready(sh)) return false;
  uint32_t cap = 1u << sh->live_bits;
  if (sh->nlive >= cap - cap / 4 && !live_grow(sh)) return false; /* keeps the probes short */
  live_put(sh, (prof_live_t){a, req, bucket, est});
  sh->nlive++;
  return true;
}

/* Removes a's record (linear probing, backward-shift deletion). */
static bool live_remove(prof_shard_t *sh, uintptr_t a, prof_live_t *out) {
  if (!sh->live) return false;
  uint32_t i = live_slot(sh, a), m = live_mask(sh);
  while (sh->live[i].addr != a) {
    if (!sh->live[i].addr) return false;
    i = (i + 1) & m;
  }
  *out = sh->live[i];
  for (uint32_t j = (i + 1) & m; sh->live[j].addr; j = (j + 1) & m) {
    uint32_t home = live_slot(sh, sh->live[j].addr);
    /* j's entry may move to the hole at i unless its home lies in (i, j] */
    if (((j - home) & m) >= ((j - i) & m)) {
      sh->live[i] = sh->live[j];
      i = j;
    }
  }
  sh->live[i].addr = 0;
  sh->nlive--;
  return true;
}

static int dump_file(const char *path);

/* What a sample of each class adds to the live estimate: unsample's series
 * (with its divisions) once per class at start-up, not once per sample. */
static float g_class_est[HAK_NCLASS];

/* HAKMEM_PROF_INTERVAL: true when this growth of the live heap makes an
 * interval dump due (one thread wins it). */
static bool interval_due(int64_t est) {
  int64_t now = atomic_fetch_add_explicit(&g_w.live_total, est, memory_order_relaxed) + est;
  int64_t next = atomic_load_explicit(&g_w.next_dump, memory_order_relaxed);
  return now >= next && atomic_compare_exchange_strong_explicit(&g_w.next_dump, &next, now + (int64_t)g_cfg.prof_interval,
                                                                memory_order_relaxed, memory_order_relaxed);
}

/* Records a sample of block p in bucket b (UINT32_MAX: the stack table is
 * full), sh's lock held; false if it could not be recorded. *dump: an
 * interval dump is due (written once the lock is dropped). */
static bool record_locked(prof_shard_t *sh, void *p, uint32_t b, uint64_t req, float est, bool *dump) {
  /* the interval may change while the program runs: a record says whether
   * it counted, so that its free takes off exactly what it added */
  bool counted = g_cfg.prof_interval != 0;
  bool ok = b != UINT32_MAX && live_insert(sh, (uintptr_t)p, req, b | (counted ? PROF_COUNTED : 0), est);
  *dump = false;
  if (ok) {
    sh->cnt[b].live_n++;
    sh->cnt[b].live_req += req;
    sh->cnt[b].alloc_n++;
    if (counted) *dump = interval_due((int64_t)est);
  } else {
    hak_cnt_add(&g_stats.prof_dropped, 1);
  }
  return ok;
}

/* Takes p's record off, sh's lock held; false if it has none. */
static bool forget_locked(prof_shard_t *sh, const void *p) {
  prof_live_t e;
  bool found = live_remove(sh, (uintptr_t)p, &e);
  if (found) {
    prof_cnt_t *c = &sh->cnt[e.bucket & ~PROF_COUNTED];
    c->live_n--;
    c->live_req -= e.req;
    if (e.bucket & PROF_COUNTED) atomic_fetch_sub_explicit(&g_w.live_total, (int64_t)e.est, memory_order_relaxed);
  }
  return found;
}

/* This thread's shard of slab samples: handed out in turn, so that up to
 * HAK_PROF_HEAPS threads each have one of their own. */
static uint32_t my_shard(void) {
  if (HAK_UNLIKELY(!t_shard))
    t_shard = atomic_fetch_add_explicit(&g_w.next_shard, 1, memory_order_relaxed) % HAK_PROF_HEAPS + 1;
  return t_shard - 1;
}

/* The heap's sampler: a block of class cls from the profiler's heap. */
static void *sample_slab(unsigned cls, size_t size) {
  if (t_busy || !atomic_load_explicit(&g_pt.ready, memory_order_acquire)) {
    hak_cnt_add(&g_stats.prof_dropped, 1);
    return NULL;
  }
  t_busy = 1;
  uintptr_t pc[PROF_DEPTH];
  uint32_t d = capture(pc);
  uint64_t usable = g_class[cls].size;
  uint32_t bk = bucket_get(pc, d, usable, stack_hash(pc, d, usable));
  float est = g_class_est[cls];
  uint32_t i = my_shard();
  prof_shard_t *sh = &g_shard[i];
  bool dump = false;
  hak_lock(&sh->lock); /* one lock for the block and its record */
  void *b = hak_heap_prof_alloc(&g_prof_heaps[i], cls);
  if (b && !record_locked(sh, b, bk, size, est, &dump)) {
    hak_heap_prof_free(hak_slab_of(b), b);
    b = NULL;
  }
  hak_unlock(&sh->lock);
  if (dump) dump_file(NULL);
  t_busy = 0;
  return b;
}

void hak_prof_free_block(hak_slab_t *s, void *p) {
  /* Every block of a profiler's heap that is out has a record, in the
   * shard of that heap. */
  prof_shard_t *sh = &g_shard[(hak_heap_t *)s->geo.owner - g_prof_heaps];
  hak_lock(&sh->lock);
  bool found = forget_locked(sh, p);
  if (found) hak_heap_prof_free(s, p);
  hak_unlock(&sh->lock);
  if (!found) hak_report_invalid("free", p, "double free", NULL);
}

void hak_prof_big_alloc_slow(void *p, size_t size) {
  if (t_busy || !atomic_load_explicit(&g_pt.ready, memory_order_acquire)) return;
  if (!t_big_left) t_big_left = (int64_t)(neg_log_u() * (double)g_cfg.prof_sample) + 1;
  t_big_left -= (int64_t)size;
  if (t_big_left > 0) return;
  t_big_left = (int64_t)(neg_log_u() * (double)g_cfg.prof_sample) + 1;
  t_busy = 1;
  uintptr_t pc[PROF_DEPTH];
  uint32_t d = capture(pc);
  uint32_t bk = bucket_get(pc, d, size, stack_hash(pc, d, size));
  float est = (float)((double)size * unsample(size));
  prof_shard_t *sh = &g_shard[PROF_BIG];
  bool dump;
  hak_lock(&sh->lock);
  bool ok = record_locked(sh, p, bk, size, est, &dump);
  hak_unlock(&sh->lock);
  if (ok) atomic_fetch_add_explicit(&g_prof_big_live, 1, memory_order_relaxed);
  if (dump) dump_file(NULL);
  t_busy = 0;
}

void hak_prof_big_free_slow(const void *p) {
  prof_shard_t *sh = &g_shard[PROF_BIG];
  hak_lock(&sh->lock);
  bool found = forget_locked(sh, p);
  hak_unlock(&sh->lock);
  if (found) atomic_fetch_sub_explicit(&g_prof_big_live, 1, memory_order_relaxed);
}

static void shards_lock(void) {
  for (unsigned i = 0; i <= HAK_PROF_HEAPS; i++) hak_lock(&g_shard[i].lock);
}
static void shards_unlock(void) {
  for (unsigned i = HAK_PROF_HEAPS + 1; i-- > 0;) hak_unlock(&g_shard[i].lock);
}

/* --- output ---------------------------------------------------------------- */

typedef struct {
  int fd;
  size_t n;
  char buf[1 << 16];
} out_t;
static out_t g_out; /* under every shard's lock */
/* Every bucket's counts summed over the shards, for one dump (under every
 * shard's lock; mapped at the first). NULL if the OS refused it. */
static prof_cnt_t *g_sum;
static uint32_t sum_shards(void) {
  uint32_t n = atomic_load_explicit(&g_w.nbuckets, memory_order_acquire);
  if (!g_sum && !(g_sum = hak_os_map(PROF_BUCKETS * sizeof *g_sum))) return 0;
  memset(g_sum, 0, n * sizeof *g_sum);
  for (unsigned i = 0; i <= HAK_PROF_HEAPS; i++)
    for (uint32_t b = 0; g_shard[i].cnt && b < n; b++) {
      g_sum[b].live_n += g_shard[i].cnt[b].live_n;
      g_sum[b].live_req += g_shard[i].cnt[b].live_req;
      g_sum[b].alloc_n += g_shard[i].cnt[b].alloc_n;
    }
  return n;
}

static void out_flush(out_t *o) {
  for (size_t off = 0; off < o->n;) {
    ssize_t w = write(o->fd, o->buf + off, o->n - off);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) break;
    off += (size_t)w;
  }
  o->n = 0;
}

static void out_put(out_t *o, const char *s, size_t n) {
  if (o->n + n > sizeof o->buf) out_flush(o);
  if (n > sizeof o->buf) n = sizeof o->buf;
  memcpy(o->buf + o->n, s, n);
  o->n += n;
}

static void out_fmt(out_t *o, const char *fmt, ...) {
  char line[512];
  va_list ap;
  va_start(ap, fmt);
  size_t n = hak_vfmt(line, sizeof line, fmt, ap);
  va_end(ap);
  out_put(o, line, n);
}

/* gperftools' legacy heap profile: raw sample counts and usable bytes, which
 * pprof unsamples (heap_v2 at the sampling rate); the maps let it symbolise. */
static void write_profile(out_t *o) {
  uint64_t ln = 0, lb = 0, an = 0, ab = 0;
  uint32_t n = sum_shards();
  for (uint32_t i = 0; i < n; i++) {
    prof_cnt_t *c = &g_sum[i];
    uint64_t u = g_pt.buckets[i].usable;
    ln += c->live_n, lb += c->live_n * u, an += c->alloc_n, ab += c->alloc_n * u;
  }
  out_fmt(o, "heap profile: %u: %u [%u: %u] @ heap_v2/%u\n", ln, lb, an, ab, (uint64_t)g_cfg.prof_sample);
  for (uint32_t i = 0; i < n; i++) {
    prof_bucket_t *b = &g_pt.buckets[i];
    prof_cnt_t *c = &g_sum[i];
    if (!c->alloc_n) continue;
    out_fmt(o, "%u: %u [%u: %u] @", c->live_n, c->live_n * b->usable, c->alloc_n, c->alloc_n * b->usable);
    for (uint32_t k = 0; k < b->depth; k++) out_fmt(o, " %p", (void *)b->pc[k]);
    out_put(o, "\n", 1);
  }
  out_put(o, "\nMAPPED_LIBRARIES:\n", 19);
  int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    for (;;) {
      if (o->n == sizeof o->buf) out_flush(o);
      ssize_t r = read(fd, o->buf + o->n, sizeof o->buf - o->n);
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) break;
      o->n += (size_t)r;
    }
    close(fd);
  }
}

/* path NULL: PREFIX.PID.SEQ.heap. 0, or -1 (errno) if it could not be written. */
static int dump_file(const char *path) {
  char name[600];
  if (!path) {
    char prefix[512];
    hak_opt_format(HAK_OPT_PROF_PREFIX, prefix, sizeof prefix);
    uint32_t seq = atomic_fetch_add_explicit(&g_seq, 1, memory_order_relaxed) + 1;
    hak_fmt(name, sizeof name, "%s.%u.%s%s%s%u.heap", prefix, (uint64_t)getpid(), seq < 1000 ? "0" : "",
            seq < 100 ? "0" : "", seq < 10 ? "0" : "", (uint64_t)seq);
    path = name;
  }
  int saved = errno;
  t_busy++;
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    t_busy--;
    return -1;
  }
  shards_lock();
  g_out.fd = fd;
  g_out.n = 0;
  write_profile(&g_out);
  out_flush(&g_out);
  shards_unlock();
  close(fd);
  t_busy--;
  hak_cnt_add(&g_stats.prof_dumps, 1);
  errno = saved;
  return 0;
}

HAK_API int hak_prof_dump(const char *path) {
  if (!g_prof_on) {
    errno = ENOSYS;
    return -1;
  }
  return dump_file(path);
}

/* --- the leak report --------------------------------------------------------- */

/* The program's own functions are seldom exported, so dladdr cannot name
 * them: the object's .symtab (or .dynsym) is read instead, one object at a
 * time, into memory from the OS. At exit only. */
static struct {
  char name[512];
  char *img;
  size_t size, cap;
} g_elf;

static bool elf_load(const char *file) {
  if (g_elf.img && !strcmp(g_elf.name, file)) return g_elf.size != 0;
  if (strlen(file) >= sizeof g_elf.name) return false;
  memcpy(g_elf.name, file, strlen(file) + 1);
  g_elf.size = 0;
  int fd = open(file, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  off_t end = lseek(fd, 0, SEEK_END);
  if (end <= 0 || (size_t)end > ((size_t)1 << 30)) {
    close(fd);
    return false;
  }
  size_t need = hak_align_up((size_t)end, HAK_PAGE);
  if (need > g_elf.cap) {
    if (g_elf.img) hak_os_unmap(g_elf.img, g_elf.cap);
    g_elf.cap = 0;
    if (!(g_elf.img = hak_os_map(need))) {
      close(fd);
      return false;
    }
    g_elf.cap = need;
  }
  size_t got = 0;
  while (got < (size_t)end) {
    ssize_t r = pread(fd, g_elf.img + got, (size_t)end - got, (off_t)got);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    got += (size_t)r;
  }
  close(fd);
  if (got == (size_t)end) g_elf.size = got;
  return g_elf.size != 0;
}

/* The function of the loaded object holding file address a. */
static const char *elf_func(uintptr_t a, uintptr_t *start) {
  const ElfW(Ehdr) *eh = (const ElfW(Ehdr) *)g_elf.img;
  if (g_elf.size < sizeof *eh || memcmp(eh->e_ident, ELFMAG, SELFMAG) || eh->e_shentsize != sizeof(ElfW(Shdr)) ||
      eh->e_shoff + (size_t)eh->e_shnum * sizeof(ElfW(Shdr)) > g_elf.size)
    return NULL;
  const ElfW(Shdr) *sh = (const ElfW(Shdr) *)(g_elf.img + eh->e_shoff);
  for (int pass = 0; pass < 2; pass++) {
    for (unsigned i = 0; i < eh->e_shnum; i++) {
      if (sh[i].sh_type != (pass ? SHT_DYNSYM : SHT_SYMTAB) || sh[i].sh_link >= eh->e_shnum) continue;
      const ElfW(Shdr) *str = &sh[sh[i].sh_link];
      if (sh[i].sh_offset + sh[i].sh_size > g_elf.size || str->sh_offset + str->sh_size > g_elf.size) continue;
      const ElfW(Sym) *sym = (const ElfW(Sym) *)(g_elf.img + sh[i].sh_offset);
      for (size_t k = 0; k < sh[i].sh_size / sizeof *sym; k++) {
        if (ELF64_ST_TYPE(sym[k].st_info) != STT_FUNC || a < sym[k].st_value ||
            a >= sym[k].st_value + sym[k].st_size || sym[k].st_name >= str->sh_size)
          continue;
        *start = sym[k].st_value;
        return g_elf.img + str->sh_offset + sym[k].st_name;
      }
    }
  }
  return NULL;
}

static void say_frame(out_t *o, uintptr_t pc) {
  Dl_info di;
  const char *file = "?";
  /* pc - 1: the call, not the instruction after it (a noreturn call may end a function) */
  if (dladdr((void *)(pc - 1), &di)) {
    uintptr_t start;
    const char *fn = NULL;
    if (di.dli_sname) {
      fn = di.dli_sname;
      start = (uintptr_t)di.dli_saddr;
    } else if (di.dli_fname && elf_load(di.dli_fname[0] ? di.dli_fname : "/proc/self/exe")) {
      const ElfW(Ehdr) *eh = (const ElfW(Ehdr) *)g_elf.img;
      uintptr_t bias = eh->e_type == ET_DYN ? (uintptr_t)di.dli_fbase : 0;
      fn = elf_func(pc - 1 - bias, &start);
      start += bias;
    }
    if (fn) out_fmt(o, "    %s+%u", fn, (uint64_t)(pc - start));
    else out_fmt(o, "    %p", (void *)pc);
    if (di.dli_fname && di.dli_fname[0]) {
      file = di.dli_fname;
      for (const char *c = di.dli_fname; *c; c++)
        if (*c == '/') file = c + 1;
    }
  } else {
    out_fmt(o, "    %p", (void *)pc);
  }
  out_fmt(o, " (%s)\n", file);
}

static void size_str(char *buf, size_t cap, double v) {
  if (v >= 10 * 1048576.0) hak_fmt(buf, cap, "%u MiB", (uint64_t)(v / 1048576 + 0.5));
  else if (v >= 10 * 1024.0) hak_fmt(buf, cap, "%u KiB", (uint64_t)(v / 1024 + 0.5));
  else hak_fmt(buf, cap, "%u B", (uint64_t)(v + 0.5));
}

static void leak_report(void) {
  out_t *o = &g_out;
  shards_lock();
  o->fd = 2;
  o->n = 0;
  double total = 0;
  uint32_t stacks = 0;
  uint64_t samples = 0;
  uint32_t n = sum_shards();
  for (uint32_t i = 0; i < n; i++)
    if (g_sum[i].live_n) {
      total += (double)g_sum[i].live_n * (double)g_pt.buckets[i].usable * unsample(g_pt.buckets[i].usable);
      stacks++;
      samples += g_sum[i].live_n;
    }
  char t[32];
  size_str(t, sizeof t, total);
  out_fmt(o, "hakmem: leak report: %s estimated live at exit, in %u stacks (%u samples, one per %u bytes "
          "on average)%s\n", t, (uint64_t)stacks, samples, (uint64_t)g_cfg.prof_sample,
          stacks ? ", biggest first:" : "");
  /* Biggest first, by selection: PROF_TOP passes over the buckets. */
  double last = 1e300;
  uint32_t last_i = UINT32_MAX;
  for (unsigned k = 0; k < PROF_TOP && k < stacks; k++) {
    uint32_t best = UINT32_MAX;
    double bv = -1;
    for (uint32_t i = 0; i < n; i++) {
      prof_bucket_t *b = &g_pt.buckets[i];
      if (!g_sum[i].live_n) continue;
      double v = (double)g_sum[i].live_n * (double)b->usable * unsample(b->usable);
      bool below = v < last || (v == last && i > last_i);
      if (below && v > bv) bv = v, best = i;
    }
    if (best == UINT32_MAX) break;
    last = bv, last_i = best;
    prof_bucket_t *b = &g_pt.buckets[best];
    prof_cnt_t *c = &g_sum[best];
    size_str(t, sizeof t, bv);
    out_fmt(o, "#%u %s in about %u blocks of %u bytes (%u requested on average; %u samples)\n", (uint64_t)k + 1,
            t, (uint64_t)((double)c->live_n * unsample(b->usable) + 0.5), b->usable, c->live_req / c->live_n,
            c->live_n);
    for (uint32_t f = 0; f < b->depth && f < 12; f++) say_frame(o, b->pc[f]);
  }
  out_flush(o);
  shards_unlock();
}

/* --- start-up, signal, fork, exit -------------------------------------------- */

static int self_range(struct dl_phdr_info *info, size_t size, void *arg) {
  (void)size;
  uintptr_t me = (uintptr_t)arg;
  for (int i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X)) continue;
    uintptr_t lo = info->dlpi_addr + ph->p_vaddr, hi = lo + ph->p_memsz;
    if (me >= lo && me < hi) {
      /* hakmem linked into the program itself: its code is not all of the
       * program's, so only the frames of the sampling paths are skipped */
      if (!info->dlpi_name || !info->dlpi_name[0]) return 2;
      g_self_lo = lo, g_self_hi = hi;
      return 1;
    }
  }
  return 0;
}

void hak_prof_init(void) {
  if (!g_cfg.prof) return;
  g_pt.buckets = hak_os_map(PROF_BUCKETS * sizeof(prof_bucket_t));
  g_pt.bidx = hak_os_map(PROF_BIDX * sizeof(uint32_t));
  if (!g_pt.buckets || !g_pt.bidx) {
    hak_say("hakmem: HAKMEM_PROF: no memory for the sample table; profiling off\n", 68);
    return;
  }
  /* the index is probed without a lock: its pages are written once here,
   * so that no probe maps the zero page for an insert to fault on again */
  for (size_t i = 0; i < PROF_BIDX; i += HAK_PAGE / sizeof(uint32_t)) touch_for_write(&g_pt.bidx[i]);
  atomic_store_explicit(&g_w.next_dump, (int64_t)g_cfg.prof_interval, memory_order_relaxed);
  for (unsigned c = 0; c < HAK_NCLASS; c++) g_class_est[c] = (float)((double)g_class[c].size * unsample(g_class[c].size));
  g_heap_sampler = sample_slab;
  g_heap_sample_mean = g_cfg.prof_sample;
  g_prof_on = true;
}

static sem_t g_sig_sem;
static void prof_sig_handler(int sig) {
  (void)sig;
  int saved = errno;
  sem_post(&g_sig_sem); /* async-signal-safe: the thread below writes the profile */
  errno = saved;
}
static void *sig_main(void *arg) {
  (void)arg;
  for (;;) {
    while (sem_wait(&g_sig_sem) != 0) {
    }
    dump_file(NULL);
  }
  return NULL;
}

/* From the library's constructor, where dlopen and thread creation (which
 * allocate) are safe: the unwinder is loaded and run once so that its first
 * use, which allocates, is not inside a sample. */
void hak_prof_constructor(void) {
  if (!g_prof_on || atomic_load(&g_pt.ready)) return;
  t_busy++;
  if (dl_iterate_phdr(self_range, (void *)(uintptr_t)hak_prof_init) == 2) {
    /* static link: hakmem's objects lie together in the program's .text;
     * a function of each bounds them (cold parts, .text.unlikely, fall
     * outside: a frame of big_malloc may stay on top of a stack) */
    uintptr_t f[] = {(uintptr_t)hak_malloc, (uintptr_t)hak_heap_refill_alloc, (uintptr_t)hak_heap_prof_alloc,
                     (uintptr_t)capture, (uintptr_t)hak_prof_init, (uintptr_t)hak_big_alloc,
                     (uintptr_t)hak_sp_acquire, (uintptr_t)hak_lookup_slow, (uintptr_t)hak_os_map,
                     (uintptr_t)hak_lock_slow, (uintptr_t)hak_fmt, (uintptr_t)hak_config_init,
                     (uintptr_t)hak_size_class_init, (uintptr_t)hak_stats_get, (uintptr_t)hak_memalign,
                     (uintptr_t)hak_malloc_usable_size, (uintptr_t)hak_owns};
    g_self_lo = g_self_hi = f[0];
    for (unsigned i = 0; i < sizeof f / sizeof f[0]; i++) {
      if (f[i] < g_self_lo) g_self_lo = f[i];
      if (f[i] > g_self_hi) g_self_hi = f[i];
    }
    g_self_hi += 4096;
  }
  g_unwinder = g_cfg.prof_unwind;
  /* libunwind's fast path crashes under ThreadSanitizer (tsan.* tests
   * with HAKMEM_PROF=1): there auto takes libgcc's */
  if (g_unwinder == HAK_UNWIND_AUTO && dlsym(RTLD_DEFAULT, "__tsan_init")) g_unwinder = HAK_UNWIND_LIBGCC;
  if (g_unwinder == HAK_UNWIND_AUTO || g_unwinder == HAK_UNWIND_LIBUNWIND) {
    g_unw_backtrace = hak_os_load_unwinder();
    g_unwinder = g_unw_backtrace ? HAK_UNWIND_LIBUNWIND : HAK_UNWIND_LIBGCC;
    if (!g_unw_backtrace && g_cfg.prof_unwind == HAK_UNWIND_LIBUNWIND)
      hak_say("hakmem: HAKMEM_PROF_UNWIND=libunwind: libunwind.so.8 not found; libgcc's unwinder instead\n", 89);
  }
  uintptr_t pc[PROF_DEPTH];
  capture(pc); /* primes it: libgcc_s is loaded, caches filled */
  if (g_cfg.prof_signal && sem_init(&g_sig_sem, 0, 0) == 0 && hak_os_thread(sig_main, 64u << 10, "hakmem-prof")) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = prof_sig_handler;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(g_cfg.prof_signal, &sa, NULL);
  }
  t_busy--;
  atomic_store_explicit(&g_pt.ready, 1, memory_order_release);
}

void hak_prof_exit(void) {
  if (!g_prof_on) return;
  dump_file(NULL);
  if (g_cfg.prof_leaks) leak_report();
}

/* fork: every shard (they hold the profiler's heaps), then the bucket lock */
void hak_prof_lock(void) {
  shards_lock();
  hak_lock(&g_w.bucket_lock);
}
void hak_prof_unlock(void) {
  hak_unlock(&g_w.bucket_lock);
  shards_unlock();
}
void hak_prof_atfork_child(void) {
  for (unsigned i = 0; i <= HAK_PROF_HEAPS; i++) hak_lock_reset(&g_shard[i].lock);
  hak_lock_reset(&g_w.bucket_lock);
  atomic_store_explicit(&g_seq, 0, memory_order_relaxed); /* the child's own pid, its own sequence */
  if (g_prof_on && g_cfg.prof_signal) {
    if (!hak_os_thread(sig_main, 64u << 10, "hakmem-prof")) hak_say("hakmem: HAKMEM_PROF_SIGNAL: no thread in the child\n", 52);
  }
}
