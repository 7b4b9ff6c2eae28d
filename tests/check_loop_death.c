/* tests/check_loop_death.c - the loop thread ends unexpectedly (A12): waiters and new
 * calls get SYNCHRO_ELOOPDIED with the cause, close and free still work. */
#define _GNU_SOURCE
#include <check.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "support/testops.h"
#include "synchro.h"

/* die: ends the loop thread inside its start. */
static void die_impl(synchro_call_t *call) {
  (void)call;
  pthread_exit(NULL);
}
static const synchro_op_t op_die = {.name = "die", .impl = die_impl};

/* die_later: ends the loop thread from a timer callback, after its start returned. */
static void die_timer_fired(uv_timer_t *t) {
  (void)t;
  pthread_exit(NULL);
}
static void die_later_impl(synchro_call_t *call) {
  static uv_timer_t timer; /* a dead loop's handles are never closed */
  uv_timer_init(synchro_call_loop(call), &timer);
  uv_timer_start(&timer, die_timer_fired, 20, 0);
}
static const synchro_op_t op_die_later = {.name = "die_later", .impl = die_later_impl};

static synchro_t *new_sync(void) {
  synchro_t *s = NULL;
  ck_assert_int_eq(synchro_new(&s, NULL), 0);
  return s;
}

static synchro_future_t *submit_sleep(synchro_t *s, int64_t ms) {
  test_sleep_args_t a = {ms, 0};
  synchro_future_t *f = NULL;
  ck_assert_int_eq(synchro_submit(s, &test_op_sleep, &a, SYNCHRO_TIMEOUT_DEFAULT, &f), 0);
  return f;
}

/* The error a resolved future carries: SYNCHRO_ELOOPDIED, its origin, and a message
 * that names the cause. */
static void assert_died_with(synchro_future_t *f, const char *origin, const char *cause) {
  const synchro_error_t *err;
  ck_assert_int_eq(synchro_future_wait(f, 10000), SYNCHRO_ELOOPDIED);
  err = synchro_future_error(f);
  ck_assert_ptr_nonnull(err);
  ck_assert_int_eq(synchro_error_code(err), SYNCHRO_ELOOPDIED);
  ck_assert_str_eq(synchro_error_origin(err), origin);
  ck_assert_msg(strstr(synchro_error_message(err), cause) != NULL, "message: %s",
                synchro_error_message(err));
}

typedef struct {
  synchro_t *s;
  int rc;
  char message[200];
} blocker_t;

static void *blocking_sleep(void *arg) {
  blocker_t *b = arg;
  test_sleep_args_t a = {60000, 0};
  int64_t out = 0;
  synchro_error_t *err = NULL;
  b->rc = synchro_call(b->s, &test_op_sleep, &a, SYNCHRO_TIMEOUT_DEFAULT, &out, &err);
  snprintf(b->message, sizeof(b->message), "%s", synchro_error_message(err));
  synchro_error_free(err);
  return NULL;
}

START_TEST(test_a12_waiters_get_eloopdied_with_the_cause) {
  synchro_t *s = new_sync();
  synchro_future_t *sleeps[3], *die = NULL;
  blocker_t b = {.s = s};
  pthread_t t;
  int i;
  testops_reset();
  for (i = 0; i < 3; i++)
    sleeps[i] = submit_sleep(s, 60000);
  ck_assert_int_eq(pthread_create(&t, NULL, blocking_sleep, &b), 0);
  while (test_sleeps_started < 4)
    usleep(1000);
  ck_assert_int_eq(synchro_submit(s, &op_die, NULL, SYNCHRO_TIMEOUT_DEFAULT, &die), 0);
  for (i = 0; i < 3; i++) {
    assert_died_with(sleeps[i], "sleep", "the loop thread exited inside die");
    synchro_future_free(sleeps[i]);
  }
  assert_died_with(die, "die", "the loop thread exited inside die");
  synchro_future_free(die);
  pthread_join(t, NULL);
  ck_assert_int_eq(b.rc, SYNCHRO_ELOOPDIED);
  ck_assert_msg(strstr(b.message, "exited inside die") != NULL, "message: %s", b.message);
  ck_assert_int_eq(synchro_close(s, 1000), 0);
  synchro_free(s);
}
END_TEST

