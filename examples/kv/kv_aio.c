/* examples/kv/kv_aio.c - the kv client from this thread's own libuv loop (_aio).
 *
 *   kv_aio [-h HOST] [-p PORT]
 *
 * Every call is a kv_client_*_aio(): it returns at once, the Redis I/O runs on the
 * synchronizer's loop thread, and the callback runs here, inside uv_run() on the main
 * thread. Each callback starts the next step: open, SET, GET, GET of a missing key,
 * three INCRs in flight at once, MGET, an INCR that the server refuses, a SCAN stream
 * consumed with _next_aio, DEL, close. A 10 ms timer on the same loop keeps ticking the
 * whole time: nothing here blocks. Exits 1 if a step did not give what it should. */
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "kv.h"

typedef struct app_s {
  uv_loop_t loop;
  synchro_host_t *host;
  kv_client_t *client;
  pthread_t main_thread;
  uv_timer_t ticker;
  int ticks;
  int step;
  int pending; /* INCRs in flight */
  int64_t incr_max;
  int scanned;
  int failures;
  uint64_t start;
} app_t;

static void next_step(app_t *app);

static void check(app_t *app, int ok, const char *what) {
  if (!pthread_equal(pthread_self(), app->main_thread)) {
    printf("  FAILED: a callback ran off the main thread\n");
    app->failures++;
  }
  if (!ok) {
    printf("  FAILED: %s\n", what);
    app->failures++;
  }
}

static double ms_since(const app_t *app) { return (double)(uv_hrtime() - app->start) / 1e6; }

static void on_status(int status, const synchro_error_t *err, void *data) {
  static const char *const names[] = {"open", "SET kv:aio:greeting"};
  app_t *app = data;
  printf("  [%6.1f ms] %s: %s%s%s\n", ms_since(app), app->step < 2 ? names[app->step] : "close",
         status == 0 ? "ok" : synchro_err_name(status), status == 0 ? "" : ": ",
         status == 0 ? "" : synchro_error_message(err));
  check(app, status == 0, "open/set/close succeed");
  if (status != 0 && app->step == 0) { /* could not open: stop */
    app->step = 100;
    uv_timer_stop(&app->ticker);
    uv_close((uv_handle_t *)&app->ticker, NULL);
    return;
  }
  next_step(app);
}

static void on_get(int status, const char *result, const synchro_error_t *err, void *data) {
  app_t *app = data;
  (void)err;
  printf("  [%6.1f ms] GET -> %s%s%s\n", ms_since(app), status != 0 ? synchro_err_name(status) : "",
         result != NULL ? result : "", status == 0 && result == NULL ? "(nil)" : "");
  if (app->step == 2)
    check(app, status == 0 && result != NULL && strcmp(result, "hello from the host loop") == 0,
          "GET returns what SET stored");
  else
    check(app, status == 0 && result == NULL, "a missing key is NULL, not an error");
  next_step(app);
}

