/* The crash report (HAKMEM_CRASH_REPORT=1): a SIGSEGV or SIGBUS names where
 * in hakmem's heap the faulting address lies. */
#ifndef HAK_CRASH_H
#define HAK_CRASH_H
#include "base/common.h"

void hak_crash_handler_install(void);

#endif
