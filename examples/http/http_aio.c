/* examples/http/http_aio.c - the http module from the caller's own libuv loop (_aio).
 *
 *   http_aio BASE_URL
 *
 * main() runs a libuv loop of its own with a host (synchro_host_new_uv()) and starts, all
 * at once: GET /json, POST /echo, GET /bytes?n=1000, GET /404 (which must fail with
 * HTTP_ENOT_FOUND) and GET /slow?ms=300, each with http_client_*_aio(). The callbacks run on this thread,
 * inside this loop; a 20 ms timer on the same loop keeps ticking meanwhile (the
 * requests run on the synchronizer's loop thread, not here). When all five answered it
 * closes the client with http_client_close_aio(). Exits 1 if any result is wrong. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "http.h"

typedef struct app_s {
  uv_loop_t loop;
  uv_timer_t ticker;
  synchro_host_t *host;
  http_client_t *client;
  int pending, failures, ticks;
  uv_thread_t main_thread;
} app_t;

static int streq(const char *a, const char *b) { return a != NULL && strcmp(a, b) == 0; }

static void check(app_t *app, int ok, const char *what) {
  printf("  %s %s\n", ok ? "ok  " : "FAIL", what);
  if (!ok)
    app->failures++;
}

static void on_closed(int status, const synchro_error_t *err, void *data) {
  app_t *app = data;
  (void)err;
  check(app, status == 0, "client closed (http_client_close_aio)");
  uv_timer_stop(&app->ticker);
}

static void one_done(app_t *app) {
  uv_thread_t self = uv_thread_self();
  if (!uv_thread_equal(&self, &app->main_thread))
    check(app, 0, "callback on the main thread");
  if (--app->pending == 0 && http_client_close_aio(app->client, app->host, on_closed, app) != 0)
    check(app, 0, "http_client_close_aio");
}

static void on_json(int status, json_t *result, const synchro_error_t *err, void *data) {
  app_t *app = data;
  char *text = status == 0 ? json_dumps(result, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
  printf("GET /json -> %s\n", text != NULL ? text : synchro_error_message(err));
  check(app, status == 0 && streq(json_string_value(json_object_get(result, "hello")), "world"),
        "GET /json answered {\"hello\": \"world\", ...}");
  free(text);
  one_done(app);
}

static void on_echo(int status, json_t *result, const synchro_error_t *err, void *data) {
  app_t *app = data;
  json_t *echo = json_object_get(result, "echo");
  printf("POST /echo -> %s\n", status == 0 ? "answered" : synchro_error_message(err));
  check(app, status == 0 && json_integer_value(json_object_get(echo, "answer")) == 42,
        "POST /echo sent the body back");
  check(app,
        status == 0 &&
            streq(json_string_value(json_object_get(result, "authorization")), "Bearer demo-token"),
        "the bearer token was sent");
  one_done(app);
}

static void on_bytes(int status, http_bytes_t result, const synchro_error_t *err, void *data) {
  app_t *app = data;
  const unsigned char *b = result.data;
  int ok = status == 0 && result.len == 1000;
  size_t i;
  for (i = 0; ok && i < result.len; i++)
    ok = b[i] == (i & 0xff);
  printf("GET /bytes?n=1000 -> %s %zu bytes\n", status == 0 ? "got" : synchro_error_message(err),
         result.len);
  check(app, ok, "GET /bytes gave the 1000 expected bytes");
  one_done(app);
}

static void on_missing(int status, json_t *result, const synchro_error_t *err, void *data) {
  app_t *app = data;
  (void)result;
  printf("GET /404 -> %s (%s)\n", synchro_error_message(err), synchro_error_origin(err));
  check(app, status == HTTP_ENOT_FOUND, "GET /404 failed with HTTP_ENOT_FOUND");
  one_done(app);
}

static void on_slow(int status, json_t *result, const synchro_error_t *err, void *data) {
  app_t *app = data;
  printf("GET /slow?ms=300 -> %s (the 20 ms timer ticked %d times so far)\n",
         status == 0 ? "answered" : synchro_error_message(err), app->ticks);
  check(app, status == 0 && json_integer_value(json_object_get(result, "slept_ms")) == 300,
        "GET /slow answered after 300 ms");
  check(app, app->ticks >= 5, "this thread's loop kept running meanwhile");
  one_done(app);
}

static void on_tick(uv_timer_t *t) { ((app_t *)t->data)->ticks++; }

int main(int argc, char **argv) {
  app_t app;
  synchro_t *sync = NULL;
  synchro_error_t *err = NULL;
  json_t *body;
  uint64_t t0;
  int rc;

  if (argc != 2) {
    fprintf(stderr, "usage: http_aio BASE_URL\n");
    return 2;
  }
  memset(&app, 0, sizeof(app));
  app.main_thread = uv_thread_self();
  if ((rc = synchro_new(&sync, NULL)) != 0 || (rc = http_use_synchronizer(sync)) != 0 ||
      (rc = http_client_new(argv[1], 10000, 2, "demo-token", &app.client, &err)) != 0) {
    fprintf(stderr, "http_aio: setup failed: %s\n",
            err != NULL ? synchro_error_message(err) : synchro_strerror(rc));
    synchro_error_free(err);
    synchro_free(sync);
    return 1;
  }
  uv_loop_init(&app.loop);
  synchro_host_new_uv(&app.host, &app.loop);
  uv_timer_init(&app.loop, &app.ticker);
  app.ticker.data = &app;
  uv_timer_start(&app.ticker, on_tick, 20, 20);

  /* Not opened: the first request sets the client up. All five start now. */
  body = json_pack("{si ss}", "answer", 42, "from", "http_aio");
  app.pending = 5;
  t0 = uv_hrtime();
  if (http_client_get_json_aio(app.client, "/json", app.host, on_json, &app) != 0 ||
      http_client_post_json_aio(app.client, "/echo", body, app.host, on_echo, &app) != 0 ||
      http_client_get_aio(app.client, "/bytes?n=1000", app.host, on_bytes, &app) != 0 ||
      http_client_get_json_aio(app.client, "/404", app.host, on_missing, &app) != 0 ||
      http_client_get_json_aio(app.client, "/slow?key=aio&ms=300", app.host, on_slow, &app) != 0) {
    fprintf(stderr, "http_aio: a request did not start\n");
    return 1;
  }
  json_decref(body); /* the call has its own copy */
  printf("5 requests started; running this thread's loop\n");
  uv_run(&app.loop, UV_RUN_DEFAULT);
  printf("uv_run returned after %.0f ms; the loop's 20 ms timer ticked %d times meanwhile\n",
         (double)(uv_hrtime() - t0) / 1e6, app.ticks);

  http_client_free(app.client);
  synchro_host_free(app.host);
  uv_close((uv_handle_t *)&app.ticker, NULL);
  uv_run(&app.loop, UV_RUN_DEFAULT);
  uv_loop_close(&app.loop);
  synchro_close(sync, 1000);
  synchro_free(sync);
  if (app.failures != 0) {
    printf("http_aio: %d check(s) FAILED\n", app.failures);
    return 1;
  }
  printf("http_aio: all checks passed\n");
  return 0;
}
