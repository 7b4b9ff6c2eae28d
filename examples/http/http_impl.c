/* examples/http/http_impl.c - the one implementation of the http module.
 *
 * Runs on the synchronizer's loop thread. Each request is a transfer (http_xfer_t): one
 * curl easy handle, its URL, headers and body, the response buffer, and the call it
 * finishes. The transfer runs on the client's multi handle, which http_multi.c drives
 * from the loop; when curl reports it done (http_xfer_done) the status decides:
 *   2xx          -> the body (parsed with jansson for the JSON methods);
 *   429, 5xx     -> retried after a backoff (Retry-After honoured, capped) while
 *                   attempts <= max_retries, then HTTP_ERATE_LIMITED / HTTP_ESERVER;
 *   404          -> HTTP_ENOT_FOUND; anything else -> HTTP_ESERVER;
 *   curl error   -> HTTP_ETIMEOUT (CURLE_OPERATION_TIMEDOUT) or HTTP_ETRANSPORT.
 * A request's cancel hook (the caller cancelled, its deadline passed, shutdown) removes
 * the easy handle from the multi handle, which aborts the transfer and closes its
 * connection, and finishes the call with the reason. close aborts every transfer and
 * releases the multi handle. */
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_internal.h"

/* Backoff before retry n (1-based): 50 ms, 100 ms, 200 ms, ... A Retry-After header
 * replaces it. Both are capped. */
#define HTTP_BACKOFF_BASE_MS 50
#define HTTP_RETRY_CAP_MS 5000
/* Largest response body kept in memory; a bigger one fails with HTTP_ETRANSPORT. */
#define HTTP_MAX_BODY (64u << 20)

enum { KIND_GET_JSON, KIND_GET, KIND_POST_JSON };

struct http_xfer_s {
  http_conn *conn;
  synchro_call_t *call;
  int kind;
  CURL *easy;
  char *url;
  char *body; /* POST: the serialized JSON */
  struct curl_slist *headers;
  char *data; /* the response body of the current attempt */
  size_t len, cap;
  int64_t attempts;
  bool in_multi;
  uv_timer_t *retry; /* the backoff timer, once a retry was needed */
  http_xfer_t *prev, *next;
  char errbuf[CURL_ERROR_SIZE];
};

/* What http_stats() reports (loop thread only). */
static int64_t live_clients, live_xfers, live_easy, n_attempts, n_retries, n_cancelled;

/* ---- curl's global state, once per process ------------------------------------------ */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void curl_init(void) { curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT); }

/* ---- transfers -------------------------------------------------------------------------- */

/* Unlinks and frees a transfer: removes its easy handle from the multi handle (aborting
 * it if it runs: curl closes the connection) and releases everything it owns. Its call
 * must be finished already (or dropped by the runtime). */
static void xfer_free(http_xfer_t *x) {
  http_conn *c = x->conn;

  if (x->prev != NULL)
    x->prev->next = x->next;
  else if (c->xfers == x)
    c->xfers = x->next;
  if (x->next != NULL)
    x->next->prev = x->prev;
  if (x->in_multi)
    curl_multi_remove_handle(c->multi, x->easy);
  if (x->easy != NULL) {
    curl_easy_cleanup(x->easy);
    live_easy--;
  }
  curl_slist_free_all(x->headers);
  http_release_handle((uv_handle_t *)x->retry);
  free(x->url);
  free(x->body);
  free(x->data);
  free(x);
  live_xfers--;
}

/* Fails the transfer's call with `code`, details (stolen) and a message. The transfer is
 * freed first: finishing the last call of a client being torn down runs its destructor
 * (http_client_destroy) right inside synchro_call_fail(), so nothing of the client may
 * be touched after a call is finished. */
static void xfer_fail(http_xfer_t *x, int code, json_t *details, const char *fmt, ...)
    SYNCHRO_PRINTF(4, 5);
static void xfer_fail(http_xfer_t *x, int code, json_t *details, const char *fmt, ...) {
  synchro_call_t *call = x->call;
  char message[CURL_ERROR_SIZE + 256];
  va_list ap;

  va_start(ap, fmt);
  vsnprintf(message, sizeof(message), fmt, ap); /* may read the transfer's strings */
  va_end(ap);
  xfer_free(x);
  synchro_call_fail(call, code, details, "%s", message);
}

