/* lib/loop.c - the loop thread: takes calls off the queues, starts them, enforces
 * deadlines, and runs the shutdown sequence. Everything here runs on the loop thread
 * (or, after fork, on the child's thread that tears the inherited loop down). */
#define _GNU_SOURCE
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "internal.h"

/* After the grace period, cancelled calls get this long to finish their cleanup before
 * they are resolved as shut down regardless. */
#define CLEANUP_BOUND_MS 100

_Thread_local synchro_t *synchro__tls_loop;

static void begin_teardown(synchro_t *s);
static void on_teardown_due(uv_timer_t *timer) { begin_teardown(timer->data); }

/* The last call of a shutdown finished, maybe inside one of its implementation's
 * callbacks, which may still use (and close) its own handles when the call returns:
 * the teardown that closes every handle on the loop waits for the next iteration. */
static void teardown_soon(synchro_t *s) {
  uv_timer_start(&s->shutdown_timer, on_teardown_due, 0, 0);
}

/* synchro__loop_finish_call() (lib/internal.h) for a call with a deadline, or while
 * shutting down. */
void synchro__loop_finish_call_slow(synchro_t *s, synchro_call_t *rec) {
  if (rec->deadline_ns != 0)
    synchro__heap_remove(&s->heap, rec);
  /* The loop's reference, and what the call's end means for its object (close,
   * destroy), wait for the end of this loop iteration: the implementation may still be
   * using the call and its state right after finishing it. */
  rec->act_next = s->finished;
  s->finished = rec;
  if (s->shutting_down && s->active == NULL && !s->dying)
    teardown_soon(s);
}

/* ---- cancellation on the loop -------------------------------------------------- */

/* Acts on a cancellation of a started call: runs the hook, or resolves at once when
 * there is none. `reason` is recorded only if this is the first cancellation. */
static void cancel_started(synchro_t *s, synchro_call_t *rec, int reason) {
  uint32_t old = atomic_fetch_or_explicit(&rec->state, SYNCHRO__CANCEL, memory_order_acq_rel);
  if (synchro__phase(old) != SYNCHRO__PENDING)
    return; /* outcome already decided */
  if (!(old & SYNCHRO__CANCEL)) {
    rec->status = reason;
    rec->lflags |= SYNCHRO__L_REASON;
  }
  if (rec->lflags & SYNCHRO__L_CANCEL_SEEN)
    return;
  rec->lflags |= SYNCHRO__L_CANCEL_SEEN;
  if (rec->deadline_ns != 0)
    synchro__heap_remove(&s->heap, rec);
  if (rec->cancel_fn != NULL) {
    synchro_cancel_fn fn = rec->cancel_fn;
    synchro_call_t *outer = s->current;
    rec->cancel_fn = NULL;
    s->current = rec;
    if (SYNCHRO__UNLIKELY(rec->ctx != NULL || synchro__tls_ctx != NULL)) {
      struct synchro_ctx_s *saved = synchro__ctx_enter(rec->ctx);
      SYNCHRO__USER_CODE("a cancel hook");
      fn(rec, rec->status != 0 ? rec->status : SYNCHRO_ECANCELED, rec->cancel_data);
      synchro__ctx_leave(saved);
    } else {
      SYNCHRO__USER_CODE("a cancel hook");
      fn(rec, rec->status != 0 ? rec->status : SYNCHRO_ECANCELED, rec->cancel_data);
    }
    s->current = outer;
    if (rec->op->flags & SYNCHRO_OP_DETACH_CLEANUP) /* the caller need not wait for it */
      synchro__resolve(rec, SYNCHRO_ECANCELED, NULL, NULL);
  } else {
    /* Nothing can stop the work: resolve now, discard its late completion. */
    synchro__resolve(rec, SYNCHRO_ECANCELED, NULL, NULL);
  }
}

static void cancel_call(synchro_t *s, synchro_call_t *rec, int reason) {
  if ((rec->lflags & SYNCHRO__L_STARTED) && !(rec->lflags & SYNCHRO__L_IMPL_DONE))
    cancel_started(s, rec, reason);
}

