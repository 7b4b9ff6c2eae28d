/* examples/kv/kv_impl.c - the one implementation of the kv module: an async Redis client.
 *
 * Everything here runs on the synchronizer's loop thread and is written once,
 * asynchronously, on libuv: a TCP connection (uv_tcp_t) carries commands formatted with
 * hiredis's redisFormatCommandArgv(), and replies are parsed by hiredis's reply reader
 * (redisReaderFeed / redisReaderGetReply). The generated wrappers (gen/kv.h) call it
 * blocking, with futures and from the caller's own libuv loop.
 *
 * Requests are pipelined: every command is written as soon as the connection is up (one
 * write per loop turn for a burst), and replies are matched in order with the queue of
 * requests sent on that connection.
 *  - Timeouts: every request carries a deadline (the client's timeout_ms). Requests are
 *    kept in one list in deadline order (all have the same timeout) under one timer.
 *    A request past its deadline fails with KV_ETIMEOUT and stays in its queue, marked
 *    dead: its reply, when it comes, is read and discarded. A call cancelled by its
 *    caller (synchro_future_cancel, a freed host, shutdown) is treated the same way.
 *  - Connection loss: the requests sent on the connection fail with KV_EDISCONNECTED;
 *    requests not yet sent wait; the client reconnects at once, then with backoff (50 ms
 *    doubling, at most 1 s) up to max_retries more times. When every attempt failed,
 *    the waiting requests fail with KV_EDISCONNECTED and the next call starts again.
 *  - Objects: construct records the arguments (no I/O); open creates the timers and
 *    connects; close fails whatever is pending, closes the connection and the timers and
 *    finishes once libuv has closed them; destroy frees the state (deferred to the last
 *    handle's close callback if one is still pending).
 *
 * Why not hiredis's async API with its libuv adapter? In hiredis 0.14 (Debian 12) it
 * has no connect timeout (redisAsyncConnect resolves and connects synchronously on the
 * calling thread: here, the loop thread) and no way to abandon one request; owning the
 * socket with libuv gives both, with the same reply reader. */
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kv_impl.h"

#define BACKOFF_FIRST_MS 50
#define BACKOFF_MAX_MS 1000
#define SCAN_COUNT "100" /* keys per SCAN page (a hint to the server) */
#define READ_SIZE 65536

typedef enum kind_e { K_GET, K_SET, K_INCR, K_DEL, K_MGET, K_SCAN } kind_t;
static const char *const kind_names[] = {"GET", "SET", "INCR", "DEL", "MGET", "SCAN"};

typedef enum state_e {
  ST_NEW,        /* constructed, never opened */
  ST_DOWN,       /* no connection, none being made */
  ST_RESOLVING,  /* an attempt: looking up the host name */
  ST_CONNECTING, /* an attempt: TCP connect in progress */
  ST_BACKOFF,    /* between two attempts */
  ST_UP,         /* connected */
  ST_CLOSING     /* close ran: no more connections */
} state_t;

typedef struct req_s req_t;
typedef struct link_s link_t;
typedef struct scan_s scan_t;

typedef struct queue_s {
  req_t *head, *tail;
} queue_t;

/* One request: a command and the call waiting for its reply. */
struct req_s {
  synchro_call_t *call; /* NULL once the call was finished otherwise: discard the reply */
  kind_t kind;
  scan_t *scan;         /* K_SCAN: the stream this page is for */
  uint64_t deadline;    /* uv_now() + timeout_ms */
  bool timed;           /* in the client's deadline list */
  req_t *next;          /* in the waiting queue or a link's sent queue */
  req_t *dprev, *dnext; /* the deadline list */
  char *cmd;            /* the RESP command until it is written */
  size_t cmd_len;
};

/* One TCP connection. Its own allocation: it is freed by its close callback, which may
 * run after the client let go of it (conn == NULL). */
struct link_s {
  uv_tcp_t tcp;
  uv_connect_t connect;
  kv_conn *conn; /* NULL once detached */
  redisReader *reader;
  queue_t sent; /* written (or being written), waiting for their replies, in order */
  char *out;    /* commands not handed to libuv yet (written when the previous write is done) */
  size_t out_len, out_cap;
  bool writing;
  char rbuf[READ_SIZE];
};

typedef struct wreq_s {
  uv_write_t req;
  link_t *link;
  char *data;
} wreq_t;

typedef struct resolver_s {
  uv_getaddrinfo_t req;
  kv_conn *conn; /* NULL once abandoned */
} resolver_t;

/* A SCAN stream. */
struct scan_s {
  synchro_call_t *call;
  kv_conn *conn;
  const char *pattern; /* the call's copy: valid until the call is finished */
  char cursor[32];
  bool last;        /* the server answered cursor 0: this page is the last */
  redisReply *page; /* the current page (the whole reply), yielded from keys[next] */
  size_t next;
  req_t *req;            /* the page request in flight, or NULL */
  scan_t *sprev, *snext; /* the client's running scans */
};

