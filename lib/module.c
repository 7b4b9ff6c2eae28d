/* lib/module.c - the support API of generated modules (synchro/module.h).
 *
 * Everything here used to be emitted into every generated MOD.c: the lazily created
 * synchronizer, the checked calls of functions and objects, the typed-stream handle
 * and the implementation-side helpers. The generated code now keeps only descriptors
 * and typed wrappers that call these functions. */
#include <jansson.h>
#include <string.h>

#include "internal.h"

/* C++ sees the slot as a plain pointer (module.h): the two must have the same layout. */
_Static_assert(sizeof(_Atomic(synchro_t *)) == sizeof(synchro_t *),
               "synchro_module_t's slot must be pointer-sized");

struct synchro_module_stream_s {
  synchro_stream_t *stream;
  synchro_module_stream_cb done; /* armed by synchro_module_stream_arm() */
  synchro_fn fn;
  void *data;
};

/* ---- the module's synchronizer ---------------------------------------------------- */

int synchro_module_synchronizer(synchro_module_t *m, synchro_t **out) {
  synchro_t *s;
  synchro_t *created;
  synchro_options_t opts;
  int rc;

  if (m == NULL || out == NULL)
    return SYNCHRO_EINVAL;
  s = atomic_load_explicit(&m->sync, memory_order_acquire);
  if (s == NULL) {
    synchro_options_init(&opts);
    opts.name = m->name;
    rc = synchro_new(&created, &opts);
    if (rc != 0)
      return rc;
    /* Threads may race here: one wins, the others free theirs, which is cheap because a
     * synchronizer starts no thread before its first call. */
    if (atomic_compare_exchange_strong_explicit(&m->sync, &s, created, memory_order_acq_rel,
                                                memory_order_acquire))
      s = created;
    else
      synchro_free(created);
  }
  *out = s;
  return 0;
}

int synchro_module_use(synchro_module_t *m, synchro_t *s) {
  synchro_t *current = NULL;

  if (m == NULL || s == NULL)
    return SYNCHRO_EINVAL;
  if (atomic_compare_exchange_strong_explicit(&m->sync, &current, s, memory_order_acq_rel,
                                              memory_order_acquire))
    return 0;
  return current == s ? 0 : SYNCHRO_EALREADY;
}

/* ---- calls of module functions ---------------------------------------------------- */

/* Checks the arguments and finds the synchronizer: what every call does first. */
static int prepare(synchro_module_t *m, synchro_check_fn check, const void *args, synchro_t **s) {
  int rc = check != NULL ? check(args) : 0;
  return rc != 0 ? rc : synchro_module_synchronizer(m, s);
}

/* Attaches the typed callback to a new future; if that fails nobody would see the
 * outcome, so the call is stopped and the future freed. */
static int attach(synchro_future_t *f, synchro_host_t *host, synchro_host_cb done, synchro_fn cb,
                  void *data) {
  int rc = synchro_future_then_typed(f, host, done, cb, data);

  if (rc != 0) {
    (void)synchro_future_cancel(f);
    synchro_future_free(f);
  }
  return rc;
}

int synchro_module_call(synchro_module_t *m, const synchro_op_t *op, synchro_check_fn check,
                        const void *args, void *out, synchro_error_t **err) {
  synchro_t *s;
  int rc;

  if (err != NULL)
    *err = NULL;
  if (m == NULL || op == NULL || (out == NULL && op->result_size > 0))
    return SYNCHRO_EINVAL;
  rc = prepare(m, check, args, &s);
  if (rc != 0)
    return rc;
  return synchro_call(s, op, args, SYNCHRO_TIMEOUT_DEFAULT, out, err);
}

int synchro_module_submit(synchro_module_t *m, const synchro_op_t *op, synchro_check_fn check,
                          const void *args, synchro_future_t **out) {
  synchro_t *s;
  int rc;

  if (m == NULL || op == NULL || out == NULL)
    return SYNCHRO_EINVAL;
  rc = prepare(m, check, args, &s);
  if (rc != 0)
    return rc;
  return synchro_submit(s, op, args, SYNCHRO_TIMEOUT_DEFAULT, out);
}

int synchro_module_submit_aio(synchro_module_t *m, const synchro_op_t *op, synchro_check_fn check,
                              const void *args, synchro_host_t *host, synchro_host_cb done,
                              synchro_fn cb, void *data) {
  synchro_t *s;
  int rc;

  if (m == NULL || op == NULL || host == NULL || done == NULL || cb == NULL)
    return SYNCHRO_EINVAL;
  rc = prepare(m, check, args, &s);
  if (rc != 0)
    return rc;
  return synchro__submit_then(s, op, args, SYNCHRO_TIMEOUT_DEFAULT, host, done, cb, data);
}

