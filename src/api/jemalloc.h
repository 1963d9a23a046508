/* jemalloc's API (jemalloc.c): what start-up and fork need of it. */
#ifndef HAK_JEMALLOC_H
#define HAK_JEMALLOC_H

#pragma GCC visibility push(hidden) /* internal: no GOT indirection */
/* Fork child: a thread that held the statistics snapshot's lock at the
 * fork does not exist there. */
void hak_je_atfork_child(void);
#pragma GCC visibility pop

#endif