static size_t on_data(char *ptr, size_t size, size_t n, void *userdata) {
  http_xfer_t *x = userdata;
  size_t len = size * n;

  if (len > HTTP_MAX_BODY - x->len)
    return 0; /* CURLE_WRITE_ERROR */
  if (x->len + len > x->cap) {
    size_t cap = x->cap != 0 ? x->cap : 4096;
    char *data;
    while (cap < x->len + len)
      cap *= 2;
    if ((data = realloc(x->data, cap)) == NULL)
      return 0;
    x->data = data;
    x->cap = cap;
  }
  memcpy(x->data + x->len, ptr, len);
  x->len += len;
  return len;
}

/* Starts one attempt: the easy handle joins the multi handle; curl's timer callback
 * asks for a call on the next loop iteration, which starts the transfer. */
static void attempt(http_xfer_t *x) {
  CURLMcode mc;

  x->len = 0;
  x->errbuf[0] = '\0';
  x->attempts++;
  n_attempts++;
  if ((mc = curl_multi_add_handle(x->conn->multi, x->easy)) != CURLM_OK) {
    xfer_fail(x, HTTP_ETRANSPORT,
              json_pack("{ss ss}", "url", x->url, "curl", curl_multi_strerror(mc)),
              "cannot start the request: %s", curl_multi_strerror(mc));
    return;
  }
  x->in_multi = true;
}

static void on_retry_timer(uv_timer_t *t) { attempt(t->data); }

static uint64_t retry_delay_ms(int64_t attempts, curl_off_t retry_after) {
  uint64_t ms;

  if (retry_after > 0) /* seconds, from a number or an HTTP date (curl parses both) */
    ms = retry_after > HTTP_RETRY_CAP_MS / 1000 ? HTTP_RETRY_CAP_MS : (uint64_t)retry_after * 1000u;
  else
    ms = (uint64_t)HTTP_BACKOFF_BASE_MS << (attempts < 10 ? attempts - 1 : 9);
  return ms < HTTP_RETRY_CAP_MS ? ms : HTTP_RETRY_CAP_MS;
}

/* Waits, then attempts again. Returns false when the timer cannot be set up. */
static bool schedule_retry(http_xfer_t *x, uint64_t delay_ms) {
  if (x->retry == NULL) {
    if ((x->retry = malloc(sizeof(*x->retry))) == NULL)
      return false;
    uv_timer_init(x->conn->loop, x->retry);
    x->retry->data = x;
  }
  n_retries++;
  /* The loop's cached time lags the clock by this iteration's work so far; measure the
   * wait from the real now so a server's Retry-After is never cut short. */
  uv_update_time(x->conn->loop);
  uv_timer_start(x->retry, on_retry_timer, delay_ms, 0);
  return true;
}

/* The transfer's 2xx answer: finishes the call with the body (freeing the transfer
 * first, as xfer_fail does). */
static void deliver(http_xfer_t *x, long status) {
  synchro_call_t *call = x->call;
  int kind = x->kind;
  char *data = x->data;
  size_t len = x->len;
  json_t *value;
  json_error_t jerr;

  if (kind != KIND_GET) {
    value = len == 0 ? json_null() /* 204, or an empty body */
                     : json_loadb(data, len, JSON_DECODE_ANY, &jerr);
    if (value == NULL) {
      xfer_fail(x, HTTP_ETRANSPORT,
                json_pack("{ss ss si}", "url", x->url, "json", jerr.text, "status", (int)status),
                "the answer is not JSON: %s", jerr.text);
      return;
    }
  }
  x->data = NULL; /* ours now */
  xfer_free(x);
  if (kind == KIND_GET) {
    http_client_get_return(call, data, len); /* copied for the caller */
  } else {
    if (kind == KIND_GET_JSON)
      http_client_get_json_return(call, value); /* deep-copied for the caller */
    else
      http_client_post_json_return(call, value);
    json_decref(value);
  }
  free(data);
}

