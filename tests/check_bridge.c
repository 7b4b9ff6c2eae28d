/* tests/check_bridge.c - the bridge generator, driven by data under tests/bridge:
 *   valid/<case>/spec.json + the expected MOD.h, MOD.c, MOD_impl.h: generate, compare
 *     byte for byte, and compile MOD.c with the project's strict flags;
 *   invalid/<case>/spec.json + error: `bridge validate` exits 3 and prints exactly the
 *     line in `error` (as "spec.json: ...", run from the case directory);
 *   unsupported/<case>/spec.json + error: valid, but `bridge generate` exits 3 with it.
 * Plus the command line (usage, exit codes) and `bridge check` (drift, no drift).
 *
 * Runs from the project root with BRIDGE set to the generator (the Makefile sets
 * BRIDGE=build/bridge). Uses nothing from lib/. */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define DATA_DIR "tests/bridge"
#define MAX_CASES 256

/* The generator's absolute path: tests run it from case directories. */
static char bridge_path[PATH_MAX];

/* Case names per kind, sorted, found before the suite is built. */
typedef struct cases_s {
  const char *kind;
  char *names[MAX_CASES];
  int n;
} cases_t;

static cases_t valid_cases = {"valid", {NULL}, 0};
static cases_t invalid_cases = {"invalid", {NULL}, 0};
static cases_t unsupported_cases = {"unsupported", {NULL}, 0};

/* ---- helpers ------------------------------------------------------------------- */

/* snprintf for paths, which are far below PATH_MAX here; a function so the compiler
 * does not flag each possible truncation. */
static void format_to(char *out, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void format_to(char *out, size_t size, const char *fmt, ...) {
  va_list ap;

  va_start(ap, fmt);
  vsnprintf(out, size, fmt, ap);
  va_end(ap);
}

/* Reads a whole file into a NUL-terminated malloc'd buffer, or returns NULL. */
static char *slurp(const char *path, size_t *len_out) {
  FILE *f = fopen(path, "rb");
  char *data = NULL;
  size_t len = 0, cap = 0, n;

  if (f == NULL)
    return NULL;
  do {
    if (cap - len < 4096) {
      cap = cap ? 2 * cap : 8192;
      data = realloc(data, cap + 1);
      ck_assert_ptr_nonnull(data);
    }
    n = fread(data + len, 1, cap - len, f);
    len += n;
  } while (n > 0);
  fclose(f);
  data[len] = '\0';
  if (len_out != NULL)
    *len_out = len;
  return data;
}

static void spit(const char *path, const char *text) {
  FILE *f = fopen(path, "wb");
  ck_assert_msg(f != NULL, "cannot write %s: %s", path, strerror(errno));
  fputs(text, f);
  fclose(f);
}

/* A fresh temporary directory for one test; removed by remove_tree(). */
static void make_temp_dir(char *out, size_t size) {
  const char *base = getenv("TMPDIR");
  format_to(out, size, "%s/check_bridge-XXXXXX", base && *base ? base : "/tmp");
  ck_assert_msg(mkdtemp(out) != NULL, "mkdtemp: %s", strerror(errno));
}

static void remove_tree(const char *dir) {
  DIR *d = opendir(dir);
  struct dirent *ent;
  char path[PATH_MAX];

  if (d == NULL)
    return;
  while ((ent = readdir(d)) != NULL) {
    if (strcmp(ent->d_name, ".") == 0 || strcmp(ent->d_name, "..") == 0)
      continue;
    format_to(path, sizeof(path), "%s/%s", dir, ent->d_name);
    unlink(path);
  }
  closedir(d);
  rmdir(dir);
}

/* What one run of the generator did. */
typedef struct run_s {
  int status; /* exit status, or -1 if it did not exit normally */
  char *out;
  char *err;
} run_t;

static void run_free(run_t *r) {
  free(r->out);
  free(r->err);
}

/* Runs argv (argv[0] is replaced by the generator) in `cwd` (NULL: here), capturing
 * stdout and stderr through files in `scratch`. */
static run_t run_in(const char *cwd, const char *scratch, char *argv[]) {
  char out_path[PATH_MAX], err_path[PATH_MAX];
  run_t r = {-1, NULL, NULL};
  pid_t pid;
  int status;

  format_to(out_path, sizeof(out_path), "%s/.stdout", scratch);
  format_to(err_path, sizeof(err_path), "%s/.stderr", scratch);
  argv[0] = bridge_path;
  fflush(NULL);
  pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    int fo = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int fe = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fo < 0 || fe < 0 || dup2(fo, 1) < 0 || dup2(fe, 2) < 0)
      _exit(126);
    if (cwd != NULL && chdir(cwd) != 0)
      _exit(126);
    execv(bridge_path, argv);
    _exit(127);
  }
  ck_assert_int_eq(waitpid(pid, &status, 0), pid);
  r.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = slurp(out_path, NULL);
  r.err = slurp(err_path, NULL);
  ck_assert_ptr_nonnull(r.out);
  ck_assert_ptr_nonnull(r.err);
  unlink(out_path);
  unlink(err_path);
  return r;
}

