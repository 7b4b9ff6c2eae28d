/* bridge/spec.c - parsing and validating a spec into the model of spec.h.
 *
 * The validator walks the document in a fixed order and stops at the first problem,
 * so the same input always gives the same message (tests compare it verbatim):
 *   1. the top-level keys, "module", "doc";
 *   2. the object names (types anywhere may refer to any object);
 *   3. "errors", "functions", then the rest of "objects";
 *   4. the C names bridge will generate (see names.h), which must all be distinct. */
#include "spec.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "names.h"

int bridge_fail(bridge_error_t *err, const char *path, const char *fmt, ...) {
  va_list ap;

  if (err->text[0] != '\0')
    return -1; /* the first error wins */
  bridge_format(err->path, sizeof(err->path), "%s", path);
  va_start(ap, fmt);
  vsnprintf(err->text, sizeof(err->text), fmt, ap);
  va_end(ap);
  if (err->text[0] == '\0')
    bridge_format(err->text, sizeof(err->text), "invalid");
  return -1;
}

static int fail_buf(bridge_error_t *err, const char *path, bridge_buf_t *b) {
  int rc = bridge_fail(err, path, "%s", b->failed ? "out of memory" : bridge_buf_str(b));
  bridge_buf_free(b);
  return rc;
}

static int fail_nomem(bridge_error_t *err, const char *path) {
  return bridge_fail(err, path, "out of memory");
}

/* ---- JSON Pointer paths ------------------------------------------------------- */

/* `base` + "/" + `key`, escaped as RFC 6901 says ("~" -> "~0", "/" -> "~1"); bytes
 * that would break a one-line message are shown as \xNN. Truncated if too long. */
static void path_key(char *out, const char *base, const char *key) {
  bridge_buf_t b;
  const unsigned char *p;

  bridge_buf_init(&b);
  bridge_buf_addf(&b, "%s/", base);
  for (p = (const unsigned char *)key; *p; p++) {
    if (*p == '~')
      bridge_buf_add(&b, "~0");
    else if (*p == '/')
      bridge_buf_add(&b, "~1");
    else if (*p < 0x20 || *p >= 0x7f)
      bridge_buf_addf(&b, "\\x%02x", *p);
    else
      bridge_buf_addn(&b, (const char *)p, 1);
  }
  bridge_format(out, BRIDGE_PATH_MAX, "%s", b.failed ? base : bridge_buf_str(&b));
  bridge_buf_free(&b);
}

static void path_index(char *out, const char *base, size_t index) {
  bridge_format(out, BRIDGE_PATH_MAX, "%s/%zu", base, index);
}

/* ---- typed access to JSON values ---------------------------------------------- */

static const char *json_kind(const json_t *v) {
  switch (json_typeof(v)) {
  case JSON_OBJECT: return "an object";
  case JSON_ARRAY: return "an array";
  case JSON_STRING: return "a string";
  case JSON_INTEGER: return "an integer";
  case JSON_REAL: return "a number";
  case JSON_TRUE: return "true";
  case JSON_FALSE: return "false";
  case JSON_NULL: return "null";
  }
  return "a JSON value";
}

static int expect_type(const json_t *v, json_type type, const char *path, const char *expected,
                       bridge_error_t *err) {
  if (json_typeof(v) == type)
    return 0;
  return bridge_fail(err, path, "expected %s, got %s", expected, json_kind(v));
}

/* Rejects keys of `obj` outside `allowed` (typo protection), first in document order. */
static int check_keys(json_t *obj, const char *path, const char *const *allowed,
                      bridge_error_t *err) {
  const char *key;
  json_t *value;
  char keypath[BRIDGE_PATH_MAX];

  json_object_foreach(obj, key, value) {
    const char *const *a;
    bridge_buf_t list;
    for (a = allowed; *a; a++)
      if (strcmp(*a, key) == 0)
        break;
    if (*a)
      continue;
    bridge_buf_init(&list);
    bridge_buf_add(&list, "unknown key; expected one of ");
    for (a = allowed; *a; a++)
      bridge_buf_addf(&list, "%s%s", a == allowed ? "" : ", ", *a);
    path_key(keypath, path, key);
    return fail_buf(err, keypath, &list);
  }
  return 0;
}

