/* The one periodic housekeeping hook of the backend: memory that has waited
 * long enough goes back to the OS. Thread heaps call it once per window of
 * slow-path events (frontend/heap.c), so a program that has stopped using
 * big blocks but keeps allocating small ones still gets that memory back. */
#ifndef HAK_HOUSEKEEP_H
#define HAK_HOUSEKEEP_H
#include "base/common.h"

#pragma GCC visibility push(hidden) /* internal: no GOT indirection */

/* Cheap when nothing is due: it reads the clock only when something waits. */
void hak_housekeep(void);

#pragma GCC visibility pop

#endif
