/* bridge/emit_common.c - what the emitters share: usage analysis, C type spellings,
 * parameter lists and file banners. */
#include "emit.h"

#include <string.h>

static bool kind_owns(bridge_kind_t k) {
  return k == BRIDGE_STRING || k == BRIDGE_BYTES || k == BRIDGE_JSON;
}

/* Records what one argument or result type needs. */
static void note_type(bridge_emit_t *e, const bridge_type_t *t, bool is_result) {
  if (t->kind == BRIDGE_JSON)
    e->uses_json = true;
  if (t->array) {
    e->dup_array[t->kind] = true;
    if (t->kind == BRIDGE_BYTES)
      e->uses_bytes_type = true;
  }
  if (!is_result)
    return;
  if (t->array)
    e->result_array[t->kind] = true;
  else if (kind_owns(t->kind))
    e->release[t->kind] = true;
  if (t->kind == BRIDGE_BYTES)
    e->uses_bytes_type = true;
  if (t->kind == BRIDGE_OBJECT && !t->array)
    e->release[BRIDGE_OBJECT] = true;
}

static void note_func(bridge_emit_t *e, const bridge_func_t *f) {
  size_t j;

  for (j = 0; j < f->nargs; j++)
    note_type(e, &f->args[j].type, false);
  if (f->has_result)
    note_type(e, &f->result, true);
  if (f->yields && f->role == BRIDGE_ROLE_FUNCTION)
    e->stream_funcs = true;
  else if (f->yields)
    e->stream_methods = true;
}

void bridge_lifecycle_func(const bridge_object_t *o, bridge_role_t role, bridge_func_t *out) {
  memset(out, 0, sizeof(*out));
  out->name = role == BRIDGE_ROLE_OPEN ? "open" : "close";
  out->role = role;
  out->owner = o;
  bridge_format(out->cname, sizeof(out->cname), "%s_%s", o->name, out->name);
  bridge_format(out->path, sizeof(out->path), "%s", o->path);
}

void bridge_emit_init(bridge_emit_t *e, const bridge_spec_t *spec) {
  size_t i, j;

  memset(e, 0, sizeof(*e));
  e->spec = spec;
  e->mod = spec->module;
  bridge_upper(e->upper, sizeof(e->upper), spec->module);
  for (i = 0; i < spec->nfunctions; i++)
    note_func(e, &spec->functions[i]);
  for (i = 0; i < spec->nobjects; i++) {
    const bridge_object_t *o = &spec->objects[i];
    for (j = 0; j < o->n_new_args; j++)
      note_type(e, &o->new_args[j].type, false);
    for (j = 0; j < o->nmethods; j++)
      note_func(e, &o->methods[j]);
  }
}

/* ---- C type spellings --------------------------------------------------------- */

static bridge_ctype_t ctype(const char *fmt, const char *a, const char *b) {
  bridge_ctype_t c;
  bridge_format(c.s, sizeof(c.s), fmt, a, b);
  return c;
}

static const char *const scalar_c[] = {"bool", "int64_t", "uint64_t", "double"};

bridge_ctype_t bridge_c_elem(const bridge_emit_t *e, bridge_kind_t kind) {
  switch (kind) {
  case BRIDGE_BOOL:
  case BRIDGE_INT:
  case BRIDGE_UINT:
  case BRIDGE_DOUBLE: return ctype("%s", scalar_c[kind], "");
  case BRIDGE_STRING: return ctype("char *", "", "");
  case BRIDGE_BYTES: return ctype("%s_bytes_t", e->mod, "");
  case BRIDGE_JSON: return ctype("json_t *", "", "");
  default: return ctype("void *", "", "");
  }
}

bridge_ctype_t bridge_c_result(const bridge_emit_t *e, const bridge_type_t *t) {
  if (t->kind == BRIDGE_OBJECT && !t->array)
    return ctype("%s_%s_t *", e->mod, t->object);
  if (t->array)
    return ctype("%s_%s_array_t", e->mod, bridge_kind_name(t->kind));
  return bridge_c_elem(e, t->kind);
}

bridge_ctype_t bridge_c_cb_result(const bridge_emit_t *e, const bridge_type_t *t) {
  if (!t->array && t->kind == BRIDGE_STRING)
    return ctype("const char *", "", "");
  return bridge_c_result(e, t);
}

