/* lib/object.c - objects: state on the loop thread, reference-counted handles anywhere.
 *
 * A handle has two counts. `refs` counts its owners (callers, argument blocks); the
 * last owner posts a teardown call to the loop. `holds` keeps the memory: one for the
 * object's life on the loop (dropped after the destructor ran) and one per call record
 * bound to it, so a record can always look at its object. The lifecycle state below is
 * touched by the loop thread only. Handle memory is never returned to the allocator
 * but recycled (cleared to FREED first), so a stale handle is refused, not a crash; a
 * debug build (SYNCHRO_DEBUG) never recycles, so every stale use is caught. */
#include <string.h>

#include "internal.h"

enum { OBJ_NEW, OBJ_OPENING, OBJ_OPEN, OBJ_CLOSING, OBJ_CLOSED };

struct synchro_object_s {
  _Atomic uint32_t magic;
  _Atomic uint32_t refs;
  _Atomic uint32_t holds;
  _Atomic int gone; /* 0, or why the loop can no longer run it (shut down, forked) */
  synchro_t *sync;
  const synchro_class_t *cls;
  void *state;
  /* loop thread */
  int lstate;
  bool tearing_down;
  bool destroyed;
  synchro_call_t *calls; /* in-flight calls bound to this object, oldest first */
  synchro_call_t *calls_tail;
  synchro_call_t *parked_close;   /* a close that waits for open to finish */
  synchro_call_t *serial_running; /* SYNCHRO_CLASS_SERIAL: the method running now */
  synchro_object_t *bucket_next;
  synchro_object_t *recycle_next;
};

/* ---- handle memory --------------------------------------------------------------- */

static pthread_mutex_t recycle_mutex = PTHREAD_MUTEX_INITIALIZER;
static synchro_object_t *recycled;

static synchro_object_t *object_alloc(void) {
  synchro_object_t *obj = NULL;
#ifndef SYNCHRO_DEBUG
  synchro__lock(&recycle_mutex);
  if ((obj = recycled) != NULL)
    recycled = obj->recycle_next;
  synchro__unlock(&recycle_mutex);
#endif
  if (obj == NULL && (obj = synchro__malloc(sizeof(*obj))) == NULL)
    return NULL;
  memset(obj, 0, sizeof(*obj));
  return obj;
}

static void object_recycle(synchro_object_t *obj) {
  atomic_store(&obj->magic, SYNCHRO__MAGIC_FREED);
  synchro__lock(&recycle_mutex);
  obj->recycle_next = recycled;
  recycled = obj;
  synchro__unlock(&recycle_mutex);
}

void synchro__object_release(synchro_object_t *obj) {
  if (atomic_fetch_sub_explicit(&obj->holds, 1, memory_order_acq_rel) == 1)
    object_recycle(obj);
}

static void object_hold(synchro_object_t *obj) {
  atomic_fetch_add_explicit(&obj->holds, 1, memory_order_relaxed);
}

static int check_handle(const synchro_object_t *obj) {
  if (obj == NULL)
    return SYNCHRO_EINVAL;
  if (atomic_load_explicit(&obj->magic, memory_order_acquire) != SYNCHRO__MAGIC_LIVE ||
      atomic_load_explicit(&obj->refs, memory_order_acquire) == 0)
    return SYNCHRO_EFREED;
  return 0;
}

/* ---- the synchronizer's registry: state pointer -> handle (loop thread) -------- */

static uint32_t bucket_of(const synchro_t *s, const void *state) {
  uintptr_t h = (uintptr_t)state;
  h ^= h >> 17;
  h *= 0x9E3779B97F4A7C15u;
  return (uint32_t)(h >> 32) & (s->obj_nbuckets - 1);
}

static synchro_object_t *registry_find(const synchro_t *s, const void *state) {
  synchro_object_t *obj;
  if (s->obj_nbuckets == 0)
    return NULL;
  for (obj = s->obj_buckets[bucket_of(s, state)]; obj != NULL; obj = obj->bucket_next)
    if (obj->state == state)
      return obj;
  return NULL;
}

