/* Unit tests of hakmem's internals: size classes, SuperSlab and slot
 * arithmetic, the registry, the shared pool's stages, remote-free collection
 * and thread-exit adoption. Built against libhakmem_core.a with -Isrc (also
 * with ASan/UBSan by the runner); exits non-zero on any failed check. */
#include "hakmem.h"
#include "backend/arena.h"
#include "backend/big.h"
#include "backend/shared_pool.h"
#include "backend/superslab.h"
#include "base/config.h"
#include "base/counters.h"
#include "diag/stats.h"
#include "frontend/heap.h"
#include "mem/registry.h"
#include "mem/size_class.h"
#include "os/os.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define HK_MODE_HAKAPI 1
#include "hk_proc.h" /* hk_test.h and check.h; hk_status_kib, hk_maps_count */

static void test_size_classes(void) {
  hak_free(hak_malloc(1)); /* make sure hakmem is initialised */
  for (size_t n = 0; n <= g_large_max + 1; n += n < 70000 ? 1 : 509) {
    int c = hak_size_to_class(n);
    if (n > g_large_max) {
      CHECK(c == -1, "size %zu above the large limit maps to class %d", n, c);
      continue;
    }
    CHECK(c >= 0 && c < HAK_NCLASS, "size %zu: class %d", n, c);
    if (c < 0) continue;
    CHECK(g_class[c].size >= n, "size %zu in class %d of %u bytes", n, c, g_class[c].size);
    CHECK(c == 0 || g_class[c - 1].size < n, "size %zu not in the smallest class (%d)", n, c);
  }
  CHECK(g_class[hak_size_to_class(1040)].tier == HAK_TIER_TINY, "1040 stays Tiny");
  CHECK(g_class[hak_size_to_class(1041)].tier == HAK_TIER_MID, "1041 is MidPool");
  CHECK(g_class[hak_size_to_class(65536)].tier == HAK_TIER_MID, "64 KiB is MidPool");
  CHECK(g_class[hak_size_to_class(65537)].tier == HAK_TIER_LARGE, "64 KiB + 1 is LargePool");
  CHECK(g_class[hak_size_to_class(40960)].size == 40960, "40 KiB is an exact class");
  CHECK(g_class[hak_size_to_class(53248)].size == 53248, "52 KiB is an exact class");
  for (size_t n = 8192; n <= 32768; n += 1) { /* waste in the 8-32 KiB band */
    unsigned sz = g_class[hak_size_to_class(n)].size;
    CHECK((sz - n) * 8 <= n, "size %zu wastes %u bytes in class %u", n, sz - (unsigned)n, sz);
    if ((sz - n) * 8 > n) break;
  }
  for (int c = 0; c < HAK_NCLASS; c++) {
    const hak_class_info_t *ci = &g_class[c];
    size_t slab = (size_t)ci->slots * HAK_SLOT_SIZE;
    CHECK(ci->slots >= 1 && ci->slots <= 31, "class %d: %u slots", c, ci->slots);
    CHECK(ci->capacity >= 1 && (size_t)ci->capacity * ci->size <= slab, "class %d geometry", c);
    CHECK(ci->size % 16 == 0, "class %d size %u not a multiple of 16", c, ci->size);
    /* The one-multiply tests (superslab.h) are exact at every byte of the
     * slab: block start, and block start below a carve point of 0, 1, half
     * or all blocks, read from the descriptor of the slot the byte is in. */
    static hak_slab_t d[HAK_SLOTS];
    memset(d, 0, sizeof d);
    const uintptr_t base = (uintptr_t)1 << 40; /* never dereferenced */
    for (unsigned i = 0; i < ci->slots; i++) {
      d[i].geo.base = base;
      d[i].geo.div_test = ci->div_test;
    }
    d[0].geo.nslots = ci->slots;
    const uint32_t lims[4] = {0, 1, ci->capacity / 2u, ci->capacity};
    for (int k = 0; k < 4; k++) {
      hak_slab_set_carve(&d[0], (char *)(base + (size_t)lims[k] * ci->size));
      for (size_t off = 0; off < slab; off++) {
        const hak_slab_t *s = &d[off / HAK_SLOT_SIZE];
        bool is_start = off % ci->size == 0;
        if (hak_is_block_start(s, base + off) != is_start ||
            hak_is_carved_block(s, base + off) != (is_start && off / ci->size < lims[k])) {
          CHECK(0, "class %d (size %u), carve at block %u: block test wrong at offset %zu", c, ci->size, lims[k],
                off);
          break;
        }
      }
    }
  }
  for (size_t a = 32; a <= HAK_SLOT_SIZE; a <<= 1)
    for (size_t n = 1; n < 300000; n = n * 3 + 1) {
      int c = hak_class_for_aligned(n, a);
      if (c < 0) continue;
      CHECK(g_class[c].size >= n && g_class[c].size % a == 0, "aligned class for %zu/%zu", n, a);
    }
}

