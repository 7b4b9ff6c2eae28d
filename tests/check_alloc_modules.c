/* tests/check_alloc_modules.c - out-of-memory at every allocation, module by module.
 *
 * check_alloc.c sweeps the core call path. This program runs the same sweep over the
 * other modules: hosts (uv and fd), streams, objects (with translation), completion
 * queues, error values and the generated wrappers of the conformance module. For each
 * scenario and each N = 1, 2, ... a fresh child fails the Nth allocation made through
 * synchro's allocator and runs the scenario; every step must end in success or a clean
 * error code (SYNCHRO_ENOMEM, or the step's documented code), nothing may crash, the
 * same scenario must then work in that child with allocation restored, and at the end
 * nothing but pooled memory may be live. The sweep ends at the first N the scenario no
 * longer reaches; that N - 1 is the number of fault points, printed per module.
 *
 * Memory that the runtime keeps for reuse on purpose (call records, recycled object
 * handles) is told apart by its size, measured in a child (measure_sizes()). */
#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <jansson.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "conf.h"
#include "support/streamops.h"
#include "support/testops.h"
#include "synchro.h"
#include "testing.h"

/* ---- the counting allocator (as in check_alloc.c) -------------------------------- */
#define HDR 16

static size_t handle_size; /* an object handle's size; 0 until measured */
static pthread_t main_thread;
static atomic_int trace_main; /* measuring: log main-thread allocation sizes */
static size_t traced[16];
static atomic_int n_traced;
static atomic_long n_allocs, fail_at, n_failed, live, live_pooled;

static int should_fail(size_t size) {
  long n;
  if (trace_main && pthread_equal(pthread_self(), main_thread)) {
    int i = atomic_fetch_add(&n_traced, 1);
    if (i < 16)
      traced[i] = size;
  }
  n = ++n_allocs;
  if (fail_at != 0 && n == fail_at) {
    n_failed++;
    return 1;
  }
  return 0;
}

/* Pool slabs (records and their side blocks) are never freed; handles are counted with
 * them (see measure_sizes). */
static int pooled(size_t size) {
  return size != 0 && (synchro_test_pool_slab(size) || size == handle_size);
}

static void *track(unsigned char *p, size_t size) {
  if (p == NULL)
    return NULL;
  memcpy(p, &size, sizeof(size));
  live++;
  if (pooled(size))
    live_pooled++;
  return p + HDR;
}

static size_t untrack(void *ptr) {
  size_t size;
  memcpy(&size, (unsigned char *)ptr - HDR, sizeof(size));
  live--;
  if (pooled(size))
    live_pooled--;
  return size;
}

static void *t_malloc(size_t size) {
  if (should_fail(size))
    return NULL;
  return track(malloc(size + HDR), size);
}

static void *t_calloc(size_t count, size_t size) {
  if (should_fail(count * size))
    return NULL;
  return track(calloc(1, count * size + HDR), count * size);
}

static void t_free(void *ptr) {
  if (ptr == NULL)
    return;
  untrack(ptr);
  free((unsigned char *)ptr - HDR);
}

static void *t_realloc(void *ptr, size_t size) {
  unsigned char *p;
  size_t old;
  if (ptr == NULL)
    return t_malloc(size);
  if (should_fail(size))
    return NULL;
  old = untrack(ptr);
  p = realloc((unsigned char *)ptr - HDR, size + HDR);
  if (p == NULL) {
    track((unsigned char *)ptr - HDR, old);
    return NULL;
  }
  return track(p, size);
}

static void install(long fail_index) {
  main_thread = pthread_self();
  n_allocs = 0;
  n_failed = 0;
  fail_at = fail_index;
  ck_assert_int_eq(synchro_replace_allocator(t_malloc, t_realloc, t_calloc, t_free), 0);
}

/* The size of an object handle (the main-thread allocation of synchro_object_new that
 * is not a pool slab), measured in a child and passed back through a pipe. */
