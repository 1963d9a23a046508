/* test_threads.c — several threads pass blocks to each other.
 *
 * Every thread allocates blocks of mixed sizes, fills them with a pattern
 * derived from (address, seed) and sends them to another thread's inbox.
 * A receiving thread verifies the contents and then frees the block (a
 * remote free), reallocs it and forwards it, or forwards it as it is. Some
 * blocks stay with their allocating thread and are freed locally. At the end
 * every block has been freed exactly once and the statistics show remote
 * frees.
 *
 * usage: test_threads [threads] [blocks-per-thread]
 */
#include "hk_test.h"

typedef struct {
  char *p;
  size_t n;
  uint64_t tag;
  int hops;
} msg_t;

typedef struct {
  pthread_mutex_t mu;
  msg_t *buf;
  size_t cap, head, count;
} inbox_t;

static int nthreads = 4;
static long per_thread = 150000;
static inbox_t *inbox;
static atomic_long in_flight;   /* blocks allocated and not yet freed */
static atomic_int producers_left;
static atomic_long total_allocs, total_remote, total_local, total_reallocs;
static uint64_t seed = 20251125;

static size_t pick_size(hk_rng_t *r) {
  uint64_t d = hk_below(r, 1000);
  if (d < 820) return 1 + hk_below(r, 1040);         /* tiny */
  if (d < 975) return 1041 + hk_below(r, 64 * 1024); /* mid */
  if (d < 998) return hk_logsize(r, 64 * 1024, 1024 * 1024);
  return hk_logsize(r, 1024 * 1024 + 1, 5 * 1024 * 1024);
}

static uint64_t tag_for(const void *p, uint64_t salt) { return hk_mix64((uintptr_t)p ^ seed ^ (salt << 48)); }

static int send_to(int t, msg_t m) {
  inbox_t *b = &inbox[t];
  int ok = 0;
  pthread_mutex_lock(&b->mu);
  if (b->count < b->cap) {
    b->buf[(b->head + b->count) % b->cap] = m;
    b->count++;
    ok = 1;
  }
  pthread_mutex_unlock(&b->mu);
  return ok;
}

static size_t take_from(int t, msg_t *out, size_t max) {
  inbox_t *b = &inbox[t];
  size_t k = 0;
  pthread_mutex_lock(&b->mu);
  while (k < max && b->count) {
    out[k++] = b->buf[b->head];
    b->head = (b->head + 1) % b->cap;
    b->count--;
  }
  pthread_mutex_unlock(&b->mu);
  return k;
}

static void verify(const msg_t *m, const char *who) {
  size_t bad = hk_check_sparse(m->p, m->n, m->tag);
  CHECK(bad == (size_t)-1, "%s: block %p (%zu bytes, %d hops) corrupted at offset %zu", who, (void *)m->p,
        m->n, m->hops, bad);
  CHECK(hk_owns(m->p), "%s: block %p not owned by hakmem", who, (void *)m->p);
}

static void release(msg_t *m, int local) {
  free(m->p);
  atomic_fetch_sub(&in_flight, 1);
  atomic_fetch_add(local ? &total_local : &total_remote, 1);
}

/* handle received blocks; returns the number handled */
static size_t drain(int self, hk_rng_t *r) {
  msg_t got[64];
  size_t k = take_from(self, got, 64), handled = k;
  for (size_t i = 0; i < k; i++) {
    msg_t m = got[i];
    verify(&m, "receiver");
    uint64_t d = hk_below(r, 100);
    if (d < 55 || m.hops >= 4) {
      release(&m, 0);
    } else if (d < 80) {
      size_t nn = pick_size(r);
      char *q = realloc(m.p, nn);
      CHECK(q != NULL, "realloc(%zu -> %zu) failed", m.n, nn);
      if (!q) {
        release(&m, 0);
        continue;
      }
      atomic_fetch_add(&total_reallocs, 1);
      size_t keep = m.n < nn ? m.n : nn;
      size_t bad = hk_check_sparse_prefix(q, m.n, keep, m.tag);
      CHECK(bad == (size_t)-1, "realloc by receiver (%zu -> %zu): content lost at %zu", m.n, nn, bad);
      m.p = q;
      m.n = nn;
      m.tag = tag_for(q, (uint64_t)self + 100);
      hk_fill_sparse(q, nn, m.tag);
      m.hops++;
      int to = (int)hk_below(r, (uint64_t)nthreads);
      if (!send_to(to, m)) release(&m, 1);
    } else {
      m.hops++;
      int to = (int)hk_below(r, (uint64_t)nthreads);
      if (!send_to(to, m)) release(&m, 1);
    }
  }
  return handled;
}

