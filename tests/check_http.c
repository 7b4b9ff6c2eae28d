/* tests/check_http.c - the http example module (examples/http: libcurl's multi interface
 * on the synchronizer's loop) against a local server, in the three calling styles.
 *
 * main() starts tests/http/server.py (Python's http.server) on a free loopback port and
 * stops it at the end; the server exits by itself when this program's end of its stdin
 * pipe closes, so it never outlives a crashed run. Each test runs in its own process
 * (fork mode, forced: each test installs a synchronizer of its own with
 * http_use_synchronizer(), which a process may do once) and closes it at the end, so
 * ASan and valgrind see every allocation released.
 *
 * Every scenario runs through each style:
 *   blocking  http_client_op(..., &out, &err);
 *   futures   http_client_op_future() + synchro_future_wait() + http_client_op_result();
 *   aio       http_client_op_aio() with the callback on a libuv host loop run by the test
 *             thread.
 * Callbacks only record; every assertion runs on the test thread. Server-side facts
 * (how many attempts reached it, whether the client closed a connection) come from the
 * server's /stats route; client-side ones (easy handles and sockets alive) from
 * http_stats(). */
#include <arpa/inet.h>
#include <check.h>
#include <curl/curl.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "http.h"
#include "support/testops.h"

extern char **environ;

#define FOREVER SYNCHRO_TIMEOUT_INFINITE

typedef enum style_e { BLOCKING, FUTURES, AIO, STYLES } style_t;
static const char *const style_names[STYLES] = {"blocking", "futures", "aio"};

/* ---- the server (started once by main; forked tests inherit its address) ------------ */

static pid_t server_pid = -1;
static int server_stdin = -1;
static char base_url[64];

static int start_server(void) {
  const char *python = getenv("PYTHON") != NULL ? getenv("PYTHON") : "python3";
  const char *script =
      getenv("HTTP_TEST_SERVER") != NULL ? getenv("HTTP_TEST_SERVER") : "tests/http/server.py";
  char *argv[] = {(char *)python, (char *)script, (char *)"--exit-on-stdin-eof", NULL};
  posix_spawn_file_actions_t fa;
  int in[2], out[2], port = 0;
  char line[64];
  FILE *f;

  if (pipe(in) != 0 || pipe(out) != 0)
    return -1;
  fcntl(in[1], F_SETFD, FD_CLOEXEC);
  fcntl(out[0], F_SETFD, FD_CLOEXEC);
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, in[0], 0);
  posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  posix_spawn_file_actions_addclose(&fa, in[0]);
  posix_spawn_file_actions_addclose(&fa, out[1]);
  if (posix_spawnp(&server_pid, python, &fa, NULL, argv, environ) != 0)
    server_pid = -1;
  posix_spawn_file_actions_destroy(&fa);
  close(in[0]);
  close(out[1]);
  server_stdin = in[1];
  if (server_pid < 0 || (f = fdopen(out[0], "r")) == NULL)
    return -1;
  if (fgets(line, sizeof(line), f) == NULL || sscanf(line, "PORT %d", &port) != 1)
    port = 0;
  fclose(f);
  if (port <= 0)
    return -1;
  snprintf(base_url, sizeof(base_url), "http://127.0.0.1:%d", port);
  return 0;
}

static void stop_server(void) {
  if (server_stdin >= 0)
    close(server_stdin); /* the server exits at end of file */
  if (server_pid > 0) {
    kill(server_pid, SIGTERM);
    waitpid(server_pid, NULL, 0);
  }
}

/* ---- per test: a synchronizer of its own and a host loop ----------------------------- */

static synchro_t *sync_;
static uv_loop_t loop;
static synchro_host_t *host;
static int64_t default_timeout_ms;

static void setup(void) {
  synchro_options_t opts;

  synchro_options_init(&opts);
  opts.name = "check_http";
  if (default_timeout_ms > 0)
    opts.default_timeout_ms = default_timeout_ms;
  ck_assert_int_eq(synchro_new(&sync_, &opts), 0);
  ck_assert_int_eq(http_use_synchronizer(sync_), 0);
  ck_assert_int_eq(uv_loop_init(&loop), 0);
  ck_assert_int_eq(synchro_host_new_uv(&host, &loop), 0);
}

static void teardown(void) {
  synchro_host_free(host);
  uv_run(&loop, UV_RUN_NOWAIT);
  uv_loop_close(&loop);
  synchro_close(sync_, 2000);
  synchro_free(sync_);
}