/* Reads an optional (or, with `required`, mandatory) string member. */
static int get_string(json_t *obj, const char *key, const char *path, bool required,
                      const char *expected, const char **out, bridge_error_t *err) {
  char keypath[BRIDGE_PATH_MAX];
  json_t *v = json_object_get(obj, key);

  *out = NULL;
  path_key(keypath, path, key);
  if (v == NULL) {
    if (required)
      return bridge_fail(err, keypath, "missing; expected %s", expected);
    return 0;
  }
  if (expect_type(v, JSON_STRING, keypath, expected, err) != 0)
    return -1;
  *out = json_string_value(v);
  return 0;
}

static int get_bool(json_t *obj, const char *key, const char *path, bool *out,
                    bridge_error_t *err) {
  char keypath[BRIDGE_PATH_MAX];
  json_t *v = json_object_get(obj, key);

  *out = false;
  if (v == NULL)
    return 0;
  path_key(keypath, path, key);
  if (!json_is_boolean(v))
    return bridge_fail(err, keypath, "expected true or false, got %s", json_kind(v));
  *out = json_is_true(v);
  return 0;
}

/* Reads a mandatory name member and checks it is a usable identifier. */
static int get_name_at(json_t *obj, const char *path, const char *key, bool lower_snake,
                       const char *what, const char **out, bridge_error_t *err) {
  char keypath[BRIDGE_PATH_MAX];
  char expected[128];
  bridge_buf_t why;

  bridge_format(expected, sizeof(expected), "%s, a %s", what,
                lower_snake ? "lower_snake C identifier" : "C identifier");
  if (get_string(obj, key, path, true, expected, out, err) != 0)
    return -1;
  bridge_buf_init(&why);
  if (bridge_name_check(*out, lower_snake, &why) == 0) {
    bridge_buf_free(&why);
    return 0;
  }
  path_key(keypath, path, key);
  {
    bridge_buf_t msg;
    bridge_buf_init(&msg);
    bridge_buf_add(&msg, "invalid name ");
    bridge_buf_add_quoted(&msg, *out, 64);
    bridge_buf_addf(&msg, ": %s; expected %s", bridge_buf_str(&why), expected);
    bridge_buf_free(&why);
    return fail_buf(err, keypath, &msg);
  }
}

static int get_name(json_t *obj, const char *path, bool lower_snake, const char *what,
                    const char **out, bridge_error_t *err) {
  return get_name_at(obj, path, "name", lower_snake, what, out, err);
}

/* Reads an optional array member, returning NULL in *out when absent. */
static int get_array(json_t *obj, const char *key, const char *path, const char *expected,
                     json_t **out, bridge_error_t *err) {
  char keypath[BRIDGE_PATH_MAX];

  *out = json_object_get(obj, key);
  if (*out == NULL)
    return 0;
  path_key(keypath, path, key);
  return expect_type(*out, JSON_ARRAY, keypath, expected, err);
}

/* calloc for `n` model entries; n == 0 gives NULL without failing. */
static int alloc_entries(void **out, size_t n, size_t size, const char *path, bridge_error_t *err) {
  *out = NULL;
  if (n == 0)
    return 0;
  *out = calloc(n, size);
  return *out ? 0 : fail_nomem(err, path);
}

/* ---- types and arguments ------------------------------------------------------ */

static const char *lookup_object(const char *name, const void *ctx) {
  const bridge_object_t *o = bridge_spec_object(ctx, name);
  return o ? o->name : NULL;
}