int synchro_module_result(const synchro_op_t *op, synchro_future_t *f, void *out) {
  const char *name = f != NULL ? synchro_future_name(f) : NULL;

  if (op == NULL || op->name == NULL || name == NULL || strcmp(name, op->name) != 0)
    return SYNCHRO_EINVAL;
  if (op->result_size == 0)
    return synchro_future_status(f);
  if (out == NULL)
    return SYNCHRO_EINVAL;
  return synchro_future_result(f, out);
}

/* ---- objects ---------------------------------------------------------------------- */

int synchro_module_new(synchro_module_t *m, const synchro_class_t *cls, synchro_check_fn check,
                       const void *args, void *out, synchro_error_t **err) {
  synchro_object_t *obj = NULL;
  synchro_t *s;
  int rc;

  if (err != NULL)
    *err = NULL;
  if (out == NULL)
    return SYNCHRO_EINVAL;
  memcpy(out, &obj, sizeof(obj));
  if (m == NULL || cls == NULL)
    return SYNCHRO_EINVAL;
  rc = prepare(m, check, args, &s);
  if (rc == 0)
    rc = synchro_object_new(s, cls, args, &obj, err);
  if (rc == 0)
    memcpy(out, &obj, sizeof(obj));
  return rc;
}

/* The checks every object operation makes before its call. */
static int object_prepare(synchro_object_t *obj, synchro_module_role_t role, const synchro_op_t *op,
                          synchro_check_fn check, const void *args) {
  if (obj == NULL || op == NULL ||
      (role != SYNCHRO_MODULE_METHOD && role != SYNCHRO_MODULE_OPEN &&
       role != SYNCHRO_MODULE_CLOSE))
    return SYNCHRO_EINVAL;
  return check != NULL ? check(args) : 0;
}

int synchro_module_object_call(synchro_object_t *obj, synchro_module_role_t role,
                               const synchro_op_t *op, synchro_check_fn check, const void *args,
                               void *out, synchro_error_t **err) {
  int rc;

  if (err != NULL)
    *err = NULL;
  if (role == SYNCHRO_MODULE_METHOD && op != NULL && out == NULL && op->result_size > 0)
    return SYNCHRO_EINVAL;
  rc = object_prepare(obj, role, op, check, args);
  if (rc != 0)
    return rc;
  if (role == SYNCHRO_MODULE_OPEN)
    return synchro_object_open(obj, NULL, SYNCHRO_TIMEOUT_DEFAULT, err);
  if (role == SYNCHRO_MODULE_CLOSE)
    return synchro_object_close(obj, SYNCHRO_TIMEOUT_DEFAULT, err);
  return synchro_object_call(obj, op, args, SYNCHRO_TIMEOUT_DEFAULT, out, err);
}

int synchro_module_object_submit(synchro_object_t *obj, synchro_module_role_t role,
                                 const synchro_op_t *op, synchro_check_fn check, const void *args,
                                 synchro_future_t **out) {
  int rc;

  if (out == NULL)
    return SYNCHRO_EINVAL;
  *out = NULL;
  rc = object_prepare(obj, role, op, check, args);
  if (rc != 0)
    return rc;
  if (role == SYNCHRO_MODULE_OPEN)
    return synchro_object_open_future(obj, NULL, SYNCHRO_TIMEOUT_DEFAULT, out);
  if (role == SYNCHRO_MODULE_CLOSE)
    return synchro_object_close_future(obj, SYNCHRO_TIMEOUT_DEFAULT, out);
  return synchro_object_submit(obj, op, args, SYNCHRO_TIMEOUT_DEFAULT, out);
}

int synchro_module_object_submit_aio(synchro_object_t *obj, synchro_module_role_t role,
                                     const synchro_op_t *op, synchro_check_fn check,
                                     const void *args, synchro_host_t *host, synchro_host_cb done,
                                     synchro_fn cb, void *data) {
  synchro_future_t *f;
  int rc;

  if (host == NULL || done == NULL || cb == NULL)
    return SYNCHRO_EINVAL;
  rc = synchro_module_object_submit(obj, role, op, check, args, &f);
  if (rc != 0)
    return rc;
  return attach(f, host, done, cb, data);
}

/* ---- typed streams ---------------------------------------------------------------- */

/* Opens on `s` (a module function) or on `obj` (a method); `out` is already NULL. */
static int stream_open(synchro_t *s, synchro_object_t *obj, const synchro_op_t *op,
                       const void *args, void *out) {
  synchro_module_stream_t *st = synchro_mem_calloc(1, sizeof(*st));
  int rc;

  if (st == NULL)
    return SYNCHRO_ENOMEM;
  if (obj != NULL)
    rc = synchro_object_stream_open(obj, op, args, SYNCHRO_TIMEOUT_DEFAULT, &st->stream);
  else
    rc = synchro_stream_open(s, op, args, SYNCHRO_TIMEOUT_DEFAULT, &st->stream);
  if (rc != 0) {
    synchro_mem_free(st);
    return rc;
  }
  memcpy(out, &st, sizeof(st));
  return 0;
}

