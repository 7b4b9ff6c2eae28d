/* bridge/emit.h - turning a validated spec into MOD.h, MOD.c and MOD_impl.h.
 *
 * Output is built in memory (bridge_render), then written (bridge_emit), so that
 * `check` can render into a temporary directory with the same code path. Every
 * emitter is deterministic: the same spec gives the same bytes. */
#ifndef BRIDGE_EMIT_H
#define BRIDGE_EMIT_H

#include <stdbool.h>

#include "spec.h"
#include "util.h"

#include "synchro/version.h"

/* The generator's version is the runtime's it was built with. */
#define BRIDGE_STR2(x) #x
#define BRIDGE_STR(x) BRIDGE_STR2(x)
#define BRIDGE_VERSION                                                                             \
  BRIDGE_STR(SYNCHRO_VERSION_MAJOR)                                                                \
  "." BRIDGE_STR(SYNCHRO_VERSION_MINOR) "." BRIDGE_STR(SYNCHRO_VERSION_PATCH)

enum { BRIDGE_FILE_HEADER, BRIDGE_FILE_SOURCE, BRIDGE_FILE_IMPL, BRIDGE_FILE_COUNT };

/* The rendered files: names ("kv.h", "kv.c", "kv_impl.h") and contents. */
typedef struct bridge_files_s {
  char name[BRIDGE_FILE_COUNT][BRIDGE_NAME_MAX + 16];
  bridge_buf_t text[BRIDGE_FILE_COUNT];
} bridge_files_t;

/* Fails with the path of the first spec feature this version cannot emit (arrays of
 * objects). Returns 0 or -1 with *err set. */
int bridge_check_supported(const bridge_spec_t *spec, bridge_error_t *err);

/* Renders the three files. Returns 0, -ENOTSUP (see bridge_check_supported) or
 * -ENOMEM; on failure `files` holds nothing to free. */
int bridge_render(const bridge_spec_t *spec, bridge_files_t *files);
void bridge_files_free(bridge_files_t *files);

/* Renders and writes MOD.h, MOD.c and MOD_impl.h into `dir` (which must exist).
 * Returns 0, -ENOTSUP, -ENOMEM or the -errno of a failed write. */
int bridge_emit(const bridge_spec_t *spec, const char *dir);

/* ---- shared by the emitters (emit_*.c) ----------------------------------------- */

/* What the module uses, so that only helpers something calls are emitted (generated
 * code must build with -Werror, where an unused static function is an error). */
typedef struct bridge_emit_s {
  const bridge_spec_t *spec;
  const char *mod;                 /* "kv" */
  char upper[BRIDGE_NAME_MAX + 1]; /* "KV" */
  bool uses_json;
  bool uses_bytes_type;                  /* kv_bytes_t: a bytes result or a bytes array */
  bool dup_array[BRIDGE_KIND_COUNT_];    /* array copies, by element kind */
  bool result_array[BRIDGE_KIND_COUNT_]; /* kv_<kind>_array_t result types */
  bool release[BRIDGE_KIND_COUNT_];      /* result releasers of non-array results */
  bool stream_funcs;                     /* module functions that yield */
  bool stream_methods;                   /* methods that yield */
} bridge_emit_t;

void bridge_emit_init(bridge_emit_t *e, const bridge_spec_t *spec);

/* A C type spelling, returned by value so it can be used inside one printf call. */
typedef struct bridge_ctype_s {
  char s[2 * BRIDGE_NAME_MAX + 48];
} bridge_ctype_t;

/* The owned C type of a result ("char *", "kv_bytes_t", "kv_int_array_t"). */
bridge_ctype_t bridge_c_result(const bridge_emit_t *e, const bridge_type_t *t);
/* The type a callback receives the result as (borrowed: "const char *"). */
bridge_ctype_t bridge_c_cb_result(const bridge_emit_t *e, const bridge_type_t *t);
/* The type of an argument's (first) parameter, also its args-struct field:
 * "const char *", "const void *" for bytes, "const char *const *" for string[]. */
bridge_ctype_t bridge_c_param(const bridge_emit_t *e, const bridge_type_t *t);
/* The owned type of one array element ("char *", "kv_bytes_t"). */
bridge_ctype_t bridge_c_elem(const bridge_emit_t *e, bridge_kind_t kind);
/* An initializer for a zero result: "0", "false", "NULL", "{NULL, 0}". */
const char *bridge_c_zero(const bridge_type_t *t);
/* The implementation's state type of an object type ("kv_conn"). */
const char *bridge_c_impl(const bridge_emit_t *e, const bridge_type_t *t);
/* True if an argument of this type has something to copy or release (memory, or a
 * handle reference). */
