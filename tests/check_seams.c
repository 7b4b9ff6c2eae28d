/* tests/check_seams.c - races forced through the test seams (lib/testing.h): instead of
 * hoping that random jitter hits an interleaving, a hook stops one thread exactly at a
 * handoff point while the test acts from another, then lets it go on. */
#define _GNU_SOURCE
#include <check.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "support/testops.h"
#include "synchro.h"
#include "testing.h"
#include "internal.h" /* synchro__lock, synchro__user_code (A3) */

/* ---- a gate: the hooked thread stops at the seam until the test opens it ---------- */

typedef struct {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  const synchro_op_t *op; /* only calls of this op stop (NULL: any, e.g. at SLEEP) */
  int armed;              /* stop the next thread that reaches the seam */
  int arrived;            /* a thread is waiting at the seam */
  int open;               /* let it go on */
} gate_t;

#define GATE_INIT                                                                                  \
  { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, NULL, 0, 0, 0 }
static gate_t gate = GATE_INIT;   /* the seam under test */
static gate_t holder = GATE_INIT; /* holds a call back while a test sets it up */

static void gate_arm_at(gate_t *g, const synchro_op_t *op) {
  pthread_mutex_lock(&g->mu);
  g->op = op;
  g->armed = 1;
  g->arrived = 0;
  g->open = 0;
  pthread_mutex_unlock(&g->mu);
}

static void gate_arm(const synchro_op_t *op) { gate_arm_at(&gate, op); }

/* The hook: `data` is the gate. */
static void gate_hook(synchro_seam_t seam, const synchro_call_t *call, void *data) {
  gate_t *g = data != NULL ? data : &gate;
  (void)seam;
  if (g->op != NULL && synchro_test_call_op(call) != g->op)
    return;
  pthread_mutex_lock(&g->mu);
  if (g->armed) {
    g->armed = 0;
    g->arrived = 1;
    pthread_cond_broadcast(&g->cv);
    while (!g->open)
      pthread_cond_wait(&g->cv, &g->mu);
  }
  pthread_mutex_unlock(&g->mu);
}

/* Waits (at most 10 s) until a thread stopped at the gate. */
static int gate_wait_at(gate_t *g) {
  struct timespec until;
  int rc = 0, arrived;
  clock_gettime(CLOCK_REALTIME, &until);
  until.tv_sec += 10;
  pthread_mutex_lock(&g->mu);
  while (!g->arrived && rc == 0)
    rc = pthread_cond_timedwait(&g->cv, &g->mu, &until);
  arrived = g->arrived;
  pthread_mutex_unlock(&g->mu);
  return arrived;
}

static int gate_wait_arrival(void) { return gate_wait_at(&gate); }

static void gate_open_at(gate_t *g) {
  pthread_mutex_lock(&g->mu);
  g->open = 1;
  pthread_cond_broadcast(&g->cv);
  pthread_mutex_unlock(&g->mu);
}

static void gate_open(void) { gate_open_at(&gate); }

/* Holds the next call of `op` at the queue (before it starts) so that a test can attach
 * a sink to it first; release_held() lets it go on. */
static void hold_at_dequeue(const synchro_op_t *op) {
  gate_arm_at(&holder, op);
  synchro_test_seam_set(SYNCHRO_SEAM_DEQUEUE, gate_hook, &holder);
}

static void release_held(void) {
  ck_assert(gate_wait_at(&holder));
  synchro_test_seam_set(SYNCHRO_SEAM_DEQUEUE, NULL, NULL);
  gate_open_at(&holder);
}

static void setup(void) {
  testops_reset();
  gate_arm(NULL);
  gate.armed = 0;
  gate_arm_at(&holder, NULL);
  holder.armed = 0;
}

static void teardown(void) {
  int i;
  for (i = 0; i < SYNCHRO_SEAM_COUNT; i++)
    synchro_test_seam_set((synchro_seam_t)i, NULL, NULL);
  gate_open();
  gate_open_at(&holder);
}

static synchro_t *new_sync(void) {
  synchro_t *s = NULL;
  ck_assert_int_eq(synchro_new(&s, NULL), 0);
  return s;
}

static void close_free(synchro_t *s) {
  ck_assert_int_eq(synchro_close(s, 1000), 0);
  synchro_free(s);
}