static void *worker(void *arg) {
  int self = (int)(intptr_t)arg;
  hk_rng_t r = {seed * 1000003ULL + (uint64_t)self};
  enum { KEEP = 512 };
  msg_t keep[KEEP];
  memset(keep, 0, sizeof keep);
  for (long i = 0; i < per_thread; i++) {
    msg_t m;
    m.n = pick_size(&r);
    m.p = malloc(m.n);
    REQUIRE(m.p != NULL, "malloc(%zu) failed", m.n);
    atomic_fetch_add(&in_flight, 1);
    atomic_fetch_add(&total_allocs, 1);
    m.tag = tag_for(m.p, (uint64_t)self);
    m.hops = 0;
    hk_fill_sparse(m.p, m.n, m.tag);
    if (hk_below(&r, 4) == 0) {
      /* keep it a while, free it locally later */
      size_t k = hk_below(&r, KEEP);
      if (keep[k].p) {
        verify(&keep[k], "owner");
        release(&keep[k], 1);
      }
      keep[k] = m;
    } else {
      int to = (int)hk_below(&r, (uint64_t)nthreads);
      if (to == self) to = (to + 1) % nthreads;
      if (!send_to(to, m)) {
        verify(&m, "owner");
        release(&m, 1);
      }
    }
    if ((i & 7) == 0) drain(self, &r);
  }
  for (int k = 0; k < KEEP; k++)
    if (keep[k].p) {
      verify(&keep[k], "owner");
      release(&keep[k], 1);
    }
  atomic_fetch_sub(&producers_left, 1);
  /* keep serving until every block in the system has been freed */
  for (;;) {
    size_t h = drain(self, &r);
    if (!h) {
      if (atomic_load(&producers_left) == 0 && atomic_load(&in_flight) == 0) break;
      sched_yield();
    }
  }
  return NULL;
}

int main(int argc, char **argv) {
  hk_init("threads");
  if (argc > 1) nthreads = atoi(argv[1]);
  per_thread = hk_scale(argc > 2 ? atol(argv[2]) : per_thread);
  seed = hk_env_u64("HK_SEED", seed);
  if (nthreads < 2) nthreads = 2;
  hk_note("%d threads, %ld blocks each, seed %" PRIu64, nthreads, per_thread, seed);

  hak_stats_t s0, s1;
  hk_stats(&s0);
  inbox = calloc((size_t)nthreads, sizeof *inbox);
  REQUIRE(inbox, "calloc failed");
  for (int t = 0; t < nthreads; t++) {
    pthread_mutex_init(&inbox[t].mu, NULL);
    inbox[t].cap = 4096;
    inbox[t].buf = malloc(inbox[t].cap * sizeof(msg_t));
    REQUIRE(inbox[t].buf, "malloc failed");
  }
  atomic_store(&producers_left, nthreads);
  pthread_t th[256];
  if (nthreads > 256) nthreads = 256;
  for (int t = 0; t < nthreads; t++)
    REQUIRE(pthread_create(&th[t], NULL, worker, (void *)(intptr_t)t) == 0, "pthread_create failed");
  for (int t = 0; t < nthreads; t++) pthread_join(th[t], NULL);
  hk_stats(&s1);

  CHECK(atomic_load(&in_flight) == 0, "%ld blocks still in flight", atomic_load(&in_flight));
  hk_note("%ld blocks, %ld freed by a receiver, %ld by their owner, %ld reallocs by a receiver",
          atomic_load(&total_allocs), atomic_load(&total_remote), atomic_load(&total_local),
          atomic_load(&total_reallocs));
  CHECK(atomic_load(&total_remote) > atomic_load(&total_allocs) / 4, "too few remote frees happened");
  if (HK_HAVE_PROOF) {
    uint64_t dm = hk_total_mallocs(&s1) - hk_total_mallocs(&s0);
    hk_note("statistics: %" PRIu64 " mallocs, %" PRIu64 " remote frees, %" PRIu64 " refills, %" PRIu64
            " drains, sp stages %" PRIu64 "/%" PRIu64 "/%" PRIu64,
            dm, s1.remote_frees - s0.remote_frees, s1.refills - s0.refills, s1.drains - s0.drains,
            s1.sp_stage[0], s1.sp_stage[1], s1.sp_stage[2]);
    CHECK(dm >= (uint64_t)atomic_load(&total_allocs), "statistics: %" PRIu64 " mallocs < %ld allocated", dm,
          atomic_load(&total_allocs));
    CHECK(s1.remote_frees > s0.remote_frees, "statistics: no remote frees counted");
  }
  for (int t = 0; t < nthreads; t++) free(inbox[t].buf);
  free(inbox);
  check_finish();
}