bool bridge_arg_needs_copy(const bridge_type_t *t);
/* The lifecycle ops of an object as functions (no args, no result): role OPEN or
 * CLOSE, named "open" / "close", cname "obj_open" / "obj_close". */
void bridge_lifecycle_func(const bridge_object_t *o, bridge_role_t role, bridge_func_t *out);

/* The second parameter of an argument ("_len" for bytes, "_count" for arrays), or NULL. */
const char *bridge_c_extra(const bridge_type_t *t);

/* Appends "type name", without a space after a '*'. */
void bridge_add_decl(bridge_buf_t *b, const char *type, const char *name);
/* Appends "T *name" ("T **name" when T is itself a pointer). */
void bridge_add_pointer_decl(bridge_buf_t *b, const char *type, const char *name);
/* Appends a function's parameters ("const char *key, size_t key_len"), nothing for
 * none; with `names_only`, just the names ("key, key_len"). */
void bridge_add_params(bridge_buf_t *b, const bridge_emit_t *e, const bridge_func_t *f,
                       bool names_only);
/* True if the type's value is one the runtime must release (see result_free). */
bool bridge_result_owns(const bridge_type_t *t);
/* The spec spelling of a type ("string?[]"). */
bridge_ctype_t bridge_type_spelling(const bridge_type_t *t);

/* Appends `line` and a newline, breaking it after ", " (aligned after the enclosing
 * "(") wherever it would pass column 88. */
void bridge_add_wrapped(bridge_buf_t *b, const char *line);

/* The declarations bridge makes per function. */
typedef enum bridge_proto_e {
  BRIDGE_PROTO_BLOCKING, /* int MOD_op(args..., RET *out, synchro_error_t **err) */
  BRIDGE_PROTO_FUTURE,   /* int MOD_op_future(args..., synchro_future_t **out) */
  BRIDGE_PROTO_RESULT,   /* int MOD_op_result(synchro_future_t *f, RET *out) */
  BRIDGE_PROTO_CALLBACK, /* typedef void (*MOD_op_cb)(status, result, err, data) */
  BRIDGE_PROTO_AIO,      /* int MOD_op_aio(args..., host, cb, data) */
  BRIDGE_PROTO_IMPL,     /* void MOD_op_impl(call, const MOD_op_args_t *args) */
  BRIDGE_PROTO_RETURN,   /* int MOD_op_return(call, value) */
  BRIDGE_PROTO_FAIL,     /* int MOD_op_fail(call, code, fmt, ...) */
  /* streams ("yields": T) */
  BRIDGE_PROTO_OPEN,      /* int MOD_op_open(args..., MOD_op_stream_t **out) */
  BRIDGE_PROTO_NEXT,      /* int MOD_op_next(st, T *item, int64_t timeout_ms) */
  BRIDGE_PROTO_NEXT_CB,   /* typedef void (*MOD_op_next_cb)(st, status, item, err, data) */
  BRIDGE_PROTO_NEXT_AIO,  /* int MOD_op_next_aio(st, host, cb, data) */
  BRIDGE_PROTO_ERROR,     /* const synchro_error_t *MOD_op_error(st) */
  BRIDGE_PROTO_CLOSE,     /* void MOD_op_close(st) */
  BRIDGE_PROTO_YIELD,     /* int MOD_op_yield(call, value) */
  BRIDGE_PROTO_END,       /* int MOD_op_end(call) */
  BRIDGE_PROTO_ROOM,      /* int MOD_op_room(call) */
  BRIDGE_PROTO_ON_DEMAND, /* int MOD_op_on_demand(call, fn, data) */
} bridge_proto_t;

/* Appends one declaration, without ";" or body. */
void bridge_add_proto(bridge_buf_t *b, const bridge_emit_t *e, const bridge_func_t *f,
                      bridge_proto_t which);
/* Appends before + the declaration + after as one wrapped line. */
void bridge_add_proto_line(bridge_buf_t *b, const bridge_emit_t *e, const bridge_func_t *f,
                           bridge_proto_t which, const char *before, const char *after);

/* The banner every generated file starts with. */
void bridge_add_banner(bridge_buf_t *b, const char *file, const char *what);
/* A section rule: "/\* ---- title ------...--- *\/" padded to 88 columns. */
void bridge_add_rule(bridge_buf_t *b, const char *title);

void bridge_emit_header(const bridge_emit_t *e, bridge_buf_t *b);
void bridge_emit_source(const bridge_emit_t *e, bridge_buf_t *b);
void bridge_emit_impl(const bridge_emit_t *e, bridge_buf_t *b);

#endif /* BRIDGE_EMIT_H */
