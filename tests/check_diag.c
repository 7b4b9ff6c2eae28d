/* tests/check_diag.c - diagnostics: the hook for blocking calls made on host-loop and
 * loop threads (A2, A36), wait-for cycles between loops (A4, A36), the stall watchdog
 * (A33), and synchro_is_loop_thread on every kind of thread (A36). */
#define _GNU_SOURCE
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "support/testops.h"
#include "support/watchdog.h"
#include "synchro.h"

#if defined(__SANITIZE_THREAD__)
const char *__tsan_default_options(void);
__attribute__((visibility("default"))) const char *__tsan_default_options(void) {
  return "die_after_fork=0";
}
#endif

/* ---- the hook: records events (any thread), the test thread asserts on them ------ */

#define MAX_EVENTS 64
typedef struct {
  synchro_diag_kind_t kind;
  char sync[32];
  char loop[32];
  char op[32];
  pthread_t thread;
  uint64_t duration_ns;
  int status;
  pthread_t ran_on; /* the thread the hook ran on */
  double at_ms;     /* when it ran */
} rec_event_t;

/* When set, the hook sleeps this long at the first stall report (a slow hook). */
static atomic_int slow_hook_ms;

static pthread_mutex_t ev_mutex = PTHREAD_MUTEX_INITIALIZER;
static rec_event_t events[MAX_EVENTS];
static int n_events;

static void copy_name(char *dst, const char *src) {
  snprintf(dst, 32, "%s", src != NULL ? src : "(null)");
}

static void record_hook(const synchro_diag_event_t *ev, void *data) {
  (void)data;
  pthread_mutex_lock(&ev_mutex);
  if (n_events < MAX_EVENTS) {
    rec_event_t *r = &events[n_events];
    r->kind = ev->kind;
    copy_name(r->sync, ev->synchronizer);
    copy_name(r->loop, ev->blocked_loop);
    copy_name(r->op, ev->op);
    r->thread = ev->thread;
    r->duration_ns = ev->duration_ns;
    r->status = ev->status;
    r->ran_on = pthread_self();
    r->at_ms = test_now_ms();
  }
  n_events++;
  pthread_mutex_unlock(&ev_mutex);
  if (ev->kind == SYNCHRO_DIAG_LOOP_STALL && slow_hook_ms > 0) {
    int ms = atomic_exchange(&slow_hook_ms, 0);
    usleep((useconds_t)ms * 1000);
  }
}

static int events_of(synchro_diag_kind_t kind) {
  int i, n = 0;
  pthread_mutex_lock(&ev_mutex);
  for (i = 0; i < n_events && i < MAX_EVENTS; i++)
    n += events[i].kind == kind;
  pthread_mutex_unlock(&ev_mutex);
  return n;
}

/* The first recorded event of `kind` (copied), or a zeroed one. */
static rec_event_t first_of(synchro_diag_kind_t kind) {
  rec_event_t r;
  int i;
  memset(&r, 0, sizeof(r));
  pthread_mutex_lock(&ev_mutex);
  for (i = 0; i < n_events && i < MAX_EVENTS; i++)
    if (events[i].kind == kind) {
      r = events[i];
      break;
    }
  pthread_mutex_unlock(&ev_mutex);
  return r;
}

static void hook_on(void) {
  pthread_mutex_lock(&ev_mutex);
  n_events = 0;
  pthread_mutex_unlock(&ev_mutex);
  ck_assert_int_eq(synchro_diag_set_hook(record_hook, NULL), 0);
}

static synchro_t *new_named(const char *name, int64_t default_timeout_ms, int64_t stall_ms) {
  synchro_options_t o;
  synchro_t *s = NULL;
  synchro_options_init(&o);
  o.name = name;
  if (default_timeout_ms != 0)
    o.default_timeout_ms = default_timeout_ms;
  o.stall_threshold_ms = stall_ms;
  ck_assert_int_eq(synchro_new(&s, &o), 0);
  watchdog_watch(s); /* dumped if the test hangs */
  return s;
}

static void release(synchro_t *s) {
  watchdog_unwatch(s);
  synchro_free(s);
}

static void end(synchro_t *s) {
  ck_assert_int_eq(synchro_close(s, 1000), 0);
  release(s);
}

/* ---- ops used here ------------------------------------------------------------------- */

/* busy: spins on the loop thread for args ms, returns ms. */
static _Atomic double busy_end_ms; /* when the last busy loop ended */
static void busy_impl(synchro_call_t *call) {
  int64_t ms = *(const int64_t *)synchro_call_args(call);
  double t0 = test_now_ms();
  while (test_now_ms() - t0 < (double)ms)
    ;
  busy_end_ms = test_now_ms();
  synchro_call_return(call, &ms);
}
static const synchro_op_t busy_op = {.name = "busy",
                                     .impl = busy_impl,
                                     .args_size = sizeof(int64_t),
                                     .result_size = sizeof(int64_t)};

/* hop: a blocking call from this loop into `next`: hop(then) there if `then` is set,
 * else add. Returns the nested call's return code (a code, so 0 on success). */
