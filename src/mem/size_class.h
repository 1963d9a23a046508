/* Size classes of the three slab tiers: Tiny (<= 1040 B), MidPool (<= 64 KiB)
 * and LargePool (<= 31 slots). All of them are served by the same slab engine
 * (heap.c); only the class geometry differs. The tier is picked with at most
 * three compares and one table lookup. */
#ifndef HAK_SIZE_CLASS_H
#define HAK_SIZE_CLASS_H
#include "base/common.h"

#pragma GCC visibility push(hidden) /* internal: no GOT indirection */

#define HAK_TINY_MAX 1040u
#define HAK_MID_MAX 65536u
#define HAK_LARGE_LIMIT (31u * 65536u) /* the largest block a SuperSlab can hold */
#define HAK_NCLASS 77
#define HAK_MID_FIRST 21
#define HAK_LARGE_FIRST 57

enum { HAK_TIER_TINY = 0, HAK_TIER_MID = 1, HAK_TIER_LARGE = 2, HAK_TIER_BIG = 3 };

typedef struct hak_class_info {
  uint32_t size;      /* block size */
  uint8_t slots;      /* 64 KiB slots per slab */
  uint8_t tier;
  uint16_t capacity;  /* blocks per slab */
  uint64_t div_test;  /* floor(2^64 / size) + 1: see hak_is_block_start */
} hak_class_info_t;

extern hak_class_info_t g_class[HAK_NCLASS];
extern uint8_t g_cls_tiny[(HAK_TINY_MAX >> 4) + 1];
extern uint8_t g_cls_mid[(HAK_MID_MAX >> 7) + 1];
extern uint8_t g_cls_large[(HAK_LARGE_LIMIT >> 14) + 1];
extern size_t g_large_max; /* min(big threshold, HAK_LARGE_LIMIT) */

void hak_size_class_init(void);
/* Requests above max(64 KiB, min(t, HAK_LARGE_LIMIT)) go Big from now on
 * (HAKMEM_BIG_THRESHOLD, mallopt's M_MMAP_THRESHOLD). */
void hak_size_class_set_big_threshold(size_t t);

/* Class for a size above Tiny; -1 means Big. */
HAK_INLINE int hak_class_above_tiny(size_t n) {
  if (n <= HAK_MID_MAX) return g_cls_mid[(n + 127) >> 7];
  if (n <= g_large_max) return g_cls_large[(n + 16383) >> 14];
  return -1;
}

HAK_INLINE int hak_size_to_class(size_t n) {
  if (HAK_LIKELY(n <= HAK_TINY_MAX)) return g_cls_tiny[(n + 15) >> 4];
  return hak_class_above_tiny(n);
}

/* Smallest class >= n whose blocks are all aligned to align (align <= 64 KiB):
 * slab bases are 64 KiB aligned, so a block size that is a multiple of align
 * suffices. -1 means none (go Big). */
int hak_class_for_aligned(size_t n, size_t align);

#pragma GCC visibility pop

#endif
