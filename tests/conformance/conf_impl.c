/* tests/conformance/conf_impl.c - the one implementation of the conformance module.
 *
 * Everything here runs on the synchronizer's loop thread and is asynchronous: each
 * operation starts a libuv timer and finishes its call from the timer's callback, or
 * from its cancel hook when the caller cancels, a deadline passes or the synchronizer
 * shuts down. tests/check_conformance.c calls it through the three generated styles
 * (blocking, futures, aio) and expects the same outcomes from each. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>

#include "conf_impl.h"

/* Cancel hooks run so far (loop thread only; read through conf_cancel_count). */
static int64_t cancel_hooks;

/* ---- a timer owned by one call ------------------------------------------------------ */

typedef struct pending_s pending_t;
/* Finishes the call when the timer fires. */
typedef void (*fire_fn)(pending_t *p);

struct pending_s {
  uv_timer_t timer;
  synchro_call_t *call;
  fire_fn fire;
  void *self;    /* an object's state, for open/close */
  int64_t value; /* what to return, or the next stream item */
  int64_t n;     /* streams: items in all */
  int64_t fail_after;
  int64_t base; /* streams: the first item */
  int (*yield)(synchro_call_t *call, int64_t value);
  int (*end)(synchro_call_t *call);
};

static void on_closed(uv_handle_t *h) { free(h->data); }

/* The call is finished: stop and release the timer. */
static void done(pending_t *p) {
  uv_timer_stop(&p->timer);
  uv_close((uv_handle_t *)&p->timer, on_closed);
}

static void on_timer(uv_timer_t *t) { ((pending_t *)t->data)->fire(t->data); }

/* Starts a timer for `call` that runs `fire` after `ms` (then every `repeat` ms). */
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

/* The cancel hook of every timer-based operation: stop, count, and finish the call
 * (the caller sees the cancellation reason, whatever we finish with). */
static void on_cancel(synchro_call_t *call, int reason, void *data) {
  pending_t *p = data;

  cancel_hooks++;
  synchro_call_fail(call, reason, NULL, "stopped: %s", synchro_strerror(reason));
  done(p);
}

/* ---- plain functions ----------------------------------------------------------------- */

static void fire_add(pending_t *p) {
  conf_add_return(p->call, p->value);
  done(p);
}

void conf_add_impl(synchro_call_t *call, const conf_add_args_t *args) {
  pending_t *p = after(call, 1, 0, fire_add);
  if (p != NULL)
    p->value = args->a + args->b;
}

void conf_greet_impl(synchro_call_t *call, const conf_greet_args_t *args) {
  char text[256];

  snprintf(text, sizeof(text), "hello, %s", args->name);
  conf_greet_return(call, text);
}

void conf_limited_impl(synchro_call_t *call) {
  synchro_call_fail(call, CONF_ERATE_LIMITED, json_pack("{s:i}", "retry_after", 2), "slow down");
}

static void fire_sleep(pending_t *p) {
  conf_sleep_return(p->call, p->value);
  done(p);
}

static void fire_sleep_bounded(pending_t *p) {
  conf_sleep_bounded_return(p->call, p->value);
  done(p);
}

static void start_sleep(synchro_call_t *call, int64_t ms, fire_fn fire) {
  pending_t *p = after(call, (uint64_t)(ms > 0 ? ms : 0), 0, fire);

  if (p == NULL)
    return;
  p->value = ms;
  synchro_call_on_cancel(call, on_cancel, p);
}

void conf_sleep_impl(synchro_call_t *call, const conf_sleep_args_t *args) {
  start_sleep(call, args->ms, fire_sleep);
}

void conf_sleep_bounded_impl(synchro_call_t *call, const conf_sleep_bounded_args_t *args) {
  start_sleep(call, args->ms, fire_sleep_bounded);
}

void conf_cancel_count_impl(synchro_call_t *call) { conf_cancel_count_return(call, cancel_hooks); }

/* ---- streams ------------------------------------------------------------------------- */

/* One tick: the next item, the end, or the failure. A full buffer pauses the timer
 * until the consumer makes room (the demand hook). */
static void fire_tick(pending_t *p);

