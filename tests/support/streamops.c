/* tests/support/streamops.c - stream producers and the object test class. */
#include "streamops.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "testops.h"

atomic_long test_stream_started, test_stream_yielded, test_stream_busy, test_stream_closed_seen,
    test_stream_demands, test_stream_spurious, test_stream_busy_room, test_stream_max_room,
    test_stream_ended, test_stream_hooks, test_stream_hooks_off_loop, test_stream_items_made,
    test_stream_items_freed;
atomic_int test_stream_hook_reason;
_Atomic(synchro_call_t *) test_stream_last_call;

atomic_long test_obj_constructs, test_obj_construct_off_loop;
atomic_long test_obj_opens_started, test_obj_opens_done, test_obj_open_hooks;
atomic_long test_obj_closes_started, test_obj_closes_done, test_obj_close_hooks;
atomic_long test_obj_close_off_loop, test_obj_close_before_open_done, test_obj_close_with_methods,
    test_obj_close_twice, test_obj_resources;
atomic_long test_obj_destroys, test_obj_destroy_off_loop, test_obj_destroy_unclosed,
    test_obj_destroy_busy;
atomic_long test_obj_methods_started, test_obj_methods_active, test_obj_method_hooks;
atomic_long test_obj_no_state;
_Atomic(void *) test_obj_last_state;

void streamops_reset(void) {
  test_stream_started = test_stream_yielded = test_stream_busy = 0;
  test_stream_closed_seen = test_stream_demands = test_stream_spurious = 0;
  test_stream_busy_room = test_stream_max_room = test_stream_ended = 0;
  test_stream_hooks = test_stream_hooks_off_loop = 0;
  test_stream_hook_reason = 0;
  test_stream_items_made = test_stream_items_freed = 0;
  test_stream_last_call = NULL;
  test_obj_constructs = test_obj_construct_off_loop = 0;
  test_obj_opens_started = test_obj_opens_done = test_obj_open_hooks = 0;
  test_obj_closes_started = test_obj_closes_done = test_obj_close_hooks = 0;
  test_obj_close_off_loop = test_obj_close_before_open_done = 0;
  test_obj_close_with_methods = test_obj_close_twice = test_obj_resources = 0;
  test_obj_destroys = test_obj_destroy_off_loop = test_obj_destroy_unclosed = 0;
  test_obj_destroy_busy = 0;
  test_obj_methods_started = test_obj_methods_active = test_obj_method_hooks = 0;
  test_obj_no_state = 0;
  test_obj_last_state = NULL;
}

long test_wait_count(atomic_long *counter, long want, double ms) {
  double t0 = test_now_ms();
  struct timespec pause = {0, 200000};
  while (atomic_load(counter) < want && test_now_ms() - t0 < ms)
    nanosleep(&pause, NULL);
  return atomic_load(counter);
}

static bool on_loop_of(synchro_call_t *call) {
  return synchro_is_loop_thread(synchro_call_synchronizer(call)) != 0;
}

/* ---- stream producers ----------------------------------------------------------------- */

typedef struct {
  synchro_call_t *call;
  int64_t next, n, stall_after;
  int fail_code;
  bool strings;
  bool paused;  /* got SYNCHRO_EBUSY: waits for the demand hook */
  bool stopped; /* got SYNCHRO_ECLOSED or stalled: waits for the cancel hook */
} producer_t;

static void note_room(long room) {
  long max = atomic_load(&test_stream_max_room);
  while (room > max && !atomic_compare_exchange_weak(&test_stream_max_room, &max, room))
    ;
}

/* Ends the call by itself (all items yielded), then forgets the producer. */
static void producer_end(producer_t *p) {
  synchro_call_t *call = p->call;
  int64_t n = p->n;
  int code = p->fail_code;
  free(p);
  test_stream_ended++;
  if (code != 0)
    synchro_call_fail(call, code,
                      json_pack("{s:I,s:s}", "after", (json_int_t)n, "reason", "on purpose"),
                      "failed after %lld items", (long long)n);
  else
    synchro_call_return(call, NULL);
}