static void measure_sizes(void) {
  int fds[2];
  size_t size = 0;
  pid_t pid;
  int status;
  ck_assert_int_eq(pipe(fds), 0);
  fflush(NULL);
  pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    synchro_t *s = NULL;
    synchro_object_t *obj = NULL;
    test_obj_args_t oargs = {1, 0, 0};
    int i, others = 0;
    close(fds[0]);
    install(0);
    if (synchro_new(&s, NULL) != 0)
      _exit(1);
    trace_main = 1;
    if (synchro_object_new(s, &test_class, &oargs, &obj, NULL) != 0)
      _exit(3);
    for (i = 0; i < n_traced && i < 16; i++)
      if (!synchro_test_pool_slab(traced[i])) {
        size = traced[i];
        others++;
      }
    if (others != 1)
      _exit(4);
    if (write(fds[1], &size, sizeof(size)) != (ssize_t)sizeof(size))
      _exit(5);
    _exit(0);
  }
  close(fds[1]);
  status = test_wait_child(pid, 10000);
  ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "measuring child: status %#x",
                status);
  ck_assert_int_eq(read(fds[0], &size, sizeof(size)), (ssize_t)sizeof(size));
  close(fds[0]);
  handle_size = size;
  ck_assert_uint_gt(handle_size, 0);
  ck_assert(!synchro_test_pool_slab(handle_size));
}

/* ---- the sweep ----------------------------------------------------------------------
 * A scenario returns 0 when every step behaved, else a step number (< 50) for the
 * report. `fini` (optional) releases what the scenario keeps between its two runs. */
typedef struct {
  const char *name;
  int (*run)(void);
  void (*fini)(void);
} scenario_t;

#define ENOMEM_OK(rc) ((rc) == 0 || (rc) == SYNCHRO_ENOMEM)

/* Child: 0 = passed, failure never reached; 2 = passed with the failure injected (1 is
 * left to valgrind's --error-exitcode, so a memcheck error in a child fails the sweep);
 * 100 + step = run with the failure misbehaved; 160 + step = the restored run failed;
 * 50 = non-pooled memory still live; 51 = too much pooled memory live. */
static int sweep_child(const scenario_t *sc, long n) {
  int rc;
  long injected;
  install(n);
  testops_reset();
  streamops_reset();
  rc = sc->run();
  if (rc != 0) {
    fprintf(stderr, "%s N=%ld: step %d\n", sc->name, n, rc);
    return 100 + rc;
  }
  injected = n_failed;
  fail_at = 0; /* allocation restored: the same scenario works again */
  testops_reset();
  streamops_reset();
  rc = sc->run();
  if (rc != 0) {
    fprintf(stderr, "%s N=%ld: restored run, step %d\n", sc->name, n, rc);
    return 160 + rc;
  }
  if (sc->fini != NULL)
    sc->fini();
  if (live - live_pooled != 0) {
    fprintf(stderr, "%s N=%ld: %ld blocks still live\n", sc->name, n, live - live_pooled);
    return 50;
  }
  if (live_pooled > 32) { /* records migrate between thread caches: bounded, not exact */
    fprintf(stderr, "%s N=%ld: %ld pooled blocks live\n", sc->name, n, (long)live_pooled);
    return 51;
  }
  return injected == 0 ? 0 : 2;
}

/* Runs the sweep; returns the number of fault points (allocations failed in turn). Which
 * thread's cache a pooled record comes from depends on timing, so a run may allocate
 * once or twice less than another: the sweep ends only after 3 clean children in a row,
 * and the fault points are the Ns whose child had the failure injected. */
static long sweep(const scenario_t *sc) {
  long n, points = 0, last = 0;
  int clean = 0;
  double t0 = test_now_ms();
  measure_sizes();
  for (n = 1; n < 1000 && clean < 3; n++) {
    pid_t pid;
    int status;
    fflush(NULL);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0)
      _exit(sweep_child(sc, n));
    status = test_wait_child(pid, 20000);
    ck_assert_msg(status != -1, "%s N=%ld: child hung", sc->name, n);
    ck_assert_msg(WIFEXITED(status), "%s N=%ld: child crashed (status %#x)", sc->name, n, status);
    ck_assert_msg(WEXITSTATUS(status) == 0 || WEXITSTATUS(status) == 2, "%s N=%ld: child exit %d",
                  sc->name, n, WEXITSTATUS(status));
    if (WEXITSTATUS(status) == 2) {
      points++;
      last = n;
      clean = 0;
    } else {
      clean++;
    }
  }
  ck_assert_msg(clean == 3, "%s: the scenario never ran without the injected failure", sc->name);
  fprintf(stderr, "alloc sweep: %-8s %ld fault points, last at N=%ld (%.0f ms)\n", sc->name, points,
          last, test_now_ms() - t0);
  return points;
}

/* ---- shared helpers ----------------------------------------------------------------- */

typedef struct {
  int ran;
  int status;
  int err_code; /* the error's code, or 0 when no error value came */
  char text[64];
  int64_t value;
} got_t;

