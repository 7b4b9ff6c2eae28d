/* tests/check_batch.c - waiting for many futures: wait_all, wait_any and completion
 * queues. */
#define _GNU_SOURCE
#include <check.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "support/testops.h"
#include "synchro.h"

static synchro_t *new_sync(void) {
  synchro_t *s = NULL;
  ck_assert_int_eq(synchro_new(&s, NULL), 0);
  return s;
}

static void close_free(synchro_t *s) {
  ck_assert_int_eq(synchro_close(s, 1000), 0);
  synchro_free(s);
}

static synchro_future_t *sleep_future(synchro_t *s, int64_t ms) {
  test_sleep_args_t args = {ms, 0};
  synchro_future_t *f = NULL;
  ck_assert_int_eq(synchro_submit(s, &test_op_sleep, &args, SYNCHRO_TIMEOUT_DEFAULT, &f), 0);
  return f;
}

static synchro_future_t *add_future(synchro_t *s, int64_t a, int64_t b) {
  test_add_args_t args = {a, b};
  synchro_future_t *f = NULL;
  ck_assert_int_eq(synchro_submit(s, &test_op_add, &args, SYNCHRO_TIMEOUT_DEFAULT, &f), 0);
  return f;
}

static int64_t result_of(synchro_future_t *f) {
  int64_t r = -1;
  ck_assert_int_eq(synchro_future_result(f, &r), 0);
  return r;
}

static int fd_readable(int fd, int ms) {
  struct pollfd p = {fd, POLLIN, 0};
  return poll(&p, 1, ms);
}

/* ---- wait_all / wait_any ----------------------------------------------------------- */

START_TEST(test_wait_all_basic) {
  synchro_t *s = new_sync();
  synchro_future_t *fs[3];
  double t0 = test_now_ms();
  int i;
  fs[0] = sleep_future(s, 10);
  fs[1] = sleep_future(s, 40);
  fs[2] = add_future(s, 1, 2);
  ck_assert_int_eq(synchro_future_wait_all(fs, 3, SYNCHRO_TIMEOUT_INFINITE), 0);
  ck_assert_double_ge(test_now_ms() - t0, 39.0);
  for (i = 0; i < 3; i++)
    ck_assert_int_eq(synchro_future_status(fs[i]), 0);
  ck_assert_int_eq(result_of(fs[1]), 40);
  ck_assert_int_eq(result_of(fs[2]), 3);
  /* all resolved already: returns at once, also with a zero timeout */
  ck_assert_int_eq(synchro_future_wait_all(fs, 3, 0), 0);
  ck_assert_int_eq(synchro_future_wait_all(fs, 0, 0), 0); /* nothing to wait for */
  for (i = 0; i < 3; i++)
    synchro_future_free(fs[i]);
  close_free(s);
}
END_TEST

START_TEST(test_wait_all_timeout_then_resolves) {
  synchro_t *s = new_sync();
  synchro_future_t *fs[2];
  double t0;
  fs[0] = add_future(s, 2, 2);
  fs[1] = sleep_future(s, 150);
  t0 = test_now_ms();
  ck_assert_int_eq(synchro_future_wait_all(fs, 2, 20), SYNCHRO_EPENDING);
  ck_assert_double_ge(test_now_ms() - t0, 19.0);
  ck_assert_int_eq(synchro_future_wait_all(fs, 2, 0), SYNCHRO_EPENDING);
  ck_assert_int_eq(synchro_future_status(fs[1]), SYNCHRO_EPENDING);
  ck_assert_int_eq(synchro_future_wait_all(fs, 2, SYNCHRO_TIMEOUT_INFINITE), 0);
  ck_assert_int_eq(result_of(fs[1]), 150);
  synchro_future_free(fs[0]);
  synchro_future_free(fs[1]);
  close_free(s);
}
END_TEST

START_TEST(test_wait_all_1000) {
  enum { N = 1000 };
  synchro_t *s = new_sync();
  synchro_future_t **fs = calloc(N, sizeof(*fs));
  int i;
  for (i = 0; i < N; i++)
    fs[i] = i % 2 ? add_future(s, i, 1) : sleep_future(s, i % 20);
  ck_assert_int_eq(synchro_future_wait_all(fs, N, 10000), 0);
  for (i = 0; i < N; i++) {
    ck_assert_int_eq(synchro_future_status(fs[i]), 0);
    ck_assert_int_eq(result_of(fs[i]), i % 2 ? i + 1 : i % 20);
    synchro_future_free(fs[i]);
  }
  free(fs);
  close_free(s);
}
END_TEST

