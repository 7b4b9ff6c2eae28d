/* tests/check_module.c - the support API of generated modules (synchro/module.h).
 *
 * The generated modules (check_conformance, check_kv, check_http, the examples) cover
 * the paths a correct caller takes; this program covers the functions directly: bad
 * input (NULL module, op, handle or output), a module whose synchronizer is set twice,
 * concurrent lazy creation, the result accessor refusing another op's future, typed
 * streams (blocking and armed on a host, re-arming, a refused arm keeping the armed
 * callback) and the implementation-side helpers. */
#include <check.h>
#include <jansson.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "support/streamops.h"
#include "support/testops.h"
#include "synchro.h"

/* ---- fixtures ------------------------------------------------------------------- */

#define MOD_EDOMAIN (-20001)

static const char *mod_strerror(int code) {
  return code == MOD_EDOMAIN ? "the module's own message" : synchro_strerror(code);
}

/* An op without a result. */
static void none_impl(synchro_call_t *call) { synchro_call_return(call, NULL); }
static const synchro_op_t mod_op_none = {.name = "mod_none", .impl = none_impl};

/* vfail: fails through synchro_module_vfail() with the module `which` (0: with
 * strerror, 1: without, 2: NULL), with a format when `fmt` is set. */
typedef struct {
  int code;
  int which;
  int fmt;
} vfail_args_t;

static synchro_module_t vfail_mod_with = SYNCHRO_MODULE_INIT("mod_vfail", mod_strerror);
static synchro_module_t vfail_mod_without = SYNCHRO_MODULE_INIT("mod_vfail", NULL);
static atomic_int vfail_rc;

static int call_vfail(const synchro_module_t *m, synchro_call_t *call, int code, const char *fmt,
                      ...) {
  va_list ap;
  int rc;

  va_start(ap, fmt);
  rc = synchro_module_vfail(m, call, code, fmt, ap);
  va_end(ap);
  return rc;
}

static void vfail_impl(synchro_call_t *call) {
  const vfail_args_t *a = synchro_call_args(call);
  const synchro_module_t *m = a->which == 0   ? &vfail_mod_with
                              : a->which == 1 ? &vfail_mod_without
                                              : NULL;
  int rc =
      a->fmt ? call_vfail(m, call, a->code, "custom %d", 42) : call_vfail(m, call, a->code, NULL);

  vfail_rc = rc;
  if (rc != 0) /* a NULL module: the call is still ours to finish */
    synchro_call_return(call, NULL);
}
static const synchro_op_t mod_op_vfail = {
    .name = "mod_vfail", .impl = vfail_impl, .args_size = sizeof(vfail_args_t)};

/* reject: rejects its result, then tries again on the finished call. */
static atomic_int reject_first, reject_second;
static void reject_impl(synchro_call_t *call) {
  reject_first = synchro_module_reject(call, SYNCHRO_EINVAL, "NULL for a non-nullable string");
  reject_second = synchro_module_reject(call, SYNCHRO_ENOMEM, "no memory");
}
static const synchro_op_t mod_op_reject = {
    .name = "mod_reject", .impl = reject_impl, .result_size = sizeof(char *)};

/* A class whose open and close finish at once and take no arguments, as generated
 * classes' do. */
static atomic_long mod_opens, mod_closes;
static int mod_construct(synchro_t *s, const void *args, void **state) {
  (void)s;
  *state = malloc(sizeof(int64_t));
  if (*state == NULL)
    return SYNCHRO_ENOMEM;
  *(int64_t *)*state = args != NULL ? *(const int64_t *)args : 0;
  return 0;
}
static void mod_destroy(void *state) { free(state); }
static void mod_open_impl(synchro_call_t *call) {
  mod_opens++;
  synchro_call_return(call, NULL);
}
static void mod_close_impl(synchro_call_t *call) {
  mod_closes++;
  synchro_call_return(call, NULL);
}
static void mod_get_impl(synchro_call_t *call) {
  int64_t v = *(int64_t *)synchro_call_object(call);
  synchro_call_return(call, &v);
}
static const synchro_op_t mod_open_op = {.name = "mod_obj_open", .impl = mod_open_impl};
static const synchro_op_t mod_close_op = {.name = "mod_obj_close", .impl = mod_close_impl};
static const synchro_op_t mod_get_op = {
    .name = "mod_obj_get", .impl = mod_get_impl, .result_size = sizeof(int64_t)};
static const synchro_class_t mod_class = {.name = "mod_obj",
                                          .construct = mod_construct,
                                          .destroy = mod_destroy,
                                          .open = &mod_open_op,
                                          .close = &mod_close_op};

/* Check functions: one that refuses everything, one that counts. */
static atomic_long checks_run;
static int refuse_all(const void *args) {
  (void)args;
  checks_run++;
  return SYNCHRO_EINVAL;
}
static int accept_all(const void *args) {
  (void)args;
  checks_run++;
  return 0;
}

