/* The options: one table, read once at start-up from environ (no
 * allocation: the parsers work in place, warnings are written with write(2)
 * from stack buffers), and again by hak_option_set/hak_option_get and by
 * HAKMEM_HELP, which prints the table for docs/CONFIG.md. */
#include "base/config.h"
#include "hakmem.h"
#include "base/lock.h"
#include "base/report.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

extern char **environ;

#ifdef HAKMEM_HARDENED
const bool g_hak_hardened = true;
#else
const bool g_hak_hardened = false;
#endif

/* The defaults are the best measured configuration ("balanced"). The table
 * below spells each one for the docs; hak_opt_check_defaults (unit_options)
 * checks that the two agree. */
#define HAK_CFG_DEFAULTS                                                                           \
  {                                                                                                \
    .stats = HAK_STATS_OFF, .stats_signal = 0, .help = HAK_HELP_OFF, .on_error_warn = 0,           \
    .learn = 1, .madv_free = 0, .thp = HAK_THP_AUTO, .crash_report = 0, .debug = 0,                 \
    .guard_sample = 0, .junk = 0, .thp_auto_bytes = 128u << 20, .big_threshold = 896u << 10,        \
    .fast_cap = 256, .fast_cap_bytes = 16u << 10, .refill_bytes = 16u << 10, .w_max = 1.6,         \
    .empty_budget = 16u << 20, .spare_superslabs = 2, .bigcache_bytes = 256u << 20,                \
    .bigcache_ms = 1000, .decay_ms = 1000, .background = 1, .mode = "balanced",                    \
    .prof = 0, .prof_sample = 512u << 10, .prof_interval = 0, .prof_signal = 0, .prof_leaks = 0,    \
    .prof_unwind = HAK_UNWIND_AUTO,                                                                \
  }
hak_config_t g_cfg = HAK_CFG_DEFAULTS;
static const hak_config_t k_defaults = HAK_CFG_DEFAULTS;
char g_cfg_stats_file[512];
static char k_no_file[1];
char g_cfg_prof_prefix[512] = "hakmem-prof";
static const char k_prof_prefix[] = "hakmem-prof";
_Static_assert(sizeof g_cfg_prof_prefix == sizeof g_cfg_stats_file, "T_PATH fields have one size");

/* Serialises run-time changes (and the reads of HAKMEM_STATS_FILE). */
static hak_lock_t g_opt_lock = HAK_LOCK_INIT;

/* --- the table ------------------------------------------------------------- */

typedef enum { T_BOOL, T_SIZE, T_UINT, T_DOUBLE, T_CHOICE, T_PATH, T_MODE } opt_type_t;
typedef struct {
  const char *word;
  int value;
} choice_t;

typedef struct {
  const char *name;
  uint8_t type;
  uint8_t runtime; /* may change while the program runs */
  void *field;
  const void *def_field; /* the field in k_defaults */
  uint8_t width;         /* bytes of an integer field: 4 or 8 */
  const char *def;       /* the default, as the docs spell it */
  uint64_t min, max;     /* T_SIZE, T_UINT; T_DOUBLE in thousandths */
  const choice_t *choices; /* T_BOOL, T_CHOICE, T_MODE: the first word of a value is how it prints */
  const char *help;
} opt_t;

#define W(word, v) {word, v}
static const choice_t k_bool[] = {W("0", 0), W("off", 0), W("no", 0),   W("false", 0), W("1", 1),
                                  W("on", 1), W("yes", 1), W("true", 1), {NULL, 0}};
static const choice_t k_stats[] = {W("0", 0),    W("off", 0), W("no", 0),  W("false", 0),
                                   W("1", 1),    W("on", 1),  W("yes", 1), W("true", 1),
                                   W("text", 1), W("json", 2), {NULL, 0}};
static const choice_t k_help[] = {W("0", 0),    W("off", 0), W("no", 0),  W("false", 0),
                                  W("1", 1),    W("on", 1),  W("yes", 1), W("true", 1),
                                  W("text", 1), W("markdown", 2), {NULL, 0}};
static const choice_t k_on_error[] = {W("abort", 0), W("warn", 1), W("continue", 1), {NULL, 0}};
static const choice_t k_thp[] = {W("auto", HAK_THP_AUTO), W("2", HAK_THP_AUTO), W("0", HAK_THP_OFF),
                                 W("off", HAK_THP_OFF),   W("no", HAK_THP_OFF), W("false", HAK_THP_OFF),
                                 W("never", HAK_THP_OFF), W("1", HAK_THP_ON),   W("on", HAK_THP_ON),
                                 W("yes", HAK_THP_ON),    W("true", HAK_THP_ON), W("always", HAK_THP_ON),
                                 {NULL, 0}};
