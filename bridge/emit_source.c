/* bridge/emit_source.c - MOD.c: the module's descriptor, argument marshalling, operation
 * descriptors, and the typed blocking, _future and _aio wrappers. The plumbing they share
 * (the lazily created synchronizer, checked calls, typed streams) is the runtime's
 * module support API, synchro/module.h: the wrappers are one call of it each. */
#include "emit.h"

#include <string.h>

/* ---- module-wide parts ---------------------------------------------------------- */

static void add_prologue(const bridge_emit_t *e, bridge_buf_t *b) {
  char file[BRIDGE_NAME_MAX + 8];
  char what[BRIDGE_NAME_MAX + 64];

  bridge_format(file, sizeof(file), "%s.c", e->mod);
  bridge_format(what, sizeof(what), "the wrappers and marshalling of module %s.", e->mod);
  bridge_add_banner(b, file, what);
  bridge_buf_addf(b, "#include \"%s.h\"\n#include \"%s_impl.h\"\n\n", e->mod, e->mod);
  bridge_buf_add(b, "#include <stdarg.h>\n#include <string.h>\n\n");
}

static void add_module(const bridge_emit_t *e, bridge_buf_t *b) {
  const char *m = e->mod;

  bridge_add_rule(b, "the module");
  bridge_buf_addf(
      b,
      "/* The module's descriptor (synchro/module.h): its name, its messages, and its\n"
      " * synchronizer, set once by %s_use_synchronizer() or by the first call. */\n"
      "static synchro_module_t %s__module = SYNCHRO_MODULE_INIT(\"%s\", %s_strerror);\n\n"
      "int %s_synchronizer(synchro_t **out) {\n"
      "  return synchro_module_synchronizer(&%s__module, out);\n"
      "}\n\n"
      "int %s_use_synchronizer(synchro_t *s) {\n"
      "  return synchro_module_use(&%s__module, s);\n"
      "}\n\n",
      m, m, m, m, m, m, m, m);
}

static void add_strerror(const bridge_emit_t *e, bridge_buf_t *b) {
  const bridge_spec_t *spec = e->spec;
  size_t i;

  bridge_add_rule(b, "errors");
  if (spec->nerrors == 0) {
    bridge_buf_addf(b,
                    "const char *%s_strerror(int code) { return synchro_strerror(code); }"
                    "\n\n",
                    e->mod);
    return;
  }
  bridge_buf_addf(b, "const char *%s_strerror(int code) {\n  switch (code) {\n", e->mod);
  for (i = 0; i < spec->nerrors; i++) {
    const bridge_errdef_t *d = &spec->errors[i];
    char upper[BRIDGE_NAME_MAX + 1];
    bridge_upper(upper, sizeof(upper), d->name);
    bridge_buf_addf(b, "  case %s_E%s:\n    return \"", e->upper, upper);
    if (d->message != NULL) {
      bridge_buf_add_c_string(b, d->message);
    } else {
      /* no message in the spec: the name, "rate_limited" -> "rate limited" */
      const char *p;
      for (p = d->name; *p; p++)
        bridge_buf_addn(b, *p == '_' ? " " : p, 1);
    }
    bridge_buf_add(b, "\";\n");
  }
  bridge_buf_add(b, "  default:\n    return synchro_strerror(code);\n  }\n}\n\n");
}

/* ---- copy and release helpers --------------------------------------------------- */

/* The function releasing a result or item of type `t` (a descriptor's result_free):
 * the runtime's for strings, JSON and handles, the module's for bytes and arrays. */
static bridge_ctype_t releaser(const bridge_emit_t *e, const bridge_type_t *t) {
  bridge_ctype_t c;

  if (!t->array && (t->kind == BRIDGE_STRING || t->kind == BRIDGE_JSON))
    bridge_format(c.s, sizeof(c.s), "synchro_module_release_%s", bridge_kind_name(t->kind));
  else if (!t->array && t->kind == BRIDGE_OBJECT)
    bridge_format(c.s, sizeof(c.s), "synchro_module_release_object");
  else
    bridge_format(c.s, sizeof(c.s), "%s__release_%s%s", e->mod, bridge_kind_name(t->kind),
                  t->array ? "_array" : "");
  return c;
}

/* How one element of an owning array kind is copied, tested and freed. */
typedef struct owning_elem_s {
  bridge_kind_t kind;
  const char *dup;     /* statements copying items[i] into copy[i] */
  const char *present; /* true when items[i] holds a value to copy */
  const char *missing; /* true when copy[i] holds no copy */
  const char *free;    /* frees items[i] */
  const char *plural;  /* for comments */
} owning_elem_t;

static const owning_elem_t owning_elems[] = {
    {BRIDGE_STRING, "    copy[i] = synchro_module_dup_string(items[i]);\n", "items[i] != NULL",
     "copy[i] == NULL", "synchro_mem_free(items[i]);", "strings"},
    {BRIDGE_BYTES,
     "    copy[i].data = synchro_module_dup_bytes(items[i].data, items[i].len);\n"
     "    copy[i].len = items[i].len;\n",
     "items[i].data != NULL", "copy[i].data == NULL", "synchro_mem_free(items[i].data);",
     "byte strings"},
    {BRIDGE_JSON, "    copy[i] = synchro_module_dup_json(items[i]);\n", "items[i] != NULL",
     "copy[i] == NULL", "json_decref(items[i]);", "JSON values"},
};

static const owning_elem_t *owning_elem(bridge_kind_t k) {
  size_t i;

  for (i = 0; i < sizeof(owning_elems) / sizeof(owning_elems[0]); i++)
    if (owning_elems[i].kind == k)
      return &owning_elems[i];
  return NULL;
}

static void add_owning_array_dup(const bridge_emit_t *e, bridge_buf_t *b, bridge_kind_t k) {
  const owning_elem_t *o = owning_elem(k);
  const char *kind = bridge_kind_name(k);
  const char *elem = bridge_c_elem(e, k).s;
  bridge_buf_t decl;

  bridge_buf_addf(b, "/* Frees an array of %s and what its items own. */\n", o->plural);
  bridge_buf_addf(b, "static void %s__free_%s_array(", e->mod, kind);
  bridge_add_pointer_decl(b, elem, "items, size_t count) {\n");
  bridge_buf_addf(b,
                  "  size_t i;\n\n"
                  "  if (items == NULL)\n"
                  "    return;\n"
                  "  for (i = 0; i < count; i++)\n"
                  "    %s\n"
                  "  synchro_mem_free(items);\n"
                  "}\n\n",
                  o->free);
  bridge_buf_addf(b, "/* Copies an array of %s; on failure nothing is left to free. */\n",
                  o->plural);
  bridge_buf_init(&decl);
  bridge_buf_add(&decl, "static ");
  bridge_add_pointer_decl(&decl, elem, "");
  bridge_buf_addf(&decl, "%s__dup_%s_array(", e->mod, kind);
  bridge_add_decl(&decl, bridge_c_param(e, &(bridge_type_t){k, false, true, NULL}).s,
                  "items, size_t count) {");
  bridge_add_wrapped(b, bridge_buf_str(&decl));
  bridge_buf_free(&decl);
  bridge_buf_add(b, "  ");
  bridge_add_pointer_decl(b, elem, "copy;\n");
  bridge_buf_add(b, "  size_t i;\n\n"
                    "  if (count == 0)\n"
                    "    return NULL;\n"
                    "  copy = synchro_mem_calloc(count, sizeof(*copy));\n"
                    "  if (copy == NULL)\n"
                    "    return NULL;\n"
                    "  for (i = 0; i < count; i++) {\n");
  bridge_buf_add(b, o->dup);
  bridge_buf_addf(b,
                  "    if (%s && %s) {\n"
                  "      %s__free_%s_array(copy, i);\n"
                  "      return NULL;\n"
                  "    }\n"
                  "  }\n"
                  "  return copy;\n"
                  "}\n\n",
                  o->present, o->missing, e->mod, kind);
}