static double thread_cpu_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* A waiter polls a little before it sleeps when the loop runs on another CPU; on a
 * batch of slow calls that spin stays bounded: the waiting thread sleeps through
 * most of the wait. */
START_TEST(test_wait_all_slow_batch_sleeps) {
  enum { N = 1000, ROUNDS = 10 };
  synchro_t *s = new_sync();
  static synchro_future_t *fs[N];
  double cpu = 0, wall = 0;
  int r, i;
  for (r = 0; r < ROUNDS; r++) {
    double c0, t0;
    for (i = 0; i < N; i++)
      fs[i] = sleep_future(s, 30);
    c0 = thread_cpu_ms();
    t0 = test_now_ms();
    ck_assert_int_eq(synchro_future_wait_all(fs, N, 10000), 0);
    cpu += thread_cpu_ms() - c0;
    wall += test_now_ms() - t0;
    for (i = 0; i < N; i++)
      synchro_future_free(fs[i]);
  }
  ck_assert_msg(cpu < wall / 2, "the waiter used %.1f ms of CPU in %.1f ms of waiting", cpu, wall);
  close_free(s);
}
END_TEST

START_TEST(test_wait_any_basic) {
  synchro_t *s = new_sync();
  synchro_future_t *fs[3];
  size_t idx = 99;
  int i;
  fs[0] = sleep_future(s, 5000);
  fs[1] = sleep_future(s, 30);
  fs[2] = sleep_future(s, 5000);
  ck_assert_int_eq(synchro_future_wait_any(fs, 3, SYNCHRO_TIMEOUT_INFINITE, &idx), 0);
  ck_assert_uint_eq(idx, 1);
  ck_assert_int_eq(synchro_future_status(fs[1]), 0);
  /* the lowest resolved index, at once */
  idx = 99;
  ck_assert_int_eq(synchro_future_wait_any(fs, 3, 0, &idx), 0);
  ck_assert_uint_eq(idx, 1);
  for (i = 0; i < 3; i++) {
    synchro_future_cancel(fs[i]);
    synchro_future_free(fs[i]);
  }
  close_free(s);
}
END_TEST

START_TEST(test_wait_any_empty_timeout_and_invalid) {
  synchro_t *s = new_sync();
  synchro_future_t *fs[2];
  size_t idx = 99;
  double t0;
  ck_assert_int_eq(synchro_future_wait_any(fs, 0, 10, &idx), SYNCHRO_EEMPTY);
  ck_assert_int_eq(synchro_future_wait_any(NULL, 1, 10, &idx), SYNCHRO_EINVAL);
  ck_assert_int_eq(synchro_future_wait_all(NULL, 1, 10), SYNCHRO_EINVAL);
  fs[0] = sleep_future(s, 120);
  fs[1] = sleep_future(s, 150);
  ck_assert_int_eq(synchro_future_wait_any(fs, 2, 10, NULL), SYNCHRO_EINVAL);
  ck_assert_int_eq(synchro_future_wait_any(fs, 2, 0, &idx), SYNCHRO_EPENDING);
  t0 = test_now_ms();
  ck_assert_int_eq(synchro_future_wait_any(fs, 2, 20, &idx), SYNCHRO_EPENDING);
  ck_assert_double_ge(test_now_ms() - t0, 19.0);
  ck_assert_int_eq(synchro_future_status(fs[0]), SYNCHRO_EPENDING);
  ck_assert_int_eq(synchro_future_status(fs[1]), SYNCHRO_EPENDING);
  /* and they resolve later */
  ck_assert_int_eq(synchro_future_wait_any(fs, 2, SYNCHRO_TIMEOUT_INFINITE, &idx), 0);
  ck_assert_uint_eq(idx, 0);
  ck_assert_int_eq(synchro_future_wait_all(fs, 2, SYNCHRO_TIMEOUT_INFINITE), 0);
  synchro_future_free(fs[0]);
  synchro_future_free(fs[1]);
  {
    synchro_future_t *bad[1] = {NULL};
    ck_assert_int_eq(synchro_future_wait_all(bad, 1, 0), SYNCHRO_EINVAL);
    ck_assert_int_eq(synchro_future_wait_any(bad, 1, 0, &idx), SYNCHRO_EINVAL);
  }
  close_free(s);
}
END_TEST

