/* examples/hello/main.c - synchro's main demo: the C counterpart of every example in
 * Python synchronicity's README, no server needed.
 *
 * One async implementation (hello_impl.c, libuv timers on the synchronizer's loop
 * thread), declared once in hello.json; bridge generated gen/hello.h, whose wrappers
 * this program calls three ways:
 *   1. blocking:           hello_square(42, &v, &err)
 *   2. futures (batching): ten hello_square_future() at once, about 1 s in all
 *   3. _aio:               hello_square_aio() from this thread's own libuv loop
 *   4. streams:            hello_countdown(), blocking and from the loop; closed early
 *   5. objects:            a connection: new (no I/O), open, query, close
 *   6. isolation:          a busy implementation does not stall this thread's loop
 * It checks its own results and exits 1 if any check failed. Run it with `make demo`.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "hello.h"

static int failures;

/* Records a failed check (the demo goes on, and exits 1 at the end). */
static void check(int ok, const char *what) {
  if (!ok) {
    failures++;
    printf("  FAILED: %s\n", what);
  }
}

static double seconds_since(uint64_t start_ns) { return (double)(uv_hrtime() - start_ns) / 1e9; }

/* Prints a failed call's error and frees it. */
static void report(const char *what, int rc, synchro_error_t *err) {
  printf("  %s failed: %s (%s)\n", what,
         err != NULL ? synchro_error_message(err) : hello_strerror(rc), synchro_err_name(rc));
  synchro_error_free(err);
  failures++;
}

/* The symbolic name of a code returned by a hello call: the module's own, or synchro's
 * and libuv's. */
static const char *code_name(int rc) {
  return rc == HELLO_EBAD_QUERY ? "HELLO_EBAD_QUERY" : synchro_err_name(rc);
}

/* One counter of hello_stats(), or -1. */
static int64_t stat_of(const char *key) {
  json_t *stats = NULL;
  synchro_error_t *err = NULL;
  int64_t value = -1;
  int rc = hello_stats(&stats, &err);

  if (rc != 0) {
    report("hello_stats", rc, err);
    return -1;
  }
  if (json_is_integer(json_object_get(stats, key)))
    value = (int64_t)json_integer_value(json_object_get(stats, key));
  json_decref(stats);
  return value;
}

/* Waits (up to 2 s) until counter `key` reaches `want`: cancel hooks run on the loop
 * thread after a close returns, so they are seen a moment later. */
static int64_t wait_stat(const char *key, int64_t want) {
  int64_t value = stat_of(key);

  for (int i = 0; i < 200 && value >= 0 && value < want; i++) {
    uv_sleep(10);
    value = stat_of(key);
  }
  return value;
}

/* ---- what the host loop (this thread's libuv loop) needs -------------------------- */

typedef struct app_s {
  uv_loop_t loop;
  synchro_host_t *host;
  pthread_t main_thread;
  /* 3. */
  int square_status;
  int64_t square_value;
  int square_on_main;
  /* 4. */
  char items[64];
  int stream_status, stream_on_main;
  /* 6. */
  uv_timer_t ticker;
  int ticks, ticks_at_done, busy_status;
  int64_t busy_polls;
  double busy_seconds;
  uint64_t busy_start;
} app_t;

static void append_item(char *buf, size_t size, int64_t item) {
  size_t len = strlen(buf);
  snprintf(buf + len, size - len, "%s%" PRId64, len > 0 ? " " : "", item);
}

/* ---- 1. blocking ------------------------------------------------------------------ */

static void demo_blocking(void) {
  synchro_error_t *err = NULL;
  int64_t value = 0;
  uint64_t start = uv_hrtime();
  int rc;

  printf("1. Blocking call (the implementation sleeps 1 s on a libuv timer)\n");
  rc = hello_square(42, &value, &err);
  if (rc != 0) {
    report("hello_square", rc, err);
    return;
  }
  printf("  square(42) = %" PRId64 "   (%.2f s)\n", value, seconds_since(start));
  check(value == 1764, "square(42) == 1764");
}

/* ---- 2. futures ------------------------------------------------------------------- */

#define BATCH 10