void synchro__loop_cancel(synchro_t *s, synchro_call_t *rec, int reason) {
  cancel_call(s, rec, reason);
}

/* ---- deadlines ------------------------------------------------------------------- */

static void on_deadline(uv_timer_t *timer);

static void arm_deadline_timer(synchro_t *s) {
  synchro_call_t *top = synchro__heap_top(&s->heap);
  uint64_t now, delay_ms = 0;
  if (top == NULL) {
    uv_timer_stop(&s->deadline_timer);
    return;
  }
  now = synchro__now_ns();
  if (top->deadline_ns > now)
    delay_ms = (top->deadline_ns - now + 999999u) / 1000000u;
  uv_update_time(&s->loop);
  uv_timer_start(&s->deadline_timer, on_deadline, delay_ms, 0);
}

static void on_deadline(uv_timer_t *timer) {
  synchro_t *s = timer->data;
  uint64_t now = synchro__now_ns();
  synchro_call_t *top;
  while ((top = synchro__heap_top(&s->heap)) != NULL && top->deadline_ns <= now) {
    synchro__heap_remove(&s->heap, top);
    cancel_call(s, top, SYNCHRO_ETIMEDOUT);
  }
  arm_deadline_timer(s);
}

/* ---- taking calls off the queues ------------------------------------------------- */

static void start_call(synchro_t *s, synchro_call_t *rec, uint64_t now) {
  uint32_t st = atomic_load_explicit(&rec->state, memory_order_acquire);
  int refused = 0;
  if (st & SYNCHRO__CANCEL)
    refused = SYNCHRO_ECANCELED;
  else if (rec->ctx != NULL && synchro__ctx_cancelled(rec->ctx))
    refused = SYNCHRO_ECANCELED; /* its cancel token fired while it was queued */
  else if (rec->deadline_ns != 0 && rec->deadline_ns <= now)
    refused = SYNCHRO_ETIMEDOUT;
  else if (rec->deadline_ns != 0 && synchro__heap_push(&s->heap, rec) != 0)
    refused = SYNCHRO_ENOMEM;
  if (refused != 0) {
    if (refused == SYNCHRO_ETIMEDOUT) { /* read as the cancel reason if one races in */
      rec->status = SYNCHRO_ETIMEDOUT;
      rec->lflags |= SYNCHRO__L_REASON;
    }
    synchro__resolve(rec, refused, NULL, NULL);
    synchro__loop_finish_call(s, rec);
    return;
  }
  if (rec->obj_kind != SYNCHRO__OBJ_NONE && !synchro__object_admit(s, rec))
    return; /* refused (and resolved) or parked by the object's lifecycle */
  synchro__loop_run_impl(s, rec);
}

static void release_finished(synchro_t *s, bool live) {
  while (s->finished != NULL) { /* object reactions may finish more calls: loop */
    synchro_call_t *rec = s->finished;
    s->finished = NULL;
    while (rec != NULL) {
      synchro_call_t *next = rec->act_next;
      if (rec->obj_kind != SYNCHRO__OBJ_NONE)
        synchro__object_call_done(s, rec, live);
      synchro__rec_unref(rec);
      rec = next;
    }
  }
}

void synchro__loop_release_finished(synchro_t *s) { release_finished(s, true); }

void synchro__loop_park(synchro_t *s, synchro_call_t *rec) {
  rec->lflags |= SYNCHRO__L_STARTED | SYNCHRO__L_PARKED;
  if (!(rec->lflags & SYNCHRO__L_ACTIVE)) /* a dequeued call is in the list already */
    synchro__active_insert(s, rec);
}

