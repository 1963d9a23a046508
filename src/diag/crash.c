/* The crash report. Opt-in: an allocator that put handlers on every
 * program's signals would add lines to ordinary crashes and keep tools that
 * only install a handler over the default one (libFuzzer, faulthandler's
 * chaining) from theirs. SIGABRT is left alone: hakmem's own aborts print
 * their reason before they abort. */
#include "diag/crash.h"
#include "backend/guard.h"
#include "backend/lookup.h"
#include "base/config.h"
#include "base/report.h"

#include <signal.h>
#include <string.h>

/* Where a lies, in words, from the one lookup in its signal-safe mode. */
static void describe(const void *a, char *where, size_t cap) {
  hak_ptr_t r = hak_lookup(a, HAK_LOOKUP_SIGNAL);
  if (r.big) {
    hak_fmt(where, cap, "inside hakmem's heap: Big block run %p of %zu bytes", (void *)r.big->base,
            (uint64_t)r.big->map_size);
  } else if (r.slab) {
    hak_ss_t *ss = hak_ss_of(a);
    if (r.slab->geo.owner)
      hak_fmt(where, cap, "inside hakmem's heap: SuperSlab %p, slot %u, a slab of %u-byte blocks",
              (void *)ss, (uint64_t)hak_slot_of(a), (uint64_t)r.slab->geo.bsize);
    else
      hak_fmt(where, cap, "inside hakmem's heap: SuperSlab %p, slot %u, holding no live block",
              (void *)ss, (uint64_t)hak_slot_of(a));
  } else if (hak_registry_test((uintptr_t)a)) {
    hak_region_t *reg = hak_region_of(a);
    if (reg->magic != HAK_REGION_MAGIC)
      hak_fmt(where, cap, "in hakmem's region %p, header unreadable", (void *)reg);
    else
      hak_fmt(where, cap, "inside hakmem's heap: SuperSlab %p, its header", (void *)reg);
  } else {
    hak_fmt(where, cap, "not in hakmem's heap");
  }
}

static void crash_handler(int sig, siginfo_t *si, void *uc) {
  (void)uc;
  char buf[320], where[200];
  /* A sampled block's fault is reported whether or not the crash report is on. */
  if (hak_guard_fault(si->si_addr) || !g_cfg.crash_report) {
    raise(sig);
    return;
  }
  /* A registered region's header is mapped, except while a trim is
   * unmapping it: a second fault here then ends the process with the
   * default action (SA_RESETHAND), only without this line. */
  describe(si->si_addr, where, sizeof where);
  size_t n = hak_fmt(buf, sizeof buf, "hakmem: %s at address %p: %s\n", sig == SIGSEGV ? "SIGSEGV" : "SIGBUS",
                     si->si_addr, where);
  hak_say(buf, n);
  /* SA_RESETHAND restored the default action: re-raise so the exit status and
   * core dump are what they would have been without hakmem. */
  raise(sig);
}

void hak_crash_handler_install(void) {
  static const int sigs[] = {SIGSEGV, SIGBUS};
  for (unsigned i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
    struct sigaction old;
    if (sigaction(sigs[i], NULL, &old) != 0) continue;
    if (!(old.sa_flags & SA_SIGINFO) && old.sa_handler != SIG_DFL) continue;
    if (old.sa_flags & SA_SIGINFO) continue; /* the program's own handler */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = crash_handler;
    sa.sa_flags = SA_SIGINFO | SA_RESETHAND | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    sigaction(sigs[i], &sa, NULL);
  }
}