static void test_superslab_arithmetic(void) {
  size_t sizes[] = {16, 100, 1040, 1041, 5000, 40000, 65536, 70000, 500000, 800000};
  for (unsigned i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    char *p = hak_malloc(sizes[i]);
    CHECK(p != NULL, "malloc(%zu)", sizes[i]);
    hak_ss_t *ss = hak_ss_of(p);
    CHECK(((uintptr_t)ss & HAK_SS_MASK) == 0, "SuperSlab aligned");
    CHECK(ss->r.magic == HAK_REGION_MAGIC && ss->r.kind == HAK_REGION_SLABS, "header of %zu", sizes[i]);
    unsigned slot = hak_slot_of(p);
    CHECK(slot == (unsigned)(((uintptr_t)p - (uintptr_t)ss) >> HAK_SLOT_SHIFT), "slot index");
    CHECK(slot >= 1, "no block in the header slot");
    hak_slab_t *s = hak_slab_of(p);
    CHECK(s->geo.bsize == g_class[hak_size_to_class(sizes[i])].size, "bsize of %zu", sizes[i]);
    CHECK(((uintptr_t)p - s->geo.base) % s->geo.bsize == 0, "block start");
    CHECK(hak_is_block_start(s, (uintptr_t)p) && !hak_is_block_start(s, (uintptr_t)p + 8),
          "block start check for %zu", sizes[i]);
    CHECK(s->geo.owner == t_heap, "owned by this thread's heap");
    CHECK(hak_malloc_usable_size(p) == s->geo.bsize, "usable size");
    hak_free(p);
  }
  /* A Big block starts its run, on a chunk boundary; its descriptor is out
   * of band (the table), so the registry does not mark it and nothing of
   * hakmem's is in its memory. */
  char *b = hak_malloc(8u << 20);
  CHECK(((uintptr_t)b & HAK_SS_MASK) == 0, "a Big block starts on a 2 MiB boundary");
  CHECK(!hak_registry_test((uintptr_t)b), "a Big block is not in the registry");
  hak_big_t *d = hak_big_find(b + (5u << 20), HAK_BIG_FIND_LOCK);
  CHECK(d && d->base == (uintptr_t)b && d->live && d->map_size == (8u << 20) &&
            d->user_size == (8u << 20),
        "the table finds the run from inside it");
  CHECK(hak_big_find(b + (8u << 20), HAK_BIG_FIND_LOCK) != d, "the run ends at its size");
  hak_free(b);
}

static void test_registry(void) {
  int local;
  CHECK(!hak_registry_test((uintptr_t)&local), "stack is not registered");
  CHECK(!hak_registry_test(0), "NULL is not registered");
  CHECK(!hak_registry_test((uintptr_t)1 << 50), "addresses above 47 bits are not registered");
  uintptr_t fake = (uintptr_t)0x7e0000000000ull;
  CHECK(!hak_registry_test(fake), "fake region clear");
  hak_registry_set(fake);
  CHECK(hak_registry_test(fake) && hak_registry_test(fake + HAK_SS_SIZE - 1), "set covers 2 MiB");
  CHECK(!hak_registry_test(fake + HAK_SS_SIZE) && !hak_registry_test(fake - 1), "neighbours clear");
  hak_registry_clear(fake);
  CHECK(!hak_registry_test(fake), "cleared");
  void *p = hak_malloc(64);
  CHECK(hak_registry_test((uintptr_t)p) && hak_owns(p), "block registered and owned");
  CHECK(!hak_owns(&local), "stack not owned");
  hak_free(p);
}

