/* tests/check_alloc.c - the allocator hook, and out-of-memory at every allocation.
 *
 * A counting allocator fails the Nth allocation. Every test installs it in its own
 * process before any other synchro call (Check forks each test; the sweep forks once
 * more per N so each run starts with an empty record pool). */
#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <jansson.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "support/testops.h"
#include "synchro.h"
#include "testing.h"

/* ---- the counting allocator ------------------------------------------------------
 * Each block carries a header with its size, so frees are counted by size class. Call
 * records come from pool slabs that are never freed, counted apart: the test build
 * tells a slab's size (synchro_test_pool_slab), since the record layout is private. */
#define HDR 16

static pthread_t main_thread;
static atomic_int loop_only; /* count (and fail) only allocations off the main thread */
static atomic_long n_allocs; /* allocations attempted */
static atomic_long fail_at;  /* 1-based index of the allocation to fail; 0 = never */
static atomic_long n_failed; /* failures injected */
static atomic_long live;     /* live blocks, all sizes */
static atomic_long live_records;

static int should_fail(void) {
  long n;
  if (loop_only && pthread_equal(pthread_self(), main_thread))
    return 0;
  n = ++n_allocs;
  if (fail_at != 0 && n == fail_at) {
    n_failed++;
    return 1;
  }
  return 0;
}

static void *track(unsigned char *p, size_t size) {
  if (p == NULL)
    return NULL;
  memcpy(p, &size, sizeof(size));
  live++;
  if (synchro_test_pool_slab(size))
    live_records++;
  return p + HDR;
}

static size_t untrack(void *ptr) {
  size_t size;
  memcpy(&size, (unsigned char *)ptr - HDR, sizeof(size));
  live--;
  if (synchro_test_pool_slab(size))
    live_records--;
  return size;
}

static void *t_malloc(size_t size) {
  if (should_fail())
    return NULL;
  return track(malloc(size + HDR), size);
}

static void *t_calloc(size_t count, size_t size) {
  if (should_fail())
    return NULL;
  return track(calloc(1, count * size + HDR), count * size);
}

static void t_free(void *ptr) {
  if (ptr == NULL)
    return;
  untrack(ptr);
  free((unsigned char *)ptr - HDR);
}

static void *t_realloc(void *ptr, size_t size) {
  unsigned char *p;
  size_t old;
  if (ptr == NULL)
    return t_malloc(size);
  if (should_fail())
    return NULL;
  old = untrack(ptr);
  p = realloc((unsigned char *)ptr - HDR, size + HDR);
  if (p == NULL) { /* the old block is still there */
    track((unsigned char *)ptr - HDR, old);
    return NULL;
  }
  return track(p, size);
}

static void install(long fail_index) {
  main_thread = pthread_self();
  n_allocs = 0;
  n_failed = 0;
  fail_at = fail_index;
  ck_assert_int_eq(synchro_replace_allocator(t_malloc, t_realloc, t_calloc, t_free), 0);
}

/* ---- the scenario -----------------------------------------------------------------
 * create -> submit (upper_mem: its args copy and result allocate) -> blocking call (with
 * a deadline: the deadline heap allocates) -> fail op (its error allocates) -> close ->
 * free. Returns 0 when every step behaved, else a step number for the report. */
static int scenario(void) {
  synchro_t *s = NULL;
  synchro_future_t *f = NULL;
  test_string_args_t sargs = {(char *)"make me loud"};
  test_add_args_t aargs = {20, 22};
  test_fail_args_t fargs = {UV_EIO};
  synchro_error_t *err = NULL;
  int64_t sum = 0;
  int rc, out;

  rc = synchro_new(&s, NULL);
  if (rc == SYNCHRO_ENOMEM)
    return s == NULL ? 0 : 1;
  if (rc != 0)
    return 2;

  rc = synchro_submit(s, &test_op_upper_mem, &sargs, SYNCHRO_TIMEOUT_DEFAULT, &f);
  if (rc != 0 && rc != SYNCHRO_ENOMEM)
    return 3;
  if (rc == SYNCHRO_ENOMEM && f != NULL)
    return 4;

  rc = synchro_call(s, &test_op_add, &aargs, 10000, &sum, NULL);
  if (rc == 0 && sum != 42)
    return 5;
  if (rc != 0 && rc != SYNCHRO_ENOMEM)
    return 6;

  rc = synchro_call(s, &test_op_fail, &fargs, SYNCHRO_TIMEOUT_DEFAULT, &sum, &err);
  if (rc != UV_EIO && rc != SYNCHRO_ENOMEM) /* ENOMEM only from the submission */
    return 7;
  if (rc == UV_EIO && err != NULL &&
      (synchro_error_code(err) != UV_EIO || strcmp(synchro_error_origin(err), "fail") != 0))
    return 8;
  if (rc == UV_EIO && err == NULL && n_failed == 0)
    return 9; /* an error may go missing only when its allocation failed */
  synchro_error_free(err);

  if (f != NULL) {
    char *text = NULL;
    out = synchro_future_wait(f, 10000);
    if (out == 0) {
      if (synchro_future_result(f, &text) != 0 || strcmp(text, "MAKE ME LOUD") != 0)
        return 10;
      synchro_mem_free(text);
    } else if (out != SYNCHRO_ENOMEM) { /* the impl's own allocation failed */
      return 11;
    }
    synchro_future_free(f);
  }

  if (synchro_close(s, 1000) != 0)
    return 12;
  synchro_free(s);
  return 0;
}