/* The first line of `text`, without its newline, in `out`. */
static void first_line(const char *text, char *out, size_t size) {
  size_t n = strcspn(text, "\n");
  if (n >= size)
    n = size - 1;
  memcpy(out, text, n);
  out[n] = '\0';
}

static void case_dir(const cases_t *c, int i, char *out, size_t size) {
  format_to(out, size, "%s/%s/%s", DATA_DIR, c->kind, c->names[i]);
}

/* The module name from a valid case's spec: the expected files are named after it. */
static void expected_files(const char *dir, char names[3][256]) {
  DIR *d = opendir(dir);
  struct dirent *ent;
  char header[256] = "";

  ck_assert_msg(d != NULL, "cannot open %s", dir);
  while ((ent = readdir(d)) != NULL) {
    size_t n = strlen(ent->d_name);
    if (n > 7 && strcmp(ent->d_name + n - 7, "_impl.h") == 0)
      continue;
    if (n > 2 && n < 200 && strcmp(ent->d_name + n - 2, ".h") == 0)
      format_to(header, sizeof(header), "%.*s", (int)(n - 2), ent->d_name);
  }
  closedir(d);
  ck_assert_msg(header[0] != '\0', "%s has no expected MOD.h", dir);
  format_to(names[0], 256, "%s.h", header);
  format_to(names[1], 256, "%s.c", header);
  format_to(names[2], 256, "%s_impl.h", header);
}

static void assert_same_file(const char *expected, const char *actual) {
  size_t elen, alen;
  char *e = slurp(expected, &elen);
  char *a = slurp(actual, &alen);

  ck_assert_msg(e != NULL, "missing expected file %s", expected);
  ck_assert_msg(a != NULL, "the generator did not write %s", actual);
  ck_assert_msg(elen == alen && memcmp(e, a, elen) == 0,
                "%s differs from %s (regenerate the golden files with "
                "`build/bridge generate SPEC -o DIR` after checking the change)",
                actual, expected);
  free(e);
  free(a);
}

/* Compiles `source` with the project's strict flags (and CC, default cc). */
static void assert_compiles(const char *source, const char *scratch) {
  char cmd[4 * PATH_MAX];
  const char *cc = getenv("CC");

  format_to(cmd, sizeof(cmd),
            "%s -std=c11 -D_POSIX_C_SOURCE=200809L -Wall -Wextra -Wshadow "
            "-Wstrict-prototypes -Wwrite-strings -Wpointer-arith -Wmissing-prototypes "
            "-Wformat=2 -Wno-format-nonliteral -Werror -O2 -fPIC -fvisibility=hidden "
            "-Iinclude $(pkg-config --cflags libuv jansson) -c '%s' -o '%s/out.o' 2>&1",
            cc && *cc ? cc : "cc", source, scratch);
  ck_assert_msg(system(cmd) == 0, "generated %s does not compile: %s", source, cmd);
  format_to(cmd, sizeof(cmd), "%s/out.o", scratch);
  unlink(cmd);
}

/* ---- data-driven cases ---------------------------------------------------------- */