/* The deadline tests: every call gets a 300 ms deadline from the synchronizer. */
static void setup_deadline(void) {
  default_timeout_ms = 300;
  setup();
}

static double now_ms(void) { return test_now_ms(); }

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

static http_client_t *new_client(int64_t timeout_ms, int64_t retries, const char *token) {
  http_client_t *c = NULL;
  synchro_error_t *err = NULL;
  int rc = http_client_new(base_url, timeout_ms, retries, token, &c, &err);

  ck_assert_msg(rc == 0, "http_client_new: %s", synchro_error_message(err));
  ck_assert_int_eq(http_client_open(c, NULL), 0);
  return c;
}

static void close_client(http_client_t *c) {
  ck_assert_int_eq(http_client_close(c, NULL), 0);
  http_client_free(c);
}

/* ---- what one call did, in any style ----------------------------------------------------- */

typedef struct outcome_s {
  int status;
  json_t *value;      /* JSON results (a reference of ours) */
  http_bytes_t bytes; /* bytes results (ours) */
  int err_code;
  char message[256];
  char origin[64];
  json_t *details; /* a copy of the error's details */
  double elapsed_ms;
  bool done;
} outcome_t;

static void outcome_clear(outcome_t *o) {
  json_decref(o->value);
  json_decref(o->details);
  synchro_mem_free(o->bytes.data);
  memset(o, 0, sizeof(*o));
}

static void record_error(outcome_t *o, const synchro_error_t *err) {
  if (err == NULL)
    return;
  o->err_code = synchro_error_code(err);
  snprintf(o->message, sizeof(o->message), "%s", synchro_error_message(err));
  snprintf(o->origin, sizeof(o->origin), "%s", synchro_error_origin(err));
  if (synchro_error_details(err) != NULL)
    o->details = json_deep_copy(synchro_error_details(err));
}

/* aio callbacks: the result is borrowed during the callback; record only. */
static void on_json(int status, json_t *result, const synchro_error_t *err, void *data) {
  outcome_t *o = data;
  o->status = status;
  o->value = result != NULL ? json_incref(result) : NULL;
  record_error(o, err);
  o->done = true;
}

static void on_bytes(int status, http_bytes_t result, const synchro_error_t *err, void *data) {
  outcome_t *o = data;
  o->status = status;
  if (status == 0) {
    o->bytes.data = synchro_mem_malloc(result.len + 1);
    if (o->bytes.data != NULL && result.len > 0)
      memcpy(o->bytes.data, result.data, result.len);
    o->bytes.len = result.len;
  }
  record_error(o, err);
  o->done = true;
}

static void run_loop_until(const bool *done) {
  while (!*done)
    uv_run(&loop, UV_RUN_ONCE);
}

/* Waits for a future and records its outcome. */
static void finish_future(outcome_t *o, synchro_future_t *f, int status) {
  o->status = status;
  if (status != 0)
    record_error(o, synchro_future_error(f));
  synchro_future_free(f);
}

/* get_json(path) in one style. */
static void run_get_json(http_client_t *c, const char *path, style_t style, outcome_t *o) {
  double t0 = now_ms();
  synchro_error_t *err = NULL;
  synchro_future_t *f = NULL;

  memset(o, 0, sizeof(*o));
  switch (style) {
  case BLOCKING:
    o->status = http_client_get_json(c, path, &o->value, &err);
    record_error(o, err);
    synchro_error_free(err);
    break;
  case FUTURES:
    ck_assert_int_eq(http_client_get_json_future(c, path, &f), 0);
    synchro_future_wait(f, FOREVER);
    finish_future(o, f, http_client_get_json_result(f, &o->value));
    break;
  default:
    ck_assert_int_eq(http_client_get_json_aio(c, path, host, on_json, o), 0);
    run_loop_until(&o->done);
    break;
  }
  o->elapsed_ms = now_ms() - t0;
}

static void run_get(http_client_t *c, const char *path, style_t style, outcome_t *o) {
  double t0 = now_ms();
  synchro_error_t *err = NULL;
  synchro_future_t *f = NULL;

  memset(o, 0, sizeof(*o));
  switch (style) {
  case BLOCKING:
    o->status = http_client_get(c, path, &o->bytes, &err);
    record_error(o, err);
    synchro_error_free(err);
    break;
  case FUTURES:
    ck_assert_int_eq(http_client_get_future(c, path, &f), 0);
    synchro_future_wait(f, FOREVER);
    finish_future(o, f, http_client_get_result(f, &o->bytes));
    break;
  default:
    ck_assert_int_eq(http_client_get_aio(c, path, host, on_bytes, o), 0);
    run_loop_until(&o->done);
    break;
  }
  o->elapsed_ms = now_ms() - t0;
}

