/* tests/check_calls.c - submitting calls: results, errors, cancellation, deadlines,
 * ownership, bad input, admission and load. */
#define _GNU_SOURCE
#include <check.h>
#include <dirent.h>
#include <jansson.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "support/testops.h"
#include "support/watchdog.h"
#include "synchro.h"
#include "testing.h"

/* ---- helpers -------------------------------------------------------------------- */

static synchro_t *new_sync(void) {
  synchro_t *s = NULL;
  ck_assert_int_eq(synchro_new(&s, NULL), 0);
  watchdog_watch(s); /* dumped to stderr if the test is about to time out */
  return s;
}

static void close_free(synchro_t *s) {
  ck_assert_int_eq(synchro_close(s, 1000), 0);
  watchdog_unwatch(s);
  synchro_free(s);
}

static void spin_us(unsigned us) {
  double until = test_now_ms() + us / 1000.0;
  while (test_now_ms() < until)
    ;
}

static void wait_started(long n) {
  double t0 = test_now_ms();
  while (test_sleeps_started < n && test_now_ms() - t0 < 10000)
    usleep(500);
  ck_assert_int_eq(test_sleeps_started, n);
}

/* ---- ops used only here ------------------------------------------------------------ */

/* wait_on_loop: submits a sleep from the loop thread, then tries to wait for it there.
 * Returns (wait(INFINITE) rc) and checks that polling with 0 is allowed. */
static void wait_on_loop_impl(synchro_call_t *call) {
  synchro_t *s = synchro_call_synchronizer(call);
  test_sleep_args_t args = {10000, 0};
  synchro_future_t *f = NULL;
  int64_t r = synchro_submit(s, &test_op_sleep, &args, SYNCHRO_TIMEOUT_DEFAULT, &f);
  if (r == 0) {
    r = synchro_future_wait(f, SYNCHRO_TIMEOUT_INFINITE);
    if (synchro_future_wait(f, 0) != SYNCHRO_EPENDING)
      r = -1;
    if (synchro_future_wait(f, 10) != SYNCHRO_EDEADLK)
      r = -2;
    synchro_future_cancel(f);
    synchro_future_free(f);
  }
  synchro_call_return(call, &r);
}
static const synchro_op_t op_wait_on_loop = {
    .name = "wait_on_loop", .impl = wait_on_loop_impl, .result_size = sizeof(int64_t)};

/* waits_on_loop: from the loop thread, tries every other way of waiting for that
 * loop's futures, and one wait that is allowed (a completion queue that only holds a
 * future of another synchronizer, passed in `args`). */
typedef struct { /* codes fit 16 bits; the result must fit SYNCHRO_RESULT_MAX */
  int16_t all, any, cq, cq_poll, cq_mixed, cq_foreign;
} waits_codes_t;
static void waits_on_loop_impl(synchro_call_t *call) {
  synchro_t *s = synchro_call_synchronizer(call);
  synchro_t *other = *(synchro_t *const *)synchro_call_args(call);
  test_sleep_args_t args = {10000, 0};
  test_add_args_t add = {20, 22};
  synchro_future_t *mine = NULL, *theirs = NULL, *got = NULL;
  synchro_cq_t *cq = NULL, *foreign = NULL;
  waits_codes_t c = {1, 1, 1, 1, 1, 1};
  size_t index = 0;
  if (synchro_submit(s, &test_op_sleep, &args, SYNCHRO_TIMEOUT_DEFAULT, &mine) == 0) {
    c.all = (int16_t)synchro_future_wait_all(&mine, 1, SYNCHRO_TIMEOUT_INFINITE);
    c.any = (int16_t)synchro_future_wait_any(&mine, 1, 10, &index);
    synchro_future_cancel(mine);
  }
  if (synchro_cq_new(&cq) == 0 && synchro_cq_add(cq, mine) == 0) {
    c.cq = (int16_t)synchro_cq_next(cq, SYNCHRO_TIMEOUT_INFINITE, &got);
    c.cq_poll = (int16_t)synchro_cq_next(cq, 0, &got); /* polling stays allowed */
    /* a sleep, so that nothing in the queue is ready when it waits */
    if (synchro_submit(other, &test_op_sleep, &args, SYNCHRO_TIMEOUT_DEFAULT, &theirs) == 0 &&
        synchro_cq_add(cq, theirs) == 0)
      c.cq_mixed = (int16_t)synchro_cq_next(cq, 10, &got);
  } else {
    synchro_future_free(mine);
  }
  synchro_cq_free(cq);
  theirs = NULL;
  if (synchro_cq_new(&foreign) == 0 &&
      synchro_submit(other, &test_op_add, &add, SYNCHRO_TIMEOUT_DEFAULT, &theirs) == 0 &&
      synchro_cq_add(foreign, theirs) == 0) {
    int64_t sum = 0;
    c.cq_foreign = (int16_t)synchro_cq_next(foreign, 5000, &got);
    if (c.cq_foreign == 0 && (synchro_future_result(got, &sum) != 0 || sum != 42))
      c.cq_foreign = -1;
    if (c.cq_foreign == 0)
      synchro_future_free(got);
  }
  synchro_cq_free(foreign);
  synchro_call_return(call, &c);
}
static const synchro_op_t op_waits_on_loop = {.name = "waits_on_loop",
                                              .impl = waits_on_loop_impl,
                                              .args_size = sizeof(synchro_t *),
                                              .result_size = sizeof(waits_codes_t)};

/* chain: fails with a prepared error whose cause is another error. */
static void chain_impl(synchro_call_t *call) {
  synchro_error_t *cause = NULL, *err = NULL;
  synchro_error_new(&cause, UV_ECONNRESET, "recv", NULL, NULL, "peer reset");
  synchro_error_new(&err, UV_EIO, "write_block", json_pack("{s:i}", "retry_after", 2), cause,
                    "disk full");
  synchro_call_fail_error(call, err);
}
static const synchro_op_t op_chain = {.name = "chain", .impl = chain_impl};

/* ---- results ------------------------------------------------------------------------- */

START_TEST(test_results_correct) {
  synchro_t *s = new_sync();
  int64_t i;
  for (i = -500; i < 500; i++) {
    test_add_args_t args = {i, 3 * i};
    int64_t sum = 0;
    synchro_future_t *f = NULL;
    ck_assert_int_eq(synchro_call(s, &test_op_add, &args, SYNCHRO_TIMEOUT_DEFAULT, &sum, NULL), 0);
    ck_assert_int_eq(sum, 4 * i);
    ck_assert_int_eq(synchro_submit(s, &test_op_add, &args, SYNCHRO_TIMEOUT_INFINITE, &f), 0);
    ck_assert_int_eq(synchro_future_wait(f, SYNCHRO_TIMEOUT_INFINITE), 0);
    ck_assert_int_eq(synchro_future_status(f), 0);
    ck_assert_ptr_null(synchro_future_error(f));
    ck_assert_str_eq(synchro_future_name(f), "add");
    sum = 0;
    ck_assert_int_eq(synchro_future_result(f, &sum), 0);
    ck_assert_int_eq(sum, 4 * i);
    ck_assert_int_eq(synchro_future_result(f, &sum), SYNCHRO_EALREADY);
    synchro_future_free(f);
  }
  close_free(s);
}
END_TEST

START_TEST(test_result_ownership_upper) {
  synchro_t *s = new_sync();
  test_string_args_t args = {(char *)"hello, world"};
  char *out = NULL;
  synchro_future_t *f = NULL;
  testops_reset();
  ck_assert_int_eq(synchro_call(s, &test_op_upper, &args, SYNCHRO_TIMEOUT_DEFAULT, &out, NULL), 0);
  ck_assert_str_eq(out, "HELLO, WORLD");
  free(out);
  /* a result never taken is released with the future */
  ck_assert_int_eq(synchro_submit(s, &test_op_upper, &args, SYNCHRO_TIMEOUT_DEFAULT, &f), 0);
  ck_assert_int_eq(synchro_future_wait(f, SYNCHRO_TIMEOUT_INFINITE), 0);
  synchro_future_free(f);
  close_free(s);
  ck_assert_int_eq(test_results_made, 2);
  ck_assert_int_eq(test_results_freed, 1);
  ck_assert_int_eq(test_args_freed, 2);
}
END_TEST

/* ---- A1: blocking on the loop thread ----------------------------------------------- */

START_TEST(test_a1_blocking_call_on_loop_thread_deadlk) {
  synchro_t *s = new_sync();
  int64_t r = 0;
  int i;
  double t0 = test_now_ms();
  ck_assert_int_eq(synchro_call(s, &test_op_reenter, NULL, SYNCHRO_TIMEOUT_DEFAULT, &r, NULL), 0);
  ck_assert_int_eq(r, SYNCHRO_EDEADLK);
  ck_assert_double_lt(test_now_ms() - t0, 1000);
  for (i = 0; i < 1000; i++) { /* the loop stays healthy */
    test_add_args_t args = {i, 1};
    int64_t sum = 0;
    ck_assert_int_eq(synchro_call(s, &test_op_add, &args, SYNCHRO_TIMEOUT_DEFAULT, &sum, NULL), 0);
    ck_assert_int_eq(sum, i + 1);
  }
  close_free(s);
}
END_TEST

START_TEST(test_a1_future_wait_on_loop_thread_deadlk) {
  synchro_t *s = new_sync();
  int64_t r = 0;
  test_add_args_t args = {1, 1};
  int64_t sum = 0;
  ck_assert_int_eq(synchro_call(s, &op_wait_on_loop, NULL, SYNCHRO_TIMEOUT_DEFAULT, &r, NULL), 0);
  ck_assert_int_eq(r, SYNCHRO_EDEADLK);
  ck_assert_int_eq(synchro_call(s, &test_op_add, &args, SYNCHRO_TIMEOUT_DEFAULT, &sum, NULL), 0);
  ck_assert_int_eq(sum, 2);
  close_free(s);
}
END_TEST