static void add_plain_array_dup(const bridge_emit_t *e, bridge_buf_t *b, bridge_kind_t k) {
  const char *elem = bridge_c_elem(e, k).s;
  bridge_buf_t decl;

  bridge_buf_addf(b, "/* Copies an array of %s values. */\n", bridge_kind_name(k));
  bridge_buf_init(&decl);
  bridge_buf_add(&decl, "static ");
  bridge_add_pointer_decl(&decl, elem, "");
  bridge_buf_addf(&decl, "%s__dup_%s_array(", e->mod, bridge_kind_name(k));
  bridge_add_decl(&decl, bridge_c_param(e, &(bridge_type_t){k, false, true, NULL}).s,
                  "items, size_t count) {");
  bridge_add_wrapped(b, bridge_buf_str(&decl));
  bridge_buf_free(&decl);
  bridge_buf_add(b, "  ");
  bridge_add_pointer_decl(b, elem, "copy;\n\n");
  bridge_buf_add(b, "  if (count == 0)\n"
                    "    return NULL;\n"
                    "  copy = synchro_mem_calloc(count, sizeof(*copy));\n"
                    "  if (copy != NULL)\n"
                    "    memcpy(copy, items, count * sizeof(*copy));\n"
                    "  return copy;\n"
                    "}\n\n");
}

static void add_array_free(const bridge_emit_t *e, bridge_buf_t *b, bridge_kind_t k) {
  const char *kind = bridge_kind_name(k);

  bridge_buf_addf(b,
                  "void %s_%s_array_free(%s_%s_array_t *a) {\n"
                  "  if (a == NULL)\n"
                  "    return;\n",
                  e->mod, kind, e->mod, kind);
  if (owning_elem(k) != NULL)
    bridge_buf_addf(b, "  %s__free_%s_array(a->items, a->count);\n", e->mod, kind);
  else
    bridge_buf_add(b, "  synchro_mem_free(a->items);\n");
  bridge_buf_add(b, "  a->items = NULL;\n  a->count = 0;\n}\n\n");
}

/* The module's own result_free functions: bytes and arrays, whose types are the
 * module's (strings, JSON and handles use the runtime's, synchro_module_release_*). */
static void add_releasers(const bridge_emit_t *e, bridge_buf_t *b) {
  const char *m = e->mod;
  bool any = e->release[BRIDGE_BYTES];
  int k;

  for (k = 0; k < BRIDGE_KIND_COUNT_; k++)
    any = any || e->result_array[k];
  if (!any)
    return;
  bridge_buf_add(b, "/* The result_free functions of the descriptors below. */\n\n");
  if (e->release[BRIDGE_BYTES])
    bridge_buf_addf(b,
                    "static void %s__release_bytes(void *value) {\n"
                    "  synchro_mem_free(((%s_bytes_t *)value)->data);\n}\n\n",
                    m, m);
  for (k = 0; k < BRIDGE_KIND_COUNT_; k++)
    if (e->result_array[k])
      bridge_buf_addf(b,
                      "static void %s__release_%s_array(void *value) {\n"
                      "  %s_%s_array_free(value);\n}\n\n",
                      m, bridge_kind_name((bridge_kind_t)k), m, bridge_kind_name((bridge_kind_t)k));
}

/* Array copies and releasers: the helpers whose types are the module's own. Emitted
 * only when something uses them (an unused static function fails -Werror). */
static void add_helpers(const bridge_emit_t *e, bridge_buf_t *b) {
  bool any = e->release[BRIDGE_BYTES];
  int k;

  for (k = 0; k < BRIDGE_KIND_COUNT_; k++)
    any = any || e->dup_array[k] || e->result_array[k];
  if (!any)
    return;
  bridge_add_rule(b, "helpers");
  bridge_buf_add(b, "/* Arguments are copied into memory the call owns; their fields are "
                    "const only so\n"
                    " * that the implementation cannot change them, hence the casts where "
                    "they are freed. */\n\n");
  for (k = 0; k < BRIDGE_KIND_COUNT_; k++) {
    if (!e->dup_array[k])
      continue;
    if (owning_elem((bridge_kind_t)k) != NULL)
      add_owning_array_dup(e, b, (bridge_kind_t)k);
    else
      add_plain_array_dup(e, b, (bridge_kind_t)k);
  }
  for (k = 0; k < BRIDGE_KIND_COUNT_; k++)
    if (e->result_array[k])
      add_array_free(e, b, (bridge_kind_t)k);
  add_releasers(e, b);
}

/* ---- one function: arguments ------------------------------------------------------ */

static bool args_own_memory(const bridge_func_t *f) {
  size_t i;

  for (i = 0; i < f->nargs; i++)
    if (bridge_arg_needs_copy(&f->args[i].type))
      return true;
  return false;
}

/* Frees one copied argument `a->name`. */
static void add_arg_free(const bridge_emit_t *e, const bridge_arg_t *a, bridge_buf_t *b) {
  const bridge_type_t *t = &a->type;

  if (t->array && owning_elem(t->kind) != NULL) {
    bridge_buf_addf(b, "  %s__free_%s_array((", e->mod, bridge_kind_name(t->kind));
    bridge_add_pointer_decl(b, bridge_c_elem(e, t->kind).s, "");
    bridge_buf_addf(b, ")a->%s, a->%s_count);\n", a->name, a->name);
  } else if (t->kind == BRIDGE_JSON && !t->array) {
    bridge_buf_addf(b, "  json_decref((json_t *)a->%s);\n", a->name);
  } else if (t->kind == BRIDGE_OBJECT) {
    bridge_buf_addf(b, "  synchro_object_free(a->%s__handle);\n", a->name);
  } else if (bridge_type_owns_memory(t)) {
    bridge_buf_addf(b, "  synchro_mem_free((void *)a->%s);\n", a->name);
  }
}