static void run_post_json(http_client_t *c, const char *path, const json_t *body, style_t style,
                          outcome_t *o) {
  double t0 = now_ms();
  synchro_error_t *err = NULL;
  synchro_future_t *f = NULL;

  memset(o, 0, sizeof(*o));
  switch (style) {
  case BLOCKING:
    o->status = http_client_post_json(c, path, body, &o->value, &err);
    record_error(o, err);
    synchro_error_free(err);
    break;
  case FUTURES:
    ck_assert_int_eq(http_client_post_json_future(c, path, body, &f), 0);
    synchro_future_wait(f, FOREVER);
    finish_future(o, f, http_client_post_json_result(f, &o->value));
    break;
  default:
    ck_assert_int_eq(http_client_post_json_aio(c, path, body, host, on_json, o), 0);
    run_loop_until(&o->done);
    break;
  }
  o->elapsed_ms = now_ms() - t0;
}

/* ---- helpers on results ------------------------------------------------------------------ */

static int64_t int_at(const json_t *obj, const char *key) {
  return json_integer_value(json_object_get(obj, key));
}

static const char *str_at(const json_t *obj, const char *key) {
  const char *s = json_string_value(json_object_get(obj, key));
  return s != NULL ? s : "";
}

/* The error a failed call must carry: code, origin, message, details with status. */
static void assert_failed(const outcome_t *o, style_t style, int code, const char *origin) {
  ck_assert_msg(o->status == code, "%s: status %d (%s), expected %d", style_names[style], o->status,
                o->message, code);
  ck_assert_msg(o->err_code == code, "%s: error code %d", style_names[style], o->err_code);
  ck_assert_str_eq(o->origin, origin);
  ck_assert_msg(o->message[0] != '\0', "%s: empty message", style_names[style]);
}

/* The server's counters for `key` (a fresh client of its own: no retries). */
static json_t *server_stats(const char *key) {
  http_client_t *c = NULL;
  json_t *doc = NULL;
  char path[128];
  int rc;

  snprintf(path, sizeof(path), "/stats?key=%s", key);
  ck_assert_int_eq(http_client_new(base_url, 5000, 0, NULL, &c, NULL), 0);
  rc = http_client_get_json(c, path, &doc, NULL);
  http_client_free(c);
  ck_assert_int_eq(rc, 0);
  return doc;
}

static int64_t server_hits(const char *key) {
  json_t *doc = server_stats(key);
  int64_t hits = int_at(doc, "hits");
  json_decref(doc);
  return hits;
}

/* Polls the server until its /slow handler for `key` saw `field` become true. */
static bool server_saw(const char *key, const char *field, int within_ms) {
  double end = now_ms() + within_ms;
  do {
    json_t *doc = server_stats(key);
    bool yes = json_is_true(json_object_get(doc, field));
    json_decref(doc);
    if (yes)
      return true;
    sleep_ms(20);
  } while (now_ms() < end);
  return false;
}

/* One counter of http_stats(). */
static int64_t client_stat(const char *name) {
  json_t *doc = NULL;
  int64_t v;
  ck_assert_int_eq(http_stats(&doc, NULL), 0);
  v = int_at(doc, name);
  json_decref(doc);
  return v;
}

/* Waits until the module holds no transfer, easy handle or socket (close and cancel
 * release them on the loop thread; sockets close when curl's connection cache does). */
static void assert_released(bool sockets_too) {
  ck_assert_int_eq(client_stat("transfers"), 0);
  ck_assert_int_eq(client_stat("easy_handles"), 0);
  if (sockets_too)
    ck_assert_int_eq(client_stat("sockets"), 0);
}

/* ---- the tests ------------------------------------------------------------------------------ */

START_TEST(test_get_json) {
  http_client_t *c = new_client(5000, 0, NULL);
  outcome_t o;
  int s;

  for (s = 0; s < STYLES; s++) {
    run_get_json(c, "/json?id=7", (style_t)s, &o);
    ck_assert_msg(o.status == 0, "%s: %s", style_names[s], o.message);
    ck_assert_str_eq(str_at(o.value, "hello"), "world");
    ck_assert_int_eq(int_at(o.value, "id"), 7);
    ck_assert_int_eq(json_array_size(json_object_get(o.value, "items")), 3);
    outcome_clear(&o);
  }
  close_client(c);
  assert_released(true);
}
END_TEST

