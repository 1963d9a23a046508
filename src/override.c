/* The override layer: the standard names, mapped onto the hak_* core. Linked
 * into libhakmem.so and libhakmem.a, left out of libhakmem_core.a. C++
 * operator new/delete in libstdc++ call malloc/free/aligned_alloc, so they
 * reach hakmem through these with the standard's semantics intact. */
#include "hakmem.h"
#include "common.h"

#include <malloc.h>
#include <stdlib.h>

HAK_API void *malloc(size_t n) { return hak_malloc(n); }
HAK_API void free(void *p) { hak_free(p); }
HAK_API void *calloc(size_t n, size_t size) { return hak_calloc(n, size); }
HAK_API void *realloc(void *p, size_t n) { return hak_realloc(p, n); }
HAK_API void *reallocarray(void *p, size_t n, size_t size) { return hak_reallocarray(p, n, size); }
HAK_API int posix_memalign(void **out, size_t align, size_t n) {
  return hak_posix_memalign(out, align, n);
}
HAK_API void *aligned_alloc(size_t align, size_t n) { return hak_aligned_alloc(align, n); }
HAK_API void *memalign(size_t align, size_t n) { return hak_memalign(align, n); }
HAK_API void *valloc(size_t n) { return hak_valloc(n); }
HAK_API void *pvalloc(size_t n) { return hak_pvalloc(n); }
HAK_API size_t malloc_usable_size(void *p) { return hak_malloc_usable_size(p); }
HAK_API int malloc_trim(size_t pad) { return hak_malloc_trim(pad); }
HAK_API void malloc_stats(void) { hak_malloc_stats(); }
HAK_API void cfree(void *p) { hak_free(p); }
HAK_API void free_sized(void *p, size_t size) { hak_free_sized(p, size); }
HAK_API void free_aligned_sized(void *p, size_t align, size_t size) {
  (void)align;
  hak_free_sized(p, size);
}

_Static_assert(sizeof(struct hak_mallinfo) == sizeof(struct mallinfo2), "mallinfo2 layout");
HAK_API struct mallinfo2 mallinfo2(void) {
  struct hak_mallinfo h = hak_mallinfo2();
  struct mallinfo2 m;
  __builtin_memcpy(&m, &h, sizeof m);
  return m;
}

static int clamp_int(size_t v) { return v > 0x7fffffff ? 0x7fffffff : (int)v; }
HAK_API struct mallinfo mallinfo(void) {
  struct hak_mallinfo h = hak_mallinfo2();
  struct mallinfo m = {clamp_int(h.arena),    clamp_int(h.ordblks),  clamp_int(h.smblks),
                       clamp_int(h.hblks),    clamp_int(h.hblkhd),   clamp_int(h.usmblks),
                       clamp_int(h.fsmblks),  clamp_int(h.uordblks), clamp_int(h.fordblks),
                       clamp_int(h.keepcost)};
  return m;
}

/* hakmem has no glibc tunables; accept them so programs that set them run. */
HAK_API int mallopt(int param, int value) {
  (void)param;
  (void)value;
  return 1;
}
