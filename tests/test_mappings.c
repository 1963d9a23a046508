/* test_mappings.c — many blocks in few mappings, untouched memory not
 * resident, and a steady heap that makes no mmap or munmap.
 *
 * 1. 131,072 blocks of 1 MiB (Big blocks: a 2 MiB chunk of an arena each,
 *    256 GiB of address space), never touched: /proc/self/maps must have
 *    fewer than MAX_MAPS lines (a mapping per block would be 131,072, past
 *    Linux's default vm.max_map_count of 65,530) and the peak RSS (VmHWM)
 *    must stay under MAX_RSS_MIB: the Big table's entries, far below what
 *    any peer needs for the same program (make bench's untouched_1m row
 *    compares them). A header page written per block, as a SuperSlab of its
 *    own per block had, would be 512 MiB.
 * 2. Steady state: after one warm-up cycle (allocate them all, free them
 *    all), CYCLES more cycles make exactly as many mmap and munmap calls
 *    as none (hak_stats mmap_calls / munmap_calls): chunks given back stay
 *    reserved in their arena and serve the next SuperSlab. A few blocks of
 *    the other slab tiers go with each cycle.
 *
 * usage: test_mappings [blocks] [cycles]
 */
#include "hk_proc.h"

#define MAX_MAPS 1000
#define MAX_RSS_MIB 90

static char **v;
static long nb;

static void alloc_all(const char *phase) {
  for (long i = 0; i < nb; i++) {
    v[i] = malloc((size_t)1 << 20);
    REQUIRE(v[i], "%s: malloc(1 MiB) #%ld failed", phase, i);
  }
}

static void free_all(void) {
  for (long i = nb; i-- > 0;) free(v[i]);
}

/* a few blocks of every slab tier, written and checked */
static void side_work(uint64_t salt) {
  enum { K = 64 };
  char *p[K];
  size_t n[K];
  hk_rng_t r = {salt};
  for (int i = 0; i < K; i++) {
    n[i] = i < 32 ? 1 + hk_below(&r, 1040) : hk_logsize(&r, 1041, 512 * 1024);
    p[i] = malloc(n[i]);
    REQUIRE(p[i], "malloc(%zu) failed", n[i]);
    hk_fill_sparse(p[i], n[i], salt + (uint64_t)i);
  }
  for (int i = 0; i < K; i++) {
    CHECK(hk_check_sparse(p[i], n[i], salt + (uint64_t)i) == (size_t)-1, "block of %zu bytes corrupted", n[i]);
    free(p[i]);
  }
}

int main(int argc, char **argv) {
  hk_init("mappings");
  nb = hk_scale(argc > 1 ? atol(argv[1]) : 131072);
  int cycles = argc > 2 ? atoi(argv[2]) : 10;
  v = mmap(NULL, (size_t)nb * sizeof *v, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  REQUIRE(v != MAP_FAILED, "mmap of the pointer table failed");
  long maps0 = hk_maps_count();
  uint64_t rss0 = hk_status_kib("VmRSS");

  /* 1. many untouched blocks */
  alloc_all("untouched");
  long maps1 = hk_maps_count();
  uint64_t rss1 = hk_status_kib("VmRSS"), hwm1 = hk_status_kib("VmHWM");
  hak_stats_t s;
  hk_stats(&s);
  uint64_t arenas = 0;
  (void)hk_stat_named("os.arenas", &arenas);
  hk_note("%ld blocks of 1 MiB untouched: %ld mappings (%ld before), VmRSS %" PRIu64
          " KiB (%" PRIu64 " before), VmHWM %" PRIu64 " KiB; %" PRIu64 " Big blocks, %" PRIu64
          " arenas, %" PRIu64 " mmap calls",
          nb, maps1, maps0, rss1, rss0, hwm1, s.mallocs[3], arenas, s.mmap_calls);
  CHECK(maps1 < MAX_MAPS, "%ld lines in /proc/self/maps for %ld blocks (at most %d expected)",
        maps1, nb, MAX_MAPS);
  CHECK(hwm1 < (uint64_t)MAX_RSS_MIB * 1024,
        "VmHWM %" PRIu64 " KiB with %ld untouched 1 MiB blocks (bound %d MiB)", hwm1, nb,
        MAX_RSS_MIB);
  if (HK_HAVE_PROOF)
    CHECK(s.mallocs[3] >= (uint64_t)nb, "only %" PRIu64 " Big blocks for %ld blocks", s.mallocs[3],
          nb);
  for (long i = 0; i < nb; i += 97)
    CHECK(hk_owns(v[i]), "block %ld not hakmem's", i);
  /* one page of each, written and read back: the memory is there */
  for (long i = 0; i < nb; i += 511) {
    hk_fill(v[i] + (1u << 20) - 4096, 4096, (uint64_t)i);
    CHECK(hk_check(v[i] + (1u << 20) - 4096, 4096, (uint64_t)i) == (size_t)-1, "block %ld: page lost", i);
  }
  free_all();
  side_work(1);

  /* 2. steady state */
  alloc_all("warm-up");
  free_all();
  side_work(2);
  hk_stats(&s);
  uint64_t mm0 = s.mmap_calls, mu0 = s.munmap_calls, ma0 = s.madvise_calls;
  for (int c = 0; c < cycles; c++) {
    alloc_all("cycle");
    free_all();
    side_work(3 + (uint64_t)c);
  }
  hk_stats(&s);
  long maps2 = hk_maps_count();
  hk_note("%d more cycles: mmap %" PRIu64 " -> %" PRIu64 ", munmap %" PRIu64 " -> %" PRIu64 ", madvise %" PRIu64
          " -> %" PRIu64 "; %ld mappings, VmHWM %" PRIu64 " KiB",
          cycles, mm0, s.mmap_calls, mu0, s.munmap_calls, ma0, s.madvise_calls, maps2, hk_status_kib("VmHWM"));
  CHECK(s.mmap_calls == mm0, "%" PRIu64 " mmap calls in %d cycles of a heap that had reached its size",
        s.mmap_calls - mm0, cycles);
  CHECK(s.munmap_calls == mu0, "%" PRIu64 " munmap calls in %d cycles of a heap that had reached its size",
        s.munmap_calls - mu0, cycles);
  CHECK(maps2 < MAX_MAPS, "%ld mappings after the cycles", maps2);
  munmap(v, (size_t)nb * sizeof *v);
  check_finish();
}
