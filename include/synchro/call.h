/* synchro/call.h - the implementation side of a call, and the op descriptor.
 *
 * An implementation is a function that runs on the loop thread. It reads its
 * marshalled arguments, starts libuv work, and later finishes the call exactly once
 * with synchro_call_return() or synchro_call_fail(). It may register a cancel hook that
 * stops its work when the caller cancels, a deadline passes, or the synchronizer
 * closes; after the hook the implementation still finishes the call (with any outcome:
 * the caller sees the cancellation reason and a result is released for it).
 *
 * Every function in this header except synchro_call_name() is for the loop thread
 * only; from any other thread it fails with SYNCHRO_EPERM (or returns NULL) and
 * changes nothing. */
#ifndef SYNCHRO_CALL_H
#define SYNCHRO_CALL_H

#include <stdarg.h>
#include <uv.h>

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Largest result, in bytes, a call carries inline (two machine words: a pointer and a
 * length, or any scalar). Bigger results are returned through a pointer. */
#define SYNCHRO_RESULT_MAX 16
/* Largest argument block a descriptor may declare. */
#define SYNCHRO_ARGS_MAX (1u << 20)

typedef void (*synchro_impl_fn)(synchro_call_t *call);
/* Runs on the loop thread, once, when the call is cancelled; `reason` is
 * SYNCHRO_ECANCELED, SYNCHRO_ETIMEDOUT or SYNCHRO_ESHUTDOWN. */
typedef void (*synchro_cancel_fn)(synchro_call_t *call, int reason, void *data);
/* Deep-copies an argument block from `src` into `dst` (args_size bytes, uninitialised).
 * Returns 0 or SYNCHRO_ENOMEM; on failure it must leave nothing to free in `dst`. */
typedef int (*synchro_copy_fn)(void *dst, const void *src);
/* Releases what a copied argument block or a result owns (not the block itself). */
typedef void (*synchro_release_fn)(void *value);

/* An operation descriptor: how to marshal one operation's arguments and result, and
 * which function implements it. Meant to be a static const object (the generator
 * emits one per operation); it must outlive every call made with it. */
typedef struct synchro_op_s {
  const char *name;               /* recorded as the origin of the call's errors */
  synchro_impl_fn impl;           /* runs on the loop thread */
  size_t args_size;               /* bytes of the argument block, <= SYNCHRO_ARGS_MAX */
  synchro_copy_fn args_copy;      /* NULL: the block is copied with memcpy */
  synchro_release_fn args_free;   /* NULL: the block owns nothing */
  size_t result_size;             /* bytes of the result, <= SYNCHRO_RESULT_MAX */
  synchro_release_fn result_free; /* NULL: the result owns nothing */
  int64_t timeout_ms;             /* 0: synchronizer default; SYNCHRO_TIMEOUT_INFINITE: none */
  /* Streams only (see stream.h): bytes per item (> 0 makes this a stream op), how to
   * release an item the consumer never took, and the buffer capacity in items
   * (0: SYNCHRO_STREAM_CAPACITY_DEFAULT). */
  size_t item_size;
  synchro_release_fn item_free;
  uint32_t capacity;
  /* SYNCHRO_OP_* flags; 0 for the defaults. */
  uint32_t flags;
} synchro_op_t;

/* Don't wait for cleanup: a call cancelled after it started (cancel, deadline,
 * shutdown) resolves as soon as its cancel hook returns, instead of when the
 * implementation finishes. The implementation's cleanup still runs on the loop, its
 * late completion is discarded, and synchro_close() still waits for it (within the
 * close bound). For calls whose caller must not wait on a slow cleanup (a socket close
 * handshake); the default waits, so that when a cancelled call returns, its cleanup
 * is done. */
#define SYNCHRO_OP_DETACH_CLEANUP 0x1u

/* The call's copied argument block (borrowed; valid until the call is finished and the
 * caller released it; do not keep it past completion). Loop thread only. */
SYNCHRO_EXTERN const void *synchro_call_args(const synchro_call_t *call);

/* The operation's name (borrowed), or NULL for a bad call. Thread-safe: yes. */
SYNCHRO_EXTERN const char *synchro_call_name(const synchro_call_t *call);

/* The synchronizer and loop the call runs on. Loop thread only; NULL elsewhere. */
SYNCHRO_EXTERN synchro_t *synchro_call_synchronizer(const synchro_call_t *call);
SYNCHRO_EXTERN uv_loop_t *synchro_call_loop(const synchro_call_t *call);

/* One pointer of implementation state per call (e.g. the call's uv_timer_t holder).
 * The runtime never touches it. Loop thread only. */
SYNCHRO_EXTERN void synchro_call_set_data(synchro_call_t *call, void *data);
SYNCHRO_EXTERN void *synchro_call_data(const synchro_call_t *call);

/* Registers the cancel hook (replacing an earlier one). The hook runs at most once, on
 * the loop thread, from the loop (never inside a synchro_call_* function).
 * Returns 0, SYNCHRO_EINVAL, SYNCHRO_EPERM, or SYNCHRO_EALREADY when the call is already
 * finished or its cancellation was already handled: stop the work and finish the call.
 * Without a hook, a cancelled call is resolved at once and the implementation's later
 * completion is discarded (its result released). Loop thread only. */
SYNCHRO_EXTERN int synchro_call_on_cancel(synchro_call_t *call, synchro_cancel_fn fn, void *data);

/* 0 while the call is not cancelled; else SYNCHRO_ECANCELED, SYNCHRO_ETIMEDOUT or
 * SYNCHRO_ESHUTDOWN. Loop thread only (SYNCHRO_EPERM elsewhere). */
SYNCHRO_EXTERN int synchro_call_cancel_reason(const synchro_call_t *call);

/* Finishes the call with a result: result_size bytes are copied from `result` (NULL
 * when result_size is 0) and the caller becomes the owner of what they point to. The
 * runtime always takes ownership: if the call was cancelled meanwhile, or this is a
 * misuse, the result is released with the descriptor's result_free.
 * Returns 0; SYNCHRO_EALREADY if the call was already finished (a second completion:
 * misuse, nothing else happens); SYNCHRO_EINVAL; SYNCHRO_EPERM. Loop thread only. */
SYNCHRO_EXTERN int synchro_call_return(synchro_call_t *call, const void *result);

/* Finishes the call with an error: `code` (negative; a libuv code, a synchro code, or
 * a module's domain code), a printf-style message (NULL: synchro_strerror(code)) and
 * optional JSON details, stolen. The operation's name becomes the error's origin.
 * If the error cannot be allocated the caller still gets `code`.
 * Returns as synchro_call_return(). Loop thread only. */
SYNCHRO_EXTERN int synchro_call_fail(synchro_call_t *call, int code, struct json_t *details,
                                     const char *fmt, ...) SYNCHRO_PRINTF(4, 5);
SYNCHRO_EXTERN int synchro_call_vfail(synchro_call_t *call, int code, struct json_t *details,
                                      const char *fmt, va_list ap);

/* Finishes the call with a prepared error (stolen), e.g. one with a cause chain.
 * Returns as synchro_call_return(). Loop thread only. */
SYNCHRO_EXTERN int synchro_call_fail_error(synchro_call_t *call, synchro_error_t *err);

#ifdef __cplusplus
}
#endif
#endif /* SYNCHRO_CALL_H */