START_TEST(test_get_bytes) {
  http_client_t *c = new_client(5000, 0, NULL);
  outcome_t o;
  size_t i;
  int s;

  for (s = 0; s < STYLES; s++) {
    const unsigned char *b;
    run_get(c, "/bytes?n=100000", (style_t)s, &o);
    ck_assert_msg(o.status == 0, "%s: %s", style_names[s], o.message);
    ck_assert_uint_eq(o.bytes.len, 100000);
    b = o.bytes.data;
    for (i = 0; i < o.bytes.len; i++)
      if (b[i] != (i & 0xff))
        ck_abort_msg("%s: byte %zu is %u", style_names[s], i, b[i]);
    outcome_clear(&o);
    run_get(c, "/bytes?n=0", (style_t)s, &o); /* an empty body */
    ck_assert_int_eq(o.status, 0);
    ck_assert_uint_eq(o.bytes.len, 0);
    outcome_clear(&o);
  }
  close_client(c);
}
END_TEST

START_TEST(test_post_json) {
  http_client_t *c = new_client(5000, 0, "s3cret");
  json_t *body = json_pack("{ss si s[iii] s{sb}}", "name", "synchro", "n", 42, "list", 1, 2, 3,
                           "nested", "ok", 1);
  outcome_t o;
  int s;

  for (s = 0; s < STYLES; s++) {
    run_post_json(c, "/echo", body, (style_t)s, &o);
    ck_assert_msg(o.status == 0, "%s: %s", style_names[s], o.message);
    ck_assert_msg(json_equal(json_object_get(o.value, "echo"), body), "%s: echo differs",
                  style_names[s]);
    ck_assert_str_eq(str_at(o.value, "authorization"), "Bearer s3cret");
    ck_assert_str_eq(str_at(o.value, "content_type"), "application/json");
    outcome_clear(&o);
  }
  json_decref(body);
  close_client(c);
}
END_TEST

START_TEST(test_not_found) {
  http_client_t *c = new_client(5000, 3, NULL);
  json_t *body = json_pack("{si}", "x", 1);
  outcome_t o;
  int s;

  for (s = 0; s < STYLES; s++) {
    run_get_json(c, "/404", (style_t)s, &o);
    assert_failed(&o, (style_t)s, HTTP_ENOT_FOUND, "http_client_get_json");
    ck_assert_int_eq(int_at(o.details, "status"), 404);
    ck_assert_ptr_nonnull(strstr(str_at(o.details, "url"), "/404"));
    outcome_clear(&o);
    run_get(c, "/404", (style_t)s, &o);
    assert_failed(&o, (style_t)s, HTTP_ENOT_FOUND, "http_client_get");
    outcome_clear(&o);
    run_post_json(c, "/no-such-route", body, (style_t)s, &o);
    assert_failed(&o, (style_t)s, HTTP_ENOT_FOUND, "http_client_post_json");
    outcome_clear(&o);
  }
  ck_assert_int_eq(client_stat("retries"), 0); /* 404 is not retried */
  json_decref(body);
  close_client(c);
}
END_TEST

/* Always 429 with Retry-After: 1; one retry allowed: two attempts, about 1 s apart. */
START_TEST(test_rate_limited) {
  http_client_t *c = new_client(5000, 1, NULL);
  outcome_t o;
  int s;

  for (s = 0; s < STYLES; s++) {
    char key[32], path[64];
    snprintf(key, sizeof(key), "rl-%d", s);
    snprintf(path, sizeof(path), "/429?key=%s&ra=1", key);
    run_get_json(c, path, (style_t)s, &o);
    assert_failed(&o, (style_t)s, HTTP_ERATE_LIMITED, "http_client_get_json");
    ck_assert_int_eq(int_at(o.details, "status"), 429);
    ck_assert_int_eq(int_at(o.details, "retry_after"), 1);
    ck_assert_int_eq(int_at(o.details, "attempts"), 2);
    ck_assert_msg(o.elapsed_ms >= 990, "%s: %.0f ms: Retry-After not honoured", style_names[s],
                  o.elapsed_ms);
    ck_assert_int_eq(server_hits(key), 2);
    outcome_clear(&o);
  }
  close_client(c);
}
END_TEST