void synchro__loop_run_impl(synchro_t *s, synchro_call_t *rec) {
  synchro_call_t *outer = s->current;
  rec->lflags |= SYNCHRO__L_STARTED;
  if (!(rec->lflags & SYNCHRO__L_ACTIVE)) /* a dequeued call is in the list already */
    synchro__active_insert(s, rec);
  SYNCHRO__SEAM(START, rec);
  SYNCHRO__USER_CODE(rec->op->name);
  s->current = rec; /* what a dying loop thread was doing (A12) */
  /* For a dump the loop does not answer (it is stuck in this implementation). */
  atomic_store_explicit(&s->busy_since_ms, rec->since_ms, memory_order_relaxed);
  atomic_store_explicit(&s->busy_op, rec->op, memory_order_relaxed);
  if (SYNCHRO__UNLIKELY(s->wd != NULL || rec->ctx != NULL || synchro__tls_ctx != NULL)) {
    /* The caller's context is current while the implementation starts: nested calls
     * inherit it, and what the implementation sets stays here (A30). The stall
     * watchdog names the running op. */
    struct synchro_ctx_s *saved = synchro__ctx_enter(rec->ctx);
    if (s->wd != NULL)
      synchro__wd_running(s, rec->op);
    rec->op->impl(rec); /* may finish (and release) rec before returning */
    if (s->wd != NULL)
      synchro__wd_running(s, NULL);
    synchro__ctx_leave(saved);
  } else {
    rec->op->impl(rec); /* may finish (and release) rec before returning */
  }
  atomic_store_explicit(&s->busy_op, NULL, memory_order_relaxed);
  s->current = outer;
}

/* Takes the submission queue, oldest call first, and puts every call in the active
 * list (taken: counted as in hand, not yet started). One walk does both: the records
 * were written by their callers on other CPUs, and each walk over them costs a miss
 * per line not yet here. */
static synchro_call_t *take_calls(synchro_t *s) {
  synchro_call_t *list = synchro__stack_take_all(&s->submit_head), *fifo = NULL;
  while (list != NULL) { /* reverse: pushes built it newest first */
    synchro_call_t *next = list->next;
    synchro__prefetch_ahead(list, next);
    list->next = fifo;
    fifo = list;
    synchro__active_insert(s, list);
    list = next;
  }
  return fifo;
}

/* Runs one pass over both queues; returns whether there was anything. While calls are
 * off the queue but not yet in the active list, fork() must wait (lib/fork.c). */
static bool drain_once(synchro_t *s) {
  synchro_call_t *calls, *cancels;
  bool any, timed = false;
  uint64_t now;
  uint32_t now_ms = (uint32_t)s->loop.time; /* uv_now(): diagnostics only */
  /* Moving the batch from the queue to the active list is the only step fork() must
   * not see half done; the implementations and hooks below then run with no runtime
   * lock held (A3). */
  synchro__lock(&s->fork_lock);
  calls = take_calls(s);
  cancels = synchro__stack_take_fifo(&s->cancel_head, true);
  synchro__unlock(&s->fork_lock);
  any = calls != NULL || cancels != NULL;
  now = calls != NULL ? synchro__now_ns() : 0;
  if (SYNCHRO__UNLIKELY(s->wd != NULL) && calls != NULL)
    synchro__wd_activity(s); /* a parked watchdog watches again */
  /* The rest of the control batch stays findable: a loop thread that dies inside a
   * start or a cancel hook must still release it (on_loop_exit). */
  s->cancel_batch = cancels;
  while (calls != NULL) {
    synchro_call_t *next = calls->next;
    SYNCHRO__SEAM(DEQUEUE, calls);
    calls->since_ms = now_ms;
    timed |= calls->deadline_ns != 0;
    start_call(s, calls, now);
    calls = next;
  }
  while (cancels != NULL) {
    synchro_call_t *next = cancels->cancel_next;
    uint32_t st;
    if (SYNCHRO__UNLIKELY(cancels->op == &synchro__dump_op)) {
      synchro__dump_serve(s, cancels); /* a dump request (lib/dump.c) */
      synchro__rec_unref(cancels);
      cancels = next;
      continue;
    }
    SYNCHRO__SEAM(CANCEL_OBSERVE, cancels);
    st = atomic_fetch_and_explicit(&cancels->state,
                                   ~(SYNCHRO__CTL_QUEUED | SYNCHRO__DEMAND | SYNCHRO__SENT),
                                   memory_order_acq_rel);
    /* Not started yet: the submission pass will see the cancel flag when it gets there. */
    if (st & SYNCHRO__CANCEL)
      cancel_call(s, cancels, SYNCHRO_ECANCELED);
    if ((st & SYNCHRO__DEMAND) && cancels->stream != NULL)
      synchro__stream_demand(cancels);
    if ((st & SYNCHRO__SENT) && cancels->stream != NULL)
      synchro__stream_deliver_sent(cancels);
    s->cancel_batch = next;
    synchro__rec_unref(cancels);
    cancels = next;
  }
  if (timed)
    arm_deadline_timer(s);
  return any;
}

