/* lib/future.c - the caller's side: submitting, blocking calls, futures, batch waits. */
#include <string.h>

#include "internal.h"

/* ---- submission ------------------------------------------------------------------- */

SYNCHRO__HOT static int check_op(const synchro_op_t *op) {
  if (op == NULL || op->impl == NULL || op->args_size > SYNCHRO_ARGS_MAX ||
      op->result_size > SYNCHRO_RESULT_MAX)
    return SYNCHRO_EINVAL;
  if (op->timeout_ms < 0 && op->timeout_ms != SYNCHRO_TIMEOUT_INFINITE)
    return SYNCHRO_EINVAL;
  return 0;
}

/* The deadline in ns (0: none) for a submission's timeout argument. */
SYNCHRO__HOT static uint64_t deadline_for(const synchro_t *s, const synchro_op_t *op,
                                          int64_t timeout_ms) {
  if (timeout_ms == SYNCHRO_TIMEOUT_DEFAULT)
    timeout_ms = op->timeout_ms != 0 ? op->timeout_ms : s->opts.default_timeout_ms;
  if (timeout_ms == SYNCHRO_TIMEOUT_INFINITE)
    return 0;
  return synchro__deadline_after(timeout_ms);
}

SYNCHRO__HOT static int copy_args(synchro_call_t *rec, const void *args) {
  const synchro_op_t *op = rec->op;
  void *dst = rec->args_inline;
  if (op->args_size == 0)
    return 0;
  if (op->args_size > SYNCHRO__ARGS_INLINE) {
    dst = synchro__malloc(op->args_size);
    if (dst == NULL)
      return SYNCHRO_ENOMEM;
    __builtin_memcpy(rec->args_inline, &dst, sizeof(dst)); /* see synchro__rec_args */
  }
  if (op->args_copy == NULL) {
    synchro__copy(dst, args, op->args_size);
    return 0;
  }
  if (op->args_copy(dst, args) == 0)
    return 0;
  if (dst != rec->args_inline)
    synchro__free(dst);
  return SYNCHRO_ENOMEM;
}

_Thread_local uint32_t synchro__tls_thread_no;

uint32_t synchro__thread_no_assign(void) {
  static _Atomic uint32_t next_no;
  uint32_t n = atomic_fetch_add_explicit(&next_no, 1, memory_order_relaxed) + 1;
  if (n == 0) /* after 2^32 threads: never hand out 0, the "unassigned" mark */
    n = atomic_fetch_add_explicit(&next_no, 1, memory_order_relaxed) + 1;
  synchro__tls_thread_no = n;
  return n;
}

/* Pushes onto a closable stack. Returns false if the stack is closed. Wakes the loop
 * when the stack was empty and the loop may be asleep (see drain() in loop.c: the
 * loop announces sleep, then re-checks; seq_cst on both sides makes one of them win). */
SYNCHRO__HOT static bool
push_and_wake(synchro_t *s, _Atomic uintptr_t *head, synchro_call_t *rec,
              synchro_call_t **link) { /* rec may top a chain ending at link */
  uintptr_t h;
  if (!synchro__stack_push(head, rec, link, &h))
    return false;
  if (h == 0 && !atomic_load_explicit(&s->awake, memory_order_seq_cst))
    synchro__wake_loop(s);
  return true;
}

/* Admission against max_inflight: a future fails fast, a blocking caller waits. */
void synchro__force_admission(synchro_t *s) {
  if (s->opts.max_inflight != 0)
    atomic_fetch_add(&s->inflight, 1);
}

static int admit(synchro_t *s, bool wait) {
  uint32_t n = atomic_load_explicit(&s->inflight, memory_order_relaxed);
  for (;;) {
    if (n < s->opts.max_inflight) {
      if (atomic_compare_exchange_weak(&s->inflight, &n, n + 1))
        return 0;
      continue;
    }
    if (!wait)
      return SYNCHRO_EBUSY;
    atomic_fetch_add(&s->inflight_waiters, 1);
    synchro__futex_wait(&s->inflight, n, UINT64_MAX);
    atomic_fetch_sub(&s->inflight_waiters, 1);
    n = atomic_load_explicit(&s->inflight, memory_order_relaxed);
  }
}

SYNCHRO__HOT static int check_submission(synchro_t *s, const synchro_op_t *op, const void *args,
                                         int64_t timeout_ms) {
  if (s == NULL || (args == NULL && op != NULL && op->args_size != 0))
    return SYNCHRO_EINVAL;
  if (timeout_ms < 0 && timeout_ms != SYNCHRO_TIMEOUT_DEFAULT &&
      timeout_ms != SYNCHRO_TIMEOUT_INFINITE)
    return SYNCHRO_EINVAL;
  return check_op(op);
}