/* 429 once (Retry-After: 1), then 200: the retry waits the second the server asked for. */
START_TEST(test_retry_after) {
  http_client_t *c = new_client(5000, 3, NULL);
  outcome_t o;
  int s;

  for (s = 0; s < STYLES; s++) {
    char key[32], path[64];
    snprintf(key, sizeof(key), "ra-%d", s);
    snprintf(path, sizeof(path), "/429?key=%s&n=1&ra=1", key);
    run_get_json(c, path, (style_t)s, &o);
    ck_assert_msg(o.status == 0, "%s: %s", style_names[s], o.message);
    ck_assert_int_eq(int_at(o.value, "attempts"), 2);
    ck_assert_msg(o.elapsed_ms >= 990 && o.elapsed_ms < 4000, "%s: %.0f ms", style_names[s],
                  o.elapsed_ms);
    ck_assert_int_eq(server_hits(key), 2);
    outcome_clear(&o);
  }
  ck_assert_int_eq(client_stat("retries"), 3);
  close_client(c);
}
END_TEST

/* A Retry-After beyond the cap (5 s) waits the cap, not the server's 60 s. */
START_TEST(test_retry_after_cap) {
  http_client_t *c = new_client(5000, 1, NULL);
  outcome_t o;

  run_get_json(c, "/429?key=cap&n=1&ra=60", BLOCKING, &o);
  ck_assert_msg(o.status == 0, "%s", o.message);
  ck_assert_msg(o.elapsed_ms >= 4990 && o.elapsed_ms < 9000, "%.0f ms", o.elapsed_ms);
  outcome_clear(&o);
  close_client(c);
}
END_TEST

/* 5xx: retried with backoff (50 ms, 100 ms, ...) up to max_retries. */
START_TEST(test_server_retries) {
  http_client_t *c = new_client(5000, 2, NULL);
  outcome_t o;
  int s;

  for (s = 0; s < STYLES; s++) {
    char key[32], path[64];
    /* fails twice, then succeeds: the third attempt (the second retry) answers */
    snprintf(key, sizeof(key), "ok-%d", s);
    snprintf(path, sizeof(path), "/500-then-200?key=%s&n=2", key);
    run_get_json(c, path, (style_t)s, &o);
    ck_assert_msg(o.status == 0, "%s: %s", style_names[s], o.message);
    ck_assert_int_eq(int_at(o.value, "attempts"), 3);
    ck_assert_msg(o.elapsed_ms >= 145, "%s: %.0f ms: no backoff", style_names[s], o.elapsed_ms);
    ck_assert_int_eq(server_hits(key), 3);
    outcome_clear(&o);
    /* fails five times: after 1 + 2 attempts the call gives up */
    snprintf(key, sizeof(key), "ko-%d", s);
    snprintf(path, sizeof(path), "/500-then-200?key=%s&n=5", key);
    run_get_json(c, path, (style_t)s, &o);
    assert_failed(&o, (style_t)s, HTTP_ESERVER, "http_client_get_json");
    ck_assert_int_eq(int_at(o.details, "status"), 500);
    ck_assert_int_eq(int_at(o.details, "attempts"), 3);
    ck_assert_int_eq(server_hits(key), 3);
    outcome_clear(&o);
  }
  close_client(c);
}
END_TEST

/* The client's own timeout_ms (curl's CURLOPT_TIMEOUT_MS): HTTP_ETIMEOUT. */
START_TEST(test_timeout) {
  http_client_t *c = new_client(200, 2, NULL);
  outcome_t o;
  int s;

  for (s = 0; s < STYLES; s++) {
    char key[32], path[64];
    snprintf(key, sizeof(key), "to-%d", s);
    snprintf(path, sizeof(path), "/slow?key=%s&ms=3000", key);
    run_get_json(c, path, (style_t)s, &o);
    assert_failed(&o, (style_t)s, HTTP_ETIMEOUT, "http_client_get_json");
    ck_assert_msg(o.elapsed_ms >= 190 && o.elapsed_ms < 2000, "%s: %.0f ms", style_names[s],
                  o.elapsed_ms);
    ck_assert_msg(str_at(o.details, "curl")[0] != '\0', "%s: no curl message", style_names[s]);
    ck_assert_msg(server_saw(key, "disconnected", 3000), "%s: connection not closed",
                  style_names[s]);
    outcome_clear(&o);
  }
  ck_assert_int_eq(server_hits("to-0"), 1); /* a timeout is not retried */
  close_client(c);
}
END_TEST

