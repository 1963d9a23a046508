/* xthread PRODUCERS CONSUMERS ITEMS MIN MAX SEED
 *
 * Producer/consumer: PRODUCERS threads allocate ITEMS blocks each (sizes
 * uniform in MIN..MAX), tag them and pass them, round-robin, to CONSUMERS
 * threads through single-producer/single-consumer rings; consumers check and
 * free them. Every free is a free by a thread that did not allocate the block.
 * ops = mallocs + frees = 2 * PRODUCERS * ITEMS.
 */
#include "bench_common.h"
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

#define USAGE "xthread PRODUCERS CONSUMERS ITEMS MIN MAX SEED   (defaults: 2 2 1000000 16 2048 1234567)"

#define RING_CAP 1024u /* power of two */

typedef struct {
  void *p;
  uint64_t tag;
  uint64_t size;
} xitem;

typedef struct {
  _Alignas(64) atomic_uint_fast64_t tail; /* written by the producer */
  atomic_int done;
  _Alignas(64) atomic_uint_fast64_t head; /* written by the consumer */
  _Alignas(64) xitem items[RING_CAP];
} xring;

static uint32_t np, nc;
static uint64_t items_per_producer;
static uint32_t minsz, maxsz;
static uint64_t seed;
static xring *rings; /* rings[p * nc + c] */
static pthread_barrier_t start_bar;

typedef struct {
  uint32_t id;
  uint64_t sum, count, spins;
  char pad[64];
} xstat;
static xstat *pstat, *cstat;

static void *producer(void *arg) {
  xstat *st = (xstat *)arg;
  uint32_t id = st->id;
  bench_rng rng;
  bench_rng_seed(&rng, seed, id + 1);
  uint64_t tails[64], heads[64]; /* local copies, nc <= 64 */
  for (uint32_t c = 0; c < nc; c++) {
    tails[c] = 0;
    heads[c] = 0;
  }
  const uint32_t span = maxsz - minsz + 1;
  pthread_barrier_wait(&start_bar);
  uint32_t c = 0;
  for (uint64_t i = 0; i < items_per_producer; i++) {
    uint64_t r = bench_rng_next(&rng);
    size_t size = minsz + bench_bounded32((uint32_t)r, span);
    void *p = malloc(size);
    if (!p) bench_fail("producer %u: malloc(%zu) returned NULL", id, size);
    uint64_t tag = r ^ ((uint64_t)id << 56);
    block_fill(p, size, tag);
    xring *rg = &rings[id * nc + c];
    while (tails[c] - heads[c] >= RING_CAP) {
      heads[c] = atomic_load_explicit(&rg->head, memory_order_acquire);
      if (tails[c] - heads[c] >= RING_CAP) {
        st->spins++;
        sched_yield();
      }
    }
    xitem *it = &rg->items[tails[c] & (RING_CAP - 1)];
    it->p = p;
    it->tag = tag;
    it->size = size;
    tails[c]++;
    atomic_store_explicit(&rg->tail, tails[c], memory_order_release);
    st->sum += tag;
    st->count++;
    if (++c == nc) c = 0;
  }
  for (uint32_t k = 0; k < nc; k++) atomic_store_explicit(&rings[id * nc + k].done, 1, memory_order_release);
  return NULL;
}

static void *consumer(void *arg) {
  xstat *st = (xstat *)arg;
  uint32_t id = st->id;
  pthread_barrier_wait(&start_bar);
  uint32_t open = np;
  uint64_t heads[64];
  for (uint32_t p = 0; p < np; p++) heads[p] = 0;
  unsigned char closed[64] = {0};
  while (open) {
    int progress = 0;
    for (uint32_t p = 0; p < np; p++) {
      if (closed[p]) continue;
      xring *rg = &rings[p * nc + id];
      int done = atomic_load_explicit(&rg->done, memory_order_acquire);
      uint64_t tail = atomic_load_explicit(&rg->tail, memory_order_acquire);
      uint64_t h = heads[p];
      while (h != tail) {
        xitem *it = &rg->items[h & (RING_CAP - 1)];
        if (!block_ok(it->p, it->size, it->tag))
          bench_fail("consumer %u: block %p of %zu bytes from producer %u lost its contents", id, it->p,
                     (size_t)it->size, p);
        st->sum += it->tag;
        st->count++;
        free(it->p);
        h++;
        if ((h & 31) == 0) atomic_store_explicit(&rg->head, h, memory_order_release);
      }
      if (h != heads[p]) {
        progress = 1;
        heads[p] = h;
        atomic_store_explicit(&rg->head, h, memory_order_release);
      }
      if (done && h == atomic_load_explicit(&rg->tail, memory_order_acquire)) {
        closed[p] = 1;
        open--;
      }
    }
    if (!progress) {
      st->spins++;
      sched_yield();
    }
  }
  return NULL;
}

