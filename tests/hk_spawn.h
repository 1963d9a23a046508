/* hk_spawn.h — runs this test program again as a child (one that is meant
 * to abort, crash or report) and collects what it printed and how it ended.
 *
 *   hk_spawn(args, env, &res)   args for execv of /proc/self/exe; env: a
 *                               NULL-terminated list of "NAME=VALUE" to set
 *                               and "NAME" to unset (HAKMEM_STATS is always
 *                               unset, so no statistics mix into stderr)
 *   hk_env(buf, cap, name, v)   "NAME=v" into buf, or "NAME" when v is NULL
 *   hk_first_line(s, out, cap)  the first line of s
 */
#ifndef HK_SPAWN_H
#define HK_SPAWN_H

#include "hk_test.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct {
  int status;
  char out[8192];
  char err[65536];
} hk_result_t;

/* Reads fd to its end, keeping what fits in buf (NUL-terminated). */
static HK_UNUSED void hk_read_all(int fd, char *buf, size_t cap) {
  size_t n = 0;
  for (;;) {
    if (n + 1 >= cap) {
      char sink[4096];
      if (read(fd, sink, sizeof sink) <= 0) break;
      continue;
    }
    ssize_t k = read(fd, buf + n, cap - 1 - n);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) break;
    n += (size_t)k;
  }
  buf[n] = 0;
}

/* stdout is small, so reading it first cannot block the child on stderr */
static HK_UNUSED void hk_spawn(char *const args[], const char *const env[], hk_result_t *res) {
  int po[2], pe[2];
  REQUIRE(pipe(po) == 0 && pipe(pe) == 0, "pipe failed");
  fflush(NULL);
  pid_t pid = fork();
  REQUIRE(pid >= 0, "fork failed");
  if (pid == 0) {
    dup2(po[1], 1);
    dup2(pe[1], 2);
    close(po[0]), close(pe[0]), close(po[1]), close(pe[1]);
    unsetenv("HAKMEM_STATS");
    for (const char *const *e = env; e && *e; e++) {
      const char *eq = strchr(*e, '=');
      if (!eq) {
        unsetenv(*e);
        continue;
      }
      char name[128];
      snprintf(name, sizeof name, "%.*s", (int)(eq - *e), *e);
      setenv(name, eq + 1, 1);
    }
    execv("/proc/self/exe", args);
    _exit(127);
  }
  close(po[1]), close(pe[1]);
  hk_read_all(po[0], res->out, sizeof res->out);
  hk_read_all(pe[0], res->err, sizeof res->err);
  close(po[0]), close(pe[0]);
  waitpid(pid, &res->status, 0);
}

static HK_UNUSED void hk_env(char *buf, size_t cap, const char *name, const char *value) {
  if (value) snprintf(buf, cap, "%s=%s", name, value);
  else snprintf(buf, cap, "%s", name);
}

static HK_UNUSED void hk_first_line(const char *s, char *out, size_t cap) {
  size_t n = strcspn(s, "\n");
  snprintf(out, cap, "%.*s", (int)(n < cap - 1 ? n : cap - 1), s);
}

#endif