struct kv_conn {
  char *host;
  int port;
  int64_t timeout_ms;
  int64_t max_retries;
  uv_loop_t *loop;
  state_t state;
  bool timers;               /* the two timers were initialised (by open) */
  bool destroyed;            /* destroy ran; free when the last handle is closed */
  int closing;               /* timers whose close callback is pending */
  uv_timer_t deadline_timer; /* the earliest request deadline */
  uv_timer_t retry_timer;    /* the current attempt's timeout, then the backoff */
  int attempt;               /* attempts made in the current connection cycle */
  link_t *link;              /* while CONNECTING or UP */
  resolver_t *resolver;
  queue_t waiting; /* requests not sent yet (no connection) */
  req_t *dhead, *dtail;
  scan_t *scans; /* running SCAN streams (close ends the paused ones) */
  synchro_call_t *open_call;
  synchro_call_t *close_call;
  uint64_t connections; /* successful connects, for the messages */
};

static void cycle_start(kv_conn *c);
static void attempt_start(kv_conn *c);
static void scan_pump(scan_t *s);
static void scan_free(scan_t *s);

/* ---- small helpers ------------------------------------------------------------- */

static void q_push(queue_t *q, req_t *r) {
  r->next = NULL;
  if (q->tail != NULL)
    q->tail->next = r;
  else
    q->head = r;
  q->tail = r;
}

static void q_unshift(queue_t *q, req_t *r) {
  r->next = q->head;
  q->head = r;
  if (q->tail == NULL)
    q->tail = r;
}

static req_t *q_pop(queue_t *q) {
  req_t *r = q->head;
  if (r != NULL) {
    q->head = r->next;
    if (q->head == NULL)
      q->tail = NULL;
    r->next = NULL;
  }
  return r;
}

static void req_free(req_t *r) {
  if (r->cmd != NULL)
    redisFreeCommand(r->cmd);
  free(r);
}

static void deadline_remove(kv_conn *c, req_t *r) {
  if (!r->timed)
    return;
  if (r->dprev != NULL)
    r->dprev->dnext = r->dnext;
  else
    c->dhead = r->dnext;
  if (r->dnext != NULL)
    r->dnext->dprev = r->dprev;
  else
    c->dtail = r->dprev;
  r->dprev = r->dnext = NULL;
  r->timed = false;
}

static void on_deadline(uv_timer_t *t);

/* Arms the deadline timer for the earliest deadline. An armed timer is left alone: it
 * targets a deadline no later than any new one, and re-arms itself when it fires. */
static void deadline_arm(kv_conn *c, bool force) {
  uint64_t now;
  if (c->dhead == NULL || c->state == ST_CLOSING) {
    if (force)
      uv_timer_stop(&c->deadline_timer);
    return;
  }
  if (!force && uv_is_active((uv_handle_t *)&c->deadline_timer))
    return;
  now = uv_now(c->loop);
  uv_timer_start(&c->deadline_timer, on_deadline,
                 c->dhead->deadline > now ? c->dhead->deadline - now : 0, 0);
}

/* {"host", "port", "cause"}: what a KV_EDISCONNECTED error carries. */
static json_t *link_details(const kv_conn *c, const char *cause) {
  return json_pack("{s:s, s:i, s:s}", "host", c->host, "port", c->port, "cause", cause);
}

/* Finishes a request's call with an error (stealing `details`), unless it already
 * finished; a page request ends its SCAN stream. The request itself stays where it is
 * (dead): its owner frees it. */
static void req_fail(kv_conn *c, req_t *r, int code, json_t *details, const char *fmt, ...)
    SYNCHRO_PRINTF(5, 6);
static void req_fail(kv_conn *c, req_t *r, int code, json_t *details, const char *fmt, ...) {
  synchro_call_t *call = r->call;
  va_list ap;

  deadline_remove(c, r);
  if (call == NULL) {
    json_decref(details);
    return;
  }
  r->call = NULL;
  if (r->scan != NULL) {
    r->scan->req = NULL;
    scan_free(r->scan);
    r->scan = NULL;
  }
  va_start(ap, fmt);
  synchro_call_vfail(call, code, details, fmt, ap);
  va_end(ap);
}

/* Fails a call whose request was never made. */
static void call_fail_disconnected(kv_conn *c, synchro_call_t *call, const char *cause,
                                   const char *why) {
  synchro_call_fail(call, KV_EDISCONNECTED, link_details(c, cause), "%s:%d: %s", c->host, c->port,
                    why);
}

/* ---- the deadline timer -------------------------------------------------------- */

