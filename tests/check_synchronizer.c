/* tests/check_synchronizer.c - creating, lazily starting, closing and forking a
 * synchronizer. */
#define _GNU_SOURCE
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "support/affinity.h"
#include "support/testops.h"
#include "synchro.h"
#include "testing.h"

#if defined(__SANITIZE_THREAD__)
/* The fork tests fork a multi-threaded process and the child then tears down the
 * inherited loop; TSan would otherwise kill any such child that creates a thread. */
const char *__tsan_default_options(void);
__attribute__((visibility("default"))) const char *__tsan_default_options(void) {
  return "die_after_fork=0";
}
#endif

/* ---- helpers -------------------------------------------------------------------- */

static synchro_t *new_sync(void) {
  synchro_t *s = NULL;
  ck_assert_int_eq(synchro_new(&s, NULL), 0);
  ck_assert_ptr_nonnull(s);
  return s;
}

static int64_t add_call(synchro_t *s, int64_t a, int64_t b, int *rc) {
  test_add_args_t args = {a, b};
  int64_t sum = -1;
  *rc = synchro_call(s, &test_op_add, &args, SYNCHRO_TIMEOUT_DEFAULT, &sum, NULL);
  return sum;
}

static int threads_named(const char *comm);
static int loop_threads(void) { return threads_named("synchro"); }

static void wait_started(long n) {
  double t0 = test_now_ms();
  while (test_sleeps_started < n && test_now_ms() - t0 < 10000)
    usleep(1000);
  ck_assert_int_eq(test_sleeps_started, n);
}

/* How many threads of this process are named `comm` (sanitizers add threads of their
 * own, so loop threads are counted by name: the default name is "synchro"). */
static int threads_named(const char *comm) {
  DIR *d = opendir("/proc/self/task");
  struct dirent *e;
  int found = 0;
  if (d == NULL)
    return 0;
  while ((e = readdir(d)) != NULL) {
    char path[300], buf[64] = "";
    FILE *f;
    if (e->d_name[0] == '.')
      continue;
    snprintf(path, sizeof(path), "/proc/self/task/%s/comm", e->d_name);
    if ((f = fopen(path, "r")) == NULL)
      continue;
    if (fgets(buf, sizeof(buf), f) != NULL) {
      buf[strcspn(buf, "\n")] = '\0';
      found += strcmp(buf, comm) == 0;
    }
    fclose(f);
  }
  closedir(d);
  return found;
}

/* ---- ops used only here ------------------------------------------------------------ */

/* probe: checks synchro_loop() and synchro_is_loop_thread() from the loop thread;
 * returns 1 when both work, else a negative code. */
static void probe_impl(synchro_call_t *call) {
  synchro_t *s = synchro_call_synchronizer(call);
  uv_loop_t *loop = NULL;
  int64_t r = synchro_loop(s, &loop);
  if (r == 0)
    r = loop == synchro_call_loop(call) && loop != NULL && synchro_is_loop_thread(s) ? 1 : -1;
  synchro_call_return(call, &r);
}
static const synchro_op_t op_probe = {
    .name = "probe", .impl = probe_impl, .result_size = sizeof(int64_t)};

/* close_self: returns what synchro_close() says on the loop thread. */
static void close_self_impl(synchro_call_t *call) {
  int64_t r = synchro_close(synchro_call_synchronizer(call), 0);
  synchro_call_return(call, &r);
}
static const synchro_op_t op_close_self = {
    .name = "close_self", .impl = close_self_impl, .result_size = sizeof(int64_t)};

/* ---- creation and lazy start ------------------------------------------------------- */

START_TEST(test_create_starts_no_thread) {
  int before = test_thread_count();
  synchro_t *s = new_sync();
  ck_assert_int_ge(before, 1);
  ck_assert_int_eq(test_thread_count(), before);
  ck_assert_int_eq(loop_threads(), 0);
  ck_assert_int_eq(synchro_is_loop_thread(s), 0);
  ck_assert_int_eq(synchro_close(s, 0), 0);
  ck_assert_int_eq(loop_threads(), 0);
  synchro_free(s);
}
END_TEST

START_TEST(test_first_call_starts_the_loop_thread) {
  int before = loop_threads(), rc;
  synchro_t *s = new_sync();
  ck_assert_int_eq(add_call(s, 2, 3, &rc), 5);
  ck_assert_int_eq(rc, 0);
  ck_assert_int_eq(before, 0);
  ck_assert_int_eq(loop_threads(), 1);
  ck_assert_int_eq(add_call(s, 4, 5, &rc), 9);
  ck_assert_int_eq(loop_threads(), 1);
  ck_assert_int_eq(synchro_close(s, 0), 0);
  ck_assert_int_eq(loop_threads(), 0); /* joined */
  synchro_free(s);
}
END_TEST

#define N_RACERS 16
typedef struct {
  synchro_t *s;
  pthread_barrier_t *barrier;
  int rc;
  int64_t sum;
  int on_loop;
} racer_t;

static void *first_call_racer(void *arg) {
  racer_t *r = arg;
  test_add_args_t args = {40, 2};
  pthread_barrier_wait(r->barrier);
  r->rc = synchro_call(r->s, &test_op_add, &args, SYNCHRO_TIMEOUT_DEFAULT, &r->sum, NULL);
  r->on_loop = synchro_is_loop_thread(r->s);
  return NULL;
}

/* A start that fails (the loop cannot be set up, or its thread cannot be created)
 * fails the call that triggered it with SYNCHRO_ESTART, leaves nothing behind, and
 * the next call starts the loop. With 16 first calls racing, the one that hit the
 * fault gets SYNCHRO_ESTART and the others start the loop and succeed. */