static int parse_type(const bridge_spec_t *spec, json_t *obj, const char *key, const char *path,
                      bool required, bridge_type_t *out, bridge_error_t *err) {
  char keypath[BRIDGE_PATH_MAX];
  const char *text;
  bridge_buf_t why;

  if (get_string(obj, key, path, required,
                 "a type such as \"int\", \"string?\" or "
                 "\"bytes[]\"",
                 &text, err) != 0)
    return -1;
  if (text == NULL)
    return 0;
  bridge_buf_init(&why);
  if (bridge_type_parse(text, lookup_object, spec, out, &why) == 0) {
    bridge_buf_free(&why);
    return 0;
  }
  path_key(keypath, path, key);
  return fail_buf(err, keypath, &why);
}

/* The C parameters an argument becomes: its name, plus name_len for bytes or
 * name_count for arrays. Returns how many (1 or 2). */
static int arg_params(const bridge_arg_t *a, char params[2][BRIDGE_NAME_MAX + 8]) {
  bridge_format(params[0], sizeof(params[0]), "%s", a->name);
  if (a->type.array) {
    bridge_format(params[1], sizeof(params[1]), "%s_count", a->name);
    return 2;
  }
  if (a->type.kind == BRIDGE_BYTES) {
    bridge_format(params[1], sizeof(params[1]), "%s_len", a->name);
    return 2;
  }
  return 1;
}

/* Checks that argument i's C parameters are not those of an earlier argument. */
static int check_arg_clashes(const bridge_arg_t *args, size_t i, const char *path,
                             bridge_error_t *err) {
  char mine[2][BRIDGE_NAME_MAX + 8];
  char theirs[2][BRIDGE_NAME_MAX + 8];
  char namepath[BRIDGE_PATH_MAX];
  int n = arg_params(&args[i], mine);
  size_t j;

  path_key(namepath, path, "name");
  for (j = 0; j < i; j++) {
    int m = arg_params(&args[j], theirs);
    int p, q;
    if (strcmp(args[i].name, args[j].name) == 0)
      return bridge_fail(err, namepath,
                         "duplicate argument name \"%s\"; argument %zu "
                         "has it too",
                         args[i].name, j);
    for (p = 0; p < n; p++)
      for (q = 0; q < m; q++)
        if (strcmp(mine[p], theirs[q]) == 0)
          return bridge_fail(err, namepath,
                             "the C parameter \"%s\" made for this "
                             "argument is also made for argument %zu "
                             "(bytes add \"_len\", arrays add \"_count\")",
                             mine[p], j);
  }
  return 0;
}

static const char *const arg_keys[] = {"name", "type", "doc", NULL};

static int parse_arg(const bridge_spec_t *spec, json_t *v, const char *path, bridge_arg_t *a,
                     bridge_error_t *err) {
  bridge_buf_t why;
  char namepath[BRIDGE_PATH_MAX];

  if (expect_type(v, JSON_OBJECT, path, "an argument object {\"name\", \"type\", \"doc\"}", err) !=
          0 ||
      check_keys(v, path, arg_keys, err) != 0 ||
      get_name(v, path, false, "the argument name", &a->name, err) != 0)
    return -1;
  bridge_buf_init(&why);
  if (bridge_param_check(a->name, spec->module, &why) != 0) {
    bridge_buf_t msg;
    bridge_buf_init(&msg);
    bridge_buf_addf(&msg, "argument name \"%s\" %s", a->name, bridge_buf_str(&why));
    bridge_buf_free(&why);
    path_key(namepath, path, "name");
    return fail_buf(err, namepath, &msg);
  }
  bridge_buf_free(&why);
  if (parse_type(spec, v, "type", path, true, &a->type, err) != 0)
    return -1;
  return get_string(v, "doc", path, false, "a string", &a->doc, err);
}