typedef struct {
  synchro_t *next;
  synchro_t *then;
} hop_args_t;
static const synchro_op_t hop_op;
static void hop_impl(synchro_call_t *call) {
  const hop_args_t *a = synchro_call_args(call);
  int64_t rc, out = 0;
  if (a->then != NULL) {
    hop_args_t next = {a->then, NULL};
    rc = synchro_call(a->next, &hop_op, &next, SYNCHRO_TIMEOUT_DEFAULT, &out, NULL);
    if (rc == 0)
      rc = out; /* the inner hop's code */
  } else {
    test_add_args_t add = {2, 3};
    rc = synchro_call(a->next, &test_op_add, &add, SYNCHRO_TIMEOUT_DEFAULT, &out, NULL);
    if (rc == 0 && out != 5)
      rc = -1;
  }
  synchro_call_return(call, &rc);
}
static const synchro_op_t hop_op = {.name = "hop",
                                    .impl = hop_impl,
                                    .args_size = sizeof(hop_args_t),
                                    .result_size = sizeof(int64_t)};

/* hop3: A -> B -> C -> A, each a blocking hop. */
typedef struct {
  synchro_t *b, *c, *a;
} hop3_args_t;
static void hop3_impl(synchro_call_t *call) {
  const hop3_args_t *x = synchro_call_args(call);
  hop_args_t next = {x->c, x->a}; /* on B: hop into C, which adds on A */
  int64_t rc, out = 0;
  rc = synchro_call(x->b, &hop_op, &next, SYNCHRO_TIMEOUT_DEFAULT, &out, NULL);
  if (rc == 0)
    rc = out;
  synchro_call_return(call, &rc);
}
static const synchro_op_t hop3_op = {.name = "hop3",
                                     .impl = hop3_impl,
                                     .args_size = sizeof(hop3_args_t),
                                     .result_size = sizeof(int64_t)};

/* fut_hop: on A, submits hop(next = back) to `b` as a future and waits for it without a
 * timeout, on A's loop thread: a wait the wait-for detection does not see. */
typedef struct {
  synchro_t *b;
  synchro_t *back;
} fut_hop_args_t;
static void fut_hop_impl(synchro_call_t *call) {
  const fut_hop_args_t *a = synchro_call_args(call);
  hop_args_t h = {a->back, NULL};
  synchro_future_t *f = NULL;
  int64_t rc = synchro_submit(a->b, &hop_op, &h, SYNCHRO_TIMEOUT_DEFAULT, &f), out = 0;
  if (rc == 0 && (rc = synchro_future_wait(f, SYNCHRO_TIMEOUT_INFINITE)) == 0 &&
      (rc = synchro_future_result(f, &out)) == 0)
    rc = out;
  synchro_future_free(f);
  synchro_call_return(call, &rc);
}
static const synchro_op_t fut_hop_op = {.name = "fut_hop",
                                        .impl = fut_hop_impl,
                                        .args_size = sizeof(fut_hop_args_t),
                                        .result_size = sizeof(int64_t)};

/* where: bit 0 = is_loop_thread(own) in the impl, bit 1 = is_loop_thread(other) in the
 * impl, bit 2 = is_loop_thread(own) in a libuv timer callback the impl starts, bit 3 =
 * is_loop_thread(other) there. */
typedef struct {
  uv_timer_t timer;
  synchro_call_t *call;
  synchro_t *own, *other;
  int64_t bits;
} where_t;
static void where_closed(uv_handle_t *h) {
  where_t *w = h->data;
  synchro_call_return(w->call, &w->bits);
  free(w);
}
static void where_timer(uv_timer_t *t) {
  where_t *w = t->data;
  w->bits |= (int64_t)synchro_is_loop_thread(w->own) << 2;
  w->bits |= (int64_t)synchro_is_loop_thread(w->other) << 3;
  uv_close((uv_handle_t *)t, where_closed);
}
static void where_impl(synchro_call_t *call) {
  where_t *w = calloc(1, sizeof(*w));
  w->call = call;
  w->own = synchro_call_synchronizer(call);
  w->other = *(synchro_t *const *)synchro_call_args(call);
  w->bits = synchro_is_loop_thread(w->own) | (int64_t)synchro_is_loop_thread(w->other) << 1;
  uv_timer_init(synchro_call_loop(call), &w->timer);
  w->timer.data = w;
  uv_timer_start(&w->timer, where_timer, 1, 0);
}
static const synchro_op_t where_op = {.name = "where",
                                      .impl = where_impl,
                                      .args_size = sizeof(synchro_t *),
                                      .result_size = sizeof(int64_t)};

/* ---- A2: blocking calls from a host-loop thread ---------------------------------- */

typedef struct {
  synchro_t *s;
  double t0;
  double late_fired_ms; /* when the timer due at 20 ms ran, relative to t0 */
  int rc;
  int64_t slept;
} host_run_t;

static void late_timer_cb(uv_timer_t *t) {
  host_run_t *r = t->data;
  r->late_fired_ms = test_now_ms() - r->t0;
}

static void blocking_timer_cb(uv_timer_t *t) {
  host_run_t *r = t->data;
  test_sleep_args_t sa = {100, 0};
  r->rc = synchro_call(r->s, &test_op_sleep, &sa, 5000, &r->slept, NULL);
}

