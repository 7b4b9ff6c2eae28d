/* tests/check_dump.c - synchro_dump() (A40: what is pending can be observed), the
 * harness watchdog that dumps a test about to time out, and the live-resource
 * counters of the test build (threads, fds, loops, handles, records, allocations). */
#define _GNU_SOURCE
#include <check.h>
#include <inttypes.h>
#include <jansson.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "support/streamops.h"
#include "support/testops.h"
#include "support/watchdog.h"
#include "synchro.h"
#include "testing.h"

#if defined(__SANITIZE_THREAD__)
/* The watchdog test forks while the test process may have threads. */
const char *__tsan_default_options(void);
__attribute__((visibility("default"))) const char *__tsan_default_options(void) {
  return "die_after_fork=0";
}
#endif

/* ---- helpers ---------------------------------------------------------------------- */

static synchro_t *new_sync(void) {
  synchro_t *s = NULL;
  ck_assert_int_eq(synchro_new(&s, NULL), 0);
  return s;
}

/* Dumps `s` and parses the result; fails the test unless it is one JSON object. */
static json_t *dump_json(synchro_t *s, int64_t timeout_ms) {
  char *text = NULL;
  json_error_t jerr;
  json_t *root;
  ck_assert_int_eq(synchro_dump(s, timeout_ms, &text), 0);
  ck_assert_ptr_nonnull(text);
  root = json_loads(text, 0, &jerr);
  ck_assert_msg(root != NULL, "dump is not JSON (%s): %s", jerr.text, text);
  ck_assert(json_is_object(root));
  synchro_mem_free(text);
  return root;
}

static const char *str_of(json_t *o, const char *key) {
  json_t *v = json_object_get(o, key);
  ck_assert_msg(json_is_string(v), "%s is not a string", key);
  return json_string_value(v);
}

static json_int_t int_of(json_t *o, const char *key) {
  json_t *v = json_object_get(o, key);
  ck_assert_msg(json_is_integer(v), "%s is not an integer", key);
  return json_integer_value(v);
}

static bool bool_of(json_t *o, const char *key) {
  json_t *v = json_object_get(o, key);
  ck_assert_msg(json_is_boolean(v), "%s is not a boolean", key);
  return json_is_true(v);
}

/* The pending entry whose id is the address `p`, or NULL. */
static json_t *entry_for(json_t *root, const void *p) {
  json_t *pending = json_object_get(root, "pending"), *e;
  char id[32];
  size_t i;
  snprintf(id, sizeof(id), "0x%" PRIxPTR, (uintptr_t)p);
  ck_assert(json_is_array(pending));
  json_array_foreach(pending, i, e) {
    if (strcmp(str_of(e, "id"), id) == 0)
      return e;
  }
  return NULL;
}

static void check_entry(json_t *root, const void *p, const char *flavor, const char *function,
                        const char *state, uint32_t origin) {
  json_t *e = entry_for(root, p);
  ck_assert_msg(e != NULL, "%s call %p not listed", function, p);
  ck_assert_str_eq(str_of(e, "flavor"), flavor);
  ck_assert_str_eq(str_of(e, "function"), function);
  ck_assert_str_eq(str_of(e, "state"), state);
  ck_assert_int_eq(int_of(e, "origin"), origin);
}

static void wait_pending(synchro_t *s, int want) {
  double t0 = test_now_ms();
  int n;
  while ((n = synchro_test_pending(s, 1000)) != want &&
         test_now_ms() - t0 < 5000 * test_time_multiplier())
    usleep(1000);
  ck_assert_int_eq(n, want);
}

/* ---- ops of this file --------------------------------------------------------------- */

/* stall: blocks the loop thread until `stall_release` is set (a loop that cannot answer). */
static atomic_int stall_release, stall_entered;
static void stall_impl(synchro_call_t *call) {
  stall_entered = 1;
  while (!stall_release)
    usleep(1000);
  synchro_call_return(call, NULL);
}
static const synchro_op_t stall_op = {.name = "stall", .impl = stall_impl};