static synchro_t *new_sync(void) {
  synchro_t *s = NULL;
  ck_assert_int_eq(synchro_new(&s, NULL), 0);
  return s;
}

static void free_sync(synchro_t *s) {
  synchro_close(s, 1000);
  synchro_free(s);
}

/* Dispatches `h` until *flag is set (10 s at most). */
static void dispatch_until(synchro_host_t *h, atomic_int *flag) {
  double t0 = test_now_ms();
  struct pollfd p = {.fd = synchro_host_fd(h), .events = POLLIN};

  while (!*flag && test_now_ms() - t0 < 10000) {
    (void)poll(&p, 1, 50);
    ck_assert_int_ge(synchro_host_dispatch(h, 0), 0);
  }
  ck_assert_msg(*flag, "the host callback did not run");
}

/* ---- the module's synchronizer ---------------------------------------------------- */

START_TEST(test_synchronizer_bad_input) {
  static synchro_module_t m = SYNCHRO_MODULE_INIT("mod_bad", NULL);
  synchro_t *s = (synchro_t *)&m; /* a sentinel: must stay untouched */

  ck_assert_int_eq(synchro_module_synchronizer(NULL, &s), SYNCHRO_EINVAL);
  ck_assert_ptr_eq(s, (synchro_t *)&m);
  ck_assert_int_eq(synchro_module_synchronizer(&m, NULL), SYNCHRO_EINVAL);
  ck_assert_int_eq(synchro_module_use(NULL, s), SYNCHRO_EINVAL);
  ck_assert_int_eq(synchro_module_use(&m, NULL), SYNCHRO_EINVAL);
}
END_TEST

START_TEST(test_synchronizer_lazy_and_named) {
  static synchro_module_t m = SYNCHRO_MODULE_INIT("mod_lazy", NULL);
  synchro_t *a = NULL, *b = NULL;

  ck_assert_int_eq(synchro_module_synchronizer(&m, &a), 0);
  ck_assert_ptr_nonnull(a);
  ck_assert_str_eq(synchro_name(a), "mod_lazy");
  ck_assert_int_eq(synchro_module_synchronizer(&m, &b), 0);
  ck_assert_ptr_eq(a, b);
  /* once created, it stays the module's */
  b = new_sync();
  ck_assert_int_eq(synchro_module_use(&m, b), SYNCHRO_EALREADY);
  ck_assert_int_eq(synchro_module_use(&m, a), 0);
  free_sync(b);
}
END_TEST

START_TEST(test_use_set_twice) {
  static synchro_module_t m = SYNCHRO_MODULE_INIT("mod_use", NULL);
  synchro_t *s = new_sync(), *other = new_sync(), *got = NULL;
  int64_t sum = 0;

  ck_assert_int_eq(synchro_module_use(&m, s), 0);
  ck_assert_int_eq(synchro_module_use(&m, s), 0); /* the same one again: fine */
  ck_assert_int_eq(synchro_module_use(&m, other), SYNCHRO_EALREADY);
  ck_assert_int_eq(synchro_module_synchronizer(&m, &got), 0);
  ck_assert_ptr_eq(got, s); /* the second use changed nothing */
  ck_assert_int_eq(
      synchro_module_call(&m, &test_op_add, NULL, &(test_add_args_t){2, 3}, &sum, NULL), 0);
  ck_assert_int_eq(sum, 5);
  free_sync(other);
  free_sync(s);
}
END_TEST

static synchro_module_t race_mod = SYNCHRO_MODULE_INIT("mod_race", NULL);
static atomic_int race_go;

static void *race_thread(void *arg) {
  synchro_t **out = arg;
  while (!race_go)
    ;
  ck_assert_int_eq(synchro_module_synchronizer(&race_mod, out), 0);
  return NULL;
}

START_TEST(test_concurrent_first_use_agrees) {
  enum { N = 8 };
  pthread_t t[N];
  synchro_t *got[N];
  int i;

  for (i = 0; i < N; i++)
    ck_assert_int_eq(pthread_create(&t[i], NULL, race_thread, &got[i]), 0);
  race_go = 1;
  for (i = 0; i < N; i++)
    pthread_join(t[i], NULL);
  for (i = 1; i < N; i++)
    ck_assert_ptr_eq(got[i], got[0]);
  ck_assert_ptr_nonnull(got[0]);
}
END_TEST

/* ---- calls of module functions -------------------------------------------------------- */

static synchro_module_t call_mod = SYNCHRO_MODULE_INIT("mod_calls", mod_strerror);

