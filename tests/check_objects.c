/* tests/check_objects.c - objects: synchronous construction, the open/close lifecycle
 * (A23), teardown with calls in flight (A24), handle translation in and out, sharing
 * between threads (A39), synchronizer shutdown, fork, and misuse.
 *
 * Every test runs in its own forked child (CK_FORK). The test class (support/
 * streamops.c) counts what runs on the loop thread; the test thread waits for the
 * counters and asserts. Worker threads record into their own structs and the test
 * thread asserts after pthread_join. */
#define _GNU_SOURCE
#include <check.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "support/streamops.h"
#include "support/testops.h"
#include "synchro.h"

#define DOMAIN_OPEN_CODE (-40003)
#define DOMAIN_CONSTRUCT_CODE (-40002)

/* ---- helpers ------------------------------------------------------------------------ */

static void setup(void) {
  testops_reset();
  streamops_reset();
}

static synchro_t *new_sync_opts(uint32_t max_inflight) {
  synchro_options_t opts;
  synchro_t *s = NULL;
  synchro_options_init(&opts);
  opts.max_inflight = max_inflight;
  ck_assert_int_eq(synchro_new(&s, &opts), 0);
  ck_assert_ptr_nonnull(s);
  return s;
}

static synchro_t *new_sync(void) { return new_sync_opts(0); }

static void close_sync(synchro_t *s) {
  ck_assert_int_eq(synchro_close(s, 2000), 0);
  synchro_free(s);
}

static synchro_object_t *new_obj(synchro_t *s, int64_t value, int64_t close_ms) {
  test_obj_args_t args = {value, 0, close_ms};
  synchro_object_t *obj = NULL;
  synchro_error_t *err = NULL;
  ck_assert_int_eq(synchro_object_new(s, &test_class, &args, &obj, &err), 0);
  ck_assert_ptr_nonnull(obj);
  ck_assert_ptr_null(err);
  return obj;
}

static int open_obj(synchro_object_t *obj, int64_t ms, int fail_code, synchro_error_t **err) {
  test_obj_open_args_t args = {ms, fail_code};
  return synchro_object_open(obj, &args, SYNCHRO_TIMEOUT_INFINITE, err);
}

static int64_t value_of(synchro_object_t *obj, int64_t add, int *rc) {
  test_obj_value_args_t args = {add};
  int64_t v = -1;
  *rc = synchro_object_call(obj, &test_oop_value, &args, SYNCHRO_TIMEOUT_DEFAULT, &v, NULL);
  return v;
}

static void wait_for(atomic_long *counter, long want) {
  ck_assert_int_eq(test_wait_count(counter, want, 5000), want);
}

/* ---- construction --------------------------------------------------------------------- */

START_TEST(test_construct_is_synchronous_on_the_loop) {
  synchro_t *s = new_sync();
  synchro_object_t *obj;
  int rc;
  obj = new_obj(s, 7, 0);
  /* the constructor ran, on the loop thread, before synchro_object_new returned */
  ck_assert_int_eq(test_obj_constructs, 1);
  ck_assert_int_eq(test_obj_construct_off_loop, 0);
  ck_assert_ptr_nonnull(atomic_load(&test_obj_last_state));
  ck_assert_int_eq(test_obj_opens_started, 0); /* no open: construction does no I/O */
  ck_assert_int_eq(value_of(obj, 1, &rc), 8);
  ck_assert_int_eq(rc, 0);
  ck_assert_int_eq(test_obj_no_state, 0);
  synchro_object_free(obj);
  wait_for(&test_obj_destroys, 1);
  ck_assert_int_eq(test_obj_destroy_off_loop, 0);
  ck_assert_int_eq(test_obj_closes_started, 0); /* never opened: nothing to close */
  close_sync(s);
}
END_TEST

START_TEST(test_construct_failure) {
  synchro_t *s = new_sync();
  test_obj_args_t args = {1, DOMAIN_CONSTRUCT_CODE, 0};
  synchro_object_t *obj = (synchro_object_t *)&obj;
  synchro_error_t *err = NULL;
  ck_assert_int_eq(synchro_object_new(s, &test_class, &args, &obj, &err), DOMAIN_CONSTRUCT_CODE);
  ck_assert_ptr_null(obj);
  ck_assert_ptr_nonnull(err);
  ck_assert_int_eq(synchro_error_code(err), DOMAIN_CONSTRUCT_CODE);
  synchro_error_free(err);
  ck_assert_int_eq(test_obj_constructs, 1);
  /* never lived: no close, no destructor */
  usleep(20000);
  ck_assert_int_eq(test_obj_destroys, 0);
  ck_assert_int_eq(test_obj_closes_started, 0);
  close_sync(s);
  ck_assert_int_eq(test_obj_destroys, 0);
}
END_TEST

START_TEST(test_new_bad_arguments) {
  synchro_t *s = new_sync();
  synchro_class_t no_ctor = test_class;
  synchro_object_t *obj = NULL;
  test_obj_args_t args = {0, 0, 0};
  no_ctor.construct = NULL;
  ck_assert_int_eq(synchro_object_new(NULL, &test_class, &args, &obj, NULL), SYNCHRO_EINVAL);
  ck_assert_int_eq(synchro_object_new(s, NULL, &args, &obj, NULL), SYNCHRO_EINVAL);
  ck_assert_int_eq(synchro_object_new(s, &no_ctor, &args, &obj, NULL), SYNCHRO_EINVAL);
  ck_assert_int_eq(synchro_object_new(s, &test_class, &args, NULL, NULL), SYNCHRO_EINVAL);
  ck_assert_int_eq(synchro_object_open(NULL, NULL, 0, NULL), SYNCHRO_EINVAL);
  ck_assert_int_eq(synchro_object_close(NULL, 0, NULL), SYNCHRO_EINVAL);
  ck_assert_ptr_null(synchro_object_state(NULL));
  synchro_object_free(NULL);
  ck_assert_int_eq(test_obj_constructs, 0);
  close_sync(s);
}
END_TEST

/* ---- open / close exactly once (A23) ---------------------------------------------------- */

START_TEST(test_a23_open_fails_half_way) {
  synchro_t *s = new_sync();
  synchro_object_t *obj = new_obj(s, 1, 10);
  synchro_error_t *err = NULL;
  int rc;
  ck_assert_int_eq(open_obj(obj, 20, DOMAIN_OPEN_CODE, &err), DOMAIN_OPEN_CODE);
  ck_assert_ptr_nonnull(err);
  ck_assert_int_eq(synchro_error_code(err), DOMAIN_OPEN_CODE);
  ck_assert_str_eq(synchro_error_origin(err), "test_open");
  synchro_error_free(err);
  /* close runs by itself, once, and releases what open set up */
  wait_for(&test_obj_closes_done, 1);
  ck_assert_int_eq(test_obj_closes_started, 1);
  ck_assert_int_eq(test_obj_resources, 0);
  ck_assert_int_eq(test_obj_close_off_loop, 0);
  ck_assert_int_eq(synchro_object_close(obj, SYNCHRO_TIMEOUT_INFINITE, NULL), SYNCHRO_EALREADY);
  ck_assert_int_eq(value_of(obj, 0, &rc), -1);
  ck_assert_int_eq(rc, SYNCHRO_ECLOSED);
  synchro_object_free(obj);
  wait_for(&test_obj_destroys, 1);
  ck_assert_int_eq(test_obj_closes_started, 1);
  ck_assert_int_eq(test_obj_close_twice, 0);
  ck_assert_int_eq(test_obj_destroy_unclosed, 0);
  close_sync(s);
}
END_TEST