static bool queues_empty(synchro_t *s) {
  return (atomic_load(&s->submit_head) & ~SYNCHRO__STACK_CLOSED) == 0 &&
         (atomic_load(&s->cancel_head) & ~SYNCHRO__STACK_CLOSED) == 0;
}

static void begin_shutdown(synchro_t *s);

/* Spinning after a batch pays only when the next caller runs on another CPU; on a
 * shared CPU it would burn the time slice the caller needs. */
static bool worth_spinning(synchro_t *s, int cpu) {
  return s->spin_loop && atomic_load_explicit(&s->submit_cpu, memory_order_relaxed) != cpu;
}

/* How often a spinning loop with calls in progress looks whether libuv has I/O for
 * them: it must not sit in its spin while a reply waits on a socket. */
#define IO_CHECK_NS 2000

/* Whether libuv's poller has an event ready (level-triggered: looking consumes
 * nothing). One epoll_wait with no timeout, about a microsecond. */
static bool io_ready(synchro_t *s) {
  struct epoll_event ev;
  return epoll_wait(uv_backend_fd(&s->loop), &ev, 1, 0) > 0;
}

typedef enum { SPIN_WORK, SPIN_TIMEOUT, SPIN_IO } spin_end_t;

/* Polls the queues for up to the spin window. With calls in progress it also stops
 * when libuv has I/O ready, every IO_CHECK_NS, so a call waiting on a reply gets it
 * promptly; timers that fall due meanwhile wait for the end of the window. */
static spin_end_t spin_for_work(synchro_t *s) {
  uint64_t now = synchro__now_ns(), until = now + (uint64_t)s->spin_ns, next_io = now + IO_CHECK_NS;
  unsigned round = 0;
  for (;;) {
    if (!queues_empty(s))
      return SPIN_WORK;
    synchro__cpu_relax();
    if ((++round & 15u) != 0)
      continue;
    now = synchro__now_ns();
    if (now >= until)
      return SPIN_TIMEOUT;
    if (s->active != NULL && now >= next_io) {
      if (io_ready(s))
        return SPIN_IO;
      next_io = now + IO_CHECK_NS;
    }
  }
}

/* The spin window adapts to the gaps between a caller's bursts. Woken soon after it
 * gave up (within a few windows, the wakeup's own latency included), the loop would
 * have caught the call by spinning longer: the window doubles, up to
 * SYNCHRO__SPIN_GROWTH times opts.loop_spin_ns. A long sleep halves it back toward the
 * base. Each sleep that a longer window avoids saves the wakeup of an idle CPU (tens of
 * microseconds on a VM); a window that never catches anything costs one bounded spin
 * after each burst. */
static void adapt_spin(synchro_t *s) {
  uint64_t slept;
  if (s->gave_up_at == 0)
    return;
  slept = synchro__now_ns() - s->gave_up_at;
  s->gave_up_at = 0;
  if (slept < 4 * (uint64_t)s->spin_ns)
    s->spin_ns = s->spin_ns * 2 <= s->opts.loop_spin_ns * SYNCHRO__SPIN_GROWTH
                     ? s->spin_ns * 2
                     : s->opts.loop_spin_ns * SYNCHRO__SPIN_GROWTH;
  else if (slept > 64 * (uint64_t)s->spin_ns && s->spin_ns / 2 >= s->opts.loop_spin_ns)
    s->spin_ns /= 2;
}