int synchro_module_stream_open(synchro_module_t *m, const synchro_op_t *op, synchro_check_fn check,
                               const void *args, void *out) {
  synchro_module_stream_t *none = NULL;
  synchro_t *s;
  int rc;

  if (out == NULL)
    return SYNCHRO_EINVAL;
  memcpy(out, &none, sizeof(none));
  if (m == NULL || op == NULL)
    return SYNCHRO_EINVAL;
  rc = prepare(m, check, args, &s);
  return rc != 0 ? rc : stream_open(s, NULL, op, args, out);
}

int synchro_module_object_stream_open(synchro_object_t *obj, const synchro_op_t *op,
                                      synchro_check_fn check, const void *args, void *out) {
  synchro_module_stream_t *none = NULL;
  int rc;

  if (out == NULL)
    return SYNCHRO_EINVAL;
  memcpy(out, &none, sizeof(none));
  if (obj == NULL || op == NULL)
    return SYNCHRO_EINVAL;
  rc = check != NULL ? check(args) : 0;
  return rc != 0 ? rc : stream_open(NULL, obj, op, args, out);
}

int synchro_module_stream_next(synchro_module_stream_t *st, void *item, int64_t timeout_ms) {
  if (st == NULL || item == NULL)
    return SYNCHRO_EINVAL;
  return synchro_stream_next(st->stream, item, timeout_ms);
}

/* The runtime's callback: hands the item to the adapter armed with it. The adapter may
 * re-arm or close `st`, so nothing of `st` is read after it returns. */
static void stream_done(synchro_stream_t *stream, int status, void *item, void *data) {
  synchro_module_stream_t *st = data;

  (void)stream;
  st->done(st, status, item, st->fn, st->data);
}

int synchro_module_stream_arm(synchro_module_stream_t *st, synchro_host_t *host,
                              synchro_module_stream_cb done, synchro_fn fn, void *data) {
  synchro_module_stream_t old;
  int rc;

  if (st == NULL || host == NULL || done == NULL || fn == NULL)
    return SYNCHRO_EINVAL;
  old = *st;
  st->done = done;
  st->fn = fn;
  st->data = data;
  rc = synchro_stream_next_then(st->stream, host, stream_done, st);
  if (rc != 0) {
    st->done = old.done;
    st->fn = old.fn;
    st->data = old.data;
  }
  return rc;
}

const synchro_error_t *synchro_module_stream_error(const synchro_module_stream_t *st) {
  return st != NULL ? synchro_stream_error(st->stream) : NULL;
}

void synchro_module_stream_close(synchro_module_stream_t *st) {
  if (st == NULL)
    return;
  synchro_stream_free(st->stream);
  synchro_mem_free(st);
}

/* ---- the implementation's side ---------------------------------------------------- */

char *synchro_module_dup_string(const char *s) { return s != NULL ? synchro_mem_strdup(s) : NULL; }

void *synchro_module_dup_bytes(const void *data, size_t len) {
  void *copy;

  if (data == NULL)
    return NULL;
  copy = synchro_mem_malloc(len > 0 ? len : 1);
  if (copy != NULL && len > 0)
    memcpy(copy, data, len);
  return copy;
}

json_t *synchro_module_dup_json(const json_t *v) { return v != NULL ? json_deep_copy(v) : NULL; }

void synchro_module_release_string(void *value) {
  if (value != NULL)
    synchro_mem_free(*(char **)value);
}

void synchro_module_release_json(void *value) {
  if (value != NULL)
    json_decref(*(json_t **)value);
}

void synchro_module_release_object(void *value) {
  if (value != NULL)
    synchro_object_free(*(synchro_object_t **)value);
}

int synchro_module_vfail(const synchro_module_t *m, synchro_call_t *call, int code, const char *fmt,
                         va_list ap) {
  if (m == NULL)
    return SYNCHRO_EINVAL;
  if (fmt == NULL)
    return synchro_call_fail(call, code, NULL, "%s",
                             m->strerror != NULL ? m->strerror(code) : synchro_strerror(code));
  return synchro_call_vfail(call, code, NULL, fmt, ap);
}

int synchro_module_reject(synchro_call_t *call, int code, const char *why) {
  int rc = synchro_call_fail(call, code, NULL, "%s: %s", synchro_call_name(call),
                             why != NULL ? why : "the result cannot be delivered");
  return rc != 0 ? rc : code;
}