START_TEST(test_call_bad_input) {
  synchro_error_t *err = (synchro_error_t *)&err;
  int64_t sum = 0;
  test_add_args_t args = {1, 2};

  ck_assert_int_eq(synchro_module_call(NULL, &test_op_add, NULL, &args, &sum, &err),
                   SYNCHRO_EINVAL);
  ck_assert_ptr_null(err); /* cleared first */
  ck_assert_int_eq(synchro_module_call(&call_mod, NULL, NULL, &args, &sum, NULL), SYNCHRO_EINVAL);
  ck_assert_int_eq(synchro_module_call(&call_mod, &test_op_add, NULL, &args, NULL, NULL),
                   SYNCHRO_EINVAL);
  checks_run = 0;
  ck_assert_int_eq(synchro_module_call(&call_mod, &test_op_add, refuse_all, &args, &sum, NULL),
                   SYNCHRO_EINVAL);
  ck_assert_int_eq(checks_run, 1);
  ck_assert_int_eq(sum, 0);
  ck_assert_int_eq(synchro_module_call(&call_mod, &test_op_add, accept_all, &args, &sum, NULL), 0);
  ck_assert_int_eq(checks_run, 2);
  ck_assert_int_eq(sum, 3);
  /* an op without a result needs no `out` */
  ck_assert_int_eq(synchro_module_call(&call_mod, &mod_op_none, NULL, NULL, NULL, NULL), 0);
}
END_TEST

START_TEST(test_submit_and_result) {
  synchro_future_t *f = (synchro_future_t *)&f, *g = NULL;
  int64_t sum = 0;

  ck_assert_int_eq(synchro_module_submit(NULL, &test_op_add, NULL, NULL, &f), SYNCHRO_EINVAL);
  ck_assert_int_eq(synchro_module_submit(&call_mod, NULL, NULL, NULL, &f), SYNCHRO_EINVAL);
  ck_assert_int_eq(synchro_module_submit(&call_mod, &test_op_add, NULL, NULL, NULL),
                   SYNCHRO_EINVAL);
  ck_assert_int_eq(
      synchro_module_submit(&call_mod, &test_op_add, refuse_all, &(test_add_args_t){1, 1}, &f),
      SYNCHRO_EINVAL);
  ck_assert_int_eq(
      synchro_module_submit(&call_mod, &test_op_add, NULL, &(test_add_args_t){4, 5}, &f), 0);
  ck_assert_int_eq(synchro_future_wait(f, SYNCHRO_TIMEOUT_INFINITE), 0);
  /* the accessor refuses another op's future, a NULL future and a NULL out */
  ck_assert_int_eq(synchro_module_result(&test_op_fail, f, &sum), SYNCHRO_EINVAL);
  ck_assert_int_eq(synchro_module_result(&test_op_add, NULL, &sum), SYNCHRO_EINVAL);
  ck_assert_int_eq(synchro_module_result(NULL, f, &sum), SYNCHRO_EINVAL);
  ck_assert_int_eq(synchro_module_result(&test_op_add, f, NULL), SYNCHRO_EINVAL);
  ck_assert_int_eq(synchro_module_result(&test_op_add, f, &sum), 0);
  ck_assert_int_eq(sum, 9);
  ck_assert_int_eq(synchro_module_result(&test_op_add, f, &sum), SYNCHRO_EALREADY);
  synchro_future_free(f);

  /* without a result: the status */
  ck_assert_int_eq(synchro_module_submit(&call_mod, &mod_op_none, NULL, NULL, &g), 0);
  ck_assert_int_eq(synchro_future_wait(g, SYNCHRO_TIMEOUT_INFINITE), 0);
  ck_assert_int_eq(synchro_module_result(&mod_op_none, g, NULL), 0);
  synchro_future_free(g);
}
END_TEST

typedef void (*sum_cb)(int status, int64_t sum, void *data);
static atomic_int aio_done;
static atomic_long aio_sum;

static void typed_sum_cb(int status, int64_t sum, void *data) {
  ck_assert_int_eq(status, 0);
  ck_assert_ptr_eq(data, &aio_sum);
  aio_sum = sum;
  aio_done = 1;
}

/* The adapter a generated module emits: reads the typed callback back. */
static void sum_done(synchro_future_t *f, int status, void *data) {
  sum_cb cb = (sum_cb)synchro_future_then_fn(f);
  int64_t sum = 0;

  if (status == 0)
    status = synchro_module_result(&test_op_add, f, &sum);
  cb(status, sum, data);
}

