/* prof_prog — the heap profiler's test program (py.prof), built plainly, run
 * under LD_PRELOAD. 90 MB through alloc_ninety, 10 MB through alloc_ten in
 * four threads (each samples into a shard of its own), every other block of
 * each freed by the main thread; prints the live bytes of each and writes a
 * profile to argv[1] with hak_prof_dump; then frees everything but what
 * leak_some leaks (4000 blocks), for the leak report at exit. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BS 1000
#define N90 (90000000 / BS)
#define N10 (10000000 / BS)
static void *keep90[N90], *keep10[N10];

__attribute__((noinline)) void *alloc_ninety(void) {
  void *p = malloc(BS);
  if (p) memset(p, 1, BS);
  return p;
}
__attribute__((noinline)) void *alloc_ten(void) {
  void *p = malloc(BS);
  if (p) memset(p, 2, BS);
  return p;
}
#define NT 4
static void *ten_thread(void *arg) {
  for (int i = (int)(intptr_t)arg; i < N10; i += NT)
    if (!(keep10[i] = alloc_ten())) return (void *)1;
  return NULL;
}

__attribute__((noinline)) void leak_some(void) {
  for (int i = 0; i < 4000; i++) {
    void *p = malloc(BS);
    if (p) memset(p, 3, 16);
    __asm__ volatile("" ::"r"(p) : "memory");
  }
}

int main(int argc, char **argv) {
  int (*dump)(const char *) = (int (*)(const char *))dlsym(RTLD_DEFAULT, "hak_prof_dump");
  if (!dump) {
    fprintf(stderr, "hak_prof_dump not found: hakmem not loaded\n");
    return 2;
  }
  pthread_t t[NT];
  for (int k = 0; k < NT; k++)
    if (pthread_create(&t[k], NULL, ten_thread, (void *)(intptr_t)k)) return 3;
  for (int i = 0; i < N90; i++)
    if (!(keep90[i] = alloc_ninety())) return 3;
  for (int k = 0; k < NT; k++) {
    void *r;
    pthread_join(t[k], &r);
    if (r) return 3;
  }
  size_t live90 = 0, live10 = 0;
  for (int i = 0; i < N90; i++) {
    if (i % 2 == 0) free(keep90[i]), keep90[i] = NULL;
    else live90 += malloc_usable_size(keep90[i]);
  }
  for (int i = 0; i < N10; i++) {
    if (i % 2 == 0) free(keep10[i]), keep10[i] = NULL;
    else live10 += malloc_usable_size(keep10[i]);
  }
  printf("live alloc_ninety %zu alloc_ten %zu\n", live90, live10);
  fflush(stdout);
  if (argc > 1 && dump(argv[1])) {
    perror("hak_prof_dump");
    return 1;
  }
  int (*stat)(const char *, uint64_t *) = (int (*)(const char *, uint64_t *))dlsym(RTLD_DEFAULT, "hak_stat");
  uint64_t dumps = 0, dropped = 0;
  if (stat && !stat("prof.dumps", &dumps) && !stat("prof.dropped", &dropped))
    printf("prof.dumps %llu prof.dropped %llu\n", (unsigned long long)dumps, (unsigned long long)dropped);
  fflush(stdout);
  for (int i = 0; i < N90; i++) free(keep90[i]);
  for (int i = 0; i < N10; i++) free(keep10[i]);
  leak_some();
  return 0;
}
