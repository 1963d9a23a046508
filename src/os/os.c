/* OS interface: mappings, decommit, remap, with statistics. */
#include "os/os.h"
#include "base/config.h"
#include "base/counters.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

_Atomic int64_t g_os_fail_countdown;
_Atomic uint32_t g_os_fail_mask;

/* One relaxed load when no test asks for failures. */
static bool os_fails(uint32_t kind) {
  if (HAK_LIKELY(!atomic_load_explicit(&g_os_fail_countdown, memory_order_relaxed))) return false;
  if (!(atomic_load_explicit(&g_os_fail_mask, memory_order_relaxed) & kind)) return false;
  return atomic_fetch_sub_explicit(&g_os_fail_countdown, 1, memory_order_relaxed) == 1;
}

void *hak_os_map(size_t size) {
  void *p = os_fails(HAK_OS_FAIL_MAP)
                ? MAP_FAILED
                : mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  hak_cnt_add(&g_stats.mmap_calls, 1);
  if (p == MAP_FAILED) return NULL;
  hak_cnt_add(&g_stats.mmap_bytes, size);
  return p;
}

void hak_os_unmap(void *p, size_t size) {
  int saved = errno;
  munmap(p, size);
  errno = saved;
  hak_cnt_add(&g_stats.munmap_calls, 1);
  hak_cnt_add(&g_stats.munmap_bytes, size);
}

/* Reserve size+align and trim the ends: at most three syscalls, no retry loop. */
void *hak_os_map_aligned(size_t size, size_t align) {
  if (align <= HAK_PAGE) return hak_os_map(size);
  if (size > SIZE_MAX - align) return NULL;
  char *raw = hak_os_map(size + align);
  if (!raw) return NULL;
  uintptr_t start = ((uintptr_t)raw + align - 1) & ~(uintptr_t)(align - 1);
  size_t head = start - (uintptr_t)raw;
  size_t tail = align - head;
  if (head) hak_os_unmap(raw, head);
  if (tail) hak_os_unmap((char *)start + size, tail);
  return (void *)start;
}

static bool advise_free(void *p, size_t size, int advice) {
  int saved = errno;
  bool ok = !os_fails(HAK_OS_FAIL_ADVISE) && madvise(p, size, advice) == 0;
  errno = saved;
  hak_cnt_add(&g_stats.madvise_calls, 1);
  if (ok) hak_cnt_add(&g_stats.madvise_bytes, size);
  return ok;
}

bool hak_os_decommit(void *p, size_t size) {
  return advise_free(p, size, g_cfg.madv_free ? MADV_FREE : MADV_DONTNEED);
}

#define OS_VEC_MAX 64
#define OS_PIDFD_SELF (-10000) /* PIDFD_SELF_THREAD (Linux 6.14): the caller, no descriptor to keep */
/* 0: not tried yet, 1: works, -1: this kernel (or a seccomp filter) refuses */
static _Atomic int g_os_vec_state;

void hak_os_decommit_many(void *const *p, const size_t *size, size_t n, bool *ok) {
  size_t done = 0;
#ifdef SYS_process_madvise
  if (n > 1 && n <= OS_VEC_MAX && atomic_load_explicit(&g_os_vec_state, memory_order_relaxed) >= 0) {
    struct iovec v[OS_VEC_MAX];
    for (size_t i = 0; i < n; i++) {
      v[i].iov_base = p[i];
      v[i].iov_len = size[i];
    }
    int saved = errno;
    long r = os_fails(HAK_OS_FAIL_ADVISE)
                 ? (errno = ENOMEM, -1L)
                 : syscall(SYS_process_madvise, OS_PIDFD_SELF, v, n, g_cfg.madv_free ? MADV_FREE : MADV_DONTNEED, 0u);
    int err = errno;
    errno = saved;
    hak_cnt_add(&g_stats.madvise_calls, 1);
    if (r >= 0) {
      atomic_store_explicit(&g_os_vec_state, 1, memory_order_relaxed);
      hak_cnt_add(&g_stats.madvise_bytes, (uint64_t)r);
      /* The ranges are advised in order: those wholly inside r are done, the
       * rest go one by one below. */
      for (size_t got = 0; done < n && got + size[done] <= (size_t)r; done++) {
        got += size[done];
        ok[done] = true;
      }
    } else if (err == EINVAL || err == EBADF || err == ENOSYS || err == EPERM) {
      atomic_store_explicit(&g_os_vec_state, -1, memory_order_relaxed);
    } else { /* ENOMEM and the like: what madvise would have answered */
      for (; done < n; done++) ok[done] = false;
    }
  }
#endif
  for (; done < n; done++) ok[done] = hak_os_decommit(p[done], size[done]);
}

