/* lib/host.c - delivering completions on the caller's own event loop.
 *
 * A host is a sink. When an attached call resolves, the loop thread pushes its record
 * on the host's lock-free stack and signals the host's eventfd only if the stack was
 * empty: a burst of completions wakes the host once. The host thread runs the
 * callbacks in synchro_host_dispatch(), called by the host's own loop (a uv_poll_t on
 * the eventfd for a libuv host; the program's poller for an fd host).
 *
 * The host also keeps, on its own thread, a list of the calls attached to it, so that
 * freeing the host can cancel them. Calls attached from other threads arrive through
 * an inbox stack and join the list at the next dispatch. The host's memory outlives
 * late notifications: while calls are in the list, the list holds one reference on the
 * host (a call attached from another thread holds its own until it joins the list);
 * once the host is freed, every call still attached holds one of its own. */
#include <string.h>
#include <unistd.h>

#include "internal.h"

/* One cache line per writer: the loop thread delivers on the second line while the host
 * thread works on its own fields, so a burst of deliveries does not bounce the line the
 * host thread writes per call. */
struct synchro_host_s {
  /* read-mostly */
  synchro__sink_t base;
  int fd;
  _Atomic bool closed;
  pthread_t thread;
  uv_loop_t *loop; /* NULL for an fd host */
  /* written by whoever delivers (the loop thread) */
  _Alignas(SYNCHRO__CACHE_LINE) _Atomic uintptr_t done_head; /* resolved records, newest
                                                                first; CLOSED once freed */
  _Atomic uint32_t refs; /* the owner's, the list's, and see the top of the file */
  /* written by attachers on other threads */
  _Alignas(SYNCHRO__CACHE_LINE) _Atomic uintptr_t inbox; /* CLOSED once freed */
  /* the host thread's */
  _Alignas(SYNCHRO__CACHE_LINE) synchro_call_t *pending; /* attached records */
  synchro_call_t *ready; /* resolved, not yet dispatched, oldest first */
  uint32_t attached;     /* in the list */
  bool loop_refd;        /* the poll handle keeps the host's loop alive */
  bool dispatching;
  bool free_requested;
  uv_poll_t poll;
};

static bool on_host_thread(const synchro_host_t *h) {
  return pthread_equal(pthread_self(), h->thread) != 0;
}

static void host_unref(synchro_host_t *h) {
  if (atomic_fetch_sub_explicit(&h->refs, 1, memory_order_acq_rel) != 1)
    return;
  synchro__fd_close(h->fd);
  synchro__aligned_free(h);
}

/* ---- the host thread's list of attached calls ---------------------------------- */

/* The list's reference on the host is taken by its first call. `own_ref`: the call
 * brings a reference of its own (attached from another thread), given back here. */
static void list_insert(synchro_host_t *h, synchro_call_t *rec, bool own_ref) {
  if (h->attached++ == 0) {
    if (!own_ref)
      atomic_fetch_add_explicit(&h->refs, 1, memory_order_relaxed);
  } else if (own_ref) {
    atomic_fetch_sub_explicit(&h->refs, 1, memory_order_relaxed); /* the list holds one */
  }
  rec->ext->host_prev = NULL;
  rec->ext->host_next = h->pending;
  if (h->pending != NULL)
    h->pending->ext->host_prev = rec;
  h->pending = rec;
  rec->cflags |= SYNCHRO__C_IN_HOST_LIST;
}

static void list_remove(synchro_host_t *h, synchro_call_t *rec) {
  if (!(rec->cflags & SYNCHRO__C_IN_HOST_LIST))
    return;
  if (rec->ext->host_prev != NULL)
    rec->ext->host_prev->ext->host_next = rec->ext->host_next;
  else
    h->pending = rec->ext->host_next;
  if (rec->ext->host_next != NULL)
    rec->ext->host_next->ext->host_prev = rec->ext->host_prev;
  rec->cflags &= (uint8_t)~SYNCHRO__C_IN_HOST_LIST;
}

/* Moves calls attached from other threads into the list. */
static void absorb_inbox(synchro_host_t *h, uintptr_t keep_bits) {
  uintptr_t top = atomic_exchange_explicit(&h->inbox, keep_bits, memory_order_acquire);
  synchro_call_t *rec = (synchro_call_t *)(top & ~SYNCHRO__STACK_CLOSED);
  while (rec != NULL) {
    synchro_call_t *next = rec->ext->host_next;
    list_insert(h, rec, true);
    rec = next;
  }
}

/* ---- stacks ------------------------------------------------------------------------ */

/* The host was freed: nobody will run this callback; release the call and the host
 * reference it was given when the host was freed. */