START_TEST(test_a15_failed_start_is_clean_and_retried) {
  synchro_fault_t f;
  for (f = 0; f < SYNCHRO_FAULT_COUNT; f++) {
    synchro_test_live_t before, after;
    synchro_t *s = new_sync();
    synchro_future_t *fut = NULL;
    test_add_args_t args = {40, 2};
    int64_t sum = 0;
    pthread_barrier_t barrier;
    pthread_t t[N_RACERS];
    racer_t r[N_RACERS];
    int i, failed = 0;
    synchro_test_live(&before);
    synchro_test_fail_next(f, 2);
    ck_assert_int_eq(synchro_call(s, &test_op_add, &args, SYNCHRO_TIMEOUT_DEFAULT, &sum, NULL),
                     SYNCHRO_ESTART);
    ck_assert_int_eq(synchro_submit(s, &test_op_add, &args, SYNCHRO_TIMEOUT_DEFAULT, &fut),
                     SYNCHRO_ESTART);
    ck_assert_ptr_null(fut);
    synchro_test_live(&after);
    ck_assert_int_eq(after.threads, before.threads);
    ck_assert_int_eq(after.fds, before.fds);
    ck_assert_int_eq(after.loops, before.loops);
    ck_assert_int_eq(after.handles, before.handles);
    ck_assert_int_eq(after.records, before.records);
    ck_assert_int_eq(loop_threads(), 0);
    ck_assert_int_eq(synchro_call(s, &test_op_add, &args, SYNCHRO_TIMEOUT_DEFAULT, &sum, NULL), 0);
    ck_assert_int_eq(sum, 42);
    ck_assert_int_eq(synchro_close(s, 0), 0);
    synchro_free(s);
    /* racing first calls */
    s = new_sync();
    synchro_test_fail_next(f, 1);
    pthread_barrier_init(&barrier, NULL, N_RACERS);
    for (i = 0; i < N_RACERS; i++) {
      r[i] = (racer_t){s, &barrier, -1, 0, -1};
      ck_assert_int_eq(pthread_create(&t[i], NULL, first_call_racer, &r[i]), 0);
    }
    for (i = 0; i < N_RACERS; i++)
      pthread_join(t[i], NULL);
    pthread_barrier_destroy(&barrier);
    for (i = 0; i < N_RACERS; i++) {
      if (r[i].rc == SYNCHRO_ESTART) {
        failed++;
        continue;
      }
      ck_assert_int_eq(r[i].rc, 0);
      ck_assert_int_eq(r[i].sum, 42);
    }
    ck_assert_int_eq(failed, 1);
    ck_assert_int_eq(loop_threads(), 1);
    ck_assert_int_eq(synchro_close(s, 0), 0);
    synchro_free(s);
    synchro_test_live(&after);
    ck_assert_int_eq(after.threads, before.threads);
    ck_assert_int_eq(after.fds, before.fds);
    ck_assert_int_eq(after.loops, before.loops);
  }
}
END_TEST

/* A31: the affinity check every test program runs under. An implementation hands out
 * its loop; libuv calls on it from the test thread are caught (counted and refused
 * here; in the default mode, as in every other test, they abort). */
static void give_loop_impl(synchro_call_t *call) {
  uv_loop_t *loop = synchro_call_loop(call);
  synchro_call_return(call, &loop);
}
static const synchro_op_t op_give_loop = {
    .name = "give_loop", .impl = give_loop_impl, .result_size = sizeof(uv_loop_t *)};

START_TEST(test_a31_uv_calls_off_the_loop_thread_are_caught) {
  synchro_t *s = new_sync();
  uv_loop_t *loop = NULL, own;
  uv_timer_t t;
  long before = affinity_violations();
  int status;
  pid_t pid;
  ck_assert_int_eq(synchro_call(s, &op_give_loop, NULL, SYNCHRO_TIMEOUT_DEFAULT, &loop, NULL), 0);
  affinity_abort_on_violation(0);
  ck_assert_int_eq(uv_timer_init(loop, &t), UV_EINVAL);
  uv_stop(loop);
  ck_assert_int_eq(affinity_violations() - before, 2);
  /* the program's own loops are not checked */
  ck_assert_int_eq(uv_loop_init(&own), 0);
  ck_assert_int_eq(uv_timer_init(&own, &t), 0);
  uv_close((uv_handle_t *)&t, NULL);
  ck_assert_int_eq(uv_run(&own, UV_RUN_DEFAULT), 0);
  ck_assert_int_eq(uv_loop_close(&own), 0);
  ck_assert_int_eq(affinity_violations() - before, 2);
  affinity_abort_on_violation(1);
  fflush(NULL);
  pid = fork(); /* the default mode, in a child: the same call aborts */
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    int64_t r = 0;
    test_add_args_t args = {1, 1};
    synchro_call(s, &test_op_add, &args, SYNCHRO_TIMEOUT_DEFAULT, &r, NULL); /* child's loop */
    synchro_call(s, &op_give_loop, NULL, SYNCHRO_TIMEOUT_DEFAULT, &loop, NULL);
    uv_timer_init(loop, &t);
    _exit(0);
  }
  ck_assert_int_eq(waitpid(pid, &status, 0), pid);
  ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT, "child status %#x", status);
  /* after close the loop thread is gone: the owner may touch the loop again */
  ck_assert_int_eq(synchro_close(s, 0), 0);
  ck_assert_int_eq(affinity_violations() - before, 2);
  synchro_free(s);
}
END_TEST

START_TEST(test_a15_concurrent_first_calls_start_one_loop) {
  int round;
  for (round = 0; round < 5; round++) {
    pthread_barrier_t barrier;
    pthread_t t[N_RACERS];
    racer_t r[N_RACERS];
    int i;
    synchro_t *s = new_sync();
    pthread_barrier_init(&barrier, NULL, N_RACERS);
    for (i = 0; i < N_RACERS; i++) {
      r[i] = (racer_t){s, &barrier, -1, 0, -1};
      ck_assert_int_eq(pthread_create(&t[i], NULL, first_call_racer, &r[i]), 0);
    }
    for (i = 0; i < N_RACERS; i++)
      pthread_join(t[i], NULL);
    pthread_barrier_destroy(&barrier);
    for (i = 0; i < N_RACERS; i++) {
      ck_assert_int_eq(r[i].rc, 0);
      ck_assert_int_eq(r[i].sum, 42);
      ck_assert_int_eq(r[i].on_loop, 0);
    }
    ck_assert_int_eq(loop_threads(), 1); /* exactly one loop thread */
    ck_assert_int_eq(synchro_close(s, 0), 0);
    ck_assert_int_eq(loop_threads(), 0);
    synchro_free(s);
  }
}
END_TEST

