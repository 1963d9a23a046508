/* realloc_grow OBJECTS MAXVEC SEED
 *
 * Growth through realloc. 16 objects are alive at a time and grown in turn,
 * one step per visit, so their reallocs interleave:
 *  - 3 in 4 are strings: they start at 1 to 16 bytes and grow by 1 to 32
 *    bytes per step (realloc to the exact new length + 1) up to a random
 *    length of 16..4096;
 *  - 1 in 4 are vectors of 8-byte elements: capacity starts at 4 and doubles
 *    when full, up to a random length of 64 elements .. MAXVEC bytes
 *    (log-uniform, default 1 MiB).
 * Every appended byte or element is written; a finished object's whole
 * content is checked before it is freed and replaced, until OBJECTS objects
 * have been finished. ops = malloc + realloc + free calls.
 */
#include "bench_common.h"

#define USAGE "realloc_grow OBJECTS MAXVEC SEED   (defaults: 20000 1048576 1234567)"
#define LIVE 16

typedef struct {
  unsigned char *p;
  size_t len, target, cap; /* bytes for strings, elements for vectors */
  uint64_t key;
  int vec;
} gobj;

static inline unsigned char str_byte(uint64_t key, size_t i) {
  return (unsigned char)(key + i * 31u + (i >> 8));
}
static inline uint64_t vec_elem(uint64_t key, size_t i) {
  return key ^ (i * 0x9E3779B97F4A7C15ull);
}

static uint64_t ops;

static void obj_start(gobj *o, bench_rng *rng, size_t maxvec_elems) {
  uint64_t r = bench_rng_next(rng);
  o->key = bench_rng_next(rng);
  o->vec = (r & 3) == 0;
  if (o->vec) {
    /* log-uniform target in [64, maxvec_elems] */
    unsigned lo = 6, hi = 0;
    while (((size_t)1 << (hi + 1)) <= maxvec_elems) hi++;
    if (hi < lo) hi = lo;
    unsigned e = lo + bench_bounded32((uint32_t)(r >> 32), hi - lo + 1);
    size_t base = (size_t)1 << e;
    o->target = base + bench_bounded32((uint32_t)(r >> 8), (uint32_t)base);
    if (o->target > maxvec_elems) o->target = maxvec_elems;
    if (o->target < 64) o->target = 64;
    o->cap = 4;
    o->len = 0;
    o->p = (unsigned char *)malloc(o->cap * 8);
    if (!o->p) bench_fail("malloc(%zu) returned NULL", o->cap * 8);
  } else {
    o->target = bench_uniform((uint32_t)(r >> 32), 16, 4096);
    o->len = bench_uniform((uint32_t)bench_rng_next(rng), 1, 16); /* tiny start */
    o->p = (unsigned char *)malloc(o->len + 1);
    if (!o->p) bench_fail("malloc(%zu) returned NULL", o->len + 1);
    for (size_t i = 0; i < o->len; i++) o->p[i] = str_byte(o->key, i);
    o->p[o->len] = 0;
    o->cap = o->len + 1;
  }
  ops++;
}

static void obj_check_free(gobj *o) {
  if (o->vec) {
    for (size_t i = 0; i < o->len; i++) {
      uint64_t v;
      memcpy(&v, o->p + i * 8, 8);
      if (v != vec_elem(o->key, i))
        bench_fail("vector %p (len %zu cap %zu): element %zu is wrong", (void *)o->p, o->len, o->cap, i);
    }
  } else {
    for (size_t i = 0; i < o->len; i++)
      if (o->p[i] != str_byte(o->key, i))
        bench_fail("string %p (len %zu): byte %zu is wrong", (void *)o->p, o->len, i);
    if (o->p[o->len] != 0) bench_fail("string %p lost its terminator", (void *)o->p);
  }
  free(o->p);
  o->p = NULL;
  ops++;
}

