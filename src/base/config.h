/* Configuration: HAKMEM_* environment variables, read once at start-up
 * without allocating, from one table of options (config.c) that also serves
 * hak_option_set/hak_option_get at run time and the option reference of
 * docs/CONFIG.md (HAKMEM_HELP=markdown prints it). */
#ifndef HAK_CONFIG_H
#define HAK_CONFIG_H
#include "base/common.h"

#pragma GCC visibility push(hidden) /* internal: no GOT indirection */

enum { HAK_THP_OFF = 0, HAK_THP_ON = 1, HAK_THP_AUTO = 2 };
enum { HAK_STATS_OFF = 0, HAK_STATS_TEXT = 1, HAK_STATS_JSON = 2 };
enum { HAK_HELP_OFF = 0, HAK_HELP_TEXT = 1, HAK_HELP_MARKDOWN = 2 };

typedef struct hak_config {
  int stats;              /* HAKMEM_STATS: HAK_STATS_OFF, _TEXT (the report) or _JSON, at exit */
  int stats_signal;       /* HAKMEM_STATS_SIGNAL: a signal that writes the JSON (0: none) */
  int help;               /* HAKMEM_HELP: print the option table at start-up */
  int on_error_warn;      /* HAKMEM_ON_ERROR=warn: report bad frees and continue */
  int learn;              /* HAKMEM_LEARN: ACE adapts the policy */
  int madv_free;          /* HAKMEM_MADV_FREE: MADV_FREE instead of MADV_DONTNEED */
  int thp;                /* HAKMEM_THP: HAK_THP_OFF, HAK_THP_ON (SuperSlabs and big blocks), HAK_THP_AUTO */
  int crash_report;       /* HAKMEM_CRASH_REPORT: signal handler for crash reports */
  int debug;              /* HAKMEM_DEBUG: trace (debug builds only) */
  uint32_t guard_sample;  /* HAKMEM_GUARD_SAMPLE: about one allocation in N on guarded pages (0: off) */
  int junk;               /* HAKMEM_JUNK: new blocks filled with 0xAA, freed ones with 0xDD */
  size_t thp_auto_bytes;  /* HAKMEM_THP_AUTO_BYTES: SuperSlab bytes mapped before auto asks for huge pages */
  size_t big_threshold;   /* HAKMEM_BIG_THRESHOLD: above this, a Big block */
  uint32_t fast_cap;      /* HAKMEM_FAST_CAP: TLS SLL capacity, blocks (tiny) */
  uint32_t fast_cap_bytes; /* HAKMEM_FAST_CAP_BYTES: TLS SLL capacity in bytes (mid/large) */
  uint32_t refill_bytes;  /* HAKMEM_REFILL_BYTES: bytes carved per refill */
  double w_max;           /* HAKMEM_W_MAX: a request may take a class up to w_max times its size */
  size_t empty_budget;    /* HAKMEM_EMPTY_BUDGET: EMPTY slab bytes kept committed */
  size_t spare_superslabs; /* HAKMEM_SPARE_SUPERSLABS: wholly unused SuperSlabs kept mapped */
  size_t bigcache_bytes;  /* HAKMEM_BIGCACHE_BYTES: freed big mappings kept for reuse */
  uint32_t bigcache_ms;   /* HAKMEM_BIGCACHE_MS: how long a cached big mapping may wait */
  uint32_t decay_ms;      /* HAKMEM_DECAY_MS: EMPTY memory idle this long goes back to the OS */
  int background;         /* HAKMEM_BACKGROUND: a thread returns memory when the program is idle */
  const char *mode;       /* HAKMEM_MODE: fast | balanced | low-memory */
  /* heap profiler (diag/prof.c) */
  int prof;               /* HAKMEM_PROF: sample allocations */
  size_t prof_sample;     /* HAKMEM_PROF_SAMPLE: mean bytes between samples */
  size_t prof_interval;   /* HAKMEM_PROF_INTERVAL: a dump per this much live-heap growth (0: none) */
  int prof_signal;        /* HAKMEM_PROF_SIGNAL: a signal that writes a dump (0: none) */
  int prof_leaks;         /* HAKMEM_PROF_LEAKS: the leak report on stderr at exit */
  int prof_unwind;        /* HAKMEM_PROF_UNWIND: HAK_UNWIND_* */
} hak_config_t;