START_TEST(test_a2_host_thread_blocking_call_reported) {
  synchro_t *s = new_named("diag-b", 0, 0);
  synchro_host_t *h = NULL;
  uv_loop_t loop;
  uv_timer_t now_timer, late_timer;
  host_run_t r = {s, 0, -1, -1, 0};
  test_add_args_t add = {1, 2};
  int64_t sum = 0;
  rec_event_t ev;
  hook_on();
  ck_assert_int_eq(synchro_diag_is_host_thread(), 0);
  ck_assert_int_eq(uv_loop_init(&loop), 0);
  ck_assert_int_eq(synchro_host_new_uv(&h, &loop), 0);
  ck_assert_int_eq(synchro_diag_is_host_thread(), 1); /* owning a host marks the thread */
  /* a blocking call inside the host loop, and a host timer due while it blocks */
  uv_timer_init(&loop, &now_timer);
  uv_timer_init(&loop, &late_timer);
  now_timer.data = late_timer.data = &r;
  r.t0 = test_now_ms();
  uv_timer_start(&now_timer, blocking_timer_cb, 0, 0);
  uv_timer_start(&late_timer, late_timer_cb, 20, 0);
  ck_assert_int_eq(uv_run(&loop, UV_RUN_DEFAULT), 0); /* returns: no deadlock */
  ck_assert_int_eq(r.rc, 0);
  ck_assert_int_eq(r.slept, 100);           /* the right result */
  ck_assert_double_ge(r.late_fired_ms, 95); /* the host timer fired late: the stall */
  ck_assert_int_eq(events_of(SYNCHRO_DIAG_HOST_BLOCKED), 1);
  ev = first_of(SYNCHRO_DIAG_HOST_BLOCKED);
  ck_assert_str_eq(ev.op, "sleep");
  ck_assert_str_eq(ev.sync, "diag-b");
  ck_assert_str_eq(ev.loop, "(null)");
  ck_assert(pthread_equal(ev.thread, pthread_self()));
  ck_assert_uint_ge(ev.duration_ns, 95000000u);
  ck_assert_int_eq(ev.status, 0);
  /* once per call */
  ck_assert_int_eq(synchro_call(s, &test_op_add, &add, SYNCHRO_TIMEOUT_DEFAULT, &sum, NULL), 0);
  ck_assert_int_eq(sum, 3);
  ck_assert_int_eq(events_of(SYNCHRO_DIAG_HOST_BLOCKED), 2);
  /* freeing the host unmarks the thread: no report */
  synchro_host_free(h);
  ck_assert_int_eq(synchro_diag_is_host_thread(), 0);
  ck_assert_int_eq(synchro_call(s, &test_op_add, &add, SYNCHRO_TIMEOUT_DEFAULT, &sum, NULL), 0);
  ck_assert_int_eq(events_of(SYNCHRO_DIAG_HOST_BLOCKED), 2);
  uv_close((uv_handle_t *)&now_timer, NULL);
  uv_close((uv_handle_t *)&late_timer, NULL);
  ck_assert_int_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
  ck_assert_int_eq(uv_loop_close(&loop), 0);
  synchro_diag_set_hook(NULL, NULL);
  end(s);
}
END_TEST

static void *plain_thread_call(void *arg) {
  test_add_args_t add = {1, 2};
  int64_t sum = 0;
  intptr_t rc = synchro_call(arg, &test_op_add, &add, SYNCHRO_TIMEOUT_DEFAULT, &sum, NULL);
  return (void *)(rc == 0 && sum == 3 && !synchro_diag_is_host_thread() ? 1 : (intptr_t)0);
}

START_TEST(test_a2_explicit_mark_and_fd_host) {
  synchro_t *s = new_named("diag-b", 0, 0);
  synchro_host_t *hf = NULL;
  test_add_args_t add = {1, 2};
  int64_t sum = 0;
  pthread_t t;
  void *ok = NULL;
  hook_on();
  /* unmarked: nothing */
  ck_assert_int_eq(synchro_call(s, &test_op_add, &add, SYNCHRO_TIMEOUT_DEFAULT, &sum, NULL), 0);
  ck_assert_int_eq(events_of(SYNCHRO_DIAG_HOST_BLOCKED), 0);
  /* an explicit mark */
  synchro_diag_mark_host_thread(1);
  ck_assert_int_eq(synchro_diag_is_host_thread(), 1);
  ck_assert_int_eq(synchro_call(s, &test_op_add, &add, SYNCHRO_TIMEOUT_DEFAULT, &sum, NULL), 0);
  ck_assert_int_eq(events_of(SYNCHRO_DIAG_HOST_BLOCKED), 1);
  /* another thread is not marked */
  ck_assert_int_eq(pthread_create(&t, NULL, plain_thread_call, s), 0);
  pthread_join(t, &ok);
  ck_assert_ptr_eq(ok, (void *)1);
  ck_assert_int_eq(events_of(SYNCHRO_DIAG_HOST_BLOCKED), 1);
  /* the mark and a host are independent */
  ck_assert_int_eq(synchro_host_new_fd(&hf), 0);
  synchro_diag_mark_host_thread(0);
  ck_assert_int_eq(synchro_diag_is_host_thread(), 1);
  ck_assert_int_eq(synchro_call(s, &test_op_add, &add, SYNCHRO_TIMEOUT_DEFAULT, &sum, NULL), 0);
  ck_assert_int_eq(events_of(SYNCHRO_DIAG_HOST_BLOCKED), 2);
  synchro_host_free(hf);
  ck_assert_int_eq(synchro_diag_is_host_thread(), 0);
  /* a failed call is reported too, with its code */
  ck_assert_int_eq(synchro_close(s, 1000), 0);
  synchro_diag_mark_host_thread(1);
  ck_assert_int_eq(synchro_call(s, &test_op_add, &add, SYNCHRO_TIMEOUT_DEFAULT, &sum, NULL),
                   SYNCHRO_ESHUTDOWN);
  ck_assert_int_eq(events_of(SYNCHRO_DIAG_HOST_BLOCKED), 3);
  synchro_diag_mark_host_thread(0);
  synchro_diag_set_hook(NULL, NULL);
  ck_assert_int_eq(synchro_call(s, &test_op_add, &add, SYNCHRO_TIMEOUT_DEFAULT, &sum, NULL),
                   SYNCHRO_ESHUTDOWN);
  ck_assert_int_eq(n_events, 3); /* the hook is gone */
  release(s);
}
END_TEST