/* Parses the optional "args" member of `obj`. */
static int parse_args(const bridge_spec_t *spec, json_t *obj, const char *path, bridge_arg_t **out,
                      size_t *n, bridge_error_t *err) {
  char argspath[BRIDGE_PATH_MAX];
  char argpath[BRIDGE_PATH_MAX];
  json_t *list;
  size_t i;

  *out = NULL;
  *n = 0;
  if (get_array(obj, "args", path, "an array of arguments", &list, err) != 0)
    return -1;
  if (list == NULL)
    return 0;
  path_key(argspath, path, "args");
  if (alloc_entries((void **)out, json_array_size(list), sizeof(**out), argspath, err))
    return -1;
  *n = json_array_size(list);
  for (i = 0; i < *n; i++) {
    path_index(argpath, argspath, i);
    if (parse_arg(spec, json_array_get(list, i), argpath, &(*out)[i], err) != 0 ||
        check_arg_clashes(*out, i, argpath, err) != 0)
      return -1;
  }
  return 0;
}

/* ---- functions and methods ---------------------------------------------------- */

static int parse_timeout(json_t *obj, const char *path, bridge_func_t *f, bridge_error_t *err) {
  char keypath[BRIDGE_PATH_MAX];
  json_t *v = json_object_get(obj, "timeout_ms");

  if (v == NULL)
    return 0;
  path_key(keypath, path, "timeout_ms");
  if (!json_is_integer(v) || json_integer_value(v) < 0 ||
      json_integer_value(v) > BRIDGE_TIMEOUT_MAX) {
    if (json_is_integer(v))
      return bridge_fail(err, keypath,
                         "%lld is out of range; expected a non-negative "
                         "integer of at most %lld (one year)",
                         (long long)json_integer_value(v), (long long)BRIDGE_TIMEOUT_MAX);
    return bridge_fail(err, keypath,
                       "expected a non-negative integer (milliseconds), "
                       "got %s",
                       json_kind(v));
  }
  f->has_timeout = true;
  f->timeout_ms = json_integer_value(v);
  return 0;
}

static int parse_result(const bridge_spec_t *spec, json_t *obj, const char *path, bridge_func_t *f,
                        bridge_error_t *err) {
  char keypath[BRIDGE_PATH_MAX];
  bool has_returns = json_object_get(obj, "returns") != NULL;
  bool has_yields = json_object_get(obj, "yields") != NULL;

  if (has_returns && has_yields) {
    path_key(keypath, path, "yields");
    return bridge_fail(err, keypath,
                       "\"returns\" and \"yields\" are mutually exclusive; "
                       "expected one of them (a value or a stream), or "
                       "neither (no result)");
  }
  f->has_result = has_returns || has_yields;
  f->yields = has_yields;
  return parse_type(spec, obj, has_yields ? "yields" : "returns", path, false, &f->result, err);
}

static const char *const func_keys[] = {"name",   "doc",        "args", "returns",
                                        "yields", "timeout_ms", NULL};

static int parse_func(const bridge_spec_t *spec, json_t *v, const char *path, const char *what,
                      bridge_func_t *f, bridge_error_t *err) {
  bridge_format(f->path, sizeof(f->path), "%s", path);
  f->role = BRIDGE_ROLE_FUNCTION;
  if (expect_type(v, JSON_OBJECT, path, what, err) != 0 ||
      check_keys(v, path, func_keys, err) != 0 ||
      get_name(v, path, false, "the function name", &f->name, err) != 0)
    return -1;
  bridge_format(f->cname, sizeof(f->cname), "%s", f->name);
  if (get_string(v, "doc", path, false, "a string", &f->doc, err) != 0 ||
      parse_args(spec, v, path, &f->args, &f->nargs, err) != 0 ||
      parse_result(spec, v, path, f, err) != 0)
    return -1;
  return parse_timeout(v, path, f, err);
}

/* Rejects a name already used by an earlier entry of the same list. */
static int check_unique(const char *name, const char *prev_name, size_t prev, const char *path,
                        const char *what, bridge_error_t *err) {
  char namepath[BRIDGE_PATH_MAX];

  if (strcmp(name, prev_name) != 0)
    return 0;
  path_key(namepath, path, "name");
  return bridge_fail(err, namepath, "duplicate %s name \"%s\"; entry %zu has it too", what, name,
                     prev);
}

