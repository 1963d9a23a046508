/* hak_lookup's slow cases: everything but a block of a held slab. */
#include "backend/lookup.h"

static hak_ptr_t foreign(const char *why) {
  return (hak_ptr_t){HAK_PTR_FOREIGN, why, NULL, NULL, NULL};
}

/* b holds a (hak_big_find). Every Big block starts a run on a chunk
 * boundary, and so did each freed block that BigCache merged into a
 * neighbour's run: a chunk start in a cached run is a second free. */
static hak_ptr_t in_big(hak_big_t *b, uintptr_t a) {
  hak_ptr_t r = foreign(NULL);
  r.big = b;
  uintptr_t user = (uintptr_t)hak_big_user(b);
  if (!b->live) {
    if ((a & HAK_SS_MASK) == 0) {
      r.kind = HAK_PTR_FREED;
      r.why = "double free of a big block";
    } else {
      r.why = "not allocated by hakmem (inside a freed big block)";
    }
  } else if (a == user) {
    r.kind = HAK_PTR_BIG;
  } else {
    r.kind = HAK_PTR_INTERIOR;
    r.why = "interior pointer into a big block";
    r.block = (const void *)user;
  }
  return r;
}

static hak_ptr_t in_slab(hak_ss_t *ss, uintptr_t a) {
  unsigned slot = hak_slot_of((void *)a);
  if (slot == 0) return foreign("not allocated by hakmem (points into a SuperSlab header)");
  hak_slab_t *s = hak_ss_slab(ss, slot);
  hak_ptr_t r = foreign(NULL);
  r.slab = s;
  if (!s->geo.owner) {
    if (s->geo.bsize) {
      r.kind = HAK_PTR_FREED;
      r.why = "double free (the block's slab holds no live block)";
    } else {
      r.why = "not allocated by hakmem (unused slab memory)";
    }
  } else if (a >= (uintptr_t)__atomic_load_n(&s->geo.head->geo.carve, __ATOMIC_RELAXED)) {
    r.why = a < (uintptr_t)hak_slab_end(s) ? "not allocated by hakmem (never handed out)"
                                           : "not allocated by hakmem (slab tail padding)";
  } else if (hak_is_block_start(s, a)) {
    if (hak_slab_block_purged(s->geo.head, a)) {
      r.kind = HAK_PTR_FREED;
      r.why = HAK_WHY_PURGED;
    } else {
      /* The slab was handed to a heap after hak_lookup's own look, or has
       * purged pages (carve_lim 0). */
      r.kind = HAK_PTR_BLOCK;
      r.why = NULL;
    }
  } else {
    uintptr_t off = a - s->geo.base;
    r.kind = HAK_PTR_INTERIOR;
    r.why = "interior pointer";
    r.block = (const void *)(s->geo.base + (off / s->geo.bsize) * s->geo.bsize);
  }
  return r;
}

hak_ptr_t hak_lookup_slow(const void *p, int mode) {
  uintptr_t a = (uintptr_t)p;
  if (!p) return (hak_ptr_t){HAK_PTR_NULL, NULL, NULL, NULL, NULL};
  if (!hak_registry_test(a)) {
    /* Big blocks are not in the registry: their table says. */
    int lock = mode == HAK_LOOKUP_LOCK     ? HAK_BIG_FIND_LOCK
               : mode == HAK_LOOKUP_LOCKED ? HAK_BIG_FIND_LOCKED
                                           : HAK_BIG_FIND_SIGNAL;
    hak_big_t *b = hak_big_find(p, lock);
    if (b) return in_big(b, a);
    return foreign("not allocated by hakmem");
  }
  hak_region_t *reg = hak_region_of(p);
  if (reg->magic != HAK_REGION_MAGIC) return foreign("not allocated by hakmem");
  return in_slab((hak_ss_t *)reg, a);
}