static void on_deadline(uv_timer_t *t) {
  kv_conn *c = t->data;
  uint64_t now = uv_now(c->loop);

  while (c->dhead != NULL && c->dhead->deadline <= now) {
    req_t *r = c->dhead;
    req_fail(c, r, KV_ETIMEOUT,
             json_pack("{s:s, s:I}", "command", kind_names[r->kind], "timeout_ms",
                       (json_int_t)c->timeout_ms),
             "no reply from %s:%d to %s within %" PRId64 " ms", c->host, c->port,
             kind_names[r->kind], c->timeout_ms);
  }
  deadline_arm(c, true);
}

/* ---- the connection: writing ------------------------------------------------------ */

static void link_lost(link_t *l, int cause, const char *what);

static void on_written(uv_write_t *req, int status) {
  wreq_t *w = (wreq_t *)req;
  link_t *l = w->link;

  free(w->data);
  free(w);
  l->writing = false;
  if (l->conn == NULL)
    return; /* closed meanwhile: the link is freed by its close callback */
  if (status < 0) {
    link_lost(l, status, "write failed");
    return;
  }
  if (l->out_len > 0) {
    /* what accumulated during this write goes out in one piece */
    wreq_t *next = malloc(sizeof(*next));
    uv_buf_t buf;
    int rc;
    if (next == NULL) {
      link_lost(l, UV_ENOMEM, "out of memory");
      return;
    }
    next->link = l;
    next->data = l->out;
    buf = uv_buf_init(l->out, (unsigned)l->out_len);
    l->out = NULL;
    l->out_len = l->out_cap = 0;
    if ((rc = uv_write(&next->req, (uv_stream_t *)&l->tcp, &buf, 1, on_written)) != 0) {
      free(next->data);
      free(next);
      link_lost(l, rc, "write failed");
      return;
    }
    l->writing = true;
  }
}

/* Sends a request on the link: its command is appended to the output, which is written
 * now if no write is in progress, else when the current one is done (so a burst of
 * commands from one loop turn leaves in one or two writes). */
static void link_send(link_t *l, req_t *r) {
  if (l->out_len + r->cmd_len > l->out_cap) {
    size_t cap = l->out_cap > 0 ? l->out_cap : 4096;
    char *out;
    while (cap < l->out_len + r->cmd_len)
      cap *= 2;
    if ((out = realloc(l->out, cap)) == NULL) {
      req_fail(l->conn, r, SYNCHRO_ENOMEM, NULL, "no memory for the command");
      req_free(r);
      return;
    }
    l->out = out;
    l->out_cap = cap;
  }
  memcpy(l->out + l->out_len, r->cmd, r->cmd_len);
  l->out_len += r->cmd_len;
  redisFreeCommand(r->cmd);
  r->cmd = NULL;
  q_push(&l->sent, r);
  if (!l->writing) {
    /* on_written with status 0 and nothing written does the write */
    wreq_t *w = malloc(sizeof(*w));
    uv_buf_t buf;
    int rc;
    if (w == NULL) {
      link_lost(l, UV_ENOMEM, "out of memory");
      return;
    }
    w->link = l;
    w->data = l->out;
    buf = uv_buf_init(l->out, (unsigned)l->out_len);
    l->out = NULL;
    l->out_len = l->out_cap = 0;
    if ((rc = uv_write(&w->req, (uv_stream_t *)&l->tcp, &buf, 1, on_written)) != 0) {
      free(w->data);
      free(w);
      link_lost(l, rc, "write failed");
      return;
    }
    l->writing = true;
  }
}

/* ---- the connection: replies ------------------------------------------------------- */

static void fail_server(synchro_call_t *call, kind_t kind, const redisReply *reply) {
  synchro_call_fail(call, KV_ESERVER,
                    json_pack("{s:s, s:s}", "reply", reply->str, "command", kind_names[kind]), "%s",
                    reply->str);
}

static void fail_protocol(synchro_call_t *call, kind_t kind, const redisReply *reply) {
  synchro_call_fail(call, KV_EPROTOCOL,
                    json_pack("{s:s, s:i}", "command", kind_names[kind], "type", reply->type),
                    "%s: unexpected reply (type %d)", kind_names[kind], reply->type);
}

static void deliver_mget(synchro_call_t *call, const redisReply *reply) {
  const char **items;
  size_t i;

  if (reply->type != REDIS_REPLY_ARRAY) {
    fail_protocol(call, K_MGET, reply);
    return;
  }
  if ((items = calloc(reply->elements + 1, sizeof(*items))) == NULL) {
    synchro_call_fail(call, SYNCHRO_ENOMEM, NULL, "no memory for the MGET result");
    return;
  }
  for (i = 0; i < reply->elements; i++) {
    const redisReply *e = reply->element[i];
    if (e->type == REDIS_REPLY_STRING) {
      items[i] = e->str;
    } else if (e->type != REDIS_REPLY_NIL) {
      free(items);
      fail_protocol(call, K_MGET, e);
      return;
    }
  }
  kv_client_mget_return(call, items, reply->elements);
  free(items);
}