/* Copies one argument into `to`; and the condition telling that its copy failed. */
static void add_arg_dup(const bridge_emit_t *e, const bridge_arg_t *a, bridge_buf_t *b,
                        bridge_buf_t *failed) {
  const bridge_type_t *t = &a->type;
  const char *n = a->name;

  if (t->kind == BRIDGE_OBJECT) { /* a reference for the call; cannot fail */
    bridge_buf_addf(b,
                    "  if (to->%s__handle != NULL)\n"
                    "    synchro_object_ref(to->%s__handle);\n",
                    n, n);
    return;
  }
  if (!bridge_type_owns_memory(t))
    return;
  if (failed->len > 0)
    bridge_buf_add(failed, " ||\n      ");
  else
    bridge_buf_add(failed, "\001"); /* marks a single condition; see add_args_copy */
  if (t->array) {
    bridge_buf_t line;
    bridge_buf_init(&line);
    bridge_buf_addf(&line, "  to->%s = %s%s__dup_%s_array(from->%s, from->%s_count);", n,
                    t->kind == BRIDGE_STRING ? "(const char *const *)" : "", e->mod,
                    bridge_kind_name(t->kind), n, n);
    bridge_add_wrapped(b, bridge_buf_str(&line));
    if (line.failed)
      b->failed = true;
    bridge_buf_free(&line);
    bridge_buf_addf(failed, "(from->%s_count != 0 && to->%s == NULL)", n, n);
    return;
  }
  if (t->kind == BRIDGE_BYTES)
    bridge_buf_addf(b, "  to->%s = synchro_module_dup_bytes(from->%s, from->%s_len);\n", n, n, n);
  else
    bridge_buf_addf(b, "  to->%s = synchro_module_dup_%s(from->%s);\n", n,
                    bridge_kind_name(t->kind), n);
  bridge_buf_addf(failed, "(from->%s != NULL && to->%s == NULL)", n, n);
}

static void add_args_copy(const bridge_emit_t *e, const bridge_func_t *f, bridge_buf_t *b) {
  const char *m = e->mod, *n = f->cname;
  bridge_buf_t failed;
  size_t i;

  bridge_buf_addf(b,
                  "static void %s_%s__free_args(void *block) {\n"
                  "  %s_%s_args_t *a = block;\n\n",
                  m, n, m, n);
  for (i = 0; i < f->nargs; i++)
    add_arg_free(e, &f->args[i], b);
  bridge_buf_add(b, "}\n\n");

  bridge_buf_addf(b,
                  "static int %s_%s__copy_args(void *dst, const void *src) {\n"
                  "  const %s_%s_args_t *from = src;\n"
                  "  %s_%s_args_t *to = dst;\n\n"
                  "  *to = *from;\n",
                  m, n, m, n, m, n);
  bridge_buf_init(&failed);
  for (i = 0; i < f->nargs; i++)
    add_arg_dup(e, &f->args[i], b, &failed);
  if (failed.len == 0) {
    bridge_buf_add(b, "  return 0;\n}\n\n");
  } else {
    /* one condition: "if (c)"; several: "if ((c1) ||\n (c2))" */
    const char *cond = bridge_buf_str(&failed) + 1;
    bool single = strstr(cond, "||") == NULL;
    bridge_buf_addf(b,
                    "  if (%.*s) {\n"
                    "    %s_%s__free_args(to);\n"
                    "    return SYNCHRO_ENOMEM;\n"
                    "  }\n"
                    "  return 0;\n"
                    "}\n\n",
                    (int)strlen(cond) - (single ? 2 : 0), cond + (single ? 1 : 0), m, n);
  }
  if (failed.failed)
    b->failed = true;
  bridge_buf_free(&failed);
}

/* The checks the spec implies for one argument, appended to `b`; sets *loops when one
 * needs the loop index. */
static void add_arg_checks(const bridge_arg_t *a, bridge_buf_t *b, bool *loops) {
  const bridge_type_t *t = &a->type;
  const char *n = a->name;

  if (t->array) {
    bridge_buf_addf(b,
                    "  if (a->%s == NULL && a->%s_count != 0)\n"
                    "    return SYNCHRO_EINVAL;\n",
                    n, n);
    if (t->kind == BRIDGE_BYTES) {
      bridge_buf_addf(b,
                      "  for (i = 0; i < a->%s_count; i++)\n"
                      "    if (a->%s[i].data == NULL && a->%s[i].len != 0)\n"
                      "      return SYNCHRO_EINVAL;\n",
                      n, n, n);
      *loops = true;
    } else if (bridge_kind_is_pointer(t->kind) && !t->nullable) {
      bridge_buf_addf(b,
                      "  for (i = 0; i < a->%s_count; i++)\n"
                      "    if (a->%s[i] == NULL)\n"
                      "      return SYNCHRO_EINVAL;\n",
                      n, n);
      *loops = true;
    }
  } else if (t->kind == BRIDGE_BYTES) {
    bridge_buf_addf(b,
                    "  if (a->%s == NULL && a->%s_len != 0)\n"
                    "    return SYNCHRO_EINVAL;\n",
                    n, n);
  } else if (t->kind == BRIDGE_OBJECT && !t->nullable) {
    bridge_buf_addf(b, "  if (a->%s__handle == NULL)\n    return SYNCHRO_EINVAL;\n", n);
  } else if (bridge_kind_is_pointer(t->kind) && !t->nullable) {
    bridge_buf_addf(b, "  if (a->%s == NULL)\n    return SYNCHRO_EINVAL;\n", n);
  }
}

/* Emits MOD_op__check_args() if the spec forbids some argument values; returns
 * whether it did. */
static bool add_args_check(const bridge_emit_t *e, const bridge_func_t *f, bridge_buf_t *b) {
  bridge_buf_t checks;
  bool loops = false;
  bool any;
  size_t i;

  bridge_buf_init(&checks);
  for (i = 0; i < f->nargs; i++)
    add_arg_checks(&f->args[i], &checks, &loops);
  any = checks.len > 0;
  if (any) {
    bridge_buf_addf(b,
                    "/* Rejects the values the spec forbids (NULL where not nullable), "
                    "before any copy. */\n"
                    "static int %s_%s__check_args(const void *block) {\n"
                    "  const %s_%s_args_t *a = block;\n",
                    e->mod, f->cname, e->mod, f->cname);
    bridge_buf_add(b, loops ? "  size_t i;\n\n" : "\n");
    bridge_buf_addf(b, "%s  return 0;\n}\n\n", bridge_buf_str(&checks));
  }
  if (checks.failed)
    b->failed = true;
  bridge_buf_free(&checks);
  return any;
}

/* ---- one function: descriptor and wrappers ---------------------------------------- */

static bool has_object_args(const bridge_arg_t *args, size_t n) {
  size_t i;

  for (i = 0; i < n; i++)
    if (args[i].type.kind == BRIDGE_OBJECT)
      return true;
  return false;
}