START_TEST(test_valid_case) {
  char dir[PATH_MAX], tmp[PATH_MAX], spec[PATH_MAX], names[3][256];
  char expected[2 * PATH_MAX], actual[2 * PATH_MAX];
  char *argv[] = {NULL, (char *)"generate", spec, (char *)"-o", tmp, NULL};
  run_t r;
  int i;

  case_dir(&valid_cases, _i, dir, sizeof(dir));
  format_to(spec, sizeof(spec), "%s/spec.json", dir);
  make_temp_dir(tmp, sizeof(tmp));
  r = run_in(NULL, tmp, argv);
  ck_assert_msg(r.status == 0, "%s: generate exited %d: %s", dir, r.status, r.err);
  ck_assert_str_eq(r.out, "");
  ck_assert_str_eq(r.err, "");
  run_free(&r);
  expected_files(dir, names);
  for (i = 0; i < 3; i++) {
    format_to(expected, sizeof(expected), "%s/%s", dir, names[i]);
    format_to(actual, sizeof(actual), "%s/%s", tmp, names[i]);
    assert_same_file(expected, actual);
  }
  format_to(actual, sizeof(actual), "%s/%s", tmp, names[1]);
  assert_compiles(actual, tmp);
  remove_tree(tmp);
}
END_TEST

/* Runs `command` on a case from its directory; returns the run. */
static run_t run_case(const cases_t *c, int i, const char *command, const char *tmp) {
  char dir[PATH_MAX];
  char out_dir[PATH_MAX];
  char *with_output[] = {NULL, (char *)command, (char *)"spec.json", (char *)"-o", out_dir, NULL};
  char *without[] = {NULL, (char *)command, (char *)"spec.json", NULL};

  case_dir(c, i, dir, sizeof(dir));
  format_to(out_dir, sizeof(out_dir), "%s/out", tmp);
  return run_in(dir, tmp, strcmp(command, "validate") == 0 ? without : with_output);
}

/* The expected message of an invalid or unsupported case. */
static void expected_error(const cases_t *c, int i, char *out, size_t size) {
  char dir[PATH_MAX], path[2 * PATH_MAX];
  char *text;

  case_dir(c, i, dir, sizeof(dir));
  format_to(path, sizeof(path), "%s/error", dir);
  text = slurp(path, NULL);
  ck_assert_msg(text != NULL, "missing %s", path);
  first_line(text, out, size);
  free(text);
}

START_TEST(test_invalid_case) {
  char tmp[PATH_MAX], want[2048], got[2048];
  run_t r;

  make_temp_dir(tmp, sizeof(tmp));
  expected_error(&invalid_cases, _i, want, sizeof(want));
  r = run_case(&invalid_cases, _i, "validate", tmp);
  first_line(r.err, got, sizeof(got));
  ck_assert_msg(r.status == 3, "%s: validate exited %d, expected 3; stderr: %s",
                invalid_cases.names[_i], r.status, r.err);
  ck_assert_msg(strcmp(got, want) == 0, "%s:\n  expected: %s\n  got:      %s",
                invalid_cases.names[_i], want, got);
  ck_assert_str_eq(r.out, "");
  run_free(&r);
  remove_tree(tmp);
}
END_TEST

START_TEST(test_unsupported_case) {
  char tmp[PATH_MAX], want[2048], got[2048], out_dir[2 * PATH_MAX];
  struct stat st;
  run_t r;

  make_temp_dir(tmp, sizeof(tmp));
  r = run_case(&unsupported_cases, _i, "validate", tmp);
  ck_assert_msg(r.status == 0, "%s: validate exited %d: %s", unsupported_cases.names[_i], r.status,
                r.err);
  run_free(&r);
  expected_error(&unsupported_cases, _i, want, sizeof(want));
  r = run_case(&unsupported_cases, _i, "generate", tmp);
  first_line(r.err, got, sizeof(got));
  ck_assert_int_eq(r.status, 3);
  ck_assert_msg(strcmp(got, want) == 0, "%s:\n  expected: %s\n  got:      %s",
                unsupported_cases.names[_i], want, got);
  run_free(&r);
  /* nothing fake was written */
  format_to(out_dir, sizeof(out_dir), "%s/out", tmp);
  ck_assert_int_ne(stat(out_dir, &st), 0);
  remove_tree(tmp);
}
END_TEST

/* ---- command line ------------------------------------------------------------------ */

static run_t run_args(const char *tmp, const char *a, const char *b, const char *c) {
  char *argv[] = {NULL, (char *)a, (char *)b, (char *)c, NULL};
  return run_in(NULL, tmp, argv);
}