/* A SCAN page arrived for a live stream. */
static void deliver_scan(kv_conn *c, req_t *r, redisReply *reply) {
  scan_t *s = r->scan;
  const redisReply *cursor, *keys;

  deadline_remove(c, r);
  s->req = NULL;
  r->call = NULL;
  r->scan = NULL;
  if (reply->type == REDIS_REPLY_ERROR) {
    synchro_call_t *call = s->call;
    scan_free(s);
    fail_server(call, K_SCAN, reply);
    freeReplyObject(reply);
    return;
  }
  if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
      (cursor = reply->element[0])->type != REDIS_REPLY_STRING ||
      (keys = reply->element[1])->type != REDIS_REPLY_ARRAY || cursor->len >= sizeof(s->cursor)) {
    synchro_call_t *call = s->call;
    scan_free(s);
    fail_protocol(call, K_SCAN, reply);
    freeReplyObject(reply);
    return;
  }
  for (size_t i = 0; i < keys->elements; i++) {
    if (keys->element[i]->type != REDIS_REPLY_STRING) {
      synchro_call_t *call = s->call;
      scan_free(s);
      fail_protocol(call, K_SCAN, keys->element[i]);
      freeReplyObject(reply);
      return;
    }
  }
  memcpy(s->cursor, cursor->str, cursor->len + 1);
  s->last = strcmp(s->cursor, "0") == 0;
  s->page = reply;
  s->next = 0;
  scan_pump(s);
}

/* A reply for request `r` (popped from the sent queue); frees both, or hands the reply
 * to a SCAN stream. */
static void deliver(kv_conn *c, req_t *r, redisReply *reply) {
  synchro_call_t *call = r->call;

  if (call == NULL) { /* timed out or cancelled: the late reply is dropped */
    freeReplyObject(reply);
    req_free(r);
    return;
  }
  if (r->kind == K_SCAN) {
    deliver_scan(c, r, reply);
    req_free(r);
    return;
  }
  deadline_remove(c, r);
  r->call = NULL;
  if (reply->type == REDIS_REPLY_ERROR) {
    fail_server(call, r->kind, reply);
  } else {
    switch (r->kind) {
    case K_GET:
      if (reply->type == REDIS_REPLY_STRING)
        kv_client_get_return(call, reply->str);
      else if (reply->type == REDIS_REPLY_NIL)
        kv_client_get_return(call, NULL); /* a missing key: NULL, not an error */
      else
        fail_protocol(call, r->kind, reply);
      break;
    case K_SET:
      if (reply->type == REDIS_REPLY_STATUS)
        kv_client_set_return(call);
      else
        fail_protocol(call, r->kind, reply);
      break;
    case K_INCR:
      if (reply->type == REDIS_REPLY_INTEGER)
        kv_client_incr_return(call, (int64_t)reply->integer);
      else
        fail_protocol(call, r->kind, reply);
      break;
    case K_DEL:
      if (reply->type == REDIS_REPLY_INTEGER)
        kv_client_del_return(call, (int64_t)reply->integer);
      else
        fail_protocol(call, r->kind, reply);
      break;
    case K_MGET: deliver_mget(call, reply); break;
    case K_SCAN: break; /* handled above */
    }
  }
  freeReplyObject(reply);
  req_free(r);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  link_t *l = h->data;
  (void)hint;
  *buf = uv_buf_init(l->rbuf, sizeof(l->rbuf));
}

static void on_read(uv_stream_t *stream, ssize_t n, const uv_buf_t *buf) {
  link_t *l = stream->data;

  if (l->conn == NULL)
    return;
  if (n < 0) {
    link_lost(l, (int)n, n == UV_EOF ? "the server closed the connection" : "read failed");
    return;
  }
  if (n == 0)
    return;
  if (redisReaderFeed(l->reader, buf->base, (size_t)n) != REDIS_OK) {
    link_lost(l, UV_EPROTO, "protocol error");
    return;
  }
  for (;;) {
    void *reply = NULL;
    req_t *r;
    if (redisReaderGetReply(l->reader, &reply) != REDIS_OK) {
      link_lost(l, UV_EPROTO, l->reader->errstr[0] ? l->reader->errstr : "protocol error");
      return;
    }
    if (reply == NULL)
      return; /* needs more bytes */
    if ((r = q_pop(&l->sent)) == NULL) {
      freeReplyObject(reply);
      link_lost(l, UV_EPROTO, "a reply nobody asked for");
      return;
    }
    deliver(l->conn, r, reply);
    if (l->conn == NULL)
      return;
  }
}

/* ---- the connection: lifecycle ------------------------------------------------------ */

static void on_link_closed(uv_handle_t *h) {
  link_t *l = h->data;
  req_t *r;

  while ((r = q_pop(&l->sent)) != NULL) /* all dead already */
    req_free(r);
  if (l->reader != NULL)
    redisReaderFree(l->reader);
  free(l->out);
  free(l);
}