static void release_detached(synchro_host_t *h, synchro_call_t *rec) {
  /* cflags untouched: on the loop thread the host thread may be writing them. */
  synchro__rec_unref(rec);
  host_unref(h);
}

static void push_done(synchro_host_t *h, synchro_call_t *rec) {
  uintptr_t was;
  /* Once pushed, the host thread may dispatch the call and drop the reference that
   * kept the host (and its fd) alive: hold our own until the signal is written. */
  atomic_fetch_add_explicit(&h->refs, 1, memory_order_relaxed);
  if (!synchro__stack_push(&h->done_head, rec, &rec->next, &was)) {
    release_detached(h, rec);
  } else {
    SYNCHRO__SEAM(HOST_SIGNAL, NULL); /* `rec` may be dispatched and gone already */
    if (was == 0)
      synchro__eventfd_signal(h->fd);
  }
  host_unref(h);
}

static void host_notify(synchro__sink_t *sink, synchro_call_t *rec) {
  push_done((synchro_host_t *)sink, rec);
}

static synchro_call_t *take_ready(synchro_host_t *h) {
  synchro_call_t *rec;
  if (h->ready == NULL)
    h->ready = synchro__stack_take_fifo(&h->done_head, false);
  if ((rec = h->ready) != NULL)
    h->ready = rec->next;
  return rec;
}

/* ---- creation ------------------------------------------------------------------------ */

static int host_alloc(synchro_host_t **out) {
  synchro_host_t *h;
  int fd;
  if (out == NULL)
    return SYNCHRO_EINVAL;
  *out = NULL;
  h = synchro__aligned_calloc(sizeof(*h));
  if (h == NULL)
    return SYNCHRO_ENOMEM;
  if ((fd = synchro__eventfd_new()) < 0) {
    synchro__aligned_free(h);
    return fd;
  }
  h->base.notify = host_notify;
  h->fd = fd;
  h->thread = pthread_self();
  atomic_init(&h->refs, 1);
  synchro__host_thread_add(1); /* a host-loop thread until the host is freed */
  *out = h;
  return 0;
}

int synchro_host_new_fd(synchro_host_t **out) { return host_alloc(out); }

static void on_host_readable(uv_poll_t *poll, int status, int events) {
  (void)status;
  (void)events;
  synchro_host_dispatch(poll->data, 0);
}

int synchro_host_new_uv(synchro_host_t **out, uv_loop_t *loop) {
  synchro_host_t *h;
  int rc;
  if (loop == NULL)
    return SYNCHRO_EINVAL;
  if ((rc = host_alloc(out)) != 0)
    return rc;
  h = *out;
  h->loop = loop;
  /* An eventfd of our own rather than uv_async_t: libuv 1.44's uv_async_send can make
   * the receiving loop spin while a preempted sender is between its two steps. */
  if ((rc = uv_poll_init(loop, &h->poll, h->fd)) != 0 ||
      (rc = uv_poll_start(&h->poll, UV_READABLE, on_host_readable)) != 0) {
    synchro__host_thread_add(-1);
    synchro__fd_close(h->fd);
    synchro__aligned_free(h);
    *out = NULL;
    return rc;
  }
  h->poll.data = h;
  SYNCHRO__LIVE(HANDLES, 1);
  uv_unref((uv_handle_t *)&h->poll); /* nothing pending: do not keep the loop alive */
  return 0;
}

int synchro_host_fd(const synchro_host_t *h) { return h != NULL && h->loop == NULL ? h->fd : -1; }

/* ---- attaching ------------------------------------------------------------------------ */

/* A libuv host keeps its loop alive exactly while calls are attached. */
static inline void update_loop_ref(synchro_host_t *h) {
  bool want = h->attached != 0;
  if (SYNCHRO__LIKELY(want == h->loop_refd) || h->loop == NULL ||
      uv_is_closing((uv_handle_t *)&h->poll))
    return;
  if (want)
    uv_ref((uv_handle_t *)&h->poll);
  else
    uv_unref((uv_handle_t *)&h->poll);
  h->loop_refd = want;
}

/* Registers `rec` with the host (its list, references, loop ref) so that a later
 * delivery runs cb on the host thread. The record's reference passes to the host. */