/* An object class: state is a counter; "bump" adds one and returns it. */
static int counter_construct(synchro_t *s, const void *args, void **state) {
  (void)s;
  (void)args;
  *state = calloc(1, sizeof(int64_t));
  return *state != NULL ? 0 : SYNCHRO_ENOMEM;
}
static void counter_destroy(void *state) { free(state); }
static const synchro_class_t counter_class = {
    .name = "counter", .construct = counter_construct, .destroy = counter_destroy};
static void bump_impl(synchro_call_t *call) {
  int64_t *n = synchro_call_object(call);
  int64_t v = ++*n;
  synchro_call_return(call, &v);
}
static const synchro_op_t bump_op = {
    .name = "bump", .impl = bump_impl, .result_size = sizeof(int64_t)};

START_TEST(test_a2_object_calls_reported) {
  synchro_t *s = new_named("diag-b", 0, 0);
  synchro_object_t *obj = NULL;
  int64_t v = 0;
  rec_event_t ev;
  hook_on();
  synchro_diag_mark_host_thread(1);
  ck_assert_int_eq(synchro_object_new(s, &counter_class, NULL, &obj, NULL), 0);
  ck_assert_int_eq(synchro_object_call(obj, &bump_op, NULL, SYNCHRO_TIMEOUT_DEFAULT, &v, NULL), 0);
  ck_assert_int_eq(v, 1);
  ck_assert_int_eq(synchro_object_close(obj, SYNCHRO_TIMEOUT_DEFAULT, NULL), 0);
  synchro_diag_mark_host_thread(0);
  ck_assert_int_eq(events_of(SYNCHRO_DIAG_HOST_BLOCKED), 3); /* new, call, close */
  ev = first_of(SYNCHRO_DIAG_HOST_BLOCKED);
  ck_assert_str_eq(ev.op, "counter"); /* the constructor, under the class's name */
  pthread_mutex_lock(&ev_mutex);
  ck_assert_str_eq(events[1].op, "bump");
  pthread_mutex_unlock(&ev_mutex);
  synchro_object_free(obj);
  synchro_diag_set_hook(NULL, NULL);
  end(s);
}
END_TEST

static long file_size(int fd) {
  struct stat st;
  return fstat(fd, &st) == 0 ? (long)st.st_size : -1;
}

START_TEST(test_a2_no_hook_nothing_printed) {
  synchro_t *s = new_named("diag-b", 0, 20);
  synchro_host_t *hf = NULL;
  test_sleep_args_t sa = {30, 0};
  int64_t slept = 0, ms = 60;
  FILE *out = tmpfile(), *errf = tmpfile();
  int saved_out = dup(1), saved_err = dup(2);
  synchro_diag_lag_t lag;
  synchro_diag_set_hook(NULL, NULL);
  ck_assert_ptr_nonnull(out);
  ck_assert_ptr_nonnull(errf);
  fflush(NULL);
  dup2(fileno(out), 1);
  dup2(fileno(errf), 2);
  /* every kind of event happens, with no hook */
  ck_assert_int_eq(synchro_host_new_fd(&hf), 0);
  ck_assert_int_eq(synchro_call(s, &test_op_sleep, &sa, 5000, &slept, NULL), 0);
  ck_assert_int_eq(synchro_call(s, &busy_op, &ms, 5000, &ms, NULL), 0);
  synchro_host_free(hf);
  fflush(NULL);
  dup2(saved_out, 1);
  dup2(saved_err, 2);
  close(saved_out);
  close(saved_err);
  ck_assert_int_eq(slept, 30);
  ck_assert_int_eq(file_size(fileno(out)), 0);
  ck_assert_int_eq(file_size(fileno(errf)), 0);
  fclose(out);
  fclose(errf);
  usleep(50000); /* the loop measures the iteration when it ends, after the result */
  /* the watchdog still counted the stall */
  ck_assert_int_eq(synchro_diag_lag(s, &lag), 0);
  ck_assert_uint_ge(lag.max_busy_ns, 60000000u);
  end(s);
}
END_TEST

/* ---- A36 / A4: blocking calls between loops --------------------------------------- */

START_TEST(test_a36_loop_to_loop_blocking_ok_and_reported) {
  synchro_t *a = new_named("diag-a", 0, 0), *b = new_named("diag-b", 0, 0);
  hop_args_t h = {b, NULL};
  int64_t rc = -1;
  rec_event_t ev;
  hook_on();
  ck_assert_int_eq(synchro_call(a, &hop_op, &h, SYNCHRO_TIMEOUT_DEFAULT, &rc, NULL), 0);
  ck_assert_int_eq(rc, 0); /* A's loop called B blocking: OK */
  ck_assert_int_eq(events_of(SYNCHRO_DIAG_LOOP_BLOCKED), 1);
  ev = first_of(SYNCHRO_DIAG_LOOP_BLOCKED);
  ck_assert_str_eq(ev.loop, "diag-a"); /* names the stalled loop */
  ck_assert_str_eq(ev.sync, "diag-b");
  ck_assert_str_eq(ev.op, "add");
  ck_assert(!pthread_equal(ev.thread, pthread_self())); /* A's loop thread */
  ck_assert_int_eq(ev.status, 0);
  ck_assert_int_eq(events_of(SYNCHRO_DIAG_HOST_BLOCKED), 0);
  synchro_diag_set_hook(NULL, NULL);
  end(a);
  end(b);
}
END_TEST