START_TEST(test_options_validation) {
  synchro_options_t o;
  synchro_t *s = (synchro_t *)&o;
  synchro_options_init(&o);
  ck_assert_str_eq(o.name, "synchro");
  ck_assert_int_ge(o.loop_spin_ns, 0);
  ck_assert_int_ge(o.caller_spin_ns, 0);
  ck_assert_uint_eq(o.max_inflight, 0);
  ck_assert_int_eq(o.default_timeout_ms, SYNCHRO_TIMEOUT_INFINITE);
  synchro_options_init(NULL); /* harmless */

  ck_assert_int_eq(synchro_new(NULL, &o), SYNCHRO_EINVAL);
  o.loop_spin_ns = -1;
  ck_assert_int_eq(synchro_new(&s, &o), SYNCHRO_EINVAL);
  ck_assert_ptr_null(s);
  synchro_options_init(&o);
  o.caller_spin_ns = -1;
  ck_assert_int_eq(synchro_new(&s, &o), SYNCHRO_EINVAL);
  synchro_options_init(&o);
  o.default_timeout_ms = -7;
  ck_assert_int_eq(synchro_new(&s, &o), SYNCHRO_EINVAL);

  /* the edges that are valid */
  synchro_options_init(&o);
  o.loop_spin_ns = 0;
  o.caller_spin_ns = 0;
  o.default_timeout_ms = 0;
  ck_assert_int_eq(synchro_new(&s, &o), 0);
  synchro_free(s); /* never started, never closed: free closes */
}
END_TEST

START_TEST(test_options_name_is_copied_and_names_the_thread) {
  char name[] = "unit-loop-thread-long";
  synchro_options_t o;
  synchro_t *s = NULL;
  int rc;
  synchro_options_init(&o);
  o.name = name;
  ck_assert_int_eq(synchro_new(&s, &o), 0);
  name[0] = 'X';
  ck_assert_str_eq(synchro_name(s), "unit-loop-thread-long");
  ck_assert_ptr_null(synchro_name(NULL));
  ck_assert_int_eq(add_call(s, 1, 1, &rc), 2);
  ck_assert_int_eq(threads_named("unit-loop-threa"), 1); /* first 15 bytes */
  ck_assert_int_eq(synchro_close(s, 0), 0);
  synchro_free(s);

  synchro_options_init(&o);
  o.name = NULL; /* default name */
  ck_assert_int_eq(synchro_new(&s, &o), 0);
  ck_assert_str_eq(synchro_name(s), "synchro");
  synchro_free(s);
}
END_TEST

START_TEST(test_options_without_spinning_work) {
  synchro_options_t o;
  synchro_t *s = NULL;
  int i, rc;
  synchro_options_init(&o);
  o.loop_spin_ns = 0;
  o.caller_spin_ns = 0;
  ck_assert_int_eq(synchro_new(&s, &o), 0);
  for (i = 0; i < 2000; i++) {
    ck_assert_int_eq(add_call(s, i, 1, &rc), i + 1);
    ck_assert_int_eq(rc, 0);
  }
  ck_assert_int_eq(synchro_close(s, 0), 0);
  synchro_free(s);
}
END_TEST

/* ---- loop access ------------------------------------------------------------------- */

START_TEST(test_loop_only_on_the_loop_thread) {
  synchro_t *s = new_sync();
  uv_loop_t *loop = (uv_loop_t *)&loop;
  int64_t r = 0;
  ck_assert_int_eq(synchro_loop(s, &loop), SYNCHRO_EPERM);
  ck_assert_int_eq(synchro_loop(NULL, &loop), SYNCHRO_EINVAL);
  ck_assert_int_eq(synchro_loop(s, NULL), SYNCHRO_EINVAL);
  ck_assert_int_eq(synchro_call(s, &op_probe, NULL, SYNCHRO_TIMEOUT_DEFAULT, &r, NULL), 0);
  ck_assert_int_eq(r, 1);
  ck_assert_int_eq(synchro_loop(s, &loop), SYNCHRO_EPERM); /* still, after the start */
  ck_assert_int_eq(synchro_is_loop_thread(s), 0);
  ck_assert_int_eq(synchro_is_loop_thread(NULL), 0);
  ck_assert_int_eq(synchro_close(s, 0), 0);
  synchro_free(s);
}
END_TEST

/* ---- close ---------------------------------------------------------------------------- */

START_TEST(test_a10_close_with_10000_sleeps_in_flight) {
  long n = test_scaled(10000), i;
  synchro_t *s = new_sync();
  synchro_future_t **fs = calloc((size_t)n, sizeof(*fs));
  test_sleep_args_t args = {10000, 5};
  synchro_stats_t st;
  double t0, took;
  testops_reset();
  for (i = 0; i < n; i++)
    ck_assert_int_eq(synchro_submit(s, &test_op_sleep, &args, SYNCHRO_TIMEOUT_DEFAULT, &fs[i]), 0);
  wait_started(n);
  t0 = test_now_ms();
  ck_assert_int_eq(synchro_close(s, 200), 0);
  took = test_now_ms() - t0;
  ck_assert_double_ge(took, 199.0); /* the grace is honoured */
  ck_assert_double_lt(took, 200 + 100 + 1500);
  for (i = 0; i < n; i++) {
    ck_assert_int_eq(synchro_future_status(fs[i]), SYNCHRO_ESHUTDOWN);
    ck_assert_int_eq(synchro_error_code(synchro_future_error(fs[i])), SYNCHRO_ESHUTDOWN);
    synchro_future_free(fs[i]);
  }
  ck_assert_int_eq(test_hooks_run, n); /* every hook once */
  ck_assert_int_eq(test_hooks_off_loop, 0);
  ck_assert_int_eq(test_cleanups_done, n);
  ck_assert_int_eq(test_last_cancel_reason, SYNCHRO_ESHUTDOWN);
  ck_assert_int_eq(synchro_stats(s, &st), 0);
  ck_assert_uint_eq(st.submitted, (uint64_t)n);
  ck_assert_uint_eq(st.cancelled, (uint64_t)n);
  ck_assert_uint_eq(st.in_flight, 0);
  ck_assert_int_eq(loop_threads(), 0);
  free(fs);
  synchro_free(s);
}
END_TEST

typedef struct {
  synchro_t *s;
  int rc;
} blocker_t;

static void *blocking_sleeper(void *arg) {
  blocker_t *b = arg;
  test_sleep_args_t args = {10000, 1};
  int64_t r;
  synchro_error_t *err = NULL;
  b->rc = synchro_call(b->s, &test_op_sleep, &args, SYNCHRO_TIMEOUT_DEFAULT, &r, &err);
  if (synchro_error_code(err) != b->rc)
    b->rc = 12345; /* the error must carry the outcome */
  synchro_error_free(err);
  return NULL;
}

