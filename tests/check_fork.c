/* tests/check_fork.c - fork() while the runtime is busy (A14).
 *
 *  - calls in flight everywhere at once: pending futures, blocking calls on other
 *    threads and _aio calls on a host loop; 30 forks;
 *  - the first call of a synchronizer starting its loop while another thread forks;
 *    30 forks, with the starter held at exact points through the test seams;
 *  - a stream and an object open (with a method call in flight) at the fork.
 * In every child the inherited calls resolve SYNCHRO_EFORKED, new calls on the same
 * synchronizer work (its loop restarts lazily) and the child exits 0 within a bound; in
 * the parent every call completes normally.
 *
 * Every tcase is tagged "fork" (`make valgrind` leaves them out: a child inherits memory
 * owned by threads that do not exist there). The tests are compiled out under ASan and
 * TSan for the reasons given in check_synchronizer.c: they fork while the parent's loop
 * thread is busy and start threads in the child. */
#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "support/streamops.h"
#include "support/testops.h"
#include "synchro.h"
#include "testing.h"

#if !defined(__SANITIZE_THREAD__) && !defined(__SANITIZE_ADDRESS__)
#define BUSY_FORK_TESTS 1
#else
#define BUSY_FORK_TESTS 0
#endif

#define FORKS 30
#define CHILD_BOUND_MS 5000 /* a child that takes longer is killed: a failure */

/* ---- helpers ---------------------------------------------------------------------- */

static double worst_child_ms; /* the slowest child of the current test */

/* Forks; the child runs `fn(arg)` and exits with its result. Asserts the child exited 0
 * within CHILD_BOUND_MS. */
static void fork_and_check(int (*fn)(void *), void *arg, int iter) {
  pid_t pid;
  int status;
  double t0;
  fflush(NULL);
  t0 = test_now_ms();
  pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0)
    _exit(fn(arg));
  status = test_wait_child(pid, CHILD_BOUND_MS);
  ck_assert_msg(status != -1, "fork %d: the child hung", iter);
  ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "fork %d: child status %#x", iter,
                status);
  if (test_now_ms() - t0 > worst_child_ms)
    worst_child_ms = test_now_ms() - t0;
}

typedef struct {
  int ran;
  int status;
  int64_t value;
} got_t;

static void got_int(synchro_future_t *f, int status, void *data) {
  got_t *g = data;
  g->ran++;
  g->status = status;
  if (status == 0)
    synchro_future_result(f, &g->value);
}

/* In a child: new calls on the inherited synchronizer work (its loop restarts lazily),
 * blocking, as futures and delivered on a host made in the child; then it closes and is
 * freed. 0 when all passed. */
static int child_new_calls_work(synchro_t *s) {
  test_add_args_t args = {20, 22};
  synchro_future_t *f = NULL;
  synchro_host_t *h = NULL;
  got_t g = {0, 0, 0};
  int64_t sum = 0;
  int i;
  double t0 = test_now_ms();
  if (synchro_call(s, &test_op_add, &args, SYNCHRO_TIMEOUT_DEFAULT, &sum, NULL) != 0 || sum != 42)
    return 60;
  if (test_now_ms() - t0 > 1000)
    return 61;
  for (i = 0; i < 50; i++) {
    args.a = i;
    if (synchro_submit(s, &test_op_add, &args, 5000, &f) != 0 ||
        synchro_future_wait(f, 5000) != 0 || synchro_future_result(f, &sum) != 0 || sum != i + 22)
      return 62;
    synchro_future_free(f);
  }
  if (synchro_host_new_fd(&h) != 0)
    return 63;
  args.a = 1;
  if (synchro_submit(s, &test_op_add, &args, 5000, &f) != 0 ||
      synchro_future_then(f, h, got_int, &g) != 0)
    return 64;
  t0 = test_now_ms();
  while (g.ran == 0 && test_now_ms() - t0 < 2000) {
    struct pollfd p = {synchro_host_fd(h), POLLIN, 0};
    poll(&p, 1, 50);
    synchro_host_dispatch(h, 0);
  }
  if (g.ran != 1 || g.status != 0 || g.value != 23)
    return 65;
  synchro_host_free(h);
  if (synchro_close(s, 1000) != 0)
    return 66;
  synchro_free(s);
  return 0;
}