/* Translation in: sets each object argument's state from its handle, through `a`
 * ("a->" or "a."), and fails with `fail` (a statement) when a handle has none. */
static void add_translate_in(const bridge_arg_t *args, size_t n, const char *a, const char *fail,
                             bridge_buf_t *b) {
  size_t i;

  for (i = 0; i < n; i++) {
    const char *name = args[i].name;
    if (args[i].type.kind != BRIDGE_OBJECT)
      continue;
    bridge_buf_addf(b,
                    "  %s%s = synchro_object_state(%s%s__handle);\n"
                    "  if (%s%s == NULL && %s%s__handle != NULL)",
                    a, name, a, name, a, name, a, name);
    bridge_buf_addf(b, fail, name);
  }
}

static void add_descriptor(const bridge_emit_t *e, const bridge_func_t *f, bridge_buf_t *b) {
  const char *m = e->mod, *n = f->cname;
  bool undeclared_close = f->role == BRIDGE_ROLE_CLOSE && !f->owner->close;
  const char *self = f->owner != NULL ? "synchro_call_object(call), " : "";

  if (undeclared_close) {
    bridge_buf_addf(b,
                    "/* The spec declares no close for %s: closing only stops further "
                    "calls. */\n"
                    "static void %s_%s__run(synchro_call_t *call) {\n"
                    "  synchro_call_return(call, NULL);\n"
                    "}\n\n",
                    f->owner->name, m, n);
  } else {
    bridge_buf_addf(b,
                    "/* Runs on the loop thread: hands the call's copy of the arguments to "
                    "the\n * implementation%s. */\n"
                    "static void %s_%s__run(synchro_call_t *call) {\n",
                    f->owner != NULL ? ", with the object's state" : "", m, n);
    if (has_object_args(f->args, f->nargs)) {
      bridge_buf_addf(b, "  %s_%s_args_t *a = (%s_%s_args_t *)synchro_call_args(call);\n\n", m, n,
                      m, n);
      add_translate_in(f->args, f->nargs, "a->",
                       " {\n"
                       "    synchro_call_fail(call, SYNCHRO_EINVAL, NULL, \"%%s: %s: a freed "
                       "handle, or one of another\"\n"
                       "                      \" synchronizer\", synchro_call_name(call));\n"
                       "    return;\n"
                       "  }\n",
                       b);
      bridge_buf_addf(b, "  %s_%s_impl(call, %sa);\n}\n\n", m, n, self);
    } else if (f->nargs > 0) {
      bridge_buf_addf(b, "  %s_%s_impl(call, %ssynchro_call_args(call));\n}\n\n", m, n, self);
    } else {
      bridge_buf_addf(b, "  %s_%s_impl(call%s%s);\n}\n\n", m, n, f->owner != NULL ? ", " : "",
                      f->owner != NULL ? "synchro_call_object(call)" : "");
    }
  }
  bridge_buf_addf(b,
                  "static const synchro_op_t %s_%s__op = {\n"
                  "    .name = \"%s_%s\",\n"
                  "    .impl = %s_%s__run,\n",
                  m, n, m, n, m, n);
  if (f->nargs > 0)
    bridge_buf_addf(b, "    .args_size = sizeof(%s_%s_args_t),\n", m, n);
  if (args_own_memory(f))
    bridge_buf_addf(b,
                    "    .args_copy = %s_%s__copy_args,\n"
                    "    .args_free = %s_%s__free_args,\n",
                    m, n, m, n);
  if (f->has_result) {
    bridge_buf_addf(b, "    .%s_size = sizeof(%s),\n", f->yields ? "item" : "result",
                    bridge_c_result(e, &f->result).s);
    if (bridge_result_owns(&f->result) || f->result.kind == BRIDGE_OBJECT)
      bridge_buf_addf(b, "    .%s_free = %s,\n", f->yields ? "item" : "result",
                      releaser(e, &f->result).s);
  }
  if (f->has_timeout && f->timeout_ms > 0)
    bridge_buf_addf(b, "    .timeout_ms = %lld,\n", (long long)f->timeout_ms);
  bridge_buf_add(b, "};\n\n");
}

/* Appends the ", "-separated pieces of [text, end) greedily: a line is broken before a
 * piece that would pass column 88, and lines start at column `indent`; `col` is the
 * column where the first piece goes (a line already started). Ends with a newline. */
static void add_filled(bridge_buf_t *b, const char *text, const char *end, int indent, size_t col) {
  size_t start = col;

  while (text < end) {
    const char *comma = strstr(text, ", ");
    size_t n = comma != NULL && comma < end ? (size_t)(comma - text) + 1 : (size_t)(end - text);
    if (col > start && col + 1 + n > 88) {
      bridge_buf_addf(b, "\n%*s", indent, "");
      col = start = (size_t)indent;
    } else if (col > start) {
      bridge_buf_add(b, " ");
      col++;
    }
    bridge_buf_addn(b, text, n);
    col += n;
    text += n + (text + n < end && text[n] == ' ' ? 1 : 0);
  }
  bridge_buf_add(b, "\n");
}

/* Lays out "  return helper(&op, check, &(T){...}, rest);" on several lines: the
 * leading arguments, the argument block on its own (its fields wrapped after the "{"),
 * then the rest, aligned after the "(". When the block would not fit there, the
 * arguments go on the next lines, indented by four. */
static void add_long_helper_call(bridge_buf_t *b, const char *line) {
  const char *open = strchr(line, '(');
  const char *literal = strstr(line, "&(const ");
  const char *close = literal != NULL ? strstr(literal, "}, ") : NULL;
  const char *first, *brace;
  size_t widest;
  bridge_buf_t part;
  int indent;

  if (open == NULL || close == NULL) {
    bridge_add_wrapped(b, line); /* no argument block: plain wrapping */
    return;
  }
  /* the block's widest piece once wrapped: its head with the first field, or a field
   * aligned after the "{" */
  brace = strchr(literal, '{');
  widest = 0;
  for (first = literal; first <= close;) {
    const char *next = strstr(first, ", ");
    size_t n =
        next != NULL && next < close ? (size_t)(next - first) + 1 : (size_t)(close - first) + 2;
    size_t at = first == literal ? 0 : (size_t)(brace - literal) + 1;
    if (at + n > widest)
      widest = at + n;
    first += n + 1;
  }
  indent = (int)(open - line) + 1;
  if ((size_t)indent + widest <= 88) {
    bridge_buf_addn(b, line, (size_t)(open - line) + 1);
    add_filled(b, open + 1, literal - 1, indent, (size_t)indent);
  } else {
    indent = 6;
    bridge_buf_addn(b, line, (size_t)(open - line) + 1);
    bridge_buf_addf(b, "\n%*s", indent, "");
    add_filled(b, open + 1, literal - 1, indent, (size_t)indent);
  }
  bridge_buf_init(&part);
  bridge_buf_addf(&part, "%*s", indent, "");
  bridge_buf_addn(&part, literal, (size_t)(close - literal) + 2); /* up to "}," */
  bridge_add_wrapped(b, bridge_buf_str(&part));
  if (part.failed)
    b->failed = true;
  bridge_buf_free(&part);
  /* the rest ("out, err);") */
  bridge_buf_addf(b, "%*s", indent, "");
  add_filled(b, close + 3, close + strlen(close), indent, (size_t)indent);
}

