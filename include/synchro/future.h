/* synchro/future.h - the caller side: submitting calls, blocking calls, futures.
 *
 * A future is the caller's handle on one call. It resolves exactly once, to one
 * outcome: 0 (a result), the implementation's error code, or one of the runtime's
 * SYNCHRO_ECANCELED, SYNCHRO_ETIMEDOUT (the call's deadline), SYNCHRO_ESHUTDOWN,
 * SYNCHRO_EFORKED. A wait that times out returns SYNCHRO_EPENDING and leaves the call
 * running: it is never confused with the call's own deadline or errors.
 *
 * Ownership: the submitter owns the future and frees it once with
 * synchro_future_free(). Freeing a pending future detaches it: the call goes on and its
 * result is released when it arrives. */
#ifndef SYNCHRO_FUTURE_H
#define SYNCHRO_FUTURE_H

#include "call.h"
#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Submits a call of `op` with the argument block `args` (op->args_size bytes, deep-copied
 * before this returns; the caller's memory is never read afterwards). `timeout_ms`:
 * SYNCHRO_TIMEOUT_DEFAULT (the op's, else the synchronizer's), SYNCHRO_TIMEOUT_INFINITE,
 * or a deadline in ms from now; at the deadline the call is cancelled on the loop
 * thread and resolves as SYNCHRO_ETIMEDOUT.
 * Starts the loop thread on first use. On success *out is a new future.
 * Returns 0; SYNCHRO_EINVAL (NULL, or a descriptor with impossible sizes);
 * SYNCHRO_ESHUTDOWN (closed or closing); SYNCHRO_EBUSY (max_inflight reached);
 * SYNCHRO_ENOMEM; SYNCHRO_ESTART (the loop thread could not start; the next call
 * tries again). Thread-safe: yes, also from the loop thread. */
SYNCHRO_EXTERN int synchro_submit(synchro_t *s, const synchro_op_t *op, const void *args,
                                  int64_t timeout_ms, synchro_future_t **out);

/* Submits `n` calls of `op` at once: argument block i is at (const char *)args + i *
 * stride (stride >= op->args_size; args may be NULL when op->args_size is 0). One queue
 * operation and at most one wakeup of the loop for the whole batch, which starts the
 * calls in array order; they share one deadline computed now. On success futures[i]
 * is a new future for call i. All or nothing: on failure no call was submitted.
 * Returns 0 (also for n == 0), or the codes of synchro_submit(). Thread-safe: yes. */
SYNCHRO_EXTERN int synchro_submit_many(synchro_t *s, const synchro_op_t *op, const void *args,
                                       size_t stride, size_t n, int64_t timeout_ms,
                                       synchro_future_t **futures);

/* Submits and waits: the blocking call. On 0, op->result_size bytes of result are moved
 * into `result` (the caller owns them). On failure, if `err` is not NULL, *err receives
 * the error (the caller frees it with synchro_error_free), else it is released.
 * Returns the call's outcome, or a submission error as synchro_submit(), or
 * SYNCHRO_EDEADLK at once when called on `s`'s own loop thread or when, called on
 * another synchronizer's loop thread, it would close a cycle of loops blocked on each
 * other; SYNCHRO_ETIMEDOUT also when the call's deadline passed by 250 ms and `s`'s
 * loop has not started cancelling it (a stuck loop). On a loop or host-loop thread the
 * call is reported to the diagnostics hook (synchro/diag.h).
 * Thread-safe: yes. */
SYNCHRO_EXTERN int synchro_call(synchro_t *s, const synchro_op_t *op, const void *args,
                                int64_t timeout_ms, void *result, synchro_error_t **err);

/* The outcome, or SYNCHRO_EPENDING while unresolved. Never blocks. Using a freed future
 * is refused with SYNCHRO_EFREED as long as its memory was not reused by a new call
 * (records are pooled): a best-effort guard, not a licence. Thread-safe: yes. */
SYNCHRO_EXTERN int synchro_future_status(const synchro_future_t *f);

