/* tests/check_errors.c - error codes, error values and the version queries. */
#include <check.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "support/testops.h"
#include "synchro.h"

/* ---- codes ------------------------------------------------------------------- */

typedef struct {
  int code;
  const char *name;
  const char *msg;
} code_row_t;

#define ROW(name, value, msg) {value, "SYNCHRO_" #name, msg},
static const code_row_t code_rows[] = {SYNCHRO_ERRNO_MAP(ROW)};
#undef ROW
#define N_CODES (sizeof(code_rows) / sizeof(code_rows[0]))

START_TEST(test_every_mapped_code_has_name_and_message) {
  size_t i, j;
  ck_assert_uint_ge(N_CODES, 16);
  for (i = 0; i < N_CODES; i++) {
    const code_row_t *r = &code_rows[i];
    ck_assert_int_lt(r->code, 0);
    ck_assert_int_ge(r->code, SYNCHRO_ERRNO_MIN_);
    ck_assert_str_eq(synchro_err_name(r->code), r->name);
    ck_assert_str_eq(synchro_strerror(r->code), r->msg);
    ck_assert_uint_gt(strlen(r->msg), 0);
    for (j = 0; j < i; j++)
      ck_assert_int_ne(code_rows[j].code, r->code); /* the map never repeats a value */
  }
}
END_TEST

START_TEST(test_synchro_codes_never_collide_with_libuv) {
  size_t i;
  for (i = 0; i < N_CODES; i++) {
    /* libuv codes are -errno on Unix, far above -30001 */
    ck_assert_int_lt(code_rows[i].code, UV_EOF);
    ck_assert_int_lt(code_rows[i].code, UV_ECHARSET);
  }
}
END_TEST

START_TEST(test_libuv_codes_pass_through) {
  ck_assert_str_eq(synchro_err_name(UV_ECONNREFUSED), "ECONNREFUSED");
  ck_assert_str_eq(synchro_strerror(UV_ECONNREFUSED), uv_strerror(UV_ECONNREFUSED));
  ck_assert_str_eq(synchro_err_name(UV_ETIMEDOUT), "ETIMEDOUT");
  ck_assert_str_ne(synchro_err_name(UV_ETIMEDOUT), synchro_err_name(SYNCHRO_ETIMEDOUT));
  ck_assert_str_eq(synchro_err_name(UV_EOF), "EOF");
  ck_assert_str_eq(synchro_strerror(UV_ENOENT), uv_strerror(UV_ENOENT));
}
END_TEST

START_TEST(test_zero_and_unknown_codes) {
  const char *m;
  ck_assert_str_eq(synchro_err_name(0), "OK");
  ck_assert_str_eq(synchro_strerror(0), "success");
  /* an unknown code inside synchro's range and one outside any table */
  m = synchro_strerror(-30098);
  ck_assert_ptr_nonnull(m);
  ck_assert_uint_gt(strlen(m), 0);
  m = synchro_err_name(-123456);
  ck_assert_ptr_nonnull(m);
  ck_assert_uint_gt(strlen(m), 0);
}
END_TEST

/* synchro_strerror is thread-safe: unknown codes use thread-local storage. */
static void *strerror_worker(void *arg) {
  long id = (long)arg, i;
  char want[64];
  for (i = 0; i < 2000; i++) {
    const char *m = synchro_strerror((int)(-100000 - id));
    snprintf(want, sizeof(want), "%s", m);
    if (strcmp(synchro_strerror((int)(-100000 - id)), want) != 0)
      return (void *)1;
    if (strcmp(synchro_strerror(SYNCHRO_EBUSY), "too many calls in flight") != 0)
      return (void *)1;
  }
  return NULL;
}

START_TEST(test_strerror_from_many_threads) {
  pthread_t t[4];
  long i;
  void *bad[4];
  for (i = 0; i < 4; i++)
    ck_assert_int_eq(pthread_create(&t[i], NULL, strerror_worker, (void *)i), 0);
  for (i = 0; i < 4; i++)
    pthread_join(t[i], &bad[i]);
  for (i = 0; i < 4; i++)
    ck_assert_ptr_null(bad[i]);
}
END_TEST

/* ---- error values ------------------------------------------------------------- */

START_TEST(test_a25_error_new_and_accessors) {
  synchro_error_t *err = NULL;
  json_t *details = json_pack("{s:i}", "retry_after", 2);
  ck_assert_int_eq(
      synchro_error_new(&err, UV_EIO, "write_block", details, NULL, "disk %s at %d", "full", 42),
      0);
  ck_assert_ptr_nonnull(err);
  ck_assert_int_eq(synchro_error_code(err), UV_EIO);
  ck_assert_str_eq(synchro_error_message(err), "disk full at 42");
  ck_assert_str_eq(synchro_error_origin(err), "write_block");
  ck_assert_ptr_eq(synchro_error_details(err), details);
  ck_assert_int_eq(json_integer_value(json_object_get(synchro_error_details(err), "retry_after")),
                   2);
  ck_assert_ptr_null(synchro_error_cause(err));
  synchro_error_free(err);
}
END_TEST

START_TEST(test_error_defaults_for_null_fmt_and_origin) {
  synchro_error_t *err = NULL;
  ck_assert_int_eq(synchro_error_new(&err, SYNCHRO_EBUSY, NULL, NULL, NULL, NULL), 0);
  ck_assert_str_eq(synchro_error_message(err), synchro_strerror(SYNCHRO_EBUSY));
  ck_assert_str_eq(synchro_error_origin(err), "");
  ck_assert_ptr_null(synchro_error_details(err));
  synchro_error_free(err);
  ck_assert_int_eq(synchro_error_new(&err, UV_ECONNREFUSED, "connect", NULL, NULL, NULL), 0);
  ck_assert_str_eq(synchro_error_message(err), uv_strerror(UV_ECONNREFUSED));
  synchro_error_free(err);
}
END_TEST

