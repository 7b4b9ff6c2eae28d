/* tests/check_host.c - hosts: completions delivered as callbacks on the caller's own
 * event loop thread (a libuv loop, epoll level/edge, poll(), GLib, libevent).
 *
 * Every test runs in its own forked child (CK_FORK), so the globals below start fresh
 * in each. Callbacks record what they see into `g_t` (atomics, or plain fields touched
 * only on the host thread); the test thread asserts after joining or after the loop
 * returned. */
#include <check.h>
#include <event2/event.h>
#include <fcntl.h>
#include <glib-unix.h>
#include <glib.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <unistd.h>
#include <uv.h>

#include "support/testops.h"
#include "synchro.h"
#include "testing.h"

/* ---- shared tally ------------------------------------------------------------------ */

typedef struct {
  pthread_t thread;         /* where every callback must run */
  unsigned char *seen;      /* per call index: how many times its callback ran */
  long seen_n;              /* size of `seen` */
  atomic_long delivered;    /* callbacks run */
  atomic_long host_done;    /* callbacks of calls the host thread submitted */
  atomic_long foreign_done; /* callbacks of calls a foreign thread attached */
  atomic_long wrong_thread, wrong_result, dup, in_then_violations, submit_errors;
} tally_t;

static tally_t g_t;

/* The window the host thread keeps in flight (refilled from the callbacks). */
static struct {
  synchro_t *s;
  synchro_host_t *h;
  long n;      /* calls the host thread submits in all */
  long window; /* most in flight at once */
  long next;   /* next index to submit */
  void (*on_all_done)(void *arg);
  void *arg;
} g_run;

static atomic_int g_in_then; /* set around synchro_future_then() on the host thread */

static atomic_long g_calls;
static atomic_int g_reenter_rc = 1, g_nested_rc = 1, g_late_then_rc = 1;
static atomic_long g_nested_sum;

/* Every test starts here: also resets the globals, for CK_FORK=no runs (valgrind). */
static void tally_init(long n) {
  testops_reset();
  g_calls = 0;
  g_in_then = 0;
  g_reenter_rc = g_nested_rc = g_late_then_rc = 1;
  g_nested_sum = 0;
  memset(&g_t, 0, sizeof(g_t));
  g_t.thread = pthread_self();
  g_t.seen = calloc((size_t)n, 1);
  g_t.seen_n = n;
}

static void tally_check(long want) {
  long i;
  ck_assert_int_eq(atomic_load(&g_t.delivered), want);
  ck_assert_int_eq(atomic_load(&g_t.wrong_thread), 0);
  ck_assert_int_eq(atomic_load(&g_t.wrong_result), 0);
  ck_assert_int_eq(atomic_load(&g_t.dup), 0);
  ck_assert_int_eq(atomic_load(&g_t.in_then_violations), 0);
  ck_assert_int_eq(atomic_load(&g_t.submit_errors), 0);
  for (i = 0; i < want && i < g_t.seen_n; i++)
    ck_assert_msg(g_t.seen[i] == 1, "call %ld delivered %d times", i, g_t.seen[i]);
  free(g_t.seen);
  g_t.seen = NULL;
}

static void refill(void);

/* add(i, 1): the callback checks thread, result and exactly-once, then refills. */
static void add_cb(synchro_future_t *f, int status, void *data) {
  long i = (long)(intptr_t)data;
  int64_t sum = -1;
  if (atomic_load(&g_in_then))
    g_t.in_then_violations++;
  if (!pthread_equal(pthread_self(), g_t.thread))
    g_t.wrong_thread++;
  if (status != 0 || synchro_future_result(f, &sum) != 0 || sum != i + 1)
    g_t.wrong_result++;
  if (i < 0 || i >= g_t.seen_n || g_t.seen[i]++ != 0)
    g_t.dup++;
  g_t.delivered++;
  if (i < g_run.n) {
    long done = ++g_t.host_done;
    refill();
    if (done == g_run.n && g_run.on_all_done != NULL)
      g_run.on_all_done(g_run.arg);
  } else {
    g_t.foreign_done++;
  }
}

/* Submits add(i, 1) and attaches add_cb. On failure nothing is left behind. */
static int submit_then(synchro_t *s, synchro_host_t *h, long i) {
  test_add_args_t args = {i, 1};
  synchro_future_t *f;
  int rc = synchro_submit(s, &test_op_add, &args, SYNCHRO_TIMEOUT_DEFAULT, &f);
  if (rc != 0)
    return rc;
  if ((rc = synchro_future_then(f, h, add_cb, (void *)(intptr_t)i)) != 0)
    synchro_future_free(f);
  return rc;
}

static void refill(void) {
  while (g_run.next < g_run.n && g_run.next - atomic_load(&g_t.host_done) < g_run.window) {
    if (submit_then(g_run.s, g_run.h, g_run.next) != 0) {
      g_t.submit_errors++;
      g_run.next = g_run.n;
      return;
    }
    g_run.next++;
  }
}

static void run_init(synchro_t *s, synchro_host_t *h, long n, long window) {
  memset(&g_run, 0, sizeof(g_run));
  g_run.s = s;
  g_run.h = h;
  g_run.n = n;
  g_run.window = window;
}

static synchro_t *sync_new(void) {
  synchro_t *s = NULL;
  ck_assert_int_eq(synchro_new(&s, NULL), 0);
  return s;
}

static void sync_end(synchro_t *s) {
  int rc = synchro_close(s, 2000);
  ck_assert_msg(rc == 0, "synchro_close: %s", synchro_err_name(rc));
  synchro_free(s);
}

/* Waits (test thread) until *v reaches `want`, at most `ms`. Returns 1 if it did. */
static int wait_for(atomic_long *v, long want, double ms) {
  double end = test_now_ms() + ms;
  while (atomic_load(v) < want) {
    if (test_now_ms() > end)
      return 0;
    uv_sleep(1);
  }
  return 1;
}

static int fd_readable(int fd, int timeout_ms) {
  struct pollfd p = {.fd = fd, .events = POLLIN};
  int rc = poll(&p, 1, timeout_ms);
  return rc > 0 && (p.revents & POLLIN) ? 1 : rc;
}