START_TEST(test_a23_open_then_close_once) {
  synchro_t *s = new_sync();
  synchro_object_t *obj = new_obj(s, 1, 10);
  test_obj_open_args_t oargs = {0, 0};
  int rc;
  ck_assert_int_eq(open_obj(obj, 10, 0, NULL), 0);
  ck_assert_int_eq(test_obj_opens_done, 1);
  ck_assert_int_eq(test_obj_resources, 1);
  ck_assert_int_eq(value_of(obj, 1, &rc), 2);
  ck_assert_int_eq(rc, 0);
  ck_assert_int_eq(synchro_object_open(obj, &oargs, SYNCHRO_TIMEOUT_INFINITE, NULL),
                   SYNCHRO_EALREADY);
  ck_assert_int_eq(synchro_object_close(obj, SYNCHRO_TIMEOUT_INFINITE, NULL), 0);
  ck_assert_int_eq(test_obj_closes_done, 1);
  ck_assert_int_eq(test_obj_resources, 0);
  ck_assert_int_eq(test_obj_close_off_loop, 0);
  /* double close */
  ck_assert_int_eq(synchro_object_close(obj, SYNCHRO_TIMEOUT_INFINITE, NULL), SYNCHRO_EALREADY);
  ck_assert_int_eq(test_obj_closes_started, 1);
  /* after close: methods and open are refused */
  ck_assert_int_eq(value_of(obj, 1, &rc), -1);
  ck_assert_int_eq(rc, SYNCHRO_ECLOSED);
  ck_assert_int_eq(synchro_object_open(obj, &oargs, SYNCHRO_TIMEOUT_INFINITE, NULL),
                   SYNCHRO_ECLOSED);
  synchro_object_free(obj);
  wait_for(&test_obj_destroys, 1);
  ck_assert_int_eq(test_obj_closes_started, 1);
  ck_assert_int_eq(test_obj_opens_started, 1);
  close_sync(s);
}
END_TEST

START_TEST(test_a23_close_never_opened) {
  synchro_t *s = new_sync();
  synchro_object_t *obj = new_obj(s, 1, 0);
  test_obj_open_args_t oargs = {0, 0};
  int rc;
  ck_assert_int_eq(synchro_object_close(obj, SYNCHRO_TIMEOUT_INFINITE, NULL), 0);
  ck_assert_int_eq(test_obj_closes_started, 0); /* nothing to close */
  ck_assert_int_eq(synchro_object_close(obj, SYNCHRO_TIMEOUT_INFINITE, NULL), SYNCHRO_EALREADY);
  ck_assert_int_eq(synchro_object_open(obj, &oargs, SYNCHRO_TIMEOUT_INFINITE, NULL),
                   SYNCHRO_ECLOSED);
  value_of(obj, 0, &rc);
  ck_assert_int_eq(rc, SYNCHRO_ECLOSED);
  synchro_object_free(obj);
  wait_for(&test_obj_destroys, 1);
  close_sync(s);
}
END_TEST

typedef struct {
  synchro_object_t *obj;
  pthread_barrier_t *barrier;
  int rc;
} closer_t;

static void *close_thread(void *arg) {
  closer_t *c = arg;
  pthread_barrier_wait(c->barrier);
  c->rc = synchro_object_close(c->obj, SYNCHRO_TIMEOUT_INFINITE, NULL);
  return NULL;
}

START_TEST(test_a23_close_from_two_threads) {
  long iter, n = test_scaled(50);
  synchro_t *s = new_sync();
  for (iter = 0; iter < n; iter++) {
    synchro_object_t *obj = new_obj(s, 1, 5);
    pthread_barrier_t barrier;
    closer_t c[2];
    pthread_t t[2];
    int i;
    ck_assert_int_eq(open_obj(obj, 0, 0, NULL), 0);
    pthread_barrier_init(&barrier, NULL, 2);
    for (i = 0; i < 2; i++) {
      c[i].obj = obj;
      c[i].barrier = &barrier;
      c[i].rc = 1;
      ck_assert_int_eq(pthread_create(&t[i], NULL, close_thread, &c[i]), 0);
    }
    for (i = 0; i < 2; i++)
      ck_assert_int_eq(pthread_join(t[i], NULL), 0);
    pthread_barrier_destroy(&barrier);
    ck_assert_msg((c[0].rc == 0 && c[1].rc == SYNCHRO_EALREADY) ||
                      (c[1].rc == 0 && c[0].rc == SYNCHRO_EALREADY),
                  "iteration %ld: close codes %s and %s", iter, synchro_err_name(c[0].rc),
                  synchro_err_name(c[1].rc));
    ck_assert_int_eq(test_obj_closes_started, iter + 1);
    synchro_object_free(obj);
  }
  wait_for(&test_obj_destroys, n);
  ck_assert_int_eq(test_obj_close_twice, 0);
  ck_assert_int_eq(test_obj_closes_started, n);
  close_sync(s);
}
END_TEST

START_TEST(test_a23_close_while_open_in_flight) {
  synchro_t *s = new_sync();
  synchro_object_t *obj = new_obj(s, 1, 5);
  test_obj_open_args_t oargs = {200, 0};
  synchro_future_t *open_f = NULL;
  ck_assert_int_eq(synchro_object_open_future(obj, &oargs, SYNCHRO_TIMEOUT_INFINITE, &open_f), 0);
  wait_for(&test_obj_opens_started, 1);
  /* close waits for open, then runs once */
  ck_assert_int_eq(synchro_object_close(obj, SYNCHRO_TIMEOUT_INFINITE, NULL), 0);
  ck_assert_int_eq(synchro_future_wait(open_f, 0), 0);
  ck_assert_int_eq(test_obj_opens_done, 1);
  ck_assert_int_eq(test_obj_close_before_open_done, 0);
  ck_assert_int_eq(test_obj_closes_started, 1);
  ck_assert_int_eq(test_obj_closes_done, 1);
  ck_assert_int_eq(test_obj_resources, 0);
  synchro_future_free(open_f);
  synchro_object_free(obj);
  wait_for(&test_obj_destroys, 1);
  ck_assert_int_eq(test_obj_closes_started, 1);
  close_sync(s);
}
END_TEST