static void drain(synchro_t *s) {
  int cpu = synchro__current_cpu();
  synchro__count(&s->n_wakeups);
  atomic_store_explicit(&s->awake, 1, memory_order_relaxed);
  adapt_spin(s);
  for (;;) {
    if (drain_once(s))
      continue;
    synchro__streams_flush(s); /* before spinning or sleeping, hand items over */
    synchro__loop_release_finished(s);
    /* keep polling: the next call then needs no wakeup */
    if (worth_spinning(s, cpu)) {
      spin_end_t end = spin_for_work(s);
      if (end == SPIN_WORK)
        continue;
      /* Only a window that ran out tells how long callers take to come back. */
      s->gave_up_at = end == SPIN_TIMEOUT ? synchro__now_ns() : 0;
    }
    /* Announce sleep, then re-check: a caller that pushed before seeing awake == 0
     * is picked up here; one that pushed after will write the eventfd. */
    atomic_store(&s->awake, 0);
    SYNCHRO__SEAM(SLEEP, NULL);
    if (queues_empty(s))
      break;
    atomic_store_explicit(&s->awake, 1, memory_order_relaxed);
  }
  atomic_store_explicit(&s->loop_cpu, cpu, memory_order_relaxed);
  if (!s->shutting_down && (atomic_load(&s->submit_head) & SYNCHRO__STACK_CLOSED))
    begin_shutdown(s);
}

static void cancel_all_active(synchro_t *s, int reason, bool token_only);

/* Woken by a future submitted from our own CPU: the wakeup most likely preempted its
 * submitter, perhaps in the middle of a batch. Running now would take one call per
 * wakeup, two context switches each (measured: 430 k calls/s against 10 M/s on one
 * CPU); yielding once lets the submitter go on until it waits or its time slice ends,
 * and the drain then takes everything it pushed. Not for a blocking call (its caller
 * is about to sleep anyway), nor when the submitter runs elsewhere. */
static void yield_to_submitter(synchro_t *s) {
  uintptr_t top = atomic_load_explicit(&s->submit_head, memory_order_acquire);
  const synchro_call_t *rec = (const synchro_call_t *)(top & ~SYNCHRO__STACK_CLOSED);
  if (rec == NULL || (rec->lflags & SYNCHRO__L_BLOCKING) ||
      atomic_load_explicit(&s->submit_cpu, memory_order_relaxed) != synchro__current_cpu())
    return;
  sched_yield();
}

static void on_wake(uv_poll_t *poll, int status, int events) {
  synchro_t *s = poll->data;
  (void)status;
  (void)events;
  synchro__eventfd_clear(s->wake_fd);
  /* After the clear: a token that fired before it has its kick counted by now. */
  if (SYNCHRO__UNLIKELY(atomic_load_explicit(&s->tok_slot, memory_order_relaxed) != 0) &&
      synchro__token_kicked(s))
    cancel_all_active(s, SYNCHRO_ECANCELED, true);
  yield_to_submitter(s);
  drain(s);
}

/* ---- shutdown ---------------------------------------------------------------------- */

static void own_handle_closed(uv_handle_t *handle) {
  (void)handle;
  SYNCHRO__LIVE(HANDLES, -1);
}

/* `arg`: the synchronizer, whose own handles are counted by the test seams. */
static void close_any(uv_handle_t *handle, void *arg) {
  synchro_t *s = arg;
  bool own =
      handle == (uv_handle_t *)&s->wake_poll || handle == (uv_handle_t *)&s->deadline_timer ||
      handle == (uv_handle_t *)&s->shutdown_timer || handle == (uv_handle_t *)&s->flush_prepare;
  if (!uv_is_closing(handle))
    uv_close(handle, own ? own_handle_closed : NULL);
}