bool hak_os_zero(void *p, size_t size) {
  return advise_free(p, size, MADV_DONTNEED);
}

bool hak_os_resident(void *p, size_t size, unsigned char *vec) {
  int saved = errno;
  bool ok = mincore(p, size, vec) == 0; /* only reads: a failure loses a sample, no memory */
  errno = saved;
  return ok;
}

void hak_os_hugepage(void *p, size_t size, bool on) {
#if defined(MADV_HUGEPAGE) && defined(MADV_NOHUGEPAGE)
  int saved = errno;
  madvise(p, size, on ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
  errno = saved;
  hak_cnt_add(&g_stats.madvise_calls, 1);
#else
  (void)p, (void)size, (void)on;
#endif
}

bool hak_os_thp_always(void) {
  int saved = errno;
  char b[64];
  int fd = open("/sys/kernel/mm/transparent_hugepage/enabled", O_RDONLY | O_CLOEXEC);
  ssize_t n = fd >= 0 ? read(fd, b, sizeof b - 1) : -1;
  if (fd >= 0) close(fd);
  errno = saved;
  return n > 8 && !memcmp(b, "[always]", 8); /* the brackets mark the mode in force */
}

unsigned hak_os_map_count(void) {
  int saved = errno;
  int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
  unsigned lines = 0;
  if (fd >= 0) {
    char b[4096];
    ssize_t n;
    while ((n = read(fd, b, sizeof b)) > 0)
      for (const char *q = b, *end = b + n; (q = memchr(q, '\n', (size_t)(end - q))); q++) lines++;
    close(fd);
  }
  errno = saved;
  return lines;
}

void hak_os_protect_none(void *p, size_t size) {
  int saved = errno;
  mprotect(p, size, PROT_NONE);
  errno = saved;
}

void hak_os_protect_rw(void *p, size_t size) {
  int saved = errno;
  mprotect(p, size, PROT_READ | PROT_WRITE);
  errno = saved;
}

bool hak_os_remap_inplace(void *p, size_t old_size, size_t new_size) {
  if (os_fails(HAK_OS_FAIL_REMAP)) return false;
  int saved = errno;
  void *q = mremap(p, old_size, new_size, 0);
  errno = saved;
  hak_cnt_add(&g_stats.mremap_calls, 1);
  return q != MAP_FAILED;
}

bool hak_os_move(void *p, size_t size, void *dst, bool keep_source) {
  int flags = MREMAP_MAYMOVE | MREMAP_FIXED;
  if (keep_source) {
#ifdef MREMAP_DONTUNMAP
    flags |= MREMAP_DONTUNMAP;
#else
    return false;
#endif
  }
  if (os_fails(HAK_OS_FAIL_REMAP)) return false;
  int saved = errno;
  void *q = mremap(p, size, size, flags, dst);
  errno = saved;
  hak_cnt_add(&g_stats.mremap_calls, 1);
  return q != MAP_FAILED;
}

bool hak_os_thread(void *(*fn)(void *), size_t stack, const char *name) {
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize(&attr, stack);
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old); /* the new thread inherits the full mask */
  pthread_t t;
  int rc = pthread_create(&t, &attr, fn, NULL);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  pthread_attr_destroy(&attr);
  if (rc == 0) pthread_setname_np(t, name);
  return rc == 0;
}

uint64_t hak_os_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void hak_os_commit_add(int64_t delta) {
  uint64_t now = atomic_fetch_add_explicit(&g_stats.committed_bytes, (uint64_t)delta,
                                           memory_order_relaxed) +
                 (uint64_t)delta;
  uint64_t peak = atomic_load_explicit(&g_stats.peak_committed_bytes, memory_order_relaxed);
  while (now > peak && !atomic_compare_exchange_weak_explicit(&g_stats.peak_committed_bytes, &peak,
                                                              now, memory_order_relaxed,
                                                              memory_order_relaxed)) {
  }
}

hak_unwind_fn hak_os_load_unwinder(void) {
  void *h = dlopen("libunwind.so.8", RTLD_NOW | RTLD_LOCAL);
  return h ? (hak_unwind_fn)dlsym(h, "unw_backtrace") : NULL;
}