START_TEST(test_a23_close_while_failing_open_in_flight) {
  synchro_t *s = new_sync();
  synchro_object_t *obj = new_obj(s, 1, 5);
  test_obj_open_args_t oargs = {100, DOMAIN_OPEN_CODE};
  synchro_future_t *open_f = NULL;
  int rc;
  ck_assert_int_eq(synchro_object_open_future(obj, &oargs, SYNCHRO_TIMEOUT_INFINITE, &open_f), 0);
  wait_for(&test_obj_opens_started, 1);
  rc = synchro_object_close(obj, SYNCHRO_TIMEOUT_INFINITE, NULL);
  ck_assert_msg(rc == 0 || rc == SYNCHRO_EALREADY, "close: %s", synchro_err_name(rc));
  ck_assert_int_eq(synchro_future_wait(open_f, 5000), DOMAIN_OPEN_CODE);
  wait_for(&test_obj_closes_done, 1);
  ck_assert_int_eq(test_obj_closes_started, 1);
  ck_assert_int_eq(test_obj_close_before_open_done, 0);
  ck_assert_int_eq(test_obj_resources, 0);
  synchro_future_free(open_f);
  synchro_object_free(obj);
  wait_for(&test_obj_destroys, 1);
  ck_assert_int_eq(test_obj_closes_started, 1);
  close_sync(s);
}
END_TEST

START_TEST(test_a23_cancel_during_open) {
  synchro_t *s = new_sync();
  synchro_object_t *obj = new_obj(s, 1, 5);
  test_obj_open_args_t oargs = {10000, 0};
  synchro_future_t *open_f = NULL;
  ck_assert_int_eq(synchro_object_open_future(obj, &oargs, SYNCHRO_TIMEOUT_INFINITE, &open_f), 0);
  wait_for(&test_obj_opens_started, 1);
  ck_assert_int_eq(synchro_future_cancel(open_f), 0);
  ck_assert_int_eq(synchro_future_wait(open_f, 5000), SYNCHRO_ECANCELED);
  ck_assert_int_eq(test_obj_open_hooks, 1);
  /* close cleans up what the interrupted open set up, once */
  wait_for(&test_obj_closes_done, 1);
  ck_assert_int_eq(test_obj_closes_started, 1);
  ck_assert_int_eq(test_obj_resources, 0);
  ck_assert_int_eq(synchro_object_close(obj, SYNCHRO_TIMEOUT_INFINITE, NULL), SYNCHRO_EALREADY);
  synchro_future_free(open_f);
  synchro_object_free(obj);
  wait_for(&test_obj_destroys, 1);
  ck_assert_int_eq(test_obj_closes_started, 1);
  close_sync(s);
}
END_TEST

START_TEST(test_a23_open_deadline) {
  synchro_t *s = new_sync();
  synchro_object_t *obj = new_obj(s, 1, 5);
  test_obj_open_args_t oargs = {10000, 0};
  synchro_error_t *err = NULL;
  double t0 = test_now_ms();
  ck_assert_int_eq(synchro_object_open(obj, &oargs, 50, &err), SYNCHRO_ETIMEDOUT);
  ck_assert_double_lt(test_now_ms() - t0, 3000);
  synchro_error_free(err);
  ck_assert_int_eq(test_obj_open_hooks, 1);
  wait_for(&test_obj_closes_done, 1);
  ck_assert_int_eq(test_obj_resources, 0);
  synchro_object_free(obj);
  wait_for(&test_obj_destroys, 1);
  ck_assert_int_eq(test_obj_closes_started, 1);
  close_sync(s);
}
END_TEST

START_TEST(test_a23_free_while_open) {
  synchro_t *s = new_sync();
  synchro_object_t *obj = new_obj(s, 1, 1000);
  double t0;
  ck_assert_int_eq(open_obj(obj, 0, 0, NULL), 0);
  t0 = test_now_ms();
  synchro_object_free(obj);
  /* close takes 1 s: not waited for (the bound stays under it even under valgrind) */
  ck_assert_double_lt(test_now_ms() - t0, test_bound_ms(40));
  wait_for(&test_obj_destroys, 1);
  ck_assert_int_eq(test_obj_closes_started, 1);
  ck_assert_int_eq(test_obj_closes_done, 1);
  ck_assert_int_eq(test_obj_destroy_unclosed, 0); /* close finished before destroy */
  ck_assert_int_eq(test_obj_destroy_off_loop, 0);
  ck_assert_int_eq(test_obj_resources, 0);
  usleep(20000);
  ck_assert_int_eq(test_obj_closes_started, 1);
  ck_assert_int_eq(test_obj_destroys, 1);
  close_sync(s);
}
END_TEST

/* ---- teardown with calls in flight (A24) ------------------------------------------------- */

static synchro_future_t **submit_sleeps(synchro_object_t *obj, long n, int64_t ms) {
  synchro_future_t **fs = calloc((size_t)n, sizeof(*fs));
  test_obj_sleep_args_t args = {ms};
  long i;
  ck_assert_ptr_nonnull(fs);
  for (i = 0; i < n; i++)
    ck_assert_int_eq(
        synchro_object_submit(obj, &test_oop_sleep, &args, SYNCHRO_TIMEOUT_INFINITE, &fs[i]), 0);
  wait_for(&test_obj_methods_started, n);
  return fs;
}

static void free_futures(synchro_future_t **fs, long n) {
  long i;
  for (i = 0; i < n; i++)
    synchro_future_free(fs[i]);
  free(fs);
}

START_TEST(test_a24_free_with_1000_methods_in_flight) {
  enum { N = 1000 };
  synchro_t *s = new_sync();
  synchro_object_t *obj = new_obj(s, 1, 5);
  synchro_future_t **fs;
  double t0, dt;
  long i, wrong = 0;
  ck_assert_int_eq(open_obj(obj, 0, 0, NULL), 0);
  fs = submit_sleeps(obj, N, 10000);
  t0 = test_now_ms();
  synchro_object_free(obj);
  dt = test_now_ms() - t0;
  ck_assert_msg(dt < test_bound_ms(100), "synchro_object_free took %.1f ms", dt); /* 10 s */
  ck_assert_int_eq(synchro_future_wait_all(fs, N, 5000), 0);
  for (i = 0; i < N; i++)
    wrong += synchro_future_status(fs[i]) != SYNCHRO_ECANCELED;
  ck_assert_int_eq(wrong, 0);
  ck_assert_int_eq(test_obj_method_hooks, N);
  wait_for(&test_obj_destroys, 1);
  ck_assert_int_eq(test_obj_methods_active, 0);
  ck_assert_int_eq(test_obj_closes_started, 1);
  ck_assert_int_eq(test_obj_closes_done, 1);
  ck_assert_int_eq(test_obj_destroy_busy, 0);     /* after every method */
  ck_assert_int_eq(test_obj_destroy_unclosed, 0); /* after close */
  ck_assert_int_eq(test_obj_destroy_off_loop, 0);
  ck_assert_double_lt(test_now_ms() - t0, 5000);
  free_futures(fs, N);
  close_sync(s);
}
END_TEST