START_TEST(test_submit_aio) {
  synchro_host_t *h = NULL;
  test_add_args_t args = {20, 22};

  ck_assert_int_eq(synchro_host_new_fd(&h), 0);
  ck_assert_int_eq(synchro_module_submit_aio(&call_mod, &test_op_add, NULL, &args, NULL, sum_done,
                                             (synchro_fn)typed_sum_cb, NULL),
                   SYNCHRO_EINVAL);
  ck_assert_int_eq(synchro_module_submit_aio(&call_mod, &test_op_add, NULL, &args, h, NULL,
                                             (synchro_fn)typed_sum_cb, NULL),
                   SYNCHRO_EINVAL);
  ck_assert_int_eq(
      synchro_module_submit_aio(&call_mod, &test_op_add, NULL, &args, h, sum_done, NULL, NULL),
      SYNCHRO_EINVAL);
  ck_assert_int_eq(synchro_module_submit_aio(NULL, &test_op_add, NULL, &args, h, sum_done,
                                             (synchro_fn)typed_sum_cb, NULL),
                   SYNCHRO_EINVAL);
  ck_assert_int_eq(synchro_module_submit_aio(&call_mod, &test_op_add, refuse_all, &args, h,
                                             sum_done, (synchro_fn)typed_sum_cb, NULL),
                   SYNCHRO_EINVAL);
  ck_assert_int_eq(synchro_module_submit_aio(&call_mod, &test_op_add, NULL, &args, h, sum_done,
                                             (synchro_fn)typed_sum_cb, &aio_sum),
                   0);
  dispatch_until(h, &aio_done);
  ck_assert_int_eq(aio_sum, 42);
  synchro_host_free(h);
}
END_TEST

/* ---- objects ------------------------------------------------------------------------ */

static synchro_module_t obj_mod = SYNCHRO_MODULE_INIT("mod_objects", NULL);

START_TEST(test_new_bad_input) {
  synchro_object_t *obj = (synchro_object_t *)&obj;
  synchro_error_t *err = (synchro_error_t *)&err;
  int64_t v = 7;

  ck_assert_int_eq(synchro_module_new(&obj_mod, &mod_class, NULL, &v, NULL, &err), SYNCHRO_EINVAL);
  ck_assert_ptr_null(err);
  ck_assert_int_eq(synchro_module_new(NULL, &mod_class, NULL, &v, &obj, NULL), SYNCHRO_EINVAL);
  ck_assert_ptr_null(obj); /* the handle is cleared first */
  obj = (synchro_object_t *)&obj;
  ck_assert_int_eq(synchro_module_new(&obj_mod, NULL, NULL, &v, &obj, NULL), SYNCHRO_EINVAL);
  ck_assert_ptr_null(obj);
  ck_assert_int_eq(synchro_module_new(&obj_mod, &mod_class, refuse_all, &v, &obj, NULL),
                   SYNCHRO_EINVAL);
  ck_assert_ptr_null(obj);
}
END_TEST

START_TEST(test_object_calls) {
  synchro_object_t *obj = NULL;
  synchro_future_t *f = (synchro_future_t *)&f;
  synchro_error_t *err = (synchro_error_t *)&err;
  int64_t v = 7, got = 0;

  mod_opens = mod_closes = 0;
  ck_assert_int_eq(synchro_module_new(&obj_mod, &mod_class, accept_all, &v, &obj, NULL), 0);
  ck_assert_ptr_nonnull(obj);

  /* bad input */
  ck_assert_int_eq(
      synchro_module_object_call(NULL, SYNCHRO_MODULE_METHOD, &mod_get_op, NULL, NULL, &got, &err),
      SYNCHRO_EINVAL);
  ck_assert_ptr_null(err);
  ck_assert_int_eq(
      synchro_module_object_call(obj, SYNCHRO_MODULE_METHOD, NULL, NULL, NULL, &got, NULL),
      SYNCHRO_EINVAL);
  ck_assert_int_eq(
      synchro_module_object_call(obj, SYNCHRO_MODULE_METHOD, &mod_get_op, NULL, NULL, NULL, NULL),
      SYNCHRO_EINVAL);
  ck_assert_int_eq(synchro_module_object_call(obj, (synchro_module_role_t)7, &mod_get_op, NULL,
                                              NULL, &got, NULL),
                   SYNCHRO_EINVAL);
  ck_assert_int_eq(synchro_module_object_call(obj, SYNCHRO_MODULE_METHOD, &mod_get_op, refuse_all,
                                              NULL, &got, NULL),
                   SYNCHRO_EINVAL);
  ck_assert_int_eq(
      synchro_module_object_submit(NULL, SYNCHRO_MODULE_OPEN, &mod_open_op, NULL, NULL, &f),
      SYNCHRO_EINVAL);
  ck_assert_ptr_null(f); /* cleared first */
  ck_assert_int_eq(
      synchro_module_object_submit(obj, SYNCHRO_MODULE_OPEN, &mod_open_op, NULL, NULL, NULL),
      SYNCHRO_EINVAL);
  ck_assert_int_eq(mod_opens, 0);

  /* open as a future, a method blocking, close blocking */
  ck_assert_int_eq(
      synchro_module_object_submit(obj, SYNCHRO_MODULE_OPEN, &mod_open_op, NULL, NULL, &f), 0);
  ck_assert_int_eq(synchro_future_wait(f, SYNCHRO_TIMEOUT_INFINITE), 0);
  ck_assert_int_eq(synchro_module_result(&mod_close_op, f, NULL), SYNCHRO_EINVAL);
  ck_assert_int_eq(synchro_module_result(&mod_open_op, f, NULL), 0);
  synchro_future_free(f);
  ck_assert_int_eq(mod_opens, 1);
  ck_assert_int_eq(synchro_module_object_call(obj, SYNCHRO_MODULE_METHOD, &mod_get_op, accept_all,
                                              NULL, &got, NULL),
                   0);
  ck_assert_int_eq(got, 7);
  ck_assert_int_eq(
      synchro_module_object_call(obj, SYNCHRO_MODULE_CLOSE, &mod_close_op, NULL, NULL, NULL, &err),
      0);
  ck_assert_ptr_null(err);
  ck_assert_int_eq(mod_closes, 1);
  /* a method after close fails; a second close is harmless */
  ck_assert_int_eq(
      synchro_module_object_call(obj, SYNCHRO_MODULE_METHOD, &mod_get_op, NULL, NULL, &got, NULL),
      SYNCHRO_ECLOSED);
  ck_assert_int_eq(
      synchro_module_object_call(obj, SYNCHRO_MODULE_CLOSE, &mod_close_op, NULL, NULL, NULL, NULL),
      SYNCHRO_EALREADY);
  synchro_object_free(obj);
}
END_TEST