START_TEST(test_a4_cycle_returns_edeadlk) {
  synchro_t *a = new_named("diag-a", 0, 0), *b = new_named("diag-b", 0, 0);
  synchro_t *c = new_named("diag-c", 0, 0);
  hop_args_t h = {b, a}; /* on A: call B, whose impl calls A */
  hop3_args_t h3 = {b, c, a};
  int64_t rc = -1;
  double t0 = test_now_ms();
  ck_assert_int_eq(synchro_call(a, &hop_op, &h, SYNCHRO_TIMEOUT_DEFAULT, &rc, NULL), 0);
  ck_assert_int_eq(rc, SYNCHRO_EDEADLK);
  ck_assert_double_lt(test_now_ms() - t0, 2000); /* promptly, not a hang */
  /* three loops */
  rc = -1;
  ck_assert_int_eq(synchro_call(a, &hop3_op, &h3, SYNCHRO_TIMEOUT_DEFAULT, &rc, NULL), 0);
  ck_assert_int_eq(rc, SYNCHRO_EDEADLK);
  /* the edges are gone once the calls returned: the same chains without the cycle work */
  h.then = c;
  rc = -1;
  ck_assert_int_eq(synchro_call(a, &hop_op, &h, SYNCHRO_TIMEOUT_DEFAULT, &rc, NULL), 0);
  ck_assert_int_eq(rc, 0);
  h.next = c;
  h.then = b;
  rc = -1;
  ck_assert_int_eq(synchro_call(a, &hop_op, &h, SYNCHRO_TIMEOUT_DEFAULT, &rc, NULL), 0);
  ck_assert_int_eq(rc, 0);
  end(a);
  end(b);
  end(c);
}
END_TEST

/* Dumps both synchronizers while they are stuck in the cycle. */
typedef struct {
  synchro_t *a, *b;
  char *dump_a, *dump_b;
  int rc_a, rc_b;
} stuck_dump_t;
static void *dump_while_stuck(void *arg) {
  stuck_dump_t *d = arg;
  usleep(120000);
  d->rc_a = synchro_dump(d->a, 50, &d->dump_a);
  d->rc_b = synchro_dump(d->b, 50, &d->dump_b);
  return NULL;
}

START_TEST(test_a4_undetected_cycle_times_out) {
  /* A waits for B's future (not seen by the detection); B's implementation calls A
   * blocking, with A's default deadline of 200 ms. A's loop is stuck, so its deadline
   * timer cannot fire: the blocking caller holds the deadline itself. */
  synchro_t *a = new_named("diag-a", 200, 0), *b = new_named("diag-b", 0, 0);
  fut_hop_args_t fa = {b, a};
  test_add_args_t add = {2, 2};
  int64_t rc = -1, sum = 0;
  stuck_dump_t d = {a, b, NULL, NULL, -1, -1};
  pthread_t t;
  double t0 = test_now_ms(), took;
  ck_assert_int_eq(pthread_create(&t, NULL, dump_while_stuck, &d), 0);
  ck_assert_int_eq(synchro_call(a, &fut_hop_op, &fa, SYNCHRO_TIMEOUT_INFINITE, &rc, NULL), 0);
  took = test_now_ms() - t0;
  ck_assert_int_eq(rc, SYNCHRO_ETIMEDOUT);
  ck_assert_double_ge(took, 200);
  ck_assert_double_lt(took, 5000);
  /* the dumps taken meanwhile name where each stuck loop is (A40) */
  pthread_join(t, NULL);
  ck_assert_int_eq(d.rc_a, 0);
  ck_assert_int_eq(d.rc_b, 0);
  ck_assert_ptr_nonnull(strstr(d.dump_a, "\"loop_answered\": false"));
  ck_assert_ptr_nonnull(strstr(d.dump_b, "\"loop_answered\": false"));
  ck_assert_ptr_nonnull(strstr(d.dump_a, "fut_hop"));
  ck_assert_ptr_nonnull(strstr(d.dump_b, "\"hop\""));
  synchro_mem_free(d.dump_a);
  synchro_mem_free(d.dump_b);
  /* both loops run again */
  ck_assert_int_eq(synchro_call(a, &test_op_add, &add, SYNCHRO_TIMEOUT_DEFAULT, &sum, NULL), 0);
  ck_assert_int_eq(sum, 4);
  ck_assert_int_eq(synchro_call(b, &test_op_add, &add, SYNCHRO_TIMEOUT_DEFAULT, &sum, NULL), 0);
  end(a);
  end(b);
}
END_TEST

START_TEST(test_deadline_held_by_healthy_loop_is_the_loops) {
  /* A healthy loop resolves a timed-out call itself, cancel hook and cleanup included:
   * the caller waits for the cleanup (400 ms), past its own stuck-loop check at the
   * deadline + 250 ms. */
  synchro_t *s = new_named("diag-a", 0, 0);
  test_sleep_args_t sa = {10000, 400};
  int64_t slept = 0;
  int attempt;
  for (attempt = 0; attempt < 5; attempt++) {
    double t0 = test_now_ms(), took;
    testops_reset();
    ck_assert_int_eq(synchro_call(s, &test_op_sleep, &sa, 100, &slept, NULL), SYNCHRO_ETIMEDOUT);
    took = test_now_ms() - t0;
    if (test_hooks_run == 0)
      continue; /* a loaded machine started the call after its deadline: refused */
    ck_assert_double_ge(took, 495); /* deadline + cleanup, waited for */
    ck_assert_int_eq(test_cleanups_done, 1);
    break;
  }
  ck_assert_int_lt(attempt, 5);
  end(s);
}
END_TEST