START_TEST(test_a10_close_with_blocking_waiters) {
  enum { N = 8 };
  pthread_t t[N];
  blocker_t b[N];
  int i;
  synchro_t *s = new_sync();
  testops_reset();
  for (i = 0; i < N; i++) {
    b[i] = (blocker_t){s, 1};
    ck_assert_int_eq(pthread_create(&t[i], NULL, blocking_sleeper, &b[i]), 0);
  }
  wait_started(N);
  ck_assert_int_eq(synchro_close(s, 50), 0);
  for (i = 0; i < N; i++)
    pthread_join(t[i], NULL);
  for (i = 0; i < N; i++)
    ck_assert_int_eq(b[i].rc, SYNCHRO_ESHUTDOWN);
  ck_assert_int_eq(test_hooks_run, N);
  synchro_free(s);
}
END_TEST

START_TEST(test_a10_close_with_stubborn_call_is_bounded) {
  synchro_t *s = new_sync();
  synchro_future_t *f = NULL;
  double t0, took;
  testops_reset();
  ck_assert_int_eq(synchro_submit(s, &test_op_stubborn, NULL, SYNCHRO_TIMEOUT_DEFAULT, &f), 0);
  usleep(20000); /* let it start */
  t0 = test_now_ms();
  ck_assert_int_eq(synchro_close(s, 50), 0);
  took = test_now_ms() - t0;
  ck_assert_double_ge(took, 49.0);
  ck_assert_double_lt(took, 50 + 100 + 400);
  ck_assert_int_eq(synchro_future_status(f), SYNCHRO_ESHUTDOWN);
  ck_assert_int_eq(test_hooks_run, 1);
  ck_assert_int_eq(test_last_cancel_reason, SYNCHRO_ESHUTDOWN);
  synchro_future_free(f);
  synchro_free(s);
}
END_TEST

START_TEST(test_a10_close_with_hookless_call) {
  synchro_t *s = new_sync();
  synchro_future_t *f = NULL;
  double t0;
  ck_assert_int_eq(synchro_submit(s, &test_op_never, NULL, SYNCHRO_TIMEOUT_DEFAULT, &f), 0);
  usleep(10000);
  t0 = test_now_ms();
  ck_assert_int_eq(synchro_close(s, 30), 0);
  ck_assert_double_lt(test_now_ms() - t0, 30 + 100 + 400);
  ck_assert_int_eq(synchro_future_status(f), SYNCHRO_ESHUTDOWN);
  synchro_future_free(f);
  synchro_free(s);
}
END_TEST

START_TEST(test_a10_close_idle_returns_fast) {
  synchro_t *s = new_sync();
  double t0;
  int rc;
  /* never started */
  t0 = test_now_ms();
  ck_assert_int_eq(synchro_close(s, 10000), 0);
  ck_assert_double_lt(test_now_ms() - t0, test_bound_ms(50));
  synchro_free(s);
  /* started and idle: a long grace is not waited for */
  s = new_sync();
  ck_assert_int_eq(add_call(s, 1, 2, &rc), 3);
  t0 = test_now_ms();
  ck_assert_int_eq(synchro_close(s, 10000), 0);
  ck_assert_double_lt(test_now_ms() - t0, test_bound_ms(50));
  synchro_free(s);
  /* infinite grace, idle */
  s = new_sync();
  ck_assert_int_eq(add_call(s, 1, 2, &rc), 3);
  t0 = test_now_ms();
  ck_assert_int_eq(synchro_close(s, SYNCHRO_TIMEOUT_INFINITE), 0);
  ck_assert_double_lt(test_now_ms() - t0, test_bound_ms(50));
  synchro_free(s);
}
END_TEST

START_TEST(test_close_infinite_grace_lets_calls_finish) {
  synchro_t *s = new_sync();
  synchro_future_t *f = NULL;
  test_sleep_args_t args = {60, 0};
  int64_t r = 0;
  double t0;
  ck_assert_int_eq(synchro_submit(s, &test_op_sleep, &args, SYNCHRO_TIMEOUT_DEFAULT, &f), 0);
  t0 = test_now_ms();
  ck_assert_int_eq(synchro_close(s, SYNCHRO_TIMEOUT_INFINITE), 0);
  ck_assert_double_ge(test_now_ms() - t0, 40);
  ck_assert_int_eq(synchro_future_wait(f, 0), 0);
  ck_assert_int_eq(synchro_future_result(f, &r), 0);
  ck_assert_int_eq(r, 60);
  synchro_future_free(f);
  synchro_free(s);
}
END_TEST

START_TEST(test_a10_calls_after_close_fail_at_once) {
  synchro_t *s = new_sync();
  synchro_future_t *f = (synchro_future_t *)&f;
  test_add_args_t args = {1, 2};
  int64_t r = 0;
  synchro_error_t *err = NULL;
  synchro_stats_t st;
  int rc;
  double t0;
  ck_assert_int_eq(add_call(s, 1, 2, &rc), 3);
  ck_assert_int_eq(synchro_close(s, 0), 0);
  t0 = test_now_ms();
  ck_assert_int_eq(synchro_submit(s, &test_op_add, &args, SYNCHRO_TIMEOUT_DEFAULT, &f),
                   SYNCHRO_ESHUTDOWN);
  ck_assert_ptr_null(f);
  ck_assert_int_eq(synchro_call(s, &test_op_add, &args, SYNCHRO_TIMEOUT_DEFAULT, &r, &err),
                   SYNCHRO_ESHUTDOWN);
  ck_assert_double_lt(test_now_ms() - t0, test_bound_ms(50));
  synchro_error_free(err);
  ck_assert_int_eq(synchro_stats(s, &st), 0);
  ck_assert_uint_eq(st.submitted, 1); /* refused calls were never queued */
  synchro_free(s);
}
END_TEST

START_TEST(test_calls_after_close_of_never_started) {
  synchro_t *s = new_sync();
  int rc;
  ck_assert_int_eq(synchro_close(s, 0), 0);
  add_call(s, 1, 2, &rc);
  ck_assert_int_eq(rc, SYNCHRO_ESHUTDOWN);
  ck_assert_int_eq(loop_threads(), 0); /* no thread started by the refused call */
  synchro_free(s);
}
END_TEST

