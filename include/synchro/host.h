/* synchro/host.h - delivering completions on the caller's own event loop (_aio).
 *
 * A host is a place where callbacks of finished calls run: inside a host libuv loop,
 * or on whatever thread calls synchro_host_dispatch() for a host watched through its
 * file descriptor (epoll, poll(), GLib, libevent, ...). Guarantees:
 *  - every callback registered with synchro_future_then() runs exactly once, on the
 *    host's thread, and never inside the function that registered it;
 *  - completions are batched: a burst of them wakes the host once;
 *  - after synchro_host_free() no callback runs; pending calls are cancelled and their
 *    results released.
 * A host is created, dispatched and freed on one thread (its "host thread"); only
 * synchro_future_then() may be called from other threads. */
#ifndef SYNCHRO_HOST_H
#define SYNCHRO_HOST_H

#include <uv.h>

#include "call.h"
#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Runs on the host thread once the future is resolved. `status` is the outcome
 * (synchro_future_status). The callback may move the result or error out of `f`
 * (synchro_future_result / synchro_future_take_error); the future is freed right after
 * the callback returns, so it must not be kept or freed by the callback. */
typedef void (*synchro_host_cb)(synchro_future_t *f, int status, void *data);

/* Creates a host bound to `loop`; callbacks run inside that loop. Call it on the
 * thread that runs `loop`. The host's handle does not keep `loop` alive while nothing
 * is pending. Returns 0, SYNCHRO_EINVAL, SYNCHRO_ENOMEM, or a libuv error.
 * Thread-safe: host loop thread only. */
SYNCHRO_EXTERN int synchro_host_new_uv(synchro_host_t **out, uv_loop_t *loop);

/* Creates a host for any fd-based loop: watch synchro_host_fd() for readability and
 * call synchro_host_dispatch() when it is readable. The calling thread becomes the host
 * thread. Returns 0, SYNCHRO_EINVAL, SYNCHRO_ENOMEM, or a negated errno.
 * Thread-safe: yes (the caller becomes the host thread). */
SYNCHRO_EXTERN int synchro_host_new_fd(synchro_host_t **out);

/* The host's fd (an eventfd: non-blocking, close-on-exec): readable while completions
 * are pending; level- and edge-triggered watching both work. Owned by the host; do not
 * close or read it. -1 for a libuv host or NULL. Thread-safe: yes. */
SYNCHRO_EXTERN int synchro_host_fd(const synchro_host_t *h);

/* Runs up to `max` pending callbacks (0: all pending now) and returns how many ran, or
 * SYNCHRO_EINVAL / SYNCHRO_EPERM (not the host thread). When it returns with callbacks
 * left, the fd stays (or becomes again) readable, so an edge-triggered host is woken
 * again. Thread-safe: host thread only. */
SYNCHRO_EXTERN int synchro_host_dispatch(synchro_host_t *h, size_t max);

/* Attaches `cb` to `f`: when `f` resolves, `cb(f, status, data)` runs on `h`'s thread,
 * then `f` is freed. Takes ownership of `f` on success; on failure `f` stays the
 * caller's and `cb` never runs. Returns 0, SYNCHRO_EINVAL (NULL, or `f` already attached
 * to a queue or host), SYNCHRO_ECLOSED (the host is being freed: from inside one of its
 * callbacks, or concurrently by its thread), SYNCHRO_ENOMEM (the call's side block for
 * the host's list: one per attached call, pooled like call records, so only while the
 * pool grows). Calling it after synchro_host_free()
 * returned is a use after free: threads that attach must be done before the host's
 * thread frees it. Thread-safe: yes. */
SYNCHRO_EXTERN int synchro_future_then(synchro_future_t *f, synchro_host_t *h, synchro_host_cb cb,
                                       void *data);

/* A function pointer of any type, stored and returned untouched (cast it back). */
typedef void (*synchro_fn)(void);

/* As synchro_future_then(), storing one more value with the callback: a function
 * pointer, typically the caller's own typed callback that `cb` adapts (the generated
 * _aio functions do this). `cb` reads it back with synchro_future_then_fn(). Nothing is
 * allocated outside the record pools, so nothing leaks when the host is freed before
 * the callback could run.
 * Returns as synchro_future_then(). Thread-safe: yes. */
SYNCHRO_EXTERN int synchro_future_then_typed(synchro_future_t *f, synchro_host_t *h,
                                             synchro_host_cb cb, synchro_fn fn, void *data);

/* Submits a call as synchro_submit() and attaches `cb` to it as synchro_future_then(),
 * in one step: on success the call belongs to `h` from the start, `cb(f, status,
 * data)` runs once on `h`'s thread and `f` is freed after it; the caller never holds
 * the future. Cheaper than the two calls on the host's own thread (no attach race to
 * settle). On failure nothing was submitted and `cb` never runs. Returns 0, the codes
 * of synchro_submit() (SYNCHRO_EINVAL also for a NULL `h` or `cb`, or a stream op), or
 * those of synchro_future_then(). Thread-safe: yes. */
SYNCHRO_EXTERN int synchro_submit_then(synchro_t *s, const synchro_op_t *op, const void *args,
                                       int64_t timeout_ms, synchro_host_t *h, synchro_host_cb cb,
                                       void *data);

/* The function pointer given to synchro_future_then_typed(), or NULL. Meant for the
 * host callback. Thread-safe: yes. */
SYNCHRO_EXTERN synchro_fn synchro_future_then_fn(const synchro_future_t *f);

/* Frees the host: no callback runs after this returns (also when called from inside
 * one of its own callbacks, where the rest of the batch is dropped and the free
 * completes when that callback returns). Pending calls are cancelled and their futures
 * released when they resolve. NULL is a no-op. For a libuv host, run the host loop
 * once more (uv_run) so libuv can finish closing its handle.
 * Thread-safe: host thread only. */
SYNCHRO_EXTERN void synchro_host_free(synchro_host_t *h);

#ifdef __cplusplus
}
#endif
#endif /* SYNCHRO_HOST_H */