static const choice_t k_signal[] = {W("0", 0),          W("off", 0),        W("none", 0),
                                    W("USR1", SIGUSR1), W("SIGUSR1", SIGUSR1), W("USR2", SIGUSR2),
                                    W("SIGUSR2", SIGUSR2), {NULL, 0}};
static const choice_t k_unwind[] = {W("auto", HAK_UNWIND_AUTO), W("libunwind", HAK_UNWIND_LIBUNWIND),
                                    W("libgcc", HAK_UNWIND_LIBGCC), W("fp", HAK_UNWIND_FP), {NULL, 0}};
enum { MODE_BALANCED, MODE_FAST, MODE_LOW };
static const choice_t k_mode[] = {W("balanced", MODE_BALANCED), W("fast", MODE_FAST),
                                  W("low-memory", MODE_LOW), W("low_memory", MODE_LOW), {NULL, 0}};
#undef W

#define F(f) &g_cfg.f, &k_defaults.f, sizeof(g_cfg.f)
#define MAXSZ ((uint64_t)1 << 46) /* 64 TiB: no product of these overflows */
static const opt_t k_opts[HAK_OPT_COUNT] = {
    [HAK_OPT_MODE] = {"HAKMEM_MODE", T_MODE, 0, &g_cfg.mode, &k_defaults.mode, 0, "balanced", 0, 0, k_mode,
                      "preset: fast (bigger thread caches, keeps more EMPTY memory, THP on), balanced, "
                      "low-memory (small caches, returns memory early, no huge pages); the other "
                      "variables override it"},
    [HAK_OPT_STATS] = {"HAKMEM_STATS", T_CHOICE, 1, F(stats), "0", 0, 0, k_stats,
                       "at exit: 1 (or text) prints the statistics report, json writes them as one JSON "
                       "object; on stderr, or to HAKMEM_STATS_FILE"},
    [HAK_OPT_STATS_FILE] = {"HAKMEM_STATS_FILE", T_PATH, 1, g_cfg_stats_file, k_no_file, 0, "", 0, 0, NULL,
                            "where the exit statistics and HAKMEM_STATS_SIGNAL's JSON go instead of stderr; "
                            "%p becomes the pid (one file per process of a program that forks)"},
    [HAK_OPT_STATS_SIGNAL] = {"HAKMEM_STATS_SIGNAL", T_CHOICE, 0, F(stats_signal), "0", 0, 0, k_signal,
                              "USR1 or USR2: that signal makes a hakmem thread write the statistics JSON "
                              "(the handler only wakes it); 0: no handler"},
    [HAK_OPT_HELP] = {"HAKMEM_HELP", T_CHOICE, 0, F(help), "0", 0, 0, k_help,
                      "1 prints this table with the values in force at start-up on stderr; markdown "
                      "prints it as the rows of docs/CONFIG.md's option reference"},
    [HAK_OPT_ON_ERROR] = {"HAKMEM_ON_ERROR", T_CHOICE, 1, F(on_error_warn), "abort", 0, 0, k_on_error,
                          "what an invalid or double free does after its one-line report: abort, or "
                          "warn (continue: the block is left untouched)"},
    [HAK_OPT_LEARN] = {"HAKMEM_LEARN", T_BOOL, 0, F(learn), "1", 0, 0, k_bool,
                       "0 turns ACE off: thread-cache capacities and the EMPTY budget keep their defaults"},
    [HAK_OPT_FAST_CAP] = {"HAKMEM_FAST_CAP", T_UINT, 0, F(fast_cap), "256", 1, 65536, NULL,
                          "the most blocks a class's thread cache holds by default (ACE may raise it to "
                          "8x)"},
    [HAK_OPT_FAST_CAP_BYTES] = {"HAKMEM_FAST_CAP_BYTES", T_SIZE, 0, F(fast_cap_bytes), "16k", 0, 1u << 30,
                                NULL, "a class's thread-cache capacity in bytes (at most FAST_CAP blocks)"},
    [HAK_OPT_REFILL_BYTES] = {"HAKMEM_REFILL_BYTES", T_SIZE, 0, F(refill_bytes), "16k", 0, 1u << 30, NULL,
                              "bytes moved from a slab into a thread cache per refill (at most half "
                              "its capacity)"},
    [HAK_OPT_W_MAX] = {"HAKMEM_W_MAX", T_DOUBLE, 0, F(w_max), "1.6", 1000, 100000, NULL,
                       "LargePool rounding: a request may take a cached block of a larger class up to "
                       "W_MAX times its class size"},
    [HAK_OPT_EMPTY_BUDGET] = {"HAKMEM_EMPTY_BUDGET", T_SIZE, 1, F(empty_budget), "16m", 0, MAXSZ, NULL,
                              "EMPTY slab bytes kept committed for reuse; beyond it EMPTY slabs are "
                              "decommitted (ACE may raise it while memory churns); mallopt's "
                              "M_TRIM_THRESHOLD"},
    [HAK_OPT_SPARE_SUPERSLABS] = {"HAKMEM_SPARE_SUPERSLABS", T_UINT, 1, F(spare_superslabs), "2", 0, 65536,
                                  NULL, "wholly unused SuperSlabs kept ready; decay gives the rest back to their arenas"},
    [HAK_OPT_MADV_FREE] = {"HAKMEM_MADV_FREE", T_BOOL, 0, F(madv_free), "0", 0, 0, k_bool,
                           "decommit with MADV_FREE instead of MADV_DONTNEED (cheaper; the kernel "
                           "reclaims lazily)"},
    [HAK_OPT_BIG_THRESHOLD] =
        {"HAKMEM_BIG_THRESHOLD", T_SIZE, 1, F(big_threshold), "896k", 0, MAXSZ, NULL,
         "requests above it are Big blocks (runs of 2 MiB chunks) instead of slab "
         "blocks; it acts as 64 KiB at least and 1984 KiB at most (the LargePool's "
         "limit); mallopt's M_MMAP_THRESHOLD"},
    [HAK_OPT_BIGCACHE_BYTES] = {"HAKMEM_BIGCACHE_BYTES", T_SIZE, 1, F(bigcache_bytes), "256m", 0,
                                MAXSZ, NULL,
                                "bytes of freed Big runs kept for reuse; mallopt's M_TOP_PAD"},
    [HAK_OPT_BIGCACHE_MS] =
        {"HAKMEM_BIGCACHE_MS", T_UINT, 1, F(bigcache_ms), "1000", 0, 0xffffffffu, NULL,
         "milliseconds a freed Big run may wait in BigCache before it goes back "
         "to the OS"},
    [HAK_OPT_DECAY_MS] =
        {"HAKMEM_DECAY_MS", T_UINT, 1, F(decay_ms), "1000", 0, 0xffffffffu, NULL,
         "milliseconds EMPTY slab memory may stay idle before it goes back to the OS "
         "(time-based return)"},
    [HAK_OPT_BACKGROUND] = {"HAKMEM_BACKGROUND", T_BOOL, 0, F(background), "1", 0, 0, k_bool,
                            "1: a hakmem thread returns idle memory while the program makes no "
                            "allocator call; 0: only allocator calls return it"},
    [HAK_OPT_THP] = {"HAKMEM_THP", T_CHOICE, 0, F(thp), "auto", 0, 0, k_thp,
                     "transparent huge pages: auto (the default: SuperSlabs, once the heap holds "
                     "THP_AUTO_BYTES and fills the pages it has), 0 (no huge-page call at all), 1 "
                     "(every SuperSlab and Big block)"},
    [HAK_OPT_THP_AUTO_BYTES] = {"HAKMEM_THP_AUTO_BYTES", T_SIZE, 1, F(thp_auto_bytes), "128m", 0, MAXSZ, NULL,
                                "with THP=auto, the SuperSlab bytes mapped before new SuperSlabs may ask for "
                                "huge pages"},
    [HAK_OPT_CRASH_REPORT] = {"HAKMEM_CRASH_REPORT", T_BOOL, 0, F(crash_report), "0", 0, 0, k_bool,
                              "1: a SIGSEGV or SIGBUS prints one line saying where in hakmem's heap the "
                              "address lies, then the default action"},
    [HAK_OPT_DEBUG] = {"HAKMEM_DEBUG", T_BOOL, 0, F(debug), "0", 0, 0, k_bool,
                       "trace output; only in make DEBUG=1 builds"},
    [HAK_OPT_GUARD_SAMPLE] = {"HAKMEM_GUARD_SAMPLE", T_UINT, 0, F(guard_sample), "0", 0, 1u << 30, NULL,
                              "N: about one allocation in N (of up to 64 KiB) gets pages of its own, "
                              "its end against a PROT_NONE page, and stays PROT_NONE for a while once "
                              "freed: an overflow, a use after free or a double free of it is reported "
                              "with both backtraces; 0: off"},
    [HAK_OPT_JUNK] = {"HAKMEM_JUNK", T_BOOL, 0, F(junk), "0", 0, 0, k_bool,
                      "1: new blocks are filled with 0xAA (calloc's still zero) and freed ones with "
                      "0xDD, so that uninitialised reads and uses after free show"},
    [HAK_OPT_PROF] = {"HAKMEM_PROF", T_BOOL, 0, F(prof), "0", 0, 0, k_bool,
                      "1: the heap profiler samples allocations (by bytes, with their stacks) and writes "
                      "a pprof heap profile at exit (docs/CONFIG.md, Heap profiling)"},
    [HAK_OPT_PROF_SAMPLE] = {"HAKMEM_PROF_SAMPLE", T_SIZE, 0, F(prof_sample), "512k", 1, 1u << 30, NULL,
                             "mean bytes allocated between two samples (a random, exponential distance)"},
    [HAK_OPT_PROF_INTERVAL] = {"HAKMEM_PROF_INTERVAL", T_SIZE, 1, F(prof_interval), "0", 0, MAXSZ, NULL,
                               "a profile is written each time the estimated live heap has grown by this "
                               "many bytes since the last such dump; 0: never"},
    [HAK_OPT_PROF_SIGNAL] = {"HAKMEM_PROF_SIGNAL", T_CHOICE, 0, F(prof_signal), "0", 0, 0, k_signal,
                             "USR1 or USR2: that signal makes a hakmem thread write a profile (the "
                             "handler only wakes it); 0: no handler"},
    [HAK_OPT_PROF_LEAKS] = {"HAKMEM_PROF_LEAKS", T_BOOL, 1, F(prof_leaks), "0", 0, 0, k_bool,
                            "1: at exit, the live sampled stacks, biggest first, with symbol names, on "
                            "stderr (the leak report)"},
    [HAK_OPT_PROF_PREFIX] = {"HAKMEM_PROF_PREFIX", T_PATH, 1, g_cfg_prof_prefix, k_prof_prefix, 0,
                             "hakmem-prof", 0, 0, NULL,
                             "profiles are written to PREFIX.PID.SEQ.heap (SEQ counts the process's "
                             "dumps from 0001)"},
    [HAK_OPT_PROF_UNWIND] = {"HAKMEM_PROF_UNWIND", T_CHOICE, 0, F(prof_unwind), "auto", 0, 0, k_unwind,
                             "how stacks are taken: auto (libunwind if libunwind.so.8 loads, else "
                             "libgcc), libunwind, libgcc (glibc's backtrace), fp (frame pointers: "
                             "fastest, wrong in code built without them)"},
};
#undef F