/* dumper: on the loop thread, waits until `dumper_go`, finishes itself, then dumps its
 * own synchronizer into `dumper_text`: whatever was submitted meanwhile is still
 * queued, and its own call is delivering (finished in this loop iteration). */
static atomic_int dumper_go, dumper_entered, dumper_rc;
static char *dumper_text;
static void dumper_impl(synchro_call_t *call) {
  synchro_t *s = synchro_call_synchronizer(call);
  dumper_entered = 1;
  while (!dumper_go)
    usleep(1000);
  synchro_call_return(call, NULL);
  dumper_rc = synchro_dump(s, 0, &dumper_text);
}
static const synchro_op_t dumper_op = {.name = "dumper", .impl = dumper_impl};

/* ---- the listing ---------------------------------------------------------------------- */

typedef struct {
  synchro_t *s;
  uint32_t thread_no;
  atomic_int submitted;
  int rc;
} blocker_t;

static void *blocker_main(void *arg) {
  blocker_t *b = arg;
  b->thread_no = synchro_test_thread_number();
  b->submitted = 1; /* the call below is submitted right after (wait_pending sees it) */
  b->rc = synchro_call(b->s, &test_op_never, NULL, SYNCHRO_TIMEOUT_DEFAULT, NULL, NULL);
  return NULL;
}

static void ignore_cb(synchro_future_t *f, int status, void *data) {
  (void)f;
  (void)status;
  (void)data;
}

