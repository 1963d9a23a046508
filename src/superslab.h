/* SuperSlab: a 2 MiB region aligned to 2 MiB. Slot 0 holds this header; the
 * other 31 slots of 64 KiB are carved into slabs of one or more slots.
 * p & ~(2 MiB - 1) finds the header of any block below the Big tier, and
 * (p - base) >> 16 its slot. Big mappings start with the same header (kind
 * HAK_SS_BIG, every slot's owner NULL) so free() has one path. */
#ifndef HAK_SUPERSLAB_H
#define HAK_SUPERSLAB_H
#include "common.h"

#pragma GCC visibility push(hidden) /* internal: no GOT indirection */

struct hak_heap;

enum { HAK_SLOT_UNUSED = 0, HAK_SLOT_ACTIVE = 1, HAK_SLOT_EMPTY = 2 };
enum { HAK_SS_SLABS = 1, HAK_SS_BIG = 2 };
#define HAK_SS_MAGIC 0x68616b6d656d5353ull /* "hakmemSS" */
#define HAK_SS_ALL_SLOTS 0xfffffffeu      /* slots 1..31 */

/* Per-slot metadata. Every slot of a multi-slot slab carries the fields the
 * free fast path reads (owner, base, div_test, carve_lim, sll_off, cls, head), so a block
 * that starts in a later slot is freed as fast as one in the first. The
 * mutable slab state lives in the head slot's entry. 128 bytes: the owner's
 * fields on the first cache line, the remote-free list on the second. */
typedef struct hak_slab {
  struct hak_heap *owner; /* NULL unless ACTIVE */
  struct hak_slab *head;  /* the slab's first slot (itself for the head) */
  uintptr_t base;         /* first block */
  uint64_t div_test;      /* floor(2^64 / bsize) + 1: see hak_is_block_start */
  uint32_t bsize;
  uint16_t capacity;
  uint8_t cls;
  uint8_t nslots;   /* slots in this slab (head only) */
  void *free;       /* head only: blocks returned to the slab */
  uint64_t carve_lim; /* (carve - base) * div_test, mirrored in every slot: see hak_is_carved_block */
  uint32_t used;    /* head only: blocks out of the slab (user, TLS SLL, remote) */
  uint16_t sll_off; /* byte offset of the class's TLS SLL in a heap */
  uint16_t pad0_;
  /* second cache line: slab state and what other threads write, none of
   * which the free fast path reads */
  uint8_t state;   /* head only: HAK_SLOT_* */
  uint8_t in_partial;
  uint8_t fresh;   /* memory past carve is known to be zero */
  uint8_t pad_;
  uint32_t nfree;  /* head only: blocks on free */
  _Atomic(void *) remote;                /* MPSC list of blocks freed by other threads */
  struct hak_slab *_Atomic pending_next; /* link on the owner heap's pending stack */
  struct hak_slab *next, *prev;          /* owner heap's partial list */
  _Atomic uint64_t sp_next;              /* shared pool EMPTY stack link (slab id + 1) */
  uint64_t empty_since;                  /* ms clock when it became EMPTY */
  char *carve;                           /* head only: next never-handed-out block */
} hak_slab_t;

typedef struct hak_ss {
  hak_slab_t slab[HAK_SLOTS]; /* slab[0] describes the header slot: owner NULL */
  uint64_t magic;
  uint32_t kind;
  _Atomic uint32_t unused_mask; /* slot i UNUSED: free to carve */
  _Atomic uint32_t dirty_mask;  /* UNUSED slots whose memory is not known to be zero */
  _Atomic uint32_t decommitted_mask; /* UNUSED slots given back to the OS (not never-touched ones) */
  uint32_t big_live;            /* Big: 1 while handed out, 0 while in BigCache */
  _Atomic uint32_t thp_off;     /* MADV_NOHUGEPAGE applied (at the first decommit) */
  struct hak_ss *next, *prev; /* shared pool list (under its lock) */
  /* Big mappings */
  size_t map_size;  /* bytes mapped, from the header */
  size_t user_off;  /* user pointer - header */
  size_t user_size; /* usable bytes */
  size_t req_size;  /* bytes last asked for (malloc or realloc): tells a shrink from growth */
  struct hak_ss *big_next, *big_prev;
  uint64_t big_time;
} hak_ss_t;

