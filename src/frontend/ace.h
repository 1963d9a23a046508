/* ACE: the adaptive layer. Off the hot path, it watches refills and drains
 * per class in windows and adjusts the TLS SLL capacities (CAP), refill
 * batches and the EMPTY-memory budget. Decisions are published as an
 * immutable FrozenPolicy snapshot that slow paths read; the fast path never
 * reads it. HAKMEM_LEARN=0 keeps the defaults fixed. */
#ifndef HAK_ACE_H
#define HAK_ACE_H
#include "base/common.h"
#include "mem/size_class.h"

#pragma GCC visibility push(hidden) /* internal: no GOT indirection */

typedef struct hak_policy { /* FrozenPolicy: never modified once published */
  uint64_t version;
  uint32_t cap[HAK_NCLASS];
  uint16_t batch[HAK_NCLASS];
  size_t empty_budget;
  double w_max;
} hak_policy_t;

extern _Atomic(const hak_policy_t *) g_policy;
extern _Atomic uint64_t g_policy_version;

HAK_INLINE const hak_policy_t *hak_policy(void) {
  return atomic_load_explicit(&g_policy, memory_order_acquire);
}

/* A heap hands in its counts every this many slow-path events. */
#define HAK_ACE_HEAP_EVENTS 64

void hak_ace_init(void);
/* A heap hands in its window of slow-path events: refills and drains per
 * class, and their total. */
void hak_ace_report(const uint32_t *refill, const uint32_t *drain, uint32_t events);
void hak_ace_reset_lock(void); /* fork child */
/* The configured EMPTY budget changed (HAKMEM_EMPTY_BUDGET at run time). */
void hak_ace_set_empty_budget(size_t bytes);

#pragma GCC visibility pop

#endif