/* ---- cancel vs submit / start / complete ---------------------------------------------- */

/* A6: the cancel arrives while the loop holds the call between the queue and its start:
 * the call never starts and ends cancelled. */
START_TEST(test_cancel_between_dequeue_and_start) {
  synchro_t *s = new_sync();
  synchro_future_t *f = NULL;
  test_sleep_args_t args = {1000, 0};
  gate_arm(&test_op_sleep);
  synchro_test_seam_set(SYNCHRO_SEAM_DEQUEUE, gate_hook, NULL);
  ck_assert_int_eq(synchro_submit(s, &test_op_sleep, &args, SYNCHRO_TIMEOUT_DEFAULT, &f), 0);
  ck_assert(gate_wait_arrival());
  ck_assert_int_eq(synchro_future_cancel(f), 0); /* accepted: the outcome is not decided */
  gate_open();
  ck_assert_int_eq(synchro_future_wait(f, 5000), SYNCHRO_ECANCELED);
  ck_assert_int_eq(test_hooks_run, 0); /* never started, so no hook */
  synchro_future_free(f);
  close_free(s);
}
END_TEST

/* The cancel arrives after the call started, before its implementation registered its
 * hook: the request waits in the control queue and the hook runs once, later. */
START_TEST(test_cancel_at_start) {
  synchro_t *s = new_sync();
  synchro_future_t *f = NULL;
  test_sleep_args_t args = {5000, 0};
  gate_arm(&test_op_sleep);
  synchro_test_seam_set(SYNCHRO_SEAM_START, gate_hook, NULL);
  ck_assert_int_eq(synchro_submit(s, &test_op_sleep, &args, SYNCHRO_TIMEOUT_DEFAULT, &f), 0);
  ck_assert(gate_wait_arrival());
  ck_assert_int_eq(synchro_future_cancel(f), 0);
  gate_open();
  ck_assert_int_eq(synchro_future_wait(f, 5000), SYNCHRO_ECANCELED);
  ck_assert_int_eq(test_hooks_run, 1);
  ck_assert_int_eq(test_hooks_off_loop, 0);
  synchro_future_free(f);
  close_free(s);
}
END_TEST

/* Submits `upper("abc")` and holds the loop where its outcome is written but not yet
 * published (the complete seam); gate_open() lets it go on. */
static synchro_future_t *submit_held_before_publish(synchro_t *s) {
  static test_string_args_t args = {(char *)"abc"};
  synchro_future_t *f = NULL;
  gate_arm(&test_op_upper);
  synchro_test_seam_set(SYNCHRO_SEAM_COMPLETE, gate_hook, NULL);
  ck_assert_int_eq(synchro_submit(s, &test_op_upper, &args, SYNCHRO_TIMEOUT_DEFAULT, &f), 0);
  ck_assert(gate_wait_arrival());
  ck_assert_int_eq(synchro_future_wait(f, 0), SYNCHRO_EPENDING); /* not published yet */
  return f;
}

/* A7: the cancel arrives after the loop wrote the outcome, before it is published: the
 * cancel is accepted and decides (cancel requested before delivery means
 * SYNCHRO_ECANCELED), and the result the implementation made is released once, by the
 * library. */
START_TEST(test_cancel_after_outcome_before_publish) {
  synchro_t *s = new_sync();
  synchro_future_t *f = submit_held_before_publish(s);
  char *out = NULL;
  ck_assert_int_eq(synchro_future_cancel(f), 0);
  ck_assert_int_eq(synchro_future_cancel(f), 0); /* already requested */
  gate_open();
  ck_assert_int_eq(synchro_future_wait(f, 5000), SYNCHRO_ECANCELED);
  ck_assert_int_eq(synchro_future_result(f, &out), SYNCHRO_ECANCELED);
  ck_assert_ptr_null(out);
  ck_assert_int_eq(synchro_future_cancel(f), SYNCHRO_EALREADY);
  ck_assert_int_eq(test_results_freed, 1); /* released by the library, once */
  synchro_future_free(f);
  close_free(s);
  ck_assert_int_eq(test_results_freed, 1);
}
END_TEST

