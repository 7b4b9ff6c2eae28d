/* synchro/dump.h - diagnostics: a JSON picture of a synchronizer and of every call it
 * still holds, for finding out why something hangs (docs/dump.md).
 *
 * Pending calls belong to the loop thread, so the dump asks the loop for a snapshot
 * and waits a bounded time. A loop that does not answer (stalled in an implementation,
 * or blocked) still gets a dump: the counters, what the loop thread entered last and
 * for how long, and "loop_answered": false. */
#ifndef SYNCHRO_DUMP_H
#define SYNCHRO_DUMP_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Writes a JSON object describing `s` into *out: name, running, stats, the loop
 * thread's state and, when the loop answered within `timeout_ms`, "pending": one entry
 * per call the loop holds, with "id" (the call's address, which is also its future's),
 * "flavor" (blocking, future, aio-host, cq, stream, object-method, object-lifecycle),
 * "function" (the op's name), "origin" (number of the submitting thread), "age_ms"
 * (since the loop took it; null while queued) and "state" (queued, started, parked,
 * cancelling, completing, delivering). When the loop does not answer, "pending" is
 * null and "loop_answered" false. The format is in docs/dump.md.
 * `timeout_ms`: how long to wait for the loop thread; SYNCHRO_TIMEOUT_DEFAULT is
 * 1000 ms, SYNCHRO_TIMEOUT_INFINITE waits for ever. On the loop thread itself (from an
 * implementation) the snapshot is taken directly, without waiting.
 * Ownership: on success *out is a NUL-terminated string owned by the caller, freed
 * with synchro_mem_free(); on failure *out is NULL.
 * Returns 0 (also when the loop did not answer: the JSON says so), SYNCHRO_EINVAL
 * (s or out NULL, a negative timeout other than the two constants) or SYNCHRO_ENOMEM.
 * Thread-safe: yes, from any thread, while `s` is not being freed. Never blocks longer
 * than `timeout_ms` plus the time to format the JSON. */
SYNCHRO_EXTERN int synchro_dump(synchro_t *s, int64_t timeout_ms, char **out);

#ifdef __cplusplus
}
#endif
#endif /* SYNCHRO_DUMP_H */