static void demo_futures(void) {
  synchro_future_t *fs[BATCH] = {0}, *f = NULL;
  char line[128] = "";
  uint64_t start = uv_hrtime();
  double elapsed;
  int rc, ok = 1;

  printf("\n2. Futures: ten square() calls started at once\n");
  for (int i = 0; i < BATCH; i++) {
    rc = hello_square_future(i + 1, &fs[i]);
    if (rc != 0) {
      report("hello_square_future", rc, NULL);
      ok = 0;
      break;
    }
  }
  if (ok && (rc = synchro_future_wait_all(fs, BATCH, 10000)) != 0) {
    report("synchro_future_wait_all", rc, NULL);
    ok = 0;
  }
  elapsed = seconds_since(start);
  for (int i = 0; i < BATCH && ok; i++) {
    int64_t value = 0;
    rc = hello_square_result(fs[i], &value);
    check(rc == 0 && value == (int64_t)(i + 1) * (i + 1), "square future result");
    append_item(line, sizeof(line), value);
  }
  for (int i = 0; i < BATCH; i++)
    synchro_future_free(fs[i]);
  if (!ok)
    return;
  printf("  results: %s\n", line);
  printf("  10 calls of 1 s each took %.2f s in all (one after the other: 10 s)\n", elapsed);
  check(elapsed >= 0.9 && elapsed < 3.0, "ten concurrent squares take about 1 s");

  /* A future can be waited on with a timeout, and cancelled: the cancel hook stops
   * the implementation's timer. */
  if ((rc = hello_square_future(7, &f)) != 0) {
    report("hello_square_future", rc, NULL);
    return;
  }
  rc = synchro_future_wait(f, 100);
  printf("  square(7): waited 100 ms: %s; cancelling it\n", synchro_err_name(rc));
  check(rc == SYNCHRO_EPENDING, "a 100 ms wait on a 1 s call times out");
  synchro_future_cancel(f);
  rc = synchro_future_wait(f, SYNCHRO_TIMEOUT_INFINITE);
  printf("  square(7) ended with %s\n", synchro_err_name(rc));
  check(rc == SYNCHRO_ECANCELED, "the cancelled square resolves SYNCHRO_ECANCELED");
  check(stat_of("squares_cancelled") == 1, "square's cancel hook ran once");
  synchro_future_free(f);
}

/* ---- 3. _aio on this thread's libuv loop -------------------------------------------- */

static void square_done(int status, int64_t result, const synchro_error_t *err, void *data) {
  app_t *app = data;

  app->square_status = status;
  app->square_value = result;
  app->square_on_main = pthread_equal(pthread_self(), app->main_thread);
  if (status == 0)
    printf("  callback: square(12) = %" PRId64 ", on the %s thread\n", result,
           app->square_on_main ? "main" : "WRONG");
  else
    printf("  callback: square(12) failed: %s\n", synchro_error_message(err));
}

static void demo_aio(app_t *app) {
  uint64_t start = uv_hrtime();
  int rc;

  printf("\n3. _aio: the same call from this thread's own libuv loop\n");
  app->square_status = SYNCHRO_EPENDING;
  rc = hello_square_aio(12, app->host, square_done, app);
  if (rc != 0) {
    report("hello_square_aio", rc, NULL);
    return;
  }
  printf("  hello_square_aio() returned at once; running the main thread's loop\n");
  uv_run(&app->loop, UV_RUN_DEFAULT); /* returns when nothing is pending */
  printf("  uv_run returned after %.2f s\n", seconds_since(start));
  check(app->square_status == 0 && app->square_value == 144, "square_aio(12) == 144");
  check(app->square_on_main, "the _aio callback ran on the main thread");
}

/* ---- 4. streams ------------------------------------------------------------------- */

static void countdown_next(hello_countdown_stream_t *st, int status, int64_t item,
                           const synchro_error_t *err, void *data) {
  app_t *app = data;
  int rc;

  (void)err;
  if (!pthread_equal(pthread_self(), app->main_thread))
    app->stream_on_main = 0;
  if (status == 0) {
    append_item(app->items, sizeof(app->items), item);
    if ((rc = hello_countdown_next_aio(st, app->host, countdown_next, app)) == 0)
      return; /* armed for the next item */
    status = rc;
  }
  app->stream_status = status; /* SYNCHRO_EEND, or an error */
  hello_countdown_close(st);
}

