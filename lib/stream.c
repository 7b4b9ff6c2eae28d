/* lib/stream.c - streams: a bounded single-producer, single-consumer ring between the
 * implementation on the loop thread and the consumer.
 *
 * The producer publishes items by advancing `head`, the consumer takes them by
 * advancing `tail`; neither takes a lock. A consumer that finds the ring empty
 * announces that it sleeps (`waiting`), re-checks, and sleeps on `wake_seq`; the
 * producer wakes it only when it announced, so a burst of items costs one wakeup. A
 * producer that finds the ring full announces `paused`; the consumer that next takes
 * an item posts a demand request to the loop, which runs the demand hook. Each
 * announce-then-recheck pair is ordered by seq_cst on both sides, so no wakeup is lost.
 *
 * The stream's memory belongs to its call record and goes when the record goes, so a
 * consumer may free its handle while the producer still runs.
 *
 * Each side keeps a private copy of the other's index and reads the shared one only
 * when its copy says the ring is empty (consumer) or full (producer), so a busy stream
 * moves a cache line per slot line, not per item. A yield does not wake anyone: the
 * stream joins the loop's flush list, and one flush per loop iteration (before the loop
 * may block) wakes each sleeping consumer once for everything yielded meanwhile. */
#include <string.h>

#include "internal.h"

struct synchro_stream_s {
  synchro__sink_t base; /* notified when the stream's call resolves */
  synchro_call_t *rec;
  size_t item_size;
  uint64_t mask;     /* ring size - 1; the ring size is a power of two */
  uint64_t capacity; /* items the ring may hold: the op's capacity, <= ring size */
  synchro_release_fn item_free;
  _Alignas(SYNCHRO__CACHE_LINE) _Atomic uint64_t head; /* producer */
  _Atomic int paused;
  uint64_t tail_seen;          /* producer's copy of tail */
  synchro_demand_fn demand_fn; /* loop thread */
  void *demand_data;
  synchro_send_fn send_fn; /* loop thread */
  void *send_data;
  _Atomic uintptr_t inbox; /* sent messages, newest first (consumer pushes, loop takes) */
  bool dirty;              /* in the loop's flush list */
  synchro_stream_t *dirty_next;
  _Alignas(SYNCHRO__CACHE_LINE) _Atomic uint64_t tail; /* consumer */
  uint64_t head_seen;                                  /* consumer's copy of head */
  _Atomic uint32_t waiting;
  _Atomic uint32_t wake_seq;
  _Atomic int closed;   /* the consumer freed its handle */
  _Atomic int armed;    /* a host callback waits for the next item */
  _Atomic int in_host;  /* armed, or delivered and its callback not run yet */
  _Atomic int end_seen; /* the consumer was handed the end or the error */
  synchro_host_t *host;
  synchro_stream_cb cb;
  void *cb_data;
  unsigned char *scratch; /* the item handed to a host callback */
  _Alignas(16) unsigned char items[];
};

static unsigned char *slot(synchro_stream_t *st, uint64_t index) {
  return st->items + (index & st->mask) * st->item_size;
}

static uint64_t round_capacity(uint32_t capacity) {
  uint64_t cap = 1;
  if (capacity == 0)
    capacity = SYNCHRO_STREAM_CAPACITY_DEFAULT;
  while (cap < capacity)
    cap <<= 1;
  return cap;
}

/* Wakes a consumer that announced it sleeps. The seq_cst read-modify-write of head
 * orders our item stores before reading `waiting` (the consumer stores `waiting`, then
 * reads head, both seq_cst): one of the two sides always sees the other. */
static void wake_consumer(synchro_stream_t *st) {
  atomic_fetch_add_explicit(&st->head, 0, memory_order_seq_cst);
  if (atomic_load_explicit(&st->waiting, memory_order_seq_cst)) {
    atomic_fetch_add_explicit(&st->wake_seq, 1, memory_order_release);
    synchro__futex_wake(&st->wake_seq, 1);
  }
}

/* Hands the stream to its host callback if one is armed (once per arming). */
static void deliver_if_armed(synchro_stream_t *st) {
  if (atomic_load_explicit(&st->armed, memory_order_seq_cst) &&
      atomic_exchange_explicit(&st->armed, 0, memory_order_acq_rel))
    synchro__host_deliver(st->host, st->rec);
}

