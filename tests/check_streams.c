/* tests/check_streams.c - streams: async generators on the loop thread, consumed blocking
 * or through host callbacks; backpressure, early close (A21), errors after items (A22),
 * deadlines, shutdown and misuse.
 *
 * Every test runs in its own forked child (CK_FORK), so the counters of
 * support/streamops.c start fresh in each (the fixture resets them anyway). Producers
 * and host callbacks record into atomics or plain fields of the host thread; the test
 * thread asserts after joining or after the host loop returned. */
#define _GNU_SOURCE
#include <check.h>
#include <jansson.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "support/streamops.h"
#include "support/testops.h"
#include "synchro.h"

/* ---- helpers ---------------------------------------------------------------------- */

static void setup(void) {
  testops_reset();
  streamops_reset();
}

static synchro_t *new_sync(void) {
  synchro_t *s = NULL;
  ck_assert_int_eq(synchro_new(&s, NULL), 0);
  ck_assert_ptr_nonnull(s);
  return s;
}

static void close_sync(synchro_t *s) {
  ck_assert_int_eq(synchro_close(s, 2000), 0);
  synchro_free(s);
}

static synchro_stream_t *open_count(synchro_t *s, const synchro_op_t *op, int64_t n,
                                    int64_t stall_after, int fail_code, int64_t timeout_ms) {
  test_count_args_t args = {n, stall_after, fail_code};
  synchro_stream_t *st = NULL;
  ck_assert_int_eq(synchro_stream_open(s, op, &args, timeout_ms, &st), 0);
  ck_assert_ptr_nonnull(st);
  return st;
}

static synchro_stream_t *open_infinite(synchro_t *s) {
  synchro_stream_t *st = NULL;
  ck_assert_int_eq(synchro_stream_open(s, &test_sop_infinite, NULL, SYNCHRO_TIMEOUT_DEFAULT, &st),
                   0);
  ck_assert_ptr_nonnull(st);
  return st;
}

/* Waits until every started producer has been cancelled (its hook ran). */
static void wait_hooks(long want) {
  ck_assert_int_eq(test_wait_count(&test_stream_hooks, want, 5000), want);
}

/* ---- consuming: blocking and host ------------------------------------------------------ */

START_TEST(test_blocking_ten_million_in_order) {
  long n = test_scaled(10000000), i;
  synchro_t *s = new_sync();
  synchro_stream_t *st = open_count(s, &test_sop_count, n, -1, 0, SYNCHRO_TIMEOUT_INFINITE);
  int64_t item;
  long wrong = 0;
  int rc = 0;
  for (i = 0; i < n; i++) {
    item = -1;
    if ((rc = synchro_stream_next(st, &item, SYNCHRO_TIMEOUT_INFINITE)) != 0)
      break;
    wrong += item != i;
  }
  ck_assert_int_eq(rc, 0);
  ck_assert_int_eq(i, n);
  ck_assert_int_eq(wrong, 0);
  /* the end, and the same end again: not an error */
  ck_assert_int_eq(synchro_stream_next(st, &item, SYNCHRO_TIMEOUT_INFINITE), SYNCHRO_EEND);
  ck_assert_int_eq(synchro_stream_next(st, &item, 0), SYNCHRO_EEND);
  ck_assert_int_eq(synchro_stream_next(st, &item, 100), SYNCHRO_EEND);
  ck_assert_ptr_null(synchro_stream_error(st));
  ck_assert_int_eq(test_stream_yielded, n);
  ck_assert_int_eq(test_stream_ended, 1);
  ck_assert_int_eq(test_stream_hooks, 0);
  ck_assert_int_eq(test_stream_spurious, 0);
  synchro_stream_free(st);
  close_sync(s);
}
END_TEST

typedef struct {
  pthread_t thread;
  synchro_host_t *h;
  int64_t expected;
  long callbacks, wrong_thread, wrong_value, rearm_errors, after_end;
  long stop_at; /* >= 0: free the stream from the callback after this many items */
  int ends, end_status, err_code;
  char origin[32];
  int in_next_then; /* set around synchro_stream_next_then() on the host thread */
  long inline_calls;
} host_ctx_t;

static void host_cb(synchro_stream_t *st, int status, void *item, void *data) {
  host_ctx_t *c = data;
  c->callbacks++;
  if (c->in_next_then)
    c->inline_calls++;
  if (!pthread_equal(pthread_self(), c->thread))
    c->wrong_thread++;
  if (c->ends != 0) {
    c->after_end++;
    return;
  }
  if (status != 0) {
    const synchro_error_t *err = synchro_stream_error(st);
    c->ends++;
    c->end_status = status;
    c->err_code = synchro_error_code(err);
    snprintf(c->origin, sizeof(c->origin), "%s", synchro_error_origin(err));
    if (item != NULL)
      c->wrong_value++;
    return;
  }
  if (item == NULL || *(int64_t *)item != c->expected)
    c->wrong_value++;
  c->expected++;
  if (c->stop_at >= 0 && c->expected >= c->stop_at) {
    synchro_stream_free(st);
    return;
  }
  if (synchro_stream_next_then(st, c->h, host_cb, c) != 0)
    c->rearm_errors++;
}

/* Runs a host libuv loop on this thread until the stream ended (or was freed). */
static void consume_on_host(synchro_stream_t *st, host_ctx_t *c) {
  uv_loop_t loop;
  ck_assert_int_eq(uv_loop_init(&loop), 0);
  ck_assert_int_eq(synchro_host_new_uv(&c->h, &loop), 0);
  c->thread = pthread_self();
  c->in_next_then = 1;
  ck_assert_int_eq(synchro_stream_next_then(st, c->h, host_cb, c), 0);
  c->in_next_then = 0;
  ck_assert_int_eq(c->callbacks, 0); /* never inside next_then */
  uv_run(&loop, UV_RUN_DEFAULT);
  synchro_host_free(c->h);
  uv_run(&loop, UV_RUN_DEFAULT);
  ck_assert_int_eq(uv_loop_close(&loop), 0);
}

START_TEST(test_host_loop_ten_million_in_order) {
  long n = test_scaled(10000000);
  synchro_t *s = new_sync();
  synchro_stream_t *st = open_count(s, &test_sop_count, n, -1, 0, SYNCHRO_TIMEOUT_INFINITE);
  host_ctx_t c;
  int64_t item;
  memset(&c, 0, sizeof(c));
  c.stop_at = -1;
  consume_on_host(st, &c);
  ck_assert_int_eq(c.wrong_thread, 0);
  ck_assert_int_eq(c.wrong_value, 0);
  ck_assert_int_eq(c.rearm_errors, 0);
  ck_assert_int_eq(c.inline_calls, 0);
  ck_assert_int_eq(c.expected, n);
  ck_assert_int_eq(c.ends, 1);
  ck_assert_int_eq(c.end_status, SYNCHRO_EEND);
  ck_assert_int_eq(c.callbacks, n + 1);
  /* after the host delivered the end, the blocking form sees it too */
  ck_assert_int_eq(synchro_stream_next(st, &item, 0), SYNCHRO_EEND);
  ck_assert_int_eq(test_stream_hooks, 0);
  synchro_stream_free(st);
  close_sync(s);
}
END_TEST