START_TEST(test_transport) {
  http_client_t *c = new_client(5000, 2, NULL), *refused = NULL;
  outcome_t o;
  int s, fd, port = 0;
  char url[64];

  /* a port nothing listens on: bind one, note it, close it */
  {
    struct sockaddr_in sa;
    socklen_t len = sizeof(sa);
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    port = ntohs(sa.sin_port);
    close(fd);
  }
  snprintf(url, sizeof(url), "http://127.0.0.1:%d", port);
  ck_assert_int_eq(http_client_new(url, 5000, 2, NULL, &refused, NULL), 0);

  for (s = 0; s < STYLES; s++) {
    /* the server closes the connection without answering */
    run_get_json(c, "/close", (style_t)s, &o);
    assert_failed(&o, (style_t)s, HTTP_ETRANSPORT, "http_client_get_json");
    ck_assert_int_eq(int_at(o.details, "curl_code"), CURLE_GOT_NOTHING);
    ck_assert_msg(str_at(o.details, "curl")[0] != '\0', "no curl message");
    outcome_clear(&o);
    /* connection refused */
    run_get(refused, "/json", (style_t)s, &o);
    assert_failed(&o, (style_t)s, HTTP_ETRANSPORT, "http_client_get");
    ck_assert_int_eq(int_at(o.details, "curl_code"), CURLE_COULDNT_CONNECT);
    outcome_clear(&o);
    /* a 200 whose body is not JSON */
    run_get_json(c, "/bad-json", (style_t)s, &o);
    assert_failed(&o, (style_t)s, HTTP_ETRANSPORT, "http_client_get_json");
    ck_assert_msg(str_at(o.details, "json")[0] != '\0', "no jansson message");
    outcome_clear(&o);
  }
  ck_assert_int_eq(client_stat("retries"), 0);
  http_client_free(refused); /* never opened: released by its destructor */
  close_client(c);
  assert_released(false);
}
END_TEST

/* Cancelling a future aborts its transfer on the loop: the server sees the connection
 * close; freeing the host cancels a pending _aio call the same way. */
START_TEST(test_cancel) {
  http_client_t *c = new_client(10000, 0, NULL);
  synchro_future_t *f;
  outcome_t o;
  double t0;
  int rc;

  ck_assert_int_eq(http_client_get_json_future(c, "/slow?key=cancel-f&ms=8000", &f), 0);
  ck_assert_msg(server_saw("cancel-f", "started", 3000), "request never reached the server");
  t0 = now_ms();
  ck_assert_int_eq(synchro_future_cancel(f), 0);
  rc = synchro_future_wait(f, 5000);
  ck_assert_int_eq(rc, SYNCHRO_ECANCELED);
  ck_assert_msg(now_ms() - t0 < 1000, "cancel took %.0f ms", now_ms() - t0);
  synchro_future_free(f);
  ck_assert_msg(server_saw("cancel-f", "disconnected", 3000), "connection not closed");
  ck_assert_int_eq(client_stat("cancelled"), 1);
  assert_released(false);

  /* _aio: the host goes away while the call is pending */
  memset(&o, 0, sizeof(o));
  ck_assert_int_eq(http_client_get_json_aio(c, "/slow?key=cancel-a&ms=8000", host, on_json, &o), 0);
  ck_assert_msg(server_saw("cancel-a", "started", 3000), "request never reached the server");
  synchro_host_free(host);
  host = NULL;
  ck_assert_msg(server_saw("cancel-a", "disconnected", 3000), "connection not closed");
  ck_assert(!o.done); /* its callback never runs */
  ck_assert_int_eq(client_stat("cancelled"), 2);
  assert_released(false);
  ck_assert_int_eq(synchro_host_new_uv(&host, &loop), 0); /* for teardown */
  close_client(c);
}
END_TEST

/* A call deadline (here the synchronizer's default, 300 ms) aborts the transfer. */
START_TEST(test_deadline) {
  http_client_t *c = new_client(10000, 0, NULL);
  outcome_t o;
  int s;

  for (s = 0; s < STYLES; s++) {
    char key[32], path[64];
    snprintf(key, sizeof(key), "dl-%d", s);
    snprintf(path, sizeof(path), "/slow?key=%s&ms=5000", key);
    run_get_json(c, path, (style_t)s, &o);
    ck_assert_msg(o.status == SYNCHRO_ETIMEDOUT, "%s: status %d (%s)", style_names[s], o.status,
                  o.message);
    ck_assert_msg(o.elapsed_ms >= 250 && o.elapsed_ms < 2000, "%s: %.0f ms", style_names[s],
                  o.elapsed_ms);
    ck_assert_msg(server_saw(key, "disconnected", 3000), "%s: connection not closed",
                  style_names[s]);
    outcome_clear(&o);
  }
  ck_assert_int_eq(client_stat("cancelled"), 3);
  close_client(c);
  assert_released(true);
}
END_TEST