START_TEST(test_a24_close_runs_after_method_hooks) {
  /* object.h: "in-flight method calls are cancelled (their hooks run), close runs if
   * needed, then the destructor". close must not start while methods still run on the
   * state it releases. */
  enum { N = 10 };
  synchro_t *s = new_sync();
  synchro_object_t *obj = new_obj(s, 1, 5);
  synchro_future_t **fs;
  ck_assert_int_eq(open_obj(obj, 0, 0, NULL), 0);
  fs = submit_sleeps(obj, N, 10000);
  synchro_object_free(obj);
  ck_assert_int_eq(synchro_future_wait_all(fs, N, 5000), 0);
  wait_for(&test_obj_destroys, 1);
  ck_assert_int_eq(test_obj_method_hooks, N);
  ck_assert_int_eq(test_obj_close_with_methods, 0);
  free_futures(fs, N);
  close_sync(s);
}
END_TEST

START_TEST(test_a24_free_on_the_loop_thread) {
  synchro_t *s = new_sync();
  synchro_object_t *obj = new_obj(s, 1, 5);
  synchro_future_t **fs;
  int64_t ns = -1;
  ck_assert_int_eq(open_obj(obj, 0, 0, NULL), 0);
  fs = submit_sleeps(obj, 10, 10000);
  /* the only reference passes to the call, which drops it inside its implementation */
  ck_assert_int_eq(synchro_call(s, &test_oop_drop, &obj, 5000, &ns, NULL), 0);
  ck_assert_int_ge(ns, 0);
  ck_assert_int_lt(ns, 5000000); /* never blocks: well under the 5 ms close */
  ck_assert_int_eq(synchro_future_wait_all(fs, 10, 5000), 0);
  wait_for(&test_obj_destroys, 1);
  ck_assert_int_eq(test_obj_method_hooks, 10);
  ck_assert_int_eq(test_obj_closes_started, 1);
  free_futures(fs, 10);
  close_sync(s);
}
END_TEST

START_TEST(test_a24_freed_handle_efreed) {
  synchro_t *s = new_sync();
  synchro_object_t *obj = new_obj(s, 1, 0);
  synchro_future_t *f = (synchro_future_t *)&f;
  synchro_stream_t *st = (synchro_stream_t *)&st;
  test_obj_value_args_t vargs = {1};
  test_obj_open_args_t oargs = {0, 0};
  int64_t v = -1;
  synchro_object_free(obj);
  /* at once, before anything else runs */
  ck_assert_int_eq(synchro_object_call(obj, &test_oop_value, &vargs, 0, &v, NULL), SYNCHRO_EFREED);
  ck_assert_int_eq(synchro_object_submit(obj, &test_oop_value, &vargs, 0, &f), SYNCHRO_EFREED);
  ck_assert_ptr_null(f);
  ck_assert_int_eq(synchro_object_open(obj, &oargs, 0, NULL), SYNCHRO_EFREED);
  ck_assert_int_eq(synchro_object_close(obj, 0, NULL), SYNCHRO_EFREED);
  ck_assert_int_eq(synchro_object_open_future(obj, &oargs, 0, &f), SYNCHRO_EFREED);
  ck_assert_int_eq(synchro_object_close_future(obj, 0, &f), SYNCHRO_EFREED);
  ck_assert_int_eq(synchro_object_stream_open(obj, &test_sop_infinite, NULL, 0, &st),
                   SYNCHRO_EFREED);
  synchro_object_free(obj); /* a second free is refused, not a double teardown */
  wait_for(&test_obj_destroys, 1);
  usleep(20000);
  ck_assert_int_eq(test_obj_destroys, 1);
  ck_assert_int_eq(test_obj_methods_started, 0);
  close_sync(s);
}
END_TEST

START_TEST(test_a24_methods_after_close_eclosed) {
  synchro_t *s = new_sync();
  synchro_object_t *obj = new_obj(s, 1, 0);
  test_obj_value_args_t vargs = {1};
  synchro_future_t *f = NULL;
  synchro_stream_t *st = NULL;
  int64_t item;
  ck_assert_int_eq(open_obj(obj, 0, 0, NULL), 0);
  ck_assert_int_eq(synchro_object_close(obj, SYNCHRO_TIMEOUT_INFINITE, NULL), 0);
  ck_assert_int_eq(synchro_object_submit(obj, &test_oop_value, &vargs, SYNCHRO_TIMEOUT_DEFAULT, &f),
                   0);
  ck_assert_int_eq(synchro_future_wait(f, 5000), SYNCHRO_ECLOSED);
  synchro_future_free(f);
  ck_assert_int_eq(
      synchro_object_stream_open(obj, &test_sop_infinite, NULL, SYNCHRO_TIMEOUT_DEFAULT, &st), 0);
  ck_assert_int_eq(synchro_stream_next(st, &item, 5000), SYNCHRO_ECLOSED);
  synchro_stream_free(st);
  ck_assert_int_eq(test_stream_started, 0);
  synchro_object_free(obj);
  wait_for(&test_obj_destroys, 1);
  close_sync(s);
}
END_TEST

/* ---- translation ------------------------------------------------------------------------- */

static int64_t state_of_call(synchro_object_t *on, synchro_object_t *other, int link, int *rc) {
  test_obj_handle_args_t args = {other, link};
  int64_t ptr = 0;
  *rc = synchro_object_call(on, &test_oop_state_of, &args, SYNCHRO_TIMEOUT_DEFAULT, &ptr, NULL);
  return ptr;
}

static synchro_object_t *peer_call(synchro_object_t *on, int *rc) {
  synchro_object_t *h = NULL;
  *rc = synchro_object_call(on, &test_oop_peer, NULL, SYNCHRO_TIMEOUT_DEFAULT, &h, NULL);
  return h;
}

START_TEST(test_translation_in) {
  synchro_t *s = new_sync();
  synchro_object_t *a = new_obj(s, 1, 0);
  synchro_object_t *b = new_obj(s, 2, 0);
  void *b_state = atomic_load(&test_obj_last_state);
  int rc;
  ck_assert_ptr_eq((void *)(intptr_t)state_of_call(a, b, 0, &rc), b_state);
  ck_assert_int_eq(rc, 0);
  ck_assert_ptr_null(synchro_object_state(b)); /* not on the loop thread */
  /* the argument block's reference is gone again: b is still ours alone */
  synchro_object_free(b);
  wait_for(&test_obj_destroys, 1);
  ck_assert_int_eq(value_of(a, 0, &rc), 1);
  ck_assert_int_eq(rc, 0);
  synchro_object_free(a);
  wait_for(&test_obj_destroys, 2);
  close_sync(s);
}
END_TEST

START_TEST(test_translation_in_keeps_argument_alive) {
  /* The caller drops its handle right after submitting: the argument block's reference
   * keeps the object alive until the call is done. */
  synchro_t *s = new_sync();
  synchro_object_t *a = new_obj(s, 1, 0);
  synchro_object_t *b = new_obj(s, 2, 0);
  void *b_state = atomic_load(&test_obj_last_state);
  test_obj_handle_args_t args = {b, 0};
  synchro_future_t *f = NULL;
  int64_t ptr = 0;
  ck_assert_int_eq(synchro_object_submit(a, &test_oop_state_of, &args, 5000, &f), 0);
  synchro_object_free(b);
  ck_assert_int_eq(synchro_future_wait(f, 5000), 0);
  ck_assert_int_eq(synchro_future_result(f, &ptr), 0);
  ck_assert_ptr_eq((void *)(intptr_t)ptr, b_state);
  synchro_future_free(f);
  wait_for(&test_obj_destroys, 1);
  synchro_object_free(a);
  wait_for(&test_obj_destroys, 2);
  close_sync(s);
}
END_TEST

