/* lib/call.c - the implementation's side of a call (loop thread only). */
#include <jansson.h>
#include <string.h>

#include "internal.h"

/* Every entry point first checks that it runs on the call's loop thread: anywhere
 * else it would race with the loop, so it fails and changes nothing. */
static int check_loop_call(const synchro_call_t *call) {
  int rc = synchro__rec_check(call);
  if (rc != 0)
    return rc;
  return synchro__on_loop(call->sync) ? 0 : SYNCHRO_EPERM;
}

const void *synchro_call_args(const synchro_call_t *call) {
  return check_loop_call(call) == 0 ? synchro__rec_args(call) : NULL;
}

const char *synchro_call_name(const synchro_call_t *call) {
  return synchro__rec_check(call) == 0 ? call->op->name : NULL;
}

synchro_t *synchro_call_synchronizer(const synchro_call_t *call) {
  return check_loop_call(call) == 0 ? call->sync : NULL;
}

uv_loop_t *synchro_call_loop(const synchro_call_t *call) {
  return check_loop_call(call) == 0 ? &call->sync->loop : NULL;
}

void synchro_call_set_data(synchro_call_t *call, void *data) {
  if (check_loop_call(call) == 0)
    call->impl_data = data;
}

void *synchro_call_data(const synchro_call_t *call) {
  return check_loop_call(call) == 0 ? call->impl_data : NULL;
}

static bool impl_finished(const synchro_call_t *call) {
  return (call->lflags & SYNCHRO__L_IMPL_DONE) != 0;
}

int synchro_call_on_cancel(synchro_call_t *call, synchro_cancel_fn fn, void *data) {
  int rc = check_loop_call(call);
  if (rc != 0)
    return rc;
  if (fn == NULL)
    return SYNCHRO_EINVAL;
  if (impl_finished(call) || (call->lflags & SYNCHRO__L_CANCEL_SEEN))
    return SYNCHRO_EALREADY;
  call->cancel_fn = fn;
  call->cancel_data = data;
  return 0;
}

int synchro_call_cancel_reason(const synchro_call_t *call) {
  int rc = check_loop_call(call);
  uint32_t st;
  if (rc != 0)
    return rc;
  st = atomic_load_explicit(&call->state, memory_order_acquire);
  if (!(st & SYNCHRO__CANCEL))
    return 0;
  if (synchro__phase(st) == SYNCHRO__DONE)
    return call->status;
  return call->status != 0 ? call->status : SYNCHRO_ECANCELED;
}

/* Common tail of every completion: publish (or discard) the outcome, then release the
 * loop's hold on the record. */
static int finish(synchro_call_t *call, int outcome, const void *result, synchro_error_t *err) {
  if (impl_finished(call)) {
    /* A second completion: misuse, reported, never a double free. */
    synchro__release_result(call->op, result);
    synchro_error_free(err);
    return SYNCHRO_EALREADY;
  }
  if (err != NULL && call->sync->error_context)
    synchro__error_add_context(err, call);
  synchro__resolve(call, outcome, result, err); /* EALREADY: resolved by a cancel */
  synchro__loop_finish_call(call->sync, call);
  return 0;
}

int synchro_call_return(synchro_call_t *call, const void *result) {
  int rc = check_loop_call(call);
  if (rc == SYNCHRO_EPERM)
    synchro__release_result(call->op, result); /* the runtime owns the result in every case */
  if (rc != 0)
    return rc;
  if (result == NULL && call->op->result_size != 0)
    return SYNCHRO_EINVAL;
  return finish(call, 0, result, NULL);
}

int synchro_call_vfail(synchro_call_t *call, int code, struct json_t *details, const char *fmt,
                       va_list ap) {
  synchro_error_t *err = NULL;
  int rc = check_loop_call(call);
  if (rc != 0 || code >= 0) {
    json_decref(details);
    return rc != 0 ? rc : SYNCHRO_EINVAL;
  }
  if (impl_finished(call)) {
    json_decref(details);
    return SYNCHRO_EALREADY;
  }
  /* Out of memory here still delivers `code`; only the message and details are lost. */
  synchro__error_vnew(&err, code, call->op->name, details, NULL, fmt, ap);
  return finish(call, code, NULL, err);
}

int synchro_call_fail(synchro_call_t *call, int code, struct json_t *details, const char *fmt,
                      ...) {
  va_list ap;
  int rc;
  va_start(ap, fmt);
  rc = synchro_call_vfail(call, code, details, fmt, ap);
  va_end(ap);
  return rc;
}

int synchro_call_fail_error(synchro_call_t *call, synchro_error_t *err) {
  int rc = check_loop_call(call);
  if (rc != 0 || err == NULL || err->code >= 0) {
    synchro_error_free(err); /* stolen in every case */
    return rc != 0 ? rc : SYNCHRO_EINVAL;
  }
  return finish(call, err->code, NULL, err);
}
