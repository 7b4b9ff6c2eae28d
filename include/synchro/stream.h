/* synchro/stream.h - streams: an async generator on the loop, consumed by the caller.
 *
 * The implementation (a stream op: item_size > 0 in its descriptor) runs on the loop
 * thread and yields items into a bounded buffer; the caller takes them blocking
 * (synchro_stream_next) or through host callbacks (synchro_stream_next_then).
 *  - Backpressure: when the buffer is full, synchro_call_yield() refuses the item with
 *    SYNCHRO_EBUSY; the implementation pauses and is resumed through its demand hook
 *    once the consumer has taken items. Nothing is unbounded, nothing is dropped.
 *  - Batching: items cross the thread boundary through the shared buffer; a sleeping
 *    consumer is woken once and then takes everything buffered, without a round trip
 *    per item.
 *  - The implementation ends the stream with synchro_call_return(call, NULL) or fails
 *    it with synchro_call_fail(); the consumer sees every item yielded before, then
 *    SYNCHRO_EEND (end of stream, not an error) or the error.
 *  - A consumer that stops early (synchro_stream_free, from any thread) cancels the
 *    producer: its cancel hook runs on the loop thread, and buffered items are released
 *    with the descriptor's item_free.
 *  - Deadlines and synchronizer shutdown end a stream like any other call. */
#ifndef SYNCHRO_STREAM_H
#define SYNCHRO_STREAM_H

#include "call.h"
#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct synchro_stream_s synchro_stream_t;

#define SYNCHRO_STREAM_CAPACITY_DEFAULT 1024
#define SYNCHRO_STREAM_CAPACITY_MAX (1u << 24)

/* Runs on the loop thread when a producer that got SYNCHRO_EBUSY may yield again. */
typedef void (*synchro_demand_fn)(synchro_call_t *call, void *data);

/* Runs on the host thread with the next item (`status` 0; the callback owns *item and
 * must copy it out: `item` points into the stream and is valid only during the call),
 * or with SYNCHRO_EEND / the producer's error and `item` NULL. It does not run once
 * the stream was freed. The callback may
 * call synchro_stream_next_then() again, or synchro_stream_free(). */
typedef void (*synchro_stream_cb)(synchro_stream_t *st, int status, void *item, void *data);

/* ---- consumer side ------------------------------------------------------------- */

/* Starts a stream op. `args` and `timeout_ms` as synchro_submit(); the deadline covers
 * the whole stream. On success *out is a new stream the caller frees with
 * synchro_stream_free(). Returns 0, SYNCHRO_EINVAL (NULL, or `op` is not a stream op),
 * or a submission error as synchro_submit(). Thread-safe: yes. */
SYNCHRO_EXTERN int synchro_stream_open(synchro_t *s, const synchro_op_t *op, const void *args,
                                       int64_t timeout_ms, synchro_stream_t **out);

/* Takes the next item into `item` (op->item_size bytes; the caller owns it), waiting up
 * to `timeout_ms`. Returns 0; SYNCHRO_EEND at the end; the producer's error code after
 * the last item (see synchro_stream_error); SYNCHRO_EPENDING if the wait timed out;
 * SYNCHRO_EDEADLK on the loop thread; SYNCHRO_EBUSY while a host callback is armed;
 * SYNCHRO_EINVAL. After the end or an error, it keeps returning the same code.
 * Thread-safe: one consumer at a time. */
SYNCHRO_EXTERN int synchro_stream_next(synchro_stream_t *st, void *item, int64_t timeout_ms);

/* Arms a one-shot callback: when the next item (or the end, or an error) is available,
 * cb runs on `h`'s thread, never inside this function. Re-arm from the callback to keep
 * consuming; items already buffered are delivered in the same host dispatch.
 * Returns 0, SYNCHRO_EINVAL, SYNCHRO_EBUSY (already armed), SYNCHRO_ECLOSED (host freed),
 * SYNCHRO_ENOMEM (the first time only: as synchro_future_then()).
 * Thread-safe: one consumer at a time. */
SYNCHRO_EXTERN int synchro_stream_next_then(synchro_stream_t *st, synchro_host_t *h,
                                            synchro_stream_cb cb, void *data);

/* The producer's error once synchro_stream_next returned it (borrowed, valid until the
 * stream is freed); NULL otherwise. Thread-safe: yes. */