START_TEST(test_translation_out_same_handle) {
  synchro_t *s = new_sync();
  synchro_object_t *a = new_obj(s, 1, 0);
  synchro_object_t *h1, *h2;
  int rc;
  h1 = peer_call(a, &rc);
  ck_assert_int_eq(rc, 0);
  h2 = peer_call(a, &rc);
  ck_assert_int_eq(rc, 0);
  ck_assert_ptr_nonnull(h1);
  ck_assert_ptr_eq(h1, h2);
  ck_assert_ptr_ne(h1, a);
  ck_assert_int_eq(value_of(h1, 0, &rc), 1001);
  ck_assert_int_eq(rc, 0);
  /* each return was a reference of its own */
  synchro_object_free(h1);
  ck_assert_int_eq(value_of(h2, 1, &rc), 1002);
  ck_assert_int_eq(rc, 0);
  ck_assert_int_eq(test_obj_destroys, 0);
  synchro_object_free(h2);
  /* a wrapped state counts as open: its close runs, then its destructor */
  wait_for(&test_obj_destroys, 1);
  ck_assert_int_eq(test_obj_closes_started, 1);
  ck_assert_int_eq(value_of(a, 0, &rc), 1);
  ck_assert_int_eq(rc, 0);
  synchro_object_free(a);
  wait_for(&test_obj_destroys, 2);
  close_sync(s);
}
END_TEST

START_TEST(test_translation_out_existing_handle) {
  synchro_t *s = new_sync();
  synchro_object_t *a = new_obj(s, 1, 0);
  synchro_object_t *b = new_obj(s, 2, 0);
  synchro_object_t *h;
  int rc;
  state_of_call(a, b, 1, &rc); /* a's peer is b's state */
  ck_assert_int_eq(rc, 0);
  h = peer_call(a, &rc);
  ck_assert_int_eq(rc, 0);
  ck_assert_ptr_eq(h, b); /* the same state maps to the same handle */
  synchro_object_free(h);
  ck_assert_int_eq(value_of(b, 0, &rc), 2);
  ck_assert_int_eq(rc, 0);
  synchro_object_free(b);
  wait_for(&test_obj_destroys, 1);
  synchro_object_free(a);
  wait_for(&test_obj_destroys, 2);
  close_sync(s);
}
END_TEST

START_TEST(test_translation_out_result_released_when_not_taken) {
  synchro_t *s = new_sync();
  synchro_object_t *a = new_obj(s, 1, 0);
  synchro_future_t *f = NULL;
  ck_assert_int_eq(synchro_object_submit(a, &test_oop_peer, NULL, 5000, &f), 0);
  ck_assert_int_eq(synchro_future_wait(f, 5000), 0);
  synchro_future_free(f); /* the handle in the result is dropped with it */
  wait_for(&test_obj_destroys, 1);
  synchro_object_free(a);
  wait_for(&test_obj_destroys, 2);
  close_sync(s);
}
END_TEST

/* ---- sharing between threads (A39) ----------------------------------------------------------- */

typedef struct {
  synchro_object_t *obj;
  long id, n, wrong, errors;
} worker_t;

static void *value_worker(void *arg) {
  worker_t *w = arg;
  synchro_object_t *mine = synchro_object_ref(w->obj);
  long i;
  for (i = 0; i < w->n; i++) {
    test_obj_value_args_t args = {w->id * 1000000 + i};
    int64_t v = -1;
    int rc = synchro_object_call(mine, &test_oop_value, &args, SYNCHRO_TIMEOUT_DEFAULT, &v, NULL);
    if (rc != 0)
      w->errors++;
    else if (v != 5 + args.add)
      w->wrong++;
  }
  synchro_object_free(mine);
  return NULL;
}

START_TEST(test_a39_eight_threads_share_an_object) {
  enum { T = 8 };
  long n = test_scaled(10000), i;
  synchro_t *s = new_sync();
  synchro_object_t *obj = new_obj(s, 5, 0);
  worker_t w[T];
  pthread_t t[T];
  ck_assert_int_eq(open_obj(obj, 0, 0, NULL), 0);
  for (i = 0; i < T; i++) {
    w[i] = (worker_t){obj, i, n, 0, 0};
    ck_assert_int_eq(pthread_create(&t[i], NULL, value_worker, &w[i]), 0);
  }
  for (i = 0; i < T; i++)
    ck_assert_int_eq(pthread_join(t[i], NULL), 0);
  for (i = 0; i < T; i++) {
    ck_assert_int_eq(w[i].errors, 0);
    ck_assert_int_eq(w[i].wrong, 0);
  }
  ck_assert_int_eq(test_obj_destroys, 0); /* the workers' references were extra */
  synchro_object_free(obj);
  wait_for(&test_obj_destroys, 1);
  ck_assert_int_eq(test_obj_closes_started, 1);
  close_sync(s);
}
END_TEST

/* A39 with SYNCHRO_CLASS_SERIAL. The "counter" class has one method, `bump`: it
 * waits `ms` on a uv timer (0 ms still yields to the loop), then returns the count of
 * bumps finished before it. The loop-side state records how many bumps ran at once. */
typedef struct {
  int running, max_running;
  int64_t finished;
  long started;
} counter_t;
typedef struct {
  int64_t ms;
} bump_args_t;
typedef struct {
  uv_timer_t timer;
  synchro_call_t *call;
} bump_t;

static int counter_construct(synchro_t *s, const void *args, void **state) {
  (void)s;
  (void)args;
  *state = calloc(1, sizeof(counter_t));
  return *state != NULL ? 0 : SYNCHRO_ENOMEM;
}
static void counter_destroy(void *state) { free(state); }

static void bump_closed(uv_handle_t *h) { free(h->data); }
static void bump_fired(uv_timer_t *t) {
  bump_t *b = t->data;
  counter_t *c = synchro_call_object(b->call);
  int64_t before = c->finished++;
  c->running--;
  synchro_call_return(b->call, &before);
  t->data = b;
  uv_close((uv_handle_t *)t, bump_closed);
}
static void bump_impl(synchro_call_t *call) {
  counter_t *c = synchro_call_object(call);
  const bump_args_t *a = synchro_call_args(call);
  bump_t *b = malloc(sizeof(*b));
  c->started++;
  if (++c->running > c->max_running)
    c->max_running = c->running;
  b->call = call;
  uv_timer_init(synchro_call_loop(call), &b->timer);
  b->timer.data = b;
  test_timer_start(&b->timer, bump_fired, a->ms);
}
static const synchro_op_t op_bump = {.name = "bump",
                                     .impl = bump_impl,
                                     .args_size = sizeof(bump_args_t),
                                     .result_size = sizeof(int64_t)};