START_TEST(test_a1_wait_all_any_and_cq_on_loop_thread_deadlk) {
  synchro_t *s = new_sync(), *other = new_sync();
  waits_codes_t c;
  test_add_args_t args = {1, 1};
  int64_t sum = 0;
  memset(&c, 0, sizeof(c));
  ck_assert_int_eq(synchro_call(s, &op_waits_on_loop, &other, SYNCHRO_TIMEOUT_DEFAULT, &c, NULL),
                   0);
  ck_assert_int_eq(c.all, SYNCHRO_EDEADLK);
  ck_assert_int_eq(c.any, SYNCHRO_EDEADLK);
  ck_assert_int_eq(c.cq, SYNCHRO_EDEADLK);
  ck_assert_int_eq(c.cq_poll, SYNCHRO_EPENDING);
  ck_assert_int_eq(c.cq_mixed, SYNCHRO_EDEADLK);
  ck_assert_int_eq(c.cq_foreign, 0); /* another synchronizer's future: waiting is fine */
  ck_assert_int_eq(synchro_call(s, &test_op_add, &args, SYNCHRO_TIMEOUT_DEFAULT, &sum, NULL), 0);
  ck_assert_int_eq(sum, 2);
  close_free(other);
  close_free(s);
}
END_TEST

/* ---- A5: cancelling a started call waits for its cleanup --------------------------- */

START_TEST(test_a5_cancel_reaches_impl_and_waits_for_cleanup) {
  synchro_t *s = new_sync();
  int rep;
  for (rep = 0; rep < 10; rep++) {
    test_sleep_args_t args = {10000, 50};
    synchro_future_t *f = NULL;
    double t0;
    int rc;
    testops_reset();
    ck_assert_int_eq(synchro_submit(s, &test_op_sleep, &args, SYNCHRO_TIMEOUT_DEFAULT, &f), 0);
    wait_started(1); /* started */
    ck_assert_int_eq(test_hooks_run, 0);
    t0 = test_now_ms();
    ck_assert_int_eq(synchro_future_cancel(f), 0);
    ck_assert_int_eq(synchro_future_cancel(f), 0); /* asked again: same answer */
    rc = synchro_future_wait(f, SYNCHRO_TIMEOUT_INFINITE);
    /* the caller returns only after the hook (on the loop) and the cleanup */
    ck_assert_int_eq(test_cleanups_done, 1);
    ck_assert_int_eq(test_hooks_run, 1);
    ck_assert_int_eq(test_hooks_off_loop, 0);
    ck_assert_int_eq(test_last_cancel_reason, SYNCHRO_ECANCELED);
    ck_assert_int_eq(rc, SYNCHRO_ECANCELED);
    ck_assert_double_ge(test_now_ms() - t0, 49.0);
    ck_assert_int_eq(synchro_error_code(synchro_future_error(f)), SYNCHRO_ECANCELED);
    ck_assert_int_eq(synchro_future_cancel(f), SYNCHRO_EALREADY);
    synchro_future_free(f);
  }
  close_free(s);
}
END_TEST

START_TEST(test_a6_cancel_before_start_never_runs) {
  /* the loop is held by a gate; a cancelled queued call never starts */
  synchro_t *s = new_sync();
  synchro_future_t *gate = NULL, *f = NULL;
  test_sleep_args_t args = {0, 0};
  testops_reset();
  ck_assert_int_eq(synchro_submit(s, &test_op_gate, NULL, SYNCHRO_TIMEOUT_DEFAULT, &gate), 0);
  ck_assert_int_eq(synchro_submit(s, &test_op_sleep, &args, SYNCHRO_TIMEOUT_DEFAULT, &f), 0);
  ck_assert_int_eq(synchro_future_cancel(f), 0);
  test_gate_open = 1;
  ck_assert_int_eq(synchro_future_wait(f, SYNCHRO_TIMEOUT_INFINITE), SYNCHRO_ECANCELED);
  ck_assert_int_eq(synchro_future_wait(gate, SYNCHRO_TIMEOUT_INFINITE), 0);
  ck_assert_int_eq(test_sleeps_started, 0);
  ck_assert_int_eq(test_hooks_run, 0);
  synchro_future_free(f);
  synchro_future_free(gate);
  close_free(s);
}
END_TEST

/* ---- A6: cancel racing submission --------------------------------------------------- */

#define A6_BATCH 1000
#define A6_JITTER_US 20

typedef struct {
  synchro_future_t *_Atomic fs[A6_BATCH];
  int crc[A6_BATCH];
  int n;
  unsigned seed;
} a6_batch_t;

static const synchro_op_t *a6_op(int i) { return i % 2 ? &test_op_sleep : &test_op_add; }

static int a6_submit(synchro_t *s, int i, synchro_future_t **f) {
  /* Mostly instant calls (cancel races completion); every 16th sleeps 2 ms so that some
   * cancellations surely arrive first, however fast the loop is. */
  test_sleep_args_t sl = {i % 16 == 1 ? 2 : 0, 0};
  test_add_args_t ad = {i, 1};
  return synchro_submit(s, a6_op(i), i % 2 ? (const void *)&sl : (const void *)&ad,
                        SYNCHRO_TIMEOUT_DEFAULT, f);
}

static void *a6_canceller(void *arg) {
  a6_batch_t *b = arg;
  int i;
  for (i = 0; i < b->n; i++) {
    synchro_future_t *f;
    while ((f = atomic_load(&b->fs[i])) == NULL)
      sched_yield();
    spin_us((unsigned)(rand_r(&b->seed) % A6_JITTER_US));
    b->crc[i] = synchro_future_cancel(f);
  }
  return NULL;
}

/* Checks one batch and frees its futures; returns how many ended cancelled. */
static long a6_check(a6_batch_t *b) {
  long cancelled = 0;
  int i;
  for (i = 0; i < b->n; i++) {
    synchro_future_t *f = b->fs[i];
    int out = synchro_future_wait(f, 10000);
    ck_assert_msg(out == 0 || out == SYNCHRO_ECANCELED, "call %d ended %s", i,
                  synchro_err_name(out));
    if (b->crc[i] == 0)
      ck_assert_msg(out == SYNCHRO_ECANCELED, "cancel accepted but call %d ended %s", i,
                    synchro_err_name(out));
    else
      ck_assert_msg(b->crc[i] == SYNCHRO_EALREADY && out == 0, "call %d: cancel %s, outcome %s", i,
                    synchro_err_name(b->crc[i]), synchro_err_name(out));
    if (out == 0) {
      int64_t r = -1;
      ck_assert_int_eq(synchro_future_result(f, &r), 0);
      ck_assert_int_eq(r, i % 2 ? (i % 16 == 1 ? 2 : 0) : i + 1);
    } else {
      cancelled++;
    }
    synchro_future_free(f);
  }
  return cancelled;
}

START_TEST(test_a6_submit_then_cancel_same_thread) {
  synchro_t *s = new_sync();
  long total = test_scaled(100000), done = 0, cancelled = 0;
  a6_batch_t *b = calloc(1, sizeof(*b));
  unsigned seed = 12345;
  testops_reset();
  while (done < total) {
    int i;
    b->n = (int)(total - done < A6_BATCH ? total - done : A6_BATCH);
    for (i = 0; i < b->n; i++) {
      synchro_future_t *f = NULL;
      ck_assert_int_eq(a6_submit(s, i, &f), 0);
      b->fs[i] = f;
      spin_us((unsigned)(rand_r(&seed) % A6_JITTER_US));
      b->crc[i] = synchro_future_cancel(f);
    }
    cancelled += a6_check(b);
    done += b->n;
  }
  close_free(s);
  ck_assert_int_eq(test_hooks_run, test_cleanups_done); /* no cancel lost mid-way */
  ck_assert_int_gt(cancelled, 0);
  free(b);
}
END_TEST

START_TEST(test_a6_submit_then_cancel_from_third_thread) {
  synchro_t *s = new_sync();
  long total = test_scaled(100000), done = 0, cancelled = 0;
  a6_batch_t *b = calloc(1, sizeof(*b));
  unsigned seed = 777;
  testops_reset();
  while (done < total) {
    pthread_t t;
    int i;
    memset(b, 0, sizeof(*b));
    b->n = (int)(total - done < A6_BATCH ? total - done : A6_BATCH);
    b->seed = (unsigned)done;
    ck_assert_int_eq(pthread_create(&t, NULL, a6_canceller, b), 0);
    for (i = 0; i < b->n; i++) {
      synchro_future_t *f = NULL;
      ck_assert_int_eq(a6_submit(s, i, &f), 0);
      atomic_store(&b->fs[i], f);
      if (rand_r(&seed) % 4 == 0)
        spin_us((unsigned)(rand_r(&seed) % A6_JITTER_US));
    }
    pthread_join(t, NULL);
    cancelled += a6_check(b);
    done += b->n;
  }
  close_free(s);
  ck_assert_int_eq(test_hooks_run, test_cleanups_done);
  ck_assert_int_gt(cancelled, 0);
  free(b);
}
END_TEST

START_TEST(test_a6_cancel_of_idle_loop_observed_fast) {
  synchro_t *s = new_sync();
  test_sleep_args_t args = {10000, 0};
  synchro_future_t *f = NULL;
  double t0;
  testops_reset();
  ck_assert_int_eq(synchro_submit(s, &test_op_sleep, &args, SYNCHRO_TIMEOUT_DEFAULT, &f), 0);
  wait_started(1);
  usleep(20000); /* the loop is asleep */
  t0 = test_now_ms();
  ck_assert_int_eq(synchro_future_cancel(f), 0);
  ck_assert_int_eq(synchro_future_wait(f, SYNCHRO_TIMEOUT_INFINITE), SYNCHRO_ECANCELED);
  /* 1 ms expected; the sleep it ends lasts 10 s */
  ck_assert_double_lt(test_now_ms() - t0, test_bound_ms(100));
  synchro_future_free(f);
  close_free(s);
}
END_TEST

/* ---- A7: cancel racing completion ----------------------------------------------------- */