/* Parses a list of functions or methods ("functions", "methods"). */
static int parse_funcs(const bridge_spec_t *spec, json_t *obj, const char *key, const char *path,
                       bridge_func_t **out, size_t *n, bridge_error_t *err) {
  char listpath[BRIDGE_PATH_MAX];
  char itempath[BRIDGE_PATH_MAX];
  const char *what = strcmp(key, "methods") == 0 ? "method" : "function";
  json_t *list;
  size_t i, j;

  *out = NULL;
  *n = 0;
  if (get_array(obj, key, path, "an array of function objects", &list, err) != 0)
    return -1;
  if (list == NULL)
    return 0;
  path_key(listpath, path, key);
  if (alloc_entries((void **)out, json_array_size(list), sizeof(**out), listpath, err))
    return -1;
  *n = json_array_size(list);
  for (i = 0; i < *n; i++) {
    path_index(itempath, listpath, i);
    if (parse_func(spec, json_array_get(list, i), itempath,
                   "a function object {\"name\", \"args\", \"returns\", ...}", &(*out)[i],
                   err) != 0)
      return -1;
    for (j = 0; j < i; j++)
      if (check_unique((*out)[i].name, (*out)[j].name, j, itempath, what, err) != 0)
        return -1;
  }
  return 0;
}

/* ---- errors ------------------------------------------------------------------- */

static const char *const error_keys[] = {"name", "doc", "message", NULL};

static int parse_errors(bridge_spec_t *spec, bridge_error_t *err) {
  char itempath[BRIDGE_PATH_MAX];
  json_t *list;
  size_t i, j;

  if (get_array(spec->root, "errors", "", "an array of error objects", &list, err) != 0)
    return -1;
  if (list == NULL)
    return 0;
  if (json_array_size(list) > BRIDGE_ERRORS_MAX)
    return bridge_fail(err, "/errors",
                       "%zu errors declared; expected at most %d (codes "
                       "must stay in the module range)",
                       json_array_size(list), BRIDGE_ERRORS_MAX);
  if (alloc_entries((void **)&spec->errors, json_array_size(list), sizeof(*spec->errors), "/errors",
                    err))
    return -1;
  spec->nerrors = json_array_size(list);
  for (i = 0; i < spec->nerrors; i++) {
    bridge_errdef_t *e = &spec->errors[i];
    json_t *v = json_array_get(list, i);
    path_index(itempath, "/errors", i);
    if (expect_type(v, JSON_OBJECT, itempath,
                    "an error object {\"name\", \"doc\", "
                    "\"message\"}",
                    err) != 0 ||
        check_keys(v, itempath, error_keys, err) != 0 ||
        get_name(v, itempath, true, "the error name", &e->name, err) != 0 ||
        get_string(v, "doc", itempath, false, "a string", &e->doc, err) != 0 ||
        get_string(v, "message", itempath, false, "a string", &e->message, err) != 0)
      return -1;
    for (j = 0; j < i; j++)
      if (check_unique(e->name, spec->errors[j].name, j, itempath, "error", err) != 0)
        return -1;
  }
  return 0;
}

/* ---- objects ------------------------------------------------------------------ */