/* Variables of the test suite and the benchmark harness that share the
 * prefix: not hakmem's, and not worth a warning. */
static bool foreign_name(const char *name, size_t len) {
  if (len >= 12 && !strncmp(name, "HAKMEM_TEST_", 12)) return true;
  return len == 10 && !strncmp(name, "HAKMEM_LIB", 10);
}

/* --- parsers --------------------------------------------------------------- */

int hak_parse_uint(const char *s, uint64_t *out) {
  uint64_t v = 0;
  if (!s || *s < '0' || *s > '9') return -1;
  for (; *s >= '0' && *s <= '9'; s++) {
    uint64_t d = (uint64_t)(*s - '0');
    if (v > (UINT64_MAX - d) / 10) return -1;
    v = v * 10 + d;
  }
  if (*s) return -1;
  *out = v;
  return 0;
}

/* "123", "64k", "2m", "1g", and a trailing b: "64kb". Nothing else. */
int hak_parse_size(const char *s, uint64_t *out) {
  uint64_t v = 0;
  if (!s || *s < '0' || *s > '9') return -1;
  for (; *s >= '0' && *s <= '9'; s++) {
    uint64_t d = (uint64_t)(*s - '0');
    if (v > (UINT64_MAX - d) / 10) return -1;
    v = v * 10 + d;
  }
  unsigned shift = 0;
  switch (*s) {
  case 'k': case 'K': shift = 10; s++; break;
  case 'm': case 'M': shift = 20; s++; break;
  case 'g': case 'G': shift = 30; s++; break;
  default: break;
  }
  if (*s == 'b' || *s == 'B') s++;
  if (*s || (shift && v > (UINT64_MAX >> shift))) return -1;
  *out = v << shift;
  return 0;
}