/* reads the loop-side counters (a method too: it takes its turn on a serial object) */
static void stats_impl(synchro_call_t *call) {
  counter_t c = *(counter_t *)synchro_call_object(call);
  int64_t packed = (int64_t)c.max_running * 1000000000 + c.started;
  synchro_call_return(call, &packed);
}
static const synchro_op_t op_counter_stats = {
    .name = "counter_stats", .impl = stats_impl, .result_size = sizeof(int64_t)};

static const synchro_class_t counter_class = {
    .name = "counter", .construct = counter_construct, .destroy = counter_destroy};
static const synchro_class_t serial_counter_class = {.name = "serial_counter",
                                                     .construct = counter_construct,
                                                     .destroy = counter_destroy,
                                                     .flags = SYNCHRO_CLASS_SERIAL};

static synchro_object_t *new_counter(synchro_t *s, const synchro_class_t *cls) {
  synchro_object_t *obj = NULL;
  ck_assert_int_eq(synchro_object_new(s, cls, NULL, &obj, NULL), 0);
  return obj;
}

static void counter_stats(synchro_object_t *obj, int *max_running, long *started) {
  int64_t packed = 0;
  ck_assert_int_eq(
      synchro_object_call(obj, &op_counter_stats, NULL, SYNCHRO_TIMEOUT_DEFAULT, &packed, NULL), 0);
  *max_running = (int)(packed / 1000000000);
  *started = (long)(packed % 1000000000);
}

/* A 100 ms bump, then a 1 ms one submitted while the first runs: without the flag the
 * second overlaps the first and finishes first; with it, it waits its turn. */
START_TEST(test_a39_serial_flag_decides_overlap) {
  synchro_t *s = new_sync();
  int pass;
  for (pass = 0; pass < 2; pass++) {
    synchro_object_t *obj = new_counter(s, pass == 0 ? &counter_class : &serial_counter_class);
    bump_args_t slow = {100}, quick = {1};
    synchro_future_t *a = NULL, *b = NULL;
    int64_t ra = -1, rb = -1;
    int max_running;
    long started = 0;
    ck_assert_int_eq(synchro_object_submit(obj, &op_bump, &slow, SYNCHRO_TIMEOUT_DEFAULT, &a), 0);
    ck_assert_int_eq(synchro_object_submit(obj, &op_bump, &quick, SYNCHRO_TIMEOUT_DEFAULT, &b), 0);
    ck_assert_int_eq(synchro_future_wait(b, 5000), 0);
    ck_assert_int_eq(synchro_future_wait(a, 5000), 0);
    ck_assert_int_eq(synchro_future_result(a, &ra), 0);
    ck_assert_int_eq(synchro_future_result(b, &rb), 0);
    counter_stats(obj, &max_running, &started);
    if (pass == 0) { /* overlapping: the quick one finished first */
      ck_assert_int_eq(rb, 0);
      ck_assert_int_eq(ra, 1);
      ck_assert_int_eq(max_running, 2);
    } else { /* serial: in order, one at a time */
      ck_assert_int_eq(ra, 0);
      ck_assert_int_eq(rb, 1);
      ck_assert_int_eq(max_running, 1);
    }
    synchro_future_free(a);
    synchro_future_free(b);
    synchro_object_free(obj);
  }
  close_sync(s);
}
END_TEST

typedef struct {
  synchro_object_t *obj;
  long n, errors, out_of_range;
} bump_worker_t;

static void *bump_worker(void *arg) {
  bump_worker_t *w = arg;
  long i;
  for (i = 0; i < w->n; i++) {
    bump_args_t a = {i % 50 == 0 ? 1 : 0};
    int64_t before = -1;
    if (synchro_object_call(w->obj, &op_bump, &a, SYNCHRO_TIMEOUT_DEFAULT, &before, NULL) != 0)
      w->errors++;
    else if (before < 0 || before >= 8 * w->n)
      w->out_of_range++;
  }
  return NULL;
}

/* 8 threads x 10,000 bumps (scaled) on one object, serial or not: every call
 * resolves; with the flag no two bumps ever overlap. */
START_TEST(test_a39_eight_threads_serial_and_not) {
  enum { T = 8 };
  long n = test_scaled(10000) / 4 + 1, i;
  synchro_t *s = new_sync();
  int pass;
  for (pass = 0; pass < 2; pass++) {
    synchro_object_t *obj = new_counter(s, pass == 0 ? &counter_class : &serial_counter_class);
    bump_worker_t w[T];
    pthread_t t[T];
    int max_running;
    long started;
    for (i = 0; i < T; i++) {
      w[i] = (bump_worker_t){obj, n, 0, 0};
      ck_assert_int_eq(pthread_create(&t[i], NULL, bump_worker, &w[i]), 0);
    }
    for (i = 0; i < T; i++)
      ck_assert_int_eq(pthread_join(t[i], NULL), 0);
    for (i = 0; i < T; i++) {
      ck_assert_int_eq(w[i].errors, 0);
      ck_assert_int_eq(w[i].out_of_range, 0);
    }
    counter_stats(obj, &max_running, &started);
    ck_assert_int_eq(started, T * n);
    if (pass == 1)
      ck_assert_int_eq(max_running, 1);
    else
      ck_assert_int_ge(max_running, 1);
    synchro_object_free(obj);
  }
  close_sync(s);
}
END_TEST

/* Waiting methods of a serial object can be cancelled and time out; they never start.
 * Freeing the object with one running and many waiting ends them all. */
