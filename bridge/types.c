/* bridge/types.c - parsing the spec's type strings. */
#include "types.h"

#include <string.h>

static const char *const kind_names[BRIDGE_KIND_COUNT_] = {
    "bool", "int", "uint", "double", "string", "bytes", "json", "ptr", "object",
};

static const char expected_types[] =
    "expected one of bool, int, uint, double, string, bytes, json, ptr, or an object "
    "name, optionally with \"?\" or \"[]\"";

const char *bridge_kind_name(bridge_kind_t kind) {
  return kind < BRIDGE_KIND_COUNT_ ? kind_names[kind] : "?";
}

bool bridge_kind_is_pointer(bridge_kind_t kind) {
  return kind == BRIDGE_STRING || kind == BRIDGE_BYTES || kind == BRIDGE_JSON ||
         kind == BRIDGE_PTR || kind == BRIDGE_OBJECT;
}

bool bridge_type_owns_memory(const bridge_type_t *t) {
  return t->array || t->kind == BRIDGE_STRING || t->kind == BRIDGE_BYTES || t->kind == BRIDGE_JSON;
}

/* True if `s` ends with `suffix`. */
static bool ends_with(const char *s, size_t len, const char *suffix) {
  size_t n = strlen(suffix);
  return len >= n && memcmp(s + len - n, suffix, n) == 0;
}

/* Finds a built-in kind named by exactly the `len` bytes at `s`. */
static bool builtin_kind(const char *s, size_t len, bridge_kind_t *out) {
  int k;

  for (k = 0; k < BRIDGE_OBJECT; k++) {
    if (strlen(kind_names[k]) == len && memcmp(kind_names[k], s, len) == 0) {
      *out = (bridge_kind_t)k;
      return true;
    }
  }
  return false;
}

static int unknown_type(const char *text, bridge_buf_t *why) {
  bridge_buf_add(why, "unknown type ");
  bridge_buf_add_quoted(why, text, 64);
  bridge_buf_addf(why, "; %s", expected_types);
  return -1;
}

/* Resolves the base name (no "?", no "[]") of `text` to a kind. */
static int parse_base(const char *text, size_t len, bridge_object_lookup_fn lookup, const void *ctx,
                      bridge_type_t *out, bridge_buf_t *why) {
  char name[128];
  const char *object;

  if (builtin_kind(text, len, &out->kind))
    return 0;
  if (len == 0 || len >= sizeof(name))
    return unknown_type(text, why);
  memcpy(name, text, len);
  name[len] = '\0';
  object = lookup ? lookup(name, ctx) : NULL;
  if (object == NULL)
    return unknown_type(text, why);
  out->kind = BRIDGE_OBJECT;
  out->object = object;
  return 0;
}

int bridge_type_parse(const char *text, bridge_object_lookup_fn lookup, const void *ctx,
                      bridge_type_t *out, bridge_buf_t *why) {
  size_t len = strlen(text);
  bridge_type_t t = {BRIDGE_BOOL, false, false, NULL};

  if (ends_with(text, len, "[]")) {
    t.array = true;
    len -= 2;
    if (ends_with(text, len, "[]")) {
      bridge_buf_add(why, "arrays of arrays are not supported; expected \"T[]\" where T "
                          "is not an array");
      return -1;
    }
  }
  if (ends_with(text, len, "?")) {
    t.nullable = true;
    len -= 1;
    if (ends_with(text, len, "[]")) {
      bridge_buf_add(why, "an array cannot be nullable (\"?\" after \"[]\"); pass an "
                          "empty array instead, or use \"T?[]\" for nullable elements");
      return -1;
    }
  }
  if (parse_base(text, len, lookup, ctx, &t, why) != 0)
    return -1;
  if (t.nullable && !bridge_kind_is_pointer(t.kind)) {
    bridge_buf_addf(why,
                    "\"%s\" cannot be nullable; only string, bytes, json, ptr and "
                    "object types may end in \"?\"",
                    kind_names[t.kind]);
    return -1;
  }
  *out = t;
  return 0;
}