START_TEST(test_a7_cancel_racing_completion_releases_once) {
  synchro_t *s = new_sync();
  long n = test_scaled(20000), i, taken = 0;
  unsigned seed = 99;
  testops_reset();
  for (i = 0; i < n; i++) {
    test_string_args_t args = {(char *)"abc"};
    synchro_future_t *f = NULL;
    int out, crc;
    ck_assert_int_eq(synchro_submit(s, &test_op_upper, &args, SYNCHRO_TIMEOUT_DEFAULT, &f), 0);
    spin_us((unsigned)(rand_r(&seed) % 10));
    crc = synchro_future_cancel(f);
    out = synchro_future_wait(f, SYNCHRO_TIMEOUT_INFINITE);
    if (crc == 0)
      ck_assert_int_eq(out, SYNCHRO_ECANCELED);
    else
      ck_assert_int_eq(out, 0);
    if (out == 0 && (i % 3) != 0) { /* a third of the results are left to the future */
      char *r = NULL;
      ck_assert_int_eq(synchro_future_result(f, &r), 0);
      ck_assert_str_eq(r, "ABC");
      free(r);
      taken++;
    } else if (out != 0) {
      char *r = NULL;
      ck_assert_int_eq(synchro_future_result(f, &r), SYNCHRO_ECANCELED);
      ck_assert_ptr_null(r);
    }
    synchro_future_free(f);
  }
  close_free(s);
  ck_assert_int_eq(test_results_freed + taken, test_results_made);
  ck_assert_int_eq(test_args_freed, n);
}
END_TEST

/* ---- A9: cancelling after close ------------------------------------------------------ */

typedef struct {
  synchro_future_t **fs;
  long from, to;
  long bad;
} a9_range_t;

static void *a9_canceller(void *arg) {
  a9_range_t *r = arg;
  long i;
  for (i = r->from; i < r->to; i++) {
    int rc = synchro_future_cancel(r->fs[i]);
    if (rc != SYNCHRO_EALREADY && rc != 0)
      r->bad++;
  }
  return NULL;
}

START_TEST(test_a9_cancel_after_close_resolves) {
  synchro_t *s = new_sync();
  long n = test_scaled(2000), i;
  synchro_future_t **fs = calloc((size_t)n, sizeof(*fs));
  pthread_t t[4];
  a9_range_t r[4];
  size_t idx = 0;
  double t0;
  for (i = 0; i < n; i++) {
    test_sleep_args_t sl = {10000, 1};
    const synchro_op_t *op = i % 3 == 0   ? &test_op_sleep
                             : i % 3 == 1 ? &test_op_never
                                          : &test_op_stubborn;
    ck_assert_int_eq(synchro_submit(s, op, &sl, SYNCHRO_TIMEOUT_DEFAULT, &fs[i]), 0);
  }
  t0 = test_now_ms();
  ck_assert_int_eq(synchro_close(s, 20), 0);
  for (i = 0; i < 4; i++) {
    r[i] = (a9_range_t){fs, n * i / 4, n * (i + 1) / 4, 0};
    ck_assert_int_eq(pthread_create(&t[i], NULL, a9_canceller, &r[i]), 0);
  }
  for (i = 0; i < 4; i++)
    pthread_join(t[i], NULL);
  for (i = 0; i < 4; i++)
    ck_assert_int_eq(r[i].bad, 0);
  ck_assert_int_eq(synchro_future_wait_all(fs, (size_t)n, 1000), 0);
  ck_assert_int_eq(synchro_future_wait_any(fs, (size_t)n, 1000, &idx), 0);
  ck_assert_uint_eq(idx, 0);
  ck_assert_double_lt(test_now_ms() - t0, 20 + 100 + 2000);
  for (i = 0; i < n; i++) {
    ck_assert_int_eq(synchro_future_status(fs[i]), SYNCHRO_ESHUTDOWN);
    synchro_future_free(fs[i]);
  }
  free(fs);
  watchdog_unwatch(s);
  synchro_free(s);
}
END_TEST

START_TEST(test_a9_cancel_during_close_resolves) {
  /* cancels that race the close itself */
  synchro_t *s = new_sync();
  long n = test_scaled(2000), i;
  synchro_future_t **fs = calloc((size_t)n, sizeof(*fs));
  pthread_t t[4];
  a9_range_t r[4];
  for (i = 0; i < n; i++) {
    test_sleep_args_t sl = {10000, 1};
    ck_assert_int_eq(synchro_submit(s, &test_op_sleep, &sl, SYNCHRO_TIMEOUT_DEFAULT, &fs[i]), 0);
  }
  for (i = 0; i < 4; i++) {
    r[i] = (a9_range_t){fs, n * i / 4, n * (i + 1) / 4, 0};
    ck_assert_int_eq(pthread_create(&t[i], NULL, a9_canceller, &r[i]), 0);
  }
  ck_assert_int_eq(synchro_close(s, 0), 0);
  for (i = 0; i < 4; i++)
    pthread_join(t[i], NULL);
  ck_assert_int_eq(synchro_future_wait_all(fs, (size_t)n, 2000), 0);
  for (i = 0; i < n; i++) {
    int st = synchro_future_status(fs[i]);
    ck_assert_msg(st == SYNCHRO_ECANCELED || st == SYNCHRO_ESHUTDOWN, "future %ld: %s", i,
                  synchro_err_name(st));
    ck_assert_int_eq(r[i % 4].bad, 0);
    synchro_future_free(fs[i]);
  }
  free(fs);
  watchdog_unwatch(s);
  synchro_free(s);
}
END_TEST

/* ---- A26/A27: deadlines and wait timeouts ------------------------------------------- */

START_TEST(test_a26_deadline_cancels_work_and_bounds_cleanup) {
  synchro_t *s = new_sync();
  int rep;
  for (rep = 0; rep < 3; rep++) {
    test_sleep_args_t args = {10000, 20};
    int64_t r = 0;
    synchro_error_t *err = NULL;
    double t0, took;
    int rc;
    testops_reset();
    t0 = test_now_ms();
    rc = synchro_call(s, &test_op_sleep, &args, 50, &r, &err);
    took = test_now_ms() - t0;
    ck_assert_int_eq(rc, SYNCHRO_ETIMEDOUT);
    ck_assert_int_eq(synchro_error_code(err), SYNCHRO_ETIMEDOUT);
    synchro_error_free(err); /* a shared static error: harmless */
    ck_assert_double_ge(took, 50.0 + 20.0 - 1.0);
    /* far under the 10 s the sleep would have taken */
    ck_assert_double_lt(took, test_bound_ms(50.0 + 20.0 + 250.0));
    ck_assert_int_eq(test_hooks_run, 1); /* the implementation saw it */
    ck_assert_int_eq(test_last_cancel_reason, SYNCHRO_ETIMEDOUT);
    ck_assert_int_eq(test_cleanups_done, 1);
  }
  close_free(s);
}
END_TEST

/* "Don't wait for cleanup": the same call with SYNCHRO_OP_DETACH_CLEANUP returns at
 * its deadline; the 300 ms cleanup goes on on the loop, and close waits for it. */
START_TEST(test_a26_detached_cleanup_returns_at_deadline) {
  synchro_t *s = new_sync();
  synchro_op_t op = test_op_sleep;
  test_sleep_args_t args = {10000, 300};
  int64_t r = 0;
  double t0, took;
  op.name = "sleep_detached";
  op.flags = SYNCHRO_OP_DETACH_CLEANUP;
  testops_reset();
  t0 = test_now_ms();
  ck_assert_int_eq(synchro_call(s, &op, &args, 50, &r, NULL), SYNCHRO_ETIMEDOUT);
  took = test_now_ms() - t0;
  ck_assert_double_ge(took, 49.0);
  ck_assert_double_lt(took, 300.0); /* did not wait for the cleanup */
  ck_assert_int_eq(test_hooks_run, 1);
  ck_assert_int_eq(test_last_cancel_reason, SYNCHRO_ETIMEDOUT);
  ck_assert_int_eq(test_cleanups_done, 0); /* still running on the loop */
  close_free(s);                           /* waits for it, within the close bound */
  ck_assert_int_eq(test_cleanups_done, 1);
}
END_TEST

static int count_dir(const char *path) {
  DIR *d = opendir(path);
  int n = 0;
  ck_assert_ptr_nonnull(d);
  while (readdir(d) != NULL)
    n++;
  closedir(d);
  return n;
}

/* 10,000 calls time out (futures, 5 ms deadlines on 10 s sleeps): each ends
 * ETIMEDOUT, after its hook and cleanup ran if it had started, and after close the thread and fd counts
 * are back where they started (memory: ASan and valgrind runs). */
START_TEST(test_a26_ten_thousand_timeouts_back_to_baseline) {
  const long n = test_scaled(10000);
  synchro_future_t **fs = calloc((size_t)n, sizeof(*fs));
  test_sleep_args_t args = {1, 1};
  synchro_stats_t st;
  int64_t r = 0;
  int fds0, threads0;
  synchro_t *s = new_sync();
  long i;
  ck_assert_ptr_nonnull(fs);
  /* warm-up: libuv opens a process-wide pipe at its first loop, kept until exit */
  ck_assert_int_eq(synchro_call(s, &test_op_sleep, &args, SYNCHRO_TIMEOUT_DEFAULT, &r, NULL), 0);
  close_free(s);
  fds0 = count_dir("/proc/self/fd");
  threads0 = count_dir("/proc/self/task");
  s = new_sync();
  testops_reset();
  args.ms = 10000;
  for (i = 0; i < n; i++)
    ck_assert_int_eq(synchro_submit(s, &test_op_sleep, &args, 5, &fs[i]), 0);
  ck_assert_int_eq(synchro_future_wait_all(fs, (size_t)n, 60000), 0);
  for (i = 0; i < n; i++) {
    ck_assert_int_eq(synchro_future_status(fs[i]), SYNCHRO_ETIMEDOUT);
    synchro_future_free(fs[i]);
  }
  /* a call whose deadline passed while it was queued never starts; every one that
   * started saw the cancellation and finished its cleanup */
  ck_assert_int_gt(test_sleeps_started, 0);
  ck_assert_int_eq(test_hooks_run, test_sleeps_started);
  ck_assert_int_eq(test_cleanups_done, test_sleeps_started);
  ck_assert_int_eq(synchro_stats(s, &st), 0);
  ck_assert_uint_eq(st.cancelled, (uint64_t)n);
  ck_assert_uint_eq(st.in_flight, 0);
  close_free(s);
  free(fs);
  ck_assert_int_eq(count_dir("/proc/self/fd"), fds0);
  ck_assert_int_eq(count_dir("/proc/self/task"), threads0);
}
END_TEST

