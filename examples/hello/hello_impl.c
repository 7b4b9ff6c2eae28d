/* examples/hello/hello_impl.c - the one implementation of the hello module.
 *
 * Everything here runs on the synchronizer's loop thread (a libuv loop on a thread of
 * its own) and is written once, asynchronously: an operation starts a libuv timer and
 * finishes its call later from the timer's callback, or from its cancel hook when the
 * caller cancels, a deadline passes or the synchronizer shuts down. main.c calls it
 * blocking, through futures and from its own libuv loop, through the wrappers bridge
 * generated from hello.json (gen/). Lines printed here start with "[loop]". */
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hello_impl.h"

/* What the implementation counted (loop thread only; read through hello_stats()). */
static int64_t squares_cancelled, countdowns_cancelled, connections_closed;

/* ---- a timer owned by one call --------------------------------------------------- */

typedef struct pending_s pending_t;
typedef void (*fire_fn)(pending_t *p); /* the timer fired: finish (or go on with) the call */

struct pending_s {
  uv_timer_t timer;
  synchro_call_t *call;
  fire_fn fire;
  hello_conn *conn; /* connection methods: the object's state */
  int64_t value;    /* square: x; countdown: the next item */
  const char *sql;  /* query: the statement (the call's own copy) */
};

static void on_closed(uv_handle_t *h) { free(h->data); }

/* The call is finished: stop the timer and release it (libuv closes it asynchronously). */
static void done(pending_t *p) {
  uv_timer_stop(&p->timer);
  uv_close((uv_handle_t *)&p->timer, on_closed);
}

static void on_timer(uv_timer_t *t) {
  pending_t *p = t->data;
  p->fire(p);
}

/* Starts a timer for `call` that runs `fire` after `ms`, then every `repeat` ms. */
static pending_t *after(synchro_call_t *call, uint64_t ms, uint64_t repeat, fire_fn fire) {
  pending_t *p = calloc(1, sizeof(*p));

  if (p == NULL) {
    synchro_call_fail(call, SYNCHRO_ENOMEM, NULL, "no memory for a timer");
    return NULL;
  }
  p->call = call;
  p->fire = fire;
  uv_timer_init(synchro_call_loop(call), &p->timer);
  p->timer.data = p;
  uv_timer_start(&p->timer, on_timer, ms, repeat);
  return p;
}

/* ---- square ---------------------------------------------------------------------- */

static void square_fired(pending_t *p) {
  hello_square_return(p->call, p->value * p->value);
  done(p);
}

/* The caller cancelled (or a deadline passed, or shutdown): stop the timer, finish. */
static void square_cancel(synchro_call_t *call, int reason, void *data) {
  pending_t *p = data;

  squares_cancelled++;
  printf("  [loop] square(%" PRId64 ") cancel hook: %s, timer stopped\n", p->value,
         synchro_err_name(reason));
  hello_square_fail(call, reason, "square cancelled");
  done(p);
}

void hello_square_impl(synchro_call_t *call, const hello_square_args_t *args) {
  pending_t *p = after(call, 1000, 0, square_fired);

  if (p == NULL)
    return;
  p->value = args->x;
  synchro_call_on_cancel(call, square_cancel, p);
}

/* ---- countdown ------------------------------------------------------------------- */

/* One tick: yield the next item; after the last one, end the stream. A full buffer
 * pauses the timer until the consumer makes room (the demand hook). */
static void countdown_tick(pending_t *p) {
  int rc = hello_countdown_yield(p->call, p->value);

  if (rc == SYNCHRO_EBUSY) {
    uv_timer_stop(&p->timer); /* resumed by countdown_demand */
    return;
  }
  if (rc != 0)
    return; /* SYNCHRO_ECLOSED: the consumer left; the cancel hook finishes the call */
  if (--p->value < 1) {
    hello_countdown_end(p->call);
    done(p);
  }
}

static void countdown_demand(synchro_call_t *call, void *data) {
  pending_t *p = data;

  (void)call;
  uv_timer_start(&p->timer, on_timer, 100, 100);
}