/* Yields until the buffer is full, the stream is over, or the consumer is gone. */
static void pump(producer_t *p) {
  for (;;) {
    int rc, room;
    char *text = NULL;
    if (p->n >= 0 && p->next >= p->n) {
      producer_end(p);
      return;
    }
    if (p->stall_after >= 0 && p->next >= p->stall_after) {
      p->stopped = true; /* only a cancellation ends it now */
      return;
    }
    room = synchro_call_room(p->call);
    note_room(room);
    if (p->strings) {
      char buf[32];
      snprintf(buf, sizeof(buf), "item-%lld", (long long)p->next);
      text = strdup(buf);
      rc = synchro_call_yield(p->call, &text);
    } else {
      rc = synchro_call_yield(p->call, &p->next);
    }
    if (rc == 0) {
      test_stream_yielded++;
      if (p->strings)
        test_stream_items_made++;
      p->next++;
      continue;
    }
    free(text); /* not accepted: still ours */
    if (rc == SYNCHRO_EBUSY) {
      test_stream_busy++;
      if (room > 0)
        test_stream_busy_room++;
      p->paused = true;
      return;
    }
    if (rc == SYNCHRO_ECLOSED) {
      test_stream_closed_seen++;
      p->stopped = true; /* the cancel hook follows and ends the call */
      return;
    }
    {
      synchro_call_t *call = p->call; /* unexpected: report it as the stream's error */
      free(p);
      synchro_call_fail(call, rc, NULL, "unexpected yield answer");
      return;
    }
  }
}

static void producer_demand(synchro_call_t *call, void *data) {
  producer_t *p = data;
  (void)call;
  test_stream_demands++;
  if (!p->paused) {
    test_stream_spurious++;
    return;
  }
  p->paused = false;
  pump(p);
}

static void producer_cancel(synchro_call_t *call, int reason, void *data) {
  test_stream_hooks++;
  if (!on_loop_of(call))
    test_stream_hooks_off_loop++;
  test_stream_hook_reason = reason;
  free(data);
  synchro_call_return(call, NULL);
}

static void producer_start(synchro_call_t *call, const test_count_args_t *a, bool strings) {
  producer_t *p = calloc(1, sizeof(*p));
  test_stream_started++;
  test_stream_last_call = call;
  p->call = call;
  p->n = a != NULL ? a->n : -1;
  p->stall_after = a != NULL ? a->stall_after : -1;
  p->fail_code = a != NULL ? a->fail_code : 0;
  p->strings = strings;
  synchro_call_on_cancel(call, producer_cancel, p);
  synchro_call_on_demand(call, producer_demand, p);
  pump(p);
}

static void count_impl(synchro_call_t *call) {
  producer_start(call, synchro_call_args(call), false);
}
static void infinite_impl(synchro_call_t *call) { producer_start(call, NULL, false); }
static void strings_impl(synchro_call_t *call) {
  producer_start(call, synchro_call_args(call), true);
}

static void string_item_free(void *item) {
  free(*(char **)item);
  test_stream_items_freed++;
}

const synchro_op_t test_sop_count = {.name = "count",
                                     .impl = count_impl,
                                     .args_size = sizeof(test_count_args_t),
                                     .item_size = sizeof(int64_t)};
const synchro_op_t test_sop_count64 = {.name = "count64",
                                       .impl = count_impl,
                                       .args_size = sizeof(test_count_args_t),
                                       .item_size = sizeof(int64_t),
                                       .capacity = 64};
const synchro_op_t test_sop_count100 = {.name = "count100",
                                        .impl = count_impl,
                                        .args_size = sizeof(test_count_args_t),
                                        .item_size = sizeof(int64_t),
                                        .capacity = 100};