/* The same seam without a cancel: the outcome the implementation wrote is delivered. */
START_TEST(test_outcome_held_before_publish_is_delivered) {
  synchro_t *s = new_sync();
  synchro_future_t *f = submit_held_before_publish(s);
  char *out = NULL;
  gate_open();
  ck_assert_int_eq(synchro_future_wait(f, 5000), 0);
  ck_assert_int_eq(synchro_future_result(f, &out), 0);
  ck_assert_str_eq(out, "ABC");
  free(out);
  synchro_future_free(f);
  close_free(s);
  ck_assert_int_eq(test_results_freed, 0); /* moved out, never released */
}
END_TEST

/* The loop is stopped just as it takes an accepted cancel request off the control
 * queue (the call is running, its hook registered): once let go it runs the hook, once,
 * and the outcome is the cancellation. */
START_TEST(test_cancel_observed_late) {
  synchro_t *s = new_sync();
  synchro_future_t *f = NULL;
  test_sleep_args_t args = {5000, 0}; /* still running when the cancel comes */
  gate_arm(&test_op_sleep);
  synchro_test_seam_set(SYNCHRO_SEAM_CANCEL_OBSERVE, gate_hook, NULL);
  ck_assert_int_eq(synchro_submit(s, &test_op_sleep, &args, SYNCHRO_TIMEOUT_DEFAULT, &f), 0);
  ck_assert_int_eq(synchro_future_cancel(f), 0);
  ck_assert(gate_wait_arrival()); /* the loop holds the request, the timer still runs */
  gate_open();
  ck_assert_int_eq(synchro_future_wait(f, 5000), SYNCHRO_ECANCELED);
  synchro_future_free(f);
  close_free(s);
}
END_TEST

/* ---- submit vs close ------------------------------------------------------------------ */

typedef struct {
  synchro_t *s;
  int rc;
  synchro_future_t *f;
} submitter_t;

static void *submit_one(void *p) {
  submitter_t *sub = p;
  test_add_args_t args = {1, 2};
  sub->rc = synchro_submit(sub->s, &test_op_add, &args, SYNCHRO_TIMEOUT_DEFAULT, &sub->f);
  return NULL;
}

/* A11: a submitter stopped just before its push while another thread closes the
 * synchronizer: the push is refused, the submitter gets SYNCHRO_ESHUTDOWN, nothing leaks
 * (ASan) and close does not wait for it. */
START_TEST(test_submit_racing_close) {
  synchro_t *s = new_sync();
  submitter_t sub = {s, 1, NULL};
  pthread_t t;
  test_add_args_t warm = {0, 0};
  int64_t sum;
  ck_assert_int_eq(synchro_call(s, &test_op_add, &warm, SYNCHRO_TIMEOUT_DEFAULT, &sum, NULL), 0);
  gate_arm(&test_op_add);
  synchro_test_seam_set(SYNCHRO_SEAM_SUBMIT, gate_hook, NULL);
  ck_assert_int_eq(pthread_create(&t, NULL, submit_one, &sub), 0);
  ck_assert(gate_wait_arrival());
  ck_assert_int_eq(synchro_close(s, 0), 0);
  gate_open();
  pthread_join(t, NULL);
  ck_assert_int_eq(sub.rc, SYNCHRO_ESHUTDOWN);
  ck_assert_ptr_null(sub.f);
  synchro_free(s);
}
END_TEST

typedef struct {
  synchro_t *s;
  int rc;
  synchro_future_t *f;
} upper_submitter_t;

static void *submit_upper_one(void *p) {
  upper_submitter_t *sub = p;
  test_string_args_t args = {(char *)"refused"};
  sub->rc = synchro_submit(sub->s, &test_op_upper, &args, SYNCHRO_TIMEOUT_DEFAULT, &sub->f);
  return NULL;
}

/* A submission refused at the push (the close won) releases its copied arguments and
 * nothing else: the op's result_free must not run on a result no implementation made
 * (found by the jittered submit-vs-close race of tests/stress/mix.c). */