START_TEST(test_a26_future_deadline) {
  synchro_t *s = new_sync();
  test_sleep_args_t args = {10000, 0};
  synchro_future_t *f = NULL;
  double t0 = test_now_ms();
  ck_assert_int_eq(synchro_submit(s, &test_op_sleep, &args, 30, &f), 0);
  ck_assert_int_eq(synchro_future_wait(f, SYNCHRO_TIMEOUT_INFINITE), SYNCHRO_ETIMEDOUT);
  ck_assert_double_ge(test_now_ms() - t0, 29.0);
  /* cancel after the deadline decided: already */
  ck_assert_int_eq(synchro_future_cancel(f), SYNCHRO_EALREADY);
  synchro_future_free(f);
  /* a zero deadline: refused as timed out without starting */
  testops_reset();
  ck_assert_int_eq(synchro_submit(s, &test_op_sleep, &args, 0, &f), 0);
  ck_assert_int_eq(synchro_future_wait(f, SYNCHRO_TIMEOUT_INFINITE), SYNCHRO_ETIMEDOUT);
  synchro_future_free(f);
  close_free(s);
}
END_TEST

START_TEST(test_a26_default_deadlines) {
  synchro_options_t o;
  synchro_t *s = NULL;
  synchro_op_t op_with_timeout = test_op_sleep;
  test_sleep_args_t args = {10000, 0}, short_args = {20, 0}, mid_args = {100, 0};
  int64_t r = 0;
  double t0;
  synchro_options_init(&o);
  o.default_timeout_ms = 30;
  ck_assert_int_eq(synchro_new(&s, &o), 0);
  watchdog_watch(s);
  /* the synchronizer's default */
  t0 = test_now_ms();
  ck_assert_int_eq(synchro_call(s, &test_op_sleep, &args, SYNCHRO_TIMEOUT_DEFAULT, &r, NULL),
                   SYNCHRO_ETIMEDOUT);
  ck_assert_double_ge(test_now_ms() - t0, 29.0);
  ck_assert_double_lt(test_now_ms() - t0, 1000);
  /* an explicit infinite submission overrides it */
  ck_assert_int_eq(synchro_call(s, &test_op_sleep, &short_args, SYNCHRO_TIMEOUT_INFINITE, &r, NULL),
                   0);
  ck_assert_int_eq(r, 20);
  /* the op's timeout wins over the synchronizer's (the default would expire first) */
  op_with_timeout.timeout_ms = 300;
  ck_assert_int_eq(synchro_call(s, &op_with_timeout, &mid_args, SYNCHRO_TIMEOUT_DEFAULT, &r, NULL),
                   0);
  ck_assert_int_eq(r, 100);
  t0 = test_now_ms();
  ck_assert_int_eq(synchro_call(s, &op_with_timeout, &args, SYNCHRO_TIMEOUT_DEFAULT, &r, NULL),
                   SYNCHRO_ETIMEDOUT);
  ck_assert_double_ge(test_now_ms() - t0, 299.0);
  /* an op with an infinite timeout ignores the synchronizer's default */
  op_with_timeout.timeout_ms = SYNCHRO_TIMEOUT_INFINITE;
  ck_assert_int_eq(
      synchro_call(s, &op_with_timeout, &short_args, SYNCHRO_TIMEOUT_DEFAULT, &r, NULL), 0);
  close_free(s);
}
END_TEST

START_TEST(test_a27_wait_timeout_is_not_call_timeout) {
  synchro_t *s = new_sync();
  test_sleep_args_t args = {100, 0};
  synchro_future_t *f = NULL;
  int64_t r = 0;
  double t0;
  testops_reset();
  ck_assert_int_eq(synchro_submit(s, &test_op_sleep, &args, SYNCHRO_TIMEOUT_DEFAULT, &f), 0);
  t0 = test_now_ms();
  ck_assert_int_eq(synchro_future_wait(f, 10), SYNCHRO_EPENDING);
  ck_assert_double_ge(test_now_ms() - t0, 9.0);
  ck_assert_int_eq(synchro_future_wait(f, 0), SYNCHRO_EPENDING);
  ck_assert_int_eq(synchro_future_status(f), SYNCHRO_EPENDING);
  ck_assert_int_eq(synchro_future_result(f, &r), SYNCHRO_EPENDING);
  ck_assert_ptr_null(synchro_future_error(f));
  ck_assert_int_eq(synchro_future_wait(f, SYNCHRO_TIMEOUT_INFINITE), 0);
  ck_assert_int_eq(synchro_future_result(f, &r), 0);
  ck_assert_int_eq(r, 100);
  ck_assert_int_eq(test_hooks_run, 0); /* the wait's timeout cancelled nothing */
  synchro_future_free(f);
  close_free(s);
}
END_TEST

START_TEST(test_a27_impl_timeout_is_delivered_as_impl_code) {
  synchro_t *s = new_sync();
  test_fail_args_t args = {UV_ETIMEDOUT};
  synchro_error_t *err = NULL;
  synchro_future_t *f = NULL;
  synchro_stats_t st;
  int64_t r;
  ck_assert_int_eq(synchro_call(s, &test_op_fail, &args, SYNCHRO_TIMEOUT_DEFAULT, &r, &err),
                   UV_ETIMEDOUT);
  ck_assert_int_eq(synchro_error_code(err), UV_ETIMEDOUT);
  ck_assert_str_eq(synchro_error_origin(err), "fail");
  synchro_error_free(err);
  ck_assert_int_eq(synchro_submit(s, &test_op_fail, &args, SYNCHRO_TIMEOUT_DEFAULT, &f), 0);
  ck_assert_int_eq(synchro_future_wait(f, SYNCHRO_TIMEOUT_INFINITE), UV_ETIMEDOUT);
  ck_assert_int_ne(synchro_future_status(f), SYNCHRO_ETIMEDOUT);
  synchro_future_free(f);
  ck_assert_int_eq(synchro_close(s, 0), 0); /* counters are final once the loop is joined */
  ck_assert_int_eq(synchro_stats(s, &st), 0);
  ck_assert_uint_eq(st.failed, 2); /* an implementation's error, not a runtime outcome */
  ck_assert_uint_eq(st.cancelled, 0);
  watchdog_unwatch(s);
  synchro_free(s);
}
END_TEST

/* ---- A25: errors ----------------------------------------------------------------------- */

static void check_fail_error(const synchro_error_t *err, int code) {
  json_t *d;
  ck_assert_ptr_nonnull(err);
  ck_assert_int_eq(synchro_error_code(err), code);
  ck_assert_str_eq(synchro_error_message(err), "failed on purpose");
  ck_assert_str_eq(synchro_error_origin(err), "fail");
  d = synchro_error_details(err);
  ck_assert_ptr_nonnull(d);
  ck_assert_int_eq(json_integer_value(json_object_get(d, "retry_after")), 2);
}

START_TEST(test_a25_errors_keep_code_message_origin_details) {
  synchro_t *s = new_sync();
  test_fail_args_t args = {UV_EIO};
  synchro_error_t *err = NULL, *taken = NULL;
  synchro_future_t *f = NULL;
  int64_t r = 0;
  /* blocking */
  ck_assert_int_eq(synchro_call(s, &test_op_fail, &args, SYNCHRO_TIMEOUT_DEFAULT, &r, &err),
                   UV_EIO);
  check_fail_error(err, UV_EIO);
  synchro_error_free(err);
  /* blocking, error not wanted: released by the runtime */
  ck_assert_int_eq(synchro_call(s, &test_op_fail, &args, SYNCHRO_TIMEOUT_DEFAULT, &r, NULL),
                   UV_EIO);
  /* a domain code */
  args.code = -1000042;
  ck_assert_int_eq(synchro_call(s, &test_op_fail, &args, SYNCHRO_TIMEOUT_DEFAULT, &r, &err),
                   -1000042);
  check_fail_error(err, -1000042);
  synchro_error_free(err);
  /* future: borrowed, then taken */
  args.code = UV_EIO;
  ck_assert_int_eq(synchro_submit(s, &test_op_fail, &args, SYNCHRO_TIMEOUT_DEFAULT, &f), 0);
  ck_assert_int_eq(synchro_future_wait(f, SYNCHRO_TIMEOUT_INFINITE), UV_EIO);
  check_fail_error(synchro_future_error(f), UV_EIO);
  ck_assert_int_eq(synchro_future_result(f, &r), UV_EIO);
  ck_assert_int_eq(synchro_future_take_error(f, NULL), SYNCHRO_EINVAL);
  ck_assert_int_eq(synchro_future_take_error(f, &taken), 0);
  check_fail_error(taken, UV_EIO);
  ck_assert_int_eq(synchro_future_take_error(f, &err), SYNCHRO_EALREADY);
  ck_assert_ptr_null(err);
  ck_assert_ptr_null(synchro_future_error(f));
  synchro_future_free(f);
  check_fail_error(taken, UV_EIO); /* still ours after the future is gone */
  synchro_error_free(taken);
  /* future freed without taking: released with it (ASan proves it) */
  ck_assert_int_eq(synchro_submit(s, &test_op_fail, &args, SYNCHRO_TIMEOUT_DEFAULT, &f), 0);
  ck_assert_int_eq(synchro_future_wait(f, SYNCHRO_TIMEOUT_INFINITE), UV_EIO);
  synchro_future_free(f);
  close_free(s);
}
END_TEST

/* The aio flavor: the host callback takes the error (the future is freed after it). */
static void take_error_cb(synchro_future_t *f, int status, void *data) {
  synchro_error_t **out = data;
  if (status == UV_EIO)
    synchro_future_take_error(f, out);
}

