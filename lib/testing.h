/* lib/testing.h - test seams: named points at every cross-thread handoff where a test
 * can pause or delay the thread that reaches them, to force an interleaving instead of
 * hoping for it. Compiled in only when the library is built with SYNCHRO_TEST_SEAMS
 * (the test build: build/libsynchro-test.a, which every tests/check_*.c links);
 * production builds have no seams and export none of this. Never installed. */
#ifndef SYNCHRO_TESTING_H
#define SYNCHRO_TESTING_H

#include "synchro.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum synchro_seam_e {
  SYNCHRO_SEAM_SUBMIT,         /* caller: a prepared call, just before it is pushed */
  SYNCHRO_SEAM_DEQUEUE,        /* loop: a call just taken off the queue, not yet started */
  SYNCHRO_SEAM_START,          /* loop: a started call, just before its implementation */
  SYNCHRO_SEAM_COMPLETE,       /* loop: the outcome is claimed, not yet published */
  SYNCHRO_SEAM_CANCEL_OBSERVE, /* loop: a cancel request taken off the control queue */
  SYNCHRO_SEAM_DELIVER,        /* loop: a resolved call about to be handed to its sink */
  SYNCHRO_SEAM_SLEEP,          /* loop: announced it may sleep, before the re-check */
  SYNCHRO_SEAM_HOST_SIGNAL,    /* delivering thread: a resolved call is on its host's stack,
                                * the host's fd not yet signalled (the host thread may run
                                * the callback and free the host meanwhile) */
  SYNCHRO_SEAM_COUNT
} synchro_seam_t;

/* Runs on the thread that reaches the seam; `call` is NULL at SLEEP and HOST_SIGNAL (the
 * host thread may already have released the call there). It may block (the
 * thread waits there) but must not call back into the runtime on that thread. */
typedef void (*synchro_seam_fn)(synchro_seam_t seam, const synchro_call_t *call, void *data);

/* Installs (fn non-NULL) or removes the hook of one seam, for every synchronizer.
 * Thread-safe: yes; a thread already inside the old hook finishes it. */
SYNCHRO_EXTERN void synchro_test_seam_set(synchro_seam_t seam, synchro_seam_fn fn, void *data);

/* The seam's name ("submit", "dequeue", ...), or "?". Thread-safe: yes. */
SYNCHRO_EXTERN const char *synchro_test_seam_name(synchro_seam_t seam);

/* The operation of a call seen at a seam (to filter on), or NULL. Thread-safe: yes. */
SYNCHRO_EXTERN const synchro_op_t *synchro_test_call_op(const synchro_call_t *call);

#ifdef __cplusplus
}
#endif
#endif /* SYNCHRO_TESTING_H */