/* Inherited futures: resolved SYNCHRO_EFORKED, once (a cancel finds them done). */
static int child_inherited_forked(synchro_future_t **f, int n) {
  int i;
  for (i = 0; i < n; i++) {
    int st = synchro_future_wait(f[i], 1000);
    if (st != SYNCHRO_EFORKED) {
      fprintf(stderr, "child: inherited future %d is %s\n", i, synchro_err_name(st));
      return 50;
    }
    if (synchro_future_status(f[i]) != SYNCHRO_EFORKED ||
        synchro_future_cancel(f[i]) != SYNCHRO_EALREADY)
      return 51;
    synchro_future_free(f[i]);
  }
  return 0;
}

/* ---- (a) fork with calls in flight everywhere --------------------------------------- */

typedef struct {
  synchro_t *s;
  atomic_int *stop;
  long calls, bad;
} blocker_t;

/* Blocking calls in a loop until told to stop: each must succeed with its value. */
static void *blocker_main(void *arg) {
  blocker_t *b = arg;
  test_sleep_args_t args = {2, 0};
  while (!atomic_load(b->stop)) {
    int64_t r = -1;
    int rc = synchro_call(b->s, &test_op_sleep, &args, SYNCHRO_TIMEOUT_DEFAULT, &r, NULL);
    if (rc != 0 || r != 2)
      b->bad++;
    b->calls++;
  }
  return NULL;
}

typedef struct {
  synchro_t *s;
  atomic_int *stop;
  synchro_host_t *h;
  int pending;
  long done, bad;
} aio_t;

static void aio_submit(aio_t *a);

/* Host callback: checks the outcome and keeps a chain of calls going until stop. */
static void aio_done(synchro_future_t *f, int status, void *data) {
  aio_t *a = data;
  int64_t r = -1;
  a->pending--;
  if (status != 0 || synchro_future_result(f, &r) != 0 || r != 3)
    a->bad++;
  a->done++;
  if (!atomic_load(a->stop))
    aio_submit(a);
}

static void aio_submit(aio_t *a) {
  test_sleep_args_t args = {3, 0};
  synchro_future_t *f = NULL;
  if (synchro_submit(a->s, &test_op_sleep, &args, SYNCHRO_TIMEOUT_DEFAULT, &f) != 0 ||
      synchro_future_then(f, a->h, aio_done, a) != 0) {
    a->bad++;
    return;
  }
  a->pending++;
}

/* A host thread: a libuv loop with 4 chains of _aio calls, until stop. */
static void *host_main(void *arg) {
  aio_t *a = arg;
  uv_loop_t loop;
  int i;
  if (uv_loop_init(&loop) != 0 || synchro_host_new_uv(&a->h, &loop) != 0) {
    a->bad++;
    return NULL;
  }
  for (i = 0; i < 4; i++)
    aio_submit(a);
  while (a->pending > 0) /* the host keeps the loop alive while calls are pending */
    uv_run(&loop, UV_RUN_ONCE);
  synchro_host_free(a->h);
  uv_run(&loop, UV_RUN_DEFAULT);
  if (uv_loop_close(&loop) != 0)
    a->bad++;
  return NULL;
}

typedef struct {
  synchro_t *s;
  synchro_future_t **f;
  int n;
} inflight_child_t;

static int inflight_child(void *arg) {
  inflight_child_t *c = arg;
  int rc = child_inherited_forked(c->f, c->n);
  return rc != 0 ? rc : child_new_calls_work(c->s);
}