START_TEST(test_a25_cause_chain_through_all_three_flavors) {
  synchro_t *s = new_sync();
  synchro_error_t *err = NULL, *aio_err = NULL;
  synchro_future_t *f = NULL;
  const synchro_error_t *e, *c;
  int pass;
  for (pass = 0; pass < 3; pass++) {
    if (pass == 0) {
      ck_assert_int_eq(synchro_call(s, &op_chain, NULL, SYNCHRO_TIMEOUT_DEFAULT, NULL, &err),
                       UV_EIO);
      e = err;
    } else if (pass == 2) {
      uv_loop_t loop;
      synchro_host_t *h = NULL;
      synchro_future_t *g = NULL;
      ck_assert_int_eq(uv_loop_init(&loop), 0);
      ck_assert_int_eq(synchro_host_new_uv(&h, &loop), 0);
      ck_assert_int_eq(synchro_submit(s, &op_chain, NULL, SYNCHRO_TIMEOUT_DEFAULT, &g), 0);
      ck_assert_int_eq(synchro_future_then(g, h, take_error_cb, &aio_err), 0);
      ck_assert_int_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
      synchro_host_free(h);
      ck_assert_int_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
      ck_assert_int_eq(uv_loop_close(&loop), 0);
      ck_assert_ptr_nonnull(aio_err);
      e = aio_err;
    } else {
      ck_assert_int_eq(synchro_submit(s, &op_chain, NULL, SYNCHRO_TIMEOUT_DEFAULT, &f), 0);
      ck_assert_int_eq(synchro_future_wait(f, SYNCHRO_TIMEOUT_INFINITE), UV_EIO);
      e = synchro_future_error(f);
    }
    ck_assert_int_eq(synchro_error_code(e), UV_EIO);
    ck_assert_str_eq(synchro_error_message(e), "disk full");
    ck_assert_str_eq(synchro_error_origin(e), "write_block"); /* a prepared origin is kept */
    ck_assert_int_eq(json_integer_value(json_object_get(synchro_error_details(e), "retry_after")),
                     2);
    c = synchro_error_cause(e);
    ck_assert_int_eq(synchro_error_code(c), UV_ECONNRESET);
    ck_assert_str_eq(synchro_error_message(c), "peer reset");
    ck_assert_str_eq(synchro_error_origin(c), "recv");
    ck_assert_ptr_null(synchro_error_cause(c));
  }
  synchro_error_free(err);
  synchro_error_free(aio_err);
  synchro_future_free(f);
  close_free(s);
}
END_TEST

/* SYNCHRO_ERROR_CONTEXT=1 adds one link naming the op and synchronizer at the end of
 * the chain: the implementation's error and its cause still come first, unchanged. */
START_TEST(test_a25_error_context_knob_appends_a_link) {
  synchro_options_t opts;
  synchro_t *s = NULL;
  synchro_error_t *err = NULL;
  synchro_future_t *f = NULL;
  const synchro_error_t *e, *c, *link;
  int pass;
  synchro_options_init(&opts);
  opts.name = "ctxsync";
  ck_assert_int_eq(setenv("SYNCHRO_ERROR_CONTEXT", "1", 1), 0);
  ck_assert_int_eq(synchro_new(&s, &opts), 0);
  unsetenv("SYNCHRO_ERROR_CONTEXT"); /* read once, at creation */
  for (pass = 0; pass < 2; pass++) {
    if (pass == 0) {
      ck_assert_int_eq(synchro_call(s, &op_chain, NULL, SYNCHRO_TIMEOUT_DEFAULT, NULL, &err),
                       UV_EIO);
      e = err;
    } else {
      ck_assert_int_eq(synchro_submit(s, &op_chain, NULL, SYNCHRO_TIMEOUT_DEFAULT, &f), 0);
      ck_assert_int_eq(synchro_future_wait(f, SYNCHRO_TIMEOUT_INFINITE), UV_EIO);
      e = synchro_future_error(f);
    }
    ck_assert_str_eq(synchro_error_message(e), "disk full");
    ck_assert_str_eq(synchro_error_origin(e), "write_block");
    c = synchro_error_cause(e);
    ck_assert_str_eq(synchro_error_message(c), "peer reset");
    link = synchro_error_cause(c);
    ck_assert_ptr_nonnull(link);
    ck_assert_int_eq(synchro_error_code(link), UV_EIO);
    ck_assert_str_eq(synchro_error_origin(link), "synchro");
    ck_assert_str_eq(json_string_value(json_object_get(synchro_error_details(link), "op")),
                     "chain");
    ck_assert_str_eq(
        json_string_value(json_object_get(synchro_error_details(link), "synchronizer")), "ctxsync");
    ck_assert_ptr_nonnull(strstr(synchro_error_message(link), "chain"));
    ck_assert_ptr_null(synchro_error_cause(link));
  }
  synchro_error_free(err);
  synchro_future_free(f);
  close_free(s);
  /* without the knob: no link */
  s = new_sync();
  ck_assert_int_eq(synchro_call(s, &op_chain, NULL, SYNCHRO_TIMEOUT_DEFAULT, NULL, &err), UV_EIO);
  ck_assert_ptr_null(synchro_error_cause(synchro_error_cause(err)));
  synchro_error_free(err);
  close_free(s);
}
END_TEST

START_TEST(test_runtime_errors_are_static_and_free_is_harmless) {
  synchro_t *s = new_sync();
  synchro_future_t *f = NULL;
  synchro_error_t *err = NULL;
  test_sleep_args_t args = {10000, 0};
  ck_assert_int_eq(synchro_submit(s, &test_op_sleep, &args, SYNCHRO_TIMEOUT_DEFAULT, &f), 0);
  ck_assert_int_eq(synchro_future_cancel(f), 0);
  ck_assert_int_eq(synchro_future_wait(f, SYNCHRO_TIMEOUT_INFINITE), SYNCHRO_ECANCELED);
  ck_assert_int_eq(synchro_error_code(synchro_future_error(f)), SYNCHRO_ECANCELED);
  ck_assert_str_eq(synchro_error_message(synchro_future_error(f)),
                   synchro_strerror(SYNCHRO_ECANCELED));
  ck_assert_int_eq(synchro_future_take_error(f, &err), 0);
  ck_assert_int_eq(synchro_error_code(err), SYNCHRO_ECANCELED);
  synchro_error_free(err);
  synchro_error_free(err); /* static: twice is still harmless */
  synchro_future_free(f);
  close_free(s);
}
END_TEST

/* ---- completion misuse, argument copies, detaching -------------------------------------- */

START_TEST(test_second_completion_ealready) {
  synchro_t *s = new_sync();
  int64_t r = 0;
  testops_reset();
  ck_assert_int_eq(synchro_call(s, &test_op_twice, NULL, SYNCHRO_TIMEOUT_DEFAULT, &r, NULL), 0);
  ck_assert_int_eq(r, 1); /* the first result */
  close_free(s); /* the caller may wake before the second completion: join the loop first */
  ck_assert_int_eq(test_second_rc, SYNCHRO_EALREADY);
}
END_TEST

START_TEST(test_args_are_deep_copied) {
  synchro_t *s = new_sync();
  int i;
  testops_reset();
  for (i = 0; i < 100; i++) {
    char *text = strdup("deep copy");
    test_string_args_t args = {text};
    synchro_future_t *f = NULL;
    char *r = NULL;
    ck_assert_int_eq(synchro_submit(s, &test_op_upper, &args, SYNCHRO_TIMEOUT_DEFAULT, &f), 0);
    memset(text, 'z', strlen(text)); /* the caller's memory is never read again */
    free(text);
    args.text = NULL;
    ck_assert_int_eq(synchro_future_wait(f, SYNCHRO_TIMEOUT_INFINITE), 0);
    ck_assert_int_eq(synchro_future_result(f, &r), 0);
    ck_assert_str_eq(r, "DEEP COPY");
    free(r);
    synchro_future_free(f);
  }
  close_free(s);
  ck_assert_int_eq(test_args_freed, 100);
}
END_TEST

START_TEST(test_large_args_block) {
  /* an argument block bigger than the inline space, copied with memcpy */
  enum { N = 4096 };
  typedef struct {
    int64_t v[N];
  } big_t;
  synchro_t *s = new_sync();
  big_t *big = malloc(sizeof(*big));
  synchro_future_t *f = NULL;
  int64_t r = 0;
  int i;
  synchro_op_t op = test_op_add; /* reads the first two words: a + b */
  op.args_size = sizeof(big_t);
  for (i = 0; i < N; i++)
    big->v[i] = i + 10;
  ck_assert_int_eq(synchro_submit(s, &op, big, SYNCHRO_TIMEOUT_DEFAULT, &f), 0);
  memset(big, 0, sizeof(*big));
  free(big);
  ck_assert_int_eq(synchro_future_wait(f, SYNCHRO_TIMEOUT_INFINITE), 0);
  ck_assert_int_eq(synchro_future_result(f, &r), 0);
  ck_assert_int_eq(r, 21);
  synchro_future_free(f);
  close_free(s);
}
END_TEST

START_TEST(test_free_pending_future_detaches) {
  synchro_t *s = new_sync();
  synchro_future_t *gate = NULL, *f = NULL;
  test_string_args_t args = {(char *)"detached"};
  testops_reset();
  ck_assert_int_eq(synchro_submit(s, &test_op_gate, NULL, SYNCHRO_TIMEOUT_DEFAULT, &gate), 0);
  ck_assert_int_eq(synchro_submit(s, &test_op_upper, &args, SYNCHRO_TIMEOUT_DEFAULT, &f), 0);
  ck_assert_int_eq(synchro_future_status(f), SYNCHRO_EPENDING);
  synchro_future_free(f); /* pending: the call goes on */
  test_gate_open = 1;
  ck_assert_int_eq(synchro_future_wait(gate, SYNCHRO_TIMEOUT_INFINITE), 0);
  synchro_future_free(gate);
  close_free(s);
  ck_assert_int_eq(test_results_made, 1);
  ck_assert_int_eq(test_results_freed, 1); /* released on arrival */
  ck_assert_int_eq(test_args_freed, 1);
}
END_TEST

