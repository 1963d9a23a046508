/* Arenas: reservations and their chunk bitmaps, under one lock taken once
 * per 2 MiB handed out or given back. */
#include "backend/arena.h"
#include "base/counters.h"
#include "base/lock.h"
#include "os/os.h"

#define CHUNK HAK_SS_SIZE
#define WORDS (HAK_ARENA_LAST / CHUNK / 64)

typedef struct {
  char *base;
  uint32_t nchunks, nfree;
  uint64_t free_bits[WORDS];  /* bit set: chunk free */
  uint64_t dirty_bits[WORDS]; /* bit set: a free chunk whose decommit failed */
} arena_t;

static hak_lock_t g_arena_lock = HAK_LOCK_INIT;
static arena_t g_arenas[HAK_ARENA_MAX];
static _Atomic unsigned g_narenas; /* published after the arena is set up */
/* Arenas whose chunks are all free (changed under g_arena_lock): malloc_trim,
 * which programs call in loops, looks for one only when there is one. */
static _Atomic unsigned g_empty_arenas;
static unsigned g_hint;            /* lowest arena that may have a free chunk */
static size_t g_next_size = HAK_ARENA_FIRST;

static bool bit(const arena_t *a, size_t i) { return (a->free_bits[i >> 6] >> (i & 63)) & 1; }

/* Marks chunks free or taken; returns whether every one of them read zero
 * (taking), or records whether they do (freeing). */
static bool set_bits(arena_t *a, size_t first, size_t n, bool free_, bool zero) {
  bool all_zero = true, was_empty = a->nfree == a->nchunks;
  for (size_t i = first; i < first + n; i++) {
    uint64_t m = (uint64_t)1 << (i & 63);
    if (free_) {
      a->free_bits[i >> 6] |= m;
      if (zero) a->dirty_bits[i >> 6] &= ~m;
      else a->dirty_bits[i >> 6] |= m;
    } else {
      a->free_bits[i >> 6] &= ~m;
      if (a->dirty_bits[i >> 6] & m) all_zero = false;
    }
  }
  if (free_) a->nfree += (uint32_t)n;
  else a->nfree -= (uint32_t)n;
  bool empty = a->nfree == a->nchunks;
  if (empty != was_empty) atomic_fetch_add_explicit(&g_empty_arenas, empty ? 1u : -1u, memory_order_relaxed);
  return all_zero;
}

/* First run of n free chunks in a, or -1. One chunk: the first set bit. */
static long find_run(const arena_t *a, size_t n) {
  if (a->nfree < n) return -1;
  size_t words = (a->nchunks + 63) / 64;
  if (n == 1) {
    for (size_t w = 0; w < words; w++)
      if (a->free_bits[w]) return (long)(w * 64 + (size_t)__builtin_ctzll(a->free_bits[w]));
    return -1;
  }
  size_t run = 0;
  for (size_t i = 0; i < a->nchunks; i++) {
    if (!(i & 63) && !a->free_bits[i >> 6]) { /* a word with no free chunk */
      run = 0;
      i += 63;
      continue;
    }
    run = bit(a, i) ? run + 1 : 0;
    if (run == n) return (long)(i + 1 - n);
  }
  return -1;
}

/* A new reservation of at least n chunks: the next size in the geometric
 * series, or smaller when the OS refuses that much address space. */
static arena_t *arena_reserve(size_t n) {
  unsigned k = atomic_load_explicit(&g_narenas, memory_order_relaxed);
  unsigned slot = k;
  for (unsigned i = 0; i < k; i++)
    if (!g_arenas[i].base) { /* released by hak_arena_release_free */
      slot = i;
      break;
    }
  if (slot >= HAK_ARENA_MAX) return NULL;
  size_t size = g_next_size;
  char *base = NULL;
  while (size >= n * CHUNK && !(base = hak_os_map_aligned(size, CHUNK))) size /= 2;
  if (!base) return NULL;
  arena_t *a = &g_arenas[slot];
  a->base = base;
  a->nchunks = (uint32_t)(size / CHUNK);
  a->nfree = 0;
  set_bits(a, 0, a->nchunks, true, true);
  if (g_next_size < HAK_ARENA_LAST) g_next_size *= 2;
  if (slot == k) atomic_store_explicit(&g_narenas, k + 1, memory_order_release);
  if (slot < g_hint) g_hint = slot;
  hak_cnt_add(&g_stats.arenas, 1);
  return a;
}