/* First pass: the object names only, so that any type may refer to any object. */
static int parse_object_names(bridge_spec_t *spec, bridge_error_t *err) {
  char itempath[BRIDGE_PATH_MAX];
  char namepath[BRIDGE_PATH_MAX];
  json_t *list;
  size_t i, j;
  bridge_kind_t kind;

  if (get_array(spec->root, "objects", "", "an array of object declarations", &list, err) != 0)
    return -1;
  if (list == NULL)
    return 0;
  if (alloc_entries((void **)&spec->objects, json_array_size(list), sizeof(*spec->objects),
                    "/objects", err))
    return -1;
  spec->nobjects = json_array_size(list);
  for (i = 0; i < spec->nobjects; i++) {
    bridge_object_t *o = &spec->objects[i];
    json_t *v = json_array_get(list, i);
    bridge_type_t t;
    bridge_buf_t ignored;
    path_index(itempath, "/objects", i);
    bridge_format(o->path, sizeof(o->path), "%s", itempath);
    if (expect_type(v, JSON_OBJECT, itempath,
                    "an object declaration {\"name\", "
                    "\"impl\", \"methods\", ...}",
                    err) != 0 ||
        get_name(v, itempath, false, "the object name", &o->name, err) != 0)
      return -1;
    bridge_buf_init(&ignored);
    kind = bridge_type_parse(o->name, NULL, NULL, &t, &ignored) == 0 ? t.kind : BRIDGE_OBJECT;
    bridge_buf_free(&ignored);
    path_key(namepath, itempath, "name");
    if (kind != BRIDGE_OBJECT)
      return bridge_fail(err, namepath,
                         "\"%s\" is a built-in type; expected a name that "
                         "is not one of bool, int, uint, double, string, "
                         "bytes, json, ptr",
                         o->name);
    for (j = 0; j < i; j++)
      if (check_unique(o->name, spec->objects[j].name, j, itempath, "object", err) != 0)
        return -1;
  }
  return 0;
}

static const char *const object_keys[] = {"name", "impl",  "doc",     "new",
                                          "open", "close", "methods", NULL};
static const char *const new_keys[] = {"args", NULL};

static int parse_object_new(const bridge_spec_t *spec, json_t *v, const char *path,
                            bridge_object_t *o, bridge_error_t *err) {
  char newpath[BRIDGE_PATH_MAX];
  json_t *ctor = json_object_get(v, "new");

  if (ctor == NULL)
    return 0;
  path_key(newpath, path, "new");
  if (expect_type(ctor, JSON_OBJECT, newpath, "a constructor object {\"args\": [...]}", err) != 0 ||
      check_keys(ctor, newpath, new_keys, err) != 0)
    return -1;
  o->has_new = true;
  return parse_args(spec, ctor, newpath, &o->new_args, &o->n_new_args, err);
}

/* Second pass: everything but the name, checked in the first pass. */
static int parse_object(const bridge_spec_t *spec, json_t *v, bridge_object_t *o,
                        bridge_error_t *err) {
  char implpath[BRIDGE_PATH_MAX];
  bridge_buf_t why;
  size_t i;

  if (check_keys(v, o->path, object_keys, err) != 0 ||
      get_string(v, "impl", o->path, true, "the C type name of the implementation's state",
                 &o->impl, err) != 0)
    return -1;
  bridge_buf_init(&why);
  if (bridge_name_check(o->impl, false, &why) != 0) {
    bridge_buf_t msg;
    bridge_buf_init(&msg);
    bridge_buf_add(&msg, "invalid type name ");
    bridge_buf_add_quoted(&msg, o->impl, 64);
    bridge_buf_addf(&msg, ": %s; expected a C identifier", bridge_buf_str(&why));
    bridge_buf_free(&why);
    path_key(implpath, o->path, "impl");
    return fail_buf(err, implpath, &msg);
  }
  bridge_buf_free(&why);
  if (get_string(v, "doc", o->path, false, "a string", &o->doc, err) != 0 ||
      parse_object_new(spec, v, o->path, o, err) != 0 ||
      get_bool(v, "open", o->path, &o->open, err) != 0 ||
      get_bool(v, "close", o->path, &o->close, err) != 0)
    return -1;
  if (parse_funcs(spec, v, "methods", o->path, &o->methods, &o->nmethods, err) != 0)
    return -1;
  for (i = 0; i < o->nmethods; i++) {
    o->methods[i].role = BRIDGE_ROLE_METHOD;
    o->methods[i].owner = o;
    bridge_format(o->methods[i].cname, sizeof(o->methods[i].cname), "%s_%s", o->name,
                  o->methods[i].name);
  }
  return 0;
}