typedef void (*status_cb)(int status, void *data);
static atomic_int obj_aio_done, obj_aio_status;
static void typed_status_cb(int status, void *data) {
  ck_assert_ptr_eq(data, &obj_aio_status);
  obj_aio_status = status;
  obj_aio_done = 1;
}
static void status_done(synchro_future_t *f, int status, void *data) {
  ((status_cb)synchro_future_then_fn(f))(status, data);
}

START_TEST(test_object_submit_aio) {
  synchro_object_t *obj = NULL;
  synchro_host_t *h = NULL;

  ck_assert_int_eq(synchro_host_new_fd(&h), 0);
  ck_assert_int_eq(synchro_module_new(&obj_mod, &mod_class, NULL, NULL, &obj, NULL), 0);
  ck_assert_int_eq(synchro_module_object_submit_aio(obj, SYNCHRO_MODULE_OPEN, &mod_open_op, NULL,
                                                    NULL, NULL, status_done,
                                                    (synchro_fn)typed_status_cb, NULL),
                   SYNCHRO_EINVAL);
  ck_assert_int_eq(synchro_module_object_submit_aio(NULL, SYNCHRO_MODULE_OPEN, &mod_open_op, NULL,
                                                    NULL, h, status_done,
                                                    (synchro_fn)typed_status_cb, NULL),
                   SYNCHRO_EINVAL);
  obj_aio_status = 1;
  ck_assert_int_eq(synchro_module_object_submit_aio(obj, SYNCHRO_MODULE_OPEN, &mod_open_op, NULL,
                                                    NULL, h, status_done,
                                                    (synchro_fn)typed_status_cb, &obj_aio_status),
                   0);
  dispatch_until(h, &obj_aio_done);
  ck_assert_int_eq(obj_aio_status, 0);
  synchro_object_free(obj);
  synchro_host_free(h);
}
END_TEST

/* ---- typed streams -------------------------------------------------------------------- */

static synchro_module_t stream_mod = SYNCHRO_MODULE_INIT("mod_streams", NULL);

START_TEST(test_stream_bad_input) {
  synchro_module_stream_t *st = (synchro_module_stream_t *)&st;
  test_count_args_t args = {.n = 3, .stall_after = -1};
  int64_t item;

  ck_assert_int_eq(synchro_module_stream_open(&stream_mod, &test_sop_count, NULL, &args, NULL),
                   SYNCHRO_EINVAL);
  ck_assert_int_eq(synchro_module_stream_open(NULL, &test_sop_count, NULL, &args, &st),
                   SYNCHRO_EINVAL);
  ck_assert_ptr_null(st); /* cleared first */
  st = (synchro_module_stream_t *)&st;
  ck_assert_int_eq(synchro_module_stream_open(&stream_mod, NULL, NULL, &args, &st), SYNCHRO_EINVAL);
  ck_assert_ptr_null(st);
  ck_assert_int_eq(synchro_module_stream_open(&stream_mod, &test_sop_count, refuse_all, &args, &st),
                   SYNCHRO_EINVAL);
  ck_assert_ptr_null(st);
  /* not a stream op: refused by the runtime, nothing left allocated */
  ck_assert_int_eq(
      synchro_module_stream_open(&stream_mod, &test_op_add, NULL, &(test_add_args_t){1, 2}, &st),
      SYNCHRO_EINVAL);
  ck_assert_ptr_null(st);
  ck_assert_int_eq(synchro_module_object_stream_open(NULL, &test_sop_count, NULL, &args, &st),
                   SYNCHRO_EINVAL);
  ck_assert_ptr_null(st);
  ck_assert_int_eq(synchro_module_stream_next(NULL, &item, 0), SYNCHRO_EINVAL);
  ck_assert_ptr_null(synchro_module_stream_error(NULL));
  synchro_module_stream_close(NULL);

  ck_assert_int_eq(synchro_module_stream_open(&stream_mod, &test_sop_count, NULL, &args, &st), 0);
  ck_assert_int_eq(synchro_module_stream_next(st, NULL, 0), SYNCHRO_EINVAL);
  synchro_module_stream_close(st);
}
END_TEST

