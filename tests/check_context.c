/* tests/check_context.c - ambient context that follows a call (A30) and signal-safe
 * cancel tokens (A28). */
#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include "support/testops.h"
#include "synchro.h"

/* ---- ops -------------------------------------------------------------------------- */

typedef struct {
  char text[16];
} ctx_value_t;

/* Copies `s` (NULL: "-") into a result. */
static void put_value(ctx_value_t *out, const char *s) {
  memset(out, 0, sizeof(*out));
  snprintf(out->text, sizeof(out->text), "%s", s != NULL ? s : "-");
}

/* read: returns the call's "k" as the implementation sees it; "MISMATCH" if the loop
 * thread's current context disagrees with the call's. */
static void read_impl(synchro_call_t *call) {
  ctx_value_t v;
  const char *mine = synchro_call_ctx_get(call, "k"), *current = synchro_ctx_get("k");
  if ((mine == NULL) != (current == NULL) || (mine != NULL && strcmp(mine, current) != 0))
    put_value(&v, "MISMATCH");
  else
    put_value(&v, mine);
  synchro_call_return(call, &v);
}
static const synchro_op_t op_read = {
    .name = "read", .impl = read_impl, .result_size = sizeof(ctx_value_t)};

/* read_later: reads the call's "k" from a timer callback, after its start returned. */
typedef struct {
  uv_timer_t timer;
  synchro_call_t *call;
} later_t;
static void later_closed(uv_handle_t *h) { free(h->data); }
static void later_fired(uv_timer_t *t) {
  later_t *l = t->data;
  ctx_value_t v;
  put_value(&v, synchro_call_ctx_get(l->call, "k"));
  synchro_call_return(l->call, &v);
  uv_close((uv_handle_t *)t, later_closed);
}
static void read_later_impl(synchro_call_t *call) {
  later_t *l = calloc(1, sizeof(*l));
  l->call = call;
  l->timer.data = l;
  uv_timer_init(synchro_call_loop(call), &l->timer);
  uv_timer_start(&l->timer, later_fired, 5, 0);
}
static const synchro_op_t op_read_later = {
    .name = "read_later", .impl = read_later_impl, .result_size = sizeof(ctx_value_t)};

/* nest: submits `read` on another synchronizer (future kept in nested[0]), sets "k" to
 * "changed" on the loop thread, submits another (nested[1]), and returns "k" as seen
 * at its start. */
typedef struct {
  synchro_t *other;
} nest_args_t;
static synchro_future_t *nested[2];
static void nest_impl(synchro_call_t *call) {
  const nest_args_t *a = synchro_call_args(call);
  ctx_value_t v;
  put_value(&v, synchro_ctx_get("k"));
  synchro_submit(a->other, &op_read, NULL, SYNCHRO_TIMEOUT_DEFAULT, &nested[0]);
  synchro_ctx_set("k", "changed");
  synchro_submit(a->other, &op_read, NULL, SYNCHRO_TIMEOUT_DEFAULT, &nested[1]);
  synchro_call_return(call, &v);
}
static const synchro_op_t op_nest = {.name = "nest",
                                     .impl = nest_impl,
                                     .args_size = sizeof(nest_args_t),
                                     .result_size = sizeof(ctx_value_t)};

static synchro_t *new_sync(void) {
  synchro_t *s = NULL;
  ck_assert_int_eq(synchro_new(&s, NULL), 0);
  return s;
}

static void read_k(synchro_t *s, const synchro_op_t *op, const char *expect) {
  ctx_value_t v;
  ck_assert_int_eq(synchro_call(s, op, NULL, SYNCHRO_TIMEOUT_DEFAULT, &v, NULL), 0);
  ck_assert_str_eq(v.text, expect);
}

/* ---- A30: the context follows the call ------------------------------------------------- */