/* Gives back a record prepare() took and that holds no arguments yet. */
static void discard_fresh(synchro_t *s, synchro_call_t *rec) {
  synchro__rec_ext_release(rec);
  if (rec->ctx != NULL)
    synchro__ctx_unref(rec->ctx);
  atomic_store_explicit(&rec->magic, SYNCHRO__MAGIC_FREED, memory_order_relaxed);
  synchro__pool_put(rec);
  synchro__release_admission(s);
}

/* A record ready to be pushed (admission taken), or an error. */
SYNCHRO__HOT static int prepare(synchro_t *s, const synchro_op_t *op, const void *args,
                                uint64_t deadline, bool blocking, const synchro__target_t *target,
                                synchro_call_t **out) {
  synchro_call_t *rec;
  int rc;
  if (target != NULL && target->internal)
    synchro__force_admission(s);
  else if (s->opts.max_inflight != 0 && (rc = admit(s, blocking)) != 0)
    return rc;
  rec = synchro__pool_get();
  if (rec == NULL) {
    synchro__release_admission(s);
    return SYNCHRO_ENOMEM;
  }
  synchro__init_record(rec, s, op);
  rec->deadline_ns = deadline;
  if (blocking)
    rec->lflags = SYNCHRO__L_BLOCKING; /* the loop's flags; it reads them after the push */
  if (target != NULL && target->object != NULL && synchro__rec_ext(rec) == NULL) {
    discard_fresh(s, rec);
    return SYNCHRO_ENOMEM;
  }
  if (SYNCHRO__UNLIKELY(synchro__tls_ctx != NULL))
    synchro__ctx_bind(s, rec, synchro__tls_ctx); /* the caller's ambient context (A30) */
  if ((rc = copy_args(rec, args)) != 0) {
    discard_fresh(s, rec);
    return rc;
  }
  if (target != NULL) {
    if (target->object != NULL) {
      rec->ext->object = target->object; /* the caller's object hold passes to the record */
      rec->obj_kind = target->obj_kind;
    }
    if (target->stream != NULL)
      synchro__stream_bind(target->stream, rec);
  }
  *out = rec;
  return 0;
}

/* Undoes prepare() for a record that never reached the loop; the caller keeps what
 * the target lent (stream, object hold). */
static void unprepare(synchro_t *s, synchro_call_t *rec) {
  rec->stream = NULL;
  rec->obj_kind = SYNCHRO__OBJ_NONE;
  rec->cflags |= SYNCHRO__C_RESULT_TAKEN; /* it never ran: there is no result to release */
  atomic_store(&rec->refs, 1);
  synchro__rec_unref(rec);
  synchro__release_admission(s);
}

/* Pushes a chain of prepared records (top: the newest; bottom_link: the oldest's next)
 * with one queue operation and at most one wakeup. */
SYNCHRO__HOT static int push_chain(synchro_t *s, synchro_call_t *top, synchro_call_t **bottom_link,
                                   size_t n) {
  /* Lets the loop see that it shares our CPU: it then neither spins nor takes the CPU
   * from a batch we are still submitting (see yield_to_submitter in loop.c). */
  atomic_store_explicit(&s->submit_cpu, synchro__recent_cpu(), memory_order_relaxed);
  SYNCHRO__SEAM(SUBMIT, top);
  atomic_fetch_add_explicit(&s->n_submitted, n, memory_order_relaxed);
  if (push_and_wake(s, &s->submit_head, top, bottom_link))
    return 0;
  atomic_fetch_sub_explicit(&s->n_submitted, n, memory_order_relaxed);
  return atomic_load_explicit(&s->dead, memory_order_acquire) ? SYNCHRO_ELOOPDIED
                                                              : SYNCHRO_ESHUTDOWN;
}

/* synchro__submit(), inlined into the public entry points so that each gets a copy
 * specialised for its constant arguments (no target, blocking or not). */
SYNCHRO__HOT static int submit_one(synchro_t *s, const synchro_op_t *op, const void *args,
                                   int64_t timeout_ms, bool blocking,
                                   const synchro__target_t *target, synchro_call_t **out) {
  synchro_call_t *rec;
  int rc;
  if (out == NULL)
    return SYNCHRO_EINVAL;
  if ((rc = check_submission(s, op, args, timeout_ms)) != 0 ||
      (rc = synchro__ensure_running(s)) != 0 ||
      (rc = prepare(s, op, args, deadline_for(s, op, timeout_ms), blocking, target, &rec)) != 0)
    return rc;
  if ((rc = push_chain(s, rec, &rec->next, 1)) != 0) {
    unprepare(s, rec);
    return rc;
  }
  *out = rec;
  return 0;
}

