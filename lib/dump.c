/* lib/dump.c - synchro_dump(): a JSON picture of a synchronizer and of every call it
 * still holds, for finding out why something hangs.
 *
 * Pending calls belong to the loop thread, so the picture of them is taken there: the
 * caller posts a request on the control queue and waits for it with a bounded timeout.
 * A loop that does not answer (stalled in an implementation, or gone) is exactly the
 * case a dump is wanted for, so the caller then reports what it can read without the
 * loop: the counters, and which implementation the loop thread entered last and when.
 * Nothing here runs on the call path; the call path only fills in `origin` (caller)
 * and `since_ms` (loop) on each record. */
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

#define DEFAULT_DUMP_TIMEOUT_MS 1000
#define FUNCTION_MAX 64

enum {
  FLAVOR_BLOCKING,
  FLAVOR_FUTURE,
  FLAVOR_AIO_HOST,
  FLAVOR_CQ,
  FLAVOR_STREAM,
  FLAVOR_METHOD,
  FLAVOR_LIFECYCLE
};
static const char *const flavor_names[] = {"blocking", "future",        "aio-host",        "cq",
                                           "stream",   "object-method", "object-lifecycle"};

enum {
  STATE_QUEUED,
  STATE_STARTED,
  STATE_PARKED,
  STATE_CANCELLING,
  STATE_COMPLETING,
  STATE_DELIVERING
};
static const char *const state_names[] = {"queued",     "started",    "parked",
                                          "cancelling", "completing", "delivering"};

static const char *const obj_kind_names[] = {"none",  "method",   "open",
                                             "close", "teardown", "construct"};

typedef struct {
  uintptr_t id;
  char function[FUNCTION_MAX];
  uint8_t flavor;
  uint8_t state;
  uint8_t obj_kind;
  bool blocking;
  bool cancel_requested;
  bool has_age;
  bool has_deadline;
  uint32_t origin;
  int64_t age_ms;
  int64_t deadline_in_ms;
} entry_t;

typedef struct {
  entry_t *v;
  size_t n, cap;
  bool truncated; /* out of memory while listing */
  bool shutting_down;
  uint32_t objects;
  uint64_t now_ms;
  size_t counts[STATE_DELIVERING + 1];
} snapshot_t;

/* The dump request travels the control queue as a record with this op; the loop
 * recognises it by address and never runs it. */
static void dump_impl(synchro_call_t *call) { (void)call; }
const synchro_op_t synchro__dump_op = {.name = "synchro.dump", .impl = dump_impl};

static void snapshot_free(snapshot_t *snap) {
  if (snap == NULL)
    return;
  synchro__free(snap->v);
  synchro__free(snap);
}

/* Loop time in ms on the loop's own clock base (uv_now() counts from uv_hrtime()). */
static uint32_t now_ms32(void) { return (uint32_t)(uv_hrtime() / 1000000u); }

static int64_t age_of(uint32_t since_ms, uint32_t now) {
  int32_t d = (int32_t)(now - since_ms);
  return d < 0 ? 0 : d;
}

static uint8_t flavor_of(const synchro_call_t *rec) {
  uintptr_t sink;
  if (rec->stream != NULL)
    return FLAVOR_STREAM;
  if (rec->obj_kind != SYNCHRO__OBJ_NONE)
    return rec->obj_kind == SYNCHRO__OBJ_METHOD ? FLAVOR_METHOD : FLAVOR_LIFECYCLE;
  if (rec->lflags & SYNCHRO__L_BLOCKING)
    return FLAVOR_BLOCKING;
  sink = atomic_load_explicit(&rec->sink, memory_order_acquire);
  if (sink != SYNCHRO__SINK_NONE) { /* the tag only, never the pointer */
    if ((sink & SYNCHRO__SINK_TAG_MASK) == SYNCHRO__SINK_HOST)
      return FLAVOR_AIO_HOST;
    if ((sink & SYNCHRO__SINK_TAG_MASK) == SYNCHRO__SINK_CQ)
      return FLAVOR_CQ;
  }
  return FLAVOR_FUTURE;
}

static uint8_t state_of(const synchro_call_t *rec, uint32_t st, bool queued, bool finished) {
  if (finished)
    return STATE_DELIVERING;
  if (queued)
    return STATE_QUEUED;
  if (synchro__phase(st) != SYNCHRO__PENDING)
    return STATE_COMPLETING; /* resolved; its implementation has not finished yet */
  if ((st & SYNCHRO__CANCEL) || (rec->lflags & SYNCHRO__L_CANCEL_SEEN))
    return STATE_CANCELLING;
  if (rec->lflags & SYNCHRO__L_PARKED)
    return STATE_PARKED;
  return STATE_STARTED;
}

