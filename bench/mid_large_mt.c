/* mid_large_mt THREADS CYCLES WS MIN MAX SEED
 *
 * THREADS threads (default 2), each with WS slots (default 2048) and CYCLES
 * iterations (default 40000) of the random_mixed loop, sizes uniform in
 * MIN..MAX bytes (default 8192..32768). Every block is touched on each 4 KiB
 * page. ops = THREADS * CYCLES.
 */
#include "slots_core.h"

#define USAGE "mid_large_mt THREADS CYCLES WS MIN MAX SEED   (defaults: 2 40000 2048 8192 32768 1234567)"

int main(int argc, char **argv) {
  bench_workload_name = "mid_large_mt";
  if (argc > 7) bench_usage(USAGE);
  uint64_t nt = bench_arg_u64(argc, argv, 1, 2, USAGE);
  uint64_t cycles = bench_arg_u64(argc, argv, 2, 40000, USAGE);
  uint64_t ws = bench_arg_u64(argc, argv, 3, 2048, USAGE);
  uint64_t mn = bench_arg_u64(argc, argv, 4, 8192, USAGE);
  uint64_t mx = bench_arg_u64(argc, argv, 5, 32768, USAGE);
  uint64_t seed = bench_arg_u64(argc, argv, 6, 1234567, USAGE);
  if (nt < 1 || nt > 1024 || cycles < 1 || ws < 1 || ws > (1u << 24) || mn < 1 || mx < mn ||
      mx > (1u << 30))
    bench_usage(USAGE);
  return slots_main((uint32_t)nt, cycles, (uint32_t)ws, (uint32_t)mn, (uint32_t)mx, seed);
}
