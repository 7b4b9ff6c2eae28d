/* tests/check_conformance.c - one scenario table, three calling styles (user need A34).
 *
 * The conformance module (tests/conformance/conf.json, implemented once in
 * tests/conformance/conf_impl.c, wrappers generated into tests/conformance/gen/) is
 * called through each style the generator emits:
 *   blocking  conf_op(args..., &out, &err), conf_op_next(st, &item, INFINITE);
 *   futures   conf_op_future() + synchro_future_wait() + conf_op_result(), and timed
 *             conf_op_next(st, &item, 5 ms) waits for streams;
 *   aio       conf_op_aio() / conf_op_next_aio() with callbacks on a libuv host loop
 *             run by the test thread.
 * Every scenario records an outcome per style (status, value, error code, message,
 * origin, JSON details, stream items and end) and asserts that the styles agree with
 * each other and with the expected values. Callbacks only record; every assertion runs
 * on the test thread. */
#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "conf.h"

typedef enum style_e { BLOCKING, FUTURES, AIO, STYLES } style_t;
static const char *const style_names[STYLES] = {"blocking", "futures", "aio"};

#define MAX_ITEMS 16
#define FOREVER SYNCHRO_TIMEOUT_INFINITE

/* What one call did, in any style. */
typedef struct outcome_s {
  int status;
  int64_t value;
  char text[128];
  void *handle; /* a handle result: its address, for identity checks */
  int err_code;
  char message[128];
  char origin[64];
  char details[128];
  int64_t items[MAX_ITEMS];
  int nitems;
  int64_t elapsed_ms;
} outcome_t;

/* ---- the host loop (per test: each runs in its own process) ---------------------- */

static uv_loop_t loop;
static synchro_host_t *host;

static void setup(void) {
  ck_assert_int_eq(uv_loop_init(&loop), 0);
  ck_assert_int_eq(synchro_host_new_uv(&host, &loop), 0);
}

static void teardown(void) {
  synchro_host_free(host);
  uv_run(&loop, UV_RUN_NOWAIT);
  uv_loop_close(&loop);
}

/* What an aio callback fills in. */
typedef struct aio_s {
  outcome_t *o;
  bool done;
  int stop_after; /* streams: close from the callback after this many items (0: never) */
} aio_t;

static void run_until(const bool *done) {
  while (!*done)
    uv_run(&loop, UV_RUN_ONCE);
}

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* Copies an error's fields into the outcome (none for NULL). */
static void record_error(outcome_t *o, const synchro_error_t *err) {
  json_t *details;
  char *text;

  if (err == NULL)
    return;
  o->err_code = synchro_error_code(err);
  snprintf(o->message, sizeof(o->message), "%s", synchro_error_message(err));
  snprintf(o->origin, sizeof(o->origin), "%s", synchro_error_origin(err));
  details = synchro_error_details(err);
  if (details != NULL && (text = json_dumps(details, JSON_COMPACT | JSON_SORT_KEYS)) != NULL) {
    snprintf(o->details, sizeof(o->details), "%s", text);
    free(text);
  }
}

/* ---- aio callbacks: record only ------------------------------------------------------ */

static void on_int(int status, int64_t result, const synchro_error_t *err, void *data) {
  aio_t *w = data;
  w->o->status = status;
  w->o->value = result;
  record_error(w->o, err);
  w->done = true;
}

static void on_string(int status, const char *result, const synchro_error_t *err, void *data) {
  aio_t *w = data;
  w->o->status = status;
  if (result != NULL)
    snprintf(w->o->text, sizeof(w->o->text), "%s", result);
  record_error(w->o, err);
  w->done = true;
}

static void on_void(int status, const synchro_error_t *err, void *data) {
  aio_t *w = data;
  w->o->status = status;
  record_error(w->o, err);
  w->done = true;
}

/* A handle result is borrowed during the callback: keep a reference. */
static void on_counter(int status, conf_counter_t *result, const synchro_error_t *err, void *data) {
  aio_t *w = data;
  w->o->status = status;
  w->o->handle = result != NULL ? conf_counter_ref(result) : NULL;
  record_error(w->o, err);
  w->done = true;
}

/* ---- running one call in one style ----------------------------------------------------- */

