/* bridge/types.h - the spec's type language: "int", "string?", "bytes[]", ... */
#ifndef BRIDGE_TYPES_H
#define BRIDGE_TYPES_H

#include <stdbool.h>
#include <stddef.h>

#include "util.h"

typedef enum bridge_kind_e {
  BRIDGE_BOOL,
  BRIDGE_INT,
  BRIDGE_UINT,
  BRIDGE_DOUBLE,
  BRIDGE_STRING,
  BRIDGE_BYTES,
  BRIDGE_JSON,
  BRIDGE_PTR,
  BRIDGE_OBJECT,
  BRIDGE_KIND_COUNT_ /* not a kind: the number of kinds */
} bridge_kind_t;

/* A parsed type. For an array, `kind` and `nullable` describe the elements: "T?[]"
 * is an array of nullable T; the array itself is never nullable. */
typedef struct bridge_type_s {
  bridge_kind_t kind;
  bool nullable;
  bool array;
  const char *object; /* the object's name for BRIDGE_OBJECT, else NULL */
} bridge_type_t;

/* Returns the lasting name of the declared object called `name`, or NULL; passed to
 * the type parser so that it does not depend on the spec model. */
typedef const char *(*bridge_object_lookup_fn)(const char *name, const void *ctx);

/* Parses `text`. Returns 0, or -1 with a one-line reason in `why` (which states
 * what was expected). An object type's name is the one `lookup` returned. */
int bridge_type_parse(const char *text, bridge_object_lookup_fn lookup, const void *ctx,
                      bridge_type_t *out, bridge_buf_t *why);

/* The spec spelling of a kind: "bool", "int", ... ("object" for objects). */
const char *bridge_kind_name(bridge_kind_t kind);

/* True for the kinds represented by a pointer (and so the ones that may be null). */
bool bridge_kind_is_pointer(bridge_kind_t kind);

/* True when the value owns memory that must be copied and released: strings,
 * bytes, json and every array. */
bool bridge_type_owns_memory(const bridge_type_t *t);

#endif /* BRIDGE_TYPES_H */
