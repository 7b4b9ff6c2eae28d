/* tests/check_stress.c - the stress program's mixed load and jittered races
 * (tests/stress/mix.c), scaled down so that they run in every `make check` and cannot
 * rot. The full sizes: `make stress` (16 x 1,000,000 calls) and `make race` (100,000
 * iterations); `make soak` for RSS and fd growth over time. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>

#include "stress/mix.h"
#include "support/testops.h"

/* 4 callers x 40,000 mixed calls (scaled): every kind's outcome is one of the expected
 * ones, processed == submitted per kind, the stats balance and match the outcomes seen,
 * every upper result and argument is released exactly once. */
START_TEST(test_mixed_load_scaled) {
  mix_opts_t o = {4, test_scaled(40000), 0, NULL};
  mix_report_t r;
  int rc = mix_run(&o, &r), k;
  if (rc != 0)
    mix_print(stderr, &r);
  ck_assert_msg(rc == 0, "%s", r.first_error);
  for (k = 0; k < MIX_KINDS; k++)
    ck_assert_uint_eq(r.processed[k], r.submitted[k]);
  ck_assert_uint_eq(r.stats.in_flight, 0);
}
END_TEST

/* The same on a synchronizer that outlives the run (the soak's shape): the balance is
 * checked on the counters' growth over the run. */
START_TEST(test_mixed_load_shared_synchronizer) {
  synchro_t *s = NULL;
  mix_opts_t o = {2, test_scaled(5000), 0, NULL};
  mix_report_t r;
  int round;
  ck_assert_int_eq(synchro_new(&s, NULL), 0);
  o.s = s;
  for (round = 0; round < 2; round++) {
    int rc = mix_run(&o, &r);
    if (rc != 0)
      mix_print(stderr, &r);
    ck_assert_msg(rc == 0, "round %d: %s", round, r.first_error);
  }
  ck_assert_int_eq(synchro_close(s, 5000), 0);
  synchro_free(s);
}
END_TEST

/* 20,000 iterations (scaled) of the seam races with random jitter at every seam: each
 * iteration has exactly one expected outcome, nothing leaks or is released twice. */
START_TEST(test_races_with_jitter_scaled) {
  race_report_t r;
  int rc = race_run(test_scaled(20000), 0, &r);
  if (rc != 0)
    race_print(stderr, &r);
  ck_assert_msg(rc == 0, "%s", r.first_error);
  ck_assert_uint_gt(r.jitters, 0);
}
END_TEST

static Suite *stress_suite(void) {
  Suite *s = suite_create("stress");
  TCase *tc = tcase_create("mix");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_mixed_load_scaled);
  tcase_add_test(tc, test_mixed_load_shared_synchronizer);
  suite_add_tcase(s, tc);
  tc = tcase_create("race");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_races_with_jitter_scaled);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(stress_suite());
  int failed;
  srunner_run_all(sr, CK_ENV);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