bridge_ctype_t bridge_c_param(const bridge_emit_t *e, const bridge_type_t *t) {
  if (t->array) {
    switch (t->kind) {
    case BRIDGE_BOOL:
    case BRIDGE_INT:
    case BRIDGE_UINT:
    case BRIDGE_DOUBLE: return ctype("const %s *", scalar_c[t->kind], "");
    case BRIDGE_STRING: return ctype("const char *const *", "", "");
    case BRIDGE_BYTES: return ctype("const %s_bytes_t *", e->mod, "");
    case BRIDGE_JSON: return ctype("json_t *const *", "", "");
    default: return ctype("void *const *", "", "");
    }
  }
  switch (t->kind) {
  case BRIDGE_OBJECT: return ctype("%s_%s_t *", e->mod, t->object);
  case BRIDGE_STRING: return ctype("const char *", "", "");
  case BRIDGE_BYTES: return ctype("const void *", "", "");
  case BRIDGE_JSON: return ctype("const json_t *", "", "");
  default: return bridge_c_elem(e, t->kind);
  }
}

const char *bridge_c_impl(const bridge_emit_t *e, const bridge_type_t *t) {
  const bridge_object_t *o =
      t->kind == BRIDGE_OBJECT ? bridge_spec_object(e->spec, t->object) : NULL;
  return o != NULL ? o->impl : "void";
}

bool bridge_arg_needs_copy(const bridge_type_t *t) {
  return bridge_type_owns_memory(t) || t->kind == BRIDGE_OBJECT;
}

const char *bridge_c_zero(const bridge_type_t *t) {
  if (t->array || t->kind == BRIDGE_BYTES)
    return "{NULL, 0}";
  switch (t->kind) {
  case BRIDGE_BOOL: return "false";
  case BRIDGE_INT:
  case BRIDGE_UINT: return "0";
  case BRIDGE_DOUBLE: return "0.0";
  default: return "NULL";
  }
}

const char *bridge_c_extra(const bridge_type_t *t) {
  if (t->array)
    return "_count";
  return t->kind == BRIDGE_BYTES ? "_len" : NULL;
}

bool bridge_result_owns(const bridge_type_t *t) { return t->array || kind_owns(t->kind); }

bridge_ctype_t bridge_type_spelling(const bridge_type_t *t) {
  bridge_ctype_t c;
  bridge_format(c.s, sizeof(c.s), "%s%s%s",
                t->kind == BRIDGE_OBJECT ? t->object : bridge_kind_name(t->kind),
                t->nullable ? "?" : "", t->array ? "[]" : "");
  return c;
}

void bridge_add_decl(bridge_buf_t *b, const char *type, const char *name) {
  size_t n = strlen(type);
  bridge_buf_addf(b, "%s%s%s", type, n > 0 && type[n - 1] == '*' ? "" : " ", name);
}

void bridge_add_pointer_decl(bridge_buf_t *b, const char *type, const char *name) {
  size_t n = strlen(type);
  bridge_buf_addf(b, "%s%s*%s", type, n > 0 && type[n - 1] == '*' ? "" : " ", name);
}

void bridge_add_params(bridge_buf_t *b, const bridge_emit_t *e, const bridge_func_t *f,
                       bool names_only) {
  size_t i;

  for (i = 0; i < f->nargs; i++) {
    const bridge_arg_t *a = &f->args[i];
    const char *extra = bridge_c_extra(&a->type);
    if (i > 0)
      bridge_buf_add(b, ", ");
    if (names_only)
      bridge_buf_add(b, a->name);
    else
      bridge_add_decl(b, bridge_c_param(e, &a->type).s, a->name);
    if (extra != NULL)
      bridge_buf_addf(b, ", %s%s%s", names_only ? "" : "size_t ", a->name, extra);
  }
}

/* ---- banners ------------------------------------------------------------------ */

void bridge_add_banner(bridge_buf_t *b, const char *file, const char *what) {
  bridge_buf_addf(b, "/* %s - %s\n", file, what);
  bridge_buf_add(b, " *\n"
                    " * Generated by bridge " BRIDGE_VERSION " from the module's spec. Do "
                    "not edit: change the\n"
                    " * spec and run `bridge generate`; `bridge check` fails when this "
                    "file is stale. */\n");
}

void bridge_add_rule(bridge_buf_t *b, const char *title) {
  size_t len = 8 + strlen(title) + 1; /* "/" "* ---- " title " " */
  bridge_buf_addf(b, "/* ---- %s ", title);
  if (len >= 85)
    len = 81; /* a long title still gets a short rule */
  for (; len < 85; len++)
    bridge_buf_add(b, "-");
  bridge_buf_add(b, " */\n");
}

