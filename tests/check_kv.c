/* tests/check_kv.c - the kv example (examples/kv/): an async Redis client, implemented
 * once on the synchronizer's loop (examples/kv/kv_impl.c) and called through the three
 * generated styles (examples/kv/gen/kv.h): blocking, futures, _aio on a libuv host loop
 * run by the test thread.
 *
 * A redis-server on a free loopback port (no persistence, a temporary directory) is
 * started once by an unchecked fixture, in the runner process, and stopped at the end;
 * the "server killed" case starts one of its own, kills it (SIGKILL) and restarts it on
 * the same port. Every test runs in its own forked child (CK_FORK) with its own keys.
 * Callbacks and helper threads only record; every assertion runs on the test thread. */
#include <check.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "kv.h"
#include "kv/redis_server.h"

#define FOREVER SYNCHRO_TIMEOUT_INFINITE

static redis_server_t srv; /* the shared server (unchecked fixture) */

static void suite_setup(void) {
  if (redis_server_available())
    redis_server_start(&srv, 0);
}

static void suite_teardown(void) { redis_server_stop(&srv); }

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- the host loop (per test) ---------------------------------------------------- */

static uv_loop_t loop;
static synchro_host_t *host;

static void setup(void) {
  ck_assert_msg(srv.pid > 0, "no redis-server could be started (is it installed? make deps)");
  ck_assert_int_eq(uv_loop_init(&loop), 0);
  ck_assert_int_eq(synchro_host_new_uv(&host, &loop), 0);
}

static void teardown(void) {
  synchro_host_free(host);
  uv_run(&loop, UV_RUN_NOWAIT);
  uv_loop_close(&loop);
}

/* What one call did, whatever the style. */
typedef struct rec_s {
  bool done;
  int status;
  int64_t value;
  bool is_null;
  char text[256];
  char items[8][64];
  bool item_null[8];
  size_t count;
  int err_code;
  char message[256];
  char origin[64];
  char details[256];
  int64_t elapsed_ms;
} rec_t;

static void record_error(rec_t *r, const synchro_error_t *err) {
  json_t *details;
  char *text;

  if (err == NULL)
    return;
  r->err_code = synchro_error_code(err);
  snprintf(r->message, sizeof(r->message), "%s", synchro_error_message(err));
  snprintf(r->origin, sizeof(r->origin), "%s", synchro_error_origin(err));
  details = synchro_error_details(err);
  if (details != NULL && (text = json_dumps(details, JSON_COMPACT | JSON_SORT_KEYS)) != NULL) {
    snprintf(r->details, sizeof(r->details), "%s", text);
    free(text);
  }
}

static void record_string(rec_t *r, const char *s) {
  r->is_null = s == NULL;
  snprintf(r->text, sizeof(r->text), "%s", s != NULL ? s : "");
}

static void record_array(rec_t *r, const kv_string_array_t *a) {
  r->count = a->count;
  for (size_t i = 0; i < a->count && i < 8; i++) {
    r->item_null[i] = a->items[i] == NULL;
    snprintf(r->items[i], sizeof(r->items[i]), "%s", a->items[i] != NULL ? a->items[i] : "");
  }
}

static void run_until(const bool *done) {
  while (!*done)
    uv_run(&loop, UV_RUN_ONCE);
}

/* aio callbacks: record only */
static void on_status(int status, const synchro_error_t *err, void *data) {
  rec_t *r = data;
  r->status = status;
  record_error(r, err);
  r->done = true;
}

static void on_string(int status, const char *result, const synchro_error_t *err, void *data) {
  rec_t *r = data;
  r->status = status;
  if (status == 0)
    record_string(r, result);
  record_error(r, err);
  r->done = true;
}

static void on_int(int status, int64_t result, const synchro_error_t *err, void *data) {
  rec_t *r = data;
  r->status = status;
  r->value = result;
  record_error(r, err);
  r->done = true;
}

static void on_array(int status, kv_string_array_t result, const synchro_error_t *err, void *data) {
  rec_t *r = data;
  r->status = status;
  if (status == 0)
    record_array(r, &result);
  record_error(r, err);
  r->done = true;
}

/* A future's outcome and error into a record. */
static void record_future(rec_t *r, synchro_future_t *f) {
  r->status = synchro_future_wait(f, FOREVER);
  record_error(r, synchro_future_error(f));
  r->done = true;
}

static kv_client_t *client_new(int port, int64_t timeout_ms, int64_t retries) {
  kv_client_t *c = NULL;
  synchro_error_t *err = NULL;
  int rc = kv_client_new("127.0.0.1", port, timeout_ms, retries, &c, &err);
  ck_assert_msg(rc == 0, "kv_client_new: %s", synchro_error_message(err));
  return c;
}