/* ---- A36: synchro_is_loop_thread ---------------------------------------------------- */

static void *foreign_is_loop(void *arg) { return (void *)(intptr_t)synchro_is_loop_thread(arg); }

static int64_t where(synchro_t *s, synchro_t *other) {
  int64_t bits = -1;
  if (synchro_call(s, &where_op, &other, 5000, &bits, NULL) != 0)
    return -1;
  return bits;
}

START_TEST(test_a36_is_loop_thread_everywhere) {
  synchro_t *a = new_named("diag-a", 0, 0), *b = new_named("diag-b", 0, 0);
  pthread_t t;
  void *res = (void *)1;
  ck_assert_int_eq(synchro_is_loop_thread(NULL), 0);
  ck_assert_int_eq(synchro_is_loop_thread(a), 0); /* not started */
  /* in the impl (1 for its own, 0 for another), in a nested libuv callback (same) */
  ck_assert_int_eq(where(a, b), 1 | 4);
  ck_assert_int_eq(where(b, a), 1 | 4);
  ck_assert_int_eq(synchro_is_loop_thread(a), 0); /* the caller, once started */
  ck_assert_int_eq(pthread_create(&t, NULL, foreign_is_loop, a), 0);
  pthread_join(t, &res);
  ck_assert_ptr_eq(res, NULL);
  end(a);
  end(b);
}
END_TEST

static int watchdog_threads(void);

START_TEST(test_a36_is_loop_thread_after_fork) {
  synchro_t *a = new_named("diag-a", 0, 50), *b = new_named("diag-b", 0, 0);
  int64_t ms = 150, out = 0;
  pid_t pid;
  int status;
  ck_assert_int_eq(where(a, b), 1 | 4); /* both loops run in the parent */
  hook_on();
  fflush(NULL);
  pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    synchro_diag_lag_t lag;
    if (synchro_is_loop_thread(a) != 0 || synchro_is_loop_thread(b) != 0)
      _exit(10);
    if (watchdog_threads() != 0) /* the parent's watchdog is not inherited */
      _exit(11);
    if (where(a, b) != (1 | 4)) /* the child's new loop thread */
      _exit(12);
    if (synchro_is_loop_thread(a) != 0)
      _exit(13);
    if (watchdog_threads() != 1)
      _exit(14); /* restarted with the loop */
    /* the restarted watchdog reports a stall in the child */
    if (synchro_call(a, &busy_op, &ms, 5000, &out, NULL) != 0)
      _exit(15);
    usleep(100000);
    if (events_of(SYNCHRO_DIAG_LOOP_STALL) < 1) /* a loaded machine may add one */
      _exit(16);
    if (synchro_diag_lag(a, &lag) != 0 || lag.stalls < 1 || lag.max_busy_ns < 150000000u)
      _exit(17);
    if (synchro_close(a, 1000) != 0 || watchdog_threads() != 0)
      _exit(18);
    release(a);
    release(b);
    _exit(0);
  }
  status = test_wait_child(pid, 10000);
  ck_assert_int_ne(status, -1);
  ck_assert_msg(WIFEXITED(status), "child died: %#x", status);
  ck_assert_int_eq(WEXITSTATUS(status), 0);
  ck_assert_int_eq(where(a, b), 1 | 4); /* the parent is unaffected */
  ck_assert_int_eq(events_of(SYNCHRO_DIAG_LOOP_STALL), 0);
  synchro_diag_set_hook(NULL, NULL);
  end(a);
  end(b);
}
END_TEST

/* ---- A33: the stall watchdog --------------------------------------------------------- */

/* Threads of this process whose name starts with "wd:". */
static int watchdog_threads(void) {
  DIR *d = opendir("/proc/self/task");
  struct dirent *e;
  int found = 0;
  if (d == NULL)
    return -1;
  while ((e = readdir(d)) != NULL) {
    char path[300], buf[64] = "";
    FILE *f;
    if (e->d_name[0] == '.')
      continue;
    snprintf(path, sizeof(path), "/proc/self/task/%s/comm", e->d_name);
    if ((f = fopen(path, "r")) == NULL)
      continue;
    if (fgets(buf, sizeof(buf), f) != NULL)
      found += strncmp(buf, "wd:", 3) == 0;
    fclose(f);
  }
  closedir(d);
  return found;
}

/* Context switches of the watchdog thread (voluntary: each futex sleep), -1 if none. */
static long watchdog_switches(void) {
  DIR *d = opendir("/proc/self/task");
  struct dirent *e;
  long n = -1;
  if (d == NULL)
    return -1;
  while ((e = readdir(d)) != NULL) {
    char path[300], buf[256] = "";
    FILE *f;
    if (e->d_name[0] == '.')
      continue;
    snprintf(path, sizeof(path), "/proc/self/task/%s/comm", e->d_name);
    if ((f = fopen(path, "r")) == NULL)
      continue;
    if (fgets(buf, sizeof(buf), f) == NULL || strncmp(buf, "wd:", 3) != 0) {
      fclose(f);
      continue;
    }
    fclose(f);
    snprintf(path, sizeof(path), "/proc/self/task/%s/status", e->d_name);
    if ((f = fopen(path, "r")) == NULL)
      continue;
    while (fgets(buf, sizeof(buf), f) != NULL)
      if (sscanf(buf, "voluntary_ctxt_switches: %ld", &n) == 1)
        break;
    fclose(f);
  }
  closedir(d);
  return n;
}