static void add_entry(snapshot_t *snap, const synchro_call_t *rec, bool queued, bool finished,
                      uint64_t now_ns) {
  uint32_t st = atomic_load_explicit(&rec->state, memory_order_acquire);
  entry_t *e;
  if (snap->n == snap->cap) {
    size_t cap = snap->cap != 0 ? snap->cap * 2 : 64;
    entry_t *v = synchro__realloc(snap->v, cap * sizeof(*v));
    if (v == NULL) {
      snap->truncated = true;
      return;
    }
    snap->v = v;
    snap->cap = cap;
  }
  e = &snap->v[snap->n++];
  memset(e, 0, sizeof(*e));
  e->id = (uintptr_t)rec;
  snprintf(e->function, sizeof(e->function), "%s",
           rec->op != NULL && rec->op->name != NULL ? rec->op->name : "?");
  e->flavor = flavor_of(rec);
  e->state = state_of(rec, st, queued, finished);
  e->obj_kind = rec->obj_kind <= SYNCHRO__OBJ_CONSTRUCT ? rec->obj_kind : 0;
  e->blocking = (rec->lflags & SYNCHRO__L_BLOCKING) != 0;
  e->cancel_requested = (st & SYNCHRO__CANCEL) != 0;
  e->origin = rec->origin;
  /* A queued call has no loop time yet: the loop stamps it when it takes the call. */
  e->has_age = !queued;
  e->age_ms = queued ? 0 : age_of(rec->since_ms, (uint32_t)snap->now_ms);
  e->has_deadline = rec->deadline_ns != 0;
  if (e->has_deadline)
    e->deadline_in_ms = ((int64_t)rec->deadline_ns - (int64_t)now_ns) / 1000000;
  snap->counts[e->state]++;
}

/* On the loop thread (or the thread that owns its state after it stopped). */
static snapshot_t *take_snapshot(synchro_t *s) {
  snapshot_t *snap = synchro__calloc(1, sizeof(*snap));
  uint64_t now_ns = synchro__now_ns();
  const synchro_call_t *rec;
  if (snap == NULL)
    return NULL;
  snap->now_ms = now_ms32();
  snap->shutting_down = s->shutting_down;
  snap->objects = s->obj_count;
  /* Only the loop takes from the submission stack, and a pushed record's link never
   * changes while it is there: walking it here is safe. */
  rec = (const synchro_call_t *)(atomic_load_explicit(&s->submit_head, memory_order_acquire) &
                                 ~SYNCHRO__STACK_CLOSED);
  for (; rec != NULL; rec = rec->next)
    add_entry(snap, rec, true, false, now_ns);
  for (rec = s->active; rec != NULL; rec = rec->act_next)
    add_entry(snap, rec, false, false, now_ns);
  for (rec = s->finished; rec != NULL; rec = rec->act_next)
    add_entry(snap, rec, false, true, now_ns);
  return snap;
}

void synchro__dump_serve(synchro_t *s, synchro_call_t *req) {
  snapshot_t *snap = NULL;
  uint32_t old;
  if (!(atomic_load_explicit(&req->state, memory_order_acquire) & SYNCHRO__CANCEL))
    snap = take_snapshot(s);
  req->impl_data = snap;
  /* PENDING -> DONE; release publishes impl_data. CANCEL means the caller gave up. */
  old = atomic_fetch_or_explicit(&req->state, SYNCHRO__DONE, memory_order_acq_rel);
  if (old & SYNCHRO__CANCEL) {
    req->impl_data = NULL;
    snapshot_free(snap);
    return;
  }
  synchro__futex_wake(&req->state, 1);
}

typedef enum {
  ANSWER_LOOP,
  ANSWER_ON_LOOP,
  ANSWER_NOT_RUNNING,
  ANSWER_STOPPED,
  ANSWER_TIMEOUT,
  ANSWER_NOMEM
} answer_t;

/* Gets a snapshot from the loop thread within `timeout_ms`. */
static answer_t fetch_snapshot(synchro_t *s, int64_t timeout_ms, snapshot_t **out) {
  synchro_call_t *req;
  uint64_t deadline;
  uint32_t st;
  *out = NULL;
  if (synchro__on_loop(s)) {
    *out = take_snapshot(s);
    return *out != NULL ? ANSWER_ON_LOOP : ANSWER_NOMEM;
  }
  if (!synchro__is_running(s))
    return ANSWER_NOT_RUNNING;
  if ((req = synchro__pool_get()) == NULL)
    return ANSWER_NOMEM;
  synchro__init_record(req, s, &synchro__dump_op); /* two references: ours, the queue's */
  if (!synchro__post_request(req)) {
    atomic_store(&req->refs, 1);
    synchro__rec_unref(req);
    return ANSWER_STOPPED;
  }
  deadline = synchro__deadline_after(timeout_ms);
  for (;;) {
    st = atomic_load_explicit(&req->state, memory_order_acquire);
    if (synchro__phase(st) == SYNCHRO__DONE ||
        synchro__futex_wait(&req->state, st, deadline) == SYNCHRO_EPENDING)
      break;
  }
  if (synchro__phase(st) != SYNCHRO__DONE)
    st = atomic_fetch_or_explicit(&req->state, SYNCHRO__CANCEL, memory_order_acq_rel);
  if (synchro__phase(st) == SYNCHRO__DONE) {
    *out = req->impl_data; /* the loop answered (NULL: it ran out of memory) */
    req->impl_data = NULL;
  }
  synchro__rec_unref(req);
  if (synchro__phase(st) != SYNCHRO__DONE)
    return ANSWER_TIMEOUT;
  return *out != NULL ? ANSWER_LOOP : ANSWER_NOMEM;
}

