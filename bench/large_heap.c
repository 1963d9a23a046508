/* large_heap THREADS SLOTS OPS SEED MIN MAX
 *
 * A server-shaped heap: THREADS threads (default 8, more than this machine's
 * cores, as real servers run), each owning SLOTS slots (default 40000) and
 * doing OPS operations (default 1000000) on them. Each operation picks a
 * random slot: an empty one gets a block from malloc (3 in 4) or calloc
 * (1 in 4); a full one is checked and then freed (5 in 8) or realloc'ed to a
 * new random size (3 in 8). About 62 % of the slots stay live, so a thread
 * keeps tens of thousands of blocks and the whole heap gigabytes.
 *
 * Sizes are log-uniform in MIN..MAX (default 1..65536): a power-of-two band
 * is picked uniformly, then a size inside it, so small blocks are common and
 * big ones still hold most of the bytes, as in real programs.
 *
 * Every block is touched the way a program uses its memory: a tag in its
 * first bytes, one byte in every 4 KiB page and its last byte (block_fill),
 * checked before free and before realloc (the bytes realloc must keep);
 * calloc'ed blocks must read zero on those bytes first. Checksums of the
 * tags allocated and freed must agree at the end. ops = THREADS * OPS calls
 * of malloc, calloc, realloc and free; the clock covers the heap's growth
 * from empty, where the page faults are, and its steady churn.
 */
#include "bench_common.h"
#include <pthread.h>

#define USAGE "large_heap THREADS SLOTS OPS SEED MIN MAX   (defaults: 8 40000 1000000 1234567 1 65536)"

typedef struct {
  void *p;
  uint64_t tag;
  size_t size;
} lh_slot;

typedef struct {
  /* input */
  uint32_t id, nslots;
  uint64_t ops, seed;
  size_t minsz, maxsz;
  pthread_barrier_t *bar;
  /* output */
  lh_slot *slots;
  uint64_t sum_alloc, sum_free, mallocs, callocs, reallocs, frees;
  size_t live, peak_live;
} lh_job;

static unsigned log2_floor(size_t x) {
  unsigned e = 0;
  while (x >>= 1) e++;
  return e;
}

/* A power-of-two band [2^e, 2^(e+1)) clipped to [mn, mx], then uniform in it. */
static size_t lh_size(uint64_t r, size_t mn, size_t mx) {
  unsigned elo = log2_floor(mn), ehi = log2_floor(mx);
  unsigned e = elo + bench_bounded32((uint32_t)(r >> 32), ehi - elo + 1);
  size_t lo = (size_t)1 << e, hi = (lo << 1) - 1;
  if (lo < mn) lo = mn;
  if (hi > mx) hi = mx;
  return bench_uniform((uint32_t)r, lo, hi);
}

/* Are the bytes block_fill(p, oldsz, tag) wrote below newsz still there?
 * (what realloc must have kept) */
static int lh_prefix_ok(const unsigned char *b, size_t oldsz, size_t newsz, uint64_t tag) {
  if (oldsz >= 9) {
    unsigned char t[8];
    memcpy(t, &tag, 8);
    if (memcmp(b, t, newsz < 8 ? newsz : 8) != 0) return 0;
  } else if (b[0] != (unsigned char)tag) {
    return 0;
  }
  for (size_t off = 4096; off + 1 < oldsz && off < newsz; off += 4096)
    if (b[off] != bench_tag_byte(tag, off)) return 0;
  if (oldsz > 1 && oldsz - 1 < newsz && b[oldsz - 1] != bench_tag_byte(tag, 1)) return 0;
  return 1;
}

/* calloc'ed memory must be zero on every byte block_fill is about to write. */
static int lh_zero_ok(const unsigned char *b, size_t size) {
  for (size_t i = 0; i < 8 && i < size; i++)
    if (b[i]) return 0;
  for (size_t off = 4096; off + 1 < size; off += 4096)
    if (b[off]) return 0;
  return b[size - 1] == 0;
}

