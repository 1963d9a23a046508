/* hk_proc.h — what the kernel says about this process, read without
 * allocating: /proc/self/statm, /proc/self/status and /proc/self/maps with
 * open/read into a stack buffer, so that a test can watch its RSS while it
 * makes no allocator call at all (no stdio, no malloc). Include after
 * hk_test.h (it uses its modes for hk_stat_named).
 *
 *   hk_rss_bytes()            resident set size, from statm (0 if unreadable)
 *   hk_status_kib("VmHWM")    a "Name:   123 kB" field of /proc/self/status
 *   hk_maps_count()           lines of /proc/self/maps (mappings, VMAs)
 *   hk_stat_named(name, &v)   hak_stat(name, &v) in every mode (dlsym under
 *                             LD_PRELOAD); -1 when it is missing
 */
#ifndef HK_PROC_H
#define HK_PROC_H

#include "hk_test.h"

/* Reads up to cap-1 bytes of a small /proc file into buf, NUL-terminated.
 * Returns the length, or -1. */
static HK_UNUSED long hk_proc_read(const char *path, char *buf, size_t cap) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  size_t len = 0;
  while (len + 1 < cap) {
    ssize_t n = read(fd, buf + len, cap - 1 - len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    len += (size_t)n;
  }
  close(fd);
  buf[len] = 0;
  return (long)len;
}

static HK_UNUSED uint64_t hk_parse_u64(const char *s, const char **end) {
  uint64_t v = 0;
  while (*s == ' ' || *s == '\t') s++;
  while (*s >= '0' && *s <= '9') v = v * 10 + (uint64_t)(*s++ - '0');
  if (end) *end = s;
  return v;
}

static HK_UNUSED uint64_t hk_rss_bytes(void) {
  char buf[256];
  if (hk_proc_read("/proc/self/statm", buf, sizeof buf) <= 0) return 0;
  const char *s = buf;
  hk_parse_u64(s, &s); /* size */
  return hk_parse_u64(s, NULL) * (uint64_t)sysconf(_SC_PAGESIZE);
}

/* A field of /proc/self/status in KiB ("VmRSS", "VmHWM", "VmSize"), 0 if absent. */
static HK_UNUSED uint64_t hk_status_kib(const char *field) {
  char buf[8192];
  if (hk_proc_read("/proc/self/status", buf, sizeof buf) <= 0) return 0;
  size_t fl = strlen(field);
  for (const char *l = buf; *l;) {
    if (!strncmp(l, field, fl) && l[fl] == ':') return hk_parse_u64(l + fl + 1, NULL);
    const char *nl = strchr(l, '\n');
    if (!nl) break;
    l = nl + 1;
  }
  return 0;
}

/* Lines of /proc/self/maps, read in pieces (it can be megabytes long). */
static HK_UNUSED long hk_maps_count(void) {
  int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  char buf[16384];
  long lines = 0;
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    for (ssize_t i = 0; i < n; i++) lines += buf[i] == '\n';
  }
  close(fd);
  return lines;
}

typedef int (*hk_stat_fn)(const char *, uint64_t *);
static HK_UNUSED int hk_stat_named(const char *name, uint64_t *v) {
#if defined(TEST_AGAINST_GLIBC)
  (void)name;
  *v = 0;
  return -1;
#elif defined(HK_MODE_PRELOAD)
  static hk_stat_fn fn;
  if (!fn) fn = (hk_stat_fn)dlsym(RTLD_DEFAULT, "hak_stat");
  if (!fn) return -1;
  return fn(name, v);
#else
  return hak_stat(name, v);
#endif
}

/* hk_stat_named, or 0 with a failed CHECK when the name is missing */
#define HK_STAT(name)                                                                              \
  __extension__({                                                                                  \
    uint64_t v_ = 0;                                                                               \
    int rc_ = hk_stat_named(name, &v_);                                                            \
    CHECK(rc_ == 0, "hak_stat(\"%s\") failed", name);                                              \
    v_;                                                                                            \
  })

#define HK_MIB(x) ((double)(x) / (1024.0 * 1024.0))

#endif