START_TEST(test_stream_blocking) {
  synchro_module_stream_t *st = NULL;
  test_count_args_t args = {.n = 5, .stall_after = -1};
  int64_t item, i;

  ck_assert_int_eq(synchro_module_stream_open(&stream_mod, &test_sop_count, NULL, &args, &st), 0);
  for (i = 0; i < 5; i++) {
    ck_assert_int_eq(synchro_module_stream_next(st, &item, SYNCHRO_TIMEOUT_INFINITE), 0);
    ck_assert_int_eq(item, i);
  }
  ck_assert_int_eq(synchro_module_stream_next(st, &item, SYNCHRO_TIMEOUT_INFINITE), SYNCHRO_EEND);
  ck_assert_ptr_null(synchro_module_stream_error(st));
  synchro_module_stream_close(st);

  /* a producer's error after its items */
  args = (test_count_args_t){.n = 2, .stall_after = -1, .fail_code = TEST_STREAM_DOMAIN_CODE};
  ck_assert_int_eq(synchro_module_stream_open(&stream_mod, &test_sop_fail, NULL, &args, &st), 0);
  ck_assert_int_eq(synchro_module_stream_next(st, &item, SYNCHRO_TIMEOUT_INFINITE), 0);
  ck_assert_int_eq(synchro_module_stream_next(st, &item, SYNCHRO_TIMEOUT_INFINITE), 0);
  ck_assert_int_eq(synchro_module_stream_next(st, &item, SYNCHRO_TIMEOUT_INFINITE),
                   TEST_STREAM_DOMAIN_CODE);
  ck_assert_ptr_nonnull(synchro_module_stream_error(st));
  ck_assert_int_eq(synchro_error_code(synchro_module_stream_error(st)), TEST_STREAM_DOMAIN_CODE);
  synchro_module_stream_close(st);
}
END_TEST

/* The consumer of the armed tests: counts items, re-arms until the end. */
typedef void (*item_cb)(synchro_module_stream_t *st, int status, int64_t item, void *data);
typedef struct {
  synchro_host_t *host;
  int64_t items[16];
  int n;
  int end_status;
  int wrong_fn; /* the callback armed second, refused: must never run */
  atomic_int done;
} consumer_t;

static void consume(synchro_module_stream_t *st, int status, int64_t item, void *data);

static void item_done(synchro_module_stream_t *st, int status, void *item, synchro_fn fn,
                      void *data) {
  int64_t value = 0;

  if (status == 0)
    memcpy(&value, item, sizeof(value));
  ((item_cb)fn)(st, status, value, data);
}

static void consume(synchro_module_stream_t *st, int status, int64_t item, void *data) {
  consumer_t *c = data;

  if (status != 0) {
    c->end_status = status;
    c->done = 1;
    return;
  }
  if (c->n < 16)
    c->items[c->n] = item;
  c->n++;
  ck_assert_int_eq(synchro_module_stream_arm(st, c->host, item_done, (synchro_fn)consume, c), 0);
}

static void must_not_run(synchro_module_stream_t *st, int status, int64_t item, void *data) {
  consumer_t *c = data;
  (void)st;
  (void)status;
  (void)item;
  c->wrong_fn = 1;
}