START_TEST(test_a40_dump_lists_every_pending_call) {
  synchro_t *s = new_sync();
  uint32_t me = synchro_test_thread_number();
  synchro_future_t *fut, *stub, *gone, *aio, *inq, *meth, *open, *close, *f;
  synchro_host_t *host;
  synchro_cq_t *cq;
  synchro_stream_t *st;
  synchro_object_t *obj;
  test_obj_args_t oargs = {.value = 1};
  test_obj_open_args_t open_args = {.ms = 60000};
  test_obj_sleep_args_t sleep_args = {.ms = 60000};
  blocker_t b = {.s = s};
  pthread_t th;
  json_t *root, *e, *loop;

  ck_assert_int_eq(synchro_submit(s, &test_op_never, NULL, SYNCHRO_TIMEOUT_DEFAULT, &fut), 0);
  ck_assert_int_eq(synchro_submit(s, &test_op_stubborn, NULL, SYNCHRO_TIMEOUT_DEFAULT, &stub), 0);
  ck_assert_int_eq(pthread_create(&th, NULL, blocker_main, &b), 0);
  ck_assert_int_eq(synchro_host_new_fd(&host), 0);
  ck_assert_int_eq(synchro_submit(s, &test_op_never, NULL, SYNCHRO_TIMEOUT_DEFAULT, &aio), 0);
  ck_assert_int_eq(synchro_future_then(aio, host, ignore_cb, NULL), 0);
  ck_assert_int_eq(synchro_cq_new(&cq), 0);
  ck_assert_int_eq(synchro_submit(s, &test_op_never, NULL, 100000, &inq), 0);
  ck_assert_int_eq(synchro_cq_add(cq, inq), 0);
  ck_assert_int_eq(synchro_stream_open(s, &test_sop_infinite, NULL, SYNCHRO_TIMEOUT_DEFAULT, &st),
                   0);
  ck_assert_int_eq(synchro_object_new(s, &test_class, &oargs, &obj, NULL), 0);
  ck_assert_int_eq(synchro_object_open_future(obj, &open_args, SYNCHRO_TIMEOUT_DEFAULT, &open), 0);
  ck_assert_int_eq(
      synchro_object_submit(obj, &test_oop_sleep, &sleep_args, SYNCHRO_TIMEOUT_DEFAULT, &meth), 0);
  ck_assert_int_eq(synchro_object_close_future(obj, SYNCHRO_TIMEOUT_DEFAULT, &close), 0);
  /* never has no cancel hook: a cancel resolves it at once, but its implementation
   * has not finished, so the loop still holds it ("completing"). */
  ck_assert_int_eq(synchro_submit(s, &test_op_never, NULL, SYNCHRO_TIMEOUT_DEFAULT, &gone), 0);
  ck_assert_int_eq(synchro_future_cancel(stub), 0);
  while (!b.submitted)
    usleep(1000);
  wait_pending(s, 10);
  ck_assert_int_eq(synchro_future_cancel(gone), 0);
  ck_assert_int_eq(synchro_future_wait(gone, 5000), SYNCHRO_ECANCELED);
  usleep(30000); /* ages grow */

  root = dump_json(s, 2000);
  ck_assert_str_eq(str_of(root, "synchronizer"), "synchro");
  ck_assert(bool_of(root, "running"));
  ck_assert(bool_of(root, "accepting"));
  ck_assert(bool_of(root, "loop_answered"));
  ck_assert(!bool_of(root, "caller_on_loop_thread"));
  ck_assert_int_eq(int_of(root, "caller_thread"), me);
  {
    char path[64];
    snprintf(path, sizeof(path), "/proc/self/task/%d", (int)int_of(root, "loop_tid"));
    ck_assert_msg(access(path, F_OK) == 0, "%s: no such thread", path);
  }
  ck_assert_int_eq(int_of(json_object_get(root, "stats"), "in_flight"), 9);
  ck_assert_int_eq(json_array_size(json_object_get(root, "pending")), 10);
  check_entry(root, fut, "future", "never", "started", me);
  check_entry(root, stub, "future", "stubborn", "cancelling", me);
  check_entry(root, gone, "future", "never", "completing", me);
  check_entry(root, aio, "aio-host", "never", "started", me);
  check_entry(root, inq, "cq", "never", "started", me);
  check_entry(root, open, "object-lifecycle", "test_open", "started", me);
  check_entry(root, close, "object-lifecycle", "test_close", "parked", me);
  check_entry(root, meth, "object-method", "obj_sleep", "started", me);
  ck_assert(bool_of(entry_for(root, stub), "cancel_requested"));
  ck_assert_str_eq(str_of(entry_for(root, close), "object_call"), "close");
  ck_assert(int_of(entry_for(root, inq), "deadline_in_ms") > 1000);
  ck_assert(int_of(entry_for(root, fut), "age_ms") >= 25);
  /* The blocking call and the stream have no handle of ours to match: find them. */
  {
    json_t *pending = json_object_get(root, "pending");
    size_t i;
    int blocking = 0, streams = 0;
    json_array_foreach(pending, i, e) {
      if (strcmp(str_of(e, "flavor"), "blocking") == 0) {
        ck_assert_str_eq(str_of(e, "function"), "never");
        ck_assert_int_eq(int_of(e, "origin"), b.thread_no);
        ck_assert(bool_of(e, "blocking"));
        blocking++;
      }
      if (strcmp(str_of(e, "flavor"), "stream") == 0) {
        ck_assert_str_eq(str_of(e, "state"), "started");
        streams++;
      }
    }
    ck_assert_int_eq(blocking, 1);
    ck_assert_int_eq(streams, 1);
  }
  ck_assert_uint_ne(b.thread_no, me);
  loop = json_object_get(root, "loop");
  ck_assert_int_eq(int_of(loop, "started"), 7);
  ck_assert_int_eq(int_of(loop, "parked"), 1);
  ck_assert_int_eq(int_of(loop, "cancelling"), 1);
  ck_assert_int_eq(int_of(loop, "completing"), 1);
  ck_assert_int_eq(int_of(loop, "objects"), 1);
  json_decref(root);

  /* Shut down: everything resolves; nothing is pending any more. */
  ck_assert_int_eq(synchro_close(s, 0), 0);
  pthread_join(th, NULL);
  ck_assert_int_eq(b.rc, SYNCHRO_ESHUTDOWN);
  root = dump_json(s, 1000);
  ck_assert(!bool_of(root, "running"));
  ck_assert(!bool_of(root, "accepting"));
  ck_assert(json_is_null(json_object_get(root, "loop_tid")));
  ck_assert_int_eq(json_array_size(json_object_get(root, "pending")), 0);
  ck_assert_int_eq(int_of(json_object_get(root, "stats"), "in_flight"), 0);
  json_decref(root);
  synchro_future_free(fut);
  synchro_future_free(stub);
  synchro_future_free(gone);
  synchro_future_free(open);
  synchro_future_free(close);
  synchro_future_free(meth);
  while (synchro_cq_next(cq, 0, &f) == 0)
    synchro_future_free(f);
  synchro_cq_free(cq);
  synchro_host_dispatch(host, 0);
  synchro_host_free(host);
  synchro_stream_free(st);
  synchro_object_free(obj);
  synchro_free(s);
}
END_TEST