START_TEST(test_host_error_after_items) {
  synchro_t *s = new_sync();
  synchro_stream_t *st =
      open_count(s, &test_sop_fail, 3, -1, TEST_STREAM_DOMAIN_CODE, SYNCHRO_TIMEOUT_INFINITE);
  host_ctx_t c;
  memset(&c, 0, sizeof(c));
  c.stop_at = -1;
  consume_on_host(st, &c);
  ck_assert_int_eq(c.wrong_thread, 0);
  ck_assert_int_eq(c.wrong_value, 0);
  ck_assert_int_eq(c.expected, 3);
  ck_assert_int_eq(c.ends, 1);
  ck_assert_int_eq(c.after_end, 0);
  ck_assert_int_eq(c.end_status, TEST_STREAM_DOMAIN_CODE);
  ck_assert_int_eq(c.err_code, TEST_STREAM_DOMAIN_CODE);
  ck_assert_str_eq(c.origin, "fail_after");
  synchro_stream_free(st);
  close_sync(s);
}
END_TEST

START_TEST(test_host_free_stream_in_callback) {
  synchro_t *s = new_sync();
  synchro_stream_t *st = open_infinite(s);
  host_ctx_t c;
  memset(&c, 0, sizeof(c));
  c.stop_at = 5;
  consume_on_host(st, &c); /* returns: nothing is armed after the free */
  ck_assert_int_eq(c.wrong_thread, 0);
  ck_assert_int_eq(c.wrong_value, 0);
  ck_assert_int_eq(c.callbacks, 5);
  wait_hooks(1);
  ck_assert_int_eq(test_stream_hooks_off_loop, 0);
  close_sync(s);
}
END_TEST

/* ---- backpressure ---------------------------------------------------------------------- */

/* Consumes n items slowly; returns the most items ever held by the stream, measured as
 * accepted yields minus items taken (the consumer's own count, read after each take). */
static long consume_slowly(synchro_stream_t *st, long n, long *wrong) {
  long i, held, max_held = 0;
  int64_t item;
  *wrong = 0;
  for (i = 0; i < n; i++) {
    if (synchro_stream_next(st, &item, 5000) != 0) {
      (*wrong)++;
      break;
    }
    *wrong += item != i;
    held = atomic_load(&test_stream_yielded) - (i + 1);
    if (held > max_held)
      max_held = held;
    if (i % 500 == 0)
      usleep(1000); /* the producer is faster: it must pause */
  }
  return max_held;
}

START_TEST(test_backpressure_bounded_nothing_dropped) {
  long n = test_scaled(100000), wrong, max_held;
  synchro_t *s = new_sync();
  synchro_stream_t *st = open_count(s, &test_sop_count64, n, -1, 0, SYNCHRO_TIMEOUT_INFINITE);
  int64_t item;
  max_held = consume_slowly(st, n, &wrong);
  ck_assert_int_eq(wrong, 0);
  ck_assert_int_eq(synchro_stream_next(st, &item, 5000), SYNCHRO_EEND);
  ck_assert_int_le(max_held, 64);
  ck_assert_int_gt(max_held, 32); /* it did fill up */
  ck_assert_int_le(test_stream_max_room, 64);
  ck_assert_int_eq(test_stream_busy_room, 0);              /* EBUSY only when full */
  ck_assert_int_gt(test_stream_busy, 0);                   /* it paused ... */
  ck_assert_int_ge(test_stream_demands, test_stream_busy); /* ... and was resumed */
  ck_assert_int_eq(test_stream_yielded, n);
  synchro_stream_free(st);
  close_sync(s);
}
END_TEST

START_TEST(test_backpressure_spurious_demand) {
  /* The demand hook is for a producer that got SYNCHRO_EBUSY; this one counts calls
   * that came while it was not paused. */
  long n = test_scaled(100000), wrong;
  synchro_t *s = new_sync();
  synchro_stream_t *st = open_count(s, &test_sop_count64, n, -1, 0, SYNCHRO_TIMEOUT_INFINITE);
  consume_slowly(st, n, &wrong);
  ck_assert_int_eq(wrong, 0);
  ck_assert_int_eq(test_stream_spurious, 0);
  synchro_stream_free(st);
  close_sync(s);
}
END_TEST

START_TEST(test_backpressure_capacity_not_power_of_two) {
  /* capacity 100: the buffer must never hold more than 100 items. */
  long n = test_scaled(20000), wrong, max_held;
  synchro_t *s = new_sync();
  synchro_stream_t *st = open_count(s, &test_sop_count100, n, -1, 0, SYNCHRO_TIMEOUT_INFINITE);
  max_held = consume_slowly(st, n, &wrong);
  ck_assert_int_eq(wrong, 0);
  ck_assert_int_le(test_stream_max_room, 100);
  ck_assert_int_le(max_held, 100);
  synchro_stream_free(st);
  close_sync(s);
}
END_TEST

START_TEST(test_backpressure_default_capacity) {
  synchro_t *s = new_sync();
  synchro_stream_t *st = open_count(s, &test_sop_count, -1, -1, 0, SYNCHRO_TIMEOUT_INFINITE);
  int64_t item;
  /* Not consuming: the producer fills the buffer and pauses. */
  ck_assert_int_eq(test_wait_count(&test_stream_busy, 1, 5000), 1);
  ck_assert_int_eq(test_stream_yielded, SYNCHRO_STREAM_CAPACITY_DEFAULT);
  ck_assert_int_eq(test_stream_max_room, SYNCHRO_STREAM_CAPACITY_DEFAULT);
  ck_assert_int_eq(synchro_stream_next(st, &item, 1000), 0);
  ck_assert_int_eq(item, 0);
  /* one slot freed: the producer is resumed and fills it, then pauses again */
  ck_assert_int_eq(test_wait_count(&test_stream_busy, 2, 5000), 2);
  ck_assert_int_eq(test_stream_yielded, SYNCHRO_STREAM_CAPACITY_DEFAULT + 1);
  synchro_stream_free(st);
  wait_hooks(1);
  close_sync(s);
}
END_TEST

/* ---- early close (A21) -------------------------------------------------------------------- */

/* A producer with a slow cleanup: it yields 3 items and waits; when cancelled, it
 * takes `cleanup_ms` (a uv timer) to let go of what it holds, then ends its call. */
static atomic_long slow_cleanups_done;
typedef struct {
  int64_t cleanup_ms;
} slow_args_t;
typedef struct {
  uv_timer_t timer;
  synchro_call_t *call;
} slow_t;
static void slow_closed(uv_handle_t *h) { free(h->data); }
static void slow_cleaned(uv_timer_t *t) {
  slow_t *sl = t->data;
  atomic_fetch_add(&slow_cleanups_done, 1);
  synchro_call_return(sl->call, NULL);
  uv_close((uv_handle_t *)t, slow_closed);
}
static void slow_cancel(synchro_call_t *call, int reason, void *data) {
  slow_t *sl = data;
  const slow_args_t *a = synchro_call_args(call);
  (void)reason;
  test_timer_start(&sl->timer, slow_cleaned, a->cleanup_ms);
}
static void slow_impl(synchro_call_t *call) {
  slow_t *sl = malloc(sizeof(*sl));
  int64_t i;
  sl->call = call;
  uv_timer_init(synchro_call_loop(call), &sl->timer);
  sl->timer.data = sl;
  for (i = 0; i < 3; i++)
    synchro_call_yield(call, &i);
  synchro_call_on_cancel(call, slow_cancel, sl);
}
static const synchro_op_t sop_slow_cleanup = {.name = "slow_cleanup",
                                              .impl = slow_impl,
                                              .args_size = sizeof(slow_args_t),
                                              .item_size = sizeof(int64_t)};