START_TEST(test_a33_stall_reported_once) {
  synchro_t *s = new_named("diag-w", 0, 200);
  int64_t ms = 300, out = 0;
  test_add_args_t add = {1, 1};
  synchro_diag_lag_t lag, lag0;
  rec_event_t ev;
  /* started first: under valgrind the loop's start alone can take 200 ms */
  ck_assert_int_eq(synchro_call(s, &test_op_add, &add, SYNCHRO_TIMEOUT_DEFAULT, &out, NULL), 0);
  usleep(20000);
  ck_assert_int_eq(synchro_diag_lag(s, &lag0), 0);
  hook_on();
  ck_assert_int_eq(synchro_call(s, &busy_op, &ms, 5000, &out, NULL), 0);
  ck_assert_int_eq(out, 300);
  usleep(300000); /* a second report would come within a few watchdog periods */
  ck_assert_int_eq(events_of(SYNCHRO_DIAG_LOOP_STALL), 1);
  ev = first_of(SYNCHRO_DIAG_LOOP_STALL);
  ck_assert_str_eq(ev.op, "busy");
  ck_assert_str_eq(ev.sync, "diag-w");
  ck_assert_uint_ge(ev.duration_ns, 200000000u);
  ck_assert(!pthread_equal(ev.thread, pthread_self()));
  ck_assert_int_eq(synchro_diag_lag(s, &lag), 0);
  ck_assert_int_eq(lag.threshold_ms, 200);
  ck_assert_uint_eq(lag.stalls, lag0.stalls + 1);
  ck_assert_uint_ge(lag.max_busy_ns, 300000000u); /* the whole stall, measured by the loop */
  /* no LOOP_BLOCKED or HOST_BLOCKED: the test thread is neither */
  ck_assert_int_eq(events_of(SYNCHRO_DIAG_HOST_BLOCKED), 0);
  synchro_diag_set_hook(NULL, NULL);
  end(s);
}
END_TEST

/* The sanitizer targets run slower (CK_TIMEOUT_MULTIPLIER): a loop thread descheduled
 * that long looks busy to the watchdog, so thresholds that must not be reached grow. */
static int64_t slow_factor(void) {
  double m = test_time_multiplier();
  return m < 1 ? 1 : (int64_t)m;
}

START_TEST(test_a33_reported_while_stalled_or_right_after) {
  synchro_t *s = new_named("diag-w", 0, 50);
  int64_t ms = 600, out = 0;
  test_add_args_t add = {1, 1};
  rec_event_t e1, e2;
  ck_assert_int_eq(synchro_call(s, &test_op_add, &add, SYNCHRO_TIMEOUT_DEFAULT, &out, NULL), 0);
  usleep(20000);
  hook_on();
  /* the watchdog reports during the stall, on its own thread */
  ck_assert_int_eq(synchro_call(s, &busy_op, &ms, 5000, &out, NULL), 0);
  ck_assert_int_eq(events_of(SYNCHRO_DIAG_LOOP_STALL), 1);
  e1 = first_of(SYNCHRO_DIAG_LOOP_STALL);
  /* While the loop was still busy, by the watchdog; under valgrind, which runs one
   * thread at a time, the watchdog may only get the CPU once the busy loop is over, and
   * the loop then reports the stall itself, right after it. */
  if (slow_factor() == 1) {
    ck_assert_double_lt(e1.at_ms, busy_end_ms);
    ck_assert(!pthread_equal(e1.ran_on, e1.thread)); /* by the watchdog thread */
  } else { /* by either: the loop reports a stall the watchdog did not get to */
    ck_assert_double_lt(e1.at_ms, busy_end_ms + 2000.0);
  }
  /* a watchdog stuck in a slow hook: the loop reports the next stall itself, once */
  hook_on();
  slow_hook_ms = 1500;
  ms = 150;
  ck_assert_int_eq(synchro_call(s, &busy_op, &ms, 5000, &out, NULL), 0);
  ck_assert_int_eq(synchro_call(s, &busy_op, &ms, 5000, &out, NULL), 0);
  usleep(100000);
  ck_assert_int_eq(events_of(SYNCHRO_DIAG_LOOP_STALL), 2);
  pthread_mutex_lock(&ev_mutex);
  e1 = events[0];
  e2 = events[1];
  pthread_mutex_unlock(&ev_mutex);
  ck_assert_str_eq(e1.op, "busy");
  ck_assert_str_eq(e2.op, "busy");
  ck_assert(pthread_equal(e2.ran_on, e2.thread)); /* on the loop thread */
  ck_assert_uint_ge(e2.duration_ns, 150000000u);  /* the whole stall, measured at its end */
  synchro_diag_set_hook(NULL, NULL);
  end(s);
}
END_TEST

START_TEST(test_a33_short_work_not_reported) {
  int64_t threshold = 250 * slow_factor();
  synchro_t *s = new_named("diag-w", 0, threshold);
  int64_t ms = 5, out = 0;
  synchro_diag_lag_t lag;
  int i;
  hook_on();
  for (i = 0; i < 60; i++) /* 300 ms back to back, each call under 10 ms */
    ck_assert_int_eq(synchro_call(s, &busy_op, &ms, 5000, &out, NULL), 0);
  usleep(50000);
  ck_assert_int_eq(events_of(SYNCHRO_DIAG_LOOP_STALL), 0);
  ck_assert_int_eq(synchro_diag_lag(s, &lag), 0);
  ck_assert_uint_eq(lag.stalls, 0);
  /* the same watchdog does see a longer one (the check above can fail) */
  ms = 2 * threshold;
  ck_assert_int_eq(synchro_call(s, &busy_op, &ms, 10000 * slow_factor(), &out, NULL), 0);
  usleep(50000);
  ck_assert_int_eq(events_of(SYNCHRO_DIAG_LOOP_STALL), 1);
  synchro_diag_set_hook(NULL, NULL);
  end(s);
}
END_TEST

