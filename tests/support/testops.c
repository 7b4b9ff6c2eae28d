/* tests/support/testops.c - the test implementations. */
#include "testops.h"

#include <ctype.h>
#include <dirent.h>
#include <jansson.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

atomic_long test_hooks_run, test_hooks_off_loop, test_cleanups_done, test_results_freed,
    test_args_freed, test_results_made, test_sleeps_started;
atomic_int test_gate_open;
atomic_int test_second_rc, test_last_cancel_reason;

void testops_reset(void) {
  test_hooks_run = test_hooks_off_loop = test_cleanups_done = 0;
  test_results_freed = test_args_freed = 0;
  test_results_made = test_sleeps_started = 0;
  test_gate_open = 0;
  test_second_rc = 0;
  test_last_cancel_reason = 0;
}

long test_scaled(long n) {
  const char *env = getenv("SYNCHRO_TEST_SCALE");
  long div = env != NULL ? atol(env) : 1;
  if (div < 1)
    div = 1;
  return n / div > 0 ? n / div : 1;
}

double test_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

double test_time_multiplier(void) {
  const char *m = getenv("CK_TIMEOUT_MULTIPLIER");
  return m != NULL && atof(m) > 0 ? atof(m) : 1.0;
}

double test_bound_ms(double ms) { return ms * test_time_multiplier(); }

void test_timer_start(uv_timer_t *timer, uv_timer_cb cb, int64_t ms) {
  uv_update_time(timer->loop);
  uv_timer_start(timer, cb, (uint64_t)(ms < 0 ? 0 : ms), 0);
}

int test_thread_count(void) {
  DIR *d = opendir("/proc/self/task");
  struct dirent *e;
  int n = 0;
  if (d == NULL)
    return -1;
  while ((e = readdir(d)) != NULL)
    if (e->d_name[0] != '.')
      n++;
  closedir(d);
  return n;
}

/* ---- add ---- */
static void add_impl(synchro_call_t *call) {
  const test_add_args_t *a = synchro_call_args(call);
  int64_t sum = a->a + a->b;
  synchro_call_return(call, &sum);
}
const synchro_op_t test_op_add = {.name = "add",
                                  .impl = add_impl,
                                  .args_size = sizeof(test_add_args_t),
                                  .result_size = sizeof(int64_t)};

/* ---- sleep ---- */
typedef struct {
  uv_timer_t timer;
  synchro_call_t *call;
  int64_t ms;
  int64_t cleanup_ms;
  int reason;
} sleeper_t;

static void sleeper_closed(uv_handle_t *h) {
  sleeper_t *sl = h->data;
  if (sl->reason != 0) {
    test_cleanups_done++;
    synchro_call_fail(sl->call, SYNCHRO_ECANCELED, NULL, "stopped: %s",
                      synchro_strerror(sl->reason));
  } else {
    synchro_call_return(sl->call, &sl->ms);
  }
  free(sl);
}

static void sleeper_fired(uv_timer_t *t) { uv_close((uv_handle_t *)t, sleeper_closed); }

static void sleeper_cancel(synchro_call_t *call, int reason, void *data) {
  sleeper_t *sl = data;
  test_hooks_run++;
  if (!synchro_is_loop_thread(synchro_call_synchronizer(call)))
    test_hooks_off_loop++;
  test_last_cancel_reason = reason;
  sl->reason = reason;
  uv_timer_stop(&sl->timer);
  /* cleanup that takes time: finish after cleanup_ms */
  test_timer_start(&sl->timer, sleeper_fired, sl->cleanup_ms);
}

static void sleep_impl(synchro_call_t *call) {
  const test_sleep_args_t *a = synchro_call_args(call);
  sleeper_t *sl = calloc(1, sizeof(*sl));
  test_sleeps_started++;
  sl->call = call;
  sl->ms = a->ms;
  sl->cleanup_ms = a->cleanup_ms;
  uv_timer_init(synchro_call_loop(call), &sl->timer);
  sl->timer.data = sl;
  test_timer_start(&sl->timer, sleeper_fired, a->ms);
  synchro_call_on_cancel(call, sleeper_cancel, sl);
}
const synchro_op_t test_op_sleep = {.name = "sleep",
                                    .impl = sleep_impl,
                                    .args_size = sizeof(test_sleep_args_t),
                                    .result_size = sizeof(int64_t)};

/* ---- never / stubborn ---- */
static void never_impl(synchro_call_t *call) { (void)call; }
const synchro_op_t test_op_never = {.name = "never", .impl = never_impl};

static void stubborn_hook(synchro_call_t *call, int reason, void *data) {
  (void)call;
  (void)data;
  test_last_cancel_reason = reason;
  test_hooks_run++;
}
static void stubborn_impl(synchro_call_t *call) {
  synchro_call_on_cancel(call, stubborn_hook, NULL);
}
const synchro_op_t test_op_stubborn = {.name = "stubborn", .impl = stubborn_impl};

