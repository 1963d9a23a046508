/* test_random.c — a seeded random sequence of millions of operations.
 *
 * A table of slots holds live blocks. Each operation picks a slot: an empty
 * slot gets a new block (malloc, calloc, an aligned function, or
 * realloc(NULL)); a full one is verified and then freed, resized with
 * realloc, or only checked. Sizes are mostly small, some mid-sized, a few
 * large and a very few big. Every block's contents are a pattern derived from
 * its address and the seed; every so often all live blocks are checked.
 *
 * usage: test_random [ops] [seed]       (HK_SEED also sets the seed)
 * A failure prints the seed and the operation number: rerun with them.
 */
#include "hk_test.h"

typedef struct {
  char *p;
  size_t n;
  uint64_t tag;
  size_t align;
} slot_t;

#define NSLOTS 8192
static slot_t slots[NSLOTS];
static uint64_t seed = 1;
static long op;
static unsigned long n_allocs, n_frees, n_reallocs, n_checks, n_sweeps;

static size_t pick_size(hk_rng_t *r) {
  uint64_t d = hk_below(r, 10000);
  if (d < 4500) return 1 + hk_below(r, 128);
  if (d < 8500) return 1 + hk_below(r, 1040);
  if (d < 9850) return hk_logsize(r, 1041, 64 * 1024);
  if (d < 9990) return hk_logsize(r, 64 * 1024, 1024 * 1024);
  return hk_logsize(r, 1024 * 1024, 8 * 1024 * 1024);
}

static void check_slot(slot_t *s, const char *when) {
  n_checks++;
  size_t bad = hk_check_sparse(s->p, s->n, s->tag);
  CHECK(bad == (size_t)-1, "op %ld (seed %" PRIu64 "): %s: block %p of %zu bytes corrupted at offset %zu", op,
        seed, when, (void *)s->p, s->n, bad);
  if (bad != (size_t)-1) check_finish();
}

static void new_block(slot_t *s, hk_rng_t *r) {
  size_t n = pick_size(r);
  uint64_t how = hk_below(r, 100);
  void *p = NULL;
  size_t align = 0;
  int zero = 0;
  const char *fn = "malloc";
  if (how < 72) {
    p = malloc(n);
  } else if (how < 82) {
    p = calloc(1, n);
    zero = 1;
    fn = "calloc";
  } else if (how < 84) {
    size_t k = 1 + hk_below(r, 16);
    p = calloc(k, (n + k - 1) / k);
    n = (n + k - 1) / k * k;
    zero = 1;
    fn = "calloc(k)";
  } else if (how < 94) {
    align = (size_t)1 << hk_below(r, hk_below(r, 20) == 0 ? 21 : 13);
    if (align < sizeof(void *)) align = sizeof(void *);
    int f = (int)hk_below(r, 3);
    fn = f == 0 ? "posix_memalign" : f == 1 ? "aligned_alloc" : "memalign";
    if (f == 0) {
      int e = posix_memalign(&p, align, n);
      CHECK(e == 0, "op %ld: posix_memalign(%zu, %zu) = %d", op, align, n, e);
      if (e) p = NULL;
    } else if (f == 1) {
      p = aligned_alloc(align, n);
    } else {
      p = memalign(align, n);
    }
  } else {
    p = realloc(NULL, n);
    fn = "realloc(NULL)";
  }
  REQUIRE(p != NULL, "op %ld (seed %" PRIu64 "): allocation of %zu bytes failed", op, seed, n);
  n_allocs++;
  size_t a = align > hk_expected_align(n) ? align : hk_expected_align(n);
  CHECK(((uintptr_t)p & (a - 1)) == 0, "op %ld (seed %" PRIu64 "): %s(%zu bytes, align %zu) = %p not aligned to %zu", op,
        seed, fn, n, align, p, a);
  if (zero) {
    const unsigned char *b = p;
    size_t lim = n < HK_SPARSE_MIN ? n : 4096;
    for (size_t i = 0; i < lim; i++)
      if (b[i]) {
        CHECK(0, "op %ld (seed %" PRIu64 "): calloc block %p of %zu bytes has byte %zu = %#x", op, seed, p, n, i,
              b[i]);
        break;
      }
    if (n >= HK_SPARSE_MIN)
      for (size_t i = 4096; i < n; i += 4093)
        if (b[i]) {
          CHECK(0, "op %ld: calloc block %p of %zu bytes has byte %zu = %#x", op, p, n, i, b[i]);
          break;
        }
  }
  /* now and then the whole usable size is used */
  if (hk_below(r, 20) == 0) {
    size_t us = malloc_usable_size(p);
    CHECK(us >= n, "op %ld: malloc_usable_size %zu < %zu", op, us, n);
    if (us >= n) n = us;
  }
  s->p = p;
  s->n = n;
  s->align = align;
  s->tag = hk_mix64((uintptr_t)p ^ seed ^ ((uint64_t)op << 20));
  hk_fill_sparse(p, n, s->tag);
}