/* 1 if the mapping holding p carries the smaps VmFlags flag ("hg" for
 * MADV_HUGEPAGE, "nh" for MADV_NOHUGEPAGE), 0 if not, -1 if p is in no
 * mapping. */
static int vma_flag(const void *p, const char *flag) {
  FILE *f = fopen("/proc/self/smaps", "r");
  if (!f) return -1;
  char line[512];
  int in = 0, r = -1;
  while (fgets(line, sizeof line, f)) {
    unsigned long lo, hi;
    if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2) /* a mapping's first line */
      in = (uintptr_t)p >= lo && (uintptr_t)p < hi;
    else if (in && !strncmp(line, "VmFlags:", 8)) {
      char want[8];
      snprintf(want, sizeof want, " %s", flag);
      r = strstr(line, want) != NULL;
      break;
    }
  }
  fclose(f);
  return r;
}

static int vma_hugepage(const void *p) { return vma_flag(p, "hg"); }

/* Whether MADV_HUGEPAGE works and shows in smaps here: kernels without THP,
 * and sandboxes that filter madvise or leave VmFlags out, skip the checks. */
static bool thp_observable(void) {
  size_t sz = 2u << 20;
  void *m = mmap(NULL, sz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) return false;
  bool ok = madvise(m, sz, MADV_HUGEPAGE) == 0 && vma_hugepage(m) == 1;
  munmap(m, sz);
  return ok;
}

/* HAKMEM_THP asks for huge pages on SuperSlabs (before their first touch)
 * and on Big blocks; without it hakmem leaves the kernel's default. */
static void test_thp(void) {
  if (!thp_observable()) {
    printf("unit_internals: MADV_HUGEPAGE not available or not shown in smaps, THP checks skipped\n");
    return;
  }
  int saved = g_cfg.thp;
  for (int on = 0; on <= 1; on++) {
    g_cfg.thp = on;
    bool zero;
    hak_ss_t *ss = hak_ss_new(NULL, &zero);
    CHECK(ss != NULL, "hak_ss_new");
    if (!ss) continue;
    int want = on && !g_hak_hardened; /* hardened guard pages split the mapping: no huge page */
    CHECK(vma_hugepage(ss) == want, "SuperSlab %p: MADV_HUGEPAGE %s", (void *)ss, want ? "missing" : "unasked");
    CHECK(vma_hugepage((char *)ss + HAK_SS_SIZE - 1) == want, "the whole SuperSlab");
    hak_ss_retire(ss);
    /* retire gave it back to its arena */
    char *b = hak_malloc(8u << 20);
    CHECK(b && vma_hugepage(b + (4u << 20)) == on, "big block: MADV_HUGEPAGE %s", on ? "missing" : "unasked");
    hak_free(b);
    hak_malloc_trim(0); /* no cached big mapping carries this setting into the next round */
  }
  g_cfg.thp = saved;
}

/* HAKMEM_THP=auto (the default): a SuperSlab asks for huge pages only
 * while the last probe (one SuperSlab in 64, mapped with small pages and
 * measured by mincore 64 mappings later) was nearly all resident, and the
 * heap holds HAKMEM_THP_AUTO_BYTES; Big blocks never ask. A SuperSlab that
 * decommits a slot gives huge pages up for good (MADV_NOHUGEPAGE), so
 * khugepaged cannot bring back the memory handed back. */
enum { THP_RUN = 200 }; /* past two probes wherever the count stands: 64 per probe */
static hak_ss_t *g_thp_ss[THP_RUN];

/* Maps THP_RUN SuperSlabs, filling the pages of each that did not ask when
 * dense; *first and *last: the indices of the first and last that asked for
 * huge pages (-1: none). All are retired before it returns. */
static void thp_run(bool dense, int *first, int *last) {
  *first = *last = -1;
  int n = 0;
  for (; n < THP_RUN; n++) {
    bool zero;
    hak_ss_t *ss = g_thp_ss[n] = hak_ss_new(NULL, &zero);
    CHECK(ss != NULL, "hak_ss_new");
    if (!ss) break;
    if (atomic_load(&ss->thp_asked)) {
      if (*first < 0)
        CHECK(vma_hugepage(ss) == 1 && vma_hugepage((char *)ss + HAK_SS_SIZE - 1) == 1,
              "an asking SuperSlab carries MADV_HUGEPAGE over its 2 MiB");
      if (*first < 0) *first = n;
      *last = n;
    } else if (dense) {
      memset((char *)ss + HAK_SS_HEADER, 1, HAK_SS_SIZE - HAK_SS_HEADER);
    }
  }
  while (n--) hak_ss_retire(g_thp_ss[n]);
}