/* synchro_stream_close: the bounded-wait form of free. It returns once the producer's
 * cleanup is done, or with SYNCHRO_ETIMEDOUT at its timeout while the cleanup goes on. */
START_TEST(test_a21_close_waits_for_cleanup_within_a_bound) {
  synchro_t *s = new_sync();
  synchro_stream_t *st = NULL;
  slow_args_t quick = {20}, slow = {300};
  int64_t item = -1;
  double t0, took;
  atomic_store(&slow_cleanups_done, 0);
  /* cleanup within the bound: done when close returns */
  ck_assert_int_eq(synchro_stream_open(s, &sop_slow_cleanup, &quick, SYNCHRO_TIMEOUT_DEFAULT, &st),
                   0);
  ck_assert_int_eq(synchro_stream_next(st, &item, 5000), 0);
  t0 = test_now_ms();
  ck_assert_int_eq(synchro_stream_close(st, 2000), 0);
  took = test_now_ms() - t0;
  ck_assert_int_eq(atomic_load(&slow_cleanups_done), 1);
  ck_assert_double_ge(took, 19);
  /* cleanup longer than the bound: ETIMEDOUT at the bound, the cleanup finishes later */
  ck_assert_int_eq(synchro_stream_open(s, &sop_slow_cleanup, &slow, SYNCHRO_TIMEOUT_DEFAULT, &st),
                   0);
  ck_assert_int_eq(synchro_stream_next(st, &item, 5000), 0);
  t0 = test_now_ms();
  ck_assert_int_eq(synchro_stream_close(st, 50), SYNCHRO_ETIMEDOUT);
  took = test_now_ms() - t0;
  ck_assert_double_ge(took, 49);
  ck_assert_double_lt(took, 290);
  ck_assert_int_eq(atomic_load(&slow_cleanups_done), 1);
  close_sync(s); /* waits for the rest of the cleanup */
  ck_assert_int_eq(atomic_load(&slow_cleanups_done), 2);
  /* bad input: nothing happens */
  ck_assert_int_eq(synchro_stream_close(NULL, 0), SYNCHRO_EINVAL);
}
END_TEST

START_TEST(test_a21_free_at_item_one_same_thread) {
  synchro_t *s = new_sync();
  synchro_stream_t *st = open_infinite(s);
  synchro_stats_t stats;
  int64_t item;
  ck_assert_int_eq(synchro_stream_next(st, &item, 5000), 0);
  ck_assert_int_eq(item, 0);
  ck_assert_int_eq(synchro_stream_next(st, &item, 5000), 0);
  ck_assert_int_eq(item, 1);
  synchro_stream_free(st);
  wait_hooks(1);
  ck_assert_int_eq(test_stream_hooks_off_loop, 0);
  ck_assert_int_eq(test_stream_hook_reason, SYNCHRO_ECANCELED);
  usleep(20000);
  ck_assert_int_eq(test_stream_hooks, 1); /* exactly once */
  ck_assert_int_eq(synchro_stats(s, &stats), 0);
  ck_assert_int_eq(stats.in_flight, 0);
  close_sync(s);
}
END_TEST

static void *free_stream_thread(void *arg) {
  synchro_stream_free(arg);
  return NULL;
}

START_TEST(test_a21_free_at_item_one_other_thread) {
  synchro_t *s = new_sync();
  synchro_stream_t *st = open_infinite(s);
  pthread_t t;
  int64_t item;
  ck_assert_int_eq(synchro_stream_next(st, &item, 5000), 0);
  ck_assert_int_eq(synchro_stream_next(st, &item, 5000), 0);
  ck_assert_int_eq(item, 1);
  ck_assert_int_eq(pthread_create(&t, NULL, free_stream_thread, st), 0);
  ck_assert_int_eq(pthread_join(t, NULL), 0);
  wait_hooks(1);
  ck_assert_int_eq(test_stream_hooks_off_loop, 0);
  usleep(20000);
  ck_assert_int_eq(test_stream_hooks, 1);
  close_sync(s);
}
END_TEST

START_TEST(test_a21_free_before_any_item) {
  /* Freed at once: either the producer never started (no hook to run) or its hook ran;
   * every started producer is cancelled exactly once. */
  long i, n = test_scaled(2000);
  synchro_t *s = new_sync();
  synchro_stats_t stats;
  for (i = 0; i < n; i++)
    synchro_stream_free(open_infinite(s));
  ck_assert_int_eq(synchro_close(s, 2000), 0);
  ck_assert_int_eq(test_stream_hooks, test_stream_started);
  ck_assert_int_eq(test_stream_hooks_off_loop, 0);
  ck_assert_int_eq(synchro_stats(s, &stats), 0);
  ck_assert_int_eq(stats.in_flight, 0);
  synchro_free(s);
}
END_TEST

START_TEST(test_a21_many_early_closes) {
  long i, n = test_scaled(2000);
  synchro_t *s = new_sync();
  int64_t item;
  long bad = 0;
  for (i = 0; i < n; i++) {
    synchro_stream_t *st = open_infinite(s);
    bad += synchro_stream_next(st, &item, 5000) != 0 || item != 0;
    bad += synchro_stream_next(st, &item, 5000) != 0 || item != 1;
    synchro_stream_free(st);
  }
  ck_assert_int_eq(bad, 0);
  wait_hooks(n);
  ck_assert_int_eq(test_stream_hooks_off_loop, 0);
  close_sync(s);
  ck_assert_int_eq(test_stream_hooks, n);
}
END_TEST

START_TEST(test_a21_heap_items_released_after_end) {
  synchro_t *s = new_sync();
  synchro_stream_t *st = open_count(s, &test_sop_strings, 10, -1, 0, SYNCHRO_TIMEOUT_INFINITE);
  char *text = NULL;
  ck_assert_int_eq(synchro_stream_next(st, &text, 5000), 0);
  ck_assert_str_eq(text, "item-0");
  free(text);
  ck_assert_int_eq(test_wait_count(&test_stream_ended, 1, 5000), 1);
  synchro_stream_free(st);
  ck_assert_int_eq(test_wait_count(&test_stream_items_freed, 9, 5000), 9);
  ck_assert_int_eq(test_stream_items_made, 10);
  ck_assert_int_eq(test_stream_hooks, 0); /* it had ended: nothing to cancel */
  close_sync(s);
  ck_assert_int_eq(test_stream_items_freed, 9);
}
END_TEST

START_TEST(test_a21_heap_items_released_producer_running) {
  synchro_t *s = new_sync();
  synchro_stream_t *st = open_count(s, &test_sop_strings, -1, -1, 0, SYNCHRO_TIMEOUT_INFINITE);
  char *text = NULL;
  ck_assert_int_eq(synchro_stream_next(st, &text, 5000), 0);
  ck_assert_str_eq(text, "item-0");
  free(text);
  ck_assert_int_eq(synchro_stream_next(st, &text, 5000), 0);
  ck_assert_str_eq(text, "item-1");
  free(text);
  synchro_stream_free(st);
  wait_hooks(1);
  close_sync(s);
  ck_assert_int_eq(test_stream_items_freed, test_stream_items_made - 2);
  ck_assert_int_gt(test_stream_items_freed, 0);
}
END_TEST