/* Everything is resolved: close every handle (ours and the implementations') so
 * uv_run returns. */
static void begin_teardown(synchro_t *s) {
  if (uv_is_closing((uv_handle_t *)&s->wake_poll))
    return;
  uv_walk(&s->loop, close_any, s);
}

/* Resolves every started call with `outcome` without releasing it: its implementation
 * may still complete it (late, and discarded) from a callback. */
void synchro__loop_resolve_active(synchro_t *s, int outcome) {
  synchro_call_t *rec;
  for (rec = s->active; rec != NULL; rec = rec->act_next)
    synchro__resolve(rec, outcome, NULL, NULL);
}

static void on_cleanup_bound(uv_timer_t *timer) {
  synchro_t *s = timer->data;
  /* Implementations that ignored their cancellation are resolved as shut down; their
   * records stay until the loop is gone, so a late completion is discarded safely. */
  synchro__loop_resolve_active(s, SYNCHRO_ESHUTDOWN);
  begin_teardown(s);
}

/* Cancels every started call (`token_only`: those whose context's cancel token fired).
 * A hook may finish calls (its own or others) before it returns, unlinking them;
 * holding a reference on the next record tells whether the walk can go on from there
 * or must restart from the head. */
static void cancel_all_active(synchro_t *s, int reason, bool token_only) {
  synchro_call_t *rec = s->active;
  while (rec != NULL) {
    synchro_call_t *next = rec->act_next;
    bool next_still_active;
    if ((rec->lflags & SYNCHRO__L_CANCEL_SEEN) ||
        (token_only && (rec->ctx == NULL || !synchro__ctx_cancelled(rec->ctx)))) {
      rec = next;
      continue;
    }
    if (next != NULL)
      synchro__rec_ref(next);
    cancel_started(s, rec, reason);
    if (next == NULL)
      break;
    next_still_active = (next->lflags & SYNCHRO__L_ACTIVE) != 0;
    synchro__rec_unref(next);
    rec = next_still_active ? next : s->active;
  }
}

static void on_grace_over(uv_timer_t *timer) {
  synchro_t *s = timer->data;
  cancel_all_active(s, SYNCHRO_ESHUTDOWN, false);
  if (s->active == NULL) {
    begin_teardown(s);
    return;
  }
  uv_timer_start(&s->shutdown_timer, on_cleanup_bound, CLEANUP_BOUND_MS, 0);
}

static void begin_shutdown(synchro_t *s) {
  s->shutting_down = true;
  synchro__objects_shutdown(s); /* open objects close within the grace period */
  if (s->active == NULL) {
    begin_teardown(s);
    return;
  }
  if (s->grace_ms == SYNCHRO_TIMEOUT_INFINITE)
    return; /* the last finishing call begins the teardown */
  /* We may be deep in a drain that polled its queues for a while: libuv's clock stopped
   * when this callback began, and a grace timed from it would end early. */
  uv_update_time(&s->loop);
  uv_timer_start(&s->shutdown_timer, on_grace_over, (uint64_t)(s->grace_ms < 0 ? 0 : s->grace_ms),
                 0);
}

/* ---- setup and the thread ------------------------------------------------------------ */

/* Before the loop may block: items yielded by any callback of this iteration reach
 * their consumers now, with one wakeup per stream. */
static void on_prepare(uv_prepare_t *prepare) {
  synchro_t *s = prepare->data;
  synchro__streams_flush(s);
  synchro__loop_release_finished(s);
  if (SYNCHRO__UNLIKELY(s->wd != NULL))
    synchro__wd_iteration(s); /* the iteration ends: the loop polls next */
}