static kv_client_t *client_open(int port, int64_t timeout_ms, int64_t retries) {
  kv_client_t *c = client_new(port, timeout_ms, retries);
  synchro_error_t *err = NULL;
  int rc = kv_client_open(c, &err);
  ck_assert_msg(rc == 0, "kv_client_open: %s", synchro_error_message(err));
  return c;
}

static void set_ok(kv_client_t *c, const char *key, const char *value) {
  synchro_error_t *err = NULL;
  int rc = kv_client_set(c, key, value, &err);
  ck_assert_msg(rc == 0, "set %s: %s", key, synchro_error_message(err));
}

/* ---- get / set ----------------------------------------------------------------------- */

START_TEST(test_get_set) {
  kv_client_t *c = client_open(srv.port, 2000, 2);
  synchro_error_t *err = NULL;
  synchro_future_t *f = NULL;
  char *v = NULL;
  rec_t r;

  /* blocking */
  ck_assert_int_eq(kv_client_set(c, "gs:blocking", "one", &err), 0);
  ck_assert_ptr_null(err);
  ck_assert_int_eq(kv_client_get(c, "gs:blocking", &v, &err), 0);
  ck_assert_str_eq(v, "one");
  synchro_mem_free(v);
  v = (char *)"sentinel";
  ck_assert_int_eq(kv_client_get(c, "gs:missing", &v, &err), 0); /* missing: NULL */
  ck_assert_ptr_null(v);
  ck_assert_ptr_null(err);
  ck_assert_int_eq(kv_client_set(c, "gs:empty", "", &err), 0); /* empty is not missing */
  ck_assert_int_eq(kv_client_get(c, "gs:empty", &v, &err), 0);
  ck_assert_ptr_nonnull(v);
  ck_assert_str_eq(v, "");
  synchro_mem_free(v);

  /* futures */
  ck_assert_int_eq(kv_client_set_future(c, "gs:future", "two", &f), 0);
  ck_assert_int_eq(synchro_future_wait(f, FOREVER), 0);
  ck_assert_int_eq(kv_client_set_result(f), 0);
  synchro_future_free(f);
  ck_assert_int_eq(kv_client_get_future(c, "gs:future", &f), 0);
  ck_assert_int_eq(synchro_future_wait(f, FOREVER), 0);
  ck_assert_int_eq(kv_client_get_result(f, &v), 0);
  ck_assert_str_eq(v, "two");
  synchro_mem_free(v);
  synchro_future_free(f);
  ck_assert_int_eq(kv_client_get_future(c, "gs:missing", &f), 0);
  ck_assert_int_eq(synchro_future_wait(f, FOREVER), 0);
  v = (char *)"sentinel";
  ck_assert_int_eq(kv_client_get_result(f, &v), 0);
  ck_assert_ptr_null(v);
  synchro_future_free(f);

  /* aio */
  memset(&r, 0, sizeof(r));
  ck_assert_int_eq(kv_client_set_aio(c, "gs:aio", "three", host, on_status, &r), 0);
  run_until(&r.done);
  ck_assert_int_eq(r.status, 0);
  memset(&r, 0, sizeof(r));
  ck_assert_int_eq(kv_client_get_aio(c, "gs:aio", host, on_string, &r), 0);
  run_until(&r.done);
  ck_assert_int_eq(r.status, 0);
  ck_assert(!r.is_null);
  ck_assert_str_eq(r.text, "three");
  memset(&r, 0, sizeof(r));
  ck_assert_int_eq(kv_client_get_aio(c, "gs:missing", host, on_string, &r), 0);
  run_until(&r.done);
  ck_assert_int_eq(r.status, 0);
  ck_assert(r.is_null);

  /* across styles: what aio stored, blocking reads */
  ck_assert_int_eq(kv_client_get(c, "gs:aio", &v, NULL), 0);
  ck_assert_str_eq(v, "three");
  synchro_mem_free(v);
  kv_client_free(c);
}
END_TEST

/* ---- incr and server error replies --------------------------------------------------- */

static void assert_not_an_integer(const rec_t *r, const char *style) {
  ck_assert_msg(r->status == KV_ESERVER, "%s: status %d", style, r->status);
  ck_assert_int_eq(r->err_code, KV_ESERVER);
  ck_assert_msg(strstr(r->message, "not an integer") != NULL, "%s: message %s", style, r->message);
  ck_assert_str_eq(r->origin, "kv_client_incr");
  ck_assert_str_eq(
      r->details,
      "{\"command\":\"INCR\",\"reply\":\"ERR value is not an integer or out of range\"}");
}