START_TEST(test_a40_dump_of_a_stalled_loop_says_so) {
  synchro_t *s = new_sync();
  synchro_future_t *f, *g;
  json_t *root, *busy;
  double t0;
  stall_release = 0;
  stall_entered = 0;
  ck_assert_int_eq(synchro_submit(s, &stall_op, NULL, SYNCHRO_TIMEOUT_DEFAULT, &f), 0);
  ck_assert_int_eq(
      synchro_submit(s, &test_op_add, &(test_add_args_t){1, 2}, SYNCHRO_TIMEOUT_DEFAULT, &g), 0);
  while (!stall_entered)
    usleep(1000);
  usleep(50000);
  t0 = test_now_ms();
  root = dump_json(s, 100);
  ck_assert_msg(test_now_ms() - t0 < 2000 * test_time_multiplier(), "the dump waited %.0f ms",
                test_now_ms() - t0);
  ck_assert(bool_of(root, "running"));
  ck_assert(!bool_of(root, "loop_answered"));
  ck_assert(int_of(root, "waited_ms") >= 100);
  ck_assert(json_is_null(json_object_get(root, "pending")));
  ck_assert_int_eq(int_of(json_object_get(root, "stats"), "in_flight"), 2);
  busy = json_object_get(root, "loop_busy");
  ck_assert(json_is_object(busy));
  ck_assert_str_eq(str_of(busy, "function"), "stall");
  ck_assert(int_of(busy, "for_ms") >= 40);
  ck_assert(strstr(str_of(root, "note"), "did not answer") != NULL);
  json_decref(root);

  /* Released, the loop answers again; the abandoned request did no harm. */
  stall_release = 1;
  ck_assert_int_eq(synchro_future_wait(f, 5000), 0);
  ck_assert_int_eq(synchro_future_wait(g, 5000), 0);
  wait_pending(s, 0);
  root = dump_json(s, 2000);
  ck_assert(bool_of(root, "loop_answered"));
  ck_assert(json_is_null(json_object_get(root, "loop_busy")));
  ck_assert_int_eq(json_array_size(json_object_get(root, "pending")), 0);
  json_decref(root);
  synchro_future_free(f);
  synchro_future_free(g);
  ck_assert_int_eq(synchro_close(s, 1000), 0);
  synchro_free(s);
}
END_TEST