/* ---- errors after items (A22) ---------------------------------------------------------------- */

static void check_fail_after(long k) {
  synchro_t *s = new_sync();
  synchro_stream_t *st =
      open_count(s, &test_sop_fail, k, -1, TEST_STREAM_DOMAIN_CODE, SYNCHRO_TIMEOUT_INFINITE);
  const synchro_error_t *err;
  json_t *details;
  char msg[64];
  int64_t item;
  long i;
  for (i = 0; i < k; i++) {
    item = -1;
    ck_assert_int_eq(synchro_stream_next(st, &item, 5000), 0);
    ck_assert_int_eq(item, i);
    ck_assert_ptr_null(synchro_stream_error(st));
  }
  ck_assert_int_eq(synchro_stream_next(st, &item, 5000), TEST_STREAM_DOMAIN_CODE);
  err = synchro_stream_error(st);
  ck_assert_ptr_nonnull(err);
  ck_assert_int_eq(synchro_error_code(err), TEST_STREAM_DOMAIN_CODE);
  ck_assert_str_eq(synchro_error_origin(err), "fail_after");
  snprintf(msg, sizeof(msg), "failed after %ld items", k);
  ck_assert_str_eq(synchro_error_message(err), msg);
  details = synchro_error_details(err);
  ck_assert_ptr_nonnull(details);
  ck_assert_int_eq(json_integer_value(json_object_get(details, "after")), k);
  ck_assert_str_eq(json_string_value(json_object_get(details, "reason")), "on purpose");
  /* the same code again, the same error */
  ck_assert_int_eq(synchro_stream_next(st, &item, 0), TEST_STREAM_DOMAIN_CODE);
  ck_assert_ptr_eq(synchro_stream_error(st), err);
  ck_assert_int_eq(test_stream_hooks, 0);
  synchro_stream_free(st);
  close_sync(s);
}

/* A22 send and throw: the "accumulator" producer yields a running sum. A value sent
 * is added and the new sum yielded; a thrown RECOVERABLE error yields -1 and goes on;
 * any other thrown error ends the stream with it. */
#define RECOVERABLE (-40100)
#define FATAL (-40200)
typedef struct {
  int64_t sum;
} acc_t;
static void acc_sent(synchro_call_t *call, const void *value, int code, void *data) {
  acc_t *acc = data;
  int64_t out;
  if (code == RECOVERABLE) {
    out = -1;
    synchro_call_yield(call, &out);
  } else if (code < 0) {
    free(acc);
    synchro_call_fail(call, code, NULL, "thrown in: %d", code);
  } else {
    acc->sum += *(const int64_t *)value;
    synchro_call_yield(call, &acc->sum);
  }
}
static void acc_cancel(synchro_call_t *call, int reason, void *data) {
  free(data);
  synchro_call_fail(call, reason, NULL, NULL);
}
static void acc_impl(synchro_call_t *call) {
  acc_t *acc = calloc(1, sizeof(*acc));
  synchro_call_yield(call, &acc->sum);
  synchro_call_on_cancel(call, acc_cancel, acc);
  synchro_call_on_send(call, acc_sent, acc);
}
static const synchro_op_t sop_accumulator = {
    .name = "accumulator", .impl = acc_impl, .item_size = sizeof(int64_t)};

static atomic_int fail_allocs; /* see test_a22_send_and_throw_reach_the_producer */
static void *maybe_malloc(size_t n) { return atomic_load(&fail_allocs) ? NULL : malloc(n); }
static void *maybe_realloc(void *p, size_t n) {
  return atomic_load(&fail_allocs) ? NULL : realloc(p, n);
}
static void *maybe_calloc(size_t c, size_t n) {
  return atomic_load(&fail_allocs) ? NULL : calloc(c, n);
}

START_TEST(test_a22_send_and_throw_reach_the_producer) {
  synchro_t *s;
  ck_assert_int_eq(synchro_replace_allocator(maybe_malloc, maybe_realloc, maybe_calloc, free), 0);
  s = new_sync();
  synchro_stream_t *st = NULL;
  const synchro_error_t *err;
  int64_t item = -99, v;
  ck_assert_int_eq(synchro_stream_open(s, &sop_accumulator, NULL, SYNCHRO_TIMEOUT_DEFAULT, &st), 0);
  ck_assert_int_eq(synchro_stream_next(st, &item, 5000), 0);
  ck_assert_int_eq(item, 0);
  v = 5;
  ck_assert_int_eq(synchro_stream_send(st, &v, sizeof(v)), 0);
  ck_assert_int_eq(synchro_stream_next(st, &item, 5000), 0);
  ck_assert_int_eq(item, 5);
  v = 7; /* two sends in a row arrive in order */
  ck_assert_int_eq(synchro_stream_send(st, &v, sizeof(v)), 0);
  v = 30;
  ck_assert_int_eq(synchro_stream_send(st, &v, sizeof(v)), 0);
  ck_assert_int_eq(synchro_stream_next(st, &item, 5000), 0);
  ck_assert_int_eq(item, 12);
  ck_assert_int_eq(synchro_stream_next(st, &item, 5000), 0);
  ck_assert_int_eq(item, 42);
  atomic_store(&fail_allocs, 1); /* a value that cannot be copied is not sent */
  ck_assert_int_eq(synchro_stream_send(st, &v, sizeof(v)), SYNCHRO_ENOMEM);
  atomic_store(&fail_allocs, 0);
  ck_assert_int_eq(synchro_stream_throw(st, RECOVERABLE), 0); /* recovers, yields again */
  ck_assert_int_eq(synchro_stream_next(st, &item, 5000), 0);
  ck_assert_int_eq(item, -1);
  v = 1;
  ck_assert_int_eq(synchro_stream_send(st, &v, sizeof(v)), 0);
  ck_assert_int_eq(synchro_stream_next(st, &item, 5000), 0);
  ck_assert_int_eq(item, 43);
  ck_assert_int_eq(synchro_stream_throw(st, 5), SYNCHRO_EINVAL);
  ck_assert_int_eq(synchro_stream_throw(st, FATAL), 0); /* ends the stream with it */
  ck_assert_int_eq(synchro_stream_next(st, &item, 5000), FATAL);
  ck_assert_int_eq(synchro_stream_next(st, &item, 5000), FATAL); /* the same, every time */
  err = synchro_stream_error(st);
  ck_assert_int_eq(synchro_error_code(err), FATAL);
  ck_assert_str_eq(synchro_error_origin(err), "accumulator");
  ck_assert_int_eq(synchro_stream_send(st, &v, sizeof(v)), SYNCHRO_ECLOSED);
  synchro_stream_free(st);
  /* values sent before the producer reads them, then an early free: nothing leaks */
  ck_assert_int_eq(synchro_stream_open(s, &sop_accumulator, NULL, SYNCHRO_TIMEOUT_DEFAULT, &st), 0);
  ck_assert_int_eq(synchro_stream_send(st, &v, sizeof(v)), 0);
  ck_assert_int_eq(synchro_stream_send(st, &v, sizeof(v)), 0);
  synchro_stream_free(st);
  ck_assert_int_eq(synchro_stream_send(NULL, &v, sizeof(v)), SYNCHRO_EINVAL);
  close_sync(s);
}
END_TEST

