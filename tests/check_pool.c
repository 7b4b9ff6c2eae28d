/* tests/check_pool.c - the record pools: chains of free blocks put back in address
 * order (lib/chain.c), and blocks that keep their neighbours across reuse. */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>

#include "internal.h"
#include "support/testops.h"
#include "synchro.h"

/* ---- synchro__chain_sort ---------------------------------------------------------- */

#define BLOCK 64
#define MAX_BLOCKS 1500
/* Blocks whose link sits at LINK, not at 0, as in a call record. */
#define LINK 16

static unsigned char slab[BLOCK * MAX_BLOCKS] __attribute__((aligned(64)));

static void **link_of(void *block) { return (void **)((unsigned char *)block + LINK); }

/* Links blocks order[0..n-1] into a list, in that order. */
static void *chain_of(unsigned *order, unsigned n) {
  void *list = NULL;
  unsigned i;
  for (i = n; i-- > 0;) {
    void *block = slab + (size_t)order[i] * BLOCK;
    *link_of(block) = list;
    list = block;
  }
  return list;
}

/* The sorted list holds each of the n blocks once, ascending. */
static void check_sorted(void *list, unsigned n) {
  unsigned i = 0;
  for (; list != NULL; list = *link_of(list), i++) {
    ck_assert_msg(i < n, "more blocks than went in");
    ck_assert_ptr_eq(list, slab + (size_t)i * BLOCK);
  }
  ck_assert_uint_eq(i, n);
}

static void shuffle(unsigned *order, unsigned n) {
  unsigned i;
  for (i = n; i > 1; i--) {
    unsigned j = (unsigned)(rand() % (int)i), t = order[i - 1];
    order[i - 1] = order[j];
    order[j] = t;
  }
}

/* Every shape a chain takes: random, ascending, descending, runs of either kind
 * (as a thread's LIFO frees leave them), and the small cases. */
START_TEST(test_chain_sort_every_shape) {
  static unsigned order[MAX_BLOCKS];
  unsigned n, i, shape;
  srand(7);
  for (shape = 0; shape < 6; shape++) {
    for (n = 0; n <= MAX_BLOCKS; n += n < 20 ? 1 : 97) {
      for (i = 0; i < n; i++)
        order[i] = i;
      if (shape == 0)
        shuffle(order, n);
      if (shape == 2) /* descending */
        for (i = 0; i < n; i++)
          order[i] = n - 1 - i;
      if (shape == 3 || shape == 4) { /* runs of 1..40, each reversed or not */
        unsigned at = 0;
        while (at < n) {
          unsigned len = 1 + (unsigned)(rand() % 40), k;
          if (len > n - at)
            len = n - at;
          if (shape == 3 || rand() % 2)
            for (k = 0; k < len / 2; k++) {
              unsigned t = order[at + k];
              order[at + k] = order[at + len - 1 - k];
              order[at + len - 1 - k] = t;
            }
          at += len;
        }
        if (shape == 4) /* and the runs themselves out of order */
          for (i = 0; i + 80 < n; i += 80) {
            unsigned k;
            for (k = 0; k < 40; k++) {
              unsigned t = order[i + k];
              order[i + k] = order[i + 40 + k];
              order[i + 40 + k] = t;
            }
          }
      }
      if (shape == 5 && n > 1) { /* sorted but for one block moved to the front */
        unsigned last = order[n - 1];
        for (i = n - 1; i > 0; i--)
          order[i] = order[i - 1];
        order[0] = last;
      }
      check_sorted(synchro__chain_sort(chain_of(order, n), LINK), n);
    }
  }
}
END_TEST

/* ---- reuse ------------------------------------------------------------------------- */

/* A thread's consecutive submissions get neighbouring records, also after other
 * threads gave back their caches in the order they freed them (what the loop's
 * prefetching relies on). */
static void *blocking_calls(void *arg) {
  synchro_t *s = arg;
  test_add_args_t args = {1, 2};
  int64_t sum;
  int i;
  for (i = 0; i < 2000; i++)
    if (synchro_call(s, &test_op_add, &args, SYNCHRO_TIMEOUT_DEFAULT, &sum, NULL) != 0)
      return (void *)1;
  return NULL;
}

START_TEST(test_consecutive_submissions_get_neighbours) {
  enum { N = 3000, THREADS = 4 };
  static synchro_future_t *fs[N];
  synchro_t *s = NULL;
  pthread_t th[THREADS];
  test_add_args_t args = {1, 2};
  long neighbours = 0;
  int i, round;
  ck_assert_int_eq(synchro_new(&s, NULL), 0);
  for (round = 0; round < 3; round++) {
    for (i = 0; i < THREADS; i++) /* threads that exit, leaving their caches behind */
      ck_assert_int_eq(pthread_create(&th[i], NULL, blocking_calls, s), 0);
    for (i = 0; i < THREADS; i++) {
      void *rc;
      ck_assert_int_eq(pthread_join(th[i], &rc), 0);
      ck_assert_ptr_null(rc);
    }
    for (i = 0; i < N; i++)
      ck_assert_int_eq(synchro_submit(s, &test_op_add, &args, SYNCHRO_TIMEOUT_DEFAULT, &fs[i]), 0);
    ck_assert_int_eq(synchro_future_wait_all(fs, N, 10000), 0);
    for (i = 1; i < N; i++) {
      intptr_t d = (intptr_t)fs[i] - (intptr_t)fs[i - 1];
      neighbours += d == (intptr_t)sizeof(synchro_call_t) || d == -(intptr_t)sizeof(synchro_call_t);
    }
    for (i = 0; i < N; i++)
      synchro_future_free(fs[i]);
  }
  /* slab and chain boundaries aside, nearly all */
  ck_assert_msg(neighbours > 3 * (N - 1) * 8 / 10, "%ld of %d consecutive pairs were neighbours",
                neighbours, 3 * (N - 1));
  ck_assert_int_eq(synchro_close(s, 2000), 0);
  synchro_free(s);
}
END_TEST

static Suite *pool_suite(void) {
  Suite *s = suite_create("pool");
  TCase *tc = tcase_create("chains");
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, test_chain_sort_every_shape);
  tcase_add_test(tc, test_consecutive_submissions_get_neighbours);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(pool_suite());
  int failed;
  srunner_run_all(sr, CK_ENV);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