START_TEST(test_cli_version_and_help) {
  char tmp[PATH_MAX];
  run_t r;

  make_temp_dir(tmp, sizeof(tmp));
  r = run_args(tmp, "--version", NULL, NULL);
  ck_assert_int_eq(r.status, 0);
  ck_assert_str_eq(r.out, "bridge (synchro) 0.1.0\n");
  run_free(&r);
  r = run_args(tmp, "--help", NULL, NULL);
  ck_assert_int_eq(r.status, 0);
  ck_assert_ptr_nonnull(strstr(r.out, "bridge generate SPEC.json -o DIR"));
  ck_assert_ptr_nonnull(strstr(r.out, "4  I/O error"));
  run_free(&r);
  remove_tree(tmp);
}
END_TEST

START_TEST(test_cli_usage_errors) {
  static const char *const bad[][3] = {
      {NULL, NULL, NULL},
      {"frobnicate", "x.json", NULL},
      {"generate", NULL, NULL},
      {"generate", "x.json", NULL}, /* no -o */
      {"validate", "a.json", "b.json"},
      {"--bogus", NULL, NULL},
      {"generate", "x.json", "-o"},
  };
  char tmp[PATH_MAX];
  size_t i;

  make_temp_dir(tmp, sizeof(tmp));
  for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    run_t r = run_args(tmp, bad[i][0], bad[i][1], bad[i][2]);
    ck_assert_msg(r.status == 2, "case %zu exited %d: %s", i, r.status, r.err);
    ck_assert_ptr_nonnull(strstr(r.err, "bridge: "));
    run_free(&r);
  }
  remove_tree(tmp);
}
END_TEST

START_TEST(test_cli_io_errors) {
  char tmp[PATH_MAX], missing[2 * PATH_MAX];
  run_t r;

  make_temp_dir(tmp, sizeof(tmp));
  format_to(missing, sizeof(missing), "%s/no-such.json", tmp);
  r = run_args(tmp, "validate", missing, NULL);
  ck_assert_int_eq(r.status, 4);
  ck_assert_ptr_nonnull(strstr(r.err, "cannot read"));
  run_free(&r);
  remove_tree(tmp);
}
END_TEST

/* ---- check ------------------------------------------------------------------------- */

/* Generates the first valid case into tmp/gen; returns the module's header name. */
static void generate_first_valid(const char *tmp, char *spec, size_t spec_size, char *gen,
                                 size_t gen_size) {
  char dir[PATH_MAX];
  char *argv[] = {NULL, (char *)"generate", spec, (char *)"-o", gen, NULL};
  run_t r;

  ck_assert_int_gt(valid_cases.n, 0);
  case_dir(&valid_cases, 0, dir, sizeof(dir));
  format_to(spec, spec_size, "%s/spec.json", dir);
  format_to(gen, gen_size, "%s/gen", tmp);
  r = run_in(NULL, tmp, argv);
  ck_assert_int_eq(r.status, 0);
  run_free(&r);
}

START_TEST(test_check_no_drift) {
  char tmp[PATH_MAX], spec[PATH_MAX], gen[2 * PATH_MAX];
  char *argv[] = {NULL, (char *)"check", spec, (char *)"-o", gen, NULL};
  run_t r;

  make_temp_dir(tmp, sizeof(tmp));
  generate_first_valid(tmp, spec, sizeof(spec), gen, sizeof(gen));
  r = run_in(NULL, tmp, argv);
  ck_assert_msg(r.status == 0, "check exited %d: %s%s", r.status, r.out, r.err);
  ck_assert_str_eq(r.out, "");
  run_free(&r);
  remove_tree(gen);
  remove_tree(tmp);
}
END_TEST

START_TEST(test_check_drift) {
  char tmp[PATH_MAX], spec[PATH_MAX], gen[2 * PATH_MAX], names[3][256];
  char path[3 * PATH_MAX], dir[PATH_MAX];
  char *argv[] = {NULL, (char *)"check", spec, (char *)"-o", gen, NULL};
  char *text;
  run_t r;

  make_temp_dir(tmp, sizeof(tmp));
  generate_first_valid(tmp, spec, sizeof(spec), gen, sizeof(gen));
  case_dir(&valid_cases, 0, dir, sizeof(dir));
  expected_files(dir, names);

  /* an edited file: exit 1 and a unified diff naming it */
  format_to(path, sizeof(path), "%s/%s", gen, names[1]);
  text = slurp(path, NULL);
  ck_assert_ptr_nonnull(text);
  text[0] = '#'; /* "/" "*" -> "#" "*": one changed line */
  spit(path, text);
  free(text);
  r = run_in(NULL, tmp, argv);
  ck_assert_int_eq(r.status, 1);
  ck_assert_ptr_nonnull(strstr(r.out, names[1]));
  ck_assert_msg(strstr(r.out, "@@") != NULL || strstr(r.out, "differs") != NULL, "no diff in: %s",
                r.out);
  ck_assert_ptr_nonnull(strstr(r.err, "out of date"));
  run_free(&r);

  /* a missing file: exit 1 and named */
  format_to(path, sizeof(path), "%s/%s", gen, names[2]);
  ck_assert_int_eq(unlink(path), 0);
  r = run_in(NULL, tmp, argv);
  ck_assert_int_eq(r.status, 1);
  ck_assert_ptr_nonnull(strstr(r.err, "is missing"));
  run_free(&r);
  remove_tree(gen);
  remove_tree(tmp);
}
END_TEST