static void got_string(synchro_future_t *f, int status, void *data) {
  got_t *g = data;
  char *text = NULL;
  g->ran++;
  g->status = status;
  if (status == 0 && synchro_future_result(f, &text) == 0) {
    snprintf(g->text, sizeof(g->text), "%s", text);
    synchro_mem_free(text);
  }
  g->err_code = synchro_error_code(synchro_future_error(f));
}

static void got_int(synchro_future_t *f, int status, void *data) {
  got_t *g = data;
  g->ran++;
  g->status = status;
  if (status == 0)
    synchro_future_result(f, &g->value);
  g->err_code = synchro_error_code(synchro_future_error(f));
}

static void never_cb(synchro_future_t *f, int status, void *data) {
  (void)f;
  (void)status;
  ((got_t *)data)->ran++;
}

static void marker_fn(void) {}

/* The outcome of an upper_mem call: its text, or ENOMEM when the implementation's own
 * allocation failed (or the submission's, which never reaches a callback). */
static int upper_ok(const got_t *g) {
  if (g->ran != 1)
    return 0;
  if (g->status == 0)
    return strcmp(g->text, "MAKE ME LOUD") == 0;
  return g->status == SYNCHRO_ENOMEM;
}

/* The outcome of a fail call: the code always arrives; an error value, when there is
 * one (its allocation may fail), carries the same code. */
static int fail_ok(const got_t *g, int code) {
  return g->ran == 1 && g->status == code && (g->err_code == 0 || g->err_code == code);
}

/* What attaching a callback answered: 0 attached; 1 out of memory, so the future is
 * still the caller's (cancelled and freed here); -1 anything else. */
static int attached_or_dropped(synchro_future_t *f, int rc) {
  if (rc == 0)
    return 0;
  if (rc != SYNCHRO_ENOMEM)
    return -1;
  synchro_future_cancel(f);
  synchro_future_free(f);
  return 1;
}

static int new_sync(synchro_t **s) {
  int rc = synchro_new(s, NULL);
  if (rc == SYNCHRO_ENOMEM && *s != NULL)
    return -1;
  return rc;
}

static int close_sync(synchro_t *s) {
  int rc = synchro_close(s, 1000);
  synchro_free(s);
  return rc;
}

/* ---- scenario: libuv host ----------------------------------------------------------- */

static int run_host_uv(void) {
  uv_loop_t loop;
  synchro_t *s = NULL;
  synchro_host_t *h = NULL;
  synchro_future_t *f = NULL;
  test_string_args_t sargs = {(char *)"make me loud"};
  test_fail_args_t fargs = {UV_EIO};
  test_sleep_args_t slargs = {10000, 0};
  got_t g1 = {0}, g2 = {0}, g3 = {0}, g4 = {0};
  int rc, want1 = 0, want2 = 0, want4 = 0;
  double t0;

  if (uv_loop_init(&loop) != 0)
    return 1;
  if ((rc = new_sync(&s)) != 0) {
    uv_loop_close(&loop);
    return rc == SYNCHRO_ENOMEM ? 0 : 2;
  }
  rc = synchro_host_new_uv(&h, &loop);
  if (rc == SYNCHRO_ENOMEM) {
    if (h != NULL)
      return 3;
    goto out;
  }
  if (rc != 0)
    return 4;
  /* attach a call whose argument copy and result allocate */
  rc = synchro_submit(s, &test_op_upper_mem, &sargs, SYNCHRO_TIMEOUT_DEFAULT, &f);
  if (!ENOMEM_OK(rc))
    return 5;
  if (rc == 0) {
    if ((rc = attached_or_dropped(f, synchro_future_then(f, h, got_string, &g1))) < 0)
      return 6;
    want1 = rc == 0;
  }
  /* a failing call, attached with a typed callback: its error value allocates */
  rc = synchro_submit(s, &test_op_fail, &fargs, SYNCHRO_TIMEOUT_DEFAULT, &f);
  if (!ENOMEM_OK(rc))
    return 7;
  if (rc == 0) {
    if ((rc = attached_or_dropped(f, synchro_future_then_typed(f, h, got_int, marker_fn, &g2))) < 0)
      return 8;
    want2 = rc == 0;
  }
  /* submitted and attached in one step: on failure nothing was submitted */
  rc = synchro_submit_then(s, &test_op_upper_mem, &sargs, SYNCHRO_TIMEOUT_DEFAULT, h, got_string,
                           &g4);
  if (!ENOMEM_OK(rc))
    return 16;
  want4 = rc == 0;
  /* a call still pending when the host is freed: cancelled, its callback never runs */
  rc = synchro_submit(s, &test_op_sleep, &slargs, SYNCHRO_TIMEOUT_DEFAULT, &f);
  if (!ENOMEM_OK(rc))
    return 9;
  if (rc == 0 && attached_or_dropped(f, synchro_future_then(f, h, never_cb, &g3)) < 0)
    return 10;
  t0 = test_now_ms();
  while ((g1.ran < want1 || g2.ran < want2 || g4.ran < want4) && test_now_ms() - t0 < 5000)
    uv_run(&loop, UV_RUN_NOWAIT), usleep(200);
  if ((want1 && !upper_ok(&g1)) || (want4 && !upper_ok(&g4)))
    return 11;
  if (want2 && !fail_ok(&g2, UV_EIO))
    return 12;
  synchro_host_free(h);
  uv_run(&loop, UV_RUN_DEFAULT); /* libuv finishes closing the host's handle */
  if (g3.ran != 0)
    return 13;
out:
  if (close_sync(s) != 0)
    return 14;
  if (uv_loop_close(&loop) != 0)
    return 15;
  return 0;
}