static int parse_objects(bridge_spec_t *spec, bridge_error_t *err) {
  json_t *list = json_object_get(spec->root, "objects");
  size_t i;

  for (i = 0; i < spec->nobjects; i++)
    if (parse_object(spec, json_array_get(list, i), &spec->objects[i], err) != 0)
      return -1;
  return 0;
}

/* ---- generated-name clashes --------------------------------------------------- */

/* One C name bridge will generate (after "MOD_"), and the spec entry it comes from
 * (origin "" for the names bridge makes for the module itself). */
typedef struct generated_s {
  char name[2 * BRIDGE_NAME_MAX + 32];
  char origin[96];
  const char *what; /* "function \"get\"" style label */
  size_t order;
} generated_t;

typedef struct generated_list_s {
  generated_t *items;
  size_t n;
  size_t cap;
} generated_list_t;

static int add_generated(generated_list_t *l, const char *stem, const char *suffix,
                         const char *origin) {
  generated_t *g;

  if (l->n == l->cap) {
    size_t cap = l->cap ? 2 * l->cap : 64;
    generated_t *grown = realloc(l->items, cap * sizeof(*grown));
    if (grown == NULL)
      return -1;
    l->items = grown;
    l->cap = cap;
  }
  g = &l->items[l->n];
  bridge_format(g->name, sizeof(g->name), "%s%s", stem, suffix);
  bridge_format(g->origin, sizeof(g->origin), "%s", origin);
  g->order = l->n++;
  return 0;
}

static int add_function_names(generated_list_t *l, const char *stem, const char *origin,
                              bool stream) {
  const char *const *s;

  for (s = stream ? bridge_stream_suffixes : bridge_function_suffixes; *s; s++)
    if (add_generated(l, stem, *s, origin) != 0)
      return -1;
  return 0;
}

static int add_object_names(generated_list_t *l, const bridge_object_t *o) {
  char stem[2 * BRIDGE_NAME_MAX + 2];
  char origin[96];
  const char *const *s;
  size_t i;

  for (s = bridge_object_suffixes; *s; s++)
    if (add_generated(l, o->name, *s, o->path) != 0)
      return -1;
  for (s = bridge_object_lifecycle; *s; s++) {
    bridge_format(stem, sizeof(stem), "%s_%s", o->name, *s);
    if (add_function_names(l, stem, o->path, false) != 0)
      return -1;
  }
  for (i = 0; i < o->nmethods; i++) {
    bridge_format(stem, sizeof(stem), "%s_%s", o->name, o->methods[i].name);
    bridge_format(origin, sizeof(origin), "%s", o->methods[i].path);
    if (add_function_names(l, stem, origin, o->methods[i].yields) != 0)
      return -1;
  }
  return 0;
}

static int collect_generated(const bridge_spec_t *spec, generated_list_t *l) {
  const char *const *s;
  size_t i;

  for (s = bridge_module_names; *s; s++)
    if (add_generated(l, *s, "", "") != 0)
      return -1;
  for (i = 0; i < spec->nfunctions; i++)
    if (add_function_names(l, spec->functions[i].name, spec->functions[i].path,
                           spec->functions[i].yields) != 0)
      return -1;
  for (i = 0; i < spec->nobjects; i++)
    if (add_object_names(l, &spec->objects[i]) != 0)
      return -1;
  return 0;
}

static int compare_generated(const void *a, const void *b) {
  const generated_t *x = a, *y = b;
  int c = strcmp(x->name, y->name);
  if (c != 0)
    return c;
  return x->order < y->order ? -1 : x->order > y->order;
}

