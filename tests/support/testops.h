/* tests/support/testops.h - implementations used by the test programs, each a small
 * async operation on the synchronizer's loop. */
#ifndef SYNCHRO_TESTOPS_H
#define SYNCHRO_TESTOPS_H

#include <stdatomic.h>
#include <stdint.h>
#include <sys/types.h>

#include "synchro.h"

typedef struct {
  int64_t a, b;
} test_add_args_t;
typedef struct {
  int64_t ms;
  int64_t cleanup_ms;
} test_sleep_args_t;
typedef struct {
  int code;
} test_fail_args_t;
typedef struct {
  char *text;
} test_string_args_t;

/* add: returns a + b at once. */
extern const synchro_op_t test_op_add;
/* sleep: returns ms after a libuv timer of `ms`; cancel hook stops the timer and,
 * after `cleanup_ms`, finishes the call with SYNCHRO_ECANCELED. */
extern const synchro_op_t test_op_sleep;
/* never: never finishes and registers no hook. */
extern const synchro_op_t test_op_never;
/* stubborn: registers a hook that does nothing, never finishes. */
extern const synchro_op_t test_op_stubborn;
/* fail: fails with args->code, message "failed on purpose", details {"retry_after": 2}. */
extern const synchro_op_t test_op_fail;
/* upper: deep-copied string in, upper-cased copy out (result owns a char *). */
extern const synchro_op_t test_op_upper;
/* reenter: makes a blocking call on its own synchronizer and returns that call's code. */
extern const synchro_op_t test_op_reenter;
/* twice: finishes, then finishes again; the second code lands in test_second_rc. */
extern const synchro_op_t test_op_twice;
/* upper_mem: as upper, but its args copy and its result go through synchro_mem_*
 * (so a replaced allocator sees them); free a taken result with synchro_mem_free. */
extern const synchro_op_t test_op_upper_mem;
/* gate: blocks the loop thread until test_gate_open is non-zero, then returns 0
 * (int64_t). Lets a test hold calls in the submission queue. */
extern const synchro_op_t test_op_gate;
extern atomic_int test_gate_open;

/* Counters the ops update (reset with testops_reset()). */
extern atomic_long test_hooks_run;      /* cancel hooks run */
extern atomic_long test_hooks_off_loop; /* hooks that ran off the loop thread */
extern atomic_long test_cleanups_done;  /* sleep cleanups finished */
extern atomic_long test_results_freed;  /* upper results released */
extern atomic_long test_args_freed;     /* upper args released */
extern atomic_long test_results_made;   /* upper results produced by the impl */
extern atomic_long test_sleeps_started; /* sleep impls started */
extern atomic_int test_second_rc;
extern atomic_int test_last_cancel_reason;
void testops_reset(void);

/* Scale for iteration counts: SYNCHRO_TEST_SCALE divides them (sanitizers, valgrind). */
long test_scaled(long n);
/* Monotonic milliseconds. */
double test_now_ms(void);
/* How much slower this runner is: CK_TIMEOUT_MULTIPLIER (4 under the sanitizers, 20
 * under valgrind), 1 when unset or not positive. */
double test_time_multiplier(void);
/* An upper bound of `ms` on how long something may take, scaled by
 * test_time_multiplier() for slow runners. For bounds that show
 * something was not waited for, the thing not waited for must outlast the scaled bound. */
double test_bound_ms(double ms);
/* Starts a one-shot timer `ms` from now. The loop's cached time can lag the clock by as
 * long as the current iteration has run (many ms under valgrind), and a plain
 * uv_timer_start would then fire that much early; tests that bound elapsed time from
 * below need the timer measured from the real now. Loop thread only. */
void test_timer_start(uv_timer_t *timer, uv_timer_cb cb, int64_t ms);
/* Waits up to `ms` for a forked child: its wait status, -1 after killing it (it hung),
 * -2 if it cannot be waited for. */
int test_wait_child(pid_t pid, double ms);
/* Threads of this process (entries of /proc/self/task), -1 on error. */
int test_thread_count(void);

#endif