static void stream_resolved(synchro__sink_t *sink, synchro_call_t *rec) {
  synchro_stream_t *st = (synchro_stream_t *)sink;
  (void)rec;
  wake_consumer(st);
  deliver_if_armed(st);
}

/* ---- values and errors sent to the producer -------------------------------------- */

static int check_producer(const synchro_call_t *call);

typedef struct sent_s {
  struct sent_s *next;
  int code; /* 0: a value; < 0: an error thrown */
  size_t size;
  _Alignas(16) unsigned char value[];
} sent_t;

static void free_sent(sent_t *m) {
  while (m != NULL) {
    sent_t *next = m->next;
    synchro__free(m);
    m = next;
  }
}

static int post_sent(synchro_stream_t *st, int code, const void *value, size_t size) {
  synchro_call_t *rec;
  sent_t *m;
  uintptr_t head;
  if (st == NULL || (code == 0 && size != 0 && value == NULL) || code > 0)
    return SYNCHRO_EINVAL;
  rec = st->rec;
  if (atomic_load_explicit(&st->end_seen, memory_order_acquire) || synchro__is_done(rec))
    return SYNCHRO_ECLOSED; /* the producer is gone: nobody would see it */
  if ((m = synchro__malloc(sizeof(*m) + size)) == NULL)
    return SYNCHRO_ENOMEM;
  m->code = code;
  m->size = size;
  if (size != 0)
    memcpy(m->value, value, size);
  head = atomic_load_explicit(&st->inbox, memory_order_relaxed);
  do
    m->next = (sent_t *)head;
  while (!atomic_compare_exchange_weak_explicit(&st->inbox, &head, (uintptr_t)m,
                                                memory_order_release, memory_order_relaxed));
  synchro__post_control(rec, SYNCHRO__SENT);
  return 0;
}

int synchro_stream_send(synchro_stream_t *st, const void *value, size_t size) {
  return post_sent(st, 0, value, size);
}

int synchro_stream_throw(synchro_stream_t *st, int code) {
  return code < 0 ? post_sent(st, code, NULL, 0) : SYNCHRO_EINVAL;
}

/* Loop thread: oldest first, while the producer runs and has a hook; otherwise the
 * messages wait for a hook (or are dropped with the stream). */
void synchro__stream_deliver_sent(synchro_call_t *rec) {
  synchro_stream_t *st = rec->stream;
  sent_t *list = NULL, *m;
  if (st->send_fn == NULL || (rec->lflags & SYNCHRO__L_IMPL_DONE) ||
      !(rec->lflags & SYNCHRO__L_STARTED))
    return;
  m = (sent_t *)atomic_exchange_explicit(&st->inbox, 0, memory_order_acquire);
  while (m != NULL) { /* reverse into sending order */
    sent_t *next = m->next;
    m->next = list;
    list = m;
    m = next;
  }
  while (list != NULL) {
    m = list;
    list = m->next;
    /* a hook that ended the call stops the delivery: the rest is dropped */
    if (!(rec->lflags & SYNCHRO__L_IMPL_DONE)) {
      SYNCHRO__USER_CODE("a send hook");
      st->send_fn(rec, m->code == 0 ? m->value : NULL, m->code, st->send_data);
    }
    synchro__free(m);
  }
}

int synchro_call_on_send(synchro_call_t *call, synchro_send_fn fn, void *data) {
  int rc = check_producer(call);
  if (rc != 0 || fn == NULL)
    return rc != 0 ? rc : SYNCHRO_EINVAL;
  call->stream->send_fn = fn;
  call->stream->send_data = data;
  if (atomic_load_explicit(&call->stream->inbox, memory_order_relaxed) != 0)
    synchro__post_control(call, SYNCHRO__SENT); /* sent before the hook: deliver next */
  return 0;
}

void synchro__stream_destroy(synchro_stream_t *st) {
  uint64_t i, head = atomic_load(&st->head), tail = atomic_load(&st->tail);
  free_sent((sent_t *)atomic_load(&st->inbox));
  if (st->item_free != NULL)
    for (i = tail; i != head; i++)
      st->item_free(slot(st, i));
  synchro__free(st->scratch);
  synchro__aligned_free(st);
}

/* ---- consumer -------------------------------------------------------------------- */

int synchro_stream_open(synchro_t *s, const synchro_op_t *op, const void *args, int64_t timeout_ms,
                        synchro_stream_t **out) {
  return synchro__stream_open(s, op, args, timeout_ms, NULL, out);
}