START_TEST(test_stream_armed_on_host) {
  synchro_module_stream_t *st = NULL;
  test_count_args_t args = {.n = 4, .stall_after = -1};
  consumer_t c = {0};
  consumer_t other = {0};
  int i;

  ck_assert_int_eq(synchro_host_new_fd(&c.host), 0);
  ck_assert_int_eq(synchro_module_stream_open(&stream_mod, &test_sop_count, NULL, &args, &st), 0);
  ck_assert_int_eq(synchro_module_stream_arm(NULL, c.host, item_done, (synchro_fn)consume, &c),
                   SYNCHRO_EINVAL);
  ck_assert_int_eq(synchro_module_stream_arm(st, NULL, item_done, (synchro_fn)consume, &c),
                   SYNCHRO_EINVAL);
  ck_assert_int_eq(synchro_module_stream_arm(st, c.host, NULL, (synchro_fn)consume, &c),
                   SYNCHRO_EINVAL);
  ck_assert_int_eq(synchro_module_stream_arm(st, c.host, item_done, NULL, &c), SYNCHRO_EINVAL);
  ck_assert_int_eq(synchro_module_stream_arm(st, c.host, item_done, (synchro_fn)consume, &c), 0);
  /* a second arm is refused and keeps the first callback and its data */
  ck_assert_int_eq(
      synchro_module_stream_arm(st, c.host, item_done, (synchro_fn)must_not_run, &other),
      SYNCHRO_EBUSY);
  ck_assert_int_eq(synchro_module_stream_next(st, &(int64_t){0}, 0), SYNCHRO_EBUSY);
  dispatch_until(c.host, &c.done);
  ck_assert_int_eq(c.end_status, SYNCHRO_EEND);
  ck_assert_int_eq(c.n, 4);
  for (i = 0; i < 4; i++)
    ck_assert_int_eq(c.items[i], i);
  ck_assert_int_eq(other.wrong_fn, 0);
  ck_assert_int_eq(c.wrong_fn, 0);
  synchro_module_stream_close(st);
  synchro_host_free(c.host);
}
END_TEST

START_TEST(test_object_stream_open) {
  synchro_object_t *obj = NULL;
  synchro_module_stream_t *st = NULL;
  test_count_args_t args = {.n = 2, .stall_after = -1};
  int64_t item;

  /* test_sop_count is no method of mod_obj, but any stream op runs on an object */
  ck_assert_int_eq(synchro_module_new(&stream_mod, &mod_class, NULL, NULL, &obj, NULL), 0);
  ck_assert_int_eq(synchro_module_object_stream_open(obj, NULL, NULL, &args, &st), SYNCHRO_EINVAL);
  ck_assert_int_eq(synchro_module_object_stream_open(obj, &test_sop_count, refuse_all, &args, &st),
                   SYNCHRO_EINVAL);
  ck_assert_ptr_null(st);
  ck_assert_int_eq(synchro_module_object_stream_open(obj, &test_sop_count, NULL, &args, &st), 0);
  ck_assert_int_eq(synchro_module_stream_next(st, &item, SYNCHRO_TIMEOUT_INFINITE), 0);
  ck_assert_int_eq(item, 0);
  synchro_module_stream_close(st); /* early: cancels the producer */
  synchro_object_free(obj);
}
END_TEST

/* ---- the implementation's side ---------------------------------------------------------- */

START_TEST(test_copies_and_releasers) {
  char *s;
  void *b;
  json_t *j, *copy;
  synchro_object_t *obj = NULL;
  char *none = NULL;

  ck_assert_ptr_null(synchro_module_dup_string(NULL));
  s = synchro_module_dup_string("hello");
  ck_assert_str_eq(s, "hello");
  synchro_module_release_string(&s);

  ck_assert_ptr_null(synchro_module_dup_bytes(NULL, 0));
  ck_assert_ptr_null(synchro_module_dup_bytes(NULL, 3));
  b = synchro_module_dup_bytes("", 0); /* empty, not NULL */
  ck_assert_ptr_nonnull(b);
  synchro_mem_free(b);
  b = synchro_module_dup_bytes("a\0b", 3);
  ck_assert_int_eq(memcmp(b, "a\0b", 3), 0);
  synchro_mem_free(b);

  ck_assert_ptr_null(synchro_module_dup_json(NULL));
  j = json_pack("{s:[i,i]}", "k", 1, 2);
  copy = synchro_module_dup_json(j);
  ck_assert_ptr_nonnull(copy);
  ck_assert_ptr_ne(copy, j);
  ck_assert(json_equal(copy, j));
  ck_assert_ptr_ne(json_object_get(copy, "k"), json_object_get(j, "k")); /* deep */
  json_decref(j);
  synchro_module_release_json(&copy);

  /* NULL values and NULL pointers are no-ops */
  synchro_module_release_string(&none);
  synchro_module_release_string(NULL);
  synchro_module_release_json(&(json_t *){NULL});
  synchro_module_release_json(NULL);
  synchro_module_release_object(&(synchro_object_t *){NULL});
  synchro_module_release_object(NULL);

  ck_assert_int_eq(synchro_module_new(&obj_mod, &mod_class, NULL, NULL, &obj, NULL), 0);
  synchro_module_release_object(&obj); /* drops the only reference */
}
END_TEST

static synchro_module_t impl_mod = SYNCHRO_MODULE_INIT("mod_impl", mod_strerror);

