/* runwrap — run a benchmark for the harness: optional LD_PRELOAD for the
 * child only, a time limit, and the child's peak RSS.
 *
 *   runwrap TIMEOUT_SEC INFO_FILE PRELOAD_OR_- PROGRAM [ARGS...]
 *
 * Writes "maxrss_kb=<n> status=<exit code or signal name> wall=<seconds>" to
 * INFO_FILE. Exits with the child's status (128+signal if it was killed,
 * 124 on timeout). Not a workload: it only forks, execs and waits.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *signame(int sig) {
  switch (sig) {
  case SIGSEGV: return "SIGSEGV";
  case SIGABRT: return "SIGABRT";
  case SIGBUS: return "SIGBUS";
  case SIGILL: return "SIGILL";
  case SIGFPE: return "SIGFPE";
  case SIGKILL: return "SIGKILL";
  case SIGTERM: return "SIGTERM";
  case SIGINT: return "SIGINT";
  case SIGTRAP: return "SIGTRAP";
  case SIGSYS: return "SIGSYS";
  default: return "SIGNAL";
  }
}

static volatile sig_atomic_t timed_out;
static pid_t child;

static void on_alarm(int sig) {
  (void)sig;
  timed_out = 1;
  if (child > 0) kill(child, SIGKILL);
}

int main(int argc, char **argv) {
  if (argc < 5) {
    fprintf(stderr, "usage: runwrap TIMEOUT_SEC INFO_FILE PRELOAD_OR_- PROGRAM [ARGS...]\n");
    return 2;
  }
  unsigned timeout = (unsigned)strtoul(argv[1], NULL, 10);
  const char *info = argv[2], *preload = argv[3];
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  child = fork();
  if (child < 0) {
    perror("runwrap: fork");
    return 2;
  }
  if (child == 0) {
    if (strcmp(preload, "-") != 0)
      setenv("LD_PRELOAD", preload, 1);
    else
      unsetenv("LD_PRELOAD");
    execv(argv[4], &argv[4]);
    fprintf(stderr, "runwrap: cannot exec %s: %s\n", argv[4], strerror(errno));
    _exit(127);
  }
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_alarm;
  sigaction(SIGALRM, &sa, NULL);
  if (timeout) alarm(timeout);
  int st = 0;
  struct rusage ru;
  memset(&ru, 0, sizeof ru);
  while (wait4(child, &st, 0, &ru) < 0) {
    if (errno != EINTR) {
      perror("runwrap: wait4");
      return 2;
    }
  }
  alarm(0);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  double wall = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9;
  int rc;
  char status[64];
  if (timed_out) {
    rc = 124;
    snprintf(status, sizeof status, "TIMEOUT");
  } else if (WIFSIGNALED(st)) {
    rc = 128 + WTERMSIG(st);
    snprintf(status, sizeof status, "%s", signame(WTERMSIG(st)));
  } else {
    rc = WEXITSTATUS(st);
    snprintf(status, sizeof status, "%d", rc);
  }
  FILE *f = fopen(info, "w");
  if (f) {
    fprintf(f, "maxrss_kb=%ld status=%s wall=%.3f\n", ru.ru_maxrss, status, wall);
    fclose(f);
  }
  return rc;
}