int synchro__submit(synchro_t *s, const synchro_op_t *op, const void *args, int64_t timeout_ms,
                    bool blocking, const synchro__target_t *target, synchro_call_t **out) {
  return submit_one(s, op, args, timeout_ms, blocking, target, out);
}

int synchro_submit_many(synchro_t *s, const synchro_op_t *op, const void *args, size_t stride,
                        size_t n, int64_t timeout_ms, synchro_future_t **futures) {
  size_t i, done;
  uint64_t deadline;
  int rc;
  if (futures == NULL || (n > 1 && op != NULL && stride < op->args_size))
    return SYNCHRO_EINVAL;
  if ((rc = check_submission(s, op, args, timeout_ms)) != 0)
    return rc;
  if (op->item_size != 0)
    return SYNCHRO_EINVAL;
  if (n == 0)
    return 0;
  if ((rc = synchro__ensure_running(s)) != 0)
    return rc;
  deadline = deadline_for(s, op, timeout_ms); /* one deadline for the whole batch */
  for (done = 0; done < n; done++) {
    const void *block = op->args_size != 0 ? (const char *)args + done * stride : NULL;
    if ((rc = prepare(s, op, block, deadline, false, NULL, &futures[done])) != 0)
      break;
    futures[done]->next = done > 0 ? futures[done - 1] : NULL; /* newest on top */
  }
  if (rc == 0 && (rc = push_chain(s, futures[n - 1], &futures[0]->next, n)) == 0)
    return 0;
  for (i = 0; i < done; i++) { /* all or nothing */
    unprepare(s, futures[i]);
    futures[i] = NULL;
  }
  return rc;
}

int synchro_submit(synchro_t *s, const synchro_op_t *op, const void *args, int64_t timeout_ms,
                   synchro_future_t **out) {
  if (out != NULL)
    *out = NULL;
  if (op != NULL && op->item_size != 0)
    return SYNCHRO_EINVAL; /* a stream op: use synchro_stream_open() */
  return submit_one(s, op, args, timeout_ms, false, NULL, out);
}

/* Submit and attach in one step. On the host's own thread (where _aio calls are made)
 * the record joins the host before the push: no sink CAS, no second validation. From
 * another thread it is attached after the push, as synchro_future_then() does; if
 * that fails the call is cancelled and nobody sees it. */
int synchro__submit_then(synchro_t *s, const synchro_op_t *op, const void *args, int64_t timeout_ms,
                         synchro_host_t *h, synchro_host_cb cb, synchro_fn fn, void *data) {
  synchro_call_t *rec;
  int rc;
  if (h == NULL || cb == NULL || (op != NULL && op->item_size != 0))
    return SYNCHRO_EINVAL;
  if ((rc = check_submission(s, op, args, timeout_ms)) != 0 ||
      (rc = synchro__ensure_running(s)) != 0 ||
      (rc = prepare(s, op, args, deadline_for(s, op, timeout_ms), false, NULL, &rec)) != 0)
    return rc;
  rc = synchro__host_attach_unpushed(h, rec, cb, fn, data);
  if (rc == 0) {
    if ((rc = push_chain(s, rec, &rec->next, 1)) == 0)
      return 0;
    synchro__host_detach_unpushed(h, rec);
  } else if (rc == SYNCHRO_EPERM && (rc = push_chain(s, rec, &rec->next, 1)) == 0) {
    if ((rc = synchro_future_then_typed(rec, h, cb, fn, data)) == 0)
      return 0;
    (void)synchro_future_cancel(rec);
    synchro_future_free(rec);
    return rc;
  }
  unprepare(s, rec);
  return rc;
}

int synchro_submit_then(synchro_t *s, const synchro_op_t *op, const void *args, int64_t timeout_ms,
                        synchro_host_t *h, synchro_host_cb cb, void *data) {
  return synchro__submit_then(s, op, args, timeout_ms, h, cb, NULL, data);
}

/* ---- waiting ------------------------------------------------------------------------- */

bool synchro__is_done(const synchro_call_t *rec) {
  return synchro__phase(atomic_load_explicit(&rec->state, memory_order_acquire)) == SYNCHRO__DONE;
}

/* A pending record seen in a fork child belongs to a loop that is gone there: settle
 * the inheritance first, so it reports SYNCHRO_EFORKED instead of waiting forever. */
SYNCHRO__HOT static bool settled_done(const synchro_call_t *rec) {
  if (synchro__is_done(rec))
    return true;
  synchro__check_fork(rec->sync);
  return synchro__is_done(rec);
}