START_TEST(test_a22_fail_after_k_items) { check_fail_after(5); }
END_TEST

START_TEST(test_a22_fail_after_more_items_than_capacity) { check_fail_after(1000); }
END_TEST

START_TEST(test_a22_fail_before_any_item) { check_fail_after(0); }
END_TEST

START_TEST(test_a22_empty_stream_ends_not_fails) {
  synchro_t *s = new_sync();
  synchro_stream_t *st = open_count(s, &test_sop_count, 0, -1, 0, SYNCHRO_TIMEOUT_INFINITE);
  int64_t item;
  ck_assert_int_eq(synchro_stream_next(st, &item, 5000), SYNCHRO_EEND);
  ck_assert_ptr_null(synchro_stream_error(st));
  ck_assert_int_eq(synchro_stream_next(st, &item, 5000), SYNCHRO_EEND);
  synchro_stream_free(st);
  close_sync(s);
}
END_TEST

/* ---- deadlines --------------------------------------------------------------------------- */

START_TEST(test_deadline_after_buffered_items) {
  synchro_t *s = new_sync();
  synchro_stream_t *st = open_count(s, &test_sop_count64, -1, 10, 0, 100);
  int64_t item;
  long i;
  usleep(300000); /* the deadline passes with 10 items in the buffer */
  ck_assert_int_eq(test_stream_hooks, 1);
  ck_assert_int_eq(test_stream_hook_reason, SYNCHRO_ETIMEDOUT);
  for (i = 0; i < 10; i++) {
    ck_assert_int_eq(synchro_stream_next(st, &item, 1000), 0);
    ck_assert_int_eq(item, i);
  }
  ck_assert_int_eq(synchro_stream_next(st, &item, 1000), SYNCHRO_ETIMEDOUT);
  ck_assert_int_eq(synchro_error_code(synchro_stream_error(st)), SYNCHRO_ETIMEDOUT);
  ck_assert_int_eq(synchro_stream_next(st, &item, 0), SYNCHRO_ETIMEDOUT);
  synchro_stream_free(st);
  close_sync(s);
}
END_TEST

START_TEST(test_deadline_wakes_a_blocked_consumer) {
  synchro_t *s = new_sync();
  double t0 = test_now_ms(), dt; /* before the open: the deadline counts from the submit */
  synchro_stream_t *st = open_count(s, &test_sop_count64, -1, 3, 0, 150);
  int64_t item;
  long i;
  for (i = 0; i < 3; i++)
    ck_assert_int_eq(synchro_stream_next(st, &item, SYNCHRO_TIMEOUT_INFINITE), 0);
  ck_assert_int_eq(synchro_stream_next(st, &item, SYNCHRO_TIMEOUT_INFINITE), SYNCHRO_ETIMEDOUT);
  dt = test_now_ms() - t0;
  ck_assert_double_ge(dt, 150); /* deadlines are kept on the monotonic clock, never early */
  ck_assert_double_lt(dt, 3000);
  synchro_stream_free(st);
  close_sync(s);
}
END_TEST

START_TEST(test_deadline_with_full_buffer) {
  synchro_t *s = new_sync();
  synchro_stream_t *st = open_count(s, &test_sop_count64, -1, -1, 0, 100);
  int64_t item;
  long i;
  usleep(300000);
  ck_assert_int_eq(test_stream_hooks, 1);
  for (i = 0; i < 64; i++) {
    ck_assert_int_eq(synchro_stream_next(st, &item, 1000), 0);
    ck_assert_int_eq(item, i);
  }
  ck_assert_int_eq(synchro_stream_next(st, &item, 1000), SYNCHRO_ETIMEDOUT);
  synchro_stream_free(st);
  close_sync(s);
}
END_TEST

/* ---- synchronizer shutdown ---------------------------------------------------------------- */

typedef struct {
  synchro_stream_t *st;
  long items;
  int final;
} consumer_t;

static void *consume_until_error(void *arg) {
  consumer_t *c = arg;
  int64_t item;
  int rc;
  while ((rc = synchro_stream_next(c->st, &item, SYNCHRO_TIMEOUT_INFINITE)) == 0)
    c->items++;
  c->final = rc;
  return NULL;
}

START_TEST(test_close_ends_a_blocked_consumer) {
  synchro_t *s = new_sync();
  consumer_t c = {NULL, 0, 0};
  pthread_t t;
  double t0;
  c.st = open_count(s, &test_sop_count64, -1, 5, 0, SYNCHRO_TIMEOUT_INFINITE);
  ck_assert_int_eq(pthread_create(&t, NULL, consume_until_error, &c), 0);
  usleep(50000); /* the consumer took the 5 items and sleeps in next */
  t0 = test_now_ms();
  ck_assert_int_eq(synchro_close(s, 0), 0);
  ck_assert_double_lt(test_now_ms() - t0, 2000);
  ck_assert_int_eq(pthread_join(t, NULL), 0);
  ck_assert_int_eq(c.items, 5);
  ck_assert_int_eq(c.final, SYNCHRO_ESHUTDOWN);
  ck_assert_int_eq(test_stream_hooks, 1);
  ck_assert_int_eq(test_stream_hook_reason, SYNCHRO_ESHUTDOWN);
  ck_assert_int_eq(test_stream_hooks_off_loop, 0);
  synchro_stream_free(c.st);
  synchro_free(s);
}
END_TEST

START_TEST(test_close_ends_a_running_infinite_stream) {
  synchro_t *s = new_sync();
  consumer_t c = {NULL, 0, 0};
  pthread_t t;
  c.st = open_infinite(s);
  ck_assert_int_eq(pthread_create(&t, NULL, consume_until_error, &c), 0);
  usleep(50000);
  ck_assert_int_eq(synchro_close(s, 100), 0);
  ck_assert_int_eq(pthread_join(t, NULL), 0);
  ck_assert_int_gt(c.items, 0);
  ck_assert_msg(c.final == SYNCHRO_ESHUTDOWN || c.final == SYNCHRO_ECANCELED, "final code %s",
                synchro_err_name(c.final));
  ck_assert_int_eq(test_stream_hooks, 1);
  synchro_stream_free(c.st);
  synchro_free(s);
}
END_TEST

START_TEST(test_stream_outlives_synchronizer) {
  synchro_t *s = new_sync();
  synchro_stream_t *st = open_count(s, &test_sop_strings, -1, -1, 0, SYNCHRO_TIMEOUT_INFINITE);
  char *text = NULL;
  int64_t item;
  ck_assert_int_eq(synchro_stream_next(st, &text, 5000), 0);
  free(text);
  close_sync(s);
  /* the buffered items are still there, then the shutdown */
  while (synchro_stream_next(st, &text, 0) == 0)
    free(text);
  ck_assert_int_eq(synchro_stream_next(st, &item, 0), SYNCHRO_ESHUTDOWN);
  synchro_stream_free(st);
}
END_TEST