/* One growth step; returns 1 when the object reached its target. */
static int obj_step(gobj *o, bench_rng *rng) {
  if (o->vec) {
    if (o->len == o->cap) {
      /* spot check around the old end before and after the move */
      uint64_t last;
      memcpy(&last, o->p + (o->len - 1) * 8, 8);
      if (last != vec_elem(o->key, o->len - 1)) bench_fail("vector %p: last element is wrong", (void *)o->p);
      size_t ncap = o->cap * 2;
      unsigned char *q = (unsigned char *)realloc(o->p, ncap * 8);
      if (!q) bench_fail("realloc(%zu) returned NULL", ncap * 8);
      ops++;
      o->p = q;
      o->cap = ncap;
      memcpy(&last, o->p + (o->len - 1) * 8, 8);
      if (last != vec_elem(o->key, o->len - 1))
        bench_fail("vector %p: realloc to %zu bytes lost the content", (void *)o->p, ncap * 8);
    }
    size_t end = o->cap < o->target ? o->cap : o->target;
    for (size_t i = o->len; i < end; i++) {
      uint64_t v = vec_elem(o->key, i);
      memcpy(o->p + i * 8, &v, 8);
    }
    o->len = end;
    return o->len >= o->target;
  }
  size_t step = 1 + bench_bounded32((uint32_t)bench_rng_next(rng), 32);
  size_t nlen = o->len + step;
  if (nlen > o->target) nlen = o->target;
  if (o->p[o->len - 1] != str_byte(o->key, o->len - 1) || o->p[o->len] != 0)
    bench_fail("string %p: end of string is wrong", (void *)o->p);
  unsigned char *q = (unsigned char *)realloc(o->p, nlen + 1);
  if (!q) bench_fail("realloc(%zu) returned NULL", nlen + 1);
  ops++;
  o->p = q;
  if (o->p[o->len - 1] != str_byte(o->key, o->len - 1))
    bench_fail("string %p: realloc to %zu bytes lost the content", (void *)o->p, nlen + 1);
  for (size_t i = o->len; i < nlen; i++) o->p[i] = str_byte(o->key, i);
  o->p[nlen] = 0;
  o->len = nlen;
  o->cap = nlen + 1;
  return o->len >= o->target;
}

int main(int argc, char **argv) {
  bench_workload_name = "realloc_grow";
  if (argc > 4) bench_usage(USAGE);
  uint64_t objects = bench_arg_u64(argc, argv, 1, 20000, USAGE);
  uint64_t maxvec = bench_arg_u64(argc, argv, 2, 1u << 20, USAGE);
  uint64_t seed = bench_arg_u64(argc, argv, 3, 1234567, USAGE);
  if (objects < 1 || maxvec < 1024 || maxvec > (1ull << 32)) bench_usage(USAGE);
  size_t maxvec_elems = (size_t)maxvec / 8;

  bench_rng rng;
  bench_rng_seed(&rng, seed, 1);
  gobj objs[LIVE];
  uint64_t finished = 0, vectors = 0, bytes = 0;
  double t0 = bench_now();
  for (int i = 0; i < LIVE; i++) obj_start(&objs[i], &rng, maxvec_elems);
  for (unsigned i = 0; finished < objects; i = (i + 1) % LIVE) {
    gobj *o = &objs[i];
    if (obj_step(o, &rng)) {
      finished++;
      vectors += (uint64_t)o->vec;
      bytes += o->vec ? o->len * 8 : o->len;
      obj_check_free(o);
      obj_start(o, &rng, maxvec_elems);
    }
  }
  double t1 = bench_now();
  uint64_t timed_ops = ops;

  char owned[64] = "";
  {
    void *live[LIVE];
    for (int i = 0; i < LIVE; i++) live[i] = objs[i].p;
    bench_owned_check(owned, sizeof owned, live, LIVE, 16, (size_t)maxvec, BENCH_OWN_FRESH);
  }
  for (int i = 0; i < LIVE; i++) {
    obj_check_free(&objs[i]);
  }
  char extra[128];
  snprintf(extra, sizeof extra, "objects=%" PRIu64 ",vectors=%" PRIu64 ",mib_grown=%.1f", finished, vectors,
           (double)bytes / 1048576.0);
  bench_result(timed_ops, t1 - t0, owned, extra);
  return 0;
}