/* A wrapper's call of a shared helper: the helper, the descriptor, the check and the
 * argument block (a compound literal borrowing the caller's values until the copy),
 * then `rest`. */
static void add_helper_call_with(const bridge_emit_t *e, const bridge_func_t *f, bool checked,
                                 const char *helper, const char *head, const char *rest,
                                 bridge_buf_t *b);

static void add_helper_call(const bridge_emit_t *e, const bridge_func_t *f, bool checked,
                            const char *helper, const char *rest, bridge_buf_t *b) {
  char head[3 * BRIDGE_NAME_MAX + 64];

  if (f->role == BRIDGE_ROLE_FUNCTION)
    bridge_format(head, sizeof(head), "&%s__module, &%s_%s__op", e->mod, e->mod, f->cname);
  else
    bridge_format(head, sizeof(head), "(synchro_object_t *)self, SYNCHRO_MODULE_%s, &%s_%s__op",
                  f->role == BRIDGE_ROLE_OPEN    ? "OPEN"
                  : f->role == BRIDGE_ROLE_CLOSE ? "CLOSE"
                                                 : "METHOD",
                  e->mod, f->cname);
  add_helper_call_with(e, f, checked, helper, head, rest, b);
}

/* The same with the helper's leading arguments given (`head`). */
static void add_helper_call_with(const bridge_emit_t *e, const bridge_func_t *f, bool checked,
                                 const char *helper, const char *head, const char *rest,
                                 bridge_buf_t *b) {
  bridge_buf_t line;
  size_t i;

  bridge_buf_init(&line);
  bridge_buf_addf(&line, "  return synchro_module_%s(%s, ", helper, head);
  if (checked)
    bridge_buf_addf(&line, "%s_%s__check_args, ", e->mod, f->cname);
  else
    bridge_buf_add(&line, "NULL, ");
  if (f->nargs == 0)
    bridge_buf_add(&line, "NULL");
  else
    bridge_buf_addf(&line, "&(const %s_%s_args_t){", e->mod, f->cname);
  for (i = 0; i < f->nargs; i++) {
    const char *extra = bridge_c_extra(&f->args[i].type);
    if (f->args[i].type.kind == BRIDGE_OBJECT && !f->args[i].type.array) {
      bridge_buf_addf(&line, "%s.%s__handle = (synchro_object_t *)%s", i ? ", " : "",
                      f->args[i].name, f->args[i].name);
      continue;
    }
    bridge_buf_addf(&line, "%s.%s = %s", i ? ", " : "", f->args[i].name, f->args[i].name);
    if (extra != NULL)
      bridge_buf_addf(&line, ", .%s%s = %s%s", f->args[i].name, extra, f->args[i].name, extra);
  }
  bridge_buf_addf(&line, "%s, %s);", f->nargs ? "}" : "", rest);
  if (line.len <= 88)
    bridge_buf_addf(b, "%s\n", bridge_buf_str(&line));
  else
    add_long_helper_call(b, bridge_buf_str(&line));
  if (line.failed)
    b->failed = true;
  bridge_buf_free(&line);
}

static void add_wrappers(const bridge_emit_t *e, const bridge_func_t *f, bool checked,
                         bridge_buf_t *b) {
  char rest[2 * BRIDGE_NAME_MAX + 64];
  const char *on = f->role == BRIDGE_ROLE_FUNCTION ? "" : "object_";
  char helper[32];

  bridge_add_proto_line(b, e, f, BRIDGE_PROTO_BLOCKING, "", " {");
  bridge_format(helper, sizeof(helper), "%scall", on);
  add_helper_call(e, f, checked, helper, f->has_result ? "out, err" : "NULL, err", b);
  bridge_buf_add(b, "}\n\n");
  bridge_add_proto_line(b, e, f, BRIDGE_PROTO_FUTURE, "", " {");
  bridge_format(helper, sizeof(helper), "%ssubmit", on);
  add_helper_call(e, f, checked, helper, "out", b);
  bridge_buf_add(b, "}\n\n");
  bridge_add_proto_line(b, e, f, BRIDGE_PROTO_AIO, "", " {");
  bridge_format(rest, sizeof(rest), "aio_host, %s_%s__done, (synchro_fn)aio_cb, aio_data", e->mod,
                f->cname);
  bridge_format(helper, sizeof(helper), "%ssubmit_aio", on);
  add_helper_call(e, f, checked, helper, rest, b);
  bridge_buf_add(b, "}\n\n");
}

/* ---- one stream: the consumer's functions ------------------------------------------ */