static void on_demand(synchro_call_t *call, void *data) {
  pending_t *p = data;

  (void)call;
  uv_timer_start(&p->timer, on_timer, 0, 1);
}

static void fire_tick(pending_t *p) {
  int rc;

  if (p->fail_after >= 0 && p->value == p->fail_after) {
    conf_count_fail(p->call, CONF_ERATE_LIMITED, "failed after %lld items", (long long)p->value);
    done(p);
    return;
  }
  if (p->value == p->n) {
    p->end(p->call);
    done(p);
    return;
  }
  rc = p->yield(p->call, p->base + p->value);
  if (rc == 0)
    p->value++;
  else if (rc == SYNCHRO_EBUSY)
    uv_timer_stop(&p->timer); /* resumed by on_demand */
  /* SYNCHRO_ECLOSED: the consumer is gone; the cancel hook finishes the call */
}

static void start_ticks(synchro_call_t *call, int64_t base, int64_t n, int64_t fail_after,
                        int (*yield)(synchro_call_t *, int64_t), int (*end)(synchro_call_t *)) {
  pending_t *p = after(call, 1, 1, fire_tick);

  if (p == NULL)
    return;
  p->base = base;
  p->n = n;
  p->fail_after = fail_after;
  p->yield = yield;
  p->end = end;
  synchro_call_on_cancel(call, on_cancel, p);
  synchro_call_on_demand(call, on_demand, p);
}

void conf_count_impl(synchro_call_t *call, const conf_count_args_t *args) {
  start_ticks(call, 0, args->n, args->fail_after, conf_count_yield, conf_count_end);
}

/* ---- the counter object ---------------------------------------------------------------- */

struct conf_counter {
  int64_t value;
  bool open;
};

int conf_counter_construct(synchro_t *s, const conf_counter_new_args_t *args,
                           conf_counter **state) {
  conf_counter *c = calloc(1, sizeof(*c));

  (void)s;
  if (c == NULL)
    return SYNCHRO_ENOMEM;
  c->value = args->start;
  *state = c;
  return 0;
}

void conf_counter_destroy(conf_counter *state) { free(state); }

static void fire_open(pending_t *p) {
  ((conf_counter *)p->self)->open = true;
  conf_counter_open_return(p->call);
  done(p);
}

void conf_counter_open_impl(synchro_call_t *call, conf_counter *self) {
  pending_t *p = after(call, 1, 0, fire_open);
  if (p != NULL)
    p->self = self;
}

static void fire_close(pending_t *p) {
  ((conf_counter *)p->self)->open = false;
  conf_counter_close_return(p->call);
  done(p);
}

void conf_counter_close_impl(synchro_call_t *call, conf_counter *self) {
  pending_t *p = after(call, 1, 0, fire_close);
  if (p != NULL)
    p->self = self;
}

void conf_counter_add_impl(synchro_call_t *call, conf_counter *self,
                           const conf_counter_add_args_t *args) {
  if (!self->open) {
    conf_counter_add_fail(call, CONF_ENOT_OPEN, NULL);
    return;
  }
  self->value += args->delta;
  conf_counter_add_return(call, self->value);
}

void conf_counter_ticks_impl(synchro_call_t *call, conf_counter *self,
                             const conf_counter_ticks_args_t *args) {
  start_ticks(call, self->value, args->n, -1, conf_counter_ticks_yield, conf_counter_ticks_end);
}

void conf_counter_same_impl(synchro_call_t *call, conf_counter *self) {
  conf_counter_same_return(call, self);
}

void conf_value_of_impl(synchro_call_t *call, const conf_value_of_args_t *args) {
  conf_value_of_return(call, args->c->value);
}

void conf_make_counter_impl(synchro_call_t *call, const conf_make_counter_args_t *args) {
  conf_counter *c = calloc(1, sizeof(*c));

  if (c == NULL) {
    conf_make_counter_fail(call, SYNCHRO_ENOMEM, NULL);
    return;
  }
  c->value = args->start;
  c->open = true; /* a wrapped state counts as open: close runs when its handle goes */
  conf_make_counter_return(call, c); /* the handle owns it from here */
}