START_TEST(test_a14_fork_30_times_with_calls_in_flight_everywhere) {
  enum { N = 4 };
  synchro_t *s = NULL;
  atomic_int stop = 0;
  blocker_t b[2];
  aio_t a;
  pthread_t bt[2], ht;
  int iter, i;
  double t0 = test_now_ms();
  ck_assert_int_eq(synchro_new(&s, NULL), 0);
  memset(&a, 0, sizeof(a));
  a.s = s;
  a.stop = &stop;
  ck_assert_int_eq(pthread_create(&ht, NULL, host_main, &a), 0);
  for (i = 0; i < 2; i++) {
    b[i] = (blocker_t){s, &stop, 0, 0};
    ck_assert_int_eq(pthread_create(&bt[i], NULL, blocker_main, &b[i]), 0);
  }
  for (iter = 0; iter < FORKS; iter++) {
    synchro_future_t *f[N];
    /* long enough that a loaded machine cannot finish them before the fork */
    test_sleep_args_t args = {100, 0};
    inflight_child_t c = {s, f, N};
    for (i = 0; i < N; i++)
      ck_assert_int_eq(synchro_submit(s, &test_op_sleep, &args, SYNCHRO_TIMEOUT_DEFAULT, &f[i]), 0);
    usleep((useconds_t)(iter % 5) * 1000); /* vary where the loop is at the fork */
    fork_and_check(inflight_child, &c, iter);
    for (i = 0; i < N; i++) { /* the parent's futures are unaffected */
      int64_t r = -1;
      ck_assert_int_eq(synchro_future_wait(f[i], 5000), 0);
      ck_assert_int_eq(synchro_future_result(f[i], &r), 0);
      ck_assert_int_eq(r, 100);
      synchro_future_free(f[i]);
    }
  }
  atomic_store(&stop, 1);
  for (i = 0; i < 2; i++)
    pthread_join(bt[i], NULL);
  pthread_join(ht, NULL);
  for (i = 0; i < 2; i++) {
    ck_assert_int_eq(b[i].bad, 0);
    ck_assert_int_gt(b[i].calls, 0);
  }
  ck_assert_int_eq(a.bad, 0);
  ck_assert_int_gt(a.done, 0);
  ck_assert_int_eq(synchro_close(s, 1000), 0);
  synchro_free(s);
  fprintf(stderr,
          "fork (a): %d forks in %.0f ms; slowest child %.0f ms; parent: %ld+%ld blocking, "
          "%ld aio calls, all OK\n",
          FORKS, test_now_ms() - t0, worst_child_ms, b[0].calls, b[1].calls, a.done);
}
END_TEST

/* ---- (b) fork while another thread starts the loop lazily --------------------------- */

/* Where the starting thread is held when the fork happens. */
enum { AT_SUBMIT, AT_DEQUEUE, RACING, N_MODES };

static atomic_int hold_armed;   /* the hook holds the first matching thread */
static atomic_int hold_reached; /* it is held now */
static atomic_int hold_release;
static pthread_t holder_thread; /* SUBMIT: only this thread is held */

/* Holds the thread that reaches the seam with an add call until released (at most 2 s,
 * so a mistake cannot hang the test). */
static void hold_hook(synchro_seam_t seam, const synchro_call_t *call, void *data) {
  double t0;
  (void)data;
  if (!atomic_load(&hold_armed) || synchro_test_call_op(call) != &test_op_add)
    return;
  if (seam == SYNCHRO_SEAM_SUBMIT && !pthread_equal(pthread_self(), holder_thread))
    return;
  if (!atomic_exchange(&hold_armed, 0))
    return;
  atomic_store(&hold_reached, 1);
  t0 = test_now_ms();
  while (!atomic_load(&hold_release) && test_now_ms() - t0 < 2000)
    sched_yield();
}

typedef struct {
  synchro_t *s;
  pthread_barrier_t *barrier;
  int rc;
  int64_t sum;
} starter_t;

static void *first_call(void *arg) {
  starter_t *r = arg;
  test_add_args_t args = {1, 1};
  pthread_barrier_wait(r->barrier);
  r->rc = synchro_call(r->s, &test_op_add, &args, SYNCHRO_TIMEOUT_DEFAULT, &r->sum, NULL);
  return NULL;
}

/* Opens the hold from another thread after a few ms: a fork waiting for the loop's
 * fork lock must go on once the loop lets go of it. */
static void *release_later(void *arg) {
  (void)arg;
  usleep(3000);
  atomic_store(&hold_release, 1);
  return NULL;
}

static int lazy_child(void *arg) {
  /* the parent's seams are inherited: make sure none holds the child */
  atomic_store(&hold_armed, 0);
  atomic_store(&hold_release, 1);
  synchro_test_seam_set(SYNCHRO_SEAM_SUBMIT, NULL, NULL);
  synchro_test_seam_set(SYNCHRO_SEAM_DEQUEUE, NULL, NULL);
  return child_new_calls_work(arg);
}

