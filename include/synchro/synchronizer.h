/* synchro/synchronizer.h - the synchronizer: one libuv loop on one dedicated thread.
 *
 * Creating a synchronizer starts nothing; the first call starts the loop thread (so a
 * synchronizer may be created at file scope, before anything runs). Any number of
 * caller threads may submit calls at once. synchro_close() refuses new calls, lets
 * in-flight calls finish within a grace period, cancels the rest, closes every handle
 * on the loop and joins the thread. After fork() the child may keep using a
 * synchronizer: its loop thread is recreated lazily there, and calls that were in
 * flight at fork resolve in the child with SYNCHRO_EFORKED. */
#ifndef SYNCHRO_SYNCHRONIZER_H
#define SYNCHRO_SYNCHRONIZER_H

#include <uv.h>

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Creation options. Initialise with synchro_options_init(), then set what you need. */
typedef struct synchro_options_s {
  /* Loop thread name, shown by ps/top/gdb (first 15 bytes). Copied. Default "synchro". */
  const char *name;
  /* After a batch of calls the loop thread keeps polling its queue for a while before
   * it sleeps, so a caller's next call needs no wakeup. The window starts at this value
   * and adapts: it doubles, up to 8 times this value, while calls keep arriving soon
   * after the loop gave up, and halves back after long sleeps. 0 turns it off. Default
   * 20 us. Never used when only one CPU is available, nor while the caller runs on the
   * loop thread's CPU. */
  int64_t loop_spin_ns;
  /* A blocking caller polls for its result this long before it sleeps. A batch wait
   * (synchro_future_wait_all) polls for about 200 ns per pending call, at most 200 us,
   * and skips its next 16 polls on a thread where one ran out. 0 turns both off.
   * Default 5 us. Skipped when the caller runs on the loop thread's CPU. */
  int64_t caller_spin_ns;
  /* Most calls in flight at once; 0 = unbounded (default). Past it, synchro_submit()
   * returns SYNCHRO_EBUSY on the caller's thread and a blocking call waits for room. */
  uint32_t max_inflight;
  /* Deadline applied to calls whose descriptor and submission give none, in ms;
   * 0 or SYNCHRO_TIMEOUT_INFINITE (default) for none. A zeroed options struct is
   * valid: no default deadline, no spinning, unbounded, named "synchro". */
  int64_t default_timeout_ms;
  /* Stall watchdog (docs/diagnostics.md): when > 0, a watchdog thread reports through
   * the diagnostics hook (synchro/diag.h) every loop iteration that stays busy this
   * many ms or more, and synchro_diag_lag() reports the longest. 0 (default): off, no
   * thread and no cost. While calls are in flight the watchdog wakes every
   * threshold/4 ms (at least 1 ms); while none are, it sleeps until one arrives. */
  int64_t stall_threshold_ms;
} synchro_options_t;

/* Counters since creation. in_flight = submitted - completed - failed - cancelled. */
typedef struct synchro_stats_s {
  uint64_t submitted; /* calls accepted */
  uint64_t completed; /* resolved with a result */
  uint64_t failed;    /* resolved with the implementation's error */
  uint64_t cancelled; /* resolved as cancelled, timed out, shut down or forked */
  uint64_t in_flight; /* accepted and not yet resolved */
  uint64_t wakeups;   /* times the loop thread was woken to take calls */
} synchro_stats_t;

/* Fills `opts` with the defaults. Thread-safe: yes. */
SYNCHRO_EXTERN void synchro_options_init(synchro_options_t *opts);

/* Creates a synchronizer; starts no thread. `opts` NULL means defaults; it is copied.
 * The loop thread, once started, inherits the CPU affinity of the thread whose call
 * starts it. On success *out is owned by the caller: synchro_close() then
 * synchro_free() it. Returns 0, SYNCHRO_EINVAL (out NULL, a negative spin, a negative
 * default timeout other than SYNCHRO_TIMEOUT_INFINITE, a negative stall threshold) or
 * SYNCHRO_ENOMEM.
 * Thread-safe: yes. */
SYNCHRO_EXTERN int synchro_new(synchro_t **out, const synchro_options_t *opts);

/* Shuts the synchronizer down. New calls fail with SYNCHRO_ESHUTDOWN at once; calls in
 * flight may finish within `grace_ms` (SYNCHRO_TIMEOUT_INFINITE waits for all); then the
 * rest are cancelled with reason SYNCHRO_ESHUTDOWN (their cancel hooks run on the loop
 * thread) and, after a short bound for their cleanup, any still unresolved is resolved
 * as SYNCHRO_ESHUTDOWN, its late completion discarded. Every handle on the loop is
 * closed and the thread joined. Returns early once nothing is in flight.
 * Futures held by callers stay valid and report how they ended.
 * Returns 0, SYNCHRO_EINVAL (NULL), SYNCHRO_EALREADY (already closed) or
 * SYNCHRO_EDEADLK (called on the loop thread, where it cannot wait for itself).
 * Thread-safe: yes; a concurrent second close returns SYNCHRO_EALREADY after the first
 * finished. */
SYNCHRO_EXTERN int synchro_close(synchro_t *s, int64_t grace_ms);

/* Frees a synchronizer, closing it first with no grace if it is still open. NULL is a
 * no-op, and so is a call on `s`'s own loop thread (it cannot wait for itself). Futures
 * it produced stay valid and must still be freed by their owners.
 * Thread-safe: no other call on `s` may run concurrently or follow. */
SYNCHRO_EXTERN void synchro_free(synchro_t *s);

/* Asks for `s` to be closed with synchro_close(s, grace_ms) when the process exits
 * (exit(), or returning from main), from an atexit handler the library installs on
 * first use. Without it a synchronizer still open at exit is detached: its loop thread
 * ends with the process and the cleanup of calls in flight never runs. The handler runs
 * in reverse order of atexit registration, like every atexit handler: state that
 * cancel hooks use must not have been torn down by handlers registered later.
 * Calling it again updates the grace; synchro_free() cancels the request.
 * Returns 0, SYNCHRO_EINVAL (NULL, bad grace), SYNCHRO_ENOMEM, or SYNCHRO_EDEADLK (called
 * on a loop thread, which the handler may be joining). Thread-safe: yes, except on a
 * loop thread. */
SYNCHRO_EXTERN int synchro_close_at_exit(synchro_t *s, int64_t grace_ms);

/* 1 if the calling thread is `s`'s loop thread, else 0 (also for NULL).
 * Thread-safe: yes. */
SYNCHRO_EXTERN int synchro_is_loop_thread(const synchro_t *s);

/* The loop, for implementations that start libuv work. Returns 0 and sets *out, or
 * SYNCHRO_EINVAL (NULL) or SYNCHRO_EPERM (not called on the loop thread).
 * Thread-safe: loop thread only (anywhere else it fails cleanly). */
SYNCHRO_EXTERN int synchro_loop(synchro_t *s, uv_loop_t **out);

/* Copies the counters into *out. Returns 0 or SYNCHRO_EINVAL. Thread-safe: yes (each
 * counter is read atomically; the set is not one snapshot). */
SYNCHRO_EXTERN int synchro_stats(const synchro_t *s, synchro_stats_t *out);

/* The synchronizer's name (as given in the options). Borrowed. Thread-safe: yes. */
SYNCHRO_EXTERN const char *synchro_name(const synchro_t *s);

#ifdef __cplusplus
}
#endif
#endif /* SYNCHRO_SYNCHRONIZER_H */