static int registry_grow(synchro_t *s) {
  uint32_t i, old_n = s->obj_nbuckets, n = old_n ? old_n * 2 : 64;
  synchro_object_t **old = s->obj_buckets;
  s->obj_buckets = synchro__calloc(n, sizeof(*s->obj_buckets));
  if (s->obj_buckets == NULL) {
    s->obj_buckets = old;
    return SYNCHRO_ENOMEM;
  }
  s->obj_nbuckets = n;
  for (i = 0; i < old_n; i++) {
    synchro_object_t *obj = old[i];
    while (obj != NULL) {
      synchro_object_t *next = obj->bucket_next;
      uint32_t b = bucket_of(s, obj->state);
      obj->bucket_next = s->obj_buckets[b];
      s->obj_buckets[b] = obj;
      obj = next;
    }
  }
  synchro__free(old);
  return 0;
}

static int registry_add(synchro_t *s, synchro_object_t *obj) {
  uint32_t b;
  if (s->obj_count >= s->obj_nbuckets && registry_grow(s) != 0 && s->obj_nbuckets == 0)
    return SYNCHRO_ENOMEM;
  b = bucket_of(s, obj->state);
  obj->bucket_next = s->obj_buckets[b];
  s->obj_buckets[b] = obj;
  s->obj_count++;
  return 0;
}

static void registry_remove(synchro_t *s, synchro_object_t *obj) {
  synchro_object_t **link;
  if (s->obj_nbuckets == 0)
    return;
  for (link = &s->obj_buckets[bucket_of(s, obj->state)]; *link != NULL;
       link = &(*link)->bucket_next)
    if (*link == obj) {
      *link = obj->bucket_next;
      s->obj_count--;
      return;
    }
}

/* ---- loop side: lifecycle ------------------------------------------------------------ */

/* Appends: the list stays in the order the loop took the calls, which is the order a
 * serial object runs its methods in. */
static void calls_insert(synchro_object_t *obj, synchro_call_t *rec) {
  rec->ext->obj_next = NULL;
  rec->ext->obj_prev = obj->calls_tail;
  if (obj->calls_tail != NULL)
    obj->calls_tail->ext->obj_next = rec;
  else
    obj->calls = rec;
  obj->calls_tail = rec;
}

static void calls_remove(synchro_object_t *obj, synchro_call_t *rec) {
  if (rec->ext->obj_prev != NULL)
    rec->ext->obj_prev->ext->obj_next = rec->ext->obj_next;
  else if (obj->calls == rec)
    obj->calls = rec->ext->obj_next;
  else
    return; /* not in the list */
  if (rec->ext->obj_next != NULL)
    rec->ext->obj_next->ext->obj_prev = rec->ext->obj_prev;
  else
    obj->calls_tail = rec->ext->obj_prev;
  rec->ext->obj_prev = rec->ext->obj_next = NULL;
}

/* ---- serial objects: one method at a time ------------------------------------------ */

static bool is_serial(const synchro_object_t *obj) {
  return (obj->cls->flags & SYNCHRO_CLASS_SERIAL) != 0;
}

/* A method of a serial object while another runs: it waits in the object's list,
 * counted as started so that cancellation, deadlines and shutdown still reach it. */
static bool park_method(synchro_t *s, synchro_object_t *obj, synchro_call_t *rec) {
  calls_insert(obj, rec);
  synchro__loop_park(s, rec); /* sets SYNCHRO__L_PARKED */
  return false;
}

/* Starts the oldest parked method. One that was cancelled (or timed out) while it
 * waited never runs: it ends here and the next is tried. */
static void run_next_method(synchro_t *s, synchro_object_t *obj) {
  synchro_call_t *rec;
  for (rec = obj->calls; rec != NULL && obj->serial_running == NULL;) {
    synchro_call_t *next = rec->ext->obj_next;
    if (rec->obj_kind == SYNCHRO__OBJ_METHOD && (rec->lflags & SYNCHRO__L_PARKED)) {
      rec->lflags &= (uint16_t)~SYNCHRO__L_PARKED;
      if (synchro__phase(atomic_load_explicit(&rec->state, memory_order_acquire)) !=
          SYNCHRO__PENDING) {
        synchro__loop_finish_call(s, rec); /* resolved while parked: its impl never runs */
      } else {
        obj->serial_running = rec;
        SYNCHRO__SEAM(START, rec);
        SYNCHRO__USER_CODE(rec->op->name);
        rec->op->impl(rec); /* may finish rec before returning */
      }
    }
    rec = next;
  }
}