START_TEST(test_a39_serial_waiting_methods_cancel_and_expire) {
  enum { WAITING = 100 };
  synchro_t *s = new_sync();
  synchro_object_t *obj = new_counter(s, &serial_counter_class);
  bump_args_t slow = {300}, quick = {0};
  synchro_future_t *running = NULL, *cancelled = NULL, *expired = NULL, *last = NULL;
  synchro_future_t *waiting[WAITING];
  int64_t r = -1;
  int max_running, i;
  long started;
  double t0;
  ck_assert_int_eq(synchro_object_submit(obj, &op_bump, &slow, SYNCHRO_TIMEOUT_DEFAULT, &running),
                   0);
  ck_assert_int_eq(
      synchro_object_submit(obj, &op_bump, &quick, SYNCHRO_TIMEOUT_DEFAULT, &cancelled), 0);
  ck_assert_int_eq(synchro_object_submit(obj, &op_bump, &quick, 30, &expired), 0);
  ck_assert_int_eq(synchro_object_submit(obj, &op_bump, &quick, SYNCHRO_TIMEOUT_DEFAULT, &last), 0);
  t0 = test_now_ms();
  ck_assert_int_eq(synchro_future_cancel(cancelled), 0);
  ck_assert_int_eq(synchro_future_wait(cancelled, 5000), SYNCHRO_ECANCELED);
  ck_assert_int_eq(synchro_future_wait(expired, 5000), SYNCHRO_ETIMEDOUT);
  ck_assert_double_lt(test_now_ms() - t0, 250); /* before the running one ends */
  ck_assert_int_eq(synchro_future_wait(running, 5000), 0);
  ck_assert_int_eq(synchro_future_wait(last, 5000), 0);
  ck_assert_int_eq(synchro_future_result(last, &r), 0);
  ck_assert_int_eq(r, 1); /* the two that ended early never ran */
  counter_stats(obj, &max_running, &started);
  ck_assert_int_eq(started, 2);
  ck_assert_int_eq(max_running, 1);
  synchro_future_free(running);
  synchro_future_free(cancelled);
  synchro_future_free(expired);
  synchro_future_free(last);
  /* free with one running and WAITING waiting */
  ck_assert_int_eq(synchro_object_submit(obj, &op_bump, &slow, SYNCHRO_TIMEOUT_DEFAULT, &running),
                   0);
  for (i = 0; i < WAITING; i++)
    ck_assert_int_eq(
        synchro_object_submit(obj, &op_bump, &quick, SYNCHRO_TIMEOUT_DEFAULT, &waiting[i]), 0);
  synchro_object_free(obj);
  for (i = 0; i < WAITING; i++) {
    ck_assert_int_eq(synchro_future_wait(waiting[i], 5000), SYNCHRO_ECANCELED);
    synchro_future_free(waiting[i]);
  }
  /* the running bump has no cancel hook: it resolves as cancelled at once */
  ck_assert_int_eq(synchro_future_wait(running, 5000), SYNCHRO_ECANCELED);
  synchro_future_free(running);
  close_sync(s);
}
END_TEST

/* ---- shutdown and fork ------------------------------------------------------------------------ */

START_TEST(test_object_open_at_synchronizer_close) {
  synchro_t *s = new_sync();
  synchro_object_t *obj = new_obj(s, 1, 20);
  synchro_object_t *never_opened = new_obj(s, 2, 0);
  test_obj_open_args_t oargs = {0, 0};
  int rc;
  ck_assert_int_eq(open_obj(obj, 0, 0, NULL), 0);
  ck_assert_int_eq(synchro_close(s, 2000), 0);
  ck_assert_int_eq(test_obj_closes_started, 1);
  ck_assert_int_eq(test_obj_closes_done, 1);
  ck_assert_int_eq(test_obj_destroys, 2);
  ck_assert_int_eq(test_obj_destroy_unclosed, 0);
  ck_assert_int_eq(test_obj_resources, 0);
  value_of(obj, 0, &rc);
  ck_assert_int_eq(rc, SYNCHRO_ECLOSED);
  ck_assert_int_eq(synchro_object_open(never_opened, &oargs, SYNCHRO_TIMEOUT_DEFAULT, NULL),
                   SYNCHRO_ECLOSED);
  ck_assert_int_eq(synchro_object_close(obj, SYNCHRO_TIMEOUT_DEFAULT, NULL), SYNCHRO_ECLOSED);
  synchro_object_free(obj);
  synchro_object_free(never_opened);
  synchro_free(s);
  ck_assert_int_eq(test_obj_destroys, 2);
}
END_TEST

START_TEST(test_object_new_after_synchronizer_close) {
  synchro_t *s = new_sync();
  test_obj_args_t args = {1, 0, 0};
  synchro_object_t *obj = NULL;
  ck_assert_int_eq(synchro_close(s, 0), 0);
  ck_assert_int_eq(synchro_object_new(s, &test_class, &args, &obj, NULL), SYNCHRO_ESHUTDOWN);
  ck_assert_ptr_null(obj);
  ck_assert_int_eq(test_obj_constructs, 0);
  synchro_free(s);
}
END_TEST

/* Exit code of the child: 0, or 10 + which check failed, with the code seen in
 * the low bits of a second number written to the pipe. */
static int child_after_fork(synchro_t *s, synchro_object_t *obj, int fd) {
  int rc, codes[3] = {0, 0, 0};
  synchro_object_t *fresh;
  test_obj_args_t args = {9, 0, 0};
  value_of(obj, 0, &rc);
  codes[0] = rc;
  value_of(obj, 0, &rc);
  codes[1] = rc;
  rc = synchro_object_new(s, &test_class, &args, &fresh, NULL);
  if (rc == 0) {
    int64_t v = value_of(fresh, 1, &rc);
    if (rc == 0 && v != 10)
      rc = -1;
    synchro_object_free(fresh);
  }
  codes[2] = rc;
  if (write(fd, codes, sizeof(codes)) != (ssize_t)sizeof(codes))
    return 9;
  synchro_object_free(obj);
  if (synchro_close(s, 1000) != 0)
    return 8;
  synchro_free(s);
  return 0;
}

START_TEST(test_fork_inherited_handle_eforked) {
  synchro_t *s = new_sync();
  synchro_object_t *obj = new_obj(s, 1, 0);
  int fds[2], codes[3] = {1, 1, 1}, status, rc;
  pid_t pid;
  ck_assert_int_eq(open_obj(obj, 0, 0, NULL), 0);
  ck_assert_int_eq(value_of(obj, 1, &rc), 2);
  ck_assert_int_eq(pipe(fds), 0);
  fflush(NULL);
  pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    close(fds[0]);
    _exit(child_after_fork(s, obj, fds[1]));
  }
  close(fds[1]);
  status = test_wait_child(pid, 10000);
  ck_assert_int_ne(status, -1);
  ck_assert_msg(WIFEXITED(status), "child died: status %#x", status);
  ck_assert_int_eq(WEXITSTATUS(status), 0);
  ck_assert_int_eq(read(fds[0], codes, sizeof(codes)), (ssize_t)sizeof(codes));
  close(fds[0]);
  ck_assert_msg(codes[0] == SYNCHRO_EFORKED, "first call in the child: %s",
                synchro_err_name(codes[0]));
  ck_assert_msg(codes[1] == SYNCHRO_EFORKED, "second call in the child: %s",
                synchro_err_name(codes[1]));
  ck_assert_msg(codes[2] == 0, "new object in the child: %s", synchro_err_name(codes[2]));
  /* the parent's object is untouched */
  ck_assert_int_eq(value_of(obj, 2, &rc), 3);
  ck_assert_int_eq(rc, 0);
  synchro_object_free(obj);
  wait_for(&test_obj_destroys, 1);
  ck_assert_int_eq(test_obj_closes_started, 1);
  close_sync(s);
}
END_TEST

/* ---- misuse ----------------------------------------------------------------------------------- */

START_TEST(test_blocking_lifecycle_on_loop_thread_edeadlk) {
  synchro_t *s = new_sync();
  synchro_object_t *obj = new_obj(s, 1, 0);
  test_obj_pair_t codes = {0, 0};
  ck_assert_int_eq(synchro_call(s, &test_oop_lifecycle_on_loop, &obj, 5000, &codes, NULL), 0);
  ck_assert_int_eq(codes.open_rc, SYNCHRO_EDEADLK);
  ck_assert_int_eq(codes.close_rc, SYNCHRO_EDEADLK);
  ck_assert_int_eq(test_obj_opens_started, 0);
  ck_assert_int_eq(test_obj_closes_started, 0);
  /* the object is still usable from a caller thread */
  ck_assert_int_eq(open_obj(obj, 0, 0, NULL), 0);
  synchro_object_free(obj);
  wait_for(&test_obj_destroys, 1);
  close_sync(s);
}
END_TEST

