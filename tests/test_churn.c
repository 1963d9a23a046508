/* test_churn.c — thousands of short-lived threads.
 *
 * Threads are started a few at a time. Each one allocates blocks of mixed
 * sizes, verifies and frees most of them itself, frees some blocks that
 * earlier (already exited) threads left behind, and leaves some of its own
 * for later threads. Committed memory (hak_stats) is sampled as threads come
 * and go: it must level off, not grow with the number of threads that ever
 * lived.
 *
 * usage: test_churn [total-threads] [concurrent]
 */
#include "hk_test.h"

#define LEFT_CAP 4096
typedef struct {
  char *p;
  size_t n;
  uint64_t tag;
} blk_t;

static pthread_mutex_t left_mu = PTHREAD_MUTEX_INITIALIZER;
static blk_t leftovers[LEFT_CAP];
static size_t nleft;
static atomic_long n_allocs, n_adopted_frees;

static uint64_t rss_bytes(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  unsigned long size = 0, res = 0;
  if (f) {
    if (fscanf(f, "%lu %lu", &size, &res) != 2) res = 0;
    fclose(f);
  }
  return (uint64_t)res * (uint64_t)sysconf(_SC_PAGESIZE);
}

static uint64_t max_of(const uint64_t *v, int from, int to) {
  uint64_t m = 0;
  for (int i = from; i < to; i++)
    if (v[i] > m) m = v[i];
  return m;
}

static size_t pick_size(hk_rng_t *r) {
  uint64_t d = hk_below(r, 100);
  if (d < 85) return 1 + hk_below(r, 1040);
  if (d < 98) return 1041 + hk_below(r, 32 * 1024);
  return 64 * 1024 + hk_below(r, 256 * 1024);
}

static void verify_free(blk_t *b, const char *who) {
  size_t bad = hk_check_sparse(b->p, b->n, b->tag);
  CHECK(bad == (size_t)-1, "%s: block %p (%zu bytes) corrupted at %zu", who, (void *)b->p, b->n, bad);
  CHECK(hk_owns(b->p), "%s: block %p not owned", who, (void *)b->p);
  free(b->p);
  b->p = NULL;
}

static void *short_lived(void *arg) {
  uint64_t id = (uint64_t)(uintptr_t)arg;
  hk_rng_t r = {hk_mix64(id * 31 + 5)};
  enum { N = 160 };
  blk_t mine[N];
  for (int i = 0; i < N; i++) {
    mine[i].n = pick_size(&r);
    mine[i].p = malloc(mine[i].n);
    REQUIRE(mine[i].p, "malloc(%zu) failed in thread %" PRIu64, mine[i].n, id);
    mine[i].tag = hk_mix64((uintptr_t)mine[i].p ^ id);
    hk_fill_sparse(mine[i].p, mine[i].n, mine[i].tag);
    /* some churn inside the thread: free and reallocate */
    if (i >= 8 && hk_below(&r, 3) == 0) {
      int j = (int)hk_below(&r, (uint64_t)i);
      if (mine[j].p) verify_free(&mine[j], "owner");
    }
  }
  atomic_fetch_add(&n_allocs, N);
  /* free blocks left by threads that have exited, and leave some */
  pthread_mutex_lock(&left_mu);
  int freed_others = 0;
  while (nleft > 0 && freed_others < 24) {
    blk_t b = leftovers[--nleft];
    pthread_mutex_unlock(&left_mu);
    verify_free(&b, "adopter");
    freed_others++;
    pthread_mutex_lock(&left_mu);
  }
  for (int i = 0; i < N && nleft < LEFT_CAP; i++) {
    if (mine[i].p && hk_below(&r, 8) == 0) {
      leftovers[nleft++] = mine[i];
      mine[i].p = NULL;
    }
  }
  pthread_mutex_unlock(&left_mu);
  atomic_fetch_add(&n_adopted_frees, freed_others);
  /* the rest: free them, except a few freed without verification order */
  for (int i = N - 1; i >= 0; i--)
    if (mine[i].p) verify_free(&mine[i], "owner");
  return NULL;
}