START_TEST(test_a14_fork_30_times_during_lazy_start) {
  int iter, per_mode[N_MODES] = {0, 0, 0};
  double t0 = test_now_ms();
  synchro_test_seam_set(SYNCHRO_SEAM_SUBMIT, hold_hook, NULL);
  synchro_test_seam_set(SYNCHRO_SEAM_DEQUEUE, hold_hook, NULL);
  for (iter = 0; iter < FORKS; iter++) {
    int mode = iter % N_MODES;
    synchro_t *s = NULL;
    pthread_barrier_t barrier;
    pthread_t t, rel;
    starter_t r;
    ck_assert_int_eq(synchro_new(&s, NULL), 0);
    r = (starter_t){s, &barrier, -1, 0};
    atomic_store(&hold_reached, 0);
    atomic_store(&hold_release, 0);
    atomic_store(&hold_armed, mode != RACING);
    pthread_barrier_init(&barrier, NULL, 2);
    ck_assert_int_eq(pthread_create(&t, NULL, first_call, &r), 0);
    holder_thread = t;
    fflush(NULL);
    pthread_barrier_wait(&barrier);
    if (mode == RACING) {
      /* the fork races the first call's start (the start lock) with no hold */
      if (iter % 2)
        usleep((useconds_t)(iter * 7 % 40));
      fork_and_check(lazy_child, s, iter);
    } else {
      double w = test_now_ms();
      while (!atomic_load(&hold_reached) && test_now_ms() - w < 2000)
        sched_yield();
      ck_assert_msg(atomic_load(&hold_reached), "fork %d: the starter never reached the seam",
                    iter);
      if (mode == AT_SUBMIT) {
        /* the loop was just started; the first call is prepared, not queued */
        fork_and_check(lazy_child, s, iter);
        atomic_store(&hold_release, 1);
      } else {
        /* the new loop holds its fork lock, moving the first call: the fork waits */
        ck_assert_int_eq(pthread_create(&rel, NULL, release_later, NULL), 0);
        fork_and_check(lazy_child, s, iter);
        pthread_join(rel, NULL);
      }
    }
    per_mode[mode]++;
    pthread_join(t, NULL);
    pthread_barrier_destroy(&barrier);
    ck_assert_int_eq(r.rc, 0); /* the parent's first call completed normally */
    ck_assert_int_eq(r.sum, 2);
    ck_assert_int_eq(synchro_close(s, 0), 0);
    synchro_free(s);
  }
  synchro_test_seam_set(SYNCHRO_SEAM_SUBMIT, NULL, NULL);
  synchro_test_seam_set(SYNCHRO_SEAM_DEQUEUE, NULL, NULL);
  fprintf(stderr,
          "fork (b): %d forks (%d held at submit, %d at dequeue, %d racing) in %.0f ms; "
          "slowest child %.0f ms\n",
          FORKS, per_mode[AT_SUBMIT], per_mode[AT_DEQUEUE], per_mode[RACING], test_now_ms() - t0,
          worst_child_ms);
}
END_TEST

/* ---- (c) fork with a stream and an object open -------------------------------------- */

#define STREAM_ITEMS 1000

typedef struct {
  synchro_t *s;
  synchro_stream_t *st;
  synchro_object_t *obj;
  synchro_future_t *method; /* a method call in flight */
  int64_t next_item;
} open_child_t;

static int open_child(void *arg) {
  open_child_t *c = arg;
  test_count_args_t cargs = {3, -1, 0};
  test_obj_args_t oargs = {5, 0, 0};
  test_obj_open_args_t open_args = {0, 0};
  test_obj_value_args_t vargs = {1};
  synchro_stream_t *st = NULL;
  synchro_object_t *obj = NULL;
  int64_t item = -1, v = -1;
  int rc, taken = 0;
  double t0 = test_now_ms();
  /* the inherited stream: items buffered before the fork, in order, then EFORKED
   * (before any new call in the child has restarted the loop) */
  while ((rc = synchro_stream_next(c->st, &item, 1000)) == 0) {
    if (item != c->next_item + taken)
      return 70;
    if (++taken > STREAM_ITEMS)
      return 71;
  }
  if (rc != SYNCHRO_EFORKED) {
    fprintf(stderr, "child: inherited stream ended with %s after %d items\n", synchro_err_name(rc),
            taken);
    return 72;
  }
  if (test_now_ms() - t0 > 500)
    return 73;
  synchro_stream_free(c->st);
  /* the inherited object: its method call in flight and new calls are EFORKED */
  if ((rc = synchro_future_wait(c->method, 1000)) != SYNCHRO_EFORKED) {
    fprintf(stderr, "child: inherited method call is %s\n", synchro_err_name(rc));
    return 74;
  }
  synchro_future_free(c->method);
  if (synchro_object_call(c->obj, &test_oop_value, &vargs, 1000, &v, NULL) != SYNCHRO_EFORKED)
    return 75;
  synchro_object_free(c->obj);
  /* a new stream and a new object on the same synchronizer work */
  if (synchro_stream_open(c->s, &test_sop_count, &cargs, 5000, &st) != 0)
    return 76;
  for (taken = 0; (rc = synchro_stream_next(st, &item, 5000)) == 0; taken++)
    if (item != taken)
      return 77;
  if (rc != SYNCHRO_EEND || taken != 3)
    return 78;
  synchro_stream_free(st);
  if (synchro_object_new(c->s, &test_class, &oargs, &obj, NULL) != 0 ||
      synchro_object_open(obj, &open_args, 5000, NULL) != 0 ||
      synchro_object_call(obj, &test_oop_value, &vargs, 5000, &v, NULL) != 0 || v != 6 ||
      synchro_object_close(obj, 5000, NULL) != 0)
    return 79;
  synchro_object_free(obj);
  return child_new_calls_work(c->s);
}