START_TEST(test_wait_any_repeated_over_batch) {
  /* drain a batch by repeated wait_any, freeing what resolved */
  enum { N = 64 };
  synchro_t *s = new_sync();
  synchro_future_t *fs[N];
  int left = N, i, seen = 0;
  for (i = 0; i < N; i++)
    fs[i] = sleep_future(s, (i * 7) % 30);
  while (left > 0) {
    size_t idx;
    ck_assert_int_eq(synchro_future_wait_any(fs, (size_t)left, 5000, &idx), 0);
    ck_assert_uint_lt(idx, (size_t)left);
    ck_assert_int_eq(synchro_future_status(fs[idx]), 0);
    synchro_future_free(fs[idx]);
    fs[idx] = fs[--left];
    seen++;
  }
  ck_assert_int_eq(seen, N);
  close_free(s);
}
END_TEST

/* ---- completion queues ---------------------------------------------------------------- */

START_TEST(test_cq_completion_order) {
  synchro_t *s = new_sync();
  synchro_cq_t *cq = NULL;
  int64_t ms[4] = {90, 30, 60, 0}, want[4] = {0, 30, 60, 90};
  int i;
  ck_assert_int_eq(synchro_cq_new(&cq), 0);
  for (i = 0; i < 4; i++)
    ck_assert_int_eq(synchro_cq_add(cq, sleep_future(s, ms[i])), 0);
  ck_assert_uint_eq(synchro_cq_size(cq), 4);
  for (i = 0; i < 4; i++) {
    synchro_future_t *f = NULL;
    ck_assert_int_eq(synchro_cq_next(cq, 5000, &f), 0);
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(synchro_future_status(f), 0);
    ck_assert_int_eq(result_of(f), want[i]);
    synchro_future_free(f); /* ours again */
  }
  ck_assert_uint_eq(synchro_cq_size(cq), 0);
  synchro_cq_free(cq);
  close_free(s);
}
END_TEST

START_TEST(test_cq_fd_flags_and_readiness) {
  synchro_t *s = new_sync();
  synchro_cq_t *cq = NULL;
  synchro_future_t *f = NULL;
  int fd, i;
  ck_assert_int_eq(synchro_cq_new(&cq), 0);
  fd = synchro_cq_fd(cq);
  ck_assert_int_ge(fd, 0);
  ck_assert_int_eq(synchro_cq_fd(NULL), -1);
  ck_assert(fcntl(fd, F_GETFL) & O_NONBLOCK);
  ck_assert(fcntl(fd, F_GETFD) & FD_CLOEXEC);
  ck_assert_int_eq(fd_readable(fd, 0), 0); /* nothing yet */
  for (i = 0; i < 5; i++)
    ck_assert_int_eq(synchro_cq_add(cq, add_future(s, i, i)), 0);
  /* readable while completions wait; a burst keeps it readable until drained */
  ck_assert_int_eq(fd_readable(fd, 5000), 1);
  for (i = 0; i < 5; i++) {
    double t0 = test_now_ms();
    while (synchro_cq_size(cq) > 0 && fd_readable(fd, 0) == 1 && synchro_cq_next(cq, 0, &f) == 0) {
      synchro_future_free(f);
    }
    if (synchro_cq_size(cq) == 0)
      break;
    ck_assert_int_eq(synchro_cq_next(cq, 5000, &f), 0);
    synchro_future_free(f);
    ck_assert_double_lt(test_now_ms() - t0, 5000);
  }
  ck_assert_uint_eq(synchro_cq_size(cq), 0);
  /* A completion pushes, then signals the fd: the consumer may take the last one in
   * between, and the late signal then finds nothing. One call on the same loop ends
   * after every such signal; the next take clears it, and the fd stays quiet. */
  ck_assert_int_eq(
      synchro_call(s, &test_op_add, &(test_add_args_t){1, 1}, 5000, &(int64_t){0}, NULL), 0);
  ck_assert_int_eq(synchro_cq_next(cq, 0, &f), SYNCHRO_EEMPTY);
  ck_assert_int_eq(fd_readable(fd, 50), 0); /* drained: not readable */
  synchro_cq_free(cq);
  close_free(s);
}
END_TEST