START_TEST(test_refused_submit_releases_no_result) {
  synchro_t *s = new_sync();
  synchro_future_t *f = (synchro_future_t *)&f;
  test_string_args_t args = {(char *)"never"};
  char *out = NULL;
  ck_assert_int_eq(synchro_submit(s, &test_op_upper, &args, SYNCHRO_TIMEOUT_DEFAULT, &f), 0);
  ck_assert_int_eq(synchro_future_wait(f, 5000), 0);
  ck_assert_int_eq(synchro_future_result(f, &out), 0);
  free(out);
  synchro_future_free(f); /* the pool now holds a record whose result bytes were used */
  gate_arm(&test_op_upper);
  synchro_test_seam_set(SYNCHRO_SEAM_SUBMIT, gate_hook, NULL);
  {
    pthread_t t;
    upper_submitter_t sub = {s, 1, NULL};
    ck_assert_int_eq(pthread_create(&t, NULL, submit_upper_one, &sub), 0);
    ck_assert(gate_wait_arrival());
    ck_assert_int_eq(synchro_close(s, 0), 0);
    gate_open();
    pthread_join(t, NULL);
    ck_assert_int_eq(sub.rc, SYNCHRO_ESHUTDOWN);
    ck_assert_ptr_null(sub.f);
  }
  synchro_free(s);
  ck_assert_int_eq(test_results_made, 1);
  ck_assert_int_eq(test_results_freed, 0); /* the taken one was ours; none made since */
  ck_assert_int_eq(test_args_freed, 2);
}
END_TEST

/* ---- delivery vs free --------------------------------------------------------------- */

/* A completion queue freed while the loop is about to hand it a resolved future: the
 * late delivery releases the future instead (no use after free, no leak under ASan). */
START_TEST(test_cq_freed_while_delivering) {
  synchro_t *s = new_sync();
  synchro_cq_t *cq = NULL;
  synchro_future_t *f = NULL;
  test_string_args_t args = {(char *)"late"};
  ck_assert_int_eq(synchro_cq_new(&cq), 0);
  gate_arm(&test_op_upper);
  synchro_test_seam_set(SYNCHRO_SEAM_DELIVER, gate_hook, NULL);
  hold_at_dequeue(&test_op_upper); /* attached before it can resolve */
  ck_assert_int_eq(synchro_submit(s, &test_op_upper, &args, SYNCHRO_TIMEOUT_DEFAULT, &f), 0);
  ck_assert_int_eq(synchro_cq_add(cq, f), 0);
  release_held();
  ck_assert(gate_wait_arrival());
  synchro_cq_free(cq);
  gate_open();
  close_free(s);
  ck_assert_int_eq(test_results_freed, 1); /* the result nobody took was released */
}
END_TEST

static int aio_callbacks;
static void on_aio(synchro_future_t *f, int status, void *data) {
  (void)f;
  (void)status;
  (void)data;
  aio_callbacks++;
}

/* A19: a host freed while the loop is about to deliver to it: no callback runs, the call
 * is released by the late delivery. */
START_TEST(test_host_freed_while_delivering) {
  synchro_t *s = new_sync();
  synchro_host_t *h = NULL;
  synchro_future_t *f = NULL;
  test_string_args_t args = {(char *)"late"};
  ck_assert_int_eq(synchro_host_new_fd(&h), 0);
  gate_arm(&test_op_upper);
  synchro_test_seam_set(SYNCHRO_SEAM_DELIVER, gate_hook, NULL);
  hold_at_dequeue(&test_op_upper); /* attached before it can resolve */
  ck_assert_int_eq(synchro_submit(s, &test_op_upper, &args, SYNCHRO_TIMEOUT_DEFAULT, &f), 0);
  ck_assert_int_eq(synchro_future_then(f, h, on_aio, NULL), 0);
  release_held();
  ck_assert(gate_wait_arrival());
  synchro_host_free(h);
  gate_open();
  close_free(s);
  ck_assert_int_eq(aio_callbacks, 0);
  ck_assert_int_eq(test_results_freed, 1);
}
END_TEST

/* Detach vs deliver, at the host: the loop has pushed the resolved call onto the host's
 * stack and is stopped before it signals the host's fd. The host thread dispatches the
 * call (its callback runs, the record is released) and frees the host right there; the
 * loop then signals. The delivering thread's own hold keeps the host (and its fd) alive
 * until the signal is written: no use after free (ASan), nothing leaks. */