/* Lets go of the link: it closes and frees itself. Its requests stay in l->sent. */
static void link_detach(kv_conn *c, link_t *l) {
  if (c->link == l)
    c->link = NULL;
  l->conn = NULL;
  uv_read_stop((uv_stream_t *)&l->tcp);
  uv_close((uv_handle_t *)&l->tcp, on_link_closed);
}

/* Fails every request sent on the link (their replies will never come). */
static void link_fail_sent(kv_conn *c, link_t *l, const char *cause, const char *why) {
  for (req_t *r = l->sent.head; r != NULL; r = r->next)
    req_fail(c, r, KV_EDISCONNECTED, link_details(c, cause),
             "%s:%d: %s before the reply to %s came (the command may or may not have run)", c->host,
             c->port, why, kind_names[r->kind]);
}

/* The connection broke (EOF, a read or write error, a reply we cannot parse). */
static void link_lost(link_t *l, int cause, const char *what) {
  kv_conn *c = l->conn;
  char why[160];

  snprintf(why, sizeof(why), "connection lost: %s (%s)", what, uv_err_name(cause));
  link_detach(c, l);
  link_fail_sent(c, l, uv_err_name(cause), why);
  c->state = ST_DOWN;
  cycle_start(c); /* reconnect in the background; calls made meanwhile wait */
}

/* ---- connecting --------------------------------------------------------------------- */

static uint64_t backoff_ms(int attempt) {
  uint64_t ms = BACKOFF_FIRST_MS;
  for (int i = 1; i < attempt && ms < BACKOFF_MAX_MS; i++)
    ms *= 2;
  return ms < BACKOFF_MAX_MS ? ms : BACKOFF_MAX_MS;
}

/* Every attempt of this cycle failed: the requests waiting for a connection fail, and so
 * does open if it waits. The next call starts a new cycle. */
static void cycle_failed(kv_conn *c, int cause) {
  char why[160];
  req_t *r;

  snprintf(why, sizeof(why), "cannot connect (%s, %d attempt%s)", uv_strerror(cause),
           c->attempt + 1, c->attempt == 0 ? "" : "s");
  c->state = ST_DOWN;
  uv_timer_stop(&c->retry_timer);
  while ((r = q_pop(&c->waiting)) != NULL) {
    req_fail(c, r, KV_EDISCONNECTED, link_details(c, uv_err_name(cause)), "%s:%d: %s", c->host,
             c->port, why);
    req_free(r);
  }
  if (c->open_call != NULL) {
    synchro_call_t *call = c->open_call;
    c->open_call = NULL;
    call_fail_disconnected(c, call, uv_err_name(cause), why);
    /* the runtime runs close next */
  }
}

static void on_retry_timer(uv_timer_t *t);

static void attempt_failed(kv_conn *c, int cause) {
  if (c->state == ST_CLOSING)
    return;
  if (c->attempt < c->max_retries) {
    c->attempt++;
    c->state = ST_BACKOFF;
    uv_timer_start(&c->retry_timer, on_retry_timer, backoff_ms(c->attempt), 0);
    return;
  }
  cycle_failed(c, cause);
}

static void on_connect(uv_connect_t *req, int status) {
  link_t *l = req->data;
  kv_conn *c = l->conn;
  req_t *r;
  int rc;

  if (c == NULL)
    return; /* abandoned (attempt timed out, or close) */
  if (status < 0) {
    link_detach(c, l);
    attempt_failed(c, status);
    return;
  }
  uv_timer_stop(&c->retry_timer);
  uv_tcp_nodelay(&l->tcp, 1);
  if ((rc = uv_read_start((uv_stream_t *)&l->tcp, on_alloc, on_read)) != 0) {
    link_detach(c, l);
    attempt_failed(c, rc);
    return;
  }
  c->state = ST_UP;
  c->attempt = 0;
  c->connections++;
  while ((r = q_pop(&c->waiting)) != NULL && c->link == l) {
    if (r->call == NULL)
      req_free(r); /* timed out or cancelled while it waited: never sent */
    else
      link_send(l, r);
  }
  if (r != NULL) /* the link broke while flushing: r goes back first */
    q_unshift(&c->waiting, r);
  if (c->open_call != NULL && c->link == l) {
    synchro_call_t *call = c->open_call;
    c->open_call = NULL;
    kv_client_open_return(call);
  }
}

