/* bridge/spec.h - the interface spec: its model, parser and validator.
 *
 * A spec is parsed and validated in one pass into the model below. Every string in
 * the model is borrowed from the parsed JSON document, which the spec owns, so one
 * bridge_spec_free() releases everything. Parsing never trusts the input: it is fed
 * arbitrary bytes by the fuzzer (tests/fuzz/fuzz_spec.c). */
#ifndef BRIDGE_SPEC_H
#define BRIDGE_SPEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "types.h"

#define BRIDGE_PATH_MAX 512
#define BRIDGE_MESSAGE_MAX 1024

/* The first problem found in a spec. A JSON syntax error has line and column set
 * (from jansson, 1-based) and an empty path; a validation error has line 0 and the
 * JSON Pointer of the offending value in `path` ("" for the document itself). */
typedef struct bridge_error_s {
  int line;
  int column;
  char path[BRIDGE_PATH_MAX];
  char text[BRIDGE_MESSAGE_MAX];
} bridge_error_t;

/* One argument of a function, method or constructor. */
typedef struct bridge_arg_s {
  const char *name;
  const char *doc; /* NULL when absent */
  bridge_type_t type;
} bridge_arg_t;

struct bridge_object_s;

/* What an operation is: a module function, an object's method, or an object's
 * open/close (which the emitters make up; the spec only says "open": true). */
typedef enum bridge_role_e {
  BRIDGE_ROLE_FUNCTION,
  BRIDGE_ROLE_METHOD,
  BRIDGE_ROLE_OPEN,
  BRIDGE_ROLE_CLOSE,
} bridge_role_t;

/* A function, or a method of an object. A function that returns nothing has
 * has_result false; "returns" and "yields" both set `result`, told apart by
 * `yields`. */
typedef struct bridge_func_s {
  const char *name;
  /* The stem of its C names after "MOD_": "get", or "client_get" for a method. */
  char cname[2 * 64 + 8];
  bridge_role_t role;
  const struct bridge_object_s *owner; /* the object of a method, open or close */
  const char *doc;
  bridge_arg_t *args;
  size_t nargs;
  bool has_result;
  bool yields;
  bridge_type_t result;
  bool has_timeout;
  int64_t timeout_ms;
  char path[64]; /* JSON Pointer of the entry, e.g. "/functions/3" */
} bridge_func_t;

/* A declared error: becomes MOD_E<NAME>. */
typedef struct bridge_errdef_s {
  const char *name;
  const char *doc;
  const char *message; /* NULL: derived from the name */
} bridge_errdef_t;

typedef struct bridge_object_s {
  const char *name;
  const char *impl;
  const char *doc;
  bool has_new;
  bridge_arg_t *new_args;
  size_t n_new_args;
  bool open;
  bool close;
  bridge_func_t *methods;
  size_t nmethods;
  char path[64];
} bridge_object_t;

typedef struct bridge_spec_s {
  json_t *root; /* owns every string below */
  const char *module;
  const char *doc;
  bridge_errdef_t *errors;
  size_t nerrors;
  bridge_func_t *functions;
  size_t nfunctions;
  bridge_object_t *objects;
  size_t nobjects;
} bridge_spec_t;

/* Most errors a module may declare: their codes must stay inside the module range
 * (see BRIDGE_ERROR_BASE in docs/spec.md). */
#define BRIDGE_ERRORS_MAX 999
/* Module error codes are -(BRIDGE_ERROR_BASE + 1 + index). */
#define BRIDGE_ERROR_BASE 20000
/* Longest name the spec may use, so generated identifiers stay readable. */
#define BRIDGE_NAME_MAX 64
/* Largest timeout_ms accepted: one year, far from any overflow. */
#define BRIDGE_TIMEOUT_MAX INT64_C(31536000000)

/* Parses and validates `len` bytes of spec text. Returns 0 and a new spec in *out,
 * or -1 with the first problem in *err (*out untouched); ENOMEM is reported as an
 * error too. Never crashes on any input. */
int bridge_spec_parse(const char *text, size_t len, bridge_spec_t **out, bridge_error_t *err);

/* Frees a spec; NULL is a no-op. */
void bridge_spec_free(bridge_spec_t *spec);

/* The object named `name`, or NULL. */
const bridge_object_t *bridge_spec_object(const bridge_spec_t *spec, const char *name);

/* Records the first error: later calls leave *err alone. Returns -1. */
int bridge_fail(bridge_error_t *err, const char *path, const char *fmt, ...) BRIDGE_PRINTF(3, 4);

#endif /* BRIDGE_SPEC_H */