START_TEST(test_close_twice_and_null) {
  synchro_t *s = new_sync();
  int rc;
  add_call(s, 1, 2, &rc);
  ck_assert_int_eq(synchro_close(s, 0), 0);
  ck_assert_int_eq(synchro_close(s, 0), SYNCHRO_EALREADY);
  ck_assert_int_eq(synchro_close(NULL, 0), SYNCHRO_EINVAL);
  ck_assert_int_eq(synchro_close(s, -5), SYNCHRO_EINVAL);
  synchro_free(s);
  synchro_free(NULL);
}
END_TEST

static void *closer(void *arg) { return (void *)(intptr_t)synchro_close(arg, 100); }

START_TEST(test_concurrent_close) {
  synchro_t *s = new_sync();
  synchro_future_t *f = NULL;
  test_sleep_args_t args = {10000, 1};
  pthread_t t[2];
  void *r[2];
  ck_assert_int_eq(synchro_submit(s, &test_op_sleep, &args, SYNCHRO_TIMEOUT_DEFAULT, &f), 0);
  pthread_create(&t[0], NULL, closer, s);
  pthread_create(&t[1], NULL, closer, s);
  pthread_join(t[0], &r[0]);
  pthread_join(t[1], &r[1]);
  ck_assert((intptr_t)r[0] == 0 || (intptr_t)r[1] == 0);
  ck_assert_int_eq((intptr_t)r[0] + (intptr_t)r[1], SYNCHRO_EALREADY);
  ck_assert_int_eq(synchro_future_status(f), SYNCHRO_ESHUTDOWN);
  synchro_future_free(f);
  synchro_free(s);
}
END_TEST

START_TEST(test_close_from_loop_thread_deadlk) {
  synchro_t *s = new_sync();
  int64_t r = 0;
  int rc;
  ck_assert_int_eq(synchro_call(s, &op_close_self, NULL, SYNCHRO_TIMEOUT_DEFAULT, &r, NULL), 0);
  ck_assert_int_eq(r, SYNCHRO_EDEADLK);
  ck_assert_int_eq(add_call(s, 2, 2, &rc), 4); /* still open and healthy */
  ck_assert_int_eq(rc, 0);
  ck_assert_int_eq(synchro_close(s, 0), 0);
  synchro_free(s);
}
END_TEST

/* ---- A11: submissions racing the close ---------------------------------------------- */

#define A11_THREADS 16
#define A11_BATCH 32
typedef struct {
  synchro_t *s;
  atomic_int *go;
  long ok, shutdown, bad_submit, bad_outcome;
} submitter_t;

static void *tight_submitter(void *arg) {
  submitter_t *t = arg;
  test_add_args_t args = {3, 4};
  synchro_future_t *fs[A11_BATCH];
  int done = 0;
  while (!*t->go)
    sched_yield();
  while (!done) {
    int n = 0, i;
    while (n < A11_BATCH) {
      int rc = synchro_submit(t->s, &test_op_add, &args, SYNCHRO_TIMEOUT_DEFAULT, &fs[n]);
      if (rc == 0) {
        n++;
        continue;
      }
      if (rc == SYNCHRO_ESHUTDOWN)
        t->shutdown++;
      else
        t->bad_submit++;
      done = 1;
      break;
    }
    for (i = 0; i < n; i++) {
      int out = synchro_future_wait(fs[i], 10000);
      int64_t sum = 0;
      if (out == 0 && synchro_future_result(fs[i], &sum) == 0 && sum == 7)
        t->ok++;
      else if (out != SYNCHRO_ESHUTDOWN)
        t->bad_outcome++;
      synchro_future_free(fs[i]);
    }
  }
  return NULL;
}

START_TEST(test_a11_submit_racing_close) {
  int rounds = (int)test_scaled(20), round;
  for (round = 0; round < rounds; round++) {
    pthread_t t[A11_THREADS];
    submitter_t st[A11_THREADS];
    atomic_int go = 0;
    synchro_stats_t stats;
    long ok = 0;
    int i;
    synchro_t *s = new_sync();
    for (i = 0; i < A11_THREADS; i++) {
      st[i] = (submitter_t){s, &go, 0, 0, 0, 0};
      ck_assert_int_eq(pthread_create(&t[i], NULL, tight_submitter, &st[i]), 0);
    }
    go = 1;
    usleep((useconds_t)(1000 + (round % 5) * 2000));
    ck_assert_int_eq(synchro_close(s, round % 2 ? 0 : 5), 0);
    for (i = 0; i < A11_THREADS; i++)
      pthread_join(t[i], NULL);
    for (i = 0; i < A11_THREADS; i++) {
      ck_assert_int_eq(st[i].bad_submit, 0);
      ck_assert_int_eq(st[i].bad_outcome, 0);
      ck_assert_int_eq(st[i].shutdown, 1);
      ok += st[i].ok;
    }
    ck_assert_int_eq(synchro_stats(s, &stats), 0);
    ck_assert_uint_eq(stats.in_flight, 0);
    ck_assert_uint_eq(stats.submitted, stats.completed + stats.failed + stats.cancelled);
    ck_assert_uint_eq(stats.completed, (uint64_t)ok);
    synchro_free(s);
  }
}
END_TEST

/* ---- stats ---------------------------------------------------------------------------- */