static void connect_to(kv_conn *c, const struct sockaddr *addr) {
  link_t *l = calloc(1, sizeof(*l));
  int rc;

  if (l == NULL) {
    attempt_failed(c, UV_ENOMEM);
    return;
  }
  if ((l->reader = redisReaderCreate()) == NULL) {
    free(l);
    attempt_failed(c, UV_ENOMEM);
    return;
  }
  if ((rc = uv_tcp_init(c->loop, &l->tcp)) != 0) {
    redisReaderFree(l->reader);
    free(l);
    attempt_failed(c, rc);
    return;
  }
  l->tcp.data = l;
  l->connect.data = l;
  l->conn = c;
  c->link = l;
  c->state = ST_CONNECTING;
  if ((rc = uv_tcp_connect(&l->connect, &l->tcp, addr, on_connect)) != 0) {
    link_detach(c, l);
    attempt_failed(c, rc);
  }
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res) {
  resolver_t *r = (resolver_t *)req;
  kv_conn *c = r->conn;

  if (c != NULL) {
    c->resolver = NULL;
    if (status < 0 || res == NULL)
      attempt_failed(c, status < 0 ? status : UV_EAI_NONAME);
    else
      connect_to(c, res->ai_addr);
  }
  uv_freeaddrinfo(res);
  free(r);
}

/* One connection attempt: resolve (unless the host is an address), connect; the retry
 * timer bounds the attempt with timeout_ms. */
static void attempt_start(kv_conn *c) {
  struct sockaddr_storage ss;
  char port[16];
  struct addrinfo hints;
  resolver_t *r;
  int rc;

  if (c->timeout_ms > 0)
    uv_timer_start(&c->retry_timer, on_retry_timer, (uint64_t)c->timeout_ms, 0);
  if (uv_ip4_addr(c->host, c->port, (struct sockaddr_in *)&ss) == 0 ||
      uv_ip6_addr(c->host, c->port, (struct sockaddr_in6 *)&ss) == 0) {
    connect_to(c, (const struct sockaddr *)&ss);
    return;
  }
  if ((r = calloc(1, sizeof(*r))) == NULL) {
    attempt_failed(c, UV_ENOMEM);
    return;
  }
  memset(&hints, 0, sizeof(hints));
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  snprintf(port, sizeof(port), "%d", c->port);
  r->conn = c;
  c->resolver = r;
  c->state = ST_RESOLVING;
  if ((rc = uv_getaddrinfo(c->loop, &r->req, on_resolved, c->host, port, &hints)) != 0) {
    c->resolver = NULL;
    free(r);
    attempt_failed(c, rc);
  }
}

/* Stops the attempt in progress (if any) without a verdict. */
static void attempt_abandon(kv_conn *c) {
  if (c->resolver != NULL) {
    c->resolver->conn = NULL; /* it frees itself */
    uv_cancel((uv_req_t *)&c->resolver->req);
    c->resolver = NULL;
  }
  if (c->link != NULL && c->state != ST_UP)
    link_detach(c, c->link);
}

static void on_retry_timer(uv_timer_t *t) {
  kv_conn *c = t->data;

  if (c->state == ST_BACKOFF) {
    attempt_start(c);
  } else if (c->state == ST_RESOLVING || c->state == ST_CONNECTING) {
    attempt_abandon(c); /* the attempt took longer than timeout_ms */
    attempt_failed(c, UV_ETIMEDOUT);
  }
}

static void cycle_start(kv_conn *c) {
  c->attempt = 0;
  attempt_start(c);
}

/* ---- requests ------------------------------------------------------------------------ */

static void req_cancel(synchro_call_t *call, int reason, void *data) {
  req_t *r = data;

  /* The caller gave up (cancel, freed host, shutdown). The request stays queued, dead:
   * a reply that comes is read and dropped. */
  r->call = NULL;
  deadline_remove(synchro_call_object(call), r);
  synchro_call_fail(call, reason, NULL, NULL);
}

/* Makes a request of `call` for the command argv and sends it (or queues it until the
 * connection is up). On failure the call is finished here. `scan` is the stream a SCAN
 * page is for. After this returns, the request may already be finished. */
static void submit(kv_conn *c, synchro_call_t *call, kind_t kind, int argc, const char **argv,
                   scan_t *scan) {
  req_t *r;
  char *cmd = NULL;
  int len;

  if (c->state == ST_NEW || c->state == ST_CLOSING) {
    if (scan != NULL)
      scan_free(scan);
    call_fail_disconnected(c, call, c->state == ST_NEW ? "not open" : "closed",
                           c->state == ST_NEW ? "the client is not open (call open first)"
                                              : "the client is closed");
    return;
  }
  if ((r = calloc(1, sizeof(*r))) == NULL ||
      (len = redisFormatCommandArgv(&cmd, argc, argv, NULL)) < 0) {
    free(r);
    if (scan != NULL)
      scan_free(scan);
    synchro_call_fail(call, SYNCHRO_ENOMEM, NULL, "no memory for the request");
    return;
  }
  r->call = call;
  r->kind = kind;
  r->cmd = cmd;
  r->cmd_len = (size_t)len;
  r->scan = scan;
  if (scan != NULL)
    scan->req = r;
  else
    synchro_call_on_cancel(call, req_cancel, r);
  if (c->timeout_ms > 0) {
    r->deadline = uv_now(c->loop) + (uint64_t)c->timeout_ms;
    r->timed = true;
    r->dprev = c->dtail;
    if (c->dtail != NULL)
      c->dtail->dnext = r;
    else
      c->dhead = r;
    c->dtail = r;
    deadline_arm(c, false);
  }
  if (c->state == ST_UP) {
    link_send(c->link, r);
    return;
  }
  q_push(&c->waiting, r);
  if (c->state == ST_DOWN)
    cycle_start(c); /* the next call reconnects */
}