START_TEST(test_host_freed_between_push_and_signal) {
  synchro_t *s = new_sync();
  synchro_host_t *h = NULL;
  synchro_future_t *f = NULL;
  test_string_args_t args = {(char *)"late"};
  ck_assert_int_eq(synchro_host_new_fd(&h), 0);
  gate_arm(NULL);
  synchro_test_seam_set(SYNCHRO_SEAM_HOST_SIGNAL, gate_hook, NULL);
  hold_at_dequeue(&test_op_upper); /* attached before it can resolve */
  ck_assert_int_eq(synchro_submit(s, &test_op_upper, &args, SYNCHRO_TIMEOUT_DEFAULT, &f), 0);
  ck_assert_int_eq(synchro_future_then(f, h, on_aio, NULL), 0);
  release_held();
  ck_assert(gate_wait_arrival()); /* pushed, not signalled */
  ck_assert_int_eq(synchro_host_dispatch(h, 0), 1);
  ck_assert_int_eq(aio_callbacks, 1);
  synchro_host_free(h);
  gate_open();
  close_free(s);
  ck_assert_int_eq(test_results_freed, 1); /* released with the record, once */
}
END_TEST

/* ---- the lost-wakeup probe --------------------------------------------------------- */

/* A16: the loop stopped after announcing it may sleep and before its re-check; a call is
 * submitted exactly there. Whichever side wins, the call is taken and answered. */
START_TEST(test_submit_between_announce_and_recheck) {
  synchro_t *s = new_sync();
  synchro_future_t *f = NULL;
  test_add_args_t args = {20, 22};
  int64_t sum = 0;
  ck_assert_int_eq(synchro_call(s, &test_op_add, &args, SYNCHRO_TIMEOUT_DEFAULT, &sum, NULL), 0);
  gate_arm(NULL);
  synchro_test_seam_set(SYNCHRO_SEAM_SLEEP, gate_hook, NULL);
  /* the loop goes idle after this call and stops at the seam */
  ck_assert_int_eq(synchro_submit(s, &test_op_add, &args, SYNCHRO_TIMEOUT_DEFAULT, &f), 0);
  ck_assert(gate_wait_arrival());
  synchro_future_free(f);
  f = NULL;
  synchro_test_seam_set(SYNCHRO_SEAM_SLEEP, NULL, NULL);
  ck_assert_int_eq(synchro_submit(s, &test_op_add, &args, SYNCHRO_TIMEOUT_DEFAULT, &f), 0);
  gate_open();
  ck_assert_int_eq(synchro_future_wait(f, 5000), 0); /* not lost */
  ck_assert_int_eq(synchro_future_result(f, &sum), 0);
  ck_assert_int_eq(sum, 42);
  synchro_future_free(f);
  close_free(s);
}
END_TEST

/* Every seam is reached in an ordinary call's life (none is dead code). */
static atomic_int reached[SYNCHRO_SEAM_COUNT];

static void count_hook(synchro_seam_t seam, const synchro_call_t *call, void *data) {
  (void)call;
  (void)data;
  reached[seam]++;
}

START_TEST(test_every_seam_is_reached) {
  synchro_t *s = new_sync();
  synchro_host_t *h = NULL;
  synchro_future_t *f = NULL;
  test_sleep_args_t sleep_args = {5000, 0};
  test_add_args_t args = {1, 1};
  int64_t sum;
  int i;
  for (i = 0; i < SYNCHRO_SEAM_COUNT; i++)
    synchro_test_seam_set((synchro_seam_t)i, count_hook, NULL);
  ck_assert_int_eq(synchro_call(s, &test_op_add, &args, SYNCHRO_TIMEOUT_DEFAULT, &sum, NULL), 0);
  ck_assert_int_eq(synchro_submit(s, &test_op_sleep, &sleep_args, SYNCHRO_TIMEOUT_DEFAULT, &f), 0);
  ck_assert_int_eq(synchro_future_cancel(f), 0);
  ck_assert_int_eq(synchro_future_wait(f, 5000), SYNCHRO_ECANCELED);
  synchro_future_free(f);
  ck_assert_int_eq(synchro_host_new_fd(&h), 0);
  /* slow enough that the host is attached before the call resolves */
  sleep_args.ms = 20;
  ck_assert_int_eq(synchro_submit(s, &test_op_sleep, &sleep_args, SYNCHRO_TIMEOUT_DEFAULT, &f), 0);
  ck_assert_int_eq(synchro_future_then(f, h, on_aio, NULL), 0);
  for (i = 0; i < 500 && aio_callbacks == 0; i++) {
    synchro_host_dispatch(h, 0);
    nanosleep(&(struct timespec){0, 1000000}, NULL);
  }
  ck_assert_int_eq(aio_callbacks, 1);
  synchro_host_free(h);
  close_free(s);
  for (i = 0; i < SYNCHRO_SEAM_COUNT; i++)
    ck_assert_msg(reached[i] > 0, "seam %s never reached",
                  synchro_test_seam_name((synchro_seam_t)i));
  ck_assert_str_eq(synchro_test_seam_name(SYNCHRO_SEAM_COUNT), "?");
}
END_TEST