static void destroy_state(synchro_t *s, synchro_object_t *obj) {
  obj->destroyed = true;
  registry_remove(s, obj);
  if (obj->cls->destroy != NULL) {
    SYNCHRO__USER_CODE("a class destructor");
    obj->cls->destroy(obj->state);
  }
  synchro__object_release(obj); /* the object's life on the loop */
}

/* The destructor runs once nothing is open and no call is bound to the object. */
static void maybe_destroy(synchro_t *s, synchro_object_t *obj) {
  if (obj->tearing_down && !obj->destroyed &&
      (obj->lstate == OBJ_NEW || obj->lstate == OBJ_CLOSED) && obj->calls == NULL &&
      obj->parked_close == NULL)
    destroy_state(s, obj);
}

static void noop_impl(synchro_call_t *call) { synchro_call_return(call, NULL); }
static const synchro_op_t noop_op = {.name = "close", .impl = noop_impl};

/* Runs close without a caller: after a failed open, or for a teardown. */
static void close_internally(synchro_t *s, synchro_object_t *obj) {
  const synchro_op_t *op = obj->cls->close != NULL ? obj->cls->close : &noop_op;
  synchro_call_t *rec = synchro__pool_get();
  if (rec != NULL) {
    synchro__init_record(rec, s, op);
    if (synchro__rec_ext(rec) == NULL) {
      atomic_store_explicit(&rec->magic, SYNCHRO__MAGIC_FREED, memory_order_relaxed);
      synchro__pool_put(rec);
      rec = NULL;
    }
  }
  if (rec == NULL) {
    obj->lstate = OBJ_CLOSED; /* nothing can run it; do not wedge the teardown */
    return;
  }
  atomic_store(&rec->refs, 1);                           /* the loop's only */
  memset(rec->args_inline, 0, sizeof(rec->args_inline)); /* close takes no arguments */
  rec->deadline_ns = 0;
  rec->ext->object = obj;
  rec->obj_kind = SYNCHRO__OBJ_CLOSE;
  rec->since_ms = (uint32_t)uv_now(&s->loop);
  object_hold(obj);
  atomic_fetch_add_explicit(&s->n_submitted, 1, memory_order_relaxed);
  synchro__force_admission(s); /* its outcome gives the slot back like any call's */
  obj->lstate = OBJ_CLOSING;
  calls_insert(obj, rec);
  synchro__loop_run_impl(s, rec);
}

static bool refuse(synchro_t *s, synchro_call_t *rec, int code) {
  synchro__resolve(rec, code, NULL, NULL);
  synchro__loop_finish_call(s, rec);
  return false;
}

static bool admit_close(synchro_t *s, synchro_object_t *obj, synchro_call_t *rec) {
  switch (obj->lstate) {
  case OBJ_NEW: /* never opened: nothing to close */
    obj->lstate = OBJ_CLOSED;
    synchro__resolve(rec, 0, NULL, NULL);
    synchro__loop_finish_call(s, rec);
    return false;
  case OBJ_OPENING:
    if (obj->parked_close != NULL)
      return refuse(s, rec, SYNCHRO_EALREADY);
    /* Waits for open; counts as started so cancellation and shutdown see it. */
    obj->parked_close = rec;
    calls_insert(obj, rec);
    synchro__loop_park(s, rec);
    return false;
  case OBJ_OPEN:
    obj->lstate = OBJ_CLOSING;
    calls_insert(obj, rec);
    return true;
  default: return refuse(s, rec, SYNCHRO_EALREADY);
  }
}

static void teardown(synchro_t *s, synchro_object_t *obj);

bool synchro__object_admit(synchro_t *s, synchro_call_t *rec) {
  synchro_object_t *obj = rec->ext->object;
  if (rec->obj_kind == SYNCHRO__OBJ_CONSTRUCT) {
    calls_insert(obj, rec);
    return true;
  }
  if (rec->obj_kind == SYNCHRO__OBJ_TEARDOWN) {
    teardown(s, obj);
    return refuse(s, rec, 0);
  }
  if (obj->destroyed)
    return refuse(s, rec,
                  atomic_load(&obj->gone) == SYNCHRO_EFORKED ? SYNCHRO_EFORKED : SYNCHRO_ECLOSED);
  if (rec->obj_kind == SYNCHRO__OBJ_CLOSE)
    return admit_close(s, obj, rec);
  if (obj->tearing_down || obj->lstate == OBJ_CLOSING || obj->lstate == OBJ_CLOSED)
    return refuse(s, rec, SYNCHRO_ECLOSED);
  if (rec->obj_kind == SYNCHRO__OBJ_OPEN) {
    if (obj->cls->open == NULL)
      return refuse(s, rec, 0); /* nothing to open: it is open since construction */
    if (obj->lstate != OBJ_NEW)
      return refuse(s, rec, SYNCHRO_EALREADY);
    obj->lstate = OBJ_OPENING;
  } else if (rec->obj_kind == SYNCHRO__OBJ_METHOD && is_serial(obj)) {
    if (obj->serial_running != NULL)
      return park_method(s, obj, rec);
    obj->serial_running = rec;
  }
  calls_insert(obj, rec);
  return true;
}