/* ---- suite ------------------------------------------------------------------------- */

static int compare_names(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Lists the case directories of one kind, sorted. */
static void find_cases(cases_t *c) {
  char dir[PATH_MAX];
  DIR *d;
  struct dirent *ent;

  format_to(dir, sizeof(dir), "%s/%s", DATA_DIR, c->kind);
  d = opendir(dir);
  if (d == NULL)
    return;
  while ((ent = readdir(d)) != NULL && c->n < MAX_CASES) {
    if (ent->d_name[0] == '.')
      continue;
    c->names[c->n] = strdup(ent->d_name);
    if (c->names[c->n] != NULL)
      c->n++;
  }
  closedir(d);
  qsort(c->names, (size_t)c->n, sizeof(c->names[0]), compare_names);
}

static Suite *bridge_suite(void) {
  Suite *s = suite_create("bridge");
  TCase *tc;

  tc = tcase_create("valid specs");
  tcase_set_timeout(tc, 60);
  tcase_add_loop_test(tc, test_valid_case, 0, valid_cases.n);
  suite_add_tcase(s, tc);

  tc = tcase_create("invalid specs");
  tcase_set_timeout(tc, 10);
  tcase_add_loop_test(tc, test_invalid_case, 0, invalid_cases.n);
  suite_add_tcase(s, tc);

  tc = tcase_create("unsupported features");
  tcase_set_timeout(tc, 10);
  tcase_add_loop_test(tc, test_unsupported_case, 0, unsupported_cases.n);
  suite_add_tcase(s, tc);

  tc = tcase_create("command line");
  tcase_set_timeout(tc, 10);
  tcase_add_test(tc, test_cli_version_and_help);
  tcase_add_test(tc, test_cli_usage_errors);
  tcase_add_test(tc, test_cli_io_errors);
  suite_add_tcase(s, tc);

  tc = tcase_create("check");
  tcase_set_timeout(tc, 20);
  tcase_add_test(tc, test_check_no_drift);
  tcase_add_test(tc, test_check_drift);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  const char *bridge = getenv("BRIDGE");
  SRunner *sr;
  int failed;
  int i;

  char cwd[PATH_MAX];

  if (bridge != NULL && bridge[0] != '/' && getcwd(cwd, sizeof(cwd)) != NULL)
    format_to(bridge_path, sizeof(bridge_path), "%s/%s", cwd, bridge);
  else if (bridge != NULL)
    format_to(bridge_path, sizeof(bridge_path), "%s", bridge);
  if (bridge == NULL || access(bridge_path, X_OK) != 0) {
    fprintf(stderr, "check_bridge: set BRIDGE to the bridge binary (e.g. "
                    "BRIDGE=build/bridge), run from the project root\n");
    return EXIT_FAILURE;
  }
  find_cases(&valid_cases);
  find_cases(&invalid_cases);
  find_cases(&unsupported_cases);
  if (valid_cases.n == 0 || invalid_cases.n == 0) {
    fprintf(stderr, "check_bridge: no cases under %s (run from the project root)\n", DATA_DIR);
    return EXIT_FAILURE;
  }
  sr = srunner_create(bridge_suite());
  srunner_run_all(sr, CK_ENV);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  for (i = 0; i < valid_cases.n; i++)
    free(valid_cases.names[i]);
  for (i = 0; i < invalid_cases.n; i++)
    free(invalid_cases.names[i]);
  for (i = 0; i < unsupported_cases.n; i++)
    free(unsupported_cases.names[i]);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
