/* random_mixed ITERS WS SEED
 *
 * One thread, WS slots (default 4096), sizes uniform in 16..1040 bytes. Each
 * iteration picks a random slot: frees it if full, otherwise allocates into
 * it and touches the block. ops = ITERS (each one malloc or one free).
 *
 * Built a second time with -DFLOOR_ALLOC as random_mixed_floor: the same loop
 * on a trivial in-program free-list allocator (workload random_mixed_floor).
 */
#include "slots_core.h"

#define USAGE "random_mixed ITERS WS SEED   (defaults: 200000 4096 1234567)"

int main(int argc, char **argv) {
#ifdef FLOOR_ALLOC
  bench_workload_name = "random_mixed_floor";
#else
  bench_workload_name = "random_mixed";
#endif
  if (argc > 4) bench_usage(USAGE);
  uint64_t iters = bench_arg_u64(argc, argv, 1, 200000, USAGE);
  uint64_t ws = bench_arg_u64(argc, argv, 2, 4096, USAGE);
  uint64_t seed = bench_arg_u64(argc, argv, 3, 1234567, USAGE);
  if (iters < 1 || ws < 1 || ws > (1u << 24)) bench_usage(USAGE);
  return slots_main(1, iters, (uint32_t)ws, 16, 1040, seed);
}