/* "1", "1.6", "1.25": digits with at most one point. The value is the
 * digits as an integer divided by a power of ten, which rounds once, so
 * "1.6" is exactly the literal 1.6. */
int hak_parse_double(const char *s, double *out) {
  uint64_t m = 0, scale = 1;
  bool point = false, digit = false;
  if (!s) return -1;
  for (; *s; s++) {
    if (*s >= '0' && *s <= '9') {
      if (m > ((uint64_t)1 << 52) / 10 || scale > (uint64_t)1e15) return -1;
      m = m * 10 + (uint64_t)(*s - '0');
      if (point) scale *= 10;
      digit = true;
    } else if (*s == '.' && !point) {
      point = true;
    } else {
      return -1;
    }
  }
  if (!digit) return -1;
  *out = (double)m / (double)scale;
  return 0;
}

static int parse_choice(const choice_t *c, const char *s, int *out) {
  for (; c->word; c++)
    if (!strcasecmp(s, c->word)) {
      *out = c->value;
      return 0;
    }
  return -1;
}

static const char *choice_word(const choice_t *c, int v) {
  for (; c->word; c++)
    if (c->value == v) return c->word;
  return "?";
}

/* --- names ----------------------------------------------------------------- */

/* name[0..len) against an option name, with or without HAKMEM_, any case. */
static bool name_is(const opt_t *o, const char *name, size_t len) {
  const char *n = o->name;
  if (len < 7 || strncasecmp(name, "HAKMEM_", 7)) n += 7;
  return strlen(n) == len && !strncasecmp(n, name, len);
}