static void add_stream_wrappers(const bridge_emit_t *e, const bridge_func_t *f, bool checked,
                                bridge_buf_t *b) {
  const char *m = e->mod, *n = f->cname;
  const bridge_type_t *t = &f->result;
  bool owns = bridge_result_owns(t) || t->kind == BRIDGE_OBJECT;
  char head[3 * BRIDGE_NAME_MAX + 64];
  bridge_buf_t line;

  bridge_add_proto_line(b, e, f, BRIDGE_PROTO_OPEN, "", " {");
  if (f->role == BRIDGE_ROLE_FUNCTION) {
    bridge_format(head, sizeof(head), "&%s__module, &%s_%s__op", m, m, n);
    add_helper_call_with(e, f, checked, "stream_open", head, "out", b);
  } else {
    bridge_format(head, sizeof(head), "(synchro_object_t *)self, &%s_%s__op", m, n);
    add_helper_call_with(e, f, checked, "object_stream_open", head, "out", b);
  }
  bridge_buf_add(b, "}\n\n");

  bridge_add_proto_line(b, e, f, BRIDGE_PROTO_NEXT, "", " {");
  bridge_buf_add(b, "  return synchro_module_stream_next((synchro_module_stream_t *)st, item, "
                    "timeout_ms);\n}\n\n");

  bridge_buf_addf(b,
                  "/* Runs on the host's thread: hands the next item (or the end) to the "
                  "caller's\n * callback `fn` (armed by %s_%s_next_aio())%s. */\n",
                  m, n,
                  owns ? ", then releases the item, which\n * the callback only borrowed" : "");
  bridge_buf_init(&line);
  bridge_buf_addf(&line,
                  "static void %s_%s__next_done(synchro_module_stream_t *st, int status, "
                  "void *item, synchro_fn fn, void *data) {",
                  m, n);
  bridge_add_wrapped(b, bridge_buf_str(&line));
  bridge_buf_free(&line);
  bridge_buf_add(b, "  ");
  bridge_add_decl(b, bridge_c_result(e, t).s, "value");
  bridge_buf_addf(b,
                  " = %s;\n\n"
                  "  if (status == 0)\n"
                  "    memcpy(&value, item, sizeof(value));\n",
                  bridge_c_zero(t));
  bridge_buf_init(&line);
  bridge_buf_addf(&line,
                  "  ((%s_%s_next_cb)fn)((%s_%s_stream_t *)st, status, value, "
                  "synchro_module_stream_error(st), data);",
                  m, n, m, n);
  bridge_add_wrapped(b, bridge_buf_str(&line));
  bridge_buf_free(&line);
  if (owns)
    bridge_buf_addf(b, "  %s(&value);\n", releaser(e, t).s);
  bridge_buf_add(b, "}\n\n");

  bridge_add_proto_line(b, e, f, BRIDGE_PROTO_NEXT_AIO, "", " {");
  bridge_buf_init(&line);
  bridge_buf_addf(&line,
                  "  return synchro_module_stream_arm((synchro_module_stream_t *)st, aio_host, "
                  "%s_%s__next_done, (synchro_fn)aio_cb, aio_data);",
                  m, n);
  bridge_add_wrapped(b, bridge_buf_str(&line));
  if (line.failed)
    b->failed = true;
  bridge_buf_free(&line);
  bridge_buf_add(b, "}\n\n");

  bridge_add_proto_line(b, e, f, BRIDGE_PROTO_ERROR, "", " {");
  bridge_buf_add(b, "  return synchro_module_stream_error((const synchro_module_stream_t *)st);"
                    "\n}\n\n");
  bridge_add_proto_line(b, e, f, BRIDGE_PROTO_CLOSE, "", " {");
  bridge_buf_add(b, "  synchro_module_stream_close((synchro_module_stream_t *)st);\n}\n\n");
}

static void add_result_accessor(const bridge_emit_t *e, const bridge_func_t *f, bridge_buf_t *b) {
  bridge_add_proto_line(b, e, f, BRIDGE_PROTO_RESULT, "", " {");
  bridge_buf_addf(b, "  return synchro_module_result(&%s_%s__op, f, %s);\n}\n\n", e->mod, f->cname,
                  f->has_result ? "out" : "NULL");
}

/* The function that delivers a finished _aio call to the caller's typed callback. */
static void add_aio_done(const bridge_emit_t *e, const bridge_func_t *f, bridge_buf_t *b) {
  const char *m = e->mod, *n = f->cname;
  bool owns = f->has_result && bridge_result_owns(&f->result);

  bridge_buf_t line;

  bridge_buf_addf(
      b,
      "/* Runs on the host's thread: hands the outcome to the caller's "
      "callback (stored with\n"
      " * the call by %s_%s_aio())%s. */\n"
      "static void %s_%s__done(synchro_future_t *f, int status, void *data) {\n",
      m, n, owns ? ", then releases the result, which the\n * callback only borrowed" : "", m, n);
  bridge_buf_init(&line);
  bridge_buf_addf(&line, "  %s_%s_cb cb = (%s_%s_cb)synchro_future_then_fn(f);", m, n, m, n);
  bridge_add_wrapped(b, bridge_buf_str(&line));
  if (line.failed)
    b->failed = true;
  bridge_buf_free(&line);
  if (f->has_result) {
    bridge_buf_add(b, "  ");
    bridge_add_decl(b, bridge_c_result(e, &f->result).s, "result");
    bridge_buf_addf(b, " = %s;\n", bridge_c_zero(&f->result));
  }
  bridge_buf_add(b, "\n");
  if (f->has_result)
    bridge_buf_add(b, "  if (status == 0)\n"
                      "    status = synchro_future_result(f, &result);\n"
                      "  cb(status, result, synchro_future_error(f), data);\n");
  else
    bridge_buf_add(b, "  cb(status, synchro_future_error(f), data);\n");
  if (owns)
    bridge_buf_addf(b, "  %s(&result);\n", releaser(e, &f->result).s);
  bridge_buf_add(b, "}\n\n");
}

/* ---- one function: the implementation's helpers ------------------------------------ */

/* "return synchro_module_reject(call, CODE, "why");" at `indent`, wrapped. */
static void add_reject(bridge_buf_t *b, int indent, const char *code, const char *why) {
  bridge_buf_t line;

  bridge_buf_init(&line);
  bridge_buf_addf(&line, "%*sreturn synchro_module_reject(call, %s, \"%s\");", indent, "", code,
                  why);
  bridge_add_wrapped(b, bridge_buf_str(&line));
  if (line.failed)
    b->failed = true;
  bridge_buf_free(&line);
}

static void add_nomem_check(bridge_buf_t *b) {
  add_reject(b, 4, "SYNCHRO_ENOMEM", "no memory to copy the result");
}

/* The element check of an array result, if the spec implies one. */
static bool add_result_item_check(const bridge_type_t *t, bridge_buf_t *b) {
  if (t->kind == BRIDGE_BYTES) {
    bridge_buf_add(b, "  for (i = 0; i < count; i++)\n"
                      "    if (items[i].data == NULL && items[i].len != 0)\n");
    add_reject(b, 6, "SYNCHRO_EINVAL", "an item with NULL data and a non-zero length");
    return true;
  }
  if (bridge_kind_is_pointer(t->kind) && !t->nullable) {
    char why[96];
    bridge_format(why, sizeof(why), "a NULL item in a %s[] array", bridge_kind_name(t->kind));
    bridge_buf_add(b, "  for (i = 0; i < count; i++)\n"
                      "    if (items[i] == NULL)\n");
    add_reject(b, 6, "SYNCHRO_EINVAL", why);
    return true;
  }
  return false;
}

static void add_return_array(const bridge_emit_t *e, const bridge_type_t *t, bridge_buf_t *b) {
  bridge_buf_t checks;
  bool loops;

  bridge_buf_init(&checks);
  loops = add_result_item_check(t, &checks);
  bridge_buf_addf(b, "  %s result;\n%s\n", bridge_c_result(e, t).s, loops ? "  size_t i;\n" : "");
  bridge_buf_add(b, "  if (items == NULL && count != 0)\n");
  add_reject(b, 4, "SYNCHRO_EINVAL", "NULL items with a non-zero count");
  bridge_buf_add(b, bridge_buf_str(&checks));
  bridge_buf_free(&checks);
  bridge_buf_addf(b,
                  "  result.items = %s__dup_%s_array(items, count);\n"
                  "  result.count = count;\n"
                  "  if (count != 0 && result.items == NULL)\n",
                  e->mod, bridge_kind_name(t->kind));
  add_nomem_check(b);
}

