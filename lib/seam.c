/* lib/seam.c - the test seams of lib/testing.h (test builds only). */
#include <stdio.h>
#include <stdlib.h>

#include "internal.h"

#ifdef SYNCHRO_TEST_SEAMS

typedef struct {
  _Atomic(synchro_seam_fn) fn;
  _Atomic(void *) data;
} seam_slot_t;

static seam_slot_t slots[SYNCHRO_SEAM_COUNT];

void synchro_test_seam_set(synchro_seam_t seam, synchro_seam_fn fn, void *data) {
  if ((unsigned)seam >= SYNCHRO_SEAM_COUNT)
    return;
  atomic_store_explicit(&slots[seam].data, data, memory_order_relaxed);
  atomic_store_explicit(&slots[seam].fn, fn, memory_order_release);
}

const char *synchro_test_seam_name(synchro_seam_t seam) {
  static const char *const names[SYNCHRO_SEAM_COUNT] = {"submit",   "dequeue",        "start",
                                                        "complete", "cancel-observe", "deliver",
                                                        "sleep",    "host-signal"};
  return (unsigned)seam < SYNCHRO_SEAM_COUNT ? names[seam] : "?";
}

const synchro_op_t *synchro_test_call_op(const synchro_call_t *call) {
  return call != NULL ? call->op : NULL;
}

void synchro__seam(synchro_seam_t seam, const synchro_call_t *call) {
  synchro_seam_fn fn = atomic_load_explicit(&slots[seam].fn, memory_order_acquire);
  if (fn != NULL)
    fn(seam, call, atomic_load_explicit(&slots[seam].data, memory_order_relaxed));
}

_Thread_local int synchro__locks_held;

void synchro__user_code(const char *what) {
  if (synchro__locks_held == 0)
    return;
  fprintf(stderr, "synchro: %s runs with %d runtime lock(s) held\n",
          what != NULL ? what : "user code", synchro__locks_held);
  abort();
}

static _Atomic int fault_budget[SYNCHRO_FAULT_COUNT];

void synchro_test_fail_next(synchro_fault_t fault, int count) {
  if ((unsigned)fault < SYNCHRO_FAULT_COUNT)
    atomic_store(&fault_budget[fault], count > 0 ? count : 0);
}

bool synchro__fault(synchro_fault_t fault) {
  int left = atomic_load(&fault_budget[fault]);
  while (left > 0)
    if (atomic_compare_exchange_weak(&fault_budget[fault], &left, left - 1))
      return true;
  return false;
}

/* Synchronizers whose loop is initialised and not closed: how the affinity check of
 * the test programs (tests/support/affinity.c) tells a synchronizer's loop from the
 * program's own. A fixed table: a test build never runs more synchronizers at once. */
#define KNOWN_MAX 4096
static _Atomic(synchro_t *) known[KNOWN_MAX];
static _Atomic int known_used; /* slots ever used: lookups scan only these */

void synchro__test_loop_known(synchro_t *s, bool on) {
  int i;
  for (i = 0; i < KNOWN_MAX; i++) {
    synchro_t *want = on ? NULL : s;
    if (atomic_compare_exchange_strong(&known[i], &want, on ? s : NULL)) {
      int used = atomic_load(&known_used);
      while (on && used <= i && !atomic_compare_exchange_weak(&known_used, &used, i + 1))
        ;
      return;
    }
  }
}

bool synchro__test_is_known_loop(const synchro_t *s) {
  int i, used = atomic_load(&known_used);
  for (i = 0; i < used; i++)
    if (atomic_load_explicit(&known[i], memory_order_relaxed) == s)
      return true;
  return false;
}

#else
/* ISO C wants a translation unit to declare something. */
typedef int synchro__no_seams_t;
#endif
