/* lib/cq.c - completion queues: futures handed back in the order they finish.
 *
 * The queue is a sink: when a call it holds resolves, the loop pushes the record on
 * the queue's lock-free stack and signals the eventfd only if the stack was empty, so
 * a burst wakes the consumer once. Pending futures hold a reference on the queue, so
 * the queue can be freed while calls are still running: their late notifications
 * release them instead. */
#include <poll.h>
#include <unistd.h>

#include "internal.h"

struct synchro_cq_s {
  synchro__sink_t base;
  _Atomic uintptr_t done_head; /* resolved records, newest first; CLOSED once freed */
  synchro_call_t *ready;       /* resolved records taken off the stack, oldest first */
  _Atomic size_t size;         /* futures held: pending + resolved */
  _Atomic uint32_t refs;       /* the owner's + one per pending future */
  /* The synchronizer of every future ever added, or CQ_MIXED: a loop thread may not
   * wait here for futures only its own loop can resolve. Only moves forward. */
  _Atomic uintptr_t owner;
  int fd;
};

#define CQ_MIXED ((uintptr_t)1)

static void note_owner(synchro_cq_t *cq, const synchro_call_t *f) {
  uintptr_t want = (uintptr_t)f->sync, seen = 0;
  if (atomic_compare_exchange_strong(&cq->owner, &seen, want) || seen == want)
    return;
  atomic_store(&cq->owner, CQ_MIXED);
}

/* A wait on the loop thread of a synchronizer whose futures may be in the queue could
 * never end: that loop cannot run while its thread waits. */
static bool cq_would_deadlock(const synchro_cq_t *cq, int64_t timeout_ms) {
  uintptr_t owner;
  if (timeout_ms == 0 || synchro__tls_loop == NULL)
    return false;
  owner = atomic_load(&cq->owner);
  return owner == CQ_MIXED || owner == (uintptr_t)synchro__tls_loop;
}

static void cq_unref(synchro_cq_t *cq) {
  if (atomic_fetch_sub_explicit(&cq->refs, 1, memory_order_acq_rel) != 1)
    return;
  synchro__fd_close(cq->fd);
  synchro__free(cq);
}

/* Pushes a resolved record; returns false if the queue was freed meanwhile. */
static bool push_done(synchro_cq_t *cq, synchro_call_t *rec) {
  uintptr_t h;
  if (!synchro__stack_push(&cq->done_head, rec, &rec->next, &h))
    return false;
  if (h == 0)
    synchro__eventfd_signal(cq->fd);
  return true;
}

static void release_orphan(synchro_call_t *rec) {
  rec->cflags &= (uint8_t)~SYNCHRO__C_ATTACHED;
  synchro__rec_unref(rec);
}

static void cq_notify(synchro__sink_t *sink, synchro_call_t *rec) {
  synchro_cq_t *cq = (synchro_cq_t *)sink;
  if (!push_done(cq, rec))
    release_orphan(rec); /* the queue was freed: nobody will take this future */
  cq_unref(cq);
}

int synchro_cq_new(synchro_cq_t **out) {
  synchro_cq_t *cq;
  int fd;
  if (out == NULL)
    return SYNCHRO_EINVAL;
  *out = NULL;
  cq = synchro__calloc(1, sizeof(*cq));
  if (cq == NULL)
    return SYNCHRO_ENOMEM;
  if ((fd = synchro__eventfd_new()) < 0) {
    synchro__free(cq);
    return fd;
  }
  cq->base.notify = cq_notify;
  cq->fd = fd;
  atomic_init(&cq->refs, 1);
  *out = cq;
  return 0;
}

int synchro_cq_add(synchro_cq_t *cq, synchro_future_t *f) {
  int rc;
  if (cq == NULL || synchro__future_check(f) != 0 || (f->cflags & SYNCHRO__C_ATTACHED) ||
      f->stream != NULL)
    return SYNCHRO_EINVAL;
  note_owner(cq, f);
  atomic_fetch_add_explicit(&cq->refs, 1, memory_order_relaxed);
  rc = synchro__attach_sink(f, &cq->base, SYNCHRO__SINK_CQ);
  if (rc == SYNCHRO_EINVAL) {
    cq_unref(cq);
    return rc;
  }
  f->cflags |= SYNCHRO__C_ATTACHED;
  atomic_fetch_add_explicit(&cq->size, 1, memory_order_relaxed);
  if (rc == SYNCHRO_EALREADY) { /* already resolved: no notification will come */
    push_done(cq, f);
    cq_unref(cq);
  }
  return 0;
}