static void add_return_bytes(const bridge_emit_t *e, const bridge_type_t *t, bridge_buf_t *b) {
  bridge_buf_addf(b, "  %s result;\n\n", bridge_c_result(e, t).s);
  bridge_buf_add(b, "  if (value == NULL && len != 0)\n");
  add_reject(b, 4, "SYNCHRO_EINVAL", "NULL data with a non-zero length");
  bridge_buf_add(b, "  result.data = synchro_module_dup_bytes(value, len);\n"
                    "  result.len = len;\n"
                    "  if (value != NULL && result.data == NULL)\n");
  add_nomem_check(b);
}

/* string and json: copied; NULL only when nullable. */
static void add_return_copied(const bridge_emit_t *e, const bridge_type_t *t, bridge_buf_t *b) {
  bridge_buf_add(b, "  ");
  bridge_add_decl(b, bridge_c_result(e, t).s, "result;\n\n");
  if (!t->nullable) {
    char why[64];
    bridge_format(why, sizeof(why), "NULL for a non-nullable %s", bridge_kind_name(t->kind));
    bridge_buf_add(b, "  if (value == NULL)\n");
    add_reject(b, 4, "SYNCHRO_EINVAL", why);
  }
  bridge_buf_addf(b,
                  "  result = synchro_module_dup_%s(value);\n"
                  "  if (%sresult == NULL)\n",
                  bridge_kind_name(t->kind), t->nullable ? "value != NULL && " : "");
  add_nomem_check(b);
}

/* Object results: the implementation's state is wrapped in its handle (the same
 * state always gives the same handle), one reference per delivery. */
static void add_return_object(const bridge_emit_t *e, const bridge_type_t *t, bool yield,
                              bridge_buf_t *b) {
  bridge_buf_t line;

  bridge_buf_add(b, "  synchro_object_t *result = NULL;\n  int rc;\n\n");
  if (!t->nullable) {
    char why[BRIDGE_NAME_MAX + 40];
    bridge_format(why, sizeof(why), "NULL for a non-nullable %s", t->object);
    bridge_buf_add(b, "  if (value == NULL)\n");
    add_reject(b, 4, "SYNCHRO_EINVAL", why);
  }
  if (yield)
    bridge_buf_add(b, "  if (synchro_call_room(call) == 0)\n"
                      "    return SYNCHRO_EBUSY; /* not wrapped: the state stays yours */\n");
  bridge_buf_init(&line);
  bridge_buf_addf(
      &line,
      "  if (value != NULL && (rc = synchro_object_wrap(synchro_call_synchronizer(call), "
      "&%s_%s__class, value, &result)) != 0)",
      e->mod, t->object);
  bridge_add_wrapped(b, bridge_buf_str(&line));
  if (line.failed)
    b->failed = true;
  bridge_buf_free(&line);
  add_reject(b, 4, "rc", "cannot wrap the state in a handle");
}

/* The body of MOD_op_return() and MOD_op_yield(): check and copy `value` into
 * `result`, then hand it over. */
static void add_deliver(const bridge_emit_t *e, const bridge_func_t *f, bool yield,
                        bridge_buf_t *b) {
  const bridge_type_t *t = &f->result;
  bool owned = bridge_type_owns_memory(t) || t->kind == BRIDGE_OBJECT;

  if (yield && owned && t->kind != BRIDGE_OBJECT)
    bridge_buf_add(b, "  int rc;\n");
  if (t->kind == BRIDGE_OBJECT && !t->array)
    add_return_object(e, t, yield, b);
  else if (t->array)
    add_return_array(e, t, b);
  else if (t->kind == BRIDGE_BYTES)
    add_return_bytes(e, t, b);
  else if (t->kind == BRIDGE_STRING || t->kind == BRIDGE_JSON)
    add_return_copied(e, t, b);
  else if (t->kind == BRIDGE_PTR && !t->nullable) {
    bridge_buf_add(b, "  if (value == NULL)\n");
    add_reject(b, 4, "SYNCHRO_EINVAL", "NULL for a non-nullable ptr");
  }
  if (!yield) {
    bridge_buf_add(b, owned ? "  return synchro_call_return(call, &result);\n"
                            : "  return synchro_call_return(call, &value);\n");
  } else if (!owned) {
    bridge_buf_add(b, "  return synchro_call_yield(call, &value);\n");
  } else {
    bridge_buf_addf(b,
                    "  rc = synchro_call_yield(call, &result);\n"
                    "  if (rc != 0) /* not accepted: the copy is ours to release */\n"
                    "    %s(&result);\n"
                    "  return rc;\n",
                    releaser(e, t).s);
  }
  bridge_buf_add(b, "}\n\n");
}

static void add_return(const bridge_emit_t *e, const bridge_func_t *f, bridge_buf_t *b) {
  bridge_add_proto_line(b, e, f, BRIDGE_PROTO_RETURN, "", " {");
  if (!f->has_result) {
    bridge_buf_add(b, "  return synchro_call_return(call, NULL);\n}\n\n");
    return;
  }
  add_deliver(e, f, false, b);
}

/* A stream's producer helpers: yield, end, room, on_demand. */
static void add_producer(const bridge_emit_t *e, const bridge_func_t *f, bridge_buf_t *b) {
  bridge_add_proto_line(b, e, f, BRIDGE_PROTO_YIELD, "", " {");
  add_deliver(e, f, true, b);
  bridge_add_proto_line(b, e, f, BRIDGE_PROTO_END, "", " {");
  bridge_buf_add(b, "  return synchro_call_return(call, NULL);\n}\n\n");
  bridge_add_proto_line(b, e, f, BRIDGE_PROTO_ROOM, "", " {");
  bridge_buf_add(b, "  return synchro_call_room(call);\n}\n\n");
  bridge_add_proto_line(b, e, f, BRIDGE_PROTO_ON_DEMAND, "", " {");
  bridge_buf_add(b, "  return synchro_call_on_demand(call, fn, data);\n}\n\n");
}

static void add_fail(const bridge_emit_t *e, const bridge_func_t *f, bridge_buf_t *b) {
  bridge_add_proto_line(b, e, f, BRIDGE_PROTO_FAIL, "", " {");
  bridge_buf_addf(b,
                  "  va_list ap;\n"
                  "  int rc;\n\n"
                  "  va_start(ap, fmt);\n"
                  "  rc = synchro_module_vfail(&%s__module, call, code, fmt, ap);\n"
                  "  va_end(ap);\n"
                  "  return rc;\n"
                  "}\n\n",
                  e->mod);
}

/* One operation: a function, a method, or an object's open or close (whose
 * descriptors were emitted with the object's class). */