int synchro__host_attach(synchro_host_t *h, synchro_call_t *rec, synchro_host_cb cb, void *data) {
  uintptr_t was;
  if (atomic_load_explicit(&h->closed, memory_order_acquire))
    return SYNCHRO_ECLOSED;
  if (synchro__rec_ext(rec) == NULL)
    return SYNCHRO_ENOMEM;
  rec->ext->then_cb = cb;
  rec->ext->then_data = data;
  /* Join the host's list before the loop can deliver, so dispatch always finds it. */
  if (on_host_thread(h)) {
    list_insert(h, rec, false);
    update_loop_ref(h);
    return 0;
  }
  atomic_fetch_add_explicit(&h->refs, 1, memory_order_relaxed); /* until it joins the list */
  if (!synchro__stack_push(&h->inbox, rec, &rec->ext->host_next, &was)) {
    host_unref(h);
    return SYNCHRO_ECLOSED;
  } else {
    synchro__eventfd_signal(h->fd); /* the host thread refs its loop at dispatch */
  }
  return 0;
}

void synchro__host_deliver(synchro_host_t *h, synchro_call_t *rec) { push_done(h, rec); }

int synchro__host_attach_unpushed(synchro_host_t *h, synchro_call_t *rec, synchro_host_cb cb,
                                  synchro_fn fn, void *data) {
  int rc;
  if (!on_host_thread(h))
    return SYNCHRO_EPERM;
  if (synchro__rec_ext(rec) == NULL)
    return SYNCHRO_ENOMEM;
  rec->ext->then_fn = fn;
  if ((rc = synchro__host_attach(h, rec, cb, data)) != 0) /* the host thread: its list */
    return rc;
  rec->cflags |= SYNCHRO__C_ATTACHED | SYNCHRO__C_THEN_FN;
  /* Nobody else sees the record yet: plain stores, published by the push. */
  atomic_store_explicit(&rec->sink, (uintptr_t)&h->base | SYNCHRO__SINK_HOST, memory_order_relaxed);
  synchro__set_sinked_unpushed(rec, true);
  return 0;
}

void synchro__host_detach_unpushed(synchro_host_t *h, synchro_call_t *rec) {
  synchro__set_sinked_unpushed(rec, false);
  atomic_store_explicit(&rec->sink, SYNCHRO__SINK_NONE, memory_order_relaxed);
  list_remove(h, rec);
  rec->cflags &= (uint8_t) ~(SYNCHRO__C_ATTACHED | SYNCHRO__C_THEN_FN);
  if (--h->attached == 0)
    host_unref(h); /* the list's; never the last: the owner's reference is held */
  update_loop_ref(h);
}

int synchro_future_then(synchro_future_t *f, synchro_host_t *h, synchro_host_cb cb, void *data) {
  return synchro_future_then_typed(f, h, cb, NULL, data);
}

synchro_fn synchro_future_then_fn(const synchro_future_t *f) {
  return synchro__future_check(f) == 0 && (f->cflags & SYNCHRO__C_THEN_FN) ? f->ext->then_fn : NULL;
}

int synchro_future_then_typed(synchro_future_t *f, synchro_host_t *h, synchro_host_cb cb,
                              synchro_fn fn, void *data) {
  int rc;
  if (h == NULL || cb == NULL || synchro__future_check(f) != 0 ||
      (f->cflags & SYNCHRO__C_ATTACHED) || f->stream != NULL)
    return SYNCHRO_EINVAL;
  if (synchro__sink_attached(f)) /* a wait on another thread holds it */
    return SYNCHRO_EINVAL;
  if (synchro__rec_ext(f) == NULL)
    return SYNCHRO_ENOMEM;
  f->cflags |= SYNCHRO__C_ATTACHED | SYNCHRO__C_THEN_FN;
  f->ext->then_fn = fn;
  if ((rc = synchro__host_attach(h, f, cb, data)) != 0) {
    f->cflags &= (uint8_t)~SYNCHRO__C_ATTACHED;
    return rc;
  }
  rc = synchro__attach_sink(f, &h->base, SYNCHRO__SINK_HOST);
  if (rc == SYNCHRO_EALREADY)
    push_done(h, f); /* resolved already: still delivered later, never inline */
  return 0;
}

/* ---- dispatching ---------------------------------------------------------------------- */

static void run_callback(synchro_host_t *h, synchro_call_t *rec) {
  const synchro__ext_t *ext = rec->ext;
  if (!(rec->cflags & SYNCHRO__C_IN_HOST_LIST))
    absorb_inbox(h, 0); /* attached from another thread after the last absorb */
  list_remove(h, rec);
  /* A stream's record is delivered before it resolves: only a resolved record has a
   * status to read. */
  if (rec->ctx != NULL) { /* the call's context is current in its callback (A30) */
    struct synchro_ctx_s *saved = synchro__ctx_enter(rec->ctx);
    SYNCHRO__USER_CODE("a host callback");
    ext->then_cb(rec, synchro__is_done(rec) ? rec->status : SYNCHRO_EPENDING, ext->then_data);
    synchro__ctx_leave(saved);
  } else {
    SYNCHRO__USER_CODE("a host callback");
    ext->then_cb(rec, synchro__is_done(rec) ? rec->status : SYNCHRO_EPENDING, ext->then_data);
  }
  rec->cflags &= (uint8_t)~SYNCHRO__C_ATTACHED;
  synchro__rec_unref(rec);
  if (--h->attached == 0)
    host_unref(h); /* the list's; never the last: the owner's reference is held */
}