/* OP(args..., OUT, &err) / OP_future + OP_result(f, OUT) / OP_aio(args..., host, CB, &w).
 * RUN0 is the same for operations without arguments. */
#define RUN_STYLE(o, style, OUT, CB, BLOCK, FUT, RES, AIOCALL)                                     \
  do {                                                                                             \
    int64_t start_ = now_ms();                                                                     \
    switch (style) {                                                                               \
    case BLOCKING: {                                                                               \
      synchro_error_t *err = NULL;                                                                 \
      (o)->status = BLOCK;                                                                         \
      record_error((o), err);                                                                      \
      synchro_error_free(err);                                                                     \
      break;                                                                                       \
    }                                                                                              \
    case FUTURES: {                                                                                \
      synchro_future_t *f = NULL;                                                                  \
      (o)->status = FUT;                                                                           \
      if ((o)->status == 0) {                                                                      \
        (o)->status = synchro_future_wait(f, FOREVER);                                             \
        if ((o)->status == 0)                                                                      \
          (o)->status = RES;                                                                       \
        record_error((o), synchro_future_error(f));                                                \
        synchro_future_free(f);                                                                    \
      }                                                                                            \
      break;                                                                                       \
    }                                                                                              \
    default: {                                                                                     \
      aio_t w = {(o), false, 0};                                                                   \
      (o)->status = AIOCALL;                                                                       \
      if ((o)->status == 0)                                                                        \
        run_until(&w.done);                                                                        \
      break;                                                                                       \
    }                                                                                              \
    }                                                                                              \
    (o)->elapsed_ms = now_ms() - start_;                                                           \
  } while (0)