START_TEST(test_stats_counters) {
  synchro_t *s = new_sync();
  synchro_stats_t st;
  synchro_future_t *f[2];
  test_fail_args_t fa = {UV_EIO};
  test_sleep_args_t sa = {10000, 0};
  int64_t r;
  int i, rc;
  ck_assert_int_eq(synchro_stats(NULL, &st), SYNCHRO_EINVAL);
  ck_assert_int_eq(synchro_stats(s, NULL), SYNCHRO_EINVAL);
  ck_assert_int_eq(synchro_stats(s, &st), 0);
  ck_assert_uint_eq(st.submitted, 0);
  ck_assert_uint_eq(st.wakeups, 0);
  for (i = 0; i < 10; i++)
    ck_assert_int_eq(add_call(s, i, i, &rc), 2 * i);
  for (i = 0; i < 3; i++)
    ck_assert_int_eq(synchro_call(s, &test_op_fail, &fa, SYNCHRO_TIMEOUT_DEFAULT, &r, NULL),
                     UV_EIO);
  for (i = 0; i < 2; i++)
    ck_assert_int_eq(synchro_submit(s, &test_op_sleep, &sa, SYNCHRO_TIMEOUT_DEFAULT, &f[i]), 0);
  /* mid-way: submitted is counted before a call is queued; outcomes are counted just
   * after they are published, so only lower bounds hold here */
  ck_assert_int_eq(synchro_stats(s, &st), 0);
  ck_assert_uint_eq(st.submitted, 15);
  ck_assert_uint_le(st.completed, 10);
  ck_assert_uint_le(st.failed, 3);
  ck_assert_uint_ge(st.in_flight, 2);
  ck_assert_uint_ge(st.wakeups, 1);
  for (i = 0; i < 2; i++) {
    ck_assert_int_eq(synchro_future_cancel(f[i]), 0);
    ck_assert_int_eq(synchro_future_wait(f[i], SYNCHRO_TIMEOUT_INFINITE), SYNCHRO_ECANCELED);
    synchro_future_free(f[i]);
  }
  ck_assert_int_eq(synchro_close(s, 0), 0);
  ck_assert_int_eq(synchro_stats(s, &st), 0);
  ck_assert_uint_eq(st.submitted, 15);
  ck_assert_uint_eq(st.completed, 10);
  ck_assert_uint_eq(st.failed, 3);
  ck_assert_uint_eq(st.cancelled, 2);
  ck_assert_uint_eq(st.in_flight, 0);
  ck_assert_uint_eq(st.submitted, st.completed + st.failed + st.cancelled);
  synchro_free(s);
}
END_TEST

/* ---- process lifecycle: exit and fork ------------------------------------------------ */

static synchro_t *child_sync; /* reachable at exit: not a leak */
static synchro_future_t *child_fut;

START_TEST(test_a13_exit_with_live_synchronizer) {
  pid_t pid;
  int status;
  double t0;
  fflush(NULL);
  t0 = test_now_ms();
  pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    test_sleep_args_t args = {10000, 0};
    if (synchro_new(&child_sync, NULL) != 0)
      _exit(10);
    if (synchro_submit(child_sync, &test_op_sleep, &args, SYNCHRO_TIMEOUT_DEFAULT, &child_fut) != 0)
      _exit(11);
    usleep(10000);
    exit(0); /* what returning from main does: no close, no free */
  }
  status = test_wait_child(pid, 2000);
  ck_assert_int_ne(status, -1); /* did not hang */
  ck_assert_msg(WIFEXITED(status), "child died: status %#x", status);
  ck_assert_int_eq(WEXITSTATUS(status), 0);
  ck_assert_double_lt(test_now_ms() - t0, 2000);
}
END_TEST

/* A13 with the exit hook. The child's own atexit handler is registered first, so it
 * runs after the library's (handlers run in reverse order) and reports what the
 * library's did: how many cancel hooks and cleanups ran, and close's codes. */
static int exit_report_fd = -1;
static int exit_close_codes[2] = {1, 1};
static void report_at_exit(void) {
  long v[4] = {test_hooks_run, test_cleanups_done, exit_close_codes[0], exit_close_codes[1]};
  if (write(exit_report_fd, v, sizeof(v)) != (ssize_t)sizeof(v))
    _exit(30);
}
static void close_in_user_handler(void) {
  exit_close_codes[0] = synchro_close(child_sync, 100);
  exit_close_codes[1] = synchro_close(child_sync, 100);
}

/* mode 0: detached (default); 1: synchro_close_at_exit; 2: the program's own atexit
 * handler closes, twice. Returns the child's report and its wait status. */
static int exit_child(int mode, long report[4]) {
  int fds[2], status;
  double t0;
  pid_t pid;
  ck_assert_int_eq(pipe(fds), 0);
  fflush(NULL);
  t0 = test_now_ms();
  pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    test_sleep_args_t args = {10000, 20}; /* a 20 ms cleanup once cancelled */
    close(fds[0]);
    exit_report_fd = fds[1];
    testops_reset();
    if (atexit(report_at_exit) != 0 || synchro_new(&child_sync, NULL) != 0)
      _exit(10);
    if (mode == 1 && synchro_close_at_exit(child_sync, 0) != 0)
      _exit(11);
    if (mode == 2 && atexit(close_in_user_handler) != 0)
      _exit(12);
    if (synchro_submit(child_sync, &test_op_sleep, &args, SYNCHRO_TIMEOUT_DEFAULT, &child_fut) != 0)
      _exit(13);
    while (test_sleeps_started < 1)
      usleep(1000);
    exit(0); /* what returning from main does */
  }
  close(fds[1]);
  status = test_wait_child(pid, 5000);
  ck_assert_int_ne(status, -1); /* did not hang */
  ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child: status %#x", status);
  ck_assert_double_lt(test_now_ms() - t0, 2000);
  ck_assert_int_eq(read(fds[0], report, 4 * sizeof(long)), (ssize_t)(4 * sizeof(long)));
  close(fds[0]);
  return status;
}

START_TEST(test_a13_exit_hook_cancels_and_joins) {
  long r[4];
  exit_child(1, r);
  ck_assert_int_eq(r[0], 1); /* the in-flight call's cancel hook ran */
  ck_assert_int_eq(r[1], 1); /* and its cleanup finished before the process ended */
}
END_TEST

START_TEST(test_a13_without_hook_detaches) {
  long r[4];
  exit_child(0, r);
  ck_assert_int_eq(r[0], 0); /* documented default: nothing runs, nothing hangs */
  ck_assert_int_eq(r[1], 0);
}
END_TEST

START_TEST(test_a13_close_from_an_atexit_handler) {
  long r[4];
  exit_child(2, r);
  ck_assert_int_eq(r[2], 0);
  ck_assert_int_eq(r[3], SYNCHRO_EALREADY);
  ck_assert_int_eq(r[0], 1);
  ck_assert_int_eq(r[1], 1);
}
END_TEST

/* Forwards to libc, or fails every allocation while `fail_allocs` is set. Installed
 * before the test's first synchro call, as synchro_replace_allocator asks. */
static atomic_int fail_allocs;
static void *maybe_malloc(size_t n) { return atomic_load(&fail_allocs) ? NULL : malloc(n); }
static void *maybe_realloc(void *p, size_t n) {
  return atomic_load(&fail_allocs) ? NULL : realloc(p, n);
}
static void *maybe_calloc(size_t c, size_t n) {
  return atomic_load(&fail_allocs) ? NULL : calloc(c, n);
}