START_TEST(test_cq_empty_pending_invalid) {
  synchro_t *s = new_sync();
  synchro_cq_t *cq = NULL;
  synchro_future_t *f = NULL, *g;
  double t0;
  ck_assert_int_eq(synchro_cq_new(NULL), SYNCHRO_EINVAL);
  ck_assert_int_eq(synchro_cq_new(&cq), 0);
  ck_assert_int_eq(synchro_cq_next(cq, 100, &f), SYNCHRO_EEMPTY); /* does not wait */
  ck_assert_int_eq(synchro_cq_next(NULL, 0, &f), SYNCHRO_EINVAL);
  ck_assert_int_eq(synchro_cq_next(cq, 0, NULL), SYNCHRO_EINVAL);
  ck_assert_int_eq(synchro_cq_next(cq, -9, &f), SYNCHRO_EINVAL);
  g = sleep_future(s, 100);
  ck_assert_int_eq(synchro_cq_add(NULL, g), SYNCHRO_EINVAL);
  ck_assert_int_eq(synchro_cq_add(cq, NULL), SYNCHRO_EINVAL);
  ck_assert_int_eq(synchro_cq_add(cq, g), 0);
  ck_assert_int_eq(synchro_cq_add(cq, g), SYNCHRO_EINVAL); /* already in a queue */
  t0 = test_now_ms();
  ck_assert_int_eq(synchro_cq_next(cq, 20, &f), SYNCHRO_EPENDING);
  ck_assert_double_ge(test_now_ms() - t0, 19.0);
  ck_assert_int_eq(synchro_cq_next(cq, 0, &f), SYNCHRO_EPENDING);
  ck_assert_ptr_null(f);
  ck_assert_int_eq(synchro_cq_next(cq, SYNCHRO_TIMEOUT_INFINITE, &f), 0);
  ck_assert_ptr_eq(f, g);
  ck_assert_int_eq(result_of(f), 100);
  synchro_future_free(f);
  ck_assert_int_eq(synchro_cq_next(cq, 0, &f), SYNCHRO_EEMPTY);
  synchro_cq_free(cq);
  synchro_cq_free(NULL);
  close_free(s);
}
END_TEST

START_TEST(test_cq_add_resolved_future) {
  synchro_t *s = new_sync();
  synchro_cq_t *cq = NULL;
  synchro_future_t *f = add_future(s, 20, 1), *out = NULL;
  ck_assert_int_eq(synchro_future_wait(f, SYNCHRO_TIMEOUT_INFINITE), 0);
  ck_assert_int_eq(synchro_cq_new(&cq), 0);
  ck_assert_int_eq(synchro_cq_add(cq, f), 0);
  ck_assert_int_eq(fd_readable(synchro_cq_fd(cq), 0), 1);
  ck_assert_int_eq(synchro_cq_next(cq, 0, &out), 0);
  ck_assert_ptr_eq(out, f);
  ck_assert_int_eq(result_of(out), 21);
  synchro_future_free(out);
  ck_assert_int_eq(fd_readable(synchro_cq_fd(cq), 50), 0);
  synchro_cq_free(cq);
  close_free(s);
}
END_TEST

START_TEST(test_cq_free_with_pending_futures) {
  synchro_t *s = new_sync();
  synchro_cq_t *cq = NULL;
  synchro_stats_t st;
  int i;
  testops_reset();
  ck_assert_int_eq(synchro_cq_new(&cq), 0);
  for (i = 0; i < 10; i++)
    ck_assert_int_eq(synchro_cq_add(cq, sleep_future(s, 30 + i)), 0);
  ck_assert_int_eq(synchro_cq_add(cq, add_future(s, 1, 1)), 0); /* resolved, not taken */
  {
    test_string_args_t a = {(char *)"x"};
    synchro_future_t *f = NULL;
    ck_assert_int_eq(synchro_submit(s, &test_op_upper, &a, SYNCHRO_TIMEOUT_DEFAULT, &f), 0);
    ck_assert_int_eq(synchro_cq_add(cq, f), 0);
  }
  usleep(5000);
  synchro_cq_free(cq); /* pending ones resolve later and are released then */
  ck_assert_int_eq(synchro_close(s, SYNCHRO_TIMEOUT_INFINITE), 0);
  ck_assert_int_eq(synchro_stats(s, &st), 0);
  ck_assert_uint_eq(st.completed, 12);
  ck_assert_uint_eq(st.in_flight, 0);
  ck_assert_int_eq(test_results_freed, 1); /* the upper result, never taken */
  synchro_free(s);
}
END_TEST