static void demo_streams(app_t *app) {
  hello_countdown_stream_t *st = NULL;
  char line[64] = "";
  int64_t item;
  int rc;

  printf("\n4. Streams: countdown(n) yields n ... 1, one every 100 ms\n");
  /* blocking iteration */
  if ((rc = hello_countdown_open(3, &st)) != 0) {
    report("hello_countdown_open", rc, NULL);
    return;
  }
  while ((rc = hello_countdown_next(st, &item, SYNCHRO_TIMEOUT_INFINITE)) == 0)
    append_item(line, sizeof(line), item);
  hello_countdown_close(st);
  printf("  blocking:     %s, then %s\n", line, synchro_err_name(rc));
  check(rc == SYNCHRO_EEND && strcmp(line, "3 2 1") == 0, "blocking countdown(3) is 3 2 1");

  /* the same stream, consumed from the host loop */
  if ((rc = hello_countdown_open(3, &st)) != 0) {
    report("hello_countdown_open", rc, NULL);
    return;
  }
  app->items[0] = '\0';
  app->stream_status = SYNCHRO_EPENDING;
  app->stream_on_main = 1;
  if ((rc = hello_countdown_next_aio(st, app->host, countdown_next, app)) != 0) {
    hello_countdown_close(st);
    report("hello_countdown_next_aio", rc, NULL);
    return;
  }
  uv_run(&app->loop, UV_RUN_DEFAULT);
  printf("  on the loop:  %s, then %s (callbacks on the main thread: %s)\n", app->items,
         synchro_err_name(app->stream_status), app->stream_on_main ? "yes" : "NO");
  check(app->stream_status == SYNCHRO_EEND && strcmp(app->items, "3 2 1") == 0,
        "countdown(3) from the host loop is 3 2 1");
  check(app->stream_on_main, "stream callbacks ran on the main thread");

  /* a long one, stopped early: closing it cancels the producer */
  if ((rc = hello_countdown_open(1000, &st)) != 0) {
    report("hello_countdown_open", rc, NULL);
    return;
  }
  line[0] = '\0';
  for (int i = 0; i < 3 && (rc = hello_countdown_next(st, &item, 5000)) == 0; i++)
    append_item(line, sizeof(line), item);
  printf("  countdown(1000): took %s, then closed it (it would have run 100 s)\n", line);
  check(strcmp(line, "1000 999 998") == 0, "countdown(1000) starts 1000 999 998");
  hello_countdown_close(st);
  check(wait_stat("countdowns_cancelled", 1) == 1, "countdown's cancel hook ran once");
}

/* ---- 5. objects ------------------------------------------------------------------- */

static void demo_object(void) {
  hello_connection_t *conn = NULL;
  synchro_error_t *err = NULL;
  char *answer = NULL;
  int rc;

  printf("\n5. Objects: a connection (constructor without I/O, open/close on timers)\n");
  if ((rc = hello_connection_new("db.example:5432", &conn, &err)) != 0) {
    report("hello_connection_new", rc, err);
    return;
  }
  printf("  hello_connection_new(\"db.example:5432\"): constructed, not connected yet\n");
  if ((rc = hello_connection_open(conn, &err)) != 0) {
    report("hello_connection_open", rc, err);
    hello_connection_free(conn);
    return;
  }
  if ((rc = hello_connection_query(conn, "select 1", &answer, &err)) != 0) {
    report("hello_connection_query", rc, err);
  } else {
    printf("  query: %s\n", answer);
    check(strstr(answer, "'select 1' answered by db.example:5432") != NULL,
          "query answer names the statement and the address");
    synchro_mem_free(answer);
  }

  rc = hello_connection_query(conn, "", &answer, &err); /* a domain error */
  printf("  query(\"\"): %s: %s (from %s)\n", code_name(rc),
         err != NULL ? synchro_error_message(err) : "?",
         err != NULL ? synchro_error_origin(err) : "?");
  check(rc == HELLO_EBAD_QUERY, "an empty query fails with HELLO_EBAD_QUERY");
  synchro_error_free(err);
  err = NULL;

  rc = hello_connection_close(conn, &err);
  check(rc == 0, "close succeeds");
  synchro_error_free(err);
  err = NULL;
  rc = hello_connection_close(conn, NULL);
  printf("  close again: %s (close runs once)\n", synchro_err_name(rc));
  check(rc == SYNCHRO_EALREADY, "a second close gives SYNCHRO_EALREADY");
  rc = hello_connection_query(conn, "select 2", &answer, NULL);
  printf("  query after close: %s\n", synchro_err_name(rc));
  check(rc == SYNCHRO_ECLOSED, "a query after close gives SYNCHRO_ECLOSED");
  hello_connection_free(conn); /* closed already: close does not run again */
  check(stat_of("connections_closed") == 1, "the connection's close ran exactly once");
}

