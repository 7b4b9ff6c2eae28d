/* synchro/object.h - objects: a wrapped class whose state lives on the loop thread.
 *
 * A class (synchro_class_t, usually a static const object emitted by the generator)
 * says how to build the state, how to open and close it (async ops, the context-manager
 * pair) and how to destroy it. Callers hold an opaque, reference-counted handle on any
 * thread; method calls are ordinary calls (blocking, futures, host callbacks, streams)
 * whose implementation gets the state with synchro_call_object().
 *
 * Lifecycle, all on the loop thread:
 *  - construction is synchronous and does no I/O (state needing I/O is set up lazily or
 *    by open); the caller blocks only for the constructor itself;
 *  - open runs at most once; close runs exactly once if open was attempted: when the
 *    user closes, when open failed (to release what it set up), or when the last
 *    handle reference is dropped while the object is open. A class without an open op
 *    is open from construction (opening it returns 0 and runs nothing), so its close
 *    runs once too. A second close is harmless and returns SYNCHRO_EALREADY;
 *  - dropping the last reference never blocks: in-flight method calls are cancelled
 *    (their hooks run), close runs if needed, then the destructor, then the handle is
 *    gone. Method calls after close fail with SYNCHRO_ECLOSED.
 * Translation: a handle passed as an argument gives the implementation the state
 * (synchro_object_state); state returned by an implementation is wrapped with
 * synchro_object_wrap(), and the same state always maps to the same handle. */
#ifndef SYNCHRO_OBJECT_H
#define SYNCHRO_OBJECT_H

#include "call.h"
#include "common.h"
#include "stream.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct synchro_object_s synchro_object_t;

typedef struct synchro_class_s {
  const char *name;
  /* Builds the state from the constructor's argument block, on the loop thread,
   * synchronously (no I/O). Returns 0 and sets *state, or a negative code. */
  int (*construct)(synchro_t *s, const void *args, void **state);
  /* Releases the state on the loop thread, once, after close (if any) finished. */
  void (*destroy)(void *state);
  /* Async lifecycle ops (NULL: nothing to do). Their implementations, like methods',
   * get the state through synchro_call_object(). */
  const synchro_op_t *open;
  const synchro_op_t *close;
  /* SYNCHRO_CLASS_* flags; 0 for the defaults. */
  uint32_t flags;
} synchro_class_t;

/* Serial objects: method calls on one object (stream methods included) run one at a
 * time, in the order the loop takes them; the next starts when the previous one's
 * implementation has finished its call. For implementations that assume one caller at
 * a time. A method waiting for its turn is cancellable and its deadline runs; once
 * cancelled it never starts. A stream method holds the object until its producer ends.
 * Open and close are not serialized with methods (close still waits for open). Without
 * the flag, methods of one object may overlap whenever an implementation waits. */
#define SYNCHRO_CLASS_SERIAL 0x1u

/* Creates an object: runs cls->construct on the loop thread (inline when called there)
 * and returns a handle with one reference. On failure *err (if not NULL) receives an
 * error the caller frees. Returns 0, SYNCHRO_EINVAL, SYNCHRO_ENOMEM, the constructor's
 * code, or a submission error as synchro_submit(). Thread-safe: yes. */
SYNCHRO_EXTERN int synchro_object_new(synchro_t *s, const synchro_class_t *cls, const void *args,
                                      synchro_object_t **out, synchro_error_t **err);

/* Adds a reference (for another owner, e.g. an argument block). Returns `obj`.
 * Thread-safe: yes. */
SYNCHRO_EXTERN synchro_object_t *synchro_object_ref(synchro_object_t *obj);

/* Drops a reference. The last one starts the teardown described above and returns at
 * once, from any thread (the loop thread included). NULL is a no-op.
 * Thread-safe: yes. */
SYNCHRO_EXTERN void synchro_object_free(synchro_object_t *obj);

/* Opens: submits cls->open with `args` (its argument block). As synchro_submit(), plus
 * SYNCHRO_EFREED for a dropped handle. The outcome is the open op's, SYNCHRO_EALREADY
 * if open was already attempted, or SYNCHRO_ECLOSED after close. Thread-safe: yes. */
SYNCHRO_EXTERN int synchro_object_open_future(synchro_object_t *obj, const void *args,
                                              int64_t timeout_ms, synchro_future_t **out);
/* Closes: submits cls->close. The outcome is the close op's (0 when there was nothing
 * to close), or SYNCHRO_EALREADY if close already ran or is running. Thread-safe: yes. */
SYNCHRO_EXTERN int synchro_object_close_future(synchro_object_t *obj, int64_t timeout_ms,
                                               synchro_future_t **out);
/* Blocking forms of the two above: submit and wait, as synchro_call(); on failure *err
 * (if not NULL) receives the error. Thread-safe: yes, except on the loop thread
 * (SYNCHRO_EDEADLK). */
SYNCHRO_EXTERN int synchro_object_open(synchro_object_t *obj, const void *args, int64_t timeout_ms,
                                       synchro_error_t **err);
SYNCHRO_EXTERN int synchro_object_close(synchro_object_t *obj, int64_t timeout_ms,
                                        synchro_error_t **err);

/* Method calls: like synchro_submit / synchro_call / synchro_stream_open, with the
 * object's state available to the implementation. They fail with SYNCHRO_ECLOSED once
 * the object is closed or being torn down. Thread-safe: yes. */
SYNCHRO_EXTERN int synchro_object_submit(synchro_object_t *obj, const synchro_op_t *op,
                                         const void *args, int64_t timeout_ms,
                                         synchro_future_t **out);
SYNCHRO_EXTERN int synchro_object_call(synchro_object_t *obj, const synchro_op_t *op,
                                       const void *args, int64_t timeout_ms, void *result,
                                       synchro_error_t **err);
SYNCHRO_EXTERN int synchro_object_stream_open(synchro_object_t *obj, const synchro_op_t *op,
                                              const void *args, int64_t timeout_ms,
                                              synchro_stream_t **out);

/* The state of the object a call runs on (method, open or close), else NULL.
 * Loop thread only. */
SYNCHRO_EXTERN void *synchro_call_object(const synchro_call_t *call);

/* The state behind a handle (translation in), or NULL for a bad handle or off the
 * handle's loop thread. Loop thread only. */
SYNCHRO_EXTERN void *synchro_object_state(const synchro_object_t *obj);

/* The handle for `state` (translation out): the existing one if `state` already has a
 * handle, with one more reference, else a new handle with one reference (its object
 * counts as open, so close runs when it is closed or its last reference goes).
 * Returns 0, SYNCHRO_EINVAL, SYNCHRO_ENOMEM, SYNCHRO_EPERM (off the loop thread).
 * Loop thread only. */
SYNCHRO_EXTERN int synchro_object_wrap(synchro_t *s, const synchro_class_t *cls, void *state,
                                       synchro_object_t **out);

#ifdef __cplusplus
}
#endif
#endif /* SYNCHRO_OBJECT_H */