/* Calls queued behind the one that ends the thread, in the same batch, are resolved
 * too (they were off the queue but not started). */
START_TEST(test_a12_calls_queued_behind_the_death) {
  synchro_t *s = new_sync();
  synchro_future_t *gate = NULL, *die = NULL, *adds[5];
  test_add_args_t a = {1, 2};
  int i;
  atomic_store(&test_gate_open, 0);
  ck_assert_int_eq(synchro_submit(s, &test_op_gate, NULL, SYNCHRO_TIMEOUT_DEFAULT, &gate), 0);
  usleep(20000); /* the loop is inside the gate: the next submissions queue up */
  ck_assert_int_eq(synchro_submit(s, &op_die, NULL, SYNCHRO_TIMEOUT_DEFAULT, &die), 0);
  for (i = 0; i < 5; i++)
    ck_assert_int_eq(synchro_submit(s, &test_op_add, &a, SYNCHRO_TIMEOUT_DEFAULT, &adds[i]), 0);
  atomic_store(&test_gate_open, 1);
  ck_assert_int_eq(synchro_future_wait(gate, 10000), 0);
  for (i = 0; i < 5; i++) {
    assert_died_with(adds[i], "add", "exited inside die");
    synchro_future_free(adds[i]);
  }
  synchro_future_free(die);
  synchro_future_free(gate);
  synchro_free(s);
}
END_TEST

START_TEST(test_a12_new_calls_fail_at_once) {
  synchro_t *s = new_sync();
  synchro_future_t *die = NULL, *f = NULL;
  test_add_args_t a = {1, 2};
  int64_t sum = 0;
  synchro_error_t *err = NULL;
  double t0;
  ck_assert_int_eq(synchro_submit(s, &op_die, NULL, SYNCHRO_TIMEOUT_DEFAULT, &die), 0);
  ck_assert_int_eq(synchro_future_wait(die, 10000), SYNCHRO_ELOOPDIED);
  t0 = test_now_ms();
  ck_assert_int_eq(synchro_call(s, &test_op_add, &a, SYNCHRO_TIMEOUT_INFINITE, &sum, &err),
                   SYNCHRO_ELOOPDIED);
  ck_assert_ptr_nonnull(err);
  ck_assert_int_eq(synchro_error_code(err), SYNCHRO_ELOOPDIED);
  ck_assert_ptr_nonnull(strstr(synchro_error_message(err), "exited inside die"));
  synchro_error_free(err);
  ck_assert_int_eq(synchro_submit(s, &test_op_add, &a, SYNCHRO_TIMEOUT_DEFAULT, &f),
                   SYNCHRO_ELOOPDIED);
  ck_assert_ptr_null(f);
  ck_assert_double_lt(test_now_ms() - t0, 1000);
  ck_assert_str_eq(synchro_strerror(SYNCHRO_ELOOPDIED), "the loop thread ended unexpectedly");
  ck_assert_str_eq(synchro_err_name(SYNCHRO_ELOOPDIED), "SYNCHRO_ELOOPDIED");
  synchro_future_free(die);
  ck_assert_int_eq(synchro_close(s, SYNCHRO_TIMEOUT_INFINITE), 0);
  /* After close too: the synchronizer stays dead (no restart). */
  ck_assert_int_eq(synchro_call(s, &test_op_add, &a, SYNCHRO_TIMEOUT_DEFAULT, &sum, NULL),
                   SYNCHRO_ELOOPDIED);
  synchro_free(s);
}
END_TEST

START_TEST(test_a12_death_in_a_loop_callback) {
  synchro_t *s = new_sync();
  synchro_future_t *sleep_f, *die = NULL;
  testops_reset();
  sleep_f = submit_sleep(s, 60000);
  ck_assert_int_eq(synchro_submit(s, &op_die_later, NULL, SYNCHRO_TIMEOUT_DEFAULT, &die), 0);
  assert_died_with(sleep_f, "sleep", "exited in a loop callback while 2 call(s) ran");
  assert_died_with(die, "die_later", "exited in a loop callback");
  synchro_future_free(sleep_f);
  synchro_future_free(die);
  synchro_free(s);
}
END_TEST