START_TEST(test_incr) {
  kv_client_t *c = client_open(srv.port, 2000, 2);
  synchro_error_t *err = NULL;
  synchro_future_t *f = NULL;
  int64_t v = 0;
  rec_t r;

  ck_assert_int_eq(kv_client_incr(c, "incr:n", &v, &err), 0);
  ck_assert_int_eq(v, 1);
  ck_assert_int_eq(kv_client_incr_future(c, "incr:n", &f), 0);
  ck_assert_int_eq(synchro_future_wait(f, FOREVER), 0);
  ck_assert_int_eq(kv_client_incr_result(f, &v), 0);
  ck_assert_int_eq(v, 2);
  synchro_future_free(f);
  memset(&r, 0, sizeof(r));
  ck_assert_int_eq(kv_client_incr_aio(c, "incr:n", host, on_int, &r), 0);
  run_until(&r.done);
  ck_assert_int_eq(r.status, 0);
  ck_assert_int_eq(r.value, 3);

  /* an error reply: the server's message, in the message and in the details */
  set_ok(c, "incr:text", "abc");
  memset(&r, 0, sizeof(r));
  r.status = kv_client_incr(c, "incr:text", &v, &err);
  record_error(&r, err);
  synchro_error_free(err);
  err = NULL;
  assert_not_an_integer(&r, "blocking");

  memset(&r, 0, sizeof(r));
  ck_assert_int_eq(kv_client_incr_future(c, "incr:text", &f), 0);
  record_future(&r, f);
  ck_assert_int_eq(kv_client_incr_result(f, &v), KV_ESERVER);
  synchro_future_free(f);
  assert_not_an_integer(&r, "future");

  memset(&r, 0, sizeof(r));
  ck_assert_int_eq(kv_client_incr_aio(c, "incr:text", host, on_int, &r), 0);
  run_until(&r.done);
  assert_not_an_integer(&r, "aio");

  /* the connection is fine after an error reply */
  ck_assert_int_eq(kv_client_incr(c, "incr:n", &v, NULL), 0);
  ck_assert_int_eq(v, 4);
  kv_client_free(c);
}
END_TEST

/* ---- del ----------------------------------------------------------------------------- */

START_TEST(test_del) {
  kv_client_t *c = client_open(srv.port, 2000, 2);
  const char *keys[] = {"del:a", "del:b", "del:missing"};
  synchro_future_t *f = NULL;
  int64_t n = -1;
  rec_t r;

  set_ok(c, "del:a", "1");
  set_ok(c, "del:b", "2");
  set_ok(c, "del:c", "3");
  ck_assert_int_eq(kv_client_del(c, keys, 3, &n, NULL), 0);
  ck_assert_int_eq(n, 2);
  keys[0] = "del:c";
  ck_assert_int_eq(kv_client_del_future(c, keys, 1, &f), 0);
  ck_assert_int_eq(synchro_future_wait(f, FOREVER), 0);
  ck_assert_int_eq(kv_client_del_result(f, &n), 0);
  ck_assert_int_eq(n, 1);
  synchro_future_free(f);
  memset(&r, 0, sizeof(r));
  r.value = -1;
  ck_assert_int_eq(kv_client_del_aio(c, keys, 3, host, on_int, &r), 0); /* all gone now */
  run_until(&r.done);
  ck_assert_int_eq(r.status, 0);
  ck_assert_int_eq(r.value, 0);
  /* no keys: refused by the implementation, like Redis would */
  ck_assert_int_eq(kv_client_del(c, NULL, 0, &n, NULL), SYNCHRO_EINVAL);
  kv_client_free(c);
}
END_TEST

/* ---- mget ---------------------------------------------------------------------------- */

static void assert_mget(const rec_t *r) {
  ck_assert_int_eq(r->status, 0);
  ck_assert_uint_eq(r->count, 3);
  ck_assert(!r->item_null[0]);
  ck_assert_str_eq(r->items[0], "A");
  ck_assert(r->item_null[1]);
  ck_assert(!r->item_null[2]);
  ck_assert_str_eq(r->items[2], "C");
}

START_TEST(test_mget) {
  kv_client_t *c = client_open(srv.port, 2000, 2);
  const char *keys[] = {"mget:a", "mget:missing", "mget:c"};
  kv_string_array_t a = {NULL, 0};
  synchro_future_t *f = NULL;
  rec_t r;

  set_ok(c, "mget:a", "A");
  set_ok(c, "mget:c", "C");
  memset(&r, 0, sizeof(r));
  ck_assert_int_eq(kv_client_mget(c, keys, 3, &a, NULL), 0);
  record_array(&r, &a);
  kv_string_array_free(&a);
  assert_mget(&r);

  memset(&r, 0, sizeof(r));
  ck_assert_int_eq(kv_client_mget_future(c, keys, 3, &f), 0);
  r.status = synchro_future_wait(f, FOREVER);
  ck_assert_int_eq(kv_client_mget_result(f, &a), 0);
  record_array(&r, &a);
  kv_string_array_free(&a);
  synchro_future_free(f);
  assert_mget(&r);

  memset(&r, 0, sizeof(r));
  ck_assert_int_eq(kv_client_mget_aio(c, keys, 3, host, on_array, &r), 0);
  run_until(&r.done);
  assert_mget(&r);
  kv_client_free(c);
}
END_TEST