static void open_finished(synchro_t *s, synchro_object_t *obj, bool ok) {
  synchro_call_t *parked = obj->parked_close;
  obj->lstate = ok ? OBJ_OPEN : OBJ_CLOSING;
  if (parked != NULL) { /* the user's close waited for open: run it now */
    obj->parked_close = NULL;
    obj->lstate = OBJ_CLOSING;
    parked->lflags &= (uint16_t)~SYNCHRO__L_PARKED;
    SYNCHRO__USER_CODE(parked->op->name);
    parked->op->impl(parked); /* even if cancelled meanwhile: close runs once */
  } else if (!ok) {
    close_internally(s, obj); /* release what the failed open set up */
  } else if (obj->tearing_down) {
    close_internally(s, obj);
  }
}

void synchro__object_call_done(synchro_t *s, synchro_call_t *rec, bool live) {
  synchro_object_t *obj = rec->ext->object;
  if (!(rec->lflags & SYNCHRO__L_STARTED))
    return; /* refused before it started: no lifecycle effect */
  calls_remove(obj, rec);
  if (obj->parked_close == rec) { /* cancelled or shut down while parked */
    obj->parked_close = NULL;
    return;
  }
  if (obj->serial_running == rec)
    obj->serial_running = NULL;
  if (!live)
    return; /* the loop is gone: orphaning destroys what is left */
  if (rec->obj_kind == SYNCHRO__OBJ_METHOD && obj->serial_running == NULL && is_serial(obj))
    run_next_method(s, obj); /* only a serial object has methods waiting their turn */
  if (rec->obj_kind == SYNCHRO__OBJ_OPEN)
    open_finished(s, obj, rec->status == 0);
  else if (rec->obj_kind == SYNCHRO__OBJ_CLOSE)
    obj->lstate = OBJ_CLOSED;
  else if (obj->tearing_down && obj->lstate == OBJ_OPEN && obj->calls == NULL)
    close_internally(s, obj); /* the last cancelled method is done: now close */
  maybe_destroy(s, obj);
}

/* The last handle reference is gone: cancel its calls, close it, destroy it. */
static void teardown(synchro_t *s, synchro_object_t *obj) {
  synchro_call_t *rec, *next;
  if (obj->tearing_down || obj->destroyed)
    return;
  obj->tearing_down = true;
  /* Cancel the methods now (their hooks run here); a hook may finish calls and unlink
   * them, so hold the next one while the current hook runs. */
  for (rec = obj->calls; rec != NULL; rec = next) {
    bool next_still_listed;
    next = rec->ext->obj_next;
    if (next != NULL)
      synchro__rec_ref(next);
    if (rec->obj_kind == SYNCHRO__OBJ_METHOD)
      synchro__loop_cancel(s, rec, SYNCHRO_ECANCELED);
    if (next == NULL)
      break;
    next_still_listed = next->ext->obj_prev != NULL || obj->calls == next;
    synchro__rec_unref(next);
    if (!next_still_listed)
      next = obj->calls;
  }
  /* Close once the cancelled methods are done (see synchro__object_call_done). */
  if (obj->lstate == OBJ_OPEN && obj->calls == NULL)
    close_internally(s, obj);
  maybe_destroy(s, obj);
}

void synchro__objects_shutdown(synchro_t *s) {
  uint32_t i;
  for (i = 0; i < s->obj_nbuckets; i++) {
    synchro_object_t *obj;
    for (obj = s->obj_buckets[i]; obj != NULL; obj = obj->bucket_next)
      if (obj->lstate == OBJ_OPEN)
        close_internally(s, obj);
  }
}