START_TEST(test_cq_many_and_batch_wakeups) {
  enum { N = 2000 };
  synchro_t *s = new_sync();
  synchro_cq_t *cq = NULL;
  int i, got = 0;
  long sum = 0;
  ck_assert_int_eq(synchro_cq_new(&cq), 0);
  for (i = 0; i < N; i++)
    ck_assert_int_eq(synchro_cq_add(cq, add_future(s, i, 0)), 0);
  while (got < N) {
    synchro_future_t *f = NULL;
    ck_assert_int_eq(synchro_cq_next(cq, 5000, &f), 0);
    sum += result_of(f);
    synchro_future_free(f);
    got++;
  }
  ck_assert_int_eq(sum, (long)N * (N - 1) / 2);
  ck_assert_int_eq(synchro_cq_next(cq, 0, NULL) == SYNCHRO_EINVAL, 1);
  synchro_cq_free(cq);
  close_free(s);
}
END_TEST

START_TEST(test_cq_future_in_queue_cannot_be_batch_waited) {
  synchro_t *s = new_sync();
  synchro_cq_t *cq = NULL;
  synchro_future_t *f = sleep_future(s, 50), *out = NULL;
  size_t idx;
  ck_assert_int_eq(synchro_cq_new(&cq), 0);
  ck_assert_int_eq(synchro_cq_add(cq, f), 0);
  ck_assert_int_eq(synchro_future_wait_all(&f, 1, 10), SYNCHRO_EINVAL);
  ck_assert_int_eq(synchro_future_wait_any(&f, 1, 10, &idx), SYNCHRO_EINVAL);
  synchro_future_free(f); /* owned by the queue: ignored */
  ck_assert_int_eq(synchro_cq_next(cq, 5000, &out), 0);
  ck_assert_ptr_eq(out, f);
  synchro_future_free(out);
  synchro_cq_free(cq);
  close_free(s);
}
END_TEST

/* ---- submit_many: one queue operation for a whole batch ----------------------------- */

START_TEST(test_submit_many_results_in_order) {
  enum { N = 1000 };
  synchro_t *s = new_sync();
  static test_add_args_t args[N];
  static synchro_future_t *fs[N];
  synchro_stats_t st;
  int64_t r;
  int i;
  for (i = 0; i < N; i++) {
    args[i].a = i;
    args[i].b = 1;
  }
  ck_assert_int_eq(
      synchro_submit_many(s, &test_op_add, args, sizeof(args[0]), N, SYNCHRO_TIMEOUT_DEFAULT, fs),
      0);
  ck_assert_int_eq(synchro_future_wait_all(fs, N, 10000), 0);
  for (i = 0; i < N; i++) {
    ck_assert_int_eq(synchro_future_result(fs[i], &r), 0);
    ck_assert_int_eq(r, i + 1);
    synchro_future_free(fs[i]);
  }
  ck_assert_int_eq(synchro_stats(s, &st), 0);
  ck_assert_uint_eq(st.submitted, N);
  ck_assert_int_eq(
      synchro_submit_many(s, &test_op_add, args, sizeof(args[0]), 0, SYNCHRO_TIMEOUT_DEFAULT, fs),
      0);
  close_free(s);
}
END_TEST

