/* untouched N SIZE ROUNDS
 *
 * Buffers reserved and never used: allocates N blocks of SIZE bytes, touches
 * none of them, counts the lines of /proc/self/maps, then frees them all;
 * ROUNDS times. A program that reserves per-connection or per-shard buffers
 * up front does this. What it costs is the allocator's own memory per block
 * (the peak RSS the harness measures) and its mappings (extra=maps=, the
 * most lines seen; Linux's default vm.max_map_count is 65,530). The last
 * byte of one block in 4,096 is written and read back, so the blocks are
 * real. ops = 2 * N * ROUNDS (mallocs and frees).
 */
#include "bench_common.h"

#define USAGE "untouched N SIZE ROUNDS   (defaults: 8192 1048576 1)"

static long maps_lines(void) {
  FILE *f = fopen("/proc/self/maps", "r");
  if (!f) return -1;
  long n = 0;
  int c;
  while ((c = getc(f)) != EOF)
    n += c == '\n';
  fclose(f);
  return n;
}

int main(int argc, char **argv) {
  bench_workload_name = "untouched";
  if (argc > 4) bench_usage(USAGE);
  uint64_t n = bench_arg_u64(argc, argv, 1, 8192, USAGE);
  uint64_t size = bench_arg_u64(argc, argv, 2, 1048576, USAGE);
  uint64_t rounds = bench_arg_u64(argc, argv, 3, 1, USAGE);
  if (n < 1 || size < 1 || rounds < 1) bench_usage(USAGE);
  void **v = (void **)calloc(n, sizeof *v);
  if (!v) bench_fail("calloc of the pointer table failed");
  long maps = 0;
  char owned[64] = "";
  double t0 = bench_now();
  for (uint64_t r = 0; r < rounds; r++) {
    for (uint64_t i = 0; i < n; i++) {
      v[i] = malloc(size);
      if (!v[i]) bench_fail("malloc(%" PRIu64 ") #%" PRIu64 " returned NULL", size, i);
      if (i % 4096 == 0) ((unsigned char *)v[i])[size - 1] = (unsigned char)(i >> 12);
    }
    long m = maps_lines();
    if (m > maps) maps = m;
    if (r == 0) bench_owned_check(owned, sizeof owned, v, n, size, size, 1);
    for (uint64_t i = 0; i < n; i++) {
      if (i % 4096 == 0 && ((unsigned char *)v[i])[size - 1] != (unsigned char)(i >> 12))
        bench_fail("block %" PRIu64 " lost its last byte", i);
      free(v[i]);
    }
  }
  double t1 = bench_now();
  free(v);
  char extra[64];
  snprintf(extra, sizeof extra, "maps=%ld", maps);
  bench_result(2 * n * rounds, t1 - t0, owned, extra);
  return 0;
}
