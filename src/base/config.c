/* Reads HAKMEM_* once. getenv does not allocate; neither does this parser. */
#include "base/config.h"

#include <stdlib.h>
#include <string.h>

/* The defaults are the best measured configuration ("balanced"). */
#ifdef HAKMEM_HARDENED
const bool g_hak_hardened = true;
#else
const bool g_hak_hardened = false;
#endif

hak_config_t g_cfg = {
    .stats = 0,
    .on_error_warn = 0,
    .learn = 1,
    .madv_free = 0,
    .thp = HAK_THP_AUTO,
    .crash_report = 0,
    .debug = 0,
    .thp_auto_bytes = 32u << 20,
    .big_threshold = 2u << 20,
    .fast_cap = 256,
    .fast_cap_bytes = 16u << 10,
    .refill_bytes = 16u << 10,
    .w_max = 1.6,
    .empty_budget = 16u << 20,
    .spare_superslabs = 2,
    .bigcache_bytes = 256u << 20,
    .bigcache_ms = 1000,
    .mode = "balanced",
};

/* Parses "123", "64k", "2m", "1g"; returns def on anything else. */
static size_t cfg_size(const char *name, size_t def) {
  const char *s = getenv(name);
  if (!s || !*s) return def;
  size_t v = 0;
  const char *c = s;
  if (*c < '0' || *c > '9') return def;
  while (*c >= '0' && *c <= '9') v = v * 10 + (size_t)(*c++ - '0');
  switch (*c) {
  case 'k': case 'K': v <<= 10; c++; break;
  case 'm': case 'M': v <<= 20; c++; break;
  case 'g': case 'G': v <<= 30; c++; break;
  default: break;
  }
  if (*c == 'b' || *c == 'B') c++;
  return *c ? def : v;
}

/* 0 for off/no/false/0, 1 for on/yes/true/1, -1 for anything else. */
static int parse_bool(const char *s) {
  static const char *const off[] = {"0", "off", "no", "false"}, *const on[] = {"1", "on", "yes", "true"};
  for (unsigned i = 0; i < 4; i++) {
    if (!strcasecmp(s, off[i])) return 0;
    if (!strcasecmp(s, on[i])) return 1;
  }
  return -1;
}

/* Any value that does not say off turns a boolean on. */
static int cfg_bool(const char *name, int def) {
  const char *s = getenv(name);
  if (!s || !*s) return def;
  return parse_bool(s) != 0;
}

/* off | on | auto, with the boolean spellings and the kernel's words
 * (never, always); anything else keeps the default. */
static int cfg_thp(const char *name, int def) {
  const char *s = getenv(name);
  if (!s || !*s) return def;
  if (!strcasecmp(s, "auto") || !strcmp(s, "2")) return HAK_THP_AUTO;
  if (!strcasecmp(s, "never")) return HAK_THP_OFF;
  if (!strcasecmp(s, "always")) return HAK_THP_ON;
  int b = parse_bool(s);
  return b < 0 ? def : b ? HAK_THP_ON : HAK_THP_OFF;
}

static double cfg_double(const char *name, double def) {
  const char *s = getenv(name);
  if (!s || !*s) return def;
  double v = 0, scale = 0;
  for (const char *c = s; *c; c++) {
    if (*c >= '0' && *c <= '9') {
      if (scale == 0) v = v * 10 + (*c - '0');
      else { v += (*c - '0') * scale; scale /= 10; }
    } else if (*c == '.' && scale == 0) scale = 0.1;
    else return def;
  }
  return v;
}

void hak_config_init(void) {
  const char *mode = getenv("HAKMEM_MODE");
  if (mode && !strcmp(mode, "fast")) {
    g_cfg.mode = "fast";
    g_cfg.fast_cap = 1024;
    g_cfg.fast_cap_bytes = 1u << 20;
    g_cfg.refill_bytes = 32u << 10;
    g_cfg.empty_budget = 64u << 20;
    g_cfg.spare_superslabs = 8;
    g_cfg.bigcache_bytes = 1u << 30;
    g_cfg.thp = HAK_THP_ON;
  } else if (mode && (!strcmp(mode, "low-memory") || !strcmp(mode, "low_memory"))) {
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
  }
  g_cfg.stats = cfg_bool("HAKMEM_STATS", g_cfg.stats);
  const char *oe = getenv("HAKMEM_ON_ERROR");
  if (oe) g_cfg.on_error_warn = !strcmp(oe, "warn") || !strcmp(oe, "continue");
  g_cfg.learn = cfg_bool("HAKMEM_LEARN", g_cfg.learn);
  g_cfg.madv_free = cfg_bool("HAKMEM_MADV_FREE", g_cfg.madv_free);
  g_cfg.thp = cfg_thp("HAKMEM_THP", g_cfg.thp);
  g_cfg.thp_auto_bytes = cfg_size("HAKMEM_THP_AUTO_BYTES", g_cfg.thp_auto_bytes);
  g_cfg.crash_report = cfg_bool("HAKMEM_CRASH_REPORT", g_cfg.crash_report);
  g_cfg.debug = cfg_bool("HAKMEM_DEBUG", g_cfg.debug);
  g_cfg.big_threshold = cfg_size("HAKMEM_BIG_THRESHOLD", g_cfg.big_threshold);
  g_cfg.fast_cap = (uint32_t)cfg_size("HAKMEM_FAST_CAP", g_cfg.fast_cap);
  g_cfg.fast_cap_bytes = (uint32_t)cfg_size("HAKMEM_FAST_CAP_BYTES", g_cfg.fast_cap_bytes);
  g_cfg.refill_bytes = (uint32_t)cfg_size("HAKMEM_REFILL_BYTES", g_cfg.refill_bytes);
  g_cfg.w_max = cfg_double("HAKMEM_W_MAX", g_cfg.w_max);
  if (g_cfg.w_max < 1.0) g_cfg.w_max = 1.0;
  g_cfg.empty_budget = cfg_size("HAKMEM_EMPTY_BUDGET", g_cfg.empty_budget);
  g_cfg.spare_superslabs = cfg_size("HAKMEM_SPARE_SUPERSLABS", g_cfg.spare_superslabs);
  g_cfg.bigcache_bytes = cfg_size("HAKMEM_BIGCACHE_BYTES", g_cfg.bigcache_bytes);
  g_cfg.bigcache_ms = (uint32_t)cfg_size("HAKMEM_BIGCACHE_MS", g_cfg.bigcache_ms);
  if (g_cfg.fast_cap < 1) g_cfg.fast_cap = 1;
  if (g_cfg.fast_cap > 65536) g_cfg.fast_cap = 65536;
}
