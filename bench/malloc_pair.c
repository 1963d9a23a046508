/* malloc_pair ITERS SIZE
 *
 * The smallest measurement there is: one thread, malloc(SIZE) immediately
 * followed by free, ITERS times (default 50M pairs of 32 bytes). It shows the
 * cost of an allocator's local fast paths and nothing else; the workloads of
 * scripts/bench.py measure real patterns. ops = 2 * ITERS.
 * Not part of the comparison run: build and run it by hand, e.g.
 *   cc -O2 -Wall bench/malloc_pair.c -o /tmp/malloc_pair
 *   LD_PRELOAD=build/libhakmem.so /tmp/malloc_pair
 */
#include "bench_common.h"

#define USAGE "malloc_pair ITERS SIZE   (defaults: 50000000 32)"

int main(int argc, char **argv) {
  bench_workload_name = "malloc_pair";
  if (argc > 3) bench_usage(USAGE);
  uint64_t iters = bench_arg_u64(argc, argv, 1, 50000000, USAGE);
  uint64_t size = bench_arg_u64(argc, argv, 2, 32, USAGE);
  if (size < 1) bench_usage(USAGE);
  void *volatile sink;
  double t0 = bench_now();
  for (uint64_t i = 0; i < iters; i++) {
    char *p = (char *)malloc(size);
    if (!p) bench_fail("malloc(%" PRIu64 ") returned NULL", size);
    p[0] = (char)i;
    sink = p;
    free(p);
  }
  double t1 = bench_now();
  (void)sink;
  char owned[64] = "";
  void *probe = malloc(size);
  bench_owned_check(owned, sizeof owned, &probe, 1, size, size, 1);
  free(probe);
  bench_result(2 * iters, t1 - t0, owned, "");
  return 0;
}