/* ---- scan ---------------------------------------------------------------------------- */

#define SCAN_KEYS 5000

/* Writes n keys PREFIX:<i>, pipelined (futures). */
static void populate(kv_client_t *c, const char *prefix, int n) {
  synchro_future_t **fs = calloc((size_t)n, sizeof(*fs));
  char key[64];

  ck_assert_ptr_nonnull(fs);
  for (int i = 0; i < n; i++) {
    snprintf(key, sizeof(key), "%s:%d", prefix, i);
    ck_assert_int_eq(kv_client_set_future(c, key, "x", &fs[i]), 0);
  }
  ck_assert_int_eq(synchro_future_wait_all(fs, (size_t)n, 20000), 0);
  for (int i = 0; i < n; i++) {
    ck_assert_int_eq(kv_client_set_result(fs[i]), 0);
    synchro_future_free(fs[i]);
  }
  free(fs);
}

/* Marks key PREFIX:<i> as seen; returns 1 if it was new. */
static int see(char *seen, const char *prefix, const char *key) {
  size_t len = strlen(prefix);
  int i;
  if (strncmp(key, prefix, len) != 0 || key[len] != ':')
    return -1000000; /* does not match the pattern: poisons the count */
  i = atoi(key + len + 1);
  if (i < 0 || i >= SCAN_KEYS || seen[i])
    return 0;
  seen[i] = 1;
  return 1;
}

typedef struct scan_rec_s {
  bool done;
  int status;
  int unique;
  char *seen;
} scan_rec_t;

static void on_key(kv_client_scan_stream_t *st, int status, const char *item,
                   const synchro_error_t *err, void *data) {
  scan_rec_t *s = data;
  (void)err;
  if (status == 0) {
    s->unique += see(s->seen, "scan", item);
    if ((status = kv_client_scan_next_aio(st, host, on_key, s)) == 0)
      return;
  }
  s->status = status;
  kv_client_scan_close(st);
  s->done = true;
}

/* SCAN calls the server has run since the last CONFIG RESETSTAT, or -1. */
static int scan_calls(int port) {
  struct timeval tv = {1, 0};
  redisContext *ctx = redisConnectWithTimeout("127.0.0.1", port, tv);
  redisReply *reply = ctx != NULL && !ctx->err ? redisCommand(ctx, "INFO commandstats") : NULL;
  int calls = -1;

  if (reply != NULL && reply->type == REDIS_REPLY_STRING) {
    const char *p = strstr(reply->str, "cmdstat_scan:calls=");
    calls = p != NULL ? atoi(p + strlen("cmdstat_scan:calls=")) : 0;
  }
  if (reply != NULL)
    freeReplyObject(reply);
  if (ctx != NULL)
    redisFree(ctx);
  return calls;
}