START_TEST(test_close_at_exit_bad_input) {
  synchro_t *s;
  ck_assert_int_eq(synchro_replace_allocator(maybe_malloc, maybe_realloc, maybe_calloc, free), 0);
  s = new_sync();
  atomic_store(&fail_allocs, 1); /* the request cannot be recorded: said so, nothing kept */
  ck_assert_int_eq(synchro_close_at_exit(s, 0), SYNCHRO_ENOMEM);
  atomic_store(&fail_allocs, 0);
  ck_assert_int_eq(synchro_close_at_exit(NULL, 0), SYNCHRO_EINVAL);
  ck_assert_int_eq(synchro_close_at_exit(s, -5), SYNCHRO_EINVAL);
  ck_assert_int_eq(synchro_close_at_exit(s, 0), 0);
  ck_assert_int_eq(synchro_close_at_exit(s, 10), 0); /* updates */
  synchro_free(s); /* forgets it: the handler at this process's exit has nothing to do */
}
END_TEST

/* In the child: the parent's in-flight calls end as EFORKED, a new call works. Returns an
 * exit code, 0 when every check passed. */
static int forked_child_checks(synchro_t *s, synchro_future_t **inherited, int n) {
  int rc, i;
  int64_t sum;
  test_add_args_t args = {20, 22};
  double t0 = test_now_ms();
  sum = 0;
  rc = synchro_call(s, &test_op_add, &args, SYNCHRO_TIMEOUT_DEFAULT, &sum, NULL);
  if (rc != 0 || sum != 42)
    return 20;
  if (test_now_ms() - t0 > 1000)
    return 21;
  for (i = 0; i < n; i++) {
    int st = synchro_future_status(inherited[i]);
    if (st != SYNCHRO_EFORKED) {
      fprintf(stderr, "child: inherited future %d is %s\n", i, synchro_err_name(st));
      return 22;
    }
    if (synchro_future_wait(inherited[i], 1000) != SYNCHRO_EFORKED)
      return 23;
    if (synchro_future_cancel(inherited[i]) != SYNCHRO_EALREADY)
      return 24;
    synchro_future_free(inherited[i]);
  }
  for (i = 0; i < 100; i++) {
    args.a = i;
    if (synchro_call(s, &test_op_add, &args, SYNCHRO_TIMEOUT_DEFAULT, &sum, NULL) != 0 ||
        sum != i + 22)
      return 25;
  }
  if (synchro_close(s, 0) != 0)
    return 26;
  synchro_free(s);
  return 0;
}

START_TEST(test_a14_fork_with_calls_in_flight) {
  enum { N = 4 };
  int iter;
  synchro_t *s = new_sync();
  for (iter = 0; iter < 30; iter++) {
    synchro_future_t *f[N];
    test_sleep_args_t args = {30, 0};
    int64_t r;
    pid_t pid;
    int i, status;
    for (i = 0; i < N; i++)
      ck_assert_int_eq(synchro_submit(s, &test_op_sleep, &args, SYNCHRO_TIMEOUT_DEFAULT, &f[i]), 0);
    fflush(NULL);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0)
      _exit(forked_child_checks(s, f, N));
    status = test_wait_child(pid, 5000);
    ck_assert_int_ne(status, -1);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "iteration %d: child status %#x",
                  iter, status);
    for (i = 0; i < N; i++) { /* the parent's calls are unaffected */
      ck_assert_int_eq(synchro_future_wait(f[i], 5000), 0);
      ck_assert_int_eq(synchro_future_result(f[i], &r), 0);
      ck_assert_int_eq(r, 30);
      synchro_future_free(f[i]);
    }
  }
  ck_assert_int_eq(synchro_close(s, 0), 0);
  synchro_free(s);
}
END_TEST

/* The inherited future resolves as EFORKED even if the child makes no new call first. */
START_TEST(test_a14_inherited_future_resolves_without_new_call) {
  synchro_t *s = new_sync();
  synchro_future_t *f = NULL;
  test_sleep_args_t args = {200, 0};
  pid_t pid;
  int status;
  ck_assert_int_eq(synchro_submit(s, &test_op_sleep, &args, SYNCHRO_TIMEOUT_DEFAULT, &f), 0);
  usleep(5000);
  fflush(NULL);
  pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    int rc = synchro_future_wait(f, 1000);
    if (rc != SYNCHRO_EFORKED)
      _exit(30);
    synchro_future_free(f);
    synchro_free(s);
    _exit(0);
  }
  status = test_wait_child(pid, 5000);
  ck_assert_int_ne(status, -1);
  ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %#x", status);
  ck_assert_int_eq(synchro_future_wait(f, 5000), 0);
  synchro_future_free(f);
  synchro_free(s);
}
END_TEST

START_TEST(test_a14_close_in_child_after_fork) {
  synchro_t *s = new_sync();
  synchro_future_t *f = NULL;
  test_sleep_args_t args = {200, 0};
  pid_t pid;
  int status;
  ck_assert_int_eq(synchro_submit(s, &test_op_sleep, &args, SYNCHRO_TIMEOUT_DEFAULT, &f), 0);
  usleep(5000);
  fflush(NULL);
  pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    double t0 = test_now_ms();
    if (synchro_close(s, 1000) != 0)
      _exit(40);
    if (test_now_ms() - t0 > 500)
      _exit(41);
    if (synchro_future_status(f) != SYNCHRO_EFORKED)
      _exit(42);
    synchro_future_free(f);
    synchro_free(s);
    _exit(0);
  }
  status = test_wait_child(pid, 5000);
  ck_assert_int_ne(status, -1);
  ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %#x", status);
  ck_assert_int_eq(synchro_future_wait(f, 5000), 0);
  synchro_future_free(f);
  ck_assert_int_eq(synchro_close(s, 0), 0);
  synchro_free(s);
}
END_TEST

/* Deterministic: the parent's loop is awake (spinning for more calls) at the fork, so
 * the child inherits that state; its first call must still wake its own new loop. */
START_TEST(test_a14_fork_while_loop_spinning) {
  synchro_options_t o;
  synchro_t *s = NULL;
  pid_t pid;
  int rc, status;
  synchro_options_init(&o);
  o.loop_spin_ns = 200 * 1000 * 1000; /* 200 ms of polling after each batch */
  ck_assert_int_eq(synchro_new(&s, &o), 0);
  ck_assert_int_eq(add_call(s, 1, 1, &rc), 2);
  fflush(NULL);
  pid = fork(); /* the loop is still spinning here */
  ck_assert_int_ge(pid, 0);
  if (pid == 0)
    _exit(forked_child_checks(s, NULL, 0));
  status = test_wait_child(pid, 3000);
  ck_assert_msg(status != -1, "child hung: its first call never woke the new loop");
  ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %#x", status);
  ck_assert_int_eq(synchro_close(s, 0), 0);
  synchro_free(s);
}
END_TEST