/* ---- scenario: fd host ---------------------------------------------------------------- */

static int dispatch_until(synchro_host_t *h, const int *ran, int want, double ms) {
  double t0 = test_now_ms();
  while (*ran < want && test_now_ms() - t0 < ms) {
    struct pollfd p = {synchro_host_fd(h), POLLIN, 0};
    if (poll(&p, 1, 50) < 0 && errno != EINTR)
      return -1;
    if (synchro_host_dispatch(h, 0) < 0)
      return -1;
  }
  return *ran >= want ? 0 : -1;
}

static int run_host_fd(void) {
  synchro_t *s = NULL;
  synchro_host_t *h = NULL;
  synchro_future_t *f = NULL;
  test_add_args_t aargs = {40, 2};
  test_fail_args_t fargs = {UV_ECONNRESET};
  test_sleep_args_t slargs = {10000, 0};
  got_t g1 = {0}, g2 = {0}, g3 = {0};
  int rc, want1 = 0, want2 = 0;

  if ((rc = new_sync(&s)) != 0)
    return rc == SYNCHRO_ENOMEM ? 0 : 1;
  rc = synchro_host_new_fd(&h);
  if (rc == SYNCHRO_ENOMEM) {
    if (h != NULL)
      return 2;
    goto out;
  }
  if (rc != 0 || synchro_host_fd(h) < 0)
    return 3;
  rc = synchro_submit(s, &test_op_add, &aargs, SYNCHRO_TIMEOUT_DEFAULT, &f);
  if (!ENOMEM_OK(rc))
    return 4;
  if (rc == 0) {
    if ((rc = attached_or_dropped(f, synchro_future_then(f, h, got_int, &g1))) < 0)
      return 5;
    want1 = rc == 0;
  }
  rc = synchro_submit(s, &test_op_fail, &fargs, 10000, &f); /* with a deadline */
  if (!ENOMEM_OK(rc))
    return 6;
  if (rc == 0) {
    if ((rc = attached_or_dropped(f, synchro_future_then(f, h, got_int, &g2))) < 0)
      return 7;
    want2 = rc == 0;
  }
  rc = synchro_submit(s, &test_op_sleep, &slargs, SYNCHRO_TIMEOUT_DEFAULT, &f);
  if (!ENOMEM_OK(rc))
    return 8;
  if (rc == 0 && attached_or_dropped(f, synchro_future_then(f, h, never_cb, &g3)) < 0)
    return 9;
  if (dispatch_until(h, &g1.ran, want1, 5000) != 0 || dispatch_until(h, &g2.ran, want2, 5000) != 0)
    return 10;
  if (want1 && (g1.status != 0 || g1.value != 42))
    return 11;
  /* with a deadline, a failed deadline-heap allocation refuses the call: ENOMEM */
  if (want2 && !fail_ok(&g2, UV_ECONNRESET) && !(g2.ran == 1 && g2.status == SYNCHRO_ENOMEM))
    return 12;
  synchro_host_free(h);
  if (g3.ran != 0)
    return 13;
out:
  return close_sync(s) == 0 ? 0 : 14;
}

/* ---- scenario: streams ---------------------------------------------------------------- */

typedef struct {
  int64_t next; /* the item expected next */
  int status;   /* 0 while going, else how the stream ended */
  int err_code;
} stream_got_t;

static synchro_host_t *stream_host;

