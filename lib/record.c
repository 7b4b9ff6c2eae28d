/* lib/record.c - a call record's lifetime and the one place outcomes are decided.
 *
 * A record has two references from birth: the caller's (the future, or the blocking
 * caller) and the loop's (dropped once the implementation is done with it and the
 * outcome is published). Whoever drops the last one releases what the record still
 * owns (arguments, an unclaimed result or error) and returns it to the pool. */
#include <jansson.h>
#include <string.h>

#include "internal.h"

void synchro__rec_ref(synchro_call_t *rec) {
  atomic_fetch_add_explicit(&rec->refs, 1, memory_order_relaxed);
}

static void release_payload(synchro_call_t *rec) {
  const synchro_op_t *op = rec->op;
  void *args = synchro__rec_args(rec);
  if (op->args_free != NULL)
    op->args_free(args);
  if (args != rec->args_inline)
    synchro__free(args);
  if (rec->status == 0 && !(rec->cflags & SYNCHRO__C_RESULT_TAKEN) && op->result_free != NULL)
    op->result_free(rec->result);
  if (!(rec->cflags & SYNCHRO__C_ERROR_TAKEN))
    synchro_error_free(synchro__rec_error(rec));
  if (rec->stream != NULL)
    synchro__stream_destroy(rec->stream); /* releases the items nobody took */
  if (rec->obj_kind != SYNCHRO__OBJ_NONE)
    synchro__object_release(rec->ext->object);
  if (rec->ctx != NULL)
    synchro__ctx_unref(rec->ctx);
}

/* Whether the record owns nothing that needs releasing (the common case). */
static inline bool owns_nothing(const synchro_call_t *rec) {
  const synchro_op_t *op = rec->op;
  if (op->args_free != NULL || op->args_size > SYNCHRO__ARGS_INLINE || rec->stream != NULL ||
      rec->obj_kind != SYNCHRO__OBJ_NONE || rec->ctx != NULL)
    return false;
  if (rec->status == 0)
    return (rec->cflags & SYNCHRO__C_RESULT_TAKEN) || op->result_free == NULL;
  return (rec->cflags & SYNCHRO__C_ERROR_TAKEN) || rec->error == NULL;
}

/* Whoever drops the last reference: releases what the record owns, recycles it. */
static void free_record(synchro_call_t *rec) {
  if (!owns_nothing(rec))
    release_payload(rec);
  synchro__rec_ext_release(rec);
  atomic_store_explicit(&rec->magic, SYNCHRO__MAGIC_FREED, memory_order_relaxed);
  synchro__pool_put(rec);
}

void synchro__rec_unref(synchro_call_t *rec) {
  if (atomic_fetch_sub_explicit(&rec->refs, 1, memory_order_acq_rel) == 1)
    free_record(rec);
}

/* Whether a failure is the runtime's own (a cancellation, a deadline, a shutdown: no
 * error object of the implementation's), which counts as a cancelled call. */
static bool runtime_failure(int outcome, const synchro_error_t *err) {
  return err == NULL && synchro__static_error(outcome) != NULL;
}

/* The statistic an outcome counts in. */
static _Atomic uint64_t *outcome_counter(synchro_t *s, int outcome, bool runtime_outcome) {
  return outcome == 0 ? &s->n_completed : runtime_outcome ? &s->n_cancelled : &s->n_failed;
}

/* Gives the call's admission slot back (max_inflight). Done before the outcome is
 * published, so a caller that saw its call finish can submit again at once. */
void synchro__release_admission(synchro_t *s) {
  if (s->opts.max_inflight == 0)
    return;
  atomic_fetch_sub(&s->inflight, 1);
  if (atomic_load(&s->inflight_waiters) != 0)
    synchro__futex_wake(&s->inflight, 1);
}

void synchro__release_result(const synchro_op_t *op, const void *result) {
  if (result != NULL && op->result_free != NULL) {
    unsigned char tmp[SYNCHRO_RESULT_MAX]; /* result_free may write; `result` is const */
    memcpy(tmp, result, op->result_size);
    op->result_free(tmp);
  }
}

static void discard(const synchro_call_t *rec, const void *result, synchro_error_t *err) {
  synchro__release_result(rec->op, result);
  synchro_error_free(err);
}

/* The outcome a cancellation decides: the reason the loop recorded (a deadline's
 * SYNCHRO_ETIMEDOUT, a close's SYNCHRO_ESHUTDOWN), else SYNCHRO_ECANCELED. */
static int cancel_outcome(int reason) { return reason != 0 ? reason : SYNCHRO_ECANCELED; }

/* The cancel reason the loop recorded, 0 if none. Once the outcome is written `status`
 * holds that instead, and this still gives the reason wherever it is read: a call the
 * loop cancelled was resolved as cancel_outcome(reason), which cancel_outcome() maps
 * to itself, and the one call with a reason but no CANCEL, one refused for its
 * deadline, as SYNCHRO_ETIMEDOUT, its reason. */
static int recorded_reason(const synchro_call_t *rec) {
  return (rec->lflags & SYNCHRO__L_REASON) ? rec->status : 0;
}