/* Spinning pays only when the loop runs on another CPU; on a shared CPU it would
 * steal the very time slice the loop needs. */
static bool record_done(const void *rec) { return synchro__is_done(rec); }

static void spin_briefly(const synchro_call_t *rec) {
  const synchro_t *s = rec->sync;
  if (s->opts.caller_spin_ns <= 0 || synchro__ncpu() < 2 ||
      synchro__recent_cpu() == atomic_load_explicit(&s->loop_cpu, memory_order_relaxed))
    return;
  synchro__spin_until(record_done, rec, s->opts.caller_spin_ns);
}

/* Sleeps until the record is DONE or the deadline passes (SYNCHRO_EPENDING). */
static int wait_done(synchro_call_t *rec, uint64_t deadline_ns);

int synchro__wait_done(synchro_call_t *rec, uint64_t deadline_ns) {
  return wait_done(rec, deadline_ns);
}

static int wait_done(synchro_call_t *rec, uint64_t deadline_ns) {
  uint32_t st;
  if (synchro__is_done(rec))
    return 0;
  spin_briefly(rec);
  for (;;) {
    st = atomic_load_explicit(&rec->state, memory_order_acquire);
    if (synchro__phase(st) == SYNCHRO__DONE)
      return 0;
    if (!(st & SYNCHRO__WAITING)) {
      if (!atomic_compare_exchange_weak_explicit(&rec->state, &st, st | SYNCHRO__WAITING,
                                                 memory_order_acq_rel, memory_order_acquire))
        continue;
      st |= SYNCHRO__WAITING;
    }
    if (synchro__futex_wait(&rec->state, st, deadline_ns) == SYNCHRO_EPENDING)
      return synchro__is_done(rec) ? 0 : SYNCHRO_EPENDING;
  }
}

static const synchro_error_t *error_of(const synchro_call_t *rec) {
  const synchro_error_t *err = synchro__rec_error(rec);
  return err != NULL ? err : synchro__static_error(rec->status);
}

static void take_error(synchro_call_t *rec, synchro_error_t **out) {
  *out = (synchro_error_t *)error_of(rec); /* freeing a static error is a no-op */
  rec->cflags |= SYNCHRO__C_ERROR_TAKEN;
}

/* A blocking call made on a loop or host-loop thread: wait-for edge, cycle check,
 * report (lib/diag.c). */
static int call_watched(synchro_t *s, const synchro_op_t *op, const void *args, int64_t timeout_ms,
                        void *result, synchro_error_t **err) {
  synchro__blocking_t b;
  synchro_call_t *rec;
  int rc = synchro__blocking_begin(s, &b);
  if (rc != 0)
    return rc;
  if ((rc = synchro__submit(s, op, args, timeout_ms, true, NULL, &rec)) == 0)
    rc = synchro__finish_blocking(rec, result, err);
  synchro__blocking_end(s, op, rc, &b);
  return rc;
}

int synchro_call(synchro_t *s, const synchro_op_t *op, const void *args, int64_t timeout_ms,
                 void *result, synchro_error_t **err) {
  synchro_call_t *rec;
  synchro_t *self = synchro__tls_loop; /* read once: a TLS lookup is a call in a .so */
  int rc;
  if (err != NULL)
    *err = NULL;
  if (s != NULL && self == s)
    return SYNCHRO_EDEADLK;
  if (op != NULL && op->result_size != 0 && result == NULL)
    return SYNCHRO_EINVAL;
  if (op != NULL && op->item_size != 0)
    return SYNCHRO_EINVAL;
  if (synchro__blocking_watched(self))
    return call_watched(s, op, args, timeout_ms, result, err);
  if ((rc = submit_one(s, op, args, timeout_ms, true, NULL, &rec)) != 0) {
    if (rc == SYNCHRO_ELOOPDIED && err != NULL) /* the cause, as the waiters got it */
      synchro_error_new(err, rc, op->name, NULL, NULL, "%s: %s", synchro_strerror(rc), s->death);
    return rc;
  }
  return synchro__finish_blocking(rec, result, err);
}

/* Past its deadline plus this, a blocking caller whose call the loop has not even
 * started cancelling stops waiting: that loop is stuck (a wait cycle the detection
 * cannot see, a stalled implementation), and the deadline must still hold. */
#define STUCK_LOOP_SLACK_NS (250u * 1000000u)

/* Gives up on a call whose loop did not act on its deadline: requests its
 * cancellation (reason SYNCHRO_ETIMEDOUT) unless the loop already decided or started
 * cancelling it, in which case the caller keeps waiting for that to finish. */
