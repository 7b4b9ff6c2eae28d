/* synchro/diag.h - diagnostics: a hook told when a thread's event loop stalls.
 *
 * Three events are reported, all through one process-wide hook:
 *  - SYNCHRO_DIAG_HOST_BLOCKED: a blocking call (synchro_call, a blocking object call)
 *    was made on a host-loop thread, so the caller's own event loop did not run for
 *    its duration. A thread is a host-loop thread while it owns a host (from
 *    synchro_host_new_uv / synchro_host_new_fd until synchro_host_free) or after
 *    synchro_diag_mark_host_thread(1);
 *  - SYNCHRO_DIAG_LOOP_BLOCKED: a blocking call was made on a synchronizer's loop
 *    thread into another synchronizer, so every call of the first one waited;
 *  - SYNCHRO_DIAG_LOOP_STALL: the stall watchdog (options.stall_threshold_ms) saw a
 *    loop thread busy, without returning to its poll, for at least the threshold.
 * With no hook set nothing is measured, printed or allocated. See docs/diagnostics.md. */
#ifndef SYNCHRO_DIAG_H
#define SYNCHRO_DIAG_H

#include <pthread.h>
#include <stdint.h>

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum synchro_diag_kind_e {
  SYNCHRO_DIAG_HOST_BLOCKED = 1, /* a blocking call on a host-loop thread */
  SYNCHRO_DIAG_LOOP_BLOCKED = 2, /* a blocking call on another synchronizer's loop thread */
  SYNCHRO_DIAG_LOOP_STALL = 3    /* a loop busy for at least its stall threshold */
} synchro_diag_kind_t;

/* One event. Every pointer is borrowed for the duration of the hook only. */
typedef struct synchro_diag_event_s {
  synchro_diag_kind_t kind;
  /* The synchronizer called (BLOCKED kinds) or the one whose loop stalled (STALL). */
  const char *synchronizer;
  /* LOOP_BLOCKED: the synchronizer whose loop thread made the call; else NULL. */
  const char *blocked_loop;
  /* The op called (BLOCKED kinds); for STALL the op whose implementation function was
   * running when the threshold was crossed, NULL if the loop was elsewhere (a libuv
   * callback, a cancel hook). */
  const char *op;
  /* The thread that was blocked: the caller (BLOCKED kinds; the hook runs on it) or
   * the stalled loop thread (STALL; the hook runs on the watchdog thread while the
   * stall goes on, or on the loop thread right after it if the watchdog could not
   * sample it in time). */
  pthread_t thread;
  /* BLOCKED kinds: how long the call blocked. STALL: how long the loop had been busy
   * when the report was made (at least the threshold; from the watchdog, the stall
   * may go on). */
  uint64_t duration_ns;
  /* BLOCKED kinds: the call's return code. STALL: 0. */
  int status;
} synchro_diag_event_t;

/* The hook. Runs on the thread named above; must not block for long and must not call
 * synchro_diag_set_hook(). It may make synchro calls (they may report again). */
typedef void (*synchro_diag_hook_t)(const synchro_diag_event_t *ev, void *data);

/* Sets the process-wide hook (NULL removes it). Once this returns, the previous hook is
 * not running and will not run again, so its `data` may be freed.
 * Returns 0. Thread-safe: yes, except from inside the hook (it would wait for itself). */
SYNCHRO_EXTERN int synchro_diag_set_hook(synchro_diag_hook_t hook, void *data);

/* Marks (on != 0) or unmarks the calling thread as a host-loop thread, for event loops
 * that use no synchro host. Owning a host marks the thread as well, independently of
 * this flag. Thread-safe: yes (it affects the calling thread only). */
SYNCHRO_EXTERN void synchro_diag_mark_host_thread(int on);

/* 1 if the calling thread is a host-loop thread (owns a host or is marked), else 0.
 * Thread-safe: yes. */
SYNCHRO_EXTERN int synchro_diag_is_host_thread(void);

/* The stall watchdog's figures for one synchronizer. */
typedef struct synchro_diag_lag_s {
  int64_t threshold_ms;  /* the option; 0: the watchdog is off and the rest is 0 */
  uint64_t stalls;       /* stalls reported (one per stall) */
  uint64_t max_busy_ns;  /* longest busy stretch of one loop iteration seen */
  uint64_t last_busy_ns; /* the most recent finished loop iteration's busy time */
} synchro_diag_lag_t;

/* Copies the watchdog's figures into *out (zeros when the watchdog is off).
 * Returns 0 or SYNCHRO_EINVAL (NULL). Thread-safe: yes (each figure is read
 * atomically, the set is not one snapshot). */
SYNCHRO_EXTERN int synchro_diag_lag(const synchro_t *s, synchro_diag_lag_t *out);

#ifdef __cplusplus
}
#endif
#endif /* SYNCHRO_DIAG_H */