void kv_client_get_impl(synchro_call_t *call, kv_conn *self, const kv_client_get_args_t *args) {
  const char *argv[] = {"GET", args->key};
  submit(self, call, K_GET, 2, argv, NULL);
}

void kv_client_set_impl(synchro_call_t *call, kv_conn *self, const kv_client_set_args_t *args) {
  const char *argv[] = {"SET", args->key, args->value};
  submit(self, call, K_SET, 3, argv, NULL);
}

void kv_client_incr_impl(synchro_call_t *call, kv_conn *self, const kv_client_incr_args_t *args) {
  const char *argv[] = {"INCR", args->key};
  submit(self, call, K_INCR, 2, argv, NULL);
}

/* DEL and MGET: the command name, then the keys. */
static void submit_keys(kv_conn *c, synchro_call_t *call, kind_t kind, const char *const *keys,
                        size_t count) {
  const char **argv;

  if (count == 0) { /* Redis refuses DEL / MGET without keys; so do we */
    synchro_call_fail(call, SYNCHRO_EINVAL, NULL, "%s needs at least one key", kind_names[kind]);
    return;
  }
  if (count > 1000000 || (argv = malloc((count + 1) * sizeof(*argv))) == NULL) {
    synchro_call_fail(call, count > 1000000 ? SYNCHRO_EINVAL : SYNCHRO_ENOMEM, NULL,
                      "%s: too many keys", kind_names[kind]);
    return;
  }
  argv[0] = kind_names[kind];
  memcpy(argv + 1, keys, count * sizeof(*argv));
  submit(c, call, kind, (int)count + 1, argv, NULL);
  free(argv);
}

void kv_client_del_impl(synchro_call_t *call, kv_conn *self, const kv_client_del_args_t *args) {
  submit_keys(self, call, K_DEL, args->keys, args->keys_count);
}

void kv_client_mget_impl(synchro_call_t *call, kv_conn *self, const kv_client_mget_args_t *args) {
  submit_keys(self, call, K_MGET, args->keys, args->keys_count);
}

/* ---- scan: a stream of keys over SCAN cursors ------------------------------------------ */

static void scan_free(scan_t *s) {
  if (s->sprev != NULL)
    s->sprev->snext = s->snext;
  else
    s->conn->scans = s->snext;
  if (s->snext != NULL)
    s->snext->sprev = s->sprev;
  if (s->page != NULL)
    freeReplyObject(s->page);
  free(s);
}

/* Asks for the next page. Backpressure: this happens only once every key of the
 * previous page was accepted by the stream's buffer. */
static void scan_fetch(scan_t *s) {
  const char *argv[] = {"SCAN", s->cursor, "COUNT", SCAN_COUNT, "MATCH", s->pattern};
  submit(s->conn, s->call, K_SCAN, s->pattern != NULL ? 6 : 4, argv, s);
}

/* Yields the current page's keys until the buffer is full (then the demand hook resumes
 * it), then asks for the next page or ends the stream. */
static void scan_pump(scan_t *s) {
  if (s->page != NULL) {
    const redisReply *keys = s->page->element[1];
    while (s->next < keys->elements) {
      int rc = kv_client_scan_yield(s->call, keys->element[s->next]->str);
      if (rc == SYNCHRO_EBUSY)
        return; /* paused: scan_demand resumes */
      if (rc != 0)
        return; /* SYNCHRO_ECLOSED: the consumer left; scan_cancel follows */
      s->next++;
    }
    freeReplyObject(s->page);
    s->page = NULL;
  }
  if (s->last) {
    synchro_call_t *call = s->call;
    scan_free(s);
    kv_client_scan_end(call);
    return;
  }
  scan_fetch(s);
}

static void scan_demand(synchro_call_t *call, void *data) {
  scan_t *s = data;
  (void)call;
  if (s->req == NULL) /* not waiting for a page: yielding was paused */
    scan_pump(s);
}

static void scan_cancel(synchro_call_t *call, int reason, void *data) {
  scan_t *s = data;

  if (s->req != NULL) { /* a page in flight: its reply is dropped */
    s->req->call = NULL;
    s->req->scan = NULL;
    deadline_remove(s->conn, s->req);
  }
  scan_free(s);
  synchro_call_fail(call, reason, NULL, NULL);
}