START_TEST(test_a30_impl_reads_the_callers_value) {
  synchro_t *s = new_sync();
  read_k(s, &op_read, "-");
  ck_assert_int_eq(synchro_ctx_set("k", "v"), 0);
  ck_assert_str_eq(synchro_ctx_get("k"), "v");
  read_k(s, &op_read, "v");
  read_k(s, &op_read_later, "v"); /* a later callback of the implementation */
  ck_assert_int_eq(synchro_ctx_set("k", "w"), 0);
  read_k(s, &op_read, "w");
  ck_assert_int_eq(synchro_ctx_set("k", NULL), 0); /* removed */
  read_k(s, &op_read, "-");
  synchro_ctx_clear();
  synchro_free(s);
}
END_TEST

static void *read_from_empty_thread(void *arg) {
  ctx_value_t *v = arg;
  synchro_t *s = *(synchro_t **)v->text;
  synchro_call(s, &op_read, NULL, SYNCHRO_TIMEOUT_DEFAULT, v, NULL);
  return NULL;
}

/* Nested calls inherit the context; what the implementation sets stays on the loop,
 * for its own nested calls only (copy-on-call, no write-back). */
START_TEST(test_a30_nested_calls_inherit_and_nothing_leaks_back) {
  synchro_t *s = new_sync(), *other = new_sync();
  nest_args_t a = {other};
  ctx_value_t v;
  pthread_t t;
  ck_assert_int_eq(synchro_ctx_set("k", "v"), 0);
  ck_assert_int_eq(synchro_call(s, &op_nest, &a, SYNCHRO_TIMEOUT_DEFAULT, &v, NULL), 0);
  ck_assert_str_eq(v.text, "v");
  ck_assert_int_eq(synchro_future_wait(nested[0], 10000), 0);
  ck_assert_int_eq(synchro_future_result(nested[0], &v), 0);
  ck_assert_str_eq(v.text, "v");
  ck_assert_int_eq(synchro_future_wait(nested[1], 10000), 0);
  ck_assert_int_eq(synchro_future_result(nested[1], &v), 0);
  ck_assert_str_eq(v.text, "changed");
  synchro_future_free(nested[0]);
  synchro_future_free(nested[1]);
  ck_assert_str_eq(synchro_ctx_get("k"), "v"); /* the caller's context is unchanged */
  read_k(s, &op_read, "v");
  /* A caller with no context sees none: the loop thread kept nothing. */
  memset(&v, 0, sizeof(v));
  memcpy(v.text, &s, sizeof(s));
  ck_assert_int_eq(pthread_create(&t, NULL, read_from_empty_thread, &v), 0);
  pthread_join(t, NULL);
  ck_assert_str_eq(v.text, "-");
  synchro_ctx_clear();
  synchro_free(s);
  synchro_free(other);
}
END_TEST

static char seen_in_callback[16];
static int callbacks_run;
static void on_done(synchro_future_t *f, int status, void *data) {
  (void)f;
  (void)data;
  ck_assert_int_eq(status, 0);
  snprintf(seen_in_callback, sizeof(seen_in_callback), "%s",
           synchro_ctx_get("k") != NULL ? synchro_ctx_get("k") : "-");
  callbacks_run++;
}

START_TEST(test_a30_host_callback_sees_the_calls_context) {
  synchro_t *s = new_sync();
  synchro_host_t *h = NULL;
  synchro_future_t *f = NULL;
  struct pollfd p;
  ck_assert_int_eq(synchro_host_new_fd(&h), 0);
  ck_assert_int_eq(synchro_ctx_set("k", "v"), 0);
  ck_assert_int_eq(synchro_submit(s, &op_read, NULL, SYNCHRO_TIMEOUT_DEFAULT, &f), 0);
  ck_assert_int_eq(synchro_ctx_set("k", "other"), 0); /* the host thread moved on */
  ck_assert_int_eq(synchro_future_then(f, h, on_done, NULL), 0);
  p.fd = synchro_host_fd(h);
  p.events = POLLIN;
  while (callbacks_run == 0) {
    ck_assert_int_ge(poll(&p, 1, 5000), 1);
    ck_assert_int_ge(synchro_host_dispatch(h, 0), 0);
  }
  ck_assert_str_eq(seen_in_callback, "v");
  ck_assert_str_eq(synchro_ctx_get("k"), "other"); /* restored after the callback */
  synchro_host_free(h);
  synchro_ctx_clear();
  synchro_free(s);
}
END_TEST