synchro_object_t *synchro__objects_orphan(synchro_t *s, int reason) {
  synchro_object_t *list = NULL;
  uint32_t i;
  for (i = 0; i < s->obj_nbuckets; i++) {
    synchro_object_t *obj;
    while ((obj = s->obj_buckets[i]) != NULL) {
      atomic_store(&obj->gone, reason);
      obj->destroyed = true;
      registry_remove(s, obj); /* unlinks it */
      obj->bucket_next = list;
      list = obj;
    }
  }
  synchro__free(s->obj_buckets);
  s->obj_buckets = NULL;
  s->obj_nbuckets = s->obj_count = 0;
  return list;
}

void synchro__objects_reap(synchro_object_t *list) {
  synchro_object_t *obj;
  while ((obj = list) != NULL) {
    list = obj->bucket_next;
    if (obj->cls->destroy != NULL) {
      SYNCHRO__USER_CODE("a class destructor");
      obj->cls->destroy(obj->state);
    }
    synchro__object_release(obj); /* the object's life on the loop */
  }
}

/* ---- caller side --------------------------------------------------------------------- */

typedef struct {
  synchro_object_t *obj;
  const void *args;
} construct_args_t;

static void construct_impl(synchro_call_t *call) {
  const construct_args_t *a = synchro_call_args(call);
  synchro_object_t *obj = a->obj;
  synchro_t *s = synchro_call_synchronizer(call);
  int rc;
  SYNCHRO__USER_CODE("a class constructor");
  rc = obj->cls->construct(s, a->args, &obj->state);
  if (rc == 0 && (rc = registry_add(s, obj)) != 0 && obj->cls->destroy != NULL)
    obj->cls->destroy(obj->state);
  if (rc != 0) {
    obj->destroyed = true; /* never lived: no close, no destructor */
    synchro_call_fail(call, rc, NULL, "%s: constructor failed", obj->cls->name);
    return;
  }
  synchro_call_return(call, NULL);
}

static const synchro_op_t construct_op = {.name = "construct",
                                          .impl = construct_impl,
                                          .args_size = sizeof(construct_args_t),
                                          .timeout_ms = SYNCHRO_TIMEOUT_INFINITE};

static void teardown_impl(synchro_call_t *call) { synchro_call_return(call, NULL); }
static const synchro_op_t teardown_op = {
    .name = "teardown", .impl = teardown_impl, .timeout_ms = SYNCHRO_TIMEOUT_INFINITE};

static synchro_object_t *handle_new(synchro_t *s, const synchro_class_t *cls) {
  synchro_object_t *obj = object_alloc();
  if (obj == NULL)
    return NULL;
  atomic_init(&obj->refs, 1);
  atomic_init(&obj->holds, 2); /* its life on the loop, and its handle references */
  obj->sync = s;
  obj->cls = cls;
  /* With no open op the object is ready once built, and its close runs at the end. */
  obj->lstate = cls->open != NULL ? OBJ_NEW : OBJ_OPEN;
  atomic_store_explicit(&obj->magic, SYNCHRO__MAGIC_LIVE, memory_order_release);
  return obj;
}

/* Submits a call bound to `obj`; the record holds the object's memory. */
static int submit_on(synchro_object_t *obj, const synchro_op_t *op, const void *args,
                     int64_t timeout_ms, bool blocking, uint8_t kind, synchro_call_t **out) {
  synchro__target_t target = {NULL, obj, kind, false};
  int rc = check_handle(obj);
  if (rc != 0)
    return rc;
  synchro__check_fork(obj->sync); /* in a fork child this marks the object gone */
  if ((rc = atomic_load(&obj->gone)) != 0)
    return rc == SYNCHRO_EFORKED ? rc : SYNCHRO_ECLOSED;
  object_hold(obj);
  rc = synchro__submit(obj->sync, op, args, timeout_ms, blocking, &target, out);
  if (rc != 0)
    synchro__object_release(obj);
  return rc;
}