/* The policy's count of mappings: the lines of /proc/self/maps. */
static void test_map_count(void) {
  long lines = hk_maps_count();
  long got = (long)hak_os_map_count();
  CHECK(lines > 5 && got + 2 >= lines && got <= lines + 2, "hak_os_map_count %ld, /proc/self/maps %ld lines", got, lines);
}

static void test_thp_auto(void) {
  test_map_count();
  if (!thp_observable() || g_hak_hardened) {
    printf("unit_internals: no observable huge pages, or hardened build: THP auto checks skipped\n");
    return;
  }
  int saved = g_cfg.thp;
  size_t saved_bytes = g_cfg.thp_auto_bytes;
  g_cfg.thp = HAK_THP_AUTO;
  g_cfg.thp_auto_bytes = 0;
  int first, last;
  /* Pages filled: within two probes, SuperSlabs ask, and go on asking
   * (only probes do not). */
  thp_run(true, &first, &last);
  CHECK(first >= 0 && first <= 2 * 64 && last >= THP_RUN - 2,
        "auto, pages filled: SuperSlabs asking for huge pages from %d to %d of %d", first, last, THP_RUN);
  /* Pages left untouched: asking stops within two probes. */
  thp_run(false, &first, &last);
  CHECK(last <= 2 * 64, "auto, pages untouched: a SuperSlab asked for huge pages at %d of %d", last, THP_RUN);
  /* Filled, but the heap below HAKMEM_THP_AUTO_BYTES: none asks. */
  g_cfg.thp_auto_bytes = SIZE_MAX;
  thp_run(true, &first, &last);
  CHECK(first < 0, "auto: SuperSlab %d asked for huge pages below HAKMEM_THP_AUTO_BYTES", first);
  g_cfg.thp_auto_bytes = 0;
  char *big = hak_malloc(8u << 20);
  CHECK(big && vma_hugepage(big + (4u << 20)) == 0, "auto: no huge pages on a big block");
  hak_free(big);
  /* One-slot blocks until some land in a SuperSlab made under auto. */
  enum { N = 80 };
  void *blk[N];
  hak_ss_t *huge_ss = NULL;
  void *keep = NULL;
  for (int i = 0; i < N; i++) {
    blk[i] = hak_malloc(65536);
    CHECK(blk[i] != NULL, "malloc(65536)");
    if (blk[i] && !huge_ss && vma_hugepage(hak_ss_of(blk[i])) == 1) {
      huge_ss = hak_ss_of(blk[i]);
      keep = blk[i];
    }
  }
  CHECK(huge_ss != NULL, "a SuperSlab with huge pages among %d one-slot blocks", N);
  for (int i = 0; i < N; i++)
    if (blk[i] != keep) hak_free(blk[i]);
  hak_malloc_trim(0); /* decommits the EMPTY slots; keep holds its SuperSlab mapped */
  if (huge_ss) {
    CHECK(atomic_load(&huge_ss->thp_off) == 1, "decommit recorded MADV_NOHUGEPAGE on the SuperSlab");
    CHECK(vma_flag(huge_ss, "nh") == 1 && vma_hugepage(huge_ss) == 0,
          "decommit: MADV_NOHUGEPAGE on the SuperSlab (khugepaged must not collapse it again)");
  }
  hak_free(keep);
  hak_malloc_trim(0);
  g_cfg.thp = saved;
  g_cfg.thp_auto_bytes = saved_bytes;
}

/* HAKMEM_THP takes off/on/auto in every spelling CONFIG.md gives; anything
 * else keeps the default instead of turning huge pages on everywhere. */
