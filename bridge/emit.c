/* bridge/emit.c - rendering a spec into its three files, and writing them. */
#include "emit.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

int bridge_check_supported(const bridge_spec_t *spec, bridge_error_t *err) {
  size_t i;

  memset(err, 0, sizeof(*err));
  for (i = 0; i < spec->nfunctions; i++) {
    if (spec->functions[i].yields) {
      char path[BRIDGE_PATH_MAX];
      bridge_format(path, sizeof(path), "%s/yields", spec->functions[i].path);
      return bridge_fail(err, path, "streams are not supported by this version of bridge");
    }
  }
  if (spec->nobjects > 0)
    return bridge_fail(err, spec->objects[0].path,
                       "objects are not supported by this version of bridge");
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
