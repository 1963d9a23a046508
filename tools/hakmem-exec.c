/* hakmem-exec: the launcher of the hakmem command (tools/hakmem.py).
 *
 *   hakmem-exec INFO_FD PRELOAD_OR_- PROGRAM [ARGS...]
 *
 * Runs PROGRAM (with LD_PRELOAD=PRELOAD prepended for it alone, unless "-")
 * and writes one line to file descriptor INFO_FD when it ends:
 *   status=N wall=S user=S sys=S maxrss_kib=N
 * from wait4: user, sys and ru_maxrss include the descendants PROGRAM waited
 * for. It exists because a child forked by Python starts as a copy of the
 * interpreter, whose resident set the kernel keeps in the child's peak RSS
 * across exec; forked from this small process, PROGRAM's peak is its own.
 * Exits with PROGRAM's status (128 + the signal that ended it). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: hakmem-exec INFO_FD PRELOAD_OR_- PROGRAM [ARGS...]\n");
    return 125;
  }
  int info = atoi(argv[1]);
  const char *preload = argv[2];
  double t0 = now();
  pid_t pid = fork();
  if (pid < 0) {
    perror("hakmem-exec: fork");
    return 125;
  }
  if (pid == 0) {
    if (info > 2) close(info);
    if (strcmp(preload, "-") != 0) {
      const char *old = getenv("LD_PRELOAD");
      char buf[8192];
      snprintf(buf, sizeof buf, "%s%s%s", preload, old && *old ? ":" : "", old && *old ? old : "");
      setenv("LD_PRELOAD", buf, 1);
    }
    execvp(argv[3], argv + 3);
    fprintf(stderr, "hakmem-exec: cannot run %s: %s\n", argv[3], strerror(errno));
    _exit(127);
  }
  /* like system(): the terminal's ^C and ^\ are for the program */
  signal(SIGINT, SIG_IGN);
  signal(SIGQUIT, SIG_IGN);
  int st = 0;
  struct rusage ru;
  while (wait4(pid, &st, 0, &ru) < 0)
    if (errno != EINTR) {
      perror("hakmem-exec: wait4");
      return 125;
    }
  double wall = now() - t0;
  int code = WIFEXITED(st) ? WEXITSTATUS(st) : WIFSIGNALED(st) ? 128 + WTERMSIG(st) : 125;
  dprintf(info, "status=%d wall=%.6f user=%.6f sys=%.6f maxrss_kib=%ld\n", code, wall,
          (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6,
          (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6, ru.ru_maxrss);
  return code;
}