static void stream_cb_rearm(synchro_stream_t *st, int status, void *item, void *data) {
  stream_got_t *g = data;
  if (status == 0) {
    if (*(int64_t *)item != g->next)
      g->status = -1;
    else
      g->next++;
    if (g->status == 0 && synchro_stream_next_then(st, stream_host, stream_cb_rearm, g) != 0)
      g->status = -2;
    return;
  }
  g->status = status;
  g->err_code = synchro_error_code(synchro_stream_error(st));
}

static int run_streams(void) {
  synchro_t *s = NULL;
  synchro_stream_t *st = NULL;
  synchro_host_t *h = NULL;
  test_count_args_t five = {5, -1, 0};
  test_count_args_t failing = {2, -1, TEST_STREAM_DOMAIN_CODE};
  test_count_args_t three = {3, -1, 0};
  stream_got_t g = {0, 0, 0};
  int64_t item, i;
  int rc;
  double t0;

  if ((rc = new_sync(&s)) != 0)
    return rc == SYNCHRO_ENOMEM ? 0 : 1;
  /* blocking consumer: 0..4, then the end */
  rc = synchro_stream_open(s, &test_sop_count, &five, SYNCHRO_TIMEOUT_DEFAULT, &st);
  if (!ENOMEM_OK(rc) || (rc != 0 && st != NULL))
    return 2;
  if (rc == 0) {
    for (i = 0; i < 5; i++)
      if (synchro_stream_next(st, &item, 5000) != 0 || item != i)
        return 3;
    if (synchro_stream_next(st, &item, 5000) != SYNCHRO_EEND)
      return 4;
    synchro_stream_free(st);
    st = NULL;
  }
  /* a producer that fails after 2 items: its error value allocates */
  rc = synchro_stream_open(s, &test_sop_fail, &failing, 10000, &st);
  if (!ENOMEM_OK(rc))
    return 5;
  if (rc == 0) {
    /* 0, 1, then the error; or ENOMEM at once when the deadline heap could not grow */
    for (i = 0; (rc = synchro_stream_next(st, &item, 5000)) == 0; i++)
      if (item != i)
        return 6;
    if (!(rc == TEST_STREAM_DOMAIN_CODE && i == 2) && !(rc == SYNCHRO_ENOMEM && i == 0))
      return 7;
    if (synchro_stream_error(st) != NULL && synchro_error_code(synchro_stream_error(st)) != rc)
      return 8;
    synchro_stream_free(st);
    st = NULL;
  }
  /* host consumer: next_then on an fd host, re-armed from the callback */
  rc = synchro_host_new_fd(&h);
  if (!ENOMEM_OK(rc))
    return 9;
  if (rc == 0) {
    stream_host = h;
    rc = synchro_stream_open(s, &test_sop_count64, &three, SYNCHRO_TIMEOUT_DEFAULT, &st);
    if (!ENOMEM_OK(rc))
      return 10;
    if (rc == 0 && (rc = synchro_stream_next_then(st, h, stream_cb_rearm, &g)) != 0) {
      if (rc != SYNCHRO_ENOMEM)
        return 11;
      synchro_stream_free(st); /* nothing attached: the stream is still ours */
      st = NULL;
    } else if (rc == 0) {
      t0 = test_now_ms();
      while (g.status == 0 && test_now_ms() - t0 < 5000) {
        struct pollfd p = {synchro_host_fd(h), POLLIN, 0};
        poll(&p, 1, 50);
        if (synchro_host_dispatch(h, 0) < 0)
          return 12;
      }
      if (g.status != SYNCHRO_EEND || g.next != 3)
        return 13;
      synchro_stream_free(st);
      st = NULL;
    }
    synchro_host_free(h);
  }
  /* early close: an endless producer, one item taken, then the handle freed */
  rc = synchro_stream_open(s, &test_sop_infinite, NULL, SYNCHRO_TIMEOUT_DEFAULT, &st);
  if (!ENOMEM_OK(rc))
    return 14;
  if (rc == 0) {
    if (synchro_stream_next(st, &item, 5000) != 0 || item != 0)
      return 15;
    synchro_stream_free(st);
  }
  return close_sync(s) == 0 ? 0 : 16;
}

/* ---- scenario: objects -------------------------------------------------------------- */