/* ---- fork between writing an outcome and publishing it ------------------------------ */

/* A14 at the complete seam: the process forks while the parent's loop thread is held
 * where it wrote a call's outcome but has not published it. The child has no loop
 * thread; touching the synchronizer there publishes what the parent's loop decided,
 * once: the outcome itself, or SYNCHRO_ECANCELED when a cancel was accepted before the
 * fork (it overrules an unpublished outcome, as it would have in the parent). The
 * counters and the admission slot the parent already settled are not settled twice, and
 * a result that a cancel overrules is released once. */
#define FAIL_CODE (-5) /* an I/O error of the implementation's */

typedef struct {
  const synchro_op_t *op; /* test_op_upper (a result to release) or test_op_fail */
  int cancel;             /* cancel while held, before the fork */
} held_fork_case_t;

static const held_fork_case_t held_fork_cases[] = {
    {&test_op_upper, 0}, {&test_op_upper, 1}, {&test_op_fail, 0}, {&test_op_fail, 1}};

/* The outcome the call must have in the child and, once let go, in the parent. */
static int held_fork_expected(const held_fork_case_t *c) {
  return c->cancel ? SYNCHRO_ECANCELED : c->op == &test_op_fail ? FAIL_CODE : 0;
}

/* Submits the case's call and holds the loop at the complete seam. */
static synchro_future_t *submit_held_case(synchro_t *s, const held_fork_case_t *c) {
  static test_string_args_t upper_args = {(char *)"abc"};
  static test_fail_args_t fail_args = {FAIL_CODE};
  synchro_future_t *f = NULL;
  const void *args = c->op == &test_op_fail ? (const void *)&fail_args : (const void *)&upper_args;
  gate_arm(c->op);
  synchro_test_seam_set(SYNCHRO_SEAM_COMPLETE, gate_hook, NULL);
  ck_assert_int_eq(synchro_submit(s, c->op, args, SYNCHRO_TIMEOUT_DEFAULT, &f), 0);
  ck_assert(gate_wait_arrival());
  if (c->cancel)
    ck_assert_int_eq(synchro_future_cancel(f), 0);
  return f;
}

/* What the child sees of the held call: 0 when all is as expected, else the number of
 * the first check that failed. */
static int child_sees_held_call(const held_fork_case_t *c, synchro_future_t *f) {
  int expected = held_fork_expected(c);
  char *out = NULL;
  if (synchro_future_wait(f, 5000) != expected)
    return 10;
  if (expected == 0) {
    if (synchro_future_result(f, &out) != 0 || out == NULL || strcmp(out, "ABC") != 0)
      return 11;
    free(out);
  } else if (expected == FAIL_CODE) {
    const synchro_error_t *err = synchro_future_error(f);
    if (synchro_error_code(err) != FAIL_CODE ||
        strcmp(synchro_error_message(err), "failed on purpose") != 0)
      return 12;
  } else if (synchro_error_code(synchro_future_error(f)) != SYNCHRO_ECANCELED) {
    return 13;
  }
  /* upper's result is released by the library only when a cancel overruled it */
  if (c->op == &test_op_upper && atomic_load(&test_results_freed) != c->cancel)
    return 14;
  synchro_future_free(f);
  return 0;
}

/* The child's counters match one resolution, and its one admission slot is free: a new
 * call is admitted and runs on a fresh loop thread. */
