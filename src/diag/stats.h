/* Statistics: sums the per-heap counters of every heap with the global ones
 * (base/counters.h), for hak_stats_get, mallinfo2 and the reports. */
#ifndef HAK_STATS_H
#define HAK_STATS_H
#include "base/common.h"

#pragma GCC visibility push(hidden) /* internal: no GOT indirection */

void hak_stats_report_exit(void); /* HAKMEM_STATS=1 report at exit, no malloc */
void hak_stats_keep_stderr(void);
void hak_stats_reset_locks(void); /* fork child */

#pragma GCC visibility pop

#endif