/* ---- JSON ----------------------------------------------------------------------------- */

static int set(json_t *obj, const char *key, json_t *value) {
  return json_object_set_new(obj, key, value);
}

static json_t *stats_json(const synchro_t *s) {
  synchro_stats_t st;
  json_t *o = json_object();
  synchro_stats(s, &st);
  if (o == NULL)
    return NULL;
  set(o, "submitted", json_integer((json_int_t)st.submitted));
  set(o, "completed", json_integer((json_int_t)st.completed));
  set(o, "failed", json_integer((json_int_t)st.failed));
  set(o, "cancelled", json_integer((json_int_t)st.cancelled));
  set(o, "in_flight", json_integer((json_int_t)st.in_flight));
  set(o, "wakeups", json_integer((json_int_t)st.wakeups));
  return o;
}

static json_t *entry_json(const entry_t *e) {
  char id[2 + 2 * sizeof(uintptr_t) + 1];
  json_t *o = json_object();
  if (o == NULL)
    return NULL;
  snprintf(id, sizeof(id), "0x%" PRIxPTR, e->id);
  set(o, "id", json_string(id));
  set(o, "flavor", json_string(flavor_names[e->flavor]));
  set(o, "function", json_string(e->function));
  set(o, "origin", json_integer(e->origin));
  set(o, "age_ms", e->has_age ? json_integer(e->age_ms) : json_null());
  set(o, "state", json_string(state_names[e->state]));
  set(o, "blocking", json_boolean(e->blocking));
  set(o, "cancel_requested", json_boolean(e->cancel_requested));
  if (e->obj_kind != SYNCHRO__OBJ_NONE)
    set(o, "object_call", json_string(obj_kind_names[e->obj_kind]));
  if (e->has_deadline)
    set(o, "deadline_in_ms", json_integer(e->deadline_in_ms));
  return o;
}

static const char *answer_note(answer_t a) {
  switch (a) {
  case ANSWER_LOOP: return "snapshot taken on the loop thread";
  case ANSWER_ON_LOOP: return "called on the loop thread: snapshot taken directly";
  case ANSWER_NOT_RUNNING: return "the loop thread is not running: nothing is pending on it";
  case ANSWER_STOPPED: return "the loop thread has stopped: nothing is pending on it";
  case ANSWER_TIMEOUT:
    return "the loop thread did not answer in time (stalled or blocked): pending calls "
           "cannot be listed safely; see stats and loop_busy";
  case ANSWER_NOMEM:
  default: return "out of memory while taking the snapshot";
  }
}

