/* hak_lookup's slow cases: everything but a block of a held slab. */
#include "backend/lookup.h"

/* The Big mapping that holds a, for an address past its first 2 MiB (the
 * registry marks only a mapping's first region): a walk down the registry,
 * bounded to 128 GiB, that needs no lock. */
static hak_big_t *big_by_registry(uintptr_t a) {
  uintptr_t r = a & ~(uintptr_t)HAK_SS_MASK;
  for (unsigned i = 0; i < (1u << 16) && r >= HAK_SS_SIZE; i++) {
    r -= HAK_SS_SIZE;
    if (!hak_registry_test(r)) continue;
    hak_big_t *b = (hak_big_t *)r;
    if (b->r.magic == HAK_REGION_MAGIC && b->r.kind == HAK_REGION_BIG && r + b->map_size > a) return b;
    return NULL;
  }
  return NULL;
}

static hak_big_t *big_find(const void *p, int mode) {
  if (mode == HAK_LOOKUP_SIGNAL) return big_by_registry((uintptr_t)p);
  return mode == HAK_LOOKUP_LOCKED ? hak_big_find_locked(p) : hak_big_find(p);
}

static hak_ptr_t foreign(const char *why) { return (hak_ptr_t){HAK_PTR_FOREIGN, why, NULL, NULL, NULL}; }

static hak_ptr_t in_big(hak_big_t *b, uintptr_t a) {
  hak_ptr_t r = foreign("not allocated by hakmem (points into a hakmem header)");
  r.big = b;
  uintptr_t user = (uintptr_t)hak_big_user(b);
  if (!b->live) {
    if (a == user) {
      r.kind = HAK_PTR_FREED;
      r.why = "double free of a big block";
    } else {
      r.why = "not allocated by hakmem (inside a freed big mapping)";
    }
  } else if (a == user) {
    r.kind = HAK_PTR_BIG;
    r.why = NULL;
  } else if (a > user && a < (uintptr_t)b + b->map_size) {
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
    /* A Big block whose alignment put it outside its header's region, or
     * an address deep inside a Big block. */
    hak_big_t *b = big_find(p, mode);
    if (b) return in_big(b, a);
    /* A freed Big block whose run BigCache merged into the one before it:
     * where a block starts (a header page into a 2 MiB boundary) it is a
     * second free. */
    if (mode != HAK_LOOKUP_SIGNAL && (a & HAK_SS_MASK) == HAK_BIG_HEADER &&
        hak_big_in_cache(p, mode == HAK_LOOKUP_LOCKED)) {
      hak_ptr_t r = foreign("double free of a big block");
      r.kind = HAK_PTR_FREED;
      return r;
    }
    return foreign("not allocated by hakmem");
  }
  hak_region_t *reg = hak_region_of(p);
  if (reg->magic != HAK_REGION_MAGIC) return foreign("not allocated by hakmem");
  if (reg->kind == HAK_REGION_BIG) return in_big((hak_big_t *)reg, a);
  return in_slab((hak_ss_t *)reg, a);
}