/* Leaves the fd readable iff completions are left to dispatch. */
static void settle_fd(synchro_host_t *h) {
  if (h->ready != NULL || atomic_load(&h->done_head) != 0) {
    synchro__eventfd_signal(h->fd); /* a new edge for edge-triggered pollers */
    return;
  }
  synchro__eventfd_clear(h->fd);
  if (atomic_load(&h->done_head) != 0) /* a push raced the clear */
    synchro__eventfd_signal(h->fd);
}

static void do_free(synchro_host_t *h);

int synchro_host_dispatch(synchro_host_t *h, size_t max) {
  synchro_call_t *rec;
  int ran = 0;
  if (h == NULL)
    return SYNCHRO_EINVAL;
  if (!on_host_thread(h))
    return SYNCHRO_EPERM;
  if (h->dispatching || atomic_load(&h->closed))
    return 0; /* re-entered from a callback, or freed */
  h->dispatching = true;
  absorb_inbox(h, 0);
  while ((max == 0 || (size_t)ran < max) && !h->free_requested && (rec = take_ready(h)) != NULL) {
    run_callback(h, rec);
    ran++;
  }
  h->dispatching = false;
  if (h->free_requested) {
    do_free(h);
    return ran;
  }
  settle_fd(h);
  update_loop_ref(h);
  return ran;
}

/* ---- freeing ---------------------------------------------------------------------------- */

/* Releases resolved, undispatched calls without their callbacks. Calls in the list
 * carry the extra reference do_free() took. */
static void release_list(synchro_host_t *h, synchro_call_t *rec) {
  while (rec != NULL) {
    synchro_call_t *next = rec->next;
    bool held = (rec->cflags & SYNCHRO__C_IN_HOST_LIST) != 0;
    list_remove(h, rec);
    release_detached(h, rec);
    if (held)
      synchro__rec_unref(rec);
    rec = next;
  }
}

static void on_poll_closed(uv_handle_t *handle) {
  SYNCHRO__LIVE(HANDLES, -1);
  host_unref(handle->data);
}

static void do_free(synchro_host_t *h) {
  synchro_call_t *rec, *next;
  uintptr_t top;
  atomic_store_explicit(&h->closed, true, memory_order_release);
  synchro__host_thread_add(-1);
  absorb_inbox(h, SYNCHRO__STACK_CLOSED);
  /* Once done_head is closed, a notification releases its call at once on the loop
   * thread; hold every listed call first so the walks below never touch freed ones. */
  for (rec = h->pending; rec != NULL; rec = rec->ext->host_next)
    synchro__rec_ref(rec);
  /* From here each attached call holds its own host reference (released with the call
   * by release_detached) instead of the list's one. */
  if (h->attached != 0) {
    atomic_fetch_add_explicit(&h->refs, h->attached, memory_order_relaxed);
    host_unref(h);
    h->attached = 0;
  }
  top = atomic_exchange_explicit(&h->done_head, SYNCHRO__STACK_CLOSED, memory_order_acq_rel);
  release_list(h, (synchro_call_t *)(top & ~SYNCHRO__STACK_CLOSED));
  release_list(h, h->ready);
  h->ready = NULL;
  /* Still pending: cancel them; their notification releases them. */
  for (rec = h->pending, h->pending = NULL; rec != NULL; rec = next) {
    next = rec->ext->host_next;
    rec->cflags &= (uint8_t)~SYNCHRO__C_IN_HOST_LIST;
    synchro_future_cancel(rec);
    synchro__rec_unref(rec);
  }
  if (h->loop != NULL)
    uv_close((uv_handle_t *)&h->poll, on_poll_closed);
  else
    host_unref(h);
}

void synchro_host_free(synchro_host_t *h) {
  if (h == NULL || !on_host_thread(h) || h->free_requested || atomic_load(&h->closed))
    return;
  if (h->dispatching) {
    /* Inside one of our callbacks: refuse new work now, finish when it returns. */
    atomic_store_explicit(&h->closed, true, memory_order_release);
    h->free_requested = true;
    return;
  }
  do_free(h);
}