static int find_n(const char *name, size_t len) {
  for (int i = 0; i < HAK_OPT_COUNT; i++)
    if (name_is(&k_opts[i], name, len)) return i;
  return -1;
}

int hak_opt_find(const char *name) { return name ? find_n(name, strlen(name)) : -1; }
const char *hak_opt_name(int id) { return id >= 0 && id < HAK_OPT_COUNT ? k_opts[id].name : NULL; }
bool hak_opt_runtime(int id) { return id >= 0 && id < HAK_OPT_COUNT && k_opts[id].runtime; }

/* Edit distance of two short upper-case strings (at most 63 bytes). */
static unsigned distance(const char *a, size_t la, const char *b, size_t lb) {
  unsigned row[64];
  if (la > 63 || lb > 63) return 99;
  for (size_t j = 0; j <= lb; j++) row[j] = (unsigned)j;
  for (size_t i = 1; i <= la; i++) {
    unsigned diag = row[0];
    row[0] = (unsigned)i;
    for (size_t j = 1; j <= lb; j++) {
      unsigned up = row[j];
      unsigned sub = diag + ((a[i - 1] & ~0x20) != (b[j - 1] & ~0x20));
      unsigned best = up + 1 < row[j - 1] + 1 ? up + 1 : row[j - 1] + 1;
      row[j] = sub < best ? sub : best;
      diag = up;
    }
  }
  return row[lb];
}

/* The option an unknown name was probably meant to be, or NULL. */
static const char *suggest(const char *name, size_t len) {
  const char *best = NULL;
  unsigned best_d = 3; /* at most two edits away */
  for (int i = 0; i < HAK_OPT_COUNT; i++) {
    const char *n = k_opts[i].name;
    /* the same letters without the underscores: HAKMEM_FASTCAP */
    const char *p = name, *q = n, *pe = name + len;
    for (;;) {
      while (p < pe && *p == '_') p++;
      while (*q == '_') q++;
      if (p == pe || !*q || (*p & ~0x20) != (*q & ~0x20)) break;
      p++, q++;
    }
    if (p == pe && !*q) return n;
    unsigned d = distance(name, len, n, strlen(n));
    if (d < best_d) {
      best_d = d;
      best = n;
    }
  }
  return best;
}

/* --- values ---------------------------------------------------------------- */

static size_t put(char *buf, size_t cap, size_t n, const char *s) {
  for (; *s; s++, n++)
    if (n + 1 < cap) buf[n] = *s;
  if (cap) buf[n < cap ? n : cap - 1] = 0;
  return n;
}

static size_t format_size(uint64_t v, char *buf, size_t cap) {
  static const char *const suffix[] = {"g", "m", "k"};
  for (int i = 0; i < 3; i++) {
    unsigned shift = (unsigned)(30 - 10 * i);
    if (v && !(v & (((uint64_t)1 << shift) - 1))) return hak_fmt(buf, cap, "%u%s", v >> shift, suffix[i]);
  }
  return hak_fmt(buf, cap, "%u", v);
}

