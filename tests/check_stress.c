/* tests/check_stress.c - the stress program's mixed load and jittered races
 * (tests/stress/mix.c), scaled down so that they run in every `make check` and cannot
 * rot. The full sizes: `make stress` (16 x 1,000,000 calls) and `make race` (100,000
 * iterations); `make soak` for RSS and fd growth over time. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>

#include <pthread.h>
#include <stdatomic.h>

#include "internal.h" /* the size of a call record's allocation */
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

/* ---- the record pool across generations of threads ------------------------------------ */

#define RECORD_ALLOC (sizeof(synchro_call_t) + SYNCHRO__CACHE_LINE) /* lib/pool.c */
static atomic_long record_allocs;

static void *count_malloc(size_t n) {
  if (n == RECORD_ALLOC)
    record_allocs++;
  return malloc(n);
}

static void *caller(void *p) {
  synchro_t *s = p;
  test_add_args_t args = {1, 2};
  int64_t sum;
  long i, n = test_scaled(3000) + 300;
  for (i = 0; i < n; i++)
    if (synchro_call(s, &test_op_add, &args, SYNCHRO_TIMEOUT_DEFAULT, &sum, NULL) != 0 || sum != 3)
      return p;
  return NULL;
}

/* Soak finding: generations of threads (a synchronizer and two callers each, then gone)
 * must reuse the pooled records of the generations before. A thread that took the whole
 * free stack kept it while the others allocated anew, so the pool grew by about a
 * hundred records with every generation (RSS +50 kB/s in `make soak`). */
START_TEST(test_pool_does_not_grow_across_thread_generations) {
  long gen, warm = 0;
  ck_assert_int_eq(synchro_replace_allocator(count_malloc, realloc, calloc, free), 0);
  for (gen = 0; gen < 60; gen++) {
    synchro_t *s = NULL;
    pthread_t t[2];
    void *bad[2];
    int i;
    ck_assert_int_eq(synchro_new(&s, NULL), 0);
    for (i = 0; i < 2; i++)
      ck_assert_int_eq(pthread_create(&t[i], NULL, caller, s), 0);
    for (i = 0; i < 2; i++) {
      pthread_join(t[i], &bad[i]);
      ck_assert_ptr_null(bad[i]);
    }
    ck_assert_int_eq(synchro_close(s, 1000), 0);
    synchro_free(s);
    if (gen == 29)
      warm = record_allocs;
  }
  /* after 30 warm-up generations, 30 more may add some records (0-330 measured; a
   * preempted thread can make another allocate), not thousands (2,700-3,600 before) */
  ck_assert_msg(record_allocs - warm <= 1024, "records allocated: %ld after warm-up, %ld since",
                warm, (long)record_allocs - warm);
}
END_TEST

static Suite *stress_suite(void) {
  Suite *s = suite_create("stress");
  TCase *tc = tcase_create("mix");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_mixed_load_scaled);
  tcase_add_test(tc, test_mixed_load_shared_synchronizer);
  suite_add_tcase(s, tc);
  tc = tcase_create("pool");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_pool_does_not_grow_across_thread_generations);
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