static int child_counts_once(synchro_t *s, const held_fork_case_t *c) {
  synchro_stats_t st;
  test_add_args_t args = {20, 22};
  synchro_future_t *g = NULL;
  int64_t sum = 0;
  int expected = held_fork_expected(c);
  if (synchro_stats(s, &st) != 0 || st.submitted != 1 || st.in_flight != 0)
    return 20;
  if (st.completed != (expected == 0) || st.failed != (expected == FAIL_CODE) ||
      st.cancelled != (expected == SYNCHRO_ECANCELED))
    return 21;
  if (synchro_submit(s, &test_op_add, &args, SYNCHRO_TIMEOUT_DEFAULT, &g) != 0)
    return 22; /* SYNCHRO_EBUSY: the slot was given back twice, the count wrapped */
  if (synchro_future_wait(g, 5000) != 0 || synchro_future_result(g, &sum) != 0 || sum != 42)
    return 23;
  synchro_future_free(g);
  if (synchro_close(s, 1000) != 0)
    return 24;
  synchro_free(s);
  return 0;
}

/* Forks; the child returns `child()`'s result as its exit status. Asserts that it
 * exited 0 within 10 s. `child` runs in the child only: no assertions there. */
typedef int (*child_fn)(void *arg);
static void fork_and_expect_child_ok(child_fn child, void *arg) {
  int status;
  pid_t pid;
  fflush(NULL);
  pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0)
    _exit(child(arg));
  status = test_wait_child(pid, 10000);
  ck_assert_msg(status != -1, "the child hung");
  ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %#x (exit %d)", status,
                WIFEXITED(status) ? WEXITSTATUS(status) : -1);
}

/* A synchronizer that admits one call at a time (max_inflight 1). */
static synchro_t *new_sync_one_slot(void) {
  synchro_options_t opts;
  synchro_t *s = NULL;
  synchro_options_init(&opts);
  opts.max_inflight = 1;
  ck_assert_int_eq(synchro_new(&s, &opts), 0);
  return s;
}

typedef struct {
  synchro_t *s;
  const held_fork_case_t *c;
  synchro_future_t *f;
} held_fork_t;

static int child_after_held_fork(void *arg) {
  held_fork_t *h = arg;
  int rc = child_sees_held_call(h->c, h->f);
  return rc != 0 ? rc : child_counts_once(h->s, h->c);
}

START_TEST(test_fork_between_outcome_and_publish) {
  held_fork_t h = {new_sync_one_slot(), &held_fork_cases[_i], NULL};
  h.f = submit_held_case(h.s, h.c);
  fork_and_expect_child_ok(child_after_held_fork, &h);
  /* the parent's call goes on from where it was held */
  gate_open();
  ck_assert_int_eq(synchro_future_wait(h.f, 5000), held_fork_expected(h.c));
  synchro_future_free(h.f);
  close_free(h.s);
}
END_TEST

/* A thread is held where its call was admitted but not yet pushed when another thread
 * forks. That thread and its call do not exist in the child: the admission slot the
 * call took must not stay taken there (max_inflight 1 would refuse every new call). */
typedef struct {
  synchro_t *s;
  int rc;
} held_submit_t;

static void *submit_held_at_push(void *arg) {
  held_submit_t *h = arg;
  test_add_args_t args = {1, 2};
  synchro_future_t *f = NULL;
  h->rc = synchro_submit(h->s, &test_op_add, &args, SYNCHRO_TIMEOUT_DEFAULT, &f);
  if (h->rc == 0) {
    h->rc = synchro_future_wait(f, 5000);
    synchro_future_free(f);
  }
  return NULL;
}

static int child_admits_again(void *arg) {
  synchro_t *s = ((held_submit_t *)arg)->s;
  test_add_args_t args = {20, 22};
  synchro_stats_t st;
  synchro_future_t *f = NULL;
  int64_t sum = 0;
  if (synchro_submit(s, &test_op_add, &args, SYNCHRO_TIMEOUT_DEFAULT, &f) != 0)
    return 30; /* SYNCHRO_EBUSY: the vanished thread's slot is still taken */
  if (synchro_future_wait(f, 5000) != 0 || synchro_future_result(f, &sum) != 0 || sum != 42)
    return 31;
  synchro_future_free(f);
  if (synchro_stats(s, &st) != 0 || st.in_flight != 0 || st.submitted != 2 || st.completed != 2 ||
      st.cancelled != 0)
    return 32;
  if (synchro_close(s, 1000) != 0)
    return 33;
  synchro_free(s);
  return 0;
}