static void *lazy_first_call(void *arg) {
  racer_t *r = arg;
  test_add_args_t args = {1, 1};
  pthread_barrier_wait(r->barrier);
  r->rc = synchro_call(r->s, &test_op_add, &args, SYNCHRO_TIMEOUT_DEFAULT, &r->sum, NULL);
  return NULL;
}

START_TEST(test_a14_fork_during_lazy_start) {
  int iter;
  for (iter = 0; iter < 30; iter++) {
    synchro_t *s = new_sync();
    pthread_barrier_t barrier;
    pthread_t t;
    racer_t r = {s, &barrier, -1, 0, 0};
    pid_t pid;
    int status;
    pthread_barrier_init(&barrier, NULL, 2);
    ck_assert_int_eq(pthread_create(&t, NULL, lazy_first_call, &r), 0);
    fflush(NULL);
    pthread_barrier_wait(&barrier);
    if (iter % 3)
      usleep((useconds_t)(iter * 7 % 50));
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0)
      _exit(forked_child_checks(s, NULL, 0));
    status = test_wait_child(pid, 5000);
    pthread_join(t, NULL);
    pthread_barrier_destroy(&barrier);
    ck_assert_int_ne(status, -1);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "iteration %d: child status %#x",
                  iter, status);
    ck_assert_int_eq(r.rc, 0);
    ck_assert_int_eq(r.sum, 2);
    ck_assert_int_eq(synchro_close(s, 0), 0);
    synchro_free(s);
  }
}
END_TEST

START_TEST(test_a14_internal_fds_are_cloexec) {
  /* after a start, every fd the process gained is close-on-exec */
  synchro_t *s = new_sync();
  int rc, fd, bad = -1;
  ck_assert_int_eq(add_call(s, 1, 1, &rc), 2);
  for (fd = 3; fd < 1024; fd++) {
    int fl = fcntl(fd, F_GETFD);
    if (fl >= 0 && !(fl & FD_CLOEXEC)) {
      char path[64], target[256] = "";
      snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
      if (readlink(path, target, sizeof(target) - 1) > 0 &&
          (strstr(target, "eventfd") || strstr(target, "eventpoll")))
        bad = fd;
    }
  }
  ck_assert_int_eq(bad, -1);
  ck_assert_int_eq(synchro_close(s, 0), 0);
  synchro_free(s);
}
END_TEST

static Suite *synchronizer_suite(void) {
  Suite *s = suite_create("synchronizer");
  TCase *tc;

  tc = tcase_create("create");
  tcase_set_timeout(tc, 10);
  tcase_add_test(tc, test_create_starts_no_thread);
  tcase_add_test(tc, test_first_call_starts_the_loop_thread);
  tcase_add_test(tc, test_a15_concurrent_first_calls_start_one_loop);
  tcase_add_test(tc, test_a15_failed_start_is_clean_and_retried);
  tcase_add_test(tc, test_options_validation);
  tcase_add_test(tc, test_options_name_is_copied_and_names_the_thread);
  tcase_add_test(tc, test_options_without_spinning_work);
  tcase_add_test(tc, test_loop_only_on_the_loop_thread);
  suite_add_tcase(s, tc);

  tc = tcase_create("close");
  tcase_set_timeout(tc, 20);
  tcase_add_test(tc, test_a10_close_with_10000_sleeps_in_flight);
  tcase_add_test(tc, test_a10_close_with_blocking_waiters);
  tcase_add_test(tc, test_a10_close_with_stubborn_call_is_bounded);
  tcase_add_test(tc, test_a10_close_with_hookless_call);
  tcase_add_test(tc, test_a10_close_idle_returns_fast);
  tcase_add_test(tc, test_close_infinite_grace_lets_calls_finish);
  tcase_add_test(tc, test_a10_calls_after_close_fail_at_once);
  tcase_add_test(tc, test_calls_after_close_of_never_started);
  tcase_add_test(tc, test_close_twice_and_null);
  tcase_add_test(tc, test_close_at_exit_bad_input);
  tcase_add_test(tc, test_concurrent_close);
  tcase_add_test(tc, test_close_from_loop_thread_deadlk);
  tcase_add_test(tc, test_stats_counters);
  suite_add_tcase(s, tc);

  tc = tcase_create("close_race");
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, test_a11_submit_racing_close);
  suite_add_tcase(s, tc);

  tc = tcase_create("process");
  /* A fork child inherits memory owned by threads that do not exist in it, which
   * memcheck reports as lost: `make valgrind` excludes this tag. */
  tcase_set_tags(tc, "fork");
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, test_a13_exit_with_live_synchronizer);
  tcase_add_test(tc, test_a31_uv_calls_off_the_loop_thread_are_caught);
  tcase_add_test(tc, test_a13_exit_hook_cancels_and_joins);
  tcase_add_test(tc, test_a13_without_hook_detaches);
  tcase_add_test(tc, test_a13_close_from_an_atexit_handler);
#if !defined(__SANITIZE_THREAD__) && !defined(__SANITIZE_ADDRESS__)
  /* These fork while the parent's loop thread is busy and start threads in the child.
   * TSan does not support that ("dup thread with used id"), and GCC 12's ASan allocator
   * is not fork-safe (a child deadlocked on an allocator lock the parent's loop thread
   * held at the fork). They run in the plain and valgrind builds. */
  tcase_add_test(tc, test_a14_fork_with_calls_in_flight);
  tcase_add_test(tc, test_a14_fork_during_lazy_start);
  tcase_add_test(tc, test_a14_fork_while_loop_spinning);
#else
  (void)test_a14_fork_while_loop_spinning;
  (void)test_a14_fork_with_calls_in_flight;
  (void)test_a14_fork_during_lazy_start;
#endif
  tcase_add_test(tc, test_a14_inherited_future_resolves_without_new_call);
  tcase_add_test(tc, test_a14_close_in_child_after_fork);
  tcase_add_test(tc, test_a14_internal_fds_are_cloexec);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(synchronizer_suite());
  int failed;
  srunner_run_all(sr, CK_ENV);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
