/* tests/support/streamops.h - stream ops (producers on the loop thread) and a test class
 * for objects, used by check_streams and check_objects.
 *
 * Every counter below is updated on the loop thread and read by the test thread after
 * it waited for the event it counts; reset them with streamops_reset(). */
#ifndef SYNCHRO_STREAMOPS_H
#define SYNCHRO_STREAMOPS_H

#include <stdatomic.h>
#include <stdint.h>

#include "synchro.h"

/* ---- streams ------------------------------------------------------------------------ */

typedef struct {
  int64_t n;           /* items to yield, values 0..n-1; < 0: never ends */
  int64_t stall_after; /* >= 0: after this many items yield nothing more and wait for
                        * the cancellation (deadline, shutdown, consumer gone) */
  int fail_code;       /* != 0: after the n items, fail with this code */
} test_count_args_t;

/* The domain code test_sop_fail uses in the tests (any negative code outside synchro's). */
#define TEST_STREAM_DOMAIN_CODE (-40001)

/* count: yields int64 0..n-1 as fast as the buffer takes them, pausing on SYNCHRO_EBUSY
 * and resuming from the demand hook, then ends (or fails / stalls, see the args). A
 * cancel hook counts itself, notes whether it ran on the loop thread and ends the call.
 * Capacities: default (1024), 64 and 100 (not a power of two). */
extern const synchro_op_t test_sop_count;
extern const synchro_op_t test_sop_count64;
extern const synchro_op_t test_sop_count100;
/* infinite: as count with n < 0; no argument block. Capacity 64. */
extern const synchro_op_t test_sop_infinite;
/* fail_after: as count (capacity 64); with fail_code set it fails after n items with
 * message "failed after <n> items" and details {"after": n, "reason": "on purpose"}. */
extern const synchro_op_t test_sop_fail;
/* strings: yields n heap strings "item-<i>" (char *, strdup); the consumer frees the
 * ones it takes with free(); item_free frees the rest and counts them. Capacity 16;
 * n < 0 never ends. Args: test_count_args_t. */
extern const synchro_op_t test_sop_strings;

extern atomic_long test_stream_started;     /* producers started */
extern atomic_long test_stream_yielded;     /* items accepted by synchro_call_yield */
extern atomic_long test_stream_busy;        /* SYNCHRO_EBUSY answers */
extern atomic_long test_stream_closed_seen; /* SYNCHRO_ECLOSED answers */
extern atomic_long test_stream_demands;     /* demand hooks run */
extern atomic_long test_stream_spurious;    /* demand hooks run while not paused */
extern atomic_long test_stream_busy_room;   /* synchro_call_room() > 0 when EBUSY came */
extern atomic_long test_stream_max_room;    /* largest synchro_call_room() seen */
extern atomic_long test_stream_ended;       /* producers that ended or failed by themselves */
extern atomic_long test_stream_hooks;       /* cancel hooks run */
extern atomic_long test_stream_hooks_off_loop;
extern atomic_int test_stream_hook_reason;
extern atomic_long test_stream_items_made;              /* heap items accepted */
extern atomic_long test_stream_items_freed;             /* heap items released by item_free */
extern _Atomic(synchro_call_t *) test_stream_last_call; /* latest producer (live while
                                                           its stream is not done) */

/* ---- objects -------------------------------------------------------------------------- */

typedef struct {
  int64_t value;    /* the state's value (test_oop_value returns value + add) */
  int construct_rc; /* != 0: the constructor fails with this code */
  int64_t close_ms; /* close's timer */
} test_obj_args_t;

typedef struct {
  int64_t ms;    /* open's timer */
  int fail_code; /* != 0: open acquires its resource, then fails half-way with it */
} test_obj_open_args_t;

typedef struct {
  int64_t ms;
} test_obj_sleep_args_t;
typedef struct {
  int64_t add;
} test_obj_value_args_t;
typedef struct {
  synchro_object_t *other; /* a handle: the argument block holds a reference */
  int link;                /* != 0: remember other's state as this object's peer */
} test_obj_handle_args_t;
typedef struct {
  int64_t open_rc, close_rc;
} test_obj_pair_t;

/* The class: construct (no I/O), open and close on uv timers, destroy. */
extern const synchro_class_t test_class;
/* sleep: method; a uv timer of ms; its cancel hook counts itself, stops the timer and
 * ends the call with SYNCHRO_ECANCELED. Returns ms (int64_t). */
extern const synchro_op_t test_oop_sleep;
/* value: method; returns the state's value + add (int64_t). */
extern const synchro_op_t test_oop_value;
/* peer: method (translation out); returns synchro_object_wrap() of the state's peer, a
 * fresh state made on first use unless one was linked (result: synchro_object_t *, a
 * new reference; result_free drops it). */
extern const synchro_op_t test_oop_peer;
/* state_of: method (translation in); returns (int64_t)(intptr_t)
 * synchro_object_state(args->other), and with `link` makes it this state's peer. */
extern const synchro_op_t test_oop_state_of;
/* drop: plain op; args: one synchro_object_t * whose reference passes to the call;
 * the implementation drops it with synchro_object_free() on the loop thread and
 * returns how long that took, in ns (int64_t). */
extern const synchro_op_t test_oop_drop;
/* lifecycle_on_loop: plain op; args: one borrowed synchro_object_t *; calls the
 * blocking synchro_object_open and synchro_object_close on the loop thread and returns
 * their codes (test_obj_pair_t). */
extern const synchro_op_t test_oop_lifecycle_on_loop;

extern atomic_long test_obj_constructs, test_obj_construct_off_loop;
extern atomic_long test_obj_opens_started, test_obj_opens_done, test_obj_open_hooks;
extern atomic_long test_obj_closes_started, test_obj_closes_done, test_obj_close_hooks;
extern atomic_long test_obj_close_off_loop;
extern atomic_long test_obj_close_before_open_done; /* close started while open ran */
extern atomic_long test_obj_close_with_methods;     /* close started with methods active */
extern atomic_long test_obj_close_twice;            /* one state closed more than once */
extern atomic_long test_obj_resources;              /* acquired by open, not yet released */
extern atomic_long test_obj_destroys, test_obj_destroy_off_loop;
extern atomic_long test_obj_destroy_unclosed; /* opened, destroyed before close ended */
extern atomic_long test_obj_destroy_busy;     /* destroyed with methods active */
extern atomic_long test_obj_methods_started, test_obj_methods_active, test_obj_method_hooks;
extern atomic_long test_obj_no_state;       /* a call saw synchro_call_object NULL */
extern _Atomic(void *) test_obj_last_state; /* the latest constructed state */

void streamops_reset(void);

/* Waits up to `ms` for *counter >= want (polling, yielding). Returns the final value. */
long test_wait_count(atomic_long *counter, long want, double ms);

#endif