int synchro_object_new(synchro_t *s, const synchro_class_t *cls, const void *args,
                       synchro_object_t **out, synchro_error_t **err) {
  construct_args_t cargs;
  synchro_call_t *rec;
  synchro_object_t *obj;
  int rc;
  if (err != NULL)
    *err = NULL;
  if (out == NULL)
    return SYNCHRO_EINVAL;
  *out = NULL;
  if (s == NULL || cls == NULL || cls->construct == NULL)
    return SYNCHRO_EINVAL;
  if ((obj = handle_new(s, cls)) == NULL)
    return SYNCHRO_ENOMEM;
  cargs.obj = obj;
  cargs.args = args;
  if (synchro__on_loop(s)) { /* on the loop: construct inline, nothing to wait for */
    rc = cls->construct(s, args, &obj->state);
    if (rc == 0 && (rc = registry_add(s, obj)) != 0 && cls->destroy != NULL)
      cls->destroy(obj->state);
  } else {
    synchro__blocking_t b = {NULL, 0};
    bool watched = synchro__blocking_watched(synchro__tls_loop); /* edge, cycle, report */
    if (!watched || (rc = synchro__blocking_begin(s, &b)) == 0) {
      if ((rc = submit_on(obj, &construct_op, &cargs, SYNCHRO_TIMEOUT_INFINITE, true,
                          SYNCHRO__OBJ_CONSTRUCT, &rec)) == 0)
        rc = synchro__finish_blocking(rec, NULL, err);
      if (watched) { /* reported under the class's name */
        synchro_op_t named = construct_op;
        named.name = cls->name != NULL ? cls->name : construct_op.name;
        synchro__blocking_end(s, &named, rc, &b);
      }
    }
  }
  if (rc != 0) {
    atomic_store(&obj->refs, 0);
    synchro__object_release(obj); /* never lived on the loop */
    synchro__object_release(obj); /* no handle reference left */
    return rc;
  }
  *out = obj;
  return 0;
}

synchro_object_t *synchro_object_ref(synchro_object_t *obj) {
  if (check_handle(obj) == 0)
    atomic_fetch_add_explicit(&obj->refs, 1, memory_order_relaxed);
  return obj;
}

void synchro_object_free(synchro_object_t *obj) {
  synchro_call_t *rec;
  if (check_handle(obj) != 0)
    return;
  if (atomic_fetch_sub_explicit(&obj->refs, 1, memory_order_acq_rel) != 1)
    return;
  /* The last reference: the loop tears the object down. When the synchronizer is
   * gone (or going) it does so itself at shutdown. Never waits. */
  if (atomic_load(&obj->gone) == 0) {
    object_hold(obj);
    if (synchro__submit(obj->sync, &teardown_op, NULL, SYNCHRO_TIMEOUT_INFINITE, false,
                        &(synchro__target_t){NULL, obj, SYNCHRO__OBJ_TEARDOWN, true}, &rec) == 0)
      synchro_future_free(rec);
    else
      synchro__object_release(obj);
  }
  synchro__object_release(obj); /* the handle references' hold */
}

static const synchro_op_t *lifecycle_op(const synchro_op_t *op) {
  return op != NULL ? op : &noop_op;
}

int synchro_object_open_future(synchro_object_t *obj, const void *args, int64_t timeout_ms,
                               synchro_future_t **out) {
  if (out != NULL)
    *out = NULL;
  if (check_handle(obj) != 0 || out == NULL)
    return check_handle(obj) != 0 ? check_handle(obj) : SYNCHRO_EINVAL;
  return submit_on(obj, lifecycle_op(obj->cls->open), args, timeout_ms, false, SYNCHRO__OBJ_OPEN,
                   out);
}

int synchro_object_close_future(synchro_object_t *obj, int64_t timeout_ms, synchro_future_t **out) {
  if (out != NULL)
    *out = NULL;
  if (check_handle(obj) != 0 || out == NULL)
    return check_handle(obj) != 0 ? check_handle(obj) : SYNCHRO_EINVAL;
  return submit_on(obj, lifecycle_op(obj->cls->close), NULL, timeout_ms, false, SYNCHRO__OBJ_CLOSE,
                   out);
}

static int call_blocking(synchro_object_t *obj, const synchro_op_t *op, const void *args,
                         int64_t timeout_ms, uint8_t kind, void *result, synchro_error_t **err) {
  synchro_call_t *rec;
  int rc;
  if (err != NULL)
    *err = NULL;
  if ((rc = check_handle(obj)) != 0)
    return rc;
  if (synchro__on_loop(obj->sync))
    return SYNCHRO_EDEADLK;
  if (op != NULL && op->result_size != 0 && result == NULL)
    return SYNCHRO_EINVAL;
  if (synchro__blocking_watched(synchro__tls_loop)) { /* edge, cycle check, report */
    synchro__blocking_t b;
    if ((rc = synchro__blocking_begin(obj->sync, &b)) != 0)
      return rc;
    if ((rc = submit_on(obj, op, args, timeout_ms, true, kind, &rec)) == 0)
      rc = synchro__finish_blocking(rec, result, err);
    synchro__blocking_end(obj->sync, op, rc, &b);
    return rc;
  }
  if ((rc = submit_on(obj, op, args, timeout_ms, true, kind, &rec)) != 0)
    return rc;
  return synchro__finish_blocking(rec, result, err);
}