/* ---- 6. isolation ----------------------------------------------------------------- */

static void on_tick(uv_timer_t *t) {
  app_t *app = t->data;
  app->ticks++;
}

static void busy_done(int status, int64_t result, const synchro_error_t *err, void *data) {
  app_t *app = data;

  (void)err;
  app->busy_status = status;
  app->busy_polls = result;
  app->busy_seconds = seconds_since(app->busy_start);
  app->ticks_at_done = app->ticks;
  uv_close((uv_handle_t *)&app->ticker, NULL); /* nothing left: uv_run returns */
}

static void demo_isolation(app_t *app) {
  int rc;

  printf("\n6. Isolation: an implementation that blocks its own loop for 100 ms\n");
  uv_timer_init(&app->loop, &app->ticker);
  app->ticker.data = app;
  app->busy_status = SYNCHRO_EPENDING;
  app->busy_start = uv_hrtime();
  uv_timer_start(&app->ticker, on_tick, 20, 20);
  if ((rc = hello_busy_aio(100, app->host, busy_done, app)) != 0) {
    report("hello_busy_aio", rc, NULL);
    uv_close((uv_handle_t *)&app->ticker, NULL);
  }
  uv_run(&app->loop, UV_RUN_DEFAULT);
  if (rc != 0)
    return;
  printf("  busy(100) spun %" PRId64 " times on the synchronizer's thread (%.2f s);\n"
         "  meanwhile this thread's 20 ms timer ticked %d times\n",
         app->busy_polls, app->busy_seconds, app->ticks_at_done);
  check(app->busy_status == 0 && app->busy_polls > 0, "busy(100) succeeds");
  /* About 5 expected. Had this thread been blocked for those 100 ms, its repeating
   * timer would have fired once at most (libuv does not replay missed repeats). */
  check(app->ticks_at_done >= 2, "the host timer keeps ticking during busy(100)");
}

int main(void) {
  synchro_t *sync = NULL;
  app_t app;
  uint64_t start = uv_hrtime();
  int rc;

  memset(&app, 0, sizeof(app));
  app.main_thread = pthread_self();
  setvbuf(stdout, NULL, _IOLBF, 0); /* lines in order, also through a pipe */

  /* The module could create its synchronizer on first use; this program owns one so
   * that it can shut it down and free everything at the end. */
  if ((rc = synchro_new(&sync, NULL)) != 0 || (rc = hello_use_synchronizer(sync)) != 0) {
    fprintf(stderr, "hello: no synchronizer: %s\n", synchro_strerror(rc));
    synchro_free(sync);
    return 1;
  }
  if ((rc = uv_loop_init(&app.loop)) != 0 ||
      (rc = synchro_host_new_uv(&app.host, &app.loop)) != 0) {
    fprintf(stderr, "hello: no host loop: %s\n", synchro_strerror(rc));
    synchro_free(sync);
    return 1;
  }

  demo_blocking();
  demo_futures();
  demo_aio(&app);
  demo_streams(&app);
  demo_object();
  demo_isolation(&app);

  synchro_host_free(app.host);
  uv_run(&app.loop, UV_RUN_NOWAIT); /* lets libuv finish closing the host's handle */
  check(uv_loop_close(&app.loop) == 0, "the host loop closes cleanly");
  check(synchro_close(sync, 1000) == 0, "the synchronizer shuts down");
  synchro_free(sync);

  if (failures != 0) {
    printf("\nhello: %d check(s) FAILED\n", failures);
    return 1;
  }
  printf("\nhello: all checks passed in %.1f s\n", seconds_since(start));
  return 0;
}