START_TEST(test_scan) {
  kv_client_t *c = client_open(srv.port, 5000, 2);
  kv_client_scan_stream_t *st = NULL;
  char *seen = calloc(SCAN_KEYS, 1), *key = NULL;
  int unique = 0, rc, calls_paused, calls_end, other = 0;
  scan_rec_t s;

  ck_assert_ptr_nonnull(seen);
  populate(c, "scan", SCAN_KEYS);

  /* blocking, with backpressure: the producer stops asking for pages while the
   * consumer does not take keys (the buffer holds 1024; a page about 100) */
  ck_assert_int_eq(redis_server_command(srv.port, "CONFIG RESETSTAT"), 0);
  ck_assert_int_eq(kv_client_scan_open(c, "scan:*", &st), 0);
  uv_sleep(300);
  calls_paused = scan_calls(srv.port);
  while ((rc = kv_client_scan_next(st, &key, FOREVER)) == 0) {
    unique += see(seen, "scan", key);
    synchro_mem_free(key);
  }
  ck_assert_int_eq(rc, SYNCHRO_EEND);
  kv_client_scan_close(st);
  calls_end = scan_calls(srv.port);
  ck_assert_int_eq(unique, SCAN_KEYS);
  ck_assert_msg(calls_paused >= 1 && calls_paused <= 16 && calls_end >= 40,
                "SCAN pages: %d while the consumer waited, %d in all", calls_paused, calls_end);

  /* futures-style: timed waits on the stream */
  memset(seen, 0, SCAN_KEYS);
  unique = 0;
  ck_assert_int_eq(kv_client_scan_open(c, "scan:*", &st), 0);
  while ((rc = kv_client_scan_next(st, &key, 5)) == 0 || rc == SYNCHRO_EPENDING) {
    if (rc == 0) {
      unique += see(seen, "scan", key);
      synchro_mem_free(key);
    }
  }
  ck_assert_int_eq(rc, SYNCHRO_EEND);
  kv_client_scan_close(st);
  ck_assert_int_eq(unique, SCAN_KEYS);

  /* aio */
  memset(seen, 0, SCAN_KEYS);
  memset(&s, 0, sizeof(s));
  s.seen = seen;
  ck_assert_int_eq(kv_client_scan_open(c, "scan:*", &st), 0);
  ck_assert_int_eq(kv_client_scan_next_aio(st, host, on_key, &s), 0);
  run_until(&s.done);
  ck_assert_int_eq(s.status, SYNCHRO_EEND);
  ck_assert_int_eq(s.unique, SCAN_KEYS);

  /* no pattern: every key (other tests' keys too) */
  memset(seen, 0, SCAN_KEYS);
  unique = 0;
  ck_assert_int_eq(kv_client_scan_open(c, NULL, &st), 0);
  while ((rc = kv_client_scan_next(st, &key, FOREVER)) == 0) {
    if (strncmp(key, "scan:", 5) == 0)
      unique += see(seen, "scan", key);
    else
      other++;
    synchro_mem_free(key);
  }
  ck_assert_int_eq(rc, SYNCHRO_EEND);
  kv_client_scan_close(st);
  ck_assert_int_eq(unique, SCAN_KEYS);

  /* a pattern nothing matches: ends at once, empty */
  ck_assert_int_eq(kv_client_scan_open(c, "nothing-matches:*", &st), 0);
  ck_assert_int_eq(kv_client_scan_next(st, &key, FOREVER), SYNCHRO_EEND);
  kv_client_scan_close(st);

  /* stopped early: the producer is cancelled, the client goes on */
  ck_assert_int_eq(kv_client_scan_open(c, "scan:*", &st), 0);
  for (int i = 0; i < 5; i++) {
    ck_assert_int_eq(kv_client_scan_next(st, &key, FOREVER), 0);
    synchro_mem_free(key);
  }
  kv_client_scan_close(st);
  ck_assert_int_eq(kv_client_get(c, "scan:7", &key, NULL), 0);
  ck_assert_str_eq(key, "x");
  synchro_mem_free(key);
  free(seen);
  kv_client_free(c);
}
END_TEST

/* ---- not open, bad arguments, nobody listening ---------------------------------------- */

START_TEST(test_connect_errors) {
  kv_client_t *c = NULL;
  synchro_error_t *err = NULL;
  synchro_future_t *f = NULL;
  int64_t t0;
  char *v = NULL;
  int port = redis_server_free_port();
  rec_t r;

  ck_assert_int_eq(kv_client_new("127.0.0.1", 0, 100, 0, &c, &err), SYNCHRO_EINVAL);
  synchro_error_free(err);
  err = NULL;
  ck_assert_int_eq(kv_client_new("", 6379, 100, 0, &c, NULL), SYNCHRO_EINVAL);
  ck_assert_int_eq(kv_client_new("127.0.0.1", 6379, -1, 0, &c, NULL), SYNCHRO_EINVAL);

  /* never opened: a clear error, no I/O */
  c = client_new(srv.port, 1000, 0);
  ck_assert_int_eq(kv_client_get(c, "x", &v, &err), KV_EDISCONNECTED);
  ck_assert_ptr_nonnull(strstr(synchro_error_message(err), "not open"));
  synchro_error_free(err);
  err = NULL;
  kv_client_free(c);

  /* nobody listens: open tries 1 + 2 times with backoff (50 + 100 ms), then fails */
  c = client_new(port, 1000, 2);
  t0 = now_ms();
  ck_assert_int_eq(kv_client_open(c, &err), KV_EDISCONNECTED);
  ck_assert_int_ge(now_ms() - t0, 140);
  ck_assert_msg(strstr(synchro_error_message(err), "cannot connect") != NULL &&
                    strstr(synchro_error_message(err), "3 attempts") != NULL,
                "%s", synchro_error_message(err));
  ck_assert_ptr_nonnull(strstr(
      json_string_value(json_object_get(synchro_error_details(err), "cause")), "ECONNREFUSED"));
  synchro_error_free(err);
  err = NULL;
  kv_client_free(c);

  /* the same through a future and aio */
  c = client_new(port, 1000, 0);
  ck_assert_int_eq(kv_client_open_future(c, &f), 0);
  ck_assert_int_eq(synchro_future_wait(f, FOREVER), KV_EDISCONNECTED);
  synchro_future_free(f);
  kv_client_free(c);
  c = client_new(port, 1000, 1);
  memset(&r, 0, sizeof(r));
  ck_assert_int_eq(kv_client_open_aio(c, host, on_status, &r), 0);
  run_until(&r.done);
  ck_assert_int_eq(r.status, KV_EDISCONNECTED);
  ck_assert_ptr_nonnull(strstr(r.message, "2 attempts"));
  kv_client_free(c);

  /* a host name is resolved (asynchronously) */
  c = client_new(srv.port, 2000, 0);
  kv_client_free(c);
  ck_assert_int_eq(kv_client_new("localhost", srv.port, 2000, 1, &c, NULL), 0);
  if (kv_client_open(c, &err) == 0) { /* localhost may resolve to ::1 first: not bound */
    ck_assert_int_eq(kv_client_get(c, "gs:none", &v, NULL), 0);
    ck_assert_ptr_null(v);
  }
  synchro_error_free(err);
  kv_client_free(c);
}
END_TEST