/* close and free after the death: no hang (even with an infinite grace period and
 * calls that were in flight), close twice, free without close. */
START_TEST(test_a12_close_and_free_after_death) {
  synchro_t *s = new_sync(), *s2 = new_sync();
  synchro_future_t *die = NULL, *pending;
  double t0;
  testops_reset();
  pending = submit_sleep(s, 60000);
  ck_assert_int_eq(synchro_submit(s, &op_die, NULL, SYNCHRO_TIMEOUT_DEFAULT, &die), 0);
  ck_assert_int_eq(synchro_future_wait(die, 10000), SYNCHRO_ELOOPDIED);
  t0 = test_now_ms();
  ck_assert_int_eq(synchro_close(s, SYNCHRO_TIMEOUT_INFINITE), 0);
  ck_assert_int_eq(synchro_close(s, 0), SYNCHRO_EALREADY);
  ck_assert_double_lt(test_now_ms() - t0, 1000);
  ck_assert_int_eq(synchro_future_status(pending), SYNCHRO_ELOOPDIED);
  synchro_future_free(pending);
  synchro_future_free(die);
  synchro_free(s);
  /* free without an explicit close */
  ck_assert_int_eq(synchro_submit(s2, &op_die, NULL, SYNCHRO_TIMEOUT_DEFAULT, &die), 0);
  ck_assert_int_eq(synchro_future_wait(die, 10000), SYNCHRO_ELOOPDIED);
  synchro_future_free(die);
  synchro_free(s2);
}
END_TEST

/* A death does not affect another synchronizer. */
START_TEST(test_a12_other_synchronizers_unaffected) {
  synchro_t *s = new_sync(), *other = new_sync();
  synchro_future_t *die = NULL;
  test_add_args_t a = {2, 3};
  int64_t sum = 0;
  ck_assert_int_eq(synchro_submit(s, &op_die, NULL, SYNCHRO_TIMEOUT_DEFAULT, &die), 0);
  ck_assert_int_eq(synchro_future_wait(die, 10000), SYNCHRO_ELOOPDIED);
  ck_assert_int_eq(synchro_call(other, &test_op_add, &a, SYNCHRO_TIMEOUT_DEFAULT, &sum, NULL), 0);
  ck_assert_int_eq(sum, 5);
  synchro_future_free(die);
  synchro_free(s);
  synchro_free(other);
}
END_TEST

/* A dump of a dead synchronizer neither hangs nor touches the dead loop. */
START_TEST(test_a12_dump_after_death) {
  synchro_t *s = new_sync();
  synchro_future_t *die = NULL;
  char *json = NULL;
  double t0;
  ck_assert_int_eq(synchro_submit(s, &op_die, NULL, SYNCHRO_TIMEOUT_DEFAULT, &die), 0);
  ck_assert_int_eq(synchro_future_wait(die, 10000), SYNCHRO_ELOOPDIED);
  t0 = test_now_ms();
  ck_assert_int_eq(synchro_dump(s, SYNCHRO_TIMEOUT_INFINITE, &json), 0);
  ck_assert_double_lt(test_now_ms() - t0, 2000);
  ck_assert_ptr_nonnull(strstr(json, "\"accepting\": false"));
  synchro_mem_free(json);
  synchro_future_free(die);
  synchro_free(s);
}
END_TEST

static Suite *loop_death_suite(void) {
  Suite *s = suite_create("loop_death");
  TCase *tc = tcase_create("a12");
  tcase_set_timeout(tc, 20);
  tcase_add_test(tc, test_a12_waiters_get_eloopdied_with_the_cause);
  tcase_add_test(tc, test_a12_calls_queued_behind_the_death);
  tcase_add_test(tc, test_a12_new_calls_fail_at_once);
  tcase_add_test(tc, test_a12_death_in_a_loop_callback);
  tcase_add_test(tc, test_a12_close_and_free_after_death);
  tcase_add_test(tc, test_a12_other_synchronizers_unaffected);
  tcase_add_test(tc, test_a12_dump_after_death);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(loop_death_suite());
  int failed;
  srunner_run_all(sr, CK_ENV);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
