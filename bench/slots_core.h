/* slots_core.h — the random alloc/free loop shared by random_mixed,
 * thread_scale and mid_large_mt.
 *
 * A thread owns WS slots. Each iteration draws one random number: its high
 * half picks a slot, its low half a size in [minsz, maxsz]. A full slot is
 * checked and freed, an empty one gets a new block that is tagged (touched).
 * So about half the slots are live at any time and every iteration is exactly
 * one malloc or one free.
 *
 * With FLOOR_ALLOC defined, the loop drives a trivial per-class free-list
 * allocator compiled into the program instead of malloc/free: the "floor"
 * that shows what the loop itself costs.
 */
#ifndef SLOTS_CORE_H
#define SLOTS_CORE_H

#include "bench_common.h"
#include <pthread.h>

#ifdef FLOOR_ALLOC
/* Size classes of 16 bytes; blocks carved from 1 MiB chunks; freed blocks
 * pushed on the class's list. Never returns memory. Thread-local so that a
 * multi-threaded driver would also work. */
#define FLOOR_CLASSES 4097 /* up to 64 KiB */
#define FLOOR_CHUNK (1u << 20)
static _Thread_local void *floor_head[FLOOR_CLASSES];
static _Thread_local char *floor_cur, *floor_end;

static inline void *floor_malloc(size_t n) {
  size_t c = (n + 15) >> 4;
  void *p = floor_head[c];
  if (p) {
    floor_head[c] = *(void **)p;
    return p;
  }
  size_t sz = c << 4;
  if (!floor_cur || (size_t)(floor_end - floor_cur) < sz) {
    floor_cur = (char *)malloc(FLOOR_CHUNK);
    if (!floor_cur) return NULL;
    floor_end = floor_cur + FLOOR_CHUNK;
  }
  p = floor_cur;
  floor_cur += sz;
  return p;
}

static inline void floor_free(void *p, size_t n) {
  size_t c = (n + 15) >> 4;
  *(void **)p = floor_head[c];
  floor_head[c] = p;
}
#define SLOT_MALLOC(n) floor_malloc(n)
#define SLOT_FREE(p, n) floor_free((p), (n))
#else
#define SLOT_MALLOC(n) malloc(n)
#define SLOT_FREE(p, n) ((void)(n), free(p))
#endif

typedef struct {
  void *p;
  uint64_t tag;
  uint32_t size;
} slot_t;

typedef struct {
  /* input */
  uint64_t iters, seed;
  uint32_t ws, minsz, maxsz, id;
  pthread_barrier_t *start;
  /* output */
  slot_t *slots;
  uint64_t sum_alloc, sum_free, mallocs, frees;
} slots_job;

static void slots_prepare(slots_job *j) {
  j->slots = (slot_t *)calloc(j->ws, sizeof(slot_t));
  if (!j->slots) bench_fail("calloc of %u slots failed", j->ws);
  j->sum_alloc = j->sum_free = j->mallocs = j->frees = 0;
}

/* The timed loop. */
static void slots_run(slots_job *j) {
  bench_rng rng;
  bench_rng_seed(&rng, j->seed, j->id + 1);
  slot_t *slots = j->slots;
  const uint32_t ws = j->ws, span = j->maxsz - j->minsz + 1, minsz = j->minsz;
  uint64_t sa = 0, sf = 0, nm = 0, nf = 0;
  for (uint64_t i = 0; i < j->iters; i++) {
    uint64_t r = bench_rng_next(&rng);
    slot_t *s = &slots[bench_bounded32((uint32_t)(r >> 32), ws)];
    if (s->p) {
      if (!block_ok(s->p, s->size, s->tag))
        bench_fail("thread %u: block %p of %u bytes lost its contents", j->id, s->p, s->size);
      sf += s->tag;
      SLOT_FREE(s->p, s->size);
      s->p = NULL;
      nf++;
    } else {
      uint32_t size = minsz + bench_bounded32((uint32_t)r, span);
      void *p = SLOT_MALLOC(size);
      if (!p) bench_fail("thread %u: malloc(%u) returned NULL", j->id, size);
      block_fill(p, size, r);
      s->p = p;
      s->size = size;
      s->tag = r;
      sa += r;
      nm++;
    }
  }
  j->sum_alloc = sa;
  j->sum_free = sf;
  j->mallocs = nm;
  j->frees = nf;
}