static size_t format_double(double d, char *buf, size_t cap) {
  uint64_t t = (uint64_t)(d * 1000 + 0.5); /* thousandths */
  size_t n = hak_fmt(buf, cap, "%u", t / 1000);
  unsigned frac = (unsigned)(t % 1000);
  if (frac) {
    char f[8];
    hak_fmt(f, sizeof f, ".%u", (uint64_t)(1000 + frac));
    /* ".1600" -> ".6", ".1250" -> ".25" */
    size_t l = strlen(f);
    while (l > 2 && f[l - 1] == '0') f[--l] = 0;
    f[1] = '.';
    n = put(buf, cap, n, f + 1);
  }
  return n;
}

static uint64_t load_int(const void *f, unsigned width) {
  if (width == 4) return __atomic_load_n((const uint32_t *)f, __ATOMIC_RELAXED);
  return __atomic_load_n((const uint64_t *)f, __ATOMIC_RELAXED);
}

static void store_int(void *f, unsigned width, uint64_t v) {
  if (width == 4) __atomic_store_n((uint32_t *)f, (uint32_t)v, __ATOMIC_RELAXED);
  else __atomic_store_n((uint64_t *)f, v, __ATOMIC_RELAXED);
}

static size_t format_field(const opt_t *o, const void *f, char *buf, size_t cap) {
  switch (o->type) {
  case T_SIZE: return format_size(load_int(f, o->width), buf, cap);
  case T_UINT: return hak_fmt(buf, cap, "%u", load_int(f, o->width));
  case T_DOUBLE: {
    double d;
    __atomic_load((const double *)f, &d, __ATOMIC_RELAXED);
    return format_double(d, buf, cap);
  }
  case T_BOOL:
  case T_CHOICE: return put(buf, cap, 0, choice_word(o->choices, (int)load_int(f, o->width)));
  case T_MODE: return put(buf, cap, 0, *(const char *const *)f);
  case T_PATH: return put(buf, cap, 0, (const char *)f);
  }
  return 0;
}

size_t hak_opt_format(int id, char *buf, size_t cap) {
  if (id < 0 || id >= HAK_OPT_COUNT) return 0;
  const opt_t *o = &k_opts[id];
  if (o->type != T_PATH) return format_field(o, o->field, buf, cap);
  hak_lock(&g_opt_lock);
  size_t n = format_field(o, o->field, buf, cap);
  hak_unlock(&g_opt_lock);
  return n;
}

/* What an option accepts, in words, for warnings and the table. */
static size_t describe(const opt_t *o, char *buf, size_t cap) {
  char lo[32], hi[32];
  size_t n = 0;
  switch (o->type) {
  case T_SIZE:
    format_size(o->min, lo, sizeof lo);
    format_size(o->max, hi, sizeof hi);
    return hak_fmt(buf, cap, "a byte count from %s to %s, with an optional k, m or g (65536, 64k, 16m, 1g)",
                   o->min ? lo : "0", hi);
  case T_UINT: return hak_fmt(buf, cap, "a whole number from %u to %u", o->min, o->max);
  case T_DOUBLE:
    format_double((double)o->min / 1000, lo, sizeof lo);
    format_double((double)o->max / 1000, hi, sizeof hi);
    return hak_fmt(buf, cap, "a decimal number from %s to %s (1.25)", lo, hi);
  case T_PATH: return hak_fmt(buf, cap, "a file name of at most %u bytes", (uint64_t)(sizeof g_cfg_stats_file - 1));
  default:
    for (const choice_t *c = o->choices; c->word; c++) {
      if (c != o->choices) n = put(buf, cap, n, c[1].word ? ", " : " or ");
      n = put(buf, cap, n, c->word);
    }
    return n;
  }
}

static void apply_mode(int m) {
  if (m == MODE_FAST) {
    g_cfg.mode = "fast";
    g_cfg.fast_cap = 1024;
    g_cfg.fast_cap_bytes = 1u << 20;
    g_cfg.refill_bytes = 32u << 10;
    g_cfg.empty_budget = 64u << 20;
    g_cfg.spare_superslabs = 8;
    g_cfg.bigcache_bytes = 1u << 30;
    g_cfg.thp = HAK_THP_ON;
  } else if (m == MODE_LOW) {
    g_cfg.mode = "low-memory";
    g_cfg.fast_cap = 64;
    g_cfg.fast_cap_bytes = 8u << 10;
    g_cfg.refill_bytes = 4u << 10;
    g_cfg.w_max = 1.25;
    g_cfg.empty_budget = 2u << 20;
    g_cfg.spare_superslabs = 0;
    g_cfg.bigcache_bytes = 32u << 20;
    g_cfg.bigcache_ms = 200;
    g_cfg.thp = HAK_THP_OFF;
  } else {
    g_cfg.mode = "balanced";
  }
}

