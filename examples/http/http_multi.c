/* examples/http/http_multi.c - libcurl's multi interface on the synchronizer's libuv loop.
 *
 * The documented "multi_socket" integration (curl's docs/examples/multi-uv.c):
 *   - curl tells us which sockets to watch through CURLMOPT_SOCKETFUNCTION; each one gets
 *     a uv_poll_t (made on first sight, restarted with new events, closed on
 *     CURL_POLL_REMOVE);
 *   - curl tells us when it wants to be called back through CURLMOPT_TIMERFUNCTION; one
 *     uv_timer_t per multi handle is (re)armed or stopped;
 *   - when a socket is ready or the timer fires we call curl_multi_socket_action(), then
 *     drain curl_multi_info_read() and hand every finished transfer to http_impl.c.
 * curl never blocks and never runs a thread of its own: all of it happens in libuv
 * callbacks on the loop thread. Callbacks of curl (on_socket, on_timer_set) only touch
 * libuv handles; adding and removing easy handles happens outside them. */
#include <stdlib.h>

#include "http_internal.h"

int64_t http_live_sockets;

struct http_sock_s {
  uv_poll_t poll; /* first: the allocation is the handle (see http_release_handle) */
  curl_socket_t fd;
  http_conn *conn;
  http_sock_t *prev, *next;
};

static void on_handle_closed(uv_handle_t *h) { free(h); }

void http_release_handle(uv_handle_t *h) {
  if (h == NULL)
    return;
  if (!uv_is_closing(h))
    uv_close(h, on_handle_closed); /* also stops it: the fd may be reused at once */
  else
    free(h); /* closed by the runtime's shutdown walk (which closes every handle with no
              * callback) and the loop has stopped since: libuv is done with it */
}

/* Hands every transfer curl finished to the implementation. */
static void drain_done(http_conn *c) {
  CURLMsg *msg;
  int left;

  while (c->multi != NULL && (msg = curl_multi_info_read(c->multi, &left)) != NULL) {
    if (msg->msg == CURLMSG_DONE) {
      CURL *easy = msg->easy_handle; /* msg is invalid once the handle is removed */
      CURLcode result = msg->data.result;
      http_xfer_done(c, easy, result);
    }
  }
}

/* ---- sockets ------------------------------------------------------------------------ */

static void sock_release(http_conn *c, http_sock_t *s) {
  if (s->prev != NULL)
    s->prev->next = s->next;
  else
    c->socks = s->next;
  if (s->next != NULL)
    s->next->prev = s->prev;
  http_live_sockets--;
  http_release_handle((uv_handle_t *)&s->poll);
}

static void on_poll(uv_poll_t *h, int status, int events) {
  http_sock_t *s = (http_sock_t *)h;
  http_conn *c = s->conn;
  int flags = 0, running;

  if (status < 0)
    flags = CURL_CSELECT_ERR;
  if (events & UV_READABLE)
    flags |= CURL_CSELECT_IN;
  if (events & UV_WRITABLE)
    flags |= CURL_CSELECT_OUT;
  /* May close this socket (on_socket with CURL_POLL_REMOVE): `s` is not used after. */
  curl_multi_socket_action(c->multi, s->fd, flags, &running);
  drain_done(c);
}

/* CURLMOPT_SOCKETFUNCTION: watch `fd` for `what`, or stop watching it. */
static int on_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp) {
  http_conn *c = userp;
  http_sock_t *s = socketp;
  int events = 0;

  (void)easy;
  if (what == CURL_POLL_REMOVE) {
    if (s != NULL) {
      sock_release(c, s);
      if (!c->stopping)
        curl_multi_assign(c->multi, fd, NULL);
    }
    return 0;
  }
  if (s == NULL) {
    if ((s = calloc(1, sizeof(*s))) == NULL)
      return -1; /* curl fails the transfer */
    if (uv_poll_init_socket(c->loop, &s->poll, fd) != 0) {
      free(s);
      return -1;
    }
    s->fd = fd;
    s->conn = c;
    s->next = c->socks;
    if (c->socks != NULL)
      c->socks->prev = s;
    c->socks = s;
    http_live_sockets++;
    curl_multi_assign(c->multi, fd, s);
  }
  if (uv_is_closing((uv_handle_t *)&s->poll))
    return 0; /* shutting down: the runtime closed every handle */
  if (what & CURL_POLL_IN)
    events |= UV_READABLE;
  if (what & CURL_POLL_OUT)
    events |= UV_WRITABLE;
  return uv_poll_start(&s->poll, events, on_poll) == 0 ? 0 : -1;
}

/* ---- the timer ------------------------------------------------------------------------- */

static void on_timeout(uv_timer_t *t) {
  http_conn *c = t->data;
  int running;

  curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
  drain_done(c);
}

/* CURLMOPT_TIMERFUNCTION: call curl back in `ms` (0: on the next loop iteration, never
 * from inside this callback), or never (-1). */
static int on_timer_set(CURLM *multi, long ms, void *userp) {
  http_conn *c = userp;

  (void)multi;
  if (ms < 0)
    uv_timer_stop(c->timer);
  else
    uv_timer_start(c->timer, on_timeout, (uint64_t)ms, 0); /* EINVAL once closing: fine */
  return 0;
}

/* ---- the multi handle ------------------------------------------------------------------ */

int http_multi_start(http_conn *c, uv_loop_t *loop) {
  if (c->multi != NULL)
    return 0;
  if ((c->timer = malloc(sizeof(*c->timer))) == NULL)
    return SYNCHRO_ENOMEM;
  if ((c->multi = curl_multi_init()) == NULL) {
    free(c->timer);
    c->timer = NULL;
    return SYNCHRO_ENOMEM;
  }
  c->loop = loop;
  uv_timer_init(loop, c->timer);
  c->timer->data = c;
  curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
  curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
  curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, on_timer_set);
  curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
  curl_multi_setopt(c->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)HTTP_MAX_HOST_CONNECTIONS);
  return 0;
}

void http_multi_stop(http_conn *c) {
  if (c->multi == NULL)
    return;
  c->stopping = true;
  curl_multi_cleanup(c->multi); /* closes the cached connections */
  c->multi = NULL;
  c->stopping = false;
  while (c->socks != NULL) /* any socket curl did not report removed */
    sock_release(c, c->socks);
  http_release_handle((uv_handle_t *)c->timer);
  c->timer = NULL;
}