/* Snapshots are immutable: setting a key makes a new one. */
START_TEST(test_a30_snapshots_are_copy_on_write) {
  synchro_ctx_t *snap, *prev;
  int x = 7, i;
  char buf[16];
  ck_assert_ptr_null(synchro_ctx_capture());
  ck_assert_int_eq(synchro_ctx_set(NULL, "v"), SYNCHRO_EINVAL);
  ck_assert_int_eq(synchro_ctx_set("k", "v"), 0);
  ck_assert_int_eq(synchro_ctx_set_ptr("p", &x), 0);
  snap = synchro_ctx_capture();
  ck_assert_int_eq(synchro_ctx_set("k", "w"), 0);
  ck_assert_int_eq(synchro_ctx_set_ptr("p", NULL), 0);
  ck_assert_str_eq(synchro_ctx_lookup(snap, "k"), "v");
  ck_assert_ptr_eq(synchro_ctx_lookup_ptr(snap, "p"), &x);
  ck_assert_ptr_null(synchro_ctx_lookup(snap, "p")); /* a pointer is not a string */
  ck_assert_str_eq(synchro_ctx_get("k"), "w");
  ck_assert_ptr_null(synchro_ctx_get_ptr("p"));
  /* Many sets: old values are dropped from the chain, the others stay. */
  for (i = 0; i < 200; i++) {
    snprintf(buf, sizeof(buf), "%d", i);
    ck_assert_int_eq(synchro_ctx_set("n", buf), 0);
  }
  ck_assert_str_eq(synchro_ctx_get("n"), "199");
  ck_assert_str_eq(synchro_ctx_get("k"), "w");
  ck_assert_ptr_null(synchro_ctx_get_ptr("p"));
  /* swap: install a snapshot, get the previous back */
  prev = synchro_ctx_swap(snap);
  ck_assert_str_eq(synchro_ctx_get("k"), "v");
  synchro_ctx_free(synchro_ctx_swap(prev));
  ck_assert_str_eq(synchro_ctx_get("n"), "199");
  synchro_ctx_free(prev);
  synchro_ctx_free(snap);
  synchro_ctx_clear();
  ck_assert_ptr_null(synchro_ctx_get("k"));
}
END_TEST

/* ---- A28: cancel tokens -------------------------------------------------------------------- */

START_TEST(test_a28_token_cancels_a_running_call_after_its_cleanup) {
  synchro_t *s = new_sync();
  synchro_token_t *tok = NULL;
  synchro_future_t *f = NULL, *free_f = NULL;
  test_sleep_args_t a = {60000, 50};
  testops_reset();
  ck_assert_int_eq(synchro_token_new(&tok), 0);
  ck_assert_int_eq(synchro_ctx_set_token(tok), 0);
  ck_assert_ptr_eq(synchro_ctx_token(), tok);
  ck_assert_int_eq(synchro_submit(s, &test_op_sleep, &a, SYNCHRO_TIMEOUT_DEFAULT, &f), 0);
  ck_assert_int_eq(synchro_ctx_set_token(NULL), 0);
  ck_assert_int_eq(synchro_submit(s, &test_op_sleep, &a, SYNCHRO_TIMEOUT_DEFAULT, &free_f), 0);
  while (test_sleeps_started < 2)
    usleep(1000);
  ck_assert_int_eq(synchro_token_cancelled(tok), 0);
  synchro_token_cancel(tok);
  synchro_token_cancel(tok); /* once */
  ck_assert_int_eq(synchro_token_cancelled(tok), 1);
  ck_assert_int_eq(synchro_future_wait(f, 10000), SYNCHRO_ECANCELED);
  ck_assert_int_eq(test_cleanups_done, 1); /* the hook's cleanup ran before */
  ck_assert_int_eq(synchro_future_wait(free_f, 100), SYNCHRO_EPENDING); /* not in scope */
  synchro_future_free(f);
  synchro_future_cancel(free_f);
  synchro_future_free(free_f);
  synchro_token_free(tok);
  synchro_ctx_clear();
  synchro_free(s);
}
END_TEST