/* ---- timeouts -------------------------------------------------------------------------- */

START_TEST(test_timeout) {
  kv_client_t *c = client_open(srv.port, 200, 2);
  synchro_future_t *f = NULL, *fc = NULL;
  synchro_error_t *err = NULL;
  char *v = NULL;
  int64_t t0, t1;
  rec_t rb, rf, ra, rc_;

  set_ok(c, "to:a", "A");
  set_ok(c, "to:b", "B");
  /* The server stops answering every client for 800 ms. */
  ck_assert_int_eq(redis_server_command(srv.port, "CLIENT PAUSE 800"), 0);
  t0 = now_ms();
  memset(&rf, 0, sizeof(rf));
  memset(&ra, 0, sizeof(ra));
  memset(&rb, 0, sizeof(rb));
  memset(&rc_, 0, sizeof(rc_));
  ck_assert_int_eq(kv_client_get_future(c, "to:a", &f), 0);
  ck_assert_int_eq(kv_client_get_aio(c, "to:a", host, on_string, &ra), 0);
  ck_assert_int_eq(kv_client_get_future(c, "to:b", &fc), 0);
  ck_assert_int_eq(synchro_future_cancel(fc), 0); /* cancelled by the caller */
  rb.status = kv_client_get(c, "to:a", &v, &err);
  rb.elapsed_ms = now_ms() - t0;
  record_error(&rb, err);
  synchro_error_free(err);
  err = NULL;
  record_future(&rf, f);
  synchro_future_free(f);
  record_future(&rc_, fc);
  synchro_future_free(fc);
  run_until(&ra.done);
  t1 = now_ms() - t0;

  ck_assert_int_eq(rb.status, KV_ETIMEOUT);
  ck_assert_int_ge(rb.elapsed_ms, 150);
  ck_assert_int_lt(rb.elapsed_ms, 700); /* well before the server answers */
  ck_assert_int_lt(t1, 700);
  ck_assert_str_eq(rb.origin, "kv_client_get");
  ck_assert_ptr_nonnull(strstr(rb.message, "within 200 ms"));
  ck_assert_str_eq(rb.details, "{\"command\":\"GET\",\"timeout_ms\":200}");
  ck_assert_int_eq(rf.status, KV_ETIMEOUT);
  ck_assert_str_eq(rf.details, rb.details);
  ck_assert_int_eq(ra.status, KV_ETIMEOUT);
  ck_assert_str_eq(ra.details, rb.details);
  ck_assert_int_eq(rc_.status, SYNCHRO_ECANCELED);

  /* The late replies (A, A, B, A) are dropped when they come: the next replies still
   * match their own requests. */
  while (now_ms() - t0 < 900)
    uv_sleep(20);
  ck_assert_int_eq(kv_client_get(c, "to:b", &v, &err), 0);
  ck_assert_str_eq(v, "B");
  synchro_mem_free(v);
  ck_assert_int_eq(kv_client_get(c, "to:a", &v, &err), 0);
  ck_assert_str_eq(v, "A");
  synchro_mem_free(v);
  memset(&ra, 0, sizeof(ra));
  ck_assert_int_eq(kv_client_get_aio(c, "to:b", host, on_string, &ra), 0);
  run_until(&ra.done);
  ck_assert_int_eq(ra.status, 0);
  ck_assert_str_eq(ra.text, "B");
  kv_client_free(c);
}
END_TEST

/* ---- the server killed mid-run --------------------------------------------------------- */

typedef struct blocked_s {
  kv_client_t *c;
  rec_t r;
} blocked_t;

static void *blocking_get(void *arg) {
  blocked_t *b = arg;
  synchro_error_t *err = NULL;
  char *v = NULL;
  int64_t t0 = now_ms();
  b->r.status = kv_client_get(b->c, "kill:k", &v, &err);
  b->r.elapsed_ms = now_ms() - t0;
  record_error(&b->r, err);
  synchro_error_free(err);
  synchro_mem_free(v);
  return NULL;
}