/* Waits up to `timeout_ms` (0 polls; SYNCHRO_TIMEOUT_INFINITE) for the future to
 * resolve, then returns its outcome; SYNCHRO_EPENDING if the wait timed out (the call
 * keeps running); SYNCHRO_EDEADLK if called on the loop thread that must resolve it;
 * SYNCHRO_EINVAL for NULL. Thread-safe: yes; several threads may wait on one future. */
SYNCHRO_EXTERN int synchro_future_wait(synchro_future_t *f, int64_t timeout_ms);

/* Asks for the call to be cancelled. Returns 0 if the future was still pending (its
 * outcome not yet published): the future will then resolve as SYNCHRO_ECANCELED (or,
 * if a deadline or shutdown cancelled it first, with that reason), never with a
 * result. If the implementation is running and registered a cancel hook, the future
 * resolves after the hook ran and the implementation finished; if it finished before
 * the loop saw the request, the hook does not run, its result is released
 * (result_free) and the outcome is still the cancellation. Returns SYNCHRO_EALREADY if
 * the outcome was already published (the future has resolved with it); SYNCHRO_EINVAL
 * for NULL. Never blocks. Thread-safe: yes. */
SYNCHRO_EXTERN int synchro_future_cancel(synchro_future_t *f);

/* Moves the result of a future resolved with 0 into `out` (op->result_size bytes); the
 * caller owns it from then on. Returns 0; SYNCHRO_EPENDING (unresolved); the outcome
 * code (resolved with an error); SYNCHRO_EALREADY (already moved out); SYNCHRO_EINVAL.
 * Thread-safe: one caller at a time per future. */
SYNCHRO_EXTERN int synchro_future_result(synchro_future_t *f, void *out);

/* The error of a future resolved with a non-zero outcome, borrowed until the future is
 * freed; NULL while pending, on success, or after it was moved out. The runtime's own
 * outcomes use shared static errors. For an implementation's error it is NULL only if
 * memory ran out while the error was recorded: the status still carries its code.
 * Thread-safe: yes. */
SYNCHRO_EXTERN const synchro_error_t *synchro_future_error(const synchro_future_t *f);

/* Moves the error out: *out owned by the caller (free with synchro_error_free).
 * Returns 0, SYNCHRO_EPENDING, SYNCHRO_EALREADY (no error or already moved) or
 * SYNCHRO_EINVAL. Thread-safe: one caller at a time per future. */
SYNCHRO_EXTERN int synchro_future_take_error(synchro_future_t *f, synchro_error_t **out);

/* The operation's name (borrowed; from the descriptor). Thread-safe: yes. */
SYNCHRO_EXTERN const char *synchro_future_name(const synchro_future_t *f);

/* Releases the caller's handle. Pending: detaches (the call goes on; its result is
 * released on arrival). Resolved: releases a result or error not moved out.
 * NULL is a no-op. A future added to a completion queue belongs to the queue until
 * synchro_cq_next() hands it back. Thread-safe: once per future, from any thread. */
SYNCHRO_EXTERN void synchro_future_free(synchro_future_t *f);

/* Waits until every future in `fs` is resolved, waking once for the whole batch.
 * Returns 0; SYNCHRO_EPENDING if `timeout_ms` expired first; SYNCHRO_EDEADLK (loop
 * thread of a pending one); SYNCHRO_EINVAL (NULL array or element).
 * Thread-safe: yes. */
SYNCHRO_EXTERN int synchro_future_wait_all(synchro_future_t *const *fs, size_t n,
                                           int64_t timeout_ms);

/* Waits until at least one future in `fs` is resolved and sets *index to the lowest
 * index of a resolved one. Returns 0, SYNCHRO_EPENDING, SYNCHRO_EDEADLK,
 * SYNCHRO_EINVAL or SYNCHRO_EEMPTY (n == 0). Thread-safe: yes. */
SYNCHRO_EXTERN int synchro_future_wait_any(synchro_future_t *const *fs, size_t n,
                                           int64_t timeout_ms, size_t *index);

#ifdef __cplusplus
}
#endif
#endif /* SYNCHRO_FUTURE_H */