START_TEST(test_a40_dump_on_the_loop_thread_sees_queued_calls) {
  synchro_t *s = new_sync();
  uint32_t me = synchro_test_thread_number();
  synchro_future_t *d, *q;
  json_t *root, *e;
  json_error_t jerr;
  dumper_go = 0;
  dumper_entered = 0;
  dumper_text = NULL;
  ck_assert_int_eq(synchro_submit(s, &dumper_op, NULL, SYNCHRO_TIMEOUT_DEFAULT, &d), 0);
  while (!dumper_entered)
    usleep(1000);
  ck_assert_int_eq(
      synchro_submit(s, &test_op_add, &(test_add_args_t){1, 2}, SYNCHRO_TIMEOUT_DEFAULT, &q), 0);
  dumper_go = 1;
  ck_assert_int_eq(synchro_future_wait(d, 5000), 0);
  ck_assert_int_eq(synchro_future_wait(q, 5000), 0);
  ck_assert_int_eq(dumper_rc, 0);
  root = json_loads(dumper_text, 0, &jerr);
  ck_assert_msg(root != NULL, "not JSON: %s", jerr.text);
  ck_assert(bool_of(root, "caller_on_loop_thread"));
  ck_assert(bool_of(root, "loop_answered"));
  ck_assert_str_eq(str_of(json_object_get(root, "loop_busy"), "function"), "dumper");
  check_entry(root, d, "future", "dumper", "delivering", me);
  check_entry(root, q, "future", "add", "queued", me);
  e = entry_for(root, q);
  ck_assert(json_is_null(json_object_get(e, "age_ms"))); /* not taken by the loop yet */
  json_decref(root);
  synchro_mem_free(dumper_text);
  synchro_future_free(d);
  synchro_future_free(q);
  ck_assert_int_eq(synchro_close(s, 1000), 0);
  synchro_free(s);
}
END_TEST

START_TEST(test_a40_dump_input_and_idle_synchronizer) {
  synchro_t *s = new_sync();
  char *text = (char *)"x";
  json_t *root;
  ck_assert_int_eq(synchro_dump(NULL, 0, &text), SYNCHRO_EINVAL);
  ck_assert_ptr_null(text);
  ck_assert_int_eq(synchro_dump(s, 0, NULL), SYNCHRO_EINVAL);
  ck_assert_int_eq(synchro_dump(s, -7, &text), SYNCHRO_EINVAL);
  /* Never started: no loop thread, nothing pending, and the dump starts none. */
  root = dump_json(s, SYNCHRO_TIMEOUT_DEFAULT);
  ck_assert(!bool_of(root, "running"));
  ck_assert(!bool_of(root, "loop_answered"));
  ck_assert_int_eq(json_array_size(json_object_get(root, "pending")), 0);
  json_decref(root);
  ck_assert_int_eq(synchro_test_pending(s, 100), 0);
  {
    synchro_test_live_t live;
    synchro_test_live(&live);
    ck_assert_int_eq(live.threads, 0);
  }
  ck_assert_int_eq(synchro_close(s, 1000), 0);
  synchro_free(s);
}
END_TEST

/* ---- the watchdog ------------------------------------------------------------------------ */

START_TEST(test_hangs_forever) {
  synchro_t *s = new_sync();
  watchdog_watch(s);
  /* Never returns: the tcase times out, after the watchdog dumped s. */
  synchro_call(s, &test_op_never, NULL, SYNCHRO_TIMEOUT_INFINITE, NULL, NULL);
}
END_TEST

/* In a child: a one-test suite whose test hangs, run by Check in fork mode with a
 * watchdog'd tcase of `timeout` s. stderr goes to `fd`. Exits with Check's verdict. */
