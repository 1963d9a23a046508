/* Housekeeping: what is due, in one place. */
#include "backend/housekeep.h"
#include "backend/big.h"

void hak_housekeep(void) {
  hak_bigcache_expire(); /* a relaxed load, and a clock read while BigCache holds something */
}