/* close aborts the requests in flight (SYNCHRO_ECLOSED) and releases the multi handle,
 * every easy handle and every socket; later calls fail with SYNCHRO_ECLOSED. */
START_TEST(test_close) {
  http_client_t *c = new_client(10000, 0, NULL);
  synchro_future_t *fs[3];
  json_t *v = NULL;
  int i;

  for (i = 0; i < 3; i++) {
    char path[64];
    snprintf(path, sizeof(path), "/slow?key=close-%d&ms=8000", i);
    ck_assert_int_eq(http_client_get_json_future(c, path, &fs[i]), 0);
  }
  ck_assert(server_saw("close-0", "started", 3000));
  ck_assert(server_saw("close-2", "started", 3000));
  ck_assert_int_eq(client_stat("easy_handles"), 3);
  ck_assert_int_ge(client_stat("sockets"), 3);
  ck_assert_int_eq(http_client_close(c, NULL), 0);
  for (i = 0; i < 3; i++) {
    ck_assert_int_eq(synchro_future_wait(fs[i], 2000), SYNCHRO_ECLOSED);
    synchro_future_free(fs[i]);
  }
  assert_released(true);
  ck_assert(server_saw("close-0", "disconnected", 3000));
  ck_assert(server_saw("close-1", "disconnected", 3000));
  ck_assert(server_saw("close-2", "disconnected", 3000));
  ck_assert_int_eq(http_client_get_json(c, "/json", &v, NULL), SYNCHRO_ECLOSED);
  ck_assert_int_eq(http_client_close(c, NULL), SYNCHRO_EALREADY);
  http_client_free(c);
  ck_assert_int_eq(client_stat("clients"), 0);
}
END_TEST

/* The last reference dropped with a request in flight on a client never opened: the
 * request is cancelled and the destructor releases everything. */
START_TEST(test_free_unopened) {
  http_client_t *c = NULL;
  synchro_future_t *f;

  ck_assert_int_eq(http_client_new(base_url, 10000, 0, NULL, &c, NULL), 0);
  ck_assert_int_eq(http_client_get_json_future(c, "/slow?key=unopened&ms=8000", &f), 0);
  ck_assert(server_saw("unopened", "started", 3000));
  http_client_free(c);
  ck_assert_int_eq(synchro_future_wait(f, 2000), SYNCHRO_ECANCELED);
  synchro_future_free(f);
  ck_assert(server_saw("unopened", "disconnected", 3000));
  ck_assert_int_eq(client_stat("clients"), 0);
  assert_released(true);
}
END_TEST

START_TEST(test_constructor) {
  http_client_t *c = (http_client_t *)1;
  synchro_error_t *err = NULL;

  ck_assert_int_eq(http_client_new(NULL, 0, 0, NULL, &c, NULL), SYNCHRO_EINVAL);
  ck_assert_ptr_null(c);
  ck_assert_int_eq(http_client_new("", 0, 0, NULL, &c, &err), SYNCHRO_EINVAL);
  ck_assert_ptr_nonnull(err);
  synchro_error_free(err);
  ck_assert_int_eq(http_client_new(base_url, -1, 0, NULL, &c, NULL), SYNCHRO_EINVAL);
  ck_assert_int_eq(http_client_new(base_url, 0, -1, NULL, &c, NULL), SYNCHRO_EINVAL);
  ck_assert_int_eq(http_client_new(base_url, 0, 101, NULL, &c, NULL), SYNCHRO_EINVAL);
  ck_assert_int_eq(client_stat("clients"), 0);
  /* timeout 0 (none) and a NULL token are fine */
  ck_assert_int_eq(http_client_new(base_url, 0, 0, NULL, &c, NULL), 0);
  ck_assert_int_eq(client_stat("clients"), 1);
  http_client_free(c);
}
END_TEST

/* synchro_close() with clients left: the open one is closed by the runtime (its request
 * in flight fails), the one never opened but used (a multi handle, a cached connection)
 * is destroyed after the loop stopped; nothing leaks (ASan, valgrind). */