void kv_client_scan_impl(synchro_call_t *call, kv_conn *self, const kv_client_scan_args_t *args) {
  scan_t *s = calloc(1, sizeof(*s));

  if (s == NULL) {
    kv_client_scan_fail(call, SYNCHRO_ENOMEM, "no memory for the scan");
    return;
  }
  s->call = call;
  s->conn = self;
  s->pattern = args->pattern;
  strcpy(s->cursor, "0");
  s->snext = self->scans;
  if (self->scans != NULL)
    self->scans->sprev = s;
  self->scans = s;
  synchro_call_on_cancel(call, scan_cancel, s);
  kv_client_scan_on_demand(call, scan_demand, s);
  scan_fetch(s);
}

/* ---- the object ------------------------------------------------------------------------ */

int kv_client_construct(synchro_t *s, const kv_client_new_args_t *args, kv_conn **state) {
  kv_conn *c;
  uv_loop_t *loop = NULL;
  int rc;

  if (args->host == NULL || args->host[0] == '\0' || args->port < 1 || args->port > 65535 ||
      args->timeout_ms < 0 || args->max_retries < 0 || args->max_retries > 1000)
    return SYNCHRO_EINVAL;
  if ((rc = synchro_loop(s, &loop)) != 0)
    return rc;
  if ((c = calloc(1, sizeof(*c))) == NULL || (c->host = strdup(args->host)) == NULL) {
    free(c);
    return SYNCHRO_ENOMEM;
  }
  c->port = (int)args->port;
  c->timeout_ms = args->timeout_ms;
  c->max_retries = args->max_retries;
  c->loop = loop;
  c->state = ST_NEW;
  *state = c;
  return 0;
}

static void conn_free(kv_conn *c) {
  free(c->host);
  free(c);
}

/* Close and destroy wait for the timers' close callbacks. Finishing close may run
 * destroy at once (inside kv_client_close_return(), when the last reference is gone),
 * so `c` is not touched after it. */
static void on_timer_closed(uv_handle_t *h) {
  kv_conn *c = h->data;
  synchro_call_t *call;

  if (--c->closing > 0)
    return;
  call = c->close_call;
  c->close_call = NULL;
  if (c->destroyed) /* close was given up on (shutdown) and destroy already ran */
    conn_free(c);
  if (call != NULL)
    kv_client_close_return(call);
}

void kv_client_destroy(kv_conn *state) {
  req_t *r;

  /* Normally close ran and left nothing. When the synchronizer was torn down without it,
   * drop what is left (no call can be pending now). */
  while ((r = q_pop(&state->waiting)) != NULL)
    req_free(r);
  if (state->link != NULL) {
    link_t *l = state->link;
    state->link = NULL;
    l->conn = NULL;
    if (!uv_is_closing((uv_handle_t *)&l->tcp))
      uv_close((uv_handle_t *)&l->tcp, on_link_closed);
  }
  if (state->resolver != NULL)
    state->resolver->conn = NULL;
  if (state->closing > 0)
    state->destroyed = true; /* freed by the last timer's close callback */
  else
    conn_free(state);
}

static void open_cancel(synchro_call_t *call, int reason, void *data) {
  kv_conn *c = data;

  c->open_call = NULL; /* the runtime runs close next, which stops the attempts */
  synchro_call_fail(call, reason, NULL, NULL);
}

void kv_client_open_impl(synchro_call_t *call, kv_conn *self) {
  uv_timer_init(self->loop, &self->deadline_timer);
  uv_timer_init(self->loop, &self->retry_timer);
  self->deadline_timer.data = self;
  self->retry_timer.data = self;
  self->timers = true;
  self->state = ST_DOWN;
  self->open_call = call;
  synchro_call_on_cancel(call, open_cancel, self);
  cycle_start(self); /* may fail open at once (max_retries 0) */
}

void kv_client_close_impl(synchro_call_t *call, kv_conn *self) {
  req_t *r;

  attempt_abandon(self);
  self->state = ST_CLOSING;
  while ((r = q_pop(&self->waiting)) != NULL) {
    req_fail(self, r, KV_EDISCONNECTED, link_details(self, "closed"),
             "%s:%d: the client was closed before %s was sent", self->host, self->port,
             kind_names[r->kind]);
    req_free(r);
  }
  if (self->link != NULL) {
    link_t *l = self->link;
    link_detach(self, l);
    link_fail_sent(self, l, "closed", "the client was closed");
  }
  while (self->scans != NULL) { /* paused between two pages */
    scan_t *s = self->scans;
    synchro_call_t *scall = s->call;
    scan_free(s);
    call_fail_disconnected(self, scall, "closed", "the client was closed during the scan");
  }
  if (!self->timers) {
    kv_client_close_return(call);
    return;
  }
  self->close_call = call;
  self->closing = 2;
  uv_close((uv_handle_t *)&self->deadline_timer, on_timer_closed);
  uv_close((uv_handle_t *)&self->retry_timer, on_timer_closed);
}
