/* runwrap — run a benchmark for the harness: optional LD_PRELOAD for the
 * child only, a time limit, a memory limit, and the child's resource usage.
 *
 *   runwrap TIMEOUT_SEC INFO_FILE PRELOAD_OR_- PROGRAM [ARGS...]
 *
 * Writes "maxrss_kb=<n> status=<exit code, signal name, TIMEOUT or RSSLIMIT>
 * wall=<s> user=<s> sys=<s>" to INFO_FILE: ru_maxrss, ru_utime and ru_stime
 * of the child as wait4 reports them, which include the descendants it
 * waited for (peak RSS: the largest single process). Exits with the child's
 * status (128+signal if it was killed, 124 on timeout, 125 over the memory
 * limit). Not a workload: it only forks, execs and waits.
 *
 * The child runs in its own process group, so that a timeout also ends the
 * workers of a program that forks (stress-ng); runwrap is their subreaper
 * and, once the child is gone, kills and reaps what is left of its group, so
 * no worker outlives its run to steal the next run's CPU. With RUNWRAP_MAX_RSS_KB set,
 * a child whose resident set grows past that many KiB is killed: a run that
 * would push the machine into the OOM killer (and take other processes with
 * it) fails on its own instead.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
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

/* The child's resident set in KiB, from /proc (0 if unreadable). */
static long rss_kb(pid_t pid) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/statm", (int)pid);
  FILE *f = fopen(path, "r");
  if (!f) return 0;
  long size = 0, resident = 0;
  int n = fscanf(f, "%ld %ld", &size, &resident);
  fclose(f);
  return n == 2 ? resident * (sysconf(_SC_PAGESIZE) / 1024) : 0;
}

static double since(const struct timespec *t0) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)(t.tv_sec - t0->tv_sec) + (double)(t.tv_nsec - t0->tv_nsec) * 1e-9;
}

/* Ctrl-C or a kill of the harness reaches runwrap but not the child's own
 * process group: pass it on as SIGKILL, so no benchmark outlives its harness. */
static volatile sig_atomic_t stop_sig;
static void on_stop(int sig) { stop_sig = sig; }

static double tv_sec(struct timeval tv) { return (double)tv.tv_sec + (double)tv.tv_usec * 1e-6; }

int main(int argc, char **argv) {
  if (argc < 5) {
    fprintf(stderr, "usage: runwrap TIMEOUT_SEC INFO_FILE PRELOAD_OR_- PROGRAM [ARGS...]\n");
    return 2;
  }
  unsigned timeout = (unsigned)strtoul(argv[1], NULL, 10);
  const char *info = argv[2], *preload = argv[3];
  const char *lim = getenv("RUNWRAP_MAX_RSS_KB");
  long max_rss = lim ? strtol(lim, NULL, 10) : 0;
  /* before the fork, so no signal finds the child unguarded; exec resets
   * caught signals to their defaults in the child */
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_stop;
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGHUP, &sa, NULL);
  prctl(PR_SET_CHILD_SUBREAPER, 1);
  struct timespec t0;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  pid_t child = fork();
  if (child < 0) {
    perror("runwrap: fork");
    return 2;
  }
  if (child == 0) {
    setpgid(0, 0);
    unsetenv("RUNWRAP_MAX_RSS_KB");
    if (strcmp(preload, "-") != 0)
      setenv("LD_PRELOAD", preload, 1);
    else
      unsetenv("LD_PRELOAD");
    execv(argv[4], &argv[4]);
    fprintf(stderr, "runwrap: cannot exec %s: %s\n", argv[4], strerror(errno));
    _exit(127);
  }
  setpgid(child, child); /* also here: no race with the child's own call */
  int st = 0, timed_out = 0, over_rss = 0;
  struct rusage ru;
  memset(&ru, 0, sizeof ru);
  /* Poll every 20 ms: cheap next to the benchmark, and soon enough to stop a
   * heap that grows by gigabytes a second before it exhausts the machine. */
  for (;;) {
    pid_t r = wait4(child, &st, WNOHANG, &ru);
    if (r == child) break;
    if (r < 0 && errno != EINTR) {
      perror("runwrap: wait4");
      return 2;
    }
    if (!timed_out && !over_rss) {
      if (timeout && since(&t0) >= (double)timeout) timed_out = 1;
      if (max_rss > 0 && rss_kb(child) > max_rss) over_rss = 1;
      if (timed_out || over_rss) kill(-child, SIGKILL);
    }
    if (stop_sig) kill(-child, SIGKILL);
    struct timespec nap = {0, 20 * 1000 * 1000};
    nanosleep(&nap, NULL);
  }
  double wall = since(&t0);
  /* Leftover workers: kill the group, then reap the orphans that come to us
   * (for at most a second: one that left the group may live on). */
  kill(-child, SIGKILL);
  for (int tries = 0; tries < 100;) {
    pid_t r = waitpid(-1, NULL, WNOHANG);
    if (r < 0 && errno != EINTR) break; /* ECHILD: none left */
    if (r == 0) {
      struct timespec nap = {0, 10 * 1000 * 1000};
      nanosleep(&nap, NULL);
      tries++;
    }
  }
  int rc;
  char status[64];
  if (timed_out) {
    rc = 124;
    snprintf(status, sizeof status, "TIMEOUT");
  } else if (over_rss) {
    rc = 125;
    snprintf(status, sizeof status, "RSSLIMIT");
  } else if (WIFSIGNALED(st)) {
    rc = 128 + WTERMSIG(st);
    snprintf(status, sizeof status, "%s", signame(WTERMSIG(st)));
  } else {
    rc = WEXITSTATUS(st);
    snprintf(status, sizeof status, "%d", rc);
  }
  if (stop_sig) rc = 128 + stop_sig;
  FILE *f = fopen(info, "w");
  if (f) {
    fprintf(f, "maxrss_kb=%ld status=%s wall=%.3f user=%.3f sys=%.3f\n", ru.ru_maxrss, status, wall,
            tv_sec(ru.ru_utime), tv_sec(ru.ru_stime));
    fclose(f);
  }
  return rc;
}