START_TEST(test_submit_many_all_or_nothing) {
  synchro_options_t opts;
  synchro_t *s = NULL;
  test_sleep_args_t args[4] = {{5000, 0}, {5000, 0}, {5000, 0}, {5000, 0}};
  synchro_future_t *fs[4] = {NULL, NULL, NULL, NULL};
  synchro_stats_t st;
  synchro_options_init(&opts);
  opts.max_inflight = 3;
  ck_assert_int_eq(synchro_new(&s, &opts), 0);
  /* the fourth call does not fit: none is submitted */
  ck_assert_int_eq(
      synchro_submit_many(s, &test_op_sleep, args, sizeof(args[0]), 4, SYNCHRO_TIMEOUT_DEFAULT, fs),
      SYNCHRO_EBUSY);
  ck_assert_ptr_null(fs[0]);
  ck_assert_int_eq(synchro_stats(s, &st), 0);
  ck_assert_uint_eq(st.submitted, 0);
  ck_assert_int_eq(
      synchro_submit_many(s, &test_op_sleep, args, sizeof(args[0]), 3, SYNCHRO_TIMEOUT_DEFAULT, fs),
      0);
  ck_assert_int_eq(synchro_close(s, 0), 0);
  ck_assert_int_eq(synchro_future_wait_all(fs, 3, 5000), 0);
  synchro_future_free(fs[0]);
  synchro_future_free(fs[1]);
  synchro_future_free(fs[2]);
  synchro_free(s);
}
END_TEST

START_TEST(test_submit_many_bad_input) {
  synchro_t *s = new_sync();
  test_add_args_t args[2] = {{1, 2}, {3, 4}};
  synchro_future_t *fs[2];
  ck_assert_int_eq(synchro_submit_many(NULL, &test_op_add, args, sizeof(args[0]), 2,
                                       SYNCHRO_TIMEOUT_DEFAULT, fs),
                   SYNCHRO_EINVAL);
  ck_assert_int_eq(
      synchro_submit_many(s, &test_op_add, args, sizeof(args[0]), 2, SYNCHRO_TIMEOUT_DEFAULT, NULL),
      SYNCHRO_EINVAL);
  ck_assert_int_eq(synchro_submit_many(s, &test_op_add, args, 1, 2, SYNCHRO_TIMEOUT_DEFAULT, fs),
                   SYNCHRO_EINVAL); /* stride smaller than an argument block */
  ck_assert_int_eq(
      synchro_submit_many(s, &test_op_add, NULL, sizeof(args[0]), 2, SYNCHRO_TIMEOUT_DEFAULT, fs),
      SYNCHRO_EINVAL);
  ck_assert_int_eq(synchro_close(s, 0), 0);
  ck_assert_int_eq(
      synchro_submit_many(s, &test_op_add, args, sizeof(args[0]), 2, SYNCHRO_TIMEOUT_DEFAULT, fs),
      SYNCHRO_ESHUTDOWN);
  synchro_free(s);
}
END_TEST

static Suite *batch_suite(void) {
  Suite *s = suite_create("batch");
  TCase *tc;

  tc = tcase_create("wait");
  tcase_set_timeout(tc, 10);
  tcase_add_test(tc, test_wait_all_basic);
  tcase_add_test(tc, test_wait_all_timeout_then_resolves);
  tcase_add_test(tc, test_wait_all_1000);
  tcase_add_test(tc, test_wait_all_slow_batch_sleeps);
  tcase_add_test(tc, test_wait_any_basic);
  tcase_add_test(tc, test_wait_any_empty_timeout_and_invalid);
  tcase_add_test(tc, test_wait_any_repeated_over_batch);
  suite_add_tcase(s, tc);

  tc = tcase_create("submit_many");
  tcase_set_timeout(tc, 20);
  tcase_add_test(tc, test_submit_many_results_in_order);
  tcase_add_test(tc, test_submit_many_all_or_nothing);
  tcase_add_test(tc, test_submit_many_bad_input);
  suite_add_tcase(s, tc);

  tc = tcase_create("cq");
  tcase_set_timeout(tc, 10);
  tcase_add_test(tc, test_cq_completion_order);
  tcase_add_test(tc, test_cq_fd_flags_and_readiness);
  tcase_add_test(tc, test_cq_empty_pending_invalid);
  tcase_add_test(tc, test_cq_add_resolved_future);
  tcase_add_test(tc, test_cq_free_with_pending_futures);
  tcase_add_test(tc, test_cq_many_and_batch_wakeups);
  tcase_add_test(tc, test_cq_future_in_queue_cannot_be_batch_waited);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(batch_suite());
  int failed;
  srunner_run_all(sr, CK_ENV);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