/* Runs vfail with `a` and returns the caller's error message (copied into buf). */
static int run_vfail(vfail_args_t a, char *buf, size_t len) {
  synchro_error_t *err = NULL;
  int rc = synchro_module_call(&impl_mod, &mod_op_vfail, NULL, &a, NULL, &err);

  buf[0] = '\0';
  if (err != NULL)
    snprintf(buf, len, "%s", synchro_error_message(err));
  synchro_error_free(err);
  return rc;
}

START_TEST(test_vfail) {
  char msg[128];

  ck_assert_int_eq(run_vfail((vfail_args_t){MOD_EDOMAIN, 0, 0}, msg, sizeof(msg)), MOD_EDOMAIN);
  ck_assert_str_eq(msg, "the module's own message");
  ck_assert_int_eq(vfail_rc, 0);
  ck_assert_int_eq(run_vfail((vfail_args_t){MOD_EDOMAIN, 0, 1}, msg, sizeof(msg)), MOD_EDOMAIN);
  ck_assert_str_eq(msg, "custom 42");
  /* a runtime code with the module's strerror falls through to synchro_strerror */
  ck_assert_int_eq(run_vfail((vfail_args_t){SYNCHRO_ENOMEM, 0, 0}, msg, sizeof(msg)),
                   SYNCHRO_ENOMEM);
  ck_assert_str_eq(msg, synchro_strerror(SYNCHRO_ENOMEM));
  /* no strerror in the descriptor: synchro_strerror */
  ck_assert_int_eq(run_vfail((vfail_args_t){MOD_EDOMAIN, 1, 0}, msg, sizeof(msg)), MOD_EDOMAIN);
  ck_assert_str_eq(msg, synchro_strerror(MOD_EDOMAIN));
  /* a NULL module is refused and the call is left unfinished (the op returns it) */
  ck_assert_int_eq(run_vfail((vfail_args_t){MOD_EDOMAIN, 2, 0}, msg, sizeof(msg)), 0);
  ck_assert_int_eq(vfail_rc, SYNCHRO_EINVAL);
}
END_TEST

START_TEST(test_reject) {
  synchro_error_t *err = NULL;
  char *out = NULL;

  ck_assert_int_eq(synchro_module_call(&impl_mod, &mod_op_reject, NULL, NULL, &out, &err),
                   SYNCHRO_EINVAL);
  ck_assert_ptr_null(out);
  ck_assert_ptr_nonnull(err);
  ck_assert_str_eq(synchro_error_message(err), "mod_reject: NULL for a non-nullable string");
  synchro_error_free(err);
  /* The caller wakes as soon as the first reject fails the call; the implementation
   * stores both results just after: wait for them. */
  for (int i = 0; i < 5000 && atomic_load(&reject_second) == 0; i++)
    nanosleep(&(struct timespec){0, 1000000}, NULL);
  ck_assert_int_eq(reject_first, SYNCHRO_EINVAL);
  ck_assert_int_eq(reject_second, SYNCHRO_EALREADY); /* the call was already failed */
}
END_TEST

/* ---- suite ---------------------------------------------------------------------------- */

static Suite *module_suite(void) {
  Suite *s = suite_create("module");
  TCase *tc;

  tc = tcase_create("synchronizer");
  tcase_set_timeout(tc, 10);
  tcase_add_test(tc, test_synchronizer_bad_input);
  tcase_add_test(tc, test_synchronizer_lazy_and_named);
  tcase_add_test(tc, test_use_set_twice);
  tcase_add_test(tc, test_concurrent_first_use_agrees);
  suite_add_tcase(s, tc);

  tc = tcase_create("calls");
  tcase_set_timeout(tc, 10);
  tcase_add_test(tc, test_call_bad_input);
  tcase_add_test(tc, test_submit_and_result);
  tcase_add_test(tc, test_submit_aio);
  suite_add_tcase(s, tc);

  tc = tcase_create("objects");
  tcase_set_timeout(tc, 10);
  tcase_add_test(tc, test_new_bad_input);
  tcase_add_test(tc, test_object_calls);
  tcase_add_test(tc, test_object_submit_aio);
  suite_add_tcase(s, tc);

  tc = tcase_create("streams");
  tcase_set_timeout(tc, 10);
  tcase_add_test(tc, test_stream_bad_input);
  tcase_add_test(tc, test_stream_blocking);
  tcase_add_test(tc, test_stream_armed_on_host);
  tcase_add_test(tc, test_object_stream_open);
  suite_add_tcase(s, tc);

  tc = tcase_create("implementation");
  tcase_set_timeout(tc, 10);
  tcase_add_test(tc, test_copies_and_releasers);
  tcase_add_test(tc, test_vfail);
  tcase_add_test(tc, test_reject);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(module_suite());
  int failed;

  srunner_run_all(sr, CK_ENV);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