const synchro_op_t test_sop_infinite = {
    .name = "infinite", .impl = infinite_impl, .item_size = sizeof(int64_t), .capacity = 64};
const synchro_op_t test_sop_fail = {.name = "fail_after",
                                    .impl = count_impl,
                                    .args_size = sizeof(test_count_args_t),
                                    .item_size = sizeof(int64_t),
                                    .capacity = 64};
const synchro_op_t test_sop_strings = {.name = "strings",
                                       .impl = strings_impl,
                                       .args_size = sizeof(test_count_args_t),
                                       .item_size = sizeof(char *),
                                       .item_free = string_item_free,
                                       .capacity = 16};

/* ---- the object test class --------------------------------------------------------------- */

typedef struct test_obj_s {
  synchro_t *sync;
  int64_t value;
  int64_t close_ms;
  bool opened;    /* open started */
  bool open_done; /* open finished (either way) */
  int closes;     /* close started */
  bool close_done;
  bool resource; /* acquired by open, released by close */
  long methods_active;
  struct test_obj_s *peer;  /* what `peer` wraps */
  struct test_obj_s *owner; /* the state whose peer this is */
} test_obj_t;

static int obj_construct(synchro_t *s, const void *args, void **state) {
  const test_obj_args_t *a = args;
  test_obj_t *st;
  if (!synchro_is_loop_thread(s))
    test_obj_construct_off_loop++;
  test_obj_constructs++;
  if (a != NULL && a->construct_rc != 0)
    return a->construct_rc;
  if ((st = calloc(1, sizeof(*st))) == NULL)
    return SYNCHRO_ENOMEM;
  st->sync = s;
  st->value = a != NULL ? a->value : 0;
  st->close_ms = a != NULL ? a->close_ms : 0;
  test_obj_last_state = st;
  *state = st;
  return 0;
}

static void obj_destroy(void *state) {
  test_obj_t *st = state;
  if (!synchro_is_loop_thread(st->sync))
    test_obj_destroy_off_loop++;
  test_obj_destroys++;
  if (st->opened && !st->close_done)
    test_obj_destroy_unclosed++;
  if (st->methods_active != 0)
    test_obj_destroy_busy++;
  if (st->peer != NULL && st->peer->owner == st)
    st->peer->owner = NULL;
  if (st->owner != NULL && st->owner->peer == st)
    st->owner->peer = NULL;
  free(st);
}

/* A uv timer that finishes a call; its cancel hook stops it early. */
enum { JOB_OPEN, JOB_CLOSE, JOB_SLEEP };
typedef struct {
  uv_timer_t timer;
  synchro_call_t *call;
  test_obj_t *st;
  int kind;
  int fail_code;
  int64_t ms;
  int reason; /* != 0: cancelled */
} job_t;

static void job_closed(uv_handle_t *h) {
  job_t *j = h->data;
  synchro_call_t *call = j->call;
  test_obj_t *st = j->st;
  switch (j->kind) {
  case JOB_OPEN:
    st->open_done = true;
    test_obj_opens_done++;
    if (j->reason != 0)
      synchro_call_fail(call, SYNCHRO_ECANCELED, NULL, "open stopped: %s",
                        synchro_strerror(j->reason));
    else if (j->fail_code != 0)
      synchro_call_fail(call, j->fail_code, json_pack("{s:s}", "stage", "half-way"),
                        "open failed half-way");
    else
      synchro_call_return(call, NULL);
    break;
  case JOB_CLOSE:
    if (st->resource) {
      st->resource = false;
      test_obj_resources--;
    }
    st->close_done = true;
    test_obj_closes_done++;
    synchro_call_return(call, NULL);
    break;
  default:
    st->methods_active--;
    test_obj_methods_active--;
    if (j->reason != 0)
      synchro_call_fail(call, SYNCHRO_ECANCELED, NULL, "sleep stopped");
    else
      synchro_call_return(call, &j->ms);
  }
  free(j);
}