/* ---- fail ---- */
static void fail_impl(synchro_call_t *call) {
  const test_fail_args_t *a = synchro_call_args(call);
  synchro_call_fail(call, a->code, json_pack("{s:i}", "retry_after", 2), "failed on %s", "purpose");
}
const synchro_op_t test_op_fail = {.name = "fail",
                                   .impl = fail_impl,
                                   .args_size = sizeof(test_fail_args_t),
                                   .result_size = sizeof(int64_t)};

/* ---- upper ---- */
static int upper_copy(void *dst, const void *src) {
  const test_string_args_t *s = src;
  test_string_args_t *d = dst;
  d->text = s->text ? strdup(s->text) : NULL;
  return s->text && !d->text ? SYNCHRO_ENOMEM : 0;
}
static void upper_args_free(void *args) {
  test_string_args_t *a = args;
  free(a->text);
  test_args_freed++;
}
static void upper_result_free(void *result) {
  free(*(char **)result);
  test_results_freed++;
}
static void upper_impl(synchro_call_t *call) {
  const test_string_args_t *a = synchro_call_args(call);
  char *out = strdup(a->text ? a->text : "");
  for (char *p = out; *p; p++)
    *p = (char)toupper((unsigned char)*p);
  test_results_made++;
  synchro_call_return(call, &out);
}
const synchro_op_t test_op_upper = {.name = "upper",
                                    .impl = upper_impl,
                                    .args_size = sizeof(test_string_args_t),
                                    .args_copy = upper_copy,
                                    .args_free = upper_args_free,
                                    .result_size = sizeof(char *),
                                    .result_free = upper_result_free};

/* ---- reenter ---- */
static void reenter_impl(synchro_call_t *call) {
  test_add_args_t args = {1, 2};
  int64_t sum = 0;
  int64_t rc = synchro_call(synchro_call_synchronizer(call), &test_op_add, &args,
                            SYNCHRO_TIMEOUT_DEFAULT, &sum, NULL);
  synchro_call_return(call, &rc);
}
const synchro_op_t test_op_reenter = {
    .name = "reenter", .impl = reenter_impl, .result_size = sizeof(int64_t)};

/* ---- twice ---- */
static void twice_impl(synchro_call_t *call) {
  int64_t one = 1, two = 2;
  synchro_call_return(call, &one);
  test_second_rc = synchro_call_return(call, &two);
}
const synchro_op_t test_op_twice = {
    .name = "twice", .impl = twice_impl, .result_size = sizeof(int64_t)};

/* ---- upper_mem ---- */
static int upper_mem_copy(void *dst, const void *src) {
  const test_string_args_t *s = src;
  test_string_args_t *d = dst;
  d->text = s->text ? synchro_mem_strdup(s->text) : NULL;
  return s->text && !d->text ? SYNCHRO_ENOMEM : 0;
}
static void upper_mem_args_free(void *args) {
  test_string_args_t *a = args;
  synchro_mem_free(a->text);
  test_args_freed++;
}
static void upper_mem_result_free(void *result) {
  synchro_mem_free(*(char **)result);
  test_results_freed++;
}
static void upper_mem_impl(synchro_call_t *call) {
  const test_string_args_t *a = synchro_call_args(call);
  char *out = synchro_mem_strdup(a->text ? a->text : "");
  if (out == NULL) {
    synchro_call_fail(call, SYNCHRO_ENOMEM, NULL, NULL);
    return;
  }
  for (char *p = out; *p; p++)
    *p = (char)toupper((unsigned char)*p);
  test_results_made++;
  synchro_call_return(call, &out);
}
const synchro_op_t test_op_upper_mem = {.name = "upper_mem",
                                        .impl = upper_mem_impl,
                                        .args_size = sizeof(test_string_args_t),
                                        .args_copy = upper_mem_copy,
                                        .args_free = upper_mem_args_free,
                                        .result_size = sizeof(char *),
                                        .result_free = upper_mem_result_free};

/* ---- gate ---- */
static void gate_impl(synchro_call_t *call) {
  int64_t zero = 0;
  while (!test_gate_open)
    sched_yield();
  synchro_call_return(call, &zero);
}
const synchro_op_t test_op_gate = {
    .name = "gate", .impl = gate_impl, .result_size = sizeof(int64_t)};

int test_wait_child(pid_t pid, double ms) {
  double t0 = test_now_ms();
  int status;
  for (;;) {
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid)
      return status;
    if (r < 0)
      return -2;
    if (test_now_ms() - t0 > ms) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      return -1;
    }
    nanosleep(&(struct timespec){0, 500000}, NULL);
  }
}