void http_xfer_done(http_conn *c, CURL *easy, CURLcode result) {
  http_xfer_t *x = NULL;
  char *priv = NULL;
  long status = 0;
  curl_off_t retry_after = 0;

  curl_easy_getinfo(easy, CURLINFO_PRIVATE, &priv);
  x = (http_xfer_t *)(void *)priv;
  curl_multi_remove_handle(c->multi, easy); /* kept for a retry */
  x->in_multi = false;
  if (result != CURLE_OK) {
    const char *why = x->errbuf[0] != '\0' ? x->errbuf : curl_easy_strerror(result);
    if (result == CURLE_OPERATION_TIMEDOUT)
      xfer_fail(x, HTTP_ETIMEOUT, json_pack("{ss ss}", "url", x->url, "curl", why),
                "request timed out after %" PRId64 " ms: %s", c->timeout_ms, why);
    else
      xfer_fail(x, HTTP_ETRANSPORT,
                json_pack("{ss ss si}", "url", x->url, "curl", why, "curl_code", (int)result), "%s",
                why);
    return;
  }
  curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
  if (status >= 200 && status < 300) {
    deliver(x, status);
    return;
  }
  if (status == 429 || status >= 500) {
    curl_easy_getinfo(easy, CURLINFO_RETRY_AFTER, &retry_after); /* 0: none */
    if (x->attempts <= c->max_retries &&
        schedule_retry(x, retry_delay_ms(x->attempts, retry_after)))
      return;
    if (status == 429)
      xfer_fail(x, HTTP_ERATE_LIMITED,
                json_pack("{si ss sI so}", "status", (int)status, "url", x->url, "attempts",
                          (json_int_t)x->attempts, "retry_after",
                          retry_after > 0 ? json_integer((json_int_t)retry_after) : json_null()),
                "rate limited (HTTP 429) after %" PRId64 " attempt(s)", x->attempts);
    else
      xfer_fail(x, HTTP_ESERVER,
                json_pack("{si ss sI}", "status", (int)status, "url", x->url, "attempts",
                          (json_int_t)x->attempts),
                "server error (HTTP %ld) after %" PRId64 " attempt(s)", status, x->attempts);
    return;
  }
  if (status == 404)
    xfer_fail(x, HTTP_ENOT_FOUND, json_pack("{si ss}", "status", (int)status, "url", x->url),
              "not found (HTTP 404): %s", x->url);
  else
    xfer_fail(x, HTTP_ESERVER,
              json_pack("{si ss sI}", "status", (int)status, "url", x->url, "attempts",
                        (json_int_t)x->attempts),
              "unexpected HTTP status %ld", status);
}

/* The cancel hook: the caller cancelled, the deadline passed, or the synchronizer shuts
 * down. Removing the easy handle aborts the transfer and closes its connection. */
static void on_cancel(synchro_call_t *call, int reason, void *data) {
  http_xfer_t *x = data;

  (void)call;
  n_cancelled++;
  xfer_fail(x, reason, json_pack("{ss sI}", "url", x->url, "attempts", (json_int_t)x->attempts),
            "request aborted (%s): %s", synchro_err_name(reason), x->url);
}

/* Sets up the easy handle of a new transfer. Returns 0 or SYNCHRO_ENOMEM. */
static int setup_easy(http_xfer_t *x) {
  http_conn *c = x->conn;
  struct curl_slist *h;
  CURL *e;

  if ((e = x->easy = curl_easy_init()) == NULL)
    return SYNCHRO_ENOMEM;
  live_easy++;
  if ((h = curl_slist_append(NULL, x->kind == KIND_GET ? "Accept: */*"
                                                       : "Accept: application/json")) == NULL)
    return SYNCHRO_ENOMEM;
  x->headers = h;
  if (x->kind == KIND_POST_JSON) {
    /* "Expect:" turns off curl's Expect: 100-continue round trip for large bodies. */
    if ((h = curl_slist_append(h, "Content-Type: application/json")) == NULL ||
        (h = curl_slist_append(h, "Expect:")) == NULL)
      return SYNCHRO_ENOMEM;
  }
  if (c->token != NULL) {
    size_t n = strlen(c->token) + sizeof("Authorization: Bearer ");
    char *line = malloc(n);
    if (line == NULL)
      return SYNCHRO_ENOMEM;
    snprintf(line, n, "Authorization: Bearer %s", c->token);
    h = curl_slist_append(h, line);
    free(line);
    if (h == NULL)
      return SYNCHRO_ENOMEM;
  }
  curl_easy_setopt(e, CURLOPT_URL, x->url);
  curl_easy_setopt(e, CURLOPT_PRIVATE, (void *)x);
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->headers);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_data);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, (void *)x);
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->errbuf);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(e, CURLOPT_MAXREDIRS, 5L);
  curl_easy_setopt(e, CURLOPT_USERAGENT, "synchro-http-example");
  if (c->timeout_ms > 0)
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)c->timeout_ms);
  if (x->kind == KIND_POST_JSON) {
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, x->body);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(x->body));
  }
  return 0;
}