static void countdown_cancel(synchro_call_t *call, int reason, void *data) {
  pending_t *p = data;

  countdowns_cancelled++;
  printf("  [loop] countdown cancel hook: %s, timer stopped before %" PRId64 "\n",
         synchro_err_name(reason), p->value);
  hello_countdown_fail(call, reason, "countdown stopped");
  done(p);
}

void hello_countdown_impl(synchro_call_t *call, const hello_countdown_args_t *args) {
  pending_t *p;

  if (args->n < 1) {
    hello_countdown_end(call);
    return;
  }
  if ((p = after(call, 100, 100, countdown_tick)) == NULL)
    return;
  p->value = args->n;
  synchro_call_on_cancel(call, countdown_cancel, p);
  hello_countdown_on_demand(call, countdown_demand, p);
}

/* ---- busy: blocks the loop thread on purpose ----------------------------------------- */

void hello_busy_impl(synchro_call_t *call, const hello_busy_args_t *args) {
  uint64_t end = uv_hrtime() + (uint64_t)(args->ms > 0 ? args->ms : 0) * 1000000u;
  int64_t polls = 0;

  do /* never do this in a real implementation: nothing else runs on this loop now */
    polls++;
  while (uv_hrtime() < end);
  hello_busy_return(call, polls);
}

/* ---- stats ----------------------------------------------------------------------- */

void hello_stats_impl(synchro_call_t *call) {
  json_t *stats = json_pack("{sI sI sI}", "squares_cancelled", (json_int_t)squares_cancelled,
                            "countdowns_cancelled", (json_int_t)countdowns_cancelled,
                            "connections_closed", (json_int_t)connections_closed);

  if (stats == NULL) {
    hello_stats_fail(call, SYNCHRO_ENOMEM, NULL);
    return;
  }
  hello_stats_return(call, stats); /* deep-copied for the caller */
  json_decref(stats);
}

/* ---- the connection object ------------------------------------------------------- */

struct hello_conn {
  char *address;
  int64_t queries;
};

/* Synchronous, no I/O: records the address (the arguments are borrowed: copy). */
int hello_connection_construct(synchro_t *s, const hello_connection_new_args_t *args,
                               hello_conn **state) {
  hello_conn *c = calloc(1, sizeof(*c));

  (void)s;
  if (c == NULL || (c->address = strdup(args->address)) == NULL) {
    free(c);
    return SYNCHRO_ENOMEM;
  }
  *state = c;
  return 0;
}

void hello_connection_destroy(hello_conn *state) {
  free(state->address);
  free(state);
}

static void open_fired(pending_t *p) {
  printf("  [loop] connected to %s\n", p->conn->address);
  hello_connection_open_return(p->call);
  done(p);
}

void hello_connection_open_impl(synchro_call_t *call, hello_conn *self) {
  pending_t *p = after(call, 50, 0, open_fired);
  if (p != NULL)
    p->conn = self;
}

static void close_fired(pending_t *p) {
  connections_closed++;
  printf("  [loop] disconnected from %s (queries served: %" PRId64 ")\n", p->conn->address,
         p->conn->queries);
  hello_connection_close_return(p->call);
  done(p);
}

void hello_connection_close_impl(synchro_call_t *call, hello_conn *self) {
  pending_t *p = after(call, 50, 0, close_fired);
  if (p != NULL)
    p->conn = self;
}

static void query_fired(pending_t *p) {
  char answer[256];

  p->conn->queries++;
  snprintf(answer, sizeof(answer), "'%s' answered by %s (query %" PRId64 ")", p->sql,
           p->conn->address, p->conn->queries);
  hello_connection_query_return(p->call, answer); /* copied for the caller */
  done(p);
}

void hello_connection_query_impl(synchro_call_t *call, hello_conn *self,
                                 const hello_connection_query_args_t *args) {
  pending_t *p;

  if (args->sql[0] == '\0') {
    hello_connection_query_fail(call, HELLO_EBAD_QUERY, NULL); /* the spec's message */
    return;
  }
  if ((p = after(call, 20, 0, query_fired)) == NULL)
    return;
  p->conn = self;
  p->sql = args->sql; /* the call's copy: valid until the call is finished */
}