static void add_operation(const bridge_emit_t *e, const bridge_func_t *f, bridge_buf_t *b) {
  bool lifecycle = f->role == BRIDGE_ROLE_OPEN || f->role == BRIDGE_ROLE_CLOSE;
  bool checked;

  bridge_add_rule(b, f->cname);
  if (args_own_memory(f))
    add_args_copy(e, f, b);
  checked = add_args_check(e, f, b);
  if (!lifecycle)
    add_descriptor(e, f, b);
  if (f->yields) {
    add_stream_wrappers(e, f, checked, b);
    add_producer(e, f, b);
  } else {
    add_aio_done(e, f, b);
    add_wrappers(e, f, checked, b);
    add_result_accessor(e, f, b);
    if (f->role == BRIDGE_ROLE_CLOSE && !f->owner->close)
      return; /* nothing for an implementation to finish */
    add_return(e, f, b);
  }
  add_fail(e, f, b);
}

/* ---- objects ---------------------------------------------------------------------- */

/* The constructor as a function, so that the argument emitters apply to it. */
static void constructor_func(const bridge_object_t *o, bridge_func_t *out) {
  memset(out, 0, sizeof(*out));
  out->name = "new";
  out->role = BRIDGE_ROLE_FUNCTION;
  out->args = o->new_args;
  out->nargs = o->n_new_args;
  bridge_format(out->cname, sizeof(out->cname), "%s_new", o->name);
}

/* The class: constructor and destructor trampolines, open and close descriptors. */
static void add_object_class(const bridge_emit_t *e, const bridge_object_t *o, bridge_buf_t *b) {
  const char *m = e->mod, *n = o->name;
  char title[BRIDGE_NAME_MAX + 16];
  bridge_func_t life;

  bridge_format(title, sizeof(title), "%s: class", n);
  bridge_add_rule(b, title);
  bridge_buf_addf(b,
                  "/* Runs on the loop thread, synchronously: the arguments are the "
                  "caller's, borrowed. */\n"
                  "static int %s_%s__construct(synchro_t *s, const void *args, void **state) {\n"
                  "  %s *self = NULL;\n",
                  m, n, o->impl);
  if (has_object_args(o->new_args, o->n_new_args)) {
    bridge_buf_addf(b,
                    "  %s_%s_new_args_t a = *(const %s_%s_new_args_t *)args;\n"
                    "  int rc;\n\n",
                    m, n, m, n);
    add_translate_in(o->new_args, o->n_new_args, "a.", "\n    return SYNCHRO_EINVAL;\n", b);
    bridge_buf_addf(b, "  rc = %s_%s_construct(s, &a, &self);\n", m, n);
  } else if (o->n_new_args > 0) {
    bridge_buf_addf(b, "  int rc = %s_%s_construct(s, args, &self);\n\n", m, n);
  } else {
    bridge_buf_addf(b, "  int rc;\n\n  (void)args;\n  rc = %s_%s_construct(s, &self);\n", m, n);
  }
  bridge_buf_addf(b,
                  "  if (rc == 0 && self == NULL)\n"
                  "    rc = SYNCHRO_EINVAL; /* a handle needs a state */\n"
                  "  if (rc == 0)\n"
                  "    *state = self;\n"
                  "  return rc;\n"
                  "}\n\n"
                  "static void %s_%s__destroy(void *state) {\n"
                  "  %s_%s_destroy(state);\n"
                  "}\n\n",
                  m, n, m, n);
  if (o->open) {
    bridge_lifecycle_func(o, BRIDGE_ROLE_OPEN, &life);
    add_descriptor(e, &life, b);
  }
  bridge_lifecycle_func(o, BRIDGE_ROLE_CLOSE, &life);
  add_descriptor(e, &life, b);
  bridge_buf_addf(b,
                  "static const synchro_class_t %s_%s__class = {\n"
                  "    .name = \"%s_%s\",\n"
                  "    .construct = %s_%s__construct,\n"
                  "    .destroy = %s_%s__destroy,\n",
                  m, n, m, n, m, n, m, n);
  if (o->open)
    bridge_buf_addf(b, "    .open = &%s_%s_open__op,\n", m, n);
  bridge_buf_addf(b, "    .close = &%s_%s_close__op,\n};\n\n", m, n);
}

/* new, ref, free, then open, close and the methods. */
static void add_object(const bridge_emit_t *e, const bridge_object_t *o, bridge_buf_t *b) {
  const char *m = e->mod, *n = o->name;
  char title[BRIDGE_NAME_MAX + 16];
  char head[BRIDGE_NAME_MAX * 2 + 16];
  bridge_func_t ctor, life;
  bridge_buf_t line;
  bool checked;
  size_t i;

  bridge_format(title, sizeof(title), "%s: handles", n);
  bridge_add_rule(b, title);
  constructor_func(o, &ctor);
  checked = add_args_check(e, &ctor, b);
  bridge_buf_init(&line);
  bridge_buf_addf(&line, "int %s_%s_new(", m, n);
  bridge_add_params(&line, e, &ctor, false);
  bridge_buf_addf(&line, "%s%s_%s_t **out, synchro_error_t **err) {", ctor.nargs ? ", " : "", m, n);
  bridge_add_wrapped(b, bridge_buf_str(&line));
  if (line.failed)
    b->failed = true;
  bridge_buf_free(&line);
  bridge_format(head, sizeof(head), "&%s__module, &%s_%s__class", m, m, n);
  add_helper_call_with(e, &ctor, checked, "new", head, "out, err", b);
  bridge_buf_add(b, "}\n\n");
  bridge_buf_addf(b,
                  "%s_%s_t *%s_%s_ref(%s_%s_t *self) {\n"
                  "  return (%s_%s_t *)synchro_object_ref((synchro_object_t *)self);\n"
                  "}\n\n"
                  "void %s_%s_free(%s_%s_t *self) {\n"
                  "  synchro_object_free((synchro_object_t *)self);\n"
                  "}\n\n",
                  m, n, m, n, m, n, m, n, m, n, m, n);
  if (o->open) {
    bridge_lifecycle_func(o, BRIDGE_ROLE_OPEN, &life);
    add_operation(e, &life, b);
  }
  bridge_lifecycle_func(o, BRIDGE_ROLE_CLOSE, &life);
  add_operation(e, &life, b);
  for (i = 0; i < o->nmethods; i++)
    add_operation(e, &o->methods[i], b);
}

void bridge_emit_source(const bridge_emit_t *e, bridge_buf_t *b) {
  size_t i;

  add_prologue(e, b);
  add_module(e, b);
  add_strerror(e, b);
  add_helpers(e, b);
  for (i = 0; i < e->spec->nobjects; i++)
    add_object_class(e, &e->spec->objects[i], b);
  for (i = 0; i < e->spec->nfunctions; i++)
    add_operation(e, &e->spec->functions[i], b);
  for (i = 0; i < e->spec->nobjects; i++)
    add_object(e, &e->spec->objects[i], b);
  /* no blank line at the very end */
  if (!b->failed && b->len > 0 && b->data[b->len - 1] == '\n' && b->data[b->len - 2] == '\n')
    b->data[--b->len] = '\0';
}