START_TEST(test_open_after_close) {
  synchro_t *s = new_sync();
  synchro_stream_t *st = (synchro_stream_t *)&st;
  test_count_args_t args = {3, -1, 0};
  ck_assert_int_eq(synchro_close(s, 0), 0);
  ck_assert_int_eq(synchro_stream_open(s, &test_sop_count, &args, SYNCHRO_TIMEOUT_DEFAULT, &st),
                   SYNCHRO_ESHUTDOWN);
  ck_assert_ptr_null(st);
  ck_assert_int_eq(test_stream_started, 0);
  synchro_free(s);
}
END_TEST

/* ---- misuse ----------------------------------------------------------------------------- */

START_TEST(test_next_timeout_is_pending) {
  synchro_t *s = new_sync();
  synchro_stream_t *st = open_count(s, &test_sop_count64, -1, 0, 0, SYNCHRO_TIMEOUT_INFINITE);
  double t0;
  int64_t item = 42;
  ck_assert_int_eq(synchro_stream_next(st, &item, 0), SYNCHRO_EPENDING);
  t0 = test_now_ms();
  ck_assert_int_eq(synchro_stream_next(st, &item, 50), SYNCHRO_EPENDING);
  ck_assert_double_ge(test_now_ms() - t0, 45);
  ck_assert_int_eq(item, 42); /* untouched */
  /* the stream goes on: a pending wait is not an outcome */
  ck_assert_int_eq(synchro_stream_next(st, &item, 0), SYNCHRO_EPENDING);
  synchro_stream_free(st);
  wait_hooks(1);
  close_sync(s);
}
END_TEST

static void next_on_loop_impl(synchro_call_t *call) {
  synchro_stream_t *st = NULL;
  int64_t item, codes[2] = {0, 0};
  int rc = synchro_stream_open(synchro_call_synchronizer(call), &test_sop_infinite, NULL,
                               SYNCHRO_TIMEOUT_DEFAULT, &st);
  if (rc != 0) {
    synchro_call_fail(call, rc, NULL, "open on the loop failed");
    return;
  }
  codes[0] = synchro_stream_next(st, &item, SYNCHRO_TIMEOUT_INFINITE);
  codes[1] = synchro_stream_next(st, &item, 10);
  synchro_stream_free(st);
  synchro_call_return(call, codes);
}
static const synchro_op_t next_on_loop_op = {
    .name = "next_on_loop", .impl = next_on_loop_impl, .result_size = 2 * sizeof(int64_t)};

START_TEST(test_next_on_loop_thread_edeadlk) {
  synchro_t *s = new_sync();
  int64_t codes[2] = {0, 0};
  double t0 = test_now_ms();
  ck_assert_int_eq(synchro_call(s, &next_on_loop_op, NULL, 5000, codes, NULL), 0);
  ck_assert_int_eq(codes[0], SYNCHRO_EDEADLK);
  ck_assert_int_eq(codes[1], SYNCHRO_EDEADLK);
  ck_assert_double_lt(test_now_ms() - t0, 1000);
  close_sync(s);
}
END_TEST

static void demand_nop(synchro_call_t *call, void *data) {
  (void)call;
  (void)data;
}

START_TEST(test_yield_off_loop_eperm) {
  synchro_t *s = new_sync();
  synchro_stream_t *st = open_count(s, &test_sop_count64, -1, 3, 0, SYNCHRO_TIMEOUT_INFINITE);
  synchro_call_t *call;
  int64_t item = 99;
  long i;
  ck_assert_int_eq(test_wait_count(&test_stream_started, 1, 5000), 1);
  call = atomic_load(&test_stream_last_call);
  ck_assert_ptr_nonnull(call);
  ck_assert_int_eq(synchro_call_yield(call, &item), SYNCHRO_EPERM);
  ck_assert_int_eq(synchro_call_room(call), SYNCHRO_EPERM);
  ck_assert_int_eq(synchro_call_on_demand(call, demand_nop, NULL), SYNCHRO_EPERM);
  /* nothing changed: the producer's three items, nothing else */
  for (i = 0; i < 3; i++) {
    ck_assert_int_eq(synchro_stream_next(st, &item, 5000), 0);
    ck_assert_int_eq(item, i);
  }
  ck_assert_int_eq(synchro_stream_next(st, &item, 20), SYNCHRO_EPENDING);
  synchro_stream_free(st);
  wait_hooks(1);
  close_sync(s);
}
END_TEST

typedef struct {
  int32_t yield, room, demand, pad;
} plain_codes_t;

static void plain_yield_impl(synchro_call_t *call) {
  plain_codes_t c = {0, 0, 0, 0};
  int64_t item = 1;
  c.yield = synchro_call_yield(call, &item);
  c.room = synchro_call_room(call);
  c.demand = synchro_call_on_demand(call, demand_nop, NULL);
  synchro_call_return(call, &c);
}
static const synchro_op_t plain_yield_op = {
    .name = "plain_yield", .impl = plain_yield_impl, .result_size = sizeof(plain_codes_t)};

START_TEST(test_yield_on_plain_call_einval) {
  synchro_t *s = new_sync();
  plain_codes_t c;
  memset(&c, 0, sizeof(c));
  ck_assert_int_eq(synchro_call(s, &plain_yield_op, NULL, 5000, &c, NULL), 0);
  ck_assert_int_eq(c.yield, SYNCHRO_EINVAL);
  ck_assert_int_eq(c.room, SYNCHRO_EINVAL);
  ck_assert_int_eq(c.demand, SYNCHRO_EINVAL);
  close_sync(s);
}
END_TEST

static atomic_int g_first_yield = 1, g_after_end = 1, g_null_yield = 1;

static void end_then_yield_impl(synchro_call_t *call) {
  int64_t v = 7;
  g_null_yield = synchro_call_yield(call, NULL);
  g_first_yield = synchro_call_yield(call, &v);
  synchro_call_return(call, NULL);
  g_after_end = synchro_call_yield(call, &v); /* the consumer still holds the stream */
}
static const synchro_op_t end_then_yield_op = {
    .name = "end_then_yield", .impl = end_then_yield_impl, .item_size = sizeof(int64_t)};

START_TEST(test_yield_after_end_ealready) {
  synchro_t *s = new_sync();
  synchro_stream_t *st = NULL;
  int64_t item = 0;
  double t0 = test_now_ms();
  ck_assert_int_eq(synchro_stream_open(s, &end_then_yield_op, NULL, 5000, &st), 0);
  while (atomic_load(&g_after_end) == 1 && test_now_ms() - t0 < 5000)
    usleep(1000);
  ck_assert_int_eq(g_null_yield, SYNCHRO_EINVAL);
  ck_assert_int_eq(g_first_yield, 0);
  ck_assert_int_eq(g_after_end, SYNCHRO_EALREADY);
  ck_assert_int_eq(synchro_stream_next(st, &item, 1000), 0);
  ck_assert_int_eq(item, 7);
  ck_assert_int_eq(synchro_stream_next(st, &item, 1000), SYNCHRO_EEND);
  synchro_stream_free(st);
  close_sync(s);
}
END_TEST

