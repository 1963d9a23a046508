/* prof_prog — the heap profiler's test program (py.prof), built plainly, run
 * under LD_PRELOAD. 90 MB through alloc_ninety, 10 MB through alloc_ten,
 * every other block of each freed; prints the live bytes of each and writes
 * a profile to argv[1] with hak_prof_dump; then frees everything but what
 * leak_some leaks (4000 blocks), for the leak report at exit. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <malloc.h>
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
  for (int i = 0; i < N90; i++) {
    if (!(keep90[i] = alloc_ninety())) return 3;
    if (i % 9 == 0 && !(keep10[i / 9] = alloc_ten())) return 3;
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
  for (int i = 0; i < N90; i++) free(keep90[i]);
  for (int i = 0; i < N10; i++) free(keep10[i]);
  leak_some();
  return 0;
}