_Static_assert(sizeof(hak_slab_t) == 128, "slab meta is two cache lines");
_Static_assert(sizeof(hak_ss_t) <= HAK_SLOT_SIZE, "header fits in slot 0");

HAK_INLINE hak_ss_t *hak_ss_of(const void *p) {
  return (hak_ss_t *)((uintptr_t)p & ~(uintptr_t)HAK_SS_MASK);
}
HAK_INLINE unsigned hak_slot_of(const void *p) {
  return (unsigned)(((uintptr_t)p >> HAK_SLOT_SHIFT) & (HAK_SLOTS - 1));
}
HAK_INLINE hak_slab_t *hak_slab_of(const void *p) {
  return &hak_ss_of(p)->slab[hak_slot_of(p)];
}
HAK_INLINE char *hak_slot_addr(hak_ss_t *ss, unsigned slot) {
  return (char *)ss + ((size_t)slot << HAK_SLOT_SHIFT);
}
HAK_INLINE unsigned hak_slab_index(const hak_slab_t *s) {
  return (unsigned)(s - hak_ss_of(s)->slab);
}
/* A slab's id packs its address in 31 bits: (address of its slot) >> 16. */
HAK_INLINE uint32_t hak_slab_id(const hak_slab_t *s) {
  return (uint32_t)(((uintptr_t)hak_ss_of(s) >> HAK_SLOT_SHIFT) + hak_slab_index(s));
}
HAK_INLINE hak_slab_t *hak_slab_from_id(uint32_t id) {
  uintptr_t a = (uintptr_t)id << HAK_SLOT_SHIFT;
  return &((hak_ss_t *)(a & ~(uintptr_t)HAK_SS_MASK))->slab[id & (HAK_SLOTS - 1)];
}
HAK_INLINE uint32_t hak_slots_mask(unsigned first, unsigned n) {
  return (uint32_t)((((uint64_t)1 << n) - 1) << first);
}

/* Whether a is the start of a block, by one multiply. With c = div_test =
 * floor(2^64 / d) + 1 and e = d * c - 2^64 (0 < e <= d), an offset n = k*d + r
 * inside a slab gives n * c mod 2^64 = k*e + r*c: exactly k*e when r == 0, and
 * at least c otherwise (no wrap while (k + 1) * e < c, true for slabs of at
 * most 2 MiB and blocks of at most 1 MiB). unit_internals checks it for every
 * class and offset. */
HAK_INLINE bool hak_is_block_start(const hak_slab_t *s, uintptr_t a) {
  return (uint64_t)(a - s->base) * s->div_test < s->div_test;
}

/* Whether a is the start of a block that was ever handed out: k*e grows with
 * the block index k, so one compare against (carve - base) * c covers both
 * "is a block start" and "lies below the carve point". */
HAK_INLINE bool hak_is_carved_block(const hak_slab_t *s, uintptr_t a) {
  return (uint64_t)(a - s->base) * s->div_test < s->carve_lim;
}

/* Moves a slab's carve point; every slot keeps the limit so that free's check
 * reads only the slot it already has. */
HAK_INLINE void hak_slab_set_carve(hak_slab_t *head, char *carve) {
  uint64_t lim = (uint64_t)((uintptr_t)carve - head->base) * head->div_test;
  head->carve = carve;
  for (unsigned i = 0; i < head->nslots; i++) head[i].carve_lim = lim;
}

hak_ss_t *hak_ss_new(void); /* maps, initialises and registers a SuperSlab */
/* Makes a wholly unused SuperSlab unreachable (registry, counters); the
 * caller unmaps it once no reader can hold a pointer into it. */
void hak_ss_retire(hak_ss_t *ss);
/* Sets up slots [first, first+n) as one slab of class cls owned by h. */
void hak_ss_slab_setup(hak_ss_t *ss, unsigned first, unsigned cls, struct hak_heap *h, bool fresh);
/* Points every slot of a slab at owner h (NULL when it leaves a heap). */
void hak_ss_slab_set_owner(hak_slab_t *head, struct hak_heap *h);

#pragma GCC visibility pop

#endif