int synchro_object_open(synchro_object_t *obj, const void *args, int64_t timeout_ms,
                        synchro_error_t **err) {
  if (check_handle(obj) != 0)
    return check_handle(obj);
  return call_blocking(obj, lifecycle_op(obj->cls->open), args, timeout_ms, SYNCHRO__OBJ_OPEN, NULL,
                       err);
}

int synchro_object_close(synchro_object_t *obj, int64_t timeout_ms, synchro_error_t **err) {
  if (check_handle(obj) != 0)
    return check_handle(obj);
  return call_blocking(obj, lifecycle_op(obj->cls->close), NULL, timeout_ms, SYNCHRO__OBJ_CLOSE,
                       NULL, err);
}

int synchro_object_submit(synchro_object_t *obj, const synchro_op_t *op, const void *args,
                          int64_t timeout_ms, synchro_future_t **out) {
  if (out != NULL)
    *out = NULL;
  if (out == NULL || (op != NULL && op->item_size != 0))
    return SYNCHRO_EINVAL;
  return submit_on(obj, op, args, timeout_ms, false, SYNCHRO__OBJ_METHOD, out);
}

int synchro_object_call(synchro_object_t *obj, const synchro_op_t *op, const void *args,
                        int64_t timeout_ms, void *result, synchro_error_t **err) {
  if (op != NULL && op->item_size != 0)
    return SYNCHRO_EINVAL;
  return call_blocking(obj, op, args, timeout_ms, SYNCHRO__OBJ_METHOD, result, err);
}

int synchro_object_stream_open(synchro_object_t *obj, const synchro_op_t *op, const void *args,
                               int64_t timeout_ms, synchro_stream_t **out) {
  int rc = check_handle(obj);
  if (rc != 0)
    return rc;
  synchro__check_fork(obj->sync);
  if ((rc = atomic_load(&obj->gone)) != 0)
    return rc == SYNCHRO_EFORKED ? rc : SYNCHRO_ECLOSED;
  object_hold(obj);
  rc = synchro__stream_open(obj->sync, op, args, timeout_ms, obj, out);
  if (rc != 0)
    synchro__object_release(obj);
  return rc;
}

void *synchro_call_object(const synchro_call_t *call) {
  if (synchro__rec_check(call) != 0 || !synchro__on_loop(call->sync) ||
      synchro__rec_object(call) == NULL)
    return NULL;
  return synchro__rec_object(call)->state;
}

void *synchro_object_state(const synchro_object_t *obj) {
  if (check_handle(obj) != 0 || !synchro__on_loop(obj->sync))
    return NULL;
  return obj->state;
}

int synchro_object_wrap(synchro_t *s, const synchro_class_t *cls, void *state,
                        synchro_object_t **out) {
  synchro_object_t *obj;
  if (out == NULL)
    return SYNCHRO_EINVAL;
  *out = NULL;
  if (s == NULL || cls == NULL || state == NULL)
    return SYNCHRO_EINVAL;
  if (!synchro__on_loop(s))
    return SYNCHRO_EPERM;
  if ((obj = registry_find(s, state)) != NULL) {
    if (obj->tearing_down || obj->cls != cls ||
        atomic_load_explicit(&obj->refs, memory_order_acquire) == 0)
      return SYNCHRO_ECLOSED; /* being torn down, or a different class's state */
    atomic_fetch_add_explicit(&obj->refs, 1, memory_order_relaxed);
    *out = obj;
    return 0;
  }
  if ((obj = handle_new(s, cls)) == NULL)
    return SYNCHRO_ENOMEM;
  obj->state = state;
  obj->lstate = OBJ_OPEN; /* built by the implementation: ready, and closed at the end */
  if (registry_add(s, obj) != 0) {
    atomic_store(&obj->refs, 0);
    synchro__object_release(obj);
    synchro__object_release(obj);
    return SYNCHRO_ENOMEM;
  }
  *out = obj;
  return 0;
}