static void test_thp_parse(void) {
  static const struct {
    const char *v;
    int want;
  } cases[] = {{"auto", HAK_THP_AUTO}, {"AUTO", HAK_THP_AUTO}, {"2", HAK_THP_AUTO},
               {"1", HAK_THP_ON},      {"on", HAK_THP_ON},     {"yes", HAK_THP_ON},
               {"always", HAK_THP_ON}, {"0", HAK_THP_OFF},     {"off", HAK_THP_OFF},
               {"false", HAK_THP_OFF}, {"never", HAK_THP_OFF}, {"madvise", -1},
               {"auto ", -1},          {"3", -1}};
  int saved = g_cfg.thp;
  for (unsigned i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    g_cfg.thp = HAK_THP_AUTO; /* the default, which junk must keep */
    setenv("HAKMEM_THP", cases[i].v, 1);
    hak_config_init();
    int want = cases[i].want < 0 ? HAK_THP_AUTO : cases[i].want;
    CHECK(g_cfg.thp == want, "HAKMEM_THP=\"%s\" gave %d, want %d", cases[i].v, g_cfg.thp, want);
  }
  unsetenv("HAKMEM_THP");
  g_cfg.thp = saved;
}

static void test_shared_pool_stages(void) {
  hak_stats_t a, b;
  hak_stats_get(&a);
  /* Blocks of two classes share one SuperSlab (stage 2). */
  void *x = hak_malloc(3000), *y = hak_malloc(5000);
  hak_stats_get(&b);
  hak_ss_t *ss = hak_ss_of(x);
  int classes = 0;
  for (unsigned i = 1; i < HAK_SLOTS; i++) {
    hak_slab_t *sl = hak_ss_slab(ss, i);
    if (sl->geo.head == sl && sl->pool.state == HAK_SLOT_ACTIVE && sl->geo.cls != hak_slab_of(x)->geo.cls)
      classes++;
  }
  CHECK(classes > 0, "slabs of several classes share a SuperSlab");
  CHECK(b.sp_stage[1] > a.sp_stage[1], "stage 2 counted (%llu -> %llu)",
        (unsigned long long)a.sp_stage[1], (unsigned long long)b.sp_stage[1]);
  hak_free(x);
  hak_free(y);
  /* Fill more than a SuperSlab's worth of one class: stage 3 happens. */
  enum { N = 40 };
  void *big[N];
  hak_stats_get(&a);
  for (int i = 0; i < N; i++) big[i] = hak_malloc(65536); /* one slot each */
  hak_stats_get(&b);
  CHECK(b.sp_stage[2] > a.sp_stage[2], "stage 3 counted");
  /* Give them all back; the slabs become EMPTY, then are reused (stage 1). */
  for (int i = 0; i < N; i++) hak_free(big[i]);
  hak_heap_flush(t_heap);
  hak_stats_get(&a);
  CHECK(a.sp_release > b.sp_release, "slabs released to the pool");
  for (int i = 0; i < N; i++) big[i] = hak_malloc(65536);
  hak_stats_get(&b);
  CHECK(b.sp_stage[0] > a.sp_stage[0], "stage 1 (EMPTY reuse) counted");
  for (int i = 0; i < N; i++) hak_free(big[i]);
  /* malloc_trim gives every EMPTY slab back. */
  hak_malloc_trim(0);
  CHECK(hak_sp_empty_bytes() == 0, "trim leaves no EMPTY bytes (%zu)", hak_sp_empty_bytes());
}

enum { RN = 5000 };
static void *g_blocks[RN];
static void *remote_freer(void *arg) {
  (void)arg;
  for (int i = 0; i < RN; i++) hak_free(g_blocks[i]);
  return NULL;
}

static void test_remote_free(void) {
  for (int i = 0; i < RN; i++) {
    g_blocks[i] = hak_malloc(48);
    memset(g_blocks[i], 0xab, 48);
  }
  hak_slab_t *s = hak_slab_of(g_blocks[0])->geo.head;
  uint32_t used_before = s->tc.used;
  hak_stats_t a, b;
  hak_stats_get(&a);
  pthread_t t;
  pthread_create(&t, NULL, remote_freer, NULL);
  pthread_join(t, NULL);
  CHECK(atomic_load(&t_heap->pending) != NULL, "slabs pending after remote frees");
  CHECK(s->tc.used == used_before, "remote frees wait for the owner");
  /* Drain the SLL so the next malloc refills and collects. */
  hak_heap_flush(t_heap);
  hak_stats_get(&b);
  CHECK(b.remote_frees >= a.remote_frees + RN, "all %d remote frees collected (%llu)", RN,
        (unsigned long long)(b.remote_frees - a.remote_frees));
  CHECK(atomic_load(&t_heap->pending) == NULL, "pending stack empty after collection");
  void *p = hak_malloc(48);
  CHECK(p != NULL, "malloc after collection");
  hak_free(p);
}

