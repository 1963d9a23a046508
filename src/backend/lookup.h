/* The one answer to "what is this pointer?": every caller that must know
 * (free, realloc, malloc_usable_size, hak_owns, the crash report) asks
 * hak_lookup, which never follows a pointer hakmem does not own. */
#ifndef HAK_LOOKUP_H
#define HAK_LOOKUP_H
#include "backend/big.h"
#include "backend/superslab.h"
#include "base/common.h"
#include "mem/registry.h"

#pragma GCC visibility push(hidden) /* internal: no GOT indirection */

typedef enum {
  HAK_PTR_NULL,
  HAK_PTR_BLOCK,    /* start of a carved block of a slab a heap holds: live, or in a
                     * thread cache (which of the two is not known here) */
  HAK_PTR_BIG,      /* start of a live Big block */
  HAK_PTR_INTERIOR, /* inside a block of either kind, not at its start: .block */
  HAK_PTR_FREED,    /* start of a block hakmem holds free: its slab holds no
                     * block, or a Big block in BigCache */
  HAK_PTR_FOREIGN,  /* not a block of hakmem's: .why says what it is instead */
} hak_ptr_kind_t;

typedef struct {
  hak_ptr_kind_t kind;
  const char *why;    /* every kind but BLOCK, BIG and NULL: in words, for reports */
  hak_slab_t *slab;   /* BLOCK, and any pointer into a SuperSlab's slot: its descriptor */
  hak_big_t *big;     /* BIG, and any pointer into a Big run found: its descriptor */
  const void *block;  /* INTERIOR: the block's start */
} hak_ptr_t;

enum {
  HAK_LOOKUP_LOCK,   /* takes the Big lock for a walk of the Big table */
  HAK_LOOKUP_LOCKED, /* the caller holds the Big lock */
  HAK_LOOKUP_SIGNAL, /* in a signal handler: no lock; the Big table is read as it is */
};

hak_ptr_t hak_lookup_slow(const void *p, int mode);

/* The common case inline: a block of a slab that a heap holds. */
HAK_INLINE hak_ptr_t hak_lookup(const void *p, int mode) {
  uintptr_t a = (uintptr_t)p;
  if (HAK_LIKELY(hak_registry_test(a))) {
    hak_slab_t *s = hak_slab_of(p);
    if (HAK_LIKELY(s->geo.owner != NULL && hak_is_carved_block(s, a)))
      return (hak_ptr_t){HAK_PTR_BLOCK, NULL, s, NULL, NULL};
  }
  return hak_lookup_slow(p, mode);
}

HAK_INLINE bool hak_ptr_is_ours(hak_ptr_kind_t k) {
  return k == HAK_PTR_BLOCK || k == HAK_PTR_BIG || k == HAK_PTR_INTERIOR;
}

#pragma GCC visibility pop

#endif