static bool give_up(synchro_call_t *rec) {
  uint32_t st = atomic_load_explicit(&rec->state, memory_order_acquire);
  do {
    if (synchro__phase(st) != SYNCHRO__PENDING || (st & SYNCHRO__CANCEL))
      return false;
  } while (!atomic_compare_exchange_weak_explicit(&rec->state, &st, st | SYNCHRO__CANCEL,
                                                  memory_order_acq_rel, memory_order_acquire));
  synchro__post_control(rec, 0);
  return true;
}

int synchro__finish_blocking(synchro_call_t *rec, void *result, synchro_error_t **err) {
  int rc;
  if (SYNCHRO__UNLIKELY(rec->deadline_ns != 0) &&
      wait_done(rec, rec->deadline_ns + STUCK_LOOP_SLACK_NS) != 0 && give_up(rec)) {
    rec->cflags |= SYNCHRO__C_FREED; /* as synchro_future_free: the loop releases it */
    synchro__rec_unref(rec);
    return SYNCHRO_ETIMEDOUT;
  }
  wait_done(rec, UINT64_MAX);
  rc = rec->status;
  if (rc == 0) {
    if (rec->op->result_size != 0)
      synchro__copy(result, rec->result, rec->op->result_size);
    rec->cflags |= SYNCHRO__C_RESULT_TAKEN;
  } else if (err != NULL) {
    take_error(rec, err);
  }
  synchro__rec_unref(rec);
  return rc;
}

int synchro_future_status(const synchro_future_t *f) {
  int rc = synchro__future_check(f);
  if (rc != 0)
    return rc;
  return settled_done(f) ? f->status : SYNCHRO_EPENDING;
}

/* A wait that could block on the loop thread that must resolve the call would never
 * return. */
bool synchro__would_deadlock(const synchro_call_t *rec, int64_t timeout_ms) {
  return timeout_ms != 0 && !synchro__is_done(rec) && synchro__on_loop(rec->sync);
}

int synchro_future_wait(synchro_future_t *f, int64_t timeout_ms) {
  int rc = synchro__future_check(f);
  if (rc != 0)
    return rc;
  if (timeout_ms < 0 && timeout_ms != SYNCHRO_TIMEOUT_INFINITE)
    return SYNCHRO_EINVAL;
  if (!settled_done(f) && synchro__would_deadlock(f, timeout_ms))
    return SYNCHRO_EDEADLK;
  if (wait_done(f, synchro__deadline_after(timeout_ms)) != 0)
    return SYNCHRO_EPENDING;
  return f->status;
}

int synchro_future_cancel(synchro_future_t *f) {
  int rc = synchro__future_check(f);
  uint32_t st;
  if (rc != 0)
    return rc;
  if (settled_done(f))
    return SYNCHRO_EALREADY;
  st = atomic_load_explicit(&f->state, memory_order_relaxed);
  do {
    if (synchro__phase(st) != SYNCHRO__PENDING)
      return SYNCHRO_EALREADY;
    if (st & SYNCHRO__CANCEL)
      return 0; /* already requested */
  } while (!atomic_compare_exchange_weak_explicit(&f->state, &st, st | SYNCHRO__CANCEL,
                                                  memory_order_acq_rel, memory_order_relaxed));
  synchro__post_control(f, 0); /* the loop must hear of it to run the hook */
  return 0;
}

bool synchro__post_request(synchro_call_t *rec) {
  return push_and_wake(rec->sync, &rec->sync->cancel_head, rec, &rec->cancel_next);
}

void synchro__post_control(synchro_call_t *rec, uint32_t bits) {
  uint32_t old =
      atomic_fetch_or_explicit(&rec->state, bits | SYNCHRO__CTL_QUEUED, memory_order_acq_rel);
  if (old & SYNCHRO__CTL_QUEUED)
    return; /* already queued: the loop reads every bit when it gets there */
  /* The queue holds a reference; once the loop is gone the queue is closed and the
   * reference is dropped here. */
  synchro__rec_ref(rec);
  if (!push_and_wake(rec->sync, &rec->sync->cancel_head, rec, &rec->cancel_next))
    synchro__rec_unref(rec);
}

int synchro_future_result(synchro_future_t *f, void *out) {
  int rc = synchro__future_check(f);
  if (rc != 0)
    return rc;
  if (!synchro__is_done(f))
    return SYNCHRO_EPENDING;
  if (f->status != 0)
    return f->status;
  if (f->cflags & SYNCHRO__C_RESULT_TAKEN)
    return SYNCHRO_EALREADY;
  if (f->op->result_size != 0) {
    if (out == NULL)
      return SYNCHRO_EINVAL;
    synchro__copy(out, f->result, f->op->result_size);
  }
  f->cflags |= SYNCHRO__C_RESULT_TAKEN;
  return 0;
}