static void lh_run(lh_job *j) {
  bench_rng rng;
  bench_rng_seed(&rng, j->seed, j->id + 1);
  uint64_t sa = 0, sf = 0, nm = 0, nc = 0, nr = 0, nf = 0;
  size_t live = 0, peak = 0;
  for (uint64_t i = 0; i < j->ops; i++) {
    uint64_t r = bench_rng_next(&rng);   /* slot (high half), operation (low bits) */
    uint64_t t = bench_rng_next(&rng);   /* size, and the new block's tag */
    lh_slot *s = &j->slots[bench_bounded32((uint32_t)(r >> 32), j->nslots)];
    if (!s->p) {
      size_t size = lh_size(t, j->minsz, j->maxsz);
      void *p;
      if ((r & 3) == 0) {
        p = calloc(1, size);
        if (!p) bench_fail("thread %u: calloc(1, %zu) returned NULL", j->id, size);
        if (!lh_zero_ok((unsigned char *)p, size))
          bench_fail("thread %u: calloc(1, %zu) gave %p with non-zero bytes", j->id, size, p);
        nc++;
      } else {
        p = malloc(size);
        if (!p) bench_fail("thread %u: malloc(%zu) returned NULL", j->id, size);
        nm++;
      }
      block_fill(p, size, t);
      s->p = p;
      s->size = size;
      s->tag = t;
      sa += t;
      live += size;
    } else if ((r & 7) < 5) {
      if (!block_ok(s->p, s->size, s->tag))
        bench_fail("thread %u: block %p of %zu bytes lost its contents", j->id, s->p, s->size);
      sf += s->tag;
      free(s->p);
      live -= s->size;
      s->p = NULL;
      nf++;
    } else {
      size_t size = lh_size(t, j->minsz, j->maxsz);
      if (!block_ok(s->p, s->size, s->tag))
        bench_fail("thread %u: block %p of %zu bytes lost its contents before realloc", j->id, s->p, s->size);
      unsigned char *q = (unsigned char *)realloc(s->p, size);
      if (!q) bench_fail("thread %u: realloc(%p, %zu) returned NULL", j->id, s->p, size);
      if (!lh_prefix_ok(q, s->size, size, s->tag))
        bench_fail("thread %u: realloc from %zu to %zu bytes lost the contents (%p)", j->id, s->size, size, (void *)q);
      sf += s->tag;
      sa += t;
      block_fill(q, size, t);
      live = live - s->size + size;
      s->p = q;
      s->size = size;
      s->tag = t;
      nr++;
    }
    if (live > peak) peak = live;
  }
  j->sum_alloc = sa;
  j->sum_free = sf;
  j->mallocs = nm;
  j->callocs = nc;
  j->reallocs = nr;
  j->frees = nf;
  j->live = live;
  j->peak_live = peak;
}

static void *lh_thread(void *arg) {
  lh_job *j = (lh_job *)arg;
  j->slots = (lh_slot *)calloc(j->nslots, sizeof(lh_slot));
  if (!j->slots) bench_fail("calloc of %u slots failed", j->nslots);
  pthread_barrier_wait(j->bar);
  lh_run(j);
  pthread_barrier_wait(j->bar); /* main stops the clock here */
  return NULL;
}

/* After timing: check and free what is left, then the checksums. */
static void lh_finish(lh_job *j) {
  for (uint32_t i = 0; i < j->nslots; i++) {
    lh_slot *s = &j->slots[i];
    if (!s->p) continue;
    if (!block_ok(s->p, s->size, s->tag))
      bench_fail("thread %u: live block %p of %zu bytes lost its contents", j->id, s->p, s->size);
    j->sum_free += s->tag;
    free(s->p);
    s->p = NULL;
  }
  if (j->sum_free != j->sum_alloc)
    bench_fail("thread %u: checksum mismatch (allocated %016" PRIx64 ", freed %016" PRIx64 ")", j->id, j->sum_alloc,
               j->sum_free);
  free(j->slots);
  j->slots = NULL;
}