#define RUN(o, style, OUT, CB, OP, ...)                                                            \
  RUN_STYLE(o, style, OUT, CB, OP(__VA_ARGS__, OUT, &err), OP##_future(__VA_ARGS__, &f),           \
            OP##_result(f, OUT), OP##_aio(__VA_ARGS__, host, CB, &w))
#define RUN0(o, style, OUT, CB, OP)                                                                \
  RUN_STYLE(o, style, OUT, CB, OP(OUT, &err), OP##_future(&f), OP##_result(f, OUT),                \
            OP##_aio(host, CB, &w))
/* Operations without a result (open, close). */
#define RUN_VOID(o, style, OP, self)                                                               \
  RUN_STYLE(o, style, NULL, on_void, OP(self, &err), OP##_future(self, &f), OP##_result(f),        \
            OP##_aio(self, host, on_void, &w))

static void run_add(style_t style, int64_t a, int64_t b, outcome_t *o) {
  RUN(o, style, &o->value, on_int, conf_add, a, b);
}

static void run_greet(style_t style, const char *name, outcome_t *o) {
  char *s = NULL;
  RUN(o, style, &s, on_string, conf_greet, name);
  if (s != NULL)
    snprintf(o->text, sizeof(o->text), "%s", s);
  synchro_mem_free(s);
}

static void run_limited(style_t style, outcome_t *o) {
  RUN0(o, style, &o->value, on_int, conf_limited);
}

static void run_sleep_bounded(style_t style, int64_t ms, outcome_t *o) {
  RUN(o, style, &o->value, on_int, conf_sleep_bounded, ms);
}

static int64_t cancel_count(void) {
  int64_t n = -1;
  ck_assert_int_eq(conf_cancel_count(&n, NULL), 0);
  return n;
}

/* Cancel hooks run on the loop thread a little after the cancellation: wait for one
 * more than `before`. */
static void assert_hook_ran(int64_t before, const char *what) {
  int i;
  for (i = 0; i < 2000 && cancel_count() == before; i++)
    sleep_ms(1);
  ck_assert_msg(cancel_count() == before + 1, "%s: the cancel hook did not run once", what);
}

/* ---- streams ----------------------------------------------------------------------------- */

static void on_item(conf_count_stream_t *st, int status, int64_t item, const synchro_error_t *err,
                    void *data) {
  aio_t *w = data;
  if (status == 0 && w->o->nitems < MAX_ITEMS) {
    w->o->items[w->o->nitems++] = item;
    if (w->stop_after > 0 && w->o->nitems == w->stop_after) {
      conf_count_close(st); /* stop early, from the callback */
      w->done = true;
      return;
    }
    w->o->status = conf_count_next_aio(st, host, on_item, w);
    if (w->o->status != 0)
      w->done = true;
    return;
  }
  w->o->status = status;
  record_error(w->o, err);
  w->done = true;
}

/* Consumes count(n, fail_after), stopping early after stop_after items (0: never). */
static void run_count(style_t style, int64_t n, int64_t fail_after, int stop_after, outcome_t *o) {
  conf_count_stream_t *st = NULL;
  int64_t item;
  int rc;

  o->status = conf_count_open(n, fail_after, &st);
  if (o->status != 0)
    return;
  if (style == AIO) {
    aio_t w = {o, false, stop_after};
    o->status = conf_count_next_aio(st, host, on_item, &w);
    if (o->status == 0)
      run_until(&w.done);
    if (stop_after == 0)
      conf_count_close(st);
    return;
  }
  for (;;) {
    if (stop_after > 0 && o->nitems == stop_after) {
      rc = 0;
      break;
    }
    rc = conf_count_next(st, &item, style == BLOCKING ? FOREVER : 5);
    if (rc == SYNCHRO_EPENDING && style == FUTURES)
      continue; /* a wait that timed out is not the stream's outcome */
    if (rc != 0 || o->nitems == MAX_ITEMS)
      break;
    o->items[o->nitems++] = item;
  }
  o->status = rc;
  if (rc != 0 && rc != SYNCHRO_EEND)
    record_error(o, conf_count_error(st));
  conf_count_close(st);
}

static void on_tick(conf_counter_ticks_stream_t *st, int status, int64_t item,
                    const synchro_error_t *err, void *data) {
  aio_t *w = data;
  if (status == 0 && w->o->nitems < MAX_ITEMS) {
    w->o->items[w->o->nitems++] = item;
    w->o->status = conf_counter_ticks_next_aio(st, host, on_tick, w);
    if (w->o->status != 0)
      w->done = true;
    return;
  }
  w->o->status = status;
  record_error(w->o, err);
  w->done = true;
}

static void run_ticks(style_t style, conf_counter_t *c, int64_t n, outcome_t *o) {
  conf_counter_ticks_stream_t *st = NULL;
  int64_t item;
  int rc;

  o->status = conf_counter_ticks_open(c, n, &st);
  if (o->status != 0)
    return;
  if (style == AIO) {
    aio_t w = {o, false, 0};
    o->status = conf_counter_ticks_next_aio(st, host, on_tick, &w);
    if (o->status == 0)
      run_until(&w.done);
  } else {
    while ((rc = conf_counter_ticks_next(st, &item, style == BLOCKING ? FOREVER : 5)) == 0 ||
           (rc == SYNCHRO_EPENDING && style == FUTURES))
      if (rc == 0 && o->nitems < MAX_ITEMS)
        o->items[o->nitems++] = item;
    o->status = rc;
    if (rc != SYNCHRO_EEND)
      record_error(o, conf_counter_ticks_error(st));
  }
  conf_counter_ticks_close(st);
}

/* ---- comparing styles -------------------------------------------------------------------- */

static void assert_same(const outcome_t *a, const outcome_t *b, const char *what, style_t sb) {
  int i;

  ck_assert_msg(a->status == b->status, "%s: %s gives %d (%s), blocking %d (%s)", what,
                style_names[sb], b->status, synchro_err_name(b->status), a->status,
                synchro_err_name(a->status));
  ck_assert_msg(a->value == b->value, "%s: %s value %lld, blocking %lld", what, style_names[sb],
                (long long)b->value, (long long)a->value);
  ck_assert_msg(strcmp(a->text, b->text) == 0, "%s: %s text \"%s\", blocking \"%s\"", what,
                style_names[sb], b->text, a->text);
  ck_assert_msg(a->err_code == b->err_code, "%s: %s error code %d, blocking %d", what,
                style_names[sb], b->err_code, a->err_code);
  ck_assert_msg(strcmp(a->message, b->message) == 0, "%s: %s message \"%s\", blocking \"%s\"", what,
                style_names[sb], b->message, a->message);
  ck_assert_msg(strcmp(a->origin, b->origin) == 0, "%s: %s origin \"%s\", blocking \"%s\"", what,
                style_names[sb], b->origin, a->origin);
  ck_assert_msg(strcmp(a->details, b->details) == 0, "%s: %s details %s, blocking %s", what,
                style_names[sb], b->details, a->details);
  ck_assert_msg(a->nitems == b->nitems, "%s: %s gives %d items, blocking %d", what, style_names[sb],
                b->nitems, a->nitems);
  for (i = 0; i < a->nitems; i++)
    ck_assert_msg(a->items[i] == b->items[i], "%s: item %d differs (%s)", what, i, style_names[sb]);
}

/* The styles agree, and the blocking outcome is `expected` where it matters. */
static void assert_agree(outcome_t o[STYLES], const char *what) {
  style_t s;
  for (s = FUTURES; s < STYLES; s++)
    assert_same(&o[BLOCKING], &o[s], what, s);
}

/* ---- scenarios ------------------------------------------------------------------------------ */

START_TEST(test_int_result) {
  outcome_t o[STYLES];
  style_t s;

  memset(o, 0, sizeof(o));
  for (s = 0; s < STYLES; s++)
    run_add(s, 2, 40, &o[s]);
  assert_agree(o, "add(2, 40)");
  ck_assert_int_eq(o[BLOCKING].status, 0);
  ck_assert_int_eq(o[BLOCKING].value, 42);
  ck_assert_int_eq(o[BLOCKING].err_code, 0);
}
END_TEST

START_TEST(test_string_result) {
  outcome_t o[STYLES];
  style_t s;

  memset(o, 0, sizeof(o));
  for (s = 0; s < STYLES; s++)
    run_greet(s, "world", &o[s]);
  assert_agree(o, "greet(\"world\")");
  ck_assert_int_eq(o[BLOCKING].status, 0);
  ck_assert_str_eq(o[BLOCKING].text, "hello, world");

  /* a NULL the spec forbids: refused at once, the same way */
  memset(o, 0, sizeof(o));
  for (s = 0; s < STYLES; s++)
    run_greet(s, NULL, &o[s]);
  assert_agree(o, "greet(NULL)");
  ck_assert_int_eq(o[BLOCKING].status, SYNCHRO_EINVAL);
}
END_TEST

START_TEST(test_domain_error) {
  outcome_t o[STYLES];
  style_t s;

  memset(o, 0, sizeof(o));
  for (s = 0; s < STYLES; s++)
    run_limited(s, &o[s]);
  assert_agree(o, "limited()");
  ck_assert_int_eq(o[BLOCKING].status, CONF_ERATE_LIMITED);
  ck_assert_int_eq(o[BLOCKING].err_code, CONF_ERATE_LIMITED);
  ck_assert_str_eq(o[BLOCKING].message, "slow down");
  ck_assert_str_eq(o[BLOCKING].origin, "conf_limited");
  ck_assert_str_eq(o[BLOCKING].details, "{\"retry_after\":2}");
  ck_assert_str_eq(conf_strerror(CONF_ERATE_LIMITED), "rate limited");
}
END_TEST

START_TEST(test_deadline) {
  outcome_t o[STYLES];
  int64_t before;
  style_t s;

  memset(o, 0, sizeof(o));
  for (s = 0; s < STYLES; s++) {
    before = cancel_count();
    run_sleep_bounded(s, 10000, &o[s]);
    assert_hook_ran(before, style_names[s]);
    ck_assert_msg(o[s].elapsed_ms >= 90 && o[s].elapsed_ms < 2000,
                  "%s: the 100 ms deadline fired after %lld ms", style_names[s],
                  (long long)o[s].elapsed_ms);
    o[s].elapsed_ms = 0;
  }
  assert_agree(o, "sleep_bounded(10000)");
  ck_assert_int_eq(o[BLOCKING].status, SYNCHRO_ETIMEDOUT);
  ck_assert_int_eq(o[BLOCKING].err_code, SYNCHRO_ETIMEDOUT);

  /* within the deadline: the value, in every style */
  memset(o, 0, sizeof(o));
  for (s = 0; s < STYLES; s++) {
    run_sleep_bounded(s, 1, &o[s]);
    o[s].elapsed_ms = 0;
  }
  assert_agree(o, "sleep_bounded(1)");
  ck_assert_int_eq(o[BLOCKING].status, 0);
  ck_assert_int_eq(o[BLOCKING].value, 1);
}
END_TEST

START_TEST(test_cancel) {
  synchro_future_t *f = NULL;
  int64_t before, v = -1;

  /* futures: an explicit cancel; a wait that times out first is not the outcome */
  before = cancel_count();
  ck_assert_int_eq(conf_sleep_future(10000, &f), 0);
  ck_assert_int_eq(synchro_future_wait(f, 20), SYNCHRO_EPENDING);
  ck_assert_int_eq(synchro_future_cancel(f), 0);
  ck_assert_int_eq(synchro_future_wait(f, FOREVER), SYNCHRO_ECANCELED);
  ck_assert_int_eq(conf_sleep_result(f, &v), SYNCHRO_ECANCELED);
  ck_assert_int_eq(synchro_error_code(synchro_future_error(f)), SYNCHRO_ECANCELED);
  ck_assert_int_eq(synchro_future_cancel(f), SYNCHRO_EALREADY);
  synchro_future_free(f);
  assert_hook_ran(before, "futures");

  /* aio: the generated API returns no handle to cancel with; freeing the host cancels
   * what it waits for. The hook runs, the callback never does, and nothing is left
   * allocated: the wrapper keeps its typed callback in the call record
   * (synchro_future_then_typed), so there is nothing of its own to release. A host of
   * its own, on the test's loop, so that teardown still frees the shared one. */
  {
    synchro_host_t *h = NULL;
    outcome_t out;
    aio_t w = {&out, false, 0};
    int i;

    memset(&out, 0, sizeof(out));
    ck_assert_int_eq(synchro_host_new_uv(&h, &loop), 0);
    before = cancel_count();
    ck_assert_int_eq(conf_sleep_aio(10000, h, on_int, &w), 0);
    /* calls start oldest first: once this blocking call returned, sleep() is running
     * and its cancel hook is set */
    ck_assert_int_eq(cancel_count(), before);
    synchro_host_free(h);
    uv_run(&loop, UV_RUN_NOWAIT); /* lets libuv finish closing the host's handle */
    assert_hook_ran(before, "aio (host freed)");
    for (i = 0; i < 20; i++) {
      uv_run(&loop, UV_RUN_NOWAIT);
      sleep_ms(1);
    }
    ck_assert_msg(!w.done, "aio (host freed): the callback ran after synchro_host_free()");
  }

  /* blocking: the caller cannot cancel, the deadline does (test_deadline) */
}
END_TEST

START_TEST(test_stream) {
  outcome_t o[STYLES];
  int64_t before;
  style_t s;
  int i;

  memset(o, 0, sizeof(o));
  for (s = 0; s < STYLES; s++)
    run_count(s, 5, -1, 0, &o[s]);
  assert_agree(o, "count(5)");
  ck_assert_int_eq(o[BLOCKING].status, SYNCHRO_EEND);
  ck_assert_int_eq(o[BLOCKING].nitems, 5);
  for (i = 0; i < 5; i++)
    ck_assert_int_eq(o[BLOCKING].items[i], i);

  /* fails after two items: both items, then the error, the same way */
  memset(o, 0, sizeof(o));
  for (s = 0; s < STYLES; s++)
    run_count(s, 5, 2, 0, &o[s]);
  assert_agree(o, "count(5, fail_after 2)");
  ck_assert_int_eq(o[BLOCKING].status, CONF_ERATE_LIMITED);
  ck_assert_int_eq(o[BLOCKING].nitems, 2);
  ck_assert_str_eq(o[BLOCKING].message, "failed after 2 items");
  ck_assert_str_eq(o[BLOCKING].origin, "conf_count");

  /* an empty stream ends at once */
  memset(o, 0, sizeof(o));
  for (s = 0; s < STYLES; s++)
    run_count(s, 0, -1, 0, &o[s]);
  assert_agree(o, "count(0)");
  ck_assert_int_eq(o[BLOCKING].status, SYNCHRO_EEND);

  /* stopping early cancels the producer: its hook runs, in every style */
  memset(o, 0, sizeof(o));
  for (s = 0; s < STYLES; s++) {
    before = cancel_count();
    run_count(s, 1000000, -1, 3, &o[s]);
    assert_hook_ran(before, style_names[s]);
  }
  assert_agree(o, "count(1000000) closed after 3");
  ck_assert_int_eq(o[BLOCKING].nitems, 3);
}
END_TEST

/* The object's whole life in one style, one outcome per step. */
enum {
  STEP_ADD_BEFORE_OPEN,
  STEP_OPEN,
  STEP_OPEN_AGAIN,
  STEP_ADD,
  STEP_TICKS,
  STEP_SAME,
  STEP_VALUE_OF,
  STEP_MAKE,
  STEP_MADE_VALUE,
  STEP_CLOSE,
  STEP_CLOSE_AGAIN,
  STEP_ADD_AFTER_CLOSE,
  STEPS
};
static const char *const step_names[STEPS] = {
    "add before open", "open",         "open again",     "add",   "ticks",       "same",
    "value_of",        "make_counter", "value_of(made)", "close", "close again", "add after close"};

static void run_object(style_t s, outcome_t o[STEPS], void **self_out) {
  conf_counter_t *c = NULL, *made;
  synchro_error_t *new_err = NULL;

  ck_assert_int_eq(conf_counter_new(10, &c, &new_err), 0);
  ck_assert_ptr_null(new_err);
  *self_out = c;
  RUN(&o[STEP_ADD_BEFORE_OPEN], s, &o[STEP_ADD_BEFORE_OPEN].value, on_int, conf_counter_add, c, 5);
  RUN_VOID(&o[STEP_OPEN], s, conf_counter_open, c);
  RUN_VOID(&o[STEP_OPEN_AGAIN], s, conf_counter_open, c);
  RUN(&o[STEP_ADD], s, &o[STEP_ADD].value, on_int, conf_counter_add, c, 5);
  run_ticks(s, c, 3, &o[STEP_TICKS]);
  {
    conf_counter_t *same = NULL;
    RUN(&o[STEP_SAME], s, &same, on_counter, conf_counter_same, c);
    if (same != NULL)
      o[STEP_SAME].handle = same;
  }
  RUN(&o[STEP_VALUE_OF], s, &o[STEP_VALUE_OF].value, on_int, conf_value_of, c);
  {
    conf_counter_t *h = NULL;
    RUN(&o[STEP_MAKE], s, &h, on_counter, conf_make_counter, 7);
    if (h != NULL)
      o[STEP_MAKE].handle = h;
  }
  made = o[STEP_MAKE].handle;
  ck_assert_ptr_nonnull(made);
  RUN(&o[STEP_MADE_VALUE], s, &o[STEP_MADE_VALUE].value, on_int, conf_value_of, made);
  conf_counter_free(made); /* its close and destructor run on the loop */
  o[STEP_MAKE].handle = NULL;
  RUN_VOID(&o[STEP_CLOSE], s, conf_counter_close, c);
  RUN_VOID(&o[STEP_CLOSE_AGAIN], s, conf_counter_close, c);
  RUN(&o[STEP_ADD_AFTER_CLOSE], s, &o[STEP_ADD_AFTER_CLOSE].value, on_int, conf_counter_add, c, 5);
}

START_TEST(test_object) {
  outcome_t o[STYLES][STEPS];
  void *self[STYLES];
  style_t s;
  int i;

  memset(o, 0, sizeof(o));
  for (s = 0; s < STYLES; s++) {
    run_object(s, o[s], &self[s]);
    /* translation out of an existing state: the same handle, one more reference */
    ck_assert_msg(o[s][STEP_SAME].handle == self[s], "%s: same() gave another handle",
                  style_names[s]);
    conf_counter_free(o[s][STEP_SAME].handle);
    o[s][STEP_SAME].handle = NULL;
    conf_counter_free(self[s]);
  }
  for (i = 0; i < STEPS; i++)
    for (s = FUTURES; s < STYLES; s++)
      assert_same(&o[BLOCKING][i], &o[s][i], step_names[i], s);
  ck_assert_int_eq(o[BLOCKING][STEP_ADD_BEFORE_OPEN].status, CONF_ENOT_OPEN);
  ck_assert_str_eq(o[BLOCKING][STEP_ADD_BEFORE_OPEN].message, "the object is not open");
  ck_assert_str_eq(o[BLOCKING][STEP_ADD_BEFORE_OPEN].origin, "conf_counter_add");
  ck_assert_int_eq(o[BLOCKING][STEP_OPEN].status, 0);
  ck_assert_int_eq(o[BLOCKING][STEP_OPEN_AGAIN].status, SYNCHRO_EALREADY);
  ck_assert_int_eq(o[BLOCKING][STEP_ADD].status, 0);
  ck_assert_int_eq(o[BLOCKING][STEP_ADD].value, 15);
  ck_assert_int_eq(o[BLOCKING][STEP_TICKS].status, SYNCHRO_EEND);
  ck_assert_int_eq(o[BLOCKING][STEP_TICKS].nitems, 3);
  for (i = 0; i < 3; i++)
    ck_assert_int_eq(o[BLOCKING][STEP_TICKS].items[i], 15 + i);
  ck_assert_int_eq(o[BLOCKING][STEP_SAME].status, 0);
  ck_assert_int_eq(o[BLOCKING][STEP_VALUE_OF].status, 0);
  ck_assert_int_eq(o[BLOCKING][STEP_VALUE_OF].value, 15);
  ck_assert_int_eq(o[BLOCKING][STEP_MAKE].status, 0);
  ck_assert_int_eq(o[BLOCKING][STEP_MADE_VALUE].value, 7);
  ck_assert_int_eq(o[BLOCKING][STEP_CLOSE].status, 0);
  ck_assert_int_eq(o[BLOCKING][STEP_CLOSE_AGAIN].status, SYNCHRO_EALREADY);
  ck_assert_int_eq(o[BLOCKING][STEP_ADD_AFTER_CLOSE].status, SYNCHRO_ECLOSED);
}
END_TEST

START_TEST(test_bad_handles) {
  conf_counter_ticks_stream_t *st = (conf_counter_ticks_stream_t *)&st;
  synchro_future_t *f = NULL;
  int64_t v = 0;

  /* NULL handles are refused at once, in every style */
  ck_assert_int_eq(conf_value_of(NULL, &v, NULL), SYNCHRO_EINVAL);
  ck_assert_int_eq(conf_value_of_future(NULL, &f), SYNCHRO_EINVAL);
  ck_assert_int_eq(conf_value_of_aio(NULL, host, on_int, NULL), SYNCHRO_EINVAL);
  ck_assert_int_eq(conf_counter_add(NULL, 1, &v, NULL), SYNCHRO_EINVAL);
  ck_assert_int_eq(conf_counter_add_future(NULL, 1, &f), SYNCHRO_EINVAL);
  ck_assert_int_eq(conf_counter_add_aio(NULL, 1, host, on_int, NULL), SYNCHRO_EINVAL);
  ck_assert_int_eq(conf_counter_open(NULL, NULL), SYNCHRO_EINVAL);
  ck_assert_int_eq(conf_counter_ticks_open(NULL, 3, &st), SYNCHRO_EINVAL);
  ck_assert_ptr_null(st);
  ck_assert_int_eq(conf_count_next(NULL, &v, 0), SYNCHRO_EINVAL);
  ck_assert_ptr_null(conf_count_error(NULL));
  conf_count_close(NULL);
  conf_counter_free(NULL);
  /* a result accessor refuses a future of another operation */
  ck_assert_int_eq(conf_add_future(1, 2, &f), 0);
  ck_assert_int_eq(synchro_future_wait(f, FOREVER), 0);
  ck_assert_int_eq(conf_sleep_result(f, &v), SYNCHRO_EINVAL);
  ck_assert_int_eq(conf_add_result(f, &v), 0);
  ck_assert_int_eq(v, 3);
  synchro_future_free(f);
}
END_TEST

static TCase *scenario(const char *name, const TTest *test) {
  TCase *tc = tcase_create(name);
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, test);
  return tc;
}

static Suite *conformance_suite(void) {
  Suite *s = suite_create("conformance");

  suite_add_tcase(s, scenario("int result", test_int_result));
  suite_add_tcase(s, scenario("string result", test_string_result));
  suite_add_tcase(s, scenario("domain error", test_domain_error));
  suite_add_tcase(s, scenario("deadline", test_deadline));
  suite_add_tcase(s, scenario("cancel", test_cancel));
  suite_add_tcase(s, scenario("stream", test_stream));
  suite_add_tcase(s, scenario("object", test_object));
  suite_add_tcase(s, scenario("bad handles", test_bad_handles));
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(conformance_suite());
  int failed;

  srunner_run_all(sr, CK_ENV);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
