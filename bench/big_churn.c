/* big_churn ITERS WS SEED
 *
 * Big blocks: WS slots (default 4); each iteration picks a random slot, frees
 * it if full (after checking it), otherwise allocates a block of 1..64 MiB
 * (log-uniform: a power-of-two band 1-2, 2-4, ... 32-64 MiB, then uniform in
 * the band, byte granular) and writes one byte in every 4 KiB page, as a
 * program that uses its buffer would. ops = ITERS. Also reports the minor
 * page faults per operation (extra=minflt_per_op=...), which show whether the
 * allocator hands back mappings that are already populated.
 */
#include "bench_common.h"

#define USAGE "big_churn ITERS WS SEED   (defaults: 400 4 1234567)"
#define MIB ((size_t)1 << 20)

typedef struct {
  void *p;
  uint64_t tag;
  size_t size;
} bslot;

int main(int argc, char **argv) {
  bench_workload_name = "big_churn";
  if (argc > 4) bench_usage(USAGE);
  uint64_t iters = bench_arg_u64(argc, argv, 1, 400, USAGE);
  uint64_t ws = bench_arg_u64(argc, argv, 2, 4, USAGE);
  uint64_t seed = bench_arg_u64(argc, argv, 3, 1234567, USAGE);
  if (iters < 1 || ws < 1 || ws > 4096) bench_usage(USAGE);
  bslot *slots = (bslot *)calloc(ws, sizeof(bslot));
  if (!slots) bench_fail("calloc failed");
  bench_rng rng;
  bench_rng_seed(&rng, seed, 1);
  uint64_t sa = 0, sf = 0, nm = 0, nf = 0, bytes = 0;
  long f0 = bench_minflt();
  double t0 = bench_now();
  for (uint64_t i = 0; i < iters; i++) {
    uint64_t r = bench_rng_next(&rng);
    bslot *s = &slots[bench_bounded32((uint32_t)(r >> 32), (uint32_t)ws)];
    if (s->p) {
      if (!block_ok(s->p, s->size, s->tag)) bench_fail("block %p of %zu bytes lost its contents", s->p, s->size);
      sf += s->tag;
      free(s->p);
      s->p = NULL;
      nf++;
    } else {
      unsigned band = bench_bounded32((uint32_t)r, 6);         /* 0..5 */
      size_t lo = MIB << band;                                  /* 1..32 MiB */
      size_t size = lo + (size_t)(((r >> 8) & 0xffffff) * (lo >> 24)); /* [lo, 2lo) */
      if (size < lo) size = lo;
      void *p = malloc(size);
      if (!p) bench_fail("malloc(%zu) returned NULL", size);
      uint64_t tag = r ^ 0xB16B00B5ull;
      block_fill(p, size, tag);
      s->p = p;
      s->size = size;
      s->tag = tag;
      sa += tag;
      nm++;
      bytes += size;
    }
  }
  double t1 = bench_now();
  long f1 = bench_minflt();

  char owned[64] = "";
  {
    void **live = (void **)calloc(ws, sizeof(void *));
    if (!live) bench_fail("calloc failed");
    for (uint64_t i = 0; i < ws; i++) live[i] = slots[i].p;
    bench_owned_check(owned, sizeof owned, live, ws, MIB, 64 * MIB, 16);
    free(live);
  }
  for (uint64_t i = 0; i < ws; i++) {
    bslot *s = &slots[i];
    if (!s->p) continue;
    if (!block_ok(s->p, s->size, s->tag)) bench_fail("live block %p of %zu bytes lost its contents", s->p, s->size);
    sf += s->tag;
    free(s->p);
  }
  if (sa != sf) bench_fail("checksum mismatch");
  free(slots);
  char extra[128];
  snprintf(extra, sizeof extra, "minflt_per_op=%.1f,mallocs=%" PRIu64 ",frees=%" PRIu64 ",avg_mib=%.2f",
           (double)(f1 - f0) / (double)iters, nm, nf, nm ? (double)bytes / (double)nm / (double)MIB : 0.0);
  bench_result(iters, t1 - t0, owned, extra);
  return 0;
}