int synchro__loop_init(synchro_t *s) {
  int rc = SYNCHRO__FAULT(LOOP_INIT) ? UV_ENOMEM : uv_loop_init(&s->loop);
  if (rc != 0)
    return rc;
  SYNCHRO__LIVE(LOOPS, 1);
  SYNCHRO__LOOP_KNOWN(s, true);
  /* The watchdog measures busy time as wall time minus the time libuv waited. */
  if (s->wd != NULL && (rc = uv_loop_configure(&s->loop, UV_METRICS_IDLE_TIME)) != 0)
    goto fail_loop;
  rc = synchro__eventfd_new();
  if (rc < 0)
    goto fail_loop;
  s->wake_fd = rc;
  if ((rc = uv_poll_init(&s->loop, &s->wake_poll, s->wake_fd)) != 0)
    goto fail_fd;
  SYNCHRO__LIVE(HANDLES, 4); /* wake_poll and the three below */
  s->wake_poll.data = s;
  uv_timer_init(&s->loop, &s->deadline_timer);
  uv_timer_init(&s->loop, &s->shutdown_timer);
  s->deadline_timer.data = s;
  s->shutdown_timer.data = s;
  uv_unref((uv_handle_t *)&s->deadline_timer);
  uv_unref((uv_handle_t *)&s->shutdown_timer);
  uv_prepare_init(&s->loop, &s->flush_prepare);
  s->flush_prepare.data = s;
  uv_prepare_start(&s->flush_prepare, on_prepare);
  uv_unref((uv_handle_t *)&s->flush_prepare);
  rc = SYNCHRO__FAULT(POLL_START) ? UV_ENOMEM : uv_poll_start(&s->wake_poll, UV_READABLE, on_wake);
  if (rc != 0)
    goto fail_handles;
  s->shutting_down = false;
  return 0;
fail_handles:
  synchro__loop_dispose(s);
  synchro__fd_close(s->wake_fd); /* a retried start makes a new one */
  s->wake_fd = -1;
  return rc;
fail_fd:
  synchro__fd_close(s->wake_fd);
  s->wake_fd = -1;
fail_loop:
  if (uv_loop_close(&s->loop) == 0) {
    SYNCHRO__LIVE(LOOPS, -1);
    SYNCHRO__LOOP_KNOWN(s, false);
  }
  return rc;
}

void synchro__loop_dispose(synchro_t *s) {
  uv_walk(&s->loop, close_any, s);
  uv_run(&s->loop, UV_RUN_DEFAULT);
  if (uv_loop_close(&s->loop) == 0) { /* else handles leaked: the loop stays counted */
    SYNCHRO__LIVE(LOOPS, -1);
    SYNCHRO__LOOP_KNOWN(s, false);
  }
}

/* Resolves a record the loop drops; a dead loop's records carry the cause. */
static void drop_one(synchro_t *s, synchro_call_t *rec, int outcome) {
  synchro_error_t *err = NULL;
  if (outcome == SYNCHRO_ELOOPDIED && !synchro__is_done(rec))
    synchro_error_new(&err, outcome, rec->op->name, NULL, NULL, "%s: %s", synchro_strerror(outcome),
                      s->death); /* ENOMEM: the code alone */
  synchro__resolve(rec, outcome, NULL, err);
  synchro__loop_finish_call(s, rec);
}

/* Drops every record the loop still references, resolving those still pending with
 * `outcome`: after the loop stopped, or in a fork child. */
void synchro__loop_drop_all(synchro_t *s, int outcome) {
  synchro_call_t *rec;
  for (rec = synchro__stack_take_fifo(&s->submit_head, false); rec != NULL;) {
    synchro_call_t *next = rec->next;
    drop_one(s, rec, outcome);
    rec = next;
  }
  while ((rec = s->active) != NULL)
    drop_one(s, rec, outcome);
  /* Close the cancel queue for good: a late canceller drops its own reference. */
  {
    uintptr_t h = atomic_exchange(&s->cancel_head, SYNCHRO__STACK_CLOSED);
    rec = (synchro_call_t *)(h & ~SYNCHRO__STACK_CLOSED);
    while (rec != NULL) {
      synchro_call_t *next = rec->cancel_next;
      if (rec->op == &synchro__dump_op)
        synchro__dump_serve(s, rec); /* a dump waiting on us gets its answer now */
      synchro__rec_unref(rec);
      rec = next;
    }
  }
  synchro__streams_flush(s);  /* drops the flush list's references */
  release_finished(s, false); /* the loop is gone: no close or open may start now */
  synchro__heap_free(&s->heap);
}