/* What every method does: make the transfer, arm the cancel hook, start attempt 1. */
static void start_request(synchro_call_t *call, http_conn *c, int kind, const char *path,
                          const json_t *body) {
  http_xfer_t *x;
  size_t n;
  int rc;

  if (c->closed) { /* the runtime refuses calls after close; kept for clarity */
    synchro_call_fail(call, SYNCHRO_ECLOSED, NULL, "client closed");
    return;
  }
  if ((rc = http_multi_start(c, synchro_call_loop(call))) != 0 ||
      (x = calloc(1, sizeof(*x))) == NULL) {
    synchro_call_fail(call, SYNCHRO_ENOMEM, NULL, "no memory for a request");
    return;
  }
  live_xfers++;
  x->conn = c;
  x->call = call;
  x->kind = kind;
  x->next = c->xfers;
  if (c->xfers != NULL)
    c->xfers->prev = x;
  c->xfers = x;
  n = strlen(c->base_url) + strlen(path) + 1;
  if ((x->url = malloc(n)) != NULL)
    snprintf(x->url, n, "%s%s", c->base_url, path); /* before setup_easy: curl copies it */
  if (x->url == NULL ||
      (kind == KIND_POST_JSON &&
       (x->body = json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY)) == NULL) ||
      setup_easy(x) != 0) {
    xfer_fail(x, SYNCHRO_ENOMEM, NULL, "no memory for a request");
    return;
  }
  synchro_call_on_cancel(call, on_cancel, x);
  attempt(x);
}

/* ---- the module -------------------------------------------------------------------------- */

void http_stats_impl(synchro_call_t *call) {
  json_t *stats =
      json_pack("{sI sI sI sI sI sI sI}", "clients", (json_int_t)live_clients, "transfers",
                (json_int_t)live_xfers, "easy_handles", (json_int_t)live_easy, "sockets",
                (json_int_t)http_live_sockets, "attempts", (json_int_t)n_attempts, "retries",
                (json_int_t)n_retries, "cancelled", (json_int_t)n_cancelled);

  if (stats == NULL) {
    http_stats_fail(call, SYNCHRO_ENOMEM, NULL);
    return;
  }
  http_stats_return(call, stats);
  json_decref(stats);
}

/* Synchronous, no I/O: checks and copies the arguments (borrowed). */
int http_client_construct(synchro_t *s, const http_client_new_args_t *args, http_conn **state) {
  http_conn *c;

  (void)s;
  if (args->base_url[0] == '\0' || args->timeout_ms < 0 || args->max_retries < 0 ||
      args->max_retries > 100)
    return SYNCHRO_EINVAL;
  pthread_once(&curl_once, curl_init);
  if (curl_init_rc != CURLE_OK)
    return SYNCHRO_ENOMEM;
  if ((c = calloc(1, sizeof(*c))) == NULL || (c->base_url = strdup(args->base_url)) == NULL ||
      (args->token != NULL && (c->token = strdup(args->token)) == NULL)) {
    if (c != NULL)
      free(c->base_url);
    free(c);
    return SYNCHRO_ENOMEM;
  }
  c->timeout_ms = args->timeout_ms;
  c->max_retries = args->max_retries;
  live_clients++;
  *state = c;
  return 0;
}

/* After close, or when the last reference went without close (never opened): no call
 * is left, so every transfer is gone already; release what remains. */
void http_client_destroy(http_conn *c) {
  while (c->xfers != NULL) /* only if the runtime dropped calls at shutdown */
    xfer_free(c->xfers);
  http_multi_stop(c);
  free(c->base_url);
  free(c->token);
  free(c);
  live_clients--;
}

/* open: no network I/O either; sets up the multi handle and its timer now rather than
 * at the first request. */
void http_client_open_impl(synchro_call_t *call, http_conn *self) {
  if (http_multi_start(self, synchro_call_loop(call)) != 0) {
    http_client_open_fail(call, SYNCHRO_ENOMEM, NULL);
    return;
  }
  http_client_open_return(call);
}

/* close: aborts every transfer (its caller gets SYNCHRO_ECLOSED), then releases the
 * easy handles, the multi handle (closing the cached connections), its sockets and
 * its timer. */
void http_client_close_impl(synchro_call_t *call, http_conn *self) {
  self->closed = true;
  while (self->xfers != NULL)
    xfer_fail(self->xfers, SYNCHRO_ECLOSED, NULL, "client closed during the request");
  http_multi_stop(self);
  http_client_close_return(call);
}

void http_client_get_json_impl(synchro_call_t *call, http_conn *self,
                               const http_client_get_json_args_t *args) {
  start_request(call, self, KIND_GET_JSON, args->path, NULL);
}

void http_client_get_impl(synchro_call_t *call, http_conn *self,
                          const http_client_get_args_t *args) {
  start_request(call, self, KIND_GET, args->path, NULL);
}

void http_client_post_json_impl(synchro_call_t *call, http_conn *self,
                                const http_client_post_json_args_t *args) {
  start_request(call, self, KIND_POST_JSON, args->path, args->body);
}
