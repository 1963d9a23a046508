/* unit_options.c — the option table of src/base/config.c.
 *
 * The parsers accept exactly the documented spellings (64k, 2m, 1g, a
 * trailing b; 1.6; whole numbers) and nothing else (64MiB, lots, 1.2.3,
 * overflow); every option's documented default parses to its built-in
 * value; every option's value formats to a string that parses back to it;
 * and start-up parsing of the environment prints one line per malformed
 * value or unknown HAKMEM_* name, keeps the default, and says nothing
 * about the variables of the test suite and the benchmark (HAKMEM_TEST_*,
 * HAKMEM_LIB).
 */
#include "base/config.h"
#include "check.h"
#include "hakmem.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void sizes(void) {
  static const struct {
    const char *s;
    uint64_t v;
  } ok[] = {{"0", 0},       {"123", 123},          {"64k", 65536},          {"64K", 65536},
            {"2m", 2 << 20}, {"1g", 1u << 30},     {"64kb", 65536},         {"16MB", 16 << 20},
            {"18446744073709551615", UINT64_MAX}};
  for (unsigned i = 0; i < sizeof ok / sizeof ok[0]; i++) {
    uint64_t v = 1;
    CHECK(hak_parse_size(ok[i].s, &v) == 0 && v == ok[i].v, "parse_size(%s) = %llu", ok[i].s,
          (unsigned long long)v);
  }
  static const char *const bad[] = {"",   "64MiB", "lots", "-1",   "1.5m", "k",  " 64k", "64k ",
                                    "2t", "64kk", "0x10", "18446744073709551616", "17179869184g"};
  for (unsigned i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    uint64_t v;
    CHECK(hak_parse_size(bad[i], &v) == -1, "parse_size(\"%s\") should fail", bad[i]);
  }
  uint64_t v;
  CHECK(hak_parse_uint("256", &v) == 0 && v == 256);
  CHECK(hak_parse_uint("1k", &v) == -1, "a count has no suffix");
  CHECK(hak_parse_uint("lots", &v) == -1);
  double d;
  CHECK(hak_parse_double("1.6", &d) == 0 && d == 1.6, "1.6 must be exactly the literal 1.6");
  CHECK(hak_parse_double("1.25", &d) == 0 && d == 1.25);
  CHECK(hak_parse_double("2", &d) == 0 && d == 2.0);
  CHECK(hak_parse_double("1.2.3", &d) == -1 && hak_parse_double(".", &d) == -1 && hak_parse_double("1e3", &d) == -1);
}

static void defaults_and_round_trips(void) {
  char why[256];
  int bad = hak_opt_check_defaults(why, sizeof why);
  CHECK(bad == 0, "%d option(s) whose documented default is not the built-in one; first: %s", bad, why);
  for (int id = 0; id < HAK_OPT_COUNT; id++) {
    char a[600], b[600];
    hak_opt_format(id, a, sizeof a);
    if (!hak_opt_runtime(id)) continue;
    /* a run-time option takes its own spelling back unchanged */
    int r = hak_opt_store(id, a, true);
    CHECK(r == 0 || (!*a && id == HAK_OPT_STATS_FILE), "%s: its value \"%s\" does not parse back (%d)",
          hak_opt_name(id), a, r);
    hak_opt_format(id, b, sizeof b);
    CHECK(!strcmp(a, b), "%s: \"%s\" became \"%s\"", hak_opt_name(id), a, b);
    if (id == HAK_OPT_STATS_FILE || id == HAK_OPT_PROF_PREFIX) continue; /* any name is a file name */
    CHECK(hak_opt_store(id, "not-a-value", true) == EINVAL, "%s accepted garbage", hak_opt_name(id));
    hak_opt_format(id, b, sizeof b);
    CHECK(!strcmp(a, b), "%s: a refused value changed it to \"%s\"", hak_opt_name(id), b);
  }
  CHECK(hak_opt_store(HAK_OPT_FAST_CAP, "512", true) == EPERM, "FAST_CAP is start-up only");
  CHECK(hak_opt_find("empty_budget") == HAK_OPT_EMPTY_BUDGET && hak_opt_find("HAKMEM_EMPTY_BUDGET") == HAK_OPT_EMPTY_BUDGET);
  CHECK(hak_opt_find("HAKMEM_HAKMEM_STATS") == -1 && hak_opt_find("") == -1 && hak_opt_find(NULL) == -1);
}