/* Parses s for o: 0 and the value in *v (or *d), or -1. */
static int parse_for(const opt_t *o, const char *s, uint64_t *v, double *d) {
  int c;
  switch (o->type) {
  case T_SIZE:
    if (hak_parse_size(s, v)) return -1;
    return *v >= o->min && *v <= o->max ? 0 : -1;
  case T_UINT:
    if (hak_parse_uint(s, v)) return -1;
    return *v >= o->min && *v <= o->max ? 0 : -1;
  case T_DOUBLE:
    if (hak_parse_double(s, d)) return -1;
    return *d * 1000 >= (double)o->min && *d * 1000 <= (double)o->max ? 0 : -1;
  case T_PATH:
    if (strlen(s) >= sizeof g_cfg_stats_file) return -1;
    return 0;
  default:
    if (parse_choice(o->choices, s, &c)) return -1;
    *v = (uint64_t)(int64_t)c;
    return 0;
  }
}

static int store_locked(const opt_t *o, const char *s) {
  uint64_t v = 0;
  double d = 0;
  if (parse_for(o, s, &v, &d)) return EINVAL;
  switch (o->type) {
  case T_DOUBLE: __atomic_store((double *)o->field, &d, __ATOMIC_RELAXED); break;
  case T_MODE: apply_mode((int)v); break;
  case T_PATH: /* its readers take the lock too */
    memcpy(o->field, s, strlen(s) + 1);
    break;
  default: store_int(o->field, o->width, v); break;
  }
  return 0;
}

int hak_opt_store(int id, const char *value, bool runtime) {
  if (id < 0 || id >= HAK_OPT_COUNT) return ENOENT;
  const opt_t *o = &k_opts[id];
  if (runtime && !o->runtime) return EPERM;
  if (!value) return EINVAL;
  hak_lock(&g_opt_lock);
  int r = store_locked(o, value);
  hak_unlock(&g_opt_lock);
  return r;
}

int hak_opt_store_u64(int id, uint64_t v) {
  if (id < 0 || id >= HAK_OPT_COUNT) return ENOENT;
  const opt_t *o = &k_opts[id];
  if (!o->runtime) return EPERM;
  if ((o->type != T_SIZE && o->type != T_UINT) || v < o->min || v > o->max) return EINVAL;
  hak_lock(&g_opt_lock);
  store_int(o->field, o->width, v);
  hak_unlock(&g_opt_lock);
  return 0;
}

void hak_cfg_atfork_child(void) { hak_lock_reset(&g_opt_lock); }

bool hak_cfg_stats_path(char *buf, size_t cap) {
  char pid[24];
  hak_fmt(pid, sizeof pid, "%u", (uint64_t)getpid());
  hak_lock(&g_opt_lock);
  size_t n = 0;
  for (const char *s = g_cfg_stats_file; *s; s++) {
    if (s[0] == '%' && s[1] == 'p') {
      n = put(buf, cap, n, pid);
      s++;
    } else if (s[0] == '%' && s[1] == '%') {
      n = put(buf, cap, n, "%");
      s++;
    } else {
      char one[2] = {*s, 0};
      n = put(buf, cap, n, one);
    }
  }
  hak_unlock(&g_opt_lock);
  if (cap) buf[n < cap ? n : cap - 1] = 0;
  return n > 0 && n < cap;
}

/* --- start-up -------------------------------------------------------------- */

/* One line: the variable, its value, what it accepts, what stays. */
static void warn_bad(const opt_t *o, const char *value) {
  char acc[400], cur[64], line[700];
  describe(o, acc, sizeof acc);
  format_field(o, o->field, cur, sizeof cur);
  char v[80];
  size_t n = put(v, sizeof v, 0, value);
  if (n >= sizeof v) put(v, sizeof v, sizeof v - 4, "...");
  size_t len = hak_fmt(line, sizeof line, "hakmem: %s=%s: expected %s; keeping the default, %s\n", o->name,
                       v, acc, *cur ? cur : "(unset)");
  hak_say(line, len < sizeof line ? len : sizeof line - 1);
}

static void warn_unknown(const char *entry, size_t name_len) {
  char name[72], v[80], line[400];
  size_t n = name_len < sizeof name - 1 ? name_len : sizeof name - 1;
  memcpy(name, entry, n);
  name[n] = 0;
  const char *value = entry + name_len + 1;
  size_t vl = put(v, sizeof v, 0, value);
  if (vl >= sizeof v) put(v, sizeof v, sizeof v - 4, "...");
  const char *s = suggest(entry, name_len);
  size_t len;
  if (s)
    len = hak_fmt(line, sizeof line, "hakmem: %s=%s: no such variable (did you mean %s?); ignored, the "
                  "defaults stay (HAKMEM_HELP=1 lists the variables)\n", name, v, s);
  else
    len = hak_fmt(line, sizeof line, "hakmem: %s=%s: no such variable; ignored, the defaults stay "
                  "(HAKMEM_HELP=1 lists the variables)\n", name, v);
  hak_say(line, len < sizeof line ? len : sizeof line - 1);
}