START_TEST(test_a28_token_refuses_queued_calls) {
  synchro_t *s = new_sync();
  synchro_token_t *tok = NULL;
  synchro_future_t *gate = NULL, *in_scope = NULL, *out_of_scope = NULL;
  test_add_args_t a = {1, 2};
  atomic_store(&test_gate_open, 0);
  ck_assert_int_eq(synchro_token_new(&tok), 0);
  ck_assert_int_eq(synchro_submit(s, &test_op_gate, NULL, SYNCHRO_TIMEOUT_DEFAULT, &gate), 0);
  usleep(20000);
  ck_assert_int_eq(synchro_ctx_set_token(tok), 0);
  ck_assert_int_eq(synchro_submit(s, &test_op_add, &a, SYNCHRO_TIMEOUT_DEFAULT, &in_scope), 0);
  synchro_ctx_clear();
  ck_assert_int_eq(synchro_submit(s, &test_op_add, &a, SYNCHRO_TIMEOUT_DEFAULT, &out_of_scope), 0);
  synchro_token_cancel(tok);
  atomic_store(&test_gate_open, 1);
  ck_assert_int_eq(synchro_future_wait(in_scope, 10000), SYNCHRO_ECANCELED);
  ck_assert_int_eq(synchro_future_wait(out_of_scope, 10000), 0);
  /* A call submitted under a token that already fired never starts. */
  synchro_future_free(in_scope);
  ck_assert_int_eq(synchro_ctx_set_token(tok), 0);
  ck_assert_int_eq(synchro_submit(s, &test_op_add, &a, SYNCHRO_TIMEOUT_DEFAULT, &in_scope), 0);
  ck_assert_int_eq(synchro_future_wait(in_scope, 10000), SYNCHRO_ECANCELED);
  synchro_future_free(in_scope);
  synchro_future_free(out_of_scope);
  synchro_future_free(gate);
  synchro_ctx_clear();
  synchro_token_free(tok);
  synchro_free(s);
}
END_TEST

/* The subprocess: blocks in a call under a token; SIGINT's handler fires the token;
 * the call returns SYNCHRO_ECANCELED after the implementation's cleanup; the process
 * exits with 130 (128 + SIGINT, the convention docs/context.md documents). Every step
 * writes a line to `log_fd`. */
static int log_fd = -1;
static synchro_token_t *sig_token;

static void log_line(const char *line) {
  ssize_t n = write(log_fd, line, strlen(line));
  (void)n;
}

static void on_sigint(int sig) {
  (void)sig;
  log_line("signal\n"); /* write(2): async-signal-safe */
  synchro_token_cancel(sig_token);
}