void *hak_arena_alloc(size_t n, bool *zero) {
  *zero = true;
  if (n == 0 || n * CHUNK > HAK_ARENA_LAST) return NULL;
  hak_lock(&g_arena_lock);
  unsigned k = atomic_load_explicit(&g_narenas, memory_order_relaxed);
  void *p = NULL;
  for (unsigned i = g_hint; i < k && !p; i++) {
    long first = find_run(&g_arenas[i], n);
    if (first < 0) continue;
    *zero = set_bits(&g_arenas[i], (size_t)first, n, false, false);
    p = g_arenas[i].base + (size_t)first * CHUNK;
  }
  if (!p) {
    arena_t *a = arena_reserve(n);
    if (a) {
      set_bits(a, 0, n, false, false);
      p = a->base;
    }
  }
  while (g_hint < k && !g_arenas[g_hint].nfree) g_hint++;
  hak_unlock(&g_arena_lock);
  return p;
}

static arena_t *arena_of(const void *p) {
  unsigned k = atomic_load_explicit(&g_narenas, memory_order_acquire);
  for (unsigned i = 0; i < k; i++) {
    const arena_t *a = &g_arenas[i];
    /* A released slot reads base NULL: no arithmetic on it (undefined even by 0) */
    if (a->base && (const char *)p >= a->base && (const char *)p < a->base + (size_t)a->nchunks * CHUNK)
      return &g_arenas[i];
  }
  return NULL;
}

bool hak_arena_extend(void *p, size_t n, size_t more) {
  hak_lock(&g_arena_lock);
  arena_t *a = arena_of(p);
  bool ok = a != NULL;
  size_t first = ok ? (size_t)((char *)p - a->base) / CHUNK + n : 0;
  if (ok && first + more > a->nchunks) ok = false;
  for (size_t i = first; ok && i < first + more; i++)
    ok = bit(a, i);
  if (ok) set_bits(a, first, more, false, false);
  hak_unlock(&g_arena_lock);
  return ok;
}

int hak_arena_index(const void *p) {
  hak_lock(&g_arena_lock);
  arena_t *a = arena_of(p);
  hak_unlock(&g_arena_lock);
  return a ? (int)(a - g_arenas) : -1;
}

void hak_arena_free(void *p, size_t n, bool zero) {
  hak_lock(&g_arena_lock);
  arena_t *a = arena_of(p);
  HAK_ASSERT(a != NULL);
  size_t first = (size_t)((char *)p - a->base) / CHUNK;
  set_bits(a, first, n, true, zero);
  unsigned i = (unsigned)(a - g_arenas);
  if (i < g_hint) g_hint = i;
  hak_unlock(&g_arena_lock);
}

size_t hak_arena_release_free(bool (*quiescent)(void)) {
  size_t released = 0;
  if (!atomic_load_explicit(&g_empty_arenas, memory_order_relaxed)) return 0;
  hak_lock(&g_arena_lock);
  unsigned k = atomic_load_explicit(&g_narenas, memory_order_relaxed);
  for (unsigned i = 0; i < k && quiescent(); i++) {
    arena_t *a = &g_arenas[i];
    if (!a->base || a->nfree != a->nchunks) continue;
    size_t size = (size_t)a->nchunks * CHUNK;
    hak_os_unmap(a->base, size);
    a->base = NULL;
    a->nchunks = a->nfree = 0;
    atomic_fetch_sub_explicit(&g_empty_arenas, 1, memory_order_relaxed);
    released += size;
  }
  hak_unlock(&g_arena_lock);
  return released;
}

void hak_arena_lock(void) { hak_lock(&g_arena_lock); }
void hak_arena_unlock(void) { hak_unlock(&g_arena_lock); }
void hak_arena_reset_lock(void) { hak_lock_reset(&g_arena_lock); }
