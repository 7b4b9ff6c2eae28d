/* bridge/emit.c - rendering a spec into its three files, and writing them. */
#include "emit.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* Arrays of objects ("client[]") would need a handle array translated into a state
 * array per call; this version refuses them by path (argument or result). */
static int check_type(const bridge_type_t *t, const char *path, bridge_error_t *err) {
  if (t->kind != BRIDGE_OBJECT || !t->array)
    return 0;
  return bridge_fail(err, path,
                     "arrays of objects are not supported by this version of "
                     "bridge; expected a single object (\"%s\" or \"%s?\")",
                     t->object, t->object);
}

static int check_func(const bridge_func_t *f, bridge_error_t *err) {
  char path[BRIDGE_PATH_MAX];
  size_t i;

  for (i = 0; i < f->nargs; i++) {
    bridge_format(path, sizeof(path), "%s/args/%zu/type", f->path, i);
    if (check_type(&f->args[i].type, path, err) != 0)
      return -1;
  }
  bridge_format(path, sizeof(path), "%s/%s", f->path, f->yields ? "yields" : "returns");
  return f->has_result ? check_type(&f->result, path, err) : 0;
}

int bridge_check_supported(const bridge_spec_t *spec, bridge_error_t *err) {
  char path[BRIDGE_PATH_MAX];
  size_t i, j;

  memset(err, 0, sizeof(*err));
  for (i = 0; i < spec->nfunctions; i++)
    if (check_func(&spec->functions[i], err) != 0)
      return -1;
  for (i = 0; i < spec->nobjects; i++) {
    const bridge_object_t *o = &spec->objects[i];
    for (j = 0; j < o->n_new_args; j++) {
      bridge_format(path, sizeof(path), "%s/new/args/%zu/type", o->path, j);
      if (check_type(&o->new_args[j].type, path, err) != 0)
        return -1;
    }
    for (j = 0; j < o->nmethods; j++)
      if (check_func(&o->methods[j], err) != 0)
        return -1;
  }
  return 0;
}

void bridge_files_free(bridge_files_t *files) {
  int i;

  for (i = 0; i < BRIDGE_FILE_COUNT; i++)
    bridge_buf_free(&files->text[i]);
}

int bridge_render(const bridge_spec_t *spec, bridge_files_t *files) {
  bridge_error_t unsupported;
  bridge_emit_t e;
  int i;

  for (i = 0; i < BRIDGE_FILE_COUNT; i++)
    bridge_buf_init(&files->text[i]);
  if (bridge_check_supported(spec, &unsupported) != 0)
    return -ENOTSUP;
  bridge_emit_init(&e, spec);
  bridge_format(files->name[BRIDGE_FILE_HEADER], sizeof(files->name[0]), "%s.h", e.mod);
  bridge_format(files->name[BRIDGE_FILE_SOURCE], sizeof(files->name[0]), "%s.c", e.mod);
  bridge_format(files->name[BRIDGE_FILE_IMPL], sizeof(files->name[0]), "%s_impl.h", e.mod);
  bridge_emit_header(&e, &files->text[BRIDGE_FILE_HEADER]);
  bridge_emit_source(&e, &files->text[BRIDGE_FILE_SOURCE]);
  bridge_emit_impl(&e, &files->text[BRIDGE_FILE_IMPL]);
  for (i = 0; i < BRIDGE_FILE_COUNT; i++) {
    if (files->text[i].failed) {
      bridge_files_free(files);
      return -ENOMEM;
    }
  }
  return 0;
}

int bridge_emit(const bridge_spec_t *spec, const char *dir) {
  bridge_files_t files;
  int rc;
  int i;

  rc = bridge_render(spec, &files);
  if (rc != 0)
    return rc;
  for (i = 0; i < BRIDGE_FILE_COUNT && rc == 0; i++) {
    char path[4096];
    bridge_format(path, sizeof(path), "%s/%s", dir, files.name[i]);
    rc = bridge_write_file(path, bridge_buf_str(&files.text[i]), files.text[i].len);
  }
  bridge_files_free(&files);
  return rc;
}
