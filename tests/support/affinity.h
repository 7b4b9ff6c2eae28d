/* tests/support/affinity.h - the libuv thread-affinity check every test program runs
 * under (tests/support/affinity.c). */
#ifndef TESTS_SUPPORT_AFFINITY_H
#define TESTS_SUPPORT_AFFINITY_H

/* How many calls targeted a running synchronizer's loop from another thread. */
long affinity_violations(void);
/* 1 (the default): such a call aborts the program; 0: it is counted and refused (not
 * passed to libuv; UV_EINVAL where the function returns a code). */
void affinity_abort_on_violation(int on);

#endif