static void run_hanging_suite(int fd, double timeout) {
  Suite *suite = suite_create("hang");
  TCase *tc = tcase_create("hang");
  SRunner *sr;
  int failed;
  const char *vars[] = {"CK_RUN_SUITE",    "CK_RUN_CASE", "CK_INCLUDE_TAGS",
                        "CK_EXCLUDE_TAGS", "CK_TAGS",     "CK_VERBOSITY"};
  size_t i;
  for (i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
    unsetenv(vars[i]);
  dup2(fd, STDERR_FILENO);
  dup2(fd, STDOUT_FILENO);
  watchdog_tcase(tc, "hang", timeout);
  tcase_add_test(tc, test_hangs_forever);
  suite_add_tcase(suite, tc);
  sr = srunner_create(suite);
  srunner_set_fork_status(sr, CK_FORK);
  srunner_run_all(sr, CK_NORMAL);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  _exit(failed == 1 ? 0 : 3);
}

START_TEST(test_a40_watchdog_dumps_a_hung_test) {
  int fds[2], status;
  pid_t pid;
  char *out = NULL;
  size_t len = 0, cap = 0;
  double t0 = test_now_ms(), budget = (1.0 * test_time_multiplier() + 15) * 1000;
  const char *begin, *end;
  json_t *root;
  json_error_t jerr;
  ck_assert_int_eq(pipe(fds), 0);
  fflush(NULL);
  pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    close(fds[0]);
    run_hanging_suite(fds[1], 1.0);
  }
  close(fds[1]);
  for (;;) { /* read until the child is done, within a budget */
    struct pollfd p = {.fd = fds[0], .events = POLLIN};
    ssize_t n;
    if (test_now_ms() - t0 > budget)
      break;
    if (poll(&p, 1, 100) <= 0)
      continue;
    if (len + 4096 + 1 > cap) {
      cap = cap ? cap * 2 : 16384;
      out = realloc(out, cap);
      ck_assert_ptr_nonnull(out);
    }
    n = read(fds[0], out + len, 4096);
    if (n <= 0)
      break;
    len += (size_t)n;
  }
  close(fds[0]);
  if (test_now_ms() - t0 > budget)
    kill(pid, SIGKILL);
  ck_assert_int_eq(waitpid(pid, &status, 0), pid);
  ck_assert_ptr_nonnull(out);
  out[len] = '\0';
  /* Check reported the test as timed out (one failure), and the dump came first. */
  ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %d, output:\n%s",
                status, out);
  ck_assert_msg(strstr(out, "watchdog: hang / test_hangs_forever is about to time out") != NULL,
                "%s", out);
  begin = strstr(out, WATCHDOG_BEGIN);
  ck_assert_msg(begin != NULL, "no dump in:\n%s", out);
  begin += strlen(WATCHDOG_BEGIN);
  end = strstr(begin, WATCHDOG_END);
  ck_assert_msg(end != NULL, "unterminated dump in:\n%s", out);
  root = json_loadb(begin, (size_t)(end - begin), 0, &jerr);
  ck_assert_msg(root != NULL, "dump is not JSON (%s):\n%s", jerr.text, out);
  ck_assert(bool_of(root, "loop_answered"));
  ck_assert_int_eq(json_array_size(json_object_get(root, "pending")), 1);
  {
    json_t *e = json_array_get(json_object_get(root, "pending"), 0);
    ck_assert_str_eq(str_of(e, "flavor"), "blocking");
    ck_assert_str_eq(str_of(e, "function"), "never");
    ck_assert_str_eq(str_of(e, "state"), "started");
  }
  ck_assert_msg(strstr(end, "imeout") != NULL, "Check did not report a timeout:\n%s", out);
  json_decref(root);
  free(out);
}
END_TEST

/* ---- live-resource counters ------------------------------------------------------------ */

static void live_eq(const synchro_test_live_t *a, const synchro_test_live_t *b) {
  ck_assert_int_eq(a->threads, b->threads);
  ck_assert_int_eq(a->fds, b->fds);
  ck_assert_int_eq(a->loops, b->loops);
  ck_assert_int_eq(a->handles, b->handles);
  ck_assert_int_eq(a->records, b->records);
  ck_assert_int_eq(a->allocations, b->allocations);
}

static void on_aio(synchro_future_t *f, int status, void *data) {
  (void)f;
  (void)status;
  ++*(int *)data;
}

/* One full use of everything: two synchronizers, calls of every flavor, a uv host and
 * an fd host, a queue, a stream, an object; then close and free it all. `during` gets
 * the counters while everything is live. */