void hak_config_init(void) {
  char **env = environ;
  if (!env) return;
  /* The preset first: the other variables override it. */
  for (char **e = env; *e; e++) {
    if (strncmp(*e, "HAKMEM_MODE=", 12) || !(*e)[12]) continue;
    if (hak_opt_store(HAK_OPT_MODE, *e + 12, false)) warn_bad(&k_opts[HAK_OPT_MODE], *e + 12);
  }
  for (char **e = env; *e; e++) {
    const char *s = *e;
    if (strncmp(s, "HAKMEM_", 7)) continue;
    const char *eq = strchr(s, '=');
    if (!eq) continue;
    size_t len = (size_t)(eq - s);
    if (foreign_name(s, len)) continue;
    int id = find_n(s, len);
    if (id < 0 || strncmp(s, k_opts[id].name, len)) { /* the exact name only */
      warn_unknown(s, len);
      continue;
    }
    if (id == HAK_OPT_MODE || !eq[1]) continue; /* empty: the default */
    if (hak_opt_store(id, eq + 1, false)) warn_bad(&k_opts[id], eq + 1);
  }
  if (g_cfg.help) hak_opt_print_table(2, g_cfg.help);
}

/* --- the table, printed ---------------------------------------------------- */

static void say_fd(int fd, const char *s, size_t n) {
  while (n) {
    ssize_t w = write(fd, s, n);
    if (w <= 0) return;
    s += w;
    n -= (size_t)w;
  }
}

void hak_opt_print_table(int fd, int format) {
  char line[1400], acc[400], cur[64];
  size_t n;
  if (format == HAK_HELP_MARKDOWN) {
    n = hak_fmt(line, sizeof line, "| variable | default | accepts | at run time | meaning |\n|---|---|---|---|---|\n");
    say_fd(fd, line, n);
  } else {
    n = hak_fmt(line, sizeof line, "hakmem %s options (value now, default; * = settable at run time with "
                "hak_option_set):\n", HAK_VERSION);
    say_fd(fd, line, n);
  }
  for (int i = 0; i < HAK_OPT_COUNT; i++) {
    const opt_t *o = &k_opts[i];
    describe(o, acc, sizeof acc);
    if (format == HAK_HELP_MARKDOWN) {
      n = hak_fmt(line, sizeof line, "| `%s` | %s%s%s | %s | %s | %s |\n", o->name, *o->def ? "`" : "",
                  *o->def ? o->def : "(unset)", *o->def ? "`" : "", acc, o->runtime ? "yes" : "no", o->help);
    } else {
      format_field(o, o->field, cur, sizeof cur);
      n = hak_fmt(line, sizeof line, "  %s%s=%s (default %s)\n      %s.\n      Accepts %s.\n", o->runtime ? "*" : "",
                  o->name, cur, *o->def ? o->def : "unset", o->help, acc);
    }
    say_fd(fd, line, n < sizeof line ? n : sizeof line - 1);
  }
}

int hak_opt_check_defaults(char *why, size_t cap) {
  int bad = 0;
  if (cap) why[0] = 0;
  for (int i = 0; i < HAK_OPT_COUNT; i++) {
    const opt_t *o = &k_opts[i];
    char a[64], b[64];
    /* the default spelled as the table spells it, and the built-in value */
    uint64_t v = 0;
    double d = 0;
    bool ok;
    if (o->type == T_MODE) ok = !strcmp(o->def, *(const char *const *)o->def_field);
    else if (o->type == T_PATH) ok = !strcmp(o->def, (const char *)o->def_field);
    else if (parse_for(o, o->def, &v, &d)) ok = false;
    else if (o->type == T_DOUBLE) ok = d == *(const double *)o->def_field;
    else ok = v == load_int(o->def_field, o->width);
    format_field(o, o->def_field, a, sizeof a);
    hak_fmt(b, sizeof b, "%s", o->def);
    if (!ok) {
      if (!bad && cap) hak_fmt(why, cap, "%s: the table says %s, the built-in value is %s", o->name, b, a);
      bad++;
    }
  }
  return bad;
}