const synchro_error_t *synchro_future_error(const synchro_future_t *f) {
  if (synchro__future_check(f) != 0 || !synchro__is_done(f) || f->status == 0 ||
      (f->cflags & SYNCHRO__C_ERROR_TAKEN))
    return NULL;
  return error_of(f);
}

int synchro_future_take_error(synchro_future_t *f, synchro_error_t **out) {
  int rc = synchro__future_check(f);
  if (rc != 0 || out == NULL)
    return rc != 0 ? rc : SYNCHRO_EINVAL;
  *out = NULL;
  if (!synchro__is_done(f))
    return SYNCHRO_EPENDING;
  if (f->status == 0 || (f->cflags & SYNCHRO__C_ERROR_TAKEN))
    return SYNCHRO_EALREADY;
  take_error(f, out);
  return 0;
}

const char *synchro_future_name(const synchro_future_t *f) {
  return synchro__future_check(f) == 0 ? f->op->name : NULL;
}

void synchro_future_free(synchro_future_t *f) {
  if (synchro__future_check(f) != 0 || (f->cflags & SYNCHRO__C_ATTACHED))
    return; /* NULL, freed, or owned by a queue or host: nothing to do safely */
  f->cflags |= SYNCHRO__C_FREED;
  synchro__rec_unref(f);
}

/* ---- sinks ------------------------------------------------------------------------- */

int synchro__attach_sink(synchro_call_t *rec, synchro__sink_t *sink, uintptr_t tag) {
  uintptr_t expected = SYNCHRO__SINK_NONE;
  uint32_t st = atomic_load_explicit(&rec->state, memory_order_acquire);
  if (synchro__phase(st) == SYNCHRO__DONE)
    return SYNCHRO_EALREADY;
  /* Claim the word: a call has one sink at a time (a queue, a host, a wait). */
  if (!atomic_compare_exchange_strong_explicit(&rec->sink, &expected, (uintptr_t)sink | tag,
                                               memory_order_relaxed, memory_order_relaxed))
    return synchro__is_done(rec) ? SYNCHRO_EALREADY : SYNCHRO_EINVAL;
  /* Release: the resolver that sees SINKED sees the word. */
  while (!atomic_compare_exchange_weak_explicit(&rec->state, &st, st | SYNCHRO__SINKED,
                                                memory_order_acq_rel, memory_order_acquire)) {
    if (synchro__phase(st) == SYNCHRO__DONE) { /* resolved meanwhile: no notification */
      atomic_store_explicit(&rec->sink, SYNCHRO__SINK_NONE, memory_order_relaxed);
      return SYNCHRO_EALREADY;
    }
  }
  return 0;
}

bool synchro__sink_attached(const synchro_call_t *rec) {
  uint32_t st = atomic_load_explicit(&rec->state, memory_order_acquire);
  return (st & SYNCHRO__SINKED) && synchro__phase(st) != SYNCHRO__DONE;
}

/* Detaches the sink if its notification has not started: false once the call is DONE
 * (the resolver saw the sink; its notify is running or done). The caller knows the
 * sink is its own. */
static bool detach_sink(synchro_call_t *rec) {
  uint32_t st = atomic_load_explicit(&rec->state, memory_order_relaxed);
  do {
    if (synchro__phase(st) == SYNCHRO__DONE || !(st & SYNCHRO__SINKED))
      return false;
  } while (!atomic_compare_exchange_weak_explicit(&rec->state, &st, st & ~SYNCHRO__SINKED,
                                                  memory_order_acq_rel, memory_order_relaxed));
  atomic_store_explicit(&rec->sink, SYNCHRO__SINK_NONE, memory_order_relaxed);
  return true;
}

/* ---- batch waits: one wakeup for the whole batch ----------------------------------
 *
 * A group on the waiter's stack is the sink of every pending future. A notification's
 * last touch of the group is its decrement of `remaining`, except for the one that
 * takes it to zero: that one sets GROUP_WOKEN and GROUP_NOTIFIER_DONE and wakes the
 * waiter in one system call (FUTEX_WAKE_OP), so it never touches the group after the
 * waiter can see it woken. The waiter knows how many notifications to expect, so
 * before its group goes it waits for `remaining` to reach the value they leave, and
 * for GROUP_NOTIFIER_DONE if a notification took it to zero (only after a timeout or
 * in wait_any can it get there first). One atomic per notification. */

#define GROUP_WOKEN 1u         /* the waiter may proceed */
#define GROUP_NOTIFIER_DONE 2u /* the notification that woke it is done with the group */

