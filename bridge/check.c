/* bridge/check.c - comparing committed generated files with a fresh rendering. */
#include "check.h"

#include <errno.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "emit.h"

extern char **environ;

/* Runs `diff -u` on the two files, labelled so the output does not show the temporary
 * directory. Returns diff's exit status, or -1 if it could not run. */
static int run_diff(const char *committed, const char *fresh) {
  char label[4200];
  char diff[] = "diff", unified[] = "-u", label_opt[] = "-L";
  char *argv[] = {diff, unified, label_opt, NULL, label_opt, label, NULL, NULL, NULL};
  pid_t pid;
  int status;

  bridge_format(label, sizeof(label), "%s (regenerated)", committed);
  argv[3] = (char *)committed;
  argv[6] = (char *)committed;
  argv[7] = (char *)fresh;
  fflush(stdout);
  fflush(stderr);
  if (posix_spawnp(&pid, "diff", NULL, NULL, argv, environ) != 0)
    return -1;
  while (waitpid(pid, &status, 0) < 0)
    if (errno != EINTR)
      return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* Compares one committed file with its fresh rendering (already written to `fresh`).
 * Returns 0 (same), 1 (differs or missing) or -errno. */
static int compare_file(const char *committed, const char *fresh, const bridge_buf_t *text) {
  char *data;
  size_t len;
  int rc;

  rc = bridge_read_file(committed, &data, &len);
  if (rc == -ENOENT) {
    fprintf(stderr, "bridge: %s is missing\n", committed);
    return 1;
  }
  if (rc != 0) {
    fprintf(stderr, "bridge: cannot read %s: %s\n", committed, strerror(-rc));
    return rc;
  }
  rc = len == text->len && memcmp(data, bridge_buf_str(text), len) == 0 ? 0 : 1;
  free(data);
  if (rc == 1 && run_diff(committed, fresh) != 1)
    printf("bridge: %s differs from the spec's output\n", committed);
  return rc;
}

/* Removes the fresh files and the temporary directory, whatever state they are in. */
static void remove_temp(const char *tmp, const bridge_files_t *files) {
  char path[4200];
  int i;

  for (i = 0; i < BRIDGE_FILE_COUNT; i++) {
    bridge_format(path, sizeof(path), "%s/%s", tmp, files->name[i]);
    unlink(path);
  }
  rmdir(tmp);
}

static int compare_all(const bridge_files_t *files, const char *tmp, const char *dir) {
  char committed[4200];
  char fresh[4200];
  int drift = 0;
  int i;

  for (i = 0; i < BRIDGE_FILE_COUNT; i++) {
    int rc;
    bridge_format(fresh, sizeof(fresh), "%s/%s", tmp, files->name[i]);
    rc = bridge_write_file(fresh, bridge_buf_str(&files->text[i]), files->text[i].len);
    if (rc != 0) {
      fprintf(stderr, "bridge: cannot write %s: %s\n", fresh, strerror(-rc));
      return rc;
    }
    bridge_format(committed, sizeof(committed), "%s/%s", dir, files->name[i]);
    rc = compare_file(committed, fresh, &files->text[i]);
    if (rc < 0)
      return rc;
    drift |= rc;
  }
  return drift;
}

int bridge_check(const bridge_spec_t *spec, const char *dir) {
  bridge_files_t files;
  char tmp[4096];
  const char *base = getenv("TMPDIR");
  int rc;

  rc = bridge_render(spec, &files);
  if (rc != 0)
    return rc;
  bridge_format(tmp, sizeof(tmp), "%s/bridge-check-XXXXXX",
                base != NULL && base[0] != '\0' ? base : "/tmp");
  if (mkdtemp(tmp) == NULL) {
    rc = -errno;
    fprintf(stderr, "bridge: cannot create a temporary directory %s: %s\n", tmp, strerror(errno));
    bridge_files_free(&files);
    return rc;
  }
  rc = compare_all(&files, tmp, dir);
  remove_temp(tmp, &files);
  bridge_files_free(&files);
  return rc;
}