int synchro__stream_open(synchro_t *s, const synchro_op_t *op, const void *args, int64_t timeout_ms,
                         struct synchro_object_s *object, synchro_stream_t **out) {
  synchro__target_t target = {NULL, object, SYNCHRO__OBJ_METHOD, false};
  synchro_stream_t *st;
  synchro_call_t *rec;
  uint64_t cap;
  int rc;
  if (out == NULL)
    return SYNCHRO_EINVAL;
  *out = NULL;
  if (s == NULL || op == NULL || op->item_size == 0 || op->item_size > SYNCHRO_ARGS_MAX ||
      op->capacity > SYNCHRO_STREAM_CAPACITY_MAX)
    return SYNCHRO_EINVAL;
  cap = round_capacity(op->capacity);
  st = synchro__aligned_calloc(sizeof(*st) + cap * op->item_size);
  if (st == NULL)
    return SYNCHRO_ENOMEM;
  st->scratch = synchro__malloc(op->item_size);
  if (st->scratch == NULL) {
    synchro__aligned_free(st);
    return SYNCHRO_ENOMEM;
  }
  st->base.notify = stream_resolved;
  st->item_size = op->item_size;
  st->mask = cap - 1;
  st->capacity = op->capacity != 0 ? op->capacity : SYNCHRO_STREAM_CAPACITY_DEFAULT;
  st->item_free = op->item_free;
  target.stream = st;
  if (object == NULL)
    target.obj_kind = SYNCHRO__OBJ_NONE;
  rc = synchro__submit(s, op, args, timeout_ms, false, &target, &rec);
  if (rc != 0) {
    synchro__stream_destroy(st);
    return rc;
  }
  *out = st;
  return 0;
}

void synchro__stream_bind(synchro_stream_t *st, synchro_call_t *rec) {
  st->rec = rec;
  rec->stream = st;
  atomic_store_explicit(&rec->sink, (uintptr_t)&st->base, memory_order_relaxed);
  synchro__set_sinked_unpushed(rec, true);
}

/* A paused producer can go on: ask the loop to run its demand hook. `ordered` puts our
 * tail stores before the check in the seq_cst order (the producer stores `paused`,
 * then reads tail), as required before the consumer sleeps or gives up; without it
 * the check is a cheap early hint. */
static void check_demand(synchro_stream_t *st, bool ordered) {
  if (ordered)
    atomic_fetch_add_explicit(&st->tail, 0, memory_order_seq_cst);
  if (atomic_load_explicit(&st->paused, ordered ? memory_order_seq_cst : memory_order_relaxed) &&
      atomic_exchange_explicit(&st->paused, 0, memory_order_acq_rel) &&
      !synchro__is_done(st->rec)) /* ended: no producer to resume, maybe no loop either */
    synchro__post_control(st->rec, SYNCHRO__DEMAND);
}

static bool take_item(synchro_stream_t *st, void *item) {
  uint64_t tail = atomic_load_explicit(&st->tail, memory_order_relaxed);
  if (tail == st->head_seen) {
    st->head_seen = atomic_load_explicit(&st->head, memory_order_acquire);
    if (tail == st->head_seen)
      return false;
  }
  memcpy(item, slot(st, tail), st->item_size);
  atomic_store_explicit(&st->tail, tail + 1, memory_order_release);
  check_demand(st, false);
  return true;
}

static bool has_item(synchro_stream_t *st) {
  return atomic_load_explicit(&st->head, memory_order_seq_cst) !=
         atomic_load_explicit(&st->tail, memory_order_relaxed);
}

/* The code after the last item: SYNCHRO_EEND, or the call's error. */
static int end_status(synchro_stream_t *st) {
  atomic_store_explicit(&st->end_seen, 1, memory_order_release);
  return st->rec->status == 0 ? SYNCHRO_EEND : st->rec->status;
}

/* Sleeps until an item arrives, the call resolves, or the deadline passes. */
static int wait_for_item(synchro_stream_t *st, uint64_t deadline) {
  uint32_t seq = atomic_load_explicit(&st->wake_seq, memory_order_acquire);
  int rc = 0;
  atomic_store_explicit(&st->waiting, 1, memory_order_seq_cst);
  check_demand(st, true);
  if (!has_item(st) &&
      synchro__phase(atomic_load_explicit(&st->rec->state, memory_order_seq_cst)) != SYNCHRO__DONE)
    rc = synchro__futex_wait(&st->wake_seq, seq, deadline);
  atomic_store_explicit(&st->waiting, 0, memory_order_relaxed);
  return rc;
}