typedef struct {
  synchro__sink_t base;
  _Atomic uint32_t remaining; /* notifications still needed before waking */
  /* futex word: GROUP_* bits. On a line of its own: a waiter that polls it before
   * sleeping must not pull the line every notification writes. */
  _Alignas(SYNCHRO__CACHE_LINE) _Atomic uint32_t woken;
} group_t;

static void group_notify(synchro__sink_t *sink, synchro_call_t *rec) {
  group_t *g = (group_t *)sink;
  (void)rec;
  if (atomic_fetch_sub_explicit(&g->remaining, 1, memory_order_acq_rel) != 1)
    return; /* that was the last touch of g */
  /* Not a store, then a wake: the waiter, woken on the same CPU, would preempt us
   * between the two and then wait for us to finish with g (measured: a 4 ms stall per
   * batch on one CPU). The waiter's acquire of `remaining` orders what we wrote. */
  synchro__futex_or_wake(&g->woken, GROUP_WOKEN | GROUP_NOTIFIER_DONE, 1);
}

static int check_batch(synchro_future_t *const *fs, size_t n, int64_t timeout_ms) {
  const synchro_t *last_sync = NULL;
  bool on_loop = false;
  size_t i;
  int rc;
  if (fs == NULL || (timeout_ms < 0 && timeout_ms != SYNCHRO_TIMEOUT_INFINITE))
    return SYNCHRO_EINVAL;
  for (i = 0; i < n; i++) {
    if ((rc = synchro__future_check(fs[i])) != 0)
      return rc;
    if (settled_done(fs[i]))
      continue;
    if (fs[i]->sync != last_sync) { /* batches mostly share one synchronizer */
      last_sync = fs[i]->sync;
      on_loop = synchro__on_loop(last_sync);
    }
    if (on_loop && timeout_ms != 0)
      return SYNCHRO_EDEADLK;
  }
  return 0;
}

/* Attaches the group to every pending future, counting them in *attached. Fails with
 * SYNCHRO_EINVAL if one belongs to a queue or host; the caller then detaches.
 * For wait_all (per_call), the caller has already added n to remaining, so that the
 * attaching never needs one atomic per future: it takes back what was not attached. */
static int attach_group(group_t *g, synchro_future_t *const *fs, size_t n, uint32_t *attached) {
  size_t i;
  *attached = 0;
  for (i = 0; i < n; i++) {
    int rc = synchro__attach_sink(fs[i], &g->base, SYNCHRO__SINK_ANY);
    if (rc == 0) {
      (*attached)++;
      continue;
    }
    if (rc == SYNCHRO_EINVAL)
      return rc;
  }
  return 0;
}

/* Detaches the group and waits until every notification that got hold of it has
 * finished with it, so the group (on our stack) can go: each attached future is
 * either detached here or notifies exactly once. `base`: what `remaining` holds once
 * every attached future notified (after the waiter's own decrement); `self_zero`: the
 * waiter's decrement took it to zero. */
static void detach_group(group_t *g, synchro_future_t *const *fs, size_t n, uint32_t attached,
                         uint32_t base, bool self_zero) {
  size_t i;
  uint32_t detached = 0, notifying, final;
  unsigned round = 0;
  if (attached == 0)
    return;
  for (i = 0; i < n; i++) {
    /* Only ours; detach_sink tells the resolved ones (no CAS for them). */
    if (atomic_load_explicit(&fs[i]->sink, memory_order_relaxed) == (uintptr_t)&g->base)
      detached += detach_sink(fs[i]);
  }
  notifying = attached - detached;
  final = base - notifying; /* may wrap (wait_any): the comparison is exact anyway */
  while (atomic_load_explicit(&g->remaining, memory_order_acquire) != final)
    synchro__backoff(&round); /* a resolver between taking the sink and its decrement */
  /* Counting down from base, a notification took remaining from 1 to 0 iff there were
   * at least base of them (unless the waiter's own decrement came last). Its system
   * call sets the bit and wakes us: sleep on the word until then. */
  if (!self_zero && notifying != 0 && notifying >= base) {
    uint32_t w;
    while (!((w = atomic_load_explicit(&g->woken, memory_order_acquire)) & GROUP_NOTIFIER_DONE))
      synchro__futex_wait(&g->woken, w, UINT64_MAX);
  }
}

static bool group_woken(const void *g) {
  return (atomic_load_explicit(&((const group_t *)g)->woken, memory_order_acquire) & GROUP_WOKEN) !=
         0;
}