static void job_fired(uv_timer_t *t) {
  if (!uv_is_closing((uv_handle_t *)t))
    uv_close((uv_handle_t *)t, job_closed);
}

static void job_cancel(synchro_call_t *call, int reason, void *data) {
  job_t *j = data;
  (void)call;
  if (j->kind == JOB_OPEN)
    test_obj_open_hooks++;
  else if (j->kind == JOB_CLOSE)
    test_obj_close_hooks++;
  else
    test_obj_method_hooks++;
  j->reason = reason;
  uv_timer_stop(&j->timer);
  job_fired(&j->timer);
}

static void job_start(synchro_call_t *call, test_obj_t *st, int kind, int64_t ms, int fail) {
  job_t *j = calloc(1, sizeof(*j));
  j->call = call;
  j->st = st;
  j->kind = kind;
  j->ms = ms;
  j->fail_code = fail;
  uv_timer_init(synchro_call_loop(call), &j->timer);
  j->timer.data = j;
  test_timer_start(&j->timer, job_fired, ms);
  synchro_call_on_cancel(call, job_cancel, j);
}

/* Every object call starts here: its state, or the call fails. */
static test_obj_t *state_of(synchro_call_t *call) {
  test_obj_t *st = synchro_call_object(call);
  if (st == NULL) {
    test_obj_no_state++;
    synchro_call_fail(call, SYNCHRO_EINVAL, NULL, "no object state");
  }
  return st;
}

static void open_impl(synchro_call_t *call) {
  const test_obj_open_args_t *a = synchro_call_args(call);
  test_obj_t *st = state_of(call);
  if (st == NULL)
    return;
  test_obj_opens_started++;
  st->opened = true;
  st->resource = true; /* acquired before the half-way point */
  test_obj_resources++;
  job_start(call, st, JOB_OPEN, a->ms, a->fail_code);
}
static const synchro_op_t test_obj_open_op = {
    .name = "test_open", .impl = open_impl, .args_size = sizeof(test_obj_open_args_t)};

static void close_impl(synchro_call_t *call) {
  test_obj_t *st = state_of(call);
  if (st == NULL)
    return;
  test_obj_closes_started++;
  if (!on_loop_of(call))
    test_obj_close_off_loop++;
  if (st->closes++ != 0)
    test_obj_close_twice++;
  if (st->opened && !st->open_done)
    test_obj_close_before_open_done++;
  if (st->methods_active != 0)
    test_obj_close_with_methods++;
  job_start(call, st, JOB_CLOSE, st->close_ms, 0);
}
static const synchro_op_t test_obj_close_op = {.name = "test_close", .impl = close_impl};

const synchro_class_t test_class = {.name = "test_object",
                                    .construct = obj_construct,
                                    .destroy = obj_destroy,
                                    .open = &test_obj_open_op,
                                    .close = &test_obj_close_op};

/* ---- methods ---- */

static void sleep_impl(synchro_call_t *call) {
  const test_obj_sleep_args_t *a = synchro_call_args(call);
  test_obj_t *st = state_of(call);
  if (st == NULL)
    return;
  test_obj_methods_started++;
  test_obj_methods_active++;
  st->methods_active++;
  job_start(call, st, JOB_SLEEP, a->ms, 0);
}
const synchro_op_t test_oop_sleep = {.name = "obj_sleep",
                                     .impl = sleep_impl,
                                     .args_size = sizeof(test_obj_sleep_args_t),
                                     .result_size = sizeof(int64_t)};

static void value_impl(synchro_call_t *call) {
  const test_obj_value_args_t *a = synchro_call_args(call);
  test_obj_t *st = state_of(call);
  int64_t v;
  if (st == NULL)
    return;
  v = st->value + a->add;
  synchro_call_return(call, &v);
}
const synchro_op_t test_oop_value = {.name = "obj_value",
                                     .impl = value_impl,
                                     .args_size = sizeof(test_obj_value_args_t),
                                     .result_size = sizeof(int64_t)};