START_TEST(test_free_pending_started_future_detaches) {
  synchro_t *s = new_sync();
  synchro_future_t *f = NULL;
  test_sleep_args_t args = {30, 0};
  testops_reset();
  ck_assert_int_eq(synchro_submit(s, &test_op_sleep, &args, SYNCHRO_TIMEOUT_DEFAULT, &f), 0);
  wait_started(1);
  synchro_future_free(f);
  usleep(60000);
  ck_assert_int_eq(synchro_close(s, SYNCHRO_TIMEOUT_INFINITE), 0);
  ck_assert_int_eq(test_hooks_run, 0); /* detaching is not cancelling */
  watchdog_unwatch(s);
  synchro_free(s);
}
END_TEST

/* ---- bad input --------------------------------------------------------------------------- */

START_TEST(test_bad_input_einval) {
  synchro_t *s = new_sync();
  synchro_future_t *f = (synchro_future_t *)&f;
  test_add_args_t args = {1, 2};
  int64_t r;
  synchro_op_t op = test_op_add;
  synchro_error_t *err = (synchro_error_t *)&err;
  ck_assert_int_eq(synchro_submit(NULL, &test_op_add, &args, SYNCHRO_TIMEOUT_DEFAULT, &f),
                   SYNCHRO_EINVAL);
  ck_assert_ptr_null(f);
  ck_assert_int_eq(synchro_submit(s, NULL, &args, SYNCHRO_TIMEOUT_DEFAULT, &f), SYNCHRO_EINVAL);
  ck_assert_int_eq(synchro_submit(s, &test_op_add, &args, SYNCHRO_TIMEOUT_DEFAULT, NULL),
                   SYNCHRO_EINVAL);
  ck_assert_int_eq(synchro_submit(s, &test_op_add, NULL, SYNCHRO_TIMEOUT_DEFAULT, &f),
                   SYNCHRO_EINVAL); /* args required by the descriptor */
  ck_assert_int_eq(synchro_submit(s, &test_op_add, &args, -3, &f), SYNCHRO_EINVAL);
  ck_assert_int_eq(synchro_call(NULL, &test_op_add, &args, SYNCHRO_TIMEOUT_DEFAULT, &r, &err),
                   SYNCHRO_EINVAL);
  ck_assert_ptr_null(err);
  ck_assert_int_eq(synchro_call(s, NULL, &args, SYNCHRO_TIMEOUT_DEFAULT, &r, NULL), SYNCHRO_EINVAL);
  ck_assert_int_eq(synchro_call(s, &test_op_add, &args, SYNCHRO_TIMEOUT_DEFAULT, NULL, NULL),
                   SYNCHRO_EINVAL); /* a result is expected */
  op.args_size = SYNCHRO_ARGS_MAX + 1;
  ck_assert_int_eq(synchro_submit(s, &op, &args, SYNCHRO_TIMEOUT_DEFAULT, &f), SYNCHRO_EINVAL);
  op = test_op_add;
  op.result_size = SYNCHRO_RESULT_MAX + 1;
  ck_assert_int_eq(synchro_submit(s, &op, &args, SYNCHRO_TIMEOUT_DEFAULT, &f), SYNCHRO_EINVAL);
  op = test_op_add;
  op.impl = NULL;
  ck_assert_int_eq(synchro_submit(s, &op, &args, SYNCHRO_TIMEOUT_DEFAULT, &f), SYNCHRO_EINVAL);
  op = test_op_add;
  op.timeout_ms = -9;
  ck_assert_int_eq(synchro_submit(s, &op, &args, SYNCHRO_TIMEOUT_DEFAULT, &f), SYNCHRO_EINVAL);

  /* future functions with NULL */
  ck_assert_int_eq(synchro_future_status(NULL), SYNCHRO_EINVAL);
  ck_assert_int_eq(synchro_future_wait(NULL, 0), SYNCHRO_EINVAL);
  ck_assert_int_eq(synchro_future_cancel(NULL), SYNCHRO_EINVAL);
  ck_assert_int_eq(synchro_future_result(NULL, &r), SYNCHRO_EINVAL);
  ck_assert_int_eq(synchro_future_take_error(NULL, &err), SYNCHRO_EINVAL);
  ck_assert_ptr_null(synchro_future_error(NULL));
  ck_assert_ptr_null(synchro_future_name(NULL));
  synchro_future_free(NULL);

  /* the implementation-side API refuses callers off the loop thread */
  ck_assert_int_eq(synchro_submit(s, &test_op_add, &args, SYNCHRO_TIMEOUT_DEFAULT, &f), 0);
  ck_assert_int_eq(synchro_future_wait(f, -5), SYNCHRO_EINVAL);
  ck_assert_int_eq(synchro_future_wait(f, SYNCHRO_TIMEOUT_INFINITE), 0);
  ck_assert_int_eq(synchro_call_return(f, &r), SYNCHRO_EPERM);
  ck_assert_int_eq(synchro_call_fail(f, UV_EIO, NULL, NULL), SYNCHRO_EPERM);
  ck_assert_int_eq(synchro_call_cancel_reason(f), SYNCHRO_EPERM);
  ck_assert_ptr_null(synchro_call_args(f));
  ck_assert_ptr_null(synchro_call_loop(f));
  ck_assert_ptr_null(synchro_call_synchronizer(f));
  ck_assert_int_eq(synchro_future_result(f, &r), 0);
  ck_assert_int_eq(r, 3); /* untouched by the refused calls */
  synchro_future_free(f);
  close_free(s);
}
END_TEST

START_TEST(test_freed_future_efreed) {
  synchro_t *s = new_sync();
  synchro_future_t *f = NULL;
  test_add_args_t args = {1, 2};
  int64_t r;
  ck_assert_int_eq(synchro_submit(s, &test_op_add, &args, SYNCHRO_TIMEOUT_DEFAULT, &f), 0);
  ck_assert_int_eq(synchro_future_wait(f, SYNCHRO_TIMEOUT_INFINITE), 0);
  synchro_future_free(f);
  /* records are pooled, never returned to malloc, so the stale handle is readable */
  ck_assert_int_eq(synchro_future_status(f), SYNCHRO_EFREED);
  ck_assert_int_eq(synchro_future_wait(f, 0), SYNCHRO_EFREED);
  ck_assert_int_eq(synchro_future_cancel(f), SYNCHRO_EFREED);
  ck_assert_int_eq(synchro_future_result(f, &r), SYNCHRO_EFREED);
  synchro_future_free(f); /* a second free is ignored */
  close_free(s);
}
END_TEST

/* ---- admission -------------------------------------------------------------------------- */

typedef struct {
  synchro_t *s;
  atomic_int done;
  int rc;
  int64_t r;
} blocking_t;

static void *blocking_add(void *arg) {
  blocking_t *b = arg;
  test_add_args_t args = {5, 6};
  b->rc = synchro_call(b->s, &test_op_add, &args, SYNCHRO_TIMEOUT_DEFAULT, &b->r, NULL);
  b->done = 1;
  return NULL;
}

/* A29 at scale: max_inflight = 1,000 and 16 producers against a slow implementation
 * (each call waits 1 ms on a timer). Half submit futures and drop them (fire and
 * forget), retrying on SYNCHRO_EBUSY, which comes back synchronously; half make
 * blocking calls, which wait for room. A sampler checks that calls in flight never
 * exceed the bound and that the records in use (the memory a call costs) stay within
 * twice the bound plus one per producer. */
enum { BP_PRODUCERS = 16, BP_MAX = 1000 };
typedef struct {
  synchro_t *s;
  long n, busy, errors;
  int blocking;
} bp_producer_t;
static atomic_int bp_stop;

static void *bp_produce(void *arg) {
  bp_producer_t *p = arg;
  test_sleep_args_t args = {1, 0};
  long i;
  for (i = 0; i < p->n; i++) {
    if (p->blocking) {
      int64_t r = 0;
      if (synchro_call(p->s, &test_op_sleep, &args, SYNCHRO_TIMEOUT_DEFAULT, &r, NULL) != 0)
        p->errors++;
      continue;
    }
    for (;;) {
      synchro_future_t *f = NULL;
      int rc = synchro_submit(p->s, &test_op_sleep, &args, SYNCHRO_TIMEOUT_DEFAULT, &f);
      if (rc == 0) {
        synchro_future_free(f); /* fire and forget: the call still runs */
        break;
      }
      if (rc != SYNCHRO_EBUSY || f != NULL) {
        p->errors++;
        break;
      }
      p->busy++;
      sched_yield();
    }
  }
  return NULL;
}

typedef struct {
  synchro_t *s;
  uint64_t max_inflight;
  int64_t max_records;
} bp_sampler_t;

static void *bp_sample(void *arg) {
  bp_sampler_t *m = arg;
  while (!atomic_load(&bp_stop)) {
    synchro_stats_t st;
    synchro_test_live_t live;
    synchro_stats(m->s, &st);
    synchro_test_live(&live);
    if (st.in_flight > m->max_inflight)
      m->max_inflight = st.in_flight;
    if (live.records > m->max_records)
      m->max_records = live.records;
    usleep(200);
  }
  return NULL;
}

START_TEST(test_a29_backpressure_at_scale) {
  synchro_options_t o;
  synchro_t *s = NULL;
  bp_producer_t p[BP_PRODUCERS];
  bp_sampler_t m = {NULL, 0, 0};
  pthread_t t[BP_PRODUCERS], sampler;
  synchro_test_live_t base;
  synchro_stats_t st;
  long n = test_scaled(20000), busy = 0, total = 0, i;
  synchro_options_init(&o);
  o.max_inflight = BP_MAX;
  ck_assert_int_eq(synchro_new(&s, &o), 0);
  watchdog_watch(s);
  synchro_test_live(&base);
  m.s = s;
  bp_stop = 0;
  ck_assert_int_eq(pthread_create(&sampler, NULL, bp_sample, &m), 0);
  for (i = 0; i < BP_PRODUCERS; i++) {
    /* a blocking producer waits ~1 ms per call: it makes fewer */
    p[i] = (bp_producer_t){s, i % 2 ? n / 20 + 1 : n, 0, 0, (int)(i % 2)};
    ck_assert_int_eq(pthread_create(&t[i], NULL, bp_produce, &p[i]), 0);
  }
  for (i = 0; i < BP_PRODUCERS; i++) {
    pthread_join(t[i], NULL);
    ck_assert_int_eq(p[i].errors, 0);
    busy += p[i].busy;
    total += p[i].n;
  }
  atomic_store(&bp_stop, 1);
  pthread_join(sampler, NULL);
  ck_assert_int_gt(busy, 0); /* the bound was reached and said so */
  ck_assert_uint_le(m.max_inflight, BP_MAX);
  /* a resolved call's record goes back at the end of the loop iteration, while its
   * admission slot is free at once: at most twice the bound, plus the producers' own */
  ck_assert_int_le(m.max_records - base.records, 2 * BP_MAX + BP_PRODUCERS);
  ck_assert_int_eq(synchro_close(s, 10000), 0);
  ck_assert_int_eq(synchro_stats(s, &st), 0);
  ck_assert_uint_eq(st.submitted, (uint64_t)total);
  ck_assert_uint_eq(st.completed, st.submitted);
  printf("a29: %d producers, %ld calls, max_inflight %d: %ld EBUSY, peak in flight %llu, "
         "peak records %lld\n",
         BP_PRODUCERS, total, BP_MAX, busy, (unsigned long long)m.max_inflight,
         (long long)(m.max_records - base.records));
  watchdog_unwatch(s);
  synchro_free(s);
}
END_TEST

