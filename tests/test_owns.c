/* test_owns.c — hak_owns(p) (include/hakmem.h): 1 for any byte of a block
 * of hakmem's, 0 for memory hakmem never handed out.
 *
 * Every byte of a live block of every tier is owned; foreign memory (stack,
 * static data, code, another mmap, NULL, wild addresses) is not. A freed Big
 * block — or one left behind by a realloc that moved it — is no longer owned;
 * freed blocks below the Big tier stay in hakmem's caches, and the header
 * says hak_owns may report them (telling them apart would mean walking other
 * threads' free lists). The freed-block checks are made where no allocation
 * happens between the free and the check.
 */
#include "hk_test.h"

#define KiB ((size_t)1024)
#define MiB ((size_t)1024 * 1024)

static int g_static_object;

static const size_t sizes[] = {1,        16,       100,      1024,          1040,         1041,   5000,
                               32 * KiB, 60000,    64 * KiB, 64 * KiB + 1,  300000,       1 * MiB,
                               3 * MiB,  20 * MiB};
#define NS (sizeof sizes / sizeof sizes[0])

static void live_blocks(void) {
  for (size_t i = 0; i < NS; i++) {
    char *p = malloc(sizes[i]);
    REQUIRE(p, "malloc(%zu) failed", sizes[i]);
    size_t us = malloc_usable_size(p);
    CHECK(hk_owns(p), "live block %p (%zu) not owned", (void *)p, sizes[i]);
    CHECK(hk_owns(p + sizes[i] / 2), "middle of live block %p (%zu) not owned", (void *)p, sizes[i]);
    CHECK(hk_owns(p + sizes[i] - 1), "last byte of live block %p (%zu) not owned", (void *)p, sizes[i]);
    if (us) CHECK(hk_owns(p + us - 1), "last usable byte of live block %p (%zu) not owned", (void *)p, sizes[i]);
    free(p);
  }
}

static void foreign(void) {
  int local = 0;
  CHECK(!hk_owns(NULL), "hak_owns(NULL) != 0");
  CHECK(!hk_owns(&local), "hak_owns(stack) != 0");
  CHECK(!hk_owns(&g_static_object), "hak_owns(static object) != 0");
  CHECK(!hk_owns((void *)foreign), "hak_owns(code) != 0");
  void *m = mmap(NULL, 4 * MiB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m != MAP_FAILED) {
    CHECK(!hk_owns(m), "hak_owns(foreign mmap) != 0");
    CHECK(!hk_owns((char *)m + 2 * MiB), "hak_owns(foreign mmap + 2MiB) != 0");
    munmap(m, 4 * MiB);
  }
  CHECK(!hk_owns((void *)(uintptr_t)0x1000), "hak_owns(0x1000) != 0");
  CHECK(!hk_owns((void *)(uintptr_t)0x7ffffffff000ULL), "hak_owns(top of user space) != 0");
  CHECK(!hk_owns((void *)(uintptr_t)0xffff800000000000ULL), "hak_owns(kernel address) != 0");
}

static void freed_blocks(void) {
  for (size_t i = 0; i < NS; i++) {
    void *keep = malloc(sizes[i]); /* keeps the slab or region in use */
    char *p = malloc(sizes[i]);
    REQUIRE(p && keep, "malloc failed");
    free(p);
    if (sizes[i] > 2 * MiB) /* Big tier */
      CHECK(!hk_owns(p), "hak_owns(%p) == 1 right after free (size %zu)", (void *)p, sizes[i]);
    free(keep);
  }
}

static void moved_by_realloc(void) {
  for (size_t i = 0; i + 1 < NS; i++) {
    void *keep = malloc(sizes[i]);
    char *p = malloc(sizes[i]);
    REQUIRE(p && keep, "malloc failed");
    char *q = realloc(p, sizes[i + 1] * 2 + 4096);
    REQUIRE(q, "realloc failed");
    CHECK(hk_owns(q), "realloc result %p not owned", (void *)q);
    if (q != p && sizes[i] > 2 * MiB) CHECK(!hk_owns(p), "hak_owns(%p) == 1 after realloc moved the block to %p (size %zu -> %zu)",
                      (void *)p, (void *)q, sizes[i], sizes[i + 1] * 2 + 4096);
    free(q);
    free(keep);
  }
}

int main(void) {
  hk_init("owns");
#ifdef TEST_AGAINST_GLIBC
  hk_note("nothing to check against glibc");
  check_finish();
#endif
  live_blocks();
  foreign();
  freed_blocks();
  moved_by_realloc();
  check_finish();
}