/* hak_config_init over a made-up environment, its stderr captured. */
static size_t init_with(char **env, char *out, size_t cap) {
  extern char **environ;
  char **saved_env = environ;
  char path[] = "/tmp/unit_options_XXXXXX";
  int fd = mkstemp(path);
  unlink(path);
  int saved_err = dup(2);
  dup2(fd, 2);
  environ = env;
  hak_config_init();
  environ = saved_env;
  dup2(saved_err, 2);
  close(saved_err);
  ssize_t n = pread(fd, out, cap - 1, 0);
  close(fd);
  out[n > 0 ? n : 0] = 0;
  return n > 0 ? (size_t)n : 0;
}

static int lines(const char *s) {
  int n = 0;
  for (; *s; s++) n += *s == '\n';
  return n;
}

static void startup_warnings(void) {
  char out[4096];
  char *env1[] = {"HAKMEM_EMPTY_BUDGET=64MiB", "HAKMEM_FASTCAP=lots", "HAKMEM_TEST_TIMEOUT=5",
                  "HAKMEM_TEST_ANYTHING=x", "HAKMEM_LIB=/x.so", "OTHER=1", "HAKMEM_W_MAX=0.5",
                  "HAKMEM_STATS=", NULL};
  init_with(env1, out, sizeof out);
  fprintf(stderr, "unit_options: the warnings printed:\n%s", out);
  CHECK(lines(out) == 3, "three bad variables, three lines; got:\n%s", out);
  CHECK(strstr(out, "hakmem: HAKMEM_EMPTY_BUDGET=64MiB: expected a byte count") != NULL, "EMPTY_BUDGET line");
  CHECK(strstr(out, "keeping the default, 16m") != NULL, "the kept default is named");
  CHECK(strstr(out, "hakmem: HAKMEM_FASTCAP=lots: no such variable (did you mean HAKMEM_FAST_CAP?)") != NULL,
        "the unknown name and its likely meaning");
  CHECK(strstr(out, "HAKMEM_W_MAX=0.5: expected a decimal number from 1 to 100") != NULL, "W_MAX range");
  CHECK(!strstr(out, "HAKMEM_TEST") && !strstr(out, "HAKMEM_LIB") && !strstr(out, "OTHER"),
        "the test suite's and the benchmark's variables are not warned about");
  CHECK(g_cfg.empty_budget == 16u << 20 && g_cfg.fast_cap == 256 && g_cfg.w_max == 1.6, "the defaults stayed");
  /* every variable the docs name, with a good value, prints nothing */
  char *env2[] = {"HAKMEM_STATS=1", "HAKMEM_ON_ERROR=warn", "HAKMEM_LEARN=0", "HAKMEM_FAST_CAP=128",
                  "HAKMEM_FAST_CAP_BYTES=8k", "HAKMEM_REFILL_BYTES=4k", "HAKMEM_W_MAX=1.25",
                  "HAKMEM_EMPTY_BUDGET=32m", "HAKMEM_SPARE_SUPERSLABS=1", "HAKMEM_MADV_FREE=0",
                  "HAKMEM_BIG_THRESHOLD=1m", "HAKMEM_BIGCACHE_BYTES=64m", "HAKMEM_BIGCACHE_MS=500",
                  "HAKMEM_DECAY_MS=2000", "HAKMEM_BACKGROUND=1", "HAKMEM_THP=auto",
                  "HAKMEM_THP_AUTO_BYTES=64m", "HAKMEM_CRASH_REPORT=0", "HAKMEM_DEBUG=0",
                  "HAKMEM_STATS_FILE=/tmp/x.%p.json", "HAKMEM_STATS_SIGNAL=0", "HAKMEM_HELP=0",
                  "HAKMEM_MODE=low-memory", NULL};
  init_with(env2, out, sizeof out);
  CHECK(!*out, "good values printed:\n%s", out);
  CHECK(g_cfg.fast_cap == 128 && g_cfg.empty_budget == 32u << 20 && g_cfg.w_max == 1.25 && !g_cfg.learn,
        "the values were taken");
  CHECK(!strcmp(g_cfg.mode, "low-memory") && g_cfg.bigcache_ms == 500 && g_cfg.spare_superslabs == 1,
        "the mode preset came first, the variables over it");
  char path[600];
  CHECK(hak_cfg_stats_path(path, sizeof path), "STATS_FILE is set");
  char want[64];
  snprintf(want, sizeof want, "/tmp/x.%d.json", (int)getpid());
  CHECK(!strcmp(path, want), "%%p expands to the pid: %s", path);
  char *env3[] = {"HAKMEM_MODE=turbo", NULL};
  init_with(env3, out, sizeof out);
  CHECK(lines(out) == 1 && strstr(out, "HAKMEM_MODE=turbo: expected balanced, fast, low-memory"), "bad mode:\n%s",
        out);
}

int main(void) {
  hak_free(hak_malloc(1)); /* the library is up: the tests below change its table */
  sizes();
  defaults_and_round_trips();
  startup_warnings();
  return check_summary("unit_options");
}