/* Reports the clash whose later name comes first in generation order. */
static int report_clash(const bridge_spec_t *spec, const generated_list_t *l, bridge_error_t *err) {
  const generated_t *first = NULL, *second = NULL;
  char namepath[BRIDGE_PATH_MAX];
  size_t i;

  for (i = 1; i < l->n; i++) {
    const generated_t *a = &l->items[i - 1], *b = &l->items[i];
    if (strcmp(a->name, b->name) != 0)
      continue;
    if (i >= 2 && strcmp(l->items[i - 2].name, b->name) == 0)
      continue; /* only the second of each run matters */
    if (second == NULL || b->order < second->order) {
      first = a;
      second = b;
    }
  }
  if (second == NULL)
    return 0;
  path_key(namepath, second->origin, "name");
  if (first->origin[0] == '\0')
    return bridge_fail(err, namepath,
                       "generates %s_%s, which bridge reserves for the "
                       "module itself; expected another name",
                       spec->module, second->name);
  return bridge_fail(err, namepath,
                     "generates %s_%s, which is also generated for %s; "
                     "expected names that do not collide",
                     spec->module, second->name, first->origin);
}

static int check_generated_names(const bridge_spec_t *spec, bridge_error_t *err) {
  generated_list_t l = {NULL, 0, 0};
  int rc;

  if (collect_generated(spec, &l) != 0) {
    free(l.items);
    return fail_nomem(err, "");
  }
  qsort(l.items, l.n, sizeof(*l.items), compare_generated);
  rc = report_clash(spec, &l, err);
  free(l.items);
  return rc;
}

/* ---- the document ------------------------------------------------------------- */

static const char *const top_keys[] = {"module", "doc", "errors", "functions", "objects", NULL};

static int parse_document(bridge_spec_t *spec, bridge_error_t *err) {
  json_t *root = spec->root;

  if (!json_is_object(root))
    return bridge_fail(err, "", "expected the spec to be a JSON object, got %s", json_kind(root));
  if (check_keys(root, "", top_keys, err) != 0 ||
      get_name_at(root, "", "module", true, "the module name", &spec->module, err) != 0 ||
      get_string(root, "doc", "", false, "a string", &spec->doc, err) != 0 ||
      parse_object_names(spec, err) != 0 || parse_errors(spec, err) != 0 ||
      parse_funcs(spec, root, "functions", "", &spec->functions, &spec->nfunctions, err) != 0 ||
      parse_objects(spec, err) != 0)
    return -1;
  return check_generated_names(spec, err);
}

static void clear_error(bridge_error_t *err) {
  err->line = 0;
  err->column = 0;
  err->path[0] = '\0';
  err->text[0] = '\0';
}

int bridge_spec_parse(const char *text, size_t len, bridge_spec_t **out, bridge_error_t *err) {
  json_error_t jerr;
  bridge_spec_t *spec;

  clear_error(err);
  spec = calloc(1, sizeof(*spec));
  if (spec == NULL)
    return fail_nomem(err, "");
  /* Duplicate keys would silently drop one of the values: reject them. */
  spec->root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
  if (spec->root == NULL) {
    free(spec);
    err->line = jerr.line > 0 ? jerr.line : 1;
    err->column = jerr.column > 0 ? jerr.column : 1;
    return bridge_fail(err, "", "invalid JSON: %s", jerr.text);
  }
  if (parse_document(spec, err) != 0) {
    bridge_spec_free(spec);
    return -1;
  }
  *out = spec;
  return 0;
}

static void free_funcs(bridge_func_t *funcs, size_t n) {
  size_t i;

  for (i = 0; i < n; i++)
    free(funcs[i].args);
  free(funcs);
}

void bridge_spec_free(bridge_spec_t *spec) {
  size_t i;

  if (spec == NULL)
    return;
  free(spec->errors);
  free_funcs(spec->functions, spec->nfunctions);
  for (i = 0; i < spec->nobjects; i++) {
    free(spec->objects[i].new_args);
    free_funcs(spec->objects[i].methods, spec->objects[i].nmethods);
  }
  free(spec->objects);
  json_decref(spec->root);
  free(spec);
}

const bridge_object_t *bridge_spec_object(const bridge_spec_t *spec, const char *name) {
  size_t i;

  for (i = 0; i < spec->nobjects; i++)
    if (spec->objects[i].name != NULL && strcmp(spec->objects[i].name, name) == 0)
      return &spec->objects[i];
  return NULL;
}
