/* thread_scale THREADS ITERS WS SEED
 *
 * random_mixed (sizes 16..1040 bytes) on THREADS threads at once. ITERS is the
 * total number of iterations, divided evenly among the threads; each thread
 * has its own WS slots. Workload name: thread_scale_<THREADS>.
 */
#include "slots_core.h"

#define USAGE "thread_scale THREADS ITERS WS SEED   (defaults: 4 2000000 4096 1234567; ITERS is the total)"

int main(int argc, char **argv) {
  static char name[48];
  if (argc > 5) bench_usage(USAGE);
  uint64_t nt = bench_arg_u64(argc, argv, 1, 4, USAGE);
  uint64_t iters = bench_arg_u64(argc, argv, 2, 2000000, USAGE);
  uint64_t ws = bench_arg_u64(argc, argv, 3, 4096, USAGE);
  uint64_t seed = bench_arg_u64(argc, argv, 4, 1234567, USAGE);
  if (nt < 1 || nt > 1024 || ws < 1 || ws > (1u << 24) || iters < nt) bench_usage(USAGE);
  snprintf(name, sizeof name, "thread_scale_%u", (unsigned)nt);
  bench_workload_name = name;
  return slots_main((uint32_t)nt, iters / nt, (uint32_t)ws, 16, 1040, seed);
}