START_TEST(test_fork_while_a_submit_is_held) {
  held_submit_t h = {new_sync_one_slot(), -1};
  test_add_args_t args = {1, 1};
  int64_t sum = 0;
  pthread_t t;
  /* one call first, so the loop runs and the child inherits it */
  ck_assert_int_eq(synchro_call(h.s, &test_op_add, &args, SYNCHRO_TIMEOUT_DEFAULT, &sum, NULL), 0);
  gate_arm(&test_op_add);
  synchro_test_seam_set(SYNCHRO_SEAM_SUBMIT, gate_hook, NULL);
  ck_assert_int_eq(pthread_create(&t, NULL, submit_held_at_push, &h), 0);
  ck_assert(gate_wait_arrival());
  fork_and_expect_child_ok(child_admits_again, &h);
  gate_open();
  ck_assert_int_eq(pthread_join(t, NULL), 0);
  ck_assert_int_eq(h.rc, 0); /* the parent's call went on from where it was held */
  close_free(h.s);
}
END_TEST

/* A3 (c): no runtime lock is held while user code runs. The test build checks it at
 * every point where the runtime calls user code (implementations, cancel, demand and
 * send hooks, class constructors and destructors, host callbacks), so the whole suite
 * runs under it. Here: the check itself, which must abort when a lock is held. */
START_TEST(test_a3_user_code_under_a_runtime_lock_aborts) {
  pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
  int status;
  pid_t pid;
  synchro__user_code("free of locks"); /* no lock held: nothing happens */
  synchro__lock(&m);
  synchro__unlock(&m);
  synchro__user_code("after a lock was released");
  fflush(NULL);
  pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    synchro__lock(&m);
    synchro__user_code("a callback under a lock");
    _exit(0); /* not reached */
  }
  ck_assert_int_eq(waitpid(pid, &status, 0), pid);
  ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT, "child status %#x", status);
}
END_TEST

static Suite *seams_suite(void) {
  Suite *s = suite_create("seams");
  TCase *tc = tcase_create("cancel");
  tcase_set_timeout(tc, 20);
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, test_cancel_between_dequeue_and_start);
  tcase_add_test(tc, test_cancel_at_start);
  tcase_add_test(tc, test_cancel_after_outcome_before_publish);
  tcase_add_test(tc, test_outcome_held_before_publish_is_delivered);
  tcase_add_test(tc, test_cancel_observed_late);
  suite_add_tcase(s, tc);

  tc = tcase_create("close");
  tcase_set_timeout(tc, 20);
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, test_submit_racing_close);
  tcase_add_test(tc, test_refused_submit_releases_no_result);
  suite_add_tcase(s, tc);

  tc = tcase_create("deliver");
  tcase_set_timeout(tc, 20);
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, test_cq_freed_while_delivering);
  tcase_add_test(tc, test_host_freed_while_delivering);
  tcase_add_test(tc, test_host_freed_between_push_and_signal);
  suite_add_tcase(s, tc);

  tc = tcase_create("wakeup");
  tcase_set_timeout(tc, 20);
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, test_submit_between_announce_and_recheck);
  tcase_add_test(tc, test_every_seam_is_reached);
  suite_add_tcase(s, tc);

#if !defined(__SANITIZE_THREAD__) && !defined(__SANITIZE_ADDRESS__)
  /* Forks while the parent's loop thread is held and starts threads in the child: not
   * under TSan or ASan (check_synchronizer.c says why); tagged "fork", so not under
   * valgrind either. */
  tc = tcase_create("fork");
  tcase_set_tags(tc, "fork");
  tcase_set_timeout(tc, 30);
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_loop_test(tc, test_fork_between_outcome_and_publish, 0,
                      (int)(sizeof held_fork_cases / sizeof held_fork_cases[0]));
  tcase_add_test(tc, test_fork_while_a_submit_is_held);
  suite_add_tcase(s, tc);
#else
  (void)test_fork_between_outcome_and_publish;
  (void)test_fork_while_a_submit_is_held;
#endif

  tc = tcase_create("locks");
  tcase_set_tags(tc, "fork");
  tcase_set_timeout(tc, 20);
  tcase_add_test(tc, test_a3_user_code_under_a_runtime_lock_aborts);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(seams_suite());
  int failed;
  srunner_run_all(sr, CK_ENV);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