/* ---- admission limit (max_inflight) ------------------------------------------------------------ */

START_TEST(test_internal_close_keeps_admission_count) {
  /* close runs by itself after a failed open; that call was never admitted, so it must
   * not give back a slot either: calls stay admitted up to the limit, no more. */
  synchro_t *s = new_sync_opts(4);
  synchro_object_t *obj = new_obj(s, 1, 0);
  synchro_object_t *other = new_obj(s, 2, 0);
  synchro_stats_t stats;
  test_obj_value_args_t vargs = {1};
  synchro_future_t *f = NULL;
  long i, refused = 0;
  ck_assert_int_eq(open_obj(obj, 0, DOMAIN_OPEN_CODE, NULL), DOMAIN_OPEN_CODE);
  wait_for(&test_obj_closes_done, 1);
  usleep(10000);
  for (i = 0; i < 100; i++) {
    int rc = synchro_object_submit(other, &test_oop_value, &vargs, 5000, &f);
    if (rc != 0) {
      refused++;
      continue;
    }
    synchro_future_wait(f, 5000);
    synchro_future_free(f);
  }
  ck_assert_int_eq(refused, 0);
  ck_assert_int_eq(synchro_stats(s, &stats), 0);
  ck_assert_int_eq(stats.in_flight, 0);
  synchro_object_free(obj);
  synchro_object_free(other);
  wait_for(&test_obj_destroys, 2);
  close_sync(s);
}
END_TEST

START_TEST(test_free_at_admission_limit_still_tears_down) {
  /* Dropping the last reference must tear the object down even when max_inflight calls
   * are in flight (its methods are what fills the limit). */
  synchro_t *s = new_sync_opts(2);
  synchro_object_t *obj = new_obj(s, 1, 0);
  synchro_future_t **fs;
  ck_assert_int_eq(open_obj(obj, 0, 0, NULL), 0);
  fs = submit_sleeps(obj, 2, 10000);
  synchro_object_free(obj);
  ck_assert_int_eq(test_wait_count(&test_obj_method_hooks, 2, 2000), 2);
  ck_assert_int_eq(synchro_future_wait_all(fs, 2, 2000), 0);
  wait_for(&test_obj_destroys, 1);
  ck_assert_int_eq(test_obj_closes_started, 1);
  free_futures(fs, 2);
  close_sync(s);
}
END_TEST

/* ---- the suite ------------------------------------------------------------------------------------ */

static Suite *objects_suite(void) {
  Suite *s = suite_create("objects");
  TCase *tc;

  tc = tcase_create("construct");
  tcase_set_timeout(tc, 10);
  tcase_add_checked_fixture(tc, setup, NULL);
  tcase_add_test(tc, test_construct_is_synchronous_on_the_loop);
  tcase_add_test(tc, test_construct_failure);
  tcase_add_test(tc, test_new_bad_arguments);
  suite_add_tcase(s, tc);

  tc = tcase_create("lifecycle");
  tcase_set_timeout(tc, 20);
  tcase_add_checked_fixture(tc, setup, NULL);
  tcase_add_test(tc, test_a23_open_fails_half_way);
  tcase_add_test(tc, test_a23_open_then_close_once);
  tcase_add_test(tc, test_a23_close_never_opened);
  tcase_add_test(tc, test_a23_close_from_two_threads);
  tcase_add_test(tc, test_a23_close_while_open_in_flight);
  tcase_add_test(tc, test_a23_close_while_failing_open_in_flight);
  tcase_add_test(tc, test_a23_cancel_during_open);
  tcase_add_test(tc, test_a23_open_deadline);
  tcase_add_test(tc, test_a23_free_while_open);
  suite_add_tcase(s, tc);

  tc = tcase_create("teardown");
  tcase_set_timeout(tc, 20);
  tcase_add_checked_fixture(tc, setup, NULL);
  tcase_add_test(tc, test_a24_free_with_1000_methods_in_flight);
  tcase_add_test(tc, test_a24_close_runs_after_method_hooks);
  tcase_add_test(tc, test_a24_free_on_the_loop_thread);
  tcase_add_test(tc, test_a24_freed_handle_efreed);
  tcase_add_test(tc, test_a24_methods_after_close_eclosed);
  suite_add_tcase(s, tc);

  tc = tcase_create("translation");
  tcase_set_timeout(tc, 10);
  tcase_add_checked_fixture(tc, setup, NULL);
  tcase_add_test(tc, test_translation_in);
  tcase_add_test(tc, test_translation_in_keeps_argument_alive);
  tcase_add_test(tc, test_translation_out_same_handle);
  tcase_add_test(tc, test_translation_out_existing_handle);
  tcase_add_test(tc, test_translation_out_result_released_when_not_taken);
  suite_add_tcase(s, tc);

  tc = tcase_create("threads");
  tcase_set_timeout(tc, 60);
  tcase_add_checked_fixture(tc, setup, NULL);
  tcase_add_test(tc, test_a39_eight_threads_share_an_object);
  tcase_add_test(tc, test_a39_serial_flag_decides_overlap);
  tcase_add_test(tc, test_a39_eight_threads_serial_and_not);
  tcase_add_test(tc, test_a39_serial_waiting_methods_cancel_and_expire);
  suite_add_tcase(s, tc);

  tc = tcase_create("process");
  /* A fork child inherits memory owned by threads that do not exist in it, which
   * memcheck reports as lost: `make valgrind` excludes this tag. */
  tcase_set_tags(tc, "fork");
  tcase_set_timeout(tc, 30);
  tcase_add_checked_fixture(tc, setup, NULL);
  tcase_add_test(tc, test_object_open_at_synchronizer_close);
  tcase_add_test(tc, test_object_new_after_synchronizer_close);
#if !defined(__SANITIZE_THREAD__) && !defined(__SANITIZE_ADDRESS__)
  /* Starts a loop thread in the child of a multi-threaded process: TSan does not
   * support it and GCC 12's ASan allocator is not fork-safe (see check_synchronizer). */
  tcase_add_test(tc, test_fork_inherited_handle_eforked);
#else
  (void)test_fork_inherited_handle_eforked;
#endif
  suite_add_tcase(s, tc);

  tc = tcase_create("misuse");
  tcase_set_timeout(tc, 20);
  tcase_add_checked_fixture(tc, setup, NULL);
  tcase_add_test(tc, test_blocking_lifecycle_on_loop_thread_edeadlk);
  tcase_add_test(tc, test_internal_close_keeps_admission_count);
  tcase_add_test(tc, test_free_at_admission_limit_still_tears_down);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(objects_suite());
  int failed;
  srunner_run_all(sr, CK_ENV);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