int main(int argc, char **argv) {
  bench_workload_name = "xthread";
  if (argc > 7) bench_usage(USAGE);
  uint64_t p_ = bench_arg_u64(argc, argv, 1, 2, USAGE);
  uint64_t c_ = bench_arg_u64(argc, argv, 2, 2, USAGE);
  items_per_producer = bench_arg_u64(argc, argv, 3, 1000000, USAGE);
  uint64_t mn = bench_arg_u64(argc, argv, 4, 16, USAGE);
  uint64_t mx = bench_arg_u64(argc, argv, 5, 2048, USAGE);
  seed = bench_arg_u64(argc, argv, 6, 1234567, USAGE);
  if (p_ < 1 || p_ > 64 || c_ < 1 || c_ > 64 || items_per_producer < 1 || mn < 1 || mx < mn || mx > (1u << 30))
    bench_usage(USAGE);
  np = (uint32_t)p_;
  nc = (uint32_t)c_;
  minsz = (uint32_t)mn;
  maxsz = (uint32_t)mx;

  rings = (xring *)aligned_alloc(64, (size_t)np * nc * sizeof(xring));
  pstat = (xstat *)calloc(np, sizeof(xstat));
  cstat = (xstat *)calloc(nc, sizeof(xstat));
  pthread_t *th = (pthread_t *)calloc(np + nc, sizeof(pthread_t));
  if (!rings || !pstat || !cstat || !th) bench_fail("setup allocation failed");
  for (uint32_t i = 0; i < np * nc; i++) {
    atomic_init(&rings[i].tail, 0);
    atomic_init(&rings[i].head, 0);
    atomic_init(&rings[i].done, 0);
  }
  pthread_barrier_init(&start_bar, NULL, np + nc + 1);
  for (uint32_t i = 0; i < nc; i++) {
    cstat[i].id = i;
    if (pthread_create(&th[np + i], NULL, consumer, &cstat[i]) != 0) bench_fail("pthread_create failed");
  }
  for (uint32_t i = 0; i < np; i++) {
    pstat[i].id = i;
    if (pthread_create(&th[i], NULL, producer, &pstat[i]) != 0) bench_fail("pthread_create failed");
  }
  pthread_barrier_wait(&start_bar);
  double t0 = bench_now();
  for (uint32_t i = 0; i < np + nc; i++) pthread_join(th[i], NULL);
  double t1 = bench_now();

  uint64_t psum = 0, csum = 0, pcount = 0, ccount = 0, spins = 0;
  for (uint32_t i = 0; i < np; i++) {
    psum += pstat[i].sum;
    pcount += pstat[i].count;
    spins += pstat[i].spins;
  }
  for (uint32_t i = 0; i < nc; i++) {
    csum += cstat[i].sum;
    ccount += cstat[i].count;
    spins += cstat[i].spins;
  }
  if (pcount != ccount || psum != csum || pcount != (uint64_t)np * items_per_producer)
    bench_fail("produced %" PRIu64 " blocks, consumed %" PRIu64 " (checksums %016" PRIx64 " / %016" PRIx64 ")",
               pcount, ccount, psum, csum);

  char owned[64] = "";
  bench_owned_check(owned, sizeof owned, NULL, 0, minsz, maxsz, BENCH_OWN_FRESH);
  char extra[128];
  snprintf(extra, sizeof extra, "producers=%u,consumers=%u,yields=%" PRIu64, np, nc, spins);
  bench_result(pcount + ccount, t1 - t0, owned, extra);
  pthread_barrier_destroy(&start_bar);
  free(th);
  free(pstat);
  free(cstat);
  free(rings);
  return 0;
}