/* Before sleeping, a batch waiter polls for a while when the loop runs on another CPU:
 * sleeping, it would pay for the wakeup of its idle CPU (tens of microseconds on a VM)
 * after the last of its calls, against about a tenth of a microsecond a call. How
 * long: what the pending calls would take at SPIN_PER_CALL_NS each, at most
 * SPIN_MAX_NS. When a spin runs out (slow calls: I/O), the thread skips the next
 * SPIN_BACKOFF waits' spins, so batches of slow calls cost a bounded spin now and
 * then. Measured: a cross-core batch of 1000 futures, 7.7 -> 10.3 M/s. */
#define SPIN_PER_CALL_NS 200
#define SPIN_MAX_NS 200000
#define SPIN_BACKOFF 16
static _Thread_local int batch_spin_skips; /* waits left without a spin */
static void spin_for_batch(group_t *g, const synchro_t *s, uint32_t pending) {
  int64_t budget = (int64_t)pending * SPIN_PER_CALL_NS;
  if (s->opts.caller_spin_ns <= 0 || synchro__ncpu() < 2 ||
      synchro__recent_cpu() == atomic_load_explicit(&s->loop_cpu, memory_order_relaxed))
    return;
  if (batch_spin_skips > 0) {
    batch_spin_skips--;
    return;
  }
  if (!synchro__spin_until(group_woken, g, budget < SPIN_MAX_NS ? budget : SPIN_MAX_NS))
    batch_spin_skips = SPIN_BACKOFF;
}

static int wait_group(group_t *g, int64_t timeout_ms) {
  uint64_t deadline = synchro__deadline_after(timeout_ms);
  while (!(atomic_load_explicit(&g->woken, memory_order_acquire) & GROUP_WOKEN))
    if (synchro__futex_wait(&g->woken, 0, deadline) == SYNCHRO_EPENDING)
      return (atomic_load_explicit(&g->woken, memory_order_acquire) & GROUP_WOKEN)
                 ? 0
                 : SYNCHRO_EPENDING;
  return 0;
}

static size_t first_done(synchro_future_t *const *fs, size_t n) {
  size_t i;
  for (i = 0; i < n; i++)
    if (synchro__is_done(fs[i]))
      return i;
  return n;
}

int synchro_future_wait_all(synchro_future_t *const *fs, size_t n, int64_t timeout_ms) {
  group_t g = {{group_notify}, 0, 0};
  uint32_t attached, unattached;
  bool self_zero;
  int rc = check_batch(fs, n, timeout_ms), attach_rc;
  if (rc != 0)
    return rc;
  if (n > UINT32_MAX - 1)
    return SYNCHRO_EINVAL;
  /* One token per future plus our own, taken before any can notify; what did not get
   * attached (already resolved) is given back at once, with our token, below. */
  atomic_init(&g.remaining, (uint32_t)n + 1);
  attach_rc = attach_group(&g, fs, n, &attached);
  unattached = (uint32_t)n - attached + 1;
  self_zero =
      atomic_fetch_sub_explicit(&g.remaining, unattached, memory_order_acq_rel) == unattached;
  if (self_zero)
    atomic_fetch_or(&g.woken, GROUP_WOKEN); /* everything was already done */
  if (attach_rc != 0)
    rc = SYNCHRO_EINVAL;
  else if (timeout_ms == 0 && !(atomic_load(&g.woken) & GROUP_WOKEN))
    rc = SYNCHRO_EPENDING;
  else {
    if (!group_woken(&g))
      spin_for_batch(&g, fs[0]->sync, attached);
    rc = wait_group(&g, timeout_ms);
  }
  detach_group(&g, fs, n, attached, attached, self_zero);
  return rc;
}

int synchro_future_wait_any(synchro_future_t *const *fs, size_t n, int64_t timeout_ms,
                            size_t *index) {
  group_t g = {{group_notify}, 1, 0}; /* the first notification wakes us */
  uint32_t attached;
  int rc = check_batch(fs, n, timeout_ms);
  if (rc != 0 || index == NULL)
    return rc != 0 ? rc : SYNCHRO_EINVAL;
  if (n == 0)
    return SYNCHRO_EEMPTY;
  if ((*index = first_done(fs, n)) < n)
    return 0;
  if (timeout_ms == 0)
    return SYNCHRO_EPENDING;
  if (attach_group(&g, fs, n, &attached) != 0) {
    detach_group(&g, fs, n, attached, 1, false);
    return SYNCHRO_EINVAL;
  }
  if (first_done(fs, n) < n)
    atomic_fetch_or(&g.woken, GROUP_WOKEN); /* one resolved while we attached */
  rc = wait_group(&g, timeout_ms);
  detach_group(&g, fs, n, attached, 1, false);
  if (rc == 0)
    *index = first_done(fs, n);
  return rc;
}