START_TEST(test_shutdown) {
  http_client_t *opened = new_client(10000, 0, NULL), *unopened = NULL;
  synchro_future_t *f;
  json_t *doc = NULL;
  int rc;

  ck_assert_int_eq(http_client_new(base_url, 10000, 0, NULL, &unopened, NULL), 0);
  ck_assert_int_eq(http_client_get_json(unopened, "/json", &doc, NULL), 0);
  json_decref(doc);
  ck_assert_int_eq(http_client_get_json_future(opened, "/slow?key=shutdown&ms=8000", &f), 0);
  ck_assert(server_saw("shutdown", "started", 3000));
  ck_assert_int_eq(synchro_close(sync_, 1000), 0);
  rc = synchro_future_wait(f, 2000);
  ck_assert_msg(rc == SYNCHRO_ECLOSED || rc == SYNCHRO_ESHUTDOWN, "status %d", rc);
  synchro_future_free(f);
  ck_assert_int_eq(http_client_get_json(opened, "/json", &doc, NULL), SYNCHRO_ECLOSED);
  http_client_free(opened);
  http_client_free(unopened);
}
END_TEST

/* gather: many futures at once against the local server; all succeed. */
START_TEST(test_many_futures) {
  long n = test_scaled(1000), i;
  http_client_t *c = new_client(30000, 2, NULL);
  synchro_future_t **fs = calloc((size_t)n, sizeof(*fs));

  ck_assert_ptr_nonnull(fs);
  for (i = 0; i < n; i++) {
    char path[64];
    snprintf(path, sizeof(path), "/json?id=%ld", i);
    ck_assert_int_eq(http_client_get_json_future(c, path, &fs[i]), 0);
  }
  ck_assert_int_eq(synchro_future_wait_all(fs, (size_t)n, 60000), 0);
  for (i = 0; i < n; i++) {
    json_t *doc = NULL;
    int rc = http_client_get_json_result(fs[i], &doc);
    const synchro_error_t *e = synchro_future_error(fs[i]);
    ck_assert_msg(rc == 0, "request %ld: %s", i, synchro_error_message(e));
    ck_assert_int_eq(int_at(doc, "id"), i);
    json_decref(doc);
    synchro_future_free(fs[i]);
  }
  free(fs);
  ck_assert_int_le(client_stat("sockets"), 32); /* HTTP_MAX_HOST_CONNECTIONS */
  close_client(c);
  assert_released(true);
}
END_TEST

static TCase *tcase(const char *name, const TTest *test, int timeout_s) {
  TCase *tc = tcase_create(name);
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, timeout_s);
  tcase_add_test(tc, test);
  return tc;
}

static Suite *http_suite(void) {
  Suite *s = suite_create("http");
  TCase *tc;

  suite_add_tcase(s, tcase("get_json", test_get_json, 20));
  suite_add_tcase(s, tcase("get bytes", test_get_bytes, 20));
  suite_add_tcase(s, tcase("post_json", test_post_json, 20));
  suite_add_tcase(s, tcase("not found", test_not_found, 20));
  suite_add_tcase(s, tcase("rate limited", test_rate_limited, 30));
  suite_add_tcase(s, tcase("retry after", test_retry_after, 30));
  suite_add_tcase(s, tcase("retry after cap", test_retry_after_cap, 30));
  suite_add_tcase(s, tcase("server retries", test_server_retries, 30));
  suite_add_tcase(s, tcase("timeout", test_timeout, 30));
  suite_add_tcase(s, tcase("transport", test_transport, 30));
  suite_add_tcase(s, tcase("cancel", test_cancel, 30));
  tc = tcase_create("deadline");
  tcase_add_checked_fixture(tc, setup_deadline, teardown);
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, test_deadline);
  suite_add_tcase(s, tc);
  suite_add_tcase(s, tcase("close", test_close, 30));
  suite_add_tcase(s, tcase("free unopened", test_free_unopened, 30));
  suite_add_tcase(s, tcase("constructor", test_constructor, 20));
  suite_add_tcase(s, tcase("shutdown", test_shutdown, 30));
  suite_add_tcase(s, tcase("many futures", test_many_futures, 120));
  return s;
}

int main(void) {
  SRunner *sr;
  int failed;

  if (start_server() != 0) {
    fprintf(stderr, "check_http: cannot start tests/http/server.py (python3)\n");
    stop_server();
    return EXIT_FAILURE;
  }
  sr = srunner_create(http_suite());
  srunner_set_fork_status(sr, CK_FORK); /* one synchronizer per test process */
  srunner_run_all(sr, CK_ENV);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  stop_server();
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
