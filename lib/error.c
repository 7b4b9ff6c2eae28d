/* lib/error.c - error codes (one X-macro table) and error values. */
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

/* Thread-local buffers for codes synchro does not know (libuv formats those); one per
 * function, so a message and a name can be printed together. */
static _Thread_local char message_buf[64];
static _Thread_local char name_buf[64];

const char *synchro_strerror(int code) {
  switch (code) {
#define SYNCHRO__STRERROR_CASE(name, value, msg)                                                   \
  case SYNCHRO_##name: return msg;
    SYNCHRO_ERRNO_MAP(SYNCHRO__STRERROR_CASE)
#undef SYNCHRO__STRERROR_CASE
  case 0: return "success";
  default:
    /* uv_strerror() would leak a buffer for unknown codes; the _r form does not. */
    return uv_strerror_r(code, message_buf, sizeof(message_buf));
  }
}

const char *synchro_err_name(int code) {
  switch (code) {
#define SYNCHRO__NAME_CASE(name, value, msg)                                                       \
  case SYNCHRO_##name: return "SYNCHRO_" #name;
    SYNCHRO_ERRNO_MAP(SYNCHRO__NAME_CASE)
#undef SYNCHRO__NAME_CASE
  case 0: return "OK";
  default: return uv_err_name_r(code, name_buf, sizeof(name_buf));
  }
}

/* The runtime's own outcomes need no allocation: one shared error per code. */
#define SYNCHRO__STATIC_ERROR(name, value, msg) {value, true, msg, "synchro", NULL, NULL},
static const synchro_error_t static_errors[] = {SYNCHRO_ERRNO_MAP(SYNCHRO__STATIC_ERROR)};
#undef SYNCHRO__STATIC_ERROR

const synchro_error_t *synchro__static_error(int code) {
  size_t i;
  for (i = 0; i < sizeof(static_errors) / sizeof(static_errors[0]); i++)
    if (static_errors[i].code == code)
      return &static_errors[i];
  return NULL;
}

static char *format_message(int code, const char *fmt, va_list ap) {
  va_list copy;
  int len;
  char *msg;
  if (fmt == NULL)
    return synchro__strdup(synchro_strerror(code));
  va_copy(copy, ap);
  len = vsnprintf(NULL, 0, fmt, copy);
  va_end(copy);
  if (len < 0)
    return synchro__strdup(fmt);
  msg = synchro__malloc((size_t)len + 1);
  if (msg != NULL)
    vsnprintf(msg, (size_t)len + 1, fmt, ap);
  return msg;
}

int synchro__error_vnew(synchro_error_t **out, int code, const char *origin, struct json_t *details,
                        synchro_error_t *cause, const char *fmt, va_list ap) {
  synchro_error_t *err;
  if (out == NULL || code >= 0) {
    json_decref(details);
    synchro_error_free(cause);
    return SYNCHRO_EINVAL;
  }
  *out = NULL;
  err = synchro__calloc(1, sizeof(*err));
  if (err == NULL)
    goto nomem;
  err->code = code;
  err->message = format_message(code, fmt, ap);
  err->origin = synchro__strdup(origin ? origin : "");
  if (err->message == NULL || err->origin == NULL)
    goto nomem;
  err->details = details;
  err->cause = cause;
  *out = err;
  return 0;
nomem:
  if (err != NULL) {
    synchro__free((char *)err->message);
    synchro__free((char *)err->origin);
    synchro__free(err);
  }
  json_decref(details);
  synchro_error_free(cause);
  return SYNCHRO_ENOMEM;
}

int synchro_error_new(synchro_error_t **out, int code, const char *origin, struct json_t *details,
                      synchro_error_t *cause, const char *fmt, ...) {
  va_list ap;
  int rc;
  va_start(ap, fmt);
  rc = synchro__error_vnew(out, code, origin, details, cause, fmt, ap);
  va_end(ap);
  return rc;
}

int synchro_error_code(const synchro_error_t *err) { return err ? err->code : 0; }
const char *synchro_error_message(const synchro_error_t *err) { return err ? err->message : ""; }
const char *synchro_error_origin(const synchro_error_t *err) { return err ? err->origin : ""; }
struct json_t *synchro_error_details(const synchro_error_t *err) {
  return err ? err->details : NULL;
}
const synchro_error_t *synchro_error_cause(const synchro_error_t *err) {
  return err ? err->cause : NULL;
}

void synchro_error_free(synchro_error_t *err) {
  while (err != NULL && !err->is_static) {
    synchro_error_t *cause = err->cause;
    json_decref(err->details);
    synchro__free((char *)err->message);
    synchro__free((char *)err->origin);
    synchro__free(err);
    err = cause;
  }
}

static synchro_error_t *context_link(int code, json_t *details, const char *fmt, ...) {
  synchro_error_t *link = NULL;
  va_list ap;
  va_start(ap, fmt);
  synchro__error_vnew(&link, code, "synchro", details, NULL, fmt, ap);
  va_end(ap);
  return link;
}

void synchro__error_add_context(synchro_error_t *err, const synchro_call_t *rec) {
  synchro_error_t *tail = err;
  const char *op = rec->op->name != NULL ? rec->op->name : "?";
  if (err->is_static)
    return;
  while (tail->cause != NULL && !tail->cause->is_static)
    tail = tail->cause;
  if (tail->cause != NULL)
    return; /* a shared error ends the chain: it cannot take a link */
  tail->cause =
      context_link(err->code, json_pack("{s:s, s:s}", "op", op, "synchronizer", rec->sync->name),
                   "raised by %s, called through synchronizer '%s'", op, rec->sync->name);
}