START_TEST(test_server_killed) {
  redis_server_t own;
  kv_client_t *c;
  synchro_future_t *f = NULL;
  synchro_error_t *err = NULL;
  pthread_t th;
  blocked_t b;
  rec_t rf, ra, rd;
  char *v = NULL;
  int64_t t0;
  int port;

  memset(&own, 0, sizeof(own));
  ck_assert_int_eq(redis_server_start(&own, 0), 0);
  port = own.port;
  c = client_open(port, 5000, 3);
  set_ok(c, "kill:k", "before");

  /* three calls in flight (the server is paused), then SIGKILL */
  ck_assert_int_eq(redis_server_command(port, "CLIENT PAUSE 10000"), 0);
  memset(&rf, 0, sizeof(rf));
  memset(&ra, 0, sizeof(ra));
  memset(&b, 0, sizeof(b));
  b.c = c;
  ck_assert_int_eq(kv_client_get_future(c, "kill:k", &f), 0);
  ck_assert_int_eq(kv_client_get_aio(c, "kill:k", host, on_string, &ra), 0);
  ck_assert_int_eq(pthread_create(&th, NULL, blocking_get, &b), 0);
  uv_sleep(200);
  t0 = now_ms();
  redis_server_kill(&own);
  record_future(&rf, f);
  synchro_future_free(f);
  run_until(&ra.done);
  pthread_join(th, NULL);
  ck_assert_int_lt(now_ms() - t0, 2000); /* failed at once, not at the 5 s timeout */
  ck_assert_int_eq(rf.status, KV_EDISCONNECTED);
  ck_assert_int_eq(ra.status, KV_EDISCONNECTED);
  ck_assert_int_eq(b.r.status, KV_EDISCONNECTED);
  ck_assert_msg(strstr(rf.message, "connection lost") != NULL &&
                    strstr(rf.message, "may or may not have run") != NULL,
                "%s", rf.message);
  ck_assert_str_eq(ra.message, rf.message);
  ck_assert_str_eq(b.r.message, rf.message);
  ck_assert_ptr_nonnull(strstr(rf.details, "\"port\""));

  /* while it is down: the background reconnect gives up (3 retries), and a call fails
   * after its own round of attempts, with a clear error */
  uv_sleep(600);
  memset(&rd, 0, sizeof(rd));
  rd.status = kv_client_get(c, "kill:k", &v, &err);
  record_error(&rd, err);
  synchro_error_free(err);
  err = NULL;
  ck_assert_int_eq(rd.status, KV_EDISCONNECTED);
  ck_assert_msg(strstr(rd.message, "cannot connect") != NULL, "%s", rd.message);

  /* restarted on the same port: the next call reconnects (the data is gone: no
   * persistence) */
  ck_assert_int_eq(redis_server_start(&own, port), 0);
  ck_assert_int_eq(own.port, port);
  ck_assert_int_eq(kv_client_get(c, "kill:k", &v, &err), 0);
  ck_assert_ptr_null(v);
  set_ok(c, "kill:k", "after");
  ck_assert_int_eq(kv_client_get(c, "kill:k", &v, NULL), 0);
  ck_assert_str_eq(v, "after");
  synchro_mem_free(v);

  /* killed and back at once: the background reconnect finds it, no call fails */
  redis_server_kill(&own);
  ck_assert_int_eq(redis_server_start(&own, port), 0);
  memset(&ra, 0, sizeof(ra));
  ck_assert_int_eq(kv_client_set_aio(c, "kill:k", "again", host, on_status, &ra), 0);
  run_until(&ra.done);
  ck_assert_int_eq(ra.status, 0);
  ck_assert_int_eq(kv_client_get(c, "kill:k", &v, NULL), 0);
  ck_assert_str_eq(v, "again");
  synchro_mem_free(v);

  kv_client_free(c);
  redis_server_stop(&own);
}
END_TEST

/* ---- lifecycle: open, close, free with calls in flight ------------------------------- */