/* Writes what the caller reads once DONE is published. The error shares its bytes with
 * the result: set only on failure. */
static void write_outcome(synchro_call_t *rec, int outcome, const void *result,
                          synchro_error_t *err) {
  if (outcome == 0) {
    if (rec->op->result_size != 0)
      synchro__copy(rec->result, result, rec->op->result_size);
  } else {
    rec->error = err;
  }
  rec->status = outcome;
}

/* A cancellation arrived after the outcome was written, before it was published: it
 * wins (a cancel that returned 0 always means a cancelled call), and what was written
 * is released here, once. The statistic moves with it. An outcome that a cancellation
 * decided already comes out the same. */
static void overrule(synchro_call_t *rec) {
  int written = rec->status, reason = recorded_reason(rec);
  synchro_t *s = rec->sync;
  if (written == 0) {
    synchro__uncount(&s->n_completed);
    synchro__release_result(rec->op, rec->op->result_size != 0 ? rec->result : NULL);
  } else {
    synchro__uncount(outcome_counter(s, written, runtime_failure(written, rec->error)));
    synchro_error_free(rec->error);
  }
  rec->status = cancel_outcome(reason);
  rec->error = NULL;
  synchro__count(&s->n_cancelled);
}

/* Publishes the written outcome: PENDING -> DONE, then wakes a sleeping waiter and
 * hands the call to its sink. `st`: the state word as last read; `cancelled`: the
 * outcome already is a cancellation's. */
SYNCHRO__HOT static void publish(synchro_call_t *rec, uint32_t st, bool cancelled) {
  uintptr_t sink;
  /* Release publishes status, result and error. The value the swap replaces says
   * whether a sink is attached (SINKED): none can come or go after it. */
  while (!atomic_compare_exchange_weak_explicit(&rec->state, &st, st | SYNCHRO__DONE,
                                                memory_order_acq_rel, memory_order_relaxed))
    if ((st & SYNCHRO__CANCEL) && !cancelled) {
      overrule(rec);
      cancelled = true;
    }
  if (st & SYNCHRO__WAITING)
    synchro__futex_wake(&rec->state, INT32_MAX);
  if (st & SYNCHRO__SINKED) {
    /* The attacher wrote the word before its release CAS set SINKED, which ours read. */
    sink = atomic_load_explicit(&rec->sink, memory_order_relaxed);
    SYNCHRO__SEAM(DELIVER, rec);
    synchro__sink_ptr(sink)->notify(synchro__sink_ptr(sink), rec);
  }
}

/* A fork child (recover_after_fork) meets a call whose outcome the parent's loop thread
 * had written and counted when the fork stopped it, before the swap. That outcome was
 * decided before the fork: publish it, as the parent would have. A cancel request that
 * came first overrules it here too (the parent only tested for one in the swap). */
SYNCHRO__COLD static void publish_inherited(synchro_call_t *rec, uint32_t st) {
  if (st & SYNCHRO__CANCEL)
    overrule(rec); /* a no-op for an outcome the cancellation decided */
  publish(rec, st, true);
}

/* Decides and publishes the outcome, once. Only the loop thread runs this and only it
 * moves the phase, so the phase stays PENDING until the one compare-and-swap in
 * publish() makes it DONE; callers only add CANCEL and WAITING meanwhile, and a CANCEL
 * that comes before the swap decides the outcome. */
int synchro__resolve(synchro_call_t *rec, int outcome, const void *result, synchro_error_t *err) {
  uint32_t st = atomic_load_explicit(&rec->state, memory_order_relaxed);
  bool runtime_outcome = false, cancelled = (st & SYNCHRO__CANCEL) != 0;
  if (synchro__phase(st) != SYNCHRO__PENDING) {
    discard(rec, outcome == 0 ? result : NULL, err);
    return SYNCHRO_EALREADY;
  }
  if (SYNCHRO__UNLIKELY(rec->lflags & SYNCHRO__L_WRITTEN)) {
    discard(rec, outcome == 0 ? result : NULL, err);
    publish_inherited(rec, st);
    return 0;
  }
  if (cancelled) {
    /* The cancellation came first: it decides, whatever the implementation said. */
    discard(rec, outcome == 0 ? result : NULL, err);
    outcome = cancel_outcome(recorded_reason(rec));
    err = NULL;
    runtime_outcome = true;
  } else if (outcome != 0) {
    runtime_outcome = runtime_failure(outcome, err);
  }
  write_outcome(rec, outcome, result, err);
  synchro__count(outcome_counter(rec->sync, outcome, runtime_outcome));
  synchro__release_admission(rec->sync);
  /* A fork stops this thread between two instructions, as a signal would, and its child
   * sees every store before that point. The fence keeps the compiler from moving the
   * stores above below this flag, so a child that sees the flag publishes a complete
   * outcome, counted once. */
  atomic_signal_fence(memory_order_seq_cst);
  rec->lflags |= SYNCHRO__L_WRITTEN;
  SYNCHRO__SEAM(COMPLETE, rec);
  publish(rec, st, cancelled);
  return 0;
}