static void *exiting_thread(void *arg) {
  void **keep = arg;
  for (int i = 0; i < 100; i++) hak_free(hak_malloc(100 + i));
  *keep = hak_malloc(200); /* outlives the thread */
  return NULL;
}

static size_t heap_count(void) {
  size_t n = 0;
  for (hak_heap_t *h = hak_heap_list(); h; h = h->all_next) n++;
  return n;
}

static void test_thread_exit_adoption(void) {
  hak_stats_t a, b;
  void *kept[200];
  pthread_t t;
  pthread_create(&t, NULL, exiting_thread, &kept[0]);
  pthread_join(t, NULL);
  size_t heaps = heap_count();
  hak_stats_get(&a);
  for (int i = 1; i < 200; i++) {
    pthread_create(&t, NULL, exiting_thread, &kept[i]);
    pthread_join(t, NULL);
  }
  hak_stats_get(&b);
  CHECK(heap_count() == heaps, "one-at-a-time threads reuse one heap (%zu -> %zu)", heaps,
        heap_count());
  CHECK(hak_cnt_get(&g_stats.heaps_adopted) >= 199, "heaps adopted");
  for (int i = 0; i < 200; i++) {
    CHECK(hak_owns(kept[i]), "block of an exited thread still live");
    memset(kept[i], 1, 200);
    hak_free(kept[i]); /* freed by another thread: remote free to an abandoned heap */
  }
  hak_malloc_trim(0);
  hak_stats_get(&b);
  CHECK(b.committed_bytes < (8u << 20), "memory returned after thread churn (%llu KiB)",
        (unsigned long long)(b.committed_bytes >> 10));
}

/* malloc_trim counts a heap's allocations from alloc_base_sum and the SLL
 * ticks alone; that count must be the sum of hak_sll_allocs over the
 * classes, also after ticks that ran out and started over (sampling on, no
 * sampler: the allocations stay ordinary). */
static void *tick_thread(void *arg) {
  (void)arg;
  void *v[512];
  uint32_t x = 12345;
  for (int round = 0; round < 40; round++) {
    for (int i = 0; i < 512; i++) {
      x = x * 1103515245u + 12345u;
      v[i] = hak_malloc(1 + (x >> 8) % 70000);
    }
    for (int i = 0; i < 512; i++) hak_free(v[i]);
  }
  hak_heap_t *h = t_heap;
  uint64_t want = 0, got = h->alloc_base_sum;
  for (unsigned c = 0; c < HAK_NCLASS; c++) {
    want += hak_sll_allocs(h, c);
    got -= (uint64_t)h->sll[c].tick;
  }
  CHECK(got == want, "malloc_trim's allocation count %llu, the classes' sum %llu", (unsigned long long)got,
        (unsigned long long)want);
  CHECK(want >= 40 * 512 / 2, "the thread's allocations were counted (%llu)", (unsigned long long)want);
  return NULL;
}

static void test_trim_count(void) {
  uint64_t saved = g_heap_sample_mean;
  g_heap_sample_mean = 4096; /* before the thread's heap starts its ticks */
  pthread_t t;
  pthread_create(&t, NULL, tick_thread, NULL);
  pthread_join(t, NULL);
  g_heap_sample_mean = saved;
}

/* The arena tests' SuperSlabs: made until `more` new arenas were mapped
 * (the last one is then the first of the last new arena). Returns how many
 * were made; *first_new is the index of the first in a new arena, or -1. */
enum { ARENA_TEST_SS = 4096 };
static hak_ss_t *g_test_ss[ARENA_TEST_SS];
static int ss_until_new_arenas(uint64_t more, int *first_new) {
  uint64_t arenas = hak_cnt_get(&g_stats.arenas);
  int n = 0;
  bool zero;
  *first_new = -1;
  while (n < ARENA_TEST_SS && hak_cnt_get(&g_stats.arenas) < arenas + more &&
         (g_test_ss[n] = hak_ss_new(NULL, &zero))) {
    if (*first_new < 0 && hak_cnt_get(&g_stats.arenas) > arenas) *first_new = n;
    n++;
  }
  REQUIRE(hak_cnt_get(&g_stats.arenas) == arenas + more, "%llu new arena(s) after %d SuperSlabs",
          (unsigned long long)more, n);
  return n;
}