int main(int argc, char **argv) {
  bench_workload_name = "large_heap";
  if (argc > 7) bench_usage(USAGE);
  uint64_t nt = bench_arg_u64(argc, argv, 1, 8, USAGE);
  uint64_t nslots = bench_arg_u64(argc, argv, 2, 40000, USAGE);
  uint64_t ops = bench_arg_u64(argc, argv, 3, 1000000, USAGE);
  uint64_t seed = bench_arg_u64(argc, argv, 4, 1234567, USAGE);
  uint64_t mn = bench_arg_u64(argc, argv, 5, 1, USAGE);
  uint64_t mx = bench_arg_u64(argc, argv, 6, 65536, USAGE);
  if (nt < 1 || nt > 1024 || nslots < 1 || nslots > (1u << 26) || ops < 1 || mn < 1 || mx < mn || mx > (1u << 30))
    bench_usage(USAGE);
  lh_job *jobs = (lh_job *)calloc(nt, sizeof(lh_job));
  pthread_t *th = (pthread_t *)calloc(nt, sizeof(pthread_t));
  if (!jobs || !th) bench_fail("calloc failed");
  pthread_barrier_t bar;
  pthread_barrier_init(&bar, NULL, (unsigned)nt + 1);
  for (uint32_t i = 0; i < nt; i++) {
    jobs[i] = (lh_job){.id = i, .nslots = (uint32_t)nslots, .ops = ops, .seed = seed, .minsz = mn, .maxsz = mx,
                       .bar = &bar};
    if (pthread_create(&th[i], NULL, lh_thread, &jobs[i]) != 0) bench_fail("pthread_create failed");
  }
  pthread_barrier_wait(&bar);
  double t0 = bench_now();
  pthread_barrier_wait(&bar);
  double t1 = bench_now();
  for (uint32_t i = 0; i < nt; i++) pthread_join(th[i], NULL);
  pthread_barrier_destroy(&bar);

  /* proof of service: an even sample of every thread's live blocks, plus fresh ones */
  char owned[64] = "";
  {
    void *live[BENCH_OWN_LIVE_MAX];
    size_t n = 0, per = BENCH_OWN_LIVE_MAX / nt ? BENCH_OWN_LIVE_MAX / nt : 1;
    for (uint32_t i = 0; i < nt && n < BENCH_OWN_LIVE_MAX; i++)
      for (uint32_t k = 0, got = 0; k < jobs[i].nslots && got < per && n < BENCH_OWN_LIVE_MAX; k++)
        if (jobs[i].slots[k].p) {
          live[n++] = jobs[i].slots[k].p;
          got++;
        }
    bench_owned_check(owned, sizeof owned, live, n, mn, mx, BENCH_OWN_FRESH);
  }

  uint64_t total = 0, nm = 0, nc = 0, nr = 0, nf = 0;
  double peak_mib = 0;
  for (uint32_t i = 0; i < nt; i++) {
    nm += jobs[i].mallocs;
    nc += jobs[i].callocs;
    nr += jobs[i].reallocs;
    nf += jobs[i].frees;
    peak_mib += (double)jobs[i].peak_live / (1024.0 * 1024.0);
    lh_finish(&jobs[i]);
  }
  total = nm + nc + nr + nf;
  if (total != nt * ops) bench_fail("operation count mismatch");
  char extra[200];
  /* live_mib: the sum of the threads' peaks of live bytes (each thread's
   * heap is near its peak through the steady phase, so this is close to the
   * whole heap's peak) */
  snprintf(extra, sizeof extra,
           "threads=%u,slots=%u,mallocs=%" PRIu64 ",callocs=%" PRIu64 ",reallocs=%" PRIu64 ",frees=%" PRIu64
           ",live_mib=%.0f",
           (unsigned)nt, (unsigned)nslots, nm, nc, nr, nf, peak_mib);
  bench_result(total, t1 - t0, owned, extra);
  free(jobs);
  free(th);
  return 0;
}
