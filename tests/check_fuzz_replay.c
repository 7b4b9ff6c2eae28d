/* tests/check_fuzz_replay.c - the fuzz harness's entry point on known inputs, in
 * `make check`: every spec under tests/bridge/{valid,invalid,unsupported}/ and every
 * regression input under tests/fuzz/corpus/ (inputs that once crashed, or that reach
 * corners: add a file there for each fuzzer finding). The harness traps on a bad
 * outcome; sanitizers (make asan) catch memory errors and leaks.
 *
 * Runs from the project root. Links tests/fuzz/fuzz_spec.c and bridge's objects. */
#include <check.h>
#include <dirent.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_INPUTS 1024

static char *inputs[MAX_INPUTS];
static int ninputs;

static void add_input(const char *path) {
  if (ninputs < MAX_INPUTS && (inputs[ninputs] = strdup(path)) != NULL)
    ninputs++;
}

/* Adds every regular entry of `dir` (with `suffix` appended: "/spec.json" for case
 * directories, "" for corpus files). */
static void add_dir(const char *dir, const char *suffix) {
  char path[PATH_MAX];
  struct dirent *ent;
  DIR *d = opendir(dir);

  if (d == NULL)
    return;
  while ((ent = readdir(d)) != NULL) {
    if (ent->d_name[0] == '.')
      continue;
    snprintf(path, sizeof(path), "%s/%s%s", dir, ent->d_name, suffix);
    add_input(path);
  }
  closedir(d);
}

static int compare(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

START_TEST(test_replay) {
  const char *path = inputs[_i];
  FILE *f = fopen(path, "rb");
  uint8_t *data;
  long len;

  ck_assert_msg(f != NULL, "cannot open %s", path);
  ck_assert_int_eq(fseek(f, 0, SEEK_END), 0);
  len = ftell(f);
  ck_assert_int_ge(len, 0);
  rewind(f);
  data = malloc((size_t)len + 1);
  ck_assert_ptr_nonnull(data);
  ck_assert_int_eq(fread(data, 1, (size_t)len, f), (size_t)len);
  fclose(f);
  /* exactly len bytes, like libFuzzer: no terminating NUL to lean on */
  ck_assert_int_eq(LLVMFuzzerTestOneInput(data, (size_t)len), 0);
  free(data);
}
END_TEST

int main(void) {
  SRunner *sr;
  Suite *s;
  TCase *tc;
  int failed, i;

  add_dir("tests/bridge/valid", "/spec.json");
  add_dir("tests/bridge/invalid", "/spec.json");
  add_dir("tests/bridge/unsupported", "/spec.json");
  add_dir("tests/fuzz/corpus", "");
  add_input("tests/conformance/conf.json");
  if (ninputs < 10) {
    fprintf(stderr, "check_fuzz_replay: too few inputs (run from the project root)\n");
    return EXIT_FAILURE;
  }
  qsort(inputs, (size_t)ninputs, sizeof(inputs[0]), compare);
  s = suite_create("fuzz replay");
  tc = tcase_create("inputs");
  tcase_set_timeout(tc, 30);
  tcase_add_loop_test(tc, test_replay, 0, ninputs);
  suite_add_tcase(s, tc);
  sr = srunner_create(s);
  srunner_run_all(sr, CK_ENV);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  for (i = 0; i < ninputs; i++)
    free(inputs[i]);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