START_TEST(test_max_inflight_busy_and_blocking_waits) {
  enum { MAX = 4 };
  synchro_options_t o;
  synchro_t *s = NULL;
  synchro_future_t *f[MAX], *extra = NULL;
  test_sleep_args_t args = {10000, 0};
  blocking_t b;
  pthread_t t;
  int i;
  synchro_options_init(&o);
  o.max_inflight = MAX;
  ck_assert_int_eq(synchro_new(&s, &o), 0);
  watchdog_watch(s);
  for (i = 0; i < MAX; i++)
    ck_assert_int_eq(synchro_submit(s, &test_op_sleep, &args, SYNCHRO_TIMEOUT_DEFAULT, &f[i]), 0);
  ck_assert_int_eq(synchro_submit(s, &test_op_sleep, &args, SYNCHRO_TIMEOUT_DEFAULT, &extra),
                   SYNCHRO_EBUSY);
  ck_assert_ptr_null(extra);
  b.s = s;
  b.done = 0;
  b.rc = -1;
  b.r = 0;
  ck_assert_int_eq(pthread_create(&t, NULL, blocking_add, &b), 0);
  usleep(50000);
  ck_assert_int_eq(b.done, 0); /* waits for room */
  ck_assert_int_eq(synchro_future_cancel(f[0]), 0);
  pthread_join(t, NULL);
  ck_assert_int_eq(b.rc, 0);
  ck_assert_int_eq(b.r, 11);
  ck_assert_int_eq(synchro_future_wait(f[0], SYNCHRO_TIMEOUT_INFINITE), SYNCHRO_ECANCELED);
  /* room again for a future */
  ck_assert_int_eq(synchro_submit(s, &test_op_sleep, &args, SYNCHRO_TIMEOUT_DEFAULT, &extra), 0);
  ck_assert_int_eq(synchro_future_cancel(extra), 0);
  ck_assert_int_eq(synchro_close(s, 0), 0);
  for (i = 0; i < MAX; i++)
    synchro_future_free(f[i]);
  synchro_future_free(extra);
  watchdog_unwatch(s);
  synchro_free(s);
}
END_TEST

/* ---- A16/A38: load ---------------------------------------------------------------------- */

#define LOAD_BATCH 256
typedef struct {
  synchro_t *s;
  long n;
  int id;
  long ok, bad;
} producer_t;

static void *future_producer(void *arg) {
  producer_t *p = arg;
  synchro_future_t *fs[LOAD_BATCH];
  long done = 0;
  while (done < p->n) {
    int k = (int)(p->n - done < LOAD_BATCH ? p->n - done : LOAD_BATCH), i;
    for (i = 0; i < k; i++) {
      test_add_args_t args = {done + i, p->id};
      if (synchro_submit(p->s, &test_op_add, &args, SYNCHRO_TIMEOUT_DEFAULT, &fs[i]) != 0) {
        p->bad++;
        return NULL;
      }
    }
    if (synchro_future_wait_all(fs, (size_t)k, 30000) != 0) {
      p->bad++;
      return NULL;
    }
    for (i = 0; i < k; i++) {
      int64_t r = -1;
      if (synchro_future_result(fs[i], &r) == 0 && r == done + i + p->id)
        p->ok++;
      else
        p->bad++;
      synchro_future_free(fs[i]);
    }
    done += k;
  }
  return NULL;
}

START_TEST(test_a16_a38_many_producers_no_lost_wakeups) {
  enum { P = 16 };
  synchro_t *s = new_sync();
  pthread_t t[P];
  producer_t p[P];
  synchro_stats_t st;
  long n = test_scaled(100000), ok = 0;
  int i;
  for (i = 0; i < P; i++) {
    p[i] = (producer_t){s, n, i * 1000000, 0, 0};
    ck_assert_int_eq(pthread_create(&t[i], NULL, future_producer, &p[i]), 0);
  }
  for (i = 0; i < P; i++)
    pthread_join(t[i], NULL);
  for (i = 0; i < P; i++) {
    ck_assert_int_eq(p[i].bad, 0);
    ok += p[i].ok;
  }
  ck_assert_int_eq(ok, P * n);
  ck_assert_int_eq(synchro_close(s, 0), 0);
  ck_assert_int_eq(synchro_stats(s, &st), 0);
  ck_assert_uint_eq(st.submitted, (uint64_t)(P * n));
  ck_assert_uint_eq(st.completed, (uint64_t)(P * n));
  ck_assert_uint_eq(st.in_flight, 0);
  watchdog_unwatch(s);
  synchro_free(s);
}
END_TEST

static void *mixed_caller(void *arg) {
  producer_t *p = arg;
  long i;
  for (i = 0; i < p->n; i++) {
    test_add_args_t args = {i, p->id};
    int64_t r = -1;
    if (i % 2 == 0) {
      if (synchro_call(p->s, &test_op_add, &args, SYNCHRO_TIMEOUT_DEFAULT, &r, NULL) != 0) {
        p->bad++;
        continue;
      }
    } else {
      synchro_future_t *f = NULL;
      if (synchro_submit(p->s, &test_op_add, &args, SYNCHRO_TIMEOUT_DEFAULT, &f) != 0 ||
          synchro_future_wait(f, SYNCHRO_TIMEOUT_INFINITE) != 0 ||
          synchro_future_result(f, &r) != 0)
        p->bad++;
      synchro_future_free(f);
    }
    if (r == i + p->id)
      p->ok++;
    else
      p->bad++;
  }
  return NULL;
}

START_TEST(test_a16_mixed_blocking_and_future_callers) {
  enum { P = 4 };
  synchro_t *s = new_sync();
  pthread_t t[P];
  producer_t p[P];
  synchro_stats_t st;
  long n = test_scaled(100000);
  int i;
  for (i = 0; i < P; i++) {
    p[i] = (producer_t){s, n, i * 7, 0, 0};
    ck_assert_int_eq(pthread_create(&t[i], NULL, mixed_caller, &p[i]), 0);
  }
  for (i = 0; i < P; i++)
    pthread_join(t[i], NULL);
  for (i = 0; i < P; i++) {
    ck_assert_int_eq(p[i].bad, 0);
    ck_assert_int_eq(p[i].ok, n);
  }
  ck_assert_int_eq(synchro_close(s, 0), 0);
  ck_assert_int_eq(synchro_stats(s, &st), 0);
  ck_assert_uint_eq(st.submitted, (uint64_t)(P * n));
  ck_assert_uint_eq(st.completed, st.submitted);
  watchdog_unwatch(s);
  synchro_free(s);
}
END_TEST

/* ---- A17: the wakeup path has no latency or CPU problems ---------------------------- */

static double process_cpu_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Past its spin window (at most 8 times the base, 160 us), the synchronizer neither
 * burns CPU nor wakes up over 500 ms. Generous: that may cost well under 1 ms; 25 ms
 * allows sanitizers and noise. */
static void check_goes_idle(synchro_t *s) {
  synchro_stats_t before, after;
  double cpu0;
  usleep(50000);
  ck_assert_int_eq(synchro_stats(s, &before), 0);
  cpu0 = process_cpu_ms();
  usleep(500000);
  ck_assert_int_eq(synchro_stats(s, &after), 0);
  ck_assert_uint_eq(after.wakeups, before.wakeups);
  ck_assert_double_lt(process_cpu_ms() - cpu0, 25.0);
}

/* An idle synchronizer, after its spin window, neither burns CPU nor wakes up. */
START_TEST(test_a17_idle_loop_no_spin_no_wakeups) {
  synchro_t *s = new_sync();
  test_add_args_t args = {1, 2};
  int64_t sum;
  ck_assert_int_eq(synchro_call(s, &test_op_add, &args, SYNCHRO_TIMEOUT_DEFAULT, &sum, NULL), 0);
  check_goes_idle(s);
  close_free(s);
}
END_TEST

/* Calls that keep arriving shortly after the loop gave up spinning grow its spin
 * window; the window stays bounded, so once the calls stop the loop still goes idle. */
START_TEST(test_a17_grown_spin_window_still_goes_idle) {
  synchro_t *s = new_sync();
  test_add_args_t args = {1, 2};
  int64_t sum;
  int i;
  for (i = 0; i < 200; i++) { /* gaps a little past the base window: it grows */
    ck_assert_int_eq(synchro_call(s, &test_op_add, &args, SYNCHRO_TIMEOUT_DEFAULT, &sum, NULL), 0);
    usleep(40);
  }
  check_goes_idle(s);
  close_free(s);
}
END_TEST

static void pin_to_cpu0(void) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(0, &set);
  pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

/* Caller and loop share one CPU (the loop thread inherits the starting caller's
 * affinity): every call still completes, and promptly. The bound is generous: it
 * catches a spin that starves the loop (libuv 1.44's uv_async_send window, or our own
 * spinning on a shared CPU), not a slow machine. */