START_TEST(test_call_and_submit_on_stream_op_einval) {
  synchro_t *s = new_sync();
  test_count_args_t args = {3, -1, 0};
  test_add_args_t add = {1, 2};
  synchro_future_t *f = (synchro_future_t *)&f;
  synchro_stream_t *st = (synchro_stream_t *)&st;
  int64_t result[2];
  synchro_error_t *err = NULL;
  ck_assert_int_eq(synchro_submit(s, &test_sop_count, &args, SYNCHRO_TIMEOUT_DEFAULT, &f),
                   SYNCHRO_EINVAL);
  ck_assert_ptr_null(f);
  ck_assert_int_eq(synchro_call(s, &test_sop_count, &args, SYNCHRO_TIMEOUT_DEFAULT, result, &err),
                   SYNCHRO_EINVAL);
  ck_assert_ptr_null(err);
  /* and the other way round: a plain op is not a stream */
  ck_assert_int_eq(synchro_stream_open(s, &test_op_add, &add, SYNCHRO_TIMEOUT_DEFAULT, &st),
                   SYNCHRO_EINVAL);
  ck_assert_ptr_null(st);
  ck_assert_int_eq(synchro_stream_open(NULL, &test_sop_count, &args, SYNCHRO_TIMEOUT_DEFAULT, &st),
                   SYNCHRO_EINVAL);
  ck_assert_int_eq(synchro_stream_open(s, NULL, &args, SYNCHRO_TIMEOUT_DEFAULT, &st),
                   SYNCHRO_EINVAL);
  ck_assert_int_eq(synchro_stream_open(s, &test_sop_count, NULL, SYNCHRO_TIMEOUT_DEFAULT, &st),
                   SYNCHRO_EINVAL);
  ck_assert_int_eq(synchro_stream_open(s, &test_sop_count, &args, -7, &st), SYNCHRO_EINVAL);
  ck_assert_int_eq(synchro_stream_open(s, &test_sop_count, &args, SYNCHRO_TIMEOUT_DEFAULT, NULL),
                   SYNCHRO_EINVAL);
  ck_assert_int_eq(test_stream_started, 0);
  close_sync(s);
}
END_TEST

START_TEST(test_null_and_bad_arguments) {
  synchro_t *s = new_sync();
  synchro_stream_t *st = open_count(s, &test_sop_count, 1, -1, 0, SYNCHRO_TIMEOUT_INFINITE);
  int64_t item;
  uv_loop_t loop;
  synchro_host_t *h;
  ck_assert_int_eq(synchro_stream_next(NULL, &item, 0), SYNCHRO_EINVAL);
  ck_assert_int_eq(synchro_stream_next(st, NULL, 0), SYNCHRO_EINVAL);
  ck_assert_int_eq(synchro_stream_next(st, &item, -7), SYNCHRO_EINVAL);
  ck_assert_int_eq(uv_loop_init(&loop), 0);
  ck_assert_int_eq(synchro_host_new_uv(&h, &loop), 0);
  ck_assert_int_eq(synchro_stream_next_then(NULL, h, host_cb, NULL), SYNCHRO_EINVAL);
  ck_assert_int_eq(synchro_stream_next_then(st, NULL, host_cb, NULL), SYNCHRO_EINVAL);
  ck_assert_int_eq(synchro_stream_next_then(st, h, NULL, NULL), SYNCHRO_EINVAL);
  ck_assert_ptr_null(synchro_stream_error(NULL));
  ck_assert_int_eq(synchro_call_yield(NULL, &item), SYNCHRO_EINVAL);
  ck_assert_int_eq(synchro_call_room(NULL), SYNCHRO_EINVAL);
  ck_assert_int_eq(synchro_call_on_demand(NULL, demand_nop, NULL), SYNCHRO_EINVAL);
  synchro_stream_free(NULL);
  ck_assert_int_eq(synchro_stream_next(st, &item, 5000), 0);
  ck_assert_int_eq(synchro_stream_next(st, &item, 5000), SYNCHRO_EEND);
  synchro_stream_free(st);
  synchro_host_free(h);
  uv_run(&loop, UV_RUN_DEFAULT);
  ck_assert_int_eq(uv_loop_close(&loop), 0);
  close_sync(s);
}
END_TEST

static void count_cb(synchro_stream_t *st, int status, void *item, void *data) {
  host_ctx_t *c = data;
  (void)st;
  c->callbacks++;
  if (status != 0 || item == NULL || *(int64_t *)item != c->expected)
    c->wrong_value++;
  c->expected++;
  if (!pthread_equal(pthread_self(), c->thread))
    c->wrong_thread++;
}

/* Arms a host callback, then checks that the blocking form and a second arming are
 * refused until that callback has run. `buffered`: the buffer is full when the callback
 * is armed (so it is queued on the host at once); else the producer yields nothing. */
static void check_next_while_armed(int buffered) {
  synchro_t *s = new_sync();
  synchro_stream_t *st = buffered
                             ? open_infinite(s)
                             : open_count(s, &test_sop_count64, -1, 0, 0, SYNCHRO_TIMEOUT_INFINITE);
  uv_loop_t loop;
  host_ctx_t c;
  int64_t item = -1;
  memset(&c, 0, sizeof(c));
  c.thread = pthread_self();
  ck_assert_int_eq(uv_loop_init(&loop), 0);
  ck_assert_int_eq(synchro_host_new_uv(&c.h, &loop), 0);
  if (buffered)
    ck_assert_int_eq(test_wait_count(&test_stream_busy, 1, 5000), 1);
  else
    ck_assert_int_eq(test_wait_count(&test_stream_started, 1, 5000), 1);
  ck_assert_int_eq(synchro_stream_next_then(st, c.h, count_cb, &c), 0);
  ck_assert_int_eq(synchro_stream_next(st, &item, 0), SYNCHRO_EBUSY);
  ck_assert_int_eq(synchro_stream_next(st, &item, 100), SYNCHRO_EBUSY);
  ck_assert_int_eq(synchro_stream_next_then(st, c.h, count_cb, &c), SYNCHRO_EBUSY);
  ck_assert_int_eq(item, -1);
  if (buffered) {
    uv_run(&loop, UV_RUN_DEFAULT); /* one callback (item 0), not re-armed: returns */
    ck_assert_int_eq(c.callbacks, 1);
    ck_assert_int_eq(c.wrong_value, 0);
    ck_assert_int_eq(c.wrong_thread, 0);
    /* disarmed: the blocking form takes the next item */
    ck_assert_int_eq(synchro_stream_next(st, &item, 5000), 0);
    ck_assert_int_eq(item, 1);
  }
  synchro_stream_free(st); /* allowed while armed on this thread's own host */
  synchro_host_free(c.h);
  uv_run(&loop, UV_RUN_DEFAULT);
  ck_assert_int_eq(uv_loop_close(&loop), 0);
  ck_assert_int_eq(c.callbacks, buffered ? 1 : 0);
  wait_hooks(1);
  close_sync(s);
}

START_TEST(test_next_while_armed_ebusy) { check_next_while_armed(0); }
END_TEST

START_TEST(test_next_while_armed_ebusy_items_buffered) { check_next_while_armed(1); }
END_TEST

