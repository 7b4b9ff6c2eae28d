/* synchro/context.h - ambient context that follows a call, and cancel tokens.
 *
 * Every thread has a current context: an immutable, refcounted snapshot of key/value
 * pairs plus an optional cancel token. synchro_ctx_set() on a thread replaces the
 * thread's snapshot with a new one (copy-on-write); snapshots already taken never
 * change. Every call submitted from the thread (blocking, future, _aio, stream, object
 * method) takes a reference to the snapshot current at submission; it is released when
 * the call's record is released.
 *
 * While an implementation starts (and while its cancel hook runs) the call's snapshot is
 * the loop thread's current context: calls it submits inherit it, and what it sets
 * stays on the loop thread until its start returns (nothing leaks back to the caller:
 * copy-on-call; there is no write-back mode). Host completion callbacks
 * (synchro_future_then) run with the call's snapshot current. Later callbacks of an
 * implementation (its libuv callbacks) read the call's snapshot with
 * synchro_call_ctx_get().
 *
 * Values: strings are copied into the snapshot (owned by it); pointers
 * (synchro_ctx_set_ptr) are borrowed: the program keeps the pointee alive while any call
 * submitted under it may run. A key holds one value; a string and a pointer under one
 * key replace each other.
 *
 * Cancel tokens (a cancel scope): a call submitted while a token is in the thread's
 * context is cancelled when the token fires, by synchro_token_cancel(), which is
 * async-signal-safe. See docs/context.md. */
#ifndef SYNCHRO_CONTEXT_H
#define SYNCHRO_CONTEXT_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct synchro_ctx_s synchro_ctx_t;
typedef struct synchro_token_s synchro_token_t;

/* How many synchronizers a firing token can wake. A synchronizer takes a slot at its
 * first call under a token and gives it back in synchro_free(). Past the limit a call
 * under a fired token is still refused when the loop takes it off the queue, but a
 * running call is not cancelled by the token (synchro_future_cancel() still works). */
#define SYNCHRO_TOKEN_MAX_SYNCHRONIZERS 64

/* ---- the calling thread's context ------------------------------------------------- */

/* Sets `key` to a copy of `value` in the calling thread's context (a new snapshot);
 * `value` NULL removes the key. Both strings are copied. Returns 0, SYNCHRO_EINVAL
 * (key NULL) or SYNCHRO_ENOMEM (the context is unchanged). Thread-safe: yes (it acts
 * on the calling thread's context only). */
SYNCHRO_EXTERN int synchro_ctx_set(const char *key, const char *value);

/* Sets `key` to the borrowed pointer `ptr` (NULL removes the key): the snapshot does
 * not own it. Returns as synchro_ctx_set(). Thread-safe: yes (calling thread's context). */
SYNCHRO_EXTERN int synchro_ctx_set_ptr(const char *key, void *ptr);

/* The string (or pointer) under `key` in the calling thread's context, NULL if absent
 * or of the other kind. Borrowed: valid until the thread's context next changes.
 * Thread-safe: yes (calling thread's context). */
SYNCHRO_EXTERN const char *synchro_ctx_get(const char *key);
SYNCHRO_EXTERN void *synchro_ctx_get_ptr(const char *key);

/* Empties the calling thread's context (releasing its snapshot). Thread-safe: yes
 * (calling thread's context). */
SYNCHRO_EXTERN void synchro_ctx_clear(void);

/* A new reference to the calling thread's snapshot (NULL when empty), to look into or
 * to hand to another thread; release it with synchro_ctx_free(). Thread-safe: yes. */
SYNCHRO_EXTERN synchro_ctx_t *synchro_ctx_capture(void);

/* Makes `ctx` (NULL: empty) the calling thread's context, taking a reference of its
 * own, and returns the previous snapshot: the caller owns that reference (put it back
 * with another swap, then synchro_ctx_free() it). Thread-safe: yes (calling thread). */
SYNCHRO_EXTERN synchro_ctx_t *synchro_ctx_swap(synchro_ctx_t *ctx);

/* Releases a reference from synchro_ctx_capture() or synchro_ctx_swap(). NULL is a no-op.
 * Thread-safe: yes. */
SYNCHRO_EXTERN void synchro_ctx_free(synchro_ctx_t *ctx);

/* The string (or pointer) under `key` in a snapshot (NULL allowed). Borrowed: valid
 * while the caller holds the snapshot. Thread-safe: yes (snapshots are immutable). */
SYNCHRO_EXTERN const char *synchro_ctx_lookup(const synchro_ctx_t *ctx, const char *key);
SYNCHRO_EXTERN void *synchro_ctx_lookup_ptr(const synchro_ctx_t *ctx, const char *key);

/* ---- the implementation's view ------------------------------------------------------ */

/* The string (or pointer) under `key` in the context the call was submitted with, NULL
 * if absent. Borrowed: valid until the call is finished. Loop thread only (NULL from
 * any other thread). */
SYNCHRO_EXTERN const char *synchro_call_ctx_get(const synchro_call_t *call, const char *key);
SYNCHRO_EXTERN void *synchro_call_ctx_get_ptr(const synchro_call_t *call, const char *key);

/* 1 if the call's context carries a cancel token that has fired, else 0. Loop thread
 * only (0 from any other thread). */
SYNCHRO_EXTERN int synchro_call_ctx_cancelled(const synchro_call_t *call);

/* ---- cancel tokens -------------------------------------------------------------------- */

/* Creates a token (not fired). The caller owns it: synchro_token_free(). Returns 0,
 * SYNCHRO_EINVAL or SYNCHRO_ENOMEM. Thread-safe: yes. */
SYNCHRO_EXTERN int synchro_token_new(synchro_token_t **out);

/* Puts `tok` into the calling thread's context (a new snapshot, which holds a reference
 * to the token); NULL removes the token. Calls submitted from now on are in its scope.
 * Returns 0 or SYNCHRO_ENOMEM. Thread-safe: yes (calling thread's context). */
SYNCHRO_EXTERN int synchro_ctx_set_token(synchro_token_t *tok);

/* The token of the calling thread's context, or NULL. Borrowed. Thread-safe: yes. */
SYNCHRO_EXTERN synchro_token_t *synchro_ctx_token(void);

/* Fires the token, once (later calls do nothing): every call submitted under it is
 * cancelled: a queued one when its loop takes it, a running one through its cancel hook
 * (its waiter gets SYNCHRO_ECANCELED after the hook's cleanup finished the call).
 * Async-signal-safe: it uses only lock-free atomics and write(2) to eventfds, never
 * allocates or locks, and preserves errno. The caller keeps `tok` alive while this may
 * run (e.g. until the signal handler is removed). NULL is a no-op. Thread-safe: yes. */
SYNCHRO_EXTERN void synchro_token_cancel(synchro_token_t *tok);

/* 1 if the token has fired, else 0 (also for NULL). Async-signal-safe. Thread-safe: yes. */
SYNCHRO_EXTERN int synchro_token_cancelled(const synchro_token_t *tok);

/* Releases the caller's reference; snapshots holding the token keep it alive. NULL is a
 * no-op. Thread-safe: yes. */
SYNCHRO_EXTERN void synchro_token_free(synchro_token_t *tok);

#ifdef __cplusplus
}
#endif

#endif /* SYNCHRO_CONTEXT_H */