static void on_incr(int status, int64_t result, const synchro_error_t *err, void *data) {
  app_t *app = data;
  if (app->step == 6) { /* the refused one */
    json_t *details = synchro_error_details(err);
    char *text = details != NULL ? json_dumps(details, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    printf("  [%6.1f ms] INCR kv:aio:greeting -> %s: %s, details %s\n", ms_since(app),
           status == KV_ESERVER ? "KV_ESERVER" : synchro_err_name(status),
           synchro_error_message(err), text != NULL ? text : "null");
    free(text);
    check(app, status == KV_ESERVER, "INCR on a string fails with KV_ESERVER");
    next_step(app);
    return;
  }
  printf("  [%6.1f ms] INCR kv:aio:counter -> %" PRId64 "\n", ms_since(app), result);
  check(app, status == 0, "INCR succeeds");
  if (result > app->incr_max)
    app->incr_max = result;
  if (--app->pending == 0) {
    check(app, app->incr_max == 3, "three INCRs end at 3");
    next_step(app);
  }
}

static void on_mget(int status, kv_string_array_t result, const synchro_error_t *err, void *data) {
  app_t *app = data;
  (void)err;
  printf("  [%6.1f ms] MGET -> [", ms_since(app));
  for (size_t i = 0; i < result.count; i++)
    printf("%s%s", i ? ", " : "", result.items[i] != NULL ? result.items[i] : "(nil)");
  printf("]\n");
  check(app,
        status == 0 && result.count == 3 && result.items[2] == NULL && result.items[1] != NULL &&
            strcmp(result.items[1], "3") == 0,
        "MGET: value, value, (nil)");
  next_step(app);
}

static void on_key(kv_client_scan_stream_t *st, int status, const char *item,
                   const synchro_error_t *err, void *data) {
  app_t *app = data;
  (void)err;
  if (status == 0) {
    printf("  [%6.1f ms] SCAN kv:aio:* -> %s\n", ms_since(app), item);
    app->scanned++;
    if (kv_client_scan_next_aio(st, app->host, on_key, app) == 0)
      return;
    status = SYNCHRO_EINVAL;
  }
  printf("  [%6.1f ms] SCAN ended: %s after %d keys\n", ms_since(app), synchro_err_name(status),
         app->scanned);
  check(app, status == SYNCHRO_EEND && app->scanned == 2, "SCAN yields the two keys, then ends");
  kv_client_scan_close(st);
  next_step(app);
}

static void on_del(int status, int64_t result, const synchro_error_t *err, void *data) {
  app_t *app = data;
  (void)err;
  printf("  [%6.1f ms] DEL -> %" PRId64 "\n", ms_since(app), result);
  check(app, status == 0 && result == 2, "DEL removes the two keys");
  next_step(app);
}

static void start_failed(app_t *app, int rc) {
  printf("  step %d could not start: %s\n", app->step, synchro_strerror(rc));
  app->failures++;
  app->step = 99;
  next_step(app);
}

static void next_step(app_t *app) {
  static const char *const keys[] = {"kv:aio:greeting", "kv:aio:counter", "kv:aio:missing"};
  kv_client_scan_stream_t *st = NULL;
  int rc = 0;

  switch (++app->step) {
  case 1:
    rc = kv_client_set_aio(app->client, keys[0], "hello from the host loop", app->host, on_status,
                           app);
    break;
  case 2: rc = kv_client_get_aio(app->client, keys[0], app->host, on_get, app); break;
  case 3: rc = kv_client_get_aio(app->client, keys[2], app->host, on_get, app); break;
  case 4: /* three at once: pipelined on one connection */
    app->pending = 3;
    for (int i = 0; i < 3 && rc == 0; i++)
      rc = kv_client_incr_aio(app->client, keys[1], app->host, on_incr, app);
    break;
  case 5: rc = kv_client_mget_aio(app->client, keys, 3, app->host, on_mget, app); break;
  case 6: rc = kv_client_incr_aio(app->client, keys[0], app->host, on_incr, app); break;
  case 7:
    if ((rc = kv_client_scan_open(app->client, "kv:aio:*", &st)) == 0 &&
        (rc = kv_client_scan_next_aio(st, app->host, on_key, app)) != 0)
      kv_client_scan_close(st);
    break;
  case 8: rc = kv_client_del_aio(app->client, keys, 3, app->host, on_del, app); break;
  case 9: rc = kv_client_close_aio(app->client, app->host, on_status, app); break;
  default: /* done: stop the ticker, uv_run returns */
    printf("  [%6.1f ms] done; the main loop's 10 ms timer ticked %d time(s) meanwhile\n",
           ms_since(app), app->ticks);
    uv_timer_stop(&app->ticker);
    uv_close((uv_handle_t *)&app->ticker, NULL);
    return;
  }
  if (rc != 0)
    start_failed(app, rc);
}

static void on_tick(uv_timer_t *t) {
  app_t *app = t->data;
  app->ticks++;
}

int main(int argc, char **argv) {
  static const struct option longopts[] = {{"host", required_argument, NULL, 'h'},
                                           {"port", required_argument, NULL, 'p'},
                                           {"help", no_argument, NULL, 'H'},
                                           {NULL, 0, NULL, 0}};
  const char *host = "127.0.0.1";
  long port = 6379;
  synchro_t *sync = NULL;
  synchro_error_t *err = NULL;
  app_t app;
  int opt, rc;

  while ((opt = getopt_long(argc, argv, "h:p:", longopts, NULL)) != -1) {
    switch (opt) {
    case 'h': host = optarg; break;
    case 'p': port = strtol(optarg, NULL, 10); break;
    case 'H': printf("usage: kv_aio [-h HOST] [-p PORT]\n"); return 0;
    default: fprintf(stderr, "usage: kv_aio [-h HOST] [-p PORT]\n"); return 2;
    }
  }
  setvbuf(stdout, NULL, _IOLBF, 0);
  memset(&app, 0, sizeof(app));
  app.main_thread = pthread_self();
  if ((rc = synchro_new(&sync, NULL)) != 0 || (rc = kv_use_synchronizer(sync)) != 0 ||
      (rc = uv_loop_init(&app.loop)) != 0 ||
      (rc = synchro_host_new_uv(&app.host, &app.loop)) != 0) {
    fprintf(stderr, "kv_aio: setup: %s\n", synchro_strerror(rc));
    return 1;
  }
  if ((rc = kv_client_new(host, port, 2000, 2, &app.client, &err)) != 0) {
    fprintf(stderr, "kv_aio: %s\n", synchro_error_message(err));
    synchro_error_free(err);
    return 1;
  }
  uv_timer_init(&app.loop, &app.ticker);
  app.ticker.data = &app;
  uv_timer_start(&app.ticker, on_tick, 10, 10);
  app.start = uv_hrtime();
  printf("kv_aio: %s:%ld, callbacks on the main thread's libuv loop\n", host, port);
  if ((rc = kv_client_open_aio(app.client, app.host, on_status, &app)) != 0) {
    fprintf(stderr, "kv_aio: open: %s\n", synchro_strerror(rc));
    return 1;
  }
  uv_run(&app.loop, UV_RUN_DEFAULT); /* returns when the last step closed the ticker */

  kv_client_free(app.client);
  synchro_host_free(app.host);
  uv_run(&app.loop, UV_RUN_NOWAIT);
  uv_loop_close(&app.loop);
  synchro_close(sync, 1000);
  synchro_free(sync);
  if (app.failures != 0) {
    printf("kv_aio: %d check(s) FAILED\n", app.failures);
    return 1;
  }
  printf("kv_aio: all checks passed\n");
  return 0;
}