START_TEST(test_host_freed_while_armed) {
  /* Freeing the host while a callback is armed: no callback runs, the stream's
   * producer is cancelled, and the consumer can still free its stream. */
  synchro_t *s = new_sync();
  synchro_stream_t *st = open_count(s, &test_sop_count64, -1, 0, 0, SYNCHRO_TIMEOUT_INFINITE);
  uv_loop_t loop;
  host_ctx_t c;
  memset(&c, 0, sizeof(c));
  c.thread = pthread_self();
  ck_assert_int_eq(uv_loop_init(&loop), 0);
  ck_assert_int_eq(synchro_host_new_uv(&c.h, &loop), 0);
  ck_assert_int_eq(test_wait_count(&test_stream_started, 1, 5000), 1);
  ck_assert_int_eq(synchro_stream_next_then(st, c.h, count_cb, &c), 0);
  synchro_host_free(c.h);
  uv_run(&loop, UV_RUN_DEFAULT);
  ck_assert_int_eq(uv_loop_close(&loop), 0);
  ck_assert_int_eq(c.callbacks, 0);
  wait_hooks(1);
  synchro_stream_free(st);
  close_sync(s);
}
END_TEST

/* ---- object streams ------------------------------------------------------------------------ */

START_TEST(test_object_method_stream) {
  synchro_t *s = new_sync();
  test_obj_args_t oargs = {5, 0, 0};
  test_count_args_t args = {100, -1, 0};
  synchro_object_t *obj = NULL;
  synchro_stream_t *st = NULL;
  int64_t item;
  long i;
  ck_assert_int_eq(synchro_object_new(s, &test_class, &oargs, &obj, NULL), 0);
  ck_assert_int_eq(
      synchro_object_stream_open(obj, &test_sop_count64, &args, SYNCHRO_TIMEOUT_DEFAULT, &st), 0);
  for (i = 0; i < 100; i++) {
    ck_assert_int_eq(synchro_stream_next(st, &item, 5000), 0);
    ck_assert_int_eq(item, i);
  }
  ck_assert_int_eq(synchro_stream_next(st, &item, 5000), SYNCHRO_EEND);
  synchro_stream_free(st);
  /* a stream op through the future entry points of an object is refused too */
  {
    synchro_future_t *f = NULL;
    ck_assert_int_eq(synchro_object_submit(obj, &test_sop_count64, &args, 0, &f), SYNCHRO_EINVAL);
    ck_assert_int_eq(synchro_object_call(obj, &test_sop_count64, &args, 0, &item, NULL),
                     SYNCHRO_EINVAL);
  }
  /* freeing the object cancels a running method stream */
  ck_assert_int_eq(
      synchro_object_stream_open(obj, &test_sop_infinite, NULL, SYNCHRO_TIMEOUT_DEFAULT, &st), 0);
  ck_assert_int_eq(synchro_stream_next(st, &item, 5000), 0);
  synchro_object_free(obj);
  wait_hooks(1);
  while (synchro_stream_next(st, &item, 5000) == 0)
    ;
  ck_assert_int_eq(synchro_stream_next(st, &item, 0), SYNCHRO_ECANCELED);
  synchro_stream_free(st);
  ck_assert_int_eq(test_wait_count(&test_obj_destroys, 1, 5000), 1);
  close_sync(s);
}
END_TEST

/* ---- the suite ------------------------------------------------------------------------------ */

static Suite *streams_suite(void) {
  Suite *s = suite_create("streams");
  TCase *tc;

  tc = tcase_create("consume");
  tcase_set_timeout(tc, 60);
  tcase_add_checked_fixture(tc, setup, NULL);
  tcase_add_test(tc, test_blocking_ten_million_in_order);
  tcase_add_test(tc, test_host_loop_ten_million_in_order);
  tcase_add_test(tc, test_host_error_after_items);
  tcase_add_test(tc, test_host_free_stream_in_callback);
  suite_add_tcase(s, tc);

  tc = tcase_create("backpressure");
  tcase_set_timeout(tc, 30);
  tcase_add_checked_fixture(tc, setup, NULL);
  tcase_add_test(tc, test_backpressure_bounded_nothing_dropped);
  tcase_add_test(tc, test_backpressure_spurious_demand);
  tcase_add_test(tc, test_backpressure_capacity_not_power_of_two);
  tcase_add_test(tc, test_backpressure_default_capacity);
  suite_add_tcase(s, tc);

  tc = tcase_create("early_close");
  tcase_set_timeout(tc, 30);
  tcase_add_checked_fixture(tc, setup, NULL);
  tcase_add_test(tc, test_a21_free_at_item_one_same_thread);
  tcase_add_test(tc, test_a21_close_waits_for_cleanup_within_a_bound);
  tcase_add_test(tc, test_a21_free_at_item_one_other_thread);
  tcase_add_test(tc, test_a21_free_before_any_item);
  tcase_add_test(tc, test_a21_many_early_closes);
  tcase_add_test(tc, test_a21_heap_items_released_after_end);
  tcase_add_test(tc, test_a21_heap_items_released_producer_running);
  suite_add_tcase(s, tc);

  tc = tcase_create("errors");
  tcase_set_timeout(tc, 20);
  tcase_add_checked_fixture(tc, setup, NULL);
  tcase_add_test(tc, test_a22_fail_after_k_items);
  tcase_add_test(tc, test_a22_send_and_throw_reach_the_producer);
  tcase_add_test(tc, test_a22_fail_after_more_items_than_capacity);
  tcase_add_test(tc, test_a22_fail_before_any_item);
  tcase_add_test(tc, test_a22_empty_stream_ends_not_fails);
  suite_add_tcase(s, tc);

  tc = tcase_create("deadline");
  tcase_set_timeout(tc, 20);
  tcase_add_checked_fixture(tc, setup, NULL);
  tcase_add_test(tc, test_deadline_after_buffered_items);
  tcase_add_test(tc, test_deadline_wakes_a_blocked_consumer);
  tcase_add_test(tc, test_deadline_with_full_buffer);
  suite_add_tcase(s, tc);

  tc = tcase_create("shutdown");
  tcase_set_timeout(tc, 20);
  tcase_add_checked_fixture(tc, setup, NULL);
  tcase_add_test(tc, test_close_ends_a_blocked_consumer);
  tcase_add_test(tc, test_close_ends_a_running_infinite_stream);
  tcase_add_test(tc, test_stream_outlives_synchronizer);
  tcase_add_test(tc, test_open_after_close);
  suite_add_tcase(s, tc);

  tc = tcase_create("misuse");
  tcase_set_timeout(tc, 20);
  tcase_add_checked_fixture(tc, setup, NULL);
  tcase_add_test(tc, test_next_timeout_is_pending);
  tcase_add_test(tc, test_next_on_loop_thread_edeadlk);
  tcase_add_test(tc, test_yield_off_loop_eperm);
  tcase_add_test(tc, test_yield_on_plain_call_einval);
  tcase_add_test(tc, test_yield_after_end_ealready);
  tcase_add_test(tc, test_call_and_submit_on_stream_op_einval);
  tcase_add_test(tc, test_null_and_bad_arguments);
  tcase_add_test(tc, test_next_while_armed_ebusy);
  tcase_add_test(tc, test_next_while_armed_ebusy_items_buffered);
  tcase_add_test(tc, test_host_freed_while_armed);
  suite_add_tcase(s, tc);

  tc = tcase_create("objects");
  tcase_set_timeout(tc, 20);
  tcase_add_checked_fixture(tc, setup, NULL);
  tcase_add_test(tc, test_object_method_stream);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(streams_suite());
  int failed;
  srunner_run_all(sr, CK_ENV);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