typedef struct {
  uv_timer_t timer;
  synchro_call_t *call;
} logged_t;
static void logged_closed(uv_handle_t *h) { free(h->data); }
static void logged_cleanup_done(uv_timer_t *t) {
  logged_t *l = t->data;
  log_line("cleanup\n");
  synchro_call_fail(l->call, SYNCHRO_ECANCELED, NULL, "stopped");
  uv_close((uv_handle_t *)t, logged_closed);
}
static void logged_cancel(synchro_call_t *call, int reason, void *data) {
  logged_t *l = data;
  (void)call;
  (void)reason;
  uv_timer_start(&l->timer, logged_cleanup_done, 50, 0); /* the cleanup takes a while */
}
static void logged_timeout(uv_timer_t *t) {
  logged_t *l = t->data;
  synchro_call_return(l->call, NULL);
  uv_close((uv_handle_t *)t, logged_closed);
}
static void logged_impl(synchro_call_t *call) {
  logged_t *l = calloc(1, sizeof(*l));
  l->call = call;
  l->timer.data = l;
  uv_timer_init(synchro_call_loop(call), &l->timer);
  uv_timer_start(&l->timer, logged_timeout, 60000, 0);
  synchro_call_on_cancel(call, logged_cancel, l);
  log_line("started\n");
}
static const synchro_op_t op_logged = {.name = "logged", .impl = logged_impl};

static void sigint_child(int fd) {
  synchro_t *s = NULL;
  struct sigaction sa;
  synchro_error_t *err = NULL;
  char line[96];
  int rc;
  log_fd = fd;
  signal(SIGALRM, SIG_DFL);
  alarm(10); /* a hang kills the child: the parent sees SIGALRM, not 130 */
  if (synchro_new(&s, NULL) != 0 || synchro_token_new(&sig_token) != 0)
    _exit(2);
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = on_sigint;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  synchro_ctx_set_token(sig_token);
  rc = synchro_call(s, &op_logged, NULL, SYNCHRO_TIMEOUT_DEFAULT, NULL, &err);
  snprintf(line, sizeof(line), "returned %s\n", synchro_err_name(rc));
  log_line(line);
  synchro_error_free(err);
  synchro_free(s);
  synchro_ctx_clear();
  synchro_token_free(sig_token);
  _exit(rc == SYNCHRO_ECANCELED ? 128 + SIGINT : 1);
}

START_TEST(test_a28_sigint_cancels_a_blocked_call_in_a_subprocess) {
  int fds[2], status = 0;
  char log[512];
  size_t len = 0;
  pid_t pid;
  ck_assert_int_eq(pipe(fds), 0);
  pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    close(fds[0]);
    sigint_child(fds[1]);
  }
  close(fds[1]);
  for (;;) { /* read until the call started, then interrupt */
    ssize_t n = read(fds[0], log + len, sizeof(log) - 1 - len);
    ck_assert_int_gt(n, 0);
    len += (size_t)n;
    log[len] = '\0';
    if (strstr(log, "started\n") != NULL)
      break;
  }
  ck_assert_int_eq(kill(pid, SIGINT), 0);
  for (;;) {
    ssize_t n = read(fds[0], log + len, sizeof(log) - 1 - len);
    if (n <= 0)
      break;
    len += (size_t)n;
  }
  log[len] = '\0';
  close(fds[0]);
  ck_assert_int_eq(waitpid(pid, &status, 0), pid);
  ck_assert_str_eq(log, "started\nsignal\ncleanup\nreturned SYNCHRO_ECANCELED\n");
  ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 130, "status %#x", status);
}
END_TEST

/* A signal storm: 10,000 signals, each firing a token, while 8 threads submit calls
 * under tokens. No deadlock; every call ends with 0 or, if its token fired,
 * SYNCHRO_ECANCELED. */
#define STORM_THREADS 8
#define STORM_SIGNALS 10000
static synchro_token_t *storm_tokens[STORM_SIGNALS + STORM_THREADS + 1];
static atomic_int storm_fired;
static atomic_int storm_stop;
static atomic_long storm_cancelled, storm_ok, storm_bad;

static void on_storm_signal(int sig) {
  int i = atomic_fetch_add(&storm_fired, 1);
  (void)sig;
  if (i < STORM_SIGNALS)
    synchro_token_cancel(storm_tokens[i]);
}

typedef struct {
  synchro_t *s;
  int id;
} storm_arg_t;