/* Runs the scenario in a fresh child with allocation `n` failing. The child's exit code:
 * 0 = passed and the failure was never reached, 1 = passed with the failure injected,
 * else 100 + step, or 50/51 for leaks. */
static int sweep_child(long n) {
  int rc;
  install(n);
  testops_reset();
  rc = scenario();
  if (rc != 0)
    return 100 + rc;
  if (live - live_records != 0) {
    fprintf(stderr, "N=%ld: %ld non-record blocks still live\n", n, live - live_records);
    return 50;
  }
  if (live_records > 3) { /* at most one pooled record per call */
    fprintf(stderr, "N=%ld: %ld records live\n", n, (long)live_records);
    return 51;
  }
  return n_failed == 0 ? 0 : 1;
}

START_TEST(test_alloc_failure_sweep) {
  long n;
  int finished = 0;
  for (n = 1; n < 300 && !finished; n++) {
    pid_t pid;
    int status;
    fflush(NULL);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0)
      _exit(sweep_child(n));
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status), "N=%ld: child crashed (status %#x)", n, status);
    ck_assert_msg(WEXITSTATUS(status) <= 1, "N=%ld: child exit %d", n, WEXITSTATUS(status));
    finished = WEXITSTATUS(status) == 0;
  }
  ck_assert_msg(finished, "the scenario never ran without hitting the injected failure");
  ck_assert_int_gt(n, 5); /* the scenario allocates a handful of times */
}
END_TEST

START_TEST(test_alloc_scenario_live_count_stable) {
  long after1, after2, rec1;
  install(0);
  ck_assert_int_eq(scenario(), 0);
  after1 = live;
  rec1 = live_records;
  ck_assert_int_eq(after1 - rec1, 0); /* only pooled records remain */
  ck_assert_int_le(rec1, 3);
  ck_assert_int_eq(scenario(), 0);
  after2 = live;
  /* Nothing but pooled records stays, and they stay bounded by the calls that were in
   * flight at once: which thread's cache a record lands in depends on timing, so a
   * second run may add one, never more than the bound. */
  ck_assert_int_eq(after2 - live_records, 0);
  ck_assert_int_le(live_records, 3);
  ck_assert_int_ge(after2, after1);
  ck_assert_int_eq(n_failed, 0);
}
END_TEST

/* When the implementation's error cannot be allocated, the caller still gets the code
 * (status and wait), and synchro_future_error() is NULL or carries that same code, as
 * future.h documents. */
START_TEST(test_alloc_error_code_survives_error_alloc_failure) {
  synchro_t *s = NULL;
  synchro_future_t *f = NULL;
  test_fail_args_t fargs = {UV_EIO};
  long base;
  int k, hit = 0;
  install(0);
  ck_assert_int_eq(synchro_new(&s, NULL), 0);
  /* warm up: the record pool and the loop */
  ck_assert_int_eq(synchro_submit(s, &test_op_fail, &fargs, SYNCHRO_TIMEOUT_DEFAULT, &f), 0);
  ck_assert_int_eq(synchro_future_wait(f, 5000), UV_EIO);
  synchro_future_free(f);
  loop_only = 1; /* fail the implementation's allocations, not the submission's */
  for (k = 1; k <= 4; k++) {
    base = n_allocs;
    fail_at = base + k; /* the kth allocation of this call */
    ck_assert_int_eq(synchro_submit(s, &test_op_fail, &fargs, SYNCHRO_TIMEOUT_DEFAULT, &f), 0);
    ck_assert_int_eq(synchro_future_wait(f, 5000), UV_EIO); /* the code always arrives */
    if (n_failed > hit) {
      hit = (int)n_failed;
      ck_assert_int_eq(synchro_future_status(f), UV_EIO);
      if (synchro_future_error(f) != NULL)
        ck_assert_int_eq(synchro_error_code(synchro_future_error(f)), UV_EIO);
    }
    synchro_future_free(f);
    fail_at = 0;
  }
  ck_assert_int_gt(hit, 0);
  ck_assert_int_eq(synchro_close(s, 0), 0);
  synchro_free(s);
}
END_TEST