int synchro_stream_next(synchro_stream_t *st, void *item, int64_t timeout_ms) {
  uint64_t deadline;
  if (st == NULL || item == NULL || (timeout_ms < 0 && timeout_ms != SYNCHRO_TIMEOUT_INFINITE))
    return SYNCHRO_EINVAL;
  if (atomic_load(&st->in_host))
    return SYNCHRO_EBUSY;
  deadline = synchro__deadline_after(timeout_ms);
  for (;;) {
    if (take_item(st, item))
      return 0;
    if (synchro__is_done(st->rec)) {
      if (has_item(st)) /* items published before the outcome */
        continue;
      return end_status(st);
    }
    /* In a fork child the producer's loop is gone: settle the inheritance, so the
     * stream ends with SYNCHRO_EFORKED instead of waiting for it (as futures do). */
    synchro__check_fork(st->rec->sync);
    if (synchro__is_done(st->rec))
      continue;
    if (timeout_ms == 0) {
      check_demand(st, true);
      return SYNCHRO_EPENDING;
    }
    if (synchro__would_deadlock(st->rec, timeout_ms))
      return SYNCHRO_EDEADLK;
    if (wait_for_item(st, deadline) == SYNCHRO_EPENDING && !has_item(st) &&
        !synchro__is_done(st->rec))
      return SYNCHRO_EPENDING;
  }
}

/* Runs on the host thread when an armed stream has an item or has ended. */
static void run_host_callback(synchro_future_t *rec, int status, void *data) {
  synchro_stream_t *st = data;
  (void)rec;
  (void)status;
  if (atomic_load_explicit(&st->closed, memory_order_acquire))
    return; /* the consumer freed the stream: nobody to call */
  atomic_store(&st->in_host, 0);
  if (take_item(st, st->scratch))
    st->cb(st, 0, st->scratch, st->cb_data);
  else if (synchro__is_done(st->rec) && !has_item(st))
    st->cb(st, end_status(st), NULL, st->cb_data);
  else
    synchro_stream_next_then(st, st->host, st->cb, st->cb_data); /* nothing yet */
}

int synchro_stream_next_then(synchro_stream_t *st, synchro_host_t *h, synchro_stream_cb cb,
                             void *data) {
  int rc;
  if (st == NULL || h == NULL || cb == NULL)
    return SYNCHRO_EINVAL;
  if (atomic_load(&st->in_host))
    return SYNCHRO_EBUSY;
  st->host = h;
  st->cb = cb;
  st->cb_data = data;
  synchro__rec_ref(st->rec); /* held by the host until the callback ran */
  if ((rc = synchro__host_attach(h, st->rec, run_host_callback, st)) != 0) {
    synchro__rec_unref(st->rec);
    return rc;
  }
  atomic_store(&st->in_host, 1);
  atomic_store_explicit(&st->armed, 1, memory_order_seq_cst);
  /* Something may already be there: deliver it (in the host's next dispatch). */
  if (has_item(st) || synchro__is_done(st->rec))
    deliver_if_armed(st);
  return 0;
}

const synchro_error_t *synchro_stream_error(const synchro_stream_t *st) {
  const synchro_call_t *rec;
  if (st == NULL)
    return NULL;
  rec = st->rec;
  if (!atomic_load_explicit(&st->end_seen, memory_order_acquire) || rec->status == 0)
    return NULL; /* not reached yet: items come first */
  return synchro__rec_error(rec) != NULL ? rec->error : synchro__static_error(rec->status);
}

int synchro_stream_close(synchro_stream_t *st, int64_t timeout_ms) {
  synchro_call_t *rec;
  int rc = 0;
  if (st == NULL || (timeout_ms < 0 && timeout_ms != SYNCHRO_TIMEOUT_INFINITE))
    return SYNCHRO_EINVAL;
  rec = st->rec;
  if (synchro__would_deadlock(rec, timeout_ms))
    return SYNCHRO_EDEADLK; /* nothing done: the caller may still free it */
  atomic_store_explicit(&st->closed, 1, memory_order_release);
  if (!synchro__is_done(rec)) {
    synchro_future_cancel(rec);
    if (synchro__wait_done(rec, synchro__deadline_after(timeout_ms)) != 0)
      rc = SYNCHRO_ETIMEDOUT; /* the cleanup goes on, on the loop */
  }
  synchro__rec_unref(rec);
  return rc;
}