SYNCHRO_EXTERN const synchro_error_t *synchro_stream_error(const synchro_stream_t *st);

/* Stops consuming and frees the handle: cancels the producer if it is still running
 * (its hook runs on the loop thread) and releases buffered items. Never blocks. NULL is
 * a no-op. Must not be called while a host callback is armed for another thread's host,
 * except from that host's callback. Thread-safe: once, from any thread. */
SYNCHRO_EXTERN void synchro_stream_free(synchro_stream_t *st);

/* Like synchro_stream_free, but waits up to `timeout_ms` for the producer's cleanup:
 * when it returns 0 the producer has finished its call (after its cancel hook ran, if
 * it was still running), so what it held is released. The handle is freed in every
 * case but SYNCHRO_EINVAL and SYNCHRO_EDEADLK. A producer without a cancel hook is
 * resolved at once and its late items discarded, so there is nothing to wait for.
 * Returns 0, SYNCHRO_ETIMEDOUT (freed; the cleanup goes on, on the loop),
 * SYNCHRO_EINVAL (NULL, bad timeout), SYNCHRO_EDEADLK (a wait on the stream's own
 * loop thread: nothing done). Thread-safe: once, from any thread, with the rules of
 * synchro_stream_free. */
SYNCHRO_EXTERN int synchro_stream_close(synchro_stream_t *st, int64_t timeout_ms);

/* Sends a value into the running producer (a generator's send): `size` bytes at
 * `value` are copied and handed, in sending order, to the hook the producer registered
 * with synchro_call_on_send, on the loop thread. Values sent before the producer
 * registers wait for it; values left when it ends are dropped. Returns 0 (queued),
 * SYNCHRO_ECLOSED (the stream has ended: nobody would see it), SYNCHRO_ENOMEM,
 * SYNCHRO_EINVAL. Thread-safe: the consumer's thread, like next. */
SYNCHRO_EXTERN int synchro_stream_send(synchro_stream_t *st, const void *value, size_t size);

/* Throws an error into the running producer (a generator's throw): its send hook gets
 * `code` (< 0) and no value, and may recover (yield again) or end the stream with it
 * (synchro_call_fail). Returns as synchro_stream_send, and SYNCHRO_EINVAL for a code
 * >= 0. Thread-safe: the consumer's thread, like next. */
SYNCHRO_EXTERN int synchro_stream_throw(synchro_stream_t *st, int code);

/* ---- producer side (loop thread only) ------------------------------------------- */

/* Offers one item (op->item_size bytes copied from `item`). Returns 0 when accepted
 * (the stream owns it now); SYNCHRO_EBUSY when the buffer is full (not accepted: pause,
 * the demand hook tells when to go on); SYNCHRO_ECLOSED when the consumer is gone or
 * the call was cancelled (not accepted: stop producing); SYNCHRO_EALREADY after the
 * stream was ended; SYNCHRO_EINVAL (not a stream call); SYNCHRO_EPERM (off the loop).
 * Loop thread only. */
SYNCHRO_EXTERN int synchro_call_yield(synchro_call_t *call, const void *item);

/* What a consumer sent: a value (`code` 0, `value` borrowed for the call) or a thrown
 * error (`code` < 0, `value` NULL). Runs on the loop thread, never inside
 * synchro_call_yield or synchro_call_on_send. */
typedef void (*synchro_send_fn)(synchro_call_t *call, const void *value, int code, void *data);

/* Registers (or replaces) the producer's send hook; values already sent are delivered
 * next. Returns 0, SYNCHRO_EINVAL, SYNCHRO_EPERM (off the loop thread, not a stream
 * call). Thread-safe: loop thread only. */
SYNCHRO_EXTERN int synchro_call_on_send(synchro_call_t *call, synchro_send_fn fn, void *data);

/* Free slots in the buffer now (0 when full), or a negative code as above.
 * Loop thread only. */
SYNCHRO_EXTERN int synchro_call_room(const synchro_call_t *call);

/* Registers the demand hook (replacing an earlier one). Returns 0, SYNCHRO_EINVAL,
 * SYNCHRO_EPERM. Loop thread only. */
SYNCHRO_EXTERN int synchro_call_on_demand(synchro_call_t *call, synchro_demand_fn fn, void *data);

#ifdef __cplusplus
}
#endif
#endif /* SYNCHRO_STREAM_H */