START_TEST(test_a14_fork_with_stream_and_object_open) {
  enum { ROUNDS = 10 };
  synchro_t *s = NULL;
  int iter;
  double t0 = test_now_ms();
  ck_assert_int_eq(synchro_new(&s, NULL), 0);
  for (iter = 0; iter < ROUNDS; iter++) {
    test_count_args_t cargs = {STREAM_ITEMS, -1, 0};
    test_obj_args_t oargs = {7, 0, 0};
    test_obj_open_args_t open_args = {0, 0};
    test_obj_sleep_args_t slargs = {100}; /* still running at the fork */
    test_obj_value_args_t vargs = {3};
    open_child_t c;
    int64_t item = -1, v = -1;
    int i, rc;
    memset(&c, 0, sizeof(c));
    c.s = s;
    /* capacity 64: the producer fills the ring and pauses (backpressure) */
    ck_assert_int_eq(synchro_stream_open(s, &test_sop_count64, &cargs, 10000, &c.st), 0);
    for (i = 0; i < 10; i++) {
      ck_assert_int_eq(synchro_stream_next(c.st, &item, 5000), 0);
      ck_assert_int_eq(item, i);
    }
    c.next_item = 10;
    ck_assert_int_eq(synchro_object_new(s, &test_class, &oargs, &c.obj, NULL), 0);
    ck_assert_int_eq(synchro_object_open(c.obj, &open_args, 5000, NULL), 0);
    ck_assert_int_eq(synchro_object_submit(c.obj, &test_oop_sleep, &slargs, 5000, &c.method), 0);
    if (iter % 2)
      usleep(1000);
    fork_and_check(open_child, &c, iter);
    /* the parent's stream, object and call go on */
    for (i = 10; (rc = synchro_stream_next(c.st, &item, 5000)) == 0; i++)
      ck_assert_int_eq(item, i);
    ck_assert_int_eq(rc, SYNCHRO_EEND);
    ck_assert_int_eq(i, STREAM_ITEMS);
    synchro_stream_free(c.st);
    ck_assert_int_eq(synchro_future_wait(c.method, 5000), 0);
    ck_assert_int_eq(synchro_future_result(c.method, &v), 0);
    ck_assert_int_eq(v, 100);
    synchro_future_free(c.method);
    ck_assert_int_eq(synchro_object_call(c.obj, &test_oop_value, &vargs, 5000, &v, NULL), 0);
    ck_assert_int_eq(v, 10);
    ck_assert_int_eq(synchro_object_close(c.obj, 5000, NULL), 0);
    synchro_object_free(c.obj);
  }
  ck_assert_int_eq(synchro_close(s, 1000), 0);
  synchro_free(s);
  fprintf(stderr, "fork (c): %d forks in %.0f ms; slowest child %.0f ms\n", ROUNDS,
          test_now_ms() - t0, worst_child_ms);
}
END_TEST

static Suite *fork_suite(void) {
  Suite *s = suite_create("fork");
  TCase *tc;

  tc = tcase_create("fork");
  /* A fork child inherits memory owned by threads that do not exist in it, which
   * memcheck reports as lost: `make valgrind` excludes this tag. */
  tcase_set_tags(tc, "fork");
  tcase_set_timeout(tc, 60);
#if BUSY_FORK_TESTS
  tcase_add_test(tc, test_a14_fork_30_times_with_calls_in_flight_everywhere);
  tcase_add_test(tc, test_a14_fork_30_times_during_lazy_start);
  tcase_add_test(tc, test_a14_fork_with_stream_and_object_open);
#else
  (void)test_a14_fork_30_times_with_calls_in_flight_everywhere;
  (void)test_a14_fork_30_times_during_lazy_start;
  (void)test_a14_fork_with_stream_and_object_open;
#endif
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(fork_suite());
  int failed;
  srunner_run_all(sr, CK_ENV);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
