/* Reproducer: hak_owns() reads a hakmem header that another thread is
 * unmapping, and takes SIGSEGV (found while writing tests/fuzz_hakmem.c; the
 * race needs two threads, so it is a program, not a fuzz input).
 *
 * hak_owns() promises to take any pointer, "0 ... for freed Big blocks. Never
 * follows a pointer it does not own." It tests the registry bit, then reads
 * the header at p & ~(2 MiB - 1). Between the two, another thread can clear
 * the bit and munmap the region:
 *   big  - a Big block freed with nothing to keep it (BigCache full or, here,
 *          HAKMEM_BIGCACHE_BYTES=0): cache_put unmaps it at once;
 *   slab - malloc_trim(0) releasing the last slab of a SuperSlab: hak_sp_trim
 *          retires and unmaps it (the graveyard only waits for stage-1 pops,
 *          not for hak_owns);
 *   remap - a cached Big run taken for a larger request and moved by
 *          cache_take (big.c: registry bit cleared and mremap done after
 *          g_big_lock is dropped), so taking the big lock in hak_owns is not
 *          enough on its own.
 *
 *   clang -O1 -g -fsanitize=address -Iinclude tests/fuzz_crashes/race_owns_unmap.c \
 *     build-fuzz/libhakmem_core.a -pthread -o build-fuzz/race_owns_unmap
 *   HAKMEM_BIGCACHE_BYTES=0 build-fuzz/race_owns_unmap big   # SEGV in hak_owns, alloc.c:194
 *   build-fuzz/race_owns_unmap slab                          # SEGV in hak_owns, alloc.c:194/197
 *   build-fuzz/race_owns_unmap remap                         # SEGV in hak_owns (header read)
 * (any core build works, e.g. build/libhakmem_core.a; a fixed hakmem prints
 * "no crash" after 2*10^8 calls.)
 */
#define _GNU_SOURCE 1
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hakmem.h"

static _Atomic(char *) g_addr;
static atomic_int g_stop;
static int g_mode; /* 0 big, 1 slab, 2 remap */

static void *churn(void *arg) {
  (void)arg;
  while (!atomic_load(&g_stop)) {
    char *p = hak_malloc(g_mode == 1 ? 40000 : 3u << 20);
    atomic_store(&g_addr, p);
    hak_free(p); /* big: unmapped at once (BigCache 0); remap: cached */
    if (g_mode == 2) {
      hak_free(hak_malloc(7u << 20)); /* takes p's run and moves it to grow it */
      hak_malloc_trim(0);
    }
    if (g_mode == 1) hak_malloc_trim(0); /* the SuperSlab is unused again: unmapped */
  }
  return NULL;
}

int main(int argc, char **argv) {
  g_mode = argc < 2 ? 0 : !strcmp(argv[1], "slab") ? 1 : !strcmp(argv[1], "remap") ? 2 : 0;
  long iters = argc > 2 ? atol(argv[2]) : 200000000;
  pthread_t t;
  /* (this thread allocates nothing: a block of its own would keep the
   * SuperSlab mapped) */
  pthread_create(&t, NULL, churn, NULL);
  long owned = 0;
  for (long i = 0; i < iters; i++) {
    char *p = atomic_load(&g_addr);
    if (p) owned += hak_owns(p); /* p is, or was a moment ago, a live block */
  }
  atomic_store(&g_stop, 1);
  pthread_join(t, NULL);
  printf("no crash in %ld calls (%ld returned 1)\n", iters, owned);
  return 0;
}