int main(int argc, char **argv) {
  hk_init("churn");
  long total = hk_scale(argc > 1 ? atol(argv[1]) : 4000);
  int conc = argc > 2 ? atoi(argv[2]) : 4;
  if (conc < 1) conc = 1;
  if (conc > 64) conc = 64;
  if (total < 10 * conc) total = 10 * conc;
  hk_note("%ld threads, %d at a time", total, conc);

  enum { SAMPLES = 10 };
  uint64_t committed[SAMPLES + 1] = {0}, superslabs[SAMPLES + 1] = {0}, rss[SAMPLES + 1] = {0};
  long done = 0;
  int sample = 0;
  pthread_t th[64];
  while (done < total) {
    int k = 0;
    for (; k < conc && done + k < total; k++) {
      int e = pthread_create(&th[k], NULL, short_lived, (void *)(uintptr_t)(done + k));
      REQUIRE(e == 0, "pthread_create: %s", strerror(e));
    }
    for (int i = 0; i < k; i++) pthread_join(th[i], NULL);
    done += k;
    if (done >= (sample + 1) * total / SAMPLES && sample < SAMPLES) {
      hak_stats_t s;
      hk_stats(&s);
      committed[sample] = s.committed_bytes;
      superslabs[sample] = s.superslabs;
      rss[sample] = rss_bytes();
      sample++;
    }
  }
  /* blocks still left behind: freed by the main thread */
  while (nleft) verify_free(&leftovers[--nleft], "main");
  hak_stats_t s;
  hk_stats(&s);
  hk_note("%ld blocks allocated, %ld freed by a later thread", atomic_load(&n_allocs),
          atomic_load(&n_adopted_frees));
  char line[512];
  int o = 0;
  for (int i = 0; i < sample; i++)
    o += snprintf(line + o, sizeof line - (size_t)o, " %.1f", committed[i] / 1048576.0);
  hk_note("committed MiB after each tenth of the threads:%s", line);
  o = 0;
  for (int i = 0; i < sample; i++) o += snprintf(line + o, sizeof line - (size_t)o, " %" PRIu64, superslabs[i]);
  hk_note("SuperSlabs after each tenth of the threads:%s", line);
  o = 0;
  for (int i = 0; i < sample; i++) o += snprintf(line + o, sizeof line - (size_t)o, " %.1f", rss[i] / 1048576.0);
  hk_note("RSS MiB after each tenth of the threads:%s", line);
  /* bounded: the highest value of the second half of the run may exceed
   * the highest of the first half by a quarter plus some slack; a leak of
   * 16 KiB or more per thread grows past that */
  CHECK(sample == SAMPLES, "only %d samples", sample);
  {
    uint64_t h1 = max_of(rss, 0, SAMPLES / 2), h2 = max_of(rss, SAMPLES / 2, SAMPLES);
    uint64_t lim = h1 + h1 / 4 + (24u << 20);
    CHECK(h2 <= lim, "RSS grows with thread churn: at most %.1f MiB in the first half, %.1f MiB in the second (limit %.1f)",
          h1 / 1048576.0, h2 / 1048576.0, lim / 1048576.0);
  }
  CHECK(atomic_load(&n_adopted_frees) > total, "too few blocks freed by other threads");

  if (HK_HAVE_PROOF) {
    CHECK(hk_total_mallocs(&s) >= (uint64_t)atomic_load(&n_allocs), "statistics: mallocs %" PRIu64 " < %ld",
          hk_total_mallocs(&s), atomic_load(&n_allocs));
    uint64_t h1 = max_of(committed, 0, SAMPLES / 2), h2 = max_of(committed, SAMPLES / 2, SAMPLES);
    uint64_t lim = h1 + h1 / 4 + (16u << 20);
    CHECK(h2 <= lim,
          "committed memory grows with thread churn: at most %.1f MiB in the first half, %.1f MiB in the second "
          "(limit %.1f)",
          h1 / 1048576.0, h2 / 1048576.0, lim / 1048576.0);
    uint64_t s1 = max_of(superslabs, 0, SAMPLES / 2), s2 = max_of(superslabs, SAMPLES / 2, SAMPLES);
    CHECK(s2 <= s1 + s1 / 4 + 8, "SuperSlab count grows with thread churn: at most %" PRIu64
          " in the first half, %" PRIu64 " in the second", s1, s2);
  }
  check_finish();
}