/* Nothing left: clear the fd, then re-check so a push that raced the clear keeps it
 * readable. */
static void clear_readiness(synchro_cq_t *cq) {
  synchro__eventfd_clear(cq->fd);
  if (atomic_load(&cq->done_head) != 0)
    synchro__eventfd_signal(cq->fd);
}

static synchro_call_t *take_ready(synchro_cq_t *cq) {
  synchro_call_t *rec;
  if (cq->ready == NULL)
    cq->ready = synchro__stack_take_fifo(&cq->done_head, false);
  rec = cq->ready;
  if (rec == NULL) {
    /* A completion pushes, then signals: a consumer that took the record in between
     * finds the signal here, with nothing behind it. Clearing it keeps a poll loop from
     * spinning on a readable fd with nothing to take. */
    clear_readiness(cq);
    return NULL;
  }
  cq->ready = rec->next;
  if (cq->ready == NULL && atomic_load(&cq->done_head) == 0)
    clear_readiness(cq);
  return rec;
}

static int wait_readable(int fd, uint64_t deadline_ns) {
  struct pollfd pfd = {fd, POLLIN, 0};
  int ms = -1;
  if (deadline_ns != UINT64_MAX) {
    uint64_t now = synchro__now_ns();
    if (now >= deadline_ns)
      return SYNCHRO_EPENDING;
    ms = (int)((deadline_ns - now + 999999u) / 1000000u);
  }
  return poll(&pfd, 1, ms) == 0 ? SYNCHRO_EPENDING : 0;
}

int synchro_cq_next(synchro_cq_t *cq, int64_t timeout_ms, synchro_future_t **out) {
  uint64_t deadline;
  if (cq == NULL || out == NULL || (timeout_ms < 0 && timeout_ms != SYNCHRO_TIMEOUT_INFINITE))
    return SYNCHRO_EINVAL;
  *out = NULL;
  deadline = synchro__deadline_after(timeout_ms);
  for (;;) {
    synchro_call_t *rec = take_ready(cq);
    if (rec != NULL) {
      rec->cflags &= (uint8_t)~SYNCHRO__C_ATTACHED;
      atomic_fetch_sub_explicit(&cq->size, 1, memory_order_relaxed);
      *out = rec;
      return 0;
    }
    if (atomic_load_explicit(&cq->size, memory_order_relaxed) == 0)
      return SYNCHRO_EEMPTY;
    if (cq_would_deadlock(cq, timeout_ms))
      return SYNCHRO_EDEADLK;
    if (wait_readable(cq->fd, deadline) == SYNCHRO_EPENDING)
      return SYNCHRO_EPENDING;
  }
}

int synchro_cq_fd(const synchro_cq_t *cq) { return cq != NULL ? cq->fd : -1; }

size_t synchro_cq_size(const synchro_cq_t *cq) {
  return cq != NULL ? atomic_load_explicit(&cq->size, memory_order_relaxed) : 0;
}

void synchro_cq_free(synchro_cq_t *cq) {
  uintptr_t h;
  synchro_call_t *rec;
  if (cq == NULL)
    return;
  h = atomic_exchange_explicit(&cq->done_head, SYNCHRO__STACK_CLOSED, memory_order_acq_rel);
  for (rec = (synchro_call_t *)(h & ~SYNCHRO__STACK_CLOSED); rec != NULL;) {
    synchro_call_t *next = rec->next;
    release_orphan(rec);
    rec = next;
  }
  while ((rec = cq->ready) != NULL) {
    cq->ready = rec->next;
    release_orphan(rec);
  }
  cq_unref(cq); /* pending futures keep the rest alive until they resolve */
}