START_TEST(test_a25_error_cause_chain) {
  synchro_error_t *net = NULL, *io = NULL, *top = NULL;
  const synchro_error_t *c;
  ck_assert_int_eq(synchro_error_new(&net, UV_ECONNRESET, "recv", NULL, NULL, "peer reset"), 0);
  ck_assert_int_eq(synchro_error_new(&io, UV_EIO, "write_block", json_pack("{s:s}", "dev", "sda"),
                                     net, "disk full"),
                   0);
  ck_assert_int_eq(synchro_error_new(&top, -1000, "save", NULL, io, "saving failed"), 0);
  c = synchro_error_cause(top);
  ck_assert_ptr_eq(c, io);
  ck_assert_int_eq(synchro_error_code(c), UV_EIO);
  ck_assert_str_eq(synchro_error_message(c), "disk full");
  c = synchro_error_cause(c);
  ck_assert_ptr_eq(c, net);
  ck_assert_str_eq(synchro_error_origin(c), "recv");
  ck_assert_ptr_null(synchro_error_cause(c));
  synchro_error_free(top); /* frees the whole chain (ASan proves it) */
}
END_TEST

START_TEST(test_error_new_invalid_releases_stolen_values) {
  synchro_error_t *err = (synchro_error_t *)&err, *cause = NULL;
  /* code >= 0: EINVAL, and details and cause are released (ASan checks leaks) */
  ck_assert_int_eq(synchro_error_new(&cause, UV_EIO, "x", NULL, NULL, NULL), 0);
  ck_assert_int_eq(synchro_error_new(&err, 0, "x", json_pack("{s:i}", "a", 1), cause, "m"),
                   SYNCHRO_EINVAL);
  ck_assert_int_eq(synchro_error_new(&err, 5, "x", NULL, NULL, NULL), SYNCHRO_EINVAL);
  ck_assert_int_eq(synchro_error_new(NULL, UV_EIO, "x", json_pack("[]"), NULL, NULL),
                   SYNCHRO_EINVAL);
}
END_TEST

START_TEST(test_error_null_handling) {
  ck_assert_int_eq(synchro_error_code(NULL), 0);
  ck_assert_str_eq(synchro_error_message(NULL), "");
  ck_assert_str_eq(synchro_error_origin(NULL), "");
  ck_assert_ptr_null(synchro_error_details(NULL));
  ck_assert_ptr_null(synchro_error_cause(NULL));
  synchro_error_free(NULL);
}
END_TEST

START_TEST(test_error_long_message) {
  char big[2000];
  synchro_error_t *err = NULL;
  memset(big, 'x', sizeof(big) - 1);
  big[sizeof(big) - 1] = '\0';
  ck_assert_int_eq(synchro_error_new(&err, UV_EIO, "o", NULL, NULL, "%s!", big), 0);
  ck_assert_uint_eq(strlen(synchro_error_message(err)), sizeof(big));
  synchro_error_free(err);
}
END_TEST

/* ---- version --------------------------------------------------------------------- */

START_TEST(test_version) {
  char want[64];
  ck_assert_uint_eq(synchro_version(), SYNCHRO_VERSION_HEX);
  ck_assert_uint_eq((synchro_version() >> 16) & 0xff, SYNCHRO_VERSION_MAJOR);
  ck_assert_uint_eq((synchro_version() >> 8) & 0xff, SYNCHRO_VERSION_MINOR);
  ck_assert_uint_eq(synchro_version() & 0xff, SYNCHRO_VERSION_PATCH);
  snprintf(want, sizeof(want), "%d.%d.%d", SYNCHRO_VERSION_MAJOR, SYNCHRO_VERSION_MINOR,
           SYNCHRO_VERSION_PATCH);
  if (!SYNCHRO_VERSION_IS_RELEASE)
    snprintf(want + strlen(want), sizeof(want) - strlen(want), "-%s", SYNCHRO_VERSION_SUFFIX);
  ck_assert_str_eq(synchro_version_string(), want);
}
END_TEST

static Suite *errors_suite(void) {
  Suite *s = suite_create("errors");
  TCase *tc;

  tc = tcase_create("codes");
  tcase_set_timeout(tc, 5);
  tcase_add_test(tc, test_every_mapped_code_has_name_and_message);
  tcase_add_test(tc, test_synchro_codes_never_collide_with_libuv);
  tcase_add_test(tc, test_libuv_codes_pass_through);
  tcase_add_test(tc, test_zero_and_unknown_codes);
  tcase_add_test(tc, test_strerror_from_many_threads);
  suite_add_tcase(s, tc);

  tc = tcase_create("values");
  tcase_set_timeout(tc, 5);
  tcase_add_test(tc, test_a25_error_new_and_accessors);
  tcase_add_test(tc, test_error_defaults_for_null_fmt_and_origin);
  tcase_add_test(tc, test_a25_error_cause_chain);
  tcase_add_test(tc, test_error_new_invalid_releases_stolen_values);
  tcase_add_test(tc, test_error_null_handling);
  tcase_add_test(tc, test_error_long_message);
  suite_add_tcase(s, tc);

  tc = tcase_create("version");
  tcase_set_timeout(tc, 5);
  tcase_add_test(tc, test_version);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(errors_suite());
  int failed;
  srunner_run_all(sr, CK_ENV);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