static void handle_result_free(void *result) { synchro_object_free(*(synchro_object_t **)result); }

static void peer_impl(synchro_call_t *call) {
  test_obj_t *st = state_of(call);
  synchro_object_t *h = NULL;
  bool fresh = false;
  int rc;
  if (st == NULL)
    return;
  if (st->peer == NULL) {
    if ((st->peer = calloc(1, sizeof(*st->peer))) == NULL) {
      synchro_call_fail(call, SYNCHRO_ENOMEM, NULL, NULL);
      return;
    }
    st->peer->sync = st->sync;
    st->peer->value = st->value + 1000;
    st->peer->owner = st;
    fresh = true;
  }
  rc = synchro_object_wrap(synchro_call_synchronizer(call), &test_class, st->peer, &h);
  if (rc != 0) {
    if (fresh) {
      free(st->peer);
      st->peer = NULL;
    }
    synchro_call_fail(call, rc, NULL, "wrap failed");
    return;
  }
  synchro_call_return(call, &h);
}
const synchro_op_t test_oop_peer = {.name = "obj_peer",
                                    .impl = peer_impl,
                                    .result_size = sizeof(synchro_object_t *),
                                    .result_free = handle_result_free};

static int handle_args_copy(void *dst, const void *src) {
  const test_obj_handle_args_t *s = src;
  test_obj_handle_args_t *d = dst;
  d->other = synchro_object_ref(s->other);
  d->link = s->link;
  return 0;
}
static void handle_args_free(void *args) {
  synchro_object_free(((test_obj_handle_args_t *)args)->other);
}

static void state_of_impl(synchro_call_t *call) {
  const test_obj_handle_args_t *a = synchro_call_args(call);
  test_obj_t *st = state_of(call);
  test_obj_t *other;
  int64_t ptr;
  if (st == NULL)
    return;
  other = synchro_object_state(a->other);
  if (a->link && other != NULL && other != st) {
    st->peer = other;
    other->owner = st;
  }
  ptr = (int64_t)(intptr_t)other;
  synchro_call_return(call, &ptr);
}
const synchro_op_t test_oop_state_of = {.name = "obj_state_of",
                                        .impl = state_of_impl,
                                        .args_size = sizeof(test_obj_handle_args_t),
                                        .args_copy = handle_args_copy,
                                        .args_free = handle_args_free,
                                        .result_size = sizeof(int64_t)};

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void drop_impl(synchro_call_t *call) {
  synchro_object_t *const *obj = synchro_call_args(call);
  int64_t t0 = now_ns(), dt;
  synchro_object_free(*obj);
  dt = now_ns() - t0;
  synchro_call_return(call, &dt);
}
const synchro_op_t test_oop_drop = {.name = "obj_drop",
                                    .impl = drop_impl,
                                    .args_size = sizeof(synchro_object_t *),
                                    .result_size = sizeof(int64_t)};

static void lifecycle_on_loop_impl(synchro_call_t *call) {
  synchro_object_t *const *obj = synchro_call_args(call);
  test_obj_open_args_t oargs = {0, 0};
  test_obj_pair_t out;
  out.open_rc = synchro_object_open(*obj, &oargs, SYNCHRO_TIMEOUT_INFINITE, NULL);
  out.close_rc = synchro_object_close(*obj, SYNCHRO_TIMEOUT_INFINITE, NULL);
  synchro_call_return(call, &out);
}
const synchro_op_t test_oop_lifecycle_on_loop = {.name = "obj_lifecycle_on_loop",
                                                 .impl = lifecycle_on_loop_impl,
                                                 .args_size = sizeof(synchro_object_t *),
                                                 .result_size = sizeof(test_obj_pair_t)};