static void use_everything(synchro_test_live_t *during) {
  synchro_t *s = new_sync(), *s2 = new_sync();
  synchro_host_t *uvh, *fdh;
  synchro_cq_t *cq;
  synchro_stream_t *st;
  synchro_object_t *obj;
  synchro_future_t *f, *g, *never;
  uv_loop_t uvl;
  test_add_args_t add = {2, 3};
  test_count_args_t count = {.n = 10, .stall_after = -1};
  test_obj_args_t oargs = {.value = 7};
  test_obj_open_args_t oopen = {.ms = 1};
  test_obj_value_args_t vargs = {.add = 1};
  int64_t sum = 0, item;
  int delivered = 0, n = 0;

  ck_assert_int_eq(uv_loop_init(&uvl), 0);
  ck_assert_int_eq(synchro_call(s, &test_op_add, &add, SYNCHRO_TIMEOUT_DEFAULT, &sum, NULL), 0);
  ck_assert_int_eq(synchro_call(s2, &test_op_add, &add, SYNCHRO_TIMEOUT_DEFAULT, &sum, NULL), 0);
  ck_assert_int_eq(synchro_host_new_uv(&uvh, &uvl), 0);
  ck_assert_int_eq(synchro_host_new_fd(&fdh), 0);
  ck_assert_int_eq(synchro_cq_new(&cq), 0);
  ck_assert_int_eq(synchro_submit(s, &test_op_add, &add, SYNCHRO_TIMEOUT_DEFAULT, &f), 0);
  ck_assert_int_eq(synchro_future_then(f, uvh, on_aio, &delivered), 0);
  ck_assert_int_eq(synchro_submit(s, &test_op_add, &add, SYNCHRO_TIMEOUT_DEFAULT, &f), 0);
  ck_assert_int_eq(synchro_future_then(f, fdh, on_aio, &delivered), 0);
  ck_assert_int_eq(synchro_submit(s, &test_op_add, &add, SYNCHRO_TIMEOUT_DEFAULT, &f), 0);
  ck_assert_int_eq(synchro_cq_add(cq, f), 0);
  ck_assert_int_eq(synchro_submit(s2, &test_op_never, NULL, SYNCHRO_TIMEOUT_DEFAULT, &never), 0);
  ck_assert_int_eq(synchro_stream_open(s, &test_sop_count, &count, SYNCHRO_TIMEOUT_DEFAULT, &st),
                   0);
  ck_assert_int_eq(synchro_object_new(s, &test_class, &oargs, &obj, NULL), 0);
  ck_assert_int_eq(synchro_object_open(obj, &oopen, SYNCHRO_TIMEOUT_DEFAULT, NULL), 0);
  ck_assert_int_eq(
      synchro_object_call(obj, &test_oop_value, &vargs, SYNCHRO_TIMEOUT_DEFAULT, &sum, NULL), 0);
  ck_assert_int_eq(sum, 8);
  synchro_test_live(during);
  while (synchro_stream_next(st, &item, 5000) == 0)
    n++;
  ck_assert_int_eq(n, 10);
  ck_assert_int_eq(synchro_cq_next(cq, 5000, &g), 0);
  synchro_future_free(g);
  while (delivered < 2) {
    uv_run(&uvl, UV_RUN_NOWAIT);
    synchro_host_dispatch(fdh, 0);
    usleep(1000);
  }
  ck_assert_int_eq(synchro_object_close(obj, SYNCHRO_TIMEOUT_DEFAULT, NULL), 0);
  synchro_object_free(obj);
  synchro_stream_free(st);
  synchro_cq_free(cq);
  synchro_host_free(fdh);
  synchro_host_free(uvh);
  uv_run(&uvl, UV_RUN_DEFAULT); /* lets the uv host's handle close */
  ck_assert_int_eq(uv_loop_close(&uvl), 0);
  ck_assert_int_eq(synchro_close(s, 1000), 0);
  ck_assert_int_eq(synchro_close(s2, 0), 0); /* resolves `never` as shut down */
  ck_assert_int_eq(synchro_future_status(never), SYNCHRO_ESHUTDOWN);
  synchro_future_free(never);
  synchro_free(s);
  synchro_free(s2);
}

