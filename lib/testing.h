/* lib/testing.h - test seams: named points at every cross-thread handoff where a test
 * can pause or delay the thread that reaches them, to force an interleaving instead of
 * hoping for it. Compiled in only when the library is built with SYNCHRO_TEST_SEAMS
 * (the test build: build/libsynchro-test.a, which every tests/check_*.c links);
 * production builds have no seams and export none of this. Never installed. */
#ifndef SYNCHRO_TESTING_H
#define SYNCHRO_TESTING_H

#include <stdbool.h>
#include <stddef.h>

#include "synchro.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum synchro_seam_e {
  SYNCHRO_SEAM_SUBMIT,         /* caller: a prepared call, just before it is pushed */
  SYNCHRO_SEAM_DEQUEUE,        /* loop: a call just taken off the queue, not yet started */
  SYNCHRO_SEAM_START,          /* loop: a started call, just before its implementation */
  SYNCHRO_SEAM_COMPLETE,       /* loop: the outcome is written, not yet published */
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

/* Faults a test can inject where the runtime cannot provoke them from outside: the
 * start of a loop (SYNCHRO_ESTART, and the retry on the next call). */
typedef enum synchro_fault_e {
  SYNCHRO_FAULT_LOOP_INIT,     /* uv_loop_init fails */
  SYNCHRO_FAULT_POLL_START,    /* the loop's wake poll cannot start (handles to undo) */
  SYNCHRO_FAULT_THREAD_CREATE, /* pthread_create fails (a ready loop to undo) */
  SYNCHRO_FAULT_COUNT
} synchro_fault_t;

/* The next `count` times the runtime reaches `fault`, it fails there (0 clears).
 * Thread-safe: yes. */
SYNCHRO_EXTERN void synchro_test_fail_next(synchro_fault_t fault, int count);

/* What the runtime holds right now, process-wide: for baseline checks (create, use,
 * close and free, then compare). */
typedef struct synchro_test_live_s {
  int64_t threads;     /* loop threads running */
  int64_t fds;         /* eventfds opened by the runtime (loops, hosts, queues) */
  int64_t loops;       /* libuv loops initialised and not closed (a loop that could not
                        * be closed because handles were left on it stays counted) */
  int64_t handles;     /* the runtime's own uv handles (per loop, per uv host) */
  int64_t records;     /* call records and side blocks in use (not back in a pool) */
  int64_t allocations; /* blocks from the runtime's allocator not freed (records aside) */
} synchro_test_live_t;

/* Copies the counters into *out (NULL: no-op). Each is read atomically; the set is not
 * one snapshot. Thread-safe: yes. */
SYNCHRO_EXTERN void synchro_test_live(synchro_test_live_t *out);

/* The number of calls `s`'s loop still holds (what synchro_dump() would list), asked
 * of the loop thread within `timeout_ms`. 0 when the loop is not running. Returns
 * the count, SYNCHRO_EINVAL, SYNCHRO_ETIMEDOUT (the loop did not answer) or
 * SYNCHRO_ENOMEM. Thread-safe: yes (like synchro_dump()). */
SYNCHRO_EXTERN int synchro_test_pending(synchro_t *s, int64_t timeout_ms);

/* Whether an allocation of `bytes` is a slab of one of the runtime's pools (call records
 * and their side blocks): slabs are never freed, so an allocation-counting test counts
 * them apart. Thread-safe: yes. */
SYNCHRO_EXTERN bool synchro_test_pool_slab(size_t bytes);

/* The calling thread's number, as a dump's `origin` and `caller_thread` show it.
 * Thread-safe: yes. */
SYNCHRO_EXTERN uint32_t synchro_test_thread_number(void);

#ifdef __cplusplus
}
#endif
#endif /* SYNCHRO_TESTING_H */