static int run_objects(void) {
  synchro_t *s = NULL;
  synchro_object_t *a = NULL, *b = NULL, *peer = NULL;
  synchro_error_t *err = NULL;
  test_obj_args_t aargs = {7, 0, 1}, bargs = {9, 0, 0};
  test_obj_open_args_t oargs = {1, 0};
  test_obj_value_args_t vargs = {3};
  test_obj_handle_args_t hargs;
  synchro_future_t *f = NULL;
  int64_t v = 0;
  int rc;

  if ((rc = new_sync(&s)) != 0)
    return rc == SYNCHRO_ENOMEM ? 0 : 1;
  /* construct: the handle and the loop's state registry allocate */
  rc = synchro_object_new(s, &test_class, &aargs, &a, &err);
  if (!ENOMEM_OK(rc) || (rc != 0 && a != NULL))
    return 2;
  if (err != NULL && synchro_error_code(err) != rc)
    return 3;
  synchro_error_free(err);
  err = NULL;
  if (rc != 0)
    goto out;
  /* open (blocking), a method call, and close */
  rc = synchro_object_open(a, &oargs, 5000, &err);
  if (!ENOMEM_OK(rc) || (err != NULL && synchro_error_code(err) != rc))
    return 4;
  synchro_error_free(err);
  err = NULL;
  rc = synchro_object_call(a, &test_oop_value, &vargs, 5000, &v, NULL);
  if (!ENOMEM_OK(rc) || (rc == 0 && v != 10))
    return 5;
  /* translation out: the implementation wraps a fresh state into a new handle */
  rc = synchro_object_call(a, &test_oop_peer, NULL, 5000, &peer, NULL);
  if (!ENOMEM_OK(rc) || (rc == 0 && peer == NULL) || (rc != 0 && peer != NULL))
    return 6;
  /* translation in: a handle argument gives the implementation the state */
  rc = synchro_object_new(s, &test_class, &bargs, &b, NULL);
  if (!ENOMEM_OK(rc))
    return 7;
  if (rc == 0) {
    hargs.other = b;
    hargs.link = 0;
    rc = synchro_object_submit(a, &test_oop_state_of, &hargs, 5000, &f);
    if (!ENOMEM_OK(rc))
      return 8;
    if (rc == 0) {
      if (synchro_future_wait(f, 5000) != 0 || synchro_future_result(f, &v) != 0 || v == 0)
        return 9;
      synchro_future_free(f);
    }
    synchro_object_free(b);
  }
  synchro_object_free(peer);
  rc = synchro_object_close(a, 5000, &err);
  if (!ENOMEM_OK(rc))
    return 10;
  synchro_error_free(err);
  synchro_object_free(a);
out:
  return close_sync(s) == 0 ? 0 : 11;
}

/* ---- scenario: completion queue ---------------------------------------------------- */

static int run_cq(void) {
  synchro_t *s = NULL;
  synchro_cq_t *cq = NULL;
  synchro_future_t *f = NULL;
  test_add_args_t aargs = {1, 1};
  test_sleep_args_t slargs = {30, 0}; /* cq_free does not cancel it: keep it short */
  int rc, i, added = 0, got = 0;

  if ((rc = new_sync(&s)) != 0)
    return rc == SYNCHRO_ENOMEM ? 0 : 1;
  rc = synchro_cq_new(&cq);
  if (rc == SYNCHRO_ENOMEM)
    return cq == NULL && close_sync(s) == 0 ? 0 : 2;
  if (rc != 0)
    return 3;
  for (i = 0; i < 3; i++) {
    aargs.a = i;
    rc = synchro_submit(s, &test_op_add, &aargs, i == 1 ? 10000 : SYNCHRO_TIMEOUT_DEFAULT, &f);
    if (!ENOMEM_OK(rc))
      return 4;
    if (rc == 0) {
      if (synchro_cq_add(cq, f) != 0)
        return 5;
      added++;
    }
  }
  while ((rc = synchro_cq_next(cq, 5000, &f)) == 0) {
    int64_t sum = -1;
    int st = synchro_future_status(f);
    /* the call with a deadline is refused with ENOMEM when the deadline heap cannot grow */
    if (st == SYNCHRO_ENOMEM) {
      synchro_future_free(f);
      got++;
      continue;
    }
    if (st != 0 || synchro_future_result(f, &sum) != 0 || sum < 1 || sum > 3)
      return 6;
    synchro_future_free(f);
    got++;
  }
  if (rc != SYNCHRO_EEMPTY || got != added)
    return 7;
  /* freed with a pending future in it */
  rc = synchro_submit(s, &test_op_sleep, &slargs, SYNCHRO_TIMEOUT_DEFAULT, &f);
  if (!ENOMEM_OK(rc))
    return 8;
  if (rc == 0 && synchro_cq_add(cq, f) != 0)
    return 9;
  synchro_cq_free(cq);
  return close_sync(s) == 0 ? 0 : 10;
}

/* ---- scenario: error values ---------------------------------------------------------- */

