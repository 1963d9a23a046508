/* The override layer: the standard names, mapped onto the hak_* core. Linked
 * into libhakmem.so and libhakmem.a, left out of libhakmem_core.a. C++
 * operator new/delete in libstdc++ call malloc/free/aligned_alloc, so they
 * reach hakmem through these with the standard's semantics intact. The hot
 * names are aliases compiled into alloc.c (HAK_OVERRIDE). */
#include "hakmem.h"
#include "base/common.h"

#include <malloc.h>
#include <stdlib.h>

/* malloc, free, calloc, realloc, ... are aliases defined in alloc.c. */
HAK_API void malloc_stats(void) { hak_malloc_stats(); }
HAK_API size_t malloc_usable_size(void *p) { return hak_malloc_usable_size(p); }
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

/* glibc's parameters that hakmem honours (docs/CONFIG.md); 0 for the rest. */
HAK_API int mallopt(int param, int value) { return hak_mallopt(param, value); }
HAK_API int malloc_info(int options, FILE *fp) { return hak_malloc_info(options, fp); }

/* jemalloc's own names (api/jemalloc.c says why). */
HAK_API void *mallocx(size_t size, int flags) { return hak_mallocx(size, flags); }
HAK_API void *rallocx(void *p, size_t size, int flags) { return hak_rallocx(p, size, flags); }
HAK_API size_t xallocx(void *p, size_t size, size_t extra, int flags) { return hak_xallocx(p, size, extra, flags); }
HAK_API size_t sallocx(const void *p, int flags) { return hak_sallocx(p, flags); }
HAK_API void dallocx(void *p, int flags) { hak_dallocx(p, flags); }
HAK_API void sdallocx(void *p, size_t size, int flags) { hak_sdallocx(p, size, flags); }
HAK_API size_t nallocx(size_t size, int flags) { return hak_nallocx(size, flags); }
HAK_API int mallctl(const char *name, void *oldp, size_t *oldlenp, void *newp, size_t newlen) {
  return hak_mallctl(name, oldp, oldlenp, newp, newlen);
}
HAK_API int mallctlnametomib(const char *name, size_t *mibp, size_t *miblenp) {
  return hak_mallctlnametomib(name, mibp, miblenp);
}
HAK_API int mallctlbymib(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp, void *newp,
                         size_t newlen) {
  return hak_mallctlbymib(mib, miblen, oldp, oldlenp, newp, newlen);
}
HAK_API void malloc_stats_print(void (*write_cb)(void *, const char *), void *arg, const char *opts) {
  hak_malloc_stats_print(write_cb, arg, opts);
}