/* The loop thread ends inside uv_run (pthread_exit or a cancellation from a callback):
 * the synchronizer is dead (A12). Runs on the dying thread. The loop's handles are in
 * an unknown state, so no libuv function is called from here on; only the runtime's own
 * lists are walked, which are consistent between callbacks. */
static void describe_death(synchro_t *s) {
  size_t n = 0;
  synchro_call_t *rec;
  if (s->current != NULL) {
    snprintf(s->death, sizeof(s->death), "the loop thread exited inside %s",
             s->current->op->name != NULL ? s->current->op->name : "(unnamed op)");
    return;
  }
  for (rec = s->active; rec != NULL; rec = rec->act_next)
    n++;
  if (n == 0) {
    snprintf(s->death, sizeof(s->death), "the loop thread exited in a loop callback");
    return;
  }
  snprintf(s->death, sizeof(s->death),
           "the loop thread exited in a loop callback while %zu call(s) ran (one of them: %s)", n,
           s->active->op->name != NULL ? s->active->op->name : "(unnamed op)");
}

static void on_loop_exit(void *arg) {
  synchro_t *s = arg;
  synchro_call_t *rec;
  s->dying = true;
  describe_death(s);
  atomic_store_explicit(&s->dead, 1, memory_order_release);
  /* From here every push fails, and the caller sees `dead` (SYNCHRO_ELOOPDIED). */
  atomic_fetch_or_explicit(&s->submit_head, SYNCHRO__STACK_CLOSED, memory_order_acq_rel);
  for (rec = s->cancel_batch; rec != NULL;) {
    synchro_call_t *next = rec->cancel_next;
    atomic_fetch_and(&rec->state, ~(SYNCHRO__CTL_QUEUED | SYNCHRO__DEMAND | SYNCHRO__SENT));
    synchro__rec_unref(rec);
    rec = next;
  }
  s->cancel_batch = NULL;
  synchro__loop_drop_all(s, SYNCHRO_ELOOPDIED);
  if (s->wd != NULL)
    synchro__wd_loop_stop(s); /* the watchdog thread stops reading the loop */
  /* Objects keep their state: destroying it could touch the dead loop's handles. The
   * loop is not closed, so it stays counted as live. */
  synchro__tls_loop = NULL;
  atomic_store_explicit(&s->loop_tid, 0, memory_order_relaxed);
  SYNCHRO__LIVE(THREADS, -1);
}

void *synchro__loop_main(void *arg) {
  synchro_t *s = arg;
  SYNCHRO__LIVE(THREADS, 1);
  atomic_store_explicit(&s->loop_tid, (int)syscall(SYS_gettid), memory_order_relaxed);
  synchro__tls_loop = s;
  if (s->wd != NULL)
    synchro__wd_loop_start(s);
  pthread_cleanup_push(on_loop_exit, s);
  uv_run(&s->loop, UV_RUN_DEFAULT);
  pthread_cleanup_pop(0);
  if (s->wd != NULL)
    synchro__wd_loop_stop(s); /* before the loop (read by the watchdog) goes */
  synchro__loop_drop_all(s, SYNCHRO_ESHUTDOWN);
  /* this thread holds no lock: the destructors run here */
  synchro__objects_reap(synchro__objects_orphan(s, SYNCHRO_ESHUTDOWN));
  synchro__loop_dispose(s);
  /* wake_fd stays open until synchro_free(): a caller that pushed its call just
   * before the close may still be about to signal it. */
  synchro__tls_loop = NULL;
  atomic_store_explicit(&s->loop_tid, 0, memory_order_relaxed);
  SYNCHRO__LIVE(THREADS, -1);
  return NULL;
}
