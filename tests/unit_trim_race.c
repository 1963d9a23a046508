/* Regression test for the shared pool under concurrent trimming: three
 * workers allocate (every tier, calloc and aligned included), check and free
 * blocks through a shared slot table, so most frees are remote, while a
 * fourth thread calls malloc_trim(0) in a loop. A slab pushed on an EMPTY
 * stack used to be read after it was published; a concurrent trim could
 * unmap it first (SIGSEGV) or leave the EMPTY byte counter wrong. At the end
 * everything is freed and trimmed: no EMPTY byte and no SuperSlab may remain. */
#include "hakmem.h"
#include "backend/shared_pool.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SLOTS 4096
static _Atomic(uintptr_t) g_slot[SLOTS];
static atomic_int g_stop;

static uint64_t rng(uint64_t *s) {
  *s ^= *s << 13;
  *s ^= *s >> 7;
  *s ^= *s << 17;
  return *s;
}

static size_t pick(uint64_t *r) {
  uint64_t d = rng(r) % 1000;
  if (d < 700) return 8 + rng(r) % 1040;
  if (d < 950) return 1041 + rng(r) % 65536;
  if (d < 995) return 65537 + rng(r) % (1900u << 10);
  return (2u << 20) + rng(r) % (6u << 20);
}

/* The block records its own size in its first 8 bytes. */
static void fill(unsigned char *p, size_t n) {
  memcpy(p, &n, 8);
  for (size_t i = 8; i + 8 < n && i < 256; i++) p[i] = (unsigned char)(n + i);
  if (n >= 16) memset(p + n - 8, (int)(n & 0xff), 8);
}

static void check(unsigned char *p) {
  size_t n;
  memcpy(&n, p, 8);
  for (size_t i = 8; i + 8 < n && i < 256; i++)
    if (p[i] != (unsigned char)(n + i)) {
      fprintf(stderr, "corrupt block %p (%zu bytes) at %zu\n", (void *)p, n, i);
      abort();
    }
  if (n >= 16)
    for (size_t i = n - 8; i < n; i++)
      if (p[i] != (unsigned char)(n & 0xff)) {
        fprintf(stderr, "corrupt tail of %p (%zu bytes)\n", (void *)p, n);
        abort();
      }
}

static void *worker(void *arg) {
  uint64_t r = (uintptr_t)arg * 0x9e3779b97f4a7c15ull + 1;
  for (int i = 0; i < 20000 && !g_stop; i++) {
    unsigned k = (unsigned)(rng(&r) % SLOTS);
    size_t n = pick(&r);
    unsigned char *p;
    unsigned op = (unsigned)(rng(&r) % 10);
    if (op < 6) {
      p = hak_malloc(n);
    } else if (op < 8) {
      p = hak_calloc(1, n);
      for (size_t j = 0; p && j < n; j += 512)
        if (p[j]) {
          fprintf(stderr, "calloc(%zu) not zero at %zu\n", n, j);
          abort();
        }
    } else {
      size_t al = (size_t)1 << (4 + rng(&r) % 18);
      if (hak_posix_memalign((void **)&p, al, n)) p = NULL;
      if (p && ((uintptr_t)p & (al - 1))) {
        fprintf(stderr, "posix_memalign(%zu, %zu) = %p\n", al, n, (void *)p);
        abort();
      }
    }
    if (!p) {
      fprintf(stderr, "out of memory for %zu bytes\n", n);
      abort();
    }
    fill(p, n);
    uintptr_t old = atomic_exchange(&g_slot[k], (uintptr_t)p);
    if (old) {
      check((unsigned char *)old);
      if (rng(&r) % 4 == 0) {
        size_t m = pick(&r);
        unsigned char *q = hak_realloc((void *)old, m);
        if (!q) abort();
        fill(q, m);
        old = (uintptr_t)q;
      }
      hak_free((void *)old);
    }
  }
  return NULL;
}

static void *trimmer(void *arg) {
  (void)arg;
  while (!g_stop) {
    hak_malloc_trim(0);
    usleep(200);
  }
  return NULL;
}

int main(int argc, char **argv) {
  int rounds = argc > 1 ? atoi(argv[1]) : 6;
  pthread_t tr;
  pthread_create(&tr, NULL, trimmer, NULL);
  for (int round = 0; round < rounds; round++) {
    pthread_t t[3];
    for (int i = 0; i < 3; i++) pthread_create(&t[i], NULL, worker, (void *)(uintptr_t)(round * 3 + i + 1));
    for (int i = 0; i < 3; i++) pthread_join(t[i], NULL);
  }
  g_stop = 1;
  pthread_join(tr, NULL);
  for (int k = 0; k < SLOTS; k++) {
    uintptr_t p = g_slot[k];
    if (p) {
      check((unsigned char *)p);
      hak_free((void *)p);
    }
  }
  hak_malloc_trim(0);
  hak_stats_t s;
  hak_stats_get(&s);
  int ok = hak_sp_empty_bytes() == 0 && hak_sp_empty_slabs() == 0 && s.superslabs == 0;
  printf("unit_trim_race: EMPTY bytes %zu, EMPTY slabs %zu, SuperSlabs %llu, committed %llu KiB: %s\n",
         hak_sp_empty_bytes(), hak_sp_empty_slabs(), (unsigned long long)s.superslabs,
         (unsigned long long)(s.committed_bytes >> 10), ok ? "ok" : "FAILED");
  return ok ? 0 : 1;
}