START_TEST(test_a17_single_cpu_calls_complete_promptly) {
  synchro_t *s;
  test_add_args_t args = {1, 2};
  int64_t sum;
  long i, n = test_scaled(2000);
  double worst = 0;
  pin_to_cpu0();
  s = new_sync();
  for (i = 0; i < n; i++) {
    double t0 = test_now_ms(), took;
    ck_assert_int_eq(synchro_call(s, &test_op_add, &args, SYNCHRO_TIMEOUT_DEFAULT, &sum, NULL), 0);
    ck_assert_int_eq(sum, 3);
    took = test_now_ms() - t0;
    if (took > worst)
      worst = took;
  }
  ck_assert_double_lt(worst, 500.0);
  close_free(s);
}
END_TEST

/* Throughput does not depend on how many calls are outstanding: one wakeup handle per
 * synchronizer, a queue drained whole. 10 000 pending calls do not slow new ones. */
START_TEST(test_a17_outstanding_calls_do_not_slow_new_ones) {
  synchro_t *s = new_sync();
  enum { PENDING = 10000 };
  static synchro_future_t *pending[PENDING];
  test_sleep_args_t sleep_args = {60000, 0};
  test_add_args_t args = {1, 2};
  int64_t sum;
  long i, n = test_scaled(5000);
  double t_idle, t_busy, t0;
  t0 = test_now_ms();
  for (i = 0; i < n; i++)
    ck_assert_int_eq(synchro_call(s, &test_op_add, &args, SYNCHRO_TIMEOUT_DEFAULT, &sum, NULL), 0);
  t_idle = test_now_ms() - t0;
  for (i = 0; i < PENDING; i++)
    ck_assert_int_eq(
        synchro_submit(s, &test_op_sleep, &sleep_args, SYNCHRO_TIMEOUT_DEFAULT, &pending[i]), 0);
  t0 = test_now_ms();
  for (i = 0; i < n; i++)
    ck_assert_int_eq(synchro_call(s, &test_op_add, &args, SYNCHRO_TIMEOUT_DEFAULT, &sum, NULL), 0);
  t_busy = test_now_ms() - t0;
  /* generous: within 5x (plus 50 ms of noise) of the idle run */
  ck_assert_msg(t_busy < 5 * t_idle + 50, "idle %.1f ms, with 10000 pending %.1f ms", t_idle,
                t_busy);
  for (i = 0; i < PENDING; i++)
    synchro_future_free(pending[i]); /* detached; the close cancels them */
  close_free(s);
}
END_TEST

/* ---- A35: independent synchronizers coexist in one process -------------------------- */

typedef struct {
  synchro_t *s;
  long calls;
  atomic_long bad;
} coexist_arg_t;

/* One "library": blocking calls and futures on its own synchronizer. */
static void *coexist_worker(void *p) {
  coexist_arg_t *a = p;
  long i;
  for (i = 0; i < a->calls; i++) {
    test_add_args_t args = {i, 1};
    int64_t sum = 0;
    synchro_future_t *f = NULL;
    if (synchro_call(a->s, &test_op_add, &args, SYNCHRO_TIMEOUT_DEFAULT, &sum, NULL) != 0 ||
        sum != i + 1)
      a->bad++;
    if (synchro_submit(a->s, &test_op_add, &args, SYNCHRO_TIMEOUT_DEFAULT, &f) != 0 ||
        synchro_future_wait(f, 5000) != 0 || synchro_future_result(f, &sum) != 0 || sum != i + 1)
      a->bad++;
    synchro_future_free(f);
  }
  return NULL;
}

static void on_coexist_done(synchro_future_t *f, int status, void *data) {
  long *count = data;
  (void)f;
  if (status == 0)
    (*count)++;
}

START_TEST(test_a35_two_synchronizers_coexist) {
  coexist_arg_t a = {NULL, test_scaled(20000), 0}, b = {NULL, test_scaled(20000), 0};
  pthread_t ta, tb;
  uv_loop_t loop;
  synchro_host_t *host = NULL;
  long aio_done = 0, i, n_aio = test_scaled(2000);
  a.s = new_sync();
  b.s = new_sync();
  ck_assert_int_eq(uv_loop_init(&loop), 0);
  ck_assert_int_eq(synchro_host_new_uv(&host, &loop), 0);
  ck_assert_int_eq(pthread_create(&ta, NULL, coexist_worker, &a), 0);
  ck_assert_int_eq(pthread_create(&tb, NULL, coexist_worker, &b), 0);
  /* meanwhile, _aio-style calls on both, completing on this thread's loop */
  for (i = 0; i < n_aio; i++) {
    test_add_args_t args = {i, 2};
    synchro_future_t *f = NULL;
    ck_assert_int_eq(
        synchro_submit(i % 2 ? a.s : b.s, &test_op_add, &args, SYNCHRO_TIMEOUT_DEFAULT, &f), 0);
    ck_assert_int_eq(synchro_future_then(f, host, on_coexist_done, &aio_done), 0);
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  ck_assert_int_eq(aio_done, n_aio);
  pthread_join(ta, NULL);
  /* one shuts down while the other keeps working */
  ck_assert_int_eq(synchro_close(a.s, 1000), 0);
  pthread_join(tb, NULL);
  ck_assert_int_eq(a.bad, 0);
  ck_assert_int_eq(b.bad, 0);
  {
    test_add_args_t args = {40, 2};
    int64_t sum = 0;
    ck_assert_int_eq(synchro_call(b.s, &test_op_add, &args, SYNCHRO_TIMEOUT_DEFAULT, &sum, NULL),
                     0);
    ck_assert_int_eq(sum, 42);
  }
  watchdog_unwatch(a.s);
  synchro_free(a.s);
  close_free(b.s);
  synchro_host_free(host);
  uv_run(&loop, UV_RUN_DEFAULT);
  ck_assert_int_eq(uv_loop_close(&loop), 0);
}
END_TEST

static Suite *calls_suite(void) {
  Suite *s = suite_create("calls");
  TCase *tc;

  tc = tcase_create("results");
  watchdog_tcase(tc, "results", 10);
  tcase_add_test(tc, test_results_correct);
  tcase_add_test(tc, test_result_ownership_upper);
  tcase_add_test(tc, test_second_completion_ealready);
  tcase_add_test(tc, test_args_are_deep_copied);
  tcase_add_test(tc, test_large_args_block);
  tcase_add_test(tc, test_free_pending_future_detaches);
  tcase_add_test(tc, test_free_pending_started_future_detaches);
  suite_add_tcase(s, tc);

  tc = tcase_create("deadlock");
  watchdog_tcase(tc, "deadlock", 10);
  tcase_add_test(tc, test_a1_blocking_call_on_loop_thread_deadlk);
  tcase_add_test(tc, test_a1_future_wait_on_loop_thread_deadlk);
  tcase_add_test(tc, test_a1_wait_all_any_and_cq_on_loop_thread_deadlk);
  suite_add_tcase(s, tc);

  tc = tcase_create("cancel");
  watchdog_tcase(tc, "cancel", 30);
  tcase_add_test(tc, test_a5_cancel_reaches_impl_and_waits_for_cleanup);
  tcase_add_test(tc, test_a6_cancel_before_start_never_runs);
  tcase_add_test(tc, test_a6_submit_then_cancel_same_thread);
  tcase_add_test(tc, test_a6_submit_then_cancel_from_third_thread);
  tcase_add_test(tc, test_a6_cancel_of_idle_loop_observed_fast);
  tcase_add_test(tc, test_a7_cancel_racing_completion_releases_once);
  tcase_add_test(tc, test_a9_cancel_after_close_resolves);
  tcase_add_test(tc, test_a9_cancel_during_close_resolves);
  suite_add_tcase(s, tc);

  tc = tcase_create("timeouts");
  watchdog_tcase(tc, "timeouts", 10);
  tcase_add_test(tc, test_a26_deadline_cancels_work_and_bounds_cleanup);
  tcase_add_test(tc, test_a26_future_deadline);
  tcase_add_test(tc, test_a26_detached_cleanup_returns_at_deadline);
  tcase_add_test(tc, test_a26_ten_thousand_timeouts_back_to_baseline);
  tcase_add_test(tc, test_a26_default_deadlines);
  tcase_add_test(tc, test_a27_wait_timeout_is_not_call_timeout);
  tcase_add_test(tc, test_a27_impl_timeout_is_delivered_as_impl_code);
  suite_add_tcase(s, tc);

  tc = tcase_create("errors");
  watchdog_tcase(tc, "errors", 10);
  tcase_add_test(tc, test_a25_errors_keep_code_message_origin_details);
  tcase_add_test(tc, test_a25_cause_chain_through_all_three_flavors);
  tcase_add_test(tc, test_a25_error_context_knob_appends_a_link);
  tcase_add_test(tc, test_runtime_errors_are_static_and_free_is_harmless);
  suite_add_tcase(s, tc);

  tc = tcase_create("input");
  watchdog_tcase(tc, "input", 10);
  tcase_add_test(tc, test_bad_input_einval);
  tcase_add_test(tc, test_freed_future_efreed);
  tcase_add_test(tc, test_max_inflight_busy_and_blocking_waits);
  suite_add_tcase(s, tc);

  tc = tcase_create("backpressure");
  watchdog_tcase(tc, "backpressure", 120);
  tcase_add_test(tc, test_a29_backpressure_at_scale);
  suite_add_tcase(s, tc);

  tc = tcase_create("wakeups");
  watchdog_tcase(tc, "wakeups", 30);
  tcase_add_test(tc, test_a17_idle_loop_no_spin_no_wakeups);
  tcase_add_test(tc, test_a17_grown_spin_window_still_goes_idle);
  tcase_add_test(tc, test_a17_single_cpu_calls_complete_promptly);
  tcase_add_test(tc, test_a17_outstanding_calls_do_not_slow_new_ones);
  suite_add_tcase(s, tc);

  tc = tcase_create("load");
  watchdog_tcase(tc, "load", 60);
  tcase_add_test(tc, test_a35_two_synchronizers_coexist);
  tcase_add_test(tc, test_a16_a38_many_producers_no_lost_wakeups);
  tcase_add_test(tc, test_a16_mixed_blocking_and_future_callers);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(calls_suite());
  int failed;
  srunner_run_all(sr, CK_ENV);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
