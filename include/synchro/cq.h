/* synchro/cq.h - a completion queue: futures handed back in the order they finish.
 *
 * For programs that start many calls and want to handle each as soon as it is done.
 * The queue exposes a file descriptor (an eventfd: non-blocking, close-on-exec) that is
 * readable while finished futures wait to be taken, so it can sit in any poll loop.
 * A burst of completions wakes the consumer once. One consumer thread at a time. */
#ifndef SYNCHRO_CQ_H
#define SYNCHRO_CQ_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Creates a queue. Returns 0, SYNCHRO_EINVAL, SYNCHRO_ENOMEM, or a negated errno if the
 * eventfd cannot be made. Thread-safe: yes. */
SYNCHRO_EXTERN int synchro_cq_new(synchro_cq_t **out);

/* Hands a future to the queue; it comes back from synchro_cq_next() once resolved
 * (at once if it already is). The queue owns it until then.
 * Returns 0, SYNCHRO_EINVAL (NULL, or the future already belongs to a queue or host).
 * Thread-safe: yes. */
SYNCHRO_EXTERN int synchro_cq_add(synchro_cq_t *cq, synchro_future_t *f);

/* Takes the next resolved future, waiting up to `timeout_ms` (0 polls,
 * SYNCHRO_TIMEOUT_INFINITE). On 0, *out is owned by the caller again.
 * A synchronizer's loop thread cannot wait for that synchronizer's futures (its loop
 * cannot run meanwhile): when nothing is ready, a wait there with a timeout other than
 * 0 returns SYNCHRO_EDEADLK if the queue was ever given a future of that synchronizer,
 * or futures of more than one synchronizer. Poll with 0, or watch the fd from the loop.
 * Returns 0, SYNCHRO_EPENDING (timed out), SYNCHRO_EEMPTY (no future left in the
 * queue), SYNCHRO_EDEADLK, SYNCHRO_EINVAL. Thread-safe: one consumer at a time. */
SYNCHRO_EXTERN int synchro_cq_next(synchro_cq_t *cq, int64_t timeout_ms, synchro_future_t **out);

/* The queue's file descriptor: readable while a resolved future waits. Owned by the
 * queue; do not close or read it. Thread-safe: yes. */
SYNCHRO_EXTERN int synchro_cq_fd(const synchro_cq_t *cq);

/* How many futures the queue holds (pending or resolved). Thread-safe: yes. */
SYNCHRO_EXTERN size_t synchro_cq_size(const synchro_cq_t *cq);

/* Frees the queue and every future it holds (pending ones are detached). NULL is a
 * no-op. Thread-safe: no call on `cq` may run concurrently or follow. */
SYNCHRO_EXTERN void synchro_cq_free(synchro_cq_t *cq);

#ifdef __cplusplus
}
#endif
#endif /* SYNCHRO_CQ_H */