static void sweep(void) {
  n_sweeps++;
  for (int i = 0; i < NSLOTS; i++) {
    slot_t *s = &slots[i];
    if (!s->p) continue;
    check_slot(s, "sweep");
    CHECK(hk_owns(s->p) && hk_owns(s->p + s->n - 1), "op %ld: live block %p not owned", op, (void *)s->p);
    CHECK(malloc_usable_size(s->p) >= s->n, "op %ld: usable size of live block shrank", op);
  }
}

int main(int argc, char **argv) {
  hk_init("random");
  long ops = hk_scale(argc > 1 ? atol(argv[1]) : 3000000);
  seed = argc > 2 ? strtoull(argv[2], NULL, 0) : hk_env_u64("HK_SEED", 0x5eed);
  hk_note("%ld operations, seed %" PRIu64 " (rerun: test_random %ld %" PRIu64 ")", ops, seed, ops, seed);
  hk_rng_t r = {seed};
  hak_stats_t s0, s1;
  hk_stats(&s0);
  for (op = 0; op < ops; op++) {
    /* the working set breathes: sometimes only a part of the table is used */
    uint64_t span = ((op >> 16) & 1) ? NSLOTS : NSLOTS / 4 + (uint64_t)(op >> 10) % (NSLOTS * 3 / 4);
    slot_t *s = &slots[hk_below(&r, span)];
    if (!s->p) {
      new_block(s, &r);
      continue;
    }
    uint64_t what = hk_below(&r, 100);
    if (what < 60) {
      check_slot(s, "before free");
      free(s->p);
      n_frees++;
      s->p = NULL;
    } else if (what < 85) {
      check_slot(s, "before realloc");
      size_t nn = hk_below(&r, 8) == 0 ? s->n + hk_below(&r, 64) : pick_size(&r);
      char *q = realloc(s->p, nn);
      REQUIRE(q != NULL, "op %ld (seed %" PRIu64 "): realloc(%zu -> %zu) failed", op, seed, s->n, nn);
      n_reallocs++;
      size_t keep = s->n < nn ? s->n : nn;
      size_t bad = hk_check_sparse_prefix(q, s->n, keep, s->tag);
      CHECK(bad == (size_t)-1, "op %ld (seed %" PRIu64 "): realloc %p (%zu) -> %p (%zu) lost content at %zu", op,
            seed, (void *)s->p, s->n, (void *)q, nn, bad);
      CHECK(((uintptr_t)q & (hk_expected_align(nn) - 1)) == 0, "op %ld: realloc result %p misaligned", op,
            (void *)q);
      s->p = q;
      s->n = nn;
      s->align = 0;
      s->tag = hk_mix64((uintptr_t)q ^ seed ^ ((uint64_t)op << 20));
      hk_fill_sparse(q, nn, s->tag);
    } else {
      check_slot(s, "check");
    }
    if (op % 250000 == 249999) sweep();
    if (check_failures) break;
  }
  sweep();
  for (int i = 0; i < NSLOTS; i++)
    if (slots[i].p) {
      free(slots[i].p);
      n_frees++;
      slots[i].p = NULL;
    }
  hk_stats(&s1);
  hk_note("%lu allocations, %lu frees, %lu reallocs, %lu checks, %lu full sweeps", n_allocs, n_frees, n_reallocs,
          n_checks, n_sweeps);
  if (HK_HAVE_PROOF) {
    uint64_t dm = hk_total_mallocs(&s1) - hk_total_mallocs(&s0);
    CHECK(dm >= n_allocs, "statistics: %" PRIu64 " mallocs counted for %lu allocations", dm, n_allocs);
    hk_note("statistics: %" PRIu64 " mallocs, committed now %.1f MiB, peak %.1f MiB, mmap %" PRIu64
            " munmap %" PRIu64 " madvise %" PRIu64,
            dm, s1.committed_bytes / 1048576.0, s1.peak_committed_bytes / 1048576.0, s1.mmap_calls,
            s1.munmap_calls, s1.madvise_calls);
  }
  check_finish();
}