static double cpu_ms(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
         (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
}

/* Closes every handle left and checks the loop closes cleanly (MAKE_VALGRIND_HAPPY). */
static void walk_close(uv_handle_t *hd, void *arg) {
  (void)arg;
  if (!uv_is_closing(hd))
    uv_close(hd, NULL);
}
static int loop_finish(uv_loop_t *loop) {
  uv_run(loop, UV_RUN_DEFAULT);
  uv_walk(loop, walk_close, NULL);
  uv_run(loop, UV_RUN_DEFAULT);
  return uv_loop_close(loop);
}

/* ---- a real libuv host loop on its own thread ---------------------------------------- */

typedef struct {
  synchro_t *s;
  long n, foreign_n;
  uv_loop_t loop;
  uv_async_t done; /* keeps the loop alive until the foreign thread has seen its calls */
  _Atomic(synchro_host_t *) host;
  atomic_int errors;
  int run_rc, close_rc;
  atomic_int foreign_then_errors, foreign_timed_out;
} uv_host_run_t;

static void on_done_async(uv_async_t *a) { uv_close((uv_handle_t *)a, NULL); }

static void *uv_host_thread(void *arg) {
  uv_host_run_t *u = arg;
  synchro_host_t *h;
  g_t.thread = pthread_self();
  if (uv_loop_init(&u->loop) != 0 || synchro_host_new_uv(&h, &u->loop) != 0 ||
      uv_async_init(&u->loop, &u->done, on_done_async) != 0) {
    u->errors++;
    return NULL;
  }
  run_init(u->s, h, u->n, 1000);
  refill();
  atomic_store(&u->host, h);
  u->run_rc = uv_run(&u->loop, UV_RUN_DEFAULT);
  synchro_host_free(h);
  uv_run(&u->loop, UV_RUN_DEFAULT); /* lets libuv finish closing the host's handle */
  u->close_rc = uv_loop_close(&u->loop);
  return NULL;
}

static void *foreign_thread(void *arg) {
  uv_host_run_t *u = arg;
  synchro_host_t *h;
  long i;
  while ((h = atomic_load(&u->host)) == NULL)
    uv_sleep(1);
  for (i = 0; i < u->foreign_n; i++)
    if (submit_then(u->s, h, u->n + i) != 0)
      u->foreign_then_errors++;
  /* The host must not be freed before our calls were delivered: wait for them, then
   * let the host loop end. */
  if (!wait_for(&g_t.foreign_done, u->foreign_n - u->foreign_then_errors, 30000))
    u->foreign_timed_out = 1;
  uv_async_send(&u->done);
  return NULL;
}

START_TEST(test_a19_uv_host_on_own_thread) {
  uv_host_run_t u;
  pthread_t host_thr, foreign_thr;
  memset(&u, 0, sizeof(u));
  u.s = sync_new();
  u.n = test_scaled(100000);
  u.foreign_n = test_scaled(10000);
  tally_init(u.n + u.foreign_n);
  ck_assert_int_eq(pthread_create(&host_thr, NULL, uv_host_thread, &u), 0);
  ck_assert_int_eq(pthread_create(&foreign_thr, NULL, foreign_thread, &u), 0);
  ck_assert_int_eq(pthread_join(foreign_thr, NULL), 0);
  ck_assert_int_eq(pthread_join(host_thr, NULL), 0);
  ck_assert_int_eq(u.errors, 0);
  ck_assert_int_eq(u.foreign_then_errors, 0);
  ck_assert_int_eq(u.foreign_timed_out, 0);
  ck_assert_int_eq(u.close_rc, 0);
  ck_assert_int_eq(atomic_load(&g_t.host_done), u.n);
  ck_assert_int_eq(atomic_load(&g_t.foreign_done), u.foreign_n);
  ck_assert(!pthread_equal(g_t.thread, pthread_self())); /* the host thread, not ours */
  tally_check(u.n + u.foreign_n);
  sync_end(u.s);
}
END_TEST

/* ---- fd hosts: epoll level-triggered, epoll edge-triggered, poll() ------------------- */

enum { MODE_EPOLL_LT, MODE_EPOLL_ET, MODE_POLL, N_MODES };
static const char *const mode_names[N_MODES] = {"epoll LT", "epoll ET", "poll"};

typedef struct {
  int mode, fd, ep;
} waiter_t;

static void waiter_init(waiter_t *w, int mode, int fd) {
  w->mode = mode;
  w->fd = fd;
  w->ep = -1;
  if (mode != MODE_POLL) {
    struct epoll_event ev = {.events = EPOLLIN | (mode == MODE_EPOLL_ET ? EPOLLET : 0u),
                             .data.fd = fd};
    w->ep = epoll_create1(EPOLL_CLOEXEC);
    ck_assert_int_ge(w->ep, 0);
    ck_assert_int_eq(epoll_ctl(w->ep, EPOLL_CTL_ADD, fd, &ev), 0);
  }
}

/* 1: readable; 0: timed out. */
static int waiter_wait(waiter_t *w, int timeout_ms) {
  int rc;
  if (w->mode == MODE_POLL) {
    rc = fd_readable(w->fd, timeout_ms);
  } else {
    struct epoll_event ev;
    rc = epoll_wait(w->ep, &ev, 1, timeout_ms);
    if (rc == 1)
      ck_assert(ev.events & EPOLLIN);
  }
  ck_assert_int_ge(rc, 0);
  return rc;
}

static void waiter_free(waiter_t *w) {
  if (w->ep >= 0)
    close(w->ep);
}

/* 1,000,000 completions, dispatched at most 64 per wakeup: with EPOLLET, leftovers are
 * only ever dispatched if the host makes a new edge. Exactly one dispatch per wakeup. */
START_TEST(test_a18_fd_host_throughput) {
  const int mode = _i;
  const long n = test_scaled(1000000);
  synchro_t *s = sync_new();
  synchro_host_t *h = NULL;
  waiter_t w;
  long wakeups = 0, empty = 0, full = 0, idle_wakes = 0;
  double t0, c0, idle_ms, idle_cpu;
  ck_assert_int_eq(synchro_host_new_fd(&h), 0);
  waiter_init(&w, mode, synchro_host_fd(h));
  tally_init(n);
  run_init(s, h, n, 4096);
  while (atomic_load(&g_t.delivered) < n) {
    int ran;
    refill();
    ck_assert_int_eq(atomic_load(&g_t.submit_errors), 0);
    ck_assert_msg(waiter_wait(&w, 10000) == 1, "%s: no wakeup with %ld of %ld delivered",
                  mode_names[mode], (long)atomic_load(&g_t.delivered), n);
    wakeups++;
    ran = synchro_host_dispatch(h, 64);
    ck_assert_int_ge(ran, 0);
    ck_assert_int_le(ran, 64);
    empty += ran == 0;
    full += ran == 64;
  }
  tally_check(n);
  /* Idle: no busy loop. A wake-up write may land just after dispatch already took its
   * record; then the fd is readable once more with nothing to run (dispatch clears it). */
  t0 = test_now_ms();
  c0 = cpu_ms();
  while ((idle_ms = test_now_ms() - t0) < 300) {
    if (waiter_wait(&w, (int)(300 - idle_ms) + 1) == 1) {
      idle_wakes++;
      ck_assert_int_eq(synchro_host_dispatch(h, 0), 0);
    }
  }
  idle_cpu = cpu_ms() - c0;
  ck_assert_int_le(idle_wakes, 1);
  ck_assert_msg(idle_ms >= 299, "idle %.1f ms", idle_ms);
  ck_assert_msg(idle_cpu >= 0 && idle_cpu < 100, "%s: %.1f ms CPU in %.1f ms idle",
                mode_names[mode], idle_cpu, idle_ms);
  ck_assert_int_eq(fd_readable(synchro_host_fd(h), 50), 0); /* drained: not readable */
  fprintf(stderr, "%s: %ld completions, %ld wakeups (%ld empty, %ld with leftovers)\n",
          mode_names[mode], n, wakeups, empty, full);
  waiter_free(&w);
  synchro_host_free(h);
  sync_end(s);
}
END_TEST

/* Completions that happened before the program first polls the fd (even before it
 * registered it with epoll) are delivered. */
START_TEST(test_a18_completions_before_first_poll) {
  const int mode = _i;
  const long k = 100;
  synchro_t *s = sync_new();
  synchro_host_t *h = NULL;
  synchro_future_t *fs[100];
  waiter_t w;
  long i, ran = 0;
  ck_assert_int_eq(synchro_host_new_fd(&h), 0);
  tally_init(2 * k);
  run_init(s, h, 2 * k, 2 * k);
  /* half resolved before they are attached, half attached while pending */
  for (i = 0; i < k; i++) {
    test_add_args_t args = {i, 1};
    ck_assert_int_eq(synchro_submit(s, &test_op_add, &args, SYNCHRO_TIMEOUT_DEFAULT, &fs[i]), 0);
  }
  ck_assert_int_eq(synchro_future_wait_all(fs, (size_t)k, 5000), 0);
  for (i = 0; i < k; i++)
    ck_assert_int_eq(synchro_future_then(fs[i], h, add_cb, (void *)(intptr_t)i), 0);
  for (i = k; i < 2 * k; i++)
    ck_assert_int_eq(submit_then(s, h, i), 0);
  g_run.next = 2 * k;
  uv_sleep(100); /* all resolved by now, nobody polled */
  ck_assert_int_eq(atomic_load(&g_t.delivered), 0);
  waiter_init(&w, mode, synchro_host_fd(h));
  while (ran < 2 * k) {
    int r;
    ck_assert_msg(waiter_wait(&w, 5000) == 1, "%s: %ld of %ld", mode_names[mode], ran, 2 * k);
    r = synchro_host_dispatch(h, 64);
    ck_assert_int_ge(r, 0);
    ran += r;
  }
  ck_assert_int_eq(ran, 2 * k);
  tally_check(2 * k);
  ck_assert_int_eq(fd_readable(synchro_host_fd(h), 50), 0);
  waiter_free(&w);
  synchro_host_free(h);
  sync_end(s);
}
END_TEST

START_TEST(test_fd_host_fd_flags) {
  synchro_host_t *h = NULL, *hu = NULL;
  uv_loop_t loop;
  int fd, fl;
  ck_assert_int_eq(synchro_host_new_fd(&h), 0);
  fd = synchro_host_fd(h);
  ck_assert_int_ge(fd, 0);
  ck_assert_int_eq(synchro_host_fd(h), fd); /* stable */
  fl = fcntl(fd, F_GETFL);
  ck_assert_int_ne(fl, -1);
  ck_assert(fl & O_NONBLOCK);
  fl = fcntl(fd, F_GETFD);
  ck_assert_int_ne(fl, -1);
  ck_assert(fl & FD_CLOEXEC);
  ck_assert_int_eq(fd_readable(fd, 0), 0); /* nothing pending */
  ck_assert_int_eq(synchro_host_dispatch(h, 0), 0);
  synchro_host_free(h);
  ck_assert_int_eq(fcntl(fd, F_GETFD), -1); /* closed by the host */
  /* a libuv host has no fd of its own for the caller */
  ck_assert_int_eq(uv_loop_init(&loop), 0);
  ck_assert_int_eq(synchro_host_new_uv(&hu, &loop), 0);
  ck_assert_int_eq(synchro_host_fd(hu), -1);
  synchro_host_free(hu);
  ck_assert_int_eq(loop_finish(&loop), 0);
}
END_TEST

/* ---- GLib and libevent ------------------------------------------------------------- */

typedef struct {
  synchro_t *s;
  long n;
  int errors, close_rc;
  GMainLoop *ml;
  struct event_base *base;
} foreign_loop_t;

static gboolean on_glib_fd(gint fd, GIOCondition cond, gpointer data) {
  (void)fd;
  (void)cond;
  synchro_host_dispatch(data, 0);
  return G_SOURCE_CONTINUE;
}

static void glib_quit(void *arg) { g_main_loop_quit(((foreign_loop_t *)arg)->ml); }

static void *glib_thread(void *arg) {
  foreign_loop_t *fl = arg;
  synchro_host_t *h;
  guint id;
  g_t.thread = pthread_self();
  if (synchro_host_new_fd(&h) != 0) {
    fl->errors++;
    return NULL;
  }
  fl->ml = g_main_loop_new(NULL, FALSE); /* the default context, owned by this thread */
  id = g_unix_fd_add(synchro_host_fd(h), G_IO_IN, on_glib_fd, h);
  run_init(fl->s, h, fl->n, 500);
  g_run.on_all_done = glib_quit;
  g_run.arg = fl;
  refill();
  g_main_loop_run(fl->ml);
  g_source_remove(id);
  synchro_host_free(h);
  g_main_loop_unref(fl->ml);
  return NULL;
}

START_TEST(test_a19_glib_main_loop) {
  foreign_loop_t fl = {.n = test_scaled(10000)};
  pthread_t thr;
  fl.s = sync_new();
  tally_init(fl.n);
  ck_assert_int_eq(pthread_create(&thr, NULL, glib_thread, &fl), 0);
  ck_assert_int_eq(pthread_join(thr, NULL), 0);
  ck_assert_int_eq(fl.errors, 0);
  ck_assert(!pthread_equal(g_t.thread, pthread_self()));
  tally_check(fl.n);
  sync_end(fl.s);
}
END_TEST

static void on_event_fd(evutil_socket_t fd, short what, void *data) {
  (void)fd;
  (void)what;
  synchro_host_dispatch(data, 0);
}

static void event_quit(void *arg) { event_base_loopbreak(((foreign_loop_t *)arg)->base); }

static void *libevent_thread(void *arg) {
  foreign_loop_t *fl = arg;
  synchro_host_t *h;
  struct event *ev;
  g_t.thread = pthread_self();
  if (synchro_host_new_fd(&h) != 0 || (fl->base = event_base_new()) == NULL) {
    fl->errors++;
    return NULL;
  }
  ev = event_new(fl->base, synchro_host_fd(h), EV_READ | EV_PERSIST, on_event_fd, h);
  if (ev == NULL || event_add(ev, NULL) != 0) {
    fl->errors++;
    return NULL;
  }
  run_init(fl->s, h, fl->n, 500);
  g_run.on_all_done = event_quit;
  g_run.arg = fl;
  refill();
  if (event_base_dispatch(fl->base) < 0)
    fl->errors++;
  event_free(ev);
  synchro_host_free(h);
  event_base_free(fl->base);
  return NULL;
}

START_TEST(test_a19_libevent) {
  foreign_loop_t fl = {.n = test_scaled(10000)};
  pthread_t thr;
  fl.s = sync_new();
  tally_init(fl.n);
  ck_assert_int_eq(pthread_create(&thr, NULL, libevent_thread, &fl), 0);
  ck_assert_int_eq(pthread_join(thr, NULL), 0);
  ck_assert_int_eq(fl.errors, 0);
  ck_assert(!pthread_equal(g_t.thread, pthread_self()));
  tally_check(fl.n);
  sync_end(fl.s);
}
END_TEST

/* ---- A20: no Zalgo ------------------------------------------------------------------- */

static void count_cb(synchro_future_t *f, int status, void *data) {
  (void)f;
  (void)status;
  (void)data;
  if (atomic_load(&g_in_then))
    g_t.in_then_violations++;
  if (!pthread_equal(pthread_self(), g_t.thread))
    g_t.wrong_thread++;
  g_calls++;
}

static int then_marked(synchro_future_t *f, synchro_host_t *h, synchro_host_cb cb, void *d) {
  int rc;
  atomic_store(&g_in_then, 1);
  rc = synchro_future_then(f, h, cb, d);
  atomic_store(&g_in_then, 0);
  return rc;
}

/* A callback that dispatches its own host: nothing re-enters. */
static void reenter_cb(synchro_future_t *f, int status, void *data) {
  count_cb(f, status, NULL);
  g_reenter_rc = synchro_host_dispatch(data, 0);
}

START_TEST(test_a20_then_never_runs_inline) {
  synchro_t *s = sync_new();
  synchro_host_t *h = NULL, *hf = NULL;
  synchro_future_t *f;
  uv_loop_t loop;
  test_add_args_t args = {1, 2};
  tally_init(1);
  ck_assert_int_eq(uv_loop_init(&loop), 0);
  ck_assert_int_eq(synchro_host_new_uv(&h, &loop), 0);
  ck_assert_int_eq(synchro_host_new_fd(&hf), 0);
  /* already resolved, libuv host */
  ck_assert_int_eq(synchro_submit(s, &test_op_add, &args, SYNCHRO_TIMEOUT_DEFAULT, &f), 0);
  ck_assert_int_eq(synchro_future_wait(f, 5000), 0);
  ck_assert_int_eq(then_marked(f, h, count_cb, NULL), 0);
  ck_assert_int_eq(g_calls, 0);
  /* already resolved, fd host */
  ck_assert_int_eq(synchro_submit(s, &test_op_add, &args, SYNCHRO_TIMEOUT_DEFAULT, &f), 0);
  ck_assert_int_eq(synchro_future_wait(f, 5000), 0);
  ck_assert_int_eq(then_marked(f, hf, count_cb, NULL), 0);
  ck_assert_int_eq(g_calls, 0);
  ck_assert_int_eq(fd_readable(synchro_host_fd(hf), 1000), 1);
  ck_assert_int_eq(synchro_host_dispatch(hf, 0), 1);
  ck_assert_int_eq(g_calls, 1);
  /* a callback dispatching its own host while another completion waits: returns 0,
   * the other runs later in the same outer dispatch, not nested */
  ck_assert_int_eq(synchro_submit(s, &test_op_add, &args, SYNCHRO_TIMEOUT_DEFAULT, &f), 0);
  ck_assert_int_eq(synchro_future_wait(f, 5000), 0);
  ck_assert_int_eq(then_marked(f, hf, reenter_cb, hf), 0);
  ck_assert_int_eq(synchro_submit(s, &test_op_add, &args, SYNCHRO_TIMEOUT_DEFAULT, &f), 0);
  ck_assert_int_eq(synchro_future_wait(f, 5000), 0);
  ck_assert_int_eq(then_marked(f, hf, count_cb, NULL), 0);
  /* (resolved for a waiter is not yet notified to the host: the second may come in a
   * later dispatch) */
  while (g_calls < 3) {
    ck_assert_int_eq(fd_readable(synchro_host_fd(hf), 5000), 1);
    ck_assert_int_ge(synchro_host_dispatch(hf, 0), 0);
  }
  ck_assert_int_eq(g_reenter_rc, 0);
  ck_assert_int_eq(g_calls, 3);
  /* pending, libuv host */
  ck_assert_int_eq(synchro_submit(s, &test_op_add, &args, SYNCHRO_TIMEOUT_DEFAULT, &f), 0);
  ck_assert_int_eq(then_marked(f, h, count_cb, NULL), 0);
  ck_assert_int_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
  ck_assert_int_eq(g_calls, 5);
  ck_assert_int_eq(g_t.in_then_violations, 0);
  ck_assert_int_eq(g_t.wrong_thread, 0);
  synchro_host_free(hf);
  synchro_host_free(h);
  ck_assert_int_eq(loop_finish(&loop), 0);
  free(g_t.seen);
  sync_end(s);
}
END_TEST

/* Each callback submits the next call; every other one is already resolved when it is
 * attached (the case that recurses in a Zalgo design). The stack must not grow. */
static struct {
  synchro_t *s;
  synchro_host_t *h;
  long n, steps;
  uintptr_t lo, hi;
  atomic_long errors;
} g_chain;

static void chain_cb(synchro_future_t *f, int status, void *data) {
  uintptr_t sp = (uintptr_t)__builtin_frame_address(0);
  long step = (long)(intptr_t)data;
  int64_t sum = -1;
  synchro_future_t *next;
  test_add_args_t args = {step, 1};
  if (atomic_load(&g_in_then))
    g_t.in_then_violations++;
  if (status != 0 || synchro_future_result(f, &sum) != 0 || sum != step)
    g_chain.errors++;
  if (g_chain.lo == 0 || sp < g_chain.lo)
    g_chain.lo = sp;
  if (sp > g_chain.hi)
    g_chain.hi = sp;
  g_chain.steps++;
  if (step >= g_chain.n)
    return;
  args.a = step;
  if (synchro_submit(g_chain.s, &test_op_add, &args, SYNCHRO_TIMEOUT_DEFAULT, &next) != 0) {
    g_chain.errors++;
    return;
  }
  if (step % 2 == 0 && synchro_future_wait(next, 5000) != 0)
    g_chain.errors++;
  if (then_marked(next, g_chain.h, chain_cb, (void *)(intptr_t)(step + 1)) != 0) {
    synchro_future_free(next);
    g_chain.errors++;
  }
}

START_TEST(test_a20_chained_callbacks_constant_stack) {
  uv_loop_t loop;
  synchro_future_t *f;
  test_add_args_t args = {0, 1};
  tally_init(1);
  memset(&g_chain, 0, sizeof(g_chain));
  g_chain.s = sync_new();
  g_chain.n = test_scaled(100000);
  ck_assert_int_eq(uv_loop_init(&loop), 0);
  ck_assert_int_eq(synchro_host_new_uv(&g_chain.h, &loop), 0);
  ck_assert_int_eq(synchro_submit(g_chain.s, &test_op_add, &args, SYNCHRO_TIMEOUT_DEFAULT, &f), 0);
  ck_assert_int_eq(synchro_future_then(f, g_chain.h, chain_cb, (void *)(intptr_t)1), 0);
  ck_assert_int_eq(uv_run(&loop, UV_RUN_DEFAULT), 0); /* returns when the chain ends */
  ck_assert_int_eq(g_chain.steps, g_chain.n);
  ck_assert_int_eq(g_chain.errors, 0);
  ck_assert_int_eq(g_t.in_then_violations, 0);
  ck_assert_msg(g_chain.hi - g_chain.lo < 4096, "stack moved %lu bytes over %ld callbacks",
                (unsigned long)(g_chain.hi - g_chain.lo), g_chain.n);
  synchro_host_free(g_chain.h);
  ck_assert_int_eq(loop_finish(&loop), 0);
  free(g_t.seen);
  sync_end(g_chain.s);
}
END_TEST

/* ---- A19: freeing a host (detach) ------------------------------------------------------ */

static void upper_cb(synchro_future_t *f, int status, void *data) {
  char *out = NULL;
  long i = (long)(intptr_t)data;
  if (!pthread_equal(pthread_self(), g_t.thread))
    g_t.wrong_thread++;
  if (status != 0)
    g_t.wrong_result++;
  /* even calls move the result out and own it; odd ones leave it to the host */
  if (i % 2 == 0) {
    if (synchro_future_result(f, &out) != 0 || out == NULL || strcmp(out, "HOST") != 0)
      g_t.wrong_result++;
    free(out);
    if (synchro_future_result(f, &out) != SYNCHRO_EALREADY)
      g_t.wrong_result++;
  }
  g_calls++;
}

static synchro_future_t *submit_upper(synchro_t *s) {
  char text[] = "host";
  test_string_args_t args = {text};
  synchro_future_t *f = NULL;
  ck_assert_int_eq(synchro_submit(s, &test_op_upper, &args, SYNCHRO_TIMEOUT_DEFAULT, &f), 0);
  return f;
}

/* Free with 10,000 sleeps pending and some resolved but not dispatched: no callback
 * ever, every sleep's cancel hook runs, the loop closes cleanly, nothing leaks. */
START_TEST(test_a19_free_with_pending_cancels) {
  const long n = test_scaled(10000), k = 64;
  synchro_t *s = sync_new();
  synchro_host_t *h = NULL;
  synchro_future_t *done[64];
  synchro_stats_t st;
  uv_loop_t loop;
  test_sleep_args_t sa = {60000, 0};
  long i;
  tally_init(1);
  ck_assert_int_eq(uv_loop_init(&loop), 0);
  ck_assert_int_eq(synchro_host_new_uv(&h, &loop), 0);
  for (i = 0; i < n; i++) {
    synchro_future_t *f;
    ck_assert_int_eq(synchro_submit(s, &test_op_sleep, &sa, SYNCHRO_TIMEOUT_INFINITE, &f), 0);
    ck_assert_int_eq(synchro_future_then(f, h, count_cb, NULL), 0);
  }
  for (i = 0; i < k; i++)
    done[i] = submit_upper(s);
  ck_assert_int_eq(synchro_future_wait_all(done, (size_t)k, 5000), 0);
  for (i = 0; i < k; i++)
    ck_assert_int_eq(synchro_future_then(done[i], h, upper_cb, (void *)(intptr_t)i), 0);
  ck_assert(wait_for(&test_sleeps_started, n, 20000));
  synchro_host_free(h);
  ck_assert_int_eq(uv_run(&loop, UV_RUN_DEFAULT), 0); /* finishes closing the handle */
  ck_assert_int_eq(uv_loop_close(&loop), 0);
  ck_assert(wait_for(&test_hooks_run, n, 20000));
  ck_assert(synchro_stats(s, &st) == 0);
  for (i = 0; i < 2000 && st.in_flight != 0; i++) {
    uv_sleep(5);
    ck_assert(synchro_stats(s, &st) == 0);
  }
  ck_assert_int_eq(st.in_flight, 0);
  ck_assert_int_eq(st.cancelled, n);
  uv_sleep(20);
  ck_assert_int_eq(g_calls, 0); /* never, even after the calls resolved */
  sync_end(s);
  ck_assert_int_eq(test_hooks_run, n);
  ck_assert_int_eq(test_cleanups_done, n);
  ck_assert_int_eq(test_results_made, k);
  ck_assert_int_eq(test_results_freed, k); /* undispatched results released */
  ck_assert_int_eq(test_args_freed, k);
  free(g_t.seen);
}
END_TEST

/* A10 with host delivery: the synchronizer closes while 1,000 aio calls wait on a
 * host loop that is not running. Each callback still comes, once, on the host
 * thread, with SYNCHRO_ESHUTDOWN; the host loop then ends on its own. */
static long g_shutdown_seen, g_other_status;
static void shutdown_cb(synchro_future_t *f, int status, void *data) {
  (void)f;
  (void)data;
  if (!pthread_equal(pthread_self(), g_t.thread))
    g_t.wrong_thread++;
  if (status == SYNCHRO_ESHUTDOWN)
    g_shutdown_seen++;
  else
    g_other_status++;
  g_calls++;
}

START_TEST(test_a10_close_with_aio_calls_pending) {
  const long n = 1000;
  synchro_t *s = sync_new();
  synchro_host_t *h = NULL;
  synchro_stats_t st;
  uv_loop_t loop;
  test_sleep_args_t sa = {60000, 0};
  double t0;
  long i;
  tally_init(1);
  g_shutdown_seen = g_other_status = 0;
  ck_assert_int_eq(uv_loop_init(&loop), 0);
  ck_assert_int_eq(synchro_host_new_uv(&h, &loop), 0);
  for (i = 0; i < n; i++) {
    synchro_future_t *f;
    ck_assert_int_eq(synchro_submit(s, &test_op_sleep, &sa, SYNCHRO_TIMEOUT_INFINITE, &f), 0);
    ck_assert_int_eq(synchro_future_then(f, h, shutdown_cb, NULL), 0);
  }
  ck_assert(wait_for(&test_sleeps_started, n, 20000));
  t0 = test_now_ms();
  ck_assert_int_eq(synchro_close(s, 50), 0);
  ck_assert_double_ge(test_now_ms() - t0, 49);
  ck_assert_int_eq(g_calls, 0);                       /* nothing runs before the host loop does */
  ck_assert_int_eq(uv_run(&loop, UV_RUN_DEFAULT), 0); /* ends: no call is left pending */
  ck_assert_int_eq(g_calls, n);
  ck_assert_int_eq(g_shutdown_seen, n);
  ck_assert_int_eq(g_other_status, 0);
  ck_assert_int_eq(g_t.wrong_thread, 0);
  ck_assert_int_eq(test_hooks_run, n);
  ck_assert_int_eq(synchro_stats(s, &st), 0);
  ck_assert_int_eq(st.in_flight, 0);
  synchro_host_free(h);
  ck_assert_int_eq(loop_finish(&loop), 0);
  synchro_free(s);
  free(g_t.seen);
}
END_TEST

/* A callback frees its host: the rest of that batch never runs. */
static synchro_host_t *g_free_me;
static void free_host_cb(synchro_future_t *f, int status, void *data) {
  (void)f;
  (void)status;
  (void)data;
  g_calls++;
  synchro_host_free(g_free_me);
  synchro_host_free(g_free_me); /* a second free from the same callback is harmless */
}

START_TEST(test_a19_free_inside_callback) {
  const long k = 100;
  const int use_uv = _i;
  synchro_t *s = sync_new();
  synchro_future_t *fs[100];
  uv_loop_t loop;
  long i;
  tally_init(1);
  if (use_uv) {
    ck_assert_int_eq(uv_loop_init(&loop), 0);
    ck_assert_int_eq(synchro_host_new_uv(&g_free_me, &loop), 0);
  } else {
    ck_assert_int_eq(synchro_host_new_fd(&g_free_me), 0);
  }
  for (i = 0; i < k; i++)
    fs[i] = submit_upper(s);
  ck_assert_int_eq(synchro_future_wait_all(fs, (size_t)k, 5000), 0);
  for (i = 0; i < k; i++)
    ck_assert_int_eq(synchro_future_then(fs[i], g_free_me, free_host_cb, NULL), 0);
  /* and some still pending, to be cancelled by the free */
  for (i = 0; i < 10; i++) {
    synchro_future_t *f;
    test_sleep_args_t sa = {60000, 0};
    ck_assert_int_eq(synchro_submit(s, &test_op_sleep, &sa, SYNCHRO_TIMEOUT_INFINITE, &f), 0);
    ck_assert_int_eq(synchro_future_then(f, g_free_me, count_cb, NULL), 0);
  }
  /* a call cancelled before its implementation started has no hook to run */
  ck_assert(wait_for(&test_sleeps_started, 10, 10000));
  if (use_uv) {
    ck_assert_int_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
  } else {
    ck_assert_int_eq(fd_readable(synchro_host_fd(g_free_me), 5000), 1);
    ck_assert_int_eq(synchro_host_dispatch(g_free_me, 0), 1);
  }
  ck_assert_int_eq(g_calls, 1);
  ck_assert(wait_for(&test_hooks_run, 10, 10000));
  uv_sleep(20);
  ck_assert_int_eq(g_calls, 1);
  sync_end(s);
  ck_assert_int_eq(test_results_made, k);
  ck_assert_int_eq(test_results_freed, k);
  free(g_t.seen);
}
END_TEST

/* A callback frees its host, then attaches another call to it: the host is being
 * freed, so the attach must fail with SYNCHRO_ECLOSED (host.h) and leave the future to
 * the caller, instead of succeeding for a callback that can never run. */
static synchro_future_t *g_late;
static void free_then_attach_cb(synchro_future_t *f, int status, void *data) {
  (void)f;
  (void)status;
  (void)data;
  g_calls++;
  synchro_host_free(g_free_me);
  g_late_then_rc = synchro_future_then(g_late, g_free_me, count_cb, NULL);
  if (g_late_then_rc == 0)
    g_late = NULL; /* the host took it */
}

START_TEST(test_a19_then_after_free_inside_callback_eclosed) {
  synchro_t *s = sync_new();
  synchro_future_t *f;
  test_add_args_t args = {1, 1};
  tally_init(1);
  ck_assert_int_eq(synchro_host_new_fd(&g_free_me), 0);
  ck_assert_int_eq(synchro_submit(s, &test_op_add, &args, SYNCHRO_TIMEOUT_DEFAULT, &g_late), 0);
  ck_assert_int_eq(synchro_submit(s, &test_op_add, &args, SYNCHRO_TIMEOUT_DEFAULT, &f), 0);
  ck_assert_int_eq(synchro_future_then(f, g_free_me, free_then_attach_cb, NULL), 0);
  ck_assert_int_eq(fd_readable(synchro_host_fd(g_free_me), 5000), 1);
  ck_assert_int_eq(synchro_host_dispatch(g_free_me, 0), 1);
  uv_sleep(20);
  ck_assert_int_eq(g_calls, 1);
  if (g_late != NULL) {
    ck_assert_int_eq(synchro_future_wait(g_late, 5000), 0); /* still the caller's */
    synchro_future_free(g_late);
  }
  sync_end(s);
  free(g_t.seen);
  ck_assert_msg(g_late_then_rc == SYNCHRO_ECLOSED,
                "then() after synchro_host_free() in a callback returned %s",
                synchro_err_name(g_late_then_rc));
}
END_TEST

/* The owner frees its host right after the last callback ran, while the loop thread
 * may still be finishing the notification of that very call (its eventfd write comes
 * after the record is published). The host and its fd must outlive that write: else
 * the loop thread reads freed memory (ASan/TSan report it) and writes 8 bytes into a
 * closed fd, or into whatever reuses the number, e.g. the next host's eventfd, which
 * then reads as readable with nothing pending. */
START_TEST(test_a19_free_right_after_delivery) {
  const long n = test_scaled(20000);
  synchro_t *s = sync_new();
  test_add_args_t args = {1, 1};
  long i, stray = 0;
  tally_init(1);
  for (i = 0; i < n; i++) {
    synchro_host_t *h = NULL;
    synchro_future_t *f;
    long want = g_calls + 1;
    ck_assert_int_eq(synchro_host_new_fd(&h), 0);
    stray += fd_readable(synchro_host_fd(h), 0) == 1;
    ck_assert_int_eq(synchro_submit(s, &test_op_add, &args, SYNCHRO_TIMEOUT_DEFAULT, &f), 0);
    ck_assert_int_eq(synchro_future_then(f, h, count_cb, NULL), 0);
    while (g_calls < want) /* take the record the moment it is published */
      ck_assert_int_ge(synchro_host_dispatch(h, 0), 0);
    synchro_host_free(h);
  }
  ck_assert_int_eq(g_calls, n);
  ck_assert_msg(stray == 0,
                "%ld new hosts were readable before any call: a freed "
                "host's late eventfd write landed on a reused fd",
                stray);
  free(g_t.seen);
  sync_end(s);
}
END_TEST

/* A callback may move its result out (and then owns it); the future itself is the
 * host's: freed right after the callback returns. Results left in it are released. */
START_TEST(test_a19_callback_moves_result) {
  const long k = test_scaled(1000);
  synchro_t *s = sync_new();
  synchro_host_t *h = NULL;
  long i;
  tally_init(1);
  ck_assert_int_eq(synchro_host_new_fd(&h), 0);
  for (i = 0; i < k; i++)
    ck_assert_int_eq(synchro_future_then(submit_upper(s), h, upper_cb, (void *)(intptr_t)i), 0);
  while (g_calls < k) {
    ck_assert_int_eq(fd_readable(synchro_host_fd(h), 5000), 1);
    ck_assert_int_ge(synchro_host_dispatch(h, 0), 0);
  }
  ck_assert_int_eq(g_calls, k);
  ck_assert_int_eq(g_t.wrong_result, 0);
  ck_assert_int_eq(g_t.wrong_thread, 0);
  synchro_host_free(h);
  sync_end(s);
  ck_assert_int_eq(test_results_made, k);
  ck_assert_int_eq(test_results_freed, k - (k + 1) / 2); /* only the ones left behind */
  ck_assert_int_eq(test_args_freed, k);
  free(g_t.seen);
}
END_TEST

/* ---- the libuv handle and the loop's lifetime ---------------------------------------- */

START_TEST(test_uv_host_ref_only_while_pending) {
  synchro_t *s = sync_new();
  synchro_host_t *h = NULL;
  synchro_future_t *f;
  uv_loop_t loop;
  test_sleep_args_t sa = {100, 0};
  double t0, took;
  tally_init(1);
  ck_assert_int_eq(uv_loop_init(&loop), 0);
  ck_assert_int_eq(synchro_host_new_uv(&h, &loop), 0);
  /* nothing pending: the handle does not keep the loop alive */
  t0 = test_now_ms();
  ck_assert_int_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
  ck_assert_msg(test_now_ms() - t0 < 1000, "uv_run idled %.1f ms", test_now_ms() - t0);
  ck_assert_int_eq(uv_loop_alive(&loop), 0);
  /* a call pending: uv_run returns only after its callback ran */
  ck_assert_int_eq(synchro_submit(s, &test_op_sleep, &sa, SYNCHRO_TIMEOUT_DEFAULT, &f), 0);
  ck_assert_int_eq(synchro_future_then(f, h, count_cb, NULL), 0);
  ck_assert_int_ne(uv_loop_alive(&loop), 0);
  t0 = test_now_ms();
  ck_assert_int_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
  took = test_now_ms() - t0;
  ck_assert_int_eq(g_calls, 1);
  ck_assert_msg(took >= 80, "uv_run returned after %.1f ms, before the 100 ms call", took);
  /* and let go again afterwards */
  ck_assert_int_eq(uv_loop_alive(&loop), 0);
  t0 = test_now_ms();
  ck_assert_int_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
  ck_assert(test_now_ms() - t0 < 1000);
  /* several calls: alive until the last one */
  for (int i = 0; i < 3; i++) {
    sa.ms = 20 + 30 * i;
    ck_assert_int_eq(synchro_submit(s, &test_op_sleep, &sa, SYNCHRO_TIMEOUT_DEFAULT, &f), 0);
    ck_assert_int_eq(synchro_future_then(f, h, count_cb, NULL), 0);
  }
  ck_assert_int_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
  ck_assert_int_eq(g_calls, 4);
  ck_assert_int_eq(g_t.wrong_thread, 0);
  synchro_host_free(h);
  ck_assert_int_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
  ck_assert_int_eq(uv_loop_close(&loop), 0);
  free(g_t.seen);
  sync_end(s);
}
END_TEST

/* ---- blocking calls and the host thread (A3(b), A31) ----------------------------------- */

static void nested_call_cb(synchro_future_t *f, int status, void *data) {
  synchro_t *s = data;
  test_add_args_t args = {20, 22};
  int64_t sum = 0;
  (void)f;
  (void)status;
  g_nested_rc = synchro_call(s, &test_op_add, &args, 5000, &sum, NULL);
  g_nested_sum = sum;
  g_calls++;
}

START_TEST(test_a3_blocking_call_inside_callback) {
  synchro_t *s = sync_new();
  synchro_host_t *h = NULL, *hf = NULL;
  synchro_future_t *f;
  uv_loop_t loop;
  test_add_args_t args = {1, 1};
  tally_init(1);
  ck_assert_int_eq(uv_loop_init(&loop), 0);
  ck_assert_int_eq(synchro_host_new_uv(&h, &loop), 0);
  ck_assert_int_eq(synchro_submit(s, &test_op_add, &args, SYNCHRO_TIMEOUT_DEFAULT, &f), 0);
  ck_assert_int_eq(synchro_future_then(f, h, nested_call_cb, s), 0);
  ck_assert_int_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
  ck_assert_int_eq(g_calls, 1);
  ck_assert_int_eq(g_nested_rc, 0);
  ck_assert_int_eq(g_nested_sum, 42);
  /* same through an fd host */
  g_nested_rc = 1;
  g_nested_sum = 0;
  ck_assert_int_eq(synchro_host_new_fd(&hf), 0);
  ck_assert_int_eq(synchro_submit(s, &test_op_add, &args, SYNCHRO_TIMEOUT_DEFAULT, &f), 0);
  ck_assert_int_eq(synchro_future_then(f, hf, nested_call_cb, s), 0);
  ck_assert_int_eq(fd_readable(synchro_host_fd(hf), 5000), 1);
  ck_assert_int_eq(synchro_host_dispatch(hf, 0), 1);
  ck_assert_int_eq(g_nested_rc, 0);
  ck_assert_int_eq(g_nested_sum, 42);
  synchro_host_free(hf);
  synchro_host_free(h);
  ck_assert_int_eq(loop_finish(&loop), 0);
  free(g_t.seen);
  sync_end(s);
}
END_TEST

START_TEST(test_a31_blocking_call_does_not_dispatch) {
  synchro_t *s = sync_new();
  synchro_host_t *h = NULL, *hf = NULL;
  synchro_future_t *f;
  uv_loop_t loop;
  test_add_args_t args = {1, 1};
  test_sleep_args_t sa = {100, 0};
  int64_t slept = 0;
  tally_init(1);
  ck_assert_int_eq(uv_loop_init(&loop), 0);
  ck_assert_int_eq(synchro_host_new_uv(&h, &loop), 0);
  ck_assert_int_eq(synchro_host_new_fd(&hf), 0);
  /* one completion pending for each host, resolved before the blocking call starts */
  ck_assert_int_eq(synchro_submit(s, &test_op_add, &args, SYNCHRO_TIMEOUT_DEFAULT, &f), 0);
  ck_assert_int_eq(synchro_future_wait(f, 5000), 0);
  ck_assert_int_eq(synchro_future_then(f, h, count_cb, NULL), 0);
  ck_assert_int_eq(synchro_submit(s, &test_op_add, &args, SYNCHRO_TIMEOUT_DEFAULT, &f), 0);
  ck_assert_int_eq(synchro_future_wait(f, 5000), 0);
  ck_assert_int_eq(synchro_future_then(f, hf, count_cb, NULL), 0);
  /* and one resolving during the blocking call */
  sa.ms = 20;
  ck_assert_int_eq(synchro_submit(s, &test_op_sleep, &sa, SYNCHRO_TIMEOUT_DEFAULT, &f), 0);
  ck_assert_int_eq(synchro_future_then(f, hf, count_cb, NULL), 0);
  sa.ms = 100;
  ck_assert_int_eq(synchro_call(s, &test_op_sleep, &sa, 5000, &slept, NULL), 0);
  ck_assert_int_eq(slept, 100);
  ck_assert_int_eq(g_calls, 0); /* the blocking call ran no host callback */
  ck_assert_int_eq(fd_readable(synchro_host_fd(hf), 0), 1);
  ck_assert_int_eq(synchro_host_dispatch(hf, 0), 2);
  ck_assert_int_eq(g_calls, 2);
  ck_assert_int_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
  ck_assert_int_eq(g_calls, 3);
  ck_assert_int_eq(g_t.wrong_thread, 0);
  synchro_host_free(hf);
  synchro_host_free(h);
  ck_assert_int_eq(loop_finish(&loop), 0);
  free(g_t.seen);
  sync_end(s);
}
END_TEST

/* ---- synchro_submit_then: submit and attach in one step ------------------------------ */

typedef struct {
  synchro_t *s;
  synchro_host_t *h;
  long from, n;
  atomic_long errors;
} submitter_t;

static void *submit_then_elsewhere(void *arg) {
  submitter_t *o = arg;
  long i;
  for (i = o->from; i < o->from + o->n; i++) {
    test_add_args_t args = {i, 1};
    if (synchro_submit_then(o->s, &test_op_add, &args, SYNCHRO_TIMEOUT_DEFAULT, o->h, add_cb,
                            (void *)(intptr_t)i) != 0)
      o->errors++;
  }
  return NULL;
}

/* From the host thread (attached before the push) and from another thread (attached
 * after it): every callback runs once, on the host thread, with its own result, and
 * the host keeps its loop alive exactly until the last one. */
START_TEST(test_submit_then_from_host_and_other_threads) {
  const long n = test_scaled(2000);
  synchro_t *s = sync_new();
  synchro_host_t *h = NULL;
  uv_loop_t loop;
  submitter_t other;
  pthread_t th;
  long i;
  tally_init(2 * n);
  ck_assert_int_eq(uv_loop_init(&loop), 0);
  ck_assert_int_eq(synchro_host_new_uv(&h, &loop), 0);
  other = (submitter_t){s, h, n, n, 0};
  ck_assert_int_eq(pthread_create(&th, NULL, submit_then_elsewhere, &other), 0);
  for (i = 0; i < n; i++) {
    test_add_args_t args = {i, 1};
    ck_assert_int_eq(synchro_submit_then(s, &test_op_add, &args, SYNCHRO_TIMEOUT_DEFAULT, h, add_cb,
                                         (void *)(intptr_t)i),
                     0);
  }
  ck_assert_int_eq(pthread_join(th, NULL), 0);
  ck_assert_int_eq(other.errors, 0);
  ck_assert_int_eq(uv_run(&loop, UV_RUN_DEFAULT), 0); /* returns after the last callback */
  tally_check(2 * n);
  ck_assert_int_eq(uv_loop_alive(&loop), 0);
  synchro_host_free(h);
  ck_assert_int_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
  ck_assert_int_eq(uv_loop_close(&loop), 0);
  sync_end(s);
}
END_TEST

static void never_called_impl(synchro_call_t *call) { synchro_call_return(call, NULL); }
static const synchro_op_t stream_like_op = {
    .name = "stream_like", .impl = never_called_impl, .item_size = sizeof(int64_t)};

/* Refused: nothing is submitted, no callback ever runs, and the host is left as it was
 * (its loop not kept alive, freeable at once). */
START_TEST(test_submit_then_refused_leaves_nothing) {
  synchro_t *s = sync_new(), *closed = sync_new();
  synchro_host_t *h = NULL;
  synchro_stats_t st;
  uv_loop_t loop;
  test_add_args_t args = {1, 1};
  tally_init(1);
  ck_assert_int_eq(uv_loop_init(&loop), 0);
  ck_assert_int_eq(synchro_host_new_uv(&h, &loop), 0);
  ck_assert_int_eq(
      synchro_submit_then(NULL, &test_op_add, &args, SYNCHRO_TIMEOUT_DEFAULT, h, count_cb, NULL),
      SYNCHRO_EINVAL);
  ck_assert_int_eq(synchro_submit_then(s, NULL, &args, SYNCHRO_TIMEOUT_DEFAULT, h, count_cb, NULL),
                   SYNCHRO_EINVAL);
  ck_assert_int_eq(
      synchro_submit_then(s, &test_op_add, NULL, SYNCHRO_TIMEOUT_DEFAULT, h, count_cb, NULL),
      SYNCHRO_EINVAL);
  ck_assert_int_eq(
      synchro_submit_then(s, &test_op_add, &args, SYNCHRO_TIMEOUT_DEFAULT, NULL, count_cb, NULL),
      SYNCHRO_EINVAL);
  ck_assert_int_eq(
      synchro_submit_then(s, &test_op_add, &args, SYNCHRO_TIMEOUT_DEFAULT, h, NULL, NULL),
      SYNCHRO_EINVAL);
  ck_assert_int_eq(
      synchro_submit_then(s, &stream_like_op, &args, SYNCHRO_TIMEOUT_DEFAULT, h, count_cb, NULL),
      SYNCHRO_EINVAL);
  ck_assert_int_eq(synchro_close(closed, 1000), 0);
  ck_assert_int_eq(
      synchro_submit_then(closed, &test_op_add, &args, SYNCHRO_TIMEOUT_DEFAULT, h, count_cb, NULL),
      SYNCHRO_ESHUTDOWN);
  ck_assert_int_eq(uv_loop_alive(&loop), 0); /* the refused call left the host's list */
  ck_assert_int_eq(uv_run(&loop, UV_RUN_NOWAIT), 0);
  ck_assert_int_eq(synchro_stats(s, &st), 0);
  ck_assert_uint_eq(st.submitted, 0);
  ck_assert_int_eq(g_calls, 0);
  synchro_host_free(h);
  ck_assert_int_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
  ck_assert_int_eq(uv_loop_close(&loop), 0);
  free(g_t.seen);
  synchro_free(closed);
  sync_end(s);
}
END_TEST

/* A push refused after the call joined its host (the synchronizer closed between the
 * two): the call leaves the host's list again, so the host does not keep its loop
 * alive for it, and nothing is delivered. The submitting thread waits at the submit
 * seam while the test thread closes the synchronizer. */
static atomic_int g_at_seam, g_seam_release;
static void hold_at_submit(synchro_seam_t seam, const synchro_call_t *call, void *data) {
  (void)seam;
  (void)call;
  (void)data;
  atomic_store(&g_at_seam, 1);
  while (!atomic_load(&g_seam_release))
    uv_sleep(1);
}

typedef struct {
  synchro_t *s;
  int rc, alive_after, ran;
} refused_push_t;

static void *submit_then_refused_push(void *arg) {
  refused_push_t *o = arg;
  synchro_host_t *h = NULL;
  uv_loop_t loop;
  test_add_args_t args = {1, 1};
  if (uv_loop_init(&loop) != 0 || synchro_host_new_uv(&h, &loop) != 0) {
    o->rc = 1;
    return NULL;
  }
  o->rc =
      synchro_submit_then(o->s, &test_op_add, &args, SYNCHRO_TIMEOUT_DEFAULT, h, count_cb, NULL);
  o->alive_after = uv_loop_alive(&loop);
  uv_run(&loop, UV_RUN_NOWAIT);
  o->ran = (int)g_calls;
  synchro_host_free(h);
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  return NULL;
}

START_TEST(test_submit_then_push_refused_detaches) {
  synchro_t *s = sync_new();
  refused_push_t o = {s, -1, -1, -1};
  synchro_stats_t st;
  pthread_t th;
  test_add_args_t args = {1, 1};
  int64_t sum;
  tally_init(1);
  /* started first, so that the submission reaches its push */
  ck_assert_int_eq(synchro_call(s, &test_op_add, &args, SYNCHRO_TIMEOUT_DEFAULT, &sum, NULL), 0);
  g_at_seam = g_seam_release = 0;
  synchro_test_seam_set(SYNCHRO_SEAM_SUBMIT, hold_at_submit, NULL);
  ck_assert_int_eq(pthread_create(&th, NULL, submit_then_refused_push, &o), 0);
  while (!atomic_load(&g_at_seam))
    uv_sleep(1);
  synchro_test_seam_set(SYNCHRO_SEAM_SUBMIT, NULL, NULL);
  ck_assert_int_eq(synchro_close(s, 1000), 0);
  atomic_store(&g_seam_release, 1);
  ck_assert_int_eq(pthread_join(th, NULL), 0);
  ck_assert_int_eq(o.rc, SYNCHRO_ESHUTDOWN);
  ck_assert_int_eq(o.alive_after, 0); /* left the host's list: the loop is not held */
  ck_assert_int_eq(o.ran, 0);
  ck_assert_int_eq(synchro_stats(s, &st), 0);
  ck_assert_uint_eq(st.submitted, 1); /* the blocking call only */
  free(g_t.seen);
  synchro_free(s);
}
END_TEST

static void submit_after_free_cb(synchro_future_t *f, int status, void *data) {
  test_add_args_t args = {1, 1};
  (void)f;
  (void)status;
  synchro_host_free(((submitter_t *)data)->h);
  g_late_then_rc =
      synchro_submit_then(((submitter_t *)data)->s, &test_op_add, &args, SYNCHRO_TIMEOUT_DEFAULT,
                          ((submitter_t *)data)->h, count_cb, NULL);
}

/* The same from another thread, which attaches after the push: the call it pushed is
 * cancelled and freed, and nobody sees it. */
static void *submit_then_from_elsewhere(void *arg) {
  submitter_t *o = arg;
  test_add_args_t args = {1, 1};
  o->errors =
      synchro_submit_then(o->s, &test_op_add, &args, SYNCHRO_TIMEOUT_DEFAULT, o->h, count_cb, NULL);
  return NULL;
}

static void free_then_submit_elsewhere_cb(synchro_future_t *f, int status, void *data) {
  submitter_t *o = data;
  pthread_t th;
  (void)f;
  (void)status;
  synchro_host_free(o->h); /* inside a callback: closed now, freed when this returns */
  if (pthread_create(&th, NULL, submit_then_from_elsewhere, o) == 0)
    pthread_join(th, NULL);
}

/* Makes one submit_then whose callback `cb` frees the host (and submits again), on a
 * fresh uv loop in ctx->h, and runs that loop until it ends. */
static void run_one_freeing_host(synchro_t *s, submitter_t *ctx, synchro_host_cb cb) {
  uv_loop_t loop;
  test_add_args_t args = {1, 1};
  tally_init(1);
  ck_assert_int_eq(uv_loop_init(&loop), 0);
  ck_assert_int_eq(synchro_host_new_uv(&ctx->h, &loop), 0);
  ck_assert_int_eq(
      synchro_submit_then(s, &test_op_add, &args, SYNCHRO_TIMEOUT_DEFAULT, ctx->h, cb, ctx), 0);
  ck_assert_int_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
  ck_assert_int_eq(uv_loop_close(&loop), 0);
}

START_TEST(test_submit_then_elsewhere_after_free_eclosed) {
  synchro_t *s = sync_new();
  synchro_stats_t st;
  submitter_t ctx = {s, NULL, 0, 0, 1};
  int i;
  run_one_freeing_host(s, &ctx, free_then_submit_elsewhere_cb);
  ck_assert_int_eq(ctx.errors, SYNCHRO_ECLOSED);
  ck_assert_int_eq(g_calls, 0); /* the refused call's callback never runs */
  for (i = 0; i < 1000; i++) {  /* it was pushed, then cancelled: it leaves no call behind */
    ck_assert_int_eq(synchro_stats(s, &st), 0);
    if (st.in_flight == 0)
      break;
    uv_sleep(5);
  }
  ck_assert_uint_eq(st.in_flight, 0);
  ck_assert_uint_eq(st.submitted, 2);
  free(g_t.seen);
  sync_end(s);
}
END_TEST

/* A host freed from inside one of its callbacks refuses the next submit_then. */
START_TEST(test_submit_then_after_free_inside_callback_eclosed) {
  synchro_t *s = sync_new();
  synchro_stats_t st;
  submitter_t ctx = {s, NULL, 0, 0, 0};
  run_one_freeing_host(s, &ctx, submit_after_free_cb);
  ck_assert_int_eq(g_late_then_rc, SYNCHRO_ECLOSED);
  ck_assert_int_eq(synchro_stats(s, &st), 0);
  ck_assert_uint_eq(st.submitted, 1); /* the refused one was never submitted */
  ck_assert_int_eq(g_calls, 0);
  free(g_t.seen);
  sync_end(s);
}
END_TEST

/* ---- bad input ----------------------------------------------------------------------- */

START_TEST(test_null_arguments) {
  synchro_t *s = sync_new();
  synchro_host_t *h = NULL, *hu = NULL;
  synchro_future_t *f;
  uv_loop_t loop;
  test_add_args_t args = {1, 1};
  int64_t sum = 0;
  tally_init(1);
  ck_assert_int_eq(synchro_host_new_fd(NULL), SYNCHRO_EINVAL);
  ck_assert_int_eq(uv_loop_init(&loop), 0);
  ck_assert_int_eq(synchro_host_new_uv(NULL, &loop), SYNCHRO_EINVAL);
  ck_assert_int_eq(synchro_host_new_uv(&hu, NULL), SYNCHRO_EINVAL);
  ck_assert_int_eq(synchro_host_fd(NULL), -1);
  ck_assert_int_eq(synchro_host_dispatch(NULL, 0), SYNCHRO_EINVAL);
  synchro_host_free(NULL);
  ck_assert_int_eq(synchro_host_new_fd(&h), 0);
  ck_assert_int_eq(synchro_submit(s, &test_op_add, &args, SYNCHRO_TIMEOUT_DEFAULT, &f), 0);
  ck_assert_int_eq(synchro_future_then(NULL, h, count_cb, NULL), SYNCHRO_EINVAL);
  ck_assert_int_eq(synchro_future_then(f, NULL, count_cb, NULL), SYNCHRO_EINVAL);
  ck_assert_int_eq(synchro_future_then(f, h, NULL, NULL), SYNCHRO_EINVAL);
  /* on failure the future stays the caller's and is untouched */
  ck_assert_int_eq(synchro_future_wait(f, 5000), 0);
  ck_assert_int_eq(synchro_future_result(f, &sum), 0);
  ck_assert_int_eq(sum, 2);
  synchro_future_free(f);
  ck_assert_int_eq(synchro_host_dispatch(h, 0), 0);
  ck_assert_int_eq(g_calls, 0);
  synchro_host_free(h);
  ck_assert_int_eq(loop_finish(&loop), 0);
  free(g_t.seen);
  sync_end(s);
}
END_TEST

typedef struct {
  synchro_host_t *h;
  int rc;
} other_thread_t;
static void *dispatch_elsewhere(void *arg) {
  other_thread_t *o = arg;
  o->rc = synchro_host_dispatch(o->h, 0);
  synchro_host_free(o->h); /* not the host thread: ignored */
  return NULL;
}

START_TEST(test_dispatch_from_other_thread_eperm) {
  synchro_t *s = sync_new();
  other_thread_t o = {NULL, 1};
  pthread_t thr;
  tally_init(1);
  ck_assert_int_eq(synchro_host_new_fd(&o.h), 0);
  ck_assert_int_eq(synchro_future_then(submit_upper(s), o.h, count_cb, NULL), 0);
  ck_assert_int_eq(fd_readable(synchro_host_fd(o.h), 5000), 1);
  ck_assert_int_eq(pthread_create(&thr, NULL, dispatch_elsewhere, &o), 0);
  ck_assert_int_eq(pthread_join(thr, NULL), 0);
  ck_assert_int_eq(o.rc, SYNCHRO_EPERM);
  ck_assert_int_eq(g_calls, 0);
  /* the host is intact: its own thread still dispatches */
  ck_assert_int_eq(fd_readable(synchro_host_fd(o.h), 0), 1);
  ck_assert_int_eq(synchro_host_dispatch(o.h, 0), 1);
  ck_assert_int_eq(g_calls, 1);
  synchro_host_free(o.h);
  free(g_t.seen);
  sync_end(s);
}
END_TEST

/* A future belongs to one queue or host at a time.
 * Not tested: synchro_future_then() on a host after synchro_host_free() returned. The
 * host's memory may be gone by then (it lives only while the owner or an attached call
 * holds it), so the call would read freed memory; SYNCHRO_ECLOSED can only be observed
 * by a foreign thread that races the free, which the program must order itself. */
START_TEST(test_then_on_attached_future_einval) {
  synchro_t *s = sync_new();
  synchro_host_t *h = NULL, *h2 = NULL;
  synchro_cq_t *cq = NULL;
  synchro_future_t *f, *g, *got = NULL;
  test_sleep_args_t sa = {60000, 0};
  test_add_args_t args = {1, 1};
  tally_init(1);
  ck_assert_int_eq(synchro_host_new_fd(&h), 0);
  ck_assert_int_eq(synchro_host_new_fd(&h2), 0);
  ck_assert_int_eq(synchro_cq_new(&cq), 0);
  /* in a completion queue (pending, then resolved) */
  ck_assert_int_eq(synchro_submit(s, &test_op_sleep, &sa, SYNCHRO_TIMEOUT_INFINITE, &f), 0);
  ck_assert_int_eq(synchro_cq_add(cq, f), 0);
  ck_assert_int_eq(synchro_future_then(f, h, count_cb, NULL), SYNCHRO_EINVAL);
  ck_assert_int_eq(synchro_submit(s, &test_op_add, &args, SYNCHRO_TIMEOUT_DEFAULT, &g), 0);
  ck_assert_int_eq(synchro_cq_add(cq, g), 0);
  ck_assert_int_eq(synchro_cq_next(cq, 5000, &got), 0);
  ck_assert_ptr_eq(got, g);
  /* handed back by the queue: free to attach again */
  ck_assert_int_eq(synchro_future_then(g, h, count_cb, NULL), 0);
  /* already attached to a host (still pending, so still alive) */
  ck_assert_int_eq(synchro_submit(s, &test_op_sleep, &sa, SYNCHRO_TIMEOUT_INFINITE, &g), 0);
  ck_assert_int_eq(synchro_future_then(g, h, count_cb, NULL), 0);
  ck_assert_int_eq(synchro_future_then(g, h, count_cb, NULL), SYNCHRO_EINVAL);
  ck_assert_int_eq(synchro_future_then(g, h2, count_cb, NULL), SYNCHRO_EINVAL);
  ck_assert_int_eq(synchro_cq_add(cq, g), SYNCHRO_EINVAL);
  ck_assert(wait_for(&test_sleeps_started, 2, 5000));
  ck_assert_int_eq(fd_readable(synchro_host_fd(h), 5000), 1);
  ck_assert_int_eq(synchro_host_dispatch(h, 0), 1); /* only the add */
  ck_assert_int_eq(g_calls, 1);
  synchro_host_free(h); /* cancels the pending sleep */
  synchro_host_free(h2);
  synchro_cq_free(cq); /* detaches f */
  ck_assert(wait_for(&test_hooks_run, 1, 5000));
  sync_end(s);
  ck_assert_int_eq(g_calls, 1);
  free(g_t.seen);
}
END_TEST

/* ---- the suite ------------------------------------------------------------------------ */

static Suite *host_suite(void) {
  Suite *s = suite_create("host");
  TCase *tc;

  tc = tcase_create("libuv_host_thread");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_a19_uv_host_on_own_thread);
  suite_add_tcase(s, tc);

  tc = tcase_create("fd_pollers");
  tcase_set_timeout(tc, 60);
  tcase_add_loop_test(tc, test_a18_fd_host_throughput, 0, N_MODES);
  tcase_add_loop_test(tc, test_a18_completions_before_first_poll, 0, N_MODES);
  tcase_add_test(tc, test_fd_host_fd_flags);
  suite_add_tcase(s, tc);

  tc = tcase_create("glib_libevent");
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, test_a19_glib_main_loop);
  tcase_add_test(tc, test_a19_libevent);
  suite_add_tcase(s, tc);

  tc = tcase_create("no_zalgo");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_a20_then_never_runs_inline);
  tcase_add_test(tc, test_a20_chained_callbacks_constant_stack);
  suite_add_tcase(s, tc);

  tc = tcase_create("free_detach");
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, test_a19_free_with_pending_cancels);
  tcase_add_test(tc, test_a10_close_with_aio_calls_pending);
  tcase_add_loop_test(tc, test_a19_free_inside_callback, 0, 2);
  tcase_add_test(tc, test_a19_then_after_free_inside_callback_eclosed);
  tcase_add_test(tc, test_a19_free_right_after_delivery);
  tcase_add_test(tc, test_a19_callback_moves_result);
  suite_add_tcase(s, tc);

  tc = tcase_create("submit_then");
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, test_submit_then_from_host_and_other_threads);
  tcase_add_test(tc, test_submit_then_refused_leaves_nothing);
  tcase_add_test(tc, test_submit_then_after_free_inside_callback_eclosed);
  tcase_add_test(tc, test_submit_then_push_refused_detaches);
  tcase_add_test(tc, test_submit_then_elsewhere_after_free_eclosed);
  suite_add_tcase(s, tc);

  tc = tcase_create("loop_ref");
  tcase_set_timeout(tc, 10);
  tcase_add_test(tc, test_uv_host_ref_only_while_pending);
  suite_add_tcase(s, tc);

  tc = tcase_create("blocking");
  tcase_set_timeout(tc, 10);
  tcase_add_test(tc, test_a3_blocking_call_inside_callback);
  tcase_add_test(tc, test_a31_blocking_call_does_not_dispatch);
  suite_add_tcase(s, tc);

  tc = tcase_create("bad_input");
  tcase_set_timeout(tc, 10);
  tcase_add_test(tc, test_null_arguments);
  tcase_add_test(tc, test_dispatch_from_other_thread_eperm);
  tcase_add_test(tc, test_then_on_attached_future_einval);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(host_suite());
  int failed;
  srunner_run_all(sr, CK_ENV);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