static void *storm_submitter(void *arg) {
  storm_arg_t *a = arg;
  while (!atomic_load(&storm_stop)) {
    int idx = atomic_load(&storm_fired) + a->id % 3; /* some fire soon, some later */
    synchro_token_t *tok = storm_tokens[idx < STORM_SIGNALS ? idx : STORM_SIGNALS];
    test_sleep_args_t sl = {a->id % 2, 0};
    synchro_future_t *f = NULL;
    int rc;
    synchro_ctx_set_token(tok);
    rc = synchro_submit(a->s, &test_op_sleep, &sl, SYNCHRO_TIMEOUT_DEFAULT, &f);
    synchro_ctx_clear();
    if (rc != 0) {
      atomic_fetch_add(&storm_bad, 1);
      continue;
    }
    rc = synchro_future_wait(f, SYNCHRO_TIMEOUT_INFINITE);
    if (rc == 0)
      atomic_fetch_add(&storm_ok, 1);
    else if (rc == SYNCHRO_ECANCELED && synchro_token_cancelled(tok))
      atomic_fetch_add(&storm_cancelled, 1);
    else
      atomic_fetch_add(&storm_bad, 1);
    synchro_future_free(f);
  }
  return NULL;
}

START_TEST(test_a28_signal_storm_while_8_threads_submit) {
  synchro_t *s = new_sync();
  pthread_t threads[STORM_THREADS];
  storm_arg_t args[STORM_THREADS];
  struct sigaction sa;
  int i;
  for (i = 0; i < STORM_SIGNALS + STORM_THREADS + 1; i++)
    ck_assert_int_eq(synchro_token_new(&storm_tokens[i]), 0);
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = on_storm_signal;
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  ck_assert_int_eq(sigaction(SIGUSR1, &sa, NULL), 0);
  for (i = 0; i < STORM_THREADS; i++) {
    args[i].s = s;
    args[i].id = i;
    ck_assert_int_eq(pthread_create(&threads[i], NULL, storm_submitter, &args[i]), 0);
  }
  while (atomic_load(&storm_ok) + atomic_load(&storm_cancelled) < STORM_THREADS)
    usleep(1000); /* the submitters are under way */
  for (i = 0; i < STORM_SIGNALS; i++) {
    pthread_kill(threads[i % STORM_THREADS], SIGUSR1);
    if (i % 8 == 0)
      usleep(100);
  }
  while (atomic_load(&storm_fired) < 1)
    usleep(1000);
  atomic_store(&storm_stop, 1);
  for (i = 0; i < STORM_THREADS; i++)
    pthread_join(threads[i], NULL);
  signal(SIGUSR1, SIG_IGN);
  ck_assert_int_eq(storm_bad, 0);
  ck_assert_int_gt(storm_ok + storm_cancelled, 0);
  synchro_free(s);
  for (i = 0; i < STORM_SIGNALS + STORM_THREADS + 1; i++)
    synchro_token_free(storm_tokens[i]);
}
END_TEST

/* Past SYNCHRO_TOKEN_MAX_SYNCHRONIZERS token-using synchronizers: the next one's running
 * calls are not woken by a token (queued ones are still refused); once a slot is given
 * back by synchro_free, it takes it at its next call under a token. */