START_TEST(test_replace_allocator_rejects_null) {
  void *p;
  ck_assert_int_eq(synchro_replace_allocator(NULL, realloc, calloc, free), SYNCHRO_EINVAL);
  ck_assert_int_eq(synchro_replace_allocator(malloc, NULL, calloc, free), SYNCHRO_EINVAL);
  ck_assert_int_eq(synchro_replace_allocator(malloc, realloc, NULL, free), SYNCHRO_EINVAL);
  ck_assert_int_eq(synchro_replace_allocator(malloc, realloc, calloc, NULL), SYNCHRO_EINVAL);
  /* nothing changed: the default allocator is still libc's */
  p = synchro_mem_malloc(10);
  ck_assert_ptr_nonnull(p);
  free(p);
}
END_TEST

START_TEST(test_mem_functions_use_the_allocator) {
  char *s;
  void *p;
  install(0);
  s = synchro_mem_strdup("abc");
  ck_assert_str_eq(s, "abc");
  ck_assert_int_eq(live, 1);
  s = synchro_mem_realloc(s, 100);
  ck_assert_str_eq(s, "abc");
  ck_assert_int_eq(live, 1);
  p = synchro_mem_calloc(4, 8);
  ck_assert_int_eq(live, 2);
  ck_assert_ptr_null(synchro_mem_calloc(SIZE_MAX / 2, 4)); /* overflow */
  ck_assert_ptr_null(synchro_mem_strdup(NULL));
  synchro_mem_free(s);
  synchro_mem_free(p);
  ck_assert_int_eq(live, 0);
  errno = 1234;
  synchro_mem_free(NULL);
  ck_assert_int_eq(errno, 1234);
  fail_at = n_allocs + 1;
  ck_assert_ptr_null(synchro_mem_malloc(8));
}
END_TEST

START_TEST(test_error_new_enomem) {
  synchro_error_t *err = (synchro_error_t *)&err, *cause = NULL;
  int k;
  install(0);
  for (k = 1; k <= 3; k++) {
    ck_assert_int_eq(synchro_error_new(&cause, UV_ECONNRESET, "c", NULL, NULL, NULL), 0);
    fail_at = n_allocs + k;
    /* details and cause are released on failure (ASan proves it) */
    ck_assert_int_eq(
        synchro_error_new(&err, UV_EIO, "o", json_pack("{s:i}", "a", 1), cause, "msg %d", k),
        SYNCHRO_ENOMEM);
    ck_assert_ptr_null(err);
    fail_at = 0;
  }
  ck_assert_int_eq(live, 0);
}
END_TEST

START_TEST(test_cq_new_enomem) {
  synchro_cq_t *cq = (synchro_cq_t *)&cq;
  install(1);
  ck_assert_int_eq(synchro_cq_new(&cq), SYNCHRO_ENOMEM);
  ck_assert_ptr_null(cq);
  ck_assert_int_eq(live, 0);
}
END_TEST

static Suite *alloc_suite(void) {
  Suite *s = suite_create("alloc");
  TCase *tc;

  tc = tcase_create("hook");
  tcase_set_timeout(tc, 5);
  tcase_add_test(tc, test_replace_allocator_rejects_null);
  tcase_add_test(tc, test_mem_functions_use_the_allocator);
  suite_add_tcase(s, tc);

  tc = tcase_create("enomem");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_alloc_failure_sweep);
  tcase_add_test(tc, test_alloc_scenario_live_count_stable);
  tcase_add_test(tc, test_alloc_error_code_survives_error_alloc_failure);
  tcase_add_test(tc, test_error_new_enomem);
  tcase_add_test(tc, test_cq_new_enomem);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(alloc_suite());
  int failed;
  srunner_run_all(sr, CK_ENV);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