static json_t *build_json(synchro_t *s, const snapshot_t *snap, answer_t answer, int64_t waited) {
  json_t *root = json_object(), *pending, *loop;
  const synchro_op_t *busy = atomic_load_explicit(&s->busy_op, memory_order_relaxed);
  int cpu = atomic_load_explicit(&s->loop_cpu, memory_order_relaxed);
  int tid = atomic_load_explicit(&s->loop_tid, memory_order_relaxed);
  size_t i;
  if (root == NULL)
    return NULL;
  set(root, "synchronizer", json_string(s->name));
  set(root, "running", json_boolean(synchro__is_running(s)));
  set(root, "accepting", json_boolean(!(atomic_load(&s->submit_head) & SYNCHRO__STACK_CLOSED)));
  set(root, "caller_on_loop_thread", json_boolean(synchro__on_loop(s)));
  set(root, "caller_thread", json_integer(synchro__thread_no()));
  /* For gdb or /proc/<pid>/task/<tid>/: the kernel thread id, and its name there. */
  set(root, "loop_tid", tid > 0 ? json_integer(tid) : json_null());
  set(root, "loop_cpu", cpu >= 0 ? json_integer(cpu) : json_null());
  set(root, "loop_answered", json_boolean(answer == ANSWER_LOOP || answer == ANSWER_ON_LOOP));
  if (answer == ANSWER_TIMEOUT)
    set(root, "waited_ms", json_integer(waited));
  set(root, "note", json_string(answer_note(answer)));
  set(root, "stats", stats_json(s));
  /* The implementation the loop thread entered last and has not returned from (its op
   * descriptor outlives its calls). Racy by nature; a hint for a stalled loop. */
  if (busy != NULL && answer != ANSWER_NOT_RUNNING && answer != ANSWER_STOPPED) {
    json_t *b = json_object();
    uint32_t since = atomic_load_explicit(&s->busy_since_ms, memory_order_relaxed);
    set(b, "function", json_string(busy->name != NULL ? busy->name : "?"));
    set(b, "for_ms", json_integer(age_of(since, now_ms32())));
    set(root, "loop_busy", b);
  } else {
    set(root, "loop_busy", json_null());
  }
  if (snap == NULL) {
    set(root, "pending", json_null()); /* unknown, not empty */
    if (answer == ANSWER_NOT_RUNNING || answer == ANSWER_STOPPED)
      set(root, "pending", json_array());
    return root;
  }
  loop = json_object();
  set(loop, "shutting_down", json_boolean(snap->shutting_down));
  set(loop, "objects", json_integer(snap->objects));
  for (i = 0; i <= STATE_DELIVERING; i++)
    set(loop, state_names[i], json_integer((json_int_t)snap->counts[i]));
  set(root, "loop", loop);
  pending = json_array();
  for (i = 0; i < snap->n; i++)
    json_array_append_new(pending, entry_json(&snap->v[i]));
  set(root, "pending", pending);
  set(root, "truncated", json_boolean(snap->truncated));
  return root;
}

int synchro_dump(synchro_t *s, int64_t timeout_ms, char **out) {
  snapshot_t *snap = NULL;
  answer_t answer;
  uint64_t t0;
  json_t *root;
  size_t len;
  char *text;
  if (out != NULL)
    *out = NULL;
  if (s == NULL || out == NULL ||
      (timeout_ms < 0 && timeout_ms != SYNCHRO_TIMEOUT_DEFAULT &&
       timeout_ms != SYNCHRO_TIMEOUT_INFINITE))
    return SYNCHRO_EINVAL;
  if (timeout_ms == SYNCHRO_TIMEOUT_DEFAULT)
    timeout_ms = DEFAULT_DUMP_TIMEOUT_MS;
  t0 = synchro__now_ns();
  answer = fetch_snapshot(s, timeout_ms, &snap);
  root = build_json(s, snap, answer, (int64_t)((synchro__now_ns() - t0) / 1000000u));
  snapshot_free(snap);
  if (root == NULL)
    return SYNCHRO_ENOMEM;
  len = json_dumpb(root, NULL, 0, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
  text = len != 0 ? synchro__malloc(len + 1) : NULL;
  if (text == NULL) {
    json_decref(root);
    return SYNCHRO_ENOMEM;
  }
  json_dumpb(root, text, len, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
  text[len] = '\0';
  json_decref(root);
  *out = text;
  return 0;
}

/* ---- test seams ------------------------------------------------------------------------ */
#ifdef SYNCHRO_TEST_SEAMS

static _Atomic int64_t live[SYNCHRO__LIVE_COUNT];

void synchro__live_add(int which, int delta) {
  atomic_fetch_add_explicit(&live[which], delta, memory_order_relaxed);
}

void synchro_test_live(synchro_test_live_t *out) {
  if (out == NULL)
    return;
  out->threads = atomic_load(&live[SYNCHRO__LIVE_THREADS]);
  out->fds = atomic_load(&live[SYNCHRO__LIVE_FDS]);
  out->loops = atomic_load(&live[SYNCHRO__LIVE_LOOPS]);
  out->handles = atomic_load(&live[SYNCHRO__LIVE_HANDLES]);
  out->records = atomic_load(&live[SYNCHRO__LIVE_RECORDS]);
  out->allocations = atomic_load(&live[SYNCHRO__LIVE_ALLOCS]);
}

int synchro_test_pending(synchro_t *s, int64_t timeout_ms) {
  snapshot_t *snap = NULL;
  answer_t answer;
  int n;
  if (s == NULL || timeout_ms < 0)
    return SYNCHRO_EINVAL;
  answer = fetch_snapshot(s, timeout_ms, &snap);
  if (answer == ANSWER_NOT_RUNNING || answer == ANSWER_STOPPED)
    return 0;
  if (answer == ANSWER_TIMEOUT)
    return SYNCHRO_ETIMEDOUT;
  if (snap == NULL)
    return SYNCHRO_ENOMEM;
  n = (int)snap->n;
  snapshot_free(snap);
  return n;
}

uint32_t synchro_test_thread_number(void) { return synchro__thread_no(); }

#endif