/* ---- line wrapping ------------------------------------------------------------- */

#define WRAP_COLUMN 88

/* The end of the piece starting at `p`: just after the next ", " inside parentheses
 * (given the depth at `p`), or the end of the line. */
static const char *piece_end(const char *p, int depth) {
  for (; *p; p++) {
    if (*p == '(' || *p == '{')
      depth++;
    else if (*p == ')' || *p == '}')
      depth--;
    else if (*p == ',' && p[1] == ' ' && depth > 0)
      return p + 2;
  }
  return p;
}

void bridge_add_wrapped(bridge_buf_t *b, const char *line) {
  size_t paren_col[32];
  int depth = 0;
  size_t col = 0;
  const char *p = line;

  while (*p) {
    const char *end = piece_end(p, depth);
    size_t width = (size_t)(end - p) - (end[-1] == ' ' ? 1 : 0);
    if (p != line && depth > 0 && col + width > WRAP_COLUMN) {
      size_t indent = paren_col[depth - 1] + 1;
      b->len -= b->len > 0 && !b->failed && b->data[b->len - 1] == ' ' ? 1 : 0;
      if (!b->failed)
        b->data[b->len] = '\0';
      bridge_buf_addf(b, "\n%*s", (int)indent, "");
      col = indent;
    }
    for (; p < end; p++, col++) {
      if ((*p == '(' || *p == '{') && depth < 32)
        paren_col[depth++] = col;
      else if ((*p == ')' || *p == '}') && depth > 0)
        depth--;
      bridge_buf_addn(b, p, 1);
    }
  }
  bridge_buf_add(b, "\n");
}

/* ---- prototypes --------------------------------------------------------------- */

/* "MOD_obj_t *self, " for an object's operations, then "PARAMS, " (nothing when the
 * function takes no arguments). */
static void add_leading_params(bridge_buf_t *b, const bridge_emit_t *e, const bridge_func_t *f) {
  if (f->owner != NULL)
    bridge_buf_addf(b, "%s_%s_t *self, ", e->mod, f->owner->name);
  bridge_add_params(b, e, f, false);
  if (f->nargs > 0)
    bridge_buf_add(b, ", ");
}

/* The value parameters of MOD_op_return(): "T value", or data and length for bytes,
 * items and count for arrays. */
static void add_return_params(bridge_buf_t *b, const bridge_emit_t *e, const bridge_type_t *t) {
  if (t->kind == BRIDGE_OBJECT && !t->array) {
    bridge_buf_addf(b, "%s *value", bridge_c_impl(e, t));
  } else if (t->array) {
    bridge_add_decl(b, bridge_c_param(e, t).s, "items, size_t count");
  } else if (t->kind == BRIDGE_BYTES) {
    bridge_buf_add(b, "const void *value, size_t len");
  } else {
    bridge_add_decl(b, bridge_c_param(e, t).s, "value");
  }
}

/* "synchro_call_t *call, IMPL *self" for an object's operations. */
static void add_impl_params(bridge_buf_t *b, const bridge_func_t *f) {
  bridge_buf_add(b, "synchro_call_t *call");
  if (f->owner != NULL)
    bridge_buf_addf(b, ", %s *self", f->owner->impl);
}