START_TEST(test_live_counters_return_to_baseline) {
  synchro_test_live_t base, during, after;
  use_everything(&during); /* warms the record pool and the caches up */
  synchro_test_live(&base);
  use_everything(&during);
  synchro_test_live(&after);
  live_eq(&base, &after);
  /* And they did count something while it all was live. */
  ck_assert_int_eq(during.threads, base.threads + 2);
  ck_assert_int_eq(during.loops, base.loops + 2);
  ck_assert_int_eq(during.fds, base.fds + 5);         /* 2 loops, 2 hosts, 1 queue */
  ck_assert_int_eq(during.handles, base.handles + 9); /* 4 per loop, 1 for the uv host */
  ck_assert_int_ge(during.records, base.records + 2); /* never, the stream's call at least */
  ck_assert_int_gt(during.allocations, base.allocations);
}
END_TEST

/* A leaked future is seen: the counters are not just always equal. */
/* The loop drops its reference at the end of its iteration, just after the outcome is
 * published: wait for the count to settle. */
static int64_t wait_records(int64_t want) {
  synchro_test_live_t now;
  double t0 = test_now_ms();
  do {
    synchro_test_live(&now);
    if (now.records == want)
      break;
    usleep(1000);
  } while (test_now_ms() - t0 < 2000 * test_time_multiplier());
  return now.records;
}

START_TEST(test_live_counters_see_a_leak) {
  synchro_t *s = new_sync();
  synchro_test_live_t base, after;
  synchro_future_t *f;
  test_add_args_t add = {1, 1};
  ck_assert_int_eq(synchro_submit(s, &test_op_add, &add, SYNCHRO_TIMEOUT_DEFAULT, &f), 0);
  ck_assert_int_eq(synchro_future_wait(f, 5000), 0);
  synchro_future_free(f);
  synchro_test_live(&base);
  base.records = wait_records(0);
  ck_assert_int_eq(synchro_submit(s, &test_op_add, &add, SYNCHRO_TIMEOUT_DEFAULT, &f), 0);
  ck_assert_int_eq(synchro_future_wait(f, 5000), 0);
  synchro_test_live(&after);
  ck_assert_int_eq(after.records, base.records + 1); /* the unfreed future */
  synchro_future_free(f);
  ck_assert_int_eq(wait_records(base.records), base.records);
  ck_assert_int_eq(synchro_close(s, 1000), 0);
  synchro_test_live(&after);
  ck_assert_int_eq(after.threads, base.threads - 1);
  ck_assert_int_eq(after.fds, base.fds); /* the wake fd stays until synchro_free */
  synchro_free(s);
  synchro_test_live(&after);
  ck_assert_int_eq(after.fds, base.fds - 1);
}
END_TEST

static Suite *dump_suite(void) {
  Suite *s = suite_create("dump");
  TCase *tc;

  tc = tcase_create("dump");
  watchdog_tcase(tc, "dump", 20);
  tcase_add_test(tc, test_a40_dump_lists_every_pending_call);
  tcase_add_test(tc, test_a40_dump_of_a_stalled_loop_says_so);
  tcase_add_test(tc, test_a40_dump_on_the_loop_thread_sees_queued_calls);
  tcase_add_test(tc, test_a40_dump_input_and_idle_synchronizer);
  suite_add_tcase(s, tc);

  tc = tcase_create("watchdog");
  tcase_set_timeout(tc, 30);
  tcase_set_tags(tc, "fork");
  tcase_add_test(tc, test_a40_watchdog_dumps_a_hung_test);
  suite_add_tcase(s, tc);

  tc = tcase_create("live");
  watchdog_tcase(tc, "live", 20);
  tcase_add_test(tc, test_live_counters_return_to_baseline);
  tcase_add_test(tc, test_live_counters_see_a_leak);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(dump_suite());
  int failed;
  srunner_run_all(sr, CK_ENV);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