/* malloc_trim(0) unmaps an arena whose chunks are all free (under
 * RLIMIT_AS, reserved address space counts): SuperSlabs until a new arena
 * is mapped, then all of them retired. */
static void test_arena_release(void) {
  hak_ss_t **v = g_test_ss;
  int first_new, n = ss_until_new_arenas(1, &first_new);
  uint64_t mapped = hk_status_kib("VmSize");
  while (n--) hak_ss_retire(v[n]);
  hak_malloc_trim(0);
  uint64_t after = hk_status_kib("VmSize");
  CHECK(after + (HAK_ARENA_FIRST >> 10) <= mapped, "malloc_trim unmapped the free arena: VmSize %llu -> %llu KiB",
        (unsigned long long)mapped, (unsigned long long)after);
}

/* A released arena leaves its slot empty (base NULL) until a new arena takes
 * it; lookups that walk the slots skip it, so a SuperSlab of a later arena
 * still goes back to its own. The fuzzer found arithmetic on the empty
 * slot's NULL base: the .asan build made with clang halts on it (gcc's
 * UBSan does not check a zero offset). */
static void test_arena_slot_gap(void) {
  hak_ss_t **v = g_test_ss;
  int first_new, n = ss_until_new_arenas(2, &first_new); /* the second new arena holds one SuperSlab */
  int a1 = hak_arena_index(v[first_new]), a2 = hak_arena_index(v[n - 1]);
  CHECK(a1 >= 0 && a2 > a1, "the second new arena has the later slot: %d, %d", a1, a2);
  for (int i = 0; i < n - 1; i++) hak_ss_retire(v[i]);
  hak_malloc_trim(0); /* the first new arena is wholly free: unmapped, its slot empty */
  CHECK(hak_arena_index(v[first_new]) < 0, "the first new arena was released");
  CHECK(hak_arena_index(v[n - 1]) == a2, "the second stays, with its SuperSlab");
  hak_ss_retire(v[n - 1]); /* finds its arena past the empty slot */
  hak_malloc_trim(0);
  CHECK(hak_arena_index(v[n - 1]) < 0, "the second new arena was released once free");
}

/* hak_sink_write, the JSON writer's path: writes longer than the sink's
 * buffer, and writes that end exactly at its edge, come out whole and in
 * order. */
static void test_sink_write(void) {
  enum { N = 40000 };
  static char in[N], out[N + 1];
  for (size_t i = 0; i < N; i++) in[i] = (char)('a' + (i * 7 + i / 26) % 26);
  char tmpl[] = "/tmp/hakmem-sink-XXXXXX";
  int fd = mkstemp(tmpl);
  REQUIRE(fd >= 0, "mkstemp");
  unlink(tmpl);
  hak_report_lock();
  hak_sink_t k = {.fd = fd};
  size_t done = 0;
  const size_t steps[] = {1, 511, 16384, 3, 20000, 2};
  for (size_t i = 0; done < N; i++) {
    size_t n = steps[i % 6] < N - done ? steps[i % 6] : N - done;
    hak_sink_write(&k, in + done, n);
    done += n;
  }
  hak_sink_flush(&k);
  hak_report_unlock();
  CHECK(!k.err, "the sink's writes succeeded");
  ssize_t got = pread(fd, out, sizeof out, 0);
  CHECK(got == N, "the file holds every byte written: %zd of %d", got, N);
  CHECK(got == N && !memcmp(in, out, N), "in the order written");
  close(fd);
}

int main(void) {
  test_trim_count(); /* first: its thread gets a new heap, not an exited thread's */
  test_size_classes();
  test_superslab_arithmetic();
  test_registry();
  test_thp();
  test_thp_auto();
  test_thp_parse();
  test_shared_pool_stages();
  test_remote_free();
  test_thread_exit_adoption();
  test_arena_release();
  test_arena_slot_gap();
  test_sink_write();
  return check_summary("unit_internals");
}