void bridge_add_proto(bridge_buf_t *b, const bridge_emit_t *e, const bridge_func_t *f,
                      bridge_proto_t which) {
  const char *m = e->mod, *n = f->cname;

  switch (which) {
  case BRIDGE_PROTO_BLOCKING:
    bridge_buf_addf(b, "int %s_%s(", m, n);
    add_leading_params(b, e, f);
    if (f->has_result)
      bridge_add_pointer_decl(b, bridge_c_result(e, &f->result).s, "out, ");
    bridge_buf_add(b, "synchro_error_t **err)");
    break;
  case BRIDGE_PROTO_FUTURE:
    bridge_buf_addf(b, "int %s_%s_future(", m, n);
    add_leading_params(b, e, f);
    bridge_buf_add(b, "synchro_future_t **out)");
    break;
  case BRIDGE_PROTO_RESULT:
    bridge_buf_addf(b, "int %s_%s_result(synchro_future_t *f", m, n);
    if (f->has_result) {
      bridge_buf_add(b, ", ");
      bridge_add_pointer_decl(b, bridge_c_result(e, &f->result).s, "out");
    }
    bridge_buf_add(b, ")");
    break;
  case BRIDGE_PROTO_CALLBACK:
    bridge_buf_addf(b, "typedef void (*%s_%s_cb)(int status, ", m, n);
    if (f->has_result) {
      bridge_add_decl(b, bridge_c_cb_result(e, &f->result).s, "result");
      bridge_buf_add(b, ", ");
    }
    bridge_buf_add(b, "const synchro_error_t *err, void *data)");
    break;
  case BRIDGE_PROTO_AIO:
    bridge_buf_addf(b, "int %s_%s_aio(", m, n);
    add_leading_params(b, e, f);
    bridge_buf_addf(b, "synchro_host_t *aio_host, %s_%s_cb aio_cb, void *aio_data)", m, n);
    break;
  case BRIDGE_PROTO_IMPL:
    bridge_buf_addf(b, "void %s_%s_impl(", m, n);
    add_impl_params(b, f);
    if (f->nargs > 0)
      bridge_buf_addf(b, ", const %s_%s_args_t *args", m, n);
    bridge_buf_add(b, ")");
    break;
  case BRIDGE_PROTO_RETURN:
    bridge_buf_addf(b, "int %s_%s_return(synchro_call_t *call", m, n);
    if (f->has_result) {
      bridge_buf_add(b, ", ");
      add_return_params(b, e, &f->result);
    }
    bridge_buf_add(b, ")");
    break;
  case BRIDGE_PROTO_FAIL:
    bridge_buf_addf(b, "int %s_%s_fail(synchro_call_t *call, int code, const char *fmt, ...)", m,
                    n);
    break;
  case BRIDGE_PROTO_OPEN:
    bridge_buf_addf(b, "int %s_%s_open(", m, n);
    add_leading_params(b, e, f);
    bridge_buf_addf(b, "%s_%s_stream_t **out)", m, n);
    break;
  case BRIDGE_PROTO_NEXT:
    bridge_buf_addf(b, "int %s_%s_next(%s_%s_stream_t *st, ", m, n, m, n);
    bridge_add_pointer_decl(b, bridge_c_result(e, &f->result).s, "item, int64_t timeout_ms)");
    break;
  case BRIDGE_PROTO_NEXT_CB:
    bridge_buf_addf(b, "typedef void (*%s_%s_next_cb)(%s_%s_stream_t *st, int status, ", m, n, m,
                    n);
    bridge_add_decl(b, bridge_c_cb_result(e, &f->result).s, "item");
    bridge_buf_add(b, ", const synchro_error_t *err, void *data)");
    break;
  case BRIDGE_PROTO_NEXT_AIO:
    bridge_buf_addf(b,
                    "int %s_%s_next_aio(%s_%s_stream_t *st, synchro_host_t *aio_host, "
                    "%s_%s_next_cb aio_cb, void *aio_data)",
                    m, n, m, n, m, n);
    break;
  case BRIDGE_PROTO_ERROR:
    bridge_buf_addf(b, "const synchro_error_t *%s_%s_error(const %s_%s_stream_t *st)", m, n, m, n);
    break;
  case BRIDGE_PROTO_CLOSE:
    bridge_buf_addf(b, "void %s_%s_close(%s_%s_stream_t *st)", m, n, m, n);
    break;
  case BRIDGE_PROTO_YIELD:
    bridge_buf_addf(b, "int %s_%s_yield(synchro_call_t *call, ", m, n);
    add_return_params(b, e, &f->result);
    bridge_buf_add(b, ")");
    break;
  case BRIDGE_PROTO_END: bridge_buf_addf(b, "int %s_%s_end(synchro_call_t *call)", m, n); break;
  case BRIDGE_PROTO_ROOM:
    bridge_buf_addf(b, "int %s_%s_room(const synchro_call_t *call)", m, n);
    break;
  case BRIDGE_PROTO_ON_DEMAND:
    bridge_buf_addf(b,
                    "int %s_%s_on_demand(synchro_call_t *call, synchro_demand_fn fn, "
                    "void *data)",
                    m, n);
    break;
  }
}

void bridge_add_proto_line(bridge_buf_t *b, const bridge_emit_t *e, const bridge_func_t *f,
                           bridge_proto_t which, const char *before, const char *after) {
  bridge_buf_t line;

  bridge_buf_init(&line);
  bridge_buf_add(&line, before);
  bridge_add_proto(&line, e, f, which);
  bridge_buf_add(&line, after);
  bridge_add_wrapped(b, bridge_buf_str(&line));
  if (line.failed)
    b->failed = true;
  bridge_buf_free(&line);
}
