/* The futex lock's contended paths. */
#include "base/lock.h"

#include <errno.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Spins this many times before sleeping: long enough for a holder that is
 * running to finish a short critical section, short enough that a preempted
 * holder costs the waiter little. */
#define LOCK_SPINS 100

static void futex(_Atomic uint32_t *addr, int op, uint32_t val) {
  int saved = errno;
  syscall(SYS_futex, (uint32_t *)addr, op | FUTEX_PRIVATE_FLAG, val, NULL, NULL, 0);
  errno = saved;
}

void hak_lock_slow(hak_lock_t *l) {
  for (unsigned i = 0; i < LOCK_SPINS; i++) {
    if (atomic_load_explicit(&l->v, memory_order_relaxed) == 0 && hak_trylock(l)) return;
    __builtin_ia32_pause();
  }
  /* Mark it contended; whoever holds it wakes one sleeper on unlock. */
  while (atomic_exchange_explicit(&l->v, 2, memory_order_acquire) != 0) futex(&l->v, FUTEX_WAIT, 2);
}

void hak_lock_wake(hak_lock_t *l) { futex(&l->v, FUTEX_WAKE, 1); }