static int run_errors(void) {
  synchro_error_t *cause = NULL, *err = NULL, *plain = NULL;
  json_t *retry;
  int rc;

  rc = synchro_error_new(&cause, UV_ECONNRESET, "inner", NULL, NULL, "reset after %d bytes", 12);
  if (!ENOMEM_OK(rc) || (rc != 0 && cause != NULL))
    return 1;
  /* details and cause are stolen, and released when this fails */
  rc = synchro_error_new(&err, UV_EIO, "outer", json_pack("{s:i}", "retry_after", 2), cause,
                         "outer %s", "failed");
  if (!ENOMEM_OK(rc) || (rc != 0 && err != NULL))
    return 2;
  if (rc == 0) {
    if (synchro_error_code(err) != UV_EIO || strcmp(synchro_error_origin(err), "outer") != 0 ||
        strcmp(synchro_error_message(err), "outer failed") != 0)
      return 3;
    retry = json_object_get(synchro_error_details(err), "retry_after");
    if (json_integer_value(retry) != 2)
      return 4;
    if (cause != NULL && (synchro_error_cause(err) != cause ||
                          strcmp(synchro_error_message(cause), "reset after 12 bytes") != 0))
      return 5;
  }
  /* no format: the message is the code's text */
  rc = synchro_error_new(&plain, SYNCHRO_ETIMEDOUT, NULL, NULL, NULL, NULL);
  if (!ENOMEM_OK(rc))
    return 6;
  if (rc == 0 && (strcmp(synchro_error_message(plain), synchro_strerror(SYNCHRO_ETIMEDOUT)) != 0 ||
                  strcmp(synchro_error_origin(plain), "") != 0))
    return 7;
  synchro_error_free(plain);
  synchro_error_free(err);
  return 0;
}

/* ---- scenario: generated wrappers (tests/conformance/gen) ------------------------ */

static void conf_int_cb(int status, int64_t result, const synchro_error_t *err, void *data) {
  got_t *g = data;
  g->ran++;
  g->status = status;
  g->value = result;
  g->err_code = synchro_error_code(err);
}

static int run_conf(void) {
  synchro_t *s = NULL;
  synchro_error_t *err = NULL;
  synchro_future_t *f = NULL;
  conf_count_stream_t *cs = NULL;
  conf_counter_t *c = NULL, *same = NULL;
  synchro_host_t *h = NULL;
  char *text = NULL;
  int64_t v = 0, i;
  got_t g = {0};
  int rc;

  /* the module's synchronizer, created lazily by the first call */
  rc = conf_synchronizer(&s);
  if (rc == SYNCHRO_ENOMEM)
    return 0; /* nothing else can run; the restored run creates it */
  if (rc != 0)
    return 1;
  rc = conf_add(20, 22, &v, &err);
  if (!ENOMEM_OK(rc) || (rc == 0 && v != 42))
    return 2;
  synchro_error_free(err);
  err = NULL;
  /* a string argument copied in and a string result copied out */
  rc = conf_greet("ada", &text, &err);
  if (!ENOMEM_OK(rc) || (rc == 0 && strcmp(text, "hello, ada") != 0))
    return 3;
  if (err != NULL && synchro_error_code(err) != rc)
    return 4;
  synchro_mem_free(text);
  synchro_error_free(err);
  err = NULL;
  /* a domain error with details */
  rc = conf_limited(&v, &err);
  if (rc != CONF_ERATE_LIMITED && rc != SYNCHRO_ENOMEM)
    return 5;
  if (rc == CONF_ERATE_LIMITED && err != NULL &&
      (synchro_error_code(err) != rc ||
       json_integer_value(json_object_get(synchro_error_details(err), "retry_after")) != 2))
    return 6;
  synchro_error_free(err);
  err = NULL;
  /* futures */
  rc = conf_add_future(1, 2, &f);
  if (!ENOMEM_OK(rc))
    return 7;
  if (rc == 0) {
    if (synchro_future_wait(f, 5000) != 0 || conf_add_result(f, &v) != 0 || v != 3)
      return 8;
    synchro_future_free(f);
  }
  /* aio on an fd host */
  rc = synchro_host_new_fd(&h);
  if (!ENOMEM_OK(rc))
    return 9;
  if (rc == 0) {
    rc = conf_add_aio(2, 3, h, conf_int_cb, &g);
    if (!ENOMEM_OK(rc))
      return 10;
    if (rc == 0 && (dispatch_until(h, &g.ran, 1, 5000) != 0 || g.status != 0 || g.value != 5))
      return 11;
    synchro_host_free(h);
  }
  /* a typed stream */
  rc = conf_count_open(3, -1, &cs);
  if (!ENOMEM_OK(rc))
    return 12;
  if (rc == 0) {
    for (i = 0; i < 3; i++)
      if (conf_count_next(cs, &v, 5000) != 0 || v != i)
        return 13;
    if (conf_count_next(cs, &v, 5000) != SYNCHRO_EEND)
      return 14;
    conf_count_close(cs);
  }
  /* an object: construct, open, method, translation out, close */
  rc = conf_counter_new(5, &c, &err);
  if (!ENOMEM_OK(rc))
    return 15;
  synchro_error_free(err);
  err = NULL;
  if (rc == 0) {
    rc = conf_counter_open(c, NULL);
    if (!ENOMEM_OK(rc))
      return 16;
    if (rc == 0) {
      rc = conf_counter_add(c, 2, &v, NULL);
      if (!ENOMEM_OK(rc) || (rc == 0 && v != 7))
        return 17;
      rc = conf_counter_same(c, &same, NULL);
      if (!ENOMEM_OK(rc) || (rc == 0 && same != c))
        return 18;
      conf_counter_free(same);
      same = NULL;
      rc = conf_counter_close(c, NULL);
      if (!ENOMEM_OK(rc))
        return 19;
    }
    conf_counter_free(c);
  }
  return 0;
}