START_TEST(test_a28_token_slots_limit_and_reuse) {
  synchro_t *syncs[SYNCHRO_TOKEN_MAX_SYNCHRONIZERS], *extra = new_sync();
  synchro_token_t *fill = NULL, *tok = NULL, *tok2 = NULL;
  synchro_future_t *f = NULL, *g = NULL;
  test_add_args_t add = {1, 1};
  test_sleep_args_t sl = {60000, 0};
  int64_t sum;
  int i;
  testops_reset();
  ck_assert_int_eq(synchro_token_new(&fill), 0);
  ck_assert_int_eq(synchro_token_new(&tok), 0);
  ck_assert_int_eq(synchro_token_new(&tok2), 0);
  ck_assert_int_eq(synchro_ctx_set_token(fill), 0);
  for (i = 0; i < SYNCHRO_TOKEN_MAX_SYNCHRONIZERS; i++) { /* every slot taken */
    syncs[i] = new_sync();
    ck_assert_int_eq(
        synchro_call(syncs[i], &test_op_add, &add, SYNCHRO_TIMEOUT_DEFAULT, &sum, NULL), 0);
  }
  ck_assert_int_eq(synchro_ctx_set_token(tok), 0);
  ck_assert_int_eq(synchro_submit(extra, &test_op_sleep, &sl, SYNCHRO_TIMEOUT_DEFAULT, &f), 0);
  ck_assert_int_eq(synchro_submit(syncs[0], &test_op_sleep, &sl, SYNCHRO_TIMEOUT_DEFAULT, &g), 0);
  while (test_sleeps_started < 2)
    usleep(1000);
  synchro_token_cancel(tok);
  ck_assert_int_eq(synchro_future_wait(g, 10000), SYNCHRO_ECANCELED); /* has a slot */
  ck_assert_int_eq(synchro_future_wait(f, 200), SYNCHRO_EPENDING);    /* has none */
  ck_assert_int_eq(synchro_future_cancel(f), 0);
  ck_assert_int_eq(synchro_future_wait(f, 10000), SYNCHRO_ECANCELED);
  synchro_future_free(f);
  synchro_future_free(g);
  /* queued under a fired token: refused even without a slot */
  ck_assert_int_eq(synchro_call(extra, &test_op_add, &add, SYNCHRO_TIMEOUT_DEFAULT, &sum, NULL),
                   SYNCHRO_ECANCELED);
  synchro_free(syncs[0]); /* gives its slot back */
  ck_assert_int_eq(synchro_ctx_set_token(tok2), 0);
  ck_assert_int_eq(synchro_submit(extra, &test_op_sleep, &sl, SYNCHRO_TIMEOUT_DEFAULT, &f), 0);
  while (test_sleeps_started < 3)
    usleep(1000);
  synchro_token_cancel(tok2);
  ck_assert_int_eq(synchro_future_wait(f, 10000), SYNCHRO_ECANCELED);
  synchro_future_free(f);
  synchro_ctx_clear();
  for (i = 1; i < SYNCHRO_TOKEN_MAX_SYNCHRONIZERS; i++)
    synchro_free(syncs[i]);
  synchro_free(extra);
  synchro_token_free(fill);
  synchro_token_free(tok);
  synchro_token_free(tok2);
}
END_TEST

static Suite *context_suite(void) {
  Suite *s = suite_create("context");
  TCase *tc = tcase_create("a30");
  tcase_set_timeout(tc, 10);
  tcase_add_test(tc, test_a30_impl_reads_the_callers_value);
  tcase_add_test(tc, test_a30_nested_calls_inherit_and_nothing_leaks_back);
  tcase_add_test(tc, test_a30_host_callback_sees_the_calls_context);
  tcase_add_test(tc, test_a30_snapshots_are_copy_on_write);
  suite_add_tcase(s, tc);

  tc = tcase_create("a28");
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, test_a28_token_cancels_a_running_call_after_its_cleanup);
  tcase_add_test(tc, test_a28_token_refuses_queued_calls);
  tcase_add_test(tc, test_a28_signal_storm_while_8_threads_submit);
  tcase_add_test(tc, test_a28_token_slots_limit_and_reuse);
  suite_add_tcase(s, tc);

  tc = tcase_create("a28_process");
  tcase_set_tags(tc, "fork");
  tcase_set_timeout(tc, 20);
  tcase_add_test(tc, test_a28_sigint_cancels_a_blocked_call_in_a_subprocess);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(context_suite());
  int failed;
  srunner_run_all(sr, CK_ENV);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
