/* Constants and helpers shared by every part of hakmem (layer base). */
#ifndef HAK_COMMON_H
#define HAK_COMMON_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#pragma GCC visibility push(hidden) /* internal: no GOT indirection */

#define HAK_SS_SHIFT 21 /* SuperSlab: 2 MiB, aligned to 2 MiB */
#define HAK_SS_SIZE ((size_t)1 << HAK_SS_SHIFT)
#define HAK_SS_MASK (HAK_SS_SIZE - 1)
#define HAK_SLOT_SHIFT 16 /* slot: 64 KiB */
#define HAK_SLOT_SIZE ((size_t)1 << HAK_SLOT_SHIFT)
#define HAK_SLOTS 32 /* slot 0 holds the header */
#define HAK_PAGE 4096
/* The largest request any allocation call accepts (larger: ENOMEM). */
#define HAK_MAX_REQUEST ((size_t)PTRDIFF_MAX)
#define HAK_ADDR_BITS 47 /* user-space addresses we register */

#define HAK_LIKELY(x) __builtin_expect(!!(x), 1)
#define HAK_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define HAK_INLINE static inline __attribute__((always_inline))
#define HAK_NOINLINE __attribute__((noinline))
#define HAK_COLD __attribute__((noinline, cold))
#define HAK_API __attribute__((visibility("default")))
#define HAK_CACHELINE 64

#if defined(HAKMEM_DEBUG) && HAKMEM_DEBUG
#define HAK_ASSERT(c)                                                                              \
  do {                                                                                             \
    if (HAK_UNLIKELY(!(c))) hak_assert_fail(#c, __FILE__, __LINE__);                               \
  } while (0)
#define HAK_TRACE(...) hak_trace(__VA_ARGS__)
#else
#define HAK_ASSERT(c) ((void)0)
#define HAK_TRACE(...) ((void)0)
#endif

void hak_assert_fail(const char *cond, const char *file, int line) __attribute__((noreturn));
/* hak_fmt syntax: %s %p, and %u/%d for 64-bit integers. */
void hak_trace(const char *fmt, ...);

/* A counter updated by any thread on slow paths only (the fast paths count
 * in their own heap), so a relaxed atomic add is cheap enough. */
typedef _Atomic uint64_t hak_counter_t;
HAK_INLINE void hak_cnt_add(hak_counter_t *c, uint64_t v) {
  atomic_fetch_add_explicit(c, v, memory_order_relaxed);
}
HAK_INLINE uint64_t hak_cnt_get(hak_counter_t *c) {
  return atomic_load_explicit(c, memory_order_relaxed);
}

HAK_INLINE size_t hak_align_up(size_t n, size_t a) { return (n + a - 1) & ~(a - 1); }
HAK_INLINE bool hak_is_pow2(size_t x) { return x && !(x & (x - 1)); }

#pragma GCC visibility pop

#endif