enum { HAK_UNWIND_AUTO = 0, HAK_UNWIND_LIBUNWIND = 1, HAK_UNWIND_LIBGCC = 2, HAK_UNWIND_FP = 3 };

extern hak_config_t g_cfg;
extern const bool g_hak_hardened; /* a HARDENED=1 build (tests adapt to it) */
/* HAKMEM_STATS_FILE as given ("" when unset): where the JSON or the report
 * goes instead of stderr; "%p" in it becomes the pid. Read it with
 * hak_cfg_stats_path, which expands it under the options lock. */
extern char g_cfg_stats_file[512];
/* HAKMEM_PROF_PREFIX: profile file names are PREFIX.PID.SEQ.heap. */
extern char g_cfg_prof_prefix[512];

/* Start-up: the mode preset, then every HAKMEM_* variable of environ; a
 * malformed value or an unknown name prints one line and changes nothing. */
void hak_config_init(void);

/* The options, one table. Ids name the ones whose change at run time needs
 * more than the store (diag/options.c applies them). */
typedef enum {
  HAK_OPT_MODE, HAK_OPT_STATS, HAK_OPT_STATS_FILE, HAK_OPT_STATS_SIGNAL, HAK_OPT_HELP,
  HAK_OPT_ON_ERROR, HAK_OPT_LEARN, HAK_OPT_FAST_CAP, HAK_OPT_FAST_CAP_BYTES, HAK_OPT_REFILL_BYTES,
  HAK_OPT_W_MAX, HAK_OPT_EMPTY_BUDGET, HAK_OPT_SPARE_SUPERSLABS, HAK_OPT_MADV_FREE,
  HAK_OPT_BIG_THRESHOLD, HAK_OPT_BIGCACHE_BYTES, HAK_OPT_BIGCACHE_MS, HAK_OPT_DECAY_MS,
  HAK_OPT_BACKGROUND, HAK_OPT_THP,
  HAK_OPT_THP_AUTO_BYTES, HAK_OPT_CRASH_REPORT, HAK_OPT_DEBUG, HAK_OPT_GUARD_SAMPLE, HAK_OPT_JUNK,
  HAK_OPT_PROF, HAK_OPT_PROF_SAMPLE, HAK_OPT_PROF_INTERVAL, HAK_OPT_PROF_SIGNAL, HAK_OPT_PROF_LEAKS,
  HAK_OPT_PROF_PREFIX, HAK_OPT_PROF_UNWIND, HAK_OPT_COUNT
} hak_opt_id_t;

/* The option of that name: "HAKMEM_EMPTY_BUDGET", or without the prefix,
 * in either case. -1 if there is none. */
int hak_opt_find(const char *name);
const char *hak_opt_name(int id);
bool hak_opt_runtime(int id); /* settable while the program runs */
/* Parses value and stores it (atomically, under the options lock);
 * runtime: refuse the options that are start-up only. Returns 0, ENOENT,
 * EPERM or EINVAL. The caller applies what the change implies. */
int hak_opt_store(int id, const char *value, bool runtime);
/* The same for a number (mallopt): the option takes v as it would "v". */
int hak_opt_store_u64(int id, uint64_t v);
/* The current value as HAKMEM_* would spell it ("16m", "warn", "1.6"),
 * NUL-terminated, cut to fit cap. */
size_t hak_opt_format(int id, char *buf, size_t cap);
/* The expanded HAKMEM_STATS_FILE (%p: the pid) into buf; false if unset. */
bool hak_cfg_stats_path(char *buf, size_t cap);
void hak_cfg_atfork_child(void); /* the options lock of a fork child */
/* The option table on fd: text (HAKMEM_HELP=1) or Markdown rows (=markdown). */
void hak_opt_print_table(int fd, int format);
/* Checks that every option's documented default parses to the built-in
 * value; returns the number of mismatches and names the first in why. */
int hak_opt_check_defaults(char *why, size_t cap);
/* Parsers, exposed for the unit tests: 0 on success, -1 on bad input. */
int hak_parse_size(const char *s, uint64_t *out);
int hak_parse_uint(const char *s, uint64_t *out);
int hak_parse_double(const char *s, double *out);

#pragma GCC visibility pop

#endif
