/* examples/host_loop/main.c - a libuv program that keeps serving its own loop while
 * synchro calls run elsewhere, and handles their completions on that loop (a host).
 *
 * The program's loop (the "host loop", on the main thread) ticks a heartbeat every
 * 50 ms. It issues calls of `slow_double`, an implementation that waits 200 ms on the
 * synchronizer's own loop (another thread) and returns 2*x. Completions come back as
 * callbacks on the host loop, between heartbeats: nothing blocks, nothing locks.
 * A first wave of 4 calls starts at once; when the wave is done a second one starts;
 * when that is done too the program closes everything and exits (about 0.5 s). */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <uv.h>

#include "synchro.h"

/* ---- the implementation: runs on the synchronizer's loop thread ------------------- */

typedef struct {
  int64_t x;
} double_args_t;

typedef struct {
  uv_timer_t timer;
  synchro_call_t *call;
  int64_t x;
} double_state_t;

static void free_state(uv_handle_t *handle) { free(handle->data); }

static void double_fired(uv_timer_t *timer) {
  double_state_t *st = timer->data;
  int64_t result = 2 * st->x;
  synchro_call_return(st->call, &result);
  uv_close((uv_handle_t *)timer, free_state);
}

static void double_cancel(synchro_call_t *call, int reason, void *data) {
  double_state_t *st = data;
  uv_close((uv_handle_t *)&st->timer, free_state);
  synchro_call_fail(call, reason, NULL, "slow_double stopped");
}

static void double_impl(synchro_call_t *call) {
  const double_args_t *args = synchro_call_args(call);
  double_state_t *st = malloc(sizeof(*st));
  if (st == NULL) {
    synchro_call_fail(call, SYNCHRO_ENOMEM, NULL, NULL);
    return;
  }
  st->call = call;
  st->x = args->x;
  uv_timer_init(synchro_call_loop(call), &st->timer); /* the synchronizer's loop */
  st->timer.data = st;
  uv_timer_start(&st->timer, double_fired, 200, 0);
  synchro_call_on_cancel(call, double_cancel, st);
}

static const synchro_op_t slow_double_op = {.name = "slow_double",
                                            .impl = double_impl,
                                            .args_size = sizeof(double_args_t),
                                            .result_size = sizeof(int64_t)};

/* ---- the program: everything below runs on the main thread ------------------------- */

#define WAVE 4
#define WAVES 2

typedef struct {
  synchro_t *sync;
  synchro_host_t *host;
  uv_timer_t heartbeat;
  pthread_t main_thread;
  uint64_t start_ms;
  int ticks, ticks_in_flight;
  int in_flight, done, waves_started;
  int errors;
} app_t;

static uint64_t elapsed(app_t *app) { return uv_now(app->heartbeat.loop) - app->start_ms; }

static void on_heartbeat(uv_timer_t *t) {
  app_t *app = t->data;
  app->ticks++;
  if (app->in_flight > 0)
    app->ticks_in_flight++;
  printf("%4" PRIu64 " ms  heartbeat %2d   calls in flight: %d\n", elapsed(app), app->ticks,
         app->in_flight);
}

static void start_wave(app_t *app);

/* A completion, on the host loop: the same thread as the heartbeat. */
static void on_doubled(synchro_future_t *f, int status, void *data) {
  app_t *app = data;
  int64_t result = 0;
  app->in_flight--;
  app->done++;
  if (!pthread_equal(pthread_self(), app->main_thread))
    app->errors++; /* never happens: a host runs callbacks on its own thread */
  if (status != 0 || synchro_future_result(f, &result) != 0) {
    fprintf(stderr, "slow_double failed: %s\n", synchro_strerror(status));
    app->errors++;
  } else {
    printf("%4" PRIu64 " ms  result %" PRId64 " (on the host loop)\n", elapsed(app), result);
  }
  /* f belongs to the host: it is freed when this callback returns. */
  if (app->in_flight > 0)
    return;
  if (app->waves_started < WAVES) {
    start_wave(app); /* submitting from a callback is fine */
    return;
  }
  /* All done: stop serving. The host's handle no longer keeps the loop alive (nothing
   * is pending), and closing the timer lets uv_run return. */
  uv_close((uv_handle_t *)&app->heartbeat, NULL);
}

static void start_wave(app_t *app) {
  int i, rc;
  app->waves_started++;
  for (i = 0; i < WAVE; i++) {
    double_args_t args = {10 * app->waves_started + i};
    synchro_future_t *f;
    if ((rc = synchro_submit(app->sync, &slow_double_op, &args, SYNCHRO_TIMEOUT_DEFAULT, &f)) !=
        0) {
      fprintf(stderr, "submit: %s\n", synchro_strerror(rc));
      app->errors++;
      continue;
    }
    /* From here on the host owns f; on_doubled runs on this loop, never inside then(). */
    if ((rc = synchro_future_then(f, app->host, on_doubled, app)) != 0) {
      fprintf(stderr, "then: %s\n", synchro_strerror(rc));
      synchro_future_free(f);
      app->errors++;
      continue;
    }
    app->in_flight++;
  }
  printf("%4" PRIu64 " ms  wave %d: %d calls submitted\n", elapsed(app), app->waves_started,
         app->in_flight);
}

int main(void) {
  app_t app = {0};
  uv_loop_t loop;
  int rc;
  app.main_thread = pthread_self();
  if ((rc = synchro_new(&app.sync, NULL)) != 0 || (rc = uv_loop_init(&loop)) != 0) {
    fprintf(stderr, "setup: %s\n", synchro_strerror(rc));
    return 1;
  }
  if ((rc = synchro_host_new_uv(&app.host, &loop)) != 0) {
    fprintf(stderr, "host: %s\n", synchro_strerror(rc));
    return 1;
  }
  uv_timer_init(&loop, &app.heartbeat);
  app.heartbeat.data = &app;
  app.start_ms = uv_now(&loop);
  uv_timer_start(&app.heartbeat, on_heartbeat, 50, 50);
  start_wave(&app);

  uv_run(&loop, UV_RUN_DEFAULT); /* the program's own loop: heartbeats and completions */

  synchro_host_free(app.host);
  uv_run(&loop, UV_RUN_DEFAULT); /* lets libuv finish closing the host's handle */
  if ((rc = uv_loop_close(&loop)) != 0) {
    fprintf(stderr, "loop close: %s\n", uv_strerror(rc));
    app.errors++;
  }
  synchro_close(app.sync, 1000);
  synchro_free(app.sync);

  printf("%d calls done, %d heartbeats, %d of them while calls were in flight\n", app.done,
         app.ticks, app.ticks_in_flight);
  if (app.errors != 0 || app.done != WAVE * WAVES || app.ticks_in_flight < 4) {
    fprintf(stderr, "host_loop: something went wrong\n");
    return 1;
  }
  return 0;
}
