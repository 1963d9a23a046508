/* alloc.c's entry points for the other parts of the API layer, beside the
 * public hak_* functions of hakmem.h. */
#ifndef HAK_ALLOC_H
#define HAK_ALLOC_H
#include <stddef.h>

#pragma GCC visibility push(hidden) /* internal: no GOT indirection */
/* A block of n bytes aligned to align (a power of two) whose whole usable
 * size is zero; NULL with ENOMEM. Fresh memory is not written. */
void *hak_alloc_zeroed(size_t n, size_t align);
/* Zeroes [p, p + n) of a block; the whole pages of a long range are given
 * back to the OS instead of written, so that they stay untouched. */
void hak_zero(void *p, size_t n);
#pragma GCC visibility pop

#endif