START_TEST(test_lifecycle) {
  kv_client_t *c = client_open(srv.port, 5000, 1);
  kv_client_scan_stream_t *st = NULL;
  synchro_future_t *f = NULL;
  synchro_error_t *err = NULL;
  char *v = NULL;
  int rc, n = 0;

  ck_assert_int_eq(kv_client_open(c, NULL), SYNCHRO_EALREADY);
  /* close with a call in flight: it fails with a clear error */
  ck_assert_int_eq(redis_server_command(srv.port, "CLIENT PAUSE 300"), 0);
  ck_assert_int_eq(kv_client_get_future(c, "lc:x", &f), 0);
  uv_sleep(50);
  ck_assert_int_eq(kv_client_close(c, &err), 0);
  ck_assert_int_eq(synchro_future_wait(f, FOREVER), KV_EDISCONNECTED);
  ck_assert_ptr_nonnull(strstr(synchro_error_message(synchro_future_error(f)), "closed"));
  synchro_future_free(f);
  ck_assert_int_eq(kv_client_close(c, NULL), SYNCHRO_EALREADY);
  ck_assert_int_eq(kv_client_get(c, "lc:x", &v, NULL), SYNCHRO_ECLOSED);
  kv_client_free(c);
  uv_sleep(300);

  /* the last reference dropped with a call in flight: cancelled, nothing hangs */
  c = client_open(srv.port, 5000, 1);
  ck_assert_int_eq(redis_server_command(srv.port, "CLIENT PAUSE 300"), 0);
  ck_assert_int_eq(kv_client_get_future(c, "lc:x", &f), 0);
  uv_sleep(50);
  kv_client_free(c);
  ck_assert_int_eq(synchro_future_wait(f, 2000), SYNCHRO_ECANCELED);
  synchro_future_free(f);
  uv_sleep(300);

  /* close while a scan is paused (its consumer is slow): the stream ends with an error
   * after the keys it had buffered */
  c = client_open(srv.port, 5000, 1);
  populate(c, "lc", 3000);
  ck_assert_int_eq(kv_client_scan_open(c, "lc:*", &st), 0);
  ck_assert_int_eq(kv_client_scan_next(st, &v, FOREVER), 0);
  synchro_mem_free(v);
  uv_sleep(200);
  ck_assert_int_eq(kv_client_close(c, NULL), 0);
  while ((rc = kv_client_scan_next(st, &v, 2000)) == 0) {
    n++;
    synchro_mem_free(v);
  }
  ck_assert_int_eq(rc, KV_EDISCONNECTED);
  ck_assert_int_lt(n, 3000);
  kv_client_scan_close(st);
  kv_client_free(c);

  /* the last reference dropped during a scan */
  c = client_open(srv.port, 5000, 1);
  ck_assert_int_eq(kv_client_scan_open(c, "lc:*", &st), 0);
  kv_client_free(c);
  while ((rc = kv_client_scan_next(st, &v, 2000)) == 0)
    synchro_mem_free(v);
  ck_assert_int_eq(rc, SYNCHRO_ECANCELED);
  kv_client_scan_close(st);
}
END_TEST

/* ---- pipelining and threads ---------------------------------------------------------- */

typedef struct worker_s {
  kv_client_t *c;
  int n, failures;
} worker_t;

static void *incr_worker(void *arg) {
  worker_t *w = arg;
  int64_t v;
  for (int i = 0; i < w->n; i++)
    if (kv_client_incr(w->c, "pipe:counter", &v, NULL) != 0)
      w->failures++;
  return NULL;
}

START_TEST(test_pipeline) {
  kv_client_t *c = client_open(srv.port, 10000, 1);
  const char *keys[] = {"pipe:0", "pipe:19999", "pipe:20000"};
  kv_string_array_t a = {NULL, 0};
  pthread_t th[4];
  worker_t w[4];
  char *v = NULL;

  populate(c, "pipe", 20000);
  ck_assert_int_eq(kv_client_mget(c, keys, 3, &a, NULL), 0);
  ck_assert_uint_eq(a.count, 3);
  ck_assert_str_eq(a.items[0], "x");
  ck_assert_str_eq(a.items[1], "x");
  ck_assert_ptr_null(a.items[2]);
  kv_string_array_free(&a);

  /* four threads share one client */
  for (int i = 0; i < 4; i++) {
    w[i].c = c;
    w[i].n = 500;
    w[i].failures = 0;
    ck_assert_int_eq(pthread_create(&th[i], NULL, incr_worker, &w[i]), 0);
  }
  for (int i = 0; i < 4; i++) {
    pthread_join(th[i], NULL);
    ck_assert_int_eq(w[i].failures, 0);
  }
  ck_assert_int_eq(kv_client_get(c, "pipe:counter", &v, NULL), 0);
  ck_assert_str_eq(v, "2000");
  synchro_mem_free(v);
  kv_client_free(c);
}
END_TEST

static TCase *tcase(const char *name, const TTest *test, int timeout) {
  TCase *tc = tcase_create(name);
  tcase_add_unchecked_fixture(tc, suite_setup, suite_teardown);
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, timeout);
  tcase_add_test(tc, test);
  return tc;
}

static Suite *kv_suite(void) {
  Suite *s = suite_create("kv");

  suite_add_tcase(s, tcase("get set", test_get_set, 20));
  suite_add_tcase(s, tcase("incr and error replies", test_incr, 20));
  suite_add_tcase(s, tcase("del", test_del, 20));
  suite_add_tcase(s, tcase("mget", test_mget, 20));
  suite_add_tcase(s, tcase("scan", test_scan, 30));
  suite_add_tcase(s, tcase("connect errors", test_connect_errors, 20));
  suite_add_tcase(s, tcase("timeout", test_timeout, 20));
  suite_add_tcase(s, tcase("server killed", test_server_killed, 30));
  suite_add_tcase(s, tcase("lifecycle", test_lifecycle, 30));
  suite_add_tcase(s, tcase("pipeline and threads", test_pipeline, 30));
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(kv_suite());
  int failed;

  srunner_run_all(sr, CK_ENV);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