void synchro_stream_free(synchro_stream_t *st) {
  synchro_call_t *rec;
  if (st == NULL)
    return;
  rec = st->rec;
  atomic_store_explicit(&st->closed, 1, memory_order_release);
  if (!synchro__is_done(rec))
    synchro_future_cancel(rec); /* the producer's hook runs on the loop */
  synchro__rec_unref(rec);      /* the stream goes with the record */
}

/* ---- producer (loop thread) ------------------------------------------------------------ */

static int check_producer(const synchro_call_t *call) {
  int rc = synchro__rec_check(call);
  if (rc != 0)
    return rc;
  if (!synchro__on_loop(call->sync))
    return SYNCHRO_EPERM;
  return call->stream != NULL ? 0 : SYNCHRO_EINVAL;
}

static bool room_appeared(synchro_stream_t *st, uint64_t head);

int synchro_call_room(const synchro_call_t *call) {
  synchro_stream_t *st;
  int rc = check_producer(call);
  if (rc != 0)
    return rc;
  st = call->stream;
  return (int)(st->capacity - (atomic_load_explicit(&st->head, memory_order_relaxed) -
                               atomic_load_explicit(&st->tail, memory_order_acquire)));
}

int synchro_call_yield(synchro_call_t *call, const void *item) {
  synchro_stream_t *st;
  uint64_t head;
  int rc = check_producer(call);
  if (rc != 0 || item == NULL)
    return rc != 0 ? rc : SYNCHRO_EINVAL;
  st = call->stream;
  if (call->lflags & SYNCHRO__L_IMPL_DONE)
    return SYNCHRO_EALREADY;
  if (atomic_load_explicit(&st->closed, memory_order_acquire) ||
      (atomic_load_explicit(&call->state, memory_order_acquire) & SYNCHRO__CANCEL))
    return SYNCHRO_ECLOSED;
  head = atomic_load_explicit(&st->head, memory_order_relaxed);
  if (head - st->tail_seen >= st->capacity && !room_appeared(st, head))
    return SYNCHRO_EBUSY;
  memcpy(slot(st, head), item, st->item_size);
  atomic_store_explicit(&st->head, head + 1, memory_order_release);
  if (!st->dirty) { /* the flush wakes the consumer once for the whole burst */
    st->dirty = true;
    st->dirty_next = call->sync->dirty_streams;
    call->sync->dirty_streams = st;
    synchro__rec_ref(call);
  }
  return 0;
}

/* Our copy of tail says the ring is full: look at the real one, and if it is full,
 * announce the pause and look again, so a consumer that just made room either sees
 * `paused` or is seen here. */
static bool room_appeared(synchro_stream_t *st, uint64_t head) {
  st->tail_seen = atomic_load_explicit(&st->tail, memory_order_acquire);
  if (head - st->tail_seen < st->capacity)
    return true;
  atomic_store_explicit(&st->paused, 1, memory_order_seq_cst);
  st->tail_seen = atomic_load_explicit(&st->tail, memory_order_seq_cst);
  return head - st->tail_seen < st->capacity;
}

void synchro__streams_flush(synchro_t *s) {
  synchro_stream_t *st = s->dirty_streams;
  s->dirty_streams = NULL;
  while (st != NULL) {
    synchro_stream_t *next = st->dirty_next;
    synchro_call_t *rec = st->rec;
    st->dirty = false;
    wake_consumer(st);
    deliver_if_armed(st);
    synchro__rec_unref(rec);
    st = next;
  }
}

int synchro_call_on_demand(synchro_call_t *call, synchro_demand_fn fn, void *data) {
  int rc = check_producer(call);
  if (rc != 0 || fn == NULL)
    return rc != 0 ? rc : SYNCHRO_EINVAL;
  call->stream->demand_fn = fn;
  call->stream->demand_data = data;
  return 0;
}

void synchro__stream_demand(synchro_call_t *rec) {
  synchro_stream_t *st = rec->stream;
  if ((rec->lflags & SYNCHRO__L_IMPL_DONE) || !(rec->lflags & SYNCHRO__L_STARTED) ||
      st->demand_fn == NULL)
    return;
  SYNCHRO__USER_CODE("a demand hook");
  st->demand_fn(rec, st->demand_data);
}