static void fini_conf(void) {
  synchro_t *s = NULL;
  if (conf_synchronizer(&s) == 0) {
    synchro_close(s, 1000);
    synchro_free(s);
  }
}

/* ---- the tests ------------------------------------------------------------------------- */

static const scenario_t sc_host_uv = {"host_uv", run_host_uv, NULL};
static const scenario_t sc_host_fd = {"host_fd", run_host_fd, NULL};
static const scenario_t sc_streams = {"streams", run_streams, NULL};
static const scenario_t sc_objects = {"objects", run_objects, NULL};
static const scenario_t sc_cq = {"cq", run_cq, NULL};
static const scenario_t sc_errors = {"errors", run_errors, NULL};
static const scenario_t sc_conf = {"conf_gen", run_conf, fini_conf};

/* Lower bounds, so a scenario that silently stopped allocating fails the test. */
START_TEST(test_sweep_host_uv) { ck_assert_int_ge(sweep(&sc_host_uv), 5); }
END_TEST
START_TEST(test_sweep_host_fd) { ck_assert_int_ge(sweep(&sc_host_fd), 5); }
END_TEST
START_TEST(test_sweep_streams) { ck_assert_int_ge(sweep(&sc_streams), 8); }
END_TEST
START_TEST(test_sweep_objects) { ck_assert_int_ge(sweep(&sc_objects), 5); }
END_TEST
START_TEST(test_sweep_cq) { ck_assert_int_ge(sweep(&sc_cq), 4); }
END_TEST
START_TEST(test_sweep_errors) { ck_assert_int_ge(sweep(&sc_errors), 6); }
END_TEST
START_TEST(test_sweep_conf_gen) { ck_assert_int_ge(sweep(&sc_conf), 10); }
END_TEST

/* Each scenario once with no failure injected, in this process: every step succeeds
 * (the sweep alone would also accept ENOMEM everywhere). */
START_TEST(test_scenarios_succeed_without_failures) {
  const scenario_t *all[] = {&sc_host_uv, &sc_host_fd, &sc_streams, &sc_objects,
                             &sc_cq,      &sc_errors,  &sc_conf};
  size_t i;
  install(0);
  for (i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
    long before = n_allocs;
    ck_assert_msg(all[i]->run() == 0, "%s", all[i]->name);
    ck_assert_msg(n_allocs > before, "%s allocated nothing", all[i]->name);
  }
  sc_conf.fini();
  ck_assert_int_eq(n_failed, 0);
}
END_TEST

static Suite *alloc_modules_suite(void) {
  Suite *s = suite_create("alloc_modules");
  TCase *tc;

  tc = tcase_create("sweep");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_scenarios_succeed_without_failures);
  tcase_add_test(tc, test_sweep_host_uv);
  tcase_add_test(tc, test_sweep_host_fd);
  tcase_add_test(tc, test_sweep_streams);
  tcase_add_test(tc, test_sweep_objects);
  tcase_add_test(tc, test_sweep_cq);
  tcase_add_test(tc, test_sweep_errors);
  tcase_add_test(tc, test_sweep_conf_gen);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(alloc_modules_suite());
  int failed;
  srunner_run_all(sr, CK_ENV);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