START_TEST(test_a33_watchdog_sleeps_while_idle) {
  synchro_t *s = new_named("diag-w", 0, 20); /* a 5 ms period if it ticked */
  test_add_args_t add = {1, 1};
  int64_t sum = 0;
  synchro_stats_t st0, st1;
  long sw0, sw1;
  test_sleep_args_t sa = {400, 0};
  ck_assert_int_eq(watchdog_threads(), 0); /* nothing before the first call */
  ck_assert_int_eq(synchro_call(s, &test_op_add, &add, SYNCHRO_TIMEOUT_DEFAULT, &sum, NULL), 0);
  ck_assert_int_eq(watchdog_threads(), 1);
  usleep(50000); /* let it park */
  ck_assert_int_eq(synchro_stats(s, &st0), 0);
  sw0 = watchdog_switches();
  usleep(500000);
  sw1 = watchdog_switches();
  ck_assert_int_eq(synchro_stats(s, &st1), 0);
  ck_assert_int_ge(sw0, 0);
  ck_assert_int_le(sw1 - sw0, 1);              /* parked: no periodic wakeups */
  ck_assert_uint_eq(st1.wakeups, st0.wakeups); /* and it never wakes the loop */
  /* with a call in flight it does tick (so the check above can fail) */
  ck_assert_int_eq(synchro_call(s, &test_op_sleep, &sa, 5000, &sum, NULL), 0);
  ck_assert_int_ge(watchdog_switches() - sw1, 5); /* ~80 at a 5 ms period */
  /* joined at close */
  ck_assert_int_eq(synchro_close(s, 1000), 0);
  ck_assert_int_eq(watchdog_threads(), 0);
  release(s);
}
END_TEST

START_TEST(test_a33_options_and_lag_api) {
  synchro_options_t o;
  synchro_t *s = NULL;
  synchro_diag_lag_t lag;
  synchro_options_init(&o);
  ck_assert_int_eq(o.stall_threshold_ms, 0); /* off by default */
  o.stall_threshold_ms = -1;
  ck_assert_int_eq(synchro_new(&s, &o), SYNCHRO_EINVAL);
  ck_assert_int_eq(synchro_diag_lag(NULL, &lag), SYNCHRO_EINVAL);
  s = new_named("diag-w", 0, 0);
  ck_assert_int_eq(synchro_diag_lag(s, NULL), SYNCHRO_EINVAL);
  memset(&lag, 0xff, sizeof(lag));
  ck_assert_int_eq(synchro_diag_lag(s, &lag), 0);
  ck_assert_int_eq(lag.threshold_ms, 0);
  ck_assert_uint_eq(lag.stalls, 0);
  ck_assert_uint_eq(lag.max_busy_ns, 0);
  end(s);
  /* freed without ever starting, and freed without a close */
  s = new_named("diag-w", 0, 10);
  release(s);
  s = new_named("diag-w", 0, 10);
  ck_assert_int_eq(where(s, NULL), 1 | 4);
  release(s);
  ck_assert_int_eq(watchdog_threads(), 0);
}
END_TEST

static Suite *diag_suite(void) {
  Suite *s = suite_create("diag");
  TCase *tc = tcase_create("host_thread");
  watchdog_tcase(tc, "host_thread", 20);
  tcase_add_test(tc, test_a2_host_thread_blocking_call_reported);
  tcase_add_test(tc, test_a2_explicit_mark_and_fd_host);
  tcase_add_test(tc, test_a2_no_hook_nothing_printed);
  tcase_add_test(tc, test_a2_object_calls_reported);
  suite_add_tcase(s, tc);

  tc = tcase_create("wait_for");
  watchdog_tcase(tc, "wait_for", 20);
  tcase_add_test(tc, test_a36_loop_to_loop_blocking_ok_and_reported);
  tcase_add_test(tc, test_a4_cycle_returns_edeadlk);
  tcase_add_test(tc, test_a4_undetected_cycle_times_out);
  tcase_add_test(tc, test_deadline_held_by_healthy_loop_is_the_loops);
  tcase_add_test(tc, test_a36_is_loop_thread_everywhere);
  suite_add_tcase(s, tc);

  tc = tcase_create("watchdog");
  watchdog_tcase(tc, "watchdog", 20);
  tcase_add_test(tc, test_a33_stall_reported_once);
  tcase_add_test(tc, test_a33_reported_while_stalled_or_right_after);
  tcase_add_test(tc, test_a33_short_work_not_reported);
  tcase_add_test(tc, test_a33_watchdog_sleeps_while_idle);
  tcase_add_test(tc, test_a33_options_and_lag_api);
  suite_add_tcase(s, tc);

  tc = tcase_create("process");
  tcase_set_tags(tc, "fork"); /* memcheck calls the child's inherited memory lost */
  tcase_set_timeout(tc, 30);
#if !defined(__SANITIZE_THREAD__) && !defined(__SANITIZE_ADDRESS__)
  /* starts threads in a child of a multi-threaded parent: see check_synchronizer */
  tcase_add_test(tc, test_a36_is_loop_thread_after_fork);
#else
  (void)test_a36_is_loop_thread_after_fork;
#endif
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(diag_suite());
  int failed;
  srunner_run_all(sr, CK_ENV);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
