/* tests/check_embed.c - A35: libraries that each embed a synchronizer coexist.
 *
 * Four builds of tests/embed/embed.c are loaded into this process with dlopen:
 * embed_a and embed_b each carry their own hidden copy of the runtime (libsynchro.a
 * linked in with --exclude-libs,ALL); shared_a and shared_b both use libsynchro.so.
 * All four are called at the same time through the blocking, future and aio flavors
 * (the aio completions of all four land on one host loop), then shut down one by one
 * while the others keep working. */
#include <check.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <uv.h>

#include "synchro.h"

#ifndef EMBED_DIR
#error "EMBED_DIR: the directory holding the embed libraries"
#endif

enum { NLIBS = 4 };
static const char *const lib_names[NLIBS] = {"embed_a", "embed_b", "shared_a", "shared_b"};

typedef struct {
  void *dl;
  const void *(*runtime_id)(void);
  int (*add)(int64_t, int64_t, int64_t *);
  int (*add_futures)(int, int64_t);
  int (*aio_start)(uv_loop_t *, int);
  long (*aio_ok)(void);
  void (*aio_end)(void);
  int (*shutdown)(void);
} embed_t;

static embed_t libs[NLIBS];

static void *sym(void *dl, const char *prefix, const char *name) {
  char full[128];
  void *p;
  snprintf(full, sizeof(full), "%s_%s", prefix, name);
  p = dlsym(dl, full);
  ck_assert_msg(p != NULL, "dlsym %s: %s", full, dlerror());
  return p;
}

/* Function pointers come back from dlsym as void *; POSIX guarantees the round trip. */
#define LOAD(e, prefix, field) *(void **)&(e)->field = sym((e)->dl, prefix, #field)

static void load_all(void) {
  int i;
  for (i = 0; i < NLIBS; i++) {
    char path[512];
    embed_t *e = &libs[i];
    snprintf(path, sizeof(path), "%s/lib%s.so", EMBED_DIR, lib_names[i]);
    e->dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    ck_assert_msg(e->dl != NULL, "dlopen %s: %s", path, dlerror());
    LOAD(e, lib_names[i], runtime_id);
    LOAD(e, lib_names[i], add);
    LOAD(e, lib_names[i], add_futures);
    LOAD(e, lib_names[i], aio_start);
    LOAD(e, lib_names[i], aio_ok);
    LOAD(e, lib_names[i], aio_end);
    LOAD(e, lib_names[i], shutdown);
  }
}

typedef struct {
  embed_t *e;
  int blocking; /* 1: blocking calls, 0: batches of futures */
  long n;
  int bad;
} worker_t;

static void *worker(void *arg) {
  worker_t *w = arg;
  long i;
  for (i = 0; i < w->n; i++) {
    if (w->blocking) {
      int64_t sum = 0;
      if (w->e->add(i, 1, &sum) != 0 || sum != i + 1)
        w->bad++;
    } else if (i % 100 == 0 && w->e->add_futures(100, i) != 0) {
      w->bad++;
    }
  }
  return NULL;
}

START_TEST(test_a35_embedded_copies_and_shared_users_coexist) {
  pthread_t th[2 * NLIBS];
  worker_t ws[2 * NLIBS];
  uv_loop_t loop;
  int i, aio_n = 1000;
  int64_t sum = 0;
  load_all();
  /* two private copies of the runtime, and one copy shared by the other two */
  ck_assert_ptr_ne(libs[0].runtime_id(), libs[1].runtime_id());
  ck_assert_ptr_ne(libs[0].runtime_id(), libs[2].runtime_id());
  ck_assert_ptr_eq(libs[2].runtime_id(), libs[3].runtime_id());
  ck_assert_int_eq(uv_loop_init(&loop), 0);
  for (i = 0; i < NLIBS; i++) /* aio into one host loop, run below on this thread */
    ck_assert_int_eq(libs[i].aio_start(&loop, aio_n), 0);
  for (i = 0; i < 2 * NLIBS; i++) {
    ws[i] = (worker_t){&libs[i / 2], i % 2, 20000, 0};
    ck_assert_int_eq(pthread_create(&th[i], NULL, worker, &ws[i]), 0);
  }
  ck_assert_int_eq(uv_run(&loop, UV_RUN_DEFAULT), 0); /* ends once every callback ran */
  for (i = 0; i < 2 * NLIBS; i++) {
    pthread_join(th[i], NULL);
    ck_assert_msg(ws[i].bad == 0, "%s worker %d: %d bad calls", lib_names[i / 2], i % 2, ws[i].bad);
  }
  for (i = 0; i < NLIBS; i++) {
    ck_assert_int_eq(libs[i].aio_ok(), aio_n);
    libs[i].aio_end();
  }
  ck_assert_int_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
  ck_assert_int_eq(uv_loop_close(&loop), 0);
  /* shut each down in turn: the others keep answering */
  for (i = 0; i < NLIBS; i++) {
    int j;
    ck_assert_int_eq(libs[i].shutdown(), 0);
    ck_assert_int_eq(libs[i].add(1, 2, &sum), SYNCHRO_ESHUTDOWN);
    for (j = i + 1; j < NLIBS; j++) {
      sum = 0;
      ck_assert_int_eq(libs[j].add(40, 2, &sum), 0);
      ck_assert_int_eq(sum, 42);
    }
  }
  /* The libraries stay loaded: a runtime's record pool is recycled, never returned to
   * malloc, so unloading a copy with dlclose would leak it (docs/reliability.md, A35). */
}
END_TEST

static Suite *embed_suite(void) {
  Suite *s = suite_create("embed");
  TCase *tc = tcase_create("coexist");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_a35_embedded_copies_and_shared_users_coexist);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(embed_suite());
  int failed;
  srunner_run_all(sr, CK_ENV);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? 0 : 1;
}
