/* examples/http/http_internal.h - what the two implementation files share.
 *
 * http_multi.c drives a curl multi handle from the synchronizer's libuv loop (one
 * uv_poll_t per socket curl wants watched, one uv_timer_t for curl's timeout);
 * http_impl.c implements the module (the client object, its requests, retries,
 * cancellation). Everything here runs on the synchronizer's loop thread. */
#ifndef HTTP_INTERNAL_H
#define HTTP_INTERNAL_H

#include <curl/curl.h>
#include <stdbool.h>
#include <stdint.h>

#include "http_impl.h"

typedef struct http_sock_s http_sock_t;
typedef struct http_xfer_s http_xfer_t;

/* Transfers to one host running at once (curl queues the others): keeps the number of
 * sockets bounded when thousands of requests are started together. */
#define HTTP_MAX_HOST_CONNECTIONS 32

/* The state of one client (the object's IMPL type). */
struct http_conn {
  char *base_url;
  char *token; /* NULL: no Authorization header */
  int64_t timeout_ms;
  int64_t max_retries;
  uv_loop_t *loop;    /* set by http_multi_start() */
  CURLM *multi;       /* NULL until open or the first request, and after close */
  uv_timer_t *timer;  /* curl's timeout (CURLMOPT_TIMERFUNCTION) */
  http_sock_t *socks; /* every socket curl asked us to watch */
  http_xfer_t *xfers; /* every request in flight (running, queued or waiting to retry) */
  bool stopping;      /* inside curl_multi_cleanup() */
  bool closed;        /* close ran: requests refused */
};

/* Creates c->multi and its timer on `loop` and installs the socket and timer callbacks.
 * Idempotent. Returns 0 or SYNCHRO_ENOMEM. */
int http_multi_start(http_conn *c, uv_loop_t *loop);

/* Releases c->multi (every easy handle must have been removed first), its timer and
 * every socket watcher. Idempotent. */
void http_multi_stop(http_conn *c);

/* Closes a heap-allocated libuv handle (the handle is the first member of its
 * allocation) and frees it once libuv is done with it. */
void http_release_handle(uv_handle_t *h);

/* Called by http_multi.c for each transfer curl reports done (CURLMSG_DONE), outside
 * any curl callback, so the easy handle may be removed or re-added. */
void http_xfer_done(http_conn *c, CURL *easy, CURLcode result);

/* Sockets watched now, in this process (for http_stats()). */
extern int64_t http_live_sockets;

#endif /* HTTP_INTERNAL_H */
