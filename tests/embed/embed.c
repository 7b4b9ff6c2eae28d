/* tests/embed/embed.c - a library that embeds its own synchronizer (A35).
 *
 * Built twice with different EMBED_PREFIX values into two shared objects, each with
 * its own copy of libsynchro.a linked in and hidden (-Wl,--exclude-libs,ALL), and
 * twice more against the shared libsynchro.so. check_embed loads all of them into one
 * process: the point is that neither copy, nor two users of one shared copy, notice
 * each other. Only the embed_* functions below are exported. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <uv.h>

#include "synchro.h"

#define EXPORT __attribute__((visibility("default")))
#define CAT2(a, b) a##b
#define CAT(a, b) CAT2(a, b)
#define API(name) CAT(CAT(EMBED_PREFIX, _), name)

/* The library's interface (check_embed finds it with dlsym). */
EXPORT const void *API(runtime_id)(void);
EXPORT int API(add)(int64_t a, int64_t b, int64_t *out);
EXPORT int API(add_futures)(int n, int64_t base);
EXPORT int API(aio_start)(uv_loop_t *loop, int n);
EXPORT long API(aio_ok)(void);
EXPORT void API(aio_end)(void);
EXPORT int API(shutdown)(void);

static synchro_t *g_sync;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static atomic_int g_shut;
static int g_new_rc;
static synchro_host_t *g_host;
static atomic_long g_aio_ok, g_aio_bad;

typedef struct {
  int64_t a, b;
} add_args_t;

static void add_impl(synchro_call_t *call) {
  const add_args_t *args = synchro_call_args(call);
  int64_t sum = args->a + args->b;
  synchro_call_return(call, &sum);
}

static const synchro_op_t op_add = {.name = "embed_add",
                                    .impl = add_impl,
                                    .args_size = sizeof(add_args_t),
                                    .result_size = sizeof(int64_t)};

/* Started lazily, like a real library that does not want an init function. */
static void start(void) {
  synchro_options_t opts;
  synchro_options_init(&opts);
  opts.name = "embed";
  g_new_rc = synchro_new(&g_sync, &opts);
}

static synchro_t *sync_get(void) {
  pthread_once(&g_once, start);
  return atomic_load(&g_shut) ? NULL : g_sync;
}

/* Which copy of the runtime this library runs: the address of one of its functions. */
EXPORT const void *API(runtime_id)(void) { return (const void *)&synchro_version; }

EXPORT int API(add)(int64_t a, int64_t b, int64_t *out) {
  add_args_t args = {a, b};
  synchro_t *s = sync_get();
  if (s == NULL)
    return g_new_rc != 0 ? g_new_rc : SYNCHRO_ESHUTDOWN;
  return synchro_call(s, &op_add, &args, SYNCHRO_TIMEOUT_DEFAULT, out, NULL);
}

/* Submits n futures, waits for all, checks every sum. */
EXPORT int API(add_futures)(int n, int64_t base) {
  synchro_future_t **fs = calloc((size_t)n, sizeof(*fs));
  synchro_t *s = sync_get();
  int i, rc = 0;
  if (fs == NULL)
    return SYNCHRO_ENOMEM;
  for (i = 0; i < n && rc == 0 && s != NULL; i++) {
    add_args_t args = {base, i};
    rc = synchro_submit(s, &op_add, &args, SYNCHRO_TIMEOUT_DEFAULT, &fs[i]);
  }
  if (s == NULL)
    rc = SYNCHRO_ESHUTDOWN;
  if (rc == 0)
    rc = synchro_future_wait_all(fs, (size_t)n, SYNCHRO_TIMEOUT_INFINITE);
  for (i = 0; i < n; i++) {
    int64_t sum = -1;
    if (rc == 0 && (synchro_future_result(fs[i], &sum) != 0 || sum != base + i))
      rc = SYNCHRO_EINVAL;
    synchro_future_free(fs[i]);
  }
  free(fs);
  return rc;
}

static void aio_cb(synchro_future_t *f, int status, void *data) {
  int64_t sum = -1, want = (int64_t)(intptr_t)data;
  if (status == 0 && synchro_future_result(f, &sum) == 0 && sum == want)
    atomic_fetch_add(&g_aio_ok, 1);
  else
    atomic_fetch_add(&g_aio_bad, 1);
}

/* Starts n calls whose completions run on `loop` (the caller's thread runs it). */
EXPORT int API(aio_start)(uv_loop_t *loop, int n) {
  synchro_t *s = sync_get();
  int i, rc;
  if (s == NULL)
    return SYNCHRO_ESHUTDOWN;
  if ((rc = synchro_host_new_uv(&g_host, loop)) != 0)
    return rc;
  for (i = 0; i < n; i++) {
    add_args_t args = {i, i};
    synchro_future_t *f = NULL;
    if ((rc = synchro_submit(s, &op_add, &args, SYNCHRO_TIMEOUT_DEFAULT, &f)) != 0 ||
        (rc = synchro_future_then(f, g_host, aio_cb, (void *)(intptr_t)(2 * i))) != 0)
      return rc;
  }
  return 0;
}

EXPORT long API(aio_ok)(void) { return atomic_load(&g_aio_ok) - 100000 * atomic_load(&g_aio_bad); }

EXPORT void API(aio_end)(void) {
  synchro_host_free(g_host);
  g_host = NULL;
}

EXPORT int API(shutdown)(void) {
  int rc;
  pthread_once(&g_once, start);
  atomic_store(&g_shut, 1);
  rc = synchro_close(g_sync, 1000);
  synchro_free(g_sync);
  g_sync = NULL;
  return rc;
}