/* After timing: check and free what is left, and the checksums. The owned
 * sample (if any) must be taken before this. */
static void slots_finish(slots_job *j) {
  for (uint32_t i = 0; i < j->ws; i++) {
    slot_t *s = &j->slots[i];
    if (!s->p) continue;
    if (!block_ok(s->p, s->size, s->tag))
      bench_fail("thread %u: live block %p of %u bytes lost its contents", j->id, s->p, s->size);
    j->sum_free += s->tag;
    SLOT_FREE(s->p, s->size);
    s->p = NULL;
  }
  if (j->sum_free != j->sum_alloc)
    bench_fail("thread %u: checksum mismatch (allocated %016" PRIx64 ", freed %016" PRIx64 ")", j->id,
               j->sum_alloc, j->sum_free);
  free(j->slots);
  j->slots = NULL;
}

static void *slots_thread(void *arg) {
  slots_job *j = (slots_job *)arg;
  slots_prepare(j);
  pthread_barrier_wait(j->start);
  slots_run(j);
  pthread_barrier_wait(j->start); /* main stops the clock here */
  return NULL;
}

/* Run NT threads (NT >= 1; with 1 the loop runs on the main thread). Prints
 * the RESULT line. */
static int slots_main(uint32_t nt, uint64_t iters_per_thread, uint32_t ws, uint32_t minsz, uint32_t maxsz,
                      uint64_t seed) {
  if (nt < 1 || ws < 1 || minsz < 1 || maxsz < minsz || iters_per_thread < 1)
    bench_fail("bad parameters");
  slots_job *jobs = (slots_job *)calloc(nt, sizeof(slots_job));
  if (!jobs) bench_fail("calloc failed");
  pthread_barrier_t bar;
  double t0, t1;
  for (uint32_t i = 0; i < nt; i++) {
    jobs[i].iters = iters_per_thread;
    jobs[i].seed = seed;
    jobs[i].ws = ws;
    jobs[i].minsz = minsz;
    jobs[i].maxsz = maxsz;
    jobs[i].id = i;
    jobs[i].start = &bar;
  }
  if (nt == 1) {
    slots_prepare(&jobs[0]);
    t0 = bench_now();
    slots_run(&jobs[0]);
    t1 = bench_now();
  } else {
    pthread_barrier_init(&bar, NULL, nt + 1);
    pthread_t *th = (pthread_t *)calloc(nt, sizeof(pthread_t));
    if (!th) bench_fail("calloc failed");
    for (uint32_t i = 0; i < nt; i++)
      if (pthread_create(&th[i], NULL, slots_thread, &jobs[i]) != 0) bench_fail("pthread_create failed");
    pthread_barrier_wait(&bar);
    t0 = bench_now();
    pthread_barrier_wait(&bar);
    t1 = bench_now();
    for (uint32_t i = 0; i < nt; i++) pthread_join(th[i], NULL);
    pthread_barrier_destroy(&bar);
    free(th);
  }
  /* proof of service on the live blocks of thread 0 plus fresh blocks */
  char owned[64] = "";
#ifndef FLOOR_ALLOC
  {
    void **live = (void **)calloc(ws, sizeof(void *));
    if (!live) bench_fail("calloc failed");
    for (uint32_t i = 0; i < ws; i++) live[i] = jobs[0].slots[i].p;
    bench_owned_check(owned, sizeof owned, live, ws, minsz, maxsz, BENCH_OWN_FRESH);
    free(live);
  }
#endif
  uint64_t ops = 0, nm = 0, nf = 0;
  for (uint32_t i = 0; i < nt; i++) {
    ops += jobs[i].mallocs + jobs[i].frees;
    nm += jobs[i].mallocs;
    nf += jobs[i].frees;
    slots_finish(&jobs[i]);
  }
  if (ops != (uint64_t)nt * iters_per_thread) bench_fail("operation count mismatch");
  char extra[128];
  snprintf(extra, sizeof extra, "threads=%u,mallocs=%" PRIu64 ",frees=%" PRIu64, nt, nm, nf);
  bench_result(ops, t1 - t0, owned, extra);
  free(jobs);
  return 0;
}

#endif
